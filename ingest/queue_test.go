// Tests of the queue: a document resumed after a worker's crash or a
// server's shutdown, a document that keeps failing, a PDF that cannot be
// read, and a document deleted while it is ingested.

package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"silo/embed"
	"silo/models"
	"silo/pdf"
	"silo/store"
	"silo/testrig/tenantdata"
)

// A worker that took a document and died (a crash, a kill -9) leaves it
// processing under a lease; once the lease runs out, another worker takes
// it up and finishes it.
func TestIngestResumesAfterCrash(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		r := newIngestRig(t, engine)
		ctx := context.Background()
		doc := r.queue(t, "pdflatex-4-pages.pdf", sampleFile(t, "pdflatex-4-pages.pdf"))

		crashed, err := r.store.LeaseDocument(ctx, time.Minute) // and never finishes
		if err != nil || crashed.ID != doc.ID {
			t.Fatalf("LeaseDocument: got %+v, %v; want document %d", crashed, err, doc.ID)
		}

		in := r.ingester(t, embed.NewHash(0))
		runCtx, cancel := context.WithCancel(ctx)
		var workers sync.WaitGroup
		workers.Go(func() { in.Run(runCtx) })
		defer func() { cancel(); workers.Wait() }()

		// While the dead worker's lease holds, nobody takes the document.
		time.Sleep(300 * time.Millisecond)
		if got := r.document(t, doc.PublicID); got.Status != models.DocumentProcessing || got.Attempts != 1 {
			t.Fatalf("under the lease: got status %s, attempt %d; want processing, attempt 1", got.Status, got.Attempts)
		}

		r.expireLease(t, doc)
		in.Notify()
		got := r.waitDone(t, time.Minute, doc)[0]
		wantReady(t, got, 4)
		if got.Attempts != 2 {
			t.Errorf("got attempt %d, want 2 (the crashed one and the resumed one)", got.Attempts)
		}
		r.wantIndexed(t, got)
	})
}

// stallingEmbedder stalls until ctx ends, as an embedding request under way
// when the server stops; started is closed when it is first called.
type stallingEmbedder struct {
	embed.Embedder
	once    sync.Once
	started chan struct{}
}

func (e *stallingEmbedder) Embed(ctx context.Context, _ []string) ([][]float32, error) {
	e.once.Do(func() { close(e.started) })
	<-ctx.Done()
	return nil, ctx.Err()
}

// A server stopping (its context cancelled) in the middle of a document
// leaves it processing, with nothing half-written; a new server resumes it
// once the lease runs out. The large sample PDF (117 pages) is stopped
// while its reader is under way, and while its chunks are being embedded.
func TestIngestResumesAfterShutdown(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		for _, stage := range []string{"reading", "embedding"} {
			t.Run(stage, func(t *testing.T) {
				r := newIngestRig(t, engine)
				ctx := context.Background()
				doc := r.queue(t, "GeoTopo-komprimiert.pdf", sampleFile(t, "GeoTopo-komprimiert.pdf"))

				stalling := &stallingEmbedder{Embedder: embed.NewHash(0), started: make(chan struct{})}
				first := r.ingester(t, stalling)
				midway := func() bool {
					select {
					case <-stalling.started:
						return true
					default:
						return false
					}
				}
				if stage == "reading" {
					// A reader that has read one page of 117 and then takes
					// its time.
					first.Embedder = embed.NewHash(0)
					first.Readers.Extractor = &pdf.Extractor{Command: []string{"sh", "-c",
						`echo '{"pages":117,"title":"Geometrie und Topologie"}'; echo '{"n":1,"text":"Seite eins"}'; exec sleep 60`}}
					midway = func() bool { return r.document(t, doc.PublicID).PagesDone >= 1 }
				}
				runCtx, cancel := context.WithCancel(ctx)
				var workers sync.WaitGroup
				workers.Go(func() { first.Run(runCtx) })
				deadline := time.Now().Add(time.Minute)
				for !midway() {
					if time.Now().After(deadline) {
						cancel()
						workers.Wait()
						t.Fatalf("the first worker never got %s", stage)
					}
					time.Sleep(20 * time.Millisecond)
				}
				cancel() // the server stops
				workers.Wait()

				stopped := r.document(t, doc.PublicID)
				if stopped.Status != models.DocumentProcessing || stopped.Attempts != 1 || stopped.LeaseUntil == nil || !stopped.LeaseUntil.After(time.Now()) {
					t.Fatalf("after the stop: got status %s, attempt %d, lease %v; want processing, attempt 1, a lease still running",
						stopped.Status, stopped.Attempts, stopped.LeaseUntil)
				}
				pages, chunks, file := tenantdata.Counts(t, r.tenantDB(t), doc.PublicID)
				if pages != 0 || chunks != 0 || !file {
					t.Errorf("after the stop: got %d pages, %d chunks, file %v; want nothing indexed and the file kept", pages, chunks, file)
				}

				r.expireLease(t, doc)
				got := r.runUntilDone(t, r.ingester(t, embed.NewHash(0)), 2*time.Minute, doc)[0]
				wantReady(t, got, 117)
				if got.Attempts != 2 || got.Title != "Geometrie und Topologie" {
					t.Errorf("got attempt %d, title %q; want 2, %q", got.Attempts, got.Title, "Geometrie und Topologie")
				}
				r.wantIndexed(t, got)
			})
		}
	})
}

// failingEmbedder fails every call the way an overloaded server does.
type failingEmbedder struct {
	embed.Embedder
	calls atomic.Int32
}

func (e *failingEmbedder) Embed(context.Context, []string) ([][]float32, error) {
	e.calls.Add(1)
	return nil, &embed.EmbeddingError{Provider: "openai", StatusCode: http.StatusServiceUnavailable, Message: "the server is overloaded"}
}

// A document that keeps failing for a reason outside the PDF is tried
// MaxAttempts times, with a back-off between tries, and then ends failed
// with its reason.
func TestIngestFailsAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	r := newIngestRig(t, "sqlite")
	ctx := context.Background()
	doc := r.queue(t, "pdflatex-4-pages.pdf", sampleFile(t, "pdflatex-4-pages.pdf"))
	failing := &failingEmbedder{Embedder: embed.NewHash(0)}
	in := r.ingester(t, failing)

	for attempt := 1; attempt <= in.MaxAttempts; attempt++ {
		leased, err := r.store.LeaseDocument(ctx, leaseTime)
		if err != nil || leased.ID != doc.ID || leased.Attempts != attempt {
			t.Fatalf("attempt %d: LeaseDocument got %+v, %v; want document %d at attempt %d", attempt, leased, err, doc.ID, attempt)
		}
		in.process(ctx, leased)
		got := r.document(t, doc.PublicID)
		if attempt == in.MaxAttempts {
			break
		}
		// Given back for another try after a back-off.
		if got.Status != models.DocumentProcessing || got.Error != "" || got.LeaseUntil == nil || !got.LeaseUntil.After(time.Now()) {
			t.Fatalf("after attempt %d: got status %s (%q), lease %v; want processing, no error, a back-off lease", attempt, got.Status, got.Error, got.LeaseUntil)
		}
		if d, err := r.store.LeaseDocument(ctx, leaseTime); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("after attempt %d: LeaseDocument got %+v, %v; want nothing during the back-off", attempt, d, err)
		}
		r.expireLease(t, got)
	}

	got := r.document(t, doc.PublicID)
	want := fmt.Sprintf("the embedding service failed (after %d attempts)", in.MaxAttempts)
	if got.Status != models.DocumentFailed || got.Error != want || got.LeaseUntil != nil {
		t.Errorf("got status %s, error %q, lease %v; want failed, %q, no lease", got.Status, got.Error, got.LeaseUntil, want)
	}
	if n := int(failing.calls.Load()); n != in.MaxAttempts {
		t.Errorf("the embedder was called %d times, want %d", n, in.MaxAttempts)
	}
	if d, err := r.store.LeaseDocument(ctx, leaseTime); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("a failed document was leased again: %+v, %v", d, err)
	}
	pages, chunks, file := tenantdata.Counts(t, r.tenantDB(t), doc.PublicID)
	if pages != 0 || chunks != 0 || !file {
		t.Errorf("got %d pages, %d chunks, file %v; want nothing indexed and the file kept for a retry", pages, chunks, file)
	}
}

// A PDF the reader refuses fails at once: trying again cannot help.
func TestIngestFailsAtOnceOnABadPDF(t *testing.T) {
	t.Parallel()
	r := newIngestRig(t, "sqlite")
	doc := r.queue(t, "broken.pdf", []byte("%PDF-1.7\nnot a PDF after all, and no pages in it\n"))
	got := r.runUntilDone(t, r.ingester(t, embed.NewHash(0)), time.Minute, doc)[0]
	if got.Status != models.DocumentFailed || !strings.HasPrefix(got.Error, "the file is not a PDF that can be read") || got.Attempts != 1 {
		t.Errorf("got status %s, error %q, attempt %d; want failed at the first attempt, the file is not a PDF that can be read…",
			got.Status, got.Error, got.Attempts)
	}
}

// deletingEmbedder embeds with Embedder after deleting the document as the
// delete button does (its content, then its row): a document deleted while
// it is being ingested.
type deletingEmbedder struct {
	embed.Embedder
	delete func()
	once   sync.Once
}

func (e *deletingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.once.Do(e.delete)
	return e.Embedder.Embed(ctx, texts)
}

// A document deleted while it is being ingested leaves nothing in the
// tenant database once its worker is done.
func TestIngestDocumentDeletedMidway(t *testing.T) {
	tenantdata.ForEachEngine(t, func(t *testing.T, engine string) {
		r := newIngestRig(t, engine)
		ctx := context.Background()
		doc := r.queue(t, "pdflatex-4-pages.pdf", sampleFile(t, "pdflatex-4-pages.pdf"))
		content := store.New(r.tenantDB(t))
		deleting := &deletingEmbedder{Embedder: embed.NewHash(0), delete: func() {
			if err := content.DeleteDocument(ctx, doc.PublicID); err != nil {
				t.Error(err)
			}
			if err := r.store.DeleteDocument(ctx, doc.ID); err != nil {
				t.Error(err)
			}
		}}
		in := r.ingester(t, deleting)
		leased, err := r.store.LeaseDocument(ctx, leaseTime)
		if err != nil || leased.ID != doc.ID {
			t.Fatalf("LeaseDocument: got %+v, %v; want document %d", leased, err, doc.ID)
		}
		in.process(ctx, leased)

		if _, err := r.store.Document(ctx, r.user.ID, doc.PublicID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("the deleted document's row: got %v, want it gone", err)
		}
		pages, chunks, file := tenantdata.Counts(t, r.tenantDB(t), doc.PublicID)
		if pages != 0 || chunks != 0 || file {
			t.Errorf("got %d pages, %d chunks, file %v of a deleted document, want nothing left", pages, chunks, file)
		}
	})
}
