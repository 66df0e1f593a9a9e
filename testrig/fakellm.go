package testrig

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"silo/answer"
)

// FakeLLM is a chat model server for tests. It speaks OpenAI's chat
// completions protocol (POST /v1/chat/completions, streamed as server-sent
// events or answered in one JSON) and Ollama's (POST /api/chat, streamed as
// NDJSON), with the same field names, status codes and error bodies as the
// real servers, so real client code runs against it. What it answers is set
// per test with Reply or ReplyFunc; every request is recorded (Requests).
//
// The fake costs little: with no delays set it answers as fast as the
// client reads, so a benchmark can run many chats at once against it.
type FakeLLM struct {
	// URL is the OpenAI-compatible base URL to give a client (as
	// OPENAI_BASE_URL), ending in /v1.
	URL string
	// OllamaURL is the server to give an Ollama client (as OLLAMA_HOST).
	OllamaURL string

	srv *httptest.Server

	mu       sync.Mutex
	reply    func(LLMRequest) LLMReply
	key      string
	requests []LLMRequest
	seq      int
}

// LLMRequest is a request the fake received.
type LLMRequest struct {
	API           string           // "openai" or "ollama"
	Model         string           // the model asked for
	Stream        bool             // whether the answer was asked for as a stream
	Messages      []answer.Message // the prompt, roles "system", "user", "assistant"
	Authorization string           // the Authorization header
}

// LLMReply is how the fake answers one request. The zero value answers
// DefaultTokens at once.
type LLMReply struct {
	// Tokens are the answer, streamed one per event (or joined when not
	// streaming). nil means DefaultTokens; use Words to cut a text.
	Tokens []string
	// Status, when not 0 or 200, fails the request with that status and the
	// server's error body: 401 and 403 as a refused key, 429 as a rate
	// limit (with a Retry-After header unless NoRetryAfter), anything else
	// as a server error.
	Status int
	// RetryAfter is the Retry-After of a 429, in whole seconds rounded up;
	// 0 sends "Retry-After: 0".
	RetryAfter time.Duration
	// NoRetryAfter sends a 429 without Retry-After, as some servers do, so
	// the client has to choose its own wait.
	NoRetryAfter bool
	// FirstByteDelay is waited before anything is sent, status included.
	FirstByteDelay time.Duration
	// TokenDelay is waited before each token.
	TokenDelay time.Duration
	// Cut, when not NoCut, stops the answer after CutAfter tokens.
	Cut      StreamCut
	CutAfter int
}

// StreamCut is how an answer is cut short.
type StreamCut int

// Ways of cutting an answer short.
const (
	NoCut StreamCut = iota
	// CutEnd ends the response cleanly after CutAfter tokens, without the
	// finish reason and [DONE] of OpenAI or the "done":true of Ollama: the
	// client reads a clean end of stream. A non-streamed answer is cut in
	// the middle of its JSON.
	CutEnd
	// CutDrop closes the connection under the response after CutAfter
	// tokens, in the middle of the chunked body: the client reads an
	// unexpected EOF.
	CutDrop
)

// DefaultTokens is the answer of a fake that was told nothing.
var DefaultTokens = []string{"The", " answer", " is", " on", " page", " 1", " [p. 1]."}

// maxRecorded bounds the requests kept, so a long benchmark does not
// accumulate prompts.
const maxRecorded = 1000

// NewFakeLLM starts a fake chat model server that answers DefaultTokens to
// every request and accepts any API key. It stops when the test ends.
func NewFakeLLM(t testing.TB) *FakeLLM {
	t.Helper()
	f := &FakeLLM{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", f.serveOpenAI)
	mux.HandleFunc("POST /api/chat", f.serveOllama)
	f.srv = httptest.NewServer(mux)
	f.URL = f.srv.URL + "/v1"
	f.OllamaURL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// Close stops the server at once; a client then gets connection refused.
// Calling it again does nothing.
func (f *FakeLLM) Close() { f.srv.Close() }

// Reply makes the fake answer every request with r.
func (f *FakeLLM) Reply(r LLMReply) {
	f.ReplyFunc(func(LLMRequest) LLMReply { return r })
}

// ReplyFunc makes the fake answer each request with fn's reply to it. fn may
// be called from several goroutines at once.
func (f *FakeLLM) ReplyFunc(fn func(LLMRequest) LLMReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply = fn
}

// RequireKey makes the fake refuse (401) a request whose bearer token is not
// key, quoting the token it got in the error message as some servers do, so
// tests can check a key never leaks further. "" accepts any request.
func (f *FakeLLM) RequireKey(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key = key
}

// Requests returns the requests received so far, oldest first (the last
// 1,000 at most).
func (f *FakeLLM) Requests() []LLMRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LLMRequest(nil), f.requests...)
}

// Words cuts text into word-sized tokens the way models stream them, each
// word with the spaces before it: "a b" gives "a", " b".
func Words(text string) []string {
	var out []string
	start := 0
	for i := 1; i < len(text); i++ {
		if text[i] == ' ' && text[i-1] != ' ' {
			out = append(out, text[start:i])
			start = i
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// begin records req and decides its reply; a missing or wrong key gives
// a 401 when a key is required.
func (f *FakeLLM) begin(req LLMRequest) (LLMReply, int) {
	f.mu.Lock()
	f.seq++
	seq := f.seq
	if len(f.requests) == maxRecorded {
		f.requests = append(f.requests[:0], f.requests[1:]...)
	}
	f.requests = append(f.requests, req)
	reply, key := f.reply, f.key
	f.mu.Unlock()
	var r LLMReply
	if reply != nil {
		r = reply(req)
	}
	if key != "" && req.Authorization != "Bearer "+key {
		r.Status = http.StatusUnauthorized
	}
	if r.Tokens == nil {
		r.Tokens = DefaultTokens
	}
	return r, seq
}

// wait sleeps d, or less when the client goes away; false then.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// setRetryAfter sets the Retry-After header of reply's 429, unless it has
// none.
func setRetryAfter(w http.ResponseWriter, reply LLMReply) {
	if !reply.NoRetryAfter {
		w.Header().Set("Retry-After", strconv.Itoa(int((reply.RetryAfter+time.Second-1)/time.Second)))
	}
}

// drop closes the connection under w without ending the response.
func drop(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
}

// openAIChat is the part of an OpenAI chat completions request the fake reads.
type openAIChat struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// textOf reads a message's content: a string, or an array of parts whose
// texts are joined.
func textOf(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(raw, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

func (f *FakeLLM) serveOpenAI(w http.ResponseWriter, r *http.Request) {
	var in openAIChat
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		openAIError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "")
		return
	}
	req := LLMRequest{API: "openai", Model: in.Model, Stream: in.Stream, Authorization: r.Header.Get("Authorization")}
	for _, m := range in.Messages {
		req.Messages = append(req.Messages, answer.Message{Role: m.Role, Content: textOf(m.Content)})
	}
	reply, seq := f.begin(req)
	if !wait(r, reply.FirstByteDelay) {
		return
	}
	switch reply.Status {
	case 0, http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		openAIError(w, reply.Status, "Incorrect API key provided: "+strings.TrimPrefix(req.Authorization, "Bearer ")+".", "invalid_request_error", "invalid_api_key")
		return
	case http.StatusTooManyRequests:
		setRetryAfter(w, reply)
		openAIError(w, reply.Status, "Rate limit reached for "+in.Model+" on requests per min (RPM): Limit 3, Used 3, Requested 1.", "requests", "rate_limit_exceeded")
		return
	default:
		openAIError(w, reply.Status, "The server had an error while processing your request. Sorry about that!", "server_error", "")
		return
	}
	id := "chatcmpl-fake" + strconv.Itoa(seq)
	tokens, cut := reply.Tokens, reply.Cut != NoCut
	if cut {
		tokens = tokens[:min(max(reply.CutAfter, 0), len(tokens))]
	}
	if !in.Stream {
		for range tokens {
			if !wait(r, reply.TokenDelay) {
				return
			}
		}
		body, _ := json.Marshal(map[string]any{
			"id": id, "object": "chat.completion", "created": time.Now().Unix(), "model": in.Model,
			"choices": []any{map[string]any{
				"index":         0,
				"message":       map[string]any{"role": "assistant", "content": strings.Join(tokens, "")},
				"logprobs":      nil,
				"finish_reason": "stop",
			}},
			"usage": map[string]int{"prompt_tokens": 10, "completion_tokens": len(tokens), "total_tokens": 10 + len(tokens)},
		})
		w.Header().Set("Content-Type", "application/json")
		if cut {
			_, _ = w.Write(body[:len(body)/2])
			if reply.Cut == CutDrop {
				drop(w)
			}
			return
		}
		_, _ = w.Write(body)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	created := strconv.FormatInt(time.Now().Unix(), 10)
	head := `{"id":"` + id + `","object":"chat.completion.chunk","created":` + created + `,"model":` + quote(in.Model) + `,"system_fingerprint":null,"choices":[`
	send := func(choice string) bool {
		_, err := fmt.Fprintf(w, "data: %s%s]}\n\n", head, choice)
		return err == nil && rc.Flush() == nil
	}
	if !send(`{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}`) {
		return
	}
	for _, tok := range tokens {
		if !wait(r, reply.TokenDelay) || !send(`{"index":0,"delta":{"content":`+quote(tok)+`},"logprobs":null,"finish_reason":null}`) {
			return
		}
	}
	if cut {
		if reply.Cut == CutDrop {
			drop(w)
		}
		return
	}
	send(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`)
	if in.StreamOptions != nil && in.StreamOptions.IncludeUsage {
		fmt.Fprintf(w, "data: %s],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", head, len(tokens), 10+len(tokens))
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// openAIError writes OpenAI's error body.
func openAIError(w http.ResponseWriter, status int, msg, typ, code string) {
	e := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
	if code != "" {
		e["code"] = code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// ollamaChat is the part of an Ollama chat request the fake reads.
type ollamaChat struct {
	Model    string           `json:"model"`
	Stream   *bool            `json:"stream"`
	Messages []answer.Message `json:"messages"`
}

func (f *FakeLLM) serveOllama(w http.ResponseWriter, r *http.Request) {
	var in ollamaChat
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		ollamaError(w, http.StatusBadRequest, "invalid JSON body")
		return
	}
	stream := in.Stream == nil || *in.Stream // Ollama streams unless told not to
	req := LLMRequest{API: "ollama", Model: in.Model, Stream: stream, Messages: in.Messages, Authorization: r.Header.Get("Authorization")}
	reply, _ := f.begin(req)
	if !wait(r, reply.FirstByteDelay) {
		return
	}
	switch reply.Status {
	case 0, http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		ollamaError(w, reply.Status, "unauthorized")
		return
	case http.StatusTooManyRequests:
		setRetryAfter(w, reply)
		ollamaError(w, reply.Status, "server busy, please try again. maximum pending requests exceeded")
		return
	default:
		ollamaError(w, reply.Status, "llama runner process has terminated: exit status 2")
		return
	}
	tokens, cut := reply.Tokens, reply.Cut != NoCut
	if cut {
		tokens = tokens[:min(max(reply.CutAfter, 0), len(tokens))]
	}
	created := quote(time.Now().UTC().Format(time.RFC3339Nano))
	head := `{"model":` + quote(in.Model) + `,"created_at":` + created + `,"message":{"role":"assistant","content":`
	final := `,"done_reason":"stop","done":true,"total_duration":1000,"load_duration":10,"prompt_eval_count":10,"prompt_eval_duration":100,"eval_count":` + strconv.Itoa(len(tokens)) + `,"eval_duration":100}` + "\n"
	if !stream {
		for range tokens {
			if !wait(r, reply.TokenDelay) {
				return
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		body := head + quote(strings.Join(tokens, "")) + "}" + final
		if cut {
			_, _ = w.Write([]byte(body[:len(body)/2]))
			if reply.Cut == CutDrop {
				drop(w)
			}
			return
		}
		_, _ = w.Write([]byte(body))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	for _, tok := range tokens {
		if !wait(r, reply.TokenDelay) {
			return
		}
		if _, err := fmt.Fprintf(w, "%s%s},\"done\":false}\n", head, quote(tok)); err != nil || rc.Flush() != nil {
			return
		}
	}
	if cut {
		if reply.Cut == CutDrop {
			drop(w)
		}
		return
	}
	fmt.Fprintf(w, "%s\"\"}%s", head, final)
}

// ollamaError writes Ollama's error body.
func ollamaError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
