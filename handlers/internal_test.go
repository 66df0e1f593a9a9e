package handlers

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
	m := messageView{DocID: "doc", StoredMessage: store.StoredMessage{
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
