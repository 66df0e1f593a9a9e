// Page images: one page of a PDF drawn as a PNG by the PDF reader child.
//
// Drawing a page is MuPDF at its most exposed (a hostile page size once made
// it abort the whole process), so it happens only in the reader child
// (child.go), with the same timeout, memory limit and output cap as reading
// text. In render mode (SILO_EXTRACT_MODE=render, SILO_EXTRACT_PAGE=n) the
// child writes the usual first line and then the image, base64 in JSON:
//
//	{"pages":3,"title":"A title"}
//	{"n":2,"png":"iVBORw0KGgo…"}
//
// or {"error":"…"} in place of the second line when page n cannot be drawn.
//
// The image's size does not follow the page's: the child picks the
// resolution from the page's bounds so that the image is at most
// MaxPageImageWidth pixels wide and MaxPageImagePixels in all, before MuPDF
// allocates anything, and the parent checks the PNG it gets against the same
// limits.

package pdf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/gen2brain/go-fitz"
)

// Limits of a page image. A page is drawn as wide as MaxPageImageWidth
// unless that would make it more than MaxPageImagePixels: A4 (1000 × 1414)
// and US Letter (1000 × 1294) pages get the full width, a taller page is
// drawn narrower. At 4 bytes a pixel MuPDF's pixmap then stays under 6 MiB
// whatever the PDF says its page measures, and the PNG is typically
// 50–300 KB.
const (
	// MaxPageImageWidth is the widest page image, in pixels: sharp in a
	// column beside the chat, also on a high-density screen.
	MaxPageImageWidth = 1000
	// MaxPageImagePixels bounds a page image's width times its height.
	MaxPageImagePixels = 1_500_000
)

// ErrNoPage means the PDF has no page of that number.
var ErrNoPage = errors.New("the PDF has no such page")

// envExtractPage is the page (from 1) the render child draws.
const envExtractPage = "SILO_EXTRACT_PAGE"

// modeRender is SILO_EXTRACT_MODE for drawing one page.
const modeRender = "render"

// childErrNoPage is the child's error code for a page out of range.
const childErrNoPage = "no-page"

// imageLine is the render child's second line.
type imageLine struct {
	N     int    `json:"n"`
	PNG   []byte `json:"png,omitempty"`
	Error string `json:"error,omitempty"`
}

// Render draws page n (from 1) of pdf as a PNG in a child process, within
// MaxPageImageWidth and MaxPageImagePixels, under the Extractor's limits.
// A page the PDF does not have is an *ExtractError of ErrNoPage; other
// failures are as for Extract.
func (e *Extractor) Render(ctx context.Context, pdf []byte, n int) ([]byte, error) {
	p, err := e.runPage(ctx, pdf, n, modeRender)
	if err != nil {
		return nil, err
	}
	if p.Number != n {
		return nil, &ExtractError{Kind: ErrReaderFailed, Detail: fmt.Sprintf("the reader drew page %d where page %d was due", p.Number, n)}
	}
	if err := checkPageImage(p.png); err != nil {
		return nil, &ExtractError{Kind: ErrReaderFailed, Detail: err.Error()}
	}
	return p.png, nil
}

// runPage runs a child in mode on page n (from 1) of pdf, with env added
// to its environment, and returns what it wrote of the page. A page the PDF
// does not have is an *ExtractError of ErrNoPage.
func (e *Extractor) runPage(ctx context.Context, pdf []byte, n int, mode string, env ...string) (Page, error) {
	if n < 1 {
		return Page{}, &ExtractError{Kind: ErrNoPage, Detail: "page " + strconv.Itoa(n)}
	}
	child := *e
	child.Env = append(append(slices.Clip(e.Env), envExtractPage+"="+strconv.Itoa(n)), env...)
	var got Page
	info, err := child.run(ctx, pdf, mode, func(p Page) error {
		got = p
		return nil
	})
	if n > info.Pages && info.Pages > 0 {
		return Page{}, &ExtractError{Kind: ErrNoPage, Detail: fmt.Sprintf("page %d of %d", n, info.Pages)}
	}
	if err != nil {
		return Page{}, err
	}
	return got, nil
}

// checkPageImage makes sure the child's image is a PNG within the limits:
// the server sends it to browsers as one.
func checkPageImage(img []byte) error {
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return fmt.Errorf("the reader's image is not a PNG (%w)", err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxPageImageWidth || cfg.Width*cfg.Height > MaxPageImagePixels {
		return fmt.Errorf("the reader's image is %d × %d pixels, outside the limits", cfg.Width, cfg.Height)
	}
	return nil
}

// readImage reads the render child's image line and hands the image to
// onPage. It returns the error code the child wrote instead, if any, and an
// error when the output is malformed or incomplete or onPage failed.
func readImage(dec *json.Decoder, onPage func(Page) error) (string, error) {
	var line imageLine
	if err := dec.Decode(&line); err != nil {
		if isEOF(err) {
			return "", &earlyEOFError{"the reader stopped before it drew the page"}
		}
		return "", fmt.Errorf("the reader's output is not JSON lines (%w)", err)
	}
	if line.Error != "" {
		return line.Error, nil
	}
	if line.N < 1 || len(line.PNG) == 0 {
		return "", errors.New("the reader's image line has no image")
	}
	if err := onPage(Page{Number: line.N, png: line.PNG}); err != nil {
		return "", &callbackError{err: err}
	}
	return "", nil
}

// renderPage is the child's render mode: it draws page SILO_EXTRACT_PAGE of
// doc (which has pages pages) and writes it as the image line. emit and fail
// are ChildMain's.
func renderPage(doc *fitz.Document, pages int, emit func(any) bool, fail func(int, string) int) int {
	n, msg := childPage(pages)
	if msg != "" {
		return fail(exitExtractFailed, msg)
	}
	bounds, err := doc.Bound(n - 1)
	if err != nil {
		return fail(exitExtractFailed, fmt.Sprintf("page %d: %s", n, strings.TrimPrefix(err.Error(), "fitz: ")))
	}
	img, err := doc.ImagePNG(n-1, pageImageDPI(bounds))
	switch {
	case err != nil:
		return fail(exitExtractFailed, fmt.Sprintf("page %d: %s", n, strings.TrimPrefix(err.Error(), "fitz: ")))
	case len(img) == 0:
		// MuPDF writes nothing for an image less than a pixel high or wide.
		return fail(exitExtractFailed, fmt.Sprintf("page %d is too thin to draw", n))
	}
	if !emit(imageLine{N: n, PNG: img}) {
		return exitExtractFailed
	}
	return exitExtractOK
}

// childPage is the page (from 1) of a PDF of pages pages that
// SILO_EXTRACT_PAGE names, or the error for the child to write.
func childPage(pages int) (int, string) {
	n, err := strconv.Atoi(os.Getenv(envExtractPage))
	switch {
	case err != nil || n < 1:
		return 0, fmt.Sprintf("%s=%q: want a page number", envExtractPage, os.Getenv(envExtractPage))
	case n > pages:
		return 0, childErrNoPage
	}
	return n, ""
}

// pageImageDPI is the resolution that draws a page of bounds b (in points,
// 72 to the inch, as go-fitz's Bound gives them) within MaxPageImageWidth
// and MaxPageImagePixels.
//
// Bound cuts the page's edges to whole points and MuPDF rounds the pixmap
// outwards, so the page may be up to 2 points larger than b and the image up
// to 2 pixels larger than the page at that scale: the scale s is chosen for
// w = b.Dx()+2 and h = b.Dy()+2 points with room for 2 more pixels each way.
func pageImageDPI(b image.Rectangle) float64 {
	w, h := float64(b.Dx()+2), float64(b.Dy()+2)
	byWidth := (MaxPageImageWidth - 2) / w
	// The larger root of (w·s + 2)(h·s + 2) = MaxPageImagePixels.
	byArea := (math.Sqrt((w+h)*(w+h)+w*h*(MaxPageImagePixels-4)) - (w + h)) / (w * h)
	return 72 * min(byWidth, byArea)
}
