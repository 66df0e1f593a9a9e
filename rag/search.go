package rag

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"

	"github.com/uptrace/bun"
)

// Search modes.
const (
	ModeHybrid   = "hybrid"   // vector and full text, fused by reciprocal rank
	ModeVector   = "vector"   // embeddings alone
	ModeFullText = "fulltext" // full-text ranking alone
)

// rrfK damps reciprocal rank fusion: a passage's fused score is the sum of
// 1/(rrfK + rank) over the lists it is in.
const rrfK = 60

// Result is one passage found for a query, best first.
type Result struct {
	ChunkID int64
	Text    string
	Page    int
	PageEnd int
	Score   float64
}

// Searcher finds a document's passages for a query in a tenant database.
type Searcher struct {
	Embedder Embedder
}

// Search returns the k best passages of the document for the query. A
// document with k chunks or more always yields k results (iterative index
// scans on PostgreSQL, an exact scan on SQLite).
func (s Searcher) Search(ctx context.Context, c Content, docID, query, mode string, k int) ([]Result, error) {
	if k < 1 {
		return nil, nil
	}
	depth := max(4*k, 20) // each list's candidates for the fusion
	var lists [][]Result
	if mode == ModeHybrid || mode == ModeVector {
		vs, err := s.vectorSearch(ctx, c, docID, query, depth)
		if err != nil {
			return nil, err
		}
		lists = append(lists, vs)
	}
	if mode == ModeHybrid || mode == ModeFullText {
		ts, err := c.fullTextSearch(ctx, docID, query, depth)
		if err != nil {
			return nil, err
		}
		lists = append(lists, ts)
	}
	if len(lists) == 0 {
		return nil, fmt.Errorf("rag: unknown search mode %q", mode)
	}
	if len(lists) == 1 {
		return lists[0][:min(k, len(lists[0]))], nil
	}
	pool := fuse(lists, 2*depth)
	lists = append(lists, sentenceRank(query, pool))
	return fuse(lists, k), nil
}

// fuse merges ranked lists by reciprocal rank.
func fuse(lists [][]Result, k int) []Result {
	byID := map[int64]*Result{}
	for _, list := range lists {
		for rank, r := range list {
			f, ok := byID[r.ChunkID]
			if !ok {
				r.Score = 0
				f = &r
				byID[r.ChunkID] = f
			}
			f.Score += 1 / float64(rrfK+rank+1)
		}
	}
	out := make([]Result, 0, len(byID))
	for _, r := range byID {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Result) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ChunkID, b.ChunkID)
	})
	return out[:min(k, len(out))]
}

// vectorSearch ranks the document's chunks by cosine similarity to the
// query's embedding. A query without content words has no direction and
// finds nothing this way.
func (s Searcher) vectorSearch(ctx context.Context, c Content, docID, query string, n int) ([]Result, error) {
	vs, err := s.Embedder.Embed(ctx, []string{query})
	if err != nil {
		return nil, fmt.Errorf("rag: embed the query: %w", err)
	}
	q := vs[0]
	if vectorNorm(q) == 0 {
		return nil, nil
	}
	if c.db.Engine == "postgres" {
		return c.pgVectorSearch(ctx, docID, q, n)
	}
	return c.sqliteVectorSearch(ctx, docID, q, n)
}

func (c Content) pgVectorSearch(ctx context.Context, docID string, q []float32, n int) ([]Result, error) {
	var out []Result
	err := c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// A filter on the document after an HNSW scan could leave fewer than
		// n rows; iterative scans keep reading the index until n match.
		for _, set := range []string{"SET LOCAL hnsw.ef_search = 200", "SET LOCAL hnsw.iterative_scan = relaxed_order"} {
			if _, err := tx.ExecContext(ctx, set); err != nil {
				return fmt.Errorf("rag: %s: %w", set, err)
			}
		}
		return tx.NewRaw(`SELECT id AS chunk_id, text, page, page_end, 1 - (embedding <=> ?) AS score
			FROM chunks WHERE document_id = ? AND embedding IS NOT NULL
			ORDER BY embedding <=> ? LIMIT ?`, c.vector(q), docID, c.vector(q), n).Scan(ctx, &out)
	})
	if err != nil {
		return nil, fmt.Errorf("rag: vector search: %w", err)
	}
	// relaxed_order may return neighbours slightly out of order.
	slices.SortStableFunc(out, func(a, b Result) int { return cmp.Compare(b.Score, a.Score) })
	return out, nil
}

func (c Content) sqliteVectorSearch(ctx context.Context, docID string, q []float32, n int) ([]Result, error) {
	var rows []struct {
		Result
		Embedding []byte `bun:"embedding"`
	}
	err := c.db.NewRaw(`SELECT id AS chunk_id, text, page, page_end, embedding FROM chunks
		WHERE document_id = ? AND embedding IS NOT NULL`, docID).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("rag: vector search: %w", err)
	}
	out := make([]Result, 0, len(rows))
	for _, r := range rows {
		r.Score = cosine(q, r.Embedding)
		out = append(out, r.Result)
	}
	slices.SortStableFunc(out, func(a, b Result) int { return cmp.Compare(b.Score, a.Score) })
	return out[:min(n, len(out))], nil
}

// cosine is the cosine similarity of q and a stored little-endian vector.
func cosine(q []float32, stored []byte) float64 {
	var dot, nb float64
	for i := 0; i+4 <= len(stored) && i/4 < len(q); i += 4 {
		b := float64(math.Float32frombits(binary.LittleEndian.Uint32(stored[i:])))
		dot += float64(q[i/4]) * b
		nb += b * b
	}
	if nb == 0 {
		return 0
	}
	return dot / (math.Sqrt(nb) * float64(vectorNorm(q)))
}

func vectorNorm(v []float32) float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return float32(math.Sqrt(s))
}

// fullTextSearch ranks the document's chunks by the query's words: cover
// density over an OR of the query's lexemes on PostgreSQL, bm25 on SQLite.
func (c Content) fullTextSearch(ctx context.Context, docID, query string, n int) ([]Result, error) {
	var out []Result
	var err error
	if c.db.Engine == "postgres" {
		err = c.db.NewRaw(`SELECT id AS chunk_id, text, page, page_end, ts_rank_cd(tsv, q, 1) AS score
			FROM chunks, to_tsquery('english', replace(plainto_tsquery('english', ?)::text, ' & ', ' | ')) AS q
			WHERE document_id = ? AND tsv @@ q
			ORDER BY score DESC, id LIMIT ?`, query, docID, n).Scan(ctx, &out)
	} else {
		match := ftsQuery(query)
		if match == "" {
			return nil, nil
		}
		err = c.db.NewRaw(`SELECT c.id AS chunk_id, c.text, c.page, c.page_end, -bm25(chunks_fts) AS score
			FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid
			WHERE chunks_fts MATCH ? AND c.document_id = ?
			ORDER BY bm25(chunks_fts), c.id LIMIT ?`, match, docID, n).Scan(ctx, &out)
	}
	if err != nil {
		return nil, fmt.Errorf("rag: full-text search: %w", err)
	}
	return out, nil
}

// ftsQuery turns free text into an FTS5 query that ORs its words, each
// quoted, so nothing a person types is read as FTS5 syntax.
func ftsQuery(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	seen := map[string]bool{}
	var terms []string
	for _, w := range words {
		if !seen[w] && !isStopWord([]byte(w)) {
			seen[w] = true
			terms = append(terms, `"`+w+`"`)
		}
	}
	return strings.Join(terms, " OR ")
}
