package rag

import (
	"context"
	"fmt"
)

// Chunks returns a document's chunks in order: the passages search ranks.
func (c Content) Chunks(ctx context.Context, docID string) ([]Chunk, error) {
	var out []Chunk
	err := c.db.NewSelect().Table("chunks").Column("text", "page", "page_end", "position").
		Where("document_id = ?", docID).Order("position").Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("rag: read chunks of %s: %w", docID, err)
	}
	return out, nil
}
