// Tests of the reader child on hostile input and under its memory limit:
// whatever the PDF, it is refused or read, and the parent says why.

package pdf_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"silo/pdf"
	"silo/testrig/datasets"
	"silo/testrig/pdfchild"
)

func TestExtractHostile(t *testing.T) {
	dir, _ := datasets.SamplePDFs(t)
	random := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}

	t.Run("zero bytes", func(t *testing.T) {
		t.Parallel()
		_, err := pdfchild.Extractor().Extract(context.Background(), nil, nil)
		_ = wantExtractError(t, err, pdf.ErrNotPDF, "the file is not a PDF that can be read: the file is empty")
	})
	t.Run("random bytes", func(t *testing.T) {
		t.Parallel()
		_, err := startInfo(context.Background(), pdfchild.Extractor(), random)
		_ = wantExtractError(t, err, pdf.ErrNotPDF, "the file is not a PDF that can be read: no PDF header")
	})
	t.Run("random bytes after a PDF header", func(t *testing.T) {
		t.Parallel()
		file := append([]byte("%PDF-1.7\n"), random...)
		_, err := pdfchild.Extractor().Extract(context.Background(), file, nil)
		_ = wantExtractError(t, err, pdf.ErrNotPDF, "the file is not a PDF that can be read: ")
	})
	for _, name := range []string{"pdflatex-4-pages.pdf", "002-trivial-libre-office-writer.pdf", "GeoTopo-komprimiert.pdf"} {
		t.Run("truncated "+name, func(t *testing.T) {
			// MuPDF repairs what it can; either the pages that survive are
			// read or the file is refused, but never a crash.
			t.Parallel()
			file, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			info, err := pdfchild.Extractor().Extract(context.Background(), file[:len(file)/2], nil)
			if err != nil {
				_ = wantExtractError(t, err, pdf.ErrNotPDF, "the file is not a PDF that can be read: ")
				return
			}
			t.Logf("half of %s: %d pages", name, info.Pages)
		})
	}
	t.Run("huge page", func(t *testing.T) {
		t.Parallel()
		var pages []pdf.Page
		info, err := pdfchild.Extractor().Extract(context.Background(), readFixture(t, "huge-page.pdf"), func(p pdf.Page) error {
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
		e := pdfchild.Extractor()
		e.Timeout = 2 * time.Second
		start := time.Now()
		_, err := e.Extract(context.Background(), readFixture(t, "form-bomb.pdf"), nil)
		_ = wantExtractError(t, err, pdf.ErrTimeout, "timed out after 2 s")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v, want about 2 s", d)
		}
	})
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
		file     []byte
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
			e := pdfchild.Extractor()
			e.MemoryMB = tc.memoryMB
			start := time.Now()
			_, err := e.Extract(context.Background(), tc.file, nil)
			xe := wantExtractError(t, err, pdf.ErrReaderFailed, tc.reason)
			if xe.Stderr == "" {
				t.Error("got no stderr for the log")
			}
			t.Logf("took %v", time.Since(start))
		})
	}
}
