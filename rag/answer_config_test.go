package rag_test

import (
	"context"
	"strings"
	"testing"

	"silo/config"
	"silo/rag"
	"silo/testrig"
)

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
		cfg, err := config.Parse(func(k string) string { return tc.env[k] })
		if err != nil {
			t.Fatal(err)
		}
		a, err := rag.NewAnswerer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if a.Name() != tc.name {
			t.Errorf("%v: got %q, want %q", tc.env, a.Name(), tc.name)
		}
		before := len(f.Requests())
		var out strings.Builder
		req := rag.AnswerRequest{Question: "Where?", Passages: []rag.Result{{Page: 1, Text: "Here and there."}}}
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
