package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Migration run statuses.
const (
	RunRunning  = "running"
	RunFinished = "finished" // every tenant migrated
	RunFailed   = "failed"   // at least one tenant failed
)

// MigrationRun is one "migrate every tenant" run.
type MigrationRun struct {
	bun.BaseModel `bun:"table:migration_runs"`

	ID            int64      `bun:"id,pk,autoincrement"`
	PublicID      string     `bun:"public_id,notnull"`
	Status        string     `bun:"status,notnull"`
	TargetVersion string     `bun:"target_version,notnull"`
	Total         int        `bun:"total,notnull"`
	Done          int        `bun:"done,notnull"`
	Failed        int        `bun:"failed,notnull"`
	StartedBy     string     `bun:"started_by,notnull"`
	StartedAt     time.Time  `bun:"started_at,notnull"`
	FinishedAt    *time.Time `bun:"finished_at"`
}

// MigrationResult is one tenant's outcome in a run.
type MigrationResult struct {
	bun.BaseModel `bun:"table:migration_results"`

	ID               int64     `bun:"id,pk,autoincrement"`
	RunID            int64     `bun:"run_id,notnull"`
	VectorDatabaseID int64     `bun:"vector_database_id,notnull"`
	FromVersion      string    `bun:"from_version,notnull"`
	ToVersion        string    `bun:"to_version,notnull"`
	DurationMS       int64     `bun:"duration_ms,notnull"`
	Error            string    `bun:"error,notnull"`
	FinishedAt       time.Time `bun:"finished_at,notnull"`

	VectorDatabase *VectorDatabase `bun:"rel:belongs-to,join:vector_database_id=id"` // nil once the tenant is deleted
}

// CreateMigrationRun records the start of a run over total tenants.
func (s *Store) CreateMigrationRun(ctx context.Context, target, startedBy string, total int) (*MigrationRun, error) {
	r := &MigrationRun{
		PublicID: NewPublicID(), Status: RunRunning, TargetVersion: target,
		Total: total, StartedBy: startedBy, StartedAt: time.Now().UTC(),
	}
	if _, err := s.DB.NewInsert().Model(r).Exec(ctx); err != nil {
		return nil, fmt.Errorf("models: insert migration run: %w", err)
	}
	return r, nil
}

// AddMigrationResult records one tenant's outcome and counts it in its run.
func (s *Store) AddMigrationResult(ctx context.Context, res *MigrationResult) error {
	res.FinishedAt = time.Now().UTC()
	// The run's row is locked first: inserting first would take a shared
	// lock on it (the foreign key) that concurrent workers then each want to
	// raise, which InnoDB resolves by killing one as a deadlock.
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		counter := "done = done + 1"
		if res.Error != "" {
			counter = "failed = failed + 1"
		}
		_, err := tx.NewUpdate().Model((*MigrationRun)(nil)).Set(counter).Where("id = ?", res.RunID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("models: count migration result: %w", err)
		}
		if _, err := tx.NewInsert().Model(res).Exec(ctx); err != nil {
			return fmt.Errorf("models: insert migration result: %w", err)
		}
		return nil
	})
}

// FinishMigrationRun marks a run finished, or failed when any tenant failed
// or went unaccounted for.
func (s *Store) FinishMigrationRun(ctx context.Context, id int64) (*MigrationRun, error) {
	_, err := s.DB.NewUpdate().Model((*MigrationRun)(nil)).
		Set("status = CASE WHEN failed > 0 OR done + failed < total THEN ? ELSE ? END", RunFailed, RunFinished).
		Set("finished_at = ?", time.Now().UTC()).
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("models: finish migration run %d: %w", id, err)
	}
	r := new(MigrationRun)
	if err := s.DB.NewSelect().Model(r).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("models: fetch migration run %d: %w", id, err)
	}
	return r, nil
}

// MigrationRunByPublicID returns a run, or ErrNotFound.
func (s *Store) MigrationRunByPublicID(ctx context.Context, publicID string) (*MigrationRun, error) {
	r := new(MigrationRun)
	err := s.DB.NewSelect().Model(r).Where("public_id = ?", publicID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("models: fetch migration run: %w", err)
	}
	return r, nil
}

// RunningMigration returns a run still under way that started after since,
// or ErrNotFound.
func (s *Store) RunningMigration(ctx context.Context, since time.Time) (*MigrationRun, error) {
	r := new(MigrationRun)
	err := s.DB.NewSelect().Model(r).
		Where("status = ?", RunRunning).Where("started_at > ?", since.UTC()).
		Order("id DESC").Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("models: running migration: %w", err)
	}
	return r, nil
}

// MigrationRuns returns the newest runs first.
func (s *Store) MigrationRuns(ctx context.Context, limit int) ([]MigrationRun, error) {
	out := []MigrationRun{}
	if err := s.DB.NewSelect().Model(&out).Order("id DESC").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("models: migration runs: %w", err)
	}
	return out, nil
}

// MigrationResults returns a run's outcomes after the one with id afterID
// (0 for all), each with its tenant and user; failedOnly keeps the failures.
func (s *Store) MigrationResults(ctx context.Context, runID, afterID int64, failedOnly bool) ([]MigrationResult, error) {
	out := []MigrationResult{}
	q := s.DB.NewSelect().Model(&out).
		Relation("VectorDatabase").Relation("VectorDatabase.User").
		Where("migration_result.run_id = ?", runID).
		Where("migration_result.id > ?", afterID).
		Order("migration_result.id")
	if failedOnly {
		q.Where("migration_result.error <> ''")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("models: results of migration run %d: %w", runID, err)
	}
	return out, nil
}
