// Tests of the ingestion queue and workers against real tenant databases:
// resuming after a crash or a shutdown, giving up on a document that keeps
// failing, a remote (OpenAI-compatible) embedder, and re-embedding. The PDF
// reader is the test binary (see TestMain in extract_test.go).
//
// This package cannot import silo/testrig (it imports rag), so the little of
// it these tests need is here: a migrated SQLite control plane and a tenant
// manager on SQLite files or on the PostgreSQL server of TEST_POSTGRES_URL.

package rag

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/tenant"
	"silo/testrig/datasets"
	"silo/testrig/testdb"
)

// tenantEngines are the tenant database engines the ingestion tests run on.
var tenantEngines = []string{"sqlite", "postgres"}

// forEachTenantEngine runs test once per tenant engine, in parallel.
func forEachTenantEngine(t *testing.T, test func(t *testing.T, engine string)) {
	t.Helper()
	for _, engine := range tenantEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			test(t, engine)
		})
	}
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

	u, err := store.SignIn(ctx, models.Profile{Email: "ingest-" + strings.ToLower(rand.Text()[:10]) + "@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.Ensure(ctx, u); err != nil {
		t.Fatalf("make the tenant database: %v", err)
	}
	t.Cleanup(func() {
		if err := mgr.Delete(context.Background(), u); err != nil {
			t.Errorf("drop the tenant database: %v", err)
		}
	})
	return &ingestRig{store: store, tenants: mgr, user: u, engine: engine}
}

// tenantDB opens the user's tenant database until the test ends.
func (r *ingestRig) tenantDB(t *testing.T) *tenant.DB {
	t.Helper()
	v, err := r.store.VectorDatabaseByUser(context.Background(), r.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	db, release, err := r.tenants.DB(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return db
}

// ingester is a worker pool like silo's on the rig, with the test binary as
// the PDF reader; it does not run until its Run is called.
func (r *ingestRig) ingester(t *testing.T, e Embedder) *Ingester {
	return &Ingester{
		Store:        r.store,
		Tenants:      r.tenants,
		Extractor:    testExtractor(),
		Embedder:     e,
		Workers:      2,
		ChunkSize:    DefaultChunkSize,
		ChunkOverlap: DefaultChunkOverlap,
		MaxAttempts:  3,
		Log:          slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
}

// queue stores pdf in the tenant database and queues it, as an upload does.
func (r *ingestRig) queue(t *testing.T, name string, pdf []byte) *models.Document {
	t.Helper()
	ctx := context.Background()
	doc := &models.Document{
		PublicID: models.NewPublicID(), UserID: r.user.ID, FileName: name,
		Title: strings.TrimSuffix(name, ".pdf"), SizeBytes: int64(len(pdf)), Status: models.DocumentQueued,
	}
	if err := NewContent(r.tenantDB(t)).SaveFile(ctx, doc.PublicID, pdf); err != nil {
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

// storedChunk is a chunk as the tenant database holds it.
type storedChunk struct {
	Position int
	Text     string
	Vector   []float32 // nil when the row has none
}

// storedChunks reads the document's chunks, in order, with their vectors.
func (r *ingestRig) storedChunks(t *testing.T, docID string) []storedChunk {
	t.Helper()
	db := r.tenantDB(t)
	var rows []struct {
		Position int    `bun:"position"`
		Text     string `bun:"text"`
		Vec      []byte `bun:"vec"`
	}
	expr := "embedding AS vec"
	if db.Engine == "postgres" {
		expr = "embedding::text AS vec" // pgvector's text form, [1,2,3]
	}
	err := db.NewSelect().Table("chunks").Column("position", "text").ColumnExpr(expr).
		Where("document_id = ?", docID).Order("position").Scan(context.Background(), &rows)
	if err != nil {
		t.Fatal(err)
	}
	dims := 0
	if db.Engine != "postgres" && len(rows) > 0 {
		dims = r.dims(t)
	}
	out := make([]storedChunk, len(rows))
	for i, row := range rows {
		out[i] = storedChunk{Position: row.Position, Text: row.Text}
		switch {
		case row.Vec == nil:
		case db.Engine == "postgres":
			out[i].Vector = parsePGVector(t, string(row.Vec))
		default:
			out[i].Vector = decodeVector(t, row.Vec, dims)
		}
	}
	return out
}

// dims is the tenant database's recorded embedding dimensions.
func (r *ingestRig) dims(t *testing.T) int {
	t.Helper()
	_, dims := r.meta(t)
	n, err := strconv.Atoi(dims)
	if err != nil {
		t.Fatalf("tenant meta: embedding_dimensions %q: %v", dims, err)
	}
	return n
}

// decodeVector is the vector of dims numbers in a SQLite blob of
// encodeVector, dense or sparse.
func decodeVector(t *testing.T, b []byte, dims int) []float32 {
	t.Helper()
	v := make([]float32, dims)
	switch {
	case len(b) == 4*dims:
		for j := range v {
			v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
	case len(b)%6 == 1 && b[0] == vectorSparse:
		last := -1
		for p := b[1:]; len(p) > 0; p = p[6:] {
			j := int(binary.LittleEndian.Uint16(p))
			if j <= last || j >= dims {
				t.Fatalf("a sparse vector blob with index %d after %d (%d dimensions)", j, last, dims)
			}
			v[j], last = math.Float32frombits(binary.LittleEndian.Uint32(p[2:])), j
		}
	default:
		t.Fatalf("a vector blob of %d bytes, neither %d float32s nor sparse", len(b), dims)
	}
	return v
}

func parsePGVector(t *testing.T, s string) []float32 {
	t.Helper()
	fields := strings.Split(strings.Trim(s, "[]"), ",")
	v := make([]float32, len(fields))
	for i, f := range fields {
		x, err := strconv.ParseFloat(f, 32)
		if err != nil {
			t.Fatalf("vector %.40q: %v", s, err)
		}
		v[i] = float32(x)
	}
	return v
}

// meta is the tenant database's recorded embedding model and dimensions.
func (r *ingestRig) meta(t *testing.T) (model, dims string) {
	t.Helper()
	db := r.tenantDB(t)
	ctx := context.Background()
	var err error
	if model, err = NewContent(db).EmbeddingModel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.NewSelect().Table("meta").Column("value").Where("key = ?", "embedding_dimensions").Scan(ctx, &dims); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return model, dims
}

// wantVectors checks that chunks hold exactly want's vectors as the engine
// stores them: float32s of want's width on SQLite, half precision
// zero-padded to pgDimensions on PostgreSQL.
func (r *ingestRig) wantVectors(t *testing.T, chunks []storedChunk, want [][]float32) {
	t.Helper()
	if len(chunks) != len(want) {
		t.Fatalf("got %d chunks, want %d", len(chunks), len(want))
	}
	for i, ch := range chunks {
		w := want[i]
		width := len(w)
		if r.engine == "postgres" {
			width = pgDimensions
		}
		if len(ch.Vector) != width {
			t.Fatalf("chunk %d: got a vector of %d numbers, want %d", ch.Position, len(ch.Vector), width)
		}
		for j, got := range ch.Vector {
			wj := float32(0)
			if j < len(w) {
				wj = w[j]
			}
			tolerance := 0.0 // float32s are stored as they are
			if r.engine == "postgres" {
				tolerance = 1e-4 + math.Abs(float64(wj))/1000 // halfvec: 11 significant bits
			}
			if math.Abs(float64(got-wj)) > tolerance {
				t.Fatalf("chunk %d, number %d: got %v, want %v (the vector is not the embedder's)", ch.Position, j, got, wj)
			}
		}
	}
}

// wantIndexed checks that the tenant database holds what the ready document
// says: its file, a page row per page and its chunks, each with a vector.
func (r *ingestRig) wantIndexed(t *testing.T, doc *models.Document) {
	t.Helper()
	pages, chunks, file, err := NewContent(r.tenantDB(t)).Counts(context.Background(), doc.PublicID)
	if err != nil {
		t.Fatal(err)
	}
	if pages != doc.Pages || chunks != doc.Chunks || !file {
		t.Errorf("tenant database: got %d pages, %d chunks, file %v; want %d, %d, true", pages, chunks, file, doc.Pages, doc.Chunks)
	}
	for _, ch := range r.storedChunks(t, doc.PublicID) {
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
	pdf, err := os.ReadFile(filepath.Join(datasets.Dir(t, "sample-pdfs"), name))
	if err != nil {
		t.Fatal(err)
	}
	return pdf
}

// squadPDF reads one file of ../shared/datasets/squad-pdfs.
func squadPDF(t *testing.T, name string) []byte {
	t.Helper()
	pdf, err := os.ReadFile(filepath.Join(datasets.Dir(t, "squad-pdfs"), name))
	if err != nil {
		t.Fatal(err)
	}
	return pdf
}

// A worker that took a document and died (a crash, a kill -9) leaves it
// processing under a lease; once the lease runs out, another worker takes
// it up and finishes it.
func TestIngestResumesAfterCrash(t *testing.T) {
	forEachTenantEngine(t, func(t *testing.T, engine string) {
		r := newIngestRig(t, engine)
		ctx := context.Background()
		doc := r.queue(t, "pdflatex-4-pages.pdf", sampleFile(t, "pdflatex-4-pages.pdf"))

		crashed, err := r.store.LeaseDocument(ctx, time.Minute) // and never finishes
		if err != nil || crashed.ID != doc.ID {
			t.Fatalf("LeaseDocument: got %+v, %v; want document %d", crashed, err, doc.ID)
		}

		in := r.ingester(t, NewHashEmbedder(0))
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
	Embedder
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
	forEachTenantEngine(t, func(t *testing.T, engine string) {
		for _, stage := range []string{"reading", "embedding"} {
			t.Run(stage, func(t *testing.T) {
				r := newIngestRig(t, engine)
				ctx := context.Background()
				doc := r.queue(t, "GeoTopo-komprimiert.pdf", bigPDF(t))

				stalling := &stallingEmbedder{Embedder: NewHashEmbedder(0), started: make(chan struct{})}
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
					first.Embedder = NewHashEmbedder(0)
					first.Extractor = &Extractor{Command: []string{"sh", "-c",
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
				pages, chunks, file, err := NewContent(r.tenantDB(t)).Counts(ctx, doc.PublicID)
				if err != nil {
					t.Fatal(err)
				}
				if pages != 0 || chunks != 0 || !file {
					t.Errorf("after the stop: got %d pages, %d chunks, file %v; want nothing indexed and the file kept", pages, chunks, file)
				}

				r.expireLease(t, doc)
				got := r.runUntilDone(t, r.ingester(t, NewHashEmbedder(0)), 2*time.Minute, doc)[0]
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
	Embedder
	calls atomic.Int32
}

func (e *failingEmbedder) Embed(context.Context, []string) ([][]float32, error) {
	e.calls.Add(1)
	return nil, &EmbeddingError{Provider: "openai", StatusCode: http.StatusServiceUnavailable, Message: "the server is overloaded"}
}

// A document that keeps failing for a reason outside the PDF is tried
// MaxAttempts times, with a back-off between tries, and then ends failed
// with its reason.
func TestIngestFailsAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	r := newIngestRig(t, "sqlite")
	ctx := context.Background()
	doc := r.queue(t, "pdflatex-4-pages.pdf", sampleFile(t, "pdflatex-4-pages.pdf"))
	failing := &failingEmbedder{Embedder: NewHashEmbedder(0)}
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
	pages, chunks, file, err := NewContent(r.tenantDB(t)).Counts(ctx, doc.PublicID)
	if err != nil {
		t.Fatal(err)
	}
	if pages != 0 || chunks != 0 || !file {
		t.Errorf("got %d pages, %d chunks, file %v; want nothing indexed and the file kept for a retry", pages, chunks, file)
	}
}

// A PDF the reader refuses fails at once: trying again cannot help.
func TestIngestFailsAtOnceOnABadPDF(t *testing.T) {
	t.Parallel()
	r := newIngestRig(t, "sqlite")
	doc := r.queue(t, "broken.pdf", []byte("%PDF-1.7\nnot a PDF after all, and no pages in it\n"))
	got := r.runUntilDone(t, r.ingester(t, NewHashEmbedder(0)), time.Minute, doc)[0]
	if got.Status != models.DocumentFailed || !strings.HasPrefix(got.Error, "the file is not a PDF that can be read") || got.Attempts != 1 {
		t.Errorf("got status %s, error %q, attempt %d; want failed at the first attempt, the file is not a PDF that can be read…",
			got.Status, got.Error, got.Attempts)
	}
}

// Ingesting with an OpenAI-compatible embedder sends the chunks in batches
// of at most 64, retries a rate limit, records the model in the tenant
// database and stores the server's vectors (zero-padded to 2000 numbers on
// PostgreSQL).
func TestIngestOpenAIEmbedder(t *testing.T) {
	forEachTenantEngine(t, func(t *testing.T, engine string) {
		r := newIngestRig(t, engine)
		ctx := context.Background()
		fake := newFakeEmbedServer(t, "openai", 1536)
		fake.embed = NewHashEmbedder(1536) // each text its own vector
		fake.reply = failFirst(status(http.StatusTooManyRequests, "0", `{"error":{"message":"Rate limit reached for text-embedding-3-small on requests per min (RPM): Limit 3000, Used 3000, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`))
		in := r.ingester(t, NewOpenAIEmbedder(fake.URL, "key", "text-embedding-3-small", 1536, nil))
		doc := r.queue(t, "european-union-law.pdf", squadPDF(t, "european-union-law.pdf"))
		got := r.runUntilDone(t, in, 2*time.Minute, doc)[0]
		if got.Status != models.DocumentReady || got.Attempts != 1 {
			t.Fatalf("got status %s (%q) at attempt %d, want ready at the first: the embedder retries the 429 itself", got.Status, got.Error, got.Attempts)
		}
		r.wantIndexed(t, got)
		chunks := r.storedChunks(t, doc.PublicID)
		if len(chunks) <= maxBatchTexts {
			t.Fatalf("got %d chunks; the test needs more than %d to see batches", len(chunks), maxBatchTexts)
		}

		reqs := fake.sent()
		if len(reqs) < 3 || reqs[0].Status != http.StatusTooManyRequests {
			t.Fatalf("got %d requests, want a 429 and then at least two batches", len(reqs))
		}
		if strings.Join(reqs[1].Input, "\x00") != strings.Join(reqs[0].Input, "\x00") {
			t.Errorf("the request after the 429 sent other texts (%d) than the refused one (%d), want it retried", len(reqs[1].Input), len(reqs[0].Input))
		}
		var sent []string
		for i, req := range reqs {
			dims := 0 // none sent
			if req.Dimensions != nil {
				dims = *req.Dimensions
			}
			if req.Path != "/embeddings" || req.Model != "text-embedding-3-small" || dims != 1536 || req.Auth != "Bearer key" {
				t.Errorf("request %d: got path %q, model %q, dimensions %d, Authorization %q; want /embeddings, text-embedding-3-small, 1536, Bearer key",
					i, req.Path, req.Model, dims, req.Auth)
			}
			if len(req.Input) == 0 || len(req.Input) > maxBatchTexts {
				t.Errorf("request %d: got %d inputs, want 1 to %d", i, len(req.Input), maxBatchTexts)
			}
			if req.Status == http.StatusOK {
				sent = append(sent, req.Input...)
			}
		}
		if len(sent) != len(chunks) {
			t.Fatalf("the answered requests carried %d texts, want the %d chunks once each", len(sent), len(chunks))
		}
		want := make([][]float32, len(chunks))
		for i, ch := range chunks {
			if sent[i] != ch.Text {
				t.Fatalf("text %d sent: got %.60q, want chunk %d, %.60q", i, sent[i], ch.Position, ch.Text)
			}
			v, err := fake.embed.Embed(ctx, []string{ch.Text})
			if err != nil {
				t.Fatal(err)
			}
			want[i] = v[0]
		}
		r.wantVectors(t, chunks, want)

		if model, dims := r.meta(t); model != "openai:text-embedding-3-small@1536" || dims != "1536" {
			t.Errorf("tenant meta: got model %q, dimensions %q; want openai:text-embedding-3-small@1536, 1536", model, dims)
		}
		if engine == "postgres" {
			var wrong int
			err := r.tenantDB(t).NewRaw("SELECT count(*) FROM chunks WHERE document_id = ? AND vector_dims(embedding) <> ?", doc.PublicID, pgDimensions).Scan(ctx, &wrong)
			if err != nil {
				t.Fatal(err)
			}
			if wrong != 0 {
				t.Errorf("%d chunks have vectors that are not %d wide", wrong, pgDimensions)
			}
		}
	})
}

// When the configured embedder changes, ReembedAll gives every chunk of
// every document a vector of the new model and records it: a tenant
// database never mixes two models' vectors.
func TestIngestReembedAll(t *testing.T) {
	forEachTenantEngine(t, func(t *testing.T, engine string) {
		r := newIngestRig(t, engine)
		ctx := context.Background()
		old := NewHashEmbedder(0)
		docs := []*models.Document{
			r.queue(t, "warsaw.pdf", squadPDF(t, "warsaw.pdf")),
			r.queue(t, "pdflatex-4-pages.pdf", sampleFile(t, "pdflatex-4-pages.pdf")),
		}
		for _, d := range r.runUntilDone(t, r.ingester(t, old), 2*time.Minute, docs...) {
			if d.Status != models.DocumentReady {
				t.Fatalf("%s: got status %s (%q), want ready", d.FileName, d.Status, d.Error)
			}
		}
		if model, dims := r.meta(t); model != old.Model() || dims != strconv.Itoa(old.Dims()) {
			t.Fatalf("tenant meta: got %q, %q; want %q, %d", model, dims, old.Model(), old.Dims())
		}
		before := map[string]int{}
		for _, d := range docs {
			chunks := r.storedChunks(t, d.PublicID)
			before[d.PublicID] = len(chunks)
			if len(chunks) == 0 || len(chunks[0].Vector) != DefaultHashDims {
				t.Fatalf("%s: got %d chunks, the first %d wide; want chunks of %d", d.FileName, len(chunks), len(chunks[0].Vector), DefaultHashDims)
			}
		}

		next := NewHashEmbedder(1000)
		if err := r.ingester(t, next).ReembedAll(ctx); err != nil {
			t.Fatalf("ReembedAll: %v", err)
		}
		if model, dims := r.meta(t); model != "silo-hash-v1-1000" || dims != "1000" {
			t.Errorf("tenant meta: got %q, %q; want silo-hash-v1-1000, 1000", model, dims)
		}
		for _, d := range docs {
			chunks := r.storedChunks(t, d.PublicID)
			if len(chunks) != before[d.PublicID] {
				t.Errorf("%s: got %d chunks, want the %d there were", d.FileName, len(chunks), before[d.PublicID])
			}
			texts := make([]string, len(chunks))
			for i, ch := range chunks {
				texts[i] = ch.Text
			}
			want, err := embedDocument(ctx, next, texts)
			if err != nil {
				t.Fatal(err)
			}
			r.wantVectors(t, chunks, want)
		}

		// Nothing left to do: a second run changes nothing.
		if err := r.ingester(t, next).ReembedAll(ctx); err != nil {
			t.Fatalf("ReembedAll again: %v", err)
		}
		if model, _ := r.meta(t); model != "silo-hash-v1-1000" {
			t.Errorf("tenant meta after a second run: got %q", model)
		}
	})
}

// deletingEmbedder embeds with Embedder after deleting the document as the
// delete button does (its content, then its row): a document deleted while
// it is being ingested.
type deletingEmbedder struct {
	Embedder
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
	forEachTenantEngine(t, func(t *testing.T, engine string) {
		r := newIngestRig(t, engine)
		ctx := context.Background()
		doc := r.queue(t, "pdflatex-4-pages.pdf", sampleFile(t, "pdflatex-4-pages.pdf"))
		content := NewContent(r.tenantDB(t))
		deleting := &deletingEmbedder{Embedder: NewHashEmbedder(0), delete: func() {
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
		pages, chunks, file, err := content.Counts(ctx, doc.PublicID)
		if err != nil {
			t.Fatal(err)
		}
		if pages != 0 || chunks != 0 || file {
			t.Errorf("got %d pages, %d chunks, file %v of a deleted document, want nothing left", pages, chunks, file)
		}
	})
}

// TestIngestHandoff checks that a worker reads a document with the reader
// child its upload handed over (Ingester.Handoff) rather than a new one, and
// that the children no worker took stop with the workers.
func TestIngestHandoff(t *testing.T) {
	r := newIngestRig(t, "sqlite")
	ctx := context.Background()
	in := r.ingester(t, NewHashEmbedder(0))
	pdf := readFixture(t, "two-pages.pdf")

	// Queued without its file: only the handed-over child can read it.
	doc := &models.Document{PublicID: models.NewPublicID(), UserID: r.user.ID, FileName: "two-pages.pdf",
		Title: "two-pages", SizeBytes: int64(len(pdf)), Status: models.DocumentQueued}
	if err := r.store.InsertDocument(ctx, doc); err != nil {
		t.Fatal(err)
	}
	x, err := in.Extractor.Start(ctx, pdf)
	if err != nil {
		t.Fatal(err)
	}
	in.Handoff(doc.PublicID, x)
	got := r.runUntilDone(t, in, time.Minute, doc)[0]
	if got.Status != models.DocumentReady || got.Pages != 2 || got.Chunks == 0 {
		t.Fatalf("got %s (%s), %d pages, %d chunks; want ready, 2 pages, chunks", got.Status, got.Error, got.Pages, got.Chunks)
	}

	in = r.ingester(t, NewHashEmbedder(0))
	x, err = in.Extractor.Start(ctx, pdf)
	if err != nil {
		t.Fatal(err)
	}
	in.Handoff("no-such-document", x)
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	in.Run(stopped)
	if err := syscall.Kill(x.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("a handed-over child outlived the workers (kill -0: %v)", err)
	}
	// Once the workers are gone, a child handed over is stopped at once.
	x, err = in.Extractor.Start(ctx, pdf)
	if err != nil {
		t.Fatal(err)
	}
	in.Handoff("another", x)
	if err := syscall.Kill(x.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("a child handed over after the workers stopped is still there (kill -0: %v)", err)
	}
}

// TestIngestWarm checks the children started ahead of the uploads: they
// read one PDF each, one that died while it waited is not taken for the
// PDF's fault, and they stop with the workers.
func TestIngestWarm(t *testing.T) {
	ctx := context.Background()
	in := &Ingester{Extractor: testExtractor(), Warm: 2, Log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	pdf := readFixture(t, "two-pages.pdf")
	seen := map[int]bool{}
	for i := range 5 {
		x, err := in.Start(ctx, pdf)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if seen[x.cmd.Process.Pid] {
			t.Fatalf("start %d: a child read a second PDF", i)
		}
		seen[x.cmd.Process.Pid] = true
		if err := x.Pages(ctx, nil); err != nil {
			t.Fatalf("pages %d: %v", i, err)
		}
		time.Sleep(50 * time.Millisecond) // let the warm children start
	}

	// Kill the children that wait: the next upload must still be read.
	var warm []*Extraction
	for deadline := time.Now().Add(5 * time.Second); len(warm) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		in.mu.Lock()
		warm = slices.Clone(in.warm)
		in.mu.Unlock()
	}
	if len(warm) == 0 {
		t.Fatal("no warm child waits")
	}
	for _, x := range warm {
		_ = syscall.Kill(-x.cmd.Process.Pid, syscall.SIGKILL)
	}
	time.Sleep(50 * time.Millisecond)
	x, err := in.Start(ctx, pdf)
	if err != nil || x.Info().Pages != 2 {
		t.Fatalf("after the warm children died: got %v; want 2 pages", err)
	}
	x.Close()

	stopped, cancel := context.WithCancel(ctx)
	cancel()
	in.Run(stopped)
	in.mu.Lock()
	warm = slices.Clone(in.warm)
	in.mu.Unlock()
	if len(warm) != 0 {
		t.Errorf("after the workers stopped: %d warm children, want none", len(warm))
	}
}

// A SQLite tenant database keeps vectors written before the sparse format
// (dense float32 blobs) searchable with the same scores as new ones.
func TestIngestOldDenseVectorsStillSearch(t *testing.T) {
	r := newIngestRig(t, "sqlite")
	ctx := context.Background()
	doc := r.queue(t, "pdflatex-4-pages.pdf", sampleFile(t, "pdflatex-4-pages.pdf"))
	embedder := NewHashEmbedder(0)
	if d := r.runUntilDone(t, r.ingester(t, embedder), time.Minute, doc)[0]; d.Status != models.DocumentReady {
		t.Fatalf("got status %s (%q), want ready", d.Status, d.Error)
	}
	db := r.tenantDB(t)
	content := NewContent(db)
	search := func() []Result {
		t.Helper()
		res, err := Searcher{Embedder: embedder}.Search(ctx, content, doc.PublicID, "the results of the experiment", ModeVector, 5)
		if err != nil || len(res) == 0 {
			t.Fatalf("Search: got %d results, %v", len(res), err)
		}
		return res
	}
	want := search()

	var sparse int
	if err := db.NewRaw("SELECT count(*) FROM chunks WHERE document_id = ? AND substr(embedding, 1, 1) = ?", doc.PublicID, []byte{vectorSparse}).Scan(ctx, &sparse); err != nil || sparse == 0 {
		t.Fatalf("got %d sparse vector blobs (%v), want the hash embedder's vectors sparse", sparse, err)
	}
	for _, ch := range r.storedChunks(t, doc.PublicID) {
		old := make([]byte, 4*len(ch.Vector))
		for i, f := range ch.Vector {
			binary.LittleEndian.PutUint32(old[4*i:], math.Float32bits(f))
		}
		if _, err := db.ExecContext(ctx, "UPDATE chunks SET embedding = ? WHERE document_id = ? AND position = ?", old, doc.PublicID, ch.Position); err != nil {
			t.Fatal(err)
		}
	}
	if got := search(); !slices.Equal(got, want) {
		t.Errorf("search over the old dense blobs: got %+v, want %+v", got, want)
	}
}
