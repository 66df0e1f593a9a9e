// BenchmarkIngestPeakRSS and what it measures memory with.

package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"silo/testrig"
)

// bigPages is the page count of the large PDF: MAX_PAGES's default.
const bigPages = 2000

// buildBigPDF merges the squad PDFs into one, then that one into a PDF of
// exactly bigPages pages, in dir; it skips the benchmark when mutool is
// missing.
func buildBigPDF(b *testing.B, files []benchFile, pages int, dir string) []byte {
	b.Helper()
	mutool, err := exec.LookPath("mutool")
	if err != nil {
		b.Skip("mutool is not installed (apt-get install mupdf-tools): it builds the 2,000-page PDF")
	}
	all := filepath.Join(dir, "squad.pdf")
	args := []string{"merge", "-o", all}
	for _, f := range files {
		args = append(args, f.path)
	}
	if out, err := exec.Command(mutool, args...).CombinedOutput(); err != nil {
		b.Fatalf("mutool merge: %v: %s", err, out)
	}
	big := filepath.Join(dir, "big.pdf")
	args = []string{"merge", "-o", big}
	for range bigPages / pages {
		args = append(args, all)
	}
	if rest := bigPages % pages; rest > 0 {
		args = append(args, all, "1-"+strconv.Itoa(rest))
	}
	if out, err := exec.Command(mutool, args...).CombinedOutput(); err != nil {
		b.Fatalf("mutool merge: %v: %s", err, out)
	}
	pdf, err := os.ReadFile(big)
	if err != nil {
		b.Fatal(err)
	}
	return pdf
}

// BenchmarkIngestPeakRSS measures the resident memory of the server (this
// process: control plane, tenant pools, ingestion workers) while one
// 2,000-page PDF is uploaded and ingested, end to end, into a fresh tenant.
// VmHWM is reset (/proc/self/clear_refs) after a GC just before the upload,
// so peak-MB is the process's peak during the ingestion, baseline-MB its
// resident memory at the start (the test binary itself, its SQLite control
// plane and pools) and growth-MB the difference. child-peak-MB is the
// largest VmHWM of a reader child, sampled from /proc every 10 ms while it
// runs (the Extractor does not expose its process). The goal is a
// server peak of at most 300 MB. Run with -benchtime=1x.
func BenchmarkIngestPeakRSS(b *testing.B) {
	cfg := testrig.Config("")
	files, pages := squadFiles(b, cfg)
	pdf := buildBigPDF(b, files, pages, b.TempDir())
	b.Logf("%d-page PDF of %.1f MB", bigPages, float64(len(pdf))/1e6)

	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run("engine="+engine, func(b *testing.B) {
			r := newIngestRig(b, engine)
			var peak, growth, base, child, secs float64
			for b.Loop() {
				b.StopTimer()
				u := r.newTenant(b)
				runtime.GC()
				debug.FreeOSMemory()
				reset := resetPeakRSS()
				before := procStatusKB("self", "VmRSS")
				hwmBefore := procStatusKB("self", "VmHWM")
				sampler := sampleChildren()
				b.StartTimer()

				start := time.Now()
				if err := r.upload(context.Background(), u, "big.pdf", pdf); err != nil {
					b.Fatal(err)
				}
				docs := r.waitReady(b, u, 1)
				secs += time.Since(start).Seconds()

				b.StopTimer()
				hwm := procStatusKB("self", "VmHWM")
				childKB := sampler.stop()
				if docs[0].Pages != bigPages {
					b.Fatalf("%d pages ingested, want %d", docs[0].Pages, bigPages)
				}
				if !reset && hwm <= hwmBefore {
					b.Logf("VmHWM could not be reset and did not grow: the peak was reached before; peak-MB is an upper bound")
				}
				peak = max(peak, float64(hwm)/1024)
				base = max(base, float64(before)/1024)
				growth = max(growth, float64(hwm-before)/1024)
				child = max(child, float64(childKB)/1024)
				b.Logf("%d chunks", docs[0].Chunks)
				r.drop(b, u)
				b.StartTimer()
			}
			b.ReportMetric(peak, "peak-MB")
			b.ReportMetric(base, "baseline-MB")
			b.ReportMetric(growth, "growth-MB")
			b.ReportMetric(child, "child-peak-MB")
			b.ReportMetric(float64(bigPages*b.N)/secs, "pages/s")
		})
	}
}

// resetPeakRSS resets this process's VmHWM to its current RSS (Linux 4.0+);
// it reports whether it could.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// procStatusKB reads a "kB" field of /proc/<pid>/status; 0 if unreadable.
func procStatusKB(pid, field string) int64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// childSampler watches this process's children and keeps the largest VmHWM
// seen.
type childSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	max  int64
}

func sampleChildren() *childSampler {
	s := &childSampler{done: make(chan struct{})}
	s.wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, pid := range childPIDs() {
				s.max = max(s.max, procStatusKB(pid, "VmHWM"))
			}
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	})
	return s
}

// stop ends the sampling and returns the largest VmHWM seen, in kB.
func (s *childSampler) stop() int64 {
	close(s.done)
	s.wg.Wait()
	return s.max
}

// childPIDs lists this process's children (every thread's, since any of
// the Go runtime's threads may have forked one).
func childPIDs() []string {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []string
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		pids = append(pids, strings.Fields(string(bytes.TrimSpace(b)))...)
	}
	return pids
}
