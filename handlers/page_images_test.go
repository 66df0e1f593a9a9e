package handlers_test

import (
	"bytes"
	"context"
	"html"
	"image"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"silo/models"
	"silo/pdf"
	"silo/testrig"
	"silo/testrig/datasets"
	"silo/testrig/pdftest"
)

// Helpers of the page image tests.

// countRenders makes srv's PDF reader note each page it is asked to draw
// and returns how many it has been asked so far. Call it while no document
// is being ingested.
func countRenders(t *testing.T, srv *testrig.Server) func() int {
	t.Helper()
	file := filepath.Join(t.TempDir(), "renders")
	srv.SetReader(t, append([]string{"sh", "-c",
		`if [ "$SILO_EXTRACT_MODE" = render ]; then echo "$SILO_EXTRACT_PAGE" >> "$0"; fi; exec "$@"`, file},
		srv.Reader()...), 0)
	return func() int {
		b, err := os.ReadFile(file)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte("\n"))
	}
}

// readyDocument uploads pdf as a's and waits until it is ready.
func readyDocument(t *testing.T, srv *testrig.Server, a account, name string, pdf []byte) string {
	t.Helper()
	id := uploadPDF(t, srv, a, name, pdf)
	if d := waitDoc(t, srv, a, id, time.Minute); d.Status != models.DocumentReady {
		t.Fatalf("%s: got %s (%q), want ready", name, d.Status, d.Error)
	}
	return id
}

// wantPageImage checks a page image response and decodes the PNG.
func wantPageImage(t *testing.T, resp *http.Response, body string) image.Image {
	t.Helper()
	wantStatus(t, resp, http.StatusOK, "(an image)")
	if ct := resp.Header.Get("Content-Type"); ct != "image/png" {
		t.Errorf("got Content-Type %q, want image/png", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "private, max-age=86400" {
		t.Errorf("got Cache-Control %q, want private, max-age=86400", cc)
	}
	if etag := resp.Header.Get("ETag"); len(etag) < 10 || !strings.HasPrefix(etag, `"`) {
		t.Errorf("got ETag %q, want a quoted tag", etag)
	}
	m, err := png.Decode(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the page image is not a PNG: %v", err)
	}
	if b := m.Bounds(); b.Dx() > pdf.MaxPageImageWidth || b.Dx()*b.Dy() > pdf.MaxPageImagePixels {
		t.Errorf("got %d × %d pixels, want at most %d wide and %d pixels", b.Dx(), b.Dy(), pdf.MaxPageImageWidth, pdf.MaxPageImagePixels)
	}
	return m
}

// wantNoPage checks that a request for a page image is 404 with no image.
func wantNoPage(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s: got status %d, want 404", resp.Request.URL.Path, resp.StatusCode)
	}
	if strings.HasPrefix(body, "\x89PNG") || resp.Header.Get("Content-Type") == "image/png" {
		t.Errorf("GET %s: got an image, want none", resp.Request.URL.Path)
	}
}

// pageImages counts the page images the tenant database caches of a
// document.
func pageImages(t *testing.T, srv *testrig.Server, userID int64, docID string) int {
	t.Helper()
	n, err := tenantDB(t, srv, userID).NewSelect().Table("page_images").Where("document_id = ?", docID).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// The tests.

// A page of a ready document comes as a PNG within the size limits, drawn
// once: later and concurrent requests are served from the cache, a
// browser's copy is revalidated by its ETag, and deleting the document
// deletes its page images.
func TestPageImage(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	annBrowser, ann := signedInAccount(t, srv, "ann@example.com")
	id := readyDocument(t, srv, ann, "four.pdf", datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf"))
	renders := countRenders(t, srv)
	path := "/documents/" + id + "/pages/"

	resp, first := annBrowser.Get(t, path+"1")
	m := wantPageImage(t, resp, first)
	if w := m.Bounds().Dx(); w < pdf.MaxPageImageWidth*99/100 {
		t.Errorf("a Letter page: got %d pixels wide, want about %d", w, pdf.MaxPageImageWidth)
	}
	if pdftest.Inked(m) == 0 {
		t.Error("the page image is blank")
	}
	etag := resp.Header.Get("ETag")
	if n := renders(); n != 1 {
		t.Fatalf("got %d renders, want 1", n)
	}

	t.Run("again, from the cache", func(t *testing.T) {
		resp, again := annBrowser.Get(t, path+"1")
		_ = wantPageImage(t, resp, again)
		if again != first || resp.Header.Get("ETag") != etag {
			t.Error("the second answer differs from the first")
		}
		resp, body := send(t, annBrowser.Browser, http.MethodGet, srv.URL+path+"1", "", http.Header{"If-None-Match": {etag}})
		if resp.StatusCode != http.StatusNotModified || body != "" {
			t.Errorf("with If-None-Match: got status %d and %d bytes, want 304 and none", resp.StatusCode, len(body))
		}
		if n := renders(); n != 1 {
			t.Errorf("got %d renders, want still 1", n)
		}
	})

	t.Run("concurrent requests share one render", func(t *testing.T) {
		const clients = 8
		bodies := make([]string, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				resp, err := annBrowser.Browser.Get(srv.URL + path + "2")
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				var b bytes.Buffer
				_, _ = b.ReadFrom(resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("request %d: got status %d, want 200", i, resp.StatusCode)
				}
				bodies[i] = b.String()
			})
		}
		wg.Wait()
		for i := range bodies {
			if bodies[i] != bodies[0] || !strings.HasPrefix(bodies[i], "\x89PNG") {
				t.Fatalf("request %d: got a different answer than request 0", i)
			}
		}
		if n := renders(); n != 2 {
			t.Errorf("got %d renders, want 2 (page 1, then page 2 once)", n)
		}
	})

	t.Run("no such page", func(t *testing.T) {
		for _, n := range []string{"0", "5", "-1", "x", "01", "+1", "1.5", "1e0", "99999999999999999999"} {
			resp, body := annBrowser.Get(t, path+n)
			wantNoPage(t, resp, body)
		}
		for _, other := range []string{models.NewPublicID(), "nope"} {
			resp, body := annBrowser.Get(t, "/documents/"+other+"/pages/1")
			wantNoPage(t, resp, body)
		}
		if n := renders(); n != 2 {
			t.Errorf("got %d renders, want still 2", n)
		}
	})

	t.Run("another user's document", func(t *testing.T) {
		bobBrowser, _ := signedInAccount(t, srv, "bob@example.com")
		for _, n := range []string{"1", "3"} {
			resp, body := bobBrowser.Get(t, path+n)
			wantNoPage(t, resp, body)
		}
		resp, body := withBrowser(srv, testrig.NewBrowser()).Get(t, path+"1")
		wantRedirect(t, resp, "/login")
		if strings.HasPrefix(body, "\x89PNG") {
			t.Error("signed out: got the image")
		}
		if n := renders(); n != 2 {
			t.Errorf("got %d renders, want still 2", n)
		}
	})

	t.Run("deleted with the document", func(t *testing.T) {
		if n := pageImages(t, srv, ann.user.ID, id); n != 2 {
			t.Fatalf("got %d cached page images, want 2", n)
		}
		resp, body := send(t, srv.Browser, http.MethodDelete, srv.URL+"/api/v1/documents/"+id, "", ann.bearer())
		wantStatus(t, resp, http.StatusNoContent, body)
		if n := pageImages(t, srv, ann.user.ID, id); n != 0 {
			t.Errorf("after deleting the document: got %d cached page images, want none", n)
		}
		resp, body = annBrowser.Get(t, path+"1")
		wantNoPage(t, resp, body)
	})
}

// A document that is not ready has no page images yet, even with its file
// in the tenant database; one that failed has none either.
func TestPageImageNotReady(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	annBrowser, ann := signedInAccount(t, srv, "ann@example.com")
	resp, body := apiUpload(t, srv, ann, filePart("locked.pdf", datasets.Read(t, "sample-pdfs", "libreoffice-writer-password.pdf")))
	wantStatus(t, resp, http.StatusAccepted, body)
	var locked struct{ ID, Status string }
	wantJSON(t, resp, body, &locked)
	if locked.Status != models.DocumentFailed {
		t.Fatalf("a password-protected PDF: got %s, want failed", body)
	}
	// The reader checks the upload (its first line), then takes its time
	// over the text.
	renders := filepath.Join(t.TempDir(), "renders")
	srv.SetReader(t, []string{"sh", "-c",
		`case "$SILO_EXTRACT_MODE" in text) echo '{"pages":4}'; exec sleep 60 ;; render) echo render >> "$0" ;; esac; exec "$1"`,
		renders, srv.Reader()[0]}, 0)
	id := uploadPDF(t, srv, ann, "four.pdf", datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf"))
	for deadline := time.Now().Add(time.Minute); getDoc(t, srv, ann, id).Status != models.DocumentProcessing; time.Sleep(25 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the document was not taken up for a minute")
		}
	}

	for _, doc := range []string{id, locked.ID} {
		resp, body := annBrowser.Get(t, "/documents/"+doc+"/pages/1")
		wantNoPage(t, resp, body)
	}
	if _, err := os.Stat(renders); !os.IsNotExist(err) {
		t.Errorf("the reader was asked to draw a page (%v), want not", err)
	}
}

// However large a page claims to be, or however long and thin, its image
// stays within the limits.
func TestPageImageHugePage(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	annBrowser, ann := signedInAccount(t, srv, "ann@example.com")
	for _, box := range []string{"[0 0 14400000 14400000]", "[0 0 200 20000]", "[0 0 20000 200]"} {
		id := readyDocument(t, srv, ann, "huge.pdf", pdftest.Minimal("()", box, "Huge page"))
		resp, body := annBrowser.Get(t, "/documents/"+id+"/pages/1")
		m := wantPageImage(t, resp, body)
		t.Logf("MediaBox %s: %d × %d pixels", box, m.Bounds().Dx(), m.Bounds().Dy())
	}
}

// A reader that is killed or runs out of time while drawing a page gives
// an error page that says so; the server keeps serving, nothing is cached,
// and the page is drawn once the reader works.
func TestPageImageRenderFailure(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	annBrowser, ann := signedInAccount(t, srv, "ann@example.com")
	id := readyDocument(t, srv, ann, "four.pdf", datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf"))
	reader := srv.Reader()
	path := "/documents/" + id + "/pages/1"

	for _, tc := range []struct {
		name, render, reason string
	}{
		{"killed", `kill -9 $$`, "Page 1 could not be drawn: the PDF could not be read: the reader stopped (signal: killed)."},
		{"timed out", `exec sleep 60`, "Page 1 could not be drawn: timed out after 2 s."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetReader(t, append([]string{"sh", "-c",
				`if [ "$SILO_EXTRACT_MODE" = render ]; then ` + tc.render + `; fi; exec "$@"`, "reader"}, reader...), 2*time.Second)
			start := time.Now()
			resp, body := annBrowser.Get(t, path)
			wantStatus(t, resp, http.StatusInternalServerError, body)
			if !strings.Contains(html.UnescapeString(body), tc.reason) {
				t.Errorf("the error page does not say %q:\n%s", tc.reason, body)
			}
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("took %v, want at most about 2 s", took)
			}
			wantHealthy(t, srv)
		})
	}
	if n := pageImages(t, srv, ann.user.ID, id); n != 0 {
		t.Errorf("got %d cached page images after failures, want none", n)
	}
	// The subtests' readers are gone.
	resp, body := annBrowser.Get(t, path)
	_ = wantPageImage(t, resp, body)
}
