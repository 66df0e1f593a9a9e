package handlers

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"silo/models"
	"silo/pdf"
)

// pageBoxes answers GET /documents/:id/pages/:n/boxes?text=…: where text
// (a citation's snippet) lies on page n of the signed-in user's ready
// document, as {"boxes": [{"x", "y", "w", "h"}]} in fractions of the page
// image, one box a line; the list is empty when the page does not have the
// text. The PDF reader child looks (see pdf.Extractor.Locate). A text over
// pdf.MaxLocateText bytes is refused with 422; the same pages as for
// pageImage are 404.
func (h *Handler) pageBoxes(c *gin.Context) {
	doc, n, ok := h.readyPage(c)
	if !ok {
		return
	}
	text := c.Query("text")
	if len(text) > pdf.MaxLocateText {
		h.Fail(c, http.StatusUnprocessableEntity, "The text to find is too long.", nil)
		return
	}
	ctx := c.Request.Context()
	content, release, ok := h.OpenTenant(c, doc)
	if !ok {
		return
	}
	defer release()
	var boxes []pdf.Box
	err := withPDF(ctx, content, doc.PublicID, func(file []byte) (err error) {
		boxes, err = h.readers.Extractor.Locate(ctx, file, n, text)
		return err
	})
	if ctx.Err() != nil {
		return // the client has gone
	}
	if err != nil {
		h.failPage(c, n, "read", err)
		return
	}
	if boxes == nil {
		boxes = []pdf.Box{}
	}
	c.JSON(http.StatusOK, gin.H{"boxes": boxes})
}

// readyPage loads the signed-in user's document and the page number of the
// route's :n; when the document is not ready or has no such page (another
// user's document, an unknown id, page "0", "01" or past the last), it has
// answered 404 and ok is false.
func (h *Handler) readyPage(c *gin.Context) (doc *models.Document, n int, ok bool) {
	if doc, ok = h.UserDocument(c); !ok {
		return nil, 0, false
	}
	n, err := strconv.Atoi(c.Param("n"))
	// One address per page: "01" and "+1" are not page 1.
	if err != nil || strconv.Itoa(n) != c.Param("n") || n < 1 || n > doc.Pages || doc.Status != models.DocumentReady {
		h.Fail(c, http.StatusNotFound, "There is no such page.", nil)
		return nil, 0, false
	}
	return doc, n, true
}
