package chat

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"silo/handlers/access"
	"silo/models"
	"silo/store"
	"silo/web"
)

// chatScope is what a page chat is about: one document, or several of a
// person's documents ("Ask your documents", the workspace).
type chatScope struct {
	key    string // the conversations' DocumentID: the document's public id, or store.Workspace
	base   string // the chat's path: /documents/{id} or /ask
	what   string // what it searches, for messages: "The document" or "Your documents"
	userID int64
	doc    *models.Document // nil for the workspace
}

func documentScope(doc *models.Document) chatScope {
	return chatScope{key: doc.PublicID, base: "/documents/" + doc.PublicID, what: "The document", userID: doc.UserID, doc: doc}
}

func workspaceScope(userID int64) chatScope {
	return chatScope{key: store.Workspace, base: "/ask", what: "Your documents", userID: userID}
}

// views returns the messages as the scope's chat shows them.
func (sc chatScope) views(msgs ...store.StoredMessage) []messageView {
	out := make([]messageView, len(msgs))
	for i, m := range msgs {
		out[i] = messageView{Base: sc.base, Workspace: sc.doc == nil, StoredMessage: m}
	}
	return out
}

// openScope opens the chat the path names, a ready document's (:id) or
// the workspace's, with the tenant database; when it cannot, it has
// answered and ok is false. Call release when done.
func (h *Handler) openScope(c *gin.Context) (sc chatScope, content store.Content, release func(), ok bool) {
	if c.Param("id") != "" {
		doc, content, release, ok := h.OpenDocument(c)
		if !ok {
			return chatScope{}, store.Content{}, nil, false
		}
		return documentScope(doc), content, release, true
	}
	u := web.CurrentUser(c)
	content, release, err := h.UserContent(c.Request.Context(), u.ID)
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return chatScope{}, store.Content{}, nil, false
	}
	return workspaceScope(u.ID), content, release, true
}

// errNoDocuments means none of the documents a workspace conversation
// covers is ready (any more).
var errNoDocuments = errors.New("none of the conversation's documents is ready")

// scopeDocuments returns the documents a conversation's next answer comes
// from: a document's chat, the document; a workspace conversation, the
// ready ones among those it covers (every ready one when it covers all).
func (h *Handler) scopeDocuments(ctx context.Context, content store.Content, sc chatScope, convID string) ([]*models.Document, error) {
	if sc.doc != nil {
		return []*models.Document{sc.doc}, nil
	}
	conv, err := content.Conversation(ctx, sc.key, convID)
	if err != nil {
		return nil, err
	}
	docs, err := h.coveredDocuments(ctx, sc.userID, conv)
	if err != nil {
		return nil, err
	}
	var out []*models.Document
	for i := range docs {
		if docs[i].Status == models.DocumentReady {
			out = append(out, &docs[i])
		}
	}
	if len(out) == 0 {
		return nil, errNoDocuments
	}
	return out, nil
}

// coveredDocuments returns the user's documents a workspace conversation
// covers, in whatever state: those it names, or all.
func (h *Handler) coveredDocuments(ctx context.Context, userID int64, conv *store.Conversation) ([]models.Document, error) {
	if ids := conv.DocumentIDs(); ids != nil {
		return h.store.DocumentsIn(ctx, userID, ids)
	}
	return h.store.DocumentsByUser(ctx, userID)
}

// pickedDocuments reads the documents a new conversation covers from the
// question's form: on a document's page, none (the document); in the
// workspace, nil for "all documents" (field scope=all, and later ones
// too), or the ready documents ticked (scope=some, fields documents). When
// the choice is wrong, it has answered and ok is false.
func (h *Handler) pickedDocuments(c *gin.Context, sc chatScope) (ids []string, ok bool) {
	if sc.doc != nil || c.PostForm("scope") != "some" {
		return nil, true
	}
	ticked := c.PostFormArray("documents")
	if len(ticked) == 0 {
		h.Fail(c, http.StatusUnprocessableEntity, "Tick at least one document to ask, or ask all of them.", nil)
		return nil, false
	}
	docs, ok := h.ChosenDocuments(c, sc.userID, ticked)
	if !ok {
		return nil, false
	}
	return access.DocumentIDs(docs), true
}

// askPageData is what ask.html shows: the workspace's conversations, the
// open one with the documents it covers, or the ready documents to choose
// from for a new one.
type askPageData struct {
	web.Frame
	chatView
	// Ready are the documents a new conversation can ask; Covers, what
	// the open one asks.
	Ready  []models.Document
	Covers *coversView
}

// coversView is what ask_covers.html shows: the documents a workspace
// conversation asks, all of them or some (Docs); Oob swaps it into the
// page in place of the choice of documents once the first question is
// asked.
type coversView struct {
	All  bool
	Docs []models.Document
	Oob  bool
}

// covers returns what a workspace conversation asks.
func (h *Handler) covers(ctx context.Context, userID int64, conv *store.Conversation) (*coversView, error) {
	if conv.DocumentIDs() == nil {
		return &coversView{All: true}, nil
	}
	docs, err := h.coveredDocuments(ctx, userID, conv)
	return &coversView{Docs: docs}, err
}

// askPage is "Ask your documents": a chat across documents, the
// conversation named by ?c= (a new one without it).
func (h *Handler) askPage(c *gin.Context) {
	ctx := c.Request.Context()
	sc, content, release, ok := h.openScope(c)
	if !ok {
		return
	}
	defer release()
	d := askPageData{Frame: h.Frame(c, "Ask your documents")}
	if d.chatView, ok = h.chatView(c, content, sc); !ok {
		return
	}
	all, err := h.store.DocumentsByUser(ctx, sc.userID)
	if err == nil && d.Conversation != nil {
		d.Covers, err = h.covers(ctx, sc.userID, d.Conversation)
	}
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	for _, doc := range all {
		if doc.Status == models.DocumentReady {
			d.Ready = append(d.Ready, doc)
		}
	}
	h.Render(c, http.StatusOK, "ask.html", d)
}
