package answer

import (
	"context"
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

// Reply is an answer Turn wrote: its text, its sources, and why it ended
// early (nil when it did not).
type Reply struct {
	Text      string
	Citations []store.Citation
	Err       error
}

// Turn answers a question about a document, with the turns before it
// (oldest first), streaming the answer through emit as it is written. An
// error from the search or the tenant database is returned; a failure of
// the model, or the context ending, is in the reply's Err, with what was
// streamed before it kept.
func (c *Chat) Turn(ctx context.Context, content store.Content, docID string, history []Message, question string, emit func(token string) error) (Reply, error) {
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
	passages, err := c.Searcher.Search(ctx, content, docID, standalone, search.ModeHybrid, c.TopK)
	if err != nil {
		if ctx.Err() != nil {
			return Reply{Err: ctx.Err()}, nil
		}
		return Reply{}, err
	}
	var text strings.Builder
	err = c.Answerer.Answer(ctx, Request{Question: standalone, History: history, Passages: passages}, func(token string) error {
		text.WriteString(token)
		return emit(token)
	})
	return Reply{Text: text.String(), Citations: Cite(standalone, text.String(), passages), Err: err}, nil
}
