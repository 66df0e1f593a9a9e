package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"text/tabwriter"
	"time"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/tenant"
	"silo/tenant/neon"
)

// tenants is the tenant machinery of one process: the manager, its
// provisioner and the tenant schema's migrator.
type tenants struct {
	*tenant.Manager
	migrator *schema.Migrator
	close    func()
}

// Close releases the tenant connections, the provisioner's connections and
// the migrator's files.
func (t *tenants) Close() {
	t.Manager.Close()
	t.close()
	t.migrator.Close()
}

// openTenants builds the provisioner the configuration names (PostgreSQL
// servers, Neon, or SQLite files in DATA_DIR/tenants) and its manager.
func openTenants(ctx context.Context, cfg *config.Config, store *models.Store, log *slog.Logger) (*tenants, error) {
	atlas, err := schema.FindAtlas(cfg.AtlasBin)
	if err != nil {
		return nil, err
	}
	engine := cfg.TenantEngine()
	dir := "tenant/postgres"
	if engine == config.TenantSQLite {
		dir = "tenant/sqlite"
	}
	migrator, err := schema.NewMigrator(atlas, dir)
	if err != nil {
		return nil, err
	}
	var sealer *tenant.Sealer
	if cfg.SecretKey != "" {
		key, err := cfg.Key()
		if err == nil {
			sealer, err = tenant.NewSealer(key)
		}
		if err != nil {
			migrator.Close()
			return nil, err
		}
	}
	var prov tenant.Provisioner
	closeProv := func() {}
	switch engine {
	case config.TenantPostgres:
		pg, err := tenant.NewPostgres(ctx, cfg.TenantDatabaseURLs, migrator)
		if err != nil {
			migrator.Close()
			return nil, err
		}
		prov, closeProv = pg, pg.Close
	case config.TenantNeon:
		prov = neon.New(cfg.NeonAPIURL, cfg.NeonAPIKey, cfg.NeonRegion, migrator, nil)
	default:
		sq, err := tenant.NewSQLite(ctx, filepath.Join(cfg.DataDir, "tenants"), migrator)
		if err != nil {
			migrator.Close()
			return nil, err
		}
		prov = sq
	}
	installation, err := store.Installation(ctx)
	if err != nil {
		closeProv()
		migrator.Close()
		return nil, err
	}
	return &tenants{
		Manager: tenant.NewManager(store, prov, tenant.Options{
			Sealer: sealer, MaxConns: cfg.TenantMaxConns, Log: log, Installation: installation,
		}),
		migrator: migrator,
		close:    closeProv,
	}, nil
}

// reconcile runs the tenant reconciler once at start; what it cannot finish
// waits for the next sign-in or start.
func reconcile(ctx context.Context, m *tenant.Manager, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	orphans, err := m.Reconcile(ctx)
	if err != nil {
		log.Error("tenant reconciler", "err", err)
	}
	if orphans > 0 {
		log.Warn("tenant reconciler dropped orphan databases", "count", orphans)
	}
}

// tenantsList is `silo tenants list`.
func tenantsList(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	store, err := openControlPlane(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer store.Close()
	rows, _, err := store.Tenants(ctx, models.TenantFilter{})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "EMAIL\tENGINE\tLOCATION\tDATABASE\tSTATUS\tSCHEMA\tCREATED")
	for _, v := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.User.Email, v.Engine, v.Location, v.ExternalID,
			v.Status, orNone(v.SchemaVersion), v.CreatedAt.Format(time.DateTime))
	}
	return w.Flush()
}

// tenantsMigrate is `silo tenants migrate [--concurrency N]`: it exits
// non-zero when any tenant failed.
func tenantsMigrate(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tenants migrate", flag.ContinueOnError)
	fs.SetOutput(stdout)
	concurrency := fs.Int("concurrency", tenant.DefaultConcurrency(), "tenant databases migrated at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *concurrency < 1 || fs.NArg() > 0 {
		return errors.New("usage: silo tenants migrate [--concurrency N], N at least 1")
	}
	store, err := openControlPlane(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer store.Close()
	t, err := openTenants(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	defer t.Close()
	mig, err := t.PlanMigration(ctx, "silo tenants migrate", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "migrating %d tenant database(s) to %s, %d at a time\n", mig.Run.Total, mig.Run.TargetVersion, *concurrency)
	run, err := t.Migrate(ctx, mig, *concurrency, func(v models.VectorDatabase, r models.MigrationResult) {
		if r.Error != "" {
			fmt.Fprintf(stdout, "FAIL %s (%s): %s\n", v.User.Email, v.ExternalID, r.Error)
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "run %s: %d migrated, %d failed, of %d\n", run.PublicID, run.Done, run.Failed, run.Total)
	if run.Failed > 0 {
		return fmt.Errorf("%w: %d of %d", tenant.ErrSomeFailed, run.Failed, run.Total)
	}
	return nil
}
