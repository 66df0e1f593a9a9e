package embed

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// ollamaEmbedder calls POST {host}/api/embed of an Ollama server.
type ollamaEmbedder struct {
	model string
	dims  dimsCheck
	post  jsonPoster
}

// NewOllamaEmbedder returns an Embedder for an Ollama server's POST
// /api/embed. host is OLLAMA_HOST as Ollama reads it: a URL, or host[:port]
// (scheme http and port 11434 by default; empty means 127.0.0.1:11434).
// Every vector is checked to have dims numbers, or, with dims ≤ 0, as many as
// the first one. Batching and retries are those of NewOpenAIEmbedder. client
// may be nil.
func NewOllamaEmbedder(host, model string, dims int, client *http.Client) Embedder {
	e := &ollamaEmbedder{
		model: model,
		post: jsonPoster{
			provider: "ollama",
			url:      OllamaURL(host) + "/api/embed",
			client:   defaultClient(client),
			retry:    defaultRetryPolicy,
		},
	}
	e.dims.n.Store(int64(max(dims, 0)))
	return e
}

// OllamaURL turns OLLAMA_HOST into a base URL the way Ollama reads it:
// scheme http unless given, port 11434 unless given (80 or 443 when the
// scheme is), host 127.0.0.1 when empty.
func OllamaURL(host string) string {
	scheme, hostPort, ok := strings.Cut(strings.TrimSpace(host), "://")
	port := "11434"
	switch {
	case !ok:
		scheme, hostPort = "http", strings.TrimSpace(host)
	case scheme == "http":
		port = "80"
	case scheme == "https":
		port = "443"
	}
	hostPort, path, _ := strings.Cut(hostPort, "/")
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		h := strings.Trim(hostPort, "[]")
		if h == "" {
			h = "127.0.0.1"
		}
		hostPort = net.JoinHostPort(h, port)
	}
	u := scheme + "://" + hostPort
	if path = strings.Trim(path, "/"); path != "" {
		u += "/" + path
	}
	return u
}

// Model returns "ollama:<model>".
func (e *ollamaEmbedder) Model() string { return "ollama:" + e.model }

// Dims returns the vector size (0 while unknown).
func (e *ollamaEmbedder) Dims() int { return int(e.dims.n.Load()) }

type ollamaRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

type ollamaResponse struct {
	Embeddings [][]float32 `json:"embeddings"`
}

// Embed embeds texts in batches, in order.
func (e *ollamaEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	input := nonEmpty(texts)
	for _, b := range batches(input) {
		body, err := json.Marshal(ollamaRequest{Model: e.model, Input: input[b[0]:b[1]]})
		if err != nil {
			return nil, fmt.Errorf("ollama embeddings: %w", err)
		}
		var resp ollamaResponse
		if err := e.post.post(ctx, body, &resp); err != nil {
			return nil, err
		}
		if n := b[1] - b[0]; len(resp.Embeddings) != n {
			return nil, fmt.Errorf("ollama embeddings: got %d vectors for %d texts", len(resp.Embeddings), n)
		}
		for _, v := range resp.Embeddings {
			if err := e.dims.check("ollama", len(v)); err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	return out, nil
}
