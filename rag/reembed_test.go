package rag_test

import (
	"context"
	"strings"
	"testing"

	"silo/rag"
)

// A model whose vectors are wider than a tenant database stores is refused
// before anything changes: the old vectors and model stay, on either engine.
func TestReembedRefusesTooWideVectors(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := rag.NewContent(searchDB(t, engine))
			e := rag.NewHashEmbedder(0)
			index(t, c, e, "doc1", []string{"The river runs north through the city."})
			if err := c.SetEmbeddingModel(ctx, e.Model(), e.Dims()); err != nil {
				t.Fatal(err)
			}

			err := c.Reembed(ctx, rag.NewHashEmbedder(2001))
			if err == nil || !strings.Contains(err.Error(), "at most 2000") {
				t.Fatalf("re-embedding with 2001 dimensions: got %v, want a refusal", err)
			}
			if model, err := c.EmbeddingModel(ctx); err != nil || model != e.Model() {
				t.Errorf("model after the refusal: %q, %v; want %q kept", model, err, e.Model())
			}
			got, err := rag.Searcher{Embedder: e}.Search(ctx, c, "doc1", "river", rag.ModeVector, 1)
			if err != nil || len(got) != 1 {
				t.Errorf("search with the old model after the refusal: %v, %v", got, err)
			}
		})
	}
}
