package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"silo/config"
	"silo/models"
	"silo/testrig"
)

// apiUser signs email in through the store and returns the user and a new
// API token of theirs.
func apiUser(t testing.TB, store *models.Store, email string) (*models.User, string) {
	t.Helper()
	ctx := context.Background()
	u, err := store.SignIn(ctx, models.Profile{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	token, err := store.CreateAPIToken(ctx, u.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	return u, token
}

// apiGet fetches path from the API with the Authorization header auth (none
// if empty). The API never sets a session cookie, so apiGet fails on one.
func apiGet(t *testing.T, srv *testrig.Server, path, auth string) (*http.Response, string) {
	t.Helper()
	header := http.Header{}
	if auth != "" {
		header.Set("Authorization", auth)
	}
	resp, body := send(t, srv.Browser, http.MethodGet, srv.URL+path, "", header)
	if v := resp.Header.Values("Set-Cookie"); len(v) != 0 {
		t.Errorf("GET %s: got Set-Cookie %q, want none from the API", path, v)
	}
	return resp, body
}

// documentsOf lists the documents the API shows to the owner of token.
func documentsOf(t *testing.T, srv *testrig.Server, token string) []map[string]any {
	t.Helper()
	resp, body := apiGet(t, srv, "/api/v1/documents", "Bearer "+token)
	wantStatus(t, resp, http.StatusOK, body)
	var raw map[string]json.RawMessage
	wantJSON(t, resp, body, &raw)
	list, ok := raw["documents"]
	if !ok || strings.TrimSpace(string(list)) == "null" {
		t.Fatalf(`GET /api/v1/documents: got %s, want {"documents": [...]} with an array`, body)
	}
	var docs []map[string]any
	if err := json.Unmarshal(list, &docs); err != nil {
		t.Fatalf("documents: %v in %s", err, body)
	}
	return docs
}

func TestAPIRefusesMissingOrBadToken(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	_, token := apiUser(t, srv.Store, "ann@example.com")
	for _, tc := range []struct{ name, auth string }{
		{"no Authorization", ""},
		{"Bearer nonsense", "Bearer nonsense"},
		{"Basic", "Basic xxx"},
		{"Basic with a real token", "Basic " + token},
		{"Bearer and nothing", "Bearer "},
		{"a silo-looking token that does not exist", "Bearer silo_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"a real token with a character changed", "Bearer " + token[:len(token)-1] + flip(token[len(token)-1])},
		{"token alone, no scheme", token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := apiGet(t, srv, "/api/v1/documents", tc.auth)
			wantStatus(t, resp, http.StatusUnauthorized, body)
			var got map[string]any
			wantJSON(t, resp, body, &got)
			if msg, _ := got["error"].(string); msg == "" {
				t.Errorf(`got %s, want an "error" message`, body)
			}
			if _, ok := got["documents"]; ok {
				t.Errorf("got documents in a refusal: %s", body)
			}
			if w := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(w, "Bearer") {
				t.Errorf("got WWW-Authenticate %q, want a Bearer challenge", w)
			}
		})
	}
}

// flip is a different base64url character than c.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// A session cookie does not authenticate the API: only a token does.
func TestAPIIgnoresSessionCookie(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	srv.SignIn(t, "ann@example.com")
	resp, body := apiGet(t, srv, "/api/v1/documents", "")
	wantStatus(t, resp, http.StatusUnauthorized, body)
}

func TestAPIDocuments(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newServer(t, engine, nil)
		ann, annToken := apiUser(t, srv.Store, "ann@example.com")
		bob, bobToken := apiUser(t, srv.Store, "bob@example.com")

		resp, body := apiGet(t, srv, "/api/v1/documents", "Bearer "+annToken)
		wantStatus(t, resp, http.StatusOK, body)
		var empty map[string]json.RawMessage
		wantJSON(t, resp, body, &empty)
		if len(empty) != 1 || strings.TrimSpace(string(empty["documents"])) != "[]" {
			t.Fatalf(`GET /api/v1/documents with no documents: got %s, want {"documents":[]}`, body)
		}

		now := time.Now().UTC().Truncate(time.Second)
		doc := &models.Document{
			PublicID: "bobsdocument0000000000000000000a", UserID: bob.ID, Title: "Bob's report",
			FileName: "report.pdf", SizeBytes: 1234, Pages: 7, Status: models.DocumentReady,
			CreatedAt: now, UpdatedAt: now,
		}
		if _, err := srv.Store.DB.NewInsert().Model(doc).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}

		if docs := documentsOf(t, srv, annToken); len(docs) != 0 {
			t.Errorf("user %d got %v, want none of another user's documents", ann.ID, docs)
		}
		docs := documentsOf(t, srv, bobToken)
		if len(docs) != 1 {
			t.Fatalf("the owner got %d documents, want 1: %v", len(docs), docs)
		}
		want := map[string]any{
			"id": doc.PublicID, "title": "Bob's report", "file_name": "report.pdf",
			"size_bytes": 1234.0, "pages": 7.0, "status": "ready", "error": "",
		}
		for k, v := range want {
			if docs[0][k] != v {
				t.Errorf("document %s: got %v, want %v", k, docs[0][k], v)
			}
		}
		created, err := time.Parse(time.RFC3339, docs[0]["created_at"].(string))
		if err != nil || !created.Equal(now) {
			t.Errorf("document created_at: got %v (%v), want %v", docs[0]["created_at"], err, now)
		}
		if _, ok := docs[0]["user_id"]; ok {
			t.Error("the API shows the internal user id")
		}

		// The scheme is case-insensitive, as RFC 9110 says.
		resp, body = apiGet(t, srv, "/api/v1/documents", "bearer "+bobToken)
		wantStatus(t, resp, http.StatusOK, body)
	})
}

func TestAPIUnknownPath(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	_, token := apiUser(t, srv.Store, "ann@example.com")
	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
	}{
		{"unknown path with a token", http.MethodGet, "/api/v1/nope", "Bearer " + token, http.StatusNotFound},
		{"unknown path without a token", http.MethodGet, "/api/v1/documents/x/y", "", http.StatusNotFound},
		{"unknown version", http.MethodGet, "/api/v2/documents", "Bearer " + token, http.StatusNotFound},
		{"wrong method", http.MethodDelete, "/api/v1/documents", "Bearer " + token, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := http.Header{}
			if tc.auth != "" {
				header.Set("Authorization", tc.auth)
			}
			resp, body := send(t, srv.Browser, tc.method, srv.URL+tc.path, "", header)
			wantStatus(t, resp, tc.status, body)
			var got map[string]any
			wantJSON(t, resp, body, &got)
			if msg, _ := got["error"].(string); msg == "" {
				t.Errorf(`got %s, want an "error" message`, body)
			}
			if setCookie(resp) != nil {
				t.Error("the API set a session cookie")
			}
		})
	}
}
