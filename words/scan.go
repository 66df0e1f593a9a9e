// Package words reads text the one way every step of silo reads it: a
// tokenizer (Scanner), stop words, a stemmer and the sentence rules, shared
// by page clean-up, chunking, the offline embedder, search and answers.
package words

import (
	"unicode"
	"unicode/utf8"
)

// Mode is how a Scanner reads words.
type Mode uint8

const (
	// Plain words are runs of Unicode letters and numbers, lower-cased;
	// anything else separates them. Search and answers read words so.
	Plain Mode = iota
	// Folded words are read for the offline embedder: letters and decimal
	// digits, lower-cased, with common Latin accents folded ("Kraków" is
	// "krakow"), soft hyphens and combining accents inside a word dropped,
	// numbers kept whole ("1,178,914", "15.5") and a possessive 's dropped.
	Folded
)

// Scanner reads the words of a text one at a time, without allocating
// once its buffer has grown:
//
//	s.Reset(text, words.Plain)
//	for s.Next() {
//		use(s.Word())
//	}
type Scanner struct {
	text        string
	mode        Mode
	i           int
	word        []byte
	start, end  int
	numeric     bool
	newSentence bool
	brk         bool // a sentence break since the last word
}

// Reset starts reading text in mode.
func (s *Scanner) Reset(text string, mode Mode) {
	s.text, s.mode, s.i, s.brk = text, mode, 0, true
}

// Next reads the next word; it reports false at the end of the text.
func (s *Scanner) Next() bool {
	s.word = s.word[:0]
	fold := s.mode == Folded
	numeric := true // the word holds only digits (and joined separators) so far
	text := s.text
	for i := s.i; i < len(text); {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		switch {
		case r < utf8.RuneSelf && isASCIIWord(byte(r)):
			c := byte(r)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c < '0' || c > '9' {
				numeric = false
			}
			s.begin(i)
			s.word = append(s.word, c)
		case fold && r == '\u00ad': // soft hyphen: part of the word
		case fold && r >= utf8.RuneSelf && unicode.Is(unicode.Mn, r): // combining accent: folded away
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || !fold && unicode.IsNumber(r)):
			numeric = false
			s.begin(i)
			if fold {
				s.word = appendFolded(s.word, unicode.ToLower(r))
			} else {
				s.word = utf8.AppendRune(s.word, unicode.ToLower(r))
			}
		case fold && (r == ',' || r == '.') && numeric && len(s.word) > 0 && i+1 < len(text) && isDigit(text[i+1]):
			// 1,178,914 and 15.5 stay one word.
			if r == '.' {
				s.word = append(s.word, '.')
			}
		case fold && (r == '\'' || r == '\u2019') && len(s.word) > 0 && endsPossessive(text, i+size):
			s.i, s.end, s.numeric = i+size+1, i, numeric // past the 's
			return true
		default:
			if len(s.word) > 0 {
				s.i, s.end, s.numeric = i, i, numeric // the separator is read again
				return true
			}
			if isSentenceBreak(r) {
				s.brk = true
			}
		}
		i += size
	}
	s.i = len(text)
	s.end, s.numeric = len(text), numeric
	return len(s.word) > 0
}

// begin notes where a word starts, at its first letter.
func (s *Scanner) begin(i int) {
	if len(s.word) == 0 {
		s.start, s.newSentence, s.brk = i, s.brk, false
	}
}

// Word is the word read last, lower-cased (and in Folded mode folded); it
// is valid until the next call of Next.
func (s *Scanner) Word() []byte { return s.word }

// Span is where the word read last stands in the text, as written:
// text[start:end] (in Folded mode, with what was dropped from it).
func (s *Scanner) Span() (start, end int) { return s.start, s.end }

// Numeric reports whether the word read last is a number.
func (s *Scanner) Numeric() bool { return s.numeric }

// NewSentence reports whether a sentence break (. ! ? ; : brackets or
// double quotes) stands between the word read last and the one before it;
// the first word of a text starts one.
func (s *Scanner) NewSentence() bool { return s.newSentence }

// List returns the words of text as written (Plain mode's words, in their
// own case).
func List(text string) []string {
	var out []string
	var s Scanner
	s.Reset(text, Plain)
	for s.Next() {
		start, end := s.Span()
		out = append(out, text[start:end])
	}
	return out
}

func isASCIIWord(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isSentenceBreak(r rune) bool {
	switch r {
	case '.', '!', '?', ';', ':', '(', ')', '[', ']', '"', '\u201c', '\u201d':
		return true
	}
	return false
}

// endsPossessive reports whether text[i:] is "s" followed by a non-letter.
func endsPossessive(text string, i int) bool {
	if i >= len(text) || (text[i] != 's' && text[i] != 'S') {
		return false
	}
	if i+1 == len(text) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(text[i+1:])
	return !unicode.IsLetter(r) && !unicode.IsDigit(r)
}

// appendFolded appends a lower-case rune with common Latin diacritics
// removed, so that "Kraków" and "Krakow" are the same word.
func appendFolded(b []byte, r rune) []byte {
	if r >= 0xc0 && r < 0x180 {
		if f := latinFold[r-0xc0]; f != '_' {
			return append(b, f)
		}
		switch r {
		case 'ß':
			return append(b, 's', 's')
		case 'æ':
			return append(b, 'a', 'e')
		case 'œ':
			return append(b, 'o', 'e')
		}
	}
	return utf8.AppendRune(b, r)
}

// latinFold maps U+00C0…U+017F (lower-cased) to an ASCII letter; '_' keeps
// the rune as it is.
const latinFold = "" +
	"aaaaaaaceeeeiiii" + // U+00C0
	"dnooooo_ouuuuy__" + // U+00D0
	"aaaaaa_ceeeeiiii" + // U+00E0
	"dnooooo_ouuuuy_y" + // U+00F0
	"aaaaaaccccccccdd" + // U+0100
	"ddeeeeeeeeeegggg" + // U+0110
	"gggghhhhiiiiiiii" + // U+0120
	"ii__jjkkklllllll" + // U+0130
	"lllnnnnnnnnnoooo" + // U+0140
	"oo__rrrrrrssssss" + // U+0150
	"ssttttttuuuuuuuu" + // U+0160
	"uuuuwwyyyzzzzzzs" // U+0170

// ligatures spells out U+FB00 to U+FB06.
var ligatures = [...]string{"ff", "fi", "fl", "ffi", "ffl", "st", "st"}

// Ligature spells out a Latin typographic ligature (ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ), or
// reports false for any other rune.
func Ligature(r rune) (string, bool) {
	if r >= '\ufb00' && r <= '\ufb06' {
		return ligatures[r-'\ufb00'], true
	}
	return "", false
}
