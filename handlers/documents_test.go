package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"silo/config"
	"silo/models"
	"silo/tenant"
	"silo/testrig"
	"silo/testrig/datasets"
	"silo/testrig/pdftest"
	"silo/testrig/tenantdata"
)

// Helpers of the document tests.

// docServer starts silo on a SQLite control plane with SQLite tenants.
func docServer(t testing.TB, configure func(*config.Config)) *testrig.Server {
	t.Helper()
	return newServer(t, config.SQLite, configure)
}

// account is a user with a ready workspace and an API token.
type account struct {
	user  *models.User
	token string
}

// newAPIAccount makes a user with an API token and a ready workspace, as
// `silo token EMAIL` does.
func newAPIAccount(t *testing.T, srv *testrig.Server, email string) account {
	t.Helper()
	u, token := apiUser(t, srv.Store, email)
	if _, err := srv.Ingester.Tenants.Ensure(context.Background(), u); err != nil {
		t.Fatalf("make the workspace of %s: %v", email, err)
	}
	return account{user: u, token: token}
}

// signedInAccount signs a new browser in as email (which makes the
// workspace) and gives the user an API token too.
func signedInAccount(t testing.TB, srv *testrig.Server, email string) (*testrig.Server, account) {
	t.Helper()
	b := withBrowser(srv, testrig.NewBrowser())
	b.SignIn(t, email)
	u, err := srv.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	token, err := srv.Store.CreateAPIToken(context.Background(), u.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	return b, account{user: u, token: token}
}

func (a account) bearer() http.Header { return http.Header{"Authorization": {"Bearer " + a.token}} }

// part is one part of a multipart body.
type part struct {
	field, fileName string // no fileName: a plain form field
	data            []byte
}

func filePart(name string, data []byte) part { return part{field: "file", fileName: name, data: data} }

// multipartBody encodes parts as multipart/form-data.
func multipartBody(t testing.TB, parts ...part) (body, contentType string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p.fileName != "" {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.field, p.fileName))
			h.Set("Content-Type", "application/pdf")
		} else {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.field))
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write(p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String(), w.FormDataContentType()
}

// apiUploadRaw posts body to POST /api/v1/documents as a's.
func apiUploadRaw(t testing.TB, srv *testrig.Server, a account, body, contentType string) (*http.Response, string) {
	t.Helper()
	h := a.bearer()
	h.Set("Content-Type", contentType)
	return send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/documents", body, h)
}

// apiUpload uploads parts through the API as a's.
func apiUpload(t testing.TB, srv *testrig.Server, a account, parts ...part) (*http.Response, string) {
	t.Helper()
	body, ct := multipartBody(t, parts...)
	return apiUploadRaw(t, srv, a, body, ct)
}

// uploadPDF uploads one PDF through the API, wants it accepted (202) and
// returns its id.
func uploadPDF(t testing.TB, srv *testrig.Server, a account, name string, pdf []byte) string {
	t.Helper()
	resp, body := apiUpload(t, srv, a, filePart(name, pdf))
	wantStatus(t, resp, http.StatusAccepted, body)
	var got struct{ ID, Status string }
	wantJSON(t, resp, body, &got)
	if got.ID == "" || got.Status != models.DocumentQueued {
		t.Fatalf("upload of %s: got %s, want an id and status queued", name, body)
	}
	return got.ID
}

// wantRefusal checks an API refusal: status, JSON and an error naming the
// problem.
func wantRefusal(t *testing.T, resp *http.Response, body string, status int, reason string) {
	t.Helper()
	wantStatus(t, resp, status, body)
	var got map[string]any
	wantJSON(t, resp, body, &got)
	if msg, _ := got["error"].(string); !strings.Contains(msg, reason) {
		t.Errorf("got error %q, want it to say %q", msg, reason)
	}
	if _, ok := got["id"]; ok {
		t.Errorf("a refusal carries a document id: %s", body)
	}
}

// apiDoc is a document as GET /api/v1/documents/{id} shows it.
type apiDoc struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	FileName   string `json:"file_name"`
	Status     string `json:"status"`
	Pages      int    `json:"pages"`
	PagesDone  int    `json:"pages_done"`
	EmptyPages int    `json:"empty_pages"`
	Chunks     int    `json:"chunks"`
	Error      string `json:"error"`
}

// getDoc fetches a document through the API.
func getDoc(t testing.TB, srv *testrig.Server, a account, id string) apiDoc {
	t.Helper()
	resp, body := send(t, srv.Browser, http.MethodGet, srv.URL+"/api/v1/documents/"+id, "", a.bearer())
	wantStatus(t, resp, http.StatusOK, body)
	var d apiDoc
	wantJSON(t, resp, body, &d)
	return d
}

// waitDoc polls the document until it is neither queued nor processing; it
// fails the test when that takes longer than wait.
func waitDoc(t testing.TB, srv *testrig.Server, a account, id string, wait time.Duration) apiDoc {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		d := getDoc(t, srv, a, id)
		if d.Status != models.DocumentQueued && d.Status != models.DocumentProcessing {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("document %s (%s): still %s after %v, %d of %d pages", id, d.FileName, d.Status, wait, d.PagesDone, d.Pages)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// tenantDB opens the user's tenant database until the test ends.
func tenantDB(t *testing.T, srv *testrig.Server, userID int64) *tenant.DB {
	t.Helper()
	return tenantdata.Open(t, srv.Store, srv.Ingester.Tenants, userID)
}

// holdings counts the user's documents in the control plane and files in
// their tenant database.
func holdings(t *testing.T, srv *testrig.Server, db *tenant.DB, userID int64) (docs, files int) {
	t.Helper()
	ctx := context.Background()
	docs, err := srv.Store.CountDocuments(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.NewSelect().Table("files").Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return docs, int(n)
}

// wantNothingOf fails unless the tenant database holds nothing of the
// document: no file, pages or chunks.
func wantNothingOf(t *testing.T, db *tenant.DB, id string) {
	t.Helper()
	pages, chunks, file := tenantdata.Counts(t, db, id)
	if pages != 0 || chunks != 0 || file {
		t.Errorf("document %s: the tenant database holds %d pages, %d chunks, file %v; want nothing", id, pages, chunks, file)
	}
}

// wantHealthy fails unless the server still answers its health check.
func wantHealthy(t *testing.T, srv *testrig.Server) {
	t.Helper()
	resp, body := send(t, srv.Browser, http.MethodGet, srv.URL+"/healthz", "", nil)
	wantStatus(t, resp, http.StatusOK, body)
}

// sampleNoText counts the sample pages without a text layer (scans and
// images), by file name, as MuPDF reads them (see pdf/extract_test.go).
var sampleNoText = map[string][]int{
	"imagemagick-ASCII85Decode.pdf":  {1},
	"imagemagick-CCITTFaxDecode.pdf": {1},
	"imagemagick-images.pdf":         {4, 5},
	"imagemagick-lzw.pdf":            {1},
	"grayscale-image.pdf":            {1},
	"cmyk-image.pdf":                 {1},
}

// sampleUnreadable are the sample PDFs MuPDF cannot open (their page tree
// is broken), refused at upload with this reason.
var sampleUnreadable = map[string]string{
	"unreadablemetadata.pdf": "unreadablemetadata.pdf could not be read as a PDF (the file is not a PDF that can be read: no pages could be found in it)",
}

// The tests.

// Every sample PDF uploaded through the API ends ready, with text on its
// pages that have text, or failed (or refused) with the right reason.
func TestUploadSamplePDFs(t *testing.T) {
	t.Parallel()
	_, files := datasets.SamplePDFs(t)
	srv := docServer(t, nil)
	ann := newAPIAccount(t, srv, "ann@example.com")
	db := tenantDB(t, srv, ann.user.ID)

	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	ids := map[string]string{}
	for _, name := range names {
		resp, body := apiUpload(t, srv, ann, filePart(name, datasets.Read(t, "sample-pdfs", name)))
		if reason, ok := sampleUnreadable[name]; ok {
			wantRefusal(t, resp, body, http.StatusUnprocessableEntity, reason)
			continue
		}
		wantStatus(t, resp, http.StatusAccepted, body)
		var got struct{ ID, Status, Error string }
		wantJSON(t, resp, body, &got)
		want := models.DocumentQueued
		if files[name].Encrypted {
			want = models.DocumentFailed
		}
		if got.ID == "" || got.Status != want {
			t.Errorf("upload of %s: got %s, want an id and status %s", name, body, want)
		}
		ids[name] = got.ID
	}
	if docs, _ := holdings(t, srv, db, ann.user.ID); docs != len(ids) {
		t.Errorf("got %d documents, want the %d accepted", docs, len(ids))
	}

	for _, name := range names {
		id, ok := ids[name]
		if !ok {
			continue
		}
		want := files[name]
		t.Run(name, func(t *testing.T) {
			d := waitDoc(t, srv, ann, id, 3*time.Minute)
			if want.Encrypted {
				if d.Status != models.DocumentFailed || !strings.Contains(d.Error, "password-protected") {
					t.Fatalf("got status %s, error %q; want failed, password-protected", d.Status, d.Error)
				}
				wantNothingOf(t, db, id)
				return
			}
			if d.Status != models.DocumentReady || d.Error != "" {
				t.Fatalf("got status %s, error %q; want ready", d.Status, d.Error)
			}
			noText := sampleNoText[name]
			if d.Pages != want.Pages || d.PagesDone != want.Pages || d.EmptyPages != len(noText) {
				t.Errorf("got %d pages (%d done, %d without text), want %d (all done, %d without text)",
					d.Pages, d.PagesDone, d.EmptyPages, want.Pages, len(noText))
			}
			if hasText := want.Pages > len(noText); (d.Chunks > 0) != hasText {
				t.Errorf("got %d chunks, want some: %v", d.Chunks, hasText)
			}
			if d.Title == "" {
				t.Error("got no title, want the PDF's or the file's name")
			}
			pages, chunks, file := tenantdata.Counts(t, db, id)
			if pages != want.Pages || chunks != d.Chunks || !file {
				t.Errorf("tenant database: got %d pages, %d chunks, file %v; want %d, %d, true", pages, chunks, file, want.Pages, d.Chunks)
			}
			var rows []struct {
				Page int    `bun:"page"`
				Text string `bun:"text"`
			}
			if err := db.NewSelect().Table("pages").Column("page", "text").Where("document_id = ?", id).Order("page").Scan(context.Background(), &rows); err != nil {
				t.Fatal(err)
			}
			for _, p := range rows {
				if hasText, wantText := strings.TrimSpace(p.Text) != "", !slices.Contains(noText, p.Page); hasText != wantText {
					t.Errorf("page %d: got text %v (%.40q), want %v", p.Page, hasText, p.Text, wantText)
				}
			}
		})
	}
}

// Hostile and malformed uploads each get a clear refusal and leave nothing
// behind; the server stays up and still takes a good PDF afterwards.
func TestUploadHostileFiles(t *testing.T) {
	t.Parallel()
	srv := docServer(t, func(cfg *config.Config) { cfg.MaxUploadMB = 50 })
	ann := newAPIAccount(t, srv, "ann@example.com")
	db := tenantDB(t, srv, ann.user.ID)
	good := datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf")
	random := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(4, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	huge := "%PDF-1.4\n" + strings.Repeat("0", 60<<20)

	for _, tc := range []struct {
		name   string
		parts  []part
		body   string // instead of parts
		ctype  string
		status int
		reason string
	}{
		{name: "random bytes named .pdf", parts: []part{filePart("random.pdf", random)},
			status: http.StatusUnprocessableEntity, reason: "random.pdf is not a PDF"},
		{name: "random bytes after a PDF header", parts: []part{filePart("fake.pdf", append([]byte("%PDF-1.7\n"), random...))},
			status: http.StatusUnprocessableEntity, reason: "fake.pdf could not be read as a PDF (the file is not a PDF that can be read"},
		{name: "zero bytes", parts: []part{filePart("empty.pdf", nil)},
			status: http.StatusUnprocessableEntity, reason: "empty.pdf is empty"},
		{name: "no file field", parts: []part{{field: "title", data: []byte("a title")}},
			status: http.StatusUnprocessableEntity, reason: "choose a PDF to upload"},
		{name: "a file in another field", parts: []part{{field: "document", fileName: "a.pdf", data: good}},
			status: http.StatusUnprocessableEntity, reason: "choose a PDF to upload"},
		{name: "two files", parts: []part{filePart("one.pdf", good), filePart("two.pdf", good)},
			status: http.StatusUnprocessableEntity, reason: "send one file per request"},
		{name: "not multipart", body: string(good), ctype: "application/pdf",
			status: http.StatusUnprocessableEntity, reason: `send the PDF as multipart/form-data in the field "file"`},
		{name: "JSON", body: `{"file": "JVBERi0xLjQK"}`, ctype: "application/json",
			status: http.StatusUnprocessableEntity, reason: "multipart/form-data"},
		{name: "a multipart body cut short", body: "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.pdf\"\r\n\r\n%PDF-1.4\n",
			ctype: "multipart/form-data; boundary=xyz", status: http.StatusUnprocessableEntity, reason: "cut.pdf could not be received completely"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docsBefore, filesBefore := holdings(t, srv, db, ann.user.ID)
			var resp *http.Response
			var body string
			if tc.parts != nil {
				resp, body = apiUpload(t, srv, ann, tc.parts...)
			} else {
				resp, body = apiUploadRaw(t, srv, ann, tc.body, tc.ctype)
			}
			wantRefusal(t, resp, body, tc.status, tc.reason)
			if docs, files := holdings(t, srv, db, ann.user.ID); docs != docsBefore || files != filesBefore {
				t.Errorf("got %d documents and %d files, want %d and %d as before: the refusal left something behind", docs, files, docsBefore, filesBefore)
			}
			wantHealthy(t, srv)
		})
	}
	// A file over the limit is refused from its Content-Length, before its
	// body is sent: a client that waits for 100 Continue (curl does, for
	// large bodies) sends none of it.
	t.Run("60 MB", func(t *testing.T) {
		body, ct := multipartBody(t, filePart("big.pdf", []byte(huge)))
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/documents", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = ann.bearer()
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Expect", "100-continue")
		client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
		defer client.CloseIdleConnections()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		wantRefusal(t, resp, string(got), http.StatusRequestEntityTooLarge, "the file is larger than 50 MB")
		if docs, files := holdings(t, srv, db, ann.user.ID); docs != 0 || files != 0 {
			t.Errorf("got %d documents and %d files after the refusal, want none", docs, files)
		}
	})

	// MuPDF repairs some truncated files: the first 40% of a PDF is refused
	// clearly, or taken and then ends ready or failed with a reason; never
	// an error of the server.
	for _, name := range []string{"pdflatex-4-pages.pdf", "GeoTopo-komprimiert.pdf"} {
		t.Run("truncated "+name, func(t *testing.T) {
			pdf := datasets.Read(t, "sample-pdfs", name)
			docsBefore, filesBefore := holdings(t, srv, db, ann.user.ID)
			resp, body := apiUpload(t, srv, ann, filePart("cut-"+name, pdf[:len(pdf)*4/10]))
			switch resp.StatusCode {
			case http.StatusUnprocessableEntity:
				wantRefusal(t, resp, body, resp.StatusCode, "could not be read as a PDF")
				if docs, files := holdings(t, srv, db, ann.user.ID); docs != docsBefore || files != filesBefore {
					t.Errorf("got %d documents and %d files, want %d and %d as before", docs, files, docsBefore, filesBefore)
				}
			case http.StatusAccepted:
				var got struct{ ID string }
				wantJSON(t, resp, body, &got)
				d := waitDoc(t, srv, ann, got.ID, 2*time.Minute)
				if d.Status == models.DocumentFailed && d.Error == "" {
					t.Errorf("got failed without a reason")
				}
				t.Logf("taken: %s, %d pages, %d chunks %s", d.Status, d.Pages, d.Chunks, d.Error)
			default:
				t.Fatalf("got status %d, want 422, or 202 and then an outcome; body:\n%s", resp.StatusCode, body)
			}
			wantHealthy(t, srv)
		})
	}

	// A page of 14,400,000 points square: read, not a crash.
	t.Run("huge page size", func(t *testing.T) {
		id := uploadPDF(t, srv, ann, "huge-page.pdf", pdftest.Minimal("()", "[0 0 14400000 14400000]", "Huge page"))
		d := waitDoc(t, srv, ann, id, time.Minute)
		if d.Status != models.DocumentReady || d.Pages != 1 || d.Chunks != 1 {
			t.Fatalf("got status %s (%q), %d pages, %d chunks; want ready, 1 page, 1 chunk", d.Status, d.Error, d.Pages, d.Chunks)
		}
		var text string
		if err := db.NewSelect().Table("chunks").Column("text").Where("document_id = ?", id).Scan(context.Background(), &text); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "Huge page") {
			t.Errorf("got chunk %q, want the page's text", text)
		}
		wantHealthy(t, srv)
	})

	t.Run("a good PDF afterwards", func(t *testing.T) {
		d := waitDoc(t, srv, ann, uploadPDF(t, srv, ann, "good.pdf", good), time.Minute)
		if d.Status != models.DocumentReady || d.Pages != 4 || d.Chunks == 0 {
			t.Errorf("got status %s (%q), %d pages, %d chunks; want ready with 4 pages", d.Status, d.Error, d.Pages, d.Chunks)
		}
	})
}

// MAX_PAGES and MAX_DOCUMENTS refuse uploads with a message that names
// the limit, and leave nothing behind.
func TestUploadLimits(t *testing.T) {
	t.Parallel()
	srv := docServer(t, func(cfg *config.Config) { cfg.MaxDocuments, cfg.MaxPages = 2, 2 })
	ann := newAPIAccount(t, srv, "ann@example.com")
	db := tenantDB(t, srv, ann.user.ID)

	resp, body := apiUpload(t, srv, ann, filePart("four.pdf", datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf")))
	wantRefusal(t, resp, body, http.StatusUnprocessableEntity, "four.pdf has 4 pages; the limit is 2")
	if docs, files := holdings(t, srv, db, ann.user.ID); docs != 0 || files != 0 {
		t.Errorf("got %d documents and %d files after a refusal, want none", docs, files)
	}

	one := datasets.Read(t, "sample-pdfs", "minimal-document.pdf")
	two := append(slices.Clone(one), "\n% another file\n"...) // not the same bytes, which would be a duplicate
	ids := []string{uploadPDF(t, srv, ann, "one.pdf", one), uploadPDF(t, srv, ann, "two.pdf", two)}
	resp, body = apiUpload(t, srv, ann, filePart("three.pdf", one))
	wantRefusal(t, resp, body, http.StatusUnprocessableEntity, "you have reached the limit of 2 documents")
	if docs, files := holdings(t, srv, db, ann.user.ID); docs != 2 || files != 2 {
		t.Errorf("got %d documents and %d files, want the 2 accepted", docs, files)
	}
	for _, id := range ids {
		if d := waitDoc(t, srv, ann, id, time.Minute); d.Status != models.DocumentReady {
			t.Errorf("document %s: got %s (%q), want ready", id, d.Status, d.Error)
		}
	}
}

// A reader that runs past EXTRACT_TIMEOUT is stopped and its document ends
// failed, saying so; the server keeps serving and reading other PDFs.
func TestIngestReaderTimeout(t *testing.T) {
	t.Parallel()
	srv := docServer(t, func(cfg *config.Config) { cfg.ExtractTimeout = 3 * time.Second })
	ann := newAPIAccount(t, srv, "ann@example.com")
	db := tenantDB(t, srv, ann.user.ID)

	start := time.Now()
	id := uploadPDF(t, srv, ann, "bomb.pdf", pdftest.FormBomb())
	wantHealthy(t, srv)
	d := waitDoc(t, srv, ann, id, time.Minute)
	if d.Status != models.DocumentFailed || d.Error != "timed out after 3 s" {
		t.Fatalf("got status %s, error %q; want failed, timed out after 3 s", d.Status, d.Error)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v, want about 3 s", took)
	}
	if pages, chunks, _ := tenantdata.Counts(t, db, id); pages != 0 || chunks != 0 {
		t.Errorf("got %d pages and %d chunks of a failed document, want none", pages, chunks)
	}
	wantHealthy(t, srv)
	if d := waitDoc(t, srv, ann, uploadPDF(t, srv, ann, "good.pdf", datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf")), time.Minute); d.Status != models.DocumentReady {
		t.Errorf("a good PDF afterwards: got %s (%q), want ready", d.Status, d.Error)
	}
}

// A reader killed in the middle of a PDF fails that document with a reason
// a person understands; the server keeps serving.
func TestIngestReaderKilled(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	ann := newAPIAccount(t, srv, "ann@example.com")
	db := tenantDB(t, srv, ann.user.ID)
	// The reader passes the upload's check (its first line), then reads a
	// page of four for the worker and is killed.
	srv.SetReader(t, []string{"sh", "-c", `echo '{"pages":4}'; echo '{"n":1,"text":"one"}'; kill -9 $$`}, 0)

	id := uploadPDF(t, srv, ann, "four.pdf", datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf"))
	d := waitDoc(t, srv, ann, id, time.Minute)
	if d.Status != models.DocumentFailed || d.Error != "the PDF could not be read: the reader stopped (signal: killed)" {
		t.Fatalf("got status %s, error %q; want failed, the PDF could not be read: the reader stopped (signal: killed)", d.Status, d.Error)
	}
	if pages, chunks, _ := tenantdata.Counts(t, db, id); pages != 0 || chunks != 0 {
		t.Errorf("got %d pages and %d chunks of a failed document, want none", pages, chunks)
	}
	wantHealthy(t, srv)
	resp, body := send(t, srv.Browser, http.MethodGet, srv.URL+"/api/v1/documents", "", ann.bearer())
	wantStatus(t, resp, http.StatusOK, body)
}

// Another user's document is 404 on every document route, never 403 and
// never its data, and stays as it was; unknown ids are 404 too.
func TestDocumentRoutesTenantIsolation(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	annBrowser, ann := signedInAccount(t, srv, "ann@example.com")
	bobBrowser, bob := signedInAccount(t, srv, "bob@example.com")
	annDB := tenantDB(t, srv, ann.user.ID)
	id := uploadPDF(t, srv, ann, "ann-secret-report.pdf", datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf"))
	before := waitDoc(t, srv, ann, id, time.Minute)
	if before.Status != models.DocumentReady {
		t.Fatalf("got %s (%q), want ready", before.Status, before.Error)
	}

	type client struct {
		name string
		srv  *testrig.Server
		acct account
	}
	routes := func(c client, id string) []struct {
		method, path string
		header       http.Header
	} {
		csrf := http.Header{"X-Csrf-Token": {c.srv.CSRFToken(t, "/")}, "Hx-Request": {"true"}}
		return []struct {
			method, path string
			header       http.Header
		}{
			{http.MethodGet, "/documents/" + id, nil},
			{http.MethodPost, "/documents/" + id + "/delete", csrf},
			{http.MethodPost, "/documents/" + id + "/retry", csrf},
			{http.MethodPost, "/documents/" + id + "/title", csrf},
			{http.MethodGet, "/documents/" + id + "/file", nil},
			{http.MethodGet, "/documents/" + id + "/delete", nil},
			{http.MethodGet, "/api/v1/documents/" + id, c.acct.bearer()},
			{http.MethodGet, "/api/v1/documents/" + id + "/file", c.acct.bearer()},
			{http.MethodPatch, "/api/v1/documents/" + id, c.acct.bearer()},
			{http.MethodDelete, "/api/v1/documents/" + id, c.acct.bearer()},
		}
	}
	check := func(t *testing.T, c client, id string) {
		for _, r := range routes(c, id) {
			resp, body := send(t, c.srv.Browser, r.method, srv.URL+r.path, "", r.header)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s as %s: got status %d, want 404", r.method, r.path, c.name, resp.StatusCode)
			}
			if strings.Contains(body, "ann-secret-report") || strings.Contains(body, before.Title) {
				t.Errorf("%s %s as %s: the answer shows the document:\n%s", r.method, r.path, c.name, body)
			}
		}
	}
	bobClient := client{"bob", bobBrowser, bob}
	t.Run("another user's document", func(t *testing.T) { check(t, bobClient, id) })
	t.Run("unknown ids", func(t *testing.T) {
		for _, unknown := range []string{models.NewPublicID(), "nope", "1", "%2e%2e"} {
			check(t, client{"ann", annBrowser, ann}, unknown)
		}
	})
	t.Run("lists", func(t *testing.T) {
		if docs := documentsOf(t, srv, bob.token); len(docs) != 0 {
			t.Errorf("bob's API list: got %v, want none", docs)
		}
		resp, body := bobBrowser.Get(t, "/documents/list")
		wantStatus(t, resp, http.StatusOK, body)
		if strings.Contains(body, id) || strings.Contains(body, "ann-secret-report") {
			t.Errorf("bob's list shows ann's document:\n%s", body)
		}
	})

	after := waitDoc(t, srv, ann, id, time.Minute)
	if after != before {
		t.Errorf("ann's document changed: got %+v, want %+v", after, before)
	}
	pages, chunks, file := tenantdata.Counts(t, annDB, id)
	if pages != before.Pages || chunks != before.Chunks || !file {
		t.Errorf("ann's tenant database: got %d pages, %d chunks, file %v; want %d, %d, true", pages, chunks, file, before.Pages, before.Chunks)
	}
	resp, body := annBrowser.Get(t, "/documents/"+id)
	wantStatus(t, resp, http.StatusOK, body)
}

// Deleting a document, from its page or through the API, removes its row
// and everything the tenant database held of it, and nothing else.
func TestDeleteDocument(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	annBrowser, ann := signedInAccount(t, srv, "ann@example.com")
	db := tenantDB(t, srv, ann.user.ID)
	pdf := datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf")
	ids := map[string]string{}
	for _, how := range []string{"page", "htmx", "api", "kept"} {
		ids[how] = uploadPDF(t, srv, ann, how+".pdf", append(slices.Clone(pdf), "\n% "+how+"\n"...)) // four files, not one four times
	}
	for _, id := range ids {
		if d := waitDoc(t, srv, ann, id, time.Minute); d.Status != models.DocumentReady {
			t.Fatalf("got %s (%q), want ready", d.Status, d.Error)
		}
	}
	csrf := annBrowser.CSRFToken(t, "/")

	// The page asks first, saying what goes; nobody else sees it.
	resp, page := annBrowser.Get(t, "/documents/"+ids["page"]+"/delete")
	wantStatus(t, resp, http.StatusOK, page)
	for _, want := range []string{"Delete “page”?", "page.pdf", "its 4 pages", "no conversation", `action="/documents/` + ids["page"] + `/delete"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the confirmation does not say %q:\n%s", want, page)
		}
	}
	bob, _ := signedInAccount(t, srv, "bob@example.com")
	if resp, body := bob.Get(t, "/documents/"+ids["page"]+"/delete"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another person's confirmation: got %d, want 404: %s", resp.StatusCode, body)
	}
	resp, _ = send(t, annBrowser.Browser, http.MethodPost, srv.URL+"/documents/"+ids["page"]+"/delete", "", http.Header{"X-Csrf-Token": {csrf}})
	wantRedirect(t, resp, "/")
	// The next page says what was deleted, once.
	if _, page := annBrowser.Get(t, "/"); !strings.Contains(page, `<p class="notice" role="status">Deleted “page”, its pages and its conversations.</p>`) {
		t.Errorf("the documents page after deleting does not say so:\n%s", page)
	}
	if _, page := annBrowser.Get(t, "/"); strings.Contains(page, `class="notice"`) {
		t.Errorf("the notice shows again:\n%s", page)
	}
	resp, body := send(t, annBrowser.Browser, http.MethodPost, srv.URL+"/documents/"+ids["htmx"]+"/delete", "", http.Header{"X-Csrf-Token": {csrf}, "Hx-Request": {"true"}})
	wantStatus(t, resp, http.StatusOK, body)
	if got := resp.Header.Get("HX-Redirect"); got != "/" {
		t.Errorf("htmx delete: got HX-Redirect %q, want /", got)
	}
	resp, body = send(t, srv.Browser, http.MethodDelete, srv.URL+"/api/v1/documents/"+ids["api"], "", ann.bearer())
	wantStatus(t, resp, http.StatusNoContent, body)

	for _, how := range []string{"page", "htmx", "api"} {
		id := ids[how]
		if _, err := srv.Store.Document(context.Background(), ann.user.ID, id); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("deleted by %s: the documents row is still there (%v)", how, err)
		}
		resp, body := send(t, srv.Browser, http.MethodGet, srv.URL+"/api/v1/documents/"+id, "", ann.bearer())
		wantStatus(t, resp, http.StatusNotFound, body)
		wantNothingOf(t, db, id)
	}
	// Deleting again is 404.
	resp, body = send(t, srv.Browser, http.MethodDelete, srv.URL+"/api/v1/documents/"+ids["api"], "", ann.bearer())
	wantStatus(t, resp, http.StatusNotFound, body)

	kept := getDoc(t, srv, ann, ids["kept"])
	if pages, chunks, file := tenantdata.Counts(t, db, ids["kept"]); pages != 4 || chunks != kept.Chunks || !file {
		t.Errorf("the document not deleted: got %d pages, %d chunks, file %v; want 4, %d, true", pages, chunks, file, kept.Chunks)
	}
	if docs, files := holdings(t, srv, db, ann.user.ID); docs != 1 || files != 1 {
		t.Errorf("got %d documents and %d files, want the 1 kept", docs, files)
	}
}

// pageUpload posts parts to the documents page's upload form as htmx does.
func pageUpload(t *testing.T, b *testrig.Server, csrf string, parts ...part) (*http.Response, string) {
	t.Helper()
	body, ct := multipartBody(t, parts...)
	h := http.Header{"Content-Type": {ct}, "Hx-Request": {"true"}}
	if csrf != "" {
		h.Set("X-CSRF-Token", csrf)
	}
	return send(t, b.Browser, http.MethodPost, b.URL+"/documents", body, h)
}

const pollTrigger = `hx-trigger="every 1s"`

// The documents page: several files in one htmx upload, refusals shown by
// name, a list that polls while documents are ingested and stops when
// they are done, failures shown with their reason and a retry button.
func TestDocumentsPage(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	ann, acct := signedInAccount(t, srv, "ann@example.com")
	db := tenantDB(t, srv, acct.user.ID)
	csrf := ann.CSRFToken(t, "/")

	t.Run("without the CSRF token", func(t *testing.T) {
		resp, body := pageUpload(t, ann, "", filePart("good.pdf", datasets.Read(t, "sample-pdfs", "minimal-document.pdf")))
		wantStatus(t, resp, http.StatusForbidden, body)
		if docs, files := holdings(t, srv, db, acct.user.ID); docs != 0 || files != 0 {
			t.Errorf("got %d documents and %d files after a refused upload, want none", docs, files)
		}
	})

	resp, body := pageUpload(t, ann, csrf,
		filePart("pdflatex-4-pages.pdf", datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf")),
		filePart("notes.txt", []byte("just some notes, not a PDF")),
		filePart("GeoTopo-komprimiert.pdf", datasets.Read(t, "sample-pdfs", "GeoTopo-komprimiert.pdf")))
	wantStatus(t, resp, http.StatusOK, body)
	text := html.UnescapeString(body)
	if strings.Contains(strings.ToLower(body), "<html") || !strings.Contains(body, `id="documents"`) {
		t.Errorf("got a whole page or no list, want the list fragment:\n%s", body)
	}
	// A refusal goes above the list, out of the polled part, to stay until
	// dismissed.
	if !strings.Contains(body, `<div id="refusals" hx-swap-oob="afterbegin">`) || !strings.Contains(body, `class="alert refusal"`) ||
		!strings.Contains(text, "notes.txt is not a PDF.") || !strings.Contains(body, `class="link dismiss"`) {
		t.Errorf("got no refusal naming notes.txt above the list:\n%s", body)
	}
	if !strings.Contains(text, "pdflatex-4-pages") || !strings.Contains(text, "Geometrie und Topologie") {
		t.Errorf("the list does not show the two PDFs:\n%s", body)
	}
	// The 117-page PDF takes seconds: the list polls and shows progress.
	if !strings.Contains(body, pollTrigger) || !strings.Contains(body, "<progress") {
		t.Errorf("got a list that does not poll, with a document queued:\n%s", body)
	}
	resp, body = ann.Get(t, "/documents/list")
	wantStatus(t, resp, http.StatusOK, body)
	if !strings.Contains(body, pollTrigger) || !strings.Contains(body, "<progress") {
		t.Errorf("GET /documents/list while ingesting: got no polling or progress:\n%s", body)
	}
	if strings.Contains(body, "refusals") {
		t.Errorf("the polled list carries refusals, which it would erase:\n%s", body)
	}
	// The same file again is not stored twice: it names the one there.
	dupResp, dup := pageUpload(t, ann, csrf, filePart("copy.pdf", datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf")))
	wantStatus(t, dupResp, http.StatusOK, dup)
	if text := html.UnescapeString(dup); !strings.Contains(text, "copy.pdf is already uploaded, as “pdflatex-4-pages”. <a href=\"/documents/") {
		t.Errorf("a duplicate upload, want it refused naming the document there, with a link:\n%s", dup)
	}
	upload := func(name string) (*http.Response, string) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		part, _ := w.CreateFormFile("file", name)
		_, _ = part.Write(datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf"))
		_ = w.Close()
		h := acct.bearer()
		h.Set("Content-Type", w.FormDataContentType())
		return send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/documents", b.String(), h)
	}
	if dupResp, dup = upload("again.pdf"); dupResp.StatusCode != http.StatusConflict || !strings.Contains(dup, `"id":"`) || !strings.Contains(dup, "already uploaded") {
		t.Errorf("a duplicate through the API: got %d %s, want 409 with the document's id", dupResp.StatusCode, dup)
	}
	if docs, files := holdings(t, srv, db, acct.user.ID); docs != 2 || files != 2 {
		t.Errorf("got %d documents and %d files, want the 2 PDFs", docs, files)
	}

	deadline := time.Now().Add(2 * time.Minute)
	busy := regexp.MustCompile(`queued|reading: \d+ of 117 pages read|indexing its 117 pages|starting`)
	var states []string // what the list said of the 117-page PDF while it was read
	for strings.Contains(body, pollTrigger) {
		if time.Now().After(deadline) {
			t.Fatalf("the list still polls after 2 minutes:\n%s", body)
		}
		if m := busy.FindString(body); m != "" && !slices.Contains(states, m) {
			states = append(states, m)
		}
		time.Sleep(100 * time.Millisecond)
		resp, body = ann.Get(t, "/documents/list")
		wantStatus(t, resp, http.StatusOK, body)
	}
	if len(states) == 0 {
		t.Error("the list never said what became of the 117-page PDF while it was read")
	}
	t.Logf("the 117-page PDF, as the list said: %q", states)
	if !strings.Contains(body, "2 documents · ") || !strings.Contains(body, " MB of PDFs") {
		t.Errorf("the list does not say how much the documents take:\n%s", body)
	}
	// Sorted by name or size, and filtered by title.
	for query, want := range map[string][]string{
		"?sort=name":        {"Geometrie und Topologie", "pdflatex-4-pages"},
		"?sort=size":        {"Geometrie und Topologie", "pdflatex-4-pages"},
		"?q=PDFLATEX":       {"pdflatex-4-pages"},
		"?q=GeoTopo&sort=x": {"Geometrie und Topologie"},
	} {
		_, list := ann.Get(t, "/documents/list"+query)
		var got []string
		for _, m := range regexp.MustCompile(`<a href="/documents/[a-z0-9]+">([^<]+)</a>`).FindAllStringSubmatch(list, -1) {
			got = append(got, html.UnescapeString(m[1]))
		}
		if len(got) != len(want) || !strings.HasPrefix(got[0], want[0]) || (len(want) > 1 && !strings.HasPrefix(got[1], want[1])) {
			t.Errorf("/documents/list%s: got %q, want %q", query, got, want)
		}
	}
	if _, list := ann.Get(t, "/documents/list?q=nothing-like-this"); !strings.Contains(list, "No document's title holds") {
		t.Errorf("a filter that matches nothing, want it said:\n%s", list)
	}
	if strings.Contains(body, "<progress") || strings.Count(body, "status-ready") != 2 || !strings.Contains(body, "117 pages") {
		t.Errorf("once all are ready: got\n%s\nwant two ready documents, no progress bar", body)
	}

	docs, err := srv.Store.DocumentsByUser(context.Background(), acct.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	var small *models.Document
	for i := range docs {
		if docs[i].FileName == "pdflatex-4-pages.pdf" {
			small = &docs[i]
		}
	}
	if small == nil {
		t.Fatal("the 4-page PDF is not in the list")
	}

	t.Run("a failure and its retry", func(t *testing.T) {
		// It failed for a reason outside the PDF, after its tries.
		small.Status, small.Error = models.DocumentFailed, "the embedding service failed (after 2 attempts)"
		if err := srv.Store.FinishDocument(context.Background(), small); err != nil {
			t.Fatal(err)
		}
		retry := `hx-post="/documents/` + small.PublicID + `/retry"`
		resp, body := ann.Get(t, "/documents/list")
		wantStatus(t, resp, http.StatusOK, body)
		if !strings.Contains(body, "the embedding service failed (after 2 attempts)") || !strings.Contains(body, retry) {
			t.Errorf("got a list without the reason and a retry button:\n%s", body)
		}
		if strings.Contains(body, pollTrigger) {
			t.Errorf("a failed document keeps the list polling:\n%s", body)
		}

		resp, body = send(t, ann.Browser, http.MethodPost, srv.URL+"/documents/"+small.PublicID+"/retry", "",
			http.Header{"X-Csrf-Token": {csrf}, "Hx-Request": {"true"}})
		wantStatus(t, resp, http.StatusOK, body)
		if !strings.Contains(body, `id="documents"`) || strings.Contains(body, "the embedding service failed") {
			t.Errorf("retry: got\n%s\nwant the list without the failure", body)
		}
		got, err := srv.Store.Document(context.Background(), acct.user.ID, small.PublicID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == models.DocumentFailed || got.Error != "" {
			t.Errorf("after retry: got status %s (%q), want it queued again", got.Status, got.Error)
		}
		if d := waitDoc(t, srv, acct, small.PublicID, time.Minute); d.Status != models.DocumentReady || d.Chunks == 0 {
			t.Errorf("after retry: got %s (%q), %d chunks; want ready", d.Status, d.Error, d.Chunks)
		}
	})

	t.Run("a password-protected PDF", func(t *testing.T) {
		resp, body := pageUpload(t, ann, csrf, filePart("secret.pdf", datasets.Read(t, "sample-pdfs", "libreoffice-writer-password.pdf")))
		wantStatus(t, resp, http.StatusOK, body)
		var id string
		docs, _ := srv.Store.DocumentsByUser(context.Background(), acct.user.ID)
		for _, d := range docs {
			if d.FileName == "secret.pdf" {
				id = d.PublicID
			}
		}
		if id == "" {
			t.Fatalf("secret.pdf is not in the list:\n%s", body)
		}
		// Its bytes are not kept, so there is nothing to retry.
		if !strings.Contains(html.UnescapeString(body), "password-protected") || strings.Contains(body, `hx-post="/documents/`+id+`/retry"`) {
			t.Errorf("got a list without the reason, or with a retry button:\n%s", body)
		}
		resp, body = send(t, ann.Browser, http.MethodPost, srv.URL+"/documents/"+id+"/retry", "", http.Header{"X-Csrf-Token": {csrf}})
		wantStatus(t, resp, http.StatusConflict, body)
		wantNothingOf(t, db, id)

		// It can be removed from the list, which comes back without it.
		remove := `hx-post="/documents/` + id + `/delete"`
		if _, list := send(t, ann.Browser, http.MethodGet, srv.URL+"/documents/list", "", nil); !strings.Contains(list, remove) {
			t.Errorf("the failed document has no Remove button:\n%s", list)
		}
		resp, body = send(t, ann.Browser, http.MethodPost, srv.URL+"/documents/"+id+"/delete", "", http.Header{"X-Csrf-Token": {csrf}, "Hx-Request": {"true"}, "Hx-Target": {"documents"}})
		wantStatus(t, resp, http.StatusOK, body)
		if strings.Contains(body, id) || !strings.HasPrefix(body, `<div id="documents"`) {
			t.Errorf("remove: got\n%s\nwant the list alone, without the document", body)
		}
		if _, err := srv.Store.Document(context.Background(), acct.user.ID, id); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("after remove: the document's row is still there (%v)", err)
		}
	})
}

// A document is renamed from its page or the API, and its original PDF
// downloaded as uploaded; a bad title is refused with the reason and
// changes nothing; nobody else reaches either.
func TestRenameAndDownloadDocument(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	annBrowser, ann := signedInAccount(t, srv, "ann@example.com")
	pdf := datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf")
	id := uploadPDF(t, srv, ann, "report-2024.pdf", pdf)
	if d := waitDoc(t, srv, ann, id, time.Minute); d.Status != models.DocumentReady {
		t.Fatalf("got %s (%q), want ready", d.Status, d.Error)
	}
	csrf := annBrowser.CSRFToken(t, "/documents/"+id)
	rename := func(title string) (*http.Response, string) {
		return send(t, annBrowser.Browser, http.MethodPost, srv.URL+"/documents/"+id+"/title", url.Values{"title": {title}}.Encode(), http.Header{"X-Csrf-Token": {csrf}})
	}
	resp, _ := rename("  Annual report 2024  ")
	wantRedirect(t, resp, "/documents/"+id)
	if d := getDoc(t, srv, ann, id); d.Title != "Annual report 2024" {
		t.Errorf("title %q after renaming, want Annual report 2024", d.Title)
	}
	if _, page := annBrowser.Get(t, "/documents/"+id); !strings.Contains(page, "<h1>Annual report 2024</h1>") || !strings.Contains(page, "Renamed to “Annual report 2024”.") {
		t.Errorf("the page after renaming, want the new title and a notice:\n%s", page)
	}
	for title, reason := range map[string]string{"": "cannot be empty", strings.Repeat("x", 201): "at most 200", "two\nlines": "one line"} {
		resp, body := rename(title)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, reason) {
			t.Errorf("title %q: got %d, want 422 saying %q", title, resp.StatusCode, reason)
		}
	}
	h := ann.bearer()
	h.Set("Content-Type", "application/json")
	resp, body := send(t, srv.Browser, http.MethodPatch, srv.URL+"/api/v1/documents/"+id, `{"title": "Report"}`, h)
	wantStatus(t, resp, http.StatusOK, body)
	if d := getDoc(t, srv, ann, id); d.Title != "Report" || !strings.Contains(body, `"title":"Report"`) {
		t.Errorf("after the API's rename: %q, %s", d.Title, body)
	}

	for _, get := range []func() (*http.Response, string){
		func() (*http.Response, string) { return annBrowser.Get(t, "/documents/"+id+"/file") },
		func() (*http.Response, string) {
			return send(t, srv.Browser, http.MethodGet, srv.URL+"/api/v1/documents/"+id+"/file", "", ann.bearer())
		},
	} {
		resp, body := get()
		wantStatus(t, resp, http.StatusOK, "")
		if body != string(pdf) || resp.Header.Get("Content-Type") != "application/pdf" || resp.Header.Get("Content-Disposition") != `attachment; filename=report-2024.pdf` {
			t.Errorf("download: %d bytes, %s, %q; want the uploaded %d bytes as report-2024.pdf", len(body), resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"), len(pdf))
		}
	}

	bobBrowser, bob := signedInAccount(t, srv, "bob@example.com")
	if resp, _ := bobBrowser.Get(t, "/documents/"+id+"/file"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another person's download: got %d, want 404", resp.StatusCode)
	}
	bh := bob.bearer()
	bh.Set("Content-Type", "application/json")
	if resp, _ := send(t, srv.Browser, http.MethodPatch, srv.URL+"/api/v1/documents/"+id, `{"title": "Mine"}`, bh); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another person's rename: got %d, want 404", resp.StatusCode)
	}
	if d := getDoc(t, srv, ann, id); d.Title != "Report" {
		t.Errorf("title %q after refusals, want Report", d.Title)
	}
}
