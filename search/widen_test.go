package search

import (
	"strings"
	"testing"
	"unicode/utf8"

	"silo/chunk"
	"silo/store"
)

func TestJoinChunks(t *testing.T) {
	a := "First sentence here. The shared sentence at the end."
	b := "The shared sentence at the end. Then the next one."
	got, start := joinChunks(a, b)
	if got != "First sentence here. The shared sentence at the end. Then the next one." || got[start:] != b {
		t.Errorf("overlap: got %q, b at %d", got, start)
	}
	got, start = joinChunks("A paragraph ends.", "Another begins.")
	if got != "A paragraph ends.\n\nAnother begins." || got[start:] != "Another begins." {
		t.Errorf("no overlap: got %q, b at %d", got, start)
	}
}

func TestWidenChunk(t *testing.T) {
	sentence := func(s string, n int) string { return strings.Repeat(s+" ", n) }
	prev := &chunk.Chunk{Text: strings.TrimSpace(sentence("Earlier text about the harbour.", 40)), Page: 1, PageEnd: 2}
	next := &chunk.Chunk{Text: "The answer is 1893. " + strings.TrimSpace(sentence("Later text about the tides.", 40)), Page: 4, PageEnd: 4}
	text := strings.TrimSpace(sentence("Some words of the chunk.", 20)) + " The keeper's cat was born"
	best := strings.Index(text, "The keeper")
	f := candidate{Hit: store.Hit{ChunkID: 7, Text: text, Page: 3, PageEnd: 3, Position: 5, Score: 1}, best: best}

	for _, best := range []int{best, 0} {
		f.best = best
		r := widenChunk(f, prev, next)
		grewForward := strings.Index(r.Text, "The answer is 1893.") > strings.Index(r.Text, text)
		grewBack := strings.HasPrefix(r.Text, "Earlier")
		if !strings.Contains(r.Text, text) || !grewForward || (best == 0 && !grewBack) {
			t.Errorf("best sentence at %d: got %q, want the chunk, the next chunk's first sentence and, when the best sentence is the first, text before", best, r.Text)
		}
		if n := utf8.RuneCountInString(r.Text); n > MaxPassageRunes || n < MaxPassageRunes-40 {
			t.Errorf("best sentence at %d: got %d runes, want just under %d", best, n, MaxPassageRunes)
		}
		wantPage, wantEnd := 3, 3
		if strings.Contains(r.Text, "Earlier") {
			wantPage = 2
		}
		if strings.Contains(r.Text, "1893") {
			wantEnd = 4
		}
		if r.Page != wantPage || r.PageEnd != wantEnd || r.ChunkID != 7 || r.Score != 1 {
			t.Errorf("best sentence at %d: got pages %d-%d, chunk %d, score %v; want %d-%d, 7, 1", best, r.Page, r.PageEnd, r.ChunkID, r.Score, wantPage, wantEnd)
		}
	}

	if r := widenChunk(f, nil, nil); r.Text != text || r.Page != 3 || r.PageEnd != 3 {
		t.Errorf("no neighbours: got %q pages %d-%d, want the chunk unchanged", r.Text, r.Page, r.PageEnd)
	}
	long := candidate{Hit: store.Hit{Text: strings.Repeat("x", MaxPassageRunes+1), Page: 3, PageEnd: 3}}
	if r := widenChunk(long, prev, next); r.Text != long.Text {
		t.Errorf("a chunk longer than a passage: got %d bytes, want it unchanged", len(r.Text))
	}
}
