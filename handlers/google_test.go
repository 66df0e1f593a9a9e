package handlers_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"silo/config"
	"silo/models"
	"silo/testrig"
	"silo/testrig/testdb"
)

// The OAuth client silo is registered as at the fake Google.
const (
	fakeGoogleClientID     = "silo-test.apps.googleusercontent.com"
	fakeGoogleClientSecret = "GOCSPX-fake-google-secret"
)

// googleProfile is what the fake Google's OpenID Connect userinfo endpoint
// answers for a signed-in person.
type googleProfile struct {
	Sub           string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	Picture       string `json:"picture"`
}

// fakeGoogle speaks the wire protocol of Google's OAuth 2.0 authorization
// endpoint, token endpoint and OpenID Connect userinfo endpoint, strictly:
// codes are single use, bound to their redirect_uri and to a PKCE S256
// challenge, so the real golang.org/x/oauth2 client in silo runs against it.
// What it answers is set per test with configure.
type fakeGoogle struct {
	*httptest.Server

	mu          sync.Mutex
	redirectURI string // the only redirect_uri registered for the client
	behaviour   fakeGoogleBehaviour
	grants      map[string]*fakeGoogleGrant // by authorization code
	tokens      map[string]googleProfile    // by access token
	exchanges   []fakeGoogleExchange
	userinfos   int // userinfo requests answered
}

// fakeGoogleBehaviour is what the fake Google does next.
type fakeGoogleBehaviour struct {
	profile        googleProfile // who "signs in" at /authorize
	authError      string        // if set, /authorize answers error=authError instead of a code
	tokenStatus    int           // if set, a valid /token request fails: 500, or 400 invalid_grant
	userinfoStatus int           // if set, /userinfo answers this status
	userinfoBody   string        // if set, /userinfo answers this body instead of the profile
}

// fakeGoogleGrant is an authorization code the fake Google minted.
type fakeGoogleGrant struct {
	challenge   string
	redirectURI string
	profile     googleProfile
	redeemed    bool
}

// fakeGoogleExchange is one request the token endpoint answered.
type fakeGoogleExchange struct {
	code, verifier string
	accessToken    string // issued, if the exchange succeeded
	refused        string // why not, if it failed
}

// newFakeGoogle starts a fake Google that the test stops when it ends.
func newFakeGoogle(t *testing.T) *fakeGoogle {
	t.Helper()
	f := &fakeGoogle{
		behaviour: fakeGoogleBehaviour{profile: googleProfile{
			Sub: "100000000000000000001", Email: "someone@example.com", EmailVerified: true, Name: "Someone",
		}},
		grants: map[string]*fakeGoogleGrant{},
		tokens: map[string]googleProfile{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", f.authorize)
	mux.HandleFunc("/token", f.token)
	mux.HandleFunc("/userinfo", f.userinfo)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// configure changes what the fake Google does next.
func (f *fakeGoogle) configure(change func(*fakeGoogleBehaviour)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.behaviour)
}

// exchangeLog returns the token requests so far.
func (f *fakeGoogle) exchangeLog() []fakeGoogleExchange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.exchanges)
}

// userinfoCount returns how many userinfo requests were answered.
func (f *fakeGoogle) userinfoCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.userinfos
}

// authorize is GET /authorize: it checks the authorization request, "signs
// the person in" and sends the browser back to redirect_uri with a fresh
// code (or the configured error) and the state.
func (f *fakeGoogle) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "fake Google: want GET", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	var problems []string
	check := func(ok bool, problem string) {
		if !ok {
			problems = append(problems, problem)
		}
	}
	check(q.Get("response_type") == "code", "response_type="+q.Get("response_type")+", want code")
	check(q.Get("client_id") == fakeGoogleClientID, "unknown client_id "+q.Get("client_id"))
	check(q.Get("redirect_uri") == f.redirectURI, "redirect_uri "+q.Get("redirect_uri")+" is not registered")
	check(slices.Contains(strings.Fields(q.Get("scope")), "email"), "scope "+q.Get("scope")+" lacks email")
	check(q.Get("code_challenge_method") == "S256", "code_challenge_method="+q.Get("code_challenge_method")+", want S256")
	challenge, err := base64.RawURLEncoding.DecodeString(q.Get("code_challenge"))
	check(err == nil && len(challenge) == sha256.Size, "code_challenge is not a base64url SHA-256")
	check(q.Get("state") != "", "no state")
	if len(problems) > 0 {
		// Google shows its own error page, and does not redirect, when the
		// request itself is bad.
		http.Error(w, "fake Google: bad authorization request: "+strings.Join(problems, "; "), http.StatusBadRequest)
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	if f.behaviour.authError != "" {
		back.Set("error", f.behaviour.authError)
	} else {
		code := "4/0A" + googleRandom()
		f.grants[code] = &fakeGoogleGrant{
			challenge:   q.Get("code_challenge"),
			redirectURI: q.Get("redirect_uri"),
			profile:     f.behaviour.profile,
		}
		back.Set("code", code)
		back.Set("scope", q.Get("scope"))
	}
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusFound)
}

// token is POST /token: the authorization-code grant with PKCE, client
// credentials in the form.
func (f *fakeGoogle) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "fake Google: want POST", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		googleWriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if err := r.ParseForm(); err != nil {
		googleWriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	form := r.PostForm
	f.mu.Lock()
	defer f.mu.Unlock()
	ex := fakeGoogleExchange{code: form.Get("code"), verifier: form.Get("code_verifier")}
	refuse := func(status int, code, why string) {
		ex.refused = why
		f.exchanges = append(f.exchanges, ex)
		googleWriteJSON(w, status, map[string]string{"error": code, "error_description": why})
	}
	g := f.grants[ex.code]
	switch {
	case form.Get("grant_type") != "authorization_code":
		refuse(http.StatusBadRequest, "unsupported_grant_type", "grant_type is not authorization_code")
	case form.Get("client_id") != fakeGoogleClientID || form.Get("client_secret") != fakeGoogleClientSecret:
		refuse(http.StatusUnauthorized, "invalid_client", "bad client_id or client_secret in the form")
	case g == nil:
		refuse(http.StatusBadRequest, "invalid_grant", "unknown code")
	case g.redeemed:
		refuse(http.StatusBadRequest, "invalid_grant", "code already redeemed")
	case form.Get("redirect_uri") != g.redirectURI:
		refuse(http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
	case ex.verifier == "":
		refuse(http.StatusBadRequest, "invalid_grant", "missing code_verifier")
	case googleS256(ex.verifier) != g.challenge:
		refuse(http.StatusBadRequest, "invalid_grant", "code_verifier does not match code_challenge")
	case f.behaviour.tokenStatus == http.StatusBadRequest:
		refuse(http.StatusBadRequest, "invalid_grant", "configured to refuse")
	case f.behaviour.tokenStatus != 0:
		ex.refused = "configured to fail"
		f.exchanges = append(f.exchanges, ex)
		http.Error(w, "fake Google: backend error", f.behaviour.tokenStatus)
	default:
		g.redeemed = true
		ex.accessToken = "ya29." + googleRandom()
		f.tokens[ex.accessToken] = g.profile
		f.exchanges = append(f.exchanges, ex)
		w.Header().Set("Cache-Control", "no-store")
		googleWriteJSON(w, http.StatusOK, map[string]any{
			"access_token": ex.accessToken, "token_type": "Bearer", "expires_in": 3600,
			"scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
		})
	}
}

// userinfo is GET /userinfo: the profile behind a bearer access token.
func (f *fakeGoogle) userinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "fake Google: want GET", http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	p, ok := f.tokens[tok]
	if !strings.EqualFold(scheme, "Bearer") || !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		googleWriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	f.userinfos++
	switch {
	case f.behaviour.userinfoStatus != 0:
		http.Error(w, "fake Google: backend error", f.behaviour.userinfoStatus)
	case f.behaviour.userinfoBody != "":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, f.behaviour.userinfoBody)
	default:
		googleWriteJSON(w, http.StatusOK, p)
	}
}

func googleWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// googleS256 is the PKCE S256 code challenge of verifier (RFC 7636 §4.2).
func googleS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func googleRandom() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// googleSilo is silo with Google sign-in pointed at a fake Google.
type googleSilo struct {
	*testrig.Server
	fake *fakeGoogle
}

// newGoogleSilo starts a fake Google and silo on a fresh control plane on
// engine, signing in with that fake Google; adminEmails become ADMIN_EMAILS.
func newGoogleSilo(t *testing.T, engine config.Engine, adminEmails ...string) *googleSilo {
	t.Helper()
	fake := newFakeGoogle(t)
	// testdb.ControlPlane, keeping the URL for the config.
	databaseURL := testdb.NewDatabaseURL(t, engine)
	store := testdb.Open(t, databaseURL)
	testdb.Migrate(t, store)

	cfg := testrig.Config(databaseURL)
	cfg.GoogleClientID = fakeGoogleClientID
	cfg.GoogleClientSecret = fakeGoogleClientSecret
	cfg.GoogleAuthURL = fake.URL + "/authorize"
	cfg.GoogleTokenURL = fake.URL + "/token"
	cfg.GoogleUserinfoURL = fake.URL + "/userinfo"
	cfg.AdminEmails = adminEmails
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	s := testrig.NewServer(t, cfg, store) // sets BASE_URL to its own address
	if s.URL != cfg.BaseURL {
		t.Fatalf("silo listens at %s, want BASE_URL %s", s.URL, cfg.BaseURL)
	}
	fake.mu.Lock()
	fake.redirectURI = cfg.BaseURL + "/auth/google/callback"
	fake.mu.Unlock()
	return &googleSilo{Server: s, fake: fake}
}

// googleGet fetches rawURL with browser and returns the response and its
// body.
func googleGet(t *testing.T, browser *http.Client, rawURL string) (*http.Response, string) {
	t.Helper()
	resp, err := browser.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// start opens the sign-in page in browser and clicks "Continue with
// Google"; it returns where silo sent the browser: the fake Google's
// authorization URL.
func (g *googleSilo) start(t *testing.T, browser *http.Client) *url.URL {
	t.Helper()
	resp, body := googleGet(t, browser, g.URL+"/login")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/auth/google">Continue with Google<`) {
		t.Fatalf("GET /login: got %d without a Continue with Google link, want 200 with it:\n%s", resp.StatusCode, body)
	}
	resp, _ = googleGet(t, browser, g.URL+"/auth/google")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, g.fake.URL+"/authorize?") {
		t.Fatalf("GET /auth/google: got %d to %q, want 302 to %s/authorize?…", resp.StatusCode, loc, g.fake.URL)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// authorize has browser visit Google's authorization URL, as a person
// signing in at Google would; it returns the silo callback URL Google sends
// them back to, which the test follows (or tampers with) by hand.
func (g *googleSilo) authorize(t *testing.T, browser *http.Client, authURL *url.URL) *url.URL {
	t.Helper()
	resp, body := googleGet(t, browser, authURL.String())
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, g.URL+"/auth/google/callback?") {
		t.Fatalf("fake Google's /authorize: got %d to %q, want 302 to %s/auth/google/callback?…\n%s",
			resp.StatusCode, loc, g.URL, body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// googleWithQuery returns u with the query parameters in set replaced; an empty
// value removes the parameter.
func googleWithQuery(u *url.URL, set map[string]string) *url.URL {
	out := *u
	q := out.Query()
	for k, v := range set {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	out.RawQuery = q.Encode()
	return &out
}

// sessionCookie returns browser's silo_session cookie for silo, or "".
func (g *googleSilo) sessionCookie(t *testing.T, browser *http.Client) string {
	t.Helper()
	u, err := url.Parse(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range browser.Jar.Cookies(u) {
		if c.Name == "silo_session" {
			return c.Value
		}
	}
	return ""
}

// googleAssertRefused checks that a callback was refused with status and shows
// the sign-in page with message.
func googleAssertRefused(t *testing.T, resp *http.Response, body string, status int, message string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("callback: got status %d, want %d", resp.StatusCode, status)
	}
	if !strings.Contains(body, "Sign in to silo") || !strings.Contains(body, "Continue with Google") {
		t.Errorf("callback: got a page that is not the sign-in page, want the sign-in page:\n%s", body)
	}
	if !strings.Contains(body, `<p class="alert" role="alert">`+template.HTMLEscapeString(message)) {
		t.Errorf("callback: the page does not say %q:\n%s", message, body)
	}
}

// assertSignedOut checks that browser has no signed-in session and that no
// users row exists for email (nor any at all).
func (g *googleSilo) assertSignedOut(t *testing.T, browser *http.Client, email string) {
	t.Helper()
	resp, _ := googleGet(t, browser, g.URL+"/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("GET / afterwards: got %d to %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	if u, err := g.Store.UserByEmail(t.Context(), email); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("UserByEmail(%q): got %+v, %v; want models.ErrNotFound", email, u, err)
	}
	n, err := g.Store.DB.NewSelect().Model((*models.User)(nil)).Count(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("users rows: got %d, want 0", n)
	}
}

// TestGoogleSignIn signs in end to end with the real oauth2 client against
// the fake Google, on every control-plane engine.
func TestGoogleSignIn(t *testing.T) {
	for _, engine := range testdb.Engines {
		t.Run(string(engine), func(t *testing.T) {
			g := newGoogleSilo(t, engine, "ada@example.com")
			people := []struct {
				name      string
				profile   googleProfile
				wantEmail string
				wantAdmin bool
			}{
				{
					name: "admin, e-mail in mixed case",
					profile: googleProfile{Sub: "100000000000000000001", Email: "Ada@Example.com", EmailVerified: true,
						Name: "Ada Lovelace", Picture: "https://lh3.googleusercontent.com/a/ada-s96-c"},
					wantEmail: "ada@example.com", wantAdmin: true,
				},
				{
					name: "not an admin",
					profile: googleProfile{Sub: "100000000000000000002", Email: "grace@example.com", EmailVerified: true,
						Name: "Grace Hopper", Picture: "https://lh3.googleusercontent.com/a/grace-s96-c"},
					wantEmail: "grace@example.com", wantAdmin: false,
				},
			}
			for _, p := range people {
				t.Run(p.name, func(t *testing.T) {
					g.fake.configure(func(b *fakeGoogleBehaviour) { b.profile = p.profile })
					browser := testrig.NewBrowser()
					exchangesBefore := len(g.fake.exchangeLog())

					authURL := g.start(t, browser)
					q := authURL.Query()
					for k, want := range map[string]string{
						"response_type":         "code",
						"client_id":             fakeGoogleClientID,
						"redirect_uri":          g.URL + "/auth/google/callback",
						"code_challenge_method": "S256",
						"prompt":                "select_account",
					} {
						if got := q.Get(k); got != want {
							t.Errorf("authorization URL %s: got %q, want %q", k, got, want)
						}
					}
					if q.Get("state") == "" || q.Get("code_challenge") == "" {
						t.Fatalf("authorization URL: got state %q and code_challenge %q, want both", q.Get("state"), q.Get("code_challenge"))
					}
					before := g.sessionCookie(t, browser)
					if before == "" {
						t.Fatal("no silo_session cookie before signing in, want the sign-in page's session")
					}

					callback := g.authorize(t, browser, authURL)
					if got := callback.Query().Get("state"); got != q.Get("state") {
						t.Fatalf("callback state: got %q, want %q", got, q.Get("state"))
					}
					resp, body := googleGet(t, browser, callback.String())
					if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
						t.Fatalf("callback: got %d to %q, want 303 to /; fake Google saw %+v\n%s",
							resp.StatusCode, resp.Header.Get("Location"), g.fake.exchangeLog(), body)
					}
					after := g.sessionCookie(t, browser)
					if after == "" || after == before {
						t.Errorf("silo_session after sign-in: got %q (before: %q), want a new token", after, before)
					}

					resp, body = googleGet(t, browser, g.URL+"/")
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("GET /: got %d, want 200", resp.StatusCode)
					}
					for _, want := range []string{"<h1>Your documents</h1>", `<div id="documents"`, ">" + p.profile.Name + "</span>", `src="` + p.profile.Picture + `"`} {
						if !strings.Contains(body, want) {
							t.Errorf("GET /: the page lacks %q:\n%s", want, body)
						}
					}

					u, err := g.Store.UserByEmail(t.Context(), p.wantEmail)
					if err != nil {
						t.Fatalf("UserByEmail(%q): %v", p.wantEmail, err)
					}
					if u.Email != p.wantEmail || u.Name != p.profile.Name || u.AvatarURL != p.profile.Picture || u.IsAdmin != p.wantAdmin {
						t.Errorf("user: got email %q, name %q, avatar %q, admin %t; want %q, %q, %q, %t",
							u.Email, u.Name, u.AvatarURL, u.IsAdmin, p.wantEmail, p.profile.Name, p.profile.Picture, p.wantAdmin)
					}

					exchanges := g.fake.exchangeLog()[exchangesBefore:]
					if len(exchanges) != 1 {
						t.Fatalf("token requests: got %+v, want one", exchanges)
					}
					ex := exchanges[0]
					if ex.refused != "" || ex.code != callback.Query().Get("code") || ex.verifier == "" ||
						googleS256(ex.verifier) != q.Get("code_challenge") {
						t.Errorf("token request: got %+v, want the callback's code and a code_verifier whose S256 is %q",
							ex, q.Get("code_challenge"))
					}
				})
			}
		})
	}
}

// TestGoogleSignInRefusesWrongState refuses callbacks whose state is not the
// one this browser's session started with.
func TestGoogleSignInRefusesWrongState(t *testing.T) {
	tests := []struct {
		name string
		// callback returns the callback URL to deliver, and the browser to
		// deliver it in, given a genuine flow's browser and callback.
		callback func(t *testing.T, g *googleSilo, browser *http.Client, genuine *url.URL) (*http.Client, *url.URL)
	}{
		{"tampered", func(t *testing.T, _ *googleSilo, browser *http.Client, genuine *url.URL) (*http.Client, *url.URL) {
			return browser, googleWithQuery(genuine, map[string]string{"state": genuine.Query().Get("state") + "x"})
		}},
		{"missing", func(t *testing.T, _ *googleSilo, browser *http.Client, genuine *url.URL) (*http.Client, *url.URL) {
			return browser, googleWithQuery(genuine, map[string]string{"state": ""})
		}},
		{"another browser's", func(t *testing.T, g *googleSilo, browser *http.Client, genuine *url.URL) (*http.Client, *url.URL) {
			other := g.start(t, testrig.NewBrowser())
			return browser, googleWithQuery(genuine, map[string]string{"state": other.Query().Get("state")})
		}},
		{"no sign-in started in this browser (login CSRF)", func(t *testing.T, g *googleSilo, _ *http.Client, genuine *url.URL) (*http.Client, *url.URL) {
			victim := testrig.NewBrowser()
			if resp, _ := googleGet(t, victim, g.URL+"/login"); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /login: got %d, want 200", resp.StatusCode)
			}
			return victim, genuine
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGoogleSilo(t, config.SQLite)
			g.fake.configure(func(b *fakeGoogleBehaviour) {
				b.profile = googleProfile{Sub: "1", Email: "mallory@example.com", EmailVerified: true, Name: "Mallory"}
			})
			browser := testrig.NewBrowser()
			genuine := g.authorize(t, browser, g.start(t, browser))
			deliverIn, callback := tt.callback(t, g, browser, genuine)

			resp, body := googleGet(t, deliverIn, callback.String())
			googleAssertRefused(t, resp, body, http.StatusBadRequest, "This sign-in was not started here or has expired. Please try again.")
			g.assertSignedOut(t, deliverIn, "mallory@example.com")
			if ex := g.fake.exchangeLog(); len(ex) != 0 {
				t.Errorf("token requests: got %+v, want none (the code must not be redeemed)", ex)
			}
		})
	}
}

// TestGoogleSignInRefusesInjectedCode checks PKCE: a code minted for another
// browser's challenge, delivered with this browser's valid state, is
// redeemed with this browser's verifier and refused; and a code is single
// use.
func TestGoogleSignInRefusesInjectedCode(t *testing.T) {
	g := newGoogleSilo(t, config.SQLite)
	g.fake.configure(func(b *fakeGoogleBehaviour) {
		b.profile = googleProfile{Sub: "666", Email: "mallory@example.com", EmailVerified: true, Name: "Mallory"}
	})
	victim, attacker := testrig.NewBrowser(), testrig.NewBrowser()
	victimAuth := g.start(t, victim)
	attackerCallback := g.authorize(t, attacker, g.start(t, attacker))
	code := attackerCallback.Query().Get("code")

	// The attacker's code, in the victim's callback with the victim's state.
	injected := googleWithQuery(attackerCallback, map[string]string{"state": victimAuth.Query().Get("state")})
	resp, body := googleGet(t, victim, injected.String())
	googleAssertRefused(t, resp, body, http.StatusBadGateway, "Google refused the sign-in. Please try again.")
	g.assertSignedOut(t, victim, "mallory@example.com")
	ex := g.fake.exchangeLog()
	if len(ex) != 1 || ex[0].code != code || ex[0].verifier == "" || ex[0].refused != "code_verifier does not match code_challenge" {
		t.Fatalf("token requests: got %+v, want one with code %q refused for its code_verifier", ex, code)
	}
	if n := g.fake.userinfoCount(); n != 0 {
		t.Errorf("userinfo requests: got %d, want 0", n)
	}

	// The same code, in the browser whose challenge it was minted for, signs
	// in: the refusal above was PKCE's doing.
	resp, _ = googleGet(t, attacker, attackerCallback.String())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("the attacker's own callback: got %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A redeemed code is refused, even with a valid state and verifier.
	t.Run("second use of a code", func(t *testing.T) {
		again := testrig.NewBrowser()
		auth := g.start(t, again)
		replay := googleWithQuery(attackerCallback, map[string]string{"state": auth.Query().Get("state")})
		resp, body := googleGet(t, again, replay.String())
		googleAssertRefused(t, resp, body, http.StatusBadGateway, "Google refused the sign-in. Please try again.")
		if resp, _ := googleGet(t, again, g.URL+"/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Errorf("GET / afterwards: got %d to %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
		}
		ex := g.fake.exchangeLog()
		if last := ex[len(ex)-1]; last.code != code || last.refused != "code already redeemed" {
			t.Errorf("last token request: got %+v, want code %q refused as already redeemed", last, code)
		}
	})

	// The fake Google itself refuses an exchange without a verifier, so the
	// verifier checks above and in TestGoogleSignIn mean something.
	t.Run("fake Google requires code_verifier", func(t *testing.T) {
		b := testrig.NewBrowser()
		cb := g.authorize(t, b, g.start(t, b))
		resp, err := http.PostForm(g.fake.URL+"/token", url.Values{
			"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {g.URL + "/auth/google/callback"},
			"client_id":    {fakeGoogleClientID}, "client_secret": {fakeGoogleClientSecret},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct{ Error string }
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusBadRequest || got.Error != "invalid_grant" {
			t.Errorf("token request without code_verifier: got %d %+v (%v), want 400 invalid_grant", resp.StatusCode, got, err)
		}
	})
}

// TestGoogleSignInRefusesUnverifiedEmail signs in only verified e-mail
// addresses.
func TestGoogleSignInRefusesUnverifiedEmail(t *testing.T) {
	tests := []struct {
		name    string
		profile googleProfile
	}{
		{"unverified", googleProfile{Sub: "2", Email: "eve@example.com", EmailVerified: false, Name: "Eve"}},
		{"no e-mail", googleProfile{Sub: "3", Email: "", EmailVerified: true, Name: "Nobody"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGoogleSilo(t, config.SQLite)
			g.fake.configure(func(b *fakeGoogleBehaviour) { b.profile = tt.profile })
			browser := testrig.NewBrowser()
			callback := g.authorize(t, browser, g.start(t, browser))
			resp, body := googleGet(t, browser, callback.String())
			googleAssertRefused(t, resp, body, http.StatusForbidden, "Your Google account's e-mail address is not verified, so it cannot sign in.")
			g.assertSignedOut(t, browser, tt.profile.Email)
		})
	}
}

// TestGoogleSignInProviderErrors refuses a sign-in Google did not complete.
func TestGoogleSignInProviderErrors(t *testing.T) {
	tests := []struct {
		name      string
		behave    func(*fakeGoogleBehaviour)
		status    int
		message   string
		exchanges int // token requests silo should make
		userinfos int // userinfo requests answered
	}{
		{
			name:   "access denied at Google",
			behave: func(b *fakeGoogleBehaviour) { b.authError = "access_denied" },
			status: http.StatusUnauthorized, message: "You cancelled the Google sign-in (access_denied).",
		},
		{
			name:   "token endpoint fails",
			behave: func(b *fakeGoogleBehaviour) { b.tokenStatus = http.StatusInternalServerError },
			status: http.StatusBadGateway, message: "Google refused the sign-in. Please try again.", exchanges: 1,
		},
		{
			name:   "token endpoint answers invalid_grant",
			behave: func(b *fakeGoogleBehaviour) { b.tokenStatus = http.StatusBadRequest },
			status: http.StatusBadGateway, message: "Google refused the sign-in. Please try again.", exchanges: 1,
		},
		{
			name:   "userinfo fails",
			behave: func(b *fakeGoogleBehaviour) { b.userinfoStatus = http.StatusInternalServerError },
			status: http.StatusBadGateway, message: "We could not read your Google profile. Please try again.", exchanges: 1, userinfos: 1,
		},
		{
			name:   "userinfo is not JSON",
			behave: func(b *fakeGoogleBehaviour) { b.userinfoBody = "<html>oops</html>" },
			status: http.StatusBadGateway, message: "We could not read your Google profile. Please try again.", exchanges: 1, userinfos: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGoogleSilo(t, config.SQLite)
			g.fake.configure(func(b *fakeGoogleBehaviour) {
				b.profile = googleProfile{Sub: "4", Email: "ada@example.com", EmailVerified: true, Name: "Ada"}
				tt.behave(b)
			})
			browser := testrig.NewBrowser()
			auth := g.start(t, browser)
			callback := g.authorize(t, browser, auth)
			if got := callback.Query().Get("state"); got != auth.Query().Get("state") {
				t.Fatalf("callback state: got %q, want %q", got, auth.Query().Get("state"))
			}
			resp, body := googleGet(t, browser, callback.String())
			googleAssertRefused(t, resp, body, tt.status, tt.message)
			g.assertSignedOut(t, browser, "ada@example.com")
			if ex := g.fake.exchangeLog(); len(ex) != tt.exchanges {
				t.Errorf("token requests: got %+v, want %d", ex, tt.exchanges)
			}
			if n := g.fake.userinfoCount(); n != tt.userinfos {
				t.Errorf("userinfo requests: got %d, want %d", n, tt.userinfos)
			}
		})
	}
}

// TestGoogleRoutesNotFoundWhenUnconfigured has no Google routes without
// GOOGLE_CLIENT_ID.
func TestGoogleRoutesNotFoundWhenUnconfigured(t *testing.T) {
	databaseURL := testdb.NewDatabaseURL(t, config.SQLite)
	store := testdb.Open(t, databaseURL)
	testdb.Migrate(t, store)
	cfg := testrig.Config(databaseURL)
	if cfg.GoogleClientID != "" {
		t.Fatalf("testrig.Config: GoogleClientID %q, want empty", cfg.GoogleClientID)
	}
	s := testrig.NewServer(t, cfg, store)

	if resp, body := s.Get(t, "/login"); resp.StatusCode != http.StatusOK || strings.Contains(body, "Continue with Google") {
		t.Errorf("GET /login: got %d, with Google: %t; want 200 without Google", resp.StatusCode, strings.Contains(body, "Continue with Google"))
	}
	for _, path := range []string{"/auth/google", "/auth/google/callback?code=4%2F0Acode&state=abc"} {
		if resp, _ := s.Get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestGoogleSignInDropsNonHTTPSPicture stores a Google picture only if it
// is an https URL.
func TestGoogleSignInDropsNonHTTPSPicture(t *testing.T) {
	tests := []struct{ name, picture string }{
		{"http", "http://lh3.googleusercontent.com/a/ada-s96-c"},
		{"scheme-relative", "//lh3.googleusercontent.com/a/ada-s96-c"},
		{"javascript", "javascript:alert(1)"},
		{"data", "data:image/svg+xml;base64,PHN2Zy8+"},
		{"longer than 2048 bytes", "https://lh3.googleusercontent.com/a/" + strings.Repeat("a", 2048)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGoogleSilo(t, config.SQLite)
			g.fake.configure(func(b *fakeGoogleBehaviour) {
				b.profile = googleProfile{Sub: "5", Email: "ada@example.com", EmailVerified: true, Name: "Ada", Picture: tt.picture}
			})
			browser := testrig.NewBrowser()
			callback := g.authorize(t, browser, g.start(t, browser))
			if resp, _ := googleGet(t, browser, callback.String()); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("callback: got %d, want 303", resp.StatusCode)
			}
			u, err := g.Store.UserByEmail(t.Context(), "ada@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if u.AvatarURL != "" || u.Name != "Ada" {
				t.Errorf("user: got avatar %q, name %q; want no avatar, name Ada", u.AvatarURL, u.Name)
			}
			_, body := googleGet(t, browser, g.URL+"/")
			if strings.Contains(body, `<img class="avatar"`) || !strings.Contains(body, "avatar-letter") {
				t.Errorf("GET /: got an avatar picture, want the letter:\n%s", body)
			}
		})
	}
}
