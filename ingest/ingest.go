// Package ingest is the ingestion worker: it leases queued documents from
// the control plane's document index and reads (pdf), cleans and chunks
// (chunk), embeds (embed) and indexes (store) each in its tenant's database.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"silo/chunk"
	"silo/embed"
	"silo/models"
	"silo/pdf"
	"silo/store"
	"silo/tenant"
)

// Ingestion timing: a worker holds a document for leaseTime and renews the
// lease every renewEvery; idle workers look for work every pollEvery unless
// woken sooner.
const (
	leaseTime  = 30 * time.Second
	renewEvery = 5 * time.Second
	// progressEvery is how often a worker publishes the page it has read
	// to, when it has moved, for the documents page's progress.
	progressEvery = 250 * time.Millisecond
	pollEvery     = 2 * time.Second
)

// Ingester turns queued documents into indexed ones with a pool of workers.
// The queue is the control plane's document index, so a document left
// processing by a crash or restart is taken up again when its lease runs out.
type Ingester struct {
	Store   *models.Store
	Tenants *tenant.Manager
	// Readers reads the PDFs: the reader child an upload handed over
	// (pdf.Pool.Handoff), or a new one.
	Readers      *pdf.Pool
	Embedder     embed.Embedder
	Workers      int
	ChunkSize    int
	ChunkOverlap int
	MaxAttempts  int // tries before a document that keeps failing ends failed
	Log          *slog.Logger

	wakeOnce sync.Once
	wake     chan struct{}
}

// Notify wakes an idle worker: a document was queued.
func (in *Ingester) Notify() {
	select {
	case in.wakeChan() <- struct{}{}:
	default:
	}
}

func (in *Ingester) wakeChan() chan struct{} {
	in.wakeOnce.Do(func() { in.wake = make(chan struct{}, 1) })
	return in.wake
}

// Run runs the workers until ctx ends, then waits for them and stops the
// reader children that wait for them (Readers.Close).
func (in *Ingester) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range max(in.Workers, 1) {
		wg.Go(func() { in.work(ctx) })
	}
	wg.Wait()
	in.Readers.Close()
}

// work takes documents one after another until ctx ends.
func (in *Ingester) work(ctx context.Context) {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for ctx.Err() == nil {
		doc, err := in.Store.LeaseDocument(ctx, leaseTime)
		switch {
		case err == nil:
			in.process(ctx, doc)
			in.Notify() // there may be more: let another idle worker look too
			continue
		case !errors.Is(err, models.ErrNotFound) && ctx.Err() == nil:
			in.Log.Error("ingest: take a document", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-in.wakeChan():
		case <-tick.C:
		}
	}
}

// failure is an ingestion error with what a person should read, and
// whether trying again could help.
type failure struct {
	reason    string
	permanent bool
	err       error
}

func (f *failure) Error() string { return f.reason + ": " + f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// process ingests one leased document and records the outcome.
func (in *Ingester) process(ctx context.Context, doc *models.Document) {
	start := time.Now()
	var pagesDone, pages atomic.Int64
	pages.Store(int64(doc.Pages))
	workCtx, stop := context.WithCancel(ctx)
	defer stop()
	var renew sync.WaitGroup
	renew.Go(func() { in.renewLease(workCtx, stop, doc.ID, &pagesDone, &pages) })
	err := in.ingest(workCtx, doc, &pagesDone, &pages)
	stop()
	renew.Wait()
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and another worker resumes
	}
	if err != nil {
		var f *failure
		if !errors.As(err, &f) {
			f = &failure{reason: "ingestion failed", err: err}
		}
		if !f.permanent && doc.Attempts < in.MaxAttempts {
			in.Log.Warn("ingest: will retry", "document", doc.PublicID, "attempt", doc.Attempts, "err", err)
			in.release(ctx, doc)
			return
		}
		in.Log.Warn("ingest: failed", "document", doc.PublicID, "err", err)
		doc.Status, doc.Error = models.DocumentFailed, f.reason
		if !f.permanent {
			doc.Error = fmt.Sprintf("%s (after %d attempts)", f.reason, doc.Attempts)
		}
	} else {
		doc.Status, doc.Error = models.DocumentReady, ""
		in.Log.Info("ingest: ready", "document", doc.PublicID, "pages", doc.Pages, "chunks", doc.Chunks,
			"duration", time.Since(start).Round(time.Millisecond))
	}
	if err := in.Store.FinishDocument(context.WithoutCancel(ctx), doc); err != nil {
		in.Log.Error("ingest: record outcome", "document", doc.PublicID, "err", err)
	}
}

// release gives a document back to the queue for another attempt, after its
// lease (a short back-off).
func (in *Ingester) release(ctx context.Context, doc *models.Document) {
	doc.Status, doc.Error = models.DocumentProcessing, ""
	if _, err := in.Store.RenewDocumentLease(context.WithoutCancel(ctx), doc.ID, time.Duration(doc.Attempts)*leaseTime/3, doc.PagesDone, doc.Pages); err != nil {
		in.Log.Error("ingest: release", "document", doc.PublicID, "err", err)
	}
}

// renewLease keeps the lease while the work goes on and publishes progress;
// if the lease is lost (the document was deleted), it stops the work.
func (in *Ingester) renewLease(ctx context.Context, stop context.CancelFunc, id int64, done, pages *atomic.Int64) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	last, lastRenew := int64(-1), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		d := done.Load()
		if d == last && time.Since(lastRenew) < renewEvery {
			continue
		}
		ok, err := in.Store.RenewDocumentLease(ctx, id, leaseTime, int(d), int(pages.Load()))
		if err != nil && ctx.Err() == nil {
			in.Log.Warn("ingest: renew lease", "err", err)
			continue
		}
		if !ok {
			stop()
			return
		}
		last, lastRenew = d, time.Now()
	}
}

// ingest does the work: extract, clean, chunk, embed, index.
func (in *Ingester) ingest(ctx context.Context, doc *models.Document, pagesDone, pageCount *atomic.Int64) error {
	v, err := in.Store.VectorDatabaseByUser(ctx, doc.UserID)
	if err == nil && v.Status != models.TenantReady {
		err = errors.New("the workspace is not ready yet")
	}
	if err != nil {
		return &failure{reason: "your workspace could not be opened", err: err}
	}
	db, release, err := in.Tenants.DB(ctx, v)
	if err != nil {
		return &failure{reason: "your workspace could not be opened", err: err}
	}
	defer release()
	content := store.New(db)
	info, pages, err := in.extract(ctx, content, doc, pagesDone)
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	if err != nil {
		// The PDF's own fault is final; a reader that could not start is not.
		var bad *pdf.ExtractError
		return &failure{reason: pdf.Reason(err), permanent: errors.As(err, &bad), err: err}
	}
	pageCount.Store(int64(info.Pages))
	doc.Pages, doc.PagesDone = info.Pages, info.Pages
	if t := strings.TrimSpace(info.Title); t != "" {
		doc.Title = t
	}
	doc.EmptyPages = 0
	for _, p := range pages {
		if strings.TrimSpace(p) == "" {
			doc.EmptyPages++
		}
	}

	cleaned := chunk.CleanPages(pages)
	chunks := chunk.ChunkPages(cleaned, in.ChunkSize, in.ChunkOverlap)
	texts := make([]string, len(chunks))
	for i, ch := range chunks {
		texts[i] = ch.Text
	}
	if err := in.checkModel(ctx, content); err != nil {
		return &failure{reason: "your workspace could not be re-embedded", err: err}
	}
	vectors, err := embed.Document(ctx, in.Embedder, texts)
	if err != nil {
		return &failure{reason: "the embedding service failed", err: err}
	}
	if err := content.ReplaceIndex(ctx, doc.PublicID, in.Embedder.Model(), cleaned, chunks, vectors); errors.Is(err, store.ErrOtherModel) {
		return &failure{reason: "your workspace's embedding model changed while the document was read", err: err}
	} else if err != nil {
		return &failure{reason: "the index could not be written", err: err}
	}
	// Deleted while it was being read: what was just written belongs to
	// nothing any more.
	if _, err := in.Store.Document(ctx, doc.UserID, doc.PublicID); errors.Is(err, models.ErrNotFound) {
		if err := content.DeleteDocument(ctx, doc.PublicID); err != nil {
			return &failure{reason: "the document was deleted", err: err}
		}
		return &failure{reason: "the document was deleted", permanent: true, err: errors.New("deleted during ingestion")}
	}
	doc.Chunks = len(chunks)
	return nil
}

// extract reads the text of a document's pages: from the reader child its
// upload handed over, or else from a new one on the stored file.
func (in *Ingester) extract(ctx context.Context, content store.Content, doc *models.Document, pagesDone *atomic.Int64) (pdf.Info, []string, error) {
	pages := make([]string, 0, doc.Pages)
	onPage := func(p pdf.Page) error {
		pages = append(pages, p.Text)
		pagesDone.Store(int64(p.Number))
		return nil
	}
	if x := in.Readers.Claim(doc.PublicID); x != nil {
		err := x.Pages(ctx, onPage) // before pages is read: onPage appends to it
		return x.Info(), pages, err
	}
	file, err := content.File(ctx, doc.PublicID)
	if err != nil {
		return pdf.Info{}, nil, &failure{reason: "the uploaded file is missing", permanent: errors.Is(err, store.ErrNoFile), err: err}
	}
	info, err := in.Readers.Extractor.Extract(ctx, file, onPage)
	return info, pages, err
}

// checkModel records the embedder's model in a tenant database that has
// none, and re-embeds one whose vectors were made with another model, so
// one database never mixes two models' vectors. Workers (and ReembedAll)
// that find the same tenant to re-embed take turns in Reembed: the first
// does the work, the others wait for it and go on without embedding again.
func (in *Ingester) checkModel(ctx context.Context, content store.Content) error {
	model, err := content.EmbeddingModel(ctx)
	if err == nil && model == "" {
		model, err = content.RecordEmbeddingModel(ctx, in.Embedder.Model(), in.Embedder.Dims())
	}
	if err != nil || model == in.Embedder.Model() {
		return err
	}
	in.Log.Info("re-embedding a workspace", "from", model, "to", in.Embedder.Model())
	return content.Reembed(ctx, in.Embedder)
}

// ReembedAll re-embeds every ready tenant database whose vectors were made
// with another model than the configured one. It runs in the background at
// start; a tenant it has not reached yet is re-embedded by its next upload.
func (in *Ingester) ReembedAll(ctx context.Context) error {
	rows, _, err := in.Store.Tenants(ctx, models.TenantFilter{Status: models.TenantReady})
	if err != nil {
		return err
	}
	var errs []error
	for i := range rows {
		if ctx.Err() != nil {
			break
		}
		err := func() error {
			db, release, err := in.Tenants.DB(ctx, &rows[i])
			if err != nil {
				return err
			}
			defer release()
			return in.checkModel(ctx, store.New(db))
		}()
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", rows[i].ExternalID, err))
		}
	}
	return errors.Join(errs...)
}
