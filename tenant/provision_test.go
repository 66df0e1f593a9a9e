package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/testrig/testdb"
)

// stepRecorder is an afterStep hook that records the steps it sees and
// fails the first time it sees fail.
type stepRecorder struct {
	mu     sync.Mutex
	fail   string
	failed bool
	seen   []string
}

func (s *stepRecorder) hook(step string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, step)
	if step == s.fail && !s.failed {
		s.failed = true
		return fmt.Errorf("after step %s: %w", step, errInjected)
	}
	return nil
}

// take returns the steps seen since the last take.
func (s *stepRecorder) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.seen
	s.seen = nil
	return out
}

// TestEnsureFailsAfterEachStep fails provisioning once after each of its
// steps and checks that the next Ensure finishes the job, with nothing made
// twice and nothing left over.
func TestEnsureFailsAfterEachStep(t *testing.T) {
	tests := []struct {
		step string
		// The steps the failing Ensure and the next one pass.
		firstSteps, secondSteps []string
		// The row and the database the failure leaves.
		wantStatus   string
		wantError    bool // the row records the failure
		wantDatabase bool
		// Create calls in all: a retry after the database was made adopts it.
		wantCreates int64
	}{
		{"row", []string{"row"}, []string{"database", "ready"}, models.TenantProvisioning, false, false, 1},
		{"database", []string{"row", "database"}, []string{"database", "ready"}, models.TenantProvisioning, true, true, 2},
		{"ready", []string{"row", "database", "ready"}, nil, models.TenantReady, false, true, 1},
	}
	for _, engine := range rigEngines {
		for _, tt := range tests {
			t.Run(engine+"/"+tt.step, func(t *testing.T) {
				t.Parallel()
				r := newRig(t, engine)
				u := r.user(t, "first@example.com")
				rec := &stepRecorder{fail: tt.step}
				r.mgr.afterStep = rec.hook
				ctx := context.Background()

				if _, err := r.mgr.Ensure(ctx, u); !errors.Is(err, errInjected) {
					t.Fatalf("Ensure failing after step %s: got %v, want the injected failure", tt.step, err)
				}
				if got := rec.take(); !slices.Equal(got, tt.firstSteps) {
					t.Errorf("steps of the failing Ensure: got %v, want %v", got, tt.firstSteps)
				}
				v := r.row(t, u)
				if v == nil {
					t.Fatal("no directory row after the failure")
				}
				if v.Status != tt.wantStatus || (v.Error != "") != tt.wantError || v.LeaseUntil != nil {
					t.Errorf("row after the failure: got status %q, error %q, lease %v; want %q, an error: %v, no lease",
						v.Status, v.Error, v.LeaseUntil, tt.wantStatus, tt.wantError)
				}
				if tt.wantError && !strings.Contains(v.Error, errInjected.Error()) {
					t.Errorf("row error: got %q, want it to say %q", v.Error, errInjected)
				}
				var wantDBs []string
				if tt.wantDatabase {
					wantDBs = []string{nameFor(u)}
				}
				if got := r.databases(t); !slices.Equal(got, wantDBs) {
					t.Errorf("tenant databases after the failure: got %v, want %v", got, wantDBs)
				}

				v = r.ensure(t, u)
				if got := rec.take(); !slices.Equal(got, tt.secondSteps) {
					t.Errorf("steps of the second Ensure: got %v, want %v", got, tt.secondSteps)
				}
				if v.Status != models.TenantReady {
					t.Errorf("second Ensure: got status %q, want ready", v.Status)
				}
				if n := r.prov.created.Load(); n != tt.wantCreates {
					t.Errorf("Create calls that succeeded: got %d, want %d", n, tt.wantCreates)
				}
				r.checkReady(t, u)
				checkUsable(t, r, v)
			})
		}
	}
}

// checkUsable writes to and reads from the tenant's database through the
// manager, with the credentials the row holds.
func checkUsable(t testing.TB, r *rig, v *models.VectorDatabase) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, release, err := r.mgr.DB(ctx, v)
	if err != nil {
		t.Fatalf("open the tenant database: %v", err)
	}
	defer release()
	if _, err := db.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES (?, ?)", "probe", v.ExternalID); err != nil {
		t.Fatalf("write to the tenant database: %v", err)
	}
	var got string
	if err := db.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", "probe").Scan(&got); err != nil || got != v.ExternalID {
		t.Fatalf("read back from the tenant database: got %q, %v; want %q", got, err, v.ExternalID)
	}
}

// TestProvisionerFailureIsRetried makes the provisioner fail: the row keeps
// the error, and Reconcile or the next Ensure finishes it.
func TestProvisionerFailureIsRetried(t *testing.T) {
	for _, engine := range rigEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, engine)
			ctx := context.Background()
			checkFailed := func(u *models.User) {
				t.Helper()
				v := r.row(t, u)
				if v == nil || v.Status != models.TenantProvisioning || !strings.Contains(v.Error, errInjected.Error()) || v.LeaseUntil != nil {
					t.Fatalf("row after a failed Create: got %+v, want provisioning, the error, no lease", v)
				}
			}

			// Reconcile retries a failed row, and reports what it could not
			// finish; a later Reconcile finishes it.
			a := r.user(t, "a@example.com")
			r.prov.failCreates.Store(2)
			if _, err := r.mgr.Ensure(ctx, a); !errors.Is(err, errInjected) {
				t.Fatalf("Ensure with a failing provisioner: got %v, want the injected failure", err)
			}
			checkFailed(a)
			if got := r.databases(t); len(got) != 0 {
				t.Errorf("tenant databases after a failed Create: got %v, want none", got)
			}
			if n, err := r.mgr.Reconcile(ctx); !errors.Is(err, errInjected) || n != 0 {
				t.Fatalf("Reconcile while the provisioner still fails: got %d, %v; want 0, the injected failure", n, err)
			}
			checkFailed(a)
			if n, err := r.mgr.Reconcile(ctx); err != nil || n != 0 {
				t.Fatalf("Reconcile: got %d, %v; want 0, nil", n, err)
			}
			if v := r.row(t, a); v.Status != models.TenantReady || v.Error != "" {
				t.Errorf("row after Reconcile: got status %q, error %q; want ready, none", v.Status, v.Error)
			}

			// The next Ensure retries a failed row.
			b := r.user(t, "b@example.com")
			r.prov.failCreates.Store(1)
			if _, err := r.mgr.Ensure(ctx, b); !errors.Is(err, errInjected) {
				t.Fatalf("Ensure with a failing provisioner: got %v, want the injected failure", err)
			}
			checkFailed(b)
			v := r.ensure(t, b)
			if v.Status != models.TenantReady || v.Error != "" {
				t.Errorf("second Ensure: got status %q, error %q; want ready, none", v.Status, v.Error)
			}
			if got, want := r.prov.creates.Load(), int64(5); got != want {
				t.Errorf("Create calls: got %d, want %d", got, want)
			}
			if got, want := r.prov.created.Load(), int64(2); got != want {
				t.Errorf("Create calls that made a database: got %d, want %d", got, want)
			}
			r.checkReady(t, a, b)
		})
	}
}

// TestEnsureConcurrentFirstSignIns signs one new user in ten times at once:
// one database is made, and every sign-in gets it.
func TestEnsureConcurrentFirstSignIns(t *testing.T) {
	for _, engine := range rigEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, engine)
			u := r.user(t, "eager@example.com")
			const n = 10
			ids := make([]int64, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					<-start
					v, err := r.mgr.Ensure(ctx, u)
					errs[i] = err
					if err == nil {
						ids[i] = v.ID
						if v.Status != models.TenantReady {
							errs[i] = fmt.Errorf("got status %q, want ready", v.Status)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Ensure %d: %v", i, err)
				} else if ids[i] != ids[0] {
					t.Errorf("Ensure %d: got row %d, want %d like the first", i, ids[i], ids[0])
				}
			}
			if c, made := r.prov.creates.Load(), r.prov.created.Load(); c != 1 || made != 1 {
				t.Errorf("Create calls: got %d (%d made a database), want 1 (1)", c, made)
			}
			r.checkReady(t, u)
		})
	}
}

// TestEnsureConcurrentSignUps signs twenty new users up at once: twenty
// ready rows and databases; on PostgreSQL with two servers, ten on each.
func TestEnsureConcurrentSignUps(t *testing.T) {
	for _, engine := range rigEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			cfg := rigConfig{}
			if engine == enginePostgres {
				// The same server under two spellings counts as two servers.
				server := testdb.ServerURL(t, config.Postgres)
				other, err := url.Parse(server)
				if err != nil {
					t.Fatal(err)
				}
				host := "localhost"
				if other.Hostname() == "localhost" {
					host = "127.0.0.1"
				}
				port := other.Port()
				if port == "" {
					port = "5432"
				}
				other.Host = host + ":" + port
				cfg.servers = []string{server, other.String()}
			}
			r := newRigWith(t, engine, cfg)
			if engine == enginePostgres && len(r.real.Locations()) != 2 {
				t.Fatalf("locations: got %v, want two", r.real.Locations())
			}
			const n = 20
			users := make([]*models.User, n)
			for i := range users {
				users[i] = r.user(t, fmt.Sprintf("user%02d@example.com", i))
			}
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, u := range users {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					<-start
					_, errs[i] = r.mgr.Ensure(ctx, u)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Ensure of user %d: %v", i, err)
				}
			}
			if got := r.prov.created.Load(); got != n {
				t.Errorf("Create calls that made a database: got %d, want %d", got, n)
			}
			r.checkReady(t, users...)

			counts, err := r.store.TenantCounts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			locs := r.real.Locations()
			total := 0
			for _, l := range locs {
				total += counts[l]
			}
			if total != n {
				t.Errorf("tenants placed on %v: got %v, want %d in all", locs, counts, n)
			}
			if len(locs) == 2 {
				if d := counts[locs[0]] - counts[locs[1]]; d < -1 || d > 1 {
					t.Errorf("placement of %d concurrent sign-ups: got %v, want %d on each (±1)", n, counts, n/2)
				}
			}
		})
	}
}

// pgCode is the SQLSTATE of a PostgreSQL error, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

const pgInsufficientPrivilege = "42501"

// TestTenantRoleIsolation checks what a tenant's own role may do: its own
// database's tables, and nothing of another tenant's or of the schema.
func TestTenantRoleIsolation(t *testing.T) {
	t.Parallel()
	r := newRig(t, enginePostgres)
	ctx := context.Background()
	a, b := r.user(t, "a@example.com"), r.user(t, "b@example.com")
	va, vb := r.ensure(t, a), r.ensure(t, b)
	ta, err := r.mgr.tenant(va, nameFor(a))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := r.mgr.tenant(vb, nameFor(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range []Tenant{ta, tb} {
		if tn.Password == "" || !strings.Contains(tn.DSN, tn.Name+":"+tn.Password+"@") {
			t.Fatalf("sealed credentials of %s: got a DSN without its own role and password", tn.Name)
		}
	}

	// Another tenant's database, the template: refused at connection.
	for _, c := range []struct{ who, dsn string }{
		{"A's role to B's database", withDatabase(t, ta.DSN, tb.Name)},
		{"B's role to A's database", withDatabase(t, tb.DSN, ta.Name)},
		{"A's role to the template", withDatabase(t, ta.DSN, pgTemplate)},
	} {
		conn, err := pgx.Connect(ctx, c.dsn)
		if err == nil {
			conn.Close(ctx)
			t.Errorf("%s: connected, want permission denied", c.who)
			continue
		}
		if code := pgCode(err); code != pgInsufficientPrivilege {
			t.Errorf("%s: got %v (SQLSTATE %q), want SQLSTATE %s", c.who, err, code, pgInsufficientPrivilege)
		}
	}

	// Its own database: the tables, no DDL, not the migration history.
	conn, err := pgx.Connect(ctx, ta.DSN)
	if err != nil {
		t.Fatalf("A's role to A's database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO meta (key, value) VALUES ('embedding_model', 'test')"); err != nil {
		t.Errorf("insert into meta: %v", err)
	}
	var value string
	if err := conn.QueryRow(ctx, "SELECT value FROM meta WHERE key = 'embedding_model'").Scan(&value); err != nil || value != "test" {
		t.Errorf("select from meta: got %q, %v; want test", value, err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM meta"); err != nil {
		t.Errorf("delete from meta: %v", err)
	}
	for _, stmt := range []string{
		"CREATE TABLE intruder (id int)",
		"CREATE SCHEMA intruder",
		"ALTER TABLE meta ADD COLUMN intruder int",
		"DROP TABLE meta",
		"SELECT * FROM atlas_schema_revisions.atlas_schema_revisions",
		"CREATE ROLE intruder",
		"CREATE DATABASE intruder",
	} {
		_, err := conn.Exec(ctx, stmt)
		if code := pgCode(err); code != pgInsufficientPrivilege {
			t.Errorf("%s as A's role: got %v (SQLSTATE %q), want SQLSTATE %s", stmt, err, code, pgInsufficientPrivilege)
		}
	}
	var super, createDB, createRole, bypassRLS bool
	err = conn.QueryRow(ctx, "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = current_user").
		Scan(&super, &createDB, &createRole, &bypassRLS)
	if err != nil || super || createDB || createRole || bypassRLS {
		t.Errorf("A's role attributes: got super %v, createdb %v, createrole %v, bypassrls %v, %v; want none", super, createDB, createRole, bypassRLS, err)
	}
	var member bool
	if err := conn.QueryRow(ctx, "SELECT pg_has_role(current_user, $1, 'MEMBER')", tb.Name).Scan(&member); err != nil || member {
		t.Errorf("A's role a member of B's: got %v, %v; want false", member, err)
	}

	// The server's maintenance database is open to every role by
	// PostgreSQL's default (CONNECT to PUBLIC): a hardening item, reported
	// rather than asserted.
	if conn, err := pgx.Connect(ctx, withDatabase(t, ta.DSN, "postgres")); err == nil {
		conn.Close(ctx)
		t.Logf("note: a tenant role can connect to the postgres maintenance database (PUBLIC has CONNECT there)")
	}
}

// TestDeleteLeavesNothing deletes a tenant that has tokens, documents and
// open connections: no database, role, file or row is left, and another
// tenant is untouched.
func TestDeleteLeavesNothing(t *testing.T) {
	for _, engine := range rigEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, engine)
			ctx := context.Background()
			u, other := r.user(t, "leaving@example.com"), r.user(t, "staying@example.com")
			v := r.ensure(t, u)
			r.ensure(t, other)
			if _, err := r.store.CreateAPIToken(ctx, u.ID, "test"); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			doc := &models.Document{PublicID: "doc" + randomName(), UserID: u.ID, Title: "t", FileName: "t.pdf",
				Status: models.DocumentReady, CreatedAt: now, UpdatedAt: now}
			if _, err := r.store.DB.NewInsert().Model(doc).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			checkUsable(t, r, v) // leaves the tenant's pool open in the cache
			if engine == engineSQLite {
				// What a crashed writer leaves beside the file.
				for _, suffix := range []string{"-wal", "-shm", "-journal"} {
					path := sqliteFile(Tenant{Name: nameFor(u), Location: v.Location}) + suffix
					if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
						if err := os.WriteFile(path, nil, 0o600); err != nil {
							t.Fatal(err)
						}
					}
				}
			}

			if err := r.mgr.Delete(ctx, u); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			checkGone(t, r, u)
			if s := r.mgr.pools.Stats(); s.Open != 0 || s.Conns != 0 {
				t.Errorf("pools after Delete: got %+v, want the deleted tenant's closed", s)
			}
			r.checkReady(t, other)
		})
	}
}

// checkGone checks that nothing of u is left: no database, role or file, no
// user, directory row, token or document.
func checkGone(t testing.TB, r *rig, u *models.User) {
	t.Helper()
	ctx := context.Background()
	for _, table := range []struct {
		model  any
		column string
	}{
		{(*models.User)(nil), "id"},
		{(*models.VectorDatabase)(nil), "user_id"},
		{(*models.APIToken)(nil), "user_id"},
		{(*models.Document)(nil), "user_id"},
	} {
		n, err := r.store.DB.NewSelect().Model(table.model).Where("? = ?", bun.Ident(table.column), u.ID).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%T rows of the deleted user: got %d, want 0", table.model, n)
		}
	}
	name := nameFor(u)
	if r.engine == enginePostgres {
		dbs, roles := r.pgExisting(t, []string{name})
		if len(dbs) != 0 || len(roles) != 0 {
			t.Errorf("after Delete: got databases %v and roles %v, want none", dbs, roles)
		}
		return
	}
	for _, f := range r.files(t) {
		if strings.HasPrefix(f, name) {
			t.Errorf("after Delete: got file %s, want none of %s", f, name)
		}
	}
}

// TestDeleteRetriedByReconcile makes the drop fail: the row stays deleting,
// the user stays until Reconcile finishes the deletion.
func TestDeleteRetriedByReconcile(t *testing.T) {
	for _, engine := range rigEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, engine)
			ctx := context.Background()
			u := r.user(t, "leaving@example.com")
			r.ensure(t, u)
			r.prov.failDrops.Store(1)
			if err := r.mgr.Delete(ctx, u); !errors.Is(err, errInjected) {
				t.Fatalf("Delete with a failing drop: got %v, want the injected failure", err)
			}
			if v := r.row(t, u); v == nil || v.Status != models.TenantDeleting {
				t.Fatalf("row after a failed drop: got %+v, want deleting", v)
			}
			if _, err := r.store.User(ctx, u.ID); err != nil {
				t.Errorf("user after a failed drop: %v, want them still there", err)
			}
			if _, err := r.mgr.Ensure(ctx, u); err == nil || !strings.Contains(err.Error(), "being deleted") {
				t.Errorf("Ensure of a tenant being deleted: got %v, want an error saying so", err)
			}
			if n, err := r.mgr.Reconcile(ctx); err != nil || n != 0 {
				t.Fatalf("Reconcile: got %d, %v; want 0, nil", n, err)
			}
			checkGone(t, r, u)
			r.checkReady(t)
		})
	}
}

// TestNewPostgresConcurrently starts several provisioners on one server at
// once, as several silo instances starting together do, and has them all
// bring the shared template up to date a few times more: none may fail for
// the others.
func TestNewPostgresConcurrently(t *testing.T) {
	t.Parallel()
	server := testdb.ServerURL(t, config.Postgres)
	const n, again = 8, 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		m, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/postgres")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			<-start
			pg, err := NewPostgres(ctx, []string{server}, m)
			if err != nil {
				errs[i] = err
				return
			}
			defer pg.Close()
			for range again {
				if err := pg.MigrateTemplate(ctx); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("provisioner %d of %d at once: %v", i, n, err)
		}
	}
}
