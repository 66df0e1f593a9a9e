package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// ErrNotFound means a conversation or message is not in the tenant database,
// or not under the document it was asked for.
var ErrNotFound = errors.New("store: not found")

// States of an assistant message. A question is always done.
const (
	StatusPending = "pending" // saved, not yet answered
	StatusRunning = "running" // an answer is streaming into it
	StatusDone    = "done"
	StatusStopped = "stopped" // the person stopped it; what came is kept
	StatusFailed  = "failed"  // the model failed; Error says why, what came is kept
)

// Conversation is one chat about a document, or about several
// (DocumentID is Workspace).
type Conversation struct {
	bun.BaseModel `bun:"table:conversations"`

	ID         string `bun:"id,pk"`
	DocumentID string `bun:"document_id"`
	// Documents are the public ids of the documents a workspace
	// conversation covers, separated by spaces: "" for all of them.
	Documents string    `bun:"documents"`
	Title     string    `bun:"title"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`
}

// Workspace is the DocumentID of the conversations about several of a
// tenant's documents (or all).
const Workspace = ""

// DocumentIDs returns the documents a workspace conversation covers, nil
// for all.
func (c *Conversation) DocumentIDs() []string {
	if ids := strings.Fields(c.Documents); len(ids) > 0 {
		return ids
	}
	return nil
}

// StoredMessage is one saved turn of a conversation.
type StoredMessage struct {
	bun.BaseModel `bun:"table:messages"`

	ID             int64     `bun:"id,pk,autoincrement"`
	ConversationID string    `bun:"conversation_id"`
	Role           string    `bun:"role"`
	Content        string    `bun:"content"`
	Citations      Citations `bun:"citations"`
	Status         string    `bun:"status"`
	Error          string    `bun:"error"`
	Answerer       string    `bun:"answerer"`
	CreatedAt      time.Time `bun:"created_at"`
	// StartedAt is when the answer was last claimed for writing.
	StartedAt time.Time `bun:"started_at"`
}

// Roles of the turns of a conversation.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Citation is a source an answer rests on: the passage's document (its
// public id and title), page (or page span) and a snippet of it, the
// sentence that best answers the question.
type Citation struct {
	DocumentID string `json:"document_id"`
	Title      string `json:"title"`
	Page       int    `json:"page"`
	PageEnd    int    `json:"page_end,omitempty"`
	Text       string `json:"text"`
}

// Citations is a message's sources, stored as a JSON array.
type Citations []Citation

// Value stores the citations as JSON text.
func (cs Citations) Value() (driverValue any, err error) {
	if cs == nil {
		cs = Citations{}
	}
	b, err := json.Marshal([]Citation(cs))
	return string(b), err
}

// Scan reads citations stored as JSON text or bytes.
func (cs *Citations) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*cs = nil
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("store: citations from %T", src)
	}
	return json.Unmarshal(b, (*[]Citation)(cs))
}

// titleLength bounds a conversation's title, its first question.
const titleLength = 80

// conversationID reports whether id has the form CreateConversation gives
// ids (24 lower-case hex digits): any other names no conversation, and is
// not sent to the database (which may refuse it, a NUL byte say).
func conversationID(id string) bool {
	if len(id) != 24 {
		return false
	}
	for _, r := range id {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// CreateConversation starts a conversation, titled after its first
// question, about a document, or (docID Workspace) about the documents
// named (public ids; none for all of them).
func (c Content) CreateConversation(ctx context.Context, docID string, documents []string, firstQuestion string) (*Conversation, error) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	conv := &Conversation{
		ID: hex.EncodeToString(id[:]), DocumentID: docID, Documents: strings.Join(documents, " "),
		Title: truncate(firstQuestion, titleLength), CreatedAt: now, UpdatedAt: now,
	}
	if _, err := c.db.NewInsert().Model(conv).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store: create conversation: %w", err)
	}
	return conv, nil
}

// Conversations lists a document's conversations, the latest first.
func (c Content) Conversations(ctx context.Context, docID string, limit int) ([]Conversation, error) {
	var out []Conversation
	err := c.db.NewSelect().Model(&out).Where("document_id = ?", docID).
		Order("updated_at DESC", "created_at DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: list conversations: %w", err)
	}
	return out, nil
}

// CountConversations counts a document's conversations.
func (c Content) CountConversations(ctx context.Context, docID string) (int, error) {
	n, err := c.db.NewSelect().Model((*Conversation)(nil)).Where("document_id = ?", docID).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: count conversations: %w", err)
	}
	return int(n), nil
}

// Conversation returns one of a document's conversations, or ErrNotFound.
func (c Content) Conversation(ctx context.Context, docID, id string) (*Conversation, error) {
	if !conversationID(id) {
		return nil, ErrNotFound
	}
	conv := new(Conversation)
	err := c.db.NewSelect().Model(conv).Where("id = ? AND document_id = ?", id, docID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: read conversation: %w", err)
	}
	return conv, nil
}

// RenameConversation sets the title of one of a document's conversations
// (docID Workspace: of the workspace's), or returns ErrNotFound.
func (c Content) RenameConversation(ctx context.Context, docID, id, title string) error {
	if !conversationID(id) {
		return ErrNotFound
	}
	res, err := c.db.NewUpdate().Model((*Conversation)(nil)).Set("title = ?", truncate(title, titleLength)).
		Where("id = ? AND document_id = ?", id, docID).Exec(ctx)
	return oneRow(res, err, "rename conversation")
}

// DeleteConversation deletes one of a document's conversations (docID
// Workspace: of the workspace's) with its messages, or returns
// ErrNotFound.
func (c Content) DeleteConversation(ctx context.Context, docID, id string) error {
	if !conversationID(id) {
		return ErrNotFound
	}
	return c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*Conversation)(nil)).Where("id = ? AND document_id = ?", id, docID).Exec(ctx)
		if err := oneRow(res, err, "delete conversation"); err != nil {
			return err
		}
		_, err = tx.NewDelete().Model((*StoredMessage)(nil)).Where("conversation_id = ?", id).Exec(ctx)
		return err
	})
}

// oneRow is the error of a statement that must change exactly one row:
// ErrNotFound when it changed none.
func oneRow(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return cmp.Or(err, ErrNotFound)
	}
	return nil
}

// Messages returns a conversation's messages, oldest first.
func (c Content) Messages(ctx context.Context, convID string) ([]StoredMessage, error) {
	var out []StoredMessage
	err := c.db.NewSelect().Model(&out).Where("conversation_id = ?", convID).Order("id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: read messages: %w", err)
	}
	return out, nil
}

// Message returns one message of a document's conversation, or ErrNotFound.
func (c Content) Message(ctx context.Context, docID string, id int64) (*StoredMessage, error) {
	m := new(StoredMessage)
	err := c.db.NewSelect().Model(m).
		Where("id = ? AND conversation_id IN (SELECT id FROM conversations WHERE document_id = ?)", id, docID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: read message: %w", err)
	}
	return m, nil
}

// AddMessages appends messages to a conversation in one transaction and
// sets their ids.
func (c Content) AddMessages(ctx context.Context, convID string, ms ...*StoredMessage) error {
	now := time.Now().UTC()
	return c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, m := range ms {
			m.ConversationID, m.CreatedAt, m.StartedAt = convID, now, now
			if m.Status == "" {
				m.Status = StatusDone
			}
			if _, err := tx.NewInsert().Model(m).Returning("id").Exec(ctx); err != nil {
				return fmt.Errorf("store: add message: %w", err)
			}
		}
		_, err := tx.NewUpdate().Table("conversations").Set("updated_at = ?", now).Where("id = ?", convID).Exec(ctx)
		return err
	})
}

// ClaimMessage moves a pending assistant message to running and reports
// whether this caller won it: of two streams opened for one answer, only
// one writes it.
func (c Content) ClaimMessage(ctx context.Context, id int64, answerer string) (bool, error) {
	res, err := c.db.NewUpdate().Table("messages").
		Set("status = ?", StatusRunning).Set("answerer = ?", answerer).Set("started_at = ?", time.Now().UTC()).
		Set("content = ''").Set("error = ''").
		Where("id = ? AND status = ?", id, StatusPending).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("store: claim message: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// FinishMessage saves an answer's text, sources and how it ended.
func (c Content) FinishMessage(ctx context.Context, m *StoredMessage) error {
	_, err := c.db.NewUpdate().Model(m).Column("content", "citations", "status", "error").WherePK().Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: finish message: %w", err)
	}
	return nil
}

// RetryMessage puts a finished answer (done, stopped or failed) back to
// pending so it is answered again, and reports whether it was finished.
func (c Content) RetryMessage(ctx context.Context, id int64) (bool, error) {
	res, err := c.db.NewUpdate().Table("messages").Set("status = ?", StatusPending).
		Where("id = ? AND role = ? AND status IN (?, ?, ?)", id, RoleAssistant, StatusDone, StatusStopped, StatusFailed).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("store: retry message: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// truncate cuts s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
