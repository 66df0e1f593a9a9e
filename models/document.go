package models

import (
	"context"
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
