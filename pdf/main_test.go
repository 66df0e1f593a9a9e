// The test binary is also the reader child (TestMain, with package
// pdfchild), and the helpers the reader's tests share: extractors, the
// fixtures in testdata and the check of an extraction error.

package pdf_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"silo/pdf"
	"silo/testrig/datasets"
	"silo/testrig/pdfchild"
	"silo/testrig/pdftest"
)

var updateFixtures = flag.Bool("update", false, "rewrite the generated PDFs in testdata/")

// TestMain runs the test binary as the reader child when a
// pdfchild.Extractor started it, and the tests otherwise.
func TestMain(m *testing.M) {
	pdfchild.Run()
	os.Exit(m.Run())
}

// fakeReader is an Extractor whose child is a shell script.
func fakeReader(script string) *pdf.Extractor {
	return &pdf.Extractor{Command: []string{"sh", "-c", script}}
}

// startInfo starts a child on file (Extractor.Start), closes it and returns
// what it said of the PDF.
func startInfo(ctx context.Context, e *pdf.Extractor, file []byte) (pdf.Info, error) {
	x, err := e.Start(ctx, file)
	if err != nil {
		return pdf.Info{}, err
	}
	defer x.Close()
	return x.Info(), nil
}

// wantExtractError checks that err is an *ExtractError of kind with a reason
// starting with reason.
func wantExtractError(t *testing.T, err, kind error, reason string) *pdf.ExtractError {
	t.Helper()
	var xe *pdf.ExtractError
	if !errors.As(err, &xe) || !errors.Is(err, kind) {
		t.Fatalf("got error %v, want %v", err, kind)
	}
	if !strings.HasPrefix(xe.Reason(), reason) {
		t.Errorf("got reason %q, want it to start with %q", xe.Reason(), reason)
	}
	t.Logf("reason: %s; log: %.300s", xe.Reason(), xe.Error())
	return xe
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

// bigPDF is the largest sample: 117 pages of a German thesis.
func bigPDF(t *testing.T) []byte {
	t.Helper()
	file, err := os.ReadFile(filepath.Join(datasets.Dir(t, "sample-pdfs"), "GeoTopo-komprimiert.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	return file
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

// TestFixtures checks that the PDFs in testdata/ are what their generators
// make.
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
			t.Errorf("%s is out of date: run go test -run TestFixtures -update ./pdf/", path)
		}
	}
}

// readFixture reads a file of testdata/.
func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
