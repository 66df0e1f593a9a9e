package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"silo/pdf"
)

// boxesPath is the address of the boxes of text on page n of document id.
func boxesPath(id, n, text string) string {
	return "/documents/" + id + "/pages/" + n + "/boxes?text=" + url.QueryEscape(text)
}

// A sentence of a page is found there, as boxes on the page; on another
// page, or for text the page does not have, the list is empty; other
// users' documents, unknown ones and pages the document does not have are
// 404, and an over-long text is refused.
func TestPageBoxes(t *testing.T) {
	t.Parallel()
	srv, _, id := chatServer(t, nil)
	// Page 2 of jacksonville-florida.pdf opens with this, over two lines.
	sentence := "Jacksonville is the largest city by population in the U.S. state of Florida, and the largest city by area in the contiguous United States."
	var got struct{ Boxes []pdf.Box }

	resp, body := srv.Get(t, boxesPath(id, "2", sentence))
	wantStatus(t, resp, http.StatusOK, body)
	wantJSON(t, resp, body, &got)
	if len(got.Boxes) != 2 {
		t.Fatalf("got %s, want 2 boxes", body)
	}
	for _, b := range got.Boxes {
		if b.X < 0 || b.Y < 0 || b.W <= 0 || b.H <= 0 || b.X+b.W > 1 || b.Y+b.H > 1 || b.Y > 0.2 {
			t.Errorf("got box %+v, want one near the top of the page", b)
		}
	}

	for _, tc := range []struct{ name, page, text string }{
		{"another page", "3", sentence},
		{"no text", "2", ""},
		{"not on the page", "2", "Nothing of the kind is written anywhere in this document at all."},
	} {
		resp, body := srv.Get(t, boxesPath(id, tc.page, tc.text))
		wantStatus(t, resp, http.StatusOK, body)
		if strings.TrimSpace(body) != `{"boxes":[]}` {
			t.Errorf("%s: got %s, want no boxes", tc.name, body)
		}
	}

	resp, body = srv.Get(t, boxesPath(id, "2", strings.Repeat("a", pdf.MaxLocateText+1)))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)

	other, _ := signedInAccount(t, srv, "other@example.com")
	for _, tc := range []struct {
		name string
		b    interface {
			Get(testing.TB, string) (*http.Response, string)
		}
		path string
	}{
		{"another user's document", other, boxesPath(id, "2", sentence)},
		{"an unknown document", srv, boxesPath("nosuchdocument", "2", sentence)},
		{"page 0", srv, boxesPath(id, "0", sentence)},
		{"page 02", srv, boxesPath(id, "02", sentence)},
		{"past the last page", srv, boxesPath(id, "999", sentence)},
	} {
		resp, body := tc.b.Get(t, tc.path)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "boxes") {
			t.Errorf("%s: got %d %.80q, want 404", tc.name, resp.StatusCode, body)
		}
	}
}

// A reader that times out while looking gives an error that says so, and
// the server keeps serving.
func TestPageBoxesReaderFailure(t *testing.T) {
	t.Parallel()
	srv, _, id := chatServer(t, nil)
	t.Run("timed out", func(t *testing.T) {
		srv.SetReader(t, append([]string{"sh", "-c",
			`if [ "$SILO_EXTRACT_MODE" = locate ]; then exec sleep 60; fi; exec "$@"`, "reader"}, srv.Reader()...), 2*time.Second)
		resp, body := srv.Get(t, boxesPath(id, "2", "Jacksonville is the largest city"))
		wantStatus(t, resp, http.StatusInternalServerError, body)
		if !strings.Contains(body, "Page 2 could not be read: timed out after 2 s.") {
			t.Errorf("got %.300q, want the reason", body)
		}
	})
	// The reader of the subtest is gone.
	resp, body := srv.Get(t, boxesPath(id, "2", "Jacksonville is the largest city"))
	wantStatus(t, resp, http.StatusOK, body)
}
