// Tests of page images: drawing a page in the PDF reader child (the test
// binary, see TestMain in main_test.go).

package pdf_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"testing"
	"time"

	"silo/pdf"
	"silo/testrig/datasets"
	"silo/testrig/pdfchild"
	"silo/testrig/pdftest"
)

// decodePageImage decodes a page image and checks it against the limits.
func decodePageImage(t *testing.T, img []byte) image.Image {
	t.Helper()
	m, err := png.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("the page image is not a PNG: %v", err)
	}
	b := m.Bounds()
	if b.Dx() < 1 || b.Dy() < 1 || b.Dx() > pdf.MaxPageImageWidth || b.Dx()*b.Dy() > pdf.MaxPageImagePixels {
		t.Fatalf("got a page image of %d × %d pixels, want at most %d wide and %d pixels", b.Dx(), b.Dy(), pdf.MaxPageImageWidth, pdf.MaxPageImagePixels)
	}
	return m
}

// usesBudget tells whether an image is about as large as the limits allow:
// nearly the full width, or (for a tall page) nearly all the pixels.
func usesBudget(m image.Image) bool {
	b := m.Bounds()
	return b.Dx() >= pdf.MaxPageImageWidth*99/100 || b.Dx()*b.Dy() >= pdf.MaxPageImagePixels*97/100
}

// Real pages, of text and of images, rotated or not, come out as PNGs as
// large as the limits allow, with something drawn on them.
func TestRenderSamplePages(t *testing.T) {
	for _, tc := range []struct {
		folder, name string
		page         int
		full         bool // a page of a usual size: as large as the limits allow
	}{
		{"squad-pdfs", "1973-oil-crisis.pdf", 1, true},
		{"squad-pdfs", "black-death.pdf", 2, true},
		{"sample-pdfs", "pdflatex-4-pages.pdf", 4, true},
		{"sample-pdfs", "habibi-rotated.pdf", 1, true},
		{"sample-pdfs", "cmyk-image.pdf", 1, true},
		{"sample-pdfs", "GeoTopo-komprimiert.pdf", 60, true},
		// Pages a few points wide (with a broken ICC profile).
		{"sample-pdfs", "imagemagick-images.pdf", 1, false},
		{"sample-pdfs", "imagemagick-images.pdf", 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, err := pdfchild.Extractor().Render(context.Background(), datasets.Read(t, tc.folder, tc.name), tc.page)
			if err != nil {
				t.Fatal(err)
			}
			m := decodePageImage(t, img)
			if tc.full && !usesBudget(m) {
				t.Errorf("got %v, want the full width or nearly all the pixels", m.Bounds().Size())
			}
			if pdftest.Inked(m) == 0 {
				t.Error("the page image is blank")
			}
			t.Logf("%d × %d pixels, %d KB", m.Bounds().Dx(), m.Bounds().Dy(), len(img)>>10)
		})
	}
}

// Whatever size a page claims, from a point to kilometres, in either
// direction, its image stays within the limits.
func TestRenderPageSizes(t *testing.T) {
	for _, tc := range []struct {
		name, mediaBox string
		file           []byte
		full           bool // a usual page: as large as the limits allow
	}{
		{name: "A4", mediaBox: "[0 0 595 842]", full: true},
		{name: "landscape", mediaBox: "[0 0 842 595]", full: true},
		{name: "legal", mediaBox: "[0 0 612 1008]", full: true},
		{name: "fractional", mediaBox: "[0.4 0.6 612.9 792.9]", full: true},
		{name: "negative origin", mediaBox: "[-300.5 -400.5 300.5 400.5]", full: true},
		{name: "tiny", mediaBox: "[0 0 1 1]"},
		{name: "wide strip", mediaBox: "[0 0 14400 1]"},
		{name: "tall strip", mediaBox: "[0 0 1 14400]"},
		{name: "empty", mediaBox: "[0 0 0 0]"},
		{name: "huge", file: readFixture(t, "huge-page.pdf")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := tc.file
			if file == nil {
				file = pdftest.Minimal("()", tc.mediaBox, "Page")
			}
			img, err := pdfchild.Extractor().Render(context.Background(), file, 1)
			if err != nil {
				t.Fatal(err)
			}
			m := decodePageImage(t, img)
			if tc.full && !usesBudget(m) {
				t.Errorf("got %v, want the full width or nearly all the pixels", m.Bounds().Size())
			}
			t.Logf("%d × %d pixels", m.Bounds().Dx(), m.Bounds().Dy())
		})
	}
}

// pngOf encodes a blank image of w × h pixels.
func pngOf(t *testing.T, w, h int) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// pageErrorCase is a call on a page that fails: e reading page of file
// gives an *ExtractError of kind whose reason starts with reason.
type pageErrorCase struct {
	name   string
	e      *pdf.Extractor
	file   []byte
	page   int
	kind   error
	reason string
}

// pageErrorCases are the failures Render and Locate share (a page that is
// not there, a PDF that cannot be read, a reader that hangs, is killed or
// stops early), then more. stopped is what the reader that stops early did
// not get to, e.g. "drew the page".
func pageErrorCases(t *testing.T, stopped string, more ...pageErrorCase) []pageErrorCase {
	t.Helper()
	twoPages := readFixture(t, "two-pages.pdf")
	slow := pdfchild.Extractor()
	slow.Timeout = 2 * time.Second
	return append([]pageErrorCase{
		{"page 0", pdfchild.Extractor(), twoPages, 0, pdf.ErrNoPage, "the PDF has no such page: page 0"},
		{"page after the last", pdfchild.Extractor(), twoPages, 3, pdf.ErrNoPage, "the PDF has no such page: page 3 of 2"},
		{"not a PDF", pdfchild.Extractor(), []byte("hello"), 1, pdf.ErrNotPDF, "the file is not a PDF that can be read: no PDF header"},
		{"form bomb", slow, readFixture(t, "form-bomb.pdf"), 1, pdf.ErrTimeout, "timed out after 2 s"},
		{"reader killed", fakeReader(`echo '{"pages":2}'; kill -9 $$`), twoPages, 1, pdf.ErrReaderFailed, "the PDF could not be read: the reader stopped (signal: killed)"},
		{"reader stops", fakeReader(`echo '{"pages":2}'`), twoPages, 1, pdf.ErrReaderFailed, "the PDF could not be read: the reader stopped before it " + stopped},
	}, more...)
}

// testPageErrors runs each case in a parallel subtest. call makes the
// case's call and says what it got besides the error ("" for nothing),
// which is wrong: a failed call gives nothing.
func testPageErrors(t *testing.T, cases []pageErrorCase, call func(tc pageErrorCase) (got string, err error)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := call(tc)
			if got != "" {
				t.Errorf("got %s, want none", got)
			}
			_ = wantExtractError(t, err, tc.kind, tc.reason)
		})
	}
}

// A page that is not there, a PDF that cannot be read and a reader that
// fails, hangs or lies each give an *ExtractError that says so.
func TestRenderErrors(t *testing.T) {
	twoPages := readFixture(t, "two-pages.pdf")
	password := datasets.Read(t, "sample-pdfs", "libreoffice-writer-password.pdf")
	cases := pageErrorCases(t, "drew the page",
		pageErrorCase{"password", pdfchild.Extractor(), password, 1, pdf.ErrPasswordProtected, "the PDF is password-protected"},
		pageErrorCase{"thinner than a pixel", pdfchild.Extractor(), pdftest.Minimal("()", "[0 0 14400000 3]", "Page"), 1, pdf.ErrReaderFailed, "the PDF could not be read: the reader failed (page 1 is too thin to draw)"},
		pageErrorCase{"not a PNG", fakeReader(`echo '{"pages":2}'; echo '{"n":1,"png":"aGVsbG8="}'`), twoPages, 1, pdf.ErrReaderFailed, "the PDF could not be read: the reader's image is not a PNG"},
		pageErrorCase{"too wide", fakeReader(`echo '{"pages":2}'; echo '{"n":1,"png":"` + pngOf(t, pdf.MaxPageImageWidth+1, 10) + `"}'`), twoPages, 1, pdf.ErrReaderFailed, "the PDF could not be read: the reader's image is 1001 × 10 pixels, outside the limits"},
		pageErrorCase{"too many pixels", fakeReader(`echo '{"pages":2}'; echo '{"n":1,"png":"` + pngOf(t, 100, pdf.MaxPageImagePixels/100+1) + `"}'`), twoPages, 1, pdf.ErrReaderFailed, "the PDF could not be read: the reader's image is 100 × 15001 pixels, outside the limits"},
		pageErrorCase{"another page", fakeReader(`echo '{"pages":2}'; echo '{"n":2,"png":"` + pngOf(t, 10, 10) + `"}'`), twoPages, 1, pdf.ErrReaderFailed, "the PDF could not be read: the reader drew page 2 where page 1 was due"},
	)
	testPageErrors(t, cases, func(tc pageErrorCase) (string, error) {
		img, err := tc.e.Render(context.Background(), tc.file, tc.page)
		if img != nil {
			return fmt.Sprintf("an image of %d bytes", len(img)), err
		}
		return "", err
	})
}
