package words_test

import (
	"slices"
	"strings"
	"testing"
	"unicode"

	"silo/words"
)

// Plain mode reads the words strings.FieldsFunc finds between runes that
// are neither letters nor numbers, lower-cased, and Span gives each as
// written: the reading search, answers and SQLite's full-text queries had
// before they shared the Scanner.
func FuzzPlainWords(f *testing.F) {
	for _, s := range []string{
		"Kraków's 1,178,914 m² — naïve İstanbul", "soft\u00adhyphen e\u0301t\u00e9", "\xff\xfebad UTF-8", "ﬁne (N.B.) «ok»", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		notWord := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }
		want := strings.FieldsFunc(strings.ToLower(text), notWord)
		var got []string
		var s words.Scanner
		s.Reset(text, words.Plain)
		for s.Next() {
			got = append(got, string(s.Word()))
			start, end := s.Span()
			if w := text[start:end]; string(s.Word()) != strings.ToLower(w) && strings.ToValidUTF8(w, "") == w {
				t.Fatalf("Span %q is not the word %q as written", w, s.Word())
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Plain words of %q: got %q, want %q", text, got, want)
		}
		if asWritten := words.List(text); len(asWritten) != len(want) {
			t.Fatalf("List(%q) = %q, want %d words", text, asWritten, len(want))
		}
	})
}
