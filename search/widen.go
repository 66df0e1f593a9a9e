package search

import (
	"context"
	"strings"
	"unicode/utf8"

	"silo/chunk"
	"silo/store"
	"silo/words"
)

// widen turns the chunks a search found into the passages it returns: each
// chunk with whole sentences of the chunk before and the chunk after it,
// taken one at a time on the side where its best sentence is nearer the
// edge (so that the best sentence moves toward the middle), while the
// passage stays within MaxPassageRunes. A question's answer is often a
// sentence away from the words it shares with the question, and a chunk
// can end or start right there. The pages grow with the text.
func widen(ctx context.Context, c store.Content, found []candidate) ([]Result, error) {
	out := make([]Result, len(found))
	if len(found) == 0 {
		return out, nil
	}
	type place struct {
		doc      string
		position int
	}
	positions := map[string][]int{} // the neighbours' positions, by document
	for _, f := range found {
		positions[f.DocumentID] = append(positions[f.DocumentID], f.Position-1, f.Position+1)
	}
	byPlace := map[place]*chunk.Chunk{}
	for doc, ps := range positions {
		rows, err := c.Neighbours(ctx, doc, ps)
		if err != nil {
			return nil, err
		}
		for i := range rows {
			byPlace[place{doc, rows[i].Position}] = &rows[i]
		}
	}
	for i, f := range found {
		out[i] = widenChunk(f, byPlace[place{f.DocumentID, f.Position - 1}], byPlace[place{f.DocumentID, f.Position + 1}])
	}
	return out, nil
}

// widenChunk widens one chunk with its neighbours prev and next (nil when
// there is none); see widen.
func widenChunk(f candidate, prev, next *chunk.Chunk) Result {
	r := Result{ChunkID: f.ChunkID, DocumentID: f.DocumentID, Text: f.Text, Page: f.Page, PageEnd: f.PageEnd, Score: f.Score, Support: f.support}
	text, start := f.Text, 0
	if prev != nil {
		text, start = joinChunks(prev.Text, text)
	}
	end := start + len(f.Text)
	if next != nil {
		text, _ = joinChunks(text, next.Text)
	}
	spans := words.Sentences(text)
	lo, hi, best := -1, -1, -1
	for j, s := range spans {
		if s.End > start && s.Start < end {
			if lo < 0 {
				lo = j
			}
			hi = j
		}
		if s.Start <= start+f.best && start+f.best < s.End {
			best = j
		}
	}
	runes := func(lo, hi int) int { return utf8.RuneCountInString(text[spans[lo].Start:spans[hi].End]) }
	if lo < 0 || best < 0 || runes(lo, hi) > MaxPassageRunes {
		return r
	}
	for {
		backFirst := best-lo < hi-best
		switch {
		case backFirst && lo > 0 && runes(lo-1, hi) <= MaxPassageRunes:
			lo--
		case hi+1 < len(spans) && runes(lo, hi+1) <= MaxPassageRunes:
			hi++
		case !backFirst && lo > 0 && runes(lo-1, hi) <= MaxPassageRunes:
			lo--
		default:
			r.Text = text[spans[lo].Start:spans[hi].End]
			if spans[lo].Start < start {
				r.Page = prev.PageEnd
			}
			if spans[hi].End > end {
				r.PageEnd = next.Page
			}
			return r
		}
	}
}

// minOverlap is the shortest text two neighbouring chunks are taken to
// share; a shorter match is a coincidence.
const minOverlap = 16

// joinChunks joins two neighbouring chunks of a document, once the text
// that b repeats from the end of a, and returns where b starts in the
// result. Chunks that share nothing end and start paragraphs.
func joinChunks(a, b string) (string, int) {
	for n := min(len(a), len(b)); n >= minOverlap; n-- {
		if a[len(a)-n] == b[0] && strings.HasSuffix(a, b[:n]) {
			return a + b[n:], len(a) - n
		}
	}
	return a + "\n\n" + b, len(a) + 2
}
