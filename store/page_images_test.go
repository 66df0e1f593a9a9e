package store_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"testing"

	"silo/models"
	"silo/store"
	"silo/testrig/pdftest"
	"silo/testrig/tenantdata"
)

// A page image is cached per document and page, keeps the first image
// saved, needs the document's file, and goes when the document does.
func TestPageImageCache(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		c := store.New(tenantDB(t, engine))
		file := pdftest.Minimal("(Two pages)", "[0 0 612 792]", "Hello from page one", "And page two")
		doc, other := models.NewPublicID(), models.NewPublicID()
		for _, id := range []string{doc, other} {
			if err := c.SaveFile(ctx, id, file); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.PageImage(ctx, doc, 2); !errors.Is(err, store.ErrNoPageImage) {
			t.Fatalf("before rendering: got %v, want ErrNoPageImage", err)
		}
		var img bytes.Buffer
		if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 61, 79))); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{doc, other} {
			if err := c.SavePageImage(ctx, id, 2, img.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.SavePageImage(ctx, doc, 2, []byte("a second image")); err != nil {
			t.Fatalf("saving a page again: %v", err)
		}
		got, err := c.PageImage(ctx, doc, 2)
		if err != nil || !bytes.Equal(got, img.Bytes()) {
			t.Fatalf("got %d bytes (%v), want the %d bytes saved first", len(got), err, img.Len())
		}
		if _, err := c.PageImage(ctx, doc, 1); !errors.Is(err, store.ErrNoPageImage) {
			t.Errorf("page 1, never saved: got %v, want ErrNoPageImage", err)
		}
		if err := c.SavePageImage(ctx, models.NewPublicID(), 1, img.Bytes()); err == nil {
			t.Error("saved an image of a document without a file, want an error")
		}

		if err := c.DeleteDocument(ctx, doc); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PageImage(ctx, doc, 2); !errors.Is(err, store.ErrNoPageImage) {
			t.Errorf("after deleting the document: got %v, want ErrNoPageImage", err)
		}
		if got, err := c.PageImage(ctx, other, 2); err != nil || !bytes.Equal(got, img.Bytes()) {
			t.Errorf("another document's image after the delete: got %d bytes (%v), want it kept", len(got), err)
		}
	})
}
