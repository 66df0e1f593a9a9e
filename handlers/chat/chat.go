// Package chat serves the conversations: a ready document's page with its
// chat, "Ask your documents" (a chat across documents), the answers
// streamed into the page over server-sent events and written in the
// background, and the chat API.
package chat

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"silo/answer"
	"silo/handlers/access"
	"silo/models"
	"silo/store"
	"silo/views"
	"silo/web"
)

// Chat limits.
const (
	maxConversationsListed = 50
	maxConversationTitle   = 80 // characters, as a first question is cut to
	maxAPIMessages         = 100
	// runningGrace is how long past the chat timeout an answer may stay
	// running before a reader takes it for lost (its server stopped).
	runningGrace = 30 * time.Second
	// pollRunning is how often a second reader of an answer that another
	// request is writing looks for its end.
	pollRunning = 500 * time.Millisecond
)

// Handler serves the chat pages and API.
type Handler struct {
	*access.Access
	store *models.Store
	chat  *answer.Chat
	views *views.Templates
	log   *slog.Logger
	// chatTimeout bounds an answer (CHAT_TIMEOUT).
	chatTimeout time.Duration
	// running lets a stop button reach the request writing an answer.
	running runningAnswers
	// background writes answers; Close cancels backgroundCtx and waits.
	background       sync.WaitGroup
	backgroundCtx    context.Context
	cancelBackground context.CancelFunc
}

// New returns the chat handlers. Close stops the answers they write.
func New(a *access.Access, store *models.Store, chat *answer.Chat, tmpl *views.Templates, chatTimeout time.Duration, log *slog.Logger) *Handler {
	h := &Handler{Access: a, store: store, chat: chat, views: tmpl, log: log, chatTimeout: chatTimeout}
	h.backgroundCtx, h.cancelBackground = context.WithCancel(context.Background())
	return h
}

// Close stops the answers being written, which end as failed, and waits
// for them.
func (h *Handler) Close() {
	h.cancelBackground()
	h.background.Wait()
}

// Routes adds the chat pages to pages (signed-in people's) and the chat
// API to api (token holders'):
//
//	GET  /documents/:id           one document; when ready, its pages and chat (?c= a conversation)  document.html (chat_message.html)
//	POST /documents/:id/chat      ask a question (htmx)     chat_turn.html: the question and its answer, streaming
//	GET  /documents/:id/messages/:mid/stream  an answer's SSE stream  "token" escaped text, "done" chat_message.html
//	POST /documents/:id/messages/:mid/stop    stop an answer          204; the stream saves what was written
//	POST /documents/:id/messages/:mid/retry   answer again (retry, regenerate)  chat_message.html, streaming
//	POST /documents/:id/conversations/:cid/title, …/delete  rename, delete a conversation  redirect, the page says so
//	GET  /ask                     "Ask your documents": a chat across documents (?c= a conversation)  ask.html (chat_message.html)
//	POST /ask/chat, GET /ask/messages/:mid/stream, POST /ask/messages/:mid/stop, …/retry  as a document's chat
//	POST /api/v1/chat                  chat across documents, as a document's
//	POST /api/v1/documents/:id/chat    answer a question   SSE token, citations, done; ?stream=false {answer, found, citations}
func (h *Handler) Routes(pages, api gin.IRoutes) {
	pages.GET("/documents/:id", h.documentPage)
	pages.POST("/documents/:id/chat", h.ask)
	pages.GET("/documents/:id/messages/:mid/stream", h.answerStream)
	pages.POST("/documents/:id/messages/:mid/stop", h.stopAnswer)
	pages.POST("/documents/:id/messages/:mid/retry", h.retryAnswer)
	pages.POST("/documents/:id/conversations/:cid/title", h.renameConversation)
	pages.POST("/documents/:id/conversations/:cid/delete", h.deleteConversation)
	pages.GET("/ask", h.askPage)
	pages.POST("/ask/chat", h.ask)
	pages.GET("/ask/messages/:mid/stream", h.answerStream)
	pages.POST("/ask/messages/:mid/stop", h.stopAnswer)
	pages.POST("/ask/messages/:mid/retry", h.retryAnswer)
	pages.POST("/ask/conversations/:cid/title", h.renameConversation)
	pages.POST("/ask/conversations/:cid/delete", h.deleteConversation)
	api.POST("/chat", h.apiWorkspaceChat)
	api.POST("/documents/:id/chat", h.apiChat)
}

// turn answers a question about docs (answer.Chat.Turn).
func (h *Handler) turn(ctx context.Context, content store.Content, docs []*models.Document, history []answer.Message, question string, emit func(token string) error) (answer.Reply, error) {
	sources := make([]answer.Document, len(docs))
	for i, d := range docs {
		sources[i] = answer.Document{ID: d.PublicID, Title: d.Title}
	}
	return h.chat.Turn(ctx, content, sources, history, question, emit)
}

// checkQuestion says what is wrong with a question, or "".
func checkQuestion(q string) string {
	switch {
	case q == "":
		return "Ask a question first."
	case utf8.RuneCountInString(q) > access.MaxQueryLength:
		return "The question is longer than 2000 characters."
	}
	return ""
}

// runningAnswers lets a person stop an answer streaming in another request.
type runningAnswers struct {
	mu     sync.Mutex
	cancel map[string]context.CancelFunc
}

// key names one answer: message ids are per tenant database, so the user
// is part of it.
func answerKey(userID, messageID int64) string {
	return strconv.FormatInt(userID, 10) + ":" + strconv.FormatInt(messageID, 10)
}

func (r *runningAnswers) add(key string, cancel context.CancelFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel == nil {
		r.cancel = map[string]context.CancelFunc{}
	}
	r.cancel[key] = cancel
}

func (r *runningAnswers) remove(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.cancel, key)
}

// stop cancels the answer if it is being written here.
func (r *runningAnswers) stop(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cancel, ok := r.cancel[key]; ok {
		cancel()
	}
}

// chatPageData is what document.html shows of a ready document: its pages
// and its chat.
type chatPageData struct {
	documentPageData
	chatView
}

// chatView is what a page shows of a chat (chat_nav.html and the
// messages): its address, its conversations, the open one (?c=) with its
// messages, and who answers.
type chatView struct {
	Base          string
	Conversations []store.Conversation
	Conversation  *store.Conversation
	Messages      []messageView
	Answerer      string
}

// chatView reads a scope's chat for its page: its conversations and the
// one ?c= names (none without it); when it cannot, it has answered and
// ok is false.
func (h *Handler) chatView(c *gin.Context, content store.Content, sc chatScope) (v chatView, ok bool) {
	ctx := c.Request.Context()
	v = chatView{Base: sc.base, Answerer: h.chat.Answerer.Name()}
	var err error
	if v.Conversations, err = content.Conversations(ctx, sc.key, maxConversationsListed); err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return v, false
	}
	id := c.Query("c")
	if id == "" {
		return v, true
	}
	if v.Conversation, err = content.Conversation(ctx, sc.key, id); err != nil {
		h.FailLookup(c, err, "There is no such conversation.")
		return v, false
	}
	msgs, err := content.Messages(ctx, id)
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return v, false
	}
	v.Messages = sc.views(msgs...)
	return v, true
}

// messageView is one message as chat_message.html shows it, in the chat
// at Base (a scope's base).
type messageView struct {
	Base string
	// Workspace: the chat is about several documents, so each source
	// names its document and opens its page there.
	Workspace bool
	store.StoredMessage
}

// Live reports whether the answer is still being written, so the page
// opens its stream.
func (m messageView) Live() bool {
	return m.Role == store.RoleAssistant && (m.Status == store.StatusPending || m.Status == store.StatusRunning)
}

// Quoted reports whether the answer already quotes a source's snippet (an
// offline answer's quotes are its sources' best sentences): the sources
// list then shows where the quote comes from and its first words (Brief),
// not the whole of it again.
func (m messageView) Quoted(snippet string) bool {
	s := strings.TrimSuffix(strings.TrimPrefix(snippet, "…"), "…")
	if len(s) > quotedPrefix {
		s = strings.ToValidUTF8(s[:quotedPrefix], "")
	}
	return s != "" && strings.Contains(m.Content, s)
}

// Brief is the opening words of a snippet the answer quotes: enough to tell
// which quote a source is, without the words again.
func (m messageView) Brief(snippet string) string {
	w := strings.Fields(strings.TrimPrefix(snippet, "…"))
	if len(w) <= briefWords {
		return strings.Join(w, " ")
	}
	return strings.Join(w[:briefWords], " ") + "…"
}

// briefWords is how many words Brief keeps.
const briefWords = 5

// quotedPrefix is how much of a snippet (bytes) an answer must hold to
// quote it: quotes and snippets are clipped at different lengths.
const quotedPrefix = 120

// HTML is the message rendered: an answer's markdown, or a question as
// plain text. In the workspace a citation [Title, p. N] links to that page
// of the cited document.
func (m messageView) HTML() template.HTML {
	if m.Role == store.RoleUser {
		return template.HTML("<p>" + template.HTMLEscapeString(m.Content) + "</p>") //nolint:gosec // escaped
	}
	if !m.Workspace {
		return views.Markdown(m.Content, nil)
	}
	documents := map[string]string{}
	for _, c := range m.Citations {
		documents[c.Title] = "/documents/" + c.DocumentID
	}
	return views.Markdown(m.Content, documents)
}

// Source is where a source links: its page on a document's page, or, in
// the workspace, its document's page opened at it with the snippet to
// highlight (?hl=).
func (m messageView) Source(c store.Citation) string {
	anchor := "#page-" + strconv.Itoa(c.Page)
	if !m.Workspace {
		return anchor
	}
	return "/documents/" + url.PathEscape(c.DocumentID) + "?hl=" + url.QueryEscape(c.Text) + anchor
}

// chatPage shows a ready document with its pages and the conversation
// named by ?c= (a new one without it).
func (h *Handler) chatPage(c *gin.Context, doc *models.Document) {
	content, release, ok := h.OpenTenant(c, doc)
	if !ok {
		return
	}
	defer release()
	v, ok := h.chatView(c, content, documentScope(doc))
	if !ok {
		return
	}
	h.Render(c, http.StatusOK, "document.html", chatPageData{documentPageData: documentPageData{Frame: h.Frame(c, doc.Title), Doc: doc}, chatView: v})
}

// ask is the chat form: it saves the question and an empty answer, and
// answers with both, the answer's stream opening as it lands. A new
// workspace conversation covers the documents ticked (field documents),
// all of them when every one is.
func (h *Handler) ask(c *gin.Context) {
	sc, content, release, ok := h.openScope(c)
	if !ok {
		return
	}
	defer release()
	question := strings.TrimSpace(c.PostForm("question"))
	if msg := checkQuestion(question); msg != "" {
		h.Fail(c, http.StatusUnprocessableEntity, msg, nil)
		return
	}
	ctx := c.Request.Context()
	var conv *store.Conversation
	var err error
	if id := c.PostForm("conversation"); id != "" {
		conv, err = content.Conversation(ctx, sc.key, id)
	} else {
		var chosen []string
		if chosen, ok = h.pickedDocuments(c, sc); !ok {
			return
		}
		conv, err = content.CreateConversation(ctx, sc.key, chosen, question)
	}
	if err != nil {
		h.FailLookup(c, err, "There is no such conversation.")
		return
	}
	q := &store.StoredMessage{Role: store.RoleUser, Content: question}
	a := &store.StoredMessage{Role: store.RoleAssistant, Status: store.StatusPending}
	if err := content.AddMessages(ctx, conv.ID, q, a); err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	to := sc.base + "?c=" + conv.ID
	if c.GetHeader("HX-Request") != "true" {
		c.Redirect(http.StatusSeeOther, to)
		return
	}
	var covers *coversView
	if sc.doc == nil {
		if covers, err = h.covers(ctx, sc.userID, conv); err != nil {
			h.Fail(c, http.StatusInternalServerError, "", err)
			return
		}
		covers.Oob = true
	}
	c.Header("HX-Push-Url", to)
	h.Render(c, http.StatusOK, "chat_turn.html", gin.H{"Conversation": conv, "Messages": sc.views(*q, *a), "Covers": covers})
}

// openMessage loads a message of the chat named in the path, with its
// scope and tenant database; when it cannot, it has answered and ok is
// false. Call release when done.
func (h *Handler) openMessage(c *gin.Context) (sc chatScope, content store.Content, m *store.StoredMessage, release func(), ok bool) {
	if sc, content, release, ok = h.openScope(c); !ok {
		return chatScope{}, store.Content{}, nil, nil, false
	}
	id, err := strconv.ParseInt(c.Param("mid"), 10, 64)
	if err != nil {
		err = store.ErrNotFound // not a message id
	} else if m, err = content.Message(c.Request.Context(), sc.key, id); err == nil {
		return sc, content, m, release, true
	}
	h.FailLookup(c, err, "There is no such message.")
	release()
	return chatScope{}, store.Content{}, nil, nil, false
}

// answerStream writes a pending answer into the page over SSE: "token"
// events carry escaped text to append, then "done" carries the finished
// message (markdown rendered, sources, or the failure and a retry button).
// An answer already written, or being written by another request, ends
// with its "done" at once or when it ends.
func (h *Handler) answerStream(c *gin.Context) {
	sc, content, m, release, ok := h.openMessage(c)
	if !ok {
		return
	}
	defer release()
	ctx := c.Request.Context()
	if m.Role != store.RoleAssistant {
		h.Fail(c, http.StatusNotFound, "There is no such answer.", nil)
		return
	}
	var claimed bool
	var err error
	if m.Status == store.StatusPending {
		if claimed, err = content.ClaimMessage(ctx, m.ID, h.chat.Answerer.Name()); err != nil {
			h.Fail(c, http.StatusInternalServerError, "", err)
			return
		}
	}
	sse := web.StartSSE(c)
	if claimed {
		h.streamAnswer(c, sse, sc, content, m)
		return
	}
	m, err = h.awaitAnswer(ctx, content, sc, m)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Error("chat: wait for an answer", "err", err)
		}
		return
	}
	_ = h.sendDone(sse, sc, m)
}

// streamAnswer writes the claimed answer m and streams it into the page.
// The answer is written in the background, so a person who closes the
// page, or whose connection drops, finds it finished when they come back;
// only the stop button (or the chat timeout) ends it early.
func (h *Handler) streamAnswer(c *gin.Context, sse *web.SSE, sc chatScope, requestContent store.Content, m *store.StoredMessage) {
	// The writer holds the tenant database for itself: it may outlive
	// this request.
	content, release, err := h.UserContent(h.backgroundCtx, sc.userID)
	var history []answer.Message
	var question string
	var docs []*models.Document
	if err == nil {
		if history, question, err = turnsBefore(c.Request.Context(), content, m); err == nil {
			docs, err = h.scopeDocuments(c.Request.Context(), content, sc, m.ConversationID)
		}
		if err != nil {
			release()
		}
	}
	if err != nil {
		// The claimed answer must not stay running with nobody writing it.
		h.finishAnswer(c.Request.Context(), requestContent, sc, m, answer.Reply{}, err)
		_ = h.sendDone(sse, sc, m)
		return
	}
	key := answerKey(web.CurrentUser(c).ID, m.ID)
	// The whole turn (search, rewrite, answer) ends before a reader would
	// take the answer for lost (awaitAnswer).
	ctx, cancel := context.WithTimeout(h.backgroundCtx, h.chatTimeout+runningGrace/2)
	h.running.add(key, cancel)
	gone := c.Request.Context().Done()
	tokens := make(chan string)
	finished := make(chan *store.StoredMessage, 1)
	h.background.Go(func() {
		defer release()
		defer cancel()
		defer h.running.remove(key)
		reply, err := h.turn(ctx, content, docs, history, question, func(token string) error {
			select {
			case tokens <- token:
			case <-gone: // nobody is watching; the answer goes on
			}
			return nil
		})
		close(tokens)
		h.finishAnswer(ctx, content, sc, m, reply, err)
		finished <- m
	})
	for token := range tokens {
		if err := sse.Send("token", template.HTMLEscapeString(token)); err != nil {
			return
		}
	}
	select {
	case m = <-finished:
		_ = h.sendDone(sse, sc, m)
	case <-gone:
	}
}

// finishAnswer saves how an answer ended: done, stopped by the person,
// failed with the reason. What was written is kept in every case.
func (h *Handler) finishAnswer(ctx context.Context, content store.Content, sc chatScope, m *store.StoredMessage, reply answer.Reply, err error) {
	m.Content, m.Citations, m.Status, m.Answerer = reply.Text, reply.Citations, store.StatusDone, h.chat.Answerer.Name()
	switch {
	case errors.Is(err, errNoDocuments):
		m.Status, m.Error = store.StatusFailed, "None of the documents this conversation asks is ready any more."
	case err != nil:
		h.log.Error("chat: answer", "chat", sc.base, "err", err)
		m.Status, m.Error = store.StatusFailed, sc.what+" could not be searched. Please try again."
	case reply.Err != nil && h.backgroundCtx.Err() != nil:
		m.Status, m.Error = store.StatusFailed, "The server restarted while answering. Please try again."
	case reply.Err != nil && ctx.Err() != nil && !errors.Is(reply.Err, context.DeadlineExceeded):
		m.Status = store.StatusStopped
	case reply.Err != nil:
		h.log.Warn("chat: the model failed", "chat", sc.base, "err", reply.Err)
		m.Status, m.Error = store.StatusFailed, answer.FailureMessage(reply.Err)
	}
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := content.FinishMessage(saveCtx, m); err != nil {
		h.log.Error("chat: save the answer", "err", err)
	}
}

// turnsBefore returns the question an answer answers and the turns before
// it, oldest first (answer.History).
func turnsBefore(ctx context.Context, content store.Content, a *store.StoredMessage) ([]answer.Message, string, error) {
	msgs, err := content.Messages(ctx, a.ConversationID)
	if err != nil {
		return nil, "", err
	}
	return answer.History(msgs, a.ID)
}

// awaitAnswer waits for an answer another request is writing to end, and
// takes one left running by a server that stopped for failed.
func (h *Handler) awaitAnswer(ctx context.Context, content store.Content, sc chatScope, m *store.StoredMessage) (*store.StoredMessage, error) {
	tick := time.NewTicker(pollRunning)
	defer tick.Stop()
	for m.Status == store.StatusRunning || m.Status == store.StatusPending {
		// Only a running answer has a start to judge: a pending one is
		// this request's copy from before another claimed it.
		if m.Status == store.StatusRunning && time.Since(m.StartedAt) > h.chatTimeout+runningGrace {
			m.Status, m.Error = store.StatusFailed, "The answer was interrupted. Please try again."
			return m, content.FinishMessage(ctx, m)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		var err error
		if m, err = content.Message(ctx, sc.key, m.ID); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// sendDone sends the finished message as the stream's last event.
func (h *Handler) sendDone(sse *web.SSE, sc chatScope, m *store.StoredMessage) error {
	var b strings.Builder
	if err := h.views.Render(&b, "chat_message.html", sc.views(*m)[0]); err != nil {
		h.log.Error("chat: render the answer", "err", err)
		return err
	}
	return sse.Send("done", b.String())
}

// stopAnswer is an answer's stop button: the stream saves what was
// written and ends.
func (h *Handler) stopAnswer(c *gin.Context) {
	if c.Param("id") != "" {
		if _, ok := h.UserDocument(c); !ok {
			return
		}
	}
	id, err := strconv.ParseInt(c.Param("mid"), 10, 64)
	if err != nil {
		h.Fail(c, http.StatusNotFound, "There is no such message.", nil)
		return
	}
	h.running.stop(answerKey(web.CurrentUser(c).ID, id))
	c.Status(http.StatusNoContent)
}

// retryAnswer is the retry button of a failed or stopped answer, and the
// regenerate button of a done one: it is answered again, in place.
func (h *Handler) retryAnswer(c *gin.Context) {
	sc, content, m, release, ok := h.openMessage(c)
	if !ok {
		return
	}
	defer release()
	ctx := c.Request.Context()
	retried, err := content.RetryMessage(ctx, m.ID)
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	if !retried {
		h.Fail(c, http.StatusConflict, "Only a finished answer can be asked again.", nil)
		return
	}
	m.Status, m.Error = store.StatusPending, ""
	if c.GetHeader("HX-Request") != "true" {
		c.Redirect(http.StatusSeeOther, sc.base+"?c="+m.ConversationID)
		return
	}
	h.Render(c, http.StatusOK, "chat_message.html", sc.views(*m)[0])
}

// documentPageData is what document.html shows.
type documentPageData struct {
	web.Frame
	Doc *models.Document
}

// documentPage shows one document.
func (h *Handler) documentPage(c *gin.Context) {
	doc, ok := h.UserDocument(c)
	if !ok {
		return
	}
	if doc.Status == models.DocumentReady {
		h.chatPage(c, doc)
		return
	}
	h.Render(c, http.StatusOK, "document.html", chatPageData{documentPageData: documentPageData{Frame: h.Frame(c, doc.Title), Doc: doc}})
}

// renameConversation is a conversation's rename form (field title).
func (h *Handler) renameConversation(c *gin.Context) {
	sc, content, release, ok := h.openScope(c)
	if !ok {
		return
	}
	defer release()
	title, problem := access.CheckTitle(strings.Join(strings.Fields(c.PostForm("title")), " "), maxConversationTitle)
	if problem != "" {
		h.Fail(c, http.StatusUnprocessableEntity, problem, nil)
		return
	}
	if err := content.RenameConversation(c.Request.Context(), sc.key, c.Param("cid"), title); err != nil {
		h.FailLookup(c, err, "There is no such conversation.")
		return
	}
	h.Notify(c, "Renamed the conversation.")
	web.Redirect(c, sc.base+"?c="+c.Param("cid"))
}

// deleteConversation deletes a conversation and its answers.
func (h *Handler) deleteConversation(c *gin.Context) {
	sc, content, release, ok := h.openScope(c)
	if !ok {
		return
	}
	defer release()
	if err := content.DeleteConversation(c.Request.Context(), sc.key, c.Param("cid")); err != nil {
		h.FailLookup(c, err, "There is no such conversation.")
		return
	}
	h.Notify(c, "Deleted the conversation.")
	web.Redirect(c, sc.base)
}
