// Package pipeline builds silo's content pipeline from the configuration,
// once, for the server and its tests alike: the PDF reader children
// (pdf.Pool), the ingestion workers, the searcher and the chat.
package pipeline

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"silo/answer"
	"silo/config"
	"silo/embed"
	"silo/ingest"
	"silo/models"
	"silo/pdf"
	"silo/search"
	"silo/tenant"
)

// ingestAttempts is how often a document that keeps failing for reasons
// outside the PDF (an embedding server down, say) is tried.
const ingestAttempts = 3

// handoffsPerWorker bounds the reader children handed over at upload that
// wait for an ingestion worker: that many per worker.
const handoffsPerWorker = 4

// Parts are the parts of the content pipeline, built once.
type Parts struct {
	// Readers starts the reader child of an upload and hands it to the
	// ingestion worker; its Extractor draws page images and finds where a
	// snippet lies.
	Readers *pdf.Pool
	// Ingester ingests queued documents, once its Run is called.
	Ingester *ingest.Ingester
	// Searcher searches documents; it bounds the searches run at once
	// (they are CPU-bound), so that under load a new chat's stream still
	// opens at once and waits for its turn there.
	Searcher *search.Searcher
	// Chat answers questions with the Searcher.
	Chat *answer.Chat
}

// New builds the content pipeline from the configuration: the PDF reader
// child is reader's Command (silo's own binary as `silo extract`, or a test
// binary) with its Env, under the configured limits; the embedder and the
// answerer are the configured ones.
func New(cfg *config.Config, store *models.Store, tenants *tenant.Manager, reader pdf.Extractor, log *slog.Logger) (Parts, error) {
	answerer, err := newAnswerer(cfg)
	if err != nil {
		return Parts{}, fmt.Errorf("chat: %w", err)
	}
	reader.Timeout, reader.MemoryMB = cfg.ExtractTimeout, cfg.ExtractMemMB
	readers := &pdf.Pool{
		Extractor: &reader,
		// Two reader children started ahead: an upload does not wait for
		// a child's start-up.
		Warm:        2,
		MaxHandoffs: handoffsPerWorker * cfg.IngestWorkers,
		Log:         log,
	}
	embedder := newEmbedder(cfg)
	searcher := search.New(embedder, runtime.GOMAXPROCS(0))
	return Parts{
		Readers: readers,
		Ingester: &ingest.Ingester{
			Store:        store,
			Tenants:      tenants,
			Readers:      readers,
			Embedder:     embedder,
			Workers:      cfg.IngestWorkers,
			ChunkSize:    cfg.ChunkSize,
			ChunkOverlap: cfg.ChunkOverlap,
			MaxAttempts:  ingestAttempts,
			Log:          log,
		},
		Searcher: searcher,
		Chat: &answer.Chat{
			Answerer:     answerer,
			Searcher:     searcher,
			TopK:         cfg.ChatTopK,
			HistoryTurns: cfg.ChatHistoryTurns,
			Log:          log,
		},
	}, nil
}

// newEmbedder is the embedder EMBEDDING_PROVIDER names.
func newEmbedder(cfg *config.Config) embed.Embedder {
	client := &http.Client{Timeout: 2 * time.Minute}
	switch cfg.EmbeddingProvider {
	case config.EmbedOpenAI:
		return embed.NewOpenAIEmbedder(cfg.OpenAIBaseURL, cfg.OpenAIAPIKey, cfg.EmbeddingModelName(), cfg.EmbeddingDimensions, client)
	case config.EmbedOllama:
		return embed.NewOllamaEmbedder(cfg.OllamaHost, cfg.EmbeddingModelName(), cfg.EmbeddingDimensions, client)
	}
	return embed.NewHash(cfg.EmbeddingDimensions)
}

// newAnswerer is the answerer CHAT_PROVIDER names: the extractive one by
// default, else a chat model on an OpenAI-compatible server or Ollama,
// bounded by CHAT_TIMEOUT and given CHAT_HISTORY_TURNS earlier turns.
func newAnswerer(cfg *config.Config) (answer.Answerer, error) {
	opts := answer.Options{Timeout: cfg.ChatTimeout, HistoryTurns: cfg.ChatHistoryTurns}
	switch cfg.ChatProvider {
	case config.ChatOpenAI:
		return answer.NewOpenAI(cfg.OpenAIBaseURL, cfg.OpenAIAPIKey, cfg.ChatModelName(), opts)
	case config.ChatOllama:
		return answer.NewOllama(cfg.OllamaHost, cfg.ChatModelName(), opts)
	}
	return answer.NewExtractive(), nil
}
