// Package testrig sets up what silo's tests run against: fresh control-plane
// databases on SQLite, PostgreSQL and MariaDB, migrated by the real atlas CLI,
// and silo servers on them with a browser-like client.
//
// PostgreSQL and MariaDB come from TEST_POSTGRES_URL and TEST_MYSQL_URL (a
// server URL; testrig makes and drops a database of its own per test). When
// one is unset the tests that need it are skipped, except under CI=true,
// where they fail.
package testrig

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	_ "github.com/go-sql-driver/mysql" // the driver behind TEST_MYSQL_URL
	"github.com/jackc/pgx/v5"

	"silo/config"
	"silo/handlers"
	"silo/models"
	"silo/rag"
	"silo/schema"
	"silo/tenant"
	"silo/views"
)

func init() { gin.SetMode(gin.TestMode) }

// Engines are the control-plane engines every engine-wide test runs on.
var Engines = []config.Engine{config.SQLite, config.Postgres, config.MySQL}

// serverURL returns the test server for engine, or skips (fails in CI).
func serverURL(t testing.TB, engine config.Engine) string {
	t.Helper()
	name := map[config.Engine]string{config.Postgres: "TEST_POSTGRES_URL", config.MySQL: "TEST_MYSQL_URL"}[engine]
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must test the %s control plane", name, engine)
		}
		t.Skipf("%s is not set; skipping the %s control plane", name, engine)
	}
	return v
}

// NewDatabaseURL returns the DATABASE_URL of a fresh, empty database on
// engine, removed when the test ends.
func NewDatabaseURL(t testing.TB, engine config.Engine) string {
	t.Helper()
	if engine == config.SQLite {
		return "sqlite://" + filepath.Join(t.TempDir(), "silo.db")
	}
	server := serverURL(t, engine)
	name := "silo_test_" + randomHex(6)
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("bad test server URL: %v", err)
	}
	ctx := context.Background()
	switch engine {
	case config.Postgres:
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Fatalf("connect to %s: %v", u.Redacted(), err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatalf("create database: %v", err)
		}
		t.Cleanup(func() { execAdmin(t, engine, server, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	case config.MySQL:
		execAdmin(t, engine, server, "CREATE DATABASE "+name)
		t.Cleanup(func() { execAdmin(t, engine, server, "DROP DATABASE IF EXISTS "+name) })
	}
	u.Path = "/" + name
	return u.String()
}

// execAdmin runs one statement on the test server itself.
func execAdmin(t testing.TB, engine config.Engine, server, stmt string) {
	t.Helper()
	ctx := context.Background()
	if engine == config.Postgres {
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("connect: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
		return
	}
	u, _ := url.Parse(server)
	pass, _ := u.User.Password()
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/", u.User.Username(), pass, u.Host))
	if err != nil {
		t.Errorf("connect: %v", err)
		return
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Errorf("%s: %v", stmt, err)
	}
}

// AtlasBin returns the atlas CLI the tests use: ATLAS_BIN, else bin/atlas
// at the repository's root. `make test` builds it.
func AtlasBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ATLAS_BIN"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", "atlas")
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("%s is missing: run `make atlas` (make test does)", p)
			}
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Migrate applies the control-plane migrations to store's database.
func Migrate(t testing.TB, store *models.Store) {
	t.Helper()
	m, err := schema.NewMigrator(AtlasBin(t), store.MigrationDir())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, _, err := m.Apply(context.Background(), store.AtlasURL()); err != nil {
		t.Fatalf("migrate %s: %v", store.Engine, err)
	}
}

// ControlPlane opens a fresh, migrated control plane on engine, closed when
// the test ends.
func ControlPlane(t testing.TB, engine config.Engine) *models.Store {
	t.Helper()
	store := Open(t, NewDatabaseURL(t, engine))
	Migrate(t, store)
	return store
}

// Open opens the control plane at databaseURL, closed when the test ends.
func Open(t testing.TB, databaseURL string) *models.Store {
	t.Helper()
	store, err := models.Open(context.Background(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return store
}

// SQLiteTenants returns a tenant manager that makes SQLite tenant files in
// a temporary directory.
func SQLiteTenants(t testing.TB, store *models.Store, log *slog.Logger) *tenant.Manager {
	t.Helper()
	m, err := schema.NewMigrator(AtlasBin(t), "tenant/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	prov, err := tenant.NewSQLite(context.Background(), t.TempDir(), m)
	if err != nil {
		t.Fatal(err)
	}
	mgr := tenant.NewManager(store, prov, tenant.Options{Log: log, Installation: installation(t, store)})
	t.Cleanup(mgr.Close)
	return mgr
}

func installation(t testing.TB, store *models.Store) string {
	t.Helper()
	id, err := store.Installation(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// PostgresTenants returns a tenant manager that makes tenant databases on
// the PostgreSQL server of TEST_POSTGRES_URL (skipping when it is unset,
// failing under CI=true), with a random secret key.
func PostgresTenants(t testing.TB, store *models.Store) *tenant.Manager {
	t.Helper()
	server := serverURL(t, config.Postgres)
	m, err := schema.NewMigrator(AtlasBin(t), "tenant/postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	prov, err := tenant.NewPostgres(context.Background(), []string{server}, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prov.Close)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := tenant.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	mgr := tenant.NewManager(store, prov, tenant.Options{Sealer: sealer, Installation: installation(t, store)})
	t.Cleanup(mgr.Close)
	return mgr
}

// Config is a configuration for tests: dev sign-in on, on the given control
// plane.
func Config(databaseURL string) *config.Config {
	cfg, err := config.Parse(func(string) string { return "" })
	if err != nil {
		panic(err)
	}
	cfg.DatabaseURL = databaseURL
	cfg.DevLogin = true
	return cfg
}

// Server is a running silo and a browser pointed at it.
type Server struct {
	*httptest.Server
	Config *config.Config
	Store  *models.Store
	// Browser keeps cookies, like a browser, and does not follow redirects,
	// so tests can see them.
	Browser *http.Client
	// Ingester ingests the server's uploads.
	Ingester *rag.Ingester
}

// NewServer starts silo with cfg on store; it stops when the test ends. An
// http BASE_URL becomes the server's own address (OAuth redirects need it);
// an https one is kept, to test what https changes.
func NewServer(t testing.TB, cfg *config.Config, store *models.Store) *Server {
	t.Helper()
	tmpl, err := views.Parse()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	if !cfg.HTTPS() {
		cfg.BaseURL = "http://" + srv.Listener.Addr().String()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tenants := SQLiteTenants(t, store, log)
	ing := Ingester(cfg, store, tenants, log)
	h := handlers.New(cfg, store, tenants, ing, tmpl, log)
	srv.Config.Handler = h.Router()
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	workers.Go(func() { ing.Run(ctx) })
	t.Cleanup(func() { srv.Close(); h.Close(); cancel(); workers.Wait() })
	return &Server{Server: srv, Config: cfg, Store: store, Browser: NewBrowser(), Ingester: ing}
}

// extractChildEnv marks the test binary started as the PDF reader child.
const extractChildEnv = "SILO_TEST_EXTRACT_CHILD"

// RunExtractChild turns the test binary into the PDF reader when it was
// started as one: a test package that ingests documents calls it first
// thing in TestMain.
func RunExtractChild() {
	if os.Getenv(extractChildEnv) == "1" {
		os.Exit(rag.ExtractMain(os.Stdin, os.Stdout, os.Stderr))
	}
}

// Ingester returns ingestion workers like silo's, with the offline
// embedder and the test binary as the PDF reader (see RunExtractChild). It
// does not run until its Run is called.
func Ingester(cfg *config.Config, store *models.Store, tenants *tenant.Manager, log *slog.Logger) *rag.Ingester {
	return &rag.Ingester{
		Store:   store,
		Tenants: tenants,
		Extractor: &rag.Extractor{
			Command:  []string{os.Args[0]},
			Env:      []string{extractChildEnv + "=1", "GORACE=atexit_sleep_ms=0"},
			Timeout:  cfg.ExtractTimeout,
			MemoryMB: cfg.ExtractMemMB,
		},
		Embedder:     rag.NewHashEmbedder(cfg.EmbeddingDimensions),
		Workers:      2,
		ChunkSize:    cfg.ChunkSize,
		ChunkOverlap: cfg.ChunkOverlap,
		MaxAttempts:  2,
		Log:          log,
	}
}

// NewBrowser returns a client with a cookie jar that does not follow
// redirects.
func NewBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Get fetches path with the browser and returns the response and its body.
func (s *Server) Get(t testing.TB, path string) (*http.Response, string) {
	t.Helper()
	resp, err := s.Browser.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// PostForm posts form to path with the browser.
func (s *Server) PostForm(t testing.TB, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := s.Browser.PostForm(s.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// CSRFToken loads page and returns the CSRF token in its forms.
func (s *Server) CSRFToken(t testing.TB, page string) string {
	t.Helper()
	_, body := s.Get(t, page)
	const marker = `name="csrf_token" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no CSRF token in %s", page)
	}
	rest := body[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

// SignIn signs the browser in through the dev sign-in form.
func (s *Server) SignIn(t testing.TB, email string) {
	t.Helper()
	resp, _ := s.PostForm(t, "/auth/dev", url.Values{"email": {email}, "csrf_token": {s.CSRFToken(t, "/login")}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("dev sign-in of %s: got %d to %q, want 303 to /", email, resp.StatusCode, resp.Header.Get("Location"))
	}
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
