package handlers

import (
	"errors"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"silo/handlers/access"
	"silo/models"
	"silo/store"
	"silo/web"
)

// maxTitleLength bounds a document's title, in characters.
const maxTitleLength = 200

// renameDocument is the document page's rename form (field title).
func (h *Handler) renameDocument(c *gin.Context) {
	doc, ok := h.UserDocument(c)
	if ok && h.rename(c, doc, c.PostForm("title")) {
		h.Notify(c, "Renamed to “"+doc.Title+"”.")
		web.Redirect(c, "/documents/"+doc.PublicID)
	}
}

// apiRenameDocument answers PATCH /api/v1/documents/{id} {title}: the
// document, renamed.
func (h *Handler) apiRenameDocument(c *gin.Context) {
	doc, ok := h.UserDocument(c)
	if !ok {
		return
	}
	var req struct {
		Title string `json:"title"`
	}
	if err := access.DecodeJSON(c, &req); err != nil {
		h.Fail(c, http.StatusBadRequest, err.Error(), nil)
		return
	}
	if h.rename(c, doc, req.Title) {
		c.JSON(http.StatusOK, newDocumentJSON(doc))
	}
}

// rename checks a new title and gives it to doc; when it cannot, it has
// answered with the reason and reports false.
func (h *Handler) rename(c *gin.Context, doc *models.Document, title string) bool {
	title, problem := access.CheckTitle(title, maxTitleLength)
	if problem != "" {
		h.Fail(c, http.StatusUnprocessableEntity, problem, nil)
		return false
	}
	if err := h.store.RenameDocument(c.Request.Context(), doc.UserID, doc.ID, title); err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return false
	}
	doc.Title = title
	return true
}

// downloadDocument sends a document's original PDF as a download named as
// it was uploaded.
func (h *Handler) downloadDocument(c *gin.Context) {
	doc, content, release, ok := h.OpenUserDocument(c)
	if !ok {
		return
	}
	defer release()
	pdf, err := content.File(c.Request.Context(), doc.PublicID)
	if errors.Is(err, store.ErrNoFile) {
		h.Fail(c, http.StatusNotFound, "The document's file is not there.", nil)
		return
	}
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	c.Header("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": doc.FileName}))
	c.Data(http.StatusOK, "application/pdf", pdf)
}
