// The protocol between the reader child and its parent, one JSON object per
// line on the child's stdout:
//
//	{"pages":3,"title":"A title"}          always first
//	{"n":1,"text":"…"}                     then, in text mode, one line per page, in order
//	{"n":2,"text":"","error":"…"}          a page whose text could not be read
//	{"error":"password-protected"}         instead of all of the above, on failure
//
// (render and locate modes write one line of their own after the first; see
// render.go and locate.go). In text mode the parent may hold the child
// between the first line and the pages: with SILO_EXTRACT_GATE=3 the child
// waits after the first line until the parent writes a byte to its fd 3, and
// ends (exit 0) if the parent closes it instead. An upload reads the first
// line to check the PDF; the ingestion worker later opens the gate
// (Extractor.Start, Pool.Handoff), so each document starts one child, not
// two.
//
// The child's exit code is 0 on success, 3 for a password-protected PDF, 4 for
// a file that is not a readable PDF, 5 for a file over the input limit and 1
// for anything else. The child is configured by environment variables only:
// SILO_EXTRACT_MODE ("render", "locate", or anything else for the text),
// SILO_EXTRACT_MEMORY_MB, SILO_EXTRACT_CPU_SECONDS,
// SILO_EXTRACT_INPUT_BYTES (a size hint for the input), SILO_EXTRACT_GATE
// and SILO_EXTRACT_PAGE (the page of render and locate modes).

package pdf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Environment variables of the extraction child.
const (
	envExtractMode       = "SILO_EXTRACT_MODE"
	envExtractMemoryMB   = "SILO_EXTRACT_MEMORY_MB"
	envExtractCPUSeconds = "SILO_EXTRACT_CPU_SECONDS"
	envExtractInputBytes = "SILO_EXTRACT_INPUT_BYTES" // a size hint
	envExtractGate       = "SILO_EXTRACT_GATE"        // the gate's file descriptor
)

// Limits and defaults of the extraction child and its parent.
const (
	// maxExtractInput is the largest PDF the child accepts on stdin.
	maxExtractInput = 512 << 20

	defaultExtractTimeout   = 60 * time.Second
	defaultExtractMemoryMB  = 1024
	defaultExtractMaxOutput = 64 << 20
	defaultExtractCPU       = 120      // seconds of CPU time, a backstop for an orphaned child
	maxExtractStderr        = 64 << 10 // kept in ExtractError.Stderr
	maxErrorStderr          = 1 << 10  // of that, in ExtractError.Error
	extractWaitDelay        = 5 * time.Second
)

// Exit codes of the extraction child.
const (
	exitExtractOK       = 0
	exitExtractFailed   = 1
	exitExtractPassword = 3
	exitExtractNotPDF   = 4
	exitExtractTooLarge = 5
)

// Error codes the child writes in {"error": …}.
const (
	childErrPassword = "password-protected"
	childErrNotPDF   = "not-pdf"
	childErrTooLarge = "too-large"
)

// modeText is SILO_EXTRACT_MODE for reading every page's text.
const modeText = "text"

// The lines the child writes.
type (
	infoLine struct {
		Pages int    `json:"pages"`
		Title string `json:"title"`
	}
	pageLine struct {
		N     int    `json:"n"`
		Text  string `json:"text"`
		Error string `json:"error,omitempty"`
	}
	errorLine struct {
		Error string `json:"error"`
	}
)

// childLine is any line of the protocol, as the parent reads it; which
// fields are set tells its kind.
type childLine struct {
	Pages *int    `json:"pages"`
	Title string  `json:"title"`
	N     int     `json:"n"`
	Text  *string `json:"text"`
	Error string  `json:"error"`
}

// readInfo reads the child's first line. It returns what it says of the
// PDF, the error code the child wrote instead (if any), and an error when the
// output is malformed or ends.
func readInfo(dec *json.Decoder) (Info, string, error) {
	var line childLine
	if err := dec.Decode(&line); err != nil {
		if isEOF(err) {
			return Info{}, "", &earlyEOFError{"the reader stopped before it said anything"}
		}
		return Info{}, "", fmt.Errorf("the reader's output is not JSON lines (%w)", err)
	}
	if line.Error != "" {
		return Info{}, line.Error, nil
	}
	if line.Pages == nil || *line.Pages < 0 {
		return Info{}, "", errors.New("the reader's first line has no page count")
	}
	return Info{Pages: *line.Pages, Title: line.Title}, "", nil
}

// readPages reads the lines of pages 1 to pages and calls onPage for each.
// It returns the error code the child wrote (if any), and an error when the
// output is malformed or incomplete or onPage failed (a *callbackError).
func readPages(dec *json.Decoder, pages int, onPage func(Page) error) (string, error) {
	for n := 1; n <= pages; n++ {
		var line childLine
		if err := dec.Decode(&line); err != nil {
			if isEOF(err) {
				return "", &earlyEOFError{fmt.Sprintf("the reader stopped after %d of %d pages", n-1, pages)}
			}
			return "", fmt.Errorf("the reader's output is not JSON lines (%w)", err)
		}
		if line.Error != "" && line.N == 0 {
			return line.Error, nil
		}
		if line.N != n || line.Text == nil {
			return "", fmt.Errorf("the reader wrote page %d where page %d was due", line.N, n)
		}
		if err := onPage(Page{Number: n, Text: *line.Text, Error: line.Error}); err != nil {
			return "", &callbackError{err: err}
		}
	}
	return "", nil
}

// earlyEOFError is the end of the child's output before the end of the
// protocol: the child died, or exited too soon.
type earlyEOFError struct{ msg string }

func (e *earlyEOFError) Error() string { return e.msg }

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// callbackError carries an error of onPage through readPages.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
