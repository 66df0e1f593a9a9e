// Package pdftest writes small PDFs for tests, by hand, object by object,
// and looks at the page images a reader draws of them. It imports nothing
// of silo, so the internal tests of any package can use it.
package pdftest

import (
	"bytes"
	"fmt"
	"image"
	"strings"
	"unicode/utf16"
)

// writer writes a PDF's objects and its cross-reference table.
type writer struct {
	buf     bytes.Buffer
	offsets []int
}

// object writes object number len(offsets)+1.
func (w *writer) object(body string) {
	w.offsets = append(w.offsets, w.buf.Len())
	fmt.Fprintf(&w.buf, "%d 0 obj\n%s\nendobj\n", len(w.offsets), body)
}

// stream writes a stream object of data with the entries dict.
func (w *writer) stream(dict, data string) {
	w.object(fmt.Sprintf("<< %s /Length %d >>\nstream\n%s\nendstream", dict, len(data), data))
}

// finish writes the cross-reference table and the trailer and returns the
// PDF.
func (w *writer) finish(trailer string) []byte {
	xref := w.buf.Len()
	fmt.Fprintf(&w.buf, "xref\n0 %d\n0000000000 65535 f \n", len(w.offsets)+1)
	for _, o := range w.offsets {
		fmt.Fprintf(&w.buf, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&w.buf, "trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n", len(w.offsets)+1, trailer, xref)
	return w.buf.Bytes()
}

// UTF16BE writes s as a PDF hex string in UTF-16BE with a byte-order mark,
// as PDF writers do for anything beyond Latin-1.
func UTF16BE(s string) string {
	var b strings.Builder
	b.WriteString("<FEFF")
	for _, u := range utf16.Encode([]rune(s)) {
		fmt.Fprintf(&b, "%04X", u)
	}
	b.WriteString(">")
	return b.String()
}

// Minimal writes a PDF with one line of Helvetica text on each page, all
// pages of size mediaBox (e.g. "[0 0 612 792]"); title is a PDF string,
// e.g. "(A title)", or "()" for none. The same arguments give the same
// bytes.
// Objects: 1 catalog, 2 pages, 3 font, 4 info, then a page and its content
// for each text.
func Minimal(title, mediaBox string, texts ...string) []byte {
	w := &writer{}
	w.buf.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	var kids []string
	for i := range texts {
		kids = append(kids, fmt.Sprintf("%d 0 R", 5+2*i))
	}
	w.object("<< /Type /Catalog /Pages 2 0 R >>")
	w.object(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(texts)))
	w.object("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	w.object(fmt.Sprintf("<< /Title %s /Producer (silo tests) >>", title))
	for i, text := range texts {
		w.object(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox %s /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", mediaBox, 6+2*i))
		w.stream("", fmt.Sprintf("BT /F1 24 Tf 72 700 Td (%s) Tj ET", text))
	}
	return w.finish("/Root 1 0 R /Info 4 0 R")
}

// FormBomb writes one page that draws form 1, which draws form 2 ten
// times, and so on for ten levels; the last one shows a string: 10^9
// strings, which no reader finishes soon.
func FormBomb() []byte {
	const levels = 10
	w := &writer{}
	w.buf.WriteString("%PDF-1.4\n")
	w.object("<< /Type /Catalog /Pages 2 0 R >>")
	w.object("<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
	w.object("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X 6 0 R >> >> /Contents 4 0 R >>")
	w.stream("", "/X Do")
	w.object("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	// Forms are objects 6 … 6+levels-1.
	for i := range levels {
		box := "/Type /XObject /Subtype /Form /BBox [0 0 612 792]"
		if i == levels-1 {
			w.stream(box+" /Resources << /Font << /F1 5 0 R >> >>", "BT /F1 12 Tf 72 700 Td (bomb) Tj ET")
			continue
		}
		w.stream(fmt.Sprintf("%s /Resources << /XObject << /X %d 0 R >> >>", box, 7+i), strings.Repeat("/X Do ", 10))
	}
	return w.finish("/Root 1 0 R")
}

// Inked counts the pixels of m that are not white.
func Inked(m image.Image) int {
	n := 0
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, _ := m.At(x, y).RGBA(); r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				n++
			}
		}
	}
	return n
}
