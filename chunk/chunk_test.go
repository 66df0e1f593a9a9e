package chunk

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"silo/words"
)

// checkChunks checks the properties every chunking must have against the
// pages it was made from.
func checkChunks(t *testing.T, name string, pages []string, size, overlap int, chunks []Chunk) {
	t.Helper()
	size, overlap = chunkParams(size, overlap)
	for i, c := range chunks {
		n := utf8.RuneCountInString(c.Text)
		switch {
		case c.Text == "" || strings.TrimSpace(c.Text) != c.Text:
			t.Errorf("%s chunk %d: empty or untrimmed: %q", name, i, c.Text)
		case n > size || n > MaxChunkRunes:
			t.Errorf("%s chunk %d: got %d runes, want at most %d", name, i, n, size)
		case c.Position != i:
			t.Errorf("%s chunk %d: got position %d, want %d", name, i, c.Position, i)
		case c.Page < 1 || c.PageEnd < c.Page || c.PageEnd > len(pages):
			t.Errorf("%s chunk %d: got pages %d-%d of %d", name, i, c.Page, c.PageEnd, len(pages))
		case i > 0 && (c.Page < chunks[i-1].Page || c.PageEnd < chunks[i-1].PageEnd):
			t.Errorf("%s chunk %d: pages %d-%d go back from %d-%d", name, i, c.Page, c.PageEnd, chunks[i-1].Page, chunks[i-1].PageEnd)
		}
		if !utf8.ValidString(c.Text) {
			t.Errorf("%s chunk %d: invalid UTF-8", name, i)
		}
	}
	// The spans cover the text: each starts after the one before and no
	// later than its end, with nothing but white space between.
	d := newChunkText(pages)
	spans := d.spans(size, overlap)
	if len(spans) != len(chunks) {
		t.Errorf("%s: got %d spans for %d chunks", name, len(spans), len(chunks))
	}
	if len(spans) > 0 && strings.TrimSpace(string(d.text[:spans[0].start])) != "" {
		t.Errorf("%s: text before the first chunk", name)
	}
	for i := 1; i < len(spans); i++ {
		a, b := spans[i-1], spans[i]
		if b.start <= a.start || b.start > a.end && strings.TrimSpace(string(d.text[a.end:b.start])) != "" {
			t.Errorf("%s: chunk %d at %d-%d does not follow %d-%d", name, i, b.start, b.end, a.start, a.end)
		}
	}
	if n := len(spans); n > 0 && strings.TrimSpace(string(d.text[spans[n-1].end:])) != "" {
		t.Errorf("%s: text after the last chunk", name)
	}
	// Every word of every page is in a chunk.
	have := make(map[string]bool)
	for _, c := range chunks {
		for _, w := range strings.Fields(c.Text) {
			have[w] = true
		}
	}
	missing := 0
	for p, page := range pages {
		for _, w := range strings.Fields(page) {
			if !have[w] && utf8.RuneCountInString(w) <= size {
				missing++
				if missing <= 5 {
					t.Errorf("%s: word %q of page %d is in no chunk", name, w, p+1)
				}
			}
		}
	}
}

func TestChunkPagesFixtures(t *testing.T) {
	for _, name := range textFixtures {
		pages := CleanPages(readPageFixture(t, name))
		for _, sz := range []struct{ size, overlap int }{{1000, 150}, {0, -1}, {200, 0}, {1200, 600}, {5000, 150}} {
			chunks := ChunkPages(pages, sz.size, sz.overlap)
			if len(chunks) == 0 {
				t.Fatalf("%s: no chunks", name)
			}
			checkChunks(t, fmt.Sprintf("%s %d/%d", name, sz.size, sz.overlap), pages, sz.size, sz.overlap, chunks)
			if again := ChunkPages(pages, sz.size, sz.overlap); !reflect.DeepEqual(again, chunks) {
				t.Errorf("%s: two runs differ", name)
			}
		}
		// Raw text chunks too, if less well.
		raw := readPageFixture(t, name)
		checkChunks(t, name+" raw", raw, 1000, 150, ChunkPages(raw, 1000, 150))
	}
}

func TestChunkPagesSentencesAndHeadings(t *testing.T) {
	pages := CleanPages(readPageFixture(t, "1973-oil-crisis.txt"))
	chunks := ChunkPages(pages, 1000, 150)
	ends := 0
	for i, c := range chunks {
		if words.EndsWithStop(c.Text) {
			ends++
		}
		paras := strings.Split(c.Text, "\n\n")
		if last := paras[len(paras)-1]; i+1 < len(chunks) && words.IsHeading(last) {
			t.Errorf("chunk %d ends with the heading %q", i, last)
		}
	}
	if ends < len(chunks)*9/10 {
		t.Errorf("got %d of %d chunks ending a sentence, want 90%%", ends, len(chunks))
	}
	// Each "part N" heading is in a chunk with the text it heads, and most
	// start their chunk.
	starts := 0
	for _, n := range []string{"2", "3", "4"} {
		h := "1973 oil crisis: part " + n + "\n\n"
		found := false
		for _, c := range chunks {
			if k := strings.Index(c.Text, h); k >= 0 && len(c.Text) > k+len(h)+100 {
				found = true
				if k == 0 {
					starts++
				}
			}
		}
		if !found {
			t.Errorf("no chunk has %q with the text after it", h)
		}
	}
	if starts < 2 {
		t.Errorf("got %d of 3 headings starting a chunk, want 2 or more", starts)
	}
}

func TestChunkPagesHeadingGoesForward(t *testing.T) {
	para := func(words int, seed string) string {
		var b strings.Builder
		for i := range words {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(seed)
			if i%10 == 9 {
				b.WriteByte('.')
			}
		}
		return b.String() + "."
	}
	// 700 + 3 + 600: the heading would fit in the first chunk, but goes
	// with the paragraph it names.
	text := para(100, "aaaaaa") + "\n\nFindings\n\n" + para(100, "bbbbb")
	chunks := ChunkPages([]string{text}, 1000, 150)
	if len(chunks) != 2 || !strings.HasPrefix(chunks[1].Text, "Findings\n\nbbbbb") {
		t.Errorf("got %+v, want the heading to start the second chunk", chunks)
	}
}

func TestChunkPagesPages(t *testing.T) {
	// Words name their page; every chunk's first word is on its Page and
	// its last on its PageEnd, and a paragraph that runs over a page break
	// gives a chunk over two pages.
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		pages := make([]string, 1+rng.IntN(12))
		for p := range pages {
			if rng.IntN(6) == 0 {
				continue // an empty page
			}
			var b strings.Builder
			for w := range rng.IntN(400) {
				switch {
				case w == 0:
				case rng.IntN(60) == 0:
					b.WriteString(".\n\n")
				case rng.IntN(12) == 0:
					b.WriteString(". ")
				default:
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "P%dw%d", p+1, w)
			}
			pages[p] = b.String()
		}
		size, overlap := 100+rng.IntN(1100), rng.IntN(200)
		chunks := ChunkPages(pages, size, overlap)
		name := fmt.Sprintf("round %d", round)
		checkChunks(t, name, pages, size, overlap, chunks)
		for i, c := range chunks {
			words := strings.FieldsFunc(c.Text, func(r rune) bool { return unicode.IsSpace(r) || r == '.' })
			first, last := scanInt(t, words[0], "P%dw"), scanInt(t, words[len(words)-1], "P%dw")
			if first != c.Page || last != c.PageEnd {
				t.Errorf("%s chunk %d: got pages %d-%d, want %d-%d", name, i, c.Page, c.PageEnd, first, last)
			}
		}
	}
}

// scanInt reads the number in s that format describes.
func scanInt(t *testing.T, s, format string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(s, format, &n); err != nil {
		t.Fatalf("reading %q as %q: %v", s, format, err)
	}
	return n
}

func TestChunkPagesAcrossPageBreak(t *testing.T) {
	pages := CleanPages(readPageFixture(t, "1973-oil-crisis.txt"))
	found := false
	for _, c := range ChunkPages(pages, 1000, 150) {
		if strings.Contains(c.Text, "$2.2 billion in emergency aid to Israel") {
			found = true
			if c.Page != 1 || c.PageEnd != 2 {
				t.Errorf("got pages %d-%d, want 1-2", c.Page, c.PageEnd)
			}
		}
	}
	if !found {
		t.Error("the sentence over pages 1 and 2 is in no chunk")
	}
}

func TestChunkPagesOverlap(t *testing.T) {
	// One long paragraph: neighbours share up to overlap runes, starting
	// at a sentence.
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "Sentence number %d says a little about nothing. ", i)
	}
	pages := []string{b.String()}
	chunks := ChunkPages(pages, 1000, 150)
	checkChunks(t, "overlap", pages, 1000, 150, chunks)
	for i := 1; i < len(chunks); i++ {
		head := chunks[i].Text[:strings.Index(chunks[i].Text, ".")+1]
		if !strings.HasPrefix(head, "Sentence number") || !strings.Contains(chunks[i-1].Text, head) {
			t.Errorf("chunk %d starts %q, want a sentence from the end of chunk %d", i, head, i-1)
		}
	}
	d := newChunkText(pages)
	spans := d.spans(1000, 150)
	for i := 1; i < len(spans); i++ {
		if shared := spans[i-1].end - spans[i].start; shared <= 0 || shared > 150 {
			t.Errorf("chunks %d and %d share %d runes, want 1-150", i-1, i, shared)
		}
	}
	// No overlap: the chunks are the text.
	var joined []string
	for _, c := range ChunkPages(pages, 1000, 0) {
		joined = append(joined, c.Text)
	}
	if got := strings.Join(joined, " "); got != strings.TrimSpace(pages[0]) {
		t.Errorf("chunks without overlap do not add up to the text")
	}
}

func TestChunkPagesEdgeCases(t *testing.T) {
	long := strings.Repeat("x", 3000)
	tests := []struct {
		name  string
		pages []string
		want  []Chunk
	}{
		{"no pages", nil, nil},
		{"empty pages", []string{"", " \n\n ", "\t"}, nil},
		{"one short line", []string{"Hello, world."}, []Chunk{{Text: "Hello, world.", Page: 1, PageEnd: 1}}},
		{"one short line on page 3", []string{"", "", "  Hello.\n"}, []Chunk{{Text: "Hello.", Page: 3, PageEnd: 3}}},
		{"one huge word", []string{long}, []Chunk{
			{Text: long[:1000], Page: 1, PageEnd: 1},
			{Text: long[1000:2000], Page: 1, PageEnd: 1, Position: 1},
			{Text: long[2000:], Page: 1, PageEnd: 1, Position: 2},
		}},
		{"huge word between words", []string{"before " + long[:1500] + " after"}, []Chunk{
			{Text: "before", Page: 1, PageEnd: 1},
			{Text: long[:1000], Page: 1, PageEnd: 1, Position: 1},
			{Text: long[1000:1500] + " after", Page: 1, PageEnd: 1, Position: 2},
		}},
		{"multi-byte runes count once", []string{strings.Repeat("ż", 1500)}, []Chunk{
			{Text: strings.Repeat("ż", 1000), Page: 1, PageEnd: 1},
			{Text: strings.Repeat("ż", 500), Page: 1, PageEnd: 1, Position: 1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ChunkPages(tc.pages, 1000, 150)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestChunkPagesManyTinyPages(t *testing.T) {
	pages := make([]string, 500)
	for i := range pages {
		pages[i] = fmt.Sprintf("Page %d has one sentence.", i+1)
	}
	chunks := ChunkPages(pages, 1000, 150)
	checkChunks(t, "tiny pages", pages, 1000, 150, chunks)
	if len(chunks) > 20 {
		t.Errorf("got %d chunks for 500 short pages, want them packed", len(chunks))
	}
	for i, c := range chunks {
		first := scanInt(t, c.Text, "Page %d")
		last := scanInt(t, c.Text[strings.LastIndex(c.Text, "Page "):], "Page %d")
		if c.Page != first || c.PageEnd != last || c.Page >= c.PageEnd {
			t.Errorf("chunk %d: got pages %d-%d, want %d-%d", i, c.Page, c.PageEnd, first, last)
		}
	}
}

func TestChunkPagesSizes(t *testing.T) {
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, "word%d ", i)
	}
	pages := []string{b.String()}
	longest := func(chunks []Chunk) int {
		n := 0
		for _, c := range chunks {
			n = max(n, utf8.RuneCountInString(c.Text))
		}
		return n
	}
	for _, tc := range []struct{ size, overlap, min, max int }{
		{0, -1, 900, DefaultChunkSize},
		{5000, 150, 1100, MaxChunkRunes},
		{300, 1000, 250, 300},
	} {
		if n := longest(ChunkPages(pages, tc.size, tc.overlap)); n < tc.min || n > tc.max {
			t.Errorf("ChunkPages(size %d, overlap %d): longest chunk %d runes, want %d-%d", tc.size, tc.overlap, n, tc.min, tc.max)
		}
	}
}

// TestChunkSentenceEnd checks the sentence ends the chunker breaks at
// (words.EndsSentence): not the full stop of an initial or an abbreviation.
func TestChunkSentenceEnd(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"He went home.", true},
		{"Did he?", true},
		{`He said "stop."`, true},
		{"(as in many countries).", true},
		{"in 1745.", true},
		{"named William E.", false},
		{"Y.", false},
		{"the U.S.", false},
		{"e.g.", false},
		{"Dr.", false},
		{"see Fig.", false},
		{"and so on,", false},
		{"no stop", false},
	}
	for _, tc := range tests {
		if got := words.EndsSentence([]rune(tc.text)); got != tc.want {
			t.Errorf("words.EndsSentence(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func BenchmarkChunkPages(b *testing.B) {
	var docs [][]string
	pages := 0
	for _, name := range textFixtures {
		docs = append(docs, CleanPages(readPageFixture(b, name)))
		pages += len(docs[len(docs)-1])
	}
	n := 0
	for b.Loop() {
		for _, d := range docs {
			ChunkPages(d, DefaultChunkSize, DefaultChunkOverlap)
		}
		n++
	}
	b.ReportMetric(float64(pages*n)/b.Elapsed().Seconds(), "pages/s")
}

// FuzzChunkPages feeds odd text through the clean-up and the chunker:
// neither may panic, and the chunks keep their limits.
func FuzzChunkPages(f *testing.F) {
	f.Add("inter-\nnational\u00ad\n law\f- 2 -\f\f", 120, 30)
	f.Add("-\n-\n—\n\u00ad\n\n\nA\n\nB.\fa-\fb", 50, 10)
	f.Add("Dr. E. Smith (U.S.) said \"no.\" Then? ﬁne… ", 10, 5)
	f.Add(strings.Repeat("Heading\n\n", 40), 30, 29)
	f.Add("\xff\xfe broken \x00 bytes\r\n\t", 0, -1)
	f.Fuzz(func(t *testing.T, text string, size, overlap int) {
		size, overlap = size%1500, overlap%800
		raw := strings.Split(text, "\f")
		pages := CleanPages(raw)
		if len(pages) != len(raw) {
			t.Fatalf("got %d pages, want %d", len(pages), len(raw))
		}
		for _, in := range [][]string{raw, pages} {
			limit, _ := chunkParams(size, overlap)
			for i, c := range ChunkPages(in, size, overlap) {
				if c.Text == "" || utf8.RuneCountInString(c.Text) > limit || c.Position != i ||
					c.Page < 1 || c.PageEnd < c.Page || c.PageEnd > len(in) || !utf8.ValidString(c.Text) {
					t.Fatalf("bad chunk %d: %+v (size %d)", i, c, limit)
				}
			}
		}
	})
}
