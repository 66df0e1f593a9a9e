// Package store keeps a tenant's content in the tenant's own database:
// the documents' bytes, page texts, chunks with their vectors and full text,
// conversations, cached page images, and the embedding model the vectors
// were made with (re-embedding them for a new one). What differs between
// SQLite and PostgreSQL is behind one engine interface (sqlite.go,
// postgres.go), chosen once in New.
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"silo/chunk"
	"silo/embed"
	"silo/schema"
	"silo/tenant"

	"github.com/uptrace/bun"
)

// ErrNoFile means a document's bytes are not in the tenant database.
var ErrNoFile = errors.New("store: the document's file is missing")

// ErrOtherModel means the tenant's vectors are another embedding model's
// than the caller's: they would rank a query's vector at random, and new
// vectors must not be written beside them (the tenant is being re-embedded
// for a new model, or two processes run different models, as in a rolling
// deploy).
var ErrOtherModel = errors.New("store: the workspace's vectors are being made again for a new embedding model")

// Content is what one tenant database holds of its documents.
type Content struct {
	db  *bun.DB
	eng engine
}

// engine is what a tenant database engine does its own way.
type engine interface {
	// bind numbers a statement's ? placeholders as the driver wants them.
	bind(query string) string
	// replaceIndex is Content.ReplaceIndex, its arguments checked.
	replaceIndex(ctx context.Context, docID, model string, pages []string, chunks []chunk.Chunk, vectors [][]float32) error
	// nearest is Content.Nearest for a query vector of non-zero length and
	// at least one document.
	nearest(ctx context.Context, docs []string, q []float32, n int) ([]Hit, error)
	// matching is Content.Matching for at least one document.
	matching(ctx context.Context, docs []string, query string, n int) ([]Hit, error)
	// reembed is Content.Reembed on a connection of the tenant's pool.
	reembed(ctx context.Context, conn *sql.Conn, e embed.Embedder) error
	// server reports whether searches run on a database server, not in
	// this process: two of them at once then cost this process nothing.
	server() bool
}

// New reads and writes documents in a tenant database.
func New(db *tenant.DB) Content {
	if db.Engine == tenant.EnginePostgres {
		return Content{db: db.DB, eng: postgres{db.DB}}
	}
	return Content{db: db.DB, eng: sqlite{db.DB}}
}

// Hit is a chunk a search found, with its score (higher is better).
type Hit struct {
	ChunkID    int64
	DocumentID string
	Text       string
	Page       int
	PageEnd    int
	Position   int
	Score      float64
}

// Concurrent reports whether a vector search and a full-text search of the
// tenant are better run at once: on a server they are, in this process
// (SQLite) they compete for the same CPUs.
func (c Content) Concurrent() bool { return c.eng.server() }

// Nearest returns the n chunks of the documents (public ids) closest to
// the query vector q by cosine similarity, best first. On PostgreSQL the
// chunks of one long document come from its HNSW index (see annChunks);
// other searches rank every chunk exactly, as on SQLite. A vector of zero
// length, or no document, finds nothing.
func (c Content) Nearest(ctx context.Context, docs []string, q []float32, n int) ([]Hit, error) {
	if embed.Norm(q) == 0 || len(docs) == 0 {
		return nil, nil
	}
	hits, err := c.eng.nearest(ctx, docs, q, n)
	if err != nil {
		return nil, fmt.Errorf("store: vector search: %w", err)
	}
	return hits, nil
}

// Matching returns the n chunks of the documents that best match the
// query's words, best first: cover density over an OR of the query's
// lexemes, weighted by rarity among the documents' chunks, on PostgreSQL;
// FTS5's bm25 on SQLite. No document finds nothing.
func (c Content) Matching(ctx context.Context, docs []string, query string, n int) ([]Hit, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	hits, err := c.eng.matching(ctx, docs, query, n)
	if err != nil {
		return nil, fmt.Errorf("store: full-text search: %w", err)
	}
	return hits, nil
}

// SaveFile stores a document's original bytes.
func (c Content) SaveFile(ctx context.Context, docID string, pdf []byte) error {
	sum := sha256.Sum256(pdf)
	if err := c.execBound(ctx, "INSERT INTO files (document_id, content, sha256) VALUES (?, ?, ?)", docID, pdf, hex.EncodeToString(sum[:])); err != nil {
		return fmt.Errorf("store: save file of %s: %w", docID, err)
	}
	return nil
}

// execBound runs a statement (with ? placeholders) with the driver's bound
// parameters, not bun's formatting, which would write a blob into the SQL
// text as a hex literal twice its size.
func (c Content) execBound(ctx context.Context, query string, args ...any) error {
	_, err := c.db.DB.ExecContext(ctx, c.eng.bind(query), args...)
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
		return nil, fmt.Errorf("store: read file of %s: %w", docID, err)
	}
	return b, nil
}

// ReplaceIndex writes a document's pages (pages[i] is page i+1) and chunks
// with their vectors, made by the embedding model model, in one
// transaction, in place of any earlier ones (a retried ingestion starts
// clean). It writes nothing and returns ErrOtherModel when the tenant has
// recorded another model by then: a re-embedding for another model swapped
// its vectors in while these were made (two silo processes configured with
// different models, as in a rolling deploy).
func (c Content) ReplaceIndex(ctx context.Context, docID, model string, pages []string, chunks []chunk.Chunk, vectors [][]float32) error {
	if len(vectors) != len(chunks) {
		return fmt.Errorf("store: %d vectors for %d chunks", len(vectors), len(chunks))
	}
	if err := checkWidth(vectors); err != nil {
		return err
	}
	return c.eng.replaceIndex(ctx, docID, model, pages, chunks, vectors)
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

// DeleteDocument removes everything the tenant database holds of a
// document: bytes, pages, chunks, page images and conversations.
func (c Content) DeleteDocument(ctx context.Context, docID string) error {
	return c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM messages WHERE conversation_id IN (SELECT id FROM conversations WHERE document_id = ?)", docID); err != nil {
			return fmt.Errorf("store: delete messages of %s: %w", docID, err)
		}
		for _, table := range []string{"conversations", "chunks", "pages", "page_images", "files"} {
			if _, err := tx.NewDelete().Table(table).Where("document_id = ?", docID).Exec(ctx); err != nil {
				return fmt.Errorf("store: delete %s of %s: %w", table, docID, err)
			}
		}
		return nil
	})
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
		return "", fmt.Errorf("store: read embedding model: %w", err)
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
		return "", fmt.Errorf("store: record embedding model: %w", err)
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
	if len(vectors) > 0 && len(vectors[0]) > schema.VectorDims {
		return fmt.Errorf("store: the embedding model makes %d-dimensional vectors; silo stores at most %d", len(vectors[0]), schema.VectorDims)
	}
	return nil
}

// Neighbours returns the chunks of a document at the given positions (in
// no order); a position without a chunk is left out.
func (c Content) Neighbours(ctx context.Context, docID string, positions []int) ([]chunk.Chunk, error) {
	var out []chunk.Chunk
	err := c.db.NewSelect().Table("chunks").Column("text", "page", "page_end", "position").
		Where("document_id = ? AND position IN (?)", docID, bun.List(positions)).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("store: read the neighbours of chunks of %s: %w", docID, err)
	}
	return out, nil
}
