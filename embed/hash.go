package embed

import (
	"context"
	"math"
	"math/bits"
	"strconv"
	"sync"

	"silo/schema"
	"silo/words"
)

// Hash is the offline default: a lexical embedder built by feature
// hashing. It matches words, not meanings — "car" and "automobile" are as far
// apart as any two unrelated words, and a question must share words (or
// their stems) with a passage to find it — but it needs no model, no network
// and no state, and the same text always gets the same vector (a change of
// the algorithm must change Model(), which makes every tenant re-embed).
//
// A text becomes a bag of features:
//
//   - words: lower-cased Unicode letters and digits, common Latin accents
//     folded ("Kraków" = "krakow"), possessive 's dropped, numbers kept whole
//     ("1,178,914", "15.5"), English stop words dropped, and a light suffix
//     stemmer so that "pipes", "piping" and "piped" meet "pipe";
//   - with 768 dimensions or more, also pairs of neighbouring content words
//     within a sentence (stop words skipped, order ignored), so that phrases
//     and names ("black death", "born in Warsaw" = "Warsaw-born") count for
//     more than their words apart, and character 4-grams of words of six
//     letters or more at a low weight, so that forms the stemmer misses
//     ("photosynthesis", "photosynthetic") still overlap a little. Below 768
//     dimensions these extra features cost about as much in hash
//     collisions as they bring.
//
// Each feature is hashed into one of dims buckets with a hash-derived sign,
// so that collisions cancel out on average instead of adding up. A feature
// counts 1+ln(tf) times its weight (sublinear term frequency). A text alone
// has no corpus statistics, so there is no true IDF: a word's weight grows
// with its length (short words are the frequent ones) and numbers count
// fully. The vector is L2-normalised, so cosine similarity is a dot product;
// a text without any feature embeds as the zero vector.
//
// AdjustDocument supplies the missing document frequencies afterwards: it
// damps the buckets that carry much of the weight in most chunks of a
// document (its topic words, which are in every chunk and so tell the chunks
// apart poorly).
type Hash struct {
	dims int
	cfg  hashConfig
}

// hashConfig holds the knobs of the hashing embedder. They are fixed for a
// given Model() name.
type hashConfig struct {
	stem           bool
	pairWeight     float32 // weight of a word pair relative to its words; 0 for none
	charGramWeight float32 // weight of all of a word's character n-grams together; 0 for none
	charGramMinLen int     // words shorter than this get no character n-grams
	charGramN      int
}

// richFeaturesDims is the size from which word pairs and character n-grams
// pay for their collisions.
const richFeaturesDims = 768

func hashConfigFor(dims int) hashConfig {
	c := hashConfig{stem: true, charGramMinLen: 6, charGramN: 4}
	if dims >= richFeaturesDims {
		c.pairWeight, c.charGramWeight = 0.45, 0.35
	}
	return c
}

// NewHash returns the offline default embedder: a deterministic
// lexical embedder that hashes words (and, from 768 dimensions, word pairs
// and character n-grams) into dims buckets (schema.VectorDims, where it ranks best, when dims ≤ 0).
// It needs no model download. Its Model() is "silo-hash-v1-<dims>". It also
// implements DocumentAdjuster.
func NewHash(dims int) *Hash {
	if dims <= 0 {
		dims = schema.VectorDims
	}
	return &Hash{dims: dims, cfg: hashConfigFor(dims)}
}

// Model names the algorithm and its size; see Embedder.
func (e *Hash) Model() string { return "silo-hash-v1-" + strconv.Itoa(e.dims) }

// Dims returns the vector size.
func (e *Hash) Dims() int { return e.dims }

// Embed embeds each text. It only fails when ctx ends.
func (e *Hash) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	backing := make([]float32, len(texts)*e.dims)
	s := getScratch()
	defer putScratch(s)
	for i, t := range texts {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		v := backing[i*e.dims : (i+1)*e.dims : (i+1)*e.dims]
		e.embed(s, t, v)
		out[i] = v
	}
	return out, nil
}

// AdjustDocument gives the vectors of one document's chunks the inverse
// document frequency a single text cannot know: it damps the buckets that
// carry much weight across the document (its topic words, found in most
// chunks, which tell the chunks apart poorly) and normalises each vector
// again. A bucket is scaled by 1/sqrt(0.1 + e), where e is its mean squared
// value over the document's non-zero vectors times dims (1 on average).
// Queries are not adjusted, so the weighting counts once, as IDF does in
// BM25. Vectors of another length are left alone; a document of fewer than
// two non-zero vectors is left as it is.
func (e *Hash) AdjustDocument(vectors [][]float32) {
	energy := make([]float64, e.dims)
	n := 0
	for _, v := range vectors {
		if len(v) != e.dims || isZero(v) {
			continue
		}
		for b, x := range v {
			energy[b] += float64(x) * float64(x)
		}
		n++
	}
	if n < 2 {
		return
	}
	weight := make([]float32, e.dims)
	for b, sum := range energy {
		weight[b] = float32(1 / math.Sqrt(0.1+sum/float64(n)*float64(e.dims)))
	}
	for _, v := range vectors {
		if len(v) != e.dims {
			continue
		}
		for b := range v {
			v[b] *= weight[b]
		}
		normalize(v)
	}
}

func isZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// normalize scales v to unit length; a zero vector stays zero.
func normalize(v []float32) {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(sum))
	for i := range v {
		v[i] *= inv
	}
}

// featureSlot counts one distinct feature of the text being embedded.
type featureSlot struct {
	h uint64  // the feature's hash
	w float32 // its weight (of its first occurrence)
	n uint32  // occurrences; 0 for an empty slot
}

// hashScratch is the reusable working memory of one embedding, so that the
// per-token work does not allocate: an open-addressing table of the text's
// features and the list of its used slots, in order of first occurrence.
type hashScratch struct {
	words    words.Scanner
	slots    []featureSlot // length a power of two
	used     []int32
	prev     uint64 // hash of the previous content word of this sentence
	havePrev bool
}

// maxPooledSlots bounds the feature table kept for reuse (1.5 MB).
const maxPooledSlots = 1 << 16

var scratchPool = sync.Pool{New: func() any {
	return &hashScratch{slots: make([]featureSlot, 1024), used: make([]int32, 0, 512)}
}}

// getScratch takes a feature table from the pool; putScratch gives it back
// unless a huge text grew it past maxPooledSlots.
func getScratch() *hashScratch { return scratchPool.Get().(*hashScratch) }

func putScratch(s *hashScratch) {
	if len(s.slots) <= maxPooledSlots {
		scratchPool.Put(s)
	}
}

// add counts one occurrence of feature h with weight w.
func (s *hashScratch) add(h uint64, w float32) {
	if 2*(len(s.used)+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &s.slots[i]
		if sl.n == 0 {
			*sl = featureSlot{h: h, w: w, n: 1}
			s.used = append(s.used, int32(i))
			return
		}
		if sl.h == h {
			sl.n++
			return
		}
	}
}

func (s *hashScratch) grow() {
	old := s.slots
	s.slots = make([]featureSlot, 2*len(old))
	mask := uint64(len(s.slots) - 1)
	for k, i := range s.used {
		sl := old[i]
		j := sl.h & mask
		for s.slots[j].n != 0 {
			j = (j + 1) & mask
		}
		s.slots[j] = sl
		s.used[k] = int32(j)
	}
}

// Feature namespaces, so that a word, a bigram and a character n-gram with
// the same bytes land in unrelated buckets.
const (
	seedWord = 0x9e3779b97f4a7c15
	seedPair = 0xc2b2ae3d27d4eb4f
	seedGram = 0x165667b19e3779f9
)

// embed writes the embedding of text into v (len(v) == e.dims, zeroed).
func (e *Hash) embed(s *hashScratch, text string, v []float32) {
	e.count(s, text)
	e.project(s, v)
}

// Vector returns the embedding of one text, as Embed makes it.
func (e *Hash) Vector(text string) []float32 {
	v := make([]float32, e.dims)
	s := getScratch()
	e.embed(s, text, v)
	putScratch(s)
	return v
}

// Sparse is an embedding of a Hash's kept as its non-zero dimensions, for
// texts compared with many queries (a search's candidate sentences).
type Sparse struct {
	dims []uint32
	vals []float32
}

// SparseEmbed returns the embeddings of texts as Embed makes them, but
// sparse: cheap enough to embed every sentence of a search's candidates.
func (e *Hash) SparseEmbed(texts []string) []Sparse {
	s := getScratch()
	defer putScratch(s)
	v := make([]float32, e.dims) // zero between texts: only touched buckets are written
	seen := make([]bool, e.dims)
	out := make([]Sparse, len(texts))
	for i, t := range texts {
		e.count(s, t)
		touched := make([]uint32, 0, len(s.used))
		for _, j := range s.used {
			b, val := e.bucket(&s.slots[j])
			if !seen[b] {
				seen[b] = true
				touched = append(touched, uint32(b))
			}
			v[b] += val
			s.slots[j] = featureSlot{}
		}
		s.used = s.used[:0]
		var norm float64
		for _, b := range touched {
			norm += float64(v[b]) * float64(v[b])
		}
		sv := Sparse{dims: touched, vals: make([]float32, len(touched))}
		for k, b := range touched {
			if norm > 0 {
				sv.vals[k] = float32(float64(v[b]) / math.Sqrt(norm))
			}
			v[b], seen[b] = 0, false
		}
		out[i] = sv
	}
	return out
}

// Cosine is the cosine similarity of v and q, a dense embedding of the
// same Hash's whose norm is qNorm.
func (v Sparse) Cosine(q []float32, qNorm float64) float64 {
	if qNorm == 0 {
		return 0
	}
	var dot float64
	for k, b := range v.dims {
		dot += float64(q[b]) * float64(v.vals[k])
	}
	return dot / qNorm
}

// count adds the features of text to s.
func (e *Hash) count(s *hashScratch, text string) {
	s.havePrev = false
	s.words.Reset(text, words.Folded)
	for s.words.Next() {
		if s.words.NewSentence() {
			s.havePrev = false
		}
		e.word(s, s.words.Word(), s.words.Numeric())
	}
	s.words.Reset("", words.Folded) // a pooled scratch keeps no text alive
}

// word adds the features of one token.
func (e *Hash) word(s *hashScratch, tok []byte, numeric bool) {
	if len(tok) < 2 && !numeric {
		return
	}
	if words.IsStopWord(tok) {
		return
	}
	w := float32(1)
	if !numeric {
		if e.cfg.stem {
			tok = words.Stem(tok)
		}
		w = lengthWeight(len(tok))
	}
	h := words.Hash(tok)
	s.add(mix(h^seedWord), w)
	if s.havePrev && e.cfg.pairWeight > 0 {
		a, b := min(s.prev, h), max(s.prev, h) // unordered
		s.add(mix(a*31^b^seedPair), e.cfg.pairWeight*w)
	}
	s.prev, s.havePrev = h, true
	n := e.cfg.charGramN
	if numeric || e.cfg.charGramWeight <= 0 || len(tok) < e.cfg.charGramMinLen || len(tok) < n {
		return
	}
	grams := len(tok) - n + 1
	gw := e.cfg.charGramWeight * w / float32(math.Sqrt(float64(grams)))
	for j := 0; j < grams; j++ {
		s.add(mix(words.Hash(tok[j:j+n])^seedGram), gw)
	}
}

// project turns the counted features into a signed, hashed, sublinear-tf,
// L2-normalised vector, and empties the table.
func (e *Hash) project(s *hashScratch, v []float32) {
	for _, i := range s.used {
		sl := &s.slots[i]
		b, val := e.bucket(sl)
		v[b] += val
		*sl = featureSlot{}
	}
	s.used = s.used[:0]
	normalize(v)
}

// bucket returns the dimension a counted feature goes to and its signed,
// sublinear value there.
func (e *Hash) bucket(sl *featureSlot) (uint64, float32) {
	val := sl.w
	if sl.n > 1 {
		val *= 1 + float32(math.Log(float64(sl.n)))
	}
	b, _ := bits.Mul64(sl.h, uint64(e.dims)) // the high bits pick the bucket
	if sl.h&1 == 1 {                         // the low bit the sign
		val = -val
	}
	return b, val
}

// lengthWeight stands in for inverse document frequency: in English the
// frequent words are the short ones.
func lengthWeight(n int) float32 {
	switch {
	case n <= 3:
		return 0.7
	case n == 4:
		return 0.85
	default:
		return 1
	}
}

// mix is the splitmix64 finaliser: it spreads FNV's weak low bits, which
// pick the sign and (through the high bits) the bucket.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Size is about how many bytes v holds.
func (v Sparse) Size() int { return 8*len(v.dims) + 48 }
