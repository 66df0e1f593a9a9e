package rag

import "context"

// PGANNQuery is the PostgreSQL vector search's SQL for a long document, for
// plan checks.
const PGANNQuery = pgANNQuery

// ANNChunks is the length above which a document's chunks go into
// PostgreSQL's HNSW index.
const ANNChunks = annChunks

// VectorList is a search's vector list for a document: its n nearest
// chunks, before any re-ranking or widening.
func (s Searcher) VectorList(ctx context.Context, c Content, docID, query string, n int) ([]Result, error) {
	found, err := s.vectorSearch(ctx, c, docID, query, n)
	out := make([]Result, len(found))
	for i, f := range found {
		out[i] = f.Result
	}
	return out, err
}
