package answer_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"silo/answer"
	"silo/store"
)

// History gives the question an answer answers and the turns before it,
// leaving out answers that were never written.
func TestHistory(t *testing.T) {
	msgs := []store.StoredMessage{
		{ID: 1, Role: store.RoleUser, Content: "Who built it?"},
		{ID: 2, Role: store.RoleAssistant, Status: store.StatusDone, Content: "The Romans [p. 2]."},
		{ID: 3, Role: store.RoleUser, Content: "When?"},
		{ID: 4, Role: store.RoleAssistant, Status: store.StatusFailed}, // never written
		{ID: 5, Role: store.RoleUser, Content: "When, then?"},
		{ID: 6, Role: store.RoleAssistant, Status: store.StatusPending},
		{ID: 7, Role: store.RoleUser, Content: "Later question"},
	}
	history, question, err := answer.History(msgs, 6)
	if err != nil {
		t.Fatal(err)
	}
	want := []answer.Message{
		{Role: store.RoleUser, Content: "Who built it?"},
		{Role: store.RoleAssistant, Content: "The Romans [p. 2]."},
		{Role: store.RoleUser, Content: "When?"},
	}
	if question != "When, then?" || !reflect.DeepEqual(history, want) {
		t.Errorf("got %q after %+v, want %q after %+v", question, history, "When, then?", want)
	}
	if _, _, err := answer.History(msgs, 2); err != nil {
		t.Errorf("the first answer: %v", err)
	}
	if _, _, err := answer.History(msgs[1:2], 2); err == nil {
		t.Error("an answer that follows no question: got no error")
	}
}

// A failure reads as the model's own message and kind, else as general
// ones.
func TestFailureMessageAndKind(t *testing.T) {
	ae := &answer.Error{Kind: answer.FailRateLimit, Message: "The model server is rate limiting requests."}
	for _, tc := range []struct {
		err         error
		kind, start string
	}{
		{fmt.Errorf("chat: %w", ae), answer.FailRateLimit, "The model server is rate limiting"},
		{context.DeadlineExceeded, answer.FailOther, "The answer took too long"},
		{errors.New("boom"), answer.FailOther, "The answer could not be finished."},
	} {
		if got := answer.FailureKind(tc.err); got != tc.kind {
			t.Errorf("FailureKind(%v) = %q, want %q", tc.err, got, tc.kind)
		}
		if got := answer.FailureMessage(tc.err); len(got) < len(tc.start) || got[:len(tc.start)] != tc.start {
			t.Errorf("FailureMessage(%v) = %q, want it to start %q", tc.err, got, tc.start)
		}
	}
}
