package handlers

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"silo/models"
	"silo/search"
	"silo/store"
)

// Search limits.
const (
	defaultTopK    = 5
	maxTopK        = 50
	maxQueryLength = 2000
)

// searchRequest is the body of POST /api/v1/documents/{id}/search.
type searchRequest struct {
	Query string `json:"query"`
	K     int    `json:"k"`
	Mode  string `json:"mode"` // hybrid (default), vector or fulltext
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

// apiSearch answers POST /api/v1/documents/{id}/search {query, k}: the k
// best passages of the document, best first, with their pages.
func (h *Handler) apiSearch(c *gin.Context) {
	doc, ok := h.readyDocument(c)
	if !ok {
		return
	}
	var req searchRequest
	if err := decodeJSON(c, &req); err != nil {
		h.Fail(c, http.StatusBadRequest, err.Error(), nil)
		return
	}
	req.Query = strings.TrimSpace(req.Query)
	switch {
	case req.Query == "":
		h.Fail(c, http.StatusUnprocessableEntity, "query must not be empty", nil)
		return
	case utf8.RuneCountInString(req.Query) > maxQueryLength:
		h.Fail(c, http.StatusUnprocessableEntity, "query is longer than 2000 characters", nil)
		return
	case req.K == 0:
		req.K = defaultTopK
	case req.K < 1 || req.K > maxTopK:
		h.Fail(c, http.StatusUnprocessableEntity, "k must be between 1 and 50", nil)
		return
	}
	if req.Mode == "" {
		req.Mode = search.ModeHybrid
	}
	if req.Mode != search.ModeHybrid && req.Mode != search.ModeVector && req.Mode != search.ModeFullText {
		h.Fail(c, http.StatusUnprocessableEntity, "mode must be hybrid, vector or fulltext", nil)
		return
	}
	results, err := h.search(c, doc, req.Query, req.Mode, req.K)
	if c.Request.Context().Err() != nil {
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
		out[i] = resultJSON{DocumentID: r.DocumentID, Title: doc.Title, Text: r.Text, Page: r.Page, PageEnd: r.PageEnd, Score: r.Score}
	}
	c.JSON(http.StatusOK, gin.H{"results": out})
}

// search runs a query against a document in the signed-in user's database.
func (h *Handler) search(c *gin.Context, doc *models.Document, query, mode string, k int) ([]search.Result, error) {
	ctx := c.Request.Context()
	content, release, err := h.tenantContent(ctx, doc)
	if err != nil {
		return nil, err
	}
	defer release()
	return h.searcher.Search(ctx, content, doc.PublicID, query, mode, k)
}

// decodeJSON reads a JSON body into v, with errors a client can act on.
func decodeJSON(c *gin.Context, v any) error {
	if !strings.HasPrefix(c.ContentType(), "application/json") {
		return errors.New("send the request as application/json")
	}
	err := c.ShouldBindJSON(v)
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return errors.New("the request body is too large")
	case errors.Is(err, io.EOF):
		return errors.New("the request body is empty")
	}
	return errors.New("the request body is not valid JSON for this request")
}
