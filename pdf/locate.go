// Locating a snippet on a page: where a citation's text lies on the page's
// image, so the page can show it highlighted.
//
// Like drawing a page, this reads the PDF, so it happens only in the reader
// child (child.go), under the same timeout, memory limit and output cap.
// In locate mode (SILO_EXTRACT_MODE=locate, SILO_EXTRACT_PAGE=n,
// SILO_EXTRACT_TEXT=the snippet) the child writes the usual first line and
// then the boxes:
//
//	{"pages":3,"title":"A title"}
//	{"n":2,"boxes":[{"x":0.095,"y":0.11,"w":0.8,"h":0.013}]}
//
// or {"error":"…"} in place of the second line when page n cannot be read.
//
// go-fitz has no search, so the child reads the page twice: as MuPDF's
// positioned HTML, which gives the text line by line in reading order (with
// ligatures spelled out) and each line's top, left and height, and as SVG,
// which gives each glyph's origin and so where along a line a character
// lies (see locate).

package pdf

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gen2brain/go-fitz"

	"silo/words"
)

// MaxLocateText is the longest snippet Locate looks for, in bytes; a
// citation's snippet is at most 300.
const MaxLocateText = 500

// Locating in the child.
const (
	modeLocate     = "locate"            // SILO_EXTRACT_MODE
	envExtractText = "SILO_EXTRACT_TEXT" // the snippet to locate
	// minLocateLetters is how many letters of a snippet a partial match
	// needs (a shorter snippet must match whole), so that a phrase that
	// happens to recur does not count as the snippet.
	minLocateLetters = 40
	// maxBoxes bounds the boxes the parent accepts from the child.
	maxBoxes = 200
)

// Box is a rectangle on a page in fractions of the page's width and
// height, from its top-left corner, as the page's image shows it.
type Box struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// boxesLine is the locate child's second line.
type boxesLine struct {
	N     int    `json:"n"`
	Boxes []Box  `json:"boxes"`
	Error string `json:"error,omitempty"`
}

// Locate finds text, e.g. a citation's snippet, on page n (from 1) of pdf
// in a child process under the Extractor's limits, and returns the boxes it
// covers on the page, one for each line of text, or none when it is not
// there. The match ignores case, spacing, punctuation, hyphenation and
// ligatures; when only part of text is on the page (a sentence that runs
// on to the next), the longest run of its words that is gives the boxes.
// text is cut to MaxLocateText bytes. Errors are as for Render.
func (e *Extractor) Locate(ctx context.Context, pdf []byte, n int, text string) ([]Box, error) {
	text = strings.ReplaceAll(strings.ToValidUTF8(text, ""), "\x00", "")
	if len(text) > MaxLocateText {
		text = strings.ToValidUTF8(text[:MaxLocateText], "")
	}
	p, err := e.runPage(ctx, pdf, n, modeLocate, envExtractText+"="+text)
	if err != nil {
		return nil, err
	}
	if p.Number != n {
		return nil, &ExtractError{Kind: ErrReaderFailed, Detail: fmt.Sprintf("the reader located text on page %d where page %d was due", p.Number, n)}
	}
	return p.boxes, nil
}

// readBoxes reads the locate child's boxes line and hands the boxes to
// onPage, as readImage does for an image.
func readBoxes(dec *json.Decoder, onPage func(Page) error) (string, error) {
	var line boxesLine
	if err := dec.Decode(&line); err != nil {
		if isEOF(err) {
			return "", &earlyEOFError{"the reader stopped before it located the text"}
		}
		return "", fmt.Errorf("the reader's output is not JSON lines (%w)", err)
	}
	if line.Error != "" {
		return line.Error, nil
	}
	if line.N < 1 || len(line.Boxes) > maxBoxes {
		return "", errors.New("the reader's boxes line is malformed")
	}
	for _, b := range line.Boxes {
		if !(b.X >= 0 && b.Y >= 0 && b.W >= 0 && b.H >= 0 && b.X+b.W <= 1+1e-9 && b.Y+b.H <= 1+1e-9) {
			return "", fmt.Errorf("the reader's box %+v is off the page", b)
		}
	}
	if err := onPage(Page{Number: line.N, boxes: line.Boxes}); err != nil {
		return "", &callbackError{err: err}
	}
	return "", nil
}

// locatePage is the child's locate mode: it finds SILO_EXTRACT_TEXT on page
// SILO_EXTRACT_PAGE of doc (which has pages pages) and writes the boxes
// line. emit and fail are ChildMain's.
func locatePage(doc *fitz.Document, pages int, emit func(any) bool, fail func(int, string) int) int {
	n, msg := childPage(pages)
	if msg != "" {
		return fail(exitExtractFailed, msg)
	}
	page, err := doc.HTML(n-1, false)
	if err != nil {
		return fail(exitExtractFailed, fmt.Sprintf("page %d: %s", n, strings.TrimPrefix(err.Error(), "fitz: ")))
	}
	svg, err := doc.SVG(n - 1)
	if err != nil {
		return fail(exitExtractFailed, fmt.Sprintf("page %d: %s", n, strings.TrimPrefix(err.Error(), "fitz: ")))
	}
	boxes := locate(parsePageHTML(page), parseGlyphs(svg), os.Getenv(envExtractText))
	if !emit(boxesLine{N: n, Boxes: boxes}) {
		return exitExtractFailed
	}
	return exitExtractOK
}

// pageLayout is a page's size and its lines of text, in points from the
// top-left corner.
type pageLayout struct {
	width, height float64
	lines         []textLine
}

// textLine is one line of text as MuPDF's HTML places it.
type textLine struct {
	top, left, height float64
	size              float64 // the largest font size on the line
	text              []rune
}

// glyph is one glyph drawn on a page: its origin (on the baseline), font
// size and character.
type glyph struct {
	x, y, size float64
	r          rune
}

// Patterns of MuPDF's HTML and SVG output (fz_print_stext_page_as_html,
// the SVG device with text as paths).
var (
	htmlPageSize = regexp.MustCompile(`<div id="page\d+" style="width:([\d.]+)pt;height:([\d.]+)pt">`)
	htmlLine     = regexp.MustCompile(`<p style="top:(-?[\d.]+)pt;left:(-?[\d.]+)pt;line-height:([\d.]+)pt">(.*?)</p>`)
	htmlFontSize = regexp.MustCompile(`font-size:([\d.]+)pt`)
	htmlTag      = regexp.MustCompile(`<[^>]*>`)
	svgGlyph     = regexp.MustCompile(`<use data-text="([^"]*)" xlink:href="[^"]*" transform="matrix\(([^)]*)\)"`)
)

// parsePageHTML reads the page size and the lines of MuPDF's HTML of a page.
func parsePageHTML(s string) pageLayout {
	var p pageLayout
	if m := htmlPageSize.FindStringSubmatch(s); m != nil {
		p.width, _ = strconv.ParseFloat(m[1], 64)
		p.height, _ = strconv.ParseFloat(m[2], 64)
	}
	for _, m := range htmlLine.FindAllStringSubmatch(s, -1) {
		l := textLine{text: []rune(html.UnescapeString(htmlTag.ReplaceAllString(m[4], "")))}
		l.top, _ = strconv.ParseFloat(m[1], 64)
		l.left, _ = strconv.ParseFloat(m[2], 64)
		l.height, _ = strconv.ParseFloat(m[3], 64)
		for _, f := range htmlFontSize.FindAllStringSubmatch(m[4], -1) {
			size, _ := strconv.ParseFloat(f[1], 64)
			l.size = max(l.size, size)
		}
		if l.size == 0 {
			l.size = l.height
		}
		p.lines = append(p.lines, l)
	}
	return p
}

// parseGlyphs reads the glyphs of MuPDF's SVG of a page, but for spaces. A
// ligature is one glyph with only its first character.
func parseGlyphs(svg string) []glyph {
	var out []glyph
	for _, m := range svgGlyph.FindAllStringSubmatch(svg, -1) {
		var f [6]float64
		parts := strings.Split(m[2], ",")
		if len(parts) != len(f) {
			continue
		}
		for i, p := range parts {
			f[i], _ = strconv.ParseFloat(p, 64)
		}
		r, _ := utf8.DecodeRuneInString(html.UnescapeString(m[1]))
		if unicode.IsSpace(r) {
			continue // some PDFs draw their spaces, most do not
		}
		out = append(out, glyph{x: f[4], y: f[5], size: math.Sqrt(math.Abs(f[0]*f[3] - f[1]*f[2])), r: r})
	}
	return out
}

// letterAt is a letter of a page's text: its line and rune index there.
type letterAt struct{ line, pos int }

// locate finds text on a page and returns one box per line it covers.
//
// Both the page's lines and text are reduced to their letters and digits,
// lower-case, with ligatures spelled out, so that spacing, punctuation,
// line-break hyphens and ligatures do not matter; the longest run of text's
// letters that the page has, cut to whole words of text, is the match, if
// it is all of text or at least minLocateLetters long. Each line's share of
// it becomes a box from the line's top to its bottom, and across from the
// first matched character to the last, placed by the glyphs of the line
// (see lineGlyphs).
func locate(p pageLayout, glyphs []glyph, text string) []Box {
	if p.width <= 0 || p.height <= 0 {
		return nil
	}
	var page []rune
	var at []letterAt
	for i, l := range p.lines {
		for j, r := range l.text {
			for _, c := range foldLetter(r) {
				page = append(page, c)
				at = append(at, letterAt{i, j})
			}
		}
	}
	var want []rune
	var starts, ends []bool // a letter starts or ends a word of text
	prevLetter := false
	for _, r := range text {
		folded := foldLetter(r)
		if len(folded) == 0 {
			if prevLetter {
				ends[len(ends)-1] = true
			}
			prevLetter = false
			continue
		}
		for k, c := range folded {
			want = append(want, c)
			starts = append(starts, k == 0 && !prevLetter)
			ends = append(ends, false)
		}
		prevLetter = true
	}
	if len(want) == 0 {
		return nil
	}
	ends[len(ends)-1] = true
	// The longest common run of letters, by dynamic programming over the
	// page's letters and text's.
	run, prev := make([]int32, len(want)+1), make([]int32, len(want)+1)
	best, pageEnd, wantEnd := 0, 0, 0
	for i, c := range page {
		for j, w := range want {
			if c != w {
				run[j+1] = 0
				continue
			}
			run[j+1] = prev[j] + 1
			if int(run[j+1]) > best {
				best, pageEnd, wantEnd = int(run[j+1]), i+1, j+1
			}
		}
		run, prev = prev, run
	}
	// Cut the run to whole words of text.
	from, to := wantEnd-best, wantEnd
	for from < to && !starts[from] {
		from++
	}
	for to > from && !ends[to-1] {
		to--
	}
	if to-from < min(len(want), minLocateLetters) {
		return nil
	}
	pageFrom := pageEnd - best + (from - (wantEnd - best))
	matched := at[pageFrom : pageFrom+to-from]
	var boxes []Box
	for len(matched) > 0 {
		k := 1
		for k < len(matched) && matched[k].line == matched[0].line {
			k++
		}
		l := p.lines[matched[0].line]
		x0, x1 := lineSpan(l, lineGlyphs(l, glyphs), matched[0].pos, matched[k-1].pos)
		boxes = append(boxes, pageBox(p, x0, l.top, x1-x0, l.height))
		matched = matched[k:]
	}
	return boxes
}

// foldLetter is r as locate compares it: lower-case with ligatures spelled
// out, or nothing if it is not a letter or digit.
func foldLetter(r rune) []rune {
	if l, ok := words.Ligature(r); ok {
		return []rune(l)
	}
	if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
		return nil
	}
	return []rune{unicode.ToLower(r)}
}

// lineGlyphs finds the glyphs that may be line l's: those with their
// baseline within the line's height, from its left edge rightwards, left
// to right, up to a gap of a few characters, where another column would
// begin.
func lineGlyphs(l textLine, glyphs []glyph) []glyph {
	var in []glyph
	for _, g := range glyphs {
		if g.y >= l.top-0.5 && g.y <= l.top+l.height+0.5 && g.x >= l.left-0.5 {
			in = append(in, g)
		}
	}
	slices.SortStableFunc(in, func(a, b glyph) int { return cmp.Compare(a.x, b.x) })
	n := min(len(in), 1)
	for n < len(in) && in[n].x-in[n-1].x < 2.5*max(l.size, in[n].size) {
		n++
	}
	return in[:n]
}

// glyphIndexes maps each character of text that is not a space to the
// glyph of gs that draws it. Glyphs are taken in order, one a character,
// except that the letters after an f that the glyphs do not have belong
// to the f's glyph (the ligatures ff, fi, fl, ffi, ffl, which MuPDF's SVG
// gives as "f"); a glyph of another character than the text's is taken
// as drawing it. When the glyphs run out first, characters get their share
// of the glyphs instead.
func glyphIndexes(text []rune, gs []glyph) []int {
	var idx []int
	g := 0
	for _, r := range text {
		switch {
		case unicode.IsSpace(r):
			continue
		case g < len(gs) && gs[g].r == r:
			g++
		case g > 0 && gs[g-1].r == 'f' && (r == 'f' || r == 'i' || r == 'l'):
		case g < len(gs):
			g++
		default:
			n := nonSpaces(text, len(text))
			idx = idx[:0]
			for k := range n {
				idx = append(idx, k*len(gs)/n)
			}
			return idx
		}
		idx = append(idx, g-1)
	}
	return idx
}

// lineSpan is where characters a to b (rune indices, not spaces) of line l
// lie across the page, from the left of a to the right of b, placed by the
// glyphs gs of the line's row (see glyphIndexes); without glyphs,
// characters are taken to be half as wide as the font size.
func lineSpan(l textLine, gs []glyph, a, b int) (x0, x1 float64) {
	idx := glyphIndexes(l.text, gs)
	if len(gs) == 0 || len(idx) == 0 {
		w := l.size / 2
		return l.left + float64(a)*w, l.left + float64(b+1)*w
	}
	gs = gs[:idx[len(idx)-1]+1] // the line's own
	pitch := l.size / 2         // a character's width, as a rule
	if len(gs) > 1 {
		pitch = (gs[len(gs)-1].x - gs[0].x) / float64(len(gs)-1)
	}
	i, j := idx[nonSpaces(l.text, a)], idx[nonSpaces(l.text, b)]
	x0, x1 = gs[i].x, gs[j].x+pitch
	if j+1 < len(gs) {
		next := gs[j+1].x
		if b+1 < len(l.text) && !unicode.IsSpace(l.text[b+1]) {
			x1 = next // the next character starts where this one ends
		} else {
			x1 = min(x1, next)
		}
	}
	return x0, max(x1, x0)
}

// nonSpaces counts the runes of text before index end that are not spaces.
func nonSpaces(text []rune, end int) int {
	n := 0
	for _, r := range text[:end] {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

// pageBox turns a rectangle in points into a Box on page p, kept on the
// page and rounded to a ten-thousandth.
func pageBox(p pageLayout, x, y, w, h float64) Box {
	round := func(f float64) float64 { return math.Round(f*1e4) / 1e4 }
	x0, y0 := clamp01(x/p.width), clamp01(y/p.height)
	x1, y1 := clamp01((x+w)/p.width), clamp01((y+h)/p.height)
	b := Box{X: round(x0), Y: round(y0), W: round(x1 - x0), H: round(y1 - y0)}
	// Rounding must not push the box off the page.
	b.W, b.H = min(b.W, 1-b.X), min(b.H, 1-b.Y)
	return b
}

func clamp01(f float64) float64 { return min(max(f, 0), 1) }
