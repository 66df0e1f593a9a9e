package answer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"silo/embed"
	"silo/store"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/ollama"
	"github.com/tmc/langchaingo/llms/openai"
)

// Options tunes an answerer backed by a language model.
type Options struct {
	// Timeout bounds one answer, retries included (CHAT_TIMEOUT); 0 leaves
	// it to the caller's context. A standalone rewrite gets at most 15s.
	Timeout time.Duration
	// HistoryTurns is how many of the last turns go along with a question
	// (CHAT_HISTORY_TURNS); 0 sends as many as fit the cap of about 6,000
	// characters.
	HistoryTurns int
	// HTTPClient sends the requests; nil means one without a timeout of its
	// own (Timeout bounds each answer).
	HTTPClient *http.Client
}

// Limits of a prompt.
const (
	maxHistoryChars  = 6000 // of all the turns sent along
	maxTurnChars     = 2000 // of one turn
	rewriteTimeout   = 15 * time.Second
	maxRewriteTokens = 200
	maxRewriteChars  = 500
)

// rateLimitRetry bounds the retries of a rate-limited request: only before
// the first token, so nothing is emitted twice.
var rateLimitRetry = embed.RetryPolicy{Attempts: 3, Base: time.Second, Max: 10 * time.Second, Sleep: embed.Sleep}

// llmAnswerer answers with a chat model through langchaingo.
type llmAnswerer struct {
	name     string // "openai gpt-4o-mini"
	provider string // "openai" or "ollama"
	server   string // the server's address, for messages (no credentials)
	model    llms.Model
	apiKey   string // only to redact it from messages
	// ended tells a cut stream from a complete one: langchaingo reports
	// either as success.
	ended   func(*llms.ContentResponse) bool
	timeout time.Duration
	turns   int
	retry   embed.RetryPolicy
}

// NewOpenAI returns an Answerer for a chat model on any server that
// speaks OpenAI's chat completions (OpenAI, vLLM, llama.cpp, LM Studio…).
// baseURL defaults to https://api.openai.com/v1; apiKey may be empty for a
// server that needs none. Answers are streamed; a rate-limited request
// (429) is retried twice before the first token, honouring Retry-After.
func NewOpenAI(baseURL, apiKey, model string, opts Options) (Answerer, error) {
	if baseURL == "" {
		baseURL = "https://api.openai.com/v1"
	}
	baseURL = strings.TrimRight(baseURL, "/")
	server, err := serverAddress(baseURL)
	if err != nil {
		return nil, fmt.Errorf("openai chat: base URL: %w", err)
	}
	token := apiKey
	if token == "" {
		token = "none" // langchaingo refuses an empty key; keyless servers ignore it
	}
	llm, err := openai.New(openai.WithBaseURL(baseURL), openai.WithToken(token), openai.WithModel(model),
		openai.WithHTTPClient(recordingClient(opts.HTTPClient)))
	if err != nil {
		return nil, fmt.Errorf("openai chat: %w", err)
	}
	a := newLLMAnswerer("openai", model, server, llm, opts)
	a.apiKey = apiKey
	a.ended = func(r *llms.ContentResponse) bool { return r.Choices[0].StopReason != "" }
	return a, nil
}

// NewOllama returns an Answerer for a chat model of an Ollama
// server. host is OLLAMA_HOST as Ollama reads it (see embed.OllamaURL).
func NewOllama(host, model string, opts Options) (Answerer, error) {
	base := embed.OllamaURL(host)
	server, err := serverAddress(base)
	if err != nil {
		return nil, fmt.Errorf("ollama chat: OLLAMA_HOST: %w", err)
	}
	llm, err := ollama.New(ollama.WithServerURL(base), ollama.WithModel(model), ollama.WithHTTPClient(recordingClient(opts.HTTPClient)))
	if err != nil {
		return nil, fmt.Errorf("ollama chat: %w", err)
	}
	a := newLLMAnswerer("ollama", model, server, llm, opts)
	// langchaingo's Ollama client keeps the streamed text only when the
	// final "done" line came.
	a.ended = func(r *llms.ContentResponse) bool { return r.Choices[0].Content != "" }
	return a, nil
}

func newLLMAnswerer(provider, model, server string, llm llms.Model, opts Options) *llmAnswerer {
	a := &llmAnswerer{
		name: provider + " " + model, provider: provider, server: server, model: llm,
		timeout: opts.Timeout, turns: opts.HistoryTurns, retry: rateLimitRetry,
	}
	return a
}

// timeoutOr is the answerer's timeout, or d when it has none.
func (a *llmAnswerer) timeoutOr(d time.Duration) time.Duration {
	if a.timeout > 0 {
		return a.timeout
	}
	return d
}

// within bounds ctx by d when d is positive.
func within(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// serverAddress checks an http(s) base URL and returns its scheme and host,
// without credentials, path or query.
func serverAddress(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("not an absolute http or https URL")
	}
	return u.Scheme + "://" + u.Host, nil
}

// Name returns the provider and the model, e.g. "openai gpt-4o-mini".
func (a *llmAnswerer) Name() string { return a.name }

// Standalone asks the model to rewrite a follow-up into a question that can
// be searched alone, in one short request (at most 15s). Without history,
// or when the model fails or says nothing usable, the question is returned
// unchanged; the error is only that of a cancelled ctx.
func (a *llmAnswerer) Standalone(ctx context.Context, history []Message, question string) (string, error) {
	if len(history) == 0 {
		return question, nil
	}
	rctx, cancel := within(ctx, min(a.timeoutOr(rewriteTimeout), rewriteTimeout))
	defer cancel()
	var conv strings.Builder
	for _, m := range a.lastTurns(history) {
		who := "User"
		if m.Role == store.RoleAssistant {
			who = "Assistant"
		}
		conv.WriteString(who + ": " + m.Content + "\n")
	}
	msgs := []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeSystem, rewriteInstruction),
		llms.TextParts(llms.ChatMessageTypeHuman, "Conversation:\n"+conv.String()+"\nFollow-up question: "+question+"\n\nStandalone question:"),
	}
	resp, err := a.model.GenerateContent(rctx, msgs, llms.WithMaxTokens(maxRewriteTokens))
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		return question, err
	}
	if err != nil || len(resp.Choices) == 0 {
		return question, nil
	}
	rewritten := strings.TrimSpace(resp.Choices[0].Content)
	rewritten = strings.TrimSpace(strings.TrimPrefix(rewritten, "Standalone question:"))
	rewritten = strings.Trim(rewritten, "\"“”'")
	if rewritten == "" || len(rewritten) > maxRewriteChars || strings.Contains(rewritten, "\n") {
		return question, nil
	}
	return rewritten, nil
}

// rewriteInstruction asks for a standalone question and nothing else.
const rewriteInstruction = "You rewrite the user's follow-up question into a standalone question that can be understood and " +
	"searched for without the conversation: replace pronouns and references with what they refer to. Keep the " +
	"language of the question. If it is already standalone, return it unchanged. Answer with the question only."

// answerInstruction opens the system message of an answer; the passages
// follow it.
const answerInstruction = "You answer questions about a document, using only the numbered passages from it below. " +
	"After every statement, cite the page it comes from as [p. N] (the page shown with the passage; for a passage " +
	"spanning pages, the page where the statement is, or [pp. N–M]). If the passages do not contain the answer, " +
	"say so plainly instead of guessing. Answer in the language of the question, concisely; markdown is allowed."

// answerAcrossInstruction is answerInstruction for passages of several
// documents, each shown with its document's title.
const answerAcrossInstruction = "You answer questions about the user's documents, using only the numbered passages from them below. " +
	"After every statement, cite the document and page it comes from as [Title, p. N] (the title and page shown with the " +
	"passage; for a passage spanning pages, the page where the statement is, or [Title, pp. N–M]). If the passages do not " +
	"contain the answer, say so plainly instead of guessing. Answer in the language of the question, concisely; markdown is allowed."

// prompt is the messages of an answer: a system message with the
// instruction and the numbered passages with their pages (said to be only
// the closest when the search did not find the answer), the last turns of
// the conversation, then the question.
func (a *llmAnswerer) prompt(req Request) []llms.MessageContent {
	var sys strings.Builder
	if req.Titled {
		sys.WriteString(answerAcrossInstruction + "\n\nPassages:\n")
	} else {
		sys.WriteString(answerInstruction + "\n\nPassages:\n")
	}
	switch {
	case len(req.Passages) == 0:
		sys.WriteString("(none: the search found nothing in the document)\n")
	case !req.Found:
		sys.WriteString("(The search found no passage that holds most of the question's words: these are only the closest. " +
			"Unless one of them answers it, say that the documents do not seem to answer it.)\n")
	}
	for i, p := range req.Passages {
		fmt.Fprintf(&sys, "\n[%d] (%s) %s\n", i+1, pageLabel(p, req.Titled), strings.TrimSpace(p.Text))
	}
	msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeSystem, sys.String())}
	for _, m := range a.lastTurns(req.History) {
		role := llms.ChatMessageTypeHuman
		if m.Role == store.RoleAssistant {
			role = llms.ChatMessageTypeAI
		}
		msgs = append(msgs, llms.TextParts(role, m.Content))
	}
	return append(msgs, llms.TextParts(llms.ChatMessageTypeHuman, req.Question))
}

// lastTurns returns the last turns of history that fit the limits, oldest
// first, each clipped to maxTurnChars. Turns that are neither the user's
// nor the assistant's are left out.
func (a *llmAnswerer) lastTurns(history []Message) []Message {
	var out []Message
	budget := maxHistoryChars
	for i := len(history) - 1; i >= 0 && (a.turns <= 0 || len(out) < a.turns); i-- {
		m := history[i]
		if m.Role != store.RoleUser && m.Role != store.RoleAssistant {
			continue
		}
		m.Content = clip(strings.TrimSpace(m.Content), maxTurnChars)
		if budget -= len(m.Content); budget < 0 {
			break
		}
		out = append(out, m)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Answer streams the model's answer through emit. Failures are
// *Errors; a cancelled ctx (the client went away) and an error from
// emit are returned as they are.
func (a *llmAnswerer) Answer(ctx context.Context, req Request, emit func(string) error) error {
	actx, cancel := within(ctx, a.timeout)
	defer cancel()
	msgs := a.prompt(req)
	emitted := false
	var emitErr error
	stream := llms.WithStreamingFunc(func(_ context.Context, chunk []byte) error {
		if len(chunk) == 0 {
			return nil
		}
		emitted = true
		emitErr = emit(string(chunk))
		return emitErr
	})
	for attempt := 1; ; attempt++ {
		x := &exchange{}
		resp, err := a.model.GenerateContent(context.WithValue(actx, exchangeKey{}, x), msgs, stream)
		switch {
		case emitErr != nil:
			return emitErr
		case errors.Is(ctx.Err(), context.Canceled):
			return ctx.Err()
		case actx.Err() != nil:
			// langchaingo's OpenAI client reports a stream cut by the
			// deadline as a success.
			return a.fail(FailTimeout, emitted, actx.Err())
		case err == nil && (len(resp.Choices) == 0 || !a.ended(resp)):
			if !emitted {
				return a.fail(FailOther, false, errors.New("empty answer"))
			}
			return a.fail(FailInterrupted, true, errors.New("the stream ended without its final message"))
		case err == nil:
			return nil
		}
		ae := a.classify(x, err, emitted)
		if ae.Kind != FailRateLimit || emitted || attempt >= a.retry.Attempts {
			return ae
		}
		if err := a.retry.Sleep(actx, a.retry.Backoff(attempt-1, x.retryAfter)); err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			return a.fail(FailTimeout, false, err)
		}
	}
}

// classify turns a failed request into an *Error by what the
// transport saw: the status of the answer, or why there was none.
func (a *llmAnswerer) classify(x *exchange, err error, emitted bool) *Error {
	switch {
	case x.err != nil:
		return a.fail(FailUnavailable, emitted, x.err)
	case x.status == http.StatusUnauthorized || x.status == http.StatusForbidden:
		return a.fail(FailAuth, emitted, err, x.status)
	case x.status == http.StatusTooManyRequests:
		return a.fail(FailRateLimit, emitted, err)
	case x.status >= 500:
		return a.fail(FailUnavailable, emitted, err, x.status)
	case x.status == http.StatusOK:
		return a.fail(FailInterrupted, emitted, err)
	case x.status == 0: // the request never left
		return a.fail(FailOther, emitted, err)
	}
	return a.fail(FailOther, emitted, err, x.status)
}

// fail builds the *Error of a kind, in words for the page, with the
// API key taken out of the error it wraps. status is the HTTP status, if
// one came.
func (a *llmAnswerer) fail(kind string, emitted bool, err error, status ...int) *Error {
	code := ""
	if len(status) > 0 {
		code = " (HTTP " + strconv.Itoa(status[0]) + ")"
	}
	var msg string
	switch kind {
	case FailTimeout:
		msg = "The model did not finish answering in the time allowed."
		if a.timeout > 0 {
			msg = "The model did not finish answering within " + a.timeout.String() + "."
		}
	case FailAuth:
		msg = "The model server refused the request" + code + "."
		if a.provider == "openai" {
			msg = "The model server refused the API key" + code + ". Check OPENAI_API_KEY."
		}
	case FailRateLimit:
		msg = "The model server is rate limiting requests (HTTP 429), even after retrying. Try again in a minute."
	case FailUnavailable:
		if code != "" {
			msg = "The model server at " + a.server + " failed" + code + "."
		} else {
			msg = "Could not reach the model server at " + a.server + ": " + networkReason(err) + "."
		}
	case FailInterrupted:
		msg = "The model's answer was cut off: the connection to " + a.server + " ended before the answer was complete."
	default:
		msg = "The model could not answer" + code + ": " + embed.Redact(a.apiKey, err.Error()) + "."
	}
	if emitted && kind != FailInterrupted {
		msg += " The answer above is incomplete."
	}
	return &Error{Kind: kind, Message: msg, Err: fmt.Errorf("%s chat: %w", a.provider, embed.RedactErr(a.apiKey, err))}
}

// networkReason says in a few words why a server could not be reached.
func networkReason(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dns):
		return "host not found"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return "network error"
}

// exchange is what the transport saw of one request: the status of the
// answer and its Retry-After, or the error that stopped it. langchaingo's
// errors keep neither (its OpenAI client replaces network errors with
// fixed texts).
type exchange struct {
	status     int
	retryAfter time.Duration // -1 when absent
	err        error
}

// exchangeKey holds the *exchange of a request in its context.
type exchangeKey struct{}

// recordingTransport notes each request's outcome in the exchange its
// context carries.
type recordingTransport struct{ base http.RoundTripper }

// RoundTrip sends req and records what came back.
func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if x, ok := req.Context().Value(exchangeKey{}).(*exchange); ok {
		if err != nil {
			x.err = err
		} else {
			x.status = resp.StatusCode
			x.retryAfter = embed.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	return resp, err
}

// recordingClient returns a copy of c (or a new client) whose transport
// records exchanges.
func recordingClient(c *http.Client) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = recordingTransport{base: base}
	return out
}
