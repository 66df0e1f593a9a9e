package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"silo/models"
	"silo/store"
	"silo/testrig/datasets"
)

// POST /api/v1/search ranks the passages of every ready document of the
// caller's together, or of those it names, each with its document's id and
// title; documents not the caller's are 404, not ready 409.
func TestWorkspaceSearchAPI(t *testing.T) {
	t.Parallel()
	srv, a, jax := chatServer(t, nil)
	oil := readyDocument(t, srv, a, "1973-oil-crisis.pdf", datasets.Read(t, "squad-pdfs", "1973-oil-crisis.pdf"))
	h := a.bearer()
	h.Set("Content-Type", "application/json")
	type result struct {
		DocumentID string `json:"document_id"`
		Title      string
		Text       string
		Page       int
	}
	searchAPI := func(h http.Header, body string) (*http.Response, string, []result) {
		resp, out := send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/search", body, h)
		var got struct{ Results []result }
		if resp.StatusCode == http.StatusOK {
			wantJSON(t, resp, out, &got)
		}
		return resp, out, got.Results
	}

	// Each question finds the document that answers it, unnamed.
	for _, tc := range []struct{ question, doc, says string }{
		{"When did the 1973 oil crisis begin?", oil, "October 1973"},
		{"What river runs alongside Jacksonville?", jax, "St. Johns River"},
	} {
		resp, body, got := searchAPI(h, `{"query": "`+tc.question+`", "k": 5}`)
		wantStatus(t, resp, http.StatusOK, body)
		if len(got) != 5 || got[0].DocumentID != tc.doc || got[0].Title == "" || !strings.Contains(got[0].Text, tc.says) {
			t.Errorf("%q: got %s, want 5 passages, the first of %s saying %q", tc.question, body, tc.doc, tc.says)
		}
	}

	// Named documents only.
	resp, body, got := searchAPI(h, `{"query": "When did the 1973 oil crisis begin?", "documents": ["`+jax+`"]}`)
	wantStatus(t, resp, http.StatusOK, body)
	for _, r := range got {
		if r.DocumentID != jax {
			t.Errorf("a search of %s found %s: %q", jax, r.DocumentID, r.Text)
		}
	}

	// Not the caller's, unknown, not ready.
	other := newAPIAccount(t, srv, "other@example.com")
	oh := other.bearer()
	oh.Set("Content-Type", "application/json")
	resp, body, _ = searchAPI(oh, `{"query": "oil", "documents": ["`+oil+`"]}`)
	wantRefusal(t, resp, body, http.StatusNotFound, "no such document")
	resp, body, got = searchAPI(oh, `{"query": "oil"}`)
	wantStatus(t, resp, http.StatusOK, body)
	if len(got) != 0 {
		t.Errorf("another tenant's search of all its (no) documents: got %s", body)
	}
	resp, body, _ = searchAPI(h, `{"query": "oil", "documents": ["nosuchdocument"]}`)
	wantRefusal(t, resp, body, http.StatusNotFound, "no such document")
	// A document that is not ready is refused when named, left out when not.
	d, err := srv.Store.Document(context.Background(), a.user.ID, oil)
	if err != nil {
		t.Fatal(err)
	}
	d.Status, d.Error = models.DocumentFailed, "the embedding service failed (after 2 attempts)"
	if err := srv.Store.FinishDocument(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	resp, body, _ = searchAPI(h, `{"query": "oil", "documents": ["`+oil+`"]}`)
	wantRefusal(t, resp, body, http.StatusConflict, "not ready")
	resp, body, got = searchAPI(h, `{"query": "When did the 1973 oil crisis begin?"}`)
	wantStatus(t, resp, http.StatusOK, body)
	for _, r := range got {
		if r.DocumentID != jax {
			t.Errorf("a search of all ready documents found the failed %s: %q", r.DocumentID, r.Text)
		}
	}

	for _, tc := range []struct{ body, says string }{
		{`{"query": ""}`, "query must not be empty"},
		{`{"query": "oil", "k": 51}`, "k must be between"},
		{`{"query": "oil", "mode": "psychic"}`, "mode must be"},
		{`{"query": "oil", "documents": "` + oil + `"}`, "not valid JSON"},
	} {
		resp, body, _ := searchAPI(h, tc.body)
		var e struct{ Error string }
		if resp.StatusCode/100 != 4 || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tc.says) {
			t.Errorf("%s: got %d %s, want a 4xx saying %q", tc.body, resp.StatusCode, body, tc.says)
		}
	}
}

// POST /api/v1/chat answers from every ready document of the caller's, or
// from those named, streaming as a document's chat does; its sources name
// their documents and titles.
func TestWorkspaceChatAPI(t *testing.T) {
	t.Parallel()
	srv, a, jax := chatServer(t, nil)
	oil := readyDocument(t, srv, a, "1973-oil-crisis.pdf", datasets.Read(t, "squad-pdfs", "1973-oil-crisis.pdf"))
	h := a.bearer()
	h.Set("Content-Type", "application/json")
	body := func(question string, docs ...string) string {
		var req struct {
			Messages  []map[string]string `json:"messages"`
			Documents []string            `json:"documents,omitempty"`
		}
		req.Messages = []map[string]string{{"role": "user", "content": question}}
		req.Documents = docs
		b, _ := json.Marshal(req)
		return string(b)
	}
	type reply struct {
		Answer    string
		Found     bool
		Citations []store.Citation
	}
	ask := func(b string) (*http.Response, string, reply) {
		resp, out := send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/chat?stream=false", b, h)
		var got reply
		if resp.StatusCode == http.StatusOK {
			wantJSON(t, resp, out, &got)
		}
		return resp, out, got
	}

	resp, out, got := ask(body("When did the 1973 oil crisis begin?"))
	wantStatus(t, resp, http.StatusOK, out)
	if !strings.Contains(got.Answer, "October 1973") || !got.Found || len(got.Citations) == 0 || got.Citations[0].DocumentID != oil || got.Citations[0].Title == "" {
		t.Errorf("across all documents: got %s, want the oil crisis's beginning quoted, found, its document cited first with its title", out)
	}
	resp, out, got = ask(body("What is the capital of Mars?"))
	wantStatus(t, resp, http.StatusOK, out)
	if got.Found || !strings.Contains(got.Answer, "Your documents do not seem to answer this.") {
		t.Errorf("a question the documents do not answer: got %s, want found false and the answer saying so", out)
	}
	resp, out, got = ask(body("When did the 1973 oil crisis begin?", jax))
	wantStatus(t, resp, http.StatusOK, out)
	for _, c := range got.Citations {
		if c.DocumentID != jax {
			t.Errorf("a chat about %s cites %s: %+v", jax, c.DocumentID, c)
		}
	}

	// Streaming, as a document's chat.
	ctx, cancel := context.WithTimeout(context.Background(), chatWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/v1/chat", strings.NewReader(body("What river runs alongside Jacksonville?")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	s, err := readEvents(ctx, srv.Browser, req)
	if err != nil {
		t.Fatal(err)
	}
	stream := readAPIStream(t, s)
	if stream.Done.Status != "done" || !stream.Done.Found || len(stream.Citations) == 0 || stream.Citations[0].DocumentID != jax || !strings.Contains(strings.Join(stream.Tokens, ""), "St. Johns River") {
		t.Errorf("stream: got %+v, want the answer from %s", stream, jax)
	}

	other := newAPIAccount(t, srv, "other@example.com")
	oh := other.bearer()
	oh.Set("Content-Type", "application/json")
	resp, out = send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/chat?stream=false", body("oil?", oil), oh)
	wantRefusal(t, resp, out, http.StatusNotFound, "no such document")
	resp, out = send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/chat?stream=false", `{"messages": []}`, h)
	wantRefusal(t, resp, out, http.StatusUnprocessableEntity, "at least the question")
}

// Named documents: at most 500, each the caller's and ready, the same one
// named twice searched once; an empty workspace has nothing to answer from.
func TestWorkspaceDocumentsChosen(t *testing.T) {
	t.Parallel()
	srv, a, jax := chatServer(t, nil)
	h := a.bearer()
	h.Set("Content-Type", "application/json")
	post := func(h http.Header, path, body string) (*http.Response, string) {
		return send(t, srv.Browser, http.MethodPost, srv.URL+path, body, h)
	}
	resp, body := post(h, "/api/v1/search", `{"query": "river", "documents": ["`+jax+`", "`+jax+`"]}`)
	wantStatus(t, resp, http.StatusOK, body)
	var got struct{ Results []struct{ Text string } }
	wantJSON(t, resp, body, &got)
	if len(got.Results) != 5 || got.Results[0].Text == got.Results[1].Text {
		t.Errorf("a document named twice: got %s, want 5 different passages", body)
	}
	many := strings.TrimSuffix(strings.Repeat(`"`+jax+`", `, 501), ", ")
	for _, path := range []string{"/api/v1/search", "/api/v1/chat"} {
		b := `{"query": "river", "messages": [{"role": "user", "content": "river?"}], "documents": [` + many + `]}`
		resp, body := post(h, path, b)
		wantRefusal(t, resp, body, http.StatusUnprocessableEntity, "more than 500")
	}

	d, err := srv.Store.Document(context.Background(), a.user.ID, jax)
	if err != nil {
		t.Fatal(err)
	}
	d.Status, d.Error = models.DocumentFailed, "the embedding service failed (after 2 attempts)"
	if err := srv.Store.FinishDocument(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	resp, body = post(h, "/api/v1/chat?stream=false", `{"messages": [{"role": "user", "content": "river?"}], "documents": ["`+jax+`"]}`)
	wantRefusal(t, resp, body, http.StatusConflict, "not ready")
	resp, body = post(h, "/api/v1/chat?stream=false", `{"messages": [{"role": "user", "content": "river?"}]}`)
	wantRefusal(t, resp, body, http.StatusConflict, "no ready document")
	resp, body = post(h, "/api/v1/chat?stream=false", `{"messages": [{"role": "user", "content": "river?"}], "documents": ["nosuchdocument"]}`)
	wantRefusal(t, resp, body, http.StatusNotFound, "no such document")
}
