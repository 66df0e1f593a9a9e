package wordvec

import (
	"encoding/binary"
	"io"
	"math"
	"strings"
	"testing"
)

// The built-in table knows common words and puts words of like meaning
// nearer each other than unrelated ones.
func TestDefault(t *testing.T) {
	tab := Default()
	if tab.Dims() != 100 || len(tab.ids) != 50000 {
		t.Fatalf("got %d words of %d dimensions, want 50000 of 100", len(tab.ids), tab.Dims())
	}
	id := func(w string) int32 {
		t.Helper()
		i := tab.ID(w)
		if i < 0 {
			t.Fatalf("the table lacks %q", w)
		}
		return i
	}
	for _, c := range []struct{ word, like, unlike string }{
		{"physician", "doctor", "banana"},
		{"killed", "died", "painted"},
		{"car", "vehicle", "poem"},
		{"legislation", "law", "river"},
	} {
		like, unlike := tab.Similarity(id(c.word), id(c.like)), tab.Similarity(id(c.word), id(c.unlike))
		if like < 0.5 || like <= unlike+0.2 {
			t.Errorf("%s: %.2f to %s, %.2f to %s; want the first at least 0.5 and well above", c.word, like, c.like, unlike, c.unlike)
		}
	}
	if s := tab.Similarity(id("law"), id("law")); s < 0.999 || s > 1.001 {
		t.Errorf("a word's similarity to itself is %.4f, want 1", s)
	}
	for _, w := range []string{"Law", "1973", "kraków", "", "no-such-wordzz"} {
		if tab.ID(w) != -1 {
			t.Errorf("ID(%q) = %d, want -1 (lower-case ASCII words only, and the source has no numbers)", w, tab.ID(w))
		}
	}
}

// AddTo sums unit vectors: the sum of a word's vector with weight 2 points
// the same way as the word.
func TestAddTo(t *testing.T) {
	tab := Default()
	law := tab.ID("law")
	sum := make([]float32, tab.Dims())
	tab.AddTo(sum, law, 2)
	var n float64
	var d float64
	v := tab.vector(law)
	for i, x := range sum {
		n += float64(x * x)
		d += float64(x) * float64(int8(v[i]))
	}
	if n < 3.99 || n > 4.01 {
		t.Errorf("|2 × unit vector|² = %.3f, want 4", n)
	}
	if cos := d / (2 * float64(tab.norms[law])); cos < 0.999 {
		t.Errorf("the sum points away from the word: cosine %.4f", cos)
	}
}

// A file that is not a table, or is cut short, is an error, not a panic.
func TestLoadErrors(t *testing.T) {
	header := func(n, dims uint32) string {
		var b [8]byte
		binary.LittleEndian.PutUint32(b[:4], n)
		binary.LittleEndian.PutUint32(b[4:], dims)
		return magic + string(b[:])
	}
	for name, c := range map[string]struct{ file, want string }{
		"not a table":      {"PK\x03\x04 something else", "not a word-vector file"},
		"no header":        {magic + "\x01", "not a word-vector file"},
		"words cut":        {header(2, 2) + "law\nactsacts", "ends in word 2 of 2"},
		"header too big":   {header(1<<30, 100) + "law\n", "cannot hold 1073741824 words of 100 dimensions"},
		"vectors cut":      {header(2, 2) + "law\nact\n\x01\x02\x03", "3 bytes of vectors, want 2 × 2"},
		"vectors too long": {header(1, 2) + "law\n\x01\x02\x03", "3 bytes of vectors, want 1 × 2"},
	} {
		if _, err := Load(c.file); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	tab, err := Load(header(2, 2) + "law\nact\n\x7f\x00\x00\x7f")
	if err != nil {
		t.Fatal(err)
	}
	if tab.ID("act") != 1 || tab.Similarity(0, 1) != 0 || tab.Similarity(1, 1) != 1 {
		t.Errorf("a two-word table: act is %d, law·act %.2f, act·act %.2f; want 1, 0, 1", tab.ID("act"), tab.Similarity(0, 1), tab.Similarity(1, 1))
	}
}

// Write refuses what Load could not read back, and what it writes, Load
// reads.
func TestWrite(t *testing.T) {
	for name, c := range map[string]struct {
		words   []string
		vectors [][]float64
		want    string
	}{
		"nothing":        {nil, nil, "0 words and 0 vectors"},
		"fewer vectors":  {[]string{"a", "b"}, [][]float64{{1}}, "2 words and 1 vectors"},
		"empty word":     {[]string{""}, [][]float64{{1}}, "may not be empty"},
		"line break":     {[]string{"a\nb"}, [][]float64{{1}}, "may not be empty or hold a line break"},
		"ragged vectors": {[]string{"a", "b"}, [][]float64{{1, 2}, {1}}, `"b" has 1 dimensions, want 2`},
		"no dimensions":  {[]string{"a"}, [][]float64{{}}, "1 words and 1 vectors"},
		"not a number":   {[]string{"a", "b"}, [][]float64{{1, 2}, {math.NaN(), 1}}, `"b" has a component that is not a number`},
		"infinite":       {[]string{"a"}, [][]float64{{math.Inf(1), 1}}, `"a" has a component that is not a number`},
	} {
		if err := Write(io.Discard, c.words, c.vectors); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	var b strings.Builder
	if err := Write(&b, []string{"law", "act", "none"}, [][]float64{{3, 4}, {-0.3, 0.4}, {0, 0}}); err != nil {
		t.Fatal(err)
	}
	tab, err := Load(b.String())
	if err != nil {
		t.Fatal(err)
	}
	if s := tab.Similarity(tab.ID("law"), tab.ID("act")); s < 0.27 || s > 0.29 {
		t.Errorf("law·act = %.3f, want 0.28", s)
	}
	if s := tab.Similarity(tab.ID("law"), tab.ID("none")); s != 0 {
		t.Errorf("a zero vector's similarity: %.3f, want 0", s)
	}
}
