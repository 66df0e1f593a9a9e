package handlers_test

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"silo/config"
	"silo/models"
	"silo/testrig"
)

func TestDevSignIn(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newServer(t, engine, nil)
		wantSignedOut(t, srv)
		resp, _ := srv.PostForm(t, "/auth/dev", url.Values{
			"email":      {"ann@example.com"},
			"csrf_token": {srv.CSRFToken(t, "/login")},
		})
		wantRedirect(t, resp, "/")
		wantSignedIn(t, srv, "ann@example.com")

		u, err := srv.Store.UserByEmail(context.Background(), "ann@example.com")
		if err != nil {
			t.Fatalf("UserByEmail after sign-in: %v", err)
		}
		if u.IsAdmin {
			t.Error("got an admin, want a user not in ADMIN_EMAILS not to be one")
		}
		if u.PublicID == "" {
			t.Error("got a user without a public id")
		}
	})
}

func TestDevSignInMarksAdmins(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newServer(t, engine, func(cfg *config.Config) {
			cfg.AdminEmails = []string{"boss@example.com"}
		})
		for _, tc := range []struct {
			signIn, email string
			admin         bool
		}{
			{"Boss@Example.com", "boss@example.com", true},
			{"staff@example.com", "staff@example.com", false},
		} {
			withBrowser(srv, testrig.NewBrowser()).SignIn(t, tc.signIn)
			u, err := srv.Store.UserByEmail(context.Background(), tc.email)
			if err != nil {
				t.Fatalf("UserByEmail(%q): %v", tc.email, err)
			}
			if u.IsAdmin != tc.admin {
				t.Errorf("%s: got is_admin %t, want %t", tc.signIn, u.IsAdmin, tc.admin)
			}
		}
	})
}

func TestDevSignInNormalisesEmail(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newServer(t, engine, nil)
		first := withBrowser(srv, testrig.NewBrowser())
		first.SignIn(t, "A@X.com")
		wantSignedIn(t, first, "a@x.com")
		second := withBrowser(srv, testrig.NewBrowser())
		second.SignIn(t, "  a@x.com ")
		wantSignedIn(t, second, "a@x.com")

		if n := countUsers(t, srv.Store); n != 1 {
			t.Errorf("got %d users after signing in as A@X.com and a@x.com, want 1", n)
		}
		u, err := srv.Store.UserByEmail(context.Background(), "a@x.com")
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != "a@x.com" {
			t.Errorf("got e-mail %q, want a@x.com", u.Email)
		}
	})
}

func TestDevSignInRefusedByConfiguration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		configure func(*config.Config)
	}{
		{"DEV_LOGIN=false", func(cfg *config.Config) { cfg.DevLogin = false }},
		{"https", func(cfg *config.Config) { cfg.DevLogin = true; cfg.BaseURL = "https://silo.example" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, config.SQLite, tc.configure)
			resp, page := srv.Get(t, "/login")
			wantStatus(t, resp, http.StatusOK, page)
			if strings.Contains(page, `action="/auth/dev"`) || strings.Contains(page, `name="email"`) {
				t.Errorf("GET /login: got the e-mail sign-in form, want none:\n%s", page)
			}
			if !strings.Contains(page, "No sign-in method is configured") {
				t.Errorf("GET /login: got no word that sign-in is not configured:\n%s", page)
			}

			// Post with this browser's real session and CSRF token (the
			// cookie is sent by hand: a Secure cookie never goes over
			// http), so only the missing route can refuse it.
			cookie := setCookie(resp)
			if cookie == nil {
				t.Fatal("GET /login set no session cookie")
			}
			token := csrfTokenIn(t, page)
			form := url.Values{"email": {"ann@example.com"}, "csrf_token": {token}}.Encode()
			resp, body := send(t, testrig.NewBrowser(), http.MethodPost, srv.URL+"/auth/dev", form,
				http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}})
			wantStatus(t, resp, http.StatusNotFound, body)
			if n := countUsers(t, srv.Store); n != 0 {
				t.Errorf("got %d users, want 0", n)
			}
		})
	}
}

// csrfTokenIn is the CSRF token in page's hx-headers attribute, which every
// page carries.
func csrfTokenIn(t *testing.T, page string) string {
	t.Helper()
	const marker = `"X-CSRF-Token": "`
	i := strings.Index(html.UnescapeString(page), marker)
	if i < 0 {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	rest := html.UnescapeString(page)[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestDevSignInRefusesBadEmail(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	for _, typed := range []string{
		"",
		"not-an-email",
		"ann@",
		"Ann <ann@example.com>",
		`<script>alert("x")</script>`,
		`"><img src=x onerror=alert(1)>`,
		strings.Repeat("a", 250) + "@example.com",
	} {
		t.Run(typed, func(t *testing.T) {
			resp, body := srv.PostForm(t, "/auth/dev", url.Values{"email": {typed}, "csrf_token": {srv.CSRFToken(t, "/login")}})
			wantStatus(t, resp, http.StatusUnprocessableEntity, body)
			if !strings.Contains(body, "Enter an e-mail address such as you@example.com.") {
				t.Errorf("got no message saying what is wrong:\n%s", body)
			}
			if !strings.Contains(body, `action="/auth/dev"`) {
				t.Errorf("got no sign-in form to try again:\n%s", body)
			}
			if want := `value="` + html.EscapeString(typed) + `"`; !strings.Contains(body, want) {
				t.Errorf("got a form without what was typed, want %s in:\n%s", want, body)
			}
			if typed != "" && html.EscapeString(typed) != typed && strings.Contains(body, typed) {
				t.Errorf("got %q unescaped in the page", typed)
			}
			if n := countUsers(t, srv.Store); n != 0 {
				t.Errorf("got %d users, want 0", n)
			}
			wantSignedOut(t, srv)
		})
	}
}

// A forged POST (no token, a wrong one, or another browser's) is refused
// with 403 and changes nothing.
func TestCSRFRefusesForgedSignOut(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	other := withBrowser(srv, testrig.NewBrowser())
	other.SignIn(t, "mallory@example.com")
	otherToken := other.CSRFToken(t, "/")

	for _, tc := range []struct {
		name   string
		form   url.Values
		header http.Header
	}{
		{"no token", url.Values{}, nil},
		{"empty token", url.Values{"csrf_token": {""}}, nil},
		{"wrong token", url.Values{"csrf_token": {"forged"}}, nil},
		{"another session's token", url.Values{"csrf_token": {otherToken}}, nil},
		{"another session's token in the header", url.Values{}, http.Header{"X-Csrf-Token": {otherToken}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victim := withBrowser(srv, testrig.NewBrowser())
			victim.SignIn(t, "ann@example.com")
			resp, body := send(t, victim.Browser, http.MethodPost, srv.URL+"/logout", tc.form.Encode(), tc.header)
			wantStatus(t, resp, http.StatusForbidden, body)
			if !strings.Contains(body, "did not come from silo") {
				t.Errorf("got a 403 page without the reason:\n%s", body)
			}
			wantSignedIn(t, victim, "ann@example.com")
		})
	}
	wantSignedIn(t, other, "mallory@example.com")
}

func TestCSRFRefusesForgedSignIn(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	for _, tc := range []struct {
		name       string
		visitLogin bool
		token      string
	}{
		{"no session, no token", false, ""},
		{"no session, a made-up token", false, "forged"},
		{"a session, no token", true, ""},
		{"a session, a wrong token", true, "forged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := withBrowser(srv, testrig.NewBrowser())
			if tc.visitLogin {
				b.CSRFToken(t, "/login")
			}
			form := url.Values{"email": {"victim@example.com"}}
			if tc.token != "" {
				form.Set("csrf_token", tc.token)
			}
			resp, body := b.PostForm(t, "/auth/dev", form)
			wantStatus(t, resp, http.StatusForbidden, body)
			if _, err := srv.Store.UserByEmail(context.Background(), "victim@example.com"); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("UserByEmail after a forged sign-in: got %v, want ErrNotFound", err)
			}
			wantSignedOut(t, b)
		})
	}
}

// htmx sends the token in the X-CSRF-Token header rather than the form.
func TestCSRFHeaderIsAccepted(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)

	// Sign in with the token in the header only.
	token := srv.CSRFToken(t, "/login")
	resp, _ := send(t, srv.Browser, http.MethodPost, srv.URL+"/auth/dev",
		url.Values{"email": {"ann@example.com"}}.Encode(), http.Header{"X-Csrf-Token": {token}})
	wantRedirect(t, resp, "/")
	wantSignedIn(t, srv, "ann@example.com")

	// Sign out as htmx does: header token, no body, HX-Request.
	resp, body := send(t, srv.Browser, http.MethodPost, srv.URL+"/logout", "",
		http.Header{"X-Csrf-Token": {srv.CSRFToken(t, "/")}, "Hx-Request": {"true"}})
	wantStatus(t, resp, http.StatusOK, body)
	if got := resp.Header.Get("HX-Redirect"); got != "/login" {
		t.Errorf("htmx sign-out: got HX-Redirect %q, want /login", got)
	}
	wantSignedOut(t, srv)
}

func TestCSRFTokenChangesAtSignIn(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	before := srv.CSRFToken(t, "/login")
	if again := srv.CSRFToken(t, "/login"); again != before {
		t.Fatalf("got CSRF token %q then %q on /login, want one token per session", before, again)
	}
	srv.SignIn(t, "ann@example.com")
	after := srv.CSRFToken(t, "/")
	if after == before || after == "" {
		t.Fatalf("got CSRF token %q before sign-in and %q after, want a new one", before, after)
	}
	// The token seen before signing in is worthless after.
	resp, body := srv.PostForm(t, "/logout", url.Values{"csrf_token": {before}})
	wantStatus(t, resp, http.StatusForbidden, body)
	wantSignedIn(t, srv, "ann@example.com")
}
