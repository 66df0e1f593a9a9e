package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"silo/answer"
	"silo/config"
	"silo/pdf"
	"silo/pipeline"
	"silo/search"
	"silo/store"
	"silo/testrig"
)

// answererOf returns the chat's answerer that pipeline.New builds from the
// environment env.
func answererOf(t *testing.T, env map[string]string) answer.Answerer {
	t.Helper()
	cfg, err := config.Parse(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	parts, err := pipeline.New(cfg, nil, nil, pdf.Extractor{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return parts.Chat.Answerer
}

func TestNewAnswerer(t *testing.T) {
	f := testrig.NewFakeLLM(t)
	for _, tc := range []struct {
		env  map[string]string
		name string
		api  string // the fake's API the answer went through; "" for none
	}{
		{nil, "extractive", ""},
		{map[string]string{"CHAT_PROVIDER": "openai", "OPENAI_BASE_URL": f.URL, "OPENAI_API_KEY": "sk-configured"}, "openai gpt-4o-mini", "openai"},
		{map[string]string{"CHAT_PROVIDER": "ollama", "OLLAMA_HOST": f.OllamaURL, "CHAT_MODEL": "mistral"}, "ollama mistral", "ollama"},
	} {
		a := answererOf(t, tc.env)
		if a.Name() != tc.name {
			t.Errorf("%v: got %q, want %q", tc.env, a.Name(), tc.name)
		}
		before := len(f.Requests())
		var out strings.Builder
		req := answer.Request{Question: "Where?", Passages: []search.Result{{Page: 1, Text: "Here and there."}}}
		if err := a.Answer(context.Background(), req, func(s string) error { out.WriteString(s); return nil }); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		reqs := f.Requests()[before:]
		if tc.api == "" && len(reqs) != 0 || tc.api != "" && (len(reqs) != 1 || reqs[0].API != tc.api) {
			t.Errorf("%s: requests %+v, want one to the %q API", tc.name, reqs, tc.api)
		}
		if tc.api == "openai" && reqs[0].Authorization != "Bearer sk-configured" {
			t.Errorf("%s: Authorization %q, want OPENAI_API_KEY", tc.name, reqs[0].Authorization)
		}
		if out.Len() == 0 {
			t.Errorf("%s: empty answer", tc.name)
		}
	}
}

// A chat model's answerer gets CHAT_TIMEOUT and CHAT_HISTORY_TURNS.
func TestNewAnswererOptions(t *testing.T) {
	f := testrig.NewFakeLLM(t)
	for _, provider := range []string{"openai", "ollama"} {
		a := answererOf(t, map[string]string{
			"CHAT_PROVIDER": provider, "OPENAI_BASE_URL": f.URL, "OLLAMA_HOST": f.OllamaURL,
			"CHAT_TIMEOUT": "300ms", "CHAT_HISTORY_TURNS": "2",
		})
		var history []answer.Message
		for i := range 3 {
			history = append(history, answer.Message{Role: store.RoleUser, Content: fmt.Sprintf("question %d", i)},
				answer.Message{Role: store.RoleAssistant, Content: fmt.Sprintf("answer %d", i)})
		}
		before := len(f.Requests())
		req := answer.Request{Question: "And then?", History: history}
		if err := a.Answer(context.Background(), req, func(string) error { return nil }); err != nil {
			t.Fatalf("%s: %v", provider, err)
		}
		msgs := f.Requests()[before].Messages
		if len(msgs) != 4 || msgs[1].Content != "question 2" || msgs[2].Content != "answer 2" {
			t.Errorf("%s: got messages %+v, want system, the last 2 turns, question", provider, msgs)
		}
		f.Reply(testrig.LLMReply{FirstByteDelay: 5 * time.Second})
		start := time.Now()
		err := a.Answer(context.Background(), req, func(string) error { return nil })
		var ae *answer.Error
		if !errors.As(err, &ae) || ae.Kind != answer.FailTimeout || !strings.Contains(ae.Message, "within 300ms") || time.Since(start) > 3*time.Second {
			t.Errorf("%s: got %v after %v, want a timeout after 300ms", provider, err, time.Since(start))
		}
		f.Reply(testrig.LLMReply{})
	}
}
