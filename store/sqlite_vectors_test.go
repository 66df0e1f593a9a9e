package store_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"silo/embed"
	"silo/store"
	"silo/testrig/tenantdata"
)

// TestSQLiteVectorIndex checks a SQLite tenant's in-memory vector index: its
// scores are the exact cosines of the stored vectors, and it follows every
// write to the chunks (a new document, one indexed again, one deleted).
func TestSQLiteVectorIndex(t *testing.T) {
	ctx := context.Background()
	db := tenantDB(t, "sqlite")
	c := store.New(db)
	e := embed.NewHash(0)
	page := func(doc string, i int) string {
		return fmt.Sprintf("The %s archive keeps ledger %d of the harbour, with the storms of year %d and the ships that came in.", doc, i, 1800+i)
	}
	pages := func(doc string, n int) []string {
		var ps []string
		for i := range n {
			ps = append(ps, page(doc, i))
		}
		return ps
	}
	search := func(docs []string, query string, n int) []store.Hit {
		t.Helper()
		vs, err := e.Embed(ctx, []string{query})
		if err != nil {
			t.Fatal(err)
		}
		hits, err := c.Nearest(ctx, docs, vs[0], n)
		if err != nil {
			t.Fatal(err)
		}
		return hits
	}
	docsOf := func(hits []store.Hit) []string {
		var out []string
		for _, h := range hits {
			if !slices.Contains(out, h.DocumentID) {
				out = append(out, h.DocumentID)
			}
		}
		slices.Sort(out)
		return out
	}

	tenantdata.Index(t, c, e, "north", pages("north", 120))
	query := "ledger of the harbour storms in year 1812"
	hits := search([]string{"north"}, query, 5)
	if len(hits) != 5 {
		t.Fatalf("got %d hits, want 5", len(hits))
	}
	// The scores are the cosines of the stored vectors, best first.
	q, _ := e.Embed(ctx, []string{query})
	stored := map[string][]float32{}
	for _, ch := range tenantdata.Chunks(t, db, "north") {
		stored[ch.Text] = ch.Vector
	}
	for i, h := range hits {
		v := stored[h.Text]
		var dot, nq, nv float64
		for j := range v {
			dot += float64(q[0][j]) * float64(v[j])
			nq += float64(q[0][j]) * float64(q[0][j])
			nv += float64(v[j]) * float64(v[j])
		}
		if want := dot / math.Sqrt(nq*nv); math.Abs(h.Score-want) > 1e-6 {
			t.Errorf("hit %d: score %v, want the cosine %v", i, h.Score, want)
		}
		if i > 0 && h.Score > hits[i-1].Score {
			t.Errorf("hits not best first: %v then %v", hits[i-1].Score, h.Score)
		}
	}

	// A new document is found at once, in a search of both.
	tenantdata.Index(t, c, e, "south", pages("south", 120))
	if got := docsOf(search([]string{"north", "south"}, "south archive ledger 1812", 3)); !slices.Equal(got, []string{"south"}) {
		t.Errorf("after a new document: the best 3 are of %v, want [south]", got)
	}
	// One indexed again with other text is searched by its new vectors.
	tenantdata.Index(t, c, e, "south", []string{"Nothing but lighthouse keepers and their cats here."})
	if got := search([]string{"south"}, "lighthouse keepers cats", 3); len(got) != 1 || got[0].Score <= 0.3 {
		t.Errorf("after indexing again: got %v, want the one new chunk", got)
	}
	// A deleted one is not found.
	if err := c.DeleteDocument(ctx, "south"); err != nil {
		t.Fatal(err)
	}
	if got := search([]string{"south"}, "lighthouse keepers cats", 3); len(got) != 0 {
		t.Errorf("after deleting the document: got %d hits, want none", len(got))
	}
	if got := docsOf(search([]string{"north", "south"}, query, 5)); !slices.Equal(got, []string{"north"}) {
		t.Errorf("after deleting a document: the hits are of %v, want [north]", got)
	}
}
