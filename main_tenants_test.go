package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/testrig/testdb"
)

// tenantLines parses `silo tenants list`: its header, then a row per tenant
// as fields by e-mail.
func tenantLines(t *testing.T, stdout string) map[string][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "EMAIL ENGINE LOCATION DATABASE STATUS SCHEMA CREATED" {
		t.Fatalf("silo tenants list: got header %q, want EMAIL ENGINE LOCATION DATABASE STATUS SCHEMA CREATED", lines[0])
	}
	out := map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 8 { // CREATED is a date and a time
			t.Fatalf("silo tenants list: got line %q, want 7 columns", l)
		}
		out[f[0]] = f
	}
	return out
}

// checkTenantList checks that `silo tenants list` shows exactly the users
// of store, each with engine, location, database, ready and version.
func checkTenantList(t *testing.T, env map[string]string, store *models.Store, engine, location, version string) {
	t.Helper()
	stdout, _ := mustSilo(t, 0, env, "tenants", "list")
	got := tenantLines(t, stdout)
	rows, _, err := store.Tenants(t.Context(), models.TenantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) || len(rows) == 0 {
		t.Fatalf("silo tenants list: got %d tenants, want %d:\n%s", len(got), len(rows), stdout)
	}
	for _, v := range rows {
		want := []string{v.User.Email, engine, location, v.Name, "ready", version}
		f := got[v.User.Email]
		if f == nil || strings.Join(f[:6], " ") != strings.Join(want, " ") {
			t.Errorf("silo tenants list: got %v for %s, want %v", f, v.User.Email, want)
		}
	}
}

// tenantSchema is the newest tenant schema version on engine.
func tenantSchema(t *testing.T, engine string) string {
	t.Helper()
	m, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/"+engine)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return m.Latest()
}

// TestTenantsListAndMigrateCLI provisions SQLite tenants with silo token,
// lists them, and migrates an up-to-date directory.
func TestTenantsListAndMigrateCLI(t *testing.T) {
	t.Parallel()
	env := cliEnv(t, nil)
	mustSilo(t, 0, env, "migrate")
	store := testdb.Open(t, "sqlite://"+filepath.Join(env["DATA_DIR"], "silo.db"))
	stdout, _ := mustSilo(t, 0, env, "tenants", "list")
	if got := tenantLines(t, stdout); len(got) != 0 {
		t.Errorf("silo tenants list with no tenants: got %v, want the header alone", got)
	}
	for _, email := range []string{"a@x.com", "b@x.com"} {
		mustSilo(t, 0, env, "token", email)
	}
	latest := tenantSchema(t, "sqlite")
	checkTenantList(t, env, store, "sqlite", filepath.Join(env["DATA_DIR"], "tenants"), latest)

	stdout, _ = mustSilo(t, 0, env, "tenants", "migrate")
	for _, want := range []string{"migrating 0 tenant database(s) to " + latest, ": 0 migrated, 0 failed, of 0"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("silo tenants migrate with every tenant current: got stdout %q, want %q", stdout, want)
		}
	}
	stdout, _ = mustSilo(t, 0, env, "tenants", "migrate", "--concurrency", "1")
	if !strings.Contains(stdout, ": 0 migrated, 0 failed, of 0") {
		t.Errorf("silo tenants migrate --concurrency 1: got stdout %q, want 0 migrated", stdout)
	}
}

func TestTenantsCLIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantCode int
		want     string // in stdout or stderr
	}{
		{[]string{"tenants", "migrate", "--concurrency", "0"}, 1, "N at least 1"},
		{[]string{"tenants", "migrate", "--concurrency", "-3"}, 1, "N at least 1"},
		{[]string{"tenants", "migrate", "--concurrency", "x"}, 1, `invalid value "x" for flag -concurrency`},
		{[]string{"tenants", "migrate", "--concurrency"}, 1, "flag needs an argument"},
		{[]string{"tenants", "migrate", "now"}, 1, "usage: silo tenants migrate"},
		{[]string{"tenants", "migrate", "--frobnicate"}, 1, "flag provided but not defined"},
		{[]string{"tenants"}, 2, "usage: silo"},
		{[]string{"tenants", "list", "all"}, 2, "usage: silo"},
		{[]string{"tenants", "drop"}, 2, "usage: silo"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			env := cliEnv(t, nil)
			mustSilo(t, 0, env, "migrate")
			code, stdout, stderr := silo(t.Context(), env, tt.args...)
			if code != tt.wantCode || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("silo %s: got exit code %d, stdout %q, stderr %q; want %d and %q",
					strings.Join(tt.args, " "), code, stdout, stderr, tt.wantCode, tt.want)
			}
			if strings.Contains(stdout, "migrating") {
				t.Errorf("silo %s: got stdout %q, want no run started", strings.Join(tt.args, " "), stdout)
			}
		})
	}
}

// TestTenantsMigrateCLIFailure makes PostgreSQL tenants with silo token,
// puts them behind the newest schema and breaks one: silo tenants migrate
// exits non-zero naming it, and once it is fixed migrates it alone.
func TestTenantsMigrateCLIFailure(t *testing.T) {
	t.Parallel()
	server := testdb.ServerURL(t, config.Postgres)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := cliEnv(t, map[string]string{
		"TENANT_DATABASE_URL": server,
		"SECRET_KEY":          base64.StdEncoding.EncodeToString(key),
	})
	ctx := t.Context()
	mustSilo(t, 0, env, "migrate")
	store := testdb.Open(t, "sqlite://"+filepath.Join(env["DATA_DIR"], "silo.db"))
	admin := func(t *testing.T, db string) *pgx.Conn {
		t.Helper()
		cfg, err := pgx.ParseConfig(server)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Database = db
		conn, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	t.Cleanup(func() { // before the store closes: the tenants of its users
		rows, _, err := store.Tenants(context.Background(), models.TenantFilter{})
		if err != nil {
			t.Error(err)
			return
		}
		conn := admin(t, "postgres")
		for _, v := range rows {
			ident := pgx.Identifier{v.Name}.Sanitize()
			for _, stmt := range []string{"DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)", "DROP ROLE IF EXISTS " + ident} {
				if _, err := conn.Exec(context.Background(), stmt); err != nil {
					t.Error(err)
				}
			}
		}
	})

	for _, email := range []string{"a@x.com", "b@x.com", "c@x.com"} {
		mustSilo(t, 0, env, "token", email)
	}
	latest := tenantSchema(t, "postgres")
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	location := u.Host // host:port, as silo names a server
	if u.Port() == "" {
		location += ":5432"
	}
	checkTenantList(t, env, store, "postgres", location, latest)

	// A release puts every tenant behind; one of them cannot migrate: its
	// database takes no connections.
	if _, err := store.DB.ExecContext(ctx, "UPDATE vector_databases SET schema_version = '20000101000000'"); err != nil {
		t.Fatal(err)
	}
	b, err := store.UserByEmail(ctx, "b@x.com")
	if err != nil {
		t.Fatal(err)
	}
	vb, err := store.VectorDatabaseByUser(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	broken := vb.Name
	if _, err := admin(t, "postgres").Exec(ctx, "ALTER DATABASE "+broken+" WITH ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}

	stdout, stderr := mustSilo(t, 1, env, "tenants", "migrate", "--concurrency", "2")
	for _, want := range []string{"migrating 3 tenant database(s) to " + latest + ", 2 at a time", "FAIL b@x.com (" + broken + "): ", ": 2 migrated, 1 failed, of 3"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("silo tenants migrate with a broken tenant: got stdout %q, want %q", stdout, want)
		}
	}
	if strings.Count(stdout, "FAIL ") != 1 {
		t.Errorf("silo tenants migrate with a broken tenant: got stdout %q, want one FAIL line", stdout)
	}
	if !strings.Contains(stderr, "some tenant databases did not migrate: 1 of 3") {
		t.Errorf("silo tenants migrate with a broken tenant: got stderr %q, want it to say 1 of 3 did not migrate", stderr)
	}

	// Fixed, the next run migrates that tenant alone; the one after, none.
	if _, err := admin(t, "postgres").Exec(ctx, "ALTER DATABASE "+broken+" WITH ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	stdout, _ = mustSilo(t, 0, env, "tenants", "migrate")
	if !strings.Contains(stdout, ": 1 migrated, 0 failed, of 1") || strings.Contains(stdout, "FAIL") {
		t.Errorf("silo tenants migrate after the fix: got stdout %q, want 1 migrated, 0 failed, of 1", stdout)
	}
	stdout, _ = mustSilo(t, 0, env, "tenants", "migrate")
	if !strings.Contains(stdout, ": 0 migrated, 0 failed, of 0") {
		t.Errorf("silo tenants migrate with every tenant current: got stdout %q, want 0 migrated", stdout)
	}
	checkTenantList(t, env, store, "postgres", location, latest)
}
