package embed

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy bounds the attempts at one request to a model server and the
// waits between them; the embedding and the chat clients retry by one.
type RetryPolicy struct {
	Attempts int           // in all, the first included
	Base     time.Duration // wait before the first retry, doubled each time
	Max      time.Duration // cap of a wait, Retry-After included
	// Sleep waits for d or until ctx ends (the function Sleep); tests
	// replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// defaultRetryPolicy is the embedding clients'.
var defaultRetryPolicy = RetryPolicy{Attempts: 5, Base: 500 * time.Millisecond, Max: 30 * time.Second, Sleep: Sleep}

// Sleep waits for d, or until ctx ends and then returns its error.
func Sleep(ctx context.Context, d time.Duration) error {
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

// Backoff is the wait before retry n (0-based): what the server asked for
// in Retry-After (retryAfter ≥ 0), else exponential with jitter over its
// upper half. Both are capped at p.Max.
func (p RetryPolicy) Backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter >= 0 {
		return min(retryAfter, p.Max)
	}
	ceiling := p.Max
	if n < 30 && p.Base<<n < p.Max {
		ceiling = p.Base << n
	}
	if ceiling <= 0 {
		return 0
	}
	half := ceiling / 2
	return half + rand.N(ceiling-half+1)
}

// ParseRetryAfter reads a Retry-After header, seconds or an HTTP date; -1
// when there is none.
func ParseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if s, err := strconv.Atoi(h); err == nil {
		return time.Duration(min(max(s, 0), 86400)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// Redact removes an API key from a text that came back from a server or
// the network (a 401 may quote the key it refused).
func Redact(key, s string) string {
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

// RedactErr returns err with key taken out of its text.
func RedactErr(key string, err error) error {
	if key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	return &redactedError{msg: Redact(key, err.Error()), err: err}
}
