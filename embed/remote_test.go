package embed

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"silo/testrig/fakeembed"
)

const testAPIKey = "sk-test-SECRET-0123456789"

// newRemote builds the provider's embedder against f with a fast, recorded
// retry policy of 4 attempts.
func newRemote(f *fakeembed.Server, dims int) (Embedder, *[]time.Duration) {
	var e Embedder
	var post *jsonPoster
	if f.Provider() == "ollama" {
		o := NewOllamaEmbedder(f.URL, "nomic-embed-text", dims, f.Client()).(*ollamaEmbedder)
		e, post = o, &o.post
	} else {
		o := NewOpenAIEmbedder(f.URL+"/v1/", testAPIKey, "text-embedding-3-small", dims, f.Client()).(*openAIEmbedder)
		e, post = o, &o.post
	}
	var mu sync.Mutex
	slept := &[]time.Duration{}
	post.retry = RetryPolicy{Attempts: 4, Base: 100 * time.Millisecond, Max: 5 * time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error {
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

var providers = []string{"openai", "ollama"}

func TestEmbedRemoteBatching(t *testing.T) {
	for _, p := range providers {
		t.Run(p, func(t *testing.T) {
			f := fakeembed.New(t, p, 8)
			e, _ := newRemote(f, 8)
			vecs, err := e.Embed(context.Background(), texts(150))
			if err != nil {
				t.Fatal(err)
			}
			checkOrder(t, vecs, 150, 8)
			reqs := f.Sent()
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
	f := fakeembed.New(t, "openai", 4)
	e, _ := newRemote(f, 4)
	in := make([]string, 5)
	for i := range in {
		in[i] = "text-" + strconv.Itoa(i) + " " + strings.Repeat("x", 40_000)
	}
	if _, err := e.Embed(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, r := range f.Sent() {
		sizes = append(sizes, len(r.Input))
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Errorf("got batches of %v for 5 texts of 40,000 characters, want [2 2 1]", sizes)
	}
}

func TestEmbedOpenAIShuffledAnswer(t *testing.T) {
	f := fakeembed.New(t, "openai", 4)
	f.SetShuffle(true)
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
			f := fakeembed.New(t, p, 4)
			e, _ := newRemote(f, 4)
			vecs, err := e.Embed(context.Background(), nil)
			if err != nil || len(vecs) != 0 || len(f.Sent()) != 0 {
				t.Errorf("no texts: got %d vectors, %v, %d requests; want none", len(vecs), err, len(f.Sent()))
			}
			in := []string{"text-0", ""}
			if _, err := e.Embed(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			if got := f.Sent()[0].Input; !slices.Equal(got, []string{"text-0", " "}) || in[1] != "" {
				t.Errorf("got input %q (caller's slice now %q), want the empty text sent as a space", got, in)
			}
		})
	}
}

func TestEmbedRemoteDims(t *testing.T) {
	for _, p := range providers {
		t.Run(p+"/wrong size", func(t *testing.T) {
			f := fakeembed.New(t, p, 4)
			f.SetVectorLen(3)
			e, _ := newRemote(f, 4)
			_, err := e.Embed(context.Background(), texts(2))
			if err == nil || !strings.Contains(err.Error(), "got a vector of 3 numbers, want 4") {
				t.Errorf("got %v, want a dimension mismatch error", err)
			}
			if n := len(f.Sent()); n != 1 {
				t.Errorf("got %d requests, want 1 (not retried)", n)
			}
		})
		t.Run(p+"/learnt", func(t *testing.T) {
			f := fakeembed.New(t, p, 6)
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
			if r := f.Sent()[0]; r.Dimensions != nil {
				t.Errorf("got dimensions %d in the request, want none", *r.Dimensions)
			}
			f.SetVectorLen(7)
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
			f := fakeembed.New(t, p, 4)
			f.SetReply(func(_ int, w http.ResponseWriter) bool { fakeembed.Status(200, "", body)(w); return true })
			e, _ := newRemote(f, 0)
			if vecs, err := e.Embed(context.Background(), texts(2)); err == nil {
				t.Errorf("got %d vectors and no error, want an error", len(vecs))
			}
		})
	}
}
