package answer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"silo/search"
	"silo/store"
)

// Chat answers questions about a document: a follow-up is made standalone
// (by the Answerer), the document searched (hybrid, the best TopK
// passages), the answer written from the passages and its sources cited.
type Chat struct {
	Answerer Answerer
	Searcher *search.Searcher
	// TopK is how many passages an answer is written from (CHAT_TOP_K).
	TopK int
	// HistoryTurns is how many earlier turns a follow-up is read with
	// (CHAT_HISTORY_TURNS).
	HistoryTurns int
	Log          *slog.Logger
}

// Reply is an answer Turn wrote: its text, its sources, whether the
// search found passages that answer the question (search.Found), and why
// it ended early (nil when it did not).
type Reply struct {
	Text      string
	Citations []store.Citation
	Found     bool
	Err       error
}

// Turn answers a question about documents, with the turns before it
// (oldest first), streaming the answer through emit as it is written. An
// error from the search or the tenant database is returned; a failure of
// the model, or the context ending, is in the reply's Err, with what was
// streamed before it kept.
func (c *Chat) Turn(ctx context.Context, content store.Content, docs []Document, history []Message, question string, emit func(token string) error) (Reply, error) {
	if n := c.HistoryTurns; n > 0 && len(history) > n {
		history = history[len(history)-n:]
	}
	standalone := question
	if len(history) > 0 {
		q, err := c.Answerer.Standalone(ctx, history, question)
		switch {
		case err != nil:
			c.Log.Warn("chat: rewrite the follow-up", "err", err)
		case strings.TrimSpace(q) != "":
			standalone = q
		}
	}
	ids := make([]string, len(docs))
	titles := make(map[string]string, len(docs))
	for i, d := range docs {
		ids[i], titles[d.ID] = d.ID, d.Title
	}
	passages, err := c.Searcher.Search(ctx, content, ids, standalone, search.ModeHybrid, c.TopK)
	if err != nil {
		if ctx.Err() != nil {
			return Reply{Err: ctx.Err()}, nil
		}
		return Reply{}, err
	}
	for i := range passages {
		passages[i].Title = titles[passages[i].DocumentID]
	}
	var text strings.Builder
	found := search.Found(passages)
	err = c.Answerer.Answer(ctx, Request{Question: standalone, History: history, Passages: passages, Titled: len(docs) > 1, Found: found}, func(token string) error {
		text.WriteString(token)
		return emit(token)
	})
	return Reply{Text: text.String(), Citations: cite(standalone, text.String(), passages), Found: found, Err: err}, nil
}

// History returns the question the answer id answers and the turns before
// it, oldest first, from a conversation's stored messages; an answer that
// was never written is no turn.
func History(msgs []store.StoredMessage, id int64) ([]Message, string, error) {
	var turns []Message
	for _, m := range msgs {
		if m.ID == id {
			break
		}
		if m.Role == store.RoleAssistant && m.Status != store.StatusDone && m.Content == "" {
			continue
		}
		turns = append(turns, Message{Role: m.Role, Content: m.Content})
	}
	if len(turns) == 0 || turns[len(turns)-1].Role != store.RoleUser {
		return nil, "", fmt.Errorf("chat: answer %d follows no question", id)
	}
	return turns[:len(turns)-1], turns[len(turns)-1].Content, nil
}

// FailureMessage is what a person reads about an answer that ended early.
func FailureMessage(err error) string {
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return ae.Message
	case errors.Is(err, context.DeadlineExceeded):
		return "The answer took too long and was stopped."
	}
	return "The answer could not be finished."
}

// FailureKind is the Error kind of an answer's failure: FailOther for an
// error that is not an *Error.
func FailureKind(err error) string {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Kind
	}
	return FailOther
}
