package rag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Embedder turns texts into vectors of Dims() numbers.
//
// Implementations are safe for concurrent use. Embed returns one vector per
// text, in the order of texts, or an error and no vectors.
type Embedder interface {
	// Model names the embedding model and everything that changes its
	// vectors. It is recorded in each tenant database; a change triggers
	// re-embedding.
	Model() string
	// Dims is the length of every vector. A remote embedder built with
	// dims ≤ 0 learns it from its first answer and reports 0 until then.
	Dims() int
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// DocumentAdjuster is implemented by embedders whose chunk vectors rank
// better once adjusted with statistics of the whole document they belong to.
// Ingestion calls AdjustDocument on all the chunk vectors of one document
// before storing them; queries are embedded with Embed alone. Vectors of
// other documents or of other embedders must not be passed.
type DocumentAdjuster interface {
	AdjustDocument(vectors [][]float32)
}

// EmbeddingError is an error answer from an embedding server.
type EmbeddingError struct {
	Provider   string // "openai" or "ollama"
	StatusCode int
	Message    string // the server's own message, without any API key

	retryAfter time.Duration // from the Retry-After header; < 0 when absent
}

// Error describes the failure for a log or a person.
func (e *EmbeddingError) Error() string {
	what := "server error"
	switch {
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		what = "authentication failed"
	case e.StatusCode == http.StatusTooManyRequests:
		what = "rate limited"
	case e.StatusCode == http.StatusNotFound:
		what = "not found (check the model name and the server URL)"
	case e.StatusCode < 500:
		what = "request rejected"
	}
	msg := fmt.Sprintf("%s embeddings: %s (HTTP %d)", e.Provider, what, e.StatusCode)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Temporary reports whether the same request may succeed later: rate limits,
// timeouts and server errors.
func (e *EmbeddingError) Temporary() bool { return retryableStatus(e.StatusCode) }

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
}

// Batch limits of one request to an embedding server.
const (
	maxBatchTexts = 64
	maxBatchChars = 100_000
	maxAnswerSize = 64 << 20
)

// retryPolicy bounds the attempts at one request and the waits between them.
type retryPolicy struct {
	attempts int           // in all, the first included
	base     time.Duration // wait before the first retry, doubled each time
	max      time.Duration // cap of a wait, Retry-After included
	// sleep waits for d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

var defaultRetryPolicy = retryPolicy{attempts: 5, base: 500 * time.Millisecond, max: 30 * time.Second, sleep: sleepCtx}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff is the wait before retry n (0-based): what the server asked for
// in Retry-After (retryAfter ≥ 0), else exponential with jitter over its
// upper half. Both are capped at p.max.
func (p retryPolicy) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter >= 0 {
		return min(retryAfter, p.max)
	}
	ceiling := p.max
	if n < 30 && p.base<<n < p.max {
		ceiling = p.base << n
	}
	if ceiling <= 0 {
		return 0
	}
	half := ceiling / 2
	return half + rand.N(ceiling-half+1)
}

// parseRetryAfter reads a Retry-After header, seconds or an HTTP date; -1
// when there is none.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if s, err := strconv.Atoi(h); err == nil {
		return time.Duration(min(max(s, 0), 86400)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// jsonPoster sends JSON requests to one embedding server with the retry
// policy, and turns error answers into EmbeddingErrors.
type jsonPoster struct {
	provider string
	url      string
	apiKey   string // sent as a Bearer token when set; never logged
	client   *http.Client
	retry    retryPolicy
}

// post sends body and decodes a 200 answer into out. It retries rate limits,
// server errors and network failures, and gives up at once on other answers
// and when ctx ends.
func (p *jsonPoster) post(ctx context.Context, body []byte, out any) error {
	var last error
	attempts := max(p.retry.attempts, 1)
	for n := 0; n < attempts; n++ {
		if n > 0 {
			retryAfter := time.Duration(-1)
			var ee *EmbeddingError
			if errors.As(last, &ee) {
				retryAfter = ee.retryAfter
			}
			if err := p.retry.sleep(ctx, p.retry.backoff(n-1, retryAfter)); err != nil {
				return fmt.Errorf("%w; stopped retrying: %w", last, err)
			}
		}
		err := p.once(ctx, body, out)
		if err == nil {
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return fmt.Errorf("%s embeddings: %w", p.provider, ctx.Err())
		}
		if !temporary(err) {
			return err
		}
	}
	return fmt.Errorf("%w (gave up after %d attempts)", last, attempts)
}

// temporary reports whether err is worth another attempt.
func temporary(err error) bool {
	var ee *EmbeddingError
	if errors.As(err, &ee) {
		return ee.Temporary()
	}
	var ue *url.Error
	if errors.As(err, &ue) { // a url.Error is a net.Error whatever it holds
		err = ue.Err
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (p *jsonPoster) once(ctx context.Context, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s embeddings: %w", p.provider, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if p.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.apiKey)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s embeddings: %w", p.provider, redactErr(p.apiKey, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize+1))
	if err != nil {
		return fmt.Errorf("%s embeddings: read answer: %w", p.provider, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &EmbeddingError{
			Provider:   p.provider,
			StatusCode: resp.StatusCode,
			Message:    redact(p.apiKey, serverMessage(data)),
			retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	}
	if len(data) > maxAnswerSize {
		return fmt.Errorf("%s embeddings: answer larger than %d MB", p.provider, maxAnswerSize>>20)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s embeddings: decode answer: %w", p.provider, err)
	}
	return nil
}

// redact removes an API key from a text that came back from a server or
// the network (a 401 may quote the key it refused).
func redact(key, s string) string {
	if key == "" {
		return s
	}
	return strings.ReplaceAll(s, key, "[redacted]")
}

// redactedError is an error whose text had an API key taken out; the error
// it wraps is still there for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err with key taken out of its text.
func redactErr(key string, err error) error {
	if key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	return &redactedError{msg: redact(key, err.Error()), err: err}
}

// serverMessage finds the message in an error answer: OpenAI's
// {"error":{"message":…}}, Ollama's {"error":"…"}, or {"message":…};
// otherwise the start of the body.
func serverMessage(body []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  string          `json:"detail"`
	}
	msg := ""
	if json.Unmarshal(body, &v) == nil {
		var s string
		var obj struct {
			Message string `json:"message"`
		}
		switch {
		case json.Unmarshal(v.Error, &s) == nil && s != "":
			msg = s
		case json.Unmarshal(v.Error, &obj) == nil && obj.Message != "":
			msg = obj.Message
		case v.Message != "":
			msg = v.Message
		case v.Detail != "":
			msg = v.Detail
		}
	}
	if msg == "" {
		msg = string(body)
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if r := []rune(msg); len(r) > 300 {
		msg = string(r[:300]) + "…"
	}
	return msg
}

// batches cuts texts into runs of at most maxBatchTexts texts and about
// maxBatchChars characters (a longer text goes alone).
func batches(texts []string) [][2]int {
	var out [][2]int
	start, chars := 0, 0
	for i, t := range texts {
		if i > start && (i-start == maxBatchTexts || chars+len(t) > maxBatchChars) {
			out = append(out, [2]int{start, i})
			start, chars = i, 0
		}
		chars += len(t)
	}
	if start < len(texts) {
		out = append(out, [2]int{start, len(texts)})
	}
	return out
}

// dimsCheck holds the expected vector length: fixed at construction, or
// learnt from the first answer when constructed with dims ≤ 0.
type dimsCheck struct{ n atomic.Int64 }

func (d *dimsCheck) check(provider string, got int) error {
	if got == 0 {
		return fmt.Errorf("%s embeddings: the server returned an empty vector", provider)
	}
	if d.n.CompareAndSwap(0, int64(got)) {
		return nil
	}
	if want := int(d.n.Load()); got != want {
		return fmt.Errorf("%s embeddings: got a vector of %d numbers, want %d (check the embedding model and dimensions)", provider, got, want)
	}
	return nil
}

func defaultClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Timeout: 2 * time.Minute}
}

// nonEmpty replaces empty texts by a space: OpenAI refuses an empty input.
func nonEmpty(texts []string) []string {
	if !slices.Contains(texts, "") {
		return texts
	}
	out := slices.Clone(texts)
	for i, t := range out {
		if t == "" {
			out[i] = " "
		}
	}
	return out
}

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
			url:      ollamaURL(host) + "/api/embed",
			client:   defaultClient(client),
			retry:    defaultRetryPolicy,
		},
	}
	e.dims.n.Store(int64(max(dims, 0)))
	return e
}

// ollamaURL turns OLLAMA_HOST into a base URL the way Ollama reads it:
// scheme http unless given, port 11434 unless given (80 or 443 when the
// scheme is), host 127.0.0.1 when empty.
func ollamaURL(host string) string {
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
