package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"silo/chunk"
	"silo/embed"
	"silo/store/vector"
	"silo/words"

	"github.com/uptrace/bun"
)

// sqlite is a SQLite tenant database: vectors are blobs (vector.Encode)
// ranked in this process, full text is FTS5.
type sqlite struct{ db *bun.DB }

func (sqlite) bind(query string) string { return query }

func (sqlite) server() bool { return false }

func (e sqlite) replaceIndex(ctx context.Context, docID, model string, pages []string, chunks []chunk.Chunk, vectors [][]float32) error {
	return e.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, table := range []string{"chunks", "pages"} {
			if _, err := tx.NewDelete().Table(table).Where("document_id = ?", docID).Exec(ctx); err != nil {
				return fmt.Errorf("store: clear %s of %s: %w", table, docID, err)
			}
		}
		var recorded string
		if err := tx.QueryRowContext(ctx, metaValue, metaEmbeddingModel).Scan(&recorded); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: read the embedding model: %w", err)
		}
		if err := sameModel(recorded, model); err != nil {
			return err
		}
		err := insertRows(ctx, tx.Tx, "INSERT INTO pages (document_id, page, text)", len(pages), func(i int) []any {
			return []any{docID, i + 1, pages[i]}
		})
		if err != nil {
			return err
		}
		return insertRows(ctx, tx.Tx, "INSERT INTO chunks (document_id, page, page_end, position, text, embedding)", len(chunks), func(i int) []any {
			ch := chunks[i]
			return []any{docID, ch.Page, ch.PageEnd, ch.Position, ch.Text, vector.Encode(vectors[i])}
		})
	})
}

// nearest ranks all of the documents' chunks by their cosine to q, from
// the tenant's in-memory index of its vectors (vector.Index), or by
// reading them all when it has none.
func (e sqlite) nearest(ctx context.Context, docs []string, q []float32, n int) ([]Hit, error) {
	idx, err := vector.IndexOf(ctx, e.db)
	if err == nil {
		ids, scores := idx.Nearest(docs, q, float64(embed.Norm(q)), n)
		if len(ids) == 0 {
			return nil, nil
		}
		var rows []Hit
		err := e.db.NewRaw(`SELECT id AS chunk_id, document_id, text, page, page_end, position FROM chunks WHERE id IN (?)`,
			bun.List(ids)).Scan(ctx, &rows)
		if err != nil {
			return nil, err
		}
		byID := make(map[int64]Hit, len(rows))
		for _, r := range rows {
			byID[r.ChunkID] = r
		}
		out := make([]Hit, 0, len(ids))
		for i, id := range ids {
			if h, ok := byID[id]; ok {
				h.Score = scores[i]
				out = append(out, h)
			}
		}
		return out, nil
	}
	if !errors.Is(err, vector.ErrNoIndex) {
		return nil, err
	}
	return e.scanNearest(ctx, docs, q, n)
}

// scanNearest ranks all of the documents' chunks by their cosine to q,
// reading every vector.
func (e sqlite) scanNearest(ctx context.Context, docs []string, q []float32, n int) ([]Hit, error) {
	var rows []struct {
		Hit
		Embedding []byte `bun:"embedding"`
	}
	err := e.db.NewRaw(`SELECT id AS chunk_id, document_id, text, page, page_end, position, embedding FROM chunks
		WHERE document_id IN (?) AND embedding IS NOT NULL`, bun.List(docs)).Scan(ctx, &rows)
	if err != nil {
		return nil, err
	}
	out := make([]Hit, 0, len(rows))
	qNorm := float64(embed.Norm(q))
	for _, r := range rows {
		r.Score = vector.Cosine(q, qNorm, r.Embedding)
		out = append(out, r.Hit)
	}
	slices.SortStableFunc(out, func(a, b Hit) int { return cmp.Compare(b.Score, a.Score) })
	return out[:min(n, len(out))], nil
}

// matching ranks by FTS5's bm25, whose statistics are the whole tenant
// index's. A document's chunks are written together, so their rowids span a
// narrow range, and the range of the documents' rowids confines the match to
// about theirs (for one document, to it). The best matches in that range
// are ranked by the full-text index alone, and only they are read from
// chunks and kept when they are the documents'; when too few are, more are
// taken. (Joining every match to chunks to filter it read a row of text
// and vector for each, most of the time of a search of many documents.)
func (e sqlite) matching(ctx context.Context, docs []string, query string, n int) ([]Hit, error) {
	match := ftsQuery(query)
	if match == "" {
		return nil, nil
	}
	var span struct{ Lo, Hi sql.NullInt64 }
	if err := e.db.NewRaw("SELECT min(id) AS lo, max(id) AS hi FROM chunks WHERE document_id IN (?)", bun.List(docs)).Scan(ctx, &span.Lo, &span.Hi); err != nil {
		return nil, err
	}
	if !span.Lo.Valid {
		return nil, nil
	}
	for limit := n; ; limit *= 4 {
		var ranked []struct {
			ID    int64   `bun:"id"`
			Score float64 `bun:"score"`
		}
		err := e.db.NewRaw(`SELECT rowid AS id, -bm25(chunks_fts) AS score FROM chunks_fts
			WHERE chunks_fts MATCH ? AND rowid >= ? AND rowid <= ?
			ORDER BY score DESC, rowid LIMIT ?`, match, span.Lo.Int64, span.Hi.Int64, limit).Scan(ctx, &ranked)
		if err != nil || len(ranked) == 0 {
			return nil, err
		}
		ids := make([]int64, len(ranked))
		for i, r := range ranked {
			ids[i] = r.ID
		}
		var rows []Hit
		err = e.db.NewRaw(`SELECT id AS chunk_id, document_id, text, page, page_end, position FROM chunks
			WHERE id IN (?) AND document_id IN (?)`, bun.List(ids), bun.List(docs)).Scan(ctx, &rows)
		if err != nil {
			return nil, err
		}
		if len(rows) < n && len(ranked) == limit {
			continue // too few of the documents' among these: take more
		}
		byID := make(map[int64]Hit, len(rows))
		for _, r := range rows {
			byID[r.ChunkID] = r
		}
		out := make([]Hit, 0, min(n, len(rows)))
		for _, r := range ranked {
			if h, ok := byID[r.ID]; ok && len(out) < n {
				h.Score = r.Score
				out = append(out, h)
			}
		}
		return out, nil
	}
}

// ftsQuery turns free text into an FTS5 query that ORs its words, each
// quoted, so nothing a person types is read as FTS5 syntax.
func ftsQuery(text string) string {
	seen := map[string]bool{}
	var terms []string
	var sc words.Scanner
	sc.Reset(text, words.Plain)
	for sc.Next() {
		w := sc.Word()
		if !seen[string(w)] && !words.IsStopWord(w) {
			seen[string(w)] = true
			terms = append(terms, `"`+string(w)+`"`)
		}
	}
	return strings.Join(terms, " OR ")
}

func (e sqlite) reembed(ctx context.Context, conn *sql.Conn, em embed.Embedder) error {
	return reembed(ctx, sqliteJob{sqliteQueries{conn}, conn}, e.db, em)
}

// chunkBatch is how many chunks one INSERT statement writes on SQLite.
const chunkBatch = 100

// insertRows writes n rows into a SQLite table in batches of multi-row
// INSERTs: insert is the statement up to VALUES ("INSERT INTO t (a, b)");
// row(i) gives row i's values. The values are bound parameters of the
// driver (db is database/sql's, not bun's), not literals that bun's
// formatting writes into the SQL text: a vector then reaches SQLite as a
// blob instead of as a hex literal inside a statement of megabytes that
// SQLite must tokenize.
func insertRows(ctx context.Context, db sqlQueries, insert string, n int, row func(i int) []any) error {
	for start := 0; start < n; start += chunkBatch {
		end := min(start+chunkBatch, n)
		var q strings.Builder
		args := make([]any, 0, (end-start)*6)
		q.WriteString(insert + " VALUES ")
		for i := start; i < end; i++ {
			vals := row(i)
			if i > start {
				q.WriteString(", ")
			}
			q.WriteString("(?" + strings.Repeat(", ?", len(vals)-1) + ")")
			args = append(args, vals...)
		}
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("store: %s: %w", insert, err)
		}
	}
	return nil
}

// sqlQueries is a SQLite connection or a transaction on it.
type sqlQueries interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// sqliteQueries are reembedQueries on SQLite. Its temporary table is in
// the connection's temp database: writing it in autocommit takes no lock
// on the tenant's database, so other writers go on.
type sqliteQueries struct{ q sqlQueries }

func (s sqliteQueries) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s sqliteQueries) value(ctx context.Context, query string, args ...any) (string, error) {
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return "", err
	}
	defer func() { _ = rows.Close() }()
	var v string
	if rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return "", err
		}
	}
	return v, rows.Err()
}

func (s sqliteQueries) texts(ctx context.Context, query string, args ...any) ([]storedText, error) {
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []storedText
	for rows.Next() {
		var t storedText
		if err := rows.Scan(&t.ID, &t.DocumentID, &t.Text); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// stage writes in batches, as insertRows does.
func (s sqliteQueries) stage(ctx context.Context, doc []storedText, vectors [][]float32) error {
	err := insertRows(ctx, s.q, "INSERT OR REPLACE INTO temp.reembedded (id, document_id, text, embedding)", len(doc), func(i int) []any {
		return []any{doc[i].ID, doc[i].DocumentID, doc[i].Text, vector.Encode(vectors[i])}
	})
	if err != nil {
		return fmt.Errorf("store: write new vectors: %w", err)
	}
	return nil
}

// sqliteJob is a re-embedding's SQLite connection.
type sqliteJob struct {
	sqliteQueries
	conn *sql.Conn
}

// writeTx begins IMMEDIATE, as the tenant's connections do
// (tenant.sqliteDSN): the transaction holds the write lock from the start.
func (j sqliteJob) writeTx(ctx context.Context, f func(q reembedQueries) error) error {
	tx, err := j.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(sqliteQueries{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// lockChunks is none: the write lock keeps every other writer off.
func (sqliteJob) lockChunks() string { return "" }

func (sqliteJob) temp() string { return "temp.reembedded" }

func (sqliteJob) tempDDL() []string {
	return []string{"CREATE TEMP TABLE reembedded (id INTEGER PRIMARY KEY, document_id TEXT NOT NULL, text TEXT NOT NULL, embedding BLOB NOT NULL)"}
}

// sqliteBusy tells whether err is SQLite's SQLITE_BUSY (of the pure-Go
// driver sqliteshim picks): the database is locked by another connection.
func sqliteBusy(err error) bool {
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == 5 // SQLITE_BUSY and its extended codes
}
