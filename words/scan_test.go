package words_test

import (
	"slices"
	"testing"

	"silo/words"
)

// token is a word a Scanner read: Word, the text at Span, Numeric and
// NewSentence.
type token struct {
	word, span       string
	numeric, newSent bool
}

// scan reads text in mode.
func scan(text string, mode words.Mode) []token {
	var out []token
	var s words.Scanner
	s.Reset(text, mode)
	for s.Next() {
		start, end := s.Span()
		out = append(out, token{string(s.Word()), text[start:end], s.Numeric(), s.NewSentence()})
	}
	return out
}

// wordsOf returns the Word of each token.
func wordsOf(tokens []token) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = t.word
	}
	return out
}

// spansOf returns the text at the Span of each token.
func spansOf(tokens []token) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = t.span
	}
	return out
}

func TestScanPlain(t *testing.T) {
	for _, tc := range []struct {
		text  string
		words []string
		spans []string // nil: as words
	}{
		{"", nil, nil},
		{" ,.!? -- ", nil, nil},
		{"Hello, World! 42x", []string{"hello", "world", "42x"}, []string{"Hello", "World", "42x"}},
		// Non-ASCII letters and numbers are kept, lower-cased, accents and all.
		{"Kraków has 20 m² of ÉCOLE", []string{"kraków", "has", "20", "m²", "of", "école"}, []string{"Kraków", "has", "20", "m²", "of", "ÉCOLE"}},
		{"Łódź, Straße", []string{"łódź", "straße"}, []string{"Łódź", "Straße"}},
		{"日本語のテキスト", []string{"日本語のテキスト"}, nil},
		// Anything else separates: hyphens, underscores, apostrophes,
		// the separators of numbers.
		{"naïve-test_case", []string{"naïve", "test", "case"}, nil},
		{"John's Warsaw’s", []string{"john", "s", "warsaw", "s"}, []string{"John", "s", "Warsaw", "s"}},
		{"1,178,914 and 15.5", []string{"1", "178", "914", "and", "15", "5"}, nil},
		// A soft hyphen or a combining accent is no letter: it separates too.
		{"co\u00adoperation", []string{"co", "operation"}, nil},
		{"cafe\u0301s", []string{"cafe", "s"}, nil},
	} {
		got := scan(tc.text, words.Plain)
		if w := wordsOf(got); !slices.Equal(w, tc.words) {
			t.Errorf("Plain %q: got words %q, want %q", tc.text, w, tc.words)
		}
		want := tc.spans
		if want == nil {
			want = tc.words
		}
		if s := spansOf(got); !slices.Equal(s, want) {
			t.Errorf("Plain %q: got spans %q, want %q", tc.text, s, want)
		}
	}
}

func TestScanFolded(t *testing.T) {
	for _, tc := range []struct {
		text  string
		words []string
		spans []string // nil: as words
	}{
		{"", nil, nil},
		{"Hello, World! 42x", []string{"hello", "world", "42x"}, []string{"Hello", "World", "42x"}},
		// Common Latin accents are folded.
		{"Kraków Łódź Frédéric ÉCOLE Øresund", []string{"krakow", "lodz", "frederic", "ecole", "oresund"},
			[]string{"Kraków", "Łódź", "Frédéric", "ÉCOLE", "Øresund"}},
		{"Straße Æsir Œuvre", []string{"strasse", "aesir", "oeuvre"}, []string{"Straße", "Æsir", "Œuvre"}},
		// Letters outside the table are kept as they are, lower-cased.
		{"Þing 日本語", []string{"þing", "日本語"}, []string{"Þing", "日本語"}},
		// Only letters and decimal digits: a superscript separates.
		{"20 m²", []string{"20", "m"}, nil},
		// A soft hyphen or a combining accent inside a word is dropped, and
		// stays in its span.
		{"co\u00adoperation", []string{"cooperation"}, []string{"co\u00adoperation"}},
		{"Cafe\u0301s", []string{"cafes"}, []string{"Cafe\u0301s"}},
		// Numbers stay whole: thousands separators dropped, the decimal
		// point kept.
		{"1,178,914 people on 15.5 ha", []string{"1178914", "people", "on", "15.5", "ha"}, []string{"1,178,914", "people", "on", "15.5", "ha"}},
		{"1,000.50", []string{"1000.50"}, []string{"1,000.50"}},
		// Only between digits, and only in a number.
		{"It was 15.5. Then 3, 4", []string{"it", "was", "15.5", "then", "3", "4"}, []string{"It", "was", "15.5", "Then", "3", "4"}},
		{"v1.2 a,1", []string{"v1", "2", "a", "1"}, nil},
		// A possessive 's is dropped, with either apostrophe and in either
		// case; another 's is not a possessive.
		{"John's book, Warsaw’s JOHN'S", []string{"john", "book", "warsaw", "john"}, []string{"John", "book", "Warsaw", "JOHN"}},
		{"Kraków's 1990's", []string{"krakow", "1990"}, []string{"Kraków", "1990"}},
		{"Johns' John'sfoo", []string{"johns", "john", "sfoo"}, []string{"Johns", "John", "sfoo"}},
		{"don't", []string{"don", "t"}, nil},
	} {
		got := scan(tc.text, words.Folded)
		if w := wordsOf(got); !slices.Equal(w, tc.words) {
			t.Errorf("Folded %q: got words %q, want %q", tc.text, w, tc.words)
		}
		want := tc.spans
		if want == nil {
			want = tc.words
		}
		if s := spansOf(got); !slices.Equal(s, want) {
			t.Errorf("Folded %q: got spans %q, want %q", tc.text, s, want)
		}
	}
}

func TestScanNumeric(t *testing.T) {
	for _, tc := range []struct {
		mode    words.Mode
		text    string
		numeric []bool
	}{
		{words.Folded, "1,178,914 15.5 42 42nd Kraków 1990's", []bool{true, true, true, false, false, true}},
		{words.Plain, "42 42nd m² 1,5", []bool{true, false, false, true, true}},
	} {
		var got []bool
		for _, tok := range scan(tc.text, tc.mode) {
			got = append(got, tok.numeric)
		}
		if !slices.Equal(got, tc.numeric) {
			t.Errorf("%q: got Numeric %v, want %v", tc.text, got, tc.numeric)
		}
	}
}

func TestScanNewSentence(t *testing.T) {
	text := `Hello world, again. Then (inside) “quoted” John's book: it is 15.5 ha; done! Really? [x] "y" 'z' - w`
	want := []struct {
		word    string
		newSent bool
	}{
		{"hello", true}, // the first word
		{"world", false},
		{"again", false}, // a comma is no break
		{"then", true},   // .
		{"inside", true}, // (
		{"quoted", true}, // ) “
		{"john", true},   // ”
		{"book", false},  // a possessive is no break
		{"it", true},     // :
		{"is", false},
		{"15.5", false},
		{"ha", false}, // nor is a decimal point
		{"done", true},
		{"really", true}, // !
		{"x", true},      // ? [
		{"y", true},      // ] "
		{"z", true},      // "
		{"w", false},     // single quotes and dashes are no breaks
	}
	got := scan(text, words.Folded)
	if len(got) != len(want) {
		t.Fatalf("got words %q, want %d", wordsOf(got), len(want))
	}
	for i, w := range want {
		if got[i].word != w.word || got[i].newSent != w.newSent {
			t.Errorf("word %d: got %q with NewSentence %v, want %q with %v", i, got[i].word, got[i].newSent, w.word, w.newSent)
		}
	}
	if got := scan("  ...  first", words.Plain); len(got) != 1 || !got[0].newSent {
		t.Errorf("Plain: got %+v, want the first word to start a sentence", got)
	}
}

// A Scanner is reused by Reset, in either mode, and reads without
// allocating once its buffer has grown.
func TestScanReset(t *testing.T) {
	var s words.Scanner
	s.Reset("Łódź is a city", words.Plain)
	if !s.Next() || string(s.Word()) != "łódź" {
		t.Fatalf("got %q, want łódź", s.Word())
	}
	s.Reset("Łódź", words.Folded)
	if !s.Next() || string(s.Word()) != "lodz" || !s.NewSentence() || s.Next() {
		t.Errorf("after Reset: got %q, want lodz alone, starting a sentence", s.Word())
	}
	text := "The Saxon Garden, covering the area of 15.5 ha, was formally a royal garden in Kraków's centre."
	read := func() {
		s.Reset(text, words.Folded)
		for s.Next() {
		}
	}
	read()
	if allocs := testing.AllocsPerRun(100, read); allocs != 0 {
		t.Errorf("got %v allocations per text, want 0", allocs)
	}
}

func TestList(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"", nil},
		{"!!! ---", nil},
		{"Hello, Kraków's m² World! 1,178", []string{"Hello", "Kraków", "s", "m²", "World", "1", "178"}},
		{"ÉCOLE co\u00adop", []string{"ÉCOLE", "co", "op"}},
	} {
		if got := words.List(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestLigature(t *testing.T) {
	for _, tc := range []struct {
		r    rune
		want string
		ok   bool
	}{
		{'ﬀ', "ff", true},
		{'ﬁ', "fi", true},
		{'ﬂ', "fl", true},
		{'ﬃ', "ffi", true},
		{'ﬄ', "ffl", true},
		{'ﬅ', "st", true},
		{'ﬆ', "st", true},
		{'\ufaff', "", false},
		{'\ufb07', "", false},
		{'f', "", false},
		{'æ', "", false},
		{'œ', "", false},
	} {
		if got, ok := words.Ligature(tc.r); got != tc.want || ok != tc.ok {
			t.Errorf("Ligature(%U) = %q, %v; want %q, %v", tc.r, got, ok, tc.want, tc.ok)
		}
	}
}
