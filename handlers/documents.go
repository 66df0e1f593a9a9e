package handlers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"silo/models"
)

// documentsPageData is what documents.html and document_list.html show.
type documentsPageData struct {
	base
	Documents []models.Document
}

// documentsPage lists the signed-in user's documents.
func (h *Handler) documentsPage(c *gin.Context) {
	if !h.workspaceReady(c) {
		h.render(c, http.StatusOK, "documents_pending.html", workspaceData{base: h.page(c, "Setting up your workspace")})
		return
	}
	docs, err := h.store.DocumentsByUser(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		h.fail(c, http.StatusInternalServerError, "", err)
		return
	}
	h.render(c, http.StatusOK, "documents.html", documentsPageData{base: h.page(c, "Your documents"), Documents: docs})
}

// documentJSON is a document as the API shows it.
type documentJSON struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	FileName  string    `json:"file_name"`
	SizeBytes int64     `json:"size_bytes"`
	Status    string    `json:"status"`
	Pages     int       `json:"pages"`
	Error     string    `json:"error"`
	CreatedAt time.Time `json:"created_at"`
}

func newDocumentJSON(d *models.Document) documentJSON {
	return documentJSON{
		ID: d.PublicID, Title: d.Title, FileName: d.FileName, SizeBytes: d.SizeBytes,
		Status: d.Status, Pages: d.Pages, Error: d.Error, CreatedAt: d.CreatedAt,
	}
}

// apiDocuments answers GET /api/v1/documents: the token owner's documents.
func (h *Handler) apiDocuments(c *gin.Context) {
	docs, err := h.store.DocumentsByUser(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		h.fail(c, http.StatusInternalServerError, "", err)
		return
	}
	out := make([]documentJSON, len(docs))
	for i := range docs {
		out[i] = newDocumentJSON(&docs[i])
	}
	c.JSON(http.StatusOK, gin.H{"documents": out})
}
