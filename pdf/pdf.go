// Package pdf reads PDFs in a sandboxed child process: the text of their
// pages, a page's image and where a snippet lies on a page.
//
// MuPDF (through go-fitz) has no time or memory limit and can abort the whole
// process on hostile input, so the server never opens a PDF itself: it runs a
// child process of the same binary ("silo extract", which calls ChildMain),
// writes the PDF to the child's stdin and reads JSON lines from its stdout
// (protocol.go). The child limits its own memory before it reads anything;
// the parent (Extractor, reader.go) bounds the wall-clock time and the size
// of the output, runs the child in its own process group and kills the whole
// group when it gives up. A Pool keeps children started ahead and hands an
// upload's child to the worker that reads its pages.
package pdf

import (
	"errors"
	"strings"
)

// Sentinel errors of extraction; an *ExtractError wraps one of them, so
// errors.Is works on what Extract and Start return.
var (
	// ErrPasswordProtected means the PDF is encrypted and needs a password.
	ErrPasswordProtected = errors.New("the PDF is password-protected")
	// ErrNotPDF means the file is not a PDF, or so damaged that it cannot be opened.
	ErrNotPDF = errors.New("the file is not a PDF that can be read")
	// ErrPDFTooLarge means the file is over maxExtractInput.
	ErrPDFTooLarge = errors.New("the PDF is too large to read")
	// ErrTimeout means the reader did not finish within Extractor.Timeout.
	ErrTimeout = errors.New("timed out")
	// ErrReaderFailed means the reader crashed, aborted, ran out of memory,
	// was killed or broke the protocol.
	ErrReaderFailed = errors.New("the PDF could not be read")
	// ErrTextTooLarge means the reader wrote more than Extractor.MaxOutput.
	ErrTextTooLarge = errors.New("the PDF's text is too large")
)

// ExtractError is a failure to read a PDF: something about this PDF made the
// reader refuse it, fail, or go over a limit, so retrying it as it is will
// not help. (Failures of the server itself, such as a reader that cannot be
// started or a cancelled context, are other errors.) Reason gives the text a
// person sees; Error adds what the log needs.
type ExtractError struct {
	// Kind is one of the sentinel errors above.
	Kind error
	// Detail completes the reason, e.g. "no PDF header" after ErrNotPDF or
	// "the reader stopped (signal: killed)" after ErrReaderFailed.
	Detail string
	// Stderr is the start of what the reader wrote on stderr, for the log.
	Stderr string
}

// Reason returns the reason for a person, e.g. "timed out after 60 s".
func (e *ExtractError) Reason() string {
	if e.Detail == "" {
		return e.Kind.Error()
	}
	if e.Kind == ErrTimeout {
		return e.Kind.Error() + " " + e.Detail
	}
	return e.Kind.Error() + ": " + e.Detail
}

// Error returns the reason with the start of the reader's stderr, on one
// line, for the log.
func (e *ExtractError) Error() string {
	msg := "extract: " + e.Reason()
	if s := strings.TrimSpace(e.Stderr); s != "" {
		if len(s) > maxErrorStderr {
			s = strings.ToValidUTF8(s[:maxErrorStderr], "") + "…"
		}
		msg += " (stderr: " + strings.ReplaceAll(s, "\n", "; ") + ")"
	}
	return msg
}

// Unwrap returns Kind.
func (e *ExtractError) Unwrap() error { return e.Kind }

// Info is what the first line of the reader says about a PDF.
type Info struct {
	// Pages is the number of pages.
	Pages int
	// Title is the title from the PDF's metadata, trimmed; empty if none.
	Title string
}

// Page is the raw text of one page.
type Page struct {
	// Number counts from 1.
	Number int
	// Text is the page's text as MuPDF reads it, without clean-up; empty for
	// a page without a text layer.
	Text string
	// Error says why the page's text could not be read (Text is empty then);
	// one bad page does not fail the document.
	Error string
	// png is the page's image, in render mode only (see Render).
	png []byte
	// boxes are where the text looked for lies, in locate mode only (see
	// Locate).
	boxes []Box
}

// Reason is what a person reads about an extraction error.
func Reason(err error) string {
	var r interface{ Reason() string }
	if errors.As(err, &r) {
		return r.Reason()
	}
	return "the PDF could not be read"
}
