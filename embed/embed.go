// Package embed turns texts into vectors: the Embedder interface, the
// offline hash embedder (no model, no network) and the clients of
// OpenAI-compatible and Ollama embedding servers, whose retries and
// redaction of API keys the chat clients share.
package embed

import (
	"context"
	"math"
)

// Embedder turns texts into vectors of Dims() numbers.
//
// Implementations are safe for concurrent use. Embed returns one vector per
// text, in the order of texts, or an error and no vectors.
type Embedder interface {
	// Model names the embedding model and everything that changes its
	// vectors. It is recorded in each tenant database; a change triggers
	// re-embedding.
	Model() string
	// Dims is the length of every vector. A remote embedder built with
	// dims ≤ 0 learns it from its first answer and reports 0 until then.
	Dims() int
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// DocumentAdjuster is implemented by embedders whose chunk vectors rank
// better once adjusted with statistics of the whole document they belong to.
// Ingestion calls AdjustDocument on all the chunk vectors of one document
// before storing them; queries are embedded with Embed alone. Vectors of
// other documents or of other embedders must not be passed.
type DocumentAdjuster interface {
	AdjustDocument(vectors [][]float32)
}

// Document embeds the chunks of one document, adjusted as a whole when the
// embedder wants that (DocumentAdjuster).
func Document(ctx context.Context, e Embedder, texts []string) ([][]float32, error) {
	vectors, err := e.Embed(ctx, texts)
	if err != nil {
		return nil, err
	}
	if a, ok := e.(DocumentAdjuster); ok {
		a.AdjustDocument(vectors)
	}
	return vectors, nil
}

// Norm is the Euclidean length of v.
func Norm(v []float32) float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return float32(math.Sqrt(s))
}
