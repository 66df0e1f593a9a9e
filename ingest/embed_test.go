// Tests of embedding at ingestion: a remote (OpenAI-compatible) embedder,
// re-embedding a tenant database for another model, and SQLite vectors
// stored before the sparse format.

package ingest

import (
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"silo/embed"
	"silo/models"
	"silo/schema"
	"silo/search"
	"silo/store"
	"silo/testrig/fakeembed"
	"silo/testrig/tenantdata"
)

// maxBatchTexts is the most texts the OpenAI and Ollama embedders send in
// one request (see embed/remote.go).
const maxBatchTexts = 64

// Ingesting with an OpenAI-compatible embedder sends the chunks in batches
// of at most 64, retries a rate limit, records the model in the tenant
// database and stores the server's vectors (zero-padded to 2000 numbers on
// PostgreSQL).
func TestIngestOpenAIEmbedder(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		r := newIngestRig(t, engine)
		ctx := context.Background()
		fake := fakeembed.New(t, "openai", 0)
		hash := embed.NewHash(1536) // each text its own vector
		fake.SetEmbedder(hash)
		fake.SetReply(fakeembed.FailFirst(fakeembed.Status(http.StatusTooManyRequests, "0", `{"error":{"message":"Rate limit reached for text-embedding-3-small on requests per min (RPM): Limit 3000, Used 3000, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)))
		in := r.ingester(t, embed.NewOpenAIEmbedder(fake.URL, "key", "text-embedding-3-small", 1536, nil))
		doc := r.queue(t, "european-union-law.pdf", squadPDF(t, "european-union-law.pdf"))
		got := r.runUntilDone(t, in, 2*time.Minute, doc)[0]
		if got.Status != models.DocumentReady || got.Attempts != 1 {
			t.Fatalf("got status %s (%q) at attempt %d, want ready at the first: the embedder retries the 429 itself", got.Status, got.Error, got.Attempts)
		}
		r.wantIndexed(t, got)
		chunks := tenantdata.Chunks(t, r.tenantDB(t), doc.PublicID)
		if len(chunks) <= maxBatchTexts {
			t.Fatalf("got %d chunks; the test needs more than %d to see batches", len(chunks), maxBatchTexts)
		}

		reqs := fake.Sent()
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
			v, err := hash.Embed(ctx, []string{ch.Text})
			if err != nil {
				t.Fatal(err)
			}
			want[i] = v[0]
		}
		tenantdata.WantVectors(t, r.engine, chunks, want)

		if model, dims := tenantdata.Meta(t, r.tenantDB(t)); model != "openai:text-embedding-3-small@1536" || dims != "1536" {
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
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
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
		if model, dims := tenantdata.Meta(t, r.tenantDB(t)); model != old.Model() || dims != strconv.Itoa(old.Dims()) {
			t.Fatalf("tenant meta: got %q, %q; want %q, %d", model, dims, old.Model(), old.Dims())
		}
		before := map[string]int{}
		for _, d := range docs {
			chunks := tenantdata.Chunks(t, r.tenantDB(t), d.PublicID)
			before[d.PublicID] = len(chunks)
			if len(chunks) == 0 || len(chunks[0].Vector) != schema.VectorDims {
				t.Fatalf("%s: got %d chunks, the first %d wide; want chunks of %d", d.FileName, len(chunks), len(chunks[0].Vector), schema.VectorDims)
			}
		}

		next := embed.NewHash(1000)
		if err := r.ingester(t, next).ReembedAll(ctx); err != nil {
			t.Fatalf("ReembedAll: %v", err)
		}
		if model, dims := tenantdata.Meta(t, r.tenantDB(t)); model != "silo-hash-v1-1000" || dims != "1000" {
			t.Errorf("tenant meta: got %q, %q; want silo-hash-v1-1000, 1000", model, dims)
		}
		for _, d := range docs {
			chunks := tenantdata.Chunks(t, r.tenantDB(t), d.PublicID)
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
			tenantdata.WantVectors(t, r.engine, chunks, want)
		}

		// Nothing left to do: a second run changes nothing.
		if err := r.ingester(t, next).ReembedAll(ctx); err != nil {
			t.Fatalf("ReembedAll again: %v", err)
		}
		if model, _ := tenantdata.Meta(t, r.tenantDB(t)); model != "silo-hash-v1-1000" {
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
		res, err := searcher.Search(ctx, content, []string{doc.PublicID}, "the results of the experiment", search.ModeVector, 5)
		if err != nil || len(res) == 0 {
			t.Fatalf("Search: got %d results, %v", len(res), err)
		}
		return res
	}
	want := vectorSearch()

	var sparse int
	if err := db.NewRaw("SELECT count(*) FROM chunks WHERE document_id = ? AND substr(embedding, 1, 1) = ?", doc.PublicID, []byte{tenantdata.VectorSparse}).Scan(ctx, &sparse); err != nil || sparse == 0 {
		t.Fatalf("got %d sparse vector blobs (%v), want the hash embedder's vectors sparse", sparse, err)
	}
	for _, ch := range tenantdata.Chunks(t, r.tenantDB(t), doc.PublicID) {
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
