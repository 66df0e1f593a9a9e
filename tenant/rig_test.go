package tenant

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/testrig/testdb"
)

// The tests of this package use silo/testrig/testdb for control planes
// (silo/testrig imports this package, a cycle); this file adds a rig for the
// Manager's tests.
//
// PostgreSQL tenants are made on the one server of TEST_POSTGRES_URL, which
// other tests (of this and other packages) use at the same time. The
// template database and the group role are shared by design; every tenant
// database is named after a random user id, so each test only ever looks at,
// drops and reconciles the names it made itself.

// controlPlane opens a fresh, migrated SQLite control plane, closed when
// the test ends.
func controlPlane(t testing.TB) *models.Store {
	t.Helper()
	return testdb.ControlPlane(t, config.SQLite)
}

// controlPlaneAt opens the SQLite control plane at path, migrating it when
// migrate is set; it is closed when the test ends.
func controlPlaneAt(t testing.TB, path string, migrate bool) *models.Store {
	t.Helper()
	ctx := context.Background()
	store, err := models.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if !migrate {
		return store
	}
	testdb.Migrate(t, store)
	return store
}

// Engines of the rig.
const (
	enginePostgres = "postgres"
	engineSQLite   = "sqlite"
)

// rigEngines are the engines the engine-wide tests run on.
var rigEngines = []string{engineSQLite, enginePostgres}

// rig is a Manager on a fresh SQLite control plane with a real provisioner,
// seen through a testProv that scopes it to the test.
type rig struct {
	engine string
	store  *models.Store
	real   Provisioner // the real provisioner
	prov   *testProv   // what mgr uses
	mgr    *Manager
	key    []byte  // the sealer's key; nil for SQLite
	sealer *Sealer // nil for SQLite, as in production without SECRET_KEY
	server string  // postgres: the server, as a role that may create databases
	dir    string  // sqlite: the tenants directory

	mu      sync.Mutex
	names   map[string]bool // the tenant database names this test may make or meet
	ignored map[string]bool // sqlite: files in the tenants directory that are not silo's
}

// rigConfig changes what newRig makes.
type rigConfig struct {
	storePath string   // the control plane's file; "" makes a fresh one
	servers   []string // postgres: the servers; nil is TEST_POSTGRES_URL
}

func newRig(t testing.TB, engine string) *rig {
	t.Helper()
	return newRigWith(t, engine, rigConfig{})
}

func newRigWith(t testing.TB, engine string, cfg rigConfig) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{engine: engine, names: map[string]bool{}, ignored: map[string]bool{}}
	if engine == enginePostgres {
		r.server = testdb.ServerURL(t, config.Postgres) // skips before anything is made
	}
	if cfg.storePath == "" {
		r.store = controlPlane(t)
	} else {
		r.store = controlPlaneAt(t, cfg.storePath, true)
	}
	switch engine {
	case enginePostgres:
		m, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/postgres")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		servers := cfg.servers
		if servers == nil {
			servers = []string{r.server}
		}
		pg, err := NewPostgres(ctx, servers, m)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pg.Close)
		t.Cleanup(func() { r.dropAll(t) }) // before pg.Close: cleanups run last first
		r.real = pg
		r.key = make([]byte, 32)
		_, _ = rand.Read(r.key)
		if r.sealer, err = NewSealer(r.key); err != nil {
			t.Fatal(err)
		}
	case engineSQLite:
		m, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/sqlite")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		r.dir = t.TempDir()
		sq, err := NewSQLite(ctx, r.dir, m)
		if err != nil {
			t.Fatal(err)
		}
		r.real = sq
	default:
		t.Fatalf("no engine %q", engine)
	}
	r.prov = &testProv{Provisioner: r.real, r: r}
	r.mgr = NewManager(r.store, r.prov, Options{Sealer: r.sealer})
	t.Cleanup(r.mgr.Close)
	return r
}

// own adds names to the tenant names this test makes or meets.
func (r *rig) own(names ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		r.names[n] = true
	}
}

func (r *rig) owns(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[name]
}

// ownNames are the names this test owns, sorted.
func (r *rig) ownNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.names))
	for n := range r.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// user signs a new user in; their tenant name becomes the test's.
func (r *rig) user(t testing.TB, email string) *models.User {
	t.Helper()
	u, err := r.store.SignIn(context.Background(), models.Profile{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	r.own(nameFor(u))
	return u
}

// ensure runs Ensure with a bounded wait and fails the test on an error.
func (r *rig) ensure(t testing.TB, u *models.User) *models.VectorDatabase {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := r.mgr.Ensure(ctx, u)
	if err != nil {
		t.Fatalf("Ensure(%s): %v", u.Email, err)
	}
	return v
}

// row is the user's directory row, or nil.
func (r *rig) row(t testing.TB, u *models.User) *models.VectorDatabase {
	t.Helper()
	v, err := r.store.VectorDatabaseByUser(context.Background(), u.ID)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// admin connects to database db on the server as the server's admin role.
func (r *rig) admin(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), withDatabase(t, r.server, db))
	if err != nil {
		t.Fatalf("connect to %s as the admin: %v", db, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// withDatabase is a PostgreSQL URL with another database.
func withDatabase(t testing.TB, server, db string) string {
	t.Helper()
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	return u.String()
}

// pgExisting returns which of names exist on the server as a database and
// as a role.
func (r *rig) pgExisting(t testing.TB, names []string) (dbs, roles []string) {
	t.Helper()
	conn := r.admin(t, "postgres")
	ctx := context.Background()
	query := func(q string) []string {
		rows, err := conn.Query(ctx, q, names)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return out
	}
	return query("SELECT datname FROM pg_database WHERE datname = ANY($1)"),
		query("SELECT rolname FROM pg_roles WHERE rolname = ANY($1)")
}

// files lists the tenants directory, leaving out the template.
func (r *rig) files(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), templateFile) {
			out = append(out, e.Name())
		}
	}
	return out
}

// databases are the tenant databases of the test's own names that exist:
// on PostgreSQL each must have its role and no role may be left without
// its database; on SQLite the directory may hold nothing else than their
// files.
func (r *rig) databases(t testing.TB) []string {
	t.Helper()
	if r.engine == enginePostgres {
		dbs, roles := r.pgExisting(t, r.ownNames())
		if !slices.Equal(dbs, roles) {
			t.Errorf("tenant databases %v and roles %v: want one role for each database", dbs, roles)
		}
		return dbs
	}
	var out []string
	for _, f := range r.files(t) {
		r.mu.Lock()
		ignored := r.ignored[f]
		r.mu.Unlock()
		if ignored {
			continue
		}
		name, ok := strings.CutSuffix(f, ".db")
		if !ok || !strings.HasPrefix(name, NamePrefix) {
			t.Errorf("tenants directory holds %s: want only tenant files", f)
			continue
		}
		out = append(out, name)
	}
	return out
}

// checkReady checks the whole state after provisioning: the control plane
// holds exactly users, each with one ready row at the newest schema that no
// worker holds; exactly their databases exist; and Reconcile finds nothing
// to do.
func (r *rig) checkReady(t testing.TB, users ...*models.User) {
	t.Helper()
	ctx := context.Background()
	n, err := r.store.DB.NewSelect().Model((*models.User)(nil)).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(n) != len(users) {
		t.Errorf("users: got %d, want %d", n, len(users))
	}
	rows, _, err := r.store.Tenants(ctx, models.TenantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(users) {
		t.Errorf("directory rows: got %d, want %d", len(rows), len(users))
	}
	var want []string
	byUser := map[int64]models.VectorDatabase{}
	for _, v := range rows {
		byUser[v.UserID] = v
	}
	for _, u := range users {
		want = append(want, nameFor(u))
		v, ok := byUser[u.ID]
		if !ok {
			t.Errorf("%s: no directory row", u.Email)
			continue
		}
		if v.Status != models.TenantReady || v.SchemaVersion != r.mgr.LatestSchema() || v.Error != "" || v.LeaseUntil != nil {
			t.Errorf("%s: got row status %q, schema %q, error %q, lease %v; want ready at %s, no error, no lease",
				u.Email, v.Status, v.SchemaVersion, v.Error, v.LeaseUntil, r.mgr.LatestSchema())
		}
		if v.Engine != r.engine || v.ExternalID != nameFor(u) || !slices.Contains(r.real.Locations(), v.Location) {
			t.Errorf("%s: got row %s %s at %s, want %s %s at one of %v", u.Email, v.Engine, v.ExternalID, v.Location, r.engine, nameFor(u), r.real.Locations())
		}
	}
	sort.Strings(want)
	if got := r.databases(t); !slices.Equal(got, want) {
		t.Errorf("tenant databases: got %v, want %v", got, want)
	}
	orphans, err := r.mgr.Reconcile(ctx)
	if err != nil || orphans != 0 {
		t.Errorf("Reconcile: got %d orphans, %v; want 0, nil", orphans, err)
	}
}

// dropAll drops every database and role of the test's names.
func (r *rig) dropAll(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, r.server)
	if err != nil {
		t.Errorf("clean up: %v", err)
		return
	}
	defer conn.Close(ctx)
	for _, n := range r.ownNames() {
		ident := pgx.Identifier{n}.Sanitize()
		for _, stmt := range []string{"DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)", "DROP ROLE IF EXISTS " + ident} {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				t.Errorf("clean up: %s: %v", stmt, err)
			}
		}
	}
}

// randomName is a random tenant-like name suffix.
func randomName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// errInjected is the failure testProv injects.
var errInjected = errors.New("injected failure")

// testProv is the rig's real provisioner scoped to one test: of the tenant
// databases Existing lists, it keeps only the test's own names, so
// Reconcile never sees (and drops) those of other tests on the shared
// server; anything else the real Existing would list passes through. It counts Create
// calls, can make some fail, and can stand in another migrator. It hides
// the real provisioner's MigrateTemplate, so a Migrate never changes the
// shared template.
type testProv struct {
	Provisioner
	r *rig

	migrator    *schema.Migrator // when set, Migrator returns it
	failCreates atomic.Int64     // this many next Create calls fail before doing anything
	failDrops   atomic.Int64     // this many next Drop calls fail before doing anything
	creates     atomic.Int64     // Create calls
	created     atomic.Int64     // Create calls that succeeded
}

// take reports whether one of the failures counted in n is due, counting it.
func take(n *atomic.Int64) bool {
	for {
		v := n.Load()
		if v <= 0 {
			return false
		}
		if n.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

func (p *testProv) Create(ctx context.Context, t *Tenant) (string, error) {
	p.creates.Add(1)
	if take(&p.failCreates) {
		return "", fmt.Errorf("create %s: %w", t.Name, errInjected)
	}
	version, err := p.Provisioner.Create(ctx, t)
	if err == nil {
		p.created.Add(1)
	}
	return version, err
}

func (p *testProv) Drop(ctx context.Context, t Tenant) error {
	if take(&p.failDrops) {
		return fmt.Errorf("drop %s: %w", t.Name, errInjected)
	}
	return p.Provisioner.Drop(ctx, t)
}

func (p *testProv) Existing(ctx context.Context) ([]Tenant, error) {
	all, err := p.Provisioner.Existing(ctx)
	if err != nil {
		return nil, err
	}
	var out []Tenant
	for _, t := range all {
		if p.r.owns(t.Name) || !strings.HasPrefix(t.Name, NamePrefix) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (p *testProv) Migrator() *schema.Migrator {
	if p.migrator != nil {
		return p.migrator
	}
	return p.Provisioner.Migrator()
}

// nameFor is the tenant name a Manager without an installation id gives u.
func nameFor(u *models.User) string { return (&Manager{}).nameFor(u) }
