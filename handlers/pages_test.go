package handlers_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"silo/config"
	"silo/models"
	"silo/static"
	"silo/testrig"
	"silo/testrig/testdb"
)

// Helpers shared by the handler tests (auth_test.go, session_test.go,
// api_test.go and this file).

// sessionCookieName is the name of silo's session cookie.
const sessionCookieName = "silo_session"

// forEachEngine runs test once per control-plane engine, in parallel.
func forEachEngine(t *testing.T, test func(t *testing.T, engine config.Engine)) {
	t.Helper()
	for _, engine := range testdb.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			test(t, engine)
		})
	}
}

// newServer starts silo on a fresh, migrated control plane on engine.
// configure, if not nil, changes the test configuration first.
func newServer(t testing.TB, engine config.Engine, configure func(*config.Config)) *testrig.Server {
	t.Helper()
	databaseURL := testdb.NewDatabaseURL(t, engine)
	store := testdb.Open(t, databaseURL)
	testdb.Migrate(t, store)
	cfg := testrig.Config(databaseURL)
	if configure != nil {
		configure(cfg)
	}
	return testrig.NewServer(t, cfg, store)
}

// withBrowser is srv seen from another browser.
func withBrowser(srv *testrig.Server, browser *http.Client) *testrig.Server {
	b := *srv
	b.Browser = browser
	return &b
}

// browserWithSession is a fresh browser holding only the session cookie
// value for serverURL, as if it had been copied there.
func browserWithSession(t *testing.T, serverURL, value string) *http.Client {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	b := testrig.NewBrowser()
	b.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookieName, Value: value, Path: "/"}})
	return b
}

// sessionValue is the session cookie srv's browser holds, or "".
func sessionValue(t *testing.T, srv *testrig.Server) string {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range srv.Browser.Jar.Cookies(u) {
		if c.Name == sessionCookieName {
			return c.Value
		}
	}
	return ""
}

// setCookie is the session cookie resp sets, or nil.
func setCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookieName {
			return c
		}
	}
	return nil
}

// send makes one request with client and returns the response and its body.
// A non-empty body is sent as a form unless header says otherwise.
func send(t testing.TB, client *http.Client, method, rawURL, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// wantStatus fails the test unless resp has status want.
func wantStatus(t testing.TB, resp *http.Response, want int, body string) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: got status %d, want %d; body:\n%s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

// wantRedirect fails the test unless resp is a 303 to location.
func wantRedirect(t *testing.T, resp *http.Response, location string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != location {
		t.Fatalf("%s %s: got %d to %q, want 303 to %q", resp.Request.Method, resp.Request.URL.Path,
			resp.StatusCode, resp.Header.Get("Location"), location)
	}
}

// wantSignedIn fails the test unless srv's browser sees the documents page
// of email.
func wantSignedIn(t *testing.T, srv *testrig.Server, email string) {
	t.Helper()
	resp, body := srv.Get(t, "/")
	wantStatus(t, resp, http.StatusOK, body)
	if !strings.Contains(body, "Your documents") || !strings.Contains(body, email) {
		t.Fatalf("GET /: got a page without %q and %q:\n%s", "Your documents", email, body)
	}
}

// wantSignedOut fails the test unless srv's browser is sent to sign in.
func wantSignedOut(t *testing.T, srv *testrig.Server) {
	t.Helper()
	resp, _ := srv.Get(t, "/")
	wantRedirect(t, resp, "/login")
}

// countUsers is the number of rows in the users table.
func countUsers(t *testing.T, store *models.Store) int {
	t.Helper()
	n, err := store.DB.NewSelect().Model((*models.User)(nil)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// wantJSON decodes a JSON response into v, failing unless it is JSON.
func wantJSON(t testing.TB, resp *http.Response, body string, v any) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: got Content-Type %q, want application/json", resp.Request.URL.Path, ct)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", resp.Request.URL.Path, body, err)
	}
}

// The page tests.

func TestSignedOutRootRedirectsToLogin(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	resp, _ := srv.Get(t, "/")
	wantRedirect(t, resp, "/login")
}

func TestSignedInLoginRedirectsToRoot(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	srv.SignIn(t, "ann@example.com")
	resp, _ := srv.Get(t, "/login")
	wantRedirect(t, resp, "/")
}

func TestNotFoundPage(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	signedIn := withBrowser(srv, testrig.NewBrowser())
	signedIn.SignIn(t, "ann@example.com")
	for _, tc := range []struct {
		name string
		srv  *testrig.Server
		back string
	}{
		{"signed out", srv, `href="/login"`},
		{"signed in", signedIn, `href="/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/no-such-page", "/documents/nope/deeper", "/login/extra"} {
				resp, body := tc.srv.Get(t, path)
				wantStatus(t, resp, http.StatusNotFound, body)
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Errorf("GET %s: got Content-Type %q, want text/html", path, ct)
				}
				if !strings.Contains(html.UnescapeString(body), "couldn't find") {
					t.Errorf("GET %s: got a page without %q:\n%s", path, "couldn't find", body)
				}
				if !strings.Contains(body, tc.back) {
					t.Errorf("GET %s: got a page without the link %s:\n%s", path, tc.back, body)
				}
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/login", "GET"},
		{http.MethodPut, "/", "GET"},
		{http.MethodGet, "/logout", "POST"},
		{http.MethodGet, "/auth/dev", "POST"},
	} {
		resp, body := send(t, srv.Browser, tc.method, srv.URL+tc.path, "", nil)
		wantStatus(t, resp, http.StatusMethodNotAllowed, body)
		if !strings.Contains(resp.Header.Get("Allow"), tc.allow) {
			t.Errorf("%s %s: got Allow %q, want it to list %s", tc.method, tc.path, resp.Header.Get("Allow"), tc.allow)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s %s: got Content-Type %q, want the HTML error page", tc.method, tc.path, ct)
		}
	}
}

// wantSecurityHeaders fails the test unless resp carries the headers every
// response must.
func wantSecurityHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	what := resp.Request.Method + " " + resp.Request.URL.Path
	csp := resp.Header.Get("Content-Security-Policy")
	for _, directive := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, directive) {
			t.Errorf("%s: got Content-Security-Policy %q, want it to contain %q", what, csp, directive)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: got Content-Security-Policy %q, want no unsafe-inline or unsafe-eval", what, csp)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: got X-Content-Type-Options %q, want nosniff", what, got)
	}
	if got := resp.Header.Get("Referrer-Policy"); got == "" || got == "unsafe-url" {
		t.Errorf("%s: got Referrer-Policy %q, want a policy that keeps the path to silo", what, got)
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	signedIn := withBrowser(srv, testrig.NewBrowser())
	signedIn.SignIn(t, "ann@example.com")
	u, err := srv.Store.UserByEmail(context.Background(), "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	token, err := srv.Store.CreateAPIToken(context.Background(), u.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	for _, tc := range []struct {
		name    string
		browser *http.Client
		method  string
		path    string
		header  http.Header
		status  int
	}{
		{"login page", srv.Browser, http.MethodGet, "/login", nil, http.StatusOK},
		{"documents page", signedIn.Browser, http.MethodGet, "/", nil, http.StatusOK},
		{"redirect", srv.Browser, http.MethodGet, "/", nil, http.StatusSeeOther},
		{"forbidden", srv.Browser, http.MethodPost, "/logout", nil, http.StatusForbidden},
		{"page not found", srv.Browser, http.MethodGet, "/nope", nil, http.StatusNotFound},
		{"method not allowed", srv.Browser, http.MethodDelete, "/login", nil, http.StatusMethodNotAllowed},
		{"api", srv.Browser, http.MethodGet, "/api/v1/documents", bearer, http.StatusOK},
		{"api unauthorized", srv.Browser, http.MethodGet, "/api/v1/documents", nil, http.StatusUnauthorized},
		{"api not found", srv.Browser, http.MethodGet, "/api/v1/nope", bearer, http.StatusNotFound},
		{"static", srv.Browser, http.MethodGet, "/static/silo.css", nil, http.StatusOK},
		{"healthz", srv.Browser, http.MethodGet, "/healthz", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, tc.browser, tc.method, srv.URL+tc.path, "", tc.header)
			wantStatus(t, resp, tc.status, body)
			wantSecurityHeaders(t, resp)
		})
	}
}

// Paths outside the session middleware (static files, the health check) must
// still answer their errors with a page, not drop the connection.
func TestErrorsOutsideSessions(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/static/missing.js", http.StatusNotFound},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodHead, "/healthz", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Browser.Do(req)
			if err != nil {
				t.Fatalf("%s %s: got %v, want a %d response", tc.method, tc.path, err, tc.status)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			wantStatus(t, resp, tc.status, string(b))
			wantSecurityHeaders(t, resp)
			if setCookie(resp) != nil {
				t.Errorf("%s %s: got a session cookie, want none outside the session middleware", tc.method, tc.path)
			}
		})
	}
}

func TestStaticFiles(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	for _, tc := range []struct {
		file         string
		contentTypes []string
	}{
		{"htmx-2.0.11.min.js", []string{"text/javascript", "application/javascript"}},
		{"htmx-ext-sse-2.2.4.min.js", []string{"text/javascript", "application/javascript"}},
		{"silo.css", []string{"text/css"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want, err := fs.ReadFile(static.FS, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := srv.Get(t, "/static/"+tc.file)
			wantStatus(t, resp, http.StatusOK, "")
			ct := resp.Header.Get("Content-Type")
			ok := false
			for _, prefix := range tc.contentTypes {
				ok = ok || strings.HasPrefix(ct, prefix)
			}
			if !ok {
				t.Errorf("got Content-Type %q, want one of %q", ct, tc.contentTypes)
			}
			if body != string(want) || len(body) == 0 {
				t.Errorf("got %d bytes, want the %d bytes of the embedded file", len(body), len(want))
			}
			if setCookie(resp) != nil {
				t.Error("a static file set a session cookie")
			}
		})
	}
}

var (
	scriptTag     = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script\s*>`)
	inlineHandler = regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
	inlineStyle   = regexp.MustCompile(`(?i)<style\b|<[^>]*\sstyle\s*=`)
	javascriptURL = regexp.MustCompile(`(?i)(href|src|action)\s*=\s*["']?\s*javascript:`)
)

// TestPagesHaveNoInlineScript checks every page works under the CSP: no
// inline script, event handler or style, which default-src 'self' blocks.
func TestPagesHaveNoInlineScript(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	signedIn := withBrowser(srv, testrig.NewBrowser())
	signedIn.SignIn(t, "ann@example.com")
	pages := map[string]func() (*http.Response, string){
		"login":     func() (*http.Response, string) { return srv.Get(t, "/login") },
		"documents": func() (*http.Response, string) { return signedIn.Get(t, "/") },
		"not found": func() (*http.Response, string) { return srv.Get(t, "/nope") },
		"refused sign-in": func() (*http.Response, string) {
			return srv.PostForm(t, "/auth/dev", url.Values{"email": {"nope"}, "csrf_token": {srv.CSRFToken(t, "/login")}})
		},
		"forbidden": func() (*http.Response, string) { return signedIn.PostForm(t, "/logout", nil) },
	}
	for name, get := range pages {
		t.Run(name, func(t *testing.T) {
			_, body := get()
			scripts := scriptTag.FindAllStringSubmatch(body, -1)
			if len(scripts) == 0 {
				t.Errorf("got no <script> at all, want htmx loaded from /static:\n%s", body)
			}
			for _, s := range scripts {
				if !strings.Contains(s[1], "src=") || strings.TrimSpace(s[2]) != "" {
					t.Errorf("got an inline script %q, want only <script src=...></script>", s[0])
				}
			}
			for _, re := range []*regexp.Regexp{inlineHandler, inlineStyle, javascriptURL} {
				if m := re.FindString(body); m != "" {
					t.Errorf("got %q, which the Content-Security-Policy blocks", m)
				}
			}
		})
	}
}

func TestOversizedBodyIsRefused(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	token := srv.CSRFToken(t, "/login")
	form := "csrf_token=" + url.QueryEscape(token) + "&email=big%40example.com&padding=" + strings.Repeat("a", 2<<20)
	resp, body := send(t, srv.Browser, http.MethodPost, srv.URL+"/auth/dev", form, nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "too large") {
		t.Fatalf("POST /auth/dev with 2 MiB: got status %d, want 413 saying it is too large; body:\n%s", resp.StatusCode, body)
	}
	if n := countUsers(t, srv.Store); n != 0 {
		t.Errorf("got %d users after an oversized sign-in, want 0", n)
	}
	// The server is still up and the same form, small, still works.
	srv.SignIn(t, "big@example.com")
	wantSignedIn(t, srv, "big@example.com")
}

func TestHealthz(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newServer(t, engine, nil)
		resp, body := srv.Get(t, "/healthz")
		wantStatus(t, resp, http.StatusOK, body)
		var got map[string]any
		wantJSON(t, resp, body, &got)
		if len(got) != 1 || got["status"] != "ok" {
			t.Errorf(`GET /healthz: got %s, want {"status":"ok"}`, body)
		}
		if setCookie(resp) != nil {
			t.Error("GET /healthz set a session cookie")
		}

		srv.Store.Close() // the control plane is gone
		resp, body = srv.Get(t, "/healthz")
		wantStatus(t, resp, http.StatusServiceUnavailable, body)
		got = nil
		wantJSON(t, resp, body, &got)
		if got["status"] == "ok" {
			t.Errorf("GET /healthz without a control plane: got %s, want a status other than ok", body)
		}
	})
}
