// Tests of re-embedding a tenant database when the embedding model changes
// (Content.Reembed, through ingest.Ingester.ReembedAll where that is the
// path silo takes), on both tenant engines.

package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"

	"silo/chunk"
	"silo/embed"
	"silo/ingest"
	"silo/schema"
	"silo/search"
	"silo/store"
	"silo/tenant"
	"silo/testrig/tenantdata"
)

// fillTenant writes documents of the given numbers of chunks into c,
// embedded by e, and records e's model; it returns the documents' ids. The
// chunks' texts differ from each other, so each has a vector of its own.
func fillTenant(t *testing.T, c store.Content, e embed.Embedder, sizes ...int) []string {
	t.Helper()
	var ids []string
	for d, n := range sizes {
		id := fmt.Sprintf("doc%d", d+1)
		writeDocument(t, c, e, id, d, n)
		ids = append(ids, id)
	}
	if model, err := c.RecordEmbeddingModel(context.Background(), e.Model(), e.Dims()); err != nil || model != e.Model() {
		t.Fatalf("record the model: got %q, %v; want %q", model, err, e.Model())
	}
	return ids
}

// reembedTenant is a rig on engine whose tenant database holds documents
// of the given numbers of chunks, embedded by embed.NewHash(0)
// (fillTenant).
func reembedTenant(t *testing.T, engine string, sizes ...int) (*rig, *tenant.DB, store.Content, []string) {
	t.Helper()
	r := newRig(t, engine)
	db := r.tenantDB(t)
	c := store.New(db)
	return r, db, c, fillTenant(t, c, embed.NewHash(0), sizes...)
}

// writeDocument indexes a document of n chunks embedded by e, as ingestion
// does; d varies the texts.
func writeDocument(t *testing.T, c store.Content, e embed.Embedder, id string, d, n int) {
	t.Helper()
	words := strings.Fields("river city bridge mill tower market harbour abbey castle forest meadow canal chapel square garden")
	chunks := make([]chunk.Chunk, n)
	texts := make([]string, n)
	for i := range chunks {
		var b strings.Builder
		fmt.Fprintf(&b, "Document %d, passage %d:", d+1, i)
		for j := range 40 {
			fmt.Fprintf(&b, " %s%d", words[(i*7+j*3+d)%len(words)], (i*j+d)%89)
		}
		texts[i] = b.String()
		chunks[i] = chunk.Chunk{Page: 1 + i/10, PageEnd: 1 + i/10, Position: i, Text: texts[i]}
	}
	ctx := context.Background()
	vectors, err := embed.Document(ctx, e, texts)
	if err != nil {
		t.Fatal(err)
	}
	pages := make([]string, 1+(n-1)/10)
	for p := range pages {
		pages[p] = fmt.Sprintf("page %d", p+1)
	}
	if err := c.ReplaceIndex(ctx, id, e.Model(), pages, chunks, vectors); err != nil {
		t.Fatal(err)
	}
}

// countingEmbedder is an Embedder that counts the texts it embeds, and
// holds its call number holdAt (from 1) until release is closed (when it is
// not nil), having closed started; its call number failAt, when not 0,
// fails.
type countingEmbedder struct {
	embed.Embedder
	texts   atomic.Int64
	calls   atomic.Int64
	holdAt  int64
	failAt  int64
	started chan struct{}
	release chan struct{}
}

func newCountingEmbedder(e embed.Embedder, hold bool) *countingEmbedder {
	c := &countingEmbedder{Embedder: e, holdAt: 1, started: make(chan struct{})}
	if hold {
		c.release = make(chan struct{})
	}
	return c
}

// errEmbedderDown is the failure of countingEmbedder's call failAt.
var errEmbedderDown = errors.New("the embedding service is down")

func (e *countingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	call := e.calls.Add(1)
	if call == e.holdAt {
		close(e.started)
		if e.release != nil {
			select {
			case <-e.release:
			case <-ctx.Done():
			}
		}
	}
	if call == e.failAt {
		return nil, errEmbedderDown
	}
	e.texts.Add(int64(len(texts)))
	return e.Embedder.Embed(ctx, texts)
}

// AdjustDocument passes the document on to the wrapped embedder, so that
// the vectors are the ones it makes itself.
func (e *countingEmbedder) AdjustDocument(vectors [][]float32) {
	if a, ok := e.Embedder.(embed.DocumentAdjuster); ok {
		a.AdjustDocument(vectors)
	}
}

// wantReembedded checks that every chunk of docs holds the vector e makes
// for its text (its document embedded as ingestion does) and that e's model
// and dimensions are recorded.
func (r *rig) wantReembedded(t *testing.T, e embed.Embedder, docs []string, chunks int) {
	t.Helper()
	if model, dims := tenantdata.Meta(t, r.tenantDB(t)); model != e.Model() || dims != strconv.Itoa(e.Dims()) {
		t.Errorf("tenant meta: got %q, %q; want %q, %d", model, dims, e.Model(), e.Dims())
	}
	got := 0
	for _, id := range docs {
		stored := tenantdata.Chunks(t, r.tenantDB(t), id)
		got += len(stored)
		texts := make([]string, len(stored))
		for i, ch := range stored {
			texts[i] = ch.Text
		}
		want, err := embed.Document(context.Background(), e, texts)
		if err != nil {
			t.Fatal(err)
		}
		tenantdata.WantVectors(t, r.engine, stored, want)
	}
	if got != chunks {
		t.Errorf("got %d chunks, want the %d there were", got, chunks)
	}
}

// annCounts is, on PostgreSQL, how many chunks of each document are in the
// HNSW index (ann).
func annCounts(t *testing.T, db *tenant.DB) map[string]int {
	t.Helper()
	var rows []struct {
		DocumentID string `bun:"document_id"`
		N          int    `bun:"n"`
	}
	err := db.NewSelect().Table("chunks").Column("document_id").ColumnExpr("count(*) AS n").
		Where("ann").Group("document_id").Scan(context.Background(), &rows)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.DocumentID] = r.N
	}
	return out
}

// Re-embedding gives every chunk of every document the new model's vector
// for its text and records the model, embedding each chunk once; on
// PostgreSQL the chunks of a long document stay in the HNSW index, which
// finds them by their new vectors. Run again, it embeds nothing.
func TestReembed(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		sizes := []int{3, store.ANNChunks + 5, 1, 150}
		r, db, c, docs := reembedTenant(t, engine, sizes...)
		total := 0
		for _, n := range sizes {
			total += n
		}
		var annBefore map[string]int
		if engine == "postgres" {
			annBefore = annCounts(t, db)
			if annBefore[docs[1]] != sizes[1] || len(annBefore) != 1 {
				t.Fatalf("chunks in the HNSW index before: got %v, want only the %d of %s", annBefore, sizes[1], docs[1])
			}
		}

		next := newCountingEmbedder(embed.NewHash(1000), false)
		if err := c.Reembed(ctx, next); err != nil {
			t.Fatalf("Reembed: %v", err)
		}
		if got := next.texts.Load(); got != int64(total) {
			t.Errorf("texts embedded: got %d, want %d (each chunk once)", got, total)
		}
		r.wantReembedded(t, next.Embedder, docs, total)

		if engine == "postgres" {
			if got := annCounts(t, db); fmt.Sprint(got) != fmt.Sprint(annBefore) {
				t.Errorf("chunks in the HNSW index after: got %v, want %v as before", got, annBefore)
			}
			// The long document's search goes through the index.
			stored := tenantdata.Chunks(t, r.tenantDB(t), docs[1])
			for _, i := range []int{0, 200, len(stored) - 1} {
				q, err := next.Embedder.Embed(ctx, []string{stored[i].Text})
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.Nearest(ctx, []string{docs[1]}, q[0], 1)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 || got[0].Text != stored[i].Text {
					t.Errorf("vector search for chunk %d's own text: got %v, want that chunk", i, got)
				}
			}
		}

		if err := c.Reembed(ctx, next); err != nil {
			t.Fatalf("Reembed again: %v", err)
		}
		if got := next.texts.Load(); got != int64(total) {
			t.Errorf("texts embedded by a second run: got %d, want none", got-int64(total))
		}
	})
}

// Two re-embeddings of one tenant at once, as the background job and an
// upload's worker may start them: both end without error, the second
// having waited on the first's claim instead of embedding every chunk
// again.
func TestReembedConcurrent(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		r, db, _, docs := reembedTenant(t, engine, 40, 3, 25)

		next := newCountingEmbedder(embed.NewHash(1000), true)
		in := &ingest.Ingester{Store: r.store, Tenants: r.tenants, Embedder: next, Log: slog.New(slog.NewTextHandler(t.Output(), nil))}
		errs := make(chan error, 2)
		go func() { errs <- in.ReembedAll(ctx) }()
		select {
		case <-next.started: // the first holds the tenant and waits
		case err := <-errs:
			t.Fatalf("ReembedAll ended before embedding: %v", err)
		}
		// The second finds the tenant's old model, as an upload's worker
		// does, and re-embeds: it waits on the first's claim.
		go func() { errs <- in.ReembedAll(ctx) }()
		time.Sleep(2 * store.ReembedPoll) // time for the second to find the first's claim, and look again
		requireWaiting(t, errs)
		close(next.release)
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("a re-embedding failed: %v", err)
			}
		}
		if got, want := next.texts.Load(), int64(40+3+25); got != want {
			t.Errorf("texts embedded: got %d, want %d (each chunk once)", got, want)
		}
		r.wantReembedded(t, next.Embedder, docs, 40+3+25)
		if got := claimOf(t, db); got != "" {
			t.Errorf("claim after re-embedding: got %q, want none", got)
		}
	})
}

// Two processes re-embedding one SQLite tenant at once: the second, whose
// connection gives up on a locked database after 20 ms, waits on the
// first's claim until the first is done, then finds nothing to do.
func TestReembedSQLiteOtherProcess(t *testing.T) {
	ctx := context.Background()
	r, db, _, docs := reembedTenant(t, "sqlite", 30, 12)

	var seq int
	var name, file string
	if err := db.QueryRowContext(ctx, "PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open(sqliteshim.ShimName, "file:"+file+"?mode=rw&_pragma=busy_timeout(20)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	otherDB := &tenant.DB{DB: bun.NewDB(other, sqlitedialect.New()), Engine: "sqlite"}

	next := newCountingEmbedder(embed.NewHash(1000), true)
	errs := make(chan error, 2)
	go func() { errs <- store.New(db).Reembed(ctx, next) }()
	<-next.started
	go func() { errs <- store.New(otherDB).Reembed(ctx, next) }()
	time.Sleep(300 * time.Millisecond) // the second finds the first's claim, and looks again
	requireWaiting(t, errs)
	close(next.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a re-embedding failed: %v", err)
		}
	}
	if got := next.texts.Load(); got != 30+12 {
		t.Errorf("texts embedded: got %d, want %d (each chunk once)", got, 30+12)
	}
	r.wantReembedded(t, next.Embedder, docs, 30+12)
}

// A model whose vectors are wider than a tenant database stores is refused
// before anything changes: the old vectors and model stay, on either engine.
func TestReembedRefusesTooWideVectors(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		r, _, c, docs := reembedTenant(t, engine, 2, 5)
		e := embed.NewHash(0)

		err := c.Reembed(ctx, embed.NewHash(schema.VectorDims+1))
		if err == nil || !strings.Contains(err.Error(), "at most 2000") {
			t.Fatalf("re-embedding with %d dimensions: got %v, want a refusal", schema.VectorDims+1, err)
		}
		r.wantReembedded(t, e, docs, 2+5)
		got, err := (&search.Searcher{Embedder: e}).Search(ctx, c, []string{docs[1]}, "passage 3", search.ModeVector, 1)
		if err != nil || len(got) != 1 {
			t.Errorf("search with the old model after the refusal: %v, %v", got, err)
		}
	})
}

// claimOf returns the re-embedding claim recorded in a tenant database, or
// "" when there is none.
func claimOf(t *testing.T, db *tenant.DB) string {
	t.Helper()
	var v string
	err := db.NewSelect().Table("meta").Column("value").Where("key = ?", store.MetaReembedClaim).Scan(context.Background(), &v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return v
}

// While a re-embedding waits on its embedder (a remote service may take
// minutes), other writes to the tenant go through at once: an upload's
// file, a conversation and its messages, another document's index and a
// document indexed again. When the embedder goes on, the chunks written
// meanwhile get the new model's vectors too, and the model is recorded.
func TestReembedLetsWritesThrough(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		r, db, c, docs := reembedTenant(t, engine, 20, 30, 10)
		old := embed.NewHash(0)

		// Held at the second document: the first's vectors are written by
		// then and the lease renewed.
		next := newCountingEmbedder(embed.NewHash(1000), true)
		next.holdAt = 2
		done := make(chan error, 1)
		go func() { done <- c.Reembed(ctx, next) }()
		waitHeld(t, next.started, done, "the second document")
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		if err := c.SaveFile(wctx, "upload", []byte("%PDF-1.4 new upload")); err != nil {
			t.Fatalf("SaveFile while re-embedding: %v", err)
		}
		conv, err := c.CreateConversation(wctx, docs[0], nil, "Where is the mill?")
		if err != nil {
			t.Fatalf("CreateConversation while re-embedding: %v", err)
		}
		if err := c.AddMessages(wctx, conv.ID, &store.StoredMessage{Role: "user", Content: "Where is the mill?"},
			&store.StoredMessage{Role: "assistant", Content: "By the river."}); err != nil {
			t.Fatalf("AddMessages while re-embedding: %v", err)
		}
		t.Logf("writes while re-embedding took %v", time.Since(start))
		// Indexed by a worker that checked the model before the claim: old
		// vectors, after the chunks were read. The last document indexed
		// again (on SQLite its new chunks may take the ids of its old ones)
		// with other texts.
		writeDocument(t, c, old, "late", 7, 12)
		writeDocument(t, c, old, docs[2], 9, 8)
		if err := wctx.Err(); err != nil {
			t.Fatalf("writes while re-embedding: %v after %v", err, time.Since(start))
		}

		if claimOf(t, db) == "" {
			t.Error("no claim recorded while re-embedding")
		}

		close(next.release)
		if err := <-done; err != nil {
			t.Fatalf("Reembed: %v", err)
		}
		r.wantReembedded(t, next.Embedder, append(docs, "late"), 20+30+8+12)
		if got := claimOf(t, db); got != "" {
			t.Errorf("claim after re-embedding: got %q, want none", got)
		}
		if got, err := c.Messages(ctx, conv.ID); err != nil || len(got) != 2 {
			t.Errorf("messages written while re-embedding: got %d, %v; want 2", len(got), err)
		}
		if _, err := c.File(ctx, "upload"); err != nil {
			t.Errorf("file saved while re-embedding: %v", err)
		}
	})
}

// waitHeld waits until a re-embedding's embedder is held at what, and
// fails the test if the re-embedding ends first.
func waitHeld(t *testing.T, held <-chan struct{}, done <-chan error, what string) {
	t.Helper()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("Reembed ended before embedding %s: %v", what, err)
	}
}

// gatedEmbedder holds its call number at until open is closed, and says
// so on reached.
type gatedEmbedder struct {
	*countingEmbedder
	at      int64
	calls   atomic.Int64
	reached chan struct{}
	open    chan struct{}
}

func (g *gatedEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if g.calls.Add(1) == g.at {
		close(g.reached)
		<-g.open
	}
	return g.countingEmbedder.Embed(ctx, texts)
}

// Documents indexed while a re-embedding embeds are embedded before its
// swap takes the write lock: a document written while the embedder works
// on such a late one goes through at once.
func TestReembedEmbedsLateDocumentsUnlocked(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		r, _, c, docs := reembedTenant(t, engine, 5, 6, 4)
		old := embed.NewHash(0)

		// Held at the second document while a late one is indexed, then at
		// the fourth call: the late document.
		counting := newCountingEmbedder(embed.NewHash(1000), true)
		counting.holdAt = 2
		next := &gatedEmbedder{countingEmbedder: counting, at: 4, reached: make(chan struct{}), open: make(chan struct{})}
		done := make(chan error, 1)
		go func() { done <- c.Reembed(ctx, next) }()
		waitHeld(t, counting.started, done, "the second document")
		writeDocument(t, c, old, "late", 7, 12)
		close(counting.release)
		waitHeld(t, next.reached, done, "the late document")
		// Should the late document be embedded under the lock, this write
		// waits for the gate, opened after 3 s.
		opener := time.AfterFunc(3*time.Second, func() { close(next.open) })
		start := time.Now()
		writeDocument(t, c, old, "later", 11, 3)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("a document written while the late one was embedded waited %v", took)
		}
		if opener.Stop() {
			close(next.open)
		}
		if err := <-done; err != nil {
			t.Fatalf("Reembed: %v", err)
		}
		r.wantReembedded(t, next, append(docs, "late", "later"), 5+6+4+12+3)
	})
}

// A re-embedding whose embedder fails midway changes nothing: the old
// vectors and model stay, and no claim is left to hold others back.
func TestReembedFailureChangesNothing(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		r, db, c, docs := reembedTenant(t, engine, 4, 6, 5)
		old := embed.NewHash(0)

		next := newCountingEmbedder(embed.NewHash(1000), false)
		next.failAt = 2
		if err := c.Reembed(ctx, next); !errors.Is(err, errEmbedderDown) {
			t.Fatalf("Reembed with a failing embedder: got %v, want %v", err, errEmbedderDown)
		}
		r.wantReembedded(t, old, docs, 4+6+5)
		if got := claimOf(t, db); got != "" {
			t.Errorf("claim after a failed re-embedding: got %q, want none", got)
		}

		// Nothing holds the next one back.
		next.failAt = 0
		if err := c.Reembed(ctx, next); err != nil {
			t.Fatalf("Reembed after the failure: %v", err)
		}
		r.wantReembedded(t, next.Embedder, docs, 4+6+5)
	})
}

// The claim of a worker that died mid-way is taken over once its lease
// runs out: at once when it has, after a wait when it is about to.
func TestReembedTakesOverExpiredClaim(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		r, db, c, docs := reembedTenant(t, engine, 5, 3)
		claim := func(expires time.Time) {
			t.Helper()
			v := fmt.Sprintf(`{"owner":"crashed","model":"other","expires":%q}`, expires.UTC().Format(time.RFC3339Nano))
			_, err := db.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", store.MetaReembedClaim, v)
			if err != nil {
				t.Fatal(err)
			}
		}

		claim(time.Now().Add(-time.Minute))
		first := embed.NewHash(1000)
		start := time.Now()
		if err := c.Reembed(ctx, first); err != nil {
			t.Fatalf("Reembed over an expired claim: %v", err)
		}
		if d := time.Since(start); d > store.ReembedLease()/2 {
			t.Errorf("Reembed over an expired claim took %v", d)
		}
		r.wantReembedded(t, first, docs, 5+3)

		start = time.Now() // before the claim: its expiry counts from here
		claim(time.Now().Add(time.Second))
		second := embed.NewHash(500)
		if err := c.Reembed(ctx, second); err != nil {
			t.Fatalf("Reembed over a claim about to expire: %v", err)
		}
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("Reembed over a live claim went ahead after %v, want a wait for its expiry", d)
		}
		r.wantReembedded(t, second, docs, 5+3)
		if got := claimOf(t, db); got != "" {
			t.Errorf("claim after re-embedding: got %q, want none", got)
		}
	})
}

// A document that takes the embedder longer than a lease does not cost a
// re-embedding its claim: the lease is renewed while the embedder works,
// so a second re-embedding waits instead of taking the work over, and each
// chunk is embedded once.
func TestReembedKeepsItsClaim(t *testing.T) {
	store.SetReembedLease(t, 2*time.Second) // renewed every 500 ms: a busy machine still keeps it
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		r, db, c, docs := reembedTenant(t, engine, 6, 4)

		next := newCountingEmbedder(embed.NewHash(1000), true)
		errs := make(chan error, 2)
		go func() { errs <- c.Reembed(ctx, next) }()
		<-next.started
		go func() { errs <- c.Reembed(ctx, next) }()
		time.Sleep(5 * store.ReembedLease() / 2) // the first document outlasts the lease 2.5 times
		requireWaiting(t, errs)
		close(next.release)
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("a re-embedding failed: %v", err)
			}
		}
		if got, want := next.texts.Load(), int64(6+4); got != want {
			t.Errorf("texts embedded: got %d, want %d (each chunk once)", got, want)
		}
		r.wantReembedded(t, next.Embedder, docs, 6+4)
		if got := claimOf(t, db); got != "" {
			t.Errorf("claim after re-embedding: got %q, want none", got)
		}
	})
}

// requireWaiting fails the test when one of the re-embeddings sending on
// errs has ended already: the second must still be waiting for the first,
// which the test holds in its embedder.
func requireWaiting(t *testing.T, errs <-chan error) {
	t.Helper()
	select {
	case err := <-errs:
		t.Fatalf("a re-embedding ended while the first was held in its embedder (%v); want the second waiting", err)
	default:
	}
}

// Vectors made with a model the tenant no longer records (a process of
// another configuration swapped its own in meanwhile) are not written:
// the document keeps what it had, and ingestion learns why.
func TestReplaceIndexRefusesOtherModel(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		r, _, c, docs := reembedTenant(t, engine, 4)
		old := embed.NewHash(0)
		other := embed.NewHash(1000)
		chunks := []chunk.Chunk{{Page: 1, PageEnd: 1, Text: "A new passage about the mill."}}
		vectors, err := other.Embed(ctx, []string{chunks[0].Text})
		if err != nil {
			t.Fatal(err)
		}
		err = c.ReplaceIndex(ctx, docs[0], other.Model(), []string{"page 1"}, chunks, vectors)
		if !errors.Is(err, store.ErrOtherModel) {
			t.Fatalf("vectors of %s into a tenant of %s: got %v, want store.ErrOtherModel", other.Model(), old.Model(), err)
		}
		r.wantReembedded(t, old, docs, 4)

		// The recorded model's vectors go in, in place of the old chunks.
		vectors, err = old.Embed(ctx, []string{chunks[0].Text})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ReplaceIndex(ctx, docs[0], old.Model(), []string{"page 1"}, chunks, vectors); err != nil {
			t.Fatal(err)
		}
		if got := tenantdata.Chunks(t, r.tenantDB(t), docs[0]); len(got) != 1 || got[0].Text != chunks[0].Text {
			t.Errorf("after a write of the recorded model: got %d chunks, want the new one", len(got))
		}
	})
}

// The first model recorded stays: a second writer, of another model, learns
// of the first instead of overwriting it, on both engines.
func TestRecordEmbeddingModel(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		r := newRig(t, engine)
		c := store.New(r.tenantDB(t))
		if got, err := c.RecordEmbeddingModel(ctx, "model-a", 384); err != nil || got != "model-a" {
			t.Fatalf("first record: got %q, %v; want model-a", got, err)
		}
		if got, err := c.RecordEmbeddingModel(ctx, "model-b", 768); err != nil || got != "model-a" {
			t.Fatalf("second record: got %q, %v; want model-a, recorded first", got, err)
		}
		if model, dims := tenantdata.Meta(t, r.tenantDB(t)); model != "model-a" || dims != "384" {
			t.Errorf("meta: got %q, %q; want model-a, 384", model, dims)
		}
	})
}
