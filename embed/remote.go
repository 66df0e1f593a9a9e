package embed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

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

// jsonPoster sends JSON requests to one embedding server with the retry
// policy, and turns error answers into EmbeddingErrors.
type jsonPoster struct {
	provider string
	url      string
	apiKey   string // sent as a Bearer token when set; never logged
	client   *http.Client
	retry    RetryPolicy
}

// post sends body and decodes a 200 answer into out. It retries rate limits,
// server errors and network failures, and gives up at once on other answers
// and when ctx ends.
func (p *jsonPoster) post(ctx context.Context, body []byte, out any) error {
	var last error
	attempts := max(p.retry.Attempts, 1)
	for n := 0; n < attempts; n++ {
		if n > 0 {
			retryAfter := time.Duration(-1)
			var ee *EmbeddingError
			if errors.As(last, &ee) {
				retryAfter = ee.retryAfter
			}
			if err := p.retry.Sleep(ctx, p.retry.Backoff(n-1, retryAfter)); err != nil {
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
		return fmt.Errorf("%s embeddings: %w", p.provider, RedactErr(p.apiKey, err))
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
			Message:    Redact(p.apiKey, serverMessage(data)),
			retryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
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
