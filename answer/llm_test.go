package answer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"silo/answer"
	"silo/search"
	"silo/store"
	"silo/testrig"
)

// testKey is the API key the tests' answerers send; it must never show in
// an error.
const testKey = "sk-test-secret-4242"

// newAnswerer returns an answerer of provider ("openai" or "ollama") on f.
func newAnswerer(t *testing.T, provider string, f *testrig.FakeLLM, opts answer.Options) answer.Answerer {
	t.Helper()
	var a answer.Answerer
	var err error
	if provider == "openai" {
		a, err = answer.NewOpenAI(f.URL, testKey, "gpt-4o-mini", opts)
	} else {
		a, err = answer.NewOllama(f.OllamaURL, "llama3.2", opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ask runs a.Answer and returns the tokens emitted, the times they came
// and the error.
func ask(a answer.Answerer, req answer.Request) ([]string, []time.Time, error) {
	var tokens []string
	var at []time.Time
	err := a.Answer(context.Background(), req, func(tok string) error {
		tokens = append(tokens, tok)
		at = append(at, time.Now())
		return nil
	})
	return tokens, at, err
}

// defaults are the options the configuration gives by default
// (CHAT_TIMEOUT, CHAT_HISTORY_TURNS): the answerers' own defaults before
// they moved there.
var defaults = answer.Options{Timeout: time.Minute, HistoryTurns: 6}

var (
	providers = []string{"openai", "ollama"}
	question  = answer.Request{Question: "Which way does the river flow?", Passages: []search.Result{{Page: 7, Text: "The river flows north."}}}
)

func TestLLMAnswerStreams(t *testing.T) {
	for _, provider := range providers {
		t.Run(provider, func(t *testing.T) {
			f := testrig.NewFakeLLM(t)
			want := testrig.Words("The river flows north [p. 7].")
			f.Reply(testrig.LLMReply{Tokens: want, TokenDelay: 30 * time.Millisecond})
			a := newAnswerer(t, provider, f, defaults)
			tokens, at, err := ask(a, question)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tokens, want) {
				t.Fatalf("got tokens %q, want %q", tokens, want)
			}
			// Streamed, not gathered: the first token came well before the last.
			if d := at[len(at)-1].Sub(at[0]); d < 90*time.Millisecond {
				t.Errorf("first and last token %s apart, want ≥ 90ms", d)
			}
			if reqs := f.Requests(); len(reqs) != 1 || !reqs[0].Stream || reqs[0].API != provider {
				t.Errorf("requests %+v, want one streamed %s request", reqs, provider)
			}
			if provider == "openai" {
				if got := f.Requests()[0].Authorization; got != "Bearer "+testKey {
					t.Errorf("Authorization %q, want the key", got)
				}
				if a.Name() != "openai gpt-4o-mini" {
					t.Errorf("Name() = %q", a.Name())
				}
			}
		})
	}
}

// Asked of several documents, the passages carry their documents' titles
// and the model is asked to cite them as [Title, p. N].
func TestLLMPromptTitled(t *testing.T) {
	f := testrig.NewFakeLLM(t)
	a := newAnswerer(t, "openai", f, answer.Options{Timeout: time.Minute, HistoryTurns: 4})
	req := answer.Request{
		Question: "When?",
		Passages: []search.Result{{Title: "Oil crisis", Page: 4, Text: "Alpha text."}, {Title: "Jacksonville", Page: 5, PageEnd: 6, Text: "Beta text."}},
		Titled:   true,
		Found:    true,
	}
	if _, _, err := ask(a, req); err != nil {
		t.Fatal(err)
	}
	sys := f.Requests()[0].Messages[0].Content
	if !strings.Contains(sys, "[1] (Oil crisis, p. 4) Alpha text.") || !strings.Contains(sys, "[2] (Jacksonville, pp. 5–6) Beta text.") || !strings.Contains(sys, "[Title, p. N]") {
		t.Errorf("system message %q: want titled passages and [Title, p. N] citations", sys)
	}
	if strings.Contains(sys, "only the closest") {
		t.Errorf("system message %q: the passages were not found to answer, want them presented as answering", sys)
	}
	// Passages that do not seem to answer are presented as the closest.
	req.Found = false
	if _, _, err := ask(a, req); err != nil {
		t.Fatal(err)
	}
	if sys := f.Requests()[1].Messages[0].Content; !strings.Contains(sys, "these are only the closest") || !strings.Contains(sys, "[1] (Oil crisis, p. 4) Alpha text.") {
		t.Errorf("system message %q: want the passages said to be only the closest", sys)
	}
}

func TestLLMPrompt(t *testing.T) {
	f := testrig.NewFakeLLM(t)
	a := newAnswerer(t, "openai", f, answer.Options{Timeout: time.Minute, HistoryTurns: 4})
	var history []answer.Message
	for i := range 5 {
		history = append(history, answer.Message{Role: store.RoleUser, Content: fmt.Sprintf("question %d", i)},
			answer.Message{Role: store.RoleAssistant, Content: fmt.Sprintf("answer %d", i)})
	}
	history[len(history)-1].Content = strings.Repeat("long ", 1000)
	req := answer.Request{
		Question: "And then?",
		History:  history,
		Passages: []search.Result{{Page: 4, Text: "Alpha text."}, {Page: 5, PageEnd: 6, Text: "Beta text."}},
	}
	if _, _, err := ask(a, req); err != nil {
		t.Fatal(err)
	}
	msgs := f.Requests()[0].Messages
	if len(msgs) != 6 {
		t.Fatalf("got %d messages, want system, 4 turns, question: %+v", len(msgs), msgs)
	}
	sys := msgs[0]
	if sys.Role != "system" || !strings.Contains(sys.Content, "[1] (p. 4) Alpha text.") || !strings.Contains(sys.Content, "[2] (pp. 5–6) Beta text.") ||
		!strings.Contains(sys.Content, "[p. N]") || !strings.Contains(sys.Content, "do not contain the answer") {
		t.Errorf("system message %q: want the instruction and the numbered passages with pages", sys.Content)
	}
	wantTurns := []string{"question 3", "answer 3", "question 4"}
	for i, w := range wantTurns {
		if msgs[1+i].Content != w {
			t.Errorf("turn %d: got %q, want %q", i, msgs[1+i].Content, w)
		}
	}
	if m := msgs[4]; m.Role != "assistant" || len(m.Content) > 2000 || !strings.HasSuffix(m.Content, "…") {
		t.Errorf("last turn: role %s, %d bytes; want the assistant's, clipped to 2000", m.Role, len(m.Content))
	}
	if m := msgs[5]; m.Role != "user" || m.Content != "And then?" {
		t.Errorf("last message %+v, want the question", m)
	}
}

// With no HistoryTurns, a question goes with as many of the last turns as
// fit about 6,000 characters.
func TestLLMPromptTurnsThatFit(t *testing.T) {
	f := testrig.NewFakeLLM(t)
	a := newAnswerer(t, "openai", f, answer.Options{})
	turns := func(n, size int) []answer.Message {
		var h []answer.Message
		for i := range n {
			role := store.RoleUser
			if i%2 == 1 {
				role = store.RoleAssistant
			}
			h = append(h, answer.Message{Role: role, Content: fmt.Sprintf("%d %s", i, strings.Repeat("x", size-2))})
		}
		return h
	}
	for _, tc := range []struct {
		history []answer.Message
		want    int // turns sent: the last ones
	}{
		{turns(20, 10), 20},
		{turns(5, 1500), 4},
	} {
		before := len(f.Requests())
		if _, _, err := ask(a, answer.Request{Question: "And then?", History: tc.history}); err != nil {
			t.Fatal(err)
		}
		msgs := f.Requests()[before].Messages
		if len(msgs) != tc.want+2 {
			t.Errorf("%d turns of %d bytes: got %d messages, want system, %d turns, question", len(tc.history), len(tc.history[0].Content), len(msgs), tc.want)
			continue
		}
		for i, m := range msgs[1 : 1+tc.want] {
			if want := tc.history[len(tc.history)-tc.want+i].Content; m.Content != want {
				t.Errorf("%d turns of %d bytes: turn %d is %.10q…, want %.10q…", len(tc.history), len(tc.history[0].Content), i, m.Content, want)
			}
		}
	}
}

func TestLLMStandalone(t *testing.T) {
	history := []answer.Message{
		{Role: store.RoleUser, Content: "Who designed the Eiffel Tower?"},
		{Role: store.RoleAssistant, Content: "Gustave Eiffel's company [p. 3]."},
	}
	for _, provider := range providers {
		t.Run(provider, func(t *testing.T) {
			f := testrig.NewFakeLLM(t)
			f.ReplyFunc(func(r testrig.LLMRequest) testrig.LLMReply {
				if strings.Contains(r.Messages[0].Content, "standalone question") {
					return testrig.LLMReply{Tokens: testrig.Words(" When was the Eiffel Tower built? ")}
				}
				return testrig.LLMReply{}
			})
			a := newAnswerer(t, provider, f, defaults)
			same, err := a.Standalone(context.Background(), nil, "When was it built?")
			if err != nil || same != "When was it built?" || len(f.Requests()) != 0 {
				t.Fatalf("no history: got %q, %v after %d requests; want the question, no request", same, err, len(f.Requests()))
			}
			q, err := a.Standalone(context.Background(), history, "When was it built?")
			if err != nil || q != "When was the Eiffel Tower built?" {
				t.Fatalf("got %q, %v; want the rewritten question", q, err)
			}
			rw := f.Requests()[0]
			if provider == "openai" && rw.Stream {
				t.Error("the rewrite was streamed")
			}
			if last := rw.Messages[len(rw.Messages)-1].Content; !strings.Contains(last, "User: Who designed the Eiffel Tower?") || !strings.Contains(last, "Follow-up question: When was it built?") {
				t.Errorf("rewrite prompt %q: want the conversation and the follow-up", last)
			}
			if _, _, err := ask(a, answer.Request{Question: q, History: history}); err != nil {
				t.Fatal(err)
			}
			ans := f.Requests()[1].Messages
			if got := ans[len(ans)-1].Content; got != q {
				t.Errorf("answered %q, want the standalone question", got)
			}
			// A failing model leaves the question as it is.
			f.Reply(testrig.LLMReply{Status: 500})
			if got, err := a.Standalone(context.Background(), history, "When was it built?"); err != nil || got != "When was it built?" {
				t.Errorf("failing model: got %q, %v; want the question", got, err)
			}
		})
	}
}

func TestLLMFailures(t *testing.T) {
	tokens := testrig.Words("one two three four five six")
	for _, tc := range []struct {
		name      string
		providers []string
		reply     testrig.LLMReply
		closed    bool // the server is gone
		kind      string
		message   string
		emitted   int
		requests  int
	}{
		{"timeout before the first byte", providers, testrig.LLMReply{FirstByteDelay: 5 * time.Second}, false, answer.FailTimeout, "within 500ms", 0, 1},
		{"timeout mid-way", providers, testrig.LLMReply{Tokens: tokens, TokenDelay: 200 * time.Millisecond}, false, answer.FailTimeout, "incomplete", 2, 1},
		{"unauthorized", []string{"openai"}, testrig.LLMReply{Status: 401}, false, answer.FailAuth, "refused the API key (HTTP 401)", 0, 1},
		{"forbidden", providers, testrig.LLMReply{Status: 403}, false, answer.FailAuth, "(HTTP 403)", 0, 1},
		{"rate limited", providers, testrig.LLMReply{Status: 429}, false, answer.FailRateLimit, "rate limiting", 0, 3},
		{"server error", providers, testrig.LLMReply{Status: 500}, false, answer.FailUnavailable, "failed (HTTP 500)", 0, 1},
		{"connection refused", providers, testrig.LLMReply{}, true, answer.FailUnavailable, "connection refused", 0, 0},
		{"stream ends mid-way", providers, testrig.LLMReply{Tokens: tokens, Cut: testrig.CutEnd, CutAfter: 3}, false, answer.FailInterrupted, "cut off", 3, 1},
		{"connection dropped mid-way", providers, testrig.LLMReply{Tokens: tokens, Cut: testrig.CutDrop, CutAfter: 3}, false, answer.FailInterrupted, "cut off", 3, 1},
		{"bad request", []string{"openai"}, testrig.LLMReply{Status: 400}, false, answer.FailOther, "(HTTP 400)", 0, 1},
	} {
		for _, provider := range tc.providers {
			t.Run(provider+"/"+tc.name, func(t *testing.T) {
				f := testrig.NewFakeLLM(t)
				f.Reply(tc.reply)
				if tc.name == "unauthorized" {
					f.RequireKey("sk-the-right-key")
				}
				if tc.closed {
					f.Close()
				}
				a := newAnswerer(t, provider, f, answer.Options{Timeout: 500 * time.Millisecond, HistoryTurns: 6})
				got, _, err := ask(a, question)
				var ae *answer.Error
				if !errors.As(err, &ae) {
					t.Fatalf("got %v, want an answer.Error", err)
				}
				if ae.Kind != tc.kind || !strings.Contains(ae.Message, tc.message) {
					t.Errorf("got %s %q, want %s …%q…", ae.Kind, ae.Message, tc.kind, tc.message)
				}
				if len(got) != tc.emitted || !slices.Equal(got, tokens[:len(got)]) {
					t.Errorf("emitted %q, want the first %d tokens", got, tc.emitted)
				}
				if n := len(f.Requests()); n != tc.requests {
					t.Errorf("%d requests, want %d", n, tc.requests)
				}
				if strings.Contains(ae.Message, testKey) || strings.Contains(fmt.Sprintf("%v %+v", err, errors.Unwrap(err)), testKey) {
					t.Errorf("the API key shows in %q / %v", ae.Message, errors.Unwrap(err))
				}
			})
		}
	}
}

func TestLLMRateLimitRetried(t *testing.T) {
	f := testrig.NewFakeLLM(t)
	var n atomic.Int32
	f.ReplyFunc(func(testrig.LLMRequest) testrig.LLMReply {
		if n.Add(1) == 1 {
			return testrig.LLMReply{Status: 429, RetryAfter: 0}
		}
		return testrig.LLMReply{}
	})
	tokens, _, err := ask(newAnswerer(t, "openai", f, defaults), question)
	if err != nil || !slices.Equal(tokens, testrig.DefaultTokens) || len(f.Requests()) != 2 {
		t.Errorf("got %q, %v after %d requests; want the answer after 2", tokens, err, len(f.Requests()))
	}
}

// A 429 without Retry-After is retried after a wait of the answerer's own
// choosing (at least half a second, not at once), and answered then; when
// it keeps coming, the answerer gives up as rate limited after 3 requests.
func TestLLMRateLimitWithoutRetryAfter(t *testing.T) {
	for _, provider := range providers {
		t.Run(provider+"/retried", func(t *testing.T) {
			t.Parallel()
			f := testrig.NewFakeLLM(t)
			var mu sync.Mutex
			var at []time.Time
			f.ReplyFunc(func(testrig.LLMRequest) testrig.LLMReply {
				mu.Lock()
				defer mu.Unlock()
				if at = append(at, time.Now()); len(at) == 1 {
					return testrig.LLMReply{Status: 429, NoRetryAfter: true}
				}
				return testrig.LLMReply{}
			})
			tokens, _, err := ask(newAnswerer(t, provider, f, defaults), question)
			if err != nil || !slices.Equal(tokens, testrig.DefaultTokens) || len(f.Requests()) != 2 {
				t.Fatalf("got %q, %v after %d requests; want the answer after 2", tokens, err, len(f.Requests()))
			}
			mu.Lock()
			defer mu.Unlock()
			if wait := at[1].Sub(at[0]); wait < 500*time.Millisecond {
				t.Errorf("retried after %v, want a wait of at least 500ms", wait)
			}
		})
		t.Run(provider+"/gives up", func(t *testing.T) {
			t.Parallel()
			f := testrig.NewFakeLLM(t)
			f.Reply(testrig.LLMReply{Status: 429, NoRetryAfter: true})
			tokens, _, err := ask(newAnswerer(t, provider, f, defaults), question)
			var ae *answer.Error
			if !errors.As(err, &ae) || ae.Kind != answer.FailRateLimit || !strings.Contains(ae.Message, "rate limiting") {
				t.Fatalf("got %v, want an answer.Error of kind %s", err, answer.FailRateLimit)
			}
			if n := len(f.Requests()); n != 3 || len(tokens) != 0 {
				t.Errorf("got %d requests and tokens %q, want 3 requests and no token", n, tokens)
			}
		})
	}
}

func TestLLMAnswerStops(t *testing.T) {
	f := testrig.NewFakeLLM(t)
	a := newAnswerer(t, "openai", f, defaults)
	gone := errors.New("client gone")
	if err := a.Answer(context.Background(), question, func(string) error { return gone }); err != gone {
		t.Errorf("emit failing: got %v, want its error", err)
	}
	f.Reply(testrig.LLMReply{TokenDelay: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if err := a.Answer(ctx, question, func(string) error { return nil }); !errors.Is(err, context.Canceled) || time.Since(start) > 900*time.Millisecond {
		t.Errorf("cancelled: got %v after %s, want context.Canceled at once", err, time.Since(start))
	}
}

func TestLLMBadURL(t *testing.T) {
	if _, err := answer.NewOpenAI("ftp://x", "", "m", answer.Options{}); err == nil {
		t.Error("ftp base URL accepted")
	}
}
