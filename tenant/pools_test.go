package tenant

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/testrig/testdb"
)

// poolsSQLiteTenants makes n tenant files with the real SQLite provisioner
// in a temporary directory.
func poolsSQLiteTenants(t testing.TB, n int) []Tenant {
	t.Helper()
	ctx := context.Background()
	m, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	dir := t.TempDir()
	prov, err := NewSQLite(ctx, dir, m)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Tenant, n)
	for i := range out {
		out[i] = Tenant{Name: fmt.Sprintf("%spools%02d", NamePrefix, i), Location: dir}
		if _, err := prov.Create(ctx, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// poolsOpener returns an open func for Acquire that gives tn and counts its
// calls in opens.
func poolsOpener(tn Tenant, opens *atomic.Int64) func() (Tenant, error) {
	return func() (Tenant, error) {
		if opens != nil {
			opens.Add(1)
		}
		return tn, nil
	}
}

// poolsAcquire acquires key's pool with a bounded wait or fails the test.
func poolsAcquire(t testing.TB, p *Pools, key int64, tn Tenant) (*DB, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, release, err := p.Acquire(ctx, key, poolsOpener(tn, nil))
	if err != nil {
		t.Fatalf("acquire %d: %v", key, err)
	}
	return db, release
}

// poolsInsertMeta writes one row into the tenant's meta table.
func poolsInsertMeta(ctx context.Context, db *DB, key, value string) error {
	_, err := db.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES (?, ?)", key, value)
	return err
}

// poolsCountMeta counts the rows of the tenant's meta table the tests
// wrote: all but the one the schema writes (chunks_version, on SQLite).
func poolsCountMeta(t testing.TB, db *DB) int {
	t.Helper()
	n, err := db.NewSelect().TableExpr("meta").Where("key <> 'chunks_version'").Count(context.Background())
	if err != nil {
		t.Fatalf("count meta: %v", err)
	}
	return int(n)
}

// poolsClosed reports whether db has been closed.
func poolsClosed(db *DB) bool {
	err := db.PingContext(context.Background())
	return err != nil && strings.Contains(err.Error(), "database is closed")
}

func poolsCheckStats(t testing.TB, got, want PoolStats) {
	t.Helper()
	if got != want {
		t.Errorf("stats: got %+v, want %+v", got, want)
	}
}

func TestPoolsHitReturnsSamePool(t *testing.T) {
	ts := poolsSQLiteTenants(t, 1)
	p := NewPools(8)
	defer p.Close()
	ctx := context.Background()
	var opens atomic.Int64

	db, release, err := p.Acquire(ctx, 1, poolsOpener(ts[0], &opens))
	if err != nil {
		t.Fatal(err)
	}
	if db.Engine != "sqlite" {
		t.Errorf("engine: got %q, want sqlite", db.Engine)
	}
	if got := db.Stats().MaxOpenConnections; got != 4 {
		t.Errorf("max open connections: got %d, want 4", got)
	}
	if err := poolsInsertMeta(ctx, db, "embedding_model", "test"); err != nil {
		t.Fatal(err)
	}
	release()

	again, release2, err := p.Acquire(ctx, 1, poolsOpener(ts[0], &opens))
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	if again != db {
		t.Error("a hit returned another pool")
	}
	if n := poolsCountMeta(t, again); n != 1 {
		t.Errorf("meta rows: got %d, want 1", n)
	}
	if n := opens.Load(); n != 1 {
		t.Errorf("opens: got %d, want 1", n)
	}
	poolsCheckStats(t, p.Stats(), PoolStats{Open: 1, Held: 1, Conns: 4, MaxConns: 8, Hits: 1, Misses: 1})
}

func TestPoolsPostgres(t *testing.T) {
	server := testdb.ServerURL(t, config.Postgres)
	ctx := context.Background()
	m, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	prov, err := NewPostgres(ctx, []string{server}, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prov.Close)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	store := controlPlane(t)
	mgr := NewManager(store, prov, Options{Sealer: sealer})

	// Three tenants as sign-up makes them; the directory id is the key.
	type tenantRow struct {
		id   int64
		open func() (Tenant, error)
	}
	var rows []tenantRow
	var opens atomic.Int64
	for i := range 3 {
		u, err := store.SignIn(ctx, models.Profile{Email: fmt.Sprintf("pools%d@example.com", i)})
		if err != nil {
			t.Fatal(err)
		}
		v, err := mgr.Ensure(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		tn, err := mgr.tenant(v, nameFor(u))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := prov.Drop(context.Background(), tn); err != nil {
				t.Error(err)
			}
		})
		rows = append(rows, tenantRow{id: v.ID, open: func() (Tenant, error) {
			opens.Add(1)
			return mgr.tenant(v, nameFor(u))
		}})
	}

	p := NewPools(8)
	t.Cleanup(p.Close) // runs before the drops
	acquire := func(r tenantRow) (*DB, func()) {
		t.Helper()
		db, release, err := p.Acquire(ctx, r.id, r.open)
		if err != nil {
			t.Fatalf("acquire %d: %v", r.id, err)
		}
		return db, release
	}

	a, releaseA := acquire(rows[0])
	if a.Engine != "postgres" {
		t.Errorf("engine: got %q, want postgres", a.Engine)
	}
	if err := poolsInsertMeta(ctx, a, "embedding_model", "test"); err != nil {
		t.Fatal(err)
	}
	if n := poolsCountMeta(t, a); n != 1 {
		t.Errorf("meta rows: got %d, want 1", n)
	}
	releaseA()
	b, releaseB := acquire(rows[1])
	if n := poolsCountMeta(t, b); n != 0 {
		t.Errorf("meta rows of another tenant: got %d, want 0", n)
	}
	releaseB()

	// A hit; then the third tenant needs room and evicts b, the LRU one.
	a2, releaseA2 := acquire(rows[0])
	if a2 != a {
		t.Error("a hit returned another pool")
	}
	releaseA2()
	c, releaseC := acquire(rows[2])
	defer releaseC()
	if !poolsClosed(b) {
		t.Error("the least recently used pool is still open")
	}
	if poolsClosed(a) {
		t.Error("a recently used pool was closed")
	}
	if n := poolsCountMeta(t, c); n != 0 {
		t.Errorf("meta rows: got %d, want 0", n)
	}
	if n := opens.Load(); n != 3 {
		t.Errorf("opens: got %d, want 3", n)
	}
	poolsCheckStats(t, p.Stats(), PoolStats{Open: 2, Held: 1, Conns: 8, MaxConns: 8, Hits: 1, Misses: 3, Evictions: 1})

	// Evict closes a free pool at once, so its database can be dropped.
	p.Evict(rows[0].id)
	if !poolsClosed(a) {
		t.Error("an evicted free pool is still open")
	}
}

func TestPoolsEvictLeastRecentlyUsedFree(t *testing.T) {
	ts := poolsSQLiteTenants(t, 3)
	p := NewPools(8)
	defer p.Close()

	a, releaseA := poolsAcquire(t, p, 1, ts[0])
	b, releaseB := poolsAcquire(t, p, 2, ts[1])
	releaseA()
	releaseB()
	_, releaseA = poolsAcquire(t, p, 1, ts[0]) // now b is the least recently used
	releaseA()
	c, releaseC := poolsAcquire(t, p, 3, ts[2])
	defer releaseC()

	if !poolsClosed(b) {
		t.Error("the least recently used free pool is still open")
	}
	for name, db := range map[string]*DB{"a": a, "c": c} {
		if poolsClosed(db) {
			t.Errorf("pool %s was closed", name)
		}
	}
	poolsCheckStats(t, p.Stats(), PoolStats{Open: 2, Held: 1, Conns: 8, MaxConns: 8, Hits: 1, Misses: 3, Evictions: 1})
}

func TestPoolsHeldPoolIsNeverEvicted(t *testing.T) {
	ts := poolsSQLiteTenants(t, 3)
	p := NewPools(8)
	defer p.Close()

	a, releaseA := poolsAcquire(t, p, 1, ts[0])
	b, releaseB := poolsAcquire(t, p, 2, ts[1])
	defer releaseB()

	// With both pools held, a third tenant waits, until its ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := p.Acquire(ctx, 3, poolsOpener(ts[2], nil)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire with every pool held: got %v, want %v", err, context.DeadlineExceeded)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, _, err := p.Acquire(ctx, 3, poolsOpener(ts[2], nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with a cancelled ctx: got %v, want %v", err, context.Canceled)
	}
	if poolsClosed(a) || poolsClosed(b) {
		t.Fatal("a held pool was closed")
	}
	poolsCheckStats(t, p.Stats(), PoolStats{Open: 2, Held: 2, Conns: 8, MaxConns: 8, Misses: 2, Waits: 2})

	// A waiting Acquire gets room when a pool is released.
	type result struct {
		db      *DB
		release func()
		err     error
	}
	done := make(chan result, 1)
	go func() {
		db, release, err := p.Acquire(context.Background(), 3, poolsOpener(ts[2], nil))
		done <- result{db, release, err}
	}()
	for p.Stats().Waits < 3 {
		time.Sleep(time.Millisecond)
	}
	select {
	case r := <-done:
		t.Fatalf("acquire returned while every pool was held: %v", r.err)
	case <-time.After(50 * time.Millisecond):
	}
	releaseA()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("acquire still waits after a release")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.release()
	if !poolsClosed(a) {
		t.Error("the released pool was not the one closed")
	}
	if poolsClosed(b) {
		t.Error("a held pool was closed")
	}
	if n := poolsCountMeta(t, r.db); n != 0 {
		t.Errorf("meta rows: got %d, want 0", n)
	}
	poolsCheckStats(t, p.Stats(), PoolStats{Open: 2, Held: 2, Conns: 8, MaxConns: 8, Misses: 3, Evictions: 1, Waits: 3})
}

func TestPoolsConcurrentMissOpensOnce(t *testing.T) {
	ts := poolsSQLiteTenants(t, 1)
	p := NewPools(8)
	defer p.Close()
	var opens atomic.Int64
	open := func() (Tenant, error) {
		opens.Add(1)
		time.Sleep(50 * time.Millisecond) // a slow connect: the others arrive meanwhile
		return ts[0], nil
	}

	const n = 16
	dbs := make([]*DB, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			db, release, err := p.Acquire(context.Background(), 1, open)
			if err != nil {
				t.Error(err)
				return
			}
			dbs[i] = db
			release()
		})
	}
	close(start)
	wg.Wait()
	if got := opens.Load(); got != 1 {
		t.Errorf("opens: got %d, want 1", got)
	}
	for i, db := range dbs {
		if db != dbs[0] {
			t.Errorf("acquire %d got another pool", i)
		}
	}
	poolsCheckStats(t, p.Stats(), PoolStats{Open: 1, Conns: 4, MaxConns: 8, Hits: n - 1, Misses: 1})
}

func TestPoolsSlowOpenDoesNotBlockHits(t *testing.T) {
	ts := poolsSQLiteTenants(t, 2)
	p := NewPools(8)
	defer p.Close()
	_, release := poolsAcquire(t, p, 2, ts[1])
	release()

	unblock := make(chan struct{})
	opened := make(chan error, 1)
	go func() {
		_, release, err := p.Acquire(context.Background(), 1, func() (Tenant, error) {
			<-unblock
			return ts[0], nil
		})
		if err == nil {
			release()
		}
		opened <- err
	}()
	for p.Stats().Misses < 2 { // the slow open has begun
		time.Sleep(time.Millisecond)
	}
	hit := make(chan error, 1)
	go func() {
		_, release, err := p.Acquire(context.Background(), 2, poolsOpener(ts[1], nil))
		if err == nil {
			release()
		}
		hit <- err
	}()
	select {
	case err := <-hit:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Error("a hit waited for another tenant's open")
	}
	close(unblock)
	if err := <-opened; err != nil {
		t.Error(err)
	}
}

func TestPoolsEvict(t *testing.T) {
	ts := poolsSQLiteTenants(t, 1)
	p := NewPools(8)
	defer p.Close()
	var opens atomic.Int64
	ctx := context.Background()

	// A held pool keeps working for its holder and closes on release.
	held, releaseHeld, err := p.Acquire(ctx, 1, poolsOpener(ts[0], &opens))
	if err != nil {
		t.Fatal(err)
	}
	p.Evict(1)
	if poolsClosed(held) {
		t.Fatal("Evict closed a held pool")
	}
	if err := poolsInsertMeta(ctx, held, "k", "v"); err != nil {
		t.Fatalf("query through an evicted, held pool: %v", err)
	}
	poolsCheckStats(t, p.Stats(), PoolStats{Conns: 4, MaxConns: 8, Misses: 1, Evictions: 1})

	// It is not handed out again: the next Acquire opens a new pool.
	fresh, releaseFresh, err := p.Acquire(ctx, 1, poolsOpener(ts[0], &opens))
	if err != nil {
		t.Fatal(err)
	}
	if fresh == held {
		t.Error("an evicted pool was handed out again")
	}
	if n := opens.Load(); n != 2 {
		t.Errorf("opens: got %d, want 2", n)
	}
	releaseHeld()
	if !poolsClosed(held) {
		t.Error("an evicted pool is still open after its last release")
	}
	releaseHeld() // a second release does nothing
	poolsCheckStats(t, p.Stats(), PoolStats{Open: 1, Held: 1, Conns: 4, MaxConns: 8, Misses: 2, Evictions: 1})

	// A free pool closes at once.
	releaseFresh()
	p.Evict(1)
	if !poolsClosed(fresh) {
		t.Error("an evicted free pool is still open")
	}
	p.Evict(1) // nothing to evict
	poolsCheckStats(t, p.Stats(), PoolStats{MaxConns: 8, Misses: 2, Evictions: 2})
}

func TestPoolsEvictWhileOpening(t *testing.T) {
	ts := poolsSQLiteTenants(t, 1)
	p := NewPools(8)
	defer p.Close()
	unblock := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, _, err := p.Acquire(context.Background(), 1, func() (Tenant, error) {
			<-unblock
			return ts[0], nil
		})
		done <- err
	}()
	for p.Stats().Misses < 1 {
		time.Sleep(time.Millisecond)
	}
	p.Evict(1)
	close(unblock)
	if err := <-done; !errors.Is(err, ErrEvicted) {
		t.Errorf("acquire of a pool evicted while opening: got %v, want %v", err, ErrEvicted)
	}
	poolsCheckStats(t, p.Stats(), PoolStats{MaxConns: 8, Misses: 1, Evictions: 1})
}

func TestPoolsOpenFailure(t *testing.T) {
	p := NewPools(8)
	defer p.Close()
	ctx := context.Background()

	errDirectory := errors.New("directory says no")
	if _, _, err := p.Acquire(ctx, 1, func() (Tenant, error) { return Tenant{}, errDirectory }); !errors.Is(err, errDirectory) {
		t.Errorf("acquire when open fails: got %v, want %v", err, errDirectory)
	}

	// A missing SQLite file is an error, and is not made.
	missing := filepath.Join(t.TempDir(), NamePrefix+"gone.db")
	if _, _, err := p.Acquire(ctx, 2, poolsOpener(Tenant{Name: NamePrefix + "gone", DSN: missing}, nil)); err == nil {
		t.Error("acquire of a missing SQLite file: got no error")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing tenant file: got %v, want it still missing", err)
	}
	if _, _, err := p.Acquire(ctx, 3, poolsOpener(Tenant{Name: NamePrefix + "none"}, nil)); err == nil {
		t.Error("acquire of a tenant without DSN: got no error")
	}
	poolsCheckStats(t, p.Stats(), PoolStats{MaxConns: 8, Misses: 3})
}

func TestPoolsSQLitePathNeedsEscaping(t *testing.T) {
	ts := poolsSQLiteTenants(t, 1)
	dir := filepath.Join(t.TempDir(), "odd?name#with%20signs")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, NamePrefix+"odd.db")
	if err := copyFile(ts[0].DSN, path); err != nil {
		t.Fatal(err)
	}
	p := NewPools(8)
	defer p.Close()
	db, release := poolsAcquire(t, p, 1, Tenant{Name: NamePrefix + "odd", DSN: path})
	defer release()
	if err := poolsInsertMeta(context.Background(), db, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if n := poolsCountMeta(t, db); n != 1 {
		t.Errorf("meta rows: got %d, want 1", n)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("the WAL of the very file opened: %v", err)
	}
}

func TestPoolsClose(t *testing.T) {
	ts := poolsSQLiteTenants(t, 2)
	p := NewPools(8)
	held, release := poolsAcquire(t, p, 1, ts[0])
	free, releaseFree := poolsAcquire(t, p, 2, ts[1])
	releaseFree()

	p.Close()
	if !poolsClosed(free) {
		t.Error("Close left a free pool open")
	}
	if poolsClosed(held) {
		t.Error("Close closed a held pool")
	}
	if _, _, err := p.Acquire(context.Background(), 2, poolsOpener(ts[1], nil)); !errors.Is(err, ErrPoolsClosed) {
		t.Errorf("acquire after Close: got %v, want %v", err, ErrPoolsClosed)
	}
	release()
	if !poolsClosed(held) {
		t.Error("a held pool stayed open after Close and its release")
	}
	if got := p.Stats().Conns; got != 0 {
		t.Errorf("connections allowed after Close: got %d, want 0", got)
	}
	p.Close() // twice is fine
}

// TestPoolsManyTenantsUnderCap runs 200 goroutines over 20 tenants with
// room for three pools, counting the connections the pools not yet closed
// may open: never more than the cap.
func TestPoolsManyTenantsUnderCap(t *testing.T) {
	const (
		tenants    = 20
		goroutines = 200
		rounds     = 5
		maxConns   = 12
	)
	ts := poolsSQLiteTenants(t, tenants)
	p := NewPools(maxConns)
	var mu sync.Mutex
	live, peak := 0, 0
	p.openDB = func(ctx context.Context, tn Tenant, conns int) (*DB, error) {
		mu.Lock()
		live += conns
		peak = max(peak, live)
		mu.Unlock()
		db, err := openDB(ctx, tn, conns)
		if err != nil {
			mu.Lock()
			live -= conns
			mu.Unlock()
			return nil, err
		}
		return db, nil
	}
	p.closeDB = func(db *DB) {
		conns := db.Stats().MaxOpenConnections
		_ = db.Close()
		mu.Lock()
		live -= conns
		mu.Unlock()
	}

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				i := mathrand.IntN(tenants)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				db, release, err := p.Acquire(ctx, int64(i), poolsOpener(ts[i], nil))
				if err != nil {
					cancel()
					t.Errorf("acquire %d: %v", i, err)
					return
				}
				err = poolsInsertMeta(ctx, db, fmt.Sprintf("g%d-r%d", g, r), "v")
				release()
				cancel()
				if err != nil {
					t.Errorf("insert into tenant %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()

	s := p.Stats()
	t.Logf("stats: %+v; at most %d connections allowed at once", s, peak)
	if peak > maxConns {
		t.Errorf("connections allowed at once: got %d, want at most %d", peak, maxConns)
	}
	if s.Conns > maxConns || s.Open > maxConns/4 {
		t.Errorf("stats: got %+v, want at most %d connections in %d pools", s, maxConns, maxConns/4)
	}
	if s.Hits+s.Misses != goroutines*rounds {
		t.Errorf("hits+misses: got %d, want %d", s.Hits+s.Misses, goroutines*rounds)
	}
	if s.Evictions == 0 {
		t.Error("no pool was evicted: the test did not fill the cache")
	}
	p.Close()
	mu.Lock()
	if live != 0 {
		t.Errorf("connections allowed after Close: got %d, want 0", live)
	}
	mu.Unlock()

	// Every write went through to a tenant database.
	total := 0
	check := NewPools(maxConns)
	defer check.Close()
	for i, tn := range ts {
		db, release := poolsAcquire(t, check, int64(i), tn)
		total += poolsCountMeta(t, db)
		release()
	}
	if total != goroutines*rounds {
		t.Errorf("meta rows over all tenants: got %d, want %d", total, goroutines*rounds)
	}
}

func BenchmarkPoolsAcquireHit(b *testing.B) {
	ts := poolsSQLiteTenants(b, 1)
	p := NewPools(DefaultMaxConns)
	defer p.Close()
	open := poolsOpener(ts[0], nil)
	ctx := context.Background()
	_, release := poolsAcquire(b, p, 1, ts[0])
	release()

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, release, err := p.Acquire(ctx, 1, open)
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, release, err := p.Acquire(ctx, 1, open)
				if err != nil {
					b.Error(err)
					return
				}
				release()
			}
		})
	})
}
