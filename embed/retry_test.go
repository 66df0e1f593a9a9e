package embed

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"silo/testrig/fakeembed"
)

func TestEmbedRemoteRetries(t *testing.T) {
	for _, p := range providers {
		t.Run(p+"/429 then ok", func(t *testing.T) {
			f := fakeembed.New(t, p, 4)
			f.SetReply(fakeembed.FailFirst(fakeembed.Status(429, "0", `{"error":{"message":"Rate limit reached","type":"requests"}}`)))
			e, slept := newRemote(f, 4)
			vecs, err := e.Embed(context.Background(), texts(3))
			if err != nil {
				t.Fatal(err)
			}
			checkOrder(t, vecs, 3, 4)
			if n := len(f.Sent()); n != 2 {
				t.Errorf("got %d requests, want 2", n)
			}
			if !slices.Equal(*slept, []time.Duration{0}) {
				t.Errorf("got waits %v, want [0s] (Retry-After: 0)", *slept)
			}
		})
		t.Run(p+"/Retry-After seconds", func(t *testing.T) {
			f := fakeembed.New(t, p, 4)
			f.SetReply(fakeembed.FailFirst(fakeembed.Status(429, "3", `{"error":"slow down"}`), fakeembed.Status(503, "3600", ``)))
			e, slept := newRemote(f, 4)
			if _, err := e.Embed(context.Background(), texts(1)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(*slept, []time.Duration{3 * time.Second, 5 * time.Second}) {
				t.Errorf("got waits %v, want [3s 5s] (Retry-After, capped at the policy's maximum)", *slept)
			}
		})
		t.Run(p+"/503 twice then ok", func(t *testing.T) {
			f := fakeembed.New(t, p, 4)
			unavailable := fakeembed.Status(503, "", `{"error":{"message":"overloaded"}}`)
			f.SetReply(fakeembed.FailFirst(unavailable, unavailable))
			e, slept := newRemote(f, 4)
			vecs, err := e.Embed(context.Background(), texts(5))
			if err != nil {
				t.Fatal(err)
			}
			checkOrder(t, vecs, 5, 4)
			if n := len(f.Sent()); n != 3 {
				t.Errorf("got %d requests, want 3", n)
			}
			// Exponential with jitter over the upper half: [50, 100] ms, then [100, 200] ms.
			if w := *slept; len(w) != 2 || w[0] < 50*time.Millisecond || w[0] > 100*time.Millisecond || w[1] < 100*time.Millisecond || w[1] > 200*time.Millisecond {
				t.Errorf("got waits %v, want one in [50ms, 100ms] then one in [100ms, 200ms]", w)
			}
		})
		t.Run(p+"/persistent 500", func(t *testing.T) {
			f := fakeembed.New(t, p, 4)
			f.SetReply(func(_ int, w http.ResponseWriter) bool {
				fakeembed.Status(500, "", `{"error":{"message":"internal failure"}}`)(w)
				return true
			})
			e, _ := newRemote(f, 4)
			_, err := e.Embed(context.Background(), texts(2))
			if n := len(f.Sent()); n != 4 {
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
		{"openai", "401", fakeembed.Status(401, "", `{"error":{"message":"Incorrect API key provided: `+testAPIKey+`. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}`),
			401, []string{"authentication failed", "HTTP 401", "Incorrect API key provided: [redacted]"}},
		{"openai", "400", fakeembed.Status(400, "", `{"error":{"message":"This model does not support specifying dimensions.","type":"invalid_request_error"}}`),
			400, []string{"request rejected", "HTTP 400", "does not support specifying dimensions"}},
		{"openai", "404 html", fakeembed.Status(404, "", `<html>not here</html>`),
			404, []string{"not found", "<html>not here</html>"}},
		{"ollama", "404", fakeembed.Status(404, "", `{"error":"model \"nomic-embed-text\" not found, try pulling it first"}`),
			404, []string{"ollama embeddings", "HTTP 404", `model "nomic-embed-text" not found, try pulling it first`}},
		{"ollama", "400", fakeembed.Status(400, "", `{"error":"input length exceeds the context length"}`),
			400, []string{"request rejected", "input length exceeds the context length"}},
	}
	for _, tc := range cases {
		t.Run(tc.provider+"/"+tc.name, func(t *testing.T) {
			f := fakeembed.New(t, tc.provider, 4)
			f.SetReply(func(_ int, w http.ResponseWriter) bool { tc.reply(w); return true })
			e, slept := newRemote(f, 4)
			_, err := e.Embed(context.Background(), texts(2))
			if n := len(f.Sent()); n != 1 || len(*slept) != 0 {
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

func TestEmbedRemoteCancel(t *testing.T) {
	for _, p := range providers {
		t.Run(p+"/during backoff", func(t *testing.T) {
			f := fakeembed.New(t, p, 4)
			f.SetReply(func(_ int, w http.ResponseWriter) bool { fakeembed.Status(503, "", `{"error":"busy"}`)(w); return true })
			e, _ := newRemote(f, 4)
			ctx, cancel := context.WithCancel(context.Background())
			post := postOf(e)
			post.retry.Sleep = func(ctx context.Context, d time.Duration) error {
				cancel()
				return Sleep(ctx, time.Hour)
			}
			start := time.Now()
			_, err := e.Embed(ctx, texts(2))
			if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
				t.Errorf("got %v after %v, want context.Canceled at once", err, time.Since(start))
			}
			if n := len(f.Sent()); n != 1 {
				t.Errorf("got %d requests, want 1", n)
			}
		})
		t.Run(p+"/during a request", func(t *testing.T) {
			f := fakeembed.New(t, p, 4)
			release := make(chan struct{})
			defer close(release)
			f.SetReply(func(_ int, w http.ResponseWriter) bool { <-release; return false })
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
	f := fakeembed.New(t, "openai", 4)
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
		ceiling := min(p.Base<<n, p.Max)
		for range 20 {
			if d := p.Backoff(n, -1); d < ceiling/2 || d > ceiling {
				t.Fatalf("retry %d: got wait %v, want within [%v, %v]", n, d, ceiling/2, ceiling)
			}
		}
	}
	if d := p.Backoff(40, -1); d < p.Max/2 || d > p.Max {
		t.Errorf("retry 40: got %v, want at most %v", d, p.Max)
	}
	if d := p.Backoff(0, 2*time.Second); d != 2*time.Second {
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
		if got := ParseRetryAfter(h, now); got != want {
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
		if got := OllamaURL(in); got != want {
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
