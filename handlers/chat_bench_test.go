package handlers_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"silo/testrig"
)

// firstToken posts one API chat and returns how long the stream took to
// open (the response headers) and to bring the first token event.
func firstToken(ctx context.Context, client *http.Client, url, token, body string) (open, first time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("chat: got status %d, want 200", resp.StatusCode)
	}
	open = time.Since(start)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "event: token" {
			first = time.Since(start)
			break
		}
	}
	for sc.Scan() { // read to the end, as a client does
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if first == 0 {
		return 0, 0, errors.New("chat: the stream ended without a token")
	}
	return open, first, nil
}

// percentile is the p-th percentile of ds (sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	return ds[int(p*float64(len(ds)-1))]
}

// BenchmarkChatFirstByte measures silo's own overhead on a chat: from the
// request to the stream's headers and to its first token, with a model
// that answers at once, alone and under 50 concurrent chats. The chats go
// through the API's SSE endpoint, with hybrid search on a real document.
func BenchmarkChatFirstByte(b *testing.B) {
	fake := testrig.NewFakeLLM(b)
	srv, a, id := llmServer(b, fake, nil)
	url := srv.URL + "/api/v1/documents/" + id + "/chat"
	body := chatBody(chatQuestion)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	ctx := context.Background()

	for _, concurrency := range []int{1, 50} {
		b.Run(map[int]string{1: "alone", 50: "50-concurrent"}[concurrency], func(b *testing.B) {
			var mu sync.Mutex
			var opens, firsts []time.Duration
			var wg sync.WaitGroup
			work := make(chan struct{})
			errs := make(chan error, concurrency)
			for range concurrency {
				wg.Go(func() {
					for range work {
						open, first, err := firstToken(ctx, client, url, a.token, body)
						if err != nil {
							select {
							case errs <- err:
							default:
							}
							continue
						}
						mu.Lock()
						opens, firsts = append(opens, open), append(firsts, first)
						mu.Unlock()
					}
				})
			}
			b.ResetTimer()
			for range max(b.N, 4*concurrency) {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.StopTimer()
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
			b.ReportMetric(float64(percentile(opens, .5).Microseconds())/1000, "open-p50-ms")
			b.ReportMetric(float64(percentile(opens, .95).Microseconds())/1000, "open-p95-ms")
			b.ReportMetric(float64(percentile(firsts, .5).Microseconds())/1000, "first-token-p50-ms")
			b.ReportMetric(float64(percentile(firsts, .95).Microseconds())/1000, "first-token-p95-ms")
		})
	}
}
