// Package testrig sets up what silo's tests run against beyond databases
// (package testdb): tenant managers, silo servers with a browser-like
// client, the PDF reader child and a fake Neon API.
package testrig

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"silo/config"
	"silo/handlers"
	"silo/ingest"
	"silo/models"
	"silo/pdf"
	"silo/pipeline"
	"silo/schema"
	"silo/tenant"
	"silo/testrig/testdb"
	"silo/views"
)

func init() { gin.SetMode(gin.TestMode) }

// SQLiteTenants returns a tenant manager that makes SQLite tenant files in
// a temporary directory.
func SQLiteTenants(t testing.TB, store *models.Store, log *slog.Logger) *tenant.Manager {
	t.Helper()
	m, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/sqlite")
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
// failing under CI=true), with a random secret key. The tenant databases
// left in store when the test ends are dropped, with their users.
func PostgresTenants(t testing.TB, store *models.Store) *tenant.Manager {
	t.Helper()
	server := testdb.ServerURL(t, config.Postgres)
	m, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/postgres")
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
	t.Cleanup(func() { // before the manager closes: the tenants the test made, which a server's users leave behind
		ctx := context.Background()
		rows, _, err := store.Tenants(ctx, models.TenantFilter{})
		if err != nil {
			t.Errorf("list the tenants to drop: %v", err)
			return
		}
		for _, v := range rows {
			u, err := store.User(ctx, v.UserID)
			if err == nil {
				err = mgr.Delete(ctx, u)
			}
			if err != nil {
				t.Errorf("drop the tenant database %s: %v", v.Name, err)
			}
		}
	})
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
	Ingester *ingest.Ingester
	// Readers are the server's PDF reader children.
	Readers *pdf.Pool
	// Tenants is the server's tenant manager.
	Tenants *tenant.Manager
}

// NewServer starts silo with cfg on store, with SQLite tenants; it stops
// when the test ends. An http BASE_URL becomes the server's own address
// (OAuth redirects need it); an https one is kept, to test what https
// changes.
func NewServer(t testing.TB, cfg *config.Config, store *models.Store) *Server {
	t.Helper()
	return newServer(t, cfg, store, func(log *slog.Logger) *tenant.Manager { return SQLiteTenants(t, store, log) })
}

// NewPostgresServer is NewServer with tenant databases on the PostgreSQL
// server of TEST_POSTGRES_URL (see PostgresTenants).
func NewPostgresServer(t testing.TB, cfg *config.Config, store *models.Store) *Server {
	t.Helper()
	return newServer(t, cfg, store, func(*slog.Logger) *tenant.Manager { return PostgresTenants(t, store) })
}

func newServer(t testing.TB, cfg *config.Config, store *models.Store, newTenants func(*slog.Logger) *tenant.Manager) *Server {
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
	tenants := newTenants(log)
	parts := Parts(t, cfg, store, tenants, log)
	ing := parts.Ingester
	h := handlers.New(cfg, store, tenants, parts, tmpl, log)
	srv.Config.Handler = h.Router()
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	workers.Go(func() { ing.Run(ctx) })
	t.Cleanup(func() { srv.Close(); h.Close(); cancel(); workers.Wait() })
	return &Server{Server: srv, Config: cfg, Store: store, Browser: NewBrowser(), Ingester: ing, Readers: parts.Readers, Tenants: tenants}
}

// extractChildEnv marks the test binary started as the PDF reader child.
const extractChildEnv = "SILO_TEST_EXTRACT_CHILD"

// RunExtractChild turns the test binary into the PDF reader when it was
// started as one: a test package that ingests documents calls it first
// thing in TestMain.
func RunExtractChild() {
	if os.Getenv(extractChildEnv) == "1" {
		os.Exit(pdf.ChildMain(os.Stdin, os.Stdout, os.Stderr))
	}
}

// Parts returns the content pipeline as silo builds it (pipeline.New),
// with the test binary as the PDF reader (see RunExtractChild), whose
// children skip the second the race detector sleeps at exit, no reader
// children started ahead, two ingestion workers and two attempts at a
// failing document. Its Ingester does not run until its Run is called.
func Parts(t testing.TB, cfg *config.Config, store *models.Store, tenants *tenant.Manager, log *slog.Logger) pipeline.Parts {
	t.Helper()
	parts, err := pipeline.New(cfg, store, tenants, pdf.Extractor{
		Command: []string{os.Args[0]},
		Env:     []string{extractChildEnv + "=1", "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	parts.Readers.Warm = 0
	parts.Ingester.Workers, parts.Ingester.MaxAttempts = 2, 2
	parts.Readers.MaxHandoffs = 4 * parts.Ingester.Workers // as pipeline.New does for its workers
	return parts
}

// Reader returns the command line of the server's PDF reader child, for a
// test to wrap in a command of its own (see SetReader).
func (s *Server) Reader() []string {
	return slices.Clone(s.Readers.Extractor.Command)
}

// SetReader makes command the server's PDF reader child and, unless
// timeout is 0, timeout its wall-clock limit, until the test (or subtest)
// ends. The ingestion workers and the handlers read these settings without
// a lock, so call it only while no reader child is being started: before
// the test's uploads, or once each document is ready, failed, or held by a
// child that was started already. The settings come back as the test
// ends, before the server stops, so the same holds then.
func (s *Server) SetReader(t testing.TB, command []string, timeout time.Duration) {
	t.Helper()
	e := s.Readers.Extractor
	oldCommand, oldTimeout := e.Command, e.Timeout
	t.Cleanup(func() { e.Command, e.Timeout = oldCommand, oldTimeout })
	e.Command = command
	if timeout != 0 {
		e.Timeout = timeout
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
