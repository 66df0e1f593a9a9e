// Tests of the ingestion queue and workers against real tenant databases:
// resuming after a crash or a shutdown, giving up on a document that keeps
// failing (queue_test.go), a remote (OpenAI-compatible) embedder and
// re-embedding (embed_test.go), the reader children handed over at upload
// and started ahead (readers_test.go). The PDF reader is the test binary
// (see TestMain).
//
// These tests are in package ingest to drive a worker step by step
// (process, leaseTime), so they cannot import silo/testrig (it imports
// ingest, through pipeline): the little of it they need is here, a migrated
// SQLite control plane and a tenant manager on SQLite files or on the
// PostgreSQL server of TEST_POSTGRES_URL. The leaf packages under testrig
// that do not import ingest give them the rest: the reader child
// (pdfchild), the user's tenant database and what it holds (tenantdata).

package ingest

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"silo/chunk"
	"silo/config"
	"silo/embed"
	"silo/models"
	"silo/pdf"
	"silo/schema"
	"silo/store"
	"silo/tenant"
	"silo/testrig/datasets"
	"silo/testrig/pdfchild"
	"silo/testrig/pdftest"
	"silo/testrig/tenantdata"
	"silo/testrig/testdb"
)

// TestMain runs the test binary as the reader child when a
// pdfchild.Extractor started it, and the tests otherwise.
func TestMain(m *testing.M) {
	pdfchild.Run()
	os.Exit(m.Run())
}

// pidRecorder is a reader whose children write their process id to a file
// as they start, so that a test can see which are still there.
type pidRecorder struct {
	path string
}

// recordPIDs makes ex's children record their process ids (a shell that
// writes its own and then becomes the child, keeping the id).
func recordPIDs(t *testing.T, ex *pdf.Extractor) *pidRecorder {
	t.Helper()
	rec := &pidRecorder{path: filepath.Join(t.TempDir(), "pids")}
	ex.Command = append([]string{"sh", "-c", `echo $$ >> "$0" && exec "$@"`, rec.path}, ex.Command...)
	return rec
}

// pids are the ids of the children started so far, oldest first.
func (rec *pidRecorder) pids(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile(rec.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pid file: %v", err)
		}
		out = append(out, pid)
	}
	return out
}

// last is the id of the child started last.
func (rec *pidRecorder) last(t *testing.T) int {
	t.Helper()
	pids := rec.pids(t)
	if len(pids) == 0 {
		t.Fatal("no reader child was started")
	}
	return pids[len(pids)-1]
}

// live are the children started so far that have not ended and been reaped.
func (rec *pidRecorder) live(t *testing.T) []int {
	t.Helper()
	var out []int
	for _, pid := range rec.pids(t) {
		if alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// alive reports whether process pid is there (kill -0), a zombie included.
func alive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// twoPages is a small PDF of two pages with text.
func twoPages() []byte {
	return pdftest.Minimal("(Two pages)", "[0 0 612 792]", "Hello from page one", "And page two")
}

// ingestRig is a control plane, a tenant manager and one user whose tenant
// database is ready.
type ingestRig struct {
	store   *models.Store
	tenants *tenant.Manager
	user    *models.User
	engine  string
}

// newIngestRig makes a fresh SQLite control plane and a user with a tenant
// database on engine ("sqlite" or "postgres"); the tenant database is
// dropped when the test ends.
func newIngestRig(t *testing.T, engine string) *ingestRig {
	t.Helper()
	ctx := context.Background()
	atlas := testdb.AtlasBin(t)
	store, err := models.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "silo.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	control, err := schema.NewMigrator(atlas, store.MigrationDir())
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close()
	if _, _, err := control.Apply(ctx, store.AtlasURL()); err != nil {
		t.Fatalf("migrate the control plane: %v", err)
	}

	migrator, err := schema.NewMigrator(atlas, "tenant/"+engine)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(migrator.Close)
	opts := tenant.Options{Log: slog.New(slog.DiscardHandler)}
	var prov tenant.Provisioner
	switch engine {
	case "sqlite":
		if prov, err = tenant.NewSQLite(ctx, t.TempDir(), migrator); err != nil {
			t.Fatal(err)
		}
	case "postgres":
		pg, err := tenant.NewPostgres(ctx, []string{testdb.ServerURL(t, config.Postgres)}, migrator)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pg.Close)
		prov = pg
		// PostgreSQL tenants have credentials, sealed with SECRET_KEY.
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		if opts.Sealer, err = tenant.NewSealer(key); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown tenant engine %q", engine)
	}
	mgr := tenant.NewManager(store, prov, opts)
	t.Cleanup(mgr.Close)

	return &ingestRig{store: store, tenants: mgr, user: tenantdata.NewUser(t, store, mgr), engine: engine}
}

// tenantDB opens the user's tenant database until the test ends.
func (r *ingestRig) tenantDB(t *testing.T) *tenant.DB {
	t.Helper()
	return tenantdata.Open(t, r.store, r.tenants, r.user.ID)
}

// ingester is a worker pool like silo's on the rig (as pipeline.New builds
// it), with the test binary as the PDF reader and no reader children
// started ahead; it does not run until its Run is called.
func (r *ingestRig) ingester(t *testing.T, e embed.Embedder) *Ingester {
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	const workers = 2
	return &Ingester{
		Store:        r.store,
		Tenants:      r.tenants,
		Readers:      &pdf.Pool{Extractor: pdfchild.Extractor(), MaxHandoffs: 4 * workers, Log: log},
		Embedder:     e,
		Workers:      workers,
		ChunkSize:    chunk.DefaultChunkSize,
		ChunkOverlap: chunk.DefaultChunkOverlap,
		MaxAttempts:  3,
		Log:          log,
	}
}

// queue stores file in the tenant database and queues it, as an upload does.
func (r *ingestRig) queue(t *testing.T, name string, file []byte) *models.Document {
	t.Helper()
	ctx := context.Background()
	doc := &models.Document{
		PublicID: models.NewPublicID(), UserID: r.user.ID, FileName: name,
		Title: strings.TrimSuffix(name, ".pdf"), SizeBytes: int64(len(file)), Status: models.DocumentQueued,
	}
	if err := store.New(r.tenantDB(t)).SaveFile(ctx, doc.PublicID, file); err != nil {
		t.Fatal(err)
	}
	if err := r.store.InsertDocument(ctx, doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// document is the document's row as it is now.
func (r *ingestRig) document(t *testing.T, publicID string) *models.Document {
	t.Helper()
	d, err := r.store.Document(context.Background(), r.user.ID, publicID)
	if err != nil {
		t.Fatalf("document %s: %v", publicID, err)
	}
	return d
}

// expireLease makes the document's lease run out, as time would.
func (r *ingestRig) expireLease(t *testing.T, doc *models.Document) {
	t.Helper()
	_, err := r.store.DB.NewUpdate().Model((*models.Document)(nil)).
		Set("lease_until = ?", time.Now().UTC().Add(-time.Minute)).
		Where("id = ?", doc.ID).Exec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
}

// waitDone waits until none of docs is queued or processing and returns
// them as they ended; it fails the test when that takes longer than wait.
func (r *ingestRig) waitDone(t *testing.T, wait time.Duration, docs ...*models.Document) []*models.Document {
	t.Helper()
	deadline := time.Now().Add(wait)
	out := make([]*models.Document, len(docs))
	for i, d := range docs {
		for {
			got := r.document(t, d.PublicID)
			if !got.Busy() {
				out[i] = got
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("document %s: still %s after %v (%d of %d pages, attempt %d)", d.FileName, got.Status, wait, got.PagesDone, got.Pages, got.Attempts)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return out
}

// runUntilDone runs in until none of docs is busy, then stops it.
func (r *ingestRig) runUntilDone(t *testing.T, in *Ingester, wait time.Duration, docs ...*models.Document) []*models.Document {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	workers.Go(func() { in.Run(ctx) })
	defer func() { cancel(); workers.Wait() }()
	return r.waitDone(t, wait, docs...)
}

// wantIndexed checks that the tenant database holds what the ready document
// says: its file, a page row per page and its chunks, each with a vector.
func (r *ingestRig) wantIndexed(t *testing.T, doc *models.Document) {
	t.Helper()
	pages, chunks, file := tenantdata.Counts(t, r.tenantDB(t), doc.PublicID)
	if pages != doc.Pages || chunks != doc.Chunks || !file {
		t.Errorf("tenant database: got %d pages, %d chunks, file %v; want %d, %d, true", pages, chunks, file, doc.Pages, doc.Chunks)
	}
	for _, ch := range tenantdata.Chunks(t, r.tenantDB(t), doc.PublicID) {
		if ch.Vector == nil {
			t.Fatalf("chunk %d has no vector", ch.Position)
		}
	}
}

// wantReady checks the document ended ready with pages pages and chunks.
func wantReady(t *testing.T, doc *models.Document, pages int) {
	t.Helper()
	if doc.Status != models.DocumentReady || doc.Error != "" {
		t.Fatalf("document %s: got status %s (%q), want ready", doc.FileName, doc.Status, doc.Error)
	}
	if doc.Pages != pages || doc.PagesDone != pages || doc.Chunks == 0 || doc.LeaseUntil != nil {
		t.Errorf("document %s: got %d pages (%d done), %d chunks, lease %v; want %d pages, all done, chunks, no lease",
			doc.FileName, doc.Pages, doc.PagesDone, doc.Chunks, doc.LeaseUntil, pages)
	}
}

// sampleFile reads one file of ../shared/datasets/sample-pdfs.
func sampleFile(t *testing.T, name string) []byte {
	t.Helper()
	return datasets.Read(t, "sample-pdfs", name)
}

// squadPDF reads one file of ../shared/datasets/squad-pdfs.
func squadPDF(t *testing.T, name string) []byte {
	t.Helper()
	return datasets.Read(t, "squad-pdfs", name)
}
