// Package access finds what a request may reach of the signed-in person's
// (or the API token holder's) data: their documents in the control plane
// and their tenant database, with the page's or the API's answer when it
// is not theirs (404) or not ready (409). Every handler package reads
// documents through it.
package access

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"silo/models"
	"silo/store"
	"silo/tenant"
	"silo/web"
)

// Request limits.
const (
	// MaxDocumentsSearched bounds the documents one request across
	// documents names.
	MaxDocumentsSearched = 500
	// MaxQueryLength bounds a query or a question, in characters.
	MaxQueryLength = 2000
)

// Access reads the signed-in user's documents and tenant database.
type Access struct {
	*web.Base
	store   *models.Store
	tenants *tenant.Manager
}

// New returns an Access answering refusals through base.
func New(base *web.Base, store *models.Store, tenants *tenant.Manager) *Access {
	return &Access{Base: base, store: store, tenants: tenants}
}

// UserContent opens a user's tenant database. Call release when done.
func (a *Access) UserContent(ctx context.Context, userID int64) (store.Content, func(), error) {
	v, err := a.store.VectorDatabaseByUser(ctx, userID)
	if err != nil {
		return store.Content{}, nil, err
	}
	db, release, err := a.tenants.DB(ctx, v)
	if err != nil {
		return store.Content{}, nil, err
	}
	return store.New(db), release, nil
}

// OpenTenant opens the tenant database of a document's owner for a
// request; when it cannot, it has answered 500 and ok is false. Call
// release when done.
func (a *Access) OpenTenant(c *gin.Context, doc *models.Document) (content store.Content, release func(), ok bool) {
	content, release, err := a.UserContent(c.Request.Context(), doc.UserID)
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return store.Content{}, nil, false
	}
	return content, release, true
}

// FailLookup answers a failed lookup: 404 with msg for a thing the
// document does not have, 500 otherwise.
func (a *Access) FailLookup(c *gin.Context, err error, msg string) {
	if errors.Is(err, store.ErrNotFound) {
		a.Fail(c, http.StatusNotFound, msg, nil)
		return
	}
	a.Fail(c, http.StatusInternalServerError, "", err)
}

// OpenUserDocument loads the signed-in user's document named in the path,
// in whatever state, and opens its tenant database; when it cannot, it has
// answered and ok is false. Call release when done.
func (a *Access) OpenUserDocument(c *gin.Context) (doc *models.Document, content store.Content, release func(), ok bool) {
	if doc, ok = a.UserDocument(c); !ok {
		return nil, store.Content{}, nil, false
	}
	if content, release, ok = a.OpenTenant(c, doc); !ok {
		return nil, store.Content{}, nil, false
	}
	return doc, content, release, true
}

// OpenDocument loads the signed-in user's ready document and opens its
// tenant database; when it cannot, it has answered and ok is false. Call
// release when done.
func (a *Access) OpenDocument(c *gin.Context) (doc *models.Document, content store.Content, release func(), ok bool) {
	if doc, ok = a.ReadyDocument(c); !ok {
		return nil, store.Content{}, nil, false
	}
	if content, release, ok = a.OpenTenant(c, doc); !ok {
		return nil, store.Content{}, nil, false
	}
	return doc, content, release, true
}

// ReadyDocument loads the signed-in user's document and refuses one that
// is not ready to chat with or search.
func (a *Access) ReadyDocument(c *gin.Context) (*models.Document, bool) {
	doc, ok := a.UserDocument(c)
	if !ok {
		return nil, false
	}
	if doc.Status != models.DocumentReady {
		a.Fail(c, http.StatusConflict, "The document is "+doc.Status+", not ready yet.", nil)
		return nil, false
	}
	return doc, true
}

// DocumentIDs returns the public ids of docs.
func DocumentIDs(docs []*models.Document) []string {
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.PublicID
	}
	return ids
}

// UserDocument loads the signed-in user's document named in the path; any
// other id, another tenant's included, is 404.
func (a *Access) UserDocument(c *gin.Context) (*models.Document, bool) {
	doc, err := a.store.Document(c.Request.Context(), web.CurrentUser(c).ID, c.Param("id"))
	if errors.Is(err, models.ErrNotFound) {
		a.Fail(c, http.StatusNotFound, "There is no such document.", nil)
		return nil, false
	}
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return nil, false
	}
	return doc, true
}

// ChosenDocuments are the documents a request across documents names, the
// user's, or every ready one of theirs when it names none; when it names
// too many, or one that is not the user's (404) or not ready (409), it has
// answered and ok is false.
func (a *Access) ChosenDocuments(c *gin.Context, userID int64, ids []string) (docs []*models.Document, ok bool) {
	ctx := c.Request.Context()
	var all []models.Document
	var err error
	switch {
	case len(ids) > MaxDocumentsSearched:
		a.Fail(c, http.StatusUnprocessableEntity, "documents names more than "+strconv.Itoa(MaxDocumentsSearched)+" documents", nil)
		return nil, false
	case len(ids) == 0:
		all, err = a.store.DocumentsByUser(ctx, userID)
	default:
		all, err = a.store.DocumentsIn(ctx, userID, ids)
	}
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return nil, false
	}
	byID := make(map[string]*models.Document, len(all))
	for i := range all {
		byID[all[i].PublicID] = &all[i]
		if len(ids) == 0 && all[i].Status == models.DocumentReady {
			docs = append(docs, &all[i])
		}
	}
	seen := map[string]bool{}
	for _, id := range ids {
		doc := byID[id]
		switch {
		case doc == nil:
			a.Fail(c, http.StatusNotFound, "There is no such document: "+Clip(id, 40)+".", nil)
			return nil, false
		case doc.Status != models.DocumentReady:
			a.Fail(c, http.StatusConflict, "The document "+id+" is "+doc.Status+", not ready yet.", nil)
			return nil, false
		case !seen[id]:
			seen[id] = true
			docs = append(docs, doc)
		}
	}
	return docs, true
}

// CheckTitle returns a title as typed, trimmed, or says what is wrong with
// it: empty, over max characters, or not one line of text (a control
// character, a NUL byte included, which a database may refuse).
func CheckTitle(title string, max int) (string, string) {
	title = strings.TrimSpace(title)
	switch {
	case title == "":
		return "", "A title cannot be empty."
	case utf8.RuneCountInString(title) > max:
		return "", "A title is at most " + strconv.Itoa(max) + " characters."
	case strings.IndexFunc(title, unicode.IsControl) >= 0:
		return "", "A title is one line of text."
	}
	return title, ""
}

// Clip shortens s to at most n bytes, for repeating what a client sent.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// DecodeJSON reads a JSON body into v, with errors a client can act on.
func DecodeJSON(c *gin.Context, v any) error {
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
