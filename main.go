// Command silo is a self-hostable web app for chatting with PDFs, where every
// tenant gets a vector database of its own.
//
// Usage:
//
//	silo [serve]       serve the web app (the default)
//	silo migrate       apply the control plane's migrations
//	silo tenants list  print the tenant directory
//	silo tenants migrate [--concurrency N]
//	                   migrate every tenant database that is behind
//	silo token EMAIL   create the user and their tenant database if new, and
//	                   print a fresh API token
//
// Configuration comes from environment variables only; see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"silo/config"
	"silo/handlers"
	"silo/models"
	"silo/pdf"
	"silo/pipeline"
	"silo/schema"
	"silo/views"
)

const usage = `usage: silo [command]

commands:
  serve        serve the web app (the default)
  migrate      apply the control plane's migrations
  tenants list print the tenant directory
  tenants migrate [--concurrency N]
               migrate every tenant database that is behind the newest schema
  token EMAIL  create the user and their tenant database if new, and print a
               fresh API token
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "extract" {
		// The PDF reader child: no configuration, no secrets (see pdf.Extractor).
		os.Exit(pdf.ChildMain(os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cfg, err := config.Parse(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "silo: configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	switch {
	case cmd == "serve" && len(args) == 0:
		err = serve(ctx, cfg, log)
	case cmd == "migrate" && len(args) == 0:
		err = migrate(ctx, cfg, log)
	case cmd == "token" && len(args) == 1:
		err = token(ctx, cfg, log, args[0], stdout)
	case cmd == "tenants" && len(args) == 1 && args[0] == "list":
		err = tenantsList(ctx, cfg, log, stdout)
	case cmd == "tenants" && len(args) >= 1 && args[0] == "migrate":
		err = tenantsMigrate(ctx, cfg, log, args[1:], stdout)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err != nil {
		log.Error("silo "+cmd+" failed", "err", err)
		return 1
	}
	return 0
}

// newLogger builds the slog logger LOG_LEVEL and LOG_FORMAT ask for.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openControlPlane connects to the control plane and makes sure its schema is
// current: applying migrations when apply is true, refusing otherwise.
func openControlPlane(ctx context.Context, cfg *config.Config, log *slog.Logger, apply bool) (*models.Store, error) {
	store, err := models.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, cfg, store, log, apply); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

func checkSchema(ctx context.Context, cfg *config.Config, store *models.Store, log *slog.Logger, apply bool) error {
	atlas, err := schema.FindAtlas(cfg.AtlasBin)
	if err != nil {
		return err
	}
	m, err := schema.NewMigrator(atlas, store.MigrationDir())
	if err != nil {
		return err
	}
	defer m.Close()
	if apply {
		from, to, err := m.Apply(ctx, store.AtlasURL())
		if err != nil {
			return fmt.Errorf("migrate the control plane: %w", err)
		}
		log.Info("control plane schema is current", "engine", store.Engine, "from", orNone(from), "to", to)
		return nil
	}
	current, pending, err := m.Status(ctx, store.AtlasURL())
	if err != nil {
		return fmt.Errorf("check the control plane schema: %w", err)
	}
	if pending > 0 {
		return fmt.Errorf("the control plane schema is out of date (at version %s, %d migration(s) pending): run `silo migrate` first, or set MIGRATE_ON_START=true", orNone(current), pending)
	}
	return nil
}

func orNone(version string) string {
	if version == "" {
		return "none"
	}
	return version
}

// migrate is `silo migrate`.
func migrate(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	store, err := openControlPlane(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	store.Close()
	return nil
}

// token is `silo token EMAIL`.
func token(ctx context.Context, cfg *config.Config, log *slog.Logger, email string, stdout io.Writer) error {
	email, err := models.ParseEmail(email)
	if err != nil {
		return err
	}
	store, err := openControlPlane(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := store.SignIn(ctx, models.Profile{Email: email, IsAdmin: cfg.IsAdmin(email)})
	if err != nil {
		return err
	}
	tenants, err := openTenants(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	defer tenants.Close()
	if _, err := tenants.Ensure(ctx, u); err != nil {
		return err
	}
	tok, err := store.CreateAPIToken(ctx, u.ID, "silo token")
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// serve is `silo serve`: it runs until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	tmpl, err := views.Parse()
	if err != nil {
		return err
	}
	store, err := openControlPlane(ctx, cfg, log, cfg.MigrateOnStart)
	if err != nil {
		return err
	}
	defer store.Close()
	tenants, err := openTenants(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	defer tenants.Close()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find silo's own binary for the PDF reader: %w", err)
	}
	parts, err := pipeline.New(cfg, store, tenants.Manager, pdf.Extractor{Command: []string{exe, "extract"}}, log)
	if err != nil {
		return err
	}
	ingester := parts.Ingester
	var background sync.WaitGroup
	defer background.Wait()
	background.Go(func() { reconcile(ctx, tenants.Manager, log) })
	background.Go(func() { ingester.Run(ctx) })
	background.Go(func() {
		if err := ingester.ReembedAll(ctx); err != nil {
			log.Error("re-embed workspaces", "err", err)
		}
	})
	if !cfg.GoMemLimitSet {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	}
	if !cfg.GoogleEnabled() && !cfg.DevLoginEnabled() {
		log.Warn("no sign-in method is configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET, or DEV_LOGIN=true on http")
	}
	gin.SetMode(gin.ReleaseMode)
	h := handlers.New(cfg, store, tenants.Manager, parts, tmpl, log)
	defer h.Close()
	srv := &http.Server{
		Addr:              net.JoinHostPort("", strconv.Itoa(cfg.Port)),
		Handler:           h.Router(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("silo is serving", "addr", srv.Addr, "base_url", cfg.BaseURL, "control_plane", store.Engine)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
