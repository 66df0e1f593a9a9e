// Benchmarks of ingestion (make bench; figures in BENCHMARKS.md):
//
//   - BenchmarkIngestSquad: the 13 PDFs of ../shared/datasets/squad-pdfs
//     uploaded and ingested end to end, in pages/s, on SQLite and PostgreSQL
//     tenants, next to `mutool draw -F txt` on the same files (the floor of
//     text extraction) and silo's PDF reader alone.
//   - BenchmarkIngestStages (bench_stages_test.go): each stage of ingestion
//     on its own, in ms per document, to show where the end-to-end time goes.
//   - BenchmarkIngestPeakRSS (bench_rss_test.go): the server's peak resident
//     memory while it ingests a 2,000-page PDF, and the reader child's.
//
// Knobs for experiments (make bench sets none): SILO_BENCH_READER (another
// reader binary), SILO_BENCH_WORKERS (ingestion workers), SILO_BENCH_WARM
// (warm reader children), SILO_BENCH_PG_SQL (SQL run as the server's admin
// in each fresh PostgreSQL tenant of BenchmarkIngestSquad before the timer,
// e.g. another index on chunks.embedding), SILO_BENCH_LOG=1
// (the workers' log on stderr).
//
// They are in package ingest_test because they need silo/testrig, which
// imports ingest; the test binary is still the PDF reader child through
// TestMain of package ingest (ingest_test.go), which turns it into one when
// a pdfchild.Extractor starts it.

package ingest_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"silo/config"
	"silo/embed"
	"silo/ingest"
	"silo/models"
	"silo/pdf"
	"silo/store"
	"silo/tenant"
	"silo/testrig"
	"silo/testrig/pdfchild"
	"silo/testrig/testdb"
)

// benchExtractor is the PDF reader as silo configures it, with the test
// binary as the child (see TestMain in ingest_test.go); SILO_BENCH_READER
// names another reader binary (one whose main calls pdf.ChildMain) to
// experiment with.
func benchExtractor(cfg *config.Config) *pdf.Extractor {
	ex := pdfchild.Extractor()
	ex.Timeout, ex.MemoryMB = cfg.ExtractTimeout, cfg.ExtractMemMB
	if reader := os.Getenv("SILO_BENCH_READER"); reader != "" {
		ex.Command, ex.Env = []string{reader}, nil
	}
	return ex
}

// quietLog discards what the workers log, unless SILO_BENCH_LOG=1 (then
// each document's ingestion time is on stderr). It sends on done each time
// a worker logs that it is done with a document, so that waitReady need not
// poll the control plane while the workers work.
func quietLog(done chan<- struct{}) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if os.Getenv("SILO_BENCH_LOG") == "1" {
		h = slog.NewTextHandler(os.Stderr, nil)
	}
	return slog.New(doneHandler{Handler: h, done: done})
}

// doneHandler signals the workers' "ingest: ready" and "ingest: failed".
type doneHandler struct {
	slog.Handler
	done chan<- struct{}
}

func (h doneHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "ingest: ready" || r.Message == "ingest: failed" {
		select {
		case h.done <- struct{}{}:
		default:
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h doneHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return doneHandler{Handler: h.Handler.WithAttrs(attrs), done: h.done}
}

func (h doneHandler) WithGroup(name string) slog.Handler {
	return doneHandler{Handler: h.Handler.WithGroup(name), done: h.done}
}

// benchFile is one PDF to upload.
type benchFile struct {
	name  string
	path  string
	pdf   []byte
	pages int
}

// squadFiles reads the squad PDFs and their page counts; it skips the
// benchmark when the dataset is missing.
func squadFiles(b *testing.B, cfg *config.Config) (files []benchFile, pages int) {
	b.Helper()
	dir := filepath.Join("..", "..", "shared", "datasets", "squad-pdfs")
	paths, err := filepath.Glob(filepath.Join(dir, "*.pdf"))
	if err != nil || len(paths) == 0 {
		b.Skipf("no PDFs in %s (%v)", dir, err)
	}
	ex := benchExtractor(cfg)
	for _, p := range paths {
		pdf, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		x, err := ex.Start(context.Background(), pdf)
		if err != nil {
			b.Fatalf("%s: %v", p, err)
		}
		n := x.Info().Pages
		x.Close()
		files = append(files, benchFile{name: filepath.Base(p), path: p, pdf: pdf, pages: n})
		pages += n
	}
	return files, pages
}

// benchWarm is the number of warm reader children: silo's (see
// pipeline.New), or SILO_BENCH_WARM to experiment (0: none).
func benchWarm() int {
	if n, err := strconv.Atoi(os.Getenv("SILO_BENCH_WARM")); err == nil && n >= 0 {
		return n
	}
	return 2
}

// benchWorkers is the number of ingestion workers: silo's default
// (INGEST_WORKERS = runtime.NumCPU()), or SILO_BENCH_WORKERS to experiment.
func benchWorkers() int {
	if n, err := strconv.Atoi(os.Getenv("SILO_BENCH_WORKERS")); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// ingestRig is the part of a silo server that ingests: a control plane,
// tenant databases on one engine and running ingestion workers.
type ingestRig struct {
	cfg     *config.Config
	store   *models.Store
	tenants *tenant.Manager
	ing     *ingest.Ingester
	done    chan struct{} // a worker is done with a document

	// Time spent in the steps of upload, all uploads together.
	infoTime, saveTime, insertTime time.Duration
}

// newIngestRig starts ingestion workers (runtime.NumCPU() of them, silo's
// default) on a fresh SQLite control plane, with tenants on engine
// ("sqlite" or "postgres"; PostgreSQL from TEST_POSTGRES_URL, as
// testrig.PostgresTenants finds it). Everything stops when the benchmark ends.
func newIngestRig(b *testing.B, engine string) *ingestRig {
	b.Helper()
	cfg := testrig.Config("")
	store := testdb.ControlPlane(b, config.SQLite)
	var tenants *tenant.Manager
	switch engine {
	case "sqlite":
		tenants = testrig.SQLiteTenants(b, store, nil)
	case "postgres":
		tenants = testrig.PostgresTenants(b, store)
	default:
		b.Fatalf("unknown engine %q", engine)
	}
	done := make(chan struct{}, 1<<12)
	log := quietLog(done)
	n := benchWorkers()
	ing := &ingest.Ingester{
		Store:   store,
		Tenants: tenants,
		// As pipeline.New: 4 children handed over per worker at most.
		Readers:      &pdf.Pool{Extractor: benchExtractor(cfg), Warm: benchWarm(), MaxHandoffs: 4 * n, Log: log},
		Embedder:     embed.NewHash(cfg.EmbeddingDimensions),
		Workers:      n,
		ChunkSize:    cfg.ChunkSize,
		ChunkOverlap: cfg.ChunkOverlap,
		MaxAttempts:  2,
		Log:          log,
	}
	ctx, cancel := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	workers.Go(func() { ing.Run(ctx) })
	// Registered last, so it runs first: the workers stop before the
	// tenants and the control plane close.
	b.Cleanup(func() { cancel(); workers.Wait() })
	return &ingestRig{cfg: cfg, store: store, tenants: tenants, ing: ing, done: done}
}

// newTenant signs a new user up and makes their tenant database. The
// database is dropped when the benchmark ends (or earlier, by drop).
func (r *ingestRig) newTenant(b *testing.B) *models.User {
	b.Helper()
	ctx := context.Background()
	u, err := r.store.SignIn(ctx, models.Profile{Email: "bench-" + strings.ToLower(rand.Text()[:10]) + "@example.com"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.tenants.Ensure(ctx, u); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.drop(b, u) })
	return u
}

// drop deletes a user's tenant database; a second call does nothing.
func (r *ingestRig) drop(b *testing.B, u *models.User) {
	if _, err := r.store.VectorDatabaseByUser(context.Background(), u.ID); errors.Is(err, models.ErrNotFound) {
		return
	}
	if err := r.tenants.Delete(context.Background(), u); err != nil {
		b.Error(err)
	}
}

// upload does what an upload request does after receiving the file
// (handlers.addDocument): start a reader child and read the PDF's page count
// and title, store the bytes in the tenant database, queue the document row,
// hand the child over to the workers and wake one.
func (r *ingestRig) upload(ctx context.Context, u *models.User, name string, pdf []byte) error {
	doc := &models.Document{PublicID: models.NewPublicID(), UserID: u.ID, FileName: name, Title: strings.TrimSuffix(name, ".pdf"), SizeBytes: int64(len(pdf)), Status: models.DocumentQueued}
	start := time.Now()
	x, err := r.ing.Readers.Start(ctx, pdf)
	r.infoTime += time.Since(start)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer func() {
		if x != nil {
			x.Close()
		}
	}()
	info := x.Info()
	if info.Pages > r.cfg.MaxPages {
		return fmt.Errorf("%s has %d pages; the limit is %d", name, info.Pages, r.cfg.MaxPages)
	}
	if t := strings.TrimSpace(info.Title); t != "" {
		doc.Title = t
	}
	doc.Pages = info.Pages
	v, err := r.store.VectorDatabaseByUser(ctx, u.ID)
	if err != nil {
		return err
	}
	db, release, err := r.tenants.DB(ctx, v)
	if err != nil {
		return err
	}
	defer release()
	start = time.Now()
	if err := store.New(db).SaveFile(ctx, doc.PublicID, pdf); err != nil {
		return err
	}
	mid := time.Now()
	r.saveTime += mid.Sub(start)
	if err := r.store.InsertDocument(ctx, doc); err != nil {
		return err
	}
	r.insertTime += time.Since(mid)
	r.ing.Readers.Handoff(doc.PublicID, x)
	x = nil
	r.ing.Notify()
	return nil
}

// waitReady waits until the user's n documents are all ready; it fails the
// benchmark on a failed one. It waits for the workers to say they are done
// with n documents, then reads the control plane every millisecond until it
// agrees (a worker says so just before it records the outcome), so that it
// neither loads the machine nor adds a poll interval to the time.
func (r *ingestRig) waitReady(b *testing.B, u *models.User, n int) []models.Document {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for range n {
		select {
		case <-r.done:
		case <-time.After(time.Until(deadline)):
			b.Fatalf("the workers were not done with %d documents after 5 minutes", n)
		}
	}
	for {
		docs, err := r.store.DocumentsByUser(context.Background(), u.ID)
		if err != nil {
			b.Fatal(err)
		}
		ready := 0
		for _, d := range docs {
			switch d.Status {
			case models.DocumentReady:
				ready++
			case models.DocumentFailed:
				b.Fatalf("%s failed: %s", d.FileName, d.Error)
			}
		}
		if ready == n {
			return docs
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d documents ready after 5 minutes", ready, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkIngestSquad measures ingestion end to end (upload → ready) of the
// 13 squad PDFs into a fresh tenant, in pages/s: the uploads one after
// another as one multi-file upload does (page count in a reader child, bytes
// into the tenant database, document row queued) while NumCPU workers
// extract (a reader child per document), clean, chunk, embed with the
// offline embedder and index. Next to it, in the same run: mutool draw -F txt
// over the same files (the floor of text extraction: the goal is at
// least half of its pages/s), one file at a time and NumCPU at once, and
// silo's reader children alone, NumCPU at once.
func BenchmarkIngestSquad(b *testing.B) {
	cfg := testrig.Config("")
	files, pages := squadFiles(b, cfg)
	b.Logf("%d files, %d pages", len(files), pages)

	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run("engine="+engine, func(b *testing.B) {
			r := newIngestRig(b, engine)
			ctx := context.Background()
			var total, uploads, selfCPU, childCPU, pgCPU time.Duration
			for b.Loop() {
				b.StopTimer()
				u := r.newTenant(b)
				if sql := os.Getenv("SILO_BENCH_PG_SQL"); sql != "" && engine == "postgres" {
					v, err := r.store.VectorDatabaseByUser(ctx, u.ID)
					if err != nil {
						b.Fatal(err)
					}
					adminExec(b, v.Name, sql)
				}
				self0, children0, pg0 := cpuTime(syscall.RUSAGE_SELF), cpuTime(syscall.RUSAGE_CHILDREN), postgresCPU()
				b.StartTimer()
				start := time.Now()
				for _, f := range files {
					if err := r.upload(ctx, u, f.name, f.pdf); err != nil {
						b.Fatal(err)
					}
				}
				uploads += time.Since(start)
				docs := r.waitReady(b, u, len(files))
				total += time.Since(start)
				b.StopTimer()
				pgCPU += postgresCPU() - pg0
				selfCPU += cpuTime(syscall.RUSAGE_SELF) - self0
				childCPU += cpuTime(syscall.RUSAGE_CHILDREN) - children0
				got := 0
				for _, d := range docs {
					got += d.Pages
				}
				if got != pages {
					b.Fatalf("%d pages ingested, want %d", got, pages)
				}
				r.drop(b, u)
				b.StartTimer()
			}
			b.ReportMetric(float64(pages*b.N)/total.Seconds(), "pages/s")
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(ms(uploads), "upload-ms")
			b.ReportMetric(ms(r.infoTime), "info-ms")
			b.ReportMetric(ms(r.saveTime), "save-ms")
			b.ReportMetric(ms(r.insertTime), "insert-ms")
			b.ReportMetric(ms(selfCPU), "server-cpu-ms")
			b.ReportMetric(ms(childCPU), "readers-cpu-ms")
			if engine == "postgres" {
				b.ReportMetric(ms(pgCPU), "postgres-cpu-ms")
			}
		})
	}

	b.Run("reader", func(b *testing.B) {
		ex := benchExtractor(cfg)
		var total time.Duration
		for b.Loop() {
			start := time.Now()
			parallel(b, files, runtime.NumCPU(), func(f benchFile) error {
				_, err := ex.Extract(context.Background(), f.pdf, nil)
				return err
			})
			total += time.Since(start)
		}
		b.ReportMetric(float64(pages*b.N)/total.Seconds(), "pages/s")
	})

	for _, workers := range []int{1, runtime.NumCPU()} {
		b.Run(fmt.Sprintf("mutool/procs=%d", workers), func(b *testing.B) {
			mutool, err := exec.LookPath("mutool")
			if err != nil {
				b.Skip("mutool is not installed (apt-get install mupdf-tools)")
			}
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				parallel(b, files, workers, func(f benchFile) error {
					out, err := exec.Command(mutool, "draw", "-F", "txt", "-o", "/dev/null", f.path).CombinedOutput()
					if err != nil {
						return fmt.Errorf("mutool draw %s: %v: %s", f.name, err, lastLine(out))
					}
					return nil
				})
				total += time.Since(start)
			}
			b.ReportMetric(float64(pages*b.N)/total.Seconds(), "pages/s")
		})
	}
}

// adminExec runs sql in the PostgreSQL tenant database named name as the
// server's admin role (TEST_POSTGRES_URL): the tenant's own role does not
// own the schema's objects.
func adminExec(b *testing.B, name, sql string) {
	b.Helper()
	ctx := context.Background()
	u, err := url.Parse(os.Getenv("TEST_POSTGRES_URL"))
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, sql); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
}

// cpuTime is the user and system CPU time of this process (RUSAGE_SELF) or
// of its children that have ended (RUSAGE_CHILDREN).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postgresCPU is the CPU time of this machine's PostgreSQL processes: the
// live ones and those the postmaster has reaped (0 without /proc). Only
// meaningful when the test server is local and otherwise idle.
func postgresCPU() time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		name, rest, ok := strings.Cut(string(b), ") ")
		if !ok || !strings.HasSuffix(name, "(postgres") {
			continue
		}
		// After the name: state, ppid, …; utime, stime, cutime, cstime are
		// fields 14-17 of stat, 12-15 here. Only the postmaster (whose
		// parent is not a postgres) adds its reaped children's.
		fields := strings.Fields(rest)
		if len(fields) < 15 {
			continue
		}
		last := 13
		if ppid, _ := os.ReadFile("/proc/" + fields[1] + "/comm"); strings.TrimSpace(string(ppid)) != "postgres" {
			last = 15
		}
		for _, v := range fields[11 : last+1] {
			n, _ := strconv.ParseInt(v, 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// parallel calls do for every file, n at a time, and fails the benchmark on
// the first error.
func parallel(b *testing.B, files []benchFile, n int, do func(benchFile) error) {
	b.Helper()
	work := make(chan benchFile)
	errs := make(chan error, len(files))
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for f := range work {
				if err := do(f); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
