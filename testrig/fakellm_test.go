package testrig

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// postChat sends a chat request to the fake and returns the response.
func postChat(t *testing.T, url, body, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const openAIStreamBody = `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"hi"}]}]}`

// readSSE reads the data lines of an OpenAI stream: the content of each
// chunk, the finish reasons seen, whether [DONE] came and the read error.
func readSSE(t *testing.T, body io.Reader) (tokens []string, finish []string, done bool, err error) {
	t.Helper()
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var chunk struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		if chunk.Object != "chat.completion.chunk" {
			t.Errorf("object %q, want chat.completion.chunk", chunk.Object)
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != "" {
				tokens = append(tokens, c.Delta.Content)
			}
			if c.FinishReason != nil {
				finish = append(finish, *c.FinishReason)
			}
		}
	}
	return tokens, finish, done, sc.Err()
}

func TestFakeLLMOpenAIStream(t *testing.T) {
	f := NewFakeLLM(t)
	f.Reply(LLMReply{Tokens: Words("Paris is  the capital.")})
	resp := postChat(t, f.URL+"/chat/completions", openAIStreamBody, "sk-test")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q, want text/event-stream", ct)
	}
	tokens, finish, done, err := readSSE(t, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Paris", " is", "  the", " capital."}; !slices.Equal(tokens, want) {
		t.Errorf("got tokens %q, want %q", tokens, want)
	}
	if !slices.Equal(finish, []string{"stop"}) || !done {
		t.Errorf("got finish reasons %q and [DONE] %v, want [stop] and true", finish, done)
	}
	reqs := f.Requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.API != "openai" || r.Model != "m" || !r.Stream || r.Authorization != "Bearer sk-test" ||
		len(r.Messages) != 2 || r.Messages[0].Content != "sys" || r.Messages[1].Role != "user" || r.Messages[1].Content != "hi" {
		t.Errorf("recorded %+v", r)
	}
}

func TestFakeLLMOpenAICompletion(t *testing.T) {
	f := NewFakeLLM(t)
	f.ReplyFunc(func(r LLMRequest) LLMReply {
		return LLMReply{Tokens: []string{"echo: ", r.Messages[len(r.Messages)-1].Content}}
	})
	resp := postChat(t, f.URL+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hello"}]}`, "")
	var out struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Object != "chat.completion" || len(out.Choices) != 1 || out.Choices[0].Message.Content != "echo: hello" || out.Choices[0].FinishReason != "stop" {
		t.Errorf("got %+v, want one choice echo: hello, stop", out)
	}
}

func TestFakeLLMErrors(t *testing.T) {
	f := NewFakeLLM(t)
	for _, tc := range []struct {
		reply      LLMReply
		status     int
		retryAfter string
		message    string
	}{
		{LLMReply{Status: 401}, 401, "", "Incorrect API key provided: sk-secret."},
		{LLMReply{Status: 429, RetryAfter: 1500 * time.Millisecond}, 429, "2", "Rate limit reached"},
		{LLMReply{Status: 429}, 429, "0", "Rate limit reached"},
		{LLMReply{Status: 429, NoRetryAfter: true}, 429, "", "Rate limit reached"},
		{LLMReply{Status: 500}, 500, "", "The server had an error"},
	} {
		f.Reply(tc.reply)
		resp := postChat(t, f.URL+"/chat/completions", openAIStreamBody, "sk-secret")
		var body struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retryAfter || !strings.HasPrefix(body.Error.Message, tc.message) {
			t.Errorf("got %d, Retry-After %q, %q; want %d, %q, %q…", resp.StatusCode, resp.Header.Get("Retry-After"), body.Error.Message, tc.status, tc.retryAfter, tc.message)
		}
	}
}

func TestFakeLLMRequireKey(t *testing.T) {
	f := NewFakeLLM(t)
	f.RequireKey("sk-good")
	if resp := postChat(t, f.URL+"/chat/completions", openAIStreamBody, "sk-bad"); resp.StatusCode != 401 {
		t.Errorf("wrong key: got %d, want 401", resp.StatusCode)
	}
	if resp := postChat(t, f.URL+"/chat/completions", openAIStreamBody, "sk-good"); resp.StatusCode != 200 {
		t.Errorf("right key: got %d, want 200", resp.StatusCode)
	}
}

func TestFakeLLMCut(t *testing.T) {
	f := NewFakeLLM(t)
	f.Reply(LLMReply{Tokens: Words("one two three four"), Cut: CutEnd, CutAfter: 2})
	tokens, finish, done, err := readSSE(t, postChat(t, f.URL+"/chat/completions", openAIStreamBody, "").Body)
	if err != nil || !slices.Equal(tokens, []string{"one", " two"}) || len(finish) != 0 || done {
		t.Errorf("CutEnd: got %q, finish %q, [DONE] %v, error %v; want 2 tokens, no finish, no [DONE], no error", tokens, finish, done, err)
	}
	f.Reply(LLMReply{Tokens: Words("one two three four"), Cut: CutDrop, CutAfter: 3})
	tokens, finish, done, err = readSSE(t, postChat(t, f.URL+"/chat/completions", openAIStreamBody, "").Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(tokens) != 3 || len(finish) != 0 || done {
		t.Errorf("CutDrop: got %q, finish %q, [DONE] %v, error %v; want 3 tokens and unexpected EOF", tokens, finish, done, err)
	}
}

func TestFakeLLMDelays(t *testing.T) {
	f := NewFakeLLM(t)
	f.Reply(LLMReply{Tokens: Words("a b c"), FirstByteDelay: 50 * time.Millisecond, TokenDelay: 20 * time.Millisecond})
	start := time.Now()
	resp := postChat(t, f.URL+"/chat/completions", openAIStreamBody, "")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("first byte after %s, want ≥ 50ms", d)
	}
	if _, _, _, err := readSSE(t, resp.Body); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 110*time.Millisecond {
		t.Errorf("answer took %s, want ≥ 110ms", d)
	}
}

func TestFakeLLMOllama(t *testing.T) {
	f := NewFakeLLM(t)
	f.Reply(LLMReply{Tokens: Words("x y z")})
	// Ollama streams when "stream" is absent.
	resp := postChat(t, f.OllamaURL+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"q"}]}`, "")
	var got []string
	var done bool
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var line struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			Done bool `json:"done"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, line.Message.Content)
		done = line.Done
	}
	if want := []string{"x", " y", " z", ""}; !slices.Equal(got, want) || !done {
		t.Errorf("got %q, done %v; want %q, done", got, done, want)
	}
	resp = postChat(t, f.OllamaURL+"/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"q"}]}`, "")
	var one struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		Done bool `json:"done"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&one); err != nil || one.Message.Content != "x y z" || !one.Done {
		t.Errorf("not streamed: got %+v, %v; want x y z, done", one, err)
	}
	if r := f.Requests(); len(r) != 2 || r[0].API != "ollama" || !r[0].Stream || r[1].Stream || r[0].Messages[0].Content != "q" {
		t.Errorf("recorded %+v", r)
	}
}

// BenchmarkFakeLLM measures one instant streamed answer.
func BenchmarkFakeLLM(b *testing.B) {
	f := NewFakeLLM(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, f.URL+"/chat/completions", strings.NewReader(openAIStreamBody))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
