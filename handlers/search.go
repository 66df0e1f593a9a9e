package handlers

import (
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"silo/handlers/access"
	"silo/models"
	"silo/search"
	"silo/store"
	"silo/web"
)

// Search limits.
const (
	defaultTopK = 5
	maxTopK     = 50
)

// searchRequest is the body of POST /api/v1/documents/{id}/search and of
// POST /api/v1/search, which also takes the documents to search.
type searchRequest struct {
	Query     string   `json:"query"`
	K         int      `json:"k"`
	Mode      string   `json:"mode"`      // hybrid (default), vector or fulltext
	Documents []string `json:"documents"` // POST /api/v1/search: public ids; none means every ready document
}

// resultJSON is one passage as the API shows it.
type resultJSON struct {
	DocumentID string  `json:"document_id"`
	Title      string  `json:"title"`
	Text       string  `json:"text"`
	Page       int     `json:"page"`
	PageEnd    int     `json:"page_end"`
	Score      float64 `json:"score"`
}

// apiSearch answers POST /api/v1/documents/{id}/search {query, k, mode}:
// the k best passages of the document, best first, with their pages.
func (h *Handler) apiSearch(c *gin.Context) {
	doc, ok := h.ReadyDocument(c)
	if !ok {
		return
	}
	req, ok := h.readSearch(c)
	if !ok {
		return
	}
	h.answerSearch(c, doc.UserID, []*models.Document{doc}, req)
}

// apiWorkspaceSearch answers POST /api/v1/search {query, k, mode,
// documents}: the k best passages of the chosen documents (every ready one
// of the caller's when documents is empty), ranked together, best first.
// A document that is not the caller's is 404, one that is not ready 409.
func (h *Handler) apiWorkspaceSearch(c *gin.Context) {
	req, ok := h.readSearch(c)
	if !ok {
		return
	}
	u := web.CurrentUser(c)
	docs, ok := h.ChosenDocuments(c, u.ID, req.Documents)
	if !ok {
		return
	}
	h.answerSearch(c, u.ID, docs, req)
}

// readSearch reads and checks a search request; when it is not right, it
// has answered with the reason and ok is false.
func (h *Handler) readSearch(c *gin.Context) (req searchRequest, ok bool) {
	if err := access.DecodeJSON(c, &req); err != nil {
		h.Fail(c, http.StatusBadRequest, err.Error(), nil)
		return req, false
	}
	req.Query = strings.TrimSpace(req.Query)
	switch {
	case req.Query == "":
		h.Fail(c, http.StatusUnprocessableEntity, "query must not be empty", nil)
		return req, false
	case utf8.RuneCountInString(req.Query) > access.MaxQueryLength:
		h.Fail(c, http.StatusUnprocessableEntity, "query is longer than 2000 characters", nil)
		return req, false
	case req.K == 0:
		req.K = defaultTopK
	case req.K < 1 || req.K > maxTopK:
		h.Fail(c, http.StatusUnprocessableEntity, "k must be between 1 and 50", nil)
		return req, false
	}
	if req.Mode == "" {
		req.Mode = search.ModeHybrid
	}
	if req.Mode != search.ModeHybrid && req.Mode != search.ModeVector && req.Mode != search.ModeFullText {
		h.Fail(c, http.StatusUnprocessableEntity, "mode must be hybrid, vector or fulltext", nil)
		return req, false
	}
	return req, true
}

// answerSearch searches docs, the user's, in their tenant database and
// answers with the passages found, each with its document's id and title.
func (h *Handler) answerSearch(c *gin.Context, userID int64, docs []*models.Document, req searchRequest) {
	ctx := c.Request.Context()
	ids := access.DocumentIDs(docs)
	titles := make(map[string]string, len(docs))
	for _, d := range docs {
		titles[d.PublicID] = d.Title
	}
	var results []search.Result
	content, release, err := h.UserContent(ctx, userID)
	if err == nil {
		results, err = h.searcher.Search(ctx, content, ids, req.Query, req.Mode, req.K)
		release()
	}
	if ctx.Err() != nil {
		return // the client has gone while it waited for a search slot
	}
	if errors.Is(err, store.ErrOtherModel) {
		h.Fail(c, http.StatusConflict, "The workspace is being re-embedded for a new embedding model; vector search works again when that is done (hybrid and fulltext work now).", nil)
		return
	}
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	out := make([]resultJSON, len(results))
	for i, r := range results {
		out[i] = resultJSON{DocumentID: r.DocumentID, Title: titles[r.DocumentID], Text: r.Text, Page: r.Page, PageEnd: r.PageEnd, Score: r.Score}
	}
	c.JSON(http.StatusOK, gin.H{"results": out})
}
