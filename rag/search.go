package rag

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/uptrace/bun"
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
// document with k chunks or more always yields k results in the hybrid and
// vector modes (an exact scan, or for a long document on PostgreSQL
// candidates from the HNSW index by iterative scans; see annChunks). A hybrid search re-ranks the union of both lists by evidence
// from their texts (see rerank). Each passage is its chunk widened toward
// its best sentence with whole sentences of the chunks around it, up to
// MaxPassageRunes.
func (s Searcher) Search(ctx context.Context, c Content, docID, query, mode string, k int) ([]Result, error) {
	if k < 1 {
		return nil, nil
	}
	if mode != ModeHybrid && mode != ModeVector && mode != ModeFullText {
		return nil, fmt.Errorf("rag: unknown search mode %q", mode)
	}
	depth := k
	if mode == ModeHybrid {
		depth = max(k, candidateDepth)
	}
	// On PostgreSQL a hybrid search asks for both lists at once, on two
	// connections: the server does the work. On SQLite both are CPU of this
	// process, which the handlers bound to a search per CPU: one at a time.
	var vs, ts []candidate
	var verr, terr error
	var wg sync.WaitGroup
	vector := func() { vs, verr = s.vectorSearch(ctx, c, docID, query, depth) }
	switch {
	case mode == ModeFullText:
	case mode == ModeHybrid && c.db.Engine == "postgres":
		wg.Go(vector)
	default:
		vector()
	}
	if mode != ModeVector {
		ts, terr = c.fullTextSearch(ctx, docID, query, depth)
	}
	wg.Wait()
	if mode == ModeHybrid && errors.Is(verr, ErrOtherModel) {
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
	return c.widen(ctx, docID, found)
}

// ErrOtherModel is a vector search of a tenant whose vectors are another
// embedding model's than the Searcher's (while it is re-embedded for a new
// one): compared with the query's, they would rank at random. A hybrid
// search ranks the full-text candidates alone meanwhile.
var ErrOtherModel = errors.New("rag: the workspace's vectors are being made again for a new embedding model")

// vectorSearch ranks the document's chunks by cosine similarity to the
// query's embedding. A query without content words has no direction and
// finds nothing this way.
func (s Searcher) vectorSearch(ctx context.Context, c Content, docID, query string, n int) ([]candidate, error) {
	model, err := c.EmbeddingModel(ctx)
	if err != nil {
		return nil, err
	}
	if model != s.Embedder.Model() {
		return nil, ErrOtherModel
	}
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

// annChunks is the length, in chunks, above which a document's chunks go
// into PostgreSQL's HNSW index (chunks.ann): a search of a longer document
// takes that many candidates from the index, by a sketch of their vectors,
// and ranks them by the whole vectors. A shorter document's chunks are all
// ranked exactly, which costs a search little and spares ingestion the
// index's inserts.
const annChunks = 400

// pgExactQuery ranks all of a document's chunks by cosine.
const pgExactQuery = `SELECT id AS chunk_id, text, page, page_end, position, 1 - (embedding <=> ?0) AS score
FROM chunks WHERE document_id = ?1 AND embedding IS NOT NULL
ORDER BY embedding <=> ?0 LIMIT ?2`

// pgANNQuery takes a long document's annChunks closest chunks by sketch
// (embedding_sketch, the HNSW index's key) and ranks them by cosine.
const pgANNQuery = `SELECT chunk_id, text, page, page_end, position, 1 - (embedding <=> ?0) AS score FROM (
	SELECT id AS chunk_id, text, page, page_end, position, embedding FROM chunks
	WHERE document_id = ?1 AND ann AND embedding IS NOT NULL
	ORDER BY embedding_sketch(embedding)::halfvec(250) <=> (SELECT embedding_sketch(?0)::halfvec(250)) LIMIT ?2
) c ORDER BY score DESC LIMIT ?3`

func (c Content) pgVectorSearch(ctx context.Context, docID string, q []float32, n int) ([]candidate, error) {
	var ann []bool
	if err := c.db.NewRaw("SELECT ann FROM chunks WHERE document_id = ? ORDER BY position LIMIT 1", docID).Scan(ctx, &ann); err != nil {
		return nil, fmt.Errorf("rag: vector search: %w", err)
	}
	var out []candidate
	v := c.vector(q)
	var err error
	if len(ann) == 0 || !ann[0] {
		err = c.db.NewRaw(pgExactQuery, v, docID, n).Scan(ctx, &out)
	} else {
		err = c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			// A filter on the document after an HNSW scan could leave
			// fewer candidates than asked for; iterative scans keep
			// reading the index until they are all there.
			if _, err := tx.ExecContext(ctx, "SELECT set_config('hnsw.ef_search', '200', true), set_config('hnsw.iterative_scan', 'relaxed_order', true)"); err != nil {
				return fmt.Errorf("set the HNSW scan: %w", err)
			}
			return tx.NewRaw(pgANNQuery, v, docID, max(annChunks, 4*n), n).Scan(ctx, &out)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("rag: vector search: %w", err)
	}
	return out, nil
}

func (c Content) sqliteVectorSearch(ctx context.Context, docID string, q []float32, n int) ([]candidate, error) {
	var rows []struct {
		candidate
		Embedding []byte `bun:"embedding"`
	}
	err := c.db.NewRaw(`SELECT id AS chunk_id, text, page, page_end, position, embedding FROM chunks
		WHERE document_id = ? AND embedding IS NOT NULL`, docID).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("rag: vector search: %w", err)
	}
	out := make([]candidate, 0, len(rows))
	qNorm := float64(vectorNorm(q))
	for _, r := range rows {
		r.Score = cosine(q, qNorm, r.Embedding)
		out = append(out, r.candidate)
	}
	slices.SortStableFunc(out, func(a, b candidate) int { return cmp.Compare(b.Score, a.Score) })
	return out[:min(n, len(out))], nil
}

// cosine is the cosine similarity of q, whose norm is qNorm, and a stored
// vector blob, dense or sparse (see encodeVector); both give the same score
// for the same vector. A blob of neither format scores 0.
func cosine(q []float32, qNorm float64, stored []byte) float64 {
	var dot, nb float64
	switch {
	case len(stored)%4 == 0: // dense
		for i := 0; i+4 <= len(stored) && i/4 < len(q); i += 4 {
			b := float64(math.Float32frombits(binary.LittleEndian.Uint32(stored[i:])))
			dot += float64(q[i/4]) * b
			nb += b * b
		}
	case stored[0] == vectorSparse && len(stored)%6 == 1:
		for p := stored[1:]; len(p) >= 6; p = p[6:] {
			i := int(binary.LittleEndian.Uint16(p))
			if i >= len(q) {
				break // indices ascend
			}
			b := float64(math.Float32frombits(binary.LittleEndian.Uint32(p[2:])))
			dot += float64(q[i]) * b
			nb += b * b
		}
	}
	if nb == 0 || qNorm == 0 {
		return 0
	}
	return dot / (math.Sqrt(nb) * qNorm)
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
func (c Content) fullTextSearch(ctx context.Context, docID, query string, n int) ([]candidate, error) {
	var out []candidate
	var err error
	if c.db.Engine == "postgres" {
		err = c.db.NewRaw(`WITH terms AS MATERIALIZED (
				SELECT DISTINCT l, quote_literal(l)::tsquery AS q
				FROM unnest(tsvector_to_array(to_tsvector('english', ?))) AS l
			), hits AS MATERIALIZED (
				SELECT c.id, t.l, ts_rank(c.tsv, t.q, 1) AS rank
				FROM chunks c JOIN terms t ON c.tsv @@ t.q
				WHERE c.document_id = ?
			), size AS MATERIALIZED (
				SELECT count(*) AS n FROM chunks WHERE document_id = ?
			), weights AS MATERIALIZED (
				SELECT l, ln(1 + (size.n - count(*) + 0.5) / (count(*) + 0.5)) AS idf
				FROM hits, size GROUP BY l, size.n
			), best AS (
				SELECT h.id, sum(w.idf * h.rank) AS score
				FROM hits h JOIN weights w USING (l)
				GROUP BY h.id ORDER BY score DESC, h.id LIMIT ?
			)
			SELECT c.id AS chunk_id, c.text, c.page, c.page_end, c.position, b.score
			FROM best b JOIN chunks c USING (id)
			ORDER BY b.score DESC, c.id`, query, docID, docID, n).Scan(ctx, &out)
	} else {
		match := ftsQuery(query)
		if match == "" {
			return nil, nil
		}
		// FTS5 matches against the whole tenant's index; a document's chunks
		// are written together, so their rowids span a narrow range, and a
		// rowid range confines the match (and its bm25) to about that
		// document before the join filters it exactly.
		err = c.db.NewRaw(`WITH span AS (SELECT min(id) AS lo, max(id) AS hi FROM chunks WHERE document_id = ?)
			SELECT c.id AS chunk_id, c.text, c.page, c.page_end, c.position, -bm25(chunks_fts) AS score
			FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid
			WHERE chunks_fts MATCH ? AND chunks_fts.rowid >= (SELECT lo FROM span)
				AND chunks_fts.rowid <= (SELECT hi FROM span) AND c.document_id = ?
			ORDER BY bm25(chunks_fts), c.id LIMIT ?`, docID, match, docID, n).Scan(ctx, &out)
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
