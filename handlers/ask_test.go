package handlers_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"silo/config"
	"silo/testrig/datasets"
)

// "Ask your documents": a conversation across all of a person's ready
// documents, or those they tick, that remembers which it covers; each
// source names its document and opens its page with the snippet; nobody
// else reaches it.
func TestAskYourDocuments(t *testing.T) {
	b, a, jax := chatServer(t, nil)
	oil := uploadPDF(t, b, a, "1973-oil-crisis.pdf", datasets.Read(t, "squad-pdfs", "1973-oil-crisis.pdf"))
	if d := waitDoc(t, b, a, oil, chatWait); d.Status != "ready" {
		t.Fatalf("1973-oil-crisis.pdf ended %s: %s", d.Status, d.Error)
	}

	resp, page := b.Get(t, "/")
	wantStatus(t, resp, http.StatusOK, page)
	if !strings.Contains(page, `href="/ask"`) {
		t.Errorf("the documents page does not lead to Ask your documents:\n%s", page)
	}
	resp, page = b.Get(t, "/ask")
	wantStatus(t, resp, http.StatusOK, page)
	for _, want := range []string{"All documents (2)", `value="` + jax + `"`, `value="` + oil + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the new conversation does not offer %s:\n%s", want, page)
		}
	}

	// All documents: each question finds its own document.
	turn := askAt(t, b, "/ask", url.Values{"question": {"When did the 1973 oil crisis begin?"}, "scope": {"all"}})
	if !strings.HasPrefix(turn.stream, "/ask/messages/") {
		t.Errorf("the answer streams from %s, want /ask/messages/…", turn.stream)
	}
	_, done := readAnswer(t, b, turn.stream)
	if !strings.Contains(done, "October 1973") || !strings.Contains(done, `href="/documents/`+oil+`?hl=`) || !strings.Contains(done, ">1973-oil-crisis, p. ") {
		t.Errorf("the answer across documents, want the oil crisis quoted and its source opening that document:\n%s", done)
	}
	next := askAt(t, b, "/ask", url.Values{"question": {"What river runs alongside Jacksonville?"}, "conversation": {turn.conversation}})
	if next.conversation != turn.conversation {
		t.Errorf("a follow-up started conversation %s, want %s", next.conversation, turn.conversation)
	}
	if _, done := readAnswer(t, b, next.stream); !strings.Contains(done, "St. Johns") || !strings.Contains(done, `href="/documents/`+jax+`?hl=`) {
		t.Errorf("the follow-up, want the river from Jacksonville's document:\n%s", done)
	}
	resp, page = b.Get(t, "/ask?c="+turn.conversation)
	wantStatus(t, resp, http.StatusOK, page)
	if !strings.Contains(page, "Asking all your documents") || !strings.Contains(page, "St. Johns") || strings.Contains(page, `name="scope"`) {
		t.Errorf("the reopened conversation, want both answers, what it asks and no choice of documents:\n%s", page)
	}

	// Some documents: only they are searched, and the conversation says so.
	some := askAt(t, b, "/ask", url.Values{"question": {"When did the 1973 oil crisis begin?"}, "scope": {"some"}, "documents": {jax}})
	if some.conversation == turn.conversation {
		t.Fatal("a new conversation reused the last one")
	}
	if _, done := readAnswer(t, b, some.stream); strings.Contains(done, "/documents/"+oil) || !strings.Contains(done, "/documents/"+jax) {
		t.Errorf("a conversation about Jacksonville alone cites another document:\n%s", done)
	}
	_, page = b.Get(t, "/ask?c="+some.conversation)
	if !strings.Contains(page, "Asking 1 document: ") || !strings.Contains(page, `<a href="/documents/`+jax+`">`) {
		t.Errorf("the conversation does not say it asks Jacksonville's document alone:\n%s", page)
	}
	_, page = b.Get(t, "/ask")
	if strings.Count(page, `href="/ask?c=`) != 2 {
		t.Errorf("the past conversations, want both listed:\n%s", page)
	}

	// Wrong choices are refused with a reason, and start nothing.
	csrf := b.CSRFToken(t, "/ask")
	h := http.Header{"Hx-Request": {"true"}, "X-Csrf-Token": {csrf}}
	for _, tc := range []struct {
		form url.Values
		code int
		want string
	}{
		{url.Values{"question": {"Why?"}, "scope": {"some"}}, http.StatusUnprocessableEntity, "Tick at least one document"},
		{url.Values{"question": {"Why?"}, "scope": {"some"}, "documents": {"nope"}}, http.StatusNotFound, "There is no such document"},
		{url.Values{"question": {""}, "scope": {"all"}}, http.StatusUnprocessableEntity, "Ask a question first"},
		{url.Values{"question": {"Why?"}, "conversation": {"0123456789abcdef01234567"}}, http.StatusNotFound, "There is no such conversation"},
	} {
		resp, body := send(t, b.Browser, http.MethodPost, b.URL+"/ask/chat", tc.form.Encode(), h)
		if resp.StatusCode != tc.code || !strings.Contains(body, html.EscapeString(tc.want)) {
			t.Errorf("%v: got %d, want %d saying %q", tc.form, resp.StatusCode, tc.code, tc.want)
		}
	}
	if _, page = b.Get(t, "/ask"); strings.Count(page, `href="/ask?c=`) != 2 {
		t.Errorf("a refused question made a conversation:\n%s", page)
	}
	resp, body := send(t, b.Browser, http.MethodPost, b.URL+"/ask/chat", url.Values{"question": {"Why?"}}.Encode(), http.Header{"Hx-Request": {"true"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a question without its CSRF token: got %d, want 403: %s", resp.StatusCode, body)
	}

	// Another person reaches none of it.
	other, _ := signedInAccount(t, b, "other@example.com")
	for _, path := range []string{"/ask?c=" + turn.conversation, turn.stream} {
		if resp, body := other.Get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("another person's %s: got %d, want 404: %s", path, resp.StatusCode, body)
		}
	}
	resp, page = other.Get(t, "/ask")
	if resp.StatusCode != http.StatusOK || strings.Contains(page, turn.conversation) || !strings.Contains(page, "No document is ready yet") {
		t.Errorf("another person's Ask your documents: got %d, want none of the first's conversations:\n%s", resp.StatusCode, page)
	}
}

// A conversation is renamed and deleted from its page, a document's or the
// workspace's; nobody else can, and not without the CSRF token.
func TestRenameAndDeleteConversation(t *testing.T) {
	b, _, id := pgChatServer(t, func(*config.Config) {}) // PostgreSQL refuses a NUL byte in a query: bad ids must not reach it
	for _, base := range []string{"/documents/" + id, "/ask"} {
		turn := askAt(t, b, base, url.Values{"question": {chatQuestion}})
		readAnswer(t, b, turn.stream)
		conv := base + "/conversations/" + turn.conversation
		csrf := b.CSRFToken(t, base+"?c="+turn.conversation)
		h := http.Header{"X-Csrf-Token": {csrf}}

		other, _ := signedInAccount(t, b, "other-"+strings.ReplaceAll(strings.Trim(base, "/"), "/", "-")+"@example.com")
		oh := http.Header{"X-Csrf-Token": {other.CSRFToken(t, "/ask")}}
		for _, action := range []string{"/title", "/delete"} {
			if resp, _ := send(t, other.Browser, http.MethodPost, b.URL+conv+action, url.Values{"title": {"Mine"}}.Encode(), oh); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s%s by another person: got %d, want 404", conv, action, resp.StatusCode)
			}
			if resp, _ := send(t, b.Browser, http.MethodPost, b.URL+conv+action, url.Values{"title": {"Mine"}}.Encode(), nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s%s without the CSRF token: got %d, want 403", conv, action, resp.StatusCode)
			}
		}

		// Bad input is refused with its reason, never a 500: a title that
		// is not one line of text, ids that name no conversation.
		resp, body := send(t, b.Browser, http.MethodPost, b.URL+conv+"/title", url.Values{"title": {"a\x00b"}}.Encode(), h)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "one line of text") {
			t.Errorf("%s: a title with a NUL byte: got %d, want 422", base, resp.StatusCode)
		}
		for _, bad := range []string{base + "?c=%00", base + "?c=" + strings.Repeat("z", 24)} {
			if resp, _ := b.Get(t, bad); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: got %d, want 404", bad, resp.StatusCode)
			}
		}
		if resp, _ := send(t, b.Browser, http.MethodPost, b.URL+base+"/conversations/x%00/delete", "", h); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: deleting a conversation named with a NUL byte: got %d, want 404", base, resp.StatusCode)
		}
		resp, _ = send(t, b.Browser, http.MethodPost, b.URL+conv+"/title", url.Values{"title": {"  The  river  "}}.Encode(), h)
		wantRedirect(t, resp, base+"?c="+turn.conversation)
		if _, page := b.Get(t, base+"?c="+turn.conversation); !strings.Contains(page, ">The river</a>") || !strings.Contains(page, "Renamed the conversation.") {
			t.Errorf("%s: the renamed conversation, want its new title listed and a notice:\n%s", base, page)
		}
		resp, _ = send(t, b.Browser, http.MethodPost, b.URL+conv+"/delete", "", h)
		wantRedirect(t, resp, base)
		if _, page := b.Get(t, base); strings.Contains(page, turn.conversation) || !strings.Contains(page, "Deleted the conversation.") {
			t.Errorf("%s: after deleting, want it gone and a notice:\n%s", base, page)
		}
		if resp, _ := b.Get(t, turn.stream); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: a deleted conversation's answer: got %d, want 404", base, resp.StatusCode)
		}
	}
}
