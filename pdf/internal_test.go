// Tests of unexported helpers: the reason an ExtractError gives and the
// matching of a text against a page's lines.

package pdf

import (
	"testing"
	"time"
)

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

// Ligatures, line-break hyphens and spacing as the cleaned text has them
// still match the page.
func TestLocateNormalises(t *testing.T) {
	layout := pageLayout{width: 600, height: 800, lines: []textLine{
		{top: 100, left: 50, height: 12, size: 12, text: []rune("The e\ufb03cient interna-")},
		{top: 114, left: 50, height: 12, size: 12, text: []rune("tional  “office” was closed.")},
	}}
	boxes := locate(layout, nil, `The efficient international "office" was closed.`)
	if len(boxes) != 2 {
		t.Fatalf("got %+v, want 2 boxes", boxes)
	}
	for i, b := range boxes {
		if want := layout.lines[i].top / 800; b.Y < want-1e-3 || b.Y > want+1e-3 {
			t.Errorf("box %d at y %.4f, want %.4f", i, b.Y, want)
		}
	}
	if boxes := locate(layout, nil, ""); boxes != nil {
		t.Errorf("no text: got %+v, want no boxes", boxes)
	}
	if boxes := locate(pageLayout{}, nil, "The efficient"); boxes != nil {
		t.Errorf("no page: got %+v, want no boxes", boxes)
	}
}
