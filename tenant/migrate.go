package tenant

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"silo/models"
)

// templater is a provisioner that copies new tenants from a template
// database, which a migration run must migrate first.
type templater interface {
	MigrateTemplate(ctx context.Context) error
}

// DefaultConcurrency is how many tenant databases a run migrates at once
// unless told otherwise: atlas is a process per tenant, mostly waiting on the
// database, so a few per core.
func DefaultConcurrency() int { return 3 * runtime.NumCPU() }

// Migration is a planned or running "migrate every tenant" run.
type Migration struct {
	Run     *models.MigrationRun
	targets []models.VectorDatabase
}

// PlanMigration records a run over the ready tenants whose schema is not
// the newest; only, when not nil, narrows it to those directory rows (to
// retry a run's failures).
func (m *Manager) PlanMigration(ctx context.Context, startedBy string, only []int64) (*Migration, error) {
	migrator := m.prov.Migrator()
	targets, _, err := m.store.Tenants(ctx, models.TenantFilter{
		Status: models.TenantReady, BehindOf: migrator.Latest(), IDs: only,
	})
	if err != nil {
		return nil, err
	}
	run, err := m.store.CreateMigrationRun(ctx, migrator.Latest(), startedBy, len(targets))
	if err != nil {
		return nil, err
	}
	return &Migration{Run: run, targets: targets}, nil
}

// Migrate runs a planned migration: the template first, then every target
// tenant with at most concurrency at once. One tenant's failure does not
// stop the others; each outcome is stored and passed to onResult (which may
// be nil) with its tenant as it happens. It returns the finished run.
func (m *Manager) Migrate(ctx context.Context, mig *Migration, concurrency int, onResult func(models.VectorDatabase, models.MigrationResult)) (*models.MigrationRun, error) {
	if concurrency < 1 {
		concurrency = DefaultConcurrency()
	}
	var templateErr error
	if t, ok := m.prov.(templater); ok {
		templateErr = t.MigrateTemplate(ctx)
		if templateErr != nil {
			m.log.Error("migrate the tenant template", "err", templateErr)
		}
	}
	work := make(chan models.VectorDatabase)
	var wg sync.WaitGroup
	for range min(concurrency, max(len(mig.targets), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range work {
				res := m.migrateOne(ctx, mig.Run.ID, v)
				if onResult != nil {
					onResult(v, res)
				}
			}
		}()
	}
	for _, v := range mig.targets {
		work <- v
	}
	close(work)
	wg.Wait()
	run, err := m.store.FinishMigrationRun(context.WithoutCancel(ctx), mig.Run.ID)
	if err != nil {
		return nil, err
	}
	if templateErr != nil {
		return run, fmt.Errorf("tenant: the template did not migrate: %w", templateErr)
	}
	return run, nil
}

// migrateOne migrates one tenant database and records the outcome.
func (m *Manager) migrateOne(ctx context.Context, runID int64, v models.VectorDatabase) models.MigrationResult {
	start := time.Now()
	res := models.MigrationResult{RunID: runID, VectorDatabaseID: v.ID, FromVersion: v.SchemaVersion}
	t, err := m.tenant(&v, v.Name)
	if err == nil {
		var from, to string
		from, to, err = m.prov.Migrator().Apply(ctx, m.prov.AtlasURL(t))
		if err == nil { // a failure keeps the version the row was at
			res.FromVersion, res.ToVersion = from, to
		}
	}
	if err == nil {
		err = m.store.SetSchemaVersion(ctx, v.ID, res.ToVersion)
	}
	res.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		res.Error = err.Error()
		if res.Error == "" {
			res.Error = "unknown error"
		}
		m.log.Warn("tenant migration failed", "tenant", t.Name, "err", err)
	}
	if err := m.store.AddMigrationResult(context.WithoutCancel(ctx), &res); err != nil {
		m.log.Error("record tenant migration", "tenant", t.Name, "err", err)
	}
	return res
}

// ErrSomeFailed means a migration run finished with failures.
var ErrSomeFailed = errors.New("tenant: some tenant databases did not migrate")
