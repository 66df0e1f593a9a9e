package tenant

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// DefaultMaxConns is the cap on tenant connections, all tenants together,
// when TENANT_MAX_CONNS is not set.
const DefaultMaxConns = 50

// maxPerTenant bounds the connections of one tenant's pool.
const maxPerTenant = 4

// connMaxIdleTime is how long an unused connection of a tenant pool stays
// open.
const connMaxIdleTime = 5 * time.Minute

// ErrPoolsClosed is what Acquire returns once the Pools are closed.
var ErrPoolsClosed = errors.New("tenant: the tenant connections are closed")

// ErrEvicted is what Acquire returns when the tenant's pool was evicted
// while it was being opened (its database is being dropped).
var ErrEvicted = errors.New("tenant: the tenant database was evicted while it was being opened")

// DB is an open tenant database: bun over database/sql, on the tenant's
// engine.
type DB struct {
	*bun.DB
	// Engine is EnginePostgres (a PostgreSQL server or Neon) or
	// EngineSQLite.
	Engine string
}

// Engines of an open tenant database (DB.Engine).
const (
	EnginePostgres = "postgres"
	EngineSQLite   = "sqlite"
)

// PoolStats is a snapshot of the Pools.
type PoolStats struct {
	Open      int   // pools cached, or being opened, for Acquire to hand out
	Held      int   // of those, pools acquired and not yet released
	Conns     int   // connections allowed to every pool not yet closed, together
	MaxConns  int   // the cap on Conns
	Hits      int64 // Acquires served by a cached pool
	Misses    int64 // Acquires that opened a pool
	Evictions int64 // pools put out of the cache: to make room, or by Evict
	Waits     int64 // Acquires that had to wait for room
}

// Pools caches open tenant databases under a cap on connections, all
// tenants together, so that many tenants never mean as many open pools.
//
// Each pool may open up to min(4, maxConns) connections, and the pools not
// yet closed may together open at most maxConns. A miss with no room closes
// the least recently used pool that nobody holds, or waits until one is
// released. A pool that is held is never closed under its holder.
//
// A caller should hold one tenant's pool at a time: one that waits for room
// while holding a pool may wait on itself (until its ctx ends).
type Pools struct {
	maxConns  int
	perTenant int
	// openDB and closeDB open and close one tenant pool; tests replace them
	// to watch the connections.
	openDB  func(ctx context.Context, t Tenant, conns int) (*DB, error)
	closeDB func(db *DB)

	mu     sync.Mutex
	pools  map[int64]*pool // the pools Acquire hands out, open or opening
	lru    list.List       // the open ones in pools, most recently used first
	conns  int             // connections allowed to pools not yet closed (opening, cached, evicted but held, closing)
	wake   chan struct{}   // closed when room may have appeared; nil while nobody waits
	closed bool

	hits, misses, evictions, waits int64
}

// pool is one tenant's pool in the cache.
type pool struct {
	key   int64         // the tenant's directory id
	db    *DB           // nil while it is being opened
	refs  int           // holders: acquired and not yet released
	elem  *list.Element // its place in Pools.lru, once open
	gone  bool          // out of the cache: closes on its last release, never handed out again
	ready chan struct{} // closed when opening ends, well or not
	err   error         // why opening failed
	retry bool          // opening failed with the opener's own ctx: who waited tries again
}

// NewPools returns an empty cache of tenant pools that may open up to
// maxConns connections together (DefaultMaxConns when maxConns < 1).
func NewPools(maxConns int) *Pools {
	if maxConns < 1 {
		maxConns = DefaultMaxConns
	}
	return &Pools{
		maxConns:  maxConns,
		perTenant: min(maxPerTenant, maxConns),
		openDB:    openDB,
		closeDB:   func(db *DB) { _ = db.Close() },
		pools:     map[int64]*pool{},
	}
}

// Acquire returns the open database of the tenant with directory id key and
// a func that releases it, to be called once the caller is done with it. On
// a miss it calls open for the tenant's DSN and connects, outside the
// cache's lock; concurrent misses of one key open it once. With no room for
// another pool it closes the least recently used free one, or waits for one
// to be released until ctx ends, then returns ctx's error.
func (p *Pools) Acquire(ctx context.Context, key int64, open func() (Tenant, error)) (*DB, func(), error) {
	var victim *pool
	waited := false
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, nil, ErrPoolsClosed
		}
		if e := p.pools[key]; e != nil {
			if e.db != nil { // a hit
				e.refs++
				p.lru.MoveToFront(e.elem)
				p.hits++
				p.mu.Unlock()
				return e.db, p.releaser(e), nil
			}
			// Another caller is opening it: wait for that.
			p.mu.Unlock()
			select {
			case <-e.ready:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			p.mu.Lock()
			if e.err != nil && !e.retry {
				p.mu.Unlock()
				return nil, nil, e.err
			}
			if err := ctx.Err(); err != nil {
				p.mu.Unlock()
				return nil, nil, err
			}
			continue
		}
		if p.conns+p.perTenant <= p.maxConns {
			p.conns += p.perTenant
			break
		}
		if victim = p.leastRecentlyUsedFree(); victim != nil {
			p.drop(victim) // its room becomes the new pool's
			p.evictions++
			break
		}
		if !waited {
			p.waits++
			waited = true
		}
		if p.wake == nil {
			p.wake = make(chan struct{})
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		p.mu.Lock()
	}
	e := &pool{key: key, ready: make(chan struct{})}
	p.pools[key] = e
	p.misses++
	p.mu.Unlock()

	if victim != nil {
		p.closeDB(victim.db) // before the new pool connects, so the cap holds
	}
	db, err := p.open(ctx, e, open)
	if err != nil {
		return nil, nil, err
	}
	return db, p.releaser(e), nil
}

// errOpenPanicked settles a pool whose opening panicked, so that no one
// waits on it forever.
var errOpenPanicked = errors.New("tenant: opening a tenant database panicked")

// open opens e, the new pool of a miss, and settles it in the cache.
func (p *Pools) open(ctx context.Context, e *pool, open func() (Tenant, error)) (db *DB, err error) {
	opened := false
	defer func() {
		if !opened {
			db, err = nil, errOpenPanicked
		}
		db, err = p.settle(ctx, e, db, err)
	}()
	db, err = p.connect(ctx, open)
	opened = true
	return db, err
}

// connect asks open for the tenant and connects to its database.
func (p *Pools) connect(ctx context.Context, open func() (Tenant, error)) (*DB, error) {
	t, err := open()
	if err != nil {
		return nil, err
	}
	return p.openDB(ctx, t, p.perTenant)
}

// settle ends the opening of e with db or err: e becomes cached and held
// once, or leaves the cache and gives its room back. A pool evicted while
// it opened is closed, not handed out.
func (p *Pools) settle(ctx context.Context, e *pool, db *DB, err error) (*DB, error) {
	var discard *DB
	p.mu.Lock()
	if err == nil && e.gone {
		discard, db, err = db, nil, ErrEvicted
		if p.closed {
			err = ErrPoolsClosed
		}
	}
	if err == nil {
		e.db, e.refs = db, 1
		e.elem = p.lru.PushFront(e)
	} else {
		e.err, e.retry = err, ctx.Err() != nil
		p.drop(e)
		if discard == nil {
			p.free()
		}
	}
	close(e.ready)
	p.mu.Unlock()
	if discard != nil {
		p.closeDB(discard)
		p.mu.Lock()
		p.free()
		p.mu.Unlock()
	}
	return db, err
}

// releaser returns the func that releases one hold of e; calls after the
// first do nothing.
func (p *Pools) releaser(e *pool) func() {
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		p.mu.Lock()
		e.refs--
		if e.refs > 0 {
			p.mu.Unlock()
			return
		}
		if e.gone {
			p.mu.Unlock()
			p.closeAndFree(e)
			return
		}
		p.lru.MoveToFront(e.elem)
		p.broadcast() // a free pool for a waiting miss to close
		p.mu.Unlock()
	}
}

// Evict puts the tenant's pool out of the cache, before its database is
// dropped: a free pool is closed before Evict returns; a held one is closed
// on its last release; neither is handed out again. A pool being opened is
// not handed out: its Acquire returns ErrEvicted.
func (p *Pools) Evict(key int64) {
	p.mu.Lock()
	e := p.pools[key]
	if e == nil {
		p.mu.Unlock()
		return
	}
	p.drop(e)
	p.evictions++
	free := e.db != nil && e.refs == 0
	p.mu.Unlock()
	if free {
		p.closeAndFree(e)
	}
}

// Close closes every pool nobody holds; each held one closes on its last
// release. Acquire then returns ErrPoolsClosed.
func (p *Pools) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var free []*pool
	for _, e := range p.pools {
		p.drop(e)
		if e.db != nil && e.refs == 0 {
			free = append(free, e)
		}
	}
	p.broadcast() // waiting Acquires return ErrPoolsClosed
	p.mu.Unlock()
	for _, e := range free {
		p.closeAndFree(e)
	}
}

// Stats returns a snapshot of the cache.
func (p *Pools) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := PoolStats{
		Open: len(p.pools), Conns: p.conns, MaxConns: p.maxConns,
		Hits: p.hits, Misses: p.misses, Evictions: p.evictions, Waits: p.waits,
	}
	for _, e := range p.pools {
		if e.refs > 0 {
			s.Held++
		}
	}
	return s
}

// leastRecentlyUsedFree returns the least recently used cached pool that
// nobody holds, or nil. The caller holds p.mu.
func (p *Pools) leastRecentlyUsedFree() *pool {
	for el := p.lru.Back(); el != nil; el = el.Prev() {
		if e := el.Value.(*pool); e.refs == 0 {
			return e
		}
	}
	return nil
}

// drop takes e out of the cache; its room stays taken until it is closed.
// The caller holds p.mu.
func (p *Pools) drop(e *pool) {
	if p.pools[e.key] == e {
		delete(p.pools, e.key)
	}
	if e.elem != nil {
		p.lru.Remove(e.elem)
		e.elem = nil
	}
	e.gone = true
}

// closeAndFree closes e, which is out of the cache and free, then gives its
// room back. The caller does not hold p.mu.
func (p *Pools) closeAndFree(e *pool) {
	p.closeDB(e.db)
	p.mu.Lock()
	p.free()
	p.mu.Unlock()
}

// free gives one closed pool's room back. The caller holds p.mu.
func (p *Pools) free() {
	p.conns -= p.perTenant
	p.broadcast()
}

// broadcast wakes every Acquire waiting for room. The caller holds p.mu.
func (p *Pools) broadcast() {
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
}

// openDB opens t's database with a pool of at most conns connections and
// checks that it answers. A DSN postgres://… or postgresql://… is a
// PostgreSQL database (a server's or Neon's); any other is a SQLite file,
// which must exist.
func openDB(ctx context.Context, t Tenant, conns int) (*DB, error) {
	var db *DB
	switch {
	case strings.HasPrefix(t.DSN, "postgres://"), strings.HasPrefix(t.DSN, "postgresql://"):
		cfg, err := pgx.ParseConfig(t.DSN) // its errors hide the password
		if err != nil {
			return nil, fmt.Errorf("tenant: %s: %w", t.Name, err)
		}
		db = &DB{DB: bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New()), Engine: EnginePostgres}
	case t.DSN != "":
		sqldb, err := sql.Open(sqliteshim.ShimName, sqliteDSN(t.DSN))
		if err != nil {
			return nil, fmt.Errorf("tenant: open %s: %w", t.Name, err)
		}
		db = &DB{DB: bun.NewDB(sqldb, sqlitedialect.New()), Engine: EngineSQLite}
	default:
		return nil, fmt.Errorf("tenant: %s has no DSN", t.Name)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(connMaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("tenant: connect to %s: %w", t.Name, err)
	}
	return db, nil
}

// sqliteDSN is the driver DSN of the SQLite file at path, with the pragmas
// the control plane uses. mode=rw opens only a file that exists, so a
// dropped tenant's file is never made again, empty.
func sqliteDSN(path string) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped + "?mode=rw&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}
