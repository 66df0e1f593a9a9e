// Package rag turns PDFs into something to chat with: it extracts their text
// in a child process, cleans and chunks it by page, embeds the chunks, keeps
// them in the tenant's own database, and (later) searches them.
package rag

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pgvector/pgvector-go"
	"github.com/uptrace/bun"

	"silo/tenant"
)

// ErrNoFile means a document's bytes are not in the tenant database.
var ErrNoFile = errors.New("rag: the document's file is missing")

// Content is what one tenant database holds of its documents: their bytes,
// page texts and chunks with embeddings.
type Content struct{ db *tenant.DB }

// NewContent reads and writes documents in a tenant database.
func NewContent(db *tenant.DB) Content { return Content{db: db} }

// SaveFile stores a document's original bytes.
func (c Content) SaveFile(ctx context.Context, docID string, pdf []byte) error {
	sum := sha256.Sum256(pdf)
	if err := c.execBound(ctx, "INSERT INTO files (document_id, content, sha256) VALUES (?, ?, ?)", docID, pdf, hex.EncodeToString(sum[:])); err != nil {
		return fmt.Errorf("rag: save file of %s: %w", docID, err)
	}
	return nil
}

// execBound runs a statement (with ? placeholders) with the driver's bound
// parameters, not bun's formatting, which would write a blob into the SQL
// text as a hex literal twice its size.
func (c Content) execBound(ctx context.Context, query string, args ...any) error {
	if c.db.Engine == "postgres" {
		query = pgPlaceholders(query)
	}
	_, err := c.db.DB.DB.ExecContext(ctx, query, args...)
	return err
}

// File returns a document's original bytes, or ErrNoFile.
func (c Content) File(ctx context.Context, docID string) ([]byte, error) {
	var b []byte
	err := c.db.NewSelect().Table("files").Column("content").Where("document_id = ?", docID).Scan(ctx, &b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoFile
	}
	if err != nil {
		return nil, fmt.Errorf("rag: read file of %s: %w", docID, err)
	}
	return b, nil
}

// chunkBatch is how many chunks one INSERT statement writes on SQLite.
const chunkBatch = 100

// ReplaceIndex writes a document's pages (pages[i] is page i+1) and chunks
// with their vectors, made by the embedding model model, in one
// transaction, in place of any earlier ones (a retried ingestion starts
// clean). It writes nothing and returns ErrOtherModel when the tenant has
// recorded another model by then: a re-embedding for another model swapped
// its vectors in while these were made (two silo processes configured with
// different models, as in a rolling deploy).
func (c Content) ReplaceIndex(ctx context.Context, docID, model string, pages []string, chunks []Chunk, vectors [][]float32) error {
	if len(vectors) != len(chunks) {
		return fmt.Errorf("rag: %d vectors for %d chunks", len(vectors), len(chunks))
	}
	if err := checkWidth(vectors); err != nil {
		return err
	}
	pageRow := func(i int) []any { return []any{docID, i + 1, pages[i]} }
	if c.db.Engine == "postgres" {
		ann := len(chunks) > annChunks
		return c.pgReplaceIndex(ctx, docID, model, len(pages), pageRow, len(chunks), func(i int) []any {
			ch := chunks[i]
			return []any{docID, ch.Page, ch.PageEnd, ch.Position, ch.Text, halfvecBinary(vectors[i], pgDimensions), ann}
		})
	}
	chunkRow := func(i int) []any {
		ch := chunks[i]
		return []any{docID, ch.Page, ch.PageEnd, ch.Position, ch.Text, c.vector(vectors[i])}
	}
	return c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, table := range []string{"chunks", "pages"} {
			if _, err := tx.NewDelete().Table(table).Where("document_id = ?", docID).Exec(ctx); err != nil {
				return fmt.Errorf("rag: clear %s of %s: %w", table, docID, err)
			}
		}
		var recorded string
		if err := tx.QueryRowContext(ctx, metaValue, metaEmbeddingModel).Scan(&recorded); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("rag: read the embedding model: %w", err)
		}
		if err := sameModel(recorded, model); err != nil {
			return err
		}
		if err := insertRows(ctx, tx.Tx, "INSERT INTO pages (document_id, page, text)", len(pages), pageRow); err != nil {
			return err
		}
		return insertRows(ctx, tx.Tx, "INSERT INTO chunks (document_id, page, page_end, position, text, embedding)", len(chunks), chunkRow)
	})
}

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
			return fmt.Errorf("rag: %s: %w", insert, err)
		}
	}
	return nil
}

// pgReplaceIndex is ReplaceIndex on PostgreSQL: one transaction on a
// connection of its own, with the rows sent by COPY in pgx's binary format.
// A vector then travels as 2 bytes a dimension, where its text form
// ("[0.0123,…]") took about 10, and neither silo nor PostgreSQL formats or
// parses 2,000 numbers a chunk.
func (c Content) pgReplaceIndex(ctx context.Context, docID, model string, pages int, pageRow func(int) []any, chunks int, chunkRow func(int) []any) error {
	return c.pgTx(ctx, "write the index of "+docID, func(tx pgx.Tx) error {
		for _, table := range []string{"chunks", "pages"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE document_id = $1", docID); err != nil {
				return fmt.Errorf("rag: clear %s of %s: %w", table, docID, err)
			}
		}
		// Read after the DELETE, whose lock on chunks a re-embedding's swap
		// waits for (lockChunks): either it has committed, and its model
		// shows here, or it comes after and embeds this document again.
		var recorded string
		if err := tx.QueryRow(ctx, pgPlaceholders(metaValue), metaEmbeddingModel).Scan(&recorded); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("rag: read the embedding model: %w", err)
		}
		if err := sameModel(recorded, model); err != nil {
			return err
		}
		copyRows := func(table string, columns []string, n int, row func(int) []any) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromSlice(n, func(i int) ([]any, error) {
				return row(i), nil
			}))
			if err != nil {
				return fmt.Errorf("rag: copy into %s: %w", table, err)
			}
			return nil
		}
		if err := copyRows("pages", []string{"document_id", "page", "text"}, pages, pageRow); err != nil {
			return err
		}
		return copyRows("chunks", []string{"document_id", "page", "page_end", "position", "text", "embedding", "ann"}, chunks, chunkRow)
	})
}

// metaValue reads the value of a meta key.
const metaValue = "SELECT value FROM meta WHERE key = ?"

// sameModel is ErrOtherModel when a tenant records a model and vectors of
// another are to be written.
func sameModel(recorded, model string) error {
	if recorded != "" && recorded != model {
		return fmt.Errorf("%w (%s, not %s)", ErrOtherModel, recorded, model)
	}
	return nil
}

// pgTx runs f in a transaction of pgx's own on a connection of the tenant's
// PostgreSQL pool that knows halfvec (registerHalfvec), for COPY; what
// names the work in errors.
func (c Content) pgTx(ctx context.Context, what string, f func(tx pgx.Tx) error) error {
	conn, err := c.db.DB.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("rag: %s: %w", what, err)
	}
	defer func() { _ = conn.Close() }() // back to the pool
	return conn.Raw(func(driverConn any) error {
		sc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("rag: %s: the driver's connection is a %T, not pgx's", what, driverConn)
		}
		pc := sc.Conn()
		if err := registerHalfvec(ctx, pc); err != nil {
			return err
		}
		return pgx.BeginFunc(ctx, pc, f)
	})
}

// registerHalfvec teaches a pgx connection to send pgvector's halfvec in
// binary (halfvecCodec), once per connection.
func registerHalfvec(ctx context.Context, conn *pgx.Conn) error {
	if _, ok := conn.TypeMap().TypeForName("halfvec"); ok {
		return nil
	}
	var oid *uint32
	if err := conn.QueryRow(ctx, "SELECT to_regtype('halfvec')::oid").Scan(&oid); err != nil {
		return fmt.Errorf("rag: look up the halfvec type: %w", err)
	}
	if oid == nil {
		return errors.New("rag: the tenant database has no halfvec type (pgvector)")
	}
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "halfvec", OID: *oid, Codec: halfvecCodec{}})
	return nil
}

// halfvecCodec sends a halfvec given as its binary form (from halfvecBinary)
// as is, and reads halfvec values as text, as pgx does for a type it does
// not know: only COPY's writes change.
type halfvecCodec struct{ pgtype.TextCodec }

// FormatSupported is true for binary (writes) and text (reads).
func (halfvecCodec) FormatSupported(format int16) bool {
	return format == pgtype.BinaryFormatCode || format == pgtype.TextFormatCode
}

// PreferredFormat is text, so that results come as pgvector's text form.
func (halfvecCodec) PreferredFormat() int16 { return pgtype.TextFormatCode }

// PlanEncode sends the bytes of halfvecBinary as they are, in binary.
func (c halfvecCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.([]byte); ok && format == pgtype.BinaryFormatCode {
		return pgtype.ByteaCodec{}.PlanEncode(m, oid, format, value)
	}
	return c.TextCodec.PlanEncode(m, oid, format, value)
}

// halfvecBinary is v as pgvector's binary halfvec (halfvec_recv), zero-padded
// to dims: the dimension count and a zero, then each value as an IEEE
// half-precision float rounded to nearest even, all big-endian.
func halfvecBinary(v []float32, dims int) []byte {
	b := make([]byte, 4, 4+2*dims)
	binary.BigEndian.PutUint16(b, uint16(dims))
	for _, f := range v {
		b = binary.BigEndian.AppendUint16(b, float16Bits(f))
	}
	return append(b, make([]byte, 2*(dims-len(v)))...)
}

// float16Bits converts f to an IEEE 754 half-precision float, rounding to
// nearest even as pgvector does; out of range it gives ±Inf, which pgvector
// refuses as it refuses the text form of such a number.
func float16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b>>23&0xff == 0xff: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp >= 0x1f:
		return sign | 0x7c00
	case exp <= 0: // a subnormal half, or zero
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		return sign | uint16(roundShift(mant, shift))
	}
	// A carry out of the mantissa rightly bumps the exponent.
	return sign | uint16(uint32(exp)<<10+roundShift(mant, 13))
}

// roundShift is x >> shift, rounded to nearest even.
func roundShift(x uint32, shift uint) uint32 {
	r, rem, half := x>>shift, x&(1<<shift-1), uint32(1)<<(shift-1)
	if rem > half || rem == half && r&1 == 1 {
		r++
	}
	return r
}

// pgDimensions is the width of the PostgreSQL tenant schema's halfvec
// column; shorter vectors are zero-padded, which changes no cosine.
const pgDimensions = 2000

// vector is an embedding as the tenant's engine stores it: pgvector's
// halfvec on PostgreSQL, a blob of encodeVector on SQLite.
func (c Content) vector(v []float32) any {
	if c.db.Engine == "postgres" {
		if len(v) < pgDimensions {
			v = append(v[:len(v):len(v)], make([]float32, pgDimensions-len(v))...)
		}
		return pgvector.NewHalfVector(v)
	}
	return encodeVector(v)
}

// vectorSparse is the first byte of a sparse vector blob on SQLite.
const vectorSparse = 1

// encodeVector is v as a SQLite blob, in one of two formats, both exact:
//
//   - dense: v's values as little-endian float32s, 4 bytes each (the only
//     format before the sparse one, so every older blob is dense);
//   - sparse: the byte vectorSparse, then for each non-zero value in index
//     order its index as a little-endian uint16 and the value as a
//     little-endian float32, 6 bytes each.
//
// A dense blob's length is a multiple of 4 and a sparse one's is odd, so
// the length tells them apart (cosine decodes both). The sparse format is
// used when it is smaller: the offline hash embedder's vectors have a few
// hundred non-zero values in 2,000, so their blobs shrink about 5×, and
// with them the pages SQLite writes through its WAL (BENCHMARKS.md, issue 4).
func encodeVector(v []float32) []byte {
	nonZero := 0
	for _, f := range v {
		if f != 0 {
			nonZero++
		}
	}
	if len(v) > 1<<16 || 1+6*nonZero >= 4*len(v) {
		b := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
		}
		return b
	}
	b := make([]byte, 1, 1+6*nonZero)
	b[0] = vectorSparse
	for i, f := range v {
		if f != 0 {
			b = binary.LittleEndian.AppendUint16(b, uint16(i))
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
	}
	return b
}

// DeleteDocument removes everything the tenant database holds of a
// document: bytes, pages, chunks, page images and conversations.
func (c Content) DeleteDocument(ctx context.Context, docID string) error {
	return c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM messages WHERE conversation_id IN (SELECT id FROM conversations WHERE document_id = ?)", docID); err != nil {
			return fmt.Errorf("rag: delete messages of %s: %w", docID, err)
		}
		for _, table := range []string{"conversations", "chunks", "pages", "page_images", "files"} {
			if _, err := tx.NewDelete().Table(table).Where("document_id = ?", docID).Exec(ctx); err != nil {
				return fmt.Errorf("rag: delete %s of %s: %w", table, docID, err)
			}
		}
		return nil
	})
}

// Counts returns how many pages and chunks of a document the tenant
// database holds, and whether its file is there.
func (c Content) Counts(ctx context.Context, docID string) (pages, chunks int, file bool, err error) {
	count := func(table string) (int, error) {
		n, err := c.db.NewSelect().Table(table).Where("document_id = ?", docID).Count(ctx)
		return int(n), err
	}
	if pages, err = count("pages"); err != nil {
		return 0, 0, false, err
	}
	if chunks, err = count("chunks"); err != nil {
		return 0, 0, false, err
	}
	files, err := count("files")
	return pages, chunks, files == 1, err
}

// metaEmbeddingModel is the meta key of the embedding model a tenant
// database's vectors were made with.
const metaEmbeddingModel = "embedding_model"

// metaEmbeddingDims is the meta key of that model's dimensions.
const metaEmbeddingDims = "embedding_dimensions"

// EmbeddingModel returns the model the tenant database's vectors were made
// with, or "" before the first document.
func (c Content) EmbeddingModel(ctx context.Context) (string, error) {
	var model string
	err := c.db.NewSelect().Table("meta").Column("value").Where("key = ?", metaEmbeddingModel).Scan(ctx, &model)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("rag: read embedding model: %w", err)
	}
	return model, nil
}

// RecordEmbeddingModel records the model (and its dimensions) the tenant
// database's vectors are made with, if it records none yet, and returns the
// model it records afterwards: this one, or another that a concurrent
// writer recorded first (which the caller must not write vectors beside).
func (c Content) RecordEmbeddingModel(ctx context.Context, model string, dims int) (string, error) {
	err := c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", metaEmbeddingModel, model)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, metaUpsert, metaEmbeddingDims, strconv.Itoa(dims))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("rag: record embedding model: %w", err)
	}
	return c.EmbeddingModel(ctx)
}

// metaUpsert writes a meta row (key, value).
const metaUpsert = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"

// modelMeta is the meta rows, by key, that record an embedding model.
func modelMeta(model string, dims int) map[string]string {
	return map[string]string{metaEmbeddingModel: model, metaEmbeddingDims: strconv.Itoa(dims)}
}

// checkWidth refuses vectors wider than a tenant database stores, on
// either engine, so no workspace ever holds vectors of a width PostgreSQL
// could not take.
func checkWidth(vectors [][]float32) error {
	if len(vectors) > 0 && len(vectors[0]) > pgDimensions {
		return fmt.Errorf("rag: the embedding model makes %d-dimensional vectors; silo stores at most %d", len(vectors[0]), pgDimensions)
	}
	return nil
}

// embedDocument embeds the chunks of one document, adjusted as a whole when
// the embedder wants that.
func embedDocument(ctx context.Context, e Embedder, texts []string) ([][]float32, error) {
	vectors, err := e.Embed(ctx, texts)
	if err != nil {
		return nil, err
	}
	if a, ok := e.(DocumentAdjuster); ok {
		a.AdjustDocument(vectors)
	}
	return vectors, nil
}
