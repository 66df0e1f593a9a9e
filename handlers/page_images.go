package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/singleflight"

	"silo/models"
	"silo/rag"
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
	img, err := h.pagePNG(c.Request.Context(), doc, n)
	var xe *rag.ExtractError
	switch {
	case errors.Is(err, rag.ErrNoPage), errors.Is(err, rag.ErrNoFile):
		h.fail(c, http.StatusNotFound, "There is no such page.", err)
		return
	case errors.As(err, &xe):
		h.fail(c, http.StatusInternalServerError, "Page "+strconv.Itoa(n)+" could not be drawn: "+xe.Reason()+".", err)
		return
	case err != nil:
		h.fail(c, http.StatusInternalServerError, "", err)
		return
	}
	sum := sha256.Sum256(img)
	c.Header("Cache-Control", "private, max-age="+strconv.Itoa(int(pageImageMaxAge.Seconds())))
	c.Header("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	c.Header("Content-Type", "image/png")
	// ServeContent answers a matching If-None-Match with 304.
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, bytes.NewReader(img))
}

// pagePNG returns page n of doc as a PNG from the cache in the user's
// tenant database, or draws it in the PDF reader child and caches it.
func (h *Handler) pagePNG(ctx context.Context, doc *models.Document, n int) ([]byte, error) {
	content, release, err := h.tenantContent(ctx, doc)
	if err != nil {
		return nil, err
	}
	defer release()
	img, err := content.PageImage(ctx, doc.PublicID, n)
	if !errors.Is(err, rag.ErrNoPageImage) {
		return img, err
	}
	out, err, _ := pageRenders.Do(doc.PublicID+"/"+strconv.Itoa(n), func() (any, error) {
		// The requests waiting here share this render, so it does not end
		// when the first of them gives up; the reader's timeout bounds it.
		ctx := context.WithoutCancel(ctx)
		// A render that ended just before this one started cached the page.
		if img, err := content.PageImage(ctx, doc.PublicID, n); !errors.Is(err, rag.ErrNoPageImage) {
			return img, err
		}
		pdf, err := content.File(ctx, doc.PublicID)
		if err != nil {
			return nil, err
		}
		renderSlots <- struct{}{}
		img, err := h.docs.Extractor.Render(ctx, pdf, n)
		<-renderSlots
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
