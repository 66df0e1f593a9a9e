package handlers_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"silo/pdf"
)

// API clients get a source's page image and where its snippet lies, as the
// chat page does, with their bearer token: their own documents only, with
// JSON errors.
func TestPagesAPI(t *testing.T) {
	t.Parallel()
	srv, a, id := chatServer(t, nil)
	sentence := "Jacksonville is the largest city by population in the U.S. state of Florida, and the largest city by area in the contiguous United States."
	api := func(token, path string) (*http.Response, string) {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		return send(t, srv.Browser, http.MethodGet, srv.URL+"/api/v1"+path, "", h)
	}

	resp, body := api(a.token, "/documents/"+id+"/pages/2")
	wantPageImage(t, resp, body)

	resp, body = api(a.token, boxesPath(id, "2", sentence))
	wantStatus(t, resp, http.StatusOK, body)
	var got struct{ Boxes []pdf.Box }
	wantJSON(t, resp, body, &got)
	if len(got.Boxes) != 2 {
		t.Errorf("got %s, want the sentence's 2 boxes", body)
	}

	other := newAPIAccount(t, srv, "other@example.com")
	for _, tc := range []struct {
		name, token, path string
		want              int
	}{
		{"no token", "", "/documents/" + id + "/pages/2", http.StatusUnauthorized},
		{"another user's page", other.token, "/documents/" + id + "/pages/2", http.StatusNotFound},
		{"another user's boxes", other.token, boxesPath(id, "2", sentence), http.StatusNotFound},
		{"past the last page", a.token, "/documents/" + id + "/pages/999", http.StatusNotFound},
		{"an unknown document", a.token, boxesPath("nosuchdocument", "2", sentence), http.StatusNotFound},
		{"an over-long snippet", a.token, boxesPath(id, "2", strings.Repeat("a", pdf.MaxLocateText+1)), http.StatusUnprocessableEntity},
	} {
		resp, body := api(tc.token, tc.path)
		var e struct{ Error string }
		if resp.StatusCode != tc.want || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s: got %d %.80q, want %d with a JSON error", tc.name, resp.StatusCode, body, tc.want)
		}
	}
}
