package search

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"silo/store"
)

func TestTermReader(t *testing.T) {
	tr := newTermReader()
	terms, vecs := tr.read("The Legislative COUNCIL's legislation, Kraków's nations and 1,178 pipes", nil, nil)
	if got, want := strings.Join(terms, " "), "legisl council legisl kraków nation 1 178 pip"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if len(vecs) != len(terms) {
		t.Fatalf("%d word vectors for %d terms", len(vecs), len(terms))
	}
	// Each term's word has its word vector, where the table has the word
	// (it has no numbers, and only ASCII words).
	wantVecs := []string{"legislative", "council", "legislation", "", "nations", "", "", "pipes"}
	for i, w := range wantVecs {
		want := int32(-1)
		if w != "" {
			want = wordVectors().ID(w)
		}
		if i >= len(vecs) || vecs[i] != want || (w != "" && want < 0) {
			t.Errorf("word vector %d: got %v, want %q's (%d)", i, vecs, w, want)
		}
	}
	// The same words read again give the same terms.
	if again, _ := tr.read("legislation nations", nil, nil); strings.Join(again, " ") != "legisl nation" {
		t.Errorf("second read: got %q, want %q", again, "legisl nation")
	}
}

func TestClosestTerm(t *testing.T) {
	df := map[string]int{"mathemat": 3, "insight": 2, "develop": 4, "strong": 2, "stone": 5, "act": 9}
	for _, tc := range []struct{ in, want string }{
		{"mathmat", "mathemat"}, // one letter missing
		{"insit", "insit"},      // two edits in a short word: left alone
		{"develp", "develop"},
		{"stong", "stone"}, // one edit from both: the more frequent
		{"ac", "ac"},       // too short to guess
		{"develop", "develop"},
	} {
		if got := closestTerm(tc.in, df); got != tc.want {
			t.Errorf("closestTerm(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
	if d := editDistance("abcd", "bacd", 2); d != 1 {
		t.Errorf("a transposition: got distance %d, want 1", d)
	}
	if d := editDistance("kitten", "sitting", 2); d != 3 {
		t.Errorf("past the limit: got %d, want 3 (limit + 1)", d)
	}
}

// TestRerank checks that the passage whose one sentence holds the
// question's words ranks first, ahead of one that has them scattered over
// several sentences, and that a question asking for a number prefers a
// sentence with one.
func TestRerank(t *testing.T) {
	cand := func(id int64, text string) candidate {
		return candidate{Hit: store.Hit{ChunkID: id, Text: text, Score: 0.5, Position: int(id)}}
	}
	filler := "The harbour was quiet that year. Ships came and went with the tides. "
	scattered := cand(1, "The lighthouse stood on the island. "+filler+"A keeper lived there. "+filler+"His cat was black.")
	together := cand(2, filler+"The lighthouse keeper's cat lived on the island. "+filler)
	other := cand(3, filler+filler)
	got := rerank("Where did the lighthouse keeper's cat live?", []candidate{scattered, other}, []candidate{together, scattered}, 3)
	if len(got) != 3 || got[0].ChunkID != 2 {
		t.Fatalf("got %v first, want chunk 2 (one sentence has every word)", got)
	}
	if s := got[0].Text[got[0].best:]; !strings.HasPrefix(s, "The lighthouse keeper's cat") {
		t.Errorf("best sentence: got %.40q, want the one with the question's words", s)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Score > got[i-1].Score {
			t.Errorf("not best first: %v then %v", got[i-1].Score, got[i].Score)
		}
	}

	words := cand(4, filler+"The lighthouse was built by the keeper on the island long ago. "+filler)
	number := cand(5, filler+"The lighthouse was built on the island in 1893 by the keeper. "+filler)
	got = rerank("When was the lighthouse on the island built?", []candidate{words, number}, nil, 2)
	if got[0].ChunkID != 5 {
		t.Errorf("a question for a date: got chunk %d first, want 5 (its sentence has a year)", got[0].ChunkID)
	}
	// The same words but one, which one passage has in other words: the
	// word vectors tell "doctor" is a physician and "gardener" is not.
	gardener := cand(6, filler+"A gardener treated the king in the spring of that year. "+filler)
	doctor := cand(7, filler+"A doctor treated the king in the spring of that year. "+filler)
	got = rerank("Which physician treated the king?", []candidate{gardener, doctor}, nil, 2)
	if got[0].ChunkID != 7 {
		t.Errorf("a word in other words: got chunk %d first, want 7 (a doctor is a physician)", got[0].ChunkID)
	}
	if got := rerank("anything", nil, nil, 5); len(got) != 0 {
		t.Errorf("no candidates: got %d results", len(got))
	}
}

// A question word a sentence lacks counts for part of its weight when the
// sentence has a word of like meaning, and the sentence's meaning as a
// whole is nearer the question's.
func TestWordsOfLikeMeaning(t *testing.T) {
	tr := newTermReader()
	cands := []candidate{
		{Hit: store.Hit{Text: "A doctor saw the king."}},
		{Hit: store.Hit{Text: "A gardener saw the king."}},
		{Hit: store.Hit{Text: "A physician saw the king."}},
	}
	texts, df := readPassages(tr, cands)
	q := readQuestion(tr, "Which physician saw the king?", df, len(cands))
	k := slices.Index(q.terms, "physic")
	if k < 0 {
		t.Fatalf("question terms %v lack physician", q.terms)
	}
	sentence := func(i int) []int32 { return texts[i].words[texts[i].bounds[0]:texts[i].bounds[1]] }
	doctor, gardener := q.likeScore([]int{k}, sentence(0)), q.likeScore([]int{k}, sentence(1))
	if full := q.idf["physic"]; doctor <= 0 || doctor >= likeWord*full || gardener != 0 {
		t.Errorf("physician in a sentence with doctor counts %.3f, with gardener %.3f; want between 0 and %.3f, and 0", doctor, gardener, likeWord*full)
	}
	// A term the sentence has earns its weight once, nothing more for
	// words like it: the like-word credit is for lacking terms only.
	scores := sentenceScores(&q, cands, texts)
	if want := q.idf["physic"] + q.idf["saw"] + q.idf["king"]; math.Abs(scores[2]-want) > 1e-9 {
		t.Errorf("the sentence with every term scores %.4f, want the sum of their weights %.4f", scores[2], want)
	}
	m := meaningScores(&q, texts)
	if !(m[2] > m[0] && m[0] > m[1]) {
		t.Errorf("meaning: physician %.3f, doctor %.3f, gardener %.3f; want them in that order", m[2], m[0], m[1])
	}
}

// Within a passage, the best sentence is the one with a word like the
// question's, not one that merely shares the passage.
func TestBestSentenceByLikeWord(t *testing.T) {
	text := "A gardener saw the king at noon. The weather was fine. A doctor saw the king at dawn. The town slept."
	cands := []candidate{{Hit: store.Hit{ChunkID: 1, Text: text}}, {Hit: store.Hit{ChunkID: 2, Text: "The harbour was quiet."}}}
	markBest("Which physician saw the king?", cands)
	if got := cands[0].Text[cands[0].best:]; !strings.HasPrefix(got, "A doctor saw") {
		t.Errorf("best sentence: got %.30q, want the doctor's", got)
	}
}

// The readings of chunk texts are cached and shared by every search: a
// search must not change them, so the same search twice, and many at once,
// rank alike.
func TestRerankLeavesReadingsAlone(t *testing.T) {
	filler := "The harbour was quiet that year. Ships came and went with the tides. "
	var vs []candidate
	for i := range 8 {
		vs = append(vs, candidate{Hit: store.Hit{ChunkID: int64(i + 1), Text: fmt.Sprintf("%sA doctor number %d treated the king and the queen. %s", filler, i, filler), Score: 0.5}})
	}
	vs = append(vs, candidate{Hit: store.Hit{ChunkID: 9, Text: filler + "A gardener treated the king's roses. " + filler, Score: 0.5}})
	const query = "Which physician treated the queen?"
	first := rerank(query, slices.Clone(vs), nil, len(vs))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got := rerank(query, slices.Clone(vs), nil, len(vs))
			for i := range got {
				if got[i].ChunkID != first[i].ChunkID || got[i].Score != first[i].Score {
					t.Errorf("rank %d: got chunk %d (%.6f), want %d (%.6f)", i, got[i].ChunkID, got[i].Score, first[i].ChunkID, first[i].Score)
					return
				}
			}
		})
	}
	wg.Wait()
	// Only stop words: no evidence, but still an answer for each candidate.
	if got := rerank("what is it?", slices.Clone(vs), nil, 3); len(got) != 3 {
		t.Errorf("a question of stop words: got %d results, want 3", len(got))
	}
}

func TestAsksForNumber(t *testing.T) {
	for q, want := range map[string]bool{
		"When did the crisis begin?":          true,
		"How many people died in Paris?":      true,
		"In what year was the college built?": true,
		"Who founded the college?":            false,
		"What is the capital of Victoria?":    false,
	} {
		if got := asksForNumber(q); got != want {
			t.Errorf("asksForNumber(%q): got %v, want %v", q, got, want)
		}
	}
}

func TestSimilaritiesMatchEmbed(t *testing.T) {
	e := sentenceMatcher
	texts := []string{"The keeper's cat was born in 1893.", "Photosynthesis in plants.", "", "the of and"}
	vs, err := e.Embed(context.Background(), append([]string{"When was the keeper's cat born?"}, texts...))
	if err != nil {
		t.Fatal(err)
	}
	sparse := e.SparseEmbed(texts)
	got := make([]float64, len(texts))
	for i := range texts {
		got[i] = sparse[i].Cosine(vs[0], 1)
		var want float64
		for j := range vs[0] {
			want += float64(vs[0][j]) * float64(vs[i+1][j])
		}
		if math.Abs(got[i]-want) > 1e-5 {
			t.Errorf("%q: got %v, want %v (the cosine of Embed's vectors)", texts[i], got[i], want)
		}
	}
	if got[0] < 0.3 || got[1] > 0.1 {
		t.Errorf("got similarities %v, want the sentence about the cat close and the other far", got)
	}
}

func TestReadingCache(t *testing.T) {
	text := "The keeper's cat was born in 1893. It lived on Skerryvore."
	p := readChunk(newTermReader(), text)
	if got := readChunk(newTermReader(), text); got != p {
		t.Error("a text read again was not taken from the cache")
	}
	if len(p.sentences) != 2 || len(p.vectors) != 2 || p.bounds[2] != len(p.terms) {
		t.Errorf("got %d sentences, %d vectors, bounds %v for %d terms; want 2, 2 and the last bound at the end", len(p.sentences), len(p.vectors), p.bounds, len(p.terms))
	}

	c := &readingCache{limit: 4000, m: map[string]*passageText{}}
	for i := range 50 {
		s := fmt.Sprintf("Sentence number %d about the lighthouse keeper and the storm.", i)
		c.put(s, readChunk(newTermReader(), s))
		if c.size > c.limit {
			t.Fatalf("after %d texts the cache holds %d bytes, over its limit of %d", i+1, c.size, c.limit)
		}
	}
	if len(c.m) == 0 || len(c.m) == 50 {
		t.Errorf("the cache holds %d of 50 texts, want some but not all", len(c.m))
	}
}
