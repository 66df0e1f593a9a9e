// Tests of embedding at ingestion: a remote (OpenAI-compatible) embedder,
// re-embedding a tenant database for another model, and SQLite vectors
// stored before the sparse format.

package ingest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"silo/embed"
	"silo/models"
	"silo/schema"
	"silo/search"
	"silo/store"
)

// maxBatchTexts is the most texts the OpenAI and Ollama embedders send in
// one request (see embed/remote.go).
const maxBatchTexts = 64

// fakeEmbedServer speaks OpenAI's POST /v1/embeddings (at any path, which it
// records). It answers each request with reply (by request number, from 0),
// or with embed's vector for each input. It records what it was sent and
// the status it answered.
type fakeEmbedServer struct {
	*httptest.Server

	mu       sync.Mutex
	requests []fakeRequest
	reply    func(n int, w http.ResponseWriter) bool // true: answered
	embed    embed.Embedder
}

type fakeRequest struct {
	Model      string   `json:"model"`
	Input      []string `json:"input"`
	Dimensions *int     `json:"dimensions"`
	Auth       string   `json:"-"`
	Path       string   `json:"-"`
	Status     int      `json:"-"` // of the answer
}

func newFakeEmbedServer(t *testing.T) *fakeEmbedServer {
	f := &fakeEmbedServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
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

func (f *fakeEmbedServer) serve(rw http.ResponseWriter, r *http.Request) {
	var req fakeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Method != http.MethodPost {
		http.Error(rw, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	req.Auth, req.Path = r.Header.Get("Authorization"), r.URL.Path
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, req)
	reply, e := f.reply, f.embed
	f.mu.Unlock()
	// The status is noted before the answer ends, so before the client
	// has it.
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	defer func() {
		f.mu.Lock()
		f.requests[n].Status = w.status
		f.mu.Unlock()
	}()
	if reply != nil && reply(n, w) {
		return
	}
	vecs, err := e.Embed(r.Context(), req.Input)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
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
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": 1, "total_tokens": 1},
	})
}

func (f *fakeEmbedServer) sent() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// status answers with code, a Retry-After header (unless "") and body.
func status(code int, retryAfter, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// failFirst answers the first len(fails) requests with them.
func failFirst(fails ...func(w http.ResponseWriter)) func(int, http.ResponseWriter) bool {
	return func(n int, w http.ResponseWriter) bool {
		if n < len(fails) {
			fails[n](w)
			return true
		}
		return false
	}
}

// Ingesting with an OpenAI-compatible embedder sends the chunks in batches
// of at most 64, retries a rate limit, records the model in the tenant
// database and stores the server's vectors (zero-padded to 2000 numbers on
// PostgreSQL).
func TestIngestOpenAIEmbedder(t *testing.T) {
	forEachTenantEngine(t, func(t *testing.T, engine string) {
		r := newIngestRig(t, engine)
		ctx := context.Background()
		fake := newFakeEmbedServer(t)
		fake.embed = embed.NewHash(1536) // each text its own vector
		fake.reply = failFirst(status(http.StatusTooManyRequests, "0", `{"error":{"message":"Rate limit reached for text-embedding-3-small on requests per min (RPM): Limit 3000, Used 3000, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`))
		in := r.ingester(t, embed.NewOpenAIEmbedder(fake.URL, "key", "text-embedding-3-small", 1536, nil))
		doc := r.queue(t, "european-union-law.pdf", squadPDF(t, "european-union-law.pdf"))
		got := r.runUntilDone(t, in, 2*time.Minute, doc)[0]
		if got.Status != models.DocumentReady || got.Attempts != 1 {
			t.Fatalf("got status %s (%q) at attempt %d, want ready at the first: the embedder retries the 429 itself", got.Status, got.Error, got.Attempts)
		}
		r.wantIndexed(t, got)
		chunks := r.storedChunks(t, doc.PublicID)
		if len(chunks) <= maxBatchTexts {
			t.Fatalf("got %d chunks; the test needs more than %d to see batches", len(chunks), maxBatchTexts)
		}

		reqs := fake.sent()
		if len(reqs) < 3 || reqs[0].Status != http.StatusTooManyRequests {
			t.Fatalf("got %d requests, want a 429 and then at least two batches", len(reqs))
		}
		if strings.Join(reqs[1].Input, "\x00") != strings.Join(reqs[0].Input, "\x00") {
			t.Errorf("the request after the 429 sent other texts (%d) than the refused one (%d), want it retried", len(reqs[1].Input), len(reqs[0].Input))
		}
		var sent []string
		for i, req := range reqs {
			dims := 0 // none sent
			if req.Dimensions != nil {
				dims = *req.Dimensions
			}
			if req.Path != "/embeddings" || req.Model != "text-embedding-3-small" || dims != 1536 || req.Auth != "Bearer key" {
				t.Errorf("request %d: got path %q, model %q, dimensions %d, Authorization %q; want /embeddings, text-embedding-3-small, 1536, Bearer key",
					i, req.Path, req.Model, dims, req.Auth)
			}
			if len(req.Input) == 0 || len(req.Input) > maxBatchTexts {
				t.Errorf("request %d: got %d inputs, want 1 to %d", i, len(req.Input), maxBatchTexts)
			}
			if req.Status == http.StatusOK {
				sent = append(sent, req.Input...)
			}
		}
		if len(sent) != len(chunks) {
			t.Fatalf("the answered requests carried %d texts, want the %d chunks once each", len(sent), len(chunks))
		}
		want := make([][]float32, len(chunks))
		for i, ch := range chunks {
			if sent[i] != ch.Text {
				t.Fatalf("text %d sent: got %.60q, want chunk %d, %.60q", i, sent[i], ch.Position, ch.Text)
			}
			v, err := fake.embed.Embed(ctx, []string{ch.Text})
			if err != nil {
				t.Fatal(err)
			}
			want[i] = v[0]
		}
		r.wantVectors(t, chunks, want)

		if model, dims := r.meta(t); model != "openai:text-embedding-3-small@1536" || dims != "1536" {
			t.Errorf("tenant meta: got model %q, dimensions %q; want openai:text-embedding-3-small@1536, 1536", model, dims)
		}
		if engine == "postgres" {
			var wrong int
			err := r.tenantDB(t).NewRaw("SELECT count(*) FROM chunks WHERE document_id = ? AND vector_dims(embedding) <> ?", doc.PublicID, schema.VectorDims).Scan(ctx, &wrong)
			if err != nil {
				t.Fatal(err)
			}
			if wrong != 0 {
				t.Errorf("%d chunks have vectors that are not %d wide", wrong, schema.VectorDims)
			}
		}
	})
}

// When the configured embedder changes, ReembedAll gives every chunk of
// every document a vector of the new model and records it: a tenant
// database never mixes two models' vectors.
func TestIngestReembedAll(t *testing.T) {
	forEachTenantEngine(t, func(t *testing.T, engine string) {
		r := newIngestRig(t, engine)
		ctx := context.Background()
		old := embed.NewHash(0)
		docs := []*models.Document{
			r.queue(t, "warsaw.pdf", squadPDF(t, "warsaw.pdf")),
			r.queue(t, "pdflatex-4-pages.pdf", sampleFile(t, "pdflatex-4-pages.pdf")),
		}
		for _, d := range r.runUntilDone(t, r.ingester(t, old), 2*time.Minute, docs...) {
			if d.Status != models.DocumentReady {
				t.Fatalf("%s: got status %s (%q), want ready", d.FileName, d.Status, d.Error)
			}
		}
		if model, dims := r.meta(t); model != old.Model() || dims != strconv.Itoa(old.Dims()) {
			t.Fatalf("tenant meta: got %q, %q; want %q, %d", model, dims, old.Model(), old.Dims())
		}
		before := map[string]int{}
		for _, d := range docs {
			chunks := r.storedChunks(t, d.PublicID)
			before[d.PublicID] = len(chunks)
			if len(chunks) == 0 || len(chunks[0].Vector) != schema.VectorDims {
				t.Fatalf("%s: got %d chunks, the first %d wide; want chunks of %d", d.FileName, len(chunks), len(chunks[0].Vector), schema.VectorDims)
			}
		}

		next := embed.NewHash(1000)
		if err := r.ingester(t, next).ReembedAll(ctx); err != nil {
			t.Fatalf("ReembedAll: %v", err)
		}
		if model, dims := r.meta(t); model != "silo-hash-v1-1000" || dims != "1000" {
			t.Errorf("tenant meta: got %q, %q; want silo-hash-v1-1000, 1000", model, dims)
		}
		for _, d := range docs {
			chunks := r.storedChunks(t, d.PublicID)
			if len(chunks) != before[d.PublicID] {
				t.Errorf("%s: got %d chunks, want the %d there were", d.FileName, len(chunks), before[d.PublicID])
			}
			texts := make([]string, len(chunks))
			for i, ch := range chunks {
				texts[i] = ch.Text
			}
			want, err := embed.Document(ctx, next, texts)
			if err != nil {
				t.Fatal(err)
			}
			r.wantVectors(t, chunks, want)
		}

		// Nothing left to do: a second run changes nothing.
		if err := r.ingester(t, next).ReembedAll(ctx); err != nil {
			t.Fatalf("ReembedAll again: %v", err)
		}
		if model, _ := r.meta(t); model != "silo-hash-v1-1000" {
			t.Errorf("tenant meta after a second run: got %q", model)
		}
	})
}

// A SQLite tenant database keeps vectors written before the sparse format
// (dense float32 blobs) searchable with the same scores as new ones.
func TestIngestOldDenseVectorsStillSearch(t *testing.T) {
	r := newIngestRig(t, "sqlite")
	ctx := context.Background()
	doc := r.queue(t, "pdflatex-4-pages.pdf", sampleFile(t, "pdflatex-4-pages.pdf"))
	embedder := embed.NewHash(0)
	if d := r.runUntilDone(t, r.ingester(t, embedder), time.Minute, doc)[0]; d.Status != models.DocumentReady {
		t.Fatalf("got status %s (%q), want ready", d.Status, d.Error)
	}
	db := r.tenantDB(t)
	content := store.New(db)
	searcher := &search.Searcher{Embedder: embedder}
	vectorSearch := func() []search.Result {
		t.Helper()
		res, err := searcher.Search(ctx, content, doc.PublicID, "the results of the experiment", search.ModeVector, 5)
		if err != nil || len(res) == 0 {
			t.Fatalf("Search: got %d results, %v", len(res), err)
		}
		return res
	}
	want := vectorSearch()

	var sparse int
	if err := db.NewRaw("SELECT count(*) FROM chunks WHERE document_id = ? AND substr(embedding, 1, 1) = ?", doc.PublicID, []byte{vectorSparse}).Scan(ctx, &sparse); err != nil || sparse == 0 {
		t.Fatalf("got %d sparse vector blobs (%v), want the hash embedder's vectors sparse", sparse, err)
	}
	for _, ch := range r.storedChunks(t, doc.PublicID) {
		old := make([]byte, 4*len(ch.Vector))
		for i, f := range ch.Vector {
			binary.LittleEndian.PutUint32(old[4*i:], math.Float32bits(f))
		}
		if _, err := db.ExecContext(ctx, "UPDATE chunks SET embedding = ? WHERE document_id = ? AND position = ?", old, doc.PublicID, ch.Position); err != nil {
			t.Fatal(err)
		}
	}
	if got := vectorSearch(); !slices.Equal(got, want) {
		t.Errorf("search over the old dense blobs: got %+v, want %+v", got, want)
	}
}
