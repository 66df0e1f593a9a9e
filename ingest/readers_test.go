// Tests of the reader children under the workers (pdf.Pool): the child an
// upload handed over reads its document, and the children that wait, handed
// over or started ahead, stop with the workers. The Pool's own behaviour is
// tested in package pdf.

package ingest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"silo/embed"
	"silo/models"
)

// queueUnread queues document id of file without storing the file: only
// the reader child handed over for it can read it.
func (r *ingestRig) queueUnread(t *testing.T, id, name string, file []byte) *models.Document {
	t.Helper()
	doc := &models.Document{PublicID: id, UserID: r.user.ID, FileName: name,
		Title: "two-pages", SizeBytes: int64(len(file)), Status: models.DocumentQueued}
	if err := r.store.InsertDocument(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestIngestHandoff checks that a worker reads a document with the reader
// child its upload handed over (Readers.Handoff) rather than a new one, and
// that the children no worker took stop with the workers.
func TestIngestHandoff(t *testing.T) {
	r := newIngestRig(t, "sqlite")
	ctx := context.Background()
	in := r.ingester(t, embed.NewHash(0))
	file := twoPages()

	doc := r.queueUnread(t, models.NewPublicID(), "two-pages.pdf", file)
	x, err := in.Readers.Extractor.Start(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	in.Readers.Handoff(doc.PublicID, x)
	got := r.runUntilDone(t, in, time.Minute, doc)[0]
	if got.Status != models.DocumentReady || got.Pages != 2 || got.Chunks == 0 {
		t.Fatalf("got %s (%s), %d pages, %d chunks; want ready, 2 pages, chunks", got.Status, got.Error, got.Pages, got.Chunks)
	}

	in = r.ingester(t, embed.NewHash(0))
	children := recordPIDs(t, in.Readers.Extractor)
	x, err = in.Readers.Extractor.Start(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	pid := children.last(t)
	in.Readers.Handoff("no-such-document", x)
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	in.Run(stopped)
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("a handed-over child outlived the workers (kill -0: %v)", err)
	}
	// Once the workers are gone, a child handed over is stopped at once.
	x, err = in.Readers.Extractor.Start(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	pid = children.last(t)
	in.Readers.Handoff("another", x)
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("a child handed over after the workers stopped is still there (kill -0: %v)", err)
	}
}

// TestIngestWarm checks the children started ahead of the uploads
// (Readers.Warm) under the workers: the uploads they read are ingested, an
// upload whose warm child died while it waited is still read (the dead
// child is not taken for the PDF's fault), and the children that wait stop
// with the workers.
func TestIngestWarm(t *testing.T) {
	r := newIngestRig(t, "sqlite")
	ctx := context.Background()
	in := r.ingester(t, embed.NewHash(0))
	in.Readers.Warm = 2
	children := recordPIDs(t, in.Readers.Extractor)
	file := twoPages()
	runCtx, cancel := context.WithCancel(ctx)
	var workers sync.WaitGroup
	workers.Go(func() { in.Run(runCtx) })
	defer func() { cancel(); workers.Wait() }()

	// upload starts the upload's child, as the upload handler does, and
	// hands it over before the document is queued (the workers run, and
	// only the child can read it); the document ends ready with its 2 pages.
	upload := func(what string) {
		t.Helper()
		x, err := in.Readers.Start(ctx, file)
		if err != nil || x.Info().Pages != 2 {
			t.Fatalf("%s: got %v; want 2 pages", what, err)
		}
		id := models.NewPublicID()
		in.Readers.Handoff(id, x)
		doc := r.queueUnread(t, id, "two-pages.pdf", file)
		in.Notify()
		got := r.waitDone(t, time.Minute, doc)[0]
		if got.Status != models.DocumentReady || got.Pages != 2 || got.Chunks == 0 || got.Attempts != 1 {
			t.Fatalf("%s: got %s (%s), %d pages, %d chunks, attempt %d; want ready at the first attempt, 2 pages, chunks",
				what, got.Status, got.Error, got.Pages, got.Chunks, got.Attempts)
		}
	}
	for i := range 5 {
		upload("upload " + strconv.Itoa(i))
		time.Sleep(50 * time.Millisecond) // let the warm children start
	}

	// Kill the children that wait: the next upload must still be read.
	var warm []int
	for deadline := time.Now().Add(5 * time.Second); len(warm) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		warm = children.live(t)
	}
	if len(warm) == 0 {
		t.Fatal("no warm child waits")
	}
	for _, pid := range warm {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	time.Sleep(50 * time.Millisecond)
	upload("after the warm children died")

	cancel()
	workers.Wait()
	// The children started ahead stop with the workers (one that was still
	// starting stops as soon as it has started).
	var left []int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if left = children.live(t); len(left) == 0 {
			break
		}
	}
	if len(left) != 0 {
		t.Errorf("after the workers stopped: children %v still there, want none", left)
	}
}
