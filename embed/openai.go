package embed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// openAIEmbedder calls POST {base}/embeddings of an OpenAI-compatible server.
type openAIEmbedder struct {
	model string
	dims  dimsCheck
	send  int // the "dimensions" parameter, 0 for none
	post  jsonPoster
}

// NewOpenAIEmbedder returns an Embedder for any server that speaks OpenAI's
// POST {baseURL}/embeddings (OpenAI, Azure-style proxies, vLLM, llama.cpp,
// LM Studio, TEI…). baseURL defaults to https://api.openai.com/v1; apiKey is
// sent as a Bearer token when not empty. With dims > 0 the request asks for
// that many dimensions and every answer is checked against it; with dims ≤ 0
// the model's own size is learnt from the first answer (use this for models
// that refuse the "dimensions" parameter). Requests carry at most 64 texts and
// about 100,000 characters; rate limits (429) and server errors (5xx) are
// retried with exponential backoff and jitter, honouring Retry-After. client
// may be nil.
func NewOpenAIEmbedder(baseURL, apiKey, model string, dims int, client *http.Client) Embedder {
	if baseURL == "" {
		baseURL = "https://api.openai.com/v1"
	}
	e := &openAIEmbedder{
		model: model,
		send:  max(dims, 0),
		post: jsonPoster{
			provider: "openai",
			url:      strings.TrimRight(baseURL, "/") + "/embeddings",
			apiKey:   apiKey,
			client:   defaultClient(client),
			retry:    defaultRetryPolicy,
		},
	}
	e.dims.n.Store(int64(max(dims, 0)))
	return e
}

// Model returns "openai:<model>", with "@<dims>" when dimensions are
// requested, since they change the vectors.
func (e *openAIEmbedder) Model() string {
	if e.send > 0 {
		return "openai:" + e.model + "@" + strconv.Itoa(e.send)
	}
	return "openai:" + e.model
}

// Dims returns the vector size (0 while unknown).
func (e *openAIEmbedder) Dims() int { return int(e.dims.n.Load()) }

type openAIRequest struct {
	Model      string   `json:"model"`
	Input      []string `json:"input"`
	Dimensions int      `json:"dimensions,omitempty"`
}

type openAIResponse struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
}

// Embed embeds texts in batches, in order.
func (e *openAIEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	input := nonEmpty(texts)
	for _, b := range batches(input) {
		body, err := json.Marshal(openAIRequest{Model: e.model, Input: input[b[0]:b[1]], Dimensions: e.send})
		if err != nil {
			return nil, fmt.Errorf("openai embeddings: %w", err)
		}
		var resp openAIResponse
		if err := e.post.post(ctx, body, &resp); err != nil {
			return nil, err
		}
		n := b[1] - b[0]
		if len(resp.Data) != n {
			return nil, fmt.Errorf("openai embeddings: got %d vectors for %d texts", len(resp.Data), n)
		}
		for _, d := range resp.Data {
			if d.Index < 0 || d.Index >= n || out[b[0]+d.Index] != nil {
				return nil, fmt.Errorf("openai embeddings: bad or repeated index %d in an answer for %d texts", d.Index, n)
			}
			if err := e.dims.check("openai", len(d.Embedding)); err != nil {
				return nil, err
			}
			out[b[0]+d.Index] = d.Embedding
		}
	}
	return out, nil
}
