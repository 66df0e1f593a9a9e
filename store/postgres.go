package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"silo/chunk"
	"silo/embed"
	"silo/schema"
	"silo/store/vector"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pgvector/pgvector-go"
	"github.com/uptrace/bun"
)

// postgres is a PostgreSQL (or Neon) tenant database with pgvector:
// vectors are halfvec(schema.VectorDims), ranked by the server, full text is
// a tsvector.
type postgres struct{ db *bun.DB }

func (postgres) bind(query string) string { return pgPlaceholders(query) }

func (postgres) server() bool { return true }

// replaceIndex runs one transaction on a connection of its own, with the
// rows sent by COPY in pgx's binary format. A vector then travels as 2
// bytes a dimension, where its text form ("[0.0123,…]") took about 10, and
// neither silo nor PostgreSQL formats or parses 2,000 numbers a chunk.
func (e postgres) replaceIndex(ctx context.Context, docID, model string, pages []string, chunks []chunk.Chunk, vectors [][]float32) error {
	ann := len(chunks) > annChunks
	return e.tx(ctx, "write the index of "+docID, func(tx pgx.Tx) error {
		for _, table := range []string{"chunks", "pages"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE document_id = $1", docID); err != nil {
				return fmt.Errorf("store: clear %s of %s: %w", table, docID, err)
			}
		}
		// Read after the DELETE, whose lock on chunks a re-embedding's swap
		// waits for (lockChunks): either it has committed, and its model
		// shows here, or it comes after and embeds this document again.
		var recorded string
		if err := tx.QueryRow(ctx, pgPlaceholders(metaValue), metaEmbeddingModel).Scan(&recorded); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: read the embedding model: %w", err)
		}
		if err := sameModel(recorded, model); err != nil {
			return err
		}
		copyRows := func(table string, columns []string, n int, row func(int) []any) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromSlice(n, func(i int) ([]any, error) {
				return row(i), nil
			}))
			if err != nil {
				return fmt.Errorf("store: copy into %s: %w", table, err)
			}
			return nil
		}
		err := copyRows("pages", []string{"document_id", "page", "text"}, len(pages), func(i int) []any {
			return []any{docID, i + 1, pages[i]}
		})
		if err != nil {
			return err
		}
		return copyRows("chunks", []string{"document_id", "page", "page_end", "position", "text", "embedding", "ann"}, len(chunks), func(i int) []any {
			ch := chunks[i]
			return []any{docID, ch.Page, ch.PageEnd, ch.Position, ch.Text, vector.Halfvec(vectors[i], schema.VectorDims), ann}
		})
	})
}

// tx runs f in a transaction of pgx's own on a connection of the tenant's
// pool (see withPgx), for COPY; what names the work in errors.
func (e postgres) tx(ctx context.Context, what string, f func(tx pgx.Tx) error) error {
	conn, err := e.db.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer func() { _ = conn.Close() }() // back to the pool
	return withPgx(ctx, conn, what, func(pc *pgx.Conn) error { return pgx.BeginFunc(ctx, pc, f) })
}

// withPgx calls f with the pgx connection under a database/sql one, taught
// to send halfvec in binary (registerHalfvec); what names the work in
// errors.
func withPgx(ctx context.Context, conn *sql.Conn, what string, f func(*pgx.Conn) error) error {
	return conn.Raw(func(driverConn any) error {
		sc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: %s: the driver's connection is a %T, not pgx's", what, driverConn)
		}
		pc := sc.Conn()
		if err := registerHalfvec(ctx, pc); err != nil {
			return err
		}
		return f(pc)
	})
}

func (e postgres) reembed(ctx context.Context, conn *sql.Conn, em embed.Embedder) error {
	return withPgx(ctx, conn, "re-embed", func(pc *pgx.Conn) error {
		return reembed(ctx, pgJob{pgQueries{pc}, pc}, e.db, em)
	})
}

// annChunks is the length, in chunks, above which a document's chunks go
// into PostgreSQL's HNSW index (chunks.ann): a search of a longer document
// takes that many candidates from the index, by a sketch of their vectors,
// and ranks them by the whole vectors. A shorter document's chunks are all
// ranked exactly, which costs a search little and spares ingestion the
// index's inserts.
const annChunks = 400

// pgExactQuery ranks all of the documents' chunks by cosine.
const pgExactQuery = `SELECT id AS chunk_id, document_id, text, page, page_end, position, 1 - (embedding <=> ?0) AS score
FROM chunks WHERE document_id IN (?1) AND embedding IS NOT NULL
ORDER BY embedding <=> ?0 LIMIT ?2`

// pgANNQuery takes a long document's annChunks closest chunks by sketch
// (embedding_sketch, the HNSW index's key) and ranks them by cosine.
const pgANNQuery = `SELECT chunk_id, document_id, text, page, page_end, position, 1 - (embedding <=> ?0) AS score FROM (
	SELECT id AS chunk_id, document_id, text, page, page_end, position, embedding FROM chunks
	WHERE document_id = ?1 AND ann AND embedding IS NOT NULL
	ORDER BY embedding_sketch(embedding)::halfvec(250) <=> (SELECT embedding_sketch(?0)::halfvec(250)) LIMIT ?2
) c ORDER BY score DESC LIMIT ?3`

// nearest ranks the chunks of one long document by the HNSW index (see
// annChunks), and those of other documents, and of several, exactly.
func (e postgres) nearest(ctx context.Context, docs []string, q []float32, n int) ([]Hit, error) {
	var ann []bool
	if len(docs) == 1 {
		if err := e.db.NewRaw("SELECT ann FROM chunks WHERE document_id = ? ORDER BY position LIMIT 1", docs[0]).Scan(ctx, &ann); err != nil {
			return nil, err
		}
	}
	if len(q) < schema.VectorDims {
		q = append(q[:len(q):len(q)], make([]float32, schema.VectorDims-len(q))...)
	}
	v := pgvector.NewHalfVector(q)
	var out []Hit
	if len(ann) == 0 || !ann[0] {
		err := e.db.NewRaw(pgExactQuery, v, bun.List(docs), n).Scan(ctx, &out)
		return out, err
	}
	err := e.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// A filter on the document after an HNSW scan could leave fewer
		// candidates than asked for; iterative scans keep reading the
		// index until they are all there.
		if _, err := tx.ExecContext(ctx, "SELECT set_config('hnsw.ef_search', '200', true), set_config('hnsw.iterative_scan', 'relaxed_order', true)"); err != nil {
			return fmt.Errorf("set the HNSW scan: %w", err)
		}
		return tx.NewRaw(pgANNQuery, v, docs[0], max(annChunks, 4*n), n).Scan(ctx, &out)
	})
	return out, err
}

// matching ranks by cover density (ts_rank) of each of the query's lexemes,
// weighted by its rarity among the documents' chunks (BM25's idf), summed.
func (e postgres) matching(ctx context.Context, docs []string, query string, n int) ([]Hit, error) {
	var out []Hit
	err := e.db.NewRaw(`WITH terms AS MATERIALIZED (
			SELECT DISTINCT l, quote_literal(l)::tsquery AS q
			FROM unnest(tsvector_to_array(to_tsvector('english', ?))) AS l
		), hits AS MATERIALIZED (
			SELECT c.id, t.l, ts_rank(c.tsv, t.q, 1) AS rank
			FROM chunks c JOIN terms t ON c.tsv @@ t.q
			WHERE c.document_id IN (?)
		), size AS MATERIALIZED (
			SELECT count(*) AS n FROM chunks WHERE document_id IN (?)
		), weights AS MATERIALIZED (
			SELECT l, ln(1 + (size.n - count(*) + 0.5) / (count(*) + 0.5)) AS idf
			FROM hits, size GROUP BY l, size.n
		), best AS (
			SELECT h.id, sum(w.idf * h.rank) AS score
			FROM hits h JOIN weights w USING (l)
			GROUP BY h.id ORDER BY score DESC, h.id LIMIT ?
		)
		SELECT c.id AS chunk_id, c.document_id, c.text, c.page, c.page_end, c.position, b.score
		FROM best b JOIN chunks c USING (id)
		ORDER BY b.score DESC, c.id`, query, bun.List(docs), bun.List(docs), n).Scan(ctx, &out)
	return out, err
}

// registerHalfvec teaches a pgx connection to send pgvector's halfvec in
// binary (halfvecCodec), once per connection.
func registerHalfvec(ctx context.Context, conn *pgx.Conn) error {
	if _, ok := conn.TypeMap().TypeForName("halfvec"); ok {
		return nil
	}
	var oid *uint32
	if err := conn.QueryRow(ctx, "SELECT to_regtype('halfvec')::oid").Scan(&oid); err != nil {
		return fmt.Errorf("store: look up the halfvec type: %w", err)
	}
	if oid == nil {
		return errors.New("store: the tenant database has no halfvec type (pgvector)")
	}
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "halfvec", OID: *oid, Codec: halfvecCodec{}})
	return nil
}

// halfvecCodec sends a halfvec given as its binary form (from vector.Halfvec)
// as is, and reads halfvec values as text, as pgx does for a type it does
// not know: only COPY's writes change.
type halfvecCodec struct{ pgtype.TextCodec }

// FormatSupported is true for binary (writes) and text (reads).
func (halfvecCodec) FormatSupported(format int16) bool {
	return format == pgtype.BinaryFormatCode || format == pgtype.TextFormatCode
}

// PreferredFormat is text, so that results come as pgvector's text form.
func (halfvecCodec) PreferredFormat() int16 { return pgtype.TextFormatCode }

// PlanEncode sends the bytes of vector.Halfvec as they are, in binary.
func (c halfvecCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.([]byte); ok && format == pgtype.BinaryFormatCode {
		return pgtype.ByteaCodec{}.PlanEncode(m, oid, format, value)
	}
	return c.TextCodec.PlanEncode(m, oid, format, value)
}

// pgxQueries is a pgx connection or a transaction on it.
type pgxQueries interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// pgQueries are reembedQueries on PostgreSQL. Its temporary table lives as
// long as the session (or until reembed drops it), so it is filled by COPY
// outside any transaction, as in postgres.replaceIndex.
type pgQueries struct{ q pgxQueries }

// pgPlaceholders numbers a query's ? placeholders as PostgreSQL's $1, $2…
// (the queries of a re-embedding have no ? of their own).
func pgPlaceholders(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (p pgQueries) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, pgPlaceholders(query), args...)
	return tag.RowsAffected(), err
}

func (p pgQueries) value(ctx context.Context, query string, args ...any) (string, error) {
	rows, _ := p.q.Query(ctx, pgPlaceholders(query), args...)
	vs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(vs) == 0 {
		return "", err
	}
	return vs[0], nil
}

func (p pgQueries) texts(ctx context.Context, query string, args ...any) ([]storedText, error) {
	rows, _ := p.q.Query(ctx, pgPlaceholders(query), args...)
	return pgx.CollectRows(rows, pgx.RowToStructByPos[storedText])
}

func (p pgQueries) stage(ctx context.Context, doc []storedText, vectors [][]float32) error {
	ids := make([]int64, len(doc))
	for i, ch := range doc {
		ids[i] = ch.ID
	}
	if _, err := p.q.Exec(ctx, "DELETE FROM pg_temp.reembedded WHERE id = ANY($1)", ids); err != nil {
		return fmt.Errorf("store: write new vectors: %w", err)
	}
	_, err := p.q.CopyFrom(ctx, pgx.Identifier{"pg_temp", "reembedded"}, []string{"id", "document_id", "text", "embedding"},
		pgx.CopyFromSlice(len(doc), func(i int) ([]any, error) {
			return []any{doc[i].ID, doc[i].DocumentID, doc[i].Text, vector.Halfvec(vectors[i], schema.VectorDims)}, nil
		}))
	if err != nil {
		return fmt.Errorf("store: copy new vectors: %w", err)
	}
	return nil
}

// pgJob is a re-embedding's PostgreSQL connection.
type pgJob struct {
	pgQueries
	conn *pgx.Conn
}

// writeTx locks meta in a mode that lets reads through and makes other
// writers of meta wait: another re-embedding's claim or swap, or a first
// upload recording its model.
func (j pgJob) writeTx(ctx context.Context, f func(q reembedQueries) error) error {
	return pgx.BeginFunc(ctx, j.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE meta IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("store: lock meta: %w", err)
		}
		return f(pgQueries{tx})
	})
}

// lockChunks makes writers of chunks wait (an index being written, a
// document deleted) and lets readers through.
func (pgJob) lockChunks() string { return "LOCK TABLE chunks IN SHARE ROW EXCLUSIVE MODE" }

func (pgJob) temp() string { return "pg_temp.reembedded" }

// tempDDL gives the vectors PLAIN storage: they stay in the table's rows,
// neither compressed nor TOASTed on their way to the chunks, where the
// column's own compression applies.
func (pgJob) tempDDL() []string {
	return []string{
		fmt.Sprintf("CREATE TEMPORARY TABLE reembedded (id BIGINT PRIMARY KEY, document_id TEXT NOT NULL, text TEXT NOT NULL, embedding halfvec(%d) NOT NULL)", schema.VectorDims),
		"ALTER TABLE pg_temp.reembedded ALTER COLUMN embedding SET STORAGE PLAIN",
	}
}
