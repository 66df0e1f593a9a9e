package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"silo/config"
	"silo/models"
	"silo/rag"
	"silo/tenant"
)

// ingestAttempts is how often a document that keeps failing for reasons
// outside the PDF (an embedding server down, say) is tried.
const ingestAttempts = 3

// newIngester builds the ingestion workers: the PDF reader is this binary
// (`silo extract`) as a child process, the embedder the configured one.
func newIngester(cfg *config.Config, store *models.Store, tenants *tenant.Manager, log *slog.Logger) (*rag.Ingester, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find silo's own binary for the PDF reader: %w", err)
	}
	return &rag.Ingester{
		Store:   store,
		Tenants: tenants,
		Extractor: &rag.Extractor{
			Command:  []string{exe, "extract"},
			Timeout:  cfg.ExtractTimeout,
			MemoryMB: cfg.ExtractMemMB,
		},
		Embedder:     newEmbedder(cfg),
		Workers:      cfg.IngestWorkers,
		ChunkSize:    cfg.ChunkSize,
		ChunkOverlap: cfg.ChunkOverlap,
		MaxAttempts:  ingestAttempts,
		Log:          log,
		// Two reader children started ahead: an upload does not wait for
		// a child's start-up (BENCHMARKS.md, issue 4).
		Warm: 2,
	}, nil
}

// newEmbedder is the embedder EMBEDDING_PROVIDER names.
func newEmbedder(cfg *config.Config) rag.Embedder {
	client := &http.Client{Timeout: 2 * time.Minute}
	switch cfg.EmbeddingProvider {
	case config.EmbedOpenAI:
		return rag.NewOpenAIEmbedder(cfg.OpenAIBaseURL, cfg.OpenAIAPIKey, cfg.EmbeddingModelName(), cfg.EmbeddingDimensions, client)
	case config.EmbedOllama:
		return rag.NewOllamaEmbedder(cfg.OllamaHost, cfg.EmbeddingModelName(), cfg.EmbeddingDimensions, client)
	}
	return rag.NewHashEmbedder(cfg.EmbeddingDimensions)
}
