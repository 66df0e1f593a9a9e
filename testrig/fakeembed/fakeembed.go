// Package fakeembed is a fake remote embedding server for tests: it speaks
// OpenAI's POST /v1/embeddings or Ollama's POST /api/embed, records what it
// was sent and can be told how to answer. It imports nothing of silo, so the
// internal tests of any package, embed's included, can use it.
package fakeembed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Embedder makes the vectors the server answers with; embed.Embedder is
// one.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Request is a request the server was sent, and the status it answered.
type Request struct {
	Model      string   `json:"model"`
	Input      []string `json:"input"`
	Dimensions *int     `json:"dimensions"`
	Auth       string   `json:"-"` // the Authorization header
	Path       string   `json:"-"`
	Status     int      `json:"-"` // of the answer
}

// Server answers embedding requests at any path, which it records. It
// answers each request with its reply (see SetReply), or with one vector per
// input: its embedder's when set, else one whose first number is the
// input's "text-N" number.
type Server struct {
	*httptest.Server
	provider string
	dims     int

	mu       sync.Mutex
	requests []Request
	reply    func(n int, w http.ResponseWriter) bool
	embed    Embedder
	shuffle  bool
	vecLen   int
}

// New starts a server that speaks provider's protocol ("ollama", else
// OpenAI's) and answers with vectors of dims numbers; it stops when the
// test ends.
func New(t testing.TB, provider string, dims int) *Server {
	s := &Server{provider: provider, dims: dims}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Provider is the protocol the server speaks, as New was given it.
func (s *Server) Provider() string { return s.provider }

// SetReply makes reply answer each request first, given its number (from 0):
// when it returns true it has answered, else the server answers as usual.
func (s *Server) SetReply(reply func(n int, w http.ResponseWriter) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = reply
}

// SetEmbedder makes the server answer with e's vectors.
func (s *Server) SetEmbedder(e Embedder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embed = e
}

// SetShuffle makes the server list OpenAI's answers out of order (each
// with its index), as the API allows.
func (s *Server) SetShuffle(shuffle bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shuffle = shuffle
}

// SetVectorLen makes the server's own vectors n numbers long instead of
// dims, to answer with the wrong size.
func (s *Server) SetVectorLen(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vecLen = n
}

// Sent is the requests the server was sent, in order.
func (s *Server) Sent() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// statusWriter notes the status of the answer it writes.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) serve(rw http.ResponseWriter, r *http.Request) {
	var req Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Method != http.MethodPost {
		http.Error(rw, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	req.Auth, req.Path = r.Header.Get("Authorization"), r.URL.Path
	s.mu.Lock()
	n := len(s.requests)
	s.requests = append(s.requests, req)
	reply, embed, shuffle, vecLen := s.reply, s.embed, s.shuffle, s.vecLen
	s.mu.Unlock()
	// The status is noted before the answer ends, so before the client
	// has it.
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	defer func() {
		s.mu.Lock()
		s.requests[n].Status = w.status
		s.mu.Unlock()
	}()
	if reply != nil && reply(n, w) {
		return
	}
	if vecLen == 0 {
		vecLen = s.dims
	}
	var vecs [][]float32
	if embed != nil {
		var err error
		if vecs, err = embed.Embed(r.Context(), req.Input); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
	} else {
		vecs = make([][]float32, len(req.Input))
		for i, in := range req.Input {
			id, _ := strconv.Atoi(strings.TrimPrefix(in, "text-"))
			vecs[i] = make([]float32, vecLen)
			vecs[i][0] = float32(id)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if s.provider == "ollama" {
		_ = json.NewEncoder(w).Encode(map[string]any{"model": req.Model, "embeddings": vecs})
		return
	}
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	data := make([]item, len(vecs))
	for i, v := range vecs {
		data[i] = item{"embedding", i, v}
	}
	if shuffle {
		slices.Reverse(data)
		data[0], data[len(data)/2] = data[len(data)/2], data[0]
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": 1, "total_tokens": 1},
	})
}

// Status answers with code, a Retry-After header (unless "") and body.
func Status(code int, retryAfter, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// FailFirst is a reply (see SetReply) that answers the first len(fails)
// requests with them.
func FailFirst(fails ...func(w http.ResponseWriter)) func(int, http.ResponseWriter) bool {
	return func(n int, w http.ResponseWriter) bool {
		if n < len(fails) {
			fails[n](w)
			return true
		}
		return false
	}
}
