package chat

import (
	"strings"
	"testing"

	"silo/store"
	"silo/views"
)

// A source whose snippet the answer quotes already is listed by its page and
// first words; one the answer does not quote shows its snippet.
func TestSourcesDoNotRepeatQuotes(t *testing.T) {
	tmpl, err := views.Parse()
	if err != nil {
		t.Fatal(err)
	}
	quoted := "The embargo began in October 1973, when the members of OAPEC proclaimed it against the nations that had supported Israel during the war, and it lasted until March 1974."
	m := messageView{Base: "/documents/doc", StoredMessage: store.StoredMessage{
		ID: 7, Role: store.RoleAssistant, Status: store.StatusDone,
		Content: "*Quoted from your documents, no language model:*\n\n- “" + quoted + "” [p. 2]",
		Citations: store.Citations{
			{Page: 2, Text: quoted[:100] + "…"},
			{Page: 5, Text: "Prices rose fourfold."},
		},
	}}
	var b strings.Builder
	if err := tmpl.Render(&b, "chat_message.html", m); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if n := strings.Count(page, "The embargo began in October 1973"); n != 2 { // the quote, and the link's data-snippet
		t.Errorf("the quoted sentence appears %d times, want twice (the quote and the link's data-snippet):\n%s", n, page)
	}
	if strings.Count(page, "<q>") != 1 || !strings.Contains(page, "<q>Prices rose fourfold.</q>") {
		t.Errorf("want the one unquoted source's snippet shown, and only it:\n%s", page)
	}
	if !strings.Contains(page, `<q class="brief">The embargo began in October…</q>`) {
		t.Errorf("want the quoted source named by its first words:\n%s", page)
	}
}

// In the workspace each source names its document and opens its page
// there with the snippet to highlight, and so does a citation in the
// answer.
func TestWorkspaceSources(t *testing.T) {
	tmpl, err := views.Parse()
	if err != nil {
		t.Fatal(err)
	}
	m := messageView{Base: "/ask", Workspace: true, StoredMessage: store.StoredMessage{
		ID: 9, Role: store.RoleAssistant, Status: store.StatusFailed, Error: "The model server refused the API key (401).",
		Content: "It began in October [1973 oil crisis, p. 2], beside the river [Jacksonville, pp. 5–6].",
		Citations: store.Citations{
			{DocumentID: "oil", Title: "1973 oil crisis", Page: 2, Text: "The embargo began in October 1973 & lasted."},
			{DocumentID: "jax", Title: "Jacksonville", Page: 5, PageEnd: 6, Text: "The St. Johns River"},
		},
	}}
	var b strings.Builder
	if err := tmpl.Render(&b, "chat_message.html", m); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<a class="cite" href="/documents/oil?hl=The&#43;embargo&#43;began&#43;in&#43;October&#43;1973&#43;%26&#43;lasted.#page-2"`,
		`>1973 oil crisis, p. 2</a>`,
		`<a class="cite" href="/documents/jax?hl=The&#43;St.&#43;Johns&#43;River#page-5"`,
		`>Jacksonville, p. 5–6</a>`,
		`<a href="/documents/oil#page-2">[1973 oil crisis, p. 2]</a>`,
		`<a href="/documents/jax#page-5">[Jacksonville, pp. 5–6]</a>`,
		`hx-post="/ask/messages/9/retry"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("want %s in:\n%s", want, page)
		}
	}
}
