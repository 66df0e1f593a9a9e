package words_test

import (
	"slices"
	"strings"
	"testing"

	"silo/words"
)

func TestStartsSentence(t *testing.T) {
	for _, tc := range []struct {
		r    rune
		want bool
	}{
		{'A', true}, {'É', true}, {'Ł', true}, {'1', true}, {'٣', true},
		{'"', true}, {'\'', true}, {'“', true}, {'‘', true}, {'«', true}, {'(', true}, {'[', true},
		{'a', false}, {'é', false}, {' ', false}, {'-', false}, {'.', false}, {')', false}, {'”', false},
	} {
		if got := words.StartsSentence(tc.r); got != tc.want {
			t.Errorf("StartsSentence(%q) = %v, want %v", tc.r, got, tc.want)
		}
	}
}

// EndsWithStop looks at the final mark alone; EndsSentence also at the word
// before it.
func TestEndsSentence(t *testing.T) {
	for _, tc := range []struct {
		text              string
		withStop, endsSen bool
	}{
		{"It ended.", true, true},
		{"Really?", true, true},
		{"Wow!", true, true},
		{"Wait…", true, true},
		{"…", true, true},
		{"In 1973.", true, true},
		{"Item 5.", true, true},
		{"The Smithsonian.", true, true},
		{"approximately.", true, true},
		// Closing quotes and brackets after the mark.
		{`He said “stop.”`, true, true},
		{`He said "stop."`, true, true},
		{"(It ended.)", true, true},
		{"It ended.' ", false, false},
		{"It ended.'", true, true},
		{"It ended.»", true, true},
		{"Really?)]", true, true},
		// An abbreviation, an initial or a dotted abbreviation ends no
		// sentence, but it ends with a stop.
		{"Dr.", true, false},
		{"Ask Dr.", true, false},
		{"Mrs.", true, false},
		{"See Fig.", true, false},
		{"(see Fig.)", true, false},
		{"approx.", true, false},
		{"Jan.", true, false},
		{"E.", true, false},
		{"William E.", true, false},
		{"“E.”", true, false},
		{"the U.S.", true, false},
		{"e.g.", true, false},
		{"at 5 p.m.", true, false},
		// No final mark.
		{"", false, false},
		{"Hello", false, false},
		{"Hello,", false, false},
		{"Hello;", false, false},
		{"Hello:", false, false},
		{"It ended. ", false, false},
		{"”", false, false},
	} {
		if got := words.EndsWithStop(tc.text); got != tc.withStop {
			t.Errorf("EndsWithStop(%q) = %v, want %v", tc.text, got, tc.withStop)
		}
		if got := words.EndsSentence([]rune(tc.text)); got != tc.endsSen {
			t.Errorf("EndsSentence(%q) = %v, want %v", tc.text, got, tc.endsSen)
		}
	}
}

func TestSentences(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"", nil},
		{" \n\t\r ", nil},
		{"One. Two? Three! Four", []string{"One.", "Two?", "Three!", "Four"}},
		{"  Leading and trailing.   Space.  ", []string{"Leading and trailing.", "Space."}},
		// A line break cuts before a space, another line break or the end:
		// a blank line, not a line of a paragraph.
		{"Line one\nLine two\n\nLine three\n", []string{"Line one\nLine two", "Line three"}},
		{"Line one\n Line two", []string{"Line one", "Line two"}},
		// A mark not followed by a space or a line break cuts nothing.
		{"It cost 15.5 dollars, see a.b.c. Next.", []string{"It cost 15.5 dollars, see a.b.c.", "Next."}},
		{`He said "Go." Then left.`, []string{`He said "Go." Then left.`}},
		{"Wait... ok", []string{"Wait...", "ok"}},
		// No abbreviations known (see JoinAbbreviations).
		{"Mr. Smith came. He sat.", []string{"Mr.", "Smith came.", "He sat."}},
		{"Kraków’s café. Łódź!", []string{"Kraków’s café.", "Łódź!"}},
	} {
		got := words.SplitSentences(tc.text)
		if !slices.Equal(got, tc.want) {
			t.Errorf("SplitSentences(%q) = %q, want %q", tc.text, got, tc.want)
		}
		spans := words.Sentences(tc.text)
		if len(spans) != len(got) {
			t.Errorf("Sentences(%q): got %d spans, want %d", tc.text, len(spans), len(got))
			continue
		}
		for i, sp := range spans {
			if tc.text[sp.Start:sp.End] != got[i] {
				t.Errorf("Sentences(%q)[%d] = %v, %q; want %q", tc.text, i, sp, tc.text[sp.Start:sp.End], got[i])
			}
		}
	}
	if got, want := words.Sentences("One. Two\n\nThree"), []words.Span{{0, 4}, {5, 8}, {10, 15}}; !slices.Equal(got, want) {
		t.Errorf("Sentences: got %v, want %v", got, want)
	}
}

func TestJoinAbbreviations(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, nil},
		{[]string{"It ended.", "Next one."}, []string{"It ended.", "Next one."}},
		{[]string{"Mr.", "Smith came.", "He sat."}, []string{"Mr. Smith came.", "He sat."}},
		{[]string{"Nixon named William E.", "Simon.", "He left."}, []string{"Nixon named William E. Simon.", "He left."}},
		{[]string{"The U.S.", "Army won."}, []string{"The U.S. Army won."}},
		// Joined as long as the joined text still ends in an abbreviation.
		{[]string{"Dr.", "No.", "5 was it."}, []string{"Dr. No. 5 was it."}},
		// Only a full stop: other marks and other endings are left.
		{[]string{"Really?", "Yes.", "Fine", "then."}, []string{"Really?", "Yes.", "Fine", "then."}},
		// Nothing to join the last one to.
		{[]string{"It ended.", "See Fig."}, []string{"It ended.", "See Fig."}},
	} {
		in := slices.Clone(tc.in)
		got := words.JoinAbbreviations(in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("JoinAbbreviations(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("JoinAbbreviations(%q) changed its argument to %q", tc.in, in)
		}
	}
	text := "In 1973 Nixon named William E. Simon as the first Administrator. Mr. Simon agreed."
	want := []string{"In 1973 Nixon named William E. Simon as the first Administrator.", "Mr. Simon agreed."}
	if got := words.JoinAbbreviations(words.SplitSentences(text)); !slices.Equal(got, want) {
		t.Errorf("JoinAbbreviations(SplitSentences(%q)) = %q, want %q", text, got, want)
	}
}

// A heading is one short line that starts with a capital or a digit, has a
// letter and ends without punctuation: running titles and section heads,
// not sentences.
func TestIsHeading(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"University of Notre Dame: part 4", true},
		{"  1973 oil crisis  ", true},
		{"Chapter 2", true},
		{"2.1 Results", true},
		{"The crisis began in October 1973.", false},
		{"It can be used to derive:", false},
		{"lower-case start", false},
		{"1973", false}, // no letter
		{"Two lines\nof text", false},
		{"", false},
		{strings.Repeat("Long heading ", 7), false}, // over 80 runes
	} {
		if got := words.IsHeading(tc.text); got != tc.want {
			t.Errorf("IsHeading(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}
