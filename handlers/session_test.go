package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"silo/config"
	"silo/testrig"
	"silo/testrig/testdb"
)

func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		baseURL string
		secure  bool
	}{
		{"http://localhost:8080", false},
		{"https://silo.example", true},
	} {
		t.Run(tc.baseURL, func(t *testing.T) {
			t.Parallel()
			// Plain http to the test server is fine: only the cookie's
			// attributes matter here.
			srv := newServer(t, config.SQLite, func(cfg *config.Config) { cfg.BaseURL = tc.baseURL })
			resp, body := srv.Get(t, "/login")
			wantStatus(t, resp, http.StatusOK, body)
			c := setCookie(resp)
			if c == nil {
				t.Fatalf("GET /login: got Set-Cookie %q, want a %s cookie", resp.Header.Values("Set-Cookie"), sessionCookieName)
			}
			if !c.HttpOnly {
				t.Error("got a session cookie without HttpOnly")
			}
			if c.SameSite != http.SameSiteLaxMode {
				t.Errorf("got SameSite %v, want Lax (%v)", c.SameSite, http.SameSiteLaxMode)
			}
			if c.Secure != tc.secure {
				t.Errorf("got Secure %t, want %t", c.Secure, tc.secure)
			}
			if c.Path != "/" {
				t.Errorf("got Path %q, want /", c.Path)
			}
			if c.Value == "" {
				t.Error("got an empty session token")
			}
		})
	}
}

// sessionRows is how many rows of the sessions table hold token.
func sessionRows(t *testing.T, srv *testrig.Server, token string) int {
	t.Helper()
	n, err := srv.Store.DB.NewSelect().Table("sessions").Where("token = ?", token).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// The session token is renewed at sign-in, so a token planted before
// (session fixation) does not become a signed-in session.
func TestSessionRenewedAtSignIn(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newServer(t, engine, nil)
		srv.CSRFToken(t, "/login")
		before := sessionValue(t, srv)
		if before == "" {
			t.Fatal("GET /login left no session cookie")
		}
		srv.SignIn(t, "ann@example.com")
		after := sessionValue(t, srv)
		if after == "" || after == before {
			t.Fatalf("got session token %q before sign-in and %q after, want a new one", before, after)
		}
		wantSignedIn(t, srv, "ann@example.com")

		if n := sessionRows(t, srv, before); n != 0 {
			t.Errorf("got %d rows for the token from before sign-in, want 0", n)
		}
		planted := withBrowser(srv, browserWithSession(t, srv.URL, before))
		wantSignedOut(t, planted)
	})
}

func TestSignOutDestroysSession(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newServer(t, engine, nil)
		srv.SignIn(t, "ann@example.com")
		old := sessionValue(t, srv)
		if n := sessionRows(t, srv, old); n != 1 {
			t.Fatalf("got %d rows for the signed-in session, want 1", n)
		}

		resp, body := srv.PostForm(t, "/logout", url.Values{"csrf_token": {srv.CSRFToken(t, "/")}})
		wantRedirect(t, resp, "/login")
		if c := setCookie(resp); c == nil || c.Value != "" || c.MaxAge >= 0 {
			t.Errorf("POST /logout: got session cookie %v, want it deleted; body:\n%s", c, body)
		}
		wantSignedOut(t, srv)
		if n := sessionRows(t, srv, old); n != 0 {
			t.Errorf("got %d rows for the signed-out session, want 0", n)
		}

		// Replaying the old cookie does not sign anyone in.
		replay := withBrowser(srv, browserWithSession(t, srv.URL, old))
		wantSignedOut(t, replay)
		resp, body = replay.Get(t, "/login")
		wantStatus(t, resp, http.StatusOK, body)
	})
}

// A session is kept in the control plane, so it outlives the process.
func TestSessionSurvivesRestart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		databaseURL := testdb.NewDatabaseURL(t, engine)
		storeA := testdb.Open(t, databaseURL)
		testdb.Migrate(t, storeA)
		a := testrig.NewServer(t, testrig.Config(databaseURL), storeA)
		a.SignIn(t, "ann@example.com")
		value := sessionValue(t, a)
		csrf := a.CSRFToken(t, "/")
		a.Close()
		storeA.Close()
		if err := storeA.Ping(context.Background()); err == nil {
			t.Fatal("store A still answers after Close")
		}

		storeB := testdb.Open(t, databaseURL)
		b := testrig.NewServer(t, testrig.Config(databaseURL), storeB)
		b.Browser = browserWithSession(t, b.URL, value)
		wantSignedIn(t, b, "ann@example.com")
		if got := b.CSRFToken(t, "/"); got != csrf {
			t.Errorf("got CSRF token %q after the restart, want the session's %q", got, csrf)
		}
	})
}

// Two servers on one control plane share their sessions: a sign-in on one
// works on the other, and a sign-out on either ends it on both.
func TestSessionSharedByTwoInstances(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		databaseURL := testdb.NewDatabaseURL(t, engine)
		storeA := testdb.Open(t, databaseURL)
		testdb.Migrate(t, storeA)
		a := testrig.NewServer(t, testrig.Config(databaseURL), storeA)
		b := testrig.NewServer(t, testrig.Config(databaseURL), testdb.Open(t, databaseURL))

		a.SignIn(t, "ann@example.com")
		value := sessionValue(t, a)
		b.Browser = browserWithSession(t, b.URL, value)
		wantSignedIn(t, b, "ann@example.com")

		resp, body := b.PostForm(t, "/logout", url.Values{"csrf_token": {b.CSRFToken(t, "/")}})
		wantRedirect(t, resp, "/login")
		wantSignedOut(t, b)

		if got := sessionValue(t, a); got != value {
			t.Fatalf("A's browser holds %q, want the signed-out token %q; body:\n%s", got, value, body)
		}
		wantSignedOut(t, a)
	})
}
