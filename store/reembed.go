package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"silo/embed"

	"github.com/uptrace/bun"
)

// metaReembedClaim is the meta key of the claim a re-embedding holds on a
// tenant database while it works (reembedClaim, as JSON).
const metaReembedClaim = "reembed_claim"

// reembedLease is how long a claim lasts unless its worker renews it, which
// it does every quarter lease while it works (keepClaim), however long one
// document takes to embed: the claim of a worker that died expires, and
// another takes the work over. A variable for tests.
var reembedLease = 2 * time.Minute

// reembedPoll is how often a re-embedding that found another's live claim
// looks again.
const reembedPoll = 250 * time.Millisecond

// errClaimLost means another worker took a re-embedding's claim over, its
// lease having run out.
var errClaimLost = errors.New("store: re-embedding lost its claim on the workspace")

// reembedClaim is a re-embedding's claim on a tenant database: which worker
// holds it, for which model, until when.
type reembedClaim struct {
	Owner   string    `json:"owner"`
	Model   string    `json:"model"`
	Expires time.Time `json:"expires"`

	value string // as stored in meta
}

// newReembedClaim is a claim for model by a new owner, leased from now.
func newReembedClaim(model string) (*reembedClaim, error) {
	var owner [12]byte
	if _, err := rand.Read(owner[:]); err != nil {
		return nil, err
	}
	cl := &reembedClaim{Owner: hex.EncodeToString(owner[:]), Model: model}
	return cl, cl.renew()
}

// renew moves the claim's expiry to a lease from now.
func (cl *reembedClaim) renew() error {
	cl.Expires = time.Now().Add(reembedLease).UTC()
	b, err := json.Marshal(cl)
	cl.value = string(b)
	return err
}

// liveClaim tells whether a stored claim is one that has not expired; a
// claim that does not parse is taken for expired.
func liveClaim(value string) bool {
	var cl reembedClaim
	return value != "" && json.Unmarshal([]byte(value), &cl) == nil && time.Now().Before(cl.Expires)
}

// Reembed replaces every chunk's vector with one made by e and records e's
// model. Readers see the old vectors or the new, never a mix, and other
// writes to the tenant database go on while e embeds:
//
//  1. claim: a short write transaction reads the recorded model (when it is
//     e's, there is nothing to do) and writes a claim with a lease into meta,
//     unless another worker's live claim is there: then Reembed waits until
//     that worker records the model or its claim expires;
//  2. work: on a connection of its own, it reads the chunks and embeds them
//     document by document, as ingestion does, into a temporary table of that
//     connection, while a connection of the pool renews the lease (keepClaim);
//     then, in up to catchUpRounds more rounds, the documents indexed
//     meanwhile (lateChunks);
//  3. swap: a short write transaction checks that the model and the claim are
//     still as claimed, embeds the documents indexed since the last round
//     (few or none), moves the new vectors into the chunks, records the
//     model and drops the claim.
//
// A re-embedding that fails drops its claim and changes no chunk.
func (c Content) Reembed(ctx context.Context, e embed.Embedder) error {
	conn, err := c.db.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: re-embed: %w", err)
	}
	defer func() { _ = conn.Close() }() // back to the pool
	return c.eng.reembed(ctx, conn, e)
}

// reembed is Reembed on the connection of job.
func reembed(ctx context.Context, job reembedJob, pool bun.IDB, e embed.Embedder) error {
	claim, from, err := claimReembed(ctx, job, e.Model())
	if err != nil || claim == nil {
		return err
	}
	err = runReembed(ctx, job, e, keepClaim(ctx, pool, claim), from)
	// Whatever happened, leave neither the claim (when it failed) nor the
	// temporary table (the connection goes back to the pool) behind.
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err != nil {
		_, _ = job.exec(cleanup, "DELETE FROM meta WHERE key = ? AND value = ?", metaReembedClaim, claim.value)
	}
	_, _ = job.exec(cleanup, "DROP TABLE IF EXISTS "+job.temp())
	return err
}

// claimKeeper renews a re-embedding's claim in the background, on a
// connection of the tenant's pool, until stop: the job's own connection is
// busy with its work, and one document may take a remote embedder longer
// than a lease.
type claimKeeper struct {
	claim *reembedClaim // renewed under mu until stop returns
	mu    sync.Mutex
	gone  bool
	stop  func()
}

// keepClaim starts renewing claim every quarter lease.
func keepClaim(ctx context.Context, pool bun.IDB, claim *reembedClaim) *claimKeeper {
	k := &claimKeeper{claim: claim}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var once sync.Once
	k.stop = func() { once.Do(func() { cancel(); <-done }) }
	go func() {
		defer close(done)
		tick := time.NewTicker(reembedLease / 4)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if !k.renew(ctx, pool) {
				return
			}
		}
	}()
	return k
}

// renew moves the claim's expiry on, unless another worker has taken the
// claim over (then it reports false). A failed write (a busy database, or
// no free connection in the pool) is tried again at the next tick, well
// before the lease runs out. The database is written without holding mu, so
// that lost never waits on it.
func (k *claimKeeper) renew(ctx context.Context, pool bun.IDB) bool {
	k.mu.Lock()
	next := *k.claim
	k.mu.Unlock()
	old := next.value
	if err := next.renew(); err != nil {
		return true
	}
	res, err := pool.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = ? AND value = ?", next.value, metaReembedClaim, old)
	if err != nil {
		return true
	}
	n, err := res.RowsAffected()
	if err != nil {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if n == 0 {
		k.gone = true
		return false
	}
	*k.claim = next
	return true
}

// lost reports whether another worker took the claim over.
func (k *claimKeeper) lost() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.gone
}

// claimReembed claims the tenant database to re-embed it for model,
// waiting while another worker's claim is live. It returns the claim and
// the model it replaces, or no claim when model is recorded already.
func claimReembed(ctx context.Context, job reembedJob, model string) (*reembedClaim, string, error) {
	for {
		var claim *reembedClaim
		var from string
		wait := false
		err := job.writeTx(ctx, func(q reembedQueries) error {
			recorded, err := q.value(ctx, metaValue, metaEmbeddingModel)
			if err != nil || recorded == model {
				return err
			}
			other, err := q.value(ctx, metaValue, metaReembedClaim)
			if err != nil {
				return err
			}
			if liveClaim(other) {
				wait = true
				return nil
			}
			if claim, err = newReembedClaim(model); err != nil {
				return err
			}
			from = recorded
			return setMeta(ctx, q, metaReembedClaim, claim.value)
		})
		switch {
		case sqliteBusy(err):
			// Another writer held the database longer than the busy
			// timeout: wait on.
		case err != nil:
			return nil, "", fmt.Errorf("store: claim the workspace to re-embed: %w", err)
		case !wait:
			return claim, from, nil
		}
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("store: wait to re-embed: %w", ctx.Err())
		case <-time.After(reembedPoll):
		}
	}
}

// runReembed embeds the chunks into the job's temporary table, then swaps
// them in with the model, as Reembed describes.
func runReembed(ctx context.Context, job reembedJob, e embed.Embedder, keeper *claimKeeper, from string) error {
	claim := keeper.claim
	defer keeper.stop()
	for _, q := range append([]string{"DROP TABLE IF EXISTS " + job.temp()}, job.tempDDL()...) {
		if _, err := job.exec(ctx, q); err != nil {
			return fmt.Errorf("store: make the table of new vectors: %w", err)
		}
	}
	chunks, err := job.texts(ctx, "SELECT id, document_id, text FROM chunks ORDER BY document_id, position")
	if err != nil {
		return fmt.Errorf("store: read chunks: %w", err)
	}
	stage := func(doc []storedText, vectors [][]float32) error {
		if err := job.stage(ctx, doc, vectors); err != nil {
			return err
		}
		if keeper.lost() {
			return errClaimLost
		}
		return nil
	}
	err = embedChunks(ctx, e, chunks, stage)
	// Documents indexed meanwhile are embedded too, still without a lock,
	// a few rounds at most, so that the swap, which holds the tenant's
	// write lock, finds few or none to embed.
	for round, more := 0, true; err == nil && more && round < catchUpRounds; round++ {
		more, err = embedLate(ctx, job, job.temp(), e, stage)
	}
	keeper.stop() // the claim's value is settled from here
	if err != nil {
		return err
	}
	return job.writeTx(ctx, func(q reembedQueries) error {
		// No chunk may be written between the read of the late ones and
		// the update, or it would keep the old model's vector.
		if lock := job.lockChunks(); lock != "" {
			if _, err := q.exec(ctx, lock); err != nil {
				return fmt.Errorf("store: lock chunks: %w", err)
			}
		}
		model, err := q.value(ctx, metaValue, metaEmbeddingModel)
		if err != nil {
			return err
		}
		held, err := q.value(ctx, metaValue, metaReembedClaim)
		if err != nil {
			return err
		}
		if model != from || held != claim.value {
			return errClaimLost
		}
		// Documents indexed since the last look: embed them whole.
		if _, err := embedLate(ctx, q, job.temp(), e, func(doc []storedText, vectors [][]float32) error {
			return q.stage(ctx, doc, vectors)
		}); err != nil {
			return fmt.Errorf("%w (in the swap)", err)
		}
		_, err = q.exec(ctx, "UPDATE chunks SET embedding = r.embedding FROM "+job.temp()+" r "+
			"WHERE chunks.id = r.id AND chunks.document_id = r.document_id AND chunks.text = r.text")
		if err != nil {
			return fmt.Errorf("store: update chunk vectors: %w", err)
		}
		for key, value := range modelMeta(e.Model(), e.Dims()) {
			if err := setMeta(ctx, q, key, value); err != nil {
				return fmt.Errorf("store: record embedding model: %w", err)
			}
		}
		_, err = q.exec(ctx, "DELETE FROM meta WHERE key = ?", metaReembedClaim)
		return err
	})
}

// catchUpRounds is how many times a re-embedding looks for documents
// indexed while it embedded before it swaps the vectors in.
const catchUpRounds = 3

// lateChunks selects the chunks of the documents that have a chunk without
// a new vector in temp: indexed after the chunks were read (SQLite may give
// a new chunk the id of a deleted one, hence the document and text).
func lateChunks(temp string) string {
	return "SELECT id, document_id, text FROM chunks WHERE document_id IN (" +
		"SELECT c.document_id FROM chunks c LEFT JOIN " + temp + " r " +
		"ON r.id = c.id AND r.document_id = c.document_id AND r.text = c.text WHERE r.id IS NULL" +
		") ORDER BY document_id, position"
}

// embedLate embeds the chunks of the documents that have a chunk without a
// new vector in temp (lateChunks), handing them to write, and reports
// whether there were any.
func embedLate(ctx context.Context, q reembedQueries, temp string, e embed.Embedder, write func(doc []storedText, vectors [][]float32) error) (bool, error) {
	late, err := q.texts(ctx, lateChunks(temp))
	if err != nil {
		return false, fmt.Errorf("store: read chunks written while re-embedding: %w", err)
	}
	return len(late) > 0, embedChunks(ctx, e, late, write)
}

// setMeta writes a meta row.
func setMeta(ctx context.Context, q reembedQueries, key, value string) error {
	_, err := q.exec(ctx, metaUpsert, key, value)
	return err
}

// reembedQueries are the statements of a re-embedding, on its connection
// or in a transaction on it, with ? placeholders on either engine.
type reembedQueries interface {
	// exec runs a statement and returns how many rows it changed.
	exec(ctx context.Context, query string, args ...any) (int64, error)
	// value returns the one text column of the row a query finds, or ""
	// when it finds none.
	value(ctx context.Context, query string, args ...any) (string, error)
	// texts returns the chunks a query of their id, document and text finds.
	texts(ctx context.Context, query string, args ...any) ([]storedText, error)
	// stage writes a document's new vectors into the temporary table, in
	// place of any there for the same chunks.
	stage(ctx context.Context, doc []storedText, vectors [][]float32) error
}

// reembedJob is the connection a re-embedding keeps for its work: its
// temporary table lives there.
type reembedJob interface {
	reembedQueries
	// writeTx runs f in a transaction that holds the lock on meta that
	// re-embeddings take turns by: SQLite's write lock, PostgreSQL's
	// SHARE ROW EXCLUSIVE lock on meta.
	writeTx(ctx context.Context, f func(q reembedQueries) error) error
	// lockChunks is the statement that keeps other writers off the chunks
	// until the end of a writeTx, where its lock does not already.
	lockChunks() string
	// temp is the name of the temporary table of new vectors.
	temp() string
	// tempDDL makes it: id, document_id, text (the chunk's, as it was
	// read) and embedding.
	tempDDL() []string
}

// storedText is a stored chunk as re-embedding reads it.
type storedText struct {
	ID         int64  `bun:"id"`
	DocumentID string `bun:"document_id"`
	Text       string `bun:"text"`
}

// embedChunks embeds chunks, ordered by document, one document at a time
// (embed.Document) and hands each document's chunks and vectors to write,
// once it has checked their width (checkWidth).
func embedChunks(ctx context.Context, e embed.Embedder, chunks []storedText, write func(doc []storedText, vectors [][]float32) error) error {
	for start := 0; start < len(chunks); {
		end := start + 1
		for end < len(chunks) && chunks[end].DocumentID == chunks[start].DocumentID {
			end++
		}
		doc := chunks[start:end]
		texts := make([]string, len(doc))
		for i, ch := range doc {
			texts[i] = ch.Text
		}
		vectors, err := embed.Document(ctx, e, texts)
		if err != nil {
			return err
		}
		if len(vectors) != len(doc) {
			return fmt.Errorf("store: %d vectors for %d chunks", len(vectors), len(doc))
		}
		if err := checkWidth(vectors); err != nil {
			return err
		}
		if err := write(doc, vectors); err != nil {
			return err
		}
		start = end
	}
	return nil
}
