// Tests of a document's vector candidate list (Content.Nearest) from
// PostgreSQL's HNSW index.

package store_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pgvector/pgvector-go"
	"github.com/uptrace/bun"

	"silo/embed"
	"silo/store"
	"silo/testrig/tenantdata"
)

// nearest is a search's vector list for a document: the n chunks nearest
// the query's vector by e, before any re-ranking or widening.
func nearest(t *testing.T, c store.Content, e embed.Embedder, docID, query string, n int) ([]store.Hit, error) {
	t.Helper()
	vs, err := e.Embed(context.Background(), []string{query})
	if err != nil {
		t.Fatal(err)
	}
	return c.Nearest(context.Background(), []string{docID}, vs[0], n)
}

// TestVectorSketch checks PostgreSQL's vector search of a long document,
// which takes its candidates from the HNSW index by a 250-number sketch of
// each vector and ranks them by the whole vector: its nearest chunks are the
// exact nearest ones, the planner can take the candidates from the index,
// and a short document's chunks stay out of the index.
func TestVectorSketch(t *testing.T) {
	db := tenantDB(t, "postgres")
	c := store.New(db)
	e := embed.NewHash(0)
	ctx := context.Background()

	// Pages of sentences drawn from 3,000 made-up words, enough pages for
	// more chunks than the search takes candidates.
	rnd := rand.New(rand.NewPCG(1, 2))
	syllables := strings.Fields("ka lo mi re su ta ne vo pi da gu ze ri mo ba le tu si fa no")
	words := make([]string, 3000)
	for i := range words {
		var w strings.Builder
		for range 2 + rnd.IntN(3) {
			w.WriteString(syllables[rnd.IntN(len(syllables))])
		}
		words[i] = w.String()
	}
	sentence := func(n int) string {
		ws := make([]string, n)
		for i := range ws {
			ws[i] = words[rnd.IntN(len(words))]
		}
		return strings.Join(ws, " ") + "."
	}
	var pages []string
	for range store.ANNChunks * 5 / 4 {
		var p []string
		for range 12 {
			p = append(p, sentence(12))
		}
		pages = append(pages, strings.Join(p, " "))
	}
	chunks := tenantdata.Index(t, c, e, "long", pages)
	if len(chunks) <= store.ANNChunks {
		t.Fatalf("the document has %d chunks, want more than %d", len(chunks), store.ANNChunks)
	}
	short := tenantdata.Index(t, c, e, "short", pages[:store.ANNChunks/4])
	for doc, want := range map[string]int{"long": len(chunks), "short": 0} {
		var n int
		if err := db.NewRaw("SELECT count(*) FROM chunks WHERE document_id = ? AND ann", doc).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s document: %d chunks in the HNSW index, want %d", doc, n, want)
		}
	}
	if res, err := nearest(t, c, e, "short", words[0]+" "+words[1], 5); err != nil || len(res) != 5 {
		t.Errorf("short document (%d chunks): got %d results, %v; want 5", len(short), len(res), err)
	}

	const queries, k = 60, 5
	sameTop1, inTopK := 0, 0
	for range queries {
		q := sentence(6)
		got, err := nearest(t, c, e, "long", q, k)
		if err != nil {
			t.Fatal(err)
		}
		vs, err := e.Embed(ctx, []string{q})
		if err != nil {
			t.Fatal(err)
		}
		var exact []int64
		if err := db.NewRaw(`SELECT id FROM chunks WHERE document_id = 'long' ORDER BY embedding <=> ? LIMIT ?`,
			pgvector.NewHalfVector(vs[0]), k).Scan(ctx, &exact); err != nil {
			t.Fatal(err)
		}
		if len(got) != k || len(exact) != k {
			t.Fatalf("query %q: got %d results and %d exact ones, want %d", q, len(got), len(exact), k)
		}
		for i := 1; i < k; i++ {
			if got[i].Score > got[i-1].Score {
				t.Errorf("query %q: results not best first: %v then %v", q, got[i-1].Score, got[i].Score)
			}
		}
		if got[0].ChunkID == exact[0] {
			sameTop1++
		}
		for _, r := range got {
			if slices.Contains(exact, r.ChunkID) {
				inTopK++
			}
		}
	}
	t.Logf("%d chunks; against the exact search: the same top 1 for %d of %d queries, %d of %d of the exact top %d", len(chunks), sameTop1, queries, inTopK, queries*k, k)
	if sameTop1 < queries*90/100 || inTopK < queries*k*85/100 {
		t.Errorf("against the exact search: the same top 1 for %d of %d queries, %d of %d of the exact top %d; want 90 %% and 85 %%",
			sameTop1, queries, inTopK, queries*k, k)
	}

	// The planner can take the candidates from the HNSW index: the query's
	// sketch is the index's expression.
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, off := range []string{"enable_seqscan", "enable_bitmapscan", "enable_sort"} {
			if _, err := tx.ExecContext(ctx, "SET LOCAL "+off+" = off"); err != nil {
				return err
			}
		}
		var plan []string
		vs, err := e.Embed(ctx, []string{"a question"})
		if err != nil {
			return err
		}
		if err := tx.NewRaw("EXPLAIN "+store.PGANNQuery, pgvector.NewHalfVector(vs[0]), "long", store.ANNChunks, k).Scan(ctx, &plan); err != nil {
			return err
		}
		if p := strings.Join(plan, "\n"); !strings.Contains(p, "chunks_embedding_sketch_idx") {
			t.Errorf("the candidates cannot come from the HNSW index; plan:\n%s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
