package chat

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"silo/answer"
	"silo/handlers/access"
	"silo/models"
	"silo/store"
	"silo/web"
)

// chatRequest is the body of POST /api/v1/documents/{id}/chat and of POST
// /api/v1/chat: the conversation so far, oldest first, ending with the
// question, and (POST /api/v1/chat) the documents to answer from.
type chatRequest struct {
	Messages  []answer.Message `json:"messages"`
	Documents []string         `json:"documents"` // POST /api/v1/chat: public ids; none means every ready document
}

// check validates the conversation and splits it into the turns before the
// question and the question.
func (r chatRequest) check() (history []answer.Message, question, problem string) {
	n := len(r.Messages)
	switch {
	case n == 0:
		return nil, "", "messages must hold at least the question"
	case n > maxAPIMessages:
		return nil, "", "messages may hold at most 100 turns"
	}
	for _, m := range r.Messages {
		if m.Role != store.RoleUser && m.Role != store.RoleAssistant {
			return nil, "", `each message's role must be "user" or "assistant"`
		}
		if len(m.Content) > access.MaxQueryLength*8 {
			return nil, "", "a message is longer than 16000 bytes"
		}
	}
	last := r.Messages[n-1]
	if last.Role != store.RoleUser {
		return nil, "", `the last message must be the question, with role "user"`
	}
	question = strings.TrimSpace(last.Content)
	if msg := checkQuestion(question); msg != "" {
		return nil, "", strings.ToLower(msg[:1]) + msg[1:]
	}
	return r.Messages[:n-1], question, ""
}

// citationsOrEmpty keeps a JSON array an array when there are no sources.
func citationsOrEmpty(cs []store.Citation) []store.Citation {
	if cs == nil {
		return []store.Citation{}
	}
	return cs
}

// apiChat answers POST /api/v1/documents/{id}/chat about one document
// (answerChat).
func (h *Handler) apiChat(c *gin.Context) {
	doc, ok := h.ReadyDocument(c)
	if !ok {
		return
	}
	q, ok := h.readChat(c)
	if !ok {
		return
	}
	h.answerChat(c, doc.UserID, []*models.Document{doc}, q)
}

// apiWorkspaceChat answers POST /api/v1/chat {messages, documents} about
// every ready document of the caller's, or those named (answerChat); a
// document that is not the caller's is 404, one that is not ready 409.
func (h *Handler) apiWorkspaceChat(c *gin.Context) {
	q, ok := h.readChat(c)
	if !ok {
		return
	}
	u := web.CurrentUser(c)
	docs, ok := h.ChosenDocuments(c, u.ID, q.documents)
	if !ok {
		return
	}
	if len(docs) == 0 {
		h.Fail(c, http.StatusConflict, "There is no ready document to answer from yet.", nil)
		return
	}
	h.answerChat(c, u.ID, docs, q)
}

// chatAsk is a checked chat request: the question, the turns before it and
// the documents it names.
type chatAsk struct {
	history   []answer.Message
	question  string
	documents []string
}

// readChat reads and checks a chat request; when it is not right, it has
// answered with the reason and ok is false.
func (h *Handler) readChat(c *gin.Context) (chatAsk, bool) {
	var req chatRequest
	if err := access.DecodeJSON(c, &req); err != nil {
		h.Fail(c, http.StatusBadRequest, err.Error(), nil)
		return chatAsk{}, false
	}
	history, question, problem := req.check()
	if problem != "" {
		h.Fail(c, http.StatusUnprocessableEntity, problem, nil)
		return chatAsk{}, false
	}
	return chatAsk{history: history, question: question, documents: req.Documents}, true
}

// answerChat answers q's question from docs, the user's. It
// streams text/event-stream: "token" events {"text"} as the answer is
// written, then "citations" {"citations": [{document_id, title, page,
// page_end, text}]}, then "done" {"status", "found", "answerer"}; a model
// failure sends "error" {"kind", "message"} before "done" with status
// "failed". found is whether the passages answer the question
// (search.Found); when false, the answer gives the closest ones. With
// ?stream=false it answers one JSON object {answer, found, citations,
// answerer}, or 502 with the error and the partial answer.
func (h *Handler) answerChat(c *gin.Context, userID int64, docs []*models.Document, q chatAsk) {
	history, question := q.history, q.question
	ctx := c.Request.Context()
	content, release, err := h.UserContent(ctx, userID)
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	defer release()
	if c.Query("stream") == "false" {
		reply, err := h.turn(ctx, content, docs, history, question, func(string) error { return nil })
		if err != nil {
			h.Fail(c, http.StatusInternalServerError, "", err)
			return
		}
		body := gin.H{"answer": reply.Text, "found": reply.Found, "citations": citationsOrEmpty(reply.Citations), "answerer": h.chat.Answerer.Name()}
		if reply.Err != nil {
			h.log.Warn("chat: the model failed", "documents", access.DocumentIDs(docs), "err", reply.Err)
			body["error"], body["kind"] = answer.FailureMessage(reply.Err), answer.FailureKind(reply.Err)
			c.JSON(http.StatusBadGateway, body)
			return
		}
		c.JSON(http.StatusOK, body)
		return
	}

	sse := web.StartSSE(c)
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return sse.Send(event, string(b))
	}
	reply, err := h.turn(ctx, content, docs, history, question, func(token string) error {
		return send("token", gin.H{"text": token})
	})
	status := store.StatusDone
	switch {
	case err != nil:
		h.log.Error("chat: answer", "documents", access.DocumentIDs(docs), "err", err)
		status = store.StatusFailed
		what := "The document"
		if len(docs) > 1 {
			what = "The documents"
		}
		_ = send("error", gin.H{"kind": answer.FailOther, "message": what + " could not be searched. Please try again."})
	case reply.Err != nil && ctx.Err() != nil:
		return // the client went away
	case reply.Err != nil:
		h.log.Warn("chat: the model failed", "documents", access.DocumentIDs(docs), "err", reply.Err)
		status = store.StatusFailed
		_ = send("citations", gin.H{"citations": citationsOrEmpty(reply.Citations)})
		_ = send("error", gin.H{"kind": answer.FailureKind(reply.Err), "message": answer.FailureMessage(reply.Err)})
	default:
		_ = send("citations", gin.H{"citations": citationsOrEmpty(reply.Citations)})
	}
	_ = send("done", gin.H{"status": status, "found": reply.Found, "answerer": h.chat.Answerer.Name()})
}
