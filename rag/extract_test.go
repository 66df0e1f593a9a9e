// Tests of PDF extraction: the test binary itself is the child (see TestMain).

package rag

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gen2brain/go-fitz"

	"silo/testrig/datasets"
	"silo/testrig/pdftest"
)

// envExtractChild makes the test binary act as "silo extract".
const envExtractChild = "SILO_EXTRACT_CHILD"

var updateFixtures = flag.Bool("update", false, "rewrite the generated PDFs in testdata/")

func TestMain(m *testing.M) {
	if os.Getenv(envExtractChild) == "1" {
		os.Exit(ExtractMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// testExtractor runs the test binary as the child. Under -race, a child
// would sleep a second at exit (ThreadSanitizer's atexit_sleep_ms).
func testExtractor() *Extractor {
	return &Extractor{
		Command: []string{os.Args[0]},
		Env: []string{
			envExtractChild + "=1",
			"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
		},
	}
}

// noText lists the sample pages that have no text layer (scans and images),
// as MuPDF reads them.
var noText = map[string]bool{
	"imagemagick-ASCII85Decode.pdf/1":  true,
	"imagemagick-CCITTFaxDecode.pdf/1": true,
	"imagemagick-images.pdf/4":         true,
	"imagemagick-images.pdf/5":         true,
	"imagemagick-lzw.pdf/1":            true,
	"grayscale-image.pdf/1":            true,
	"cmyk-image.pdf/1":                 true,
}

// unreadable lists the sample PDFs that MuPDF cannot read although
// files.json (made with pypdf) counts their pages, and the reason it gives.
var unreadable = map[string]string{
	// "malformed page tree": MuPDF's repair finds no pages.
	"unreadablemetadata.pdf": "the file is not a PDF that can be read: no pages could be found in it",
}

func TestExtractSamplePDFs(t *testing.T) {
	dir, files := datasets.SamplePDFs(t)
	e := testExtractor()
	for name, want := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pdf, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()

			info, err := e.Info(ctx, pdf)
			if reason, ok := unreadable[name]; ok {
				_ = wantExtractError(t, err, ErrNotPDF, reason)
				_, err = e.Extract(ctx, pdf, nil)
				_ = wantExtractError(t, err, ErrNotPDF, reason)
				return
			}
			if want.Encrypted {
				if !errors.Is(err, ErrPasswordProtected) {
					t.Fatalf("Info: got %v, want ErrPasswordProtected", err)
				}
				_, err = e.Extract(ctx, pdf, nil)
				var xe *ExtractError
				if !errors.As(err, &xe) || xe.Reason() != "the PDF is password-protected" {
					t.Fatalf("Extract: got %v, want the PDF is password-protected", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Info: %v", err)
			}
			if info.Pages != want.Pages {
				t.Errorf("Info: got %d pages, want %d", info.Pages, want.Pages)
			}

			var pages []Page
			got, err := e.Extract(ctx, pdf, func(p Page) error {
				pages = append(pages, p)
				return nil
			})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if got != info {
				t.Errorf("Extract: got %+v, want %+v as from Info", got, info)
			}
			if len(pages) != want.Pages {
				t.Fatalf("Extract: got %d pages, want %d", len(pages), want.Pages)
			}
			for i, p := range pages {
				if p.Number != i+1 {
					t.Errorf("page %d: got number %d", i+1, p.Number)
				}
				if p.Error != "" {
					t.Errorf("page %d: %s", p.Number, p.Error)
				}
				hasText := strings.TrimSpace(p.Text) != ""
				if wantText := !noText[fmt.Sprintf("%s/%d", name, p.Number)]; hasText != wantText {
					t.Errorf("page %d: got text %v (%.40q), want %v", p.Number, hasText, p.Text, wantText)
				}
			}
		})
	}
}

func TestExtractTitle(t *testing.T) {
	dir, _ := datasets.SamplePDFs(t)
	for _, tc := range []struct{ file, want string }{
		{"pdflatex-4-pages.pdf", ""}, // no /Title
		{"crazyones-pdfa.pdf", ""},   // /Title()
		{"GeoTopo-komprimiert.pdf", "Geometrie und Topologie"},
		{"google-doc-document.pdf", "PDF Example Document"},
		{"testdata/utf16-title.pdf", "Kraków – Łódź"},
	} {
		path := filepath.Join(dir, tc.file)
		if strings.HasPrefix(tc.file, "testdata/") {
			path = tc.file
		}
		pdf, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		info, err := testExtractor().Info(context.Background(), pdf)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if info.Title != tc.want {
			t.Errorf("%s: got title %q, want %q", tc.file, info.Title, tc.want)
		}
	}
}

func TestExtractText(t *testing.T) {
	pdf := readFixture(t, "two-pages.pdf")
	var pages []Page
	info, err := testExtractor().Extract(context.Background(), pdf, func(p Page) error {
		pages = append(pages, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Info{Pages: 2, Title: "Two pages"}); info != want {
		t.Errorf("got %+v, want %+v", info, want)
	}
	want := []string{"Hello from page one", "And page two"}
	if len(pages) != len(want) {
		t.Fatalf("got %d pages, want %d", len(pages), len(want))
	}
	for i, p := range pages {
		if got := strings.TrimSpace(p.Text); got != want[i] {
			t.Errorf("page %d: got %q, want %q", i+1, got, want[i])
		}
	}
}

// wantExtractError checks that err is an *ExtractError of kind with a reason
// starting with reason.
func wantExtractError(t *testing.T, err, kind error, reason string) *ExtractError {
	t.Helper()
	var xe *ExtractError
	if !errors.As(err, &xe) || !errors.Is(err, kind) {
		t.Fatalf("got error %v, want %v", err, kind)
	}
	if !strings.HasPrefix(xe.Reason(), reason) {
		t.Errorf("got reason %q, want it to start with %q", xe.Reason(), reason)
	}
	t.Logf("reason: %s; log: %.300s", xe.Reason(), xe.Error())
	return xe
}

func TestExtractHostile(t *testing.T) {
	dir, _ := datasets.SamplePDFs(t)
	random := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}

	t.Run("zero bytes", func(t *testing.T) {
		t.Parallel()
		_, err := testExtractor().Extract(context.Background(), nil, nil)
		_ = wantExtractError(t, err, ErrNotPDF, "the file is not a PDF that can be read: the file is empty")
	})
	t.Run("random bytes", func(t *testing.T) {
		t.Parallel()
		_, err := testExtractor().Info(context.Background(), random)
		_ = wantExtractError(t, err, ErrNotPDF, "the file is not a PDF that can be read: no PDF header")
	})
	t.Run("random bytes after a PDF header", func(t *testing.T) {
		t.Parallel()
		pdf := append([]byte("%PDF-1.7\n"), random...)
		_, err := testExtractor().Extract(context.Background(), pdf, nil)
		_ = wantExtractError(t, err, ErrNotPDF, "the file is not a PDF that can be read: ")
	})
	for _, name := range []string{"pdflatex-4-pages.pdf", "002-trivial-libre-office-writer.pdf", "GeoTopo-komprimiert.pdf"} {
		t.Run("truncated "+name, func(t *testing.T) {
			// MuPDF repairs what it can; either the pages that survive are
			// read or the file is refused, but never a crash.
			t.Parallel()
			pdf, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			info, err := testExtractor().Extract(context.Background(), pdf[:len(pdf)/2], nil)
			if err != nil {
				_ = wantExtractError(t, err, ErrNotPDF, "the file is not a PDF that can be read: ")
				return
			}
			t.Logf("half of %s: %d pages", name, info.Pages)
		})
	}
	t.Run("huge page", func(t *testing.T) {
		t.Parallel()
		var pages []Page
		info, err := testExtractor().Extract(context.Background(), readFixture(t, "huge-page.pdf"), func(p Page) error {
			pages = append(pages, p)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if info.Pages != 1 || len(pages) != 1 || !strings.Contains(pages[0].Text, "Huge page") {
			t.Errorf("got %+v and %+v, want one page with its text", info, pages)
		}
	})
	t.Run("form bomb times out", func(t *testing.T) {
		t.Parallel()
		e := testExtractor()
		e.Timeout = 2 * time.Second
		start := time.Now()
		_, err := e.Extract(context.Background(), readFixture(t, "form-bomb.pdf"), nil)
		_ = wantExtractError(t, err, ErrTimeout, "timed out after 2 s")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v, want about 2 s", d)
		}
	})
}

func TestExtractPasswordProtected(t *testing.T) {
	dir, _ := datasets.SamplePDFs(t)
	pdf, err := os.ReadFile(filepath.Join(dir, "libreoffice-writer-password.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = testExtractor().Info(context.Background(), pdf)
	_ = wantExtractError(t, err, ErrPasswordProtected, "the PDF is password-protected")
}

func TestExtractTimeout(t *testing.T) {
	pdf := bigPDF(t)
	for _, timeout := range []time.Duration{time.Millisecond, 50 * time.Millisecond} {
		e := testExtractor()
		e.Timeout = timeout
		_, err := e.Extract(context.Background(), pdf, nil)
		_ = wantExtractError(t, err, ErrTimeout, "timed out after "+formatSeconds(timeout))
	}
}

func TestExtractCancel(t *testing.T) {
	pdf := bigPDF(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pages := 0
	_, err := testExtractor().Extract(ctx, pdf, func(p Page) error {
		pages++
		if p.Number == 1 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	var xe *ExtractError
	if errors.As(err, &xe) {
		t.Errorf("got an *ExtractError (%v); a cancelled extraction is not the PDF's fault", err)
	}
}

func TestExtractCallbackError(t *testing.T) {
	pdf := bigPDF(t)
	stop := errors.New("stop here")
	pages := 0
	_, err := testExtractor().Extract(context.Background(), pdf, func(p Page) error {
		pages++
		if p.Number == 3 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("got %v, want the callback's error", err)
	}
	if pages != 3 {
		t.Errorf("got %d pages, want the callback to stop at 3", pages)
	}
}

func TestExtractMaxOutput(t *testing.T) {
	e := testExtractor()
	e.MaxOutput = 1000
	_, err := e.Extract(context.Background(), bigPDF(t), nil)
	_ = wantExtractError(t, err, ErrTextTooLarge, "the PDF's text is too large")
}

func TestExtractMemoryLimit(t *testing.T) {
	// The limit is RLIMIT_DATA, and the Go runtime with its thread stacks
	// takes about 110 MB of it before any work (about 430 MB under -race).
	base := 128
	if raceEnabled() {
		base = 480
	}
	for _, tc := range []struct {
		name     string
		pdf      []byte
		memoryMB int
		reason   string
	}{
		// The Go runtime or the race detector cannot even start: it says it
		// ran out of memory, or (when an allocation fails where it cannot
		// say so) dies of a segmentation fault.
		{"runtime", bigPDF(t), 64, "the PDF could not be read: the reader "},
		// MuPDF's text device grows until malloc fails; MuPDF survives that
		// and reports the page as failed.
		{"MuPDF", readFixture(t, "form-bomb.pdf"), base + 128, "the PDF could not be read: its only page could not be read (cannot run page contents)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := testExtractor()
			e.MemoryMB = tc.memoryMB
			start := time.Now()
			_, err := e.Extract(context.Background(), tc.pdf, nil)
			xe := wantExtractError(t, err, ErrReaderFailed, tc.reason)
			if xe.Stderr == "" {
				t.Error("got no stderr for the log")
			}
			t.Logf("took %v", time.Since(start))
		})
	}
}

// raceEnabled tells whether the test binary was built with -race.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestExtractChildDies runs children that are not silo at all, to show that
// the parent survives whatever the child does.
func TestExtractChildDies(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	for _, tc := range []struct {
		name, script string
		kind         error
		reason       string
	}{
		{"killed at once", `kill -9 $$`, ErrReaderFailed, "the PDF could not be read: the reader stopped (signal: killed)"},
		{"killed mid-way", `echo '{"pages":3}'; echo '{"n":1,"text":"one"}'; kill -9 $$`, ErrReaderFailed, "the PDF could not be read: the reader stopped (signal: killed)"},
		{"aborted", `echo '{"pages":3}'; kill -ABRT $$`, ErrReaderFailed, "the PDF could not be read: the reader stopped (signal: aborted)"},
		{"exits early", `echo '{"pages":3}'; echo '{"n":1,"text":"one"}'`, ErrReaderFailed, "the PDF could not be read: the reader stopped after 1 of 3 pages"},
		{"too large", `echo '{"error":"too-large"}'; exit 5`, ErrPDFTooLarge, "the PDF is too large to read: it is over 512 MiB"},
		{"out of memory", `echo 'fatal error: runtime: out of memory' >&2; exit 2`, ErrReaderFailed, "the PDF could not be read: the reader ran out of memory (limit 1024 MB)"},
		{"crashes", `printf 'SIGSEGV: segmentation violation\nPC=0x0\n' >&2; exit 2`, ErrReaderFailed, "the PDF could not be read: the reader crashed (SIGSEGV: segmentation violation)"},
		{"fails", `echo oops >&2; exit 7`, ErrReaderFailed, "the PDF could not be read: the reader stopped (exit status 7)"},
		{"says nothing", `exit 0`, ErrReaderFailed, "the PDF could not be read: the reader stopped before it said anything"},
		{"garbage", `echo 'not json'; sleep 60`, ErrReaderFailed, "the PDF could not be read: the reader's output is not JSON lines"},
		{"pages out of order", `echo '{"pages":2}'; echo '{"n":2,"text":"two"}'`, ErrReaderFailed, "the PDF could not be read: the reader wrote page 2 where page 1 was due"},
		{"endless output", `echo '{"pages":1}'; printf '{"n":1,"text":"'; yes x | tr -d '\n'`, ErrTextTooLarge, "the PDF's text is too large"},
		{"hangs", `echo '{"pages":1}'; sleep 60`, ErrTimeout, "timed out after 0.5 s"},
		{"hangs in a grandchild", `(sleep 60; echo late) & echo '{"pages":1}'; wait`, ErrTimeout, "timed out after 0.5 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &Extractor{Command: []string{"sh", "-c", tc.script}, Timeout: 500 * time.Millisecond, MaxOutput: 1 << 20}
			start := time.Now()
			_, err := e.Extract(context.Background(), []byte("%PDF-1.4 not read"), nil)
			_ = wantExtractError(t, err, tc.kind, tc.reason)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v, want the child gone at once", d)
			}
		})
	}
}

func TestExtractNoCommand(t *testing.T) {
	_, err := (&Extractor{}).Info(context.Background(), []byte("%PDF-"))
	if err == nil {
		t.Fatal("got no error without a command")
	}
	_, err = (&Extractor{Command: []string{"/nonexistent/silo"}}).Info(context.Background(), []byte("%PDF-"))
	var xe *ExtractError
	if err == nil || errors.As(err, &xe) {
		t.Fatalf("got %v, want a plain error (the server's fault, not the PDF's)", err)
	}
}

func TestExtractReason(t *testing.T) {
	for _, tc := range []struct {
		err  *ExtractError
		want string
	}{
		{&ExtractError{Kind: ErrPasswordProtected}, "the PDF is password-protected"},
		{&ExtractError{Kind: ErrNotPDF, Detail: "no PDF header"}, "the file is not a PDF that can be read: no PDF header"},
		{&ExtractError{Kind: ErrTimeout, Detail: "after " + formatSeconds(60*time.Second)}, "timed out after 60 s"},
		{&ExtractError{Kind: ErrTimeout, Detail: "after " + formatSeconds(1500*time.Millisecond)}, "timed out after 1.5 s"},
		{&ExtractError{Kind: ErrReaderFailed, Detail: "the reader stopped (signal: killed)"}, "the PDF could not be read: the reader stopped (signal: killed)"},
		{&ExtractError{Kind: ErrTextTooLarge}, "the PDF's text is too large"},
	} {
		if got := tc.err.Reason(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// bigPDF is the largest sample: 117 pages of a German thesis.
func bigPDF(t *testing.T) []byte {
	t.Helper()
	pdf, err := os.ReadFile(filepath.Join(datasets.Dir(t, "sample-pdfs"), "GeoTopo-komprimiert.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	return pdf
}

// fixtures are the PDFs in testdata/, written by hand; go test -run
// TestFixtures -update rewrites them.
var fixtures = map[string]func() []byte{
	"two-pages.pdf": func() []byte {
		return pdftest.Minimal("(Two pages)", "[0 0 612 792]", "Hello from page one", "And page two")
	},
	// A page of 14,400,000 points square (about 5 km): MuPDF clamps it, and
	// a renderer could be asked for a pixmap of petabytes.
	"huge-page.pdf": func() []byte {
		return pdftest.Minimal("()", "[0 0 14400000 14400000]", "Huge page")
	},
	// A title in UTF-16BE with a byte-order mark, as PDF writers do for
	// anything beyond Latin-1.
	"utf16-title.pdf": func() []byte {
		return pdftest.Minimal(pdftest.UTF16BE("Kraków – Łódź"), "[0 0 612 792]", "Title test")
	},
	// Ten levels of forms, each drawing the next ten times: 10^10 strings.
	"form-bomb.pdf": pdftest.FormBomb,
}

func TestFixtures(t *testing.T) {
	for name, gen := range fixtures {
		path := filepath.Join("testdata", name)
		want := gen()
		if *updateFixtures {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go test -run TestFixtures -update ./rag/", path)
		}
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkExtractSquad reads the text of every page of the SQuAD PDFs, one
// file after the other: with the child process (what the server does), with
// go-fitz in this process (the cost of MuPDF alone) and, when it is on PATH,
// with mutool draw -F txt (Debian's mupdf-tools), so the three compare in
// one run.
func BenchmarkExtractSquad(b *testing.B) {
	dir := datasets.Dir(b, "squad-pdfs")
	paths, _ := filepath.Glob(filepath.Join(dir, "*.pdf"))
	if len(paths) == 0 {
		b.Fatalf("no PDFs in %s", dir)
	}
	pdfs := make([][]byte, len(paths))
	pages := 0
	for i, p := range paths {
		var err error
		if pdfs[i], err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
		info, err := testExtractor().Info(context.Background(), pdfs[i])
		if err != nil {
			b.Fatalf("%s: %v", p, err)
		}
		pages += info.Pages
	}
	// report gives pages/s of wall-clock time and, since a busy machine
	// skews that, CPU time per page of this process and its children.
	report := func(b *testing.B, cpu0 time.Duration) {
		b.ReportMetric(float64(pages*b.N)/b.Elapsed().Seconds(), "pages/s")
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(pages*b.N), "cpu-ms/page")
		b.ReportMetric(0, "ns/op")
	}

	b.Run("child", func(b *testing.B) {
		e := testExtractor()
		cpu0 := cpuTime()
		for b.Loop() {
			n := 0
			for _, pdf := range pdfs {
				_, err := e.Extract(context.Background(), pdf, func(Page) error { n++; return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			if n != pages {
				b.Fatalf("got %d pages, want %d", n, pages)
			}
		}
		report(b, cpu0)
	})
	b.Run("in-process", func(b *testing.B) {
		cpu0 := cpuTime()
		for b.Loop() {
			for _, pdf := range pdfs {
				doc, err := fitz.NewFromMemory(pdf)
				if err != nil {
					b.Fatal(err)
				}
				for i := range doc.NumPage() {
					if _, err := doc.Text(i); err != nil {
						b.Fatal(err)
					}
				}
				doc.Close()
			}
		}
		report(b, cpu0)
	})
	b.Run("mutool", func(b *testing.B) {
		mutool, err := exec.LookPath("mutool")
		if err != nil {
			b.Skip("mutool is not on PATH (Debian: apt-get install mupdf-tools)")
		}
		cpu0 := cpuTime()
		for b.Loop() {
			for _, p := range paths {
				if out, err := exec.Command(mutool, "draw", "-q", "-F", "txt", "-o", "/dev/null", p).CombinedOutput(); err != nil {
					b.Fatalf("mutool %s: %v: %s", p, err, out)
				}
			}
		}
		report(b, cpu0)
	})
}

// cpuTime is the CPU time, user and system, of this process and of its
// children that have been waited for.
func cpuTime() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// TestExtractStart checks the child that an upload starts and a worker
// reads: one child says what the PDF is, then reads its pages on demand;
// its timeout does not run while it waits, and a closed one is gone.
func TestExtractStart(t *testing.T) {
	pdf := readFixture(t, "two-pages.pdf")
	ctx := context.Background()
	e := testExtractor()
	e.Timeout = 2 * time.Second

	x, err := e.Start(ctx, pdf)
	if err != nil {
		t.Fatal(err)
	}
	if x.Info().Pages != 2 {
		t.Fatalf("got %d pages, want 2", x.Info().Pages)
	}
	time.Sleep(3 * time.Second) // longer than the timeout: it does not run while the child waits
	var pages []Page
	if err := x.Pages(ctx, func(p Page) error {
		pages = append(pages, p)
		return nil
	}); err != nil {
		t.Fatalf("Pages after a wait: %v", err)
	}
	if len(pages) != 2 || !strings.Contains(pages[1].Text, "two") {
		t.Errorf("got pages %+v, want 2, the second with its text", pages)
	}
	x.Close() // after Pages: does nothing

	x, err = e.Start(ctx, pdf)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	if err := syscall.Kill(x.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the closed child is still there (kill -0: %v)", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	x, err = e.Start(ctx, pdf)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := x.Pages(cancelled, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Pages with a cancelled context: got %v, want context.Canceled", err)
	}

	_, err = e.Start(ctx, []byte("%PDF-1.4 nothing else"))
	_ = wantExtractError(t, err, ErrNotPDF, "the file is not a PDF that can be read")
}
