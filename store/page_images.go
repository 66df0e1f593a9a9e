package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNoPageImage means a page's image is not in the tenant database (yet).
var ErrNoPageImage = errors.New("store: the page's image is not cached")

// PageImage returns the PNG of page n (from 1) of a document that
// SavePageImage cached, or ErrNoPageImage.
func (c Content) PageImage(ctx context.Context, docID string, n int) ([]byte, error) {
	var img []byte
	err := c.db.NewSelect().Table("page_images").Column("png").
		Where("document_id = ?", docID).Where("page = ?", n).Scan(ctx, &img)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoPageImage
	}
	if err != nil {
		return nil, fmt.Errorf("store: read image of page %d of %s: %w", n, docID, err)
	}
	return img, nil
}

// SavePageImage caches the PNG of page n of a document (see
// Extractor.Render); an image already cached for the page is kept. The
// document's file must be in the tenant database: the image is deleted with
// it.
func (c Content) SavePageImage(ctx context.Context, docID string, n int, img []byte) error {
	err := c.execBound(ctx, "INSERT INTO page_images (document_id, page, png) VALUES (?, ?, ?) ON CONFLICT (document_id, page) DO NOTHING", docID, n, img)
	if err != nil {
		return fmt.Errorf("store: save image of page %d of %s: %w", n, docID, err)
	}
	return nil
}
