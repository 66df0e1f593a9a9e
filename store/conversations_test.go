package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"silo/store"
)

func TestConversations(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := store.New(tenantDB(t, engine))

			first, err := c.CreateConversation(ctx, "doc1", nil, strings.Repeat("Why is the sky blue? ", 10))
			if err != nil {
				t.Fatal(err)
			}
			if n := len([]rune(first.Title)); n != 80 || !strings.HasSuffix(first.Title, "…") {
				t.Errorf("title %q: want the question cut to 80 characters", first.Title)
			}
			q := &store.StoredMessage{Role: store.RoleUser, Content: "Why is the sky blue?"}
			a := &store.StoredMessage{Role: store.RoleAssistant, Status: store.StatusPending}
			if err := c.AddMessages(ctx, first.ID, q, a); err != nil {
				t.Fatal(err)
			}
			if q.ID == 0 || a.ID <= q.ID {
				t.Fatalf("ids %d, %d: want them set, in order", q.ID, a.ID)
			}

			// Only one of two streams wins an answer.
			won, err := c.ClaimMessage(ctx, a.ID, "extractive")
			if err != nil || !won {
				t.Fatalf("first claim: %v, %v", won, err)
			}
			if won, err := c.ClaimMessage(ctx, a.ID, "extractive"); err != nil || won {
				t.Fatalf("second claim: %v, %v; want lost", won, err)
			}
			// Neither an answer being written nor a question is answered again.
			if again, _ := c.RetryMessage(ctx, a.ID); again {
				t.Error("an answer being written was put back to pending")
			}
			if again, _ := c.RetryMessage(ctx, q.ID); again {
				t.Error("a question was put back to pending")
			}
			a.Content, a.Status, a.Citations = "Rayleigh scattering [p. 2].", store.StatusDone, store.Citations{{Page: 2, PageEnd: 3, Text: "Rayleigh"}}
			if err := c.FinishMessage(ctx, a); err != nil {
				t.Fatal(err)
			}

			msgs, err := c.Messages(ctx, first.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 2 || msgs[0].Role != store.RoleUser || msgs[1].Content != a.Content || msgs[1].Answerer != "extractive" ||
				len(msgs[1].Citations) != 1 || msgs[1].Citations[0] != (store.Citation{Page: 2, PageEnd: 3, Text: "Rayleigh"}) {
				t.Fatalf("messages read back: %+v", msgs)
			}

			// A finished answer can be asked again (regenerated), once.
			if again, err := c.RetryMessage(ctx, a.ID); err != nil || !again {
				t.Fatalf("regenerate: %v, %v", again, err)
			}
			if again, _ := c.RetryMessage(ctx, a.ID); again {
				t.Error("a pending answer was put back to pending again")
			}

			// A failed answer can be retried, once.
			a.Status, a.Error = store.StatusFailed, "The model server refused the API key (401)."
			if err := c.FinishMessage(ctx, a); err != nil {
				t.Fatal(err)
			}
			if again, err := c.RetryMessage(ctx, a.ID); err != nil || !again {
				t.Fatalf("retry: %v, %v", again, err)
			}
			if m, _ := c.Message(ctx, "doc1", a.ID); m.Status != store.StatusPending {
				t.Errorf("after retry: %s, want pending", m.Status)
			}

			// Scoped to the document: another document's ids are not found.
			if _, err := c.Conversation(ctx, "doc2", first.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("conversation under another document: %v, want ErrNotFound", err)
			}
			if _, err := c.Message(ctx, "doc2", a.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("message under another document: %v, want ErrNotFound", err)
			}

			// A conversation is renamed, and deleted with its messages,
			// only under its own document.
			if err := c.RenameConversation(ctx, "doc2", first.ID, "x"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("rename under another document: %v, want ErrNotFound", err)
			}
			if err := c.RenameConversation(ctx, "doc1", first.ID, "The sky"); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Conversation(ctx, "doc1", first.ID); got.Title != "The sky" {
				t.Errorf("renamed: %q", got.Title)
			}
			doomed, err := c.CreateConversation(ctx, "doc1", nil, "Soon gone?")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.AddMessages(ctx, doomed.ID, &store.StoredMessage{Role: store.RoleUser, Content: "Soon gone?"}); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteConversation(ctx, "doc2", doomed.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("delete under another document: %v, want ErrNotFound", err)
			}
			if err := c.DeleteConversation(ctx, "doc1", doomed.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Conversation(ctx, "doc1", doomed.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("deleted conversation: %v, want ErrNotFound", err)
			}
			if msgs, _ := c.Messages(ctx, doomed.ID); len(msgs) != 0 {
				t.Errorf("a deleted conversation's messages are left: %+v", msgs)
			}

			// The latest conversation comes first.
			time.Sleep(10 * time.Millisecond)
			second, err := c.CreateConversation(ctx, "doc1", nil, "Another question")
			if err != nil {
				t.Fatal(err)
			}
			list, err := c.Conversations(ctx, "doc1", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].ID != second.ID {
				t.Errorf("conversations %+v: want the newest first", list)
			}

			// A conversation about several documents remembers them, apart
			// from each document's, and outlives their deletion.
			ws, err := c.CreateConversation(ctx, store.Workspace, []string{"doc1", "doc2"}, "Which is older?")
			if err != nil {
				t.Fatal(err)
			}
			all, err := c.CreateConversation(ctx, store.Workspace, nil, "What do they all say?")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := c.Conversation(ctx, store.Workspace, ws.ID); err != nil || !slices.Equal(got.DocumentIDs(), []string{"doc1", "doc2"}) {
				t.Errorf("workspace conversation read back: %+v, %v; want doc1 and doc2", got, err)
			}
			if got, err := c.Conversation(ctx, store.Workspace, all.ID); err != nil || got.DocumentIDs() != nil {
				t.Errorf("workspace conversation about all documents read back: %+v, %v", got, err)
			}
			if _, err := c.Conversation(ctx, "doc1", ws.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("workspace conversation under a document: %v, want ErrNotFound", err)
			}
			if list, _ := c.Conversations(ctx, "doc1", 10); len(list) != 2 {
				t.Errorf("the document's conversations: %+v, want its own two", list)
			}

			// Deleting the document deletes its conversations.
			if err := c.DeleteDocument(ctx, "doc1"); err != nil {
				t.Fatal(err)
			}
			if list, _ := c.Conversations(ctx, "doc1", 10); len(list) != 0 {
				t.Errorf("conversations outlive their document: %+v", list)
			}
			if msgs, _ := c.Messages(ctx, first.ID); len(msgs) != 0 {
				t.Errorf("messages outlive their document: %+v", msgs)
			}
			if list, _ := c.Conversations(ctx, store.Workspace, 10); len(list) != 2 {
				t.Errorf("workspace conversations after a document's deletion: %+v, want both", list)
			}
		})
	}
}
