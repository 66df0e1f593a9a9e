// Package search finds the passages of a tenant's documents that answer a
// question: hybrid search (the nearest chunks by their vectors and the best
// by full text, pooled and re-ranked by evidence from their sentences, the
// same way on every engine), and each passage widened with whole sentences
// of its neighbours.
package search

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"

	"silo/embed"
	"silo/store"
)

// Search modes.
const (
	ModeHybrid   = "hybrid"   // vector and full-text candidates, re-ranked by their best sentences
	ModeVector   = "vector"   // embeddings alone
	ModeFullText = "fulltext" // full-text ranking alone
)

// candidateDepth is how many candidates each list of a hybrid search
// brings to the re-ranking.
const candidateDepth = 40

// MaxPassageRunes is the longest passage a search returns: a chunk is
// widened up to it with the sentences of its neighbours (see widen).
const MaxPassageRunes = 1200

// Result is one passage found for a query, best first.
type Result struct {
	ChunkID    int64
	DocumentID string
	// Title is the document's title when the caller fills it in (the
	// control plane holds titles; answer.Chat fills them).
	Title   string
	Text    string
	Page    int
	PageEnd int
	Score   float64
	// Support is the share of the question the passage's chunk holds,
	// from 0 to 1 (see MinSupport).
	Support float64
}

// Found reports whether passages, a search's results best first, answer
// the question: whether the best has at least MinSupport. When it does
// not, they are only the closest passages to it.
func Found(passages []Result) bool {
	return len(passages) > 0 && passages[0].Support >= MinSupport
}

// Searcher finds documents' passages for a query in a tenant database.
// Built by New, it runs a bounded number of searches at once; a Searcher
// literal runs any number.
type Searcher struct {
	Embedder embed.Embedder
	slots    chan struct{} // a search holds one while it runs
}

// New returns a Searcher that runs at most n searches at once: they are CPU
// work (on SQLite all of it in this process), so that under load a new one
// waits for its turn rather than slowing every other down.
func New(e embed.Embedder, n int) *Searcher {
	return &Searcher{Embedder: e, slots: make(chan struct{}, max(n, 1))}
}

// Search returns the k best passages of the documents (public ids: one, or
// several searched as one) for the query, once a search slot is free (or
// ctx ends). Documents with k chunks or more always yield k results in the
// hybrid and vector modes. A hybrid search re-ranks
// the union of both lists by evidence from their texts (see rerank). Each
// passage is its chunk widened toward its best sentence with whole
// sentences of the chunks around it, up to MaxPassageRunes.
func (s *Searcher) Search(ctx context.Context, c store.Content, docs []string, query, mode string, k int) ([]Result, error) {
	if k < 1 || len(docs) == 0 {
		return nil, nil
	}
	if mode != ModeHybrid && mode != ModeVector && mode != ModeFullText {
		return nil, fmt.Errorf("search: unknown search mode %q", mode)
	}
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-s.slots }()
	}
	depth := k
	if mode == ModeHybrid {
		depth = max(k, candidateDepth)
	}
	// On a database server a hybrid search asks for both lists at once, on
	// two connections: the server does the work. On SQLite both are CPU of
	// this process, which the search slots bound: one after the other.
	var vs, ts []candidate
	var verr, terr error
	var wg sync.WaitGroup
	vector := func() { vs, verr = s.vectorSearch(ctx, c, docs, query, depth) }
	switch {
	case mode == ModeFullText:
	case mode == ModeHybrid && c.Concurrent():
		wg.Go(vector)
	default:
		vector()
	}
	if mode != ModeVector {
		var hits []store.Hit
		hits, terr = c.Matching(ctx, docs, query, depth)
		ts = candidates(hits)
	}
	wg.Wait()
	if mode == ModeHybrid && errors.Is(verr, store.ErrOtherModel) {
		verr = nil // the full-text candidates alone
	}
	if err := cmp.Or(verr, terr); err != nil {
		return nil, err
	}
	var found []candidate
	switch mode {
	case ModeHybrid:
		found = rerank(query, vs, ts, k)
	case ModeVector:
		found = vs[:min(k, len(vs))]
		markBest(query, found)
	default:
		found = ts[:min(k, len(ts))]
		markBest(query, found)
	}
	return widen(ctx, c, found)
}

// vectorSearch ranks the documents' chunks by cosine similarity to the
// query's embedding; store.ErrOtherModel while the tenant's vectors are
// another model's (it is being re-embedded for a new one). A query without
// content words has no direction and finds nothing this way.
func (s *Searcher) vectorSearch(ctx context.Context, c store.Content, docs []string, query string, n int) ([]candidate, error) {
	model, err := c.EmbeddingModel(ctx)
	if err != nil {
		return nil, err
	}
	if model != s.Embedder.Model() {
		return nil, store.ErrOtherModel
	}
	vs, err := s.Embedder.Embed(ctx, []string{query})
	if err != nil {
		return nil, fmt.Errorf("search: embed the query: %w", err)
	}
	hits, err := c.Nearest(ctx, docs, vs[0], n)
	return candidates(hits), err
}
