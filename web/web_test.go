package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/views"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestBase returns a Base on a fresh, migrated SQLite control plane (this
// package cannot use testrig, which imports it) and what it logs.
func newTestBase(t *testing.T) (*Base, *syncBuffer) {
	t.Helper()
	ctx := context.Background()
	atlas := os.Getenv("ATLAS_BIN")
	if atlas == "" {
		p, err := filepath.Abs(filepath.Join("..", "bin", "atlas"))
		if err != nil {
			t.Fatal(err)
		}
		atlas = p
	}
	if _, err := os.Stat(atlas); err != nil {
		t.Fatalf("the atlas CLI: %v (run `make atlas`)", err)
	}
	databaseURL := "sqlite://" + filepath.Join(t.TempDir(), "silo.db")
	store, err := models.Open(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	m, err := schema.NewMigrator(atlas, store.MigrationDir())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, _, err := m.Apply(ctx, store.AtlasURL()); err != nil {
		t.Fatal(err)
	}
	tmpl, err := views.Parse()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = databaseURL
	logs := &syncBuffer{}
	b := New(cfg, store, tmpl, slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(b.Close)
	return b, logs
}

// panicRouter is the page middleware of handlers.Router with routes that
// panic.
func panicRouter(b *Base) http.Handler {
	r := gin.New()
	r.ContextWithFallback = true // as Router: the session lives in the request's context
	r.Use(b.LogRequests, b.RecoverPanic, SecurityHeaders(false))
	r.GET("/boom", func(*gin.Context) { panic("kaboom-before-writing") })
	r.GET("/half", func(c *gin.Context) {
		c.String(http.StatusOK, "first half")
		panic("kaboom-after-writing")
	})
	r.GET("/abort", func(*gin.Context) { panic(http.ErrAbortHandler) })
	r.GET("/api/v1/boom", func(*gin.Context) { panic("kaboom-in-the-api") })
	return b.Sessions.LoadAndSave(r)
}

func TestRecoverPanicShowsErrorPage(t *testing.T) {
	b, logs := newTestBase(t)
	rec := httptest.NewRecorder()
	panicRouter(b).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))

	if rec.Code != http.StatusInternalServerError {
		t.Errorf("got status %d, want 500", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("got Content-Type %q, want text/html", ct)
	}
	body := rec.Body.String()
	if !strings.Contains(body, "Something went wrong on our side") || !strings.Contains(body, "</html>") {
		t.Errorf("got body %q, want the whole 500 page", body)
	}
	if strings.Contains(body, "kaboom") || strings.Contains(body, "goroutine") {
		t.Errorf("the 500 page shows the panic or its stack:\n%s", body)
	}
	if rec.Header().Get("Content-Security-Policy") == "" {
		t.Error("the 500 page has no Content-Security-Policy")
	}
	log := logs.String()
	for _, want := range []string{"level=ERROR", "msg=panic", "path=/boom", "kaboom-before-writing", "stack="} {
		if !strings.Contains(log, want) {
			t.Errorf("log %q: want it to contain %q", log, want)
		}
	}
	if !strings.Contains(log, "status=500") {
		t.Errorf("log %q: want the request line with status=500", log)
	}
}

func TestRecoverPanicAfterWritingKeepsResponse(t *testing.T) {
	b, logs := newTestBase(t)
	rec := httptest.NewRecorder()
	panicRouter(b).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/half", nil))

	if rec.Code != http.StatusOK {
		t.Errorf("got status %d, want the 200 already sent", rec.Code)
	}
	if got := rec.Body.String(); got != "first half" {
		t.Errorf("got body %q, want only %q (no second page)", got, "first half")
	}
	if log := logs.String(); !strings.Contains(log, "kaboom-after-writing") {
		t.Errorf("log %q: want the panic", log)
	}
}

func TestRecoverPanicAnswersAPIWithJSON(t *testing.T) {
	b, logs := newTestBase(t)
	rec := httptest.NewRecorder()
	panicRouter(b).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/boom", nil))

	if rec.Code != http.StatusInternalServerError {
		t.Errorf("got status %d, want 500", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("got Content-Type %q, want application/json", ct)
	}
	if got := rec.Body.String(); got != `{"error":"internal server error"}` {
		t.Errorf(`got body %q, want {"error":"internal server error"}`, got)
	}
	if log := logs.String(); !strings.Contains(log, "kaboom-in-the-api") {
		t.Errorf("log %q: want the panic", log)
	}
}

// http.ErrAbortHandler is net/http's way to abort a response; it passes
// through, unlogged.
func TestRecoverPanicPassesOnAbortHandler(t *testing.T) {
	b, logs := newTestBase(t)
	rec := httptest.NewRecorder()
	var got any
	func() {
		defer func() { got = recover() }()
		panicRouter(b).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/abort", nil))
	}()
	if err, _ := got.(error); !errors.Is(err, http.ErrAbortHandler) {
		t.Errorf("got panic %v, want http.ErrAbortHandler to go on up", got)
	}
	if strings.Contains(logs.String(), "msg=panic") {
		t.Errorf("log %q: want no panic line for an aborted response", logs.String())
	}
	if strings.Contains(rec.Body.String(), "Something went wrong") {
		t.Error("an aborted response got the 500 page")
	}
}

// TestSSELineEnds checks that every line of an event's data carries its
// "data:" field, whatever line ends the text has: a bare CR ends an SSE
// line too, and what follows it would be lost.
func TestSSELineEnds(t *testing.T) {
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	if err := StartSSE(c).Send("token", "one\rtwo\r\nthree\nfour"); err != nil {
		t.Fatal(err)
	}
	want := "event: token\ndata: one\ndata: two\ndata: three\ndata: four\n\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSection(t *testing.T) {
	for path, want := range map[string]string{
		"/": "documents", "/ask": "documents", "/documents/abc": "documents", "/settings": "settings",
		"/admin": "admin", "/admin/migrations/3": "admin", "/login": "", "/administrator": "", "/nope": "",
	} {
		if got := section(path); got != want {
			t.Errorf("section(%q) = %q, want %q", path, got, want)
		}
	}
}

// countingReader counts the bytes read from it.
type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	r.n += len(p)
	return len(p), nil
}

// A body whose Content-Length is over the limit is refused at the first
// read, with none of it read; one under it is read up to the limit.
func TestLimitBody(t *testing.T) {
	gin.SetMode(gin.TestMode)
	for _, tc := range []struct {
		length, sent int64
		wantErr      bool
	}{{1000, 1000, true}, {10, 10, false}, {-1, 64, true}} {
		body := &countingReader{}
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		c.Request = httptest.NewRequest(http.MethodPost, "/", io.NopCloser(io.LimitReader(body, tc.sent)))
		c.Request.ContentLength = tc.length
		LimitBody(10)(c)
		b, err := io.ReadAll(c.Request.Body)
		var tooBig *http.MaxBytesError
		if tc.wantErr != errors.As(err, &tooBig) {
			t.Errorf("Content-Length %d: read %d bytes, err %v", tc.length, len(b), err)
		}
		if tc.length > 10 && body.n != 0 {
			t.Errorf("Content-Length %d: %d bytes were read, want none", tc.length, body.n)
		}
	}
}
