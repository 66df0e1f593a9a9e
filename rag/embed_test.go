package rag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---- the hashing embedder ----

func embedOne(t testing.TB, e Embedder, text string) []float32 {
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
	}{{384, 384, "silo-hash-v1-384"}, {0, DefaultHashDims, "silo-hash-v1-2000"}, {2000, 2000, "silo-hash-v1-2000"}} {
		e := NewHashEmbedder(tc.dims)
		if e.Dims() != tc.want || e.Model() != tc.model {
			t.Errorf("NewHashEmbedder(%d): got %q, %d; want %q, %d", tc.dims, e.Model(), e.Dims(), tc.model, tc.want)
		}
		if got := len(embedOne(t, e, "a few words")); got != tc.want {
			t.Errorf("dims %d: got a vector of %d, want %d", tc.dims, got, tc.want)
		}
		if _, ok := e.(DocumentAdjuster); !ok {
			t.Errorf("the hash embedder is not a DocumentAdjuster")
		}
	}
}

const sampleText = `The Saxon Garden, covering the area of 15.5 ha, was formally a royal garden.
There are over 100 different species of trees and the avenues are a place to sit and relax.
At the east end of the park, the Tomb of the Unknown Soldier is situated.`

func TestHashEmbedDeterministic(t *testing.T) {
	for _, dims := range []int{384, 2000} {
		e := NewHashEmbedder(dims)
		texts := []string{sampleText, "Kraków's 1,178,914 inhabitants", "", "pipes"}
		batch, err := e.Embed(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		for i, text := range texts {
			again := embedOne(t, NewHashEmbedder(dims), text)
			if !slices.Equal(batch[i], again) {
				t.Errorf("dims %d: %q embeds differently alone and in a batch", dims, text)
			}
		}
	}
}

func TestHashEmbedUnitNormAndEmpty(t *testing.T) {
	e := NewHashEmbedder(384)
	texts := []string{sampleText, "x", "pipe", "", "   \n\t", "the of and to was", "!!! --- ???", "日本語のテキスト", strings.Repeat("word ", 5000)}
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
		e := NewHashEmbedder(dims)
		doc := embedOne(t, e, "The old pipes in the basement were leaking water after the plumber left.")
		near := embedOne(t, e, "Which pipe was leaking?")
		far := embedOne(t, e, "The orchestra performed a symphony by Beethoven in Vienna.")
		if dn, df := dot(doc, near), dot(doc, far); dn <= df+0.2 {
			t.Errorf("dims %d: got similarity %.3f to a related question and %.3f to an unrelated text, want the first clearly higher", dims, dn, df)
		}
	}
}

func TestHashEmbedSameWord(t *testing.T) {
	e := NewHashEmbedder(384)
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
	e := NewHashEmbedder(2000)
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
	e := NewHashEmbedder(384)
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
	e.(DocumentAdjuster).AdjustDocument(vecs)
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
	e.(DocumentAdjuster).AdjustDocument(one)
	if !slices.Equal(one[0], vecs[0]) {
		t.Errorf("a one-chunk document was changed")
	}
	e.(DocumentAdjuster).AdjustDocument(nil)
}

func TestHashEmbedConcurrent(t *testing.T) {
	e := NewHashEmbedder(384)
	want := embedOne(t, e, sampleText)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				v, err := e.Embed(context.Background(), []string{sampleText, "other words"})
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
	if _, err := NewHashEmbedder(384).Embed(ctx, []string{"a text"}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestHashEmbedAllocations(t *testing.T) {
	for _, dims := range []int{384, 2000} {
		e := NewHashEmbedder(dims).(*hashEmbedder)
		s := scratchPool.New().(*hashScratch)
		v := make([]float32, dims)
		text := benchText(0)
		e.embed(s, text, v) // the scratch table grows to fit once
		allocs := testing.AllocsPerRun(100, func() {
			clear(v)
			e.embed(s, text, v)
		})
		if allocs != 0 {
			t.Errorf("dims %d: got %v allocations per text, want 0", dims, allocs)
		}
	}
}

// benchText is a 1,000-character passage of English prose.
func benchText(i int) string {
	words := strings.Fields(sampleText + " Demographically, it was the most diverse city in Poland, with significant numbers of foreign-born inhabitants. In addition to the Polish majority, there was a significant Jewish minority in Warsaw. According to Russian census of 1897, out of the total population of 638,000, Jews constituted 219,000 (around 34% percent). Warsaw's prewar Jewish population of more than 350,000 constituted about 30 percent of the city's total population.")
	var b strings.Builder
	for j := i; b.Len() < 1000; j++ {
		b.WriteString(words[j%len(words)])
		b.WriteByte(' ')
	}
	return b.String()[:1000]
}

// BenchmarkHashEmbed embeds 1,000-character chunks; chunks/s is the figure.
func BenchmarkHashEmbed(b *testing.B) {
	for _, dims := range []int{384, 2000} {
		b.Run(strconv.Itoa(dims), func(b *testing.B) {
			e := NewHashEmbedder(dims)
			texts := make([]string, 64)
			for i := range texts {
				texts[i] = benchText(i)
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

// ---- remote embedders against fake servers ----

// fakeEmbedServer speaks OpenAI's POST /v1/embeddings or Ollama's POST
// /api/embed (at any path, which it records). It answers each request with
// reply (by request number, from 0), or with one vector per input: embed's
// when set, else one whose first number is the input's "text-N" number. It
// records what it was sent and the status it answered.
type fakeEmbedServer struct {
	*httptest.Server
	provider string
	dims     int

	mu       sync.Mutex
	requests []fakeRequest
	reply    func(n int, w http.ResponseWriter) bool // true: answered
	embed    Embedder
	shuffle  bool
	vecLen   int // length of the returned vectors when not dims
}

type fakeRequest struct {
	Model      string   `json:"model"`
	Input      []string `json:"input"`
	Dimensions *int     `json:"dimensions"`
	Auth       string   `json:"-"`
	Path       string   `json:"-"`
	Status     int      `json:"-"` // of the answer
}

func newFakeEmbedServer(t *testing.T, provider string, dims int) *fakeEmbedServer {
	f := &fakeEmbedServer{provider: provider, dims: dims}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// statusWriter notes the status of the answer it writes.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (f *fakeEmbedServer) serve(rw http.ResponseWriter, r *http.Request) {
	var req fakeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Method != http.MethodPost {
		http.Error(rw, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	req.Auth, req.Path = r.Header.Get("Authorization"), r.URL.Path
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, req)
	reply, embed, shuffle, vecLen := f.reply, f.embed, f.shuffle, f.vecLen
	f.mu.Unlock()
	// The status is noted before the answer ends, so before the client
	// has it.
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	defer func() {
		f.mu.Lock()
		f.requests[n].Status = w.status
		f.mu.Unlock()
	}()
	if reply != nil && reply(n, w) {
		return
	}
	if vecLen == 0 {
		vecLen = f.dims
	}
	var vecs [][]float32
	if embed != nil {
		var err error
		if vecs, err = embed.Embed(r.Context(), req.Input); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
	} else {
		vecs = make([][]float32, len(req.Input))
		for i, in := range req.Input {
			id, _ := strconv.Atoi(strings.TrimPrefix(in, "text-"))
			vecs[i] = make([]float32, vecLen)
			vecs[i][0] = float32(id)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if f.provider == "ollama" {
		_ = json.NewEncoder(w).Encode(map[string]any{"model": req.Model, "embeddings": vecs})
		return
	}
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	data := make([]item, len(vecs))
	for i, v := range vecs {
		data[i] = item{"embedding", i, v}
	}
	if shuffle {
		slices.Reverse(data)
		data[0], data[len(data)/2] = data[len(data)/2], data[0]
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": 1, "total_tokens": 1},
	})
}

func (f *fakeEmbedServer) sent() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

const testAPIKey = "sk-test-SECRET-0123456789"

// newRemote builds the provider's embedder against f with a fast, recorded
// retry policy of 4 attempts.
func newRemote(f *fakeEmbedServer, dims int) (Embedder, *[]time.Duration) {
	var e Embedder
	var post *jsonPoster
	if f.provider == "ollama" {
		o := NewOllamaEmbedder(f.URL, "nomic-embed-text", dims, f.Client()).(*ollamaEmbedder)
		e, post = o, &o.post
	} else {
		o := NewOpenAIEmbedder(f.URL+"/v1/", testAPIKey, "text-embedding-3-small", dims, f.Client()).(*openAIEmbedder)
		e, post = o, &o.post
	}
	var mu sync.Mutex
	slept := &[]time.Duration{}
	post.retry = retryPolicy{attempts: 4, base: 100 * time.Millisecond, max: 5 * time.Second,
		sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			*slept = append(*slept, d)
			mu.Unlock()
			return ctx.Err()
		}}
	return e, slept
}

func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "text-" + strconv.Itoa(i)
	}
	return out
}

func checkOrder(t *testing.T, vecs [][]float32, n, dims int) {
	t.Helper()
	if len(vecs) != n {
		t.Fatalf("got %d vectors, want %d", len(vecs), n)
	}
	for i, v := range vecs {
		if len(v) != dims || v[0] != float32(i) {
			t.Fatalf("vector %d: got first number %v of %d, want %d of %d", i, v[0], len(v), i, dims)
		}
	}
}

func status(code int, retryAfter, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// failFirst answers the first len(fails) requests with them.
func failFirst(fails ...func(w http.ResponseWriter)) func(int, http.ResponseWriter) bool {
	return func(n int, w http.ResponseWriter) bool {
		if n < len(fails) {
			fails[n](w)
			return true
		}
		return false
	}
}

var providers = []string{"openai", "ollama"}

func TestEmbedRemoteBatching(t *testing.T) {
	for _, p := range providers {
		t.Run(p, func(t *testing.T) {
			f := newFakeEmbedServer(t, p, 8)
			e, _ := newRemote(f, 8)
			vecs, err := e.Embed(context.Background(), texts(150))
			if err != nil {
				t.Fatal(err)
			}
			checkOrder(t, vecs, 150, 8)
			reqs := f.sent()
			var sizes []int
			for _, r := range reqs {
				sizes = append(sizes, len(r.Input))
			}
			if !slices.Equal(sizes, []int{64, 64, 22}) {
				t.Errorf("got batches of %v, want [64 64 22]", sizes)
			}
			r := reqs[0]
			switch p {
			case "openai":
				if r.Path != "/v1/embeddings" || r.Model != "text-embedding-3-small" || r.Dimensions == nil || *r.Dimensions != 8 || r.Auth != "Bearer "+testAPIKey {
					t.Errorf("got path %q, model %q, dimensions %v, auth %q", r.Path, r.Model, r.Dimensions, r.Auth)
				}
				if e.Model() != "openai:text-embedding-3-small@8" {
					t.Errorf("got Model() %q", e.Model())
				}
			case "ollama":
				if r.Path != "/api/embed" || r.Model != "nomic-embed-text" || r.Auth != "" {
					t.Errorf("got path %q, model %q, auth %q", r.Path, r.Model, r.Auth)
				}
				if e.Model() != "ollama:nomic-embed-text" {
					t.Errorf("got Model() %q", e.Model())
				}
			}
			if e.Dims() != 8 {
				t.Errorf("got Dims() %d, want 8", e.Dims())
			}
		})
	}
}

func TestEmbedRemoteBatchChars(t *testing.T) {
	f := newFakeEmbedServer(t, "openai", 4)
	e, _ := newRemote(f, 4)
	in := make([]string, 5)
	for i := range in {
		in[i] = "text-" + strconv.Itoa(i) + " " + strings.Repeat("x", 40_000)
	}
	if _, err := e.Embed(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, r := range f.sent() {
		sizes = append(sizes, len(r.Input))
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Errorf("got batches of %v for 5 texts of 40,000 characters, want [2 2 1]", sizes)
	}
}

func TestEmbedOpenAIShuffledAnswer(t *testing.T) {
	f := newFakeEmbedServer(t, "openai", 4)
	f.shuffle = true
	e, _ := newRemote(f, 4)
	vecs, err := e.Embed(context.Background(), texts(70))
	if err != nil {
		t.Fatal(err)
	}
	checkOrder(t, vecs, 70, 4)
}

func TestEmbedRemoteEmptyInput(t *testing.T) {
	for _, p := range providers {
		t.Run(p, func(t *testing.T) {
			f := newFakeEmbedServer(t, p, 4)
			e, _ := newRemote(f, 4)
			vecs, err := e.Embed(context.Background(), nil)
			if err != nil || len(vecs) != 0 || len(f.sent()) != 0 {
				t.Errorf("no texts: got %d vectors, %v, %d requests; want none", len(vecs), err, len(f.sent()))
			}
			in := []string{"text-0", ""}
			if _, err := e.Embed(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			if got := f.sent()[0].Input; !slices.Equal(got, []string{"text-0", " "}) || in[1] != "" {
				t.Errorf("got input %q (caller's slice now %q), want the empty text sent as a space", got, in)
			}
		})
	}
}

func TestEmbedRemoteRetries(t *testing.T) {
	for _, p := range providers {
		t.Run(p+"/429 then ok", func(t *testing.T) {
			f := newFakeEmbedServer(t, p, 4)
			f.reply = failFirst(status(429, "0", `{"error":{"message":"Rate limit reached","type":"requests"}}`))
			e, slept := newRemote(f, 4)
			vecs, err := e.Embed(context.Background(), texts(3))
			if err != nil {
				t.Fatal(err)
			}
			checkOrder(t, vecs, 3, 4)
			if n := len(f.sent()); n != 2 {
				t.Errorf("got %d requests, want 2", n)
			}
			if !slices.Equal(*slept, []time.Duration{0}) {
				t.Errorf("got waits %v, want [0s] (Retry-After: 0)", *slept)
			}
		})
		t.Run(p+"/Retry-After seconds", func(t *testing.T) {
			f := newFakeEmbedServer(t, p, 4)
			f.reply = failFirst(status(429, "3", `{"error":"slow down"}`), status(503, "3600", ``))
			e, slept := newRemote(f, 4)
			if _, err := e.Embed(context.Background(), texts(1)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(*slept, []time.Duration{3 * time.Second, 5 * time.Second}) {
				t.Errorf("got waits %v, want [3s 5s] (Retry-After, capped at the policy's maximum)", *slept)
			}
		})
		t.Run(p+"/503 twice then ok", func(t *testing.T) {
			f := newFakeEmbedServer(t, p, 4)
			unavailable := status(503, "", `{"error":{"message":"overloaded"}}`)
			f.reply = failFirst(unavailable, unavailable)
			e, slept := newRemote(f, 4)
			vecs, err := e.Embed(context.Background(), texts(5))
			if err != nil {
				t.Fatal(err)
			}
			checkOrder(t, vecs, 5, 4)
			if n := len(f.sent()); n != 3 {
				t.Errorf("got %d requests, want 3", n)
			}
			// Exponential with jitter over the upper half: [50, 100] ms, then [100, 200] ms.
			if w := *slept; len(w) != 2 || w[0] < 50*time.Millisecond || w[0] > 100*time.Millisecond || w[1] < 100*time.Millisecond || w[1] > 200*time.Millisecond {
				t.Errorf("got waits %v, want one in [50ms, 100ms] then one in [100ms, 200ms]", w)
			}
		})
		t.Run(p+"/persistent 500", func(t *testing.T) {
			f := newFakeEmbedServer(t, p, 4)
			f.reply = func(_ int, w http.ResponseWriter) bool {
				status(500, "", `{"error":{"message":"internal failure"}}`)(w)
				return true
			}
			e, _ := newRemote(f, 4)
			_, err := e.Embed(context.Background(), texts(2))
			if n := len(f.sent()); n != 4 {
				t.Errorf("got %d requests, want 4 attempts", n)
			}
			var ee *EmbeddingError
			if err == nil || !errors.As(err, &ee) || ee.StatusCode != 500 || !ee.Temporary() {
				t.Fatalf("got %v, want an EmbeddingError with status 500", err)
			}
			for _, want := range []string{p + " embeddings", "HTTP 500", "internal failure", "gave up after 4 attempts"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got error %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestEmbedRemoteNoRetry(t *testing.T) {
	cases := []struct {
		provider, name string
		reply          func(w http.ResponseWriter)
		code           int
		want           []string
	}{
		{"openai", "401", status(401, "", `{"error":{"message":"Incorrect API key provided: `+testAPIKey+`. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}`),
			401, []string{"authentication failed", "HTTP 401", "Incorrect API key provided: [redacted]"}},
		{"openai", "400", status(400, "", `{"error":{"message":"This model does not support specifying dimensions.","type":"invalid_request_error"}}`),
			400, []string{"request rejected", "HTTP 400", "does not support specifying dimensions"}},
		{"openai", "404 html", status(404, "", `<html>not here</html>`),
			404, []string{"not found", "<html>not here</html>"}},
		{"ollama", "404", status(404, "", `{"error":"model \"nomic-embed-text\" not found, try pulling it first"}`),
			404, []string{"ollama embeddings", "HTTP 404", `model "nomic-embed-text" not found, try pulling it first`}},
		{"ollama", "400", status(400, "", `{"error":"input length exceeds the context length"}`),
			400, []string{"request rejected", "input length exceeds the context length"}},
	}
	for _, tc := range cases {
		t.Run(tc.provider+"/"+tc.name, func(t *testing.T) {
			f := newFakeEmbedServer(t, tc.provider, 4)
			f.reply = func(_ int, w http.ResponseWriter) bool { tc.reply(w); return true }
			e, slept := newRemote(f, 4)
			_, err := e.Embed(context.Background(), texts(2))
			if n := len(f.sent()); n != 1 || len(*slept) != 0 {
				t.Errorf("got %d requests and waits %v, want 1 request and no retry", n, *slept)
			}
			var ee *EmbeddingError
			if !errors.As(err, &ee) || ee.StatusCode != tc.code || ee.Temporary() {
				t.Fatalf("got %v, want a permanent EmbeddingError with status %d", err, tc.code)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got error %q, want it to contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), testAPIKey) || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error shows the API key: %q", err)
			}
		})
	}
}

func TestEmbedRemoteDims(t *testing.T) {
	for _, p := range providers {
		t.Run(p+"/wrong size", func(t *testing.T) {
			f := newFakeEmbedServer(t, p, 4)
			f.vecLen = 3
			e, _ := newRemote(f, 4)
			_, err := e.Embed(context.Background(), texts(2))
			if err == nil || !strings.Contains(err.Error(), "got a vector of 3 numbers, want 4") {
				t.Errorf("got %v, want a dimension mismatch error", err)
			}
			if n := len(f.sent()); n != 1 {
				t.Errorf("got %d requests, want 1 (not retried)", n)
			}
		})
		t.Run(p+"/learnt", func(t *testing.T) {
			f := newFakeEmbedServer(t, p, 6)
			e, _ := newRemote(f, 0)
			if e.Dims() != 0 {
				t.Errorf("got Dims() %d before any answer, want 0", e.Dims())
			}
			if _, err := e.Embed(context.Background(), texts(2)); err != nil {
				t.Fatal(err)
			}
			if e.Dims() != 6 {
				t.Errorf("got Dims() %d, want 6 from the answer", e.Dims())
			}
			if r := f.sent()[0]; r.Dimensions != nil {
				t.Errorf("got dimensions %d in the request, want none", *r.Dimensions)
			}
			f.mu.Lock()
			f.vecLen = 7
			f.mu.Unlock()
			if _, err := e.Embed(context.Background(), texts(1)); err == nil || !strings.Contains(err.Error(), "got a vector of 7 numbers, want 6") {
				t.Errorf("got %v, want a dimension mismatch once the size is known", err)
			}
		})
	}
}

func TestEmbedRemoteBadAnswers(t *testing.T) {
	answers := map[string]string{
		"openai/too few":      `{"data":[{"index":0,"embedding":[0,0,0,0]}]}`,
		"openai/bad index":    `{"data":[{"index":0,"embedding":[0,0,0,0]},{"index":5,"embedding":[0,0,0,0]}]}`,
		"openai/repeated":     `{"data":[{"index":1,"embedding":[0,0,0,0]},{"index":1,"embedding":[0,0,0,0]}]}`,
		"openai/not json":     `not json`,
		"ollama/too few":      `{"embeddings":[[0,0,0,0]]}`,
		"ollama/empty vector": `{"embeddings":[[],[]]}`,
	}
	for name, body := range answers {
		t.Run(name, func(t *testing.T) {
			p, _, _ := strings.Cut(name, "/")
			f := newFakeEmbedServer(t, p, 4)
			f.reply = func(_ int, w http.ResponseWriter) bool { status(200, "", body)(w); return true }
			e, _ := newRemote(f, 0)
			if vecs, err := e.Embed(context.Background(), texts(2)); err == nil {
				t.Errorf("got %d vectors and no error, want an error", len(vecs))
			}
		})
	}
}

func TestEmbedRemoteCancel(t *testing.T) {
	for _, p := range providers {
		t.Run(p+"/during backoff", func(t *testing.T) {
			f := newFakeEmbedServer(t, p, 4)
			f.reply = func(_ int, w http.ResponseWriter) bool { status(503, "", `{"error":"busy"}`)(w); return true }
			e, _ := newRemote(f, 4)
			ctx, cancel := context.WithCancel(context.Background())
			post := postOf(e)
			post.retry.sleep = func(ctx context.Context, d time.Duration) error {
				cancel()
				return sleepCtx(ctx, time.Hour)
			}
			start := time.Now()
			_, err := e.Embed(ctx, texts(2))
			if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
				t.Errorf("got %v after %v, want context.Canceled at once", err, time.Since(start))
			}
			if n := len(f.sent()); n != 1 {
				t.Errorf("got %d requests, want 1", n)
			}
		})
		t.Run(p+"/during a request", func(t *testing.T) {
			f := newFakeEmbedServer(t, p, 4)
			release := make(chan struct{})
			defer close(release)
			f.reply = func(_ int, w http.ResponseWriter) bool { <-release; return false }
			e, slept := newRemote(f, 4)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := e.Embed(ctx, texts(2))
			if !errors.Is(err, context.DeadlineExceeded) || len(*slept) != 0 {
				t.Errorf("got %v with waits %v, want context.DeadlineExceeded and no retry", err, *slept)
			}
		})
	}
}

func TestEmbedRemoteConnectionRefused(t *testing.T) {
	f := newFakeEmbedServer(t, "openai", 4)
	e, slept := newRemote(f, 4)
	f.Close()
	_, err := e.Embed(context.Background(), texts(1))
	if err == nil || len(*slept) != 3 || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Errorf("got %v after waits %v, want 4 attempts", err, *slept)
	}
	if strings.Contains(err.Error(), testAPIKey) {
		t.Errorf("the error shows the API key: %q", err)
	}
}

func postOf(e Embedder) *jsonPoster {
	switch e := e.(type) {
	case *openAIEmbedder:
		return &e.post
	case *ollamaEmbedder:
		return &e.post
	}
	panic("not a remote embedder")
}

func TestEmbedRetryPolicy(t *testing.T) {
	p := defaultRetryPolicy
	for n := range 12 {
		ceiling := min(p.base<<n, p.max)
		for range 20 {
			if d := p.backoff(n, -1); d < ceiling/2 || d > ceiling {
				t.Fatalf("retry %d: got wait %v, want within [%v, %v]", n, d, ceiling/2, ceiling)
			}
		}
	}
	if d := p.backoff(40, -1); d < p.max/2 || d > p.max {
		t.Errorf("retry 40: got %v, want at most %v", d, p.max)
	}
	if d := p.backoff(0, 2*time.Second); d != 2*time.Second {
		t.Errorf("Retry-After 2s: got %v", d)
	}
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              -1,
		"soon":                          -1,
		"0":                             0,
		"7":                             7 * time.Second,
		"-3":                            0,
		"Wed, 01 Jan 2025 12:00:30 GMT": 30 * time.Second,
		"Wed, 01 Jan 2025 11:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(h, now); got != want {
			t.Errorf("Retry-After %q: got %v, want %v", h, got, want)
		}
	}
}

func TestEmbedOllamaURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "http://127.0.0.1:11434",
		"localhost":                 "http://localhost:11434",
		"0.0.0.0:8080":              "http://0.0.0.0:8080",
		"http://ollama":             "http://ollama:80",
		"https://ollama.example":    "https://ollama.example:443",
		"http://10.0.0.2:11434/":    "http://10.0.0.2:11434",
		"https://proxy:8443/ollama": "https://proxy:8443/ollama",
		"[::1]":                     "http://[::1]:11434",
	} {
		if got := ollamaURL(in); got != want {
			t.Errorf("OLLAMA_HOST %q: got %q, want %q", in, got, want)
		}
	}
}

func TestEmbedOpenAIDefaults(t *testing.T) {
	e := NewOpenAIEmbedder("", "", "text-embedding-3-small", 0, nil).(*openAIEmbedder)
	if e.post.url != "https://api.openai.com/v1/embeddings" || e.post.client == nil || e.Model() != "openai:text-embedding-3-small" {
		t.Errorf("got URL %q, model %q", e.post.url, e.Model())
	}
}
