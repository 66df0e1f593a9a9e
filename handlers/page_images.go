package handlers

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/singleflight"

	"silo/models"
	"silo/pdf"
	"silo/store"
)

// pageImageMaxAge is how long a browser may reuse a page image without
// asking again. A document's bytes never change under its id, so neither do
// its pages' images; the ETag answers the question after that.
const pageImageMaxAge = 24 * time.Hour

// Page renders of this process, shared by every Handler: keys are document
// ids (unique across tenants) and page numbers.
var (
	// pageRenders lets concurrent requests for a page that is not cached
	// yet share one PDF reader child.
	pageRenders singleflight.Group
	// renderSlots bounds the PDF reader children drawing pages at once, so
	// many requests for different pages cannot start a child each: one per
	// CPU, as drawing is CPU-bound and each child may use up to
	// EXTRACT_MEMORY_MB.
	renderSlots = make(chan struct{}, runtime.NumCPU())
)

// pageImage answers GET /documents/:id/pages/:n: page n (from 1) of the
// signed-in user's ready document as a PNG, drawn by the PDF reader child
// the first time and cached in the tenant database. Another user's
// document, an unknown id, a page the document does not have and a document
// that is not ready are all 404.
func (h *Handler) pageImage(c *gin.Context) {
	doc, n, ok := h.readyPage(c)
	if !ok {
		return
	}
	// A page's image never changes: a document's bytes never do, and its
	// first drawing is the one cached. So the tag names the page, and a
	// browser revalidating its copy is answered before the workspace is
	// opened or the image read.
	etag := `"` + doc.PublicID + "-" + strconv.Itoa(n) + `"`
	cacheable := func() {
		c.Header("Cache-Control", "private, max-age="+strconv.Itoa(int(pageImageMaxAge.Seconds())))
		c.Header("ETag", etag)
	}
	if c.GetHeader("If-None-Match") == etag {
		cacheable()
		c.Status(http.StatusNotModified)
		return
	}
	img, err := h.pagePNG(c.Request.Context(), doc, n)
	if err != nil {
		h.failPage(c, n, "drawn", err)
		return
	}
	cacheable()
	c.Header("Content-Type", "image/png")
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, bytes.NewReader(img))
}

// pagePNG returns page n of doc as a PNG from the cache in the user's
// tenant database, or draws it in the PDF reader child and caches it.
func (h *Handler) pagePNG(ctx context.Context, doc *models.Document, n int) ([]byte, error) {
	content, release, err := h.UserContent(ctx, doc.UserID)
	if err != nil {
		return nil, err
	}
	defer release()
	img, err := content.PageImage(ctx, doc.PublicID, n)
	if !errors.Is(err, store.ErrNoPageImage) {
		return img, err
	}
	out, err, _ := pageRenders.Do(doc.PublicID+"/"+strconv.Itoa(n), func() (any, error) {
		// The requests waiting here share this render, so it does not end
		// when the first of them gives up; the reader's timeout bounds it.
		ctx := context.WithoutCancel(ctx)
		// A render that ended just before this one started cached the page.
		if img, err := content.PageImage(ctx, doc.PublicID, n); !errors.Is(err, store.ErrNoPageImage) {
			return img, err
		}
		var img []byte
		err := withPDF(ctx, content, doc.PublicID, func(file []byte) (err error) {
			img, err = h.readers.Extractor.Render(ctx, file, n)
			return err
		})
		if err != nil {
			return nil, err
		}
		return img, content.SavePageImage(ctx, doc.PublicID, n, img)
	})
	if err != nil {
		return nil, err
	}
	return out.([]byte), nil
}

// withPDF waits for a reader slot (children drawing pages and those
// locating text take turns, one per CPU), then reads the document's PDF
// and calls f with it: requests waiting for a slot do not each hold a copy.
func withPDF(ctx context.Context, content store.Content, docID string, f func(pdf []byte) error) error {
	select {
	case renderSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-renderSlots }()
	pdf, err := content.File(ctx, docID)
	if err != nil {
		return err
	}
	return f(pdf)
}

// failPage answers the error of reading page n with the reader child
// (what it could not be: "drawn", "read"): 404 for a page or file the
// document does not have, the reader's reason for a PDF it could not
// read.
func (h *Handler) failPage(c *gin.Context, n int, what string, err error) {
	var xe *pdf.ExtractError
	switch {
	case errors.Is(err, pdf.ErrNoPage), errors.Is(err, store.ErrNoFile):
		h.Fail(c, http.StatusNotFound, "There is no such page.", err)
	case errors.As(err, &xe):
		h.Fail(c, http.StatusInternalServerError, "Page "+strconv.Itoa(n)+" could not be "+what+": "+xe.Reason()+".", err)
	default:
		h.Fail(c, http.StatusInternalServerError, "", err)
	}
}
