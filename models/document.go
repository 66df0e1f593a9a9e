package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Document statuses.
const (
	DocumentQueued     = "queued"
	DocumentProcessing = "processing"
	DocumentReady      = "ready"
	DocumentFailed     = "failed"
)

// Document is the control plane's index entry for one uploaded PDF; its
// bytes and text live in the owner's tenant database.
type Document struct {
	bun.BaseModel `bun:"table:documents"`

	ID        int64     `bun:"id,pk,autoincrement"`
	PublicID  string    `bun:"public_id,notnull"`
	UserID    int64     `bun:"user_id,notnull"`
	Title     string    `bun:"title,notnull"`
	FileName  string    `bun:"file_name,notnull"`
	SizeBytes int64     `bun:"size_bytes,notnull"`
	Pages     int       `bun:"pages,notnull"`
	Status    string    `bun:"status,notnull"`
	Error     string    `bun:"error,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`

	PagesDone  int        `bun:"pages_done,notnull"`  // pages extracted so far
	EmptyPages int        `bun:"empty_pages,notnull"` // pages without a text layer
	Chunks     int        `bun:"chunks,notnull"`
	Attempts   int        `bun:"attempts,notnull"`
	LeaseUntil *time.Time `bun:"lease_until"`
	// SHA256 is the hex SHA-256 of the document's bytes.
	SHA256 string `bun:"sha256,notnull"`
}

// ReasonPasswordProtected is why an encrypted PDF failed; silo keeps no
// bytes of it, so it cannot be retried.
const ReasonPasswordProtected = "the PDF is password-protected"

// Retryable reports whether a failed document may be queued again.
func (d *Document) Retryable() bool {
	return d.Status == DocumentFailed && d.Error != ReasonPasswordProtected
}

// Busy reports whether the document is still being ingested.
func (d *Document) Busy() bool { return d.Status == DocumentQueued || d.Status == DocumentProcessing }

// Percent is how far ingestion has come, 0 to 100.
func (d *Document) Percent() int {
	switch {
	case d.Status == DocumentReady:
		return 100
	case d.Pages == 0:
		return 0
	}
	return min(99, 100*d.PagesDone/d.Pages)
}

// DocumentsByUser returns the user's documents, newest first.
func (s *Store) DocumentsByUser(ctx context.Context, userID int64) ([]Document, error) {
	docs := []Document{}
	err := s.DB.NewSelect().Model(&docs).
		Where("user_id = ?", userID).
		Order("created_at DESC", "id DESC").
		Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("models: documents of user %d: %w", userID, err)
	}
	return docs, nil
}

// InsertDocument adds a document to the index with a fresh public id.
func (s *Store) InsertDocument(ctx context.Context, d *Document) error {
	now := time.Now().UTC()
	if d.PublicID == "" {
		d.PublicID = NewPublicID()
	}
	d.CreatedAt, d.UpdatedAt = now, now
	if _, err := s.DB.NewInsert().Model(d).Exec(ctx); err != nil {
		return fmt.Errorf("models: insert document: %w", err)
	}
	return nil
}

// Document returns the user's document with that public id; another user's
// document is ErrNotFound, as is one that does not exist.
func (s *Store) Document(ctx context.Context, userID int64, publicID string) (*Document, error) {
	d := new(Document)
	err := s.DB.NewSelect().Model(d).Where("public_id = ? AND user_id = ?", publicID, userID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("models: fetch document: %w", err)
	}
	return d, nil
}

// DocumentsIn returns those of the user's documents whose public ids are
// among publicIDs, in no order; an id of another user's document, or of
// none, is left out.
func (s *Store) DocumentsIn(ctx context.Context, userID int64, publicIDs []string) ([]Document, error) {
	docs := []Document{}
	if len(publicIDs) == 0 {
		return docs, nil
	}
	err := s.DB.NewSelect().Model(&docs).
		Where("user_id = ? AND public_id IN (?)", userID, bun.List(publicIDs)).
		Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("models: documents of user %d: %w", userID, err)
	}
	return docs, nil
}

// CountDocuments returns how many documents the user has.
func (s *Store) CountDocuments(ctx context.Context, userID int64) (int, error) {
	n, err := s.DB.NewSelect().Model((*Document)(nil)).Where("user_id = ?", userID).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("models: count documents: %w", err)
	}
	return int(n), nil
}

// DocumentBySHA256 returns the user's oldest document that is not failed
// whose bytes have the SHA-256 sum (hex), or ErrNotFound.
func (s *Store) DocumentBySHA256(ctx context.Context, userID int64, sum string) (*Document, error) {
	doc := new(Document)
	err := s.DB.NewSelect().Model(doc).Where("user_id = ? AND sha256 = ? AND status <> ?", userID, sum, DocumentFailed).
		Order("id").Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("models: document by hash: %w", err)
	}
	return doc, nil
}

// RenameDocument sets the title of a user's document.
func (s *Store) RenameDocument(ctx context.Context, userID, id int64, title string) error {
	_, err := s.DB.NewUpdate().Model((*Document)(nil)).Set("title = ?", title).Where("id = ? AND user_id = ?", id, userID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("models: rename document %d: %w", id, err)
	}
	return nil
}

// DeleteDocument removes the document from the index.
func (s *Store) DeleteDocument(ctx context.Context, id int64) error {
	if _, err := s.DB.NewDelete().Model((*Document)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("models: delete document %d: %w", id, err)
	}
	return nil
}

// LeaseDocument takes the oldest document waiting for ingestion, queued or
// left processing by a worker whose lease ran out, and leases it for d. It
// returns ErrNotFound when there is nothing to do.
func (s *Store) LeaseDocument(ctx context.Context, d time.Duration) (*Document, error) {
	for {
		now := time.Now().UTC()
		doc := new(Document)
		err := s.DB.NewSelect().Model(doc).
			Where("status = ? OR (status = ? AND lease_until < ?)", DocumentQueued, DocumentProcessing, now).
			Order("id").Limit(1).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("models: next document: %w", err)
		}
		res, err := s.DB.NewUpdate().Model((*Document)(nil)).
			Set("status = ?", DocumentProcessing).
			Set("lease_until = ?", now.Add(d)).
			Set("attempts = attempts + 1").
			Set("updated_at = ?", now).
			Where("id = ?", doc.ID).
			Where("status = ? OR (status = ? AND lease_until < ?)", DocumentQueued, DocumentProcessing, now).
			Exec(ctx)
		if err != nil {
			return nil, fmt.Errorf("models: lease document %d: %w", doc.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			doc.Status, doc.Attempts = DocumentProcessing, doc.Attempts+1
			return doc, nil
		}
		// Another worker took it first; look again.
	}
}

// RenewDocumentLease extends a lease while work goes on and records pages
// done; it reports false when the lease is no longer this worker's (the
// document was deleted, or retried elsewhere).
func (s *Store) RenewDocumentLease(ctx context.Context, id int64, d time.Duration, pagesDone, pages int) (bool, error) {
	now := time.Now().UTC()
	res, err := s.DB.NewUpdate().Model((*Document)(nil)).
		Set("lease_until = ?", now.Add(d)).
		Set("pages_done = ?", pagesDone).
		Set("pages = ?", pages).
		Set("updated_at = ?", now).
		Where("id = ? AND status = ?", id, DocumentProcessing).
		Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("models: renew lease of document %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// FinishDocument stores the outcome of ingestion: status ready or failed
// with the document's counts and error, and releases the lease.
func (s *Store) FinishDocument(ctx context.Context, d *Document) error {
	d.UpdatedAt = time.Now().UTC()
	d.LeaseUntil = nil
	_, err := s.DB.NewUpdate().Model(d).
		Column("title", "pages", "pages_done", "empty_pages", "chunks", "status", "error", "lease_until", "updated_at").
		WherePK().Exec(ctx)
	if err != nil {
		return fmt.Errorf("models: finish document %d: %w", d.ID, err)
	}
	return nil
}

// RequeueDocument puts a failed document back in the queue with fresh
// attempts.
func (s *Store) RequeueDocument(ctx context.Context, id int64) error {
	_, err := s.DB.NewUpdate().Model((*Document)(nil)).
		Set("status = ?", DocumentQueued).Set("attempts = 0").Set("error = ''").
		Set("pages_done = 0").Set("updated_at = ?", time.Now().UTC()).
		Where("id = ? AND status = ?", id, DocumentFailed).Exec(ctx)
	if err != nil {
		return fmt.Errorf("models: requeue document %d: %w", id, err)
	}
	return nil
}

// DocumentCounts returns how many documents each of the users has.
func (s *Store) DocumentCounts(ctx context.Context, userIDs []int64) (map[int64]int, error) {
	out := make(map[int64]int, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		UserID int64 `bun:"user_id"`
		N      int   `bun:"n"`
	}
	err := s.DB.NewSelect().Model((*Document)(nil)).
		Column("user_id").ColumnExpr("COUNT(*) AS n").
		Where("user_id IN (?)", bun.List(userIDs)).
		Group("user_id").Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("models: document counts: %w", err)
	}
	for _, r := range rows {
		out[r.UserID] = r.N
	}
	return out, nil
}
