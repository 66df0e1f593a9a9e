// Package answer writes answers from the passages search finds: the
// Answerer interface, the offline extractive answerer, chat models on
// OpenAI-compatible and Ollama servers (through langchaingo), the sources an
// answer cites, and the chat turn that ties them to search (Chat).
package answer

import (
	"context"

	"silo/search"
)

// Message is one turn of a conversation; Role is store.RoleUser or
// store.RoleAssistant.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is what an Answerer answers: the question (already made
// standalone), the turns before it, oldest first, and the passages found for
// it, best first, with their documents' titles. Asked of several documents
// (Titled), an answer names the document of each page it cites:
// [Title, p. N]. Found is whether the passages answer the question
// (search.Found); when not, they are only the closest ones.
type Request struct {
	Question string
	History  []Message
	Passages []search.Result
	Titled   bool
	Found    bool
}

// Document is a document a chat turn answers from: its public id and title.
type Document struct {
	ID, Title string
}

// Answerer writes answers from retrieved passages.
type Answerer interface {
	// Name labels the answers it writes, for the page and the logs, e.g.
	// "extractive" or "openai gpt-4o-mini".
	Name() string
	// Standalone rewrites a follow-up question that depends on the turns
	// before it into one that can be searched alone. With no history it
	// returns the question unchanged.
	Standalone(ctx context.Context, history []Message, question string) (string, error)
	// Answer streams the answer through emit, token by token, as it
	// arrives. What was emitted before an error stays emitted; the error
	// is an *Error saying what went wrong in words for the page. An
	// error from emit (the client went away) stops the answer and is
	// returned as it is.
	Answer(ctx context.Context, req Request, emit func(token string) error) error
}

// Kinds of Error.
const (
	FailTimeout     = "timeout"      // no answer within the time limit
	FailAuth        = "unauthorized" // the model server refused the key (401/403)
	FailRateLimit   = "rate_limited" // 429, after the retries
	FailUnavailable = "unavailable"  // connection refused, DNS, 5xx
	FailInterrupted = "interrupted"  // the stream was cut mid-way
	FailOther       = "failed"       // anything else
)

// Error is a failure of the model behind an Answerer, with a message a
// person understands ("The model server refused the API key (401).").
// Message never holds a secret.
type Error struct {
	Kind    string
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }
