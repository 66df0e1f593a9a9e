package search

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode"

	"silo/embed"
	"silo/schema"
	"silo/store"
	"silo/words"
	"silo/wordvec"
)

// A hybrid search re-ranks the union of its vector and full-text candidates
// by evidence it computes from their texts, the same way on every engine.
// A question is usually answered by one sentence that shares its rarer
// words, often in the same order, while a passage can rank high on words
// scattered over many sentences; so beside the passage's own BM25 and
// vector scores, the evidence is its best sentence: the weight of the
// question's words in it (and, for less, in the sentence after it), the
// pairs of neighbouring question words it keeps together, and its
// similarity to the question as the offline embedder sees it (word pairs
// and character n-grams, which also match misspelt and inflected words)
// and as word vectors see it (words of like meaning, see package wordvec).
// Word weights are BM25 inverse frequencies among the candidates. Each
// feature is divided by its best value among the candidates, then weighted:
const (
	weightBM25     = 1.0 // the passage's BM25 over the candidates
	weightSentence = 1.0 // its best sentence's share of the question's words
	weightVector   = 0.5 // the cosine of the tenant's embeddings
	weightPairs    = 0.5 // question word pairs kept next to each other
	weightSentVec  = 1.0 // the best sentence's offline-embedding similarity
	weightMeaning  = 1.0 // the best sentence's word-vector similarity

	bm25K1 = 1.2
	bm25B  = 0.75

	// nextSentence is how much a question word counts when it is only in
	// the sentence after the best one (a clause often runs on).
	nextSentence = 0.5
	// numberBoost raises a sentence with a number that is not in the
	// question, when the question asks for one (when, how many…).
	numberBoost = 0.5
	// A question word that is in neither sentence counts for up to
	// likeWord of its weight when the sentence has a word whose vector is
	// more similar to its own than likeFloor: scaled from 0 at likeFloor
	// to likeWord at the same direction. The SQuAD questions rephrase
	// their articles ("killed", "died").
	likeWord  = 0.5
	likeFloor = 0.4
)

// wordVectors are the word vectors the re-ranking compares words of like
// meaning by.
var wordVectors = wordvec.Default

// sentenceMatcher embeds sentences for the sentence similarity: a lexical
// matcher of its own, whatever embedder the tenant's vectors come from.
var sentenceMatcher = embed.NewHash(schema.VectorDims)

// candidate is a chunk a search found, with its best sentence and its
// support.
type candidate struct {
	store.Hit
	best    int     // byte offset in Text of its best sentence
	support float64 // see Result.Support
}

// candidates are the hits of a search, their best sentences not yet known.
func candidates(hits []store.Hit) []candidate {
	out := make([]candidate, len(hits))
	for i, h := range hits {
		out[i] = candidate{Hit: h}
	}
	return out
}

// question is a query as the re-ranking reads it, for one search: its
// like and nearest are scratch that likeScore writes.
type question struct {
	text        string
	terms       []string // distinct content terms
	words       []int32  // the word vector (wordvec id, or -1) of each term's first word
	respelt     []bool   // whether a term is a word of the vocabulary that readQuestion respelt (see support)
	pairs       map[[2]string]bool
	idf         map[string]float64
	absentIDF   float64 // the weight of a term none of the candidates has, for likeScore
	wantsNumber bool
	meaning     []float32           // the sum of its words' unit vectors, weighted by idf (see meaningScores)
	like        map[int32][]float32 // for each word met so far, its similarity to each term
	nearest     []float32           // likeScore's scratch: a term's nearest similarity
	lacking     []int               // sentenceScore's scratch: the terms a sentence lacks
}

// passageText is a candidate's text as the re-ranking reads it.
type passageText struct {
	terms     []string // content terms in order
	words     []int32  // the word vector of each term's word (wordvec id, or -1)
	sentences []words.Span
	bounds    []int          // sentence j's terms are terms[bounds[j]:bounds[j+1]]
	vectors   []embed.Sparse // sentence j as sentenceMatcher embeds it
	meanings  [][]float32    // sentence j's words' unit vectors, summed
}

// rerank orders the union of the candidate lists by evidence and returns
// the best k, each with its best sentence marked. The lists' scores are
// ignored except vs's cosines.
func rerank(query string, vs, ts []candidate, k int) []candidate {
	pool := slices.Clone(vs)
	cosine := map[int64]float64{}
	floor := 0.0
	for i, c := range vs {
		cosine[c.ChunkID] = c.Score
		if i == 0 || c.Score < floor {
			floor = c.Score
		}
	}
	for _, c := range ts {
		if _, ok := cosine[c.ChunkID]; !ok {
			cosine[c.ChunkID] = floor // not among the nearest: at most the farthest of them
			pool = append(pool, c)
		}
	}
	if len(pool) == 0 {
		return nil
	}
	tr := newTermReader()
	texts, df := readPassages(tr, pool)
	q := readQuestion(tr, query, df, len(pool))
	supports(&q, pool, texts)
	features := [][]float64{
		bm25Scores(q, texts),
		sentenceScores(&q, pool, texts),
		make([]float64, len(pool)),
		pairScores(q, texts),
		sentenceSimilarities(query, texts),
		meaningScores(&q, texts),
	}
	for i, c := range pool {
		features[2][i] = cosine[c.ChunkID]
	}
	weights := []float64{weightBM25, weightSentence, weightVector, weightPairs, weightSentVec, weightMeaning}
	for i := range pool {
		pool[i].Score = 0
	}
	for f, scores := range features {
		top := slices.Max(scores)
		if top <= 0 {
			continue
		}
		for i, s := range scores {
			pool[i].Score += weights[f] * s / top
		}
	}
	slices.SortStableFunc(pool, func(a, b candidate) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ChunkID, b.ChunkID)
	})
	return pool[:min(k, len(pool))]
}

// markBest marks the best sentence of each candidate for the query, with
// word weights from the candidates themselves.
func markBest(query string, cands []candidate) {
	tr := newTermReader()
	texts, df := readPassages(tr, cands)
	q := readQuestion(tr, query, df, len(cands))
	sentenceScores(&q, cands, texts)
	supports(&q, cands, texts)
}

// readQuestion reads a query: its content terms (a term none of the n
// candidates has is replaced by the most common close spelling among them),
// its pairs of neighbouring terms, and BM25 weights from the document
// frequencies df among the candidates.
func readQuestion(tr *termReader, query string, df map[string]int, n int) question {
	q := question{
		text: query, pairs: map[[2]string]bool{}, idf: map[string]float64{}, wantsNumber: asksForNumber(query),
		absentIDF: bm25IDF(0, n), meaning: make([]float32, wordVectors().Dims()),
	}
	var prev string
	terms, vecs := tr.read(query, nil, nil)
	for k, t := range terms {
		spelt := t
		if df[t] == 0 {
			t = closestTerm(t, df)
		}
		if prev != "" && prev != t {
			q.pairs[[2]string{prev, t}] = true
		}
		prev = t
		if _, ok := q.idf[t]; !ok {
			q.terms = append(q.terms, t)
			q.words = append(q.words, vecs[k])
			q.respelt = append(q.respelt, t != spelt && vecs[k] >= 0)
			q.idf[t] = 0
			if d := df[t]; d > 0 {
				q.idf[t] = bm25IDF(d, n)
			}
		}
		if vecs[k] >= 0 {
			wordVectors().AddTo(q.meaning, vecs[k], float32(cmp.Or(q.idf[t], 1)))
		}
	}
	q.like = map[int32][]float32{}
	q.nearest = make([]float32, len(q.terms))
	return q
}

// bm25IDF is BM25's weight of a term in d of n passages.
func bm25IDF(d, n int) float64 {
	return math.Log(1 + (float64(n)-float64(d)+0.5)/(float64(d)+0.5))
}

// readPassages reads the candidates' texts (see readChunk) and counts in
// how many of them each term is.
func readPassages(tr *termReader, cands []candidate) ([]*passageText, map[string]int) {
	texts := make([]*passageText, len(cands))
	df := map[string]int{}
	last := map[string]int{} // the last candidate (+1) counted in df
	for i, c := range cands {
		p := readChunk(tr, c.Text)
		for _, t := range p.terms {
			if last[t] != i+1 {
				last[t] = i + 1
				df[t]++
			}
		}
		texts[i] = p
	}
	return texts, df
}

// readChunk splits a text into sentences, content terms and sentence
// embeddings, or returns what an earlier search read of the same text: the
// reading depends on the text alone, and questions about a document keep
// meeting the same chunks.
func readChunk(tr *termReader, text string) *passageText {
	if p := readings.get(text); p != nil {
		return p
	}
	p := &passageText{sentences: words.Sentences(text)}
	p.bounds = make([]int, len(p.sentences)+1)
	p.meanings = make([][]float32, len(p.sentences))
	sentences := make([]string, len(p.sentences))
	for j, s := range p.sentences {
		sentences[j] = text[s.Start:s.End]
		p.terms, p.words = tr.read(sentences[j], p.terms, p.words)
		p.bounds[j+1] = len(p.terms)
		p.meanings[j] = make([]float32, wordVectors().Dims())
		for _, w := range p.words[p.bounds[j]:] {
			if w >= 0 {
				wordVectors().AddTo(p.meanings[j], w, 1)
			}
		}
	}
	p.vectors = sentenceMatcher.SparseEmbed(sentences)
	readings.put(text, p)
	return p
}

// readingCache keeps the readings of recent chunk texts, up to limit
// bytes (about), dropping arbitrary ones when full.
type readingCache struct {
	mu    sync.Mutex
	limit int
	size  int
	m     map[string]*passageText
}

// readings is the process's cache of chunk readings: about 13 KB a chunk.
var readings = &readingCache{limit: 16 << 20, m: map[string]*passageText{}}

func (c *readingCache) get(text string) *passageText {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[text]
}

func (c *readingCache) put(text string, p *passageText) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[text]; ok {
		return
	}
	c.m[text] = p
	c.size += readingSize(text, p)
	for k, v := range c.m {
		if c.size <= c.limit {
			break
		}
		delete(c.m, k)
		c.size -= readingSize(k, v)
	}
}

// readingSize is about how many bytes a reading of text holds.
func readingSize(text string, p *passageText) int {
	n := len(text) + 20*len(p.terms) + (48+4*wordVectors().Dims())*len(p.sentences)
	for _, v := range p.vectors {
		n += v.Size()
	}
	return n
}

// sentence returns sentence j's terms and their word vectors.
func (p *passageText) sentence(j int) ([]string, []int32) {
	return p.terms[p.bounds[j]:p.bounds[j+1]], p.words[p.bounds[j]:p.bounds[j+1]]
}

// bm25Scores is each passage's Okapi BM25 for the question's terms.
func bm25Scores(q question, texts []*passageText) []float64 {
	var total int
	for _, p := range texts {
		total += len(p.terms)
	}
	avg := max(float64(total)/float64(len(texts)), 1)
	out := make([]float64, len(texts))
	for i, p := range texts {
		tf := map[string]int{}
		for _, t := range p.terms {
			if _, ok := q.idf[t]; ok {
				tf[t]++
			}
		}
		norm := 1 - bm25B + bm25B*float64(len(p.terms))/avg
		for t, n := range tf {
			f := float64(n)
			out[i] += q.idf[t] * f * (bm25K1 + 1) / (f + bm25K1*norm)
		}
	}
	return out
}

// sentenceScores is the weight of the question's terms in each passage's
// best sentence, and marks that sentence in cands.
func sentenceScores(q *question, cands []candidate, texts []*passageText) []float64 {
	out := make([]float64, len(texts))
	for i, p := range texts {
		best := -1.0
		for j, s := range p.sentences {
			terms, vecs := p.sentence(j)
			var next []string
			if j+1 < len(p.sentences) {
				next, _ = p.sentence(j + 1)
			}
			score := q.sentenceScore(cands[i].Text[s.Start:s.End], terms, next, vecs)
			if score > best {
				best = score
				cands[i].best = s.Start
			}
		}
		out[i] = max(best, 0)
	}
	return out
}

// sentenceScore is the weight of the question's terms in a sentence, its
// text, terms and their word vectors vecs: a term it has counts whole, a
// term only the sentence after it has (next) counts nextSentence, and the
// others by the words of like meaning it has (likeScore); all of it raised
// by numberBoost when the question asks for a number the sentence has.
func (q *question) sentenceScore(text string, terms, next []string, vecs []int32) float64 {
	score := 0.0
	q.lacking = q.lacking[:0]
	for k, t := range q.terms {
		switch {
		case slices.Contains(terms, t):
			score += q.idf[t]
		case slices.Contains(next, t):
			score += nextSentence * q.idf[t]
		case q.words[k] >= 0:
			q.lacking = append(q.lacking, k)
		}
	}
	score += q.likeScore(q.lacking, vecs)
	if q.wantsNumber && hasNewNumber(text, q.text) {
		score *= 1 + numberBoost
	}
	return score
}

// likeScore is what the lacking question terms (indices of terms with a
// word vector) count for in a sentence whose words have the word vectors
// vecs: each its weight (absentIDF when no candidate has it) times
// likeWord, scaled by how near the nearest of the words is.
func (q *question) likeScore(lacking []int, vecs []int32) float64 {
	return q.likeShare(lacking, vecs, func(k int) float64 { return cmp.Or(q.idf[q.terms[k]], q.absentIDF) })
}

// likeShare is what the lacking terms (indices of terms with a word
// vector) count for by the words of like meaning among vecs: each its
// weight(k) times likeWord, scaled from 0 at likeFloor to likeWord at the
// same direction by how near the nearest word is.
func (q *question) likeShare(lacking []int, vecs []int32, weight func(k int) float64) float64 {
	if len(lacking) == 0 {
		return 0
	}
	q.nearestTo(lacking, vecs)
	share := 0.0
	for _, k := range lacking {
		if near := q.nearest[k]; near > likeFloor {
			share += likeWord * weight(k) * float64(near-likeFloor) / (1 - likeFloor)
		}
	}
	return share
}

// nearestTo sets q.nearest[k], for each of the lacking terms, to the
// similarity of the nearest word among vecs (word vectors, -1 for none).
func (q *question) nearestTo(lacking []int, vecs []int32) {
	for _, k := range lacking {
		q.nearest[k] = 0
	}
	for _, w := range vecs {
		if w < 0 {
			continue
		}
		row := q.like[w]
		if row == nil {
			row = make([]float32, len(q.terms))
			for k, v := range q.words {
				if v >= 0 {
					row[k] = wordVectors().Similarity(v, w)
				}
			}
			q.like[w] = row
		}
		for _, k := range lacking {
			q.nearest[k] = max(q.nearest[k], row[k])
		}
	}
}

// Support (Result.Support) is the share of a question that a passage
// holds: each of the question's terms weighs the log of its word's rank
// in English by frequency (wordvec's order; a word outside the
// vocabulary ranks unknownRank), so that "the", "year" and "capital"
// count for less than "Mars" or "phagocytes"; a term the passage has
// counts whole, one it lacks by its nearest word of like meaning (as in
// likeScore). A term readQuestion took for a misspelling of the
// document's word although it is an English word of its own ("boiling"
// read as "oil") counts as lacking.
//
// MinSupport was chosen from the data (make eval's abstention lines): on
// the 13 squad articles, each document asked its own 2,339 questions and
// 20 of the next article's, the best passage's support is at least 0.45
// for 97.5 % of its own questions and below it for 93 % of the others'
// (0.5: 96 % and 98 %; 0.4: 98.5 % and 88 %). A threshold on the share of
// plain question words, or on the document's words rather than the
// passage's, separated them less well.
const (
	MinSupport  = 0.45
	unknownRank = 100_000
)

// supports sets each candidate's support for the question.
func supports(q *question, cands []candidate, texts []*passageText) {
	weight := make([]float64, len(q.terms))
	total := 0.0
	for k, w := range q.words {
		rank := unknownRank
		if w >= 0 {
			rank = int(w)
		}
		weight[k] = math.Log(float64(rank) + 2)
		total += weight[k]
	}
	if total == 0 {
		return
	}
	for i, p := range texts {
		q.lacking = q.lacking[:0]
		held := 0.0
		for k, t := range q.terms {
			switch {
			case !q.respelt[k] && slices.Contains(p.terms, t):
				held += weight[k]
			case q.words[k] >= 0:
				q.lacking = append(q.lacking, k)
			}
		}
		held += q.likeShare(q.lacking, p.words, func(k int) float64 { return weight[k] })
		cands[i].support = held / total
	}
}

// meaningScores is the best cosine of a passage's sentences to the
// question as word vectors see them: each the sum of its words' unit
// vectors, a question term's words weighted by its idf in both. A term no
// candidate has weighs 1 in the question, not absentIDF as in likeScore.
func meaningScores(q *question, texts []*passageText) []float64 {
	qNorm := float64(embed.Norm(q.meaning))
	out := make([]float64, len(texts))
	if qNorm == 0 {
		return out
	}
	s := make([]float32, len(q.meaning))
	for i, p := range texts {
		for j, m := range p.meanings {
			copy(s, m)
			for k := p.bounds[j]; k < p.bounds[j+1]; k++ {
				if idf := q.idf[p.terms[k]]; idf > 0 && p.words[k] >= 0 {
					wordVectors().AddTo(s, p.words[k], float32(idf-1))
				}
			}
			if n := float64(embed.Norm(s)); n > 0 {
				out[i] = max(out[i], float64(dot32(q.meaning, s))/(qNorm*n))
			}
		}
	}
	return out
}

func dot32(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// pairScores is the weight of the question's pairs of neighbouring terms
// that each passage has next to each other, in the same order.
func pairScores(q question, texts []*passageText) []float64 {
	out := make([]float64, len(texts))
	for i, p := range texts {
		seen := map[[2]string]bool{}
		for j := 0; j+1 < len(p.terms); j++ {
			pair := [2]string{p.terms[j], p.terms[j+1]}
			if q.pairs[pair] && !seen[pair] {
				seen[pair] = true
				out[i] += q.idf[pair[0]] + q.idf[pair[1]]
			}
		}
	}
	return out
}

// sentenceSimilarities is the best similarity of a passage's sentences to
// the query, as sentenceMatcher embeds them.
func sentenceSimilarities(query string, texts []*passageText) []float64 {
	q := sentenceMatcher.Vector(query)
	qNorm := float64(embed.Norm(q))
	out := make([]float64, len(texts))
	for i, p := range texts {
		for _, v := range p.vectors {
			out[i] = max(out[i], v.Cosine(q, qNorm))
		}
	}
	return out
}

// termReader reads the content terms of texts: the words that carry their
// topic (words.Plain), without stop words, and stemmed harder than the
// embedder does (a derivational suffix goes too: "legislative" and
// "legislation" meet). It remembers each word's term: a search reads the
// same words many times.
type termReader struct {
	terms map[string]termWord
	words words.Scanner
}

// termWord is what a termReader knows of a word: its term ("" for a stop
// word) and its word vector (a wordvec id, or -1).
type termWord struct {
	term string
	vec  int32
}

func newTermReader() *termReader { return &termReader{terms: map[string]termWord{}} }

// read appends the content terms of text to terms, and the word vector of
// each term's word to vecs.
func (tr *termReader) read(text string, terms []string, vecs []int32) ([]string, []int32) {
	tr.words.Reset(text, words.Plain)
	for tr.words.Next() {
		word := tr.words.Word()
		tw, ok := tr.terms[string(word)]
		if !ok {
			w := string(word)
			tw = termWord{vec: -1}
			if !words.IsStopWord(word) {
				tw = termWord{term: string(words.StripDerivation(words.Stem(word))), vec: wordVectors().ID(w)}
			}
			tr.terms[w] = tw
		}
		if tw.term != "" {
			terms = append(terms, tw.term)
			vecs = append(vecs, tw.vec)
		}
	}
	return terms, vecs
}

// closestTerm returns the most frequent term of df one edit from t (two
// from a term of eight letters or more), or t when there is none or t is
// shorter than four letters: a misspelt question word finds the document's
// spelling.
func closestTerm(t string, df map[string]int) string {
	if len(t) < 4 {
		return t
	}
	limit := 1
	if len(t) >= 8 {
		limit = 2
	}
	best, n := t, 0
	for v, d := range df {
		if d > n || (d == n && v < best && n > 0) {
			if editDistance(t, v, limit) <= limit {
				best, n = v, d
			}
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein (optimal string alignment)
// distance of a and b in bytes, or limit+1 when it is larger than limit.
func editDistance(a, b string, limit int) int {
	if abs(len(a)-len(b)) > limit {
		return limit + 1
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], limit+1)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// numberQuestions are the phrasings of a question that asks for a number
// or a date.
var numberQuestions = []string{
	"how many", "how much", "how long", "how old", "how far", "how large", "how big", "how tall",
	"how high", "what year", "which year", "what date", "what century", "what percentage",
}

// asksForNumber reports whether a question asks for a number or a date.
func asksForNumber(query string) bool {
	l := strings.ToLower(query)
	if strings.HasPrefix(l, "when") || strings.Contains(l, " when ") {
		return true
	}
	for _, p := range numberQuestions {
		if strings.Contains(l, p) {
			return true
		}
	}
	return false
}

// hasNewNumber reports whether sentence has a number that query lacks.
func hasNewNumber(sentence, query string) bool {
	for _, n := range strings.FieldsFunc(sentence, func(r rune) bool { return !unicode.IsDigit(r) }) {
		if !strings.Contains(query, n) {
			return true
		}
	}
	return false
}
