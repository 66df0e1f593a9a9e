package answer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"silo/search"
	"silo/store"
)

func TestCitedPages(t *testing.T) {
	for _, tc := range []struct {
		answer string
		want   []pageSpan
	}{
		{"It rose [p. 3].", []pageSpan{{3, 3, ""}}},
		{"It rose [p.3] and fell [p. 12–13] then [pp. 4-5].", []pageSpan{{3, 3, ""}, {12, 13, ""}, {4, 5, ""}}},
		{"Both [p. 3, 5] and [pp. 2; 7–8] and [p. 1, p. 9].", []pageSpan{{3, 3, ""}, {5, 5, ""}, {2, 2, ""}, {7, 8, ""}, {1, 1, ""}, {9, 9, ""}}},
		{"Backwards [p. 9–2] is page 9.", []pageSpan{{9, 9, ""}}},
		{"Not citations: (p. 3), p. 4, [3], [page 5], [p. x].", nil},
		{"Titled [Oil crisis, p. 2] and [Jacksonville, Florida, pp. 3–4].", []pageSpan{{2, 2, "Oil crisis"}, {3, 4, "Jacksonville, Florida"}}},
	} {
		if got := citedPages(tc.answer); !slices.Equal(got, tc.want) {
			t.Errorf("citedPages(%q) = %v, want %v", tc.answer, got, tc.want)
		}
	}
}

// citePassages are three passages found for a question about a river.
var citePassages = []search.Result{
	{Page: 2, Text: "The river is long. It flows north into the Atlantic Ocean at Jacksonville. Fishing is popular."},
	{Page: 4, PageEnd: 5, Text: "Its source is a marsh in Indian River County. The marsh is wide."},
	{Page: 7, Text: "Boats use the river. The river flows north, one of few rivers that do."},
}

func TestCiteFollowsTheAnswer(t *testing.T) {
	q := "Which way does the river flow?"
	got := cite(q, "It flows north [p. 7], from a marsh [p. 5]. See also [p. 7] and [p. 99].", citePassages)
	want := []store.Citation{
		{Page: 7, Text: "The river flows north, one of few rivers that do."},
		{Page: 4, PageEnd: 5, Text: "Its source is a marsh in Indian River County."},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestCiteWithoutCitations(t *testing.T) {
	for _, answer := range []string{"It flows north.", "It flows north [p. 99]."} {
		got := cite("Where does the river flow into the ocean?", answer, citePassages)
		if len(got) != 3 || got[0].Page != 2 || got[1].Page != 4 || got[2].Page != 7 {
			t.Fatalf("%q: got %+v, want every passage in order", answer, got)
		}
		if want := "It flows north into the Atlantic Ocean at Jacksonville."; got[0].Text != want {
			t.Errorf("%q: snippet %q, want %q", answer, got[0].Text, want)
		}
	}
	if got := cite("q", "a", nil); got != nil {
		t.Errorf("no passages: got %+v, want none", got)
	}
}

func TestCiteMergesRepeats(t *testing.T) {
	p := search.Result{Page: 3, Text: "Same text."}
	if got := cite("text", "[p. 3]", []search.Result{p, p}); len(got) != 1 {
		t.Errorf("got %+v, want one citation", got)
	}
}

func TestCiteSnippet(t *testing.T) {
	long := strings.Repeat("word ", 40) + "élan " + strings.Repeat("ünïcode ", 60) + "end."
	got := cite("élan", "[p. 1]", []search.Result{{Page: 1, Text: "Nothing here. " + long}})
	if len(got) != 1 {
		t.Fatalf("got %d citations, want 1", len(got))
	}
	s := got[0].Text
	if len(s) > maxSnippet || !utf8.ValidString(s) || !strings.HasSuffix(s, "…") || !strings.HasPrefix(s, "word word") {
		t.Errorf("snippet of %d bytes %q: want the long sentence clipped to ≤ %d bytes of valid UTF-8 ending in …", len(s), s, maxSnippet)
	}
	// No sentence shares a word with the question: the first one stands in.
	got = cite("zebra", "", []search.Result{{Page: 1, Text: "First sentence. Second sentence."}})
	if got[0].Text != "First sentence." {
		t.Errorf("snippet %q, want the first sentence", got[0].Text)
	}
	// A heading shares the question's words but answers nothing: the
	// snippet is a sentence of prose.
	got = cite("When did the 1973 oil crisis begin?", "", []search.Result{{Page: 2, Text: "1973 oil crisis: part 2\n\nMotorists faced long lines at gas stations."}})
	if got[0].Text != "Motorists faced long lines at gas stations." {
		t.Errorf("snippet %q, want the sentence after the heading", got[0].Text)
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"one two three four", 12, "one two…"},
		{"abcdefghijklmnop", 10, "abcdefg…"},
		{"ééééé", 8, "éé…"},
	} {
		if got := clip(tc.in, tc.n); got != tc.want || len(got) > tc.n && got != tc.in {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// Across documents, a reference that names a title cites that document's
// page only; one that names none cites the page of any document.
func TestCiteAcrossDocuments(t *testing.T) {
	passages := []search.Result{
		{DocumentID: "oil", Title: "1973 oil crisis", Page: 2, Text: "The embargo began in October 1973."},
		{DocumentID: "jax", Title: "Jacksonville", Page: 2, Text: "The St. Johns River runs through the city."},
	}
	got := cite("When did the embargo begin?", "It began in October 1973 [1973 oil crisis, p. 2].", passages)
	if len(got) != 1 || got[0].DocumentID != "oil" || got[0].Title != "1973 oil crisis" || got[0].Page != 2 {
		t.Errorf("a titled reference: got %+v, want the oil crisis's page 2 alone, with its title", got)
	}
	got = cite("When did the embargo begin?", "It began in October 1973 [p. 2].", passages)
	if len(got) != 2 {
		t.Errorf("an untitled reference: got %+v, want page 2 of both documents", got)
	}
	got = cite("When did the embargo begin?", "It began in October 1973 [Some other book, p. 2].", passages)
	if len(got) != 2 {
		t.Errorf("a title no passage has: got %+v, want page 2 of both documents, as if untitled", got)
	}
}
