// Tests of reading a PDF's text through Extractor, the supervisor of the
// reader child (the test binary, see TestMain in main_test.go): real PDFs,
// limits, cancellation and Start.

package pdf_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gen2brain/go-fitz"

	"silo/pdf"
	"silo/testrig/datasets"
	"silo/testrig/pdfchild"
)

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
	e := pdfchild.Extractor()
	for name, want := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()

			info, err := startInfo(ctx, e, file)
			if reason, ok := unreadable[name]; ok {
				_ = wantExtractError(t, err, pdf.ErrNotPDF, reason)
				_, err = e.Extract(ctx, file, nil)
				_ = wantExtractError(t, err, pdf.ErrNotPDF, reason)
				return
			}
			if want.Encrypted {
				if !errors.Is(err, pdf.ErrPasswordProtected) {
					t.Fatalf("Start: got %v, want ErrPasswordProtected", err)
				}
				_, err = e.Extract(ctx, file, nil)
				var xe *pdf.ExtractError
				if !errors.As(err, &xe) || xe.Reason() != "the PDF is password-protected" {
					t.Fatalf("Extract: got %v, want the PDF is password-protected", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if info.Pages != want.Pages {
				t.Errorf("Start: got %d pages, want %d", info.Pages, want.Pages)
			}

			var pages []pdf.Page
			got, err := e.Extract(ctx, file, func(p pdf.Page) error {
				pages = append(pages, p)
				return nil
			})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if got != info {
				t.Errorf("Extract: got %+v, want %+v as from Start", got, info)
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
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		info, err := startInfo(context.Background(), pdfchild.Extractor(), file)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if info.Title != tc.want {
			t.Errorf("%s: got title %q, want %q", tc.file, info.Title, tc.want)
		}
	}
}

func TestExtractText(t *testing.T) {
	file := readFixture(t, "two-pages.pdf")
	var pages []pdf.Page
	info, err := pdfchild.Extractor().Extract(context.Background(), file, func(p pdf.Page) error {
		pages = append(pages, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (pdf.Info{Pages: 2, Title: "Two pages"}); info != want {
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

func TestExtractPasswordProtected(t *testing.T) {
	dir, _ := datasets.SamplePDFs(t)
	file, err := os.ReadFile(filepath.Join(dir, "libreoffice-writer-password.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = startInfo(context.Background(), pdfchild.Extractor(), file)
	_ = wantExtractError(t, err, pdf.ErrPasswordProtected, "the PDF is password-protected")
}

func TestExtractTimeout(t *testing.T) {
	file := bigPDF(t)
	for _, tc := range []struct {
		timeout time.Duration
		reason  string
	}{
		{time.Millisecond, "timed out after 0.001 s"},
		{50 * time.Millisecond, "timed out after 0.05 s"},
	} {
		e := pdfchild.Extractor()
		e.Timeout = tc.timeout
		_, err := e.Extract(context.Background(), file, nil)
		_ = wantExtractError(t, err, pdf.ErrTimeout, tc.reason)
	}
}

func TestExtractCancel(t *testing.T) {
	file := bigPDF(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pages := 0
	_, err := pdfchild.Extractor().Extract(ctx, file, func(p pdf.Page) error {
		pages++
		if p.Number == 1 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	var xe *pdf.ExtractError
	if errors.As(err, &xe) {
		t.Errorf("got an *ExtractError (%v); a cancelled extraction is not the PDF's fault", err)
	}
}

func TestExtractCallbackError(t *testing.T) {
	file := bigPDF(t)
	stop := errors.New("stop here")
	pages := 0
	_, err := pdfchild.Extractor().Extract(context.Background(), file, func(p pdf.Page) error {
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
	e := pdfchild.Extractor()
	e.MaxOutput = 1000
	_, err := e.Extract(context.Background(), bigPDF(t), nil)
	_ = wantExtractError(t, err, pdf.ErrTextTooLarge, "the PDF's text is too large")
}

func TestExtractNoCommand(t *testing.T) {
	_, err := startInfo(context.Background(), &pdf.Extractor{}, []byte("%PDF-"))
	if err == nil {
		t.Fatal("got no error without a command")
	}
	_, err = startInfo(context.Background(), &pdf.Extractor{Command: []string{"/nonexistent/silo"}}, []byte("%PDF-"))
	var xe *pdf.ExtractError
	if err == nil || errors.As(err, &xe) {
		t.Fatalf("got %v, want a plain error (the server's fault, not the PDF's)", err)
	}
}

// TestExtractStart checks the child that an upload starts and a worker
// reads: one child says what the PDF is, then reads its pages on demand;
// its timeout does not run while it waits, and a closed one is gone.
func TestExtractStart(t *testing.T) {
	file := readFixture(t, "two-pages.pdf")
	ctx := context.Background()
	e := pdfchild.Extractor()
	e.Timeout = 2 * time.Second

	x, err := e.Start(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if x.Info().Pages != 2 {
		t.Fatalf("got %d pages, want 2", x.Info().Pages)
	}
	time.Sleep(3 * time.Second) // longer than the timeout: it does not run while the child waits
	var pages []pdf.Page
	if err := x.Pages(ctx, func(p pdf.Page) error {
		pages = append(pages, p)
		return nil
	}); err != nil {
		t.Fatalf("Pages after a wait: %v", err)
	}
	if len(pages) != 2 || !strings.Contains(pages[1].Text, "two") {
		t.Errorf("got pages %+v, want 2, the second with its text", pages)
	}
	x.Close() // after Pages: does nothing

	x, err = e.Start(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	if err := syscall.Kill(x.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the closed child is still there (kill -0: %v)", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	x, err = e.Start(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := x.Pages(cancelled, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Pages with a cancelled context: got %v, want context.Canceled", err)
	}

	_, err = e.Start(ctx, []byte("%PDF-1.4 nothing else"))
	_ = wantExtractError(t, err, pdf.ErrNotPDF, "the file is not a PDF that can be read")
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
		info, err := startInfo(context.Background(), pdfchild.Extractor(), pdfs[i])
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
		e := pdfchild.Extractor()
		cpu0 := cpuTime()
		for b.Loop() {
			n := 0
			for _, file := range pdfs {
				_, err := e.Extract(context.Background(), file, func(pdf.Page) error { n++; return nil })
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
			for _, file := range pdfs {
				doc, err := fitz.NewFromMemory(file)
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
