package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"silo/config"
	"silo/models"
	"silo/testrig"
)

var (
	newTokenShown = regexp.MustCompile(`<code class="token">([^<]+)</code>`)
	tokenItem     = regexp.MustCompile(`(?s)<li>(.*?)</li>`)
	tokenName     = regexp.MustCompile(`(?s)<strong>(.*?)</strong>`)
	revokeAction  = regexp.MustCompile(`action="/settings/tokens/([^"/]+)/revoke"`)
)

// listedToken is a token as the settings page lists it.
type listedToken struct {
	Name, PublicID, Text string
}

// listedTokens reads the token list of a settings page.
func listedTokens(page string) []listedToken {
	var out []listedToken
	for _, li := range tokenItem.FindAllStringSubmatch(page, -1) {
		name := tokenName.FindStringSubmatch(li[1])
		action := revokeAction.FindStringSubmatch(li[1])
		if name == nil || action == nil {
			continue
		}
		out = append(out, listedToken{Name: html.UnescapeString(name[1]), PublicID: action[1], Text: text(li[1])})
	}
	return out
}

// tokenNamed is the listed token called name, or fails the test.
func tokenNamed(t *testing.T, page, name string) listedToken {
	t.Helper()
	for _, tok := range listedTokens(page) {
		if tok.Name == name {
			return tok
		}
	}
	t.Fatalf("the settings page lists no token %q: %v", name, listedTokens(page))
	return listedToken{}
}

// createToken makes a token through the settings form and returns the
// response, the page and the token it shows ("" if none).
func createToken(t *testing.T, srv *testrig.Server, name string) (*http.Response, string, string) {
	t.Helper()
	resp, page := srv.PostForm(t, "/settings/tokens", url.Values{"csrf_token": {srv.CSRFToken(t, "/settings")}, "name": {name}})
	shown := ""
	if m := newTokenShown.FindStringSubmatch(page); m != nil {
		shown = html.UnescapeString(m[1])
	}
	return resp, page, shown
}

// apiStatus is the status GET /api/v1/documents answers token with.
func apiStatus(t *testing.T, srv *testrig.Server, token string) int {
	t.Helper()
	resp, _ := apiGet(t, srv, "/api/v1/documents", "Bearer "+token)
	return resp.StatusCode
}

// rowsOf counts the rows of model's table that belong to user id.
func rowsOf(t *testing.T, store *models.Store, model any, userID int64) int {
	t.Helper()
	n, err := store.DB.NewSelect().Model(model).Where("user_id = ?", userID).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestSettingsTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newServer(t, engine, nil)
		srv.SignIn(t, "ann@example.com")
		ann := userOf(t, srv.Store, "ann@example.com")
		laptop, err := srv.Store.CreateAPIToken(context.Background(), ann.ID, "laptop")
		if err != nil {
			t.Fatal(err)
		}

		resp, page := srv.Get(t, "/settings")
		wantStatus(t, resp, http.StatusOK, page)
		if got := tokenNamed(t, page, "laptop"); !strings.Contains(got.Text, "never used") {
			t.Errorf("a new token: got %q, want it marked never used", got.Text)
		}
		if strings.Contains(page, laptop) {
			t.Error("the settings page shows an existing token itself")
		}

		// A new token is shown once and works.
		resp, page, shown := createToken(t, srv, "ci <bot>")
		wantStatus(t, resp, http.StatusOK, page)
		if !strings.HasPrefix(shown, "silo_") {
			t.Fatalf("POST /settings/tokens: got no new token on the page:\n%s", page)
		}
		tokenNamed(t, page, "ci <bot>")
		if n := rowsOf(t, srv.Store, (*models.APIToken)(nil), ann.ID); n != 2 {
			t.Errorf("got %d tokens, want 2", n)
		}
		_, page = srv.Get(t, "/settings")
		if strings.Contains(page, shown) {
			t.Error("the settings page shows the new token again after a reload")
		}
		ci := tokenNamed(t, page, "ci <bot>")
		if got := apiStatus(t, srv, shown); got != http.StatusOK {
			t.Fatalf("the new token: got status %d from /api/v1/documents, want 200", got)
		}
		_, page = srv.Get(t, "/settings")
		if got := tokenNamed(t, page, "ci <bot>"); !strings.Contains(got.Text, "last used") {
			t.Errorf("a used token: got %q, want when it was last used", got.Text)
		}

		// Revoking needs the CSRF token.
		resp, _ = srv.PostForm(t, "/settings/tokens/"+ci.PublicID+"/revoke", nil)
		wantStatus(t, resp, http.StatusForbidden, "")
		if got := apiStatus(t, srv, shown); got != http.StatusOK {
			t.Errorf("after a forged revoke: got %d, want the token to work", got)
		}
		csrf := srv.CSRFToken(t, "/settings")
		resp, _ = srv.PostForm(t, "/settings/tokens/"+ci.PublicID+"/revoke", url.Values{"csrf_token": {csrf}})
		wantRedirect(t, resp, "/settings")
		if got := apiStatus(t, srv, shown); got != http.StatusUnauthorized {
			t.Errorf("a revoked token: got %d, want 401", got)
		}
		_, page = srv.Get(t, "/settings")
		for _, tok := range listedTokens(page) {
			if tok.PublicID == ci.PublicID {
				t.Errorf("the revoked token is still listed: %v", tok)
			}
		}
		if got := apiStatus(t, srv, laptop); got != http.StatusOK {
			t.Errorf("the other token: got %d after a revoke, want 200", got)
		}
		resp, body := srv.PostForm(t, "/settings/tokens/"+ci.PublicID+"/revoke", url.Values{"csrf_token": {csrf}})
		wantStatus(t, resp, http.StatusNotFound, body)

		// Another user's token cannot be revoked by its id.
		bob := signedInAs(t, srv, "bob@example.com")
		_, _, bobToken := createToken(t, bob, "bob's")
		_, bobPage := bob.Get(t, "/settings")
		bobs := tokenNamed(t, bobPage, "bob's")
		for _, id := range []string{bobs.PublicID, strings.ToUpper(bobs.PublicID), bobs.PublicID[:8], bobs.PublicID + "%", "%25", "nope"} {
			resp, body := srv.PostForm(t, "/settings/tokens/"+url.PathEscape(id)+"/revoke", url.Values{"csrf_token": {csrf}})
			wantStatus(t, resp, http.StatusNotFound, body)
		}
		if got := apiStatus(t, bob, bobToken); got != http.StatusOK {
			t.Errorf("Bob's token after Ann tried to revoke it: got %d, want 200", got)
		}
		tokenNamed(t, bobPage, "bob's")
	})
}

func TestSettingsTokenName(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newServer(t, engine, nil)
		srv.SignIn(t, "ann@example.com")
		ann := userOf(t, srv.Store, "ann@example.com")
		for _, tc := range []struct {
			name, given, listed string
			status              int
		}{
			{"101 characters", strings.Repeat("a", 101), "", http.StatusUnprocessableEntity},
			{"far too long", strings.Repeat("long ", 1000), "", http.StatusUnprocessableEntity},
			{"100 characters", strings.Repeat("b", 100), strings.Repeat("b", 100), http.StatusOK},
			// The form's maxlength counts characters, not bytes.
			{"100 accented characters", strings.Repeat("é", 100), strings.Repeat("é", 100), http.StatusOK},
			{"empty", "   ", "API token", http.StatusOK},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := rowsOf(t, srv.Store, (*models.APIToken)(nil), ann.ID)
				resp, page, shown := createToken(t, srv, tc.given)
				wantStatus(t, resp, tc.status, page)
				after := rowsOf(t, srv.Store, (*models.APIToken)(nil), ann.ID)
				if tc.status != http.StatusOK {
					if shown != "" || after != before {
						t.Errorf("a refused name made a token (%d tokens before, %d after)", before, after)
					}
					if !strings.Contains(page, "at most 100 characters") {
						t.Errorf("a refused name: got a page without the reason:\n%s", page)
					}
					return
				}
				if shown == "" || after != before+1 {
					t.Fatalf("got no new token (%d tokens before, %d after)", before, after)
				}
				tokenNamed(t, page, tc.listed)
			})
		}
	})
}

// deleteFixture is a user about to be deleted, and another who must not be.
type deleteFixture struct {
	srv        *testrig.Server
	ann        *models.User
	annBrowser []*testrig.Server // two browsers signed in as Ann
	annSession []string          // their session tokens
	annToken   string
	annFile    string
	bob        *testrig.Server
	bobToken   string
	bobFile    string
}

func newDeleteFixture(t *testing.T, engine config.Engine) *deleteFixture {
	t.Helper()
	srv := newServer(t, engine, nil)
	f := &deleteFixture{srv: srv}
	f.annBrowser = []*testrig.Server{signedInAs(t, srv, "ann@example.com"), signedInAs(t, srv, "ann@example.com")}
	for _, b := range f.annBrowser {
		f.annSession = append(f.annSession, sessionValue(t, b))
	}
	f.ann = userOf(t, srv.Store, "ann@example.com")
	f.annToken = tokenOf(t, srv.Store, "ann@example.com")
	f.annFile = tenantFile(tenantOf(t, srv.Store, "ann@example.com"))
	now := time.Now().UTC()
	doc := &models.Document{
		PublicID: fmt.Sprintf("annsdocument%020d", 1), UserID: f.ann.ID, Title: "Ann's", FileName: "a.pdf",
		SizeBytes: 1, Pages: 1, Status: models.DocumentReady, CreatedAt: now, UpdatedAt: now,
	}
	if _, err := srv.Store.DB.NewInsert().Model(doc).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.bob = signedInAs(t, srv, "bob@example.com")
	f.bobToken = tokenOf(t, srv.Store, "bob@example.com")
	f.bobFile = tenantFile(tenantOf(t, srv.Store, "bob@example.com"))
	for _, path := range []string{f.annFile, f.bobFile} {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("a tenant file after sign-in: %v", err)
		}
	}
	return f
}

// wantAnnIntact fails the test unless Ann's account is all there.
func (f *deleteFixture) wantAnnIntact(t *testing.T) {
	t.Helper()
	if _, err := f.srv.Store.User(context.Background(), f.ann.ID); err != nil {
		t.Fatalf("Ann: %v", err)
	}
	for _, b := range f.annBrowser {
		wantSignedIn(t, b, "ann@example.com")
	}
	if got := apiStatus(t, f.srv, f.annToken); got != http.StatusOK {
		t.Errorf("Ann's token: got %d, want 200", got)
	}
	if _, err := os.Stat(f.annFile); err != nil {
		t.Errorf("Ann's tenant file: %v", err)
	}
	if n := rowsOf(t, f.srv.Store, (*models.VectorDatabase)(nil), f.ann.ID); n != 1 {
		t.Errorf("got %d tenant rows for Ann, want 1", n)
	}
}

// wantAnnGone fails the test unless nothing of Ann's is left.
func (f *deleteFixture) wantAnnGone(t *testing.T) {
	t.Helper()
	if _, err := f.srv.Store.User(context.Background(), f.ann.ID); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("Ann's user row: got %v, want it deleted", err)
	}
	for name, model := range map[string]any{
		"tenant directory": (*models.VectorDatabase)(nil), "API token": (*models.APIToken)(nil), "document": (*models.Document)(nil),
	} {
		if n := rowsOf(t, f.srv.Store, model, f.ann.ID); n != 0 {
			t.Errorf("got %d %s rows of Ann's, want 0", n, name)
		}
	}
	if _, err := os.Stat(f.annFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Ann's tenant file: got %v, want it gone", err)
	}
	// Every session of Ann's is gone from the store, not only refused when
	// it next comes back.
	for i, token := range f.annSession {
		if n := sessionRows(t, f.srv, token); n != 0 {
			t.Errorf("Ann's browser %d: got %d session rows, want its session deleted", i+1, n)
		}
	}
	for i, b := range f.annBrowser {
		resp, _ := b.Get(t, "/")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Errorf("Ann's browser %d: got %d to %q, want it signed out", i+1, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if got := apiStatus(t, f.srv, f.annToken); got != http.StatusUnauthorized {
		t.Errorf("Ann's token: got %d, want 401", got)
	}
}

// wantBobIntact fails the test unless the other user lost nothing.
func (f *deleteFixture) wantBobIntact(t *testing.T) {
	t.Helper()
	if n := sessionRows(t, f.srv, sessionValue(t, f.bob)); n != 1 {
		t.Errorf("Bob's session: got %d rows, want 1", n)
	}
	wantSignedIn(t, f.bob, "bob@example.com")
	if got := apiStatus(t, f.srv, f.bobToken); got != http.StatusOK {
		t.Errorf("Bob's token: got %d, want 200", got)
	}
	if _, err := os.Stat(f.bobFile); err != nil {
		t.Errorf("Bob's tenant file: %v", err)
	}
	if v := tenantOf(t, f.srv.Store, "bob@example.com"); v.Status != models.TenantReady {
		t.Errorf("Bob's tenant: got status %q, want ready", v.Status)
	}
}

func TestSettingsDeleteAccount(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		f := newDeleteFixture(t, engine)
		ann := f.annBrowser[0]
		csrf := ann.CSRFToken(t, "/settings")
		for _, confirm := range []string{"", "bob@example.com", "ann@example", "yes"} {
			resp, page := ann.PostForm(t, "/account/delete", url.Values{"csrf_token": {csrf}, "confirm": {confirm}})
			wantStatus(t, resp, http.StatusUnprocessableEntity, page)
			if !strings.Contains(page, "Type your e-mail address exactly") || !strings.Contains(page, `action="/account/delete"`) {
				t.Errorf("confirm %q: got a page without the reason and the form:\n%s", confirm, page)
			}
		}
		resp, _ := ann.PostForm(t, "/account/delete", url.Values{"confirm": {"ann@example.com"}})
		wantStatus(t, resp, http.StatusForbidden, "")
		f.wantAnnIntact(t)

		// The address as typed, in another case and with spaces, confirms.
		resp, _ = ann.PostForm(t, "/account/delete", url.Values{"csrf_token": {csrf}, "confirm": {" Ann@Example.com "}})
		wantRedirect(t, resp, "/login?account=deleted")
		f.wantAnnGone(t)
		f.wantBobIntact(t)
		resp, page := ann.Get(t, "/login?account=deleted")
		wantStatus(t, resp, http.StatusOK, page)
		if !strings.Contains(page, `<p class="notice" role="status">Your account, its documents and its conversations are deleted.</p>`) {
			t.Errorf("the sign-in page after the deletion does not say so:\n%s", page)
		}

		// Signing in again makes a new, empty account.
		again := signedInAs(t, f.srv, "ann@example.com")
		wantSignedIn(t, again, "ann@example.com")
		if u := userOf(t, f.srv.Store, "ann@example.com"); u.ID == f.ann.ID {
			t.Error("signing in again brought back the deleted user row")
		}
	})
}

func TestAPIDeleteAccount(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		f := newDeleteFixture(t, engine)
		resp, body := send(t, f.srv.Browser, http.MethodDelete, f.srv.URL+"/api/v1/account", "", nil)
		wantStatus(t, resp, http.StatusUnauthorized, body)
		f.wantAnnIntact(t)

		resp, body = send(t, f.srv.Browser, http.MethodDelete, f.srv.URL+"/api/v1/account", "",
			http.Header{"Authorization": {"Bearer " + f.annToken}})
		wantStatus(t, resp, http.StatusNoContent, body)
		if body != "" {
			t.Errorf("204: got a body %q", body)
		}
		f.wantAnnGone(t)
		f.wantBobIntact(t)

		resp, body = send(t, f.srv.Browser, http.MethodDelete, f.srv.URL+"/api/v1/account", "",
			http.Header{"Authorization": {"Bearer " + f.annToken}})
		wantStatus(t, resp, http.StatusUnauthorized, body)
	})
}
