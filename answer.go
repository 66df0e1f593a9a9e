package main

import (
	"silo/config"
	"silo/rag"
)

// newAnswerer is the answerer CHAT_PROVIDER names: the extractive one by
// default, else a chat model on an OpenAI-compatible server or Ollama,
// bounded by CHAT_TIMEOUT and given CHAT_HISTORY_TURNS earlier turns.
func newAnswerer(cfg *config.Config) (rag.Answerer, error) {
	opts := rag.LLMOptions{Timeout: cfg.ChatTimeout, HistoryTurns: cfg.ChatHistoryTurns}
	switch cfg.ChatProvider {
	case config.ChatOpenAI:
		return rag.NewOpenAIAnswerer(cfg.OpenAIBaseURL, cfg.OpenAIAPIKey, cfg.ChatModelName(), opts)
	case config.ChatOllama:
		return rag.NewOllamaAnswerer(cfg.OllamaHost, cfg.ChatModelName(), opts)
	}
	return rag.NewExtractive(), nil
}
