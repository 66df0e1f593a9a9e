// Tests of locating a snippet on a page, in the PDF reader child (the test
// binary, see TestMain in main_test.go).

package pdf_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"silo/pdf"
	"silo/testrig/datasets"
	"silo/testrig/pdfchild"
)

// wantBoxesOnPage checks boxes are on the page, stacked down it, and each
// about a line high.
func wantBoxesOnPage(t *testing.T, boxes []pdf.Box) {
	t.Helper()
	for i, b := range boxes {
		if b.X < 0 || b.Y < 0 || b.W <= 0 || b.H <= 0 || b.X+b.W > 1 || b.Y+b.H > 1 {
			t.Errorf("box %d is %+v, want one on the page", i, b)
		}
		if b.H > 0.05 {
			t.Errorf("box %d is %.3f of the page high, want about a line", i, b.H)
		}
		if i > 0 && b.Y <= boxes[i-1].Y {
			t.Errorf("box %d at y %.3f, want it below box %d at %.3f", i, b.Y, i-1, boxes[i-1].Y)
		}
	}
}

// A sentence of a page, as the cleaned text has it, is found on that page:
// one box per line it covers, where the page shows it; on another page it
// is not.
func TestLocateSnippet(t *testing.T) {
	file := datasets.Read(t, "squad-pdfs", "black-death.pdf")
	for _, tc := range []struct {
		name, text string
		page       int
		lines      int     // boxes wanted
		top        float64 // of the first box, roughly
		full       bool    // the middle boxes span the text column
	}{
		// Page 2 of black-death.pdf has "… a report to the king of France
		// that" / "blamed the heavens, …" on lines 3 and 4 of its text.
		{"across lines", `The most authoritative account at the time came from the medical faculty in Paris in a report to the king of France that blamed the heavens, in the form of a conjunction of three planets in 1345 that caused a "great pestilence in the air".`, 2, 4, 93.9 / 841.9, true},
		{"within a line", "in the form of a conjunction of three planets in 1345", 2, 1, 119.5 / 841.9, false},
		{"snippet cut by the citation", "…pathogen was named Yersinia pestis. The mechanism by which Y. pestis was usually transmitted was established in 1898 by Paul-Louis…", 2, 2, 274.4 / 841.9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			boxes, err := pdfchild.Extractor().Locate(context.Background(), file, tc.page, tc.text)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", boxes)
			if len(boxes) != tc.lines {
				t.Fatalf("got %d boxes, want %d", len(boxes), tc.lines)
			}
			wantBoxesOnPage(t, boxes)
			if d := boxes[0].Y - tc.top; d < -0.005 || d > 0.005 {
				t.Errorf("the first box is at y %.4f, want about %.4f", boxes[0].Y, tc.top)
			}
			if tc.full {
				for _, b := range boxes[1 : len(boxes)-1] {
					if b.X > 0.1 || b.W < 0.7 {
						t.Errorf("a middle box is %+v, want it across the text column", b)
					}
				}
			}
			if !tc.full && len(boxes) == 1 && (boxes[0].X < 0.15 || boxes[0].W > 0.6) {
				t.Errorf("the box is %+v, want it within the line", boxes[0])
			}
		})
	}

	t.Run("another page", func(t *testing.T) {
		t.Parallel()
		boxes, err := pdfchild.Extractor().Locate(context.Background(), file, 3, tc0)
		if err != nil {
			t.Fatal(err)
		}
		if len(boxes) != 0 {
			t.Errorf("got %+v, want no boxes", boxes)
		}
	})
}

// tc0 is a sentence of page 2 of black-death.pdf.
const tc0 = "The dominant explanation for the Black Death is the plague theory, which attributes the outbreak to Yersinia pestis, also responsible for an epidemic that began in southern China in 1865, eventually spreading to India."

// A sentence that runs on to the next page is found by its part on this
// one; a text made of words of the page that are not together is not.
func TestLocatePartial(t *testing.T) {
	file := datasets.Read(t, "squad-pdfs", "black-death.pdf")
	partial := tc0 + " This sentence is not on the page at all, nor is any of its words in this order anywhere."
	boxes, err := pdfchild.Extractor().Locate(context.Background(), file, 2, partial)
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 3 {
		t.Errorf("got %d boxes, want the 3 lines of the part on the page", len(boxes))
	}
	wantBoxesOnPage(t, boxes)

	scrambled := "plague the of Death Black the theory dominant explanation pestis Yersinia"
	if boxes, err := pdfchild.Extractor().Locate(context.Background(), file, 2, scrambled); err != nil || len(boxes) != 0 {
		t.Errorf("scrambled words: got %+v (%v), want no boxes", boxes, err)
	}
}

// A text over MaxLocateText is cut, not refused.
func TestLocateLongText(t *testing.T) {
	file := datasets.Read(t, "squad-pdfs", "black-death.pdf")
	boxes, err := pdfchild.Extractor().Locate(context.Background(), file, 2, tc0+strings.Repeat(" x", pdf.MaxLocateText))
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 3 {
		t.Errorf("got %d boxes, want 3", len(boxes))
	}
}

// A page that is not there, a PDF that cannot be read and a reader that
// fails, hangs or lies each give an *ExtractError that says so, as for
// Render.
func TestLocateErrors(t *testing.T) {
	twoPages := readFixture(t, "two-pages.pdf")
	cases := pageErrorCases(t, "located the text",
		pageErrorCase{"box off the page", fakeReader(`echo '{"pages":2}'; echo '{"n":1,"boxes":[{"x":0.5,"y":0.5,"w":0.6,"h":0.1}]}'`), twoPages, 1, pdf.ErrReaderFailed, "the PDF could not be read: the reader's box"},
		pageErrorCase{"another page", fakeReader(`echo '{"pages":2}'; echo '{"n":2,"boxes":[]}'`), twoPages, 1, pdf.ErrReaderFailed, "the PDF could not be read: the reader located text on page 2 where page 1 was due"},
	)
	testPageErrors(t, cases, func(tc pageErrorCase) (string, error) {
		boxes, err := tc.e.Locate(context.Background(), tc.file, tc.page, "Page")
		if boxes != nil {
			return fmt.Sprintf("boxes %+v", boxes), err
		}
		return "", err
	})
}
