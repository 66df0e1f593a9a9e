package store

import (
	"testing"
	"time"
)

// ANNChunks is the length above which a document's chunks go into
// PostgreSQL's HNSW index.
const ANNChunks = annChunks

// PGANNQuery is the PostgreSQL vector search's SQL for a long document, for
// plan checks.
const PGANNQuery = pgANNQuery

// MetaReembedClaim is the meta key of a re-embedding's claim.
const MetaReembedClaim = metaReembedClaim

// ReembedPoll is how often a re-embedding waiting on another's claim looks
// again.
const ReembedPoll = reembedPoll

// ReembedLease is how long a re-embedding's claim lasts unless renewed.
func ReembedLease() time.Duration { return reembedLease }

// SetReembedLease makes a claim last d until the test ends. It must not be
// called while a re-embedding runs.
func SetReembedLease(t testing.TB, d time.Duration) {
	old := reembedLease
	reembedLease = d
	t.Cleanup(func() { reembedLease = old })
}
