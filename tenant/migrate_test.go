package tenant

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/sqliteshim"

	"silo/models"
	"silo/schema"
	"silo/testrig/testdb"
)

// notesMigration is the migration the tests add to a copy of a tenant
// schema, as a release that changes the schema would. Its version sorts
// after any real one.
const notesMigration = "29990101000000_notes.sql"

// migratorWithNotes returns a migrator over a copy of the engine's tenant
// schema with one more migration, the newest, that makes table notes.
func migratorWithNotes(t testing.TB, engine string) *schema.Migrator {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "schema", "tenant", engine))); err != nil {
		t.Fatal(err)
	}
	stmt := "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL);\n"
	if err := os.WriteFile(filepath.Join(dir, notesMigration), []byte(stmt), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testdb.AtlasBin(t), "migrate", "hash", "--dir", "file://"+dir).CombinedOutput(); err != nil {
		t.Fatalf("atlas migrate hash: %v: %s", err, out)
	}
	m, err := schema.NewMigratorFS(testdb.AtlasBin(t), os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if want, _, _ := strings.Cut(notesMigration, "_"); m.Latest() != want {
		t.Fatalf("newest migration: got %s, want %s", m.Latest(), want)
	}
	return m
}

// execTenant runs stmt in the tenant database of row v, as the admin (the
// role migrations run as).
func (r *rig) execTenant(t testing.TB, v *models.VectorDatabase, stmt string) {
	t.Helper()
	ctx := context.Background()
	if r.engine == enginePostgres {
		if _, err := r.admin(t, v.ExternalID).Exec(ctx, stmt); err != nil {
			t.Fatalf("%s in %s: %v", stmt, v.ExternalID, err)
		}
		return
	}
	db, err := sql.Open(sqliteshim.ShimName, "file:"+sqliteFile(Tenant{Name: v.ExternalID, Location: v.Location})+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Fatalf("%s in %s: %v", stmt, v.ExternalID, err)
	}
}

// results are a run's stored outcomes, in the order they were stored.
func (r *rig) results(t testing.TB, runID int64) []models.MigrationResult {
	t.Helper()
	var out []models.MigrationResult
	if err := r.store.DB.NewSelect().Model(&out).Where("run_id = ?", runID).Order("id").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out
}

// migrate plans a run over only (nil: every tenant behind) and runs it,
// checking the plan's size and what it passes to onResult.
func (r *rig) migrate(t testing.TB, only []int64, wantTotal int) (*models.MigrationRun, []models.MigrationResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mig, err := r.mgr.PlanMigration(ctx, "test", only)
	if err != nil {
		t.Fatal(err)
	}
	if mig.Run.Total != wantTotal || mig.Run.Status != models.RunRunning || mig.Run.TargetVersion != r.mgr.LatestSchema() {
		t.Fatalf("PlanMigration(%v): got total %d, status %s, target %s; want %d, running, %s",
			only, mig.Run.Total, mig.Run.Status, mig.Run.TargetVersion, wantTotal, r.mgr.LatestSchema())
	}
	var mu sync.Mutex
	passed := map[int64]models.MigrationResult{}
	run, err := r.mgr.Migrate(ctx, mig, 2, func(v models.VectorDatabase, res models.MigrationResult) {
		mu.Lock()
		defer mu.Unlock()
		if v.ID != res.VectorDatabaseID || v.User == nil {
			t.Errorf("onResult: got tenant %d (user %v) with the result of %d, want its own, with its user", v.ID, v.User, res.VectorDatabaseID)
		}
		passed[v.ID] = res
	})
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if run.ID != mig.Run.ID || run.Total != wantTotal || run.Done+run.Failed != run.Total || run.FinishedAt == nil {
		t.Errorf("finished run: got %+v, want run %d over %d tenants, each done or failed, finished", run, mig.Run.ID, wantTotal)
	}
	stored := r.results(t, run.ID)
	if len(stored) != wantTotal || len(passed) != wantTotal {
		t.Errorf("results: got %d stored and %d passed to onResult, want %d", len(stored), len(passed), wantTotal)
	}
	for _, res := range stored {
		if p := passed[res.VectorDatabaseID]; p.Error != res.Error || p.ToVersion != res.ToVersion {
			t.Errorf("result of %d: stored %+v, passed %+v; want the same", res.VectorDatabaseID, res, p)
		}
	}
	return run, stored
}

// TestMigrateAllOneTenantFails adds a migration and migrates five tenants,
// one of which cannot take it: the others migrate, the failure is recorded
// and retried alone, and a run with nothing behind does nothing.
func TestMigrateAllOneTenantFails(t *testing.T) {
	for _, engine := range rigEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, engine)
			const n = 5
			users := make([]*models.User, n)
			rows := make([]*models.VectorDatabase, n)
			for i := range users {
				users[i] = r.user(t, "tenant"+string(rune('a'+i))+"@example.com")
				rows[i] = r.ensure(t, users[i])
			}
			r.checkReady(t, users...)
			base := r.mgr.LatestSchema()

			// A release adds a migration; one tenant already has the table
			// it makes, so it cannot take it.
			r.prov.migrator = migratorWithNotes(t, engine)
			newest := r.mgr.LatestSchema()
			broken := rows[2]
			r.execTenant(t, broken, "CREATE TABLE notes (id INTEGER)")

			run, results := r.migrate(t, nil, n)
			if run.Status != models.RunFailed || run.Done != n-1 || run.Failed != 1 {
				t.Errorf("run: got %s with %d done, %d failed; want failed with %d done, 1 failed", run.Status, run.Done, run.Failed, n-1)
			}
			for _, res := range results {
				if res.VectorDatabaseID == broken.ID {
					if !strings.Contains(res.Error, "notes") || res.FromVersion != base || res.ToVersion != "" {
						t.Errorf("result of the broken tenant: got from %q to %q, error %q; want from %s to none, an error about notes",
							res.FromVersion, res.ToVersion, res.Error, base)
					}
					continue
				}
				if res.Error != "" || res.FromVersion != base || res.ToVersion != newest || res.DurationMS <= 0 {
					t.Errorf("result of %d: got from %q to %q in %d ms, error %q; want from %s to %s, a duration, no error",
						res.VectorDatabaseID, res.FromVersion, res.ToVersion, res.DurationMS, res.Error, base, newest)
				}
			}
			checkVersions(t, r, map[int64]string{broken.ID: base}, newest)

			// Retrying the run's failures touches the failed tenant only;
			// it fails again while the cause is there.
			run, _ = r.migrate(t, []int64{broken.ID}, 1)
			if run.Status != models.RunFailed || run.Failed != 1 {
				t.Errorf("retry of the failure: got %s with %d failed, want failed with 1", run.Status, run.Failed)
			}
			r.migrate(t, []int64{rows[0].ID}, 0) // a migrated tenant is not behind
			r.migrate(t, []int64{}, 0)           // no rows asked for, none taken

			// Without the cause, the next run touches the failed tenant
			// only, and the one after finds nothing to do.
			r.execTenant(t, broken, "DROP TABLE notes")
			run, results = r.migrate(t, nil, 1)
			if run.Status != models.RunFinished || run.Done != 1 || run.Failed != 0 {
				t.Errorf("run after the fix: got %s with %d done, %d failed; want finished with 1 done", run.Status, run.Done, run.Failed)
			}
			if len(results) == 1 && (results[0].VectorDatabaseID != broken.ID || results[0].FromVersion != base || results[0].ToVersion != newest) {
				t.Errorf("result after the fix: got %+v, want tenant %d from %s to %s", results[0], broken.ID, base, newest)
			}
			run, _ = r.migrate(t, nil, 0)
			if run.Status != models.RunFinished || run.Done != 0 || run.Failed != 0 {
				t.Errorf("run with nothing behind: got %s with %d done, %d failed; want finished, 0, 0", run.Status, run.Done, run.Failed)
			}
			checkVersions(t, r, nil, newest)
			r.checkReady(t, users...)

			// The tenants can use the new table through their own role
			// (on PostgreSQL, the template's default privileges).
			for _, v := range rows {
				db, release, err := r.mgr.DB(context.Background(), v)
				if err != nil {
					t.Fatal(err)
				}
				_, err = db.ExecContext(context.Background(), "INSERT INTO notes (id, body) VALUES (1, 'hello')")
				release()
				if err != nil {
					t.Errorf("insert into notes of %s as its role: %v", v.ExternalID, err)
				}
			}
			if engine == enginePostgres {
				var applied bool
				err := r.admin(t, pgTemplate).QueryRow(context.Background(),
					"SELECT EXISTS (SELECT 1 FROM atlas_schema_revisions.atlas_schema_revisions WHERE version = $1)", newest).Scan(&applied)
				if err != nil || applied {
					t.Errorf("the shared template: got the test's migration applied: %v, %v; want it untouched", applied, err)
				}
			}
		})
	}
}

// checkVersions checks the control plane's schema version of each row:
// want[id], else def.
func checkVersions(t testing.TB, r *rig, want map[int64]string, def string) {
	t.Helper()
	rows, _, err := r.store.Tenants(context.Background(), models.TenantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range rows {
		w, ok := want[v.ID]
		if !ok {
			w = def
		}
		if v.SchemaVersion != w {
			t.Errorf("schema version of %s: got %q, want %q", v.ExternalID, v.SchemaVersion, w)
		}
	}
}
