package tenant_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/tenant"
	"silo/testrig"
	"silo/testrig/testdb"
)

// benchPostgres returns the PostgreSQL server tenant benchmarks make
// databases on.
func benchPostgres(b *testing.B) string {
	url := os.Getenv("TEST_POSTGRES_URL")
	if url == "" {
		b.Skip("TEST_POSTGRES_URL is not set")
	}
	return url
}

// benchUsers makes n users in the control plane.
func benchUsers(b *testing.B, store *models.Store, n int) []*models.User {
	users := make([]*models.User, n)
	for i := range users {
		u, err := store.SignIn(context.Background(), models.Profile{Email: fmt.Sprintf("bench%d-%s@example.com", i, rand.Text()[:8])})
		if err != nil {
			b.Fatal(err)
		}
		users[i] = u
	}
	return users
}

// reportLatencies reports the 50th and 95th percentiles of ds in ms.
func reportLatencies(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	pct := func(p float64) float64 {
		return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
}

// provisionAll runs Ensure for each user, one after another, as sign-ups
// arrive, and returns each one's latency (directory rows and database).
func provisionAll(b *testing.B, m *tenant.Manager, users []*models.User) []time.Duration {
	ds := make([]time.Duration, 0, len(users))
	for _, u := range users {
		start := time.Now()
		if _, err := m.Ensure(context.Background(), u); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	return ds
}

// dropAll deletes the users' tenants, so a benchmark leaves no databases.
func dropAll(b *testing.B, m *tenant.Manager, users []*models.User) {
	for _, u := range users {
		if err := m.Delete(context.Background(), u); err != nil {
			b.Error(err)
		}
	}
}

const provisionSamples = 40

// BenchmarkProvisionPostgres measures a sign-up's tenant database end to end
// on the local PostgreSQL: the provisioning row, role, database copied from
// the template, grants, the ready row.
func BenchmarkProvisionPostgres(b *testing.B) {
	url := benchPostgres(b)
	store := testdb.ControlPlane(b, config.SQLite)
	m := postgresManager(b, url, store, nil, newSealer(b))
	for b.Loop() {
		users := benchUsers(b, store, provisionSamples)
		reportLatencies(b, provisionAll(b, m, users))
		b.StopTimer()
		dropAll(b, m, users)
		b.StartTimer()
	}
}

// BenchmarkProvisionSQLite measures the same on SQLite tenant files.
func BenchmarkProvisionSQLite(b *testing.B) {
	store := testdb.ControlPlane(b, config.SQLite)
	m := testrig.SQLiteTenants(b, store, nil)
	for b.Loop() {
		users := benchUsers(b, store, provisionSamples)
		reportLatencies(b, provisionAll(b, m, users))
		b.StopTimer()
		dropAll(b, m, users)
		b.StartTimer()
	}
}

// postgresManager is a tenant manager on the PostgreSQL server at url,
// migrating with migrator (nil: the embedded tenant schema).
func postgresManager(b *testing.B, url string, store *models.Store, migrator *schema.Migrator, sealer *tenant.Sealer) *tenant.Manager {
	if migrator == nil {
		var err error
		migrator, err = schema.NewMigrator(testdb.AtlasBin(b), "tenant/postgres")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(migrator.Close)
	}
	prov, err := tenant.NewPostgres(context.Background(), []string{url}, migrator)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(prov.Close)
	m := tenant.NewManager(store, prov, tenant.Options{Sealer: sealer})
	b.Cleanup(m.Close)
	return m
}

// newSealer seals credentials with a random key.
func newSealer(b *testing.B) *tenant.Sealer {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := tenant.NewSealer(key)
	if err != nil {
		b.Fatal(err)
	}
	return sealer
}

// withNewMigration copies the PostgreSQL tenant schema into a directory and
// adds one migration to it, as a release that changes the schema would.
func withNewMigration(b *testing.B) *schema.Migrator {
	dir := b.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../schema/tenant/postgres")); err != nil {
		b.Fatal(err)
	}
	const next = "29991231000000_bench.sql"
	if err := os.WriteFile(filepath.Join(dir, next), []byte("ALTER TABLE chunks ADD COLUMN bench_flag BOOLEAN NOT NULL DEFAULT FALSE;\nCREATE INDEX chunks_bench_flag_idx ON chunks (bench_flag);\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(testdb.AtlasBin(b), "migrate", "hash", "--dir", "file://"+dir).CombinedOutput(); err != nil {
		b.Fatalf("atlas migrate hash: %v: %s", err, out)
	}
	m, err := schema.NewMigratorFS(testdb.AtlasBin(b), os.DirFS(dir))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	return m
}

const migrateTenants = 200

// BenchmarkMigrateAll200 measures migrating 200 PostgreSQL tenant databases
// by one new migration, at concurrency 1 and at the default. Run it with
// -benchtime=1x (make bench does): a second iteration would find nothing to
// apply.
func BenchmarkMigrateAll200(b *testing.B) {
	url := benchPostgres(b)
	for _, concurrency := range []int{1, tenant.DefaultConcurrency()} {
		b.Run(fmt.Sprintf("concurrency=%d", concurrency), func(b *testing.B) {
			store := testdb.ControlPlane(b, config.SQLite)
			users := benchUsers(b, store, migrateTenants)
			sealer := newSealer(b)
			old := postgresManager(b, url, store, nil, sealer)
			provisionAll(b, old, users)
			b.Cleanup(func() { dropAll(b, old, users) })
			m := postgresManager(b, url, store, withNewMigration(b), sealer)
			// That manager migrated the server's shared template to the
			// benchmark's extra migration: drop the template (it is derived
			// state) so the next silo to start makes it afresh.
			b.Cleanup(func() { dropTemplate(b, url) })
			for b.Loop() {
				b.StopTimer()
				if _, err := store.DB.ExecContext(context.Background(), "UPDATE vector_databases SET schema_version = ''"); err != nil {
					b.Fatal(err)
				}
				mig, err := m.PlanMigration(context.Background(), "bench", nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				run, err := m.Migrate(context.Background(), mig, concurrency, nil)
				if err != nil || run.Failed > 0 || run.Done != migrateTenants {
					results, _ := store.MigrationResults(context.Background(), mig.Run.ID, 0, true)
					if len(results) > 0 {
						b.Logf("first failure: %s", results[0].Error)
					}
					b.Fatalf("run: %d done, %d failed of %d: %v", run.Done, run.Failed, run.Total, err)
				}
			}
			b.ReportMetric(float64(migrateTenants), "tenants")
		})
	}
}

// dropTemplate drops the tenant template database on the server at url.
func dropTemplate(b *testing.B, url string) {
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		b.Error(err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS silo_tenant_template WITH (FORCE)"); err != nil {
		b.Error(err)
	}
}
