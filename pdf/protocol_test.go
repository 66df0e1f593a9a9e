// Tests of the parent's side of the protocol: children that are not silo at
// all die, hang, lie or write too much, and the parent survives.

package pdf_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"silo/pdf"
)

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
		{"killed at once", `kill -9 $$`, pdf.ErrReaderFailed, "the PDF could not be read: the reader stopped (signal: killed)"},
		{"killed mid-way", `echo '{"pages":3}'; echo '{"n":1,"text":"one"}'; kill -9 $$`, pdf.ErrReaderFailed, "the PDF could not be read: the reader stopped (signal: killed)"},
		{"aborted", `echo '{"pages":3}'; kill -ABRT $$`, pdf.ErrReaderFailed, "the PDF could not be read: the reader stopped (signal: aborted)"},
		{"exits early", `echo '{"pages":3}'; echo '{"n":1,"text":"one"}'`, pdf.ErrReaderFailed, "the PDF could not be read: the reader stopped after 1 of 3 pages"},
		{"too large", `echo '{"error":"too-large"}'; exit 5`, pdf.ErrPDFTooLarge, "the PDF is too large to read: it is over 512 MiB"},
		{"out of memory", `echo 'fatal error: runtime: out of memory' >&2; exit 2`, pdf.ErrReaderFailed, "the PDF could not be read: the reader ran out of memory (limit 1024 MB)"},
		{"crashes", `printf 'SIGSEGV: segmentation violation\nPC=0x0\n' >&2; exit 2`, pdf.ErrReaderFailed, "the PDF could not be read: the reader crashed (SIGSEGV: segmentation violation)"},
		{"fails", `echo oops >&2; exit 7`, pdf.ErrReaderFailed, "the PDF could not be read: the reader stopped (exit status 7)"},
		{"says nothing", `exit 0`, pdf.ErrReaderFailed, "the PDF could not be read: the reader stopped before it said anything"},
		{"garbage", `echo 'not json'; sleep 60`, pdf.ErrReaderFailed, "the PDF could not be read: the reader's output is not JSON lines"},
		{"pages out of order", `echo '{"pages":2}'; echo '{"n":2,"text":"two"}'`, pdf.ErrReaderFailed, "the PDF could not be read: the reader wrote page 2 where page 1 was due"},
		{"endless output", `echo '{"pages":1}'; printf '{"n":1,"text":"'; yes x | tr -d '\n'`, pdf.ErrTextTooLarge, "the PDF's text is too large"},
		{"hangs", `echo '{"pages":1}'; sleep 60`, pdf.ErrTimeout, "timed out after 0.5 s"},
		{"hangs in a grandchild", `(sleep 60; echo late) & echo '{"pages":1}'; wait`, pdf.ErrTimeout, "timed out after 0.5 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &pdf.Extractor{Command: []string{"sh", "-c", tc.script}, Timeout: 500 * time.Millisecond, MaxOutput: 1 << 20}
			start := time.Now()
			_, err := e.Extract(context.Background(), []byte("%PDF-1.4 not read"), nil)
			_ = wantExtractError(t, err, tc.kind, tc.reason)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v, want the child gone at once", d)
			}
		})
	}
}
