package rag

import (
	"context"

	"silo/config"
)

// Roles of the turns of a conversation.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Citation is a source an answer rests on: the passage's page (or page
// span) and a snippet of it, the sentence that best answers the question.
type Citation struct {
	Page    int    `json:"page"`
	PageEnd int    `json:"page_end,omitempty"`
	Text    string `json:"text"`
}

// AnswerRequest is what an Answerer answers: the question (already made
// standalone), the turns before it, oldest first, and the passages found for
// it, best first.
type AnswerRequest struct {
	Question string
	History  []Message
	Passages []Result
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
	// is an *AnswerError saying what went wrong in words for the page. An
	// error from emit (the client went away) stops the answer and is
	// returned as it is.
	Answer(ctx context.Context, req AnswerRequest, emit func(token string) error) error
}

// Kinds of AnswerError.
const (
	FailTimeout     = "timeout"      // no answer within the time limit
	FailAuth        = "unauthorized" // the model server refused the key (401/403)
	FailRateLimit   = "rate_limited" // 429, after the retries
	FailUnavailable = "unavailable"  // connection refused, DNS, 5xx
	FailInterrupted = "interrupted"  // the stream was cut mid-way
	FailOther       = "failed"       // anything else
)

// AnswerError is a failure of the model behind an Answerer, with a message a
// person understands ("The model server refused the API key (401).").
// Message never holds a secret.
type AnswerError struct {
	Kind    string
	Message string
	Err     error
}

func (e *AnswerError) Error() string { return e.Message }
func (e *AnswerError) Unwrap() error { return e.Err }

// NewAnswerer is the answerer CHAT_PROVIDER names: the extractive one by
// default, else a chat model on an OpenAI-compatible server or Ollama,
// bounded by CHAT_TIMEOUT and given CHAT_HISTORY_TURNS earlier turns.
func NewAnswerer(cfg *config.Config) (Answerer, error) {
	opts := LLMOptions{Timeout: cfg.ChatTimeout, HistoryTurns: cfg.ChatHistoryTurns}
	switch cfg.ChatProvider {
	case config.ChatOpenAI:
		return NewOpenAIAnswerer(cfg.OpenAIBaseURL, cfg.OpenAIAPIKey, cfg.ChatModelName(), opts)
	case config.ChatOllama:
		return NewOllamaAnswerer(cfg.OllamaHost, cfg.ChatModelName(), opts)
	}
	return NewExtractive(), nil
}
