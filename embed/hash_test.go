package embed_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"silo/embed"
	"silo/schema"
)

func embedOne(t testing.TB, e embed.Embedder, text string) []float32 {
	t.Helper()
	v, err := e.Embed(context.Background(), []string{text})
	if err != nil {
		t.Fatalf("Embed(%q): %v", text, err)
	}
	return v[0]
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func norm(v []float32) float64 { return math.Sqrt(dot(v, v)) }

func TestHashEmbedModelAndDims(t *testing.T) {
	for _, tc := range []struct {
		dims, want int
		model      string
	}{{384, 384, "silo-hash-v1-384"}, {0, schema.VectorDims, "silo-hash-v1-2000"}, {2000, 2000, "silo-hash-v1-2000"}} {
		e := embed.NewHash(tc.dims)
		if e.Dims() != tc.want || e.Model() != tc.model {
			t.Errorf("NewHash(%d): got %q, %d; want %q, %d", tc.dims, e.Model(), e.Dims(), tc.model, tc.want)
		}
		if got := len(embedOne(t, e, "a few words")); got != tc.want {
			t.Errorf("dims %d: got a vector of %d, want %d", tc.dims, got, tc.want)
		}
		if _, ok := any(e).(embed.DocumentAdjuster); !ok {
			t.Errorf("the hash embedder is not a DocumentAdjuster")
		}
	}
}

func TestHashEmbedDeterministic(t *testing.T) {
	for _, dims := range []int{384, 2000} {
		e := embed.NewHash(dims)
		texts := []string{embed.SampleText, "Kraków's 1,178,914 inhabitants", "", "pipes"}
		batch, err := e.Embed(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		for i, text := range texts {
			again := embedOne(t, embed.NewHash(dims), text)
			if !slices.Equal(batch[i], again) {
				t.Errorf("dims %d: %q embeds differently alone and in a batch", dims, text)
			}
		}
	}
}

func TestHashEmbedUnitNormAndEmpty(t *testing.T) {
	e := embed.NewHash(384)
	texts := []string{embed.SampleText, "x", "pipe", "", "   \n\t", "the of and to was", "!!! --- ???", "日本語のテキスト", strings.Repeat("word ", 5000)}
	vecs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vecs {
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("%q: got %v in the vector", texts[i], x)
			}
		}
		n := norm(v)
		switch texts[i] {
		case "", "   \n\t", "the of and to was", "!!! --- ???", "x":
			if n != 0 {
				t.Errorf("%q: got norm %v, want the zero vector", texts[i], n)
			}
		default:
			if math.Abs(n-1) > 1e-5 {
				t.Errorf("%q: got norm %v, want 1", texts[i], n)
			}
		}
	}
}

func TestHashEmbedSimilarity(t *testing.T) {
	for _, dims := range []int{384, 2000} {
		e := embed.NewHash(dims)
		doc := embedOne(t, e, "The old pipes in the basement were leaking water after the plumber left.")
		near := embedOne(t, e, "Which pipe was leaking?")
		far := embedOne(t, e, "The orchestra performed a symphony by Beethoven in Vienna.")
		if dn, df := dot(doc, near), dot(doc, far); dn <= df+0.2 {
			t.Errorf("dims %d: got similarity %.3f to a related question and %.3f to an unrelated text, want the first clearly higher", dims, dn, df)
		}
	}
}

func TestHashEmbedSameWord(t *testing.T) {
	e := embed.NewHash(384)
	same := [][2]string{
		{"pipes", "pipe"}, {"piping", "pipe"}, {"piped", "pipe"}, {"Pipe", "PIPE"},
		{"studies", "study"}, {"studied", "study"}, {"boxes", "box"}, {"churches", "church"},
		{"stopped", "stop"}, {"stopping", "stop"}, {"making", "make"}, {"uses", "use"},
		{"Kraków", "krakow"}, {"Łódź", "lodz"}, {"Warsaw's", "Warsaw"}, {"Warsaw’s", "warsaw"},
		{"1,178,914", "1178914"}, {"Frédéric", "Frederic"}, {"co\u00adoperation", "cooperation"},
	}
	for _, p := range same {
		if got := dot(embedOne(t, e, p[0]), embedOne(t, e, p[1])); math.Abs(got-1) > 1e-5 {
			t.Errorf("%q vs %q: got cosine %.3f, want 1", p[0], p[1], got)
		}
	}
	different := [][2]string{{"pipe", "pope"}, {"class", "clas"}, {"fall", "fal"}, {"15.5", "155"}, {"1745", "1754"}}
	for _, p := range different {
		if got := dot(embedOne(t, e, p[0]), embedOne(t, e, p[1])); got > 0.5 {
			t.Errorf("%q vs %q: got cosine %.3f, want unrelated", p[0], p[1], got)
		}
	}
}

func TestHashEmbedPairsAndCharGrams(t *testing.T) {
	e := embed.NewHash(2000)
	// Same words, one in the other order: the pair feature makes the
	// phrase match better than the words apart.
	q := embedOne(t, e, "black death")
	phrase := embedOne(t, e, "the black death spread; soldiers were tired")
	apart := embedOne(t, e, "the death spread; black soldiers were tired")
	if dp, da := dot(q, phrase), dot(q, apart); dp <= da {
		t.Errorf("got similarity %.3f with the phrase and %.3f with the words apart, want the phrase higher", dp, da)
	}
	related := dot(embedOne(t, e, "photosynthesis"), embedOne(t, e, "photosynthetic"))
	unrelated := dot(embedOne(t, e, "photosynthesis"), embedOne(t, e, "thermodynamics"))
	if related < 0.05 || math.Abs(unrelated) > 0.02 {
		t.Errorf("photosynthesis: got %.3f with photosynthetic and %.3f with thermodynamics, want a little overlap with the first only", related, unrelated)
	}
}

func TestHashAdjustDocument(t *testing.T) {
	e := embed.NewHash(384)
	chunks := []string{
		"Warsaw Warsaw Warsaw. Warsaw has a library. Warsaw Warsaw.",
		"Warsaw zoo has many animals.",
		"Warsaw has a river, the Vistula, and bridges over it in Warsaw.",
		"The university of Warsaw was founded in 1816 in Warsaw.",
		"Warsaw was rebuilt after the war; Warsaw old town.",
		"Warsaw has an airport; Warsaw Chopin airport is south.",
		"",
	}
	vecs, err := e.Embed(context.Background(), chunks)
	if err != nil {
		t.Fatal(err)
	}
	query := embedOne(t, e, "Does Warsaw have a zoo?")
	e.AdjustDocument(vecs)
	best, bestScore := -1, math.Inf(-1)
	for i, v := range vecs {
		if chunks[i] == "" {
			if norm(v) != 0 {
				t.Errorf("the empty chunk: got norm %v after adjusting, want 0", norm(v))
			}
			continue
		}
		if n := norm(v); math.Abs(n-1) > 1e-5 || math.IsNaN(n) {
			t.Errorf("chunk %d: got norm %v after adjusting, want 1", i, n)
		}
		if s := dot(query, v); s > bestScore {
			best, bestScore = i, s
		}
	}
	if best != 1 {
		t.Errorf("got chunk %d first after adjusting, want the zoo (1)", best)
	}
	// Too little to go on: left alone.
	one := [][]float32{slices.Clone(vecs[0])}
	e.AdjustDocument(one)
	if !slices.Equal(one[0], vecs[0]) {
		t.Errorf("a one-chunk document was changed")
	}
	e.AdjustDocument(nil)
}

func TestHashEmbedConcurrent(t *testing.T) {
	e := embed.NewHash(384)
	want := embedOne(t, e, embed.SampleText)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				v, err := e.Embed(context.Background(), []string{embed.SampleText, "other words"})
				if err != nil || !slices.Equal(v[0], want) {
					t.Errorf("concurrent Embed: got a different vector (err %v)", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestHashEmbedCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := embed.NewHash(384).Embed(ctx, []string{"a text"}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// BenchmarkHashEmbed embeds 1,000-character chunks; chunks/s is the figure.
func BenchmarkHashEmbed(b *testing.B) {
	for _, dims := range []int{384, 2000} {
		b.Run(strconv.Itoa(dims), func(b *testing.B) {
			e := embed.NewHash(dims)
			texts := make([]string, 64)
			for i := range texts {
				texts[i] = embed.BenchText(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for b.Loop() {
				if _, err := e.Embed(context.Background(), texts); err != nil {
					b.Fatal(err)
				}
				n += len(texts)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "chunks/s")
		})
	}
}
