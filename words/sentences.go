package words

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// openers may open a sentence before its first word; closers may close one
// after its final mark.
const (
	openers = "\"'“‘«(["
	closers = "\"'”’»)]"
)

// StartsSentence reports whether a sentence can start with r: an
// upper-case letter, a digit or an opening quote or bracket.
func StartsSentence(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsDigit(r) || strings.ContainsRune(openers, r)
}

// isFinal reports whether r is a sentence's final mark.
func isFinal(r rune) bool { return r == '.' || r == '!' || r == '?' || r == '…' }

func isCloser(r rune) bool { return strings.ContainsRune(closers, r) }

// EndsWithStop reports whether s ends with a full stop, question or
// exclamation mark or an ellipsis, maybe followed by closing quotes or
// brackets: the end of a line that may end a paragraph.
func EndsWithStop(s string) bool {
	last, _ := utf8.DecodeLastRuneInString(strings.TrimRightFunc(s, isCloser))
	return isFinal(last)
}

// abbreviations end with a full stop that does not end a sentence.
var abbreviations = map[string]bool{
	"al": true, "approx": true, "ca": true, "cf": true, "co": true, "col": true,
	"corp": true, "dept": true, "dr": true, "ed": true, "eds": true, "fig": true,
	"figs": true, "gen": true, "gov": true, "hon": true, "inc": true, "jr": true,
	"lt": true, "ltd": true, "messrs": true, "mr": true, "mrs": true, "ms": true,
	"mt": true, "no": true, "nos": true, "op": true, "pp": true, "prof": true,
	"rep": true, "rev": true, "sen": true, "sgt": true, "sr": true, "st": true,
	"vol": true, "vols": true, "vs": true, "jan": true, "feb": true, "mar": true,
	"apr": true, "jun": true, "jul": true, "aug": true, "sep": true,
	"sept": true, "oct": true, "nov": true, "dec": true,
}

// EndsSentence reports whether text ends a sentence: it ends with a stop
// (EndsWithStop) that is not the full stop of an initial ("E."), an
// abbreviation ("Dr.") or a dotted abbreviation ("U.S.", "e.g.").
func EndsSentence(t []rune) bool {
	i := len(t) - 1
	for i >= 0 && isCloser(t[i]) {
		i--
	}
	if i < 0 || !isFinal(t[i]) {
		return false
	}
	if t[i] != '.' {
		return true
	}
	j := i
	for j > 0 && !unicode.IsSpace(t[j-1]) && !strings.ContainsRune(openers, t[j-1]) {
		j--
	}
	switch w := t[j:i]; {
	case len(w) == 0:
		return true
	case len(w) == 1:
		return !unicode.IsLetter(w[0])
	case slices.Contains(w, '.'):
		return false
	case len(w) > 6: // longer than any abbreviation
		return true
	default:
		return !abbreviations[strings.ToLower(string(w))]
	}
}

// Span is a byte range [Start, End) of a text.
type Span struct{ Start, End int }

// Sentences cuts a text at sentence ends: ., ?, ! or a line break before a
// space, a line break or the end of the text (so at a blank line, not at a
// line break inside a paragraph); the spans cover the text but its leading
// and trailing space. It does not know abbreviations (see JoinAbbreviations): a search
// reads every sentence of its candidates this way, fast.
func Sentences(text string) []Span {
	var out []Span
	start := 0
	add := func(end int) {
		s, e := start, end
		for s < e && isSpaceByte(text[s]) {
			s++
		}
		for e > s && isSpaceByte(text[e-1]) {
			e--
		}
		if s < e {
			out = append(out, Span{s, e})
		}
		start = end
	}
	for i := 0; i < len(text); i++ {
		if c := text[i]; (c == '.' || c == '?' || c == '!' || c == '\n') && (i+1 == len(text) || text[i+1] == ' ' || text[i+1] == '\n') {
			add(i + 1)
		}
	}
	add(len(text))
	return out
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// SplitSentences returns the sentences of a text (see Sentences).
func SplitSentences(text string) []string {
	spans := Sentences(text)
	out := make([]string, len(spans))
	for i, sp := range spans {
		out[i] = text[sp.Start:sp.End]
	}
	return out
}

// JoinAbbreviations mends sentences that SplitSentences cut after an
// abbreviation or an initial ("Mr.", "William E.", "U.S."), as EndsSentence
// tells them, joining each to the next.
func JoinAbbreviations(sentences []string) []string {
	out := sentences[:0:0]
	for i := 0; i < len(sentences); i++ {
		s := sentences[i]
		for i+1 < len(sentences) && strings.HasSuffix(s, ".") && !EndsSentence([]rune(s)) {
			i++
			s += " " + sentences[i]
		}
		out = append(out, s)
	}
	return out
}

// IsHeading reports whether a paragraph looks like a heading (or a running
// title, or a caption's label): one short line that starts with a capital or
// a digit, has a letter, and ends without punctuation.
func IsHeading(p string) bool { return IsHeadingRunes([]rune(strings.TrimSpace(p))) }

// IsHeadingRunes is IsHeading for a paragraph as runes, already trimmed.
func IsHeadingRunes(p []rune) bool {
	if len(p) == 0 || len(p) > 80 || slices.Contains(p, '\n') {
		return false
	}
	if first := p[0]; !unicode.IsUpper(first) && !unicode.IsDigit(first) {
		return false
	}
	if strings.ContainsRune(".,;:!?", p[len(p)-1]) {
		return false
	}
	return slices.ContainsFunc(p, unicode.IsLetter)
}
