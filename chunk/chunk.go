// Package chunk turns the text of a document's pages, as the PDF reader
// extracts it, into passages to search: CleanPages tidies the pages
// (ligatures, hyphenation, running headers and footers, paragraphs) and
// ChunkPages cuts them into page-aware chunks at the strongest boundary
// that fits (a section, a paragraph, a sentence, a word).
package chunk

import (
	"sort"
	"strings"
	"unicode"

	"silo/words"
)

// Chunk sizes, in characters (runes).
const (
	// DefaultChunkSize is the chunk size ChunkPages uses when given none.
	DefaultChunkSize = 1000
	// DefaultChunkOverlap is the overlap ChunkPages uses when given a
	// negative one.
	DefaultChunkOverlap = 150
	// MaxChunkRunes caps every chunk: the retrieval benchmark ignores
	// longer passages, and so should a prompt.
	MaxChunkRunes = 1200
)

// Chunk is a passage of a document with the pages it comes from.
type Chunk struct {
	Text     string
	Page     int // first page (1-based)
	PageEnd  int // last page
	Position int // 0-based order in the document
}

// ChunkPages cuts a document's page texts (page i+1 is pages[i], best
// cleaned by CleanPages) into passages of about size runes, at most size
// and never more than MaxChunkRunes, each sharing up to overlap runes with
// the one before it. size ≤ 0 means DefaultChunkSize; overlap < 0 means
// DefaultChunkOverlap; overlap is kept to at most half of size.
//
// Paragraphs are separated by blank lines and run on across a page break
// that falls mid-sentence. A chunk ends, in order of preference: before a
// section heading past the first third of size; at the last paragraph end
// that fits, past the first fifth; at a sentence end past half, else past a
// quarter; between words; and only inside a word longer than size. A chunk
// never ends with a heading (a short line that opens a paragraph and has no
// final punctuation): the heading starts the next chunk. A chunk that ends a
// paragraph shares nothing with the next; one cut inside a paragraph hands
// on its last overlap runes, from the first sentence start in them, else
// from a word start. Chunks are never empty, and the same input always
// gives the same chunks.
func ChunkPages(pages []string, size, overlap int) []Chunk {
	size, overlap = chunkParams(size, overlap)
	d := newChunkText(pages)
	var chunks []Chunk
	for _, s := range d.spans(size, overlap) {
		text := strings.TrimSpace(string(d.text[s.start:s.end]))
		if text == "" {
			continue
		}
		last := s.end - 1
		for last > s.start && unicode.IsSpace(d.text[last]) {
			last--
		}
		chunks = append(chunks, Chunk{
			Text:     text,
			Page:     d.pageAt(s.start),
			PageEnd:  d.pageAt(last),
			Position: len(chunks),
		})
	}
	return chunks
}

// chunkParams applies the defaults and limits of ChunkPages.
func chunkParams(size, overlap int) (int, int) {
	if size <= 0 {
		size = DefaultChunkSize
	}
	size = min(size, MaxChunkRunes)
	if overlap < 0 {
		overlap = DefaultChunkOverlap
	}
	return size, min(overlap, size/2)
}

// Strengths of the boundary before a word: where a chunk may end or start.
const (
	noBreak       = iota // inside a word
	wordBreak            // between words
	sentenceBreak        // between sentences
	paraBreak            // between paragraphs
	sectionBreak         // before a heading
)

// chunkText is a document as one run of text, with where each page starts
// and how strong a boundary each offset is.
type chunkText struct {
	text      []rune
	starts    []int // offset where each non-empty page starts
	numbers   []int // that page's 1-based number
	breaks    []int8
	positions []int // offsets with breaks[offset] > noBreak, ascending
}

// newChunkText joins the pages: a page that ends mid-sentence runs on into
// the next with a space, otherwise a blank line separates them.
func newChunkText(pages []string) *chunkText {
	d := &chunkText{}
	prev := ""
	for i, p := range pages {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if prev != "" {
			if runsOn(prev) {
				d.text = append(d.text, ' ')
			} else {
				d.text = append(d.text, '\n', '\n')
			}
		}
		prev = p
		d.starts = append(d.starts, len(d.text))
		d.numbers = append(d.numbers, i+1)
		d.text = append(d.text, []rune(p)...)
	}
	d.markBreaks()
	return d
}

// runsOn reports whether a page ends inside a paragraph that goes on to
// the next page: its last paragraph does not end a sentence and is not a
// heading.
func runsOn(page string) bool {
	last := page[strings.LastIndex(page, "\n\n")+1:]
	return !words.EndsWithStop(last) && !words.IsHeading(last)
}

// markBreaks rates each offset that starts a word after white space.
func (d *chunkText) markBreaks() {
	t := d.text
	d.breaks = make([]int8, len(t)+1)
	// Words and the newlines before each; a blank line starts a paragraph.
	var paras []int
	for i := 0; i < len(t); {
		if !unicode.IsSpace(t[i]) {
			i++
			continue
		}
		j, newlines := i, 0
		for ; j < len(t) && unicode.IsSpace(t[j]); j++ {
			if t[j] == '\n' {
				newlines++
			}
		}
		switch {
		case j == len(t) || i == 0:
		case newlines >= 2:
			d.breaks[j] = paraBreak
			paras = append(paras, j)
		case words.EndsSentence(t[:i]) && words.StartsSentence(t[j]):
			d.breaks[j] = sentenceBreak
		default:
			d.breaks[j] = wordBreak
		}
		i = j
	}
	// Headings: a chunk may end before one, and never right after one.
	if len(t) > 0 {
		paras = append([]int{0}, paras...)
	}
	paras = append(paras, len(t))
	heading := make([]bool, len(paras)-1)
	for k := range heading {
		s, e := trimSpan(t, paras[k], paras[k+1])
		heading[k] = k+2 < len(paras) && words.IsHeadingRunes(t[s:e])
	}
	for k := 1; k < len(heading); k++ {
		switch {
		case heading[k-1]:
			d.breaks[paras[k]] = wordBreak
		case heading[k]:
			d.breaks[paras[k]] = sectionBreak
		}
	}
	d.breaks[len(t)] = sectionBreak
	for i, b := range d.breaks {
		if b != noBreak {
			d.positions = append(d.positions, i)
		}
	}
}

// trimSpan narrows t[start:end] to leave out white space on both ends.
func trimSpan(t []rune, start, end int) (int, int) {
	for start < end && unicode.IsSpace(t[start]) {
		start++
	}
	for end > start && unicode.IsSpace(t[end-1]) {
		end--
	}
	return start, end
}

// chunkSpan is a chunk's place in the text: text[start:end].
type chunkSpan struct{ start, end int }

// spans cuts the text into chunk spans.
func (d *chunkText) spans(size, overlap int) []chunkSpan {
	n := len(d.text)
	var out []chunkSpan
	for start := 0; start < n; {
		end := d.end(start, size)
		out = append(out, chunkSpan{start, end})
		if end >= n {
			break
		}
		start = d.next(start, end, overlap)
	}
	return out
}

// end picks where a chunk that starts at start ends.
func (d *chunkText) end(start, size int) int {
	limit := start + size
	if limit >= len(d.text) {
		return len(d.text)
	}
	// Boundaries in (start, limit], latest first.
	lo := sort.SearchInts(d.positions, start+1)
	hi := sort.SearchInts(d.positions, limit+1)
	cands := d.positions[lo:hi]
	pick := func(strength int8, minLen int) int {
		for k := len(cands) - 1; k >= 0; k-- {
			p := cands[k]
			if p-start < minLen {
				break
			}
			if d.breaks[p] >= strength {
				return p
			}
		}
		return -1
	}
	for _, try := range []struct {
		strength int8
		minLen   int
	}{
		{sectionBreak, size * 35 / 100},
		{paraBreak, size / 5},
		{sentenceBreak, size / 2},
		{sentenceBreak, size / 4},
		{wordBreak, 1},
	} {
		if p := pick(try.strength, try.minLen); p > 0 {
			return p
		}
	}
	return limit // one word longer than size
}

// next picks where the chunk after text[start:end] starts: the first
// sentence, else word, in the last overlap runes, but not before the middle
// of the chunk; right at end when the chunk ended a paragraph (nothing
// there needs its context carried over) or cut a word in two.
func (d *chunkText) next(start, end, overlap int) int {
	if overlap == 0 || d.breaks[end] >= paraBreak || d.breaks[end] == noBreak {
		return d.skipSpace(end)
	}
	from := max(end-overlap, start+(end-start)/2+1)
	lo := sort.SearchInts(d.positions, from)
	hi := sort.SearchInts(d.positions, end)
	for _, strength := range []int8{sentenceBreak, wordBreak} {
		for _, p := range d.positions[lo:hi] {
			if d.breaks[p] >= strength {
				return p
			}
		}
	}
	return d.skipSpace(end)
}

// skipSpace moves i past white space.
func (d *chunkText) skipSpace(i int) int {
	for i < len(d.text) && unicode.IsSpace(d.text[i]) {
		i++
	}
	return i
}

// pageAt gives the number of the page that holds offset i.
func (d *chunkText) pageAt(i int) int {
	k := sort.SearchInts(d.starts, i+1) - 1
	if k < 0 {
		return 1
	}
	return d.numbers[k]
}
