// PDF text extraction in a child process.
//
// MuPDF (through go-fitz) has no time or memory limit and can abort the whole
// process on hostile input, so the server never opens a PDF itself: it runs a
// child process of the same binary ("silo extract", which calls ExtractMain),
// writes the PDF to the child's stdin and reads JSON lines from its stdout.
// The child limits its own memory before it reads anything; the parent
// (Extractor) bounds the wall-clock time and the size of the output, runs the
// child in its own process group and kills the whole group when it gives up.
//
// The protocol, one JSON object per line on the child's stdout:
//
//	{"pages":3,"title":"A title"}          always first (and only, in info mode)
//	{"n":1,"text":"…"}                     then one line per page, in order
//	{"n":2,"text":"","error":"…"}          a page whose text could not be read
//	{"error":"password-protected"}         instead of all of the above, on failure
//
// In text mode the parent may hold the child between the first line and the
// pages: with SILO_EXTRACT_GATE=3 the child waits after the first line until
// the parent writes a byte to its fd 3, and ends (exit 0) if the parent
// closes it instead. An upload reads the first line to check the PDF; the
// ingestion worker later opens the gate (Extractor.Start, Ingester.Handoff),
// so each document starts one child, not two.
//
// The child's exit code is 0 on success, 3 for a password-protected PDF, 4 for
// a file that is not a readable PDF, 5 for a file over the input limit and 1
// for anything else. The child is configured by environment variables only:
// SILO_EXTRACT_MODE ("info", or anything else for the text),
// SILO_EXTRACT_MEMORY_MB, SILO_EXTRACT_CPU_SECONDS,
// SILO_EXTRACT_INPUT_BYTES (a size hint for the input) and SILO_EXTRACT_GATE.

package rag

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gen2brain/go-fitz"
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
	// MaxExtractInput is the largest PDF the child accepts on stdin.
	MaxExtractInput = 512 << 20

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

// Sentinel errors of extraction; an *ExtractError wraps one of them, so
// errors.Is works on what Info and Extract return.
var (
	// ErrPasswordProtected means the PDF is encrypted and needs a password.
	ErrPasswordProtected = errors.New("the PDF is password-protected")
	// ErrNotPDF means the file is not a PDF, or so damaged that it cannot be opened.
	ErrNotPDF = errors.New("the file is not a PDF that can be read")
	// ErrPDFTooLarge means the file is over MaxExtractInput.
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

// Extractor reads PDFs in a child process with a timeout, a memory limit and
// a cap on the output. The zero value is not usable: Command must be set. An
// Extractor is safe for concurrent use; each call starts its own child. It
// needs a Unix (process groups, rlimits); the limits are measured on Linux.
type Extractor struct {
	// Command is the child, e.g. {os.Executable(), "extract"}, which must end
	// up calling ExtractMain.
	Command []string
	// Env is extra environment for the child, "KEY=value". The child does not
	// inherit the server's environment (it holds secrets), only PATH, TMPDIR
	// and the Go runtime's variables.
	Env []string
	// Timeout is the wall-clock limit of one child; default 60 s.
	Timeout time.Duration
	// MemoryMB is the child's memory limit in MiB (RLIMIT_DATA); default
	// 1024. The Go runtime and its thread stacks take about 110 MiB of it
	// before any work (430 MiB under -race), so less than 128 fails at once.
	MemoryMB int
	// MaxOutput is the most bytes the child may write on stdout; more kills
	// it. Default 64 MiB.
	MaxOutput int64
}

// Info reads only the page count and the title of pdf, in a child that
// stops there.
func (e *Extractor) Info(ctx context.Context, pdf []byte) (Info, error) {
	return e.run(ctx, pdf, modeInfo, nil)
}

// Extract reads the text of every page of pdf and calls onPage (if not nil)
// for each page, in order, as soon as the child has read it. An error from
// onPage stops the child and is returned as is. A failure of the PDF is an
// *ExtractError; a cancelled ctx returns an error wrapping ctx's error.
func (e *Extractor) Extract(ctx context.Context, pdf []byte, onPage func(Page) error) (Info, error) {
	return e.run(ctx, pdf, modeText, onPage)
}

// Start starts a child on pdf and returns once it has said what the PDF is
// (Extraction.Info), with the same errors as Extract. The child then waits,
// without reading any page, for Extraction.Pages or Close, one of which the
// caller must call. ctx bounds only Start: the child outlives it.
//
// This is how an upload checks a PDF and the ingestion worker reads it with
// one child, not two (Ingester.Start, Ingester.Handoff).
func (e *Extractor) Start(ctx context.Context, pdf []byte) (*Extraction, error) {
	return e.start(ctx, pdf, modeText)
}

// run starts a child in mode and reads all it writes: the first line, then
// what the mode writes after it (see Extraction.read).
func (e *Extractor) run(ctx context.Context, pdf []byte, mode string, onPage func(Page) error) (Info, error) {
	x, err := e.start(ctx, pdf, mode)
	if err != nil {
		return Info{}, err
	}
	return x.Info(), x.read(ctx, onPage)
}

// Child modes (SILO_EXTRACT_MODE).
const (
	modeInfo = "info"
	modeText = "text"
)

// Extraction is a running child that has read a PDF's first line, from
// Extractor.Start. Its wall-clock timeout runs only while its parent waits
// for it (in Start and Pages), not while it waits to be read; the memory
// limit and the output cap hold over its whole life.
type Extraction struct {
	mode   string
	cmd    *exec.Cmd
	cancel context.CancelFunc // kills the child's process group
	stdin  io.WriteCloser
	gate   *os.File // a byte written lets the child read the pages; closing it ends the child
	dec    *json.Decoder
	out    *countingReader
	stderr *headWriter
	res    childResult

	mu       sync.Mutex
	left     time.Duration // of the timeout
	since    time.Time     // when the timer last started
	timer    *time.Timer   // nil while paused
	timedOut bool
	ended    bool // reaped
}

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

// start starts a child in mode and reads its first line. On any failure the
// child is gone and the error is what the run amounts to.
func (e *Extractor) start(ctx context.Context, pdf []byte, mode string) (*Extraction, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	x, err := e.spawn(mode, len(pdf))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("extract: %w", context.Cause(ctx))
		}
		return nil, err
	}
	if err := x.begin(ctx, pdf); err != nil {
		return nil, err
	}
	return x, nil
}

// spawn starts a child in mode that waits for a PDF on stdin; sizeHint is
// the PDF's size, or -1 when it is not known yet (a warm child).
func (e *Extractor) spawn(mode string, sizeHint int) (*Extraction, error) {
	if len(e.Command) == 0 {
		return nil, errors.New("extract: no command for the reader")
	}
	lim := e.limits()
	// The child's life is its own context, not a caller's: it may wait for
	// a PDF, or for the worker that reads its pages.
	runCtx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(runCtx, e.Command[0], e.Command[1:]...)
	cmd.Env = append(childEnv(), e.Env...)
	cmd.Env = append(cmd.Env,
		envExtractMode+"="+mode,
		envExtractMemoryMB+"="+strconv.Itoa(lim.memoryMB),
		envExtractCPUSeconds+"="+strconv.Itoa(cpuSeconds(lim.timeout)),
	)
	if sizeHint >= 0 {
		cmd.Env = append(cmd.Env, envExtractInputBytes+"="+strconv.Itoa(sizeHint))
	}
	x := &Extraction{mode: mode, cmd: cmd, cancel: cancel, stderr: &headWriter{max: maxExtractStderr}, res: childResult{lim: lim}, left: lim.timeout}
	cmd.Stderr = x.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Kill the whole process group: whatever the reader started goes too.
	// Cancel runs before the child is reaped, so its pid is still its own.
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	// Bounds Wait when something the child started holds its pipes open.
	cmd.WaitDelay = extractWaitDelay
	fail := func(err error) (*Extraction, error) {
		x.closeGate()
		cancel()
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fail(fmt.Errorf("extract: stdin pipe: %w", err))
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fail(fmt.Errorf("extract: stdout pipe: %w", err))
	}
	if mode == modeText {
		// The gate is the child's fd 3 (see ExtractMain).
		r, w, err := os.Pipe()
		if err != nil {
			return fail(fmt.Errorf("extract: gate pipe: %w", err))
		}
		defer r.Close()
		x.gate = w
		cmd.ExtraFiles = []*os.File{r}
		cmd.Env = append(cmd.Env, envExtractGate+"=3")
	}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("extract: start reader %q: %w", e.Command[0], err))
	}
	x.stdin = stdin
	x.out = &countingReader{r: stdout, max: lim.maxOutput}
	x.dec = json.NewDecoder(x.out)
	return x, nil
}

// begin writes pdf to a spawned child and reads its first line, with the
// timeout's clock running. On any failure the child is gone and the error
// is what the run amounts to.
func (x *Extraction) begin(ctx context.Context, pdf []byte) error {
	x.resume()
	stop := context.AfterFunc(ctx, x.cancel)
	defer stop()
	// The write ends when the child has read it all, or when Wait closes
	// the pipe of a child that is gone.
	go func() {
		_, _ = x.stdin.Write(pdf)
		_ = x.stdin.Close()
	}()
	x.res.info, x.res.childErr, x.res.readErr = readInfo(x.dec)
	if x.res.readErr != nil || x.res.childErr != "" {
		return x.finish(ctx)
	}
	if err := ctx.Err(); err != nil {
		x.Close()
		return fmt.Errorf("extract: %w", context.Cause(ctx))
	}
	if x.mode == modeText {
		x.pause() // until Pages
	}
	return nil
}

// Info is what the child said about the PDF.
func (x *Extraction) Info() Info { return x.res.info }

// Pages lets the child read the text of every page and calls onPage (if not
// nil) for each, in order, as Extractor.Extract does; the child is gone when
// it returns.
func (x *Extraction) Pages(ctx context.Context, onPage func(Page) error) error {
	return x.read(ctx, onPage)
}

// read reads what the child writes after its first line, as its mode has
// it, and waits for the child to end: the pages' text in text mode (after
// opening the gate), the page's image in render mode, the boxes in locate
// mode, nothing more in info mode.
func (x *Extraction) read(ctx context.Context, onPage func(Page) error) error {
	if err := ctx.Err(); err != nil {
		x.Close()
		return fmt.Errorf("extract: %w", err)
	}
	if x.mode == modeText {
		x.resume()
	}
	stop := context.AfterFunc(ctx, x.cancel)
	defer stop()
	if x.gate != nil {
		// A child that is not silo may have closed its end: what it wrote
		// is read all the same.
		_, _ = x.gate.Write([]byte{1})
		x.closeGate()
	}
	switch x.mode {
	case modeText:
		x.res.childErr, x.res.readErr = readPages(x.dec, x.res.info.Pages, func(p Page) error {
			if p.Error != "" {
				if x.res.pageErrors == 0 {
					x.res.firstPageError = p.Error
				}
				x.res.pageErrors++
			}
			if onPage == nil {
				return nil
			}
			return onPage(p)
		})
	case modeRender:
		x.res.childErr, x.res.readErr = readImage(x.dec, onPage)
	case modeLocate:
		x.res.childErr, x.res.readErr = readBoxes(x.dec, onPage)
	}
	return x.finish(ctx)
}

// Close stops the child without reading any page; it does nothing once
// Pages has returned.
func (x *Extraction) Close() {
	x.closeGate()
	x.cancel()
	x.mu.Lock()
	ended := x.ended
	x.mu.Unlock()
	if !ended {
		_ = x.cmd.Wait()
		x.mu.Lock()
		x.ended = true
		x.mu.Unlock()
	}
}

func (x *Extraction) closeGate() {
	if x.gate != nil {
		_ = x.gate.Close()
	}
}

// resume starts the timeout's clock, with what is left of it.
func (x *Extraction) resume() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.since = time.Now()
	x.timer = time.AfterFunc(x.left, func() {
		x.mu.Lock()
		x.timedOut = true
		x.mu.Unlock()
		x.cancel()
	})
}

// pause stops the timeout's clock.
func (x *Extraction) pause() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.timer != nil && x.timer.Stop() {
		x.left -= time.Since(x.since)
	}
	x.timer = nil
}

// finish waits for the child to end (killing it if what it said already
// decided the run) and returns what its run amounts to; ctx is the caller's.
func (x *Extraction) finish(ctx context.Context) error {
	r := &x.res
	var early *earlyEOFError
	r.eof = errors.As(r.readErr, &early)
	if (r.readErr != nil && !r.eof) || r.childErr != "" {
		// Stop the child now: it may be blocked writing, or still working.
		x.cancel()
	}
	x.closeGate()
	r.waitErr = x.cmd.Wait()
	x.pause()
	x.cancel()
	x.mu.Lock()
	x.ended = true
	r.timedOut = x.timedOut
	x.mu.Unlock()
	r.overOutput = x.out.over
	r.stderr = x.stderr.String()
	return r.err(ctx)
}

// extractLimits are an Extractor's limits with the defaults filled in.
type extractLimits struct {
	timeout   time.Duration
	memoryMB  int
	maxOutput int64
}

func (e *Extractor) limits() extractLimits {
	lim := extractLimits{timeout: e.Timeout, memoryMB: e.MemoryMB, maxOutput: e.MaxOutput}
	if lim.timeout <= 0 {
		lim.timeout = defaultExtractTimeout
	}
	if lim.memoryMB <= 0 {
		lim.memoryMB = defaultExtractMemoryMB
	}
	if lim.maxOutput <= 0 {
		lim.maxOutput = defaultExtractMaxOutput
	}
	return lim
}

// childResult is everything known about one run of the child.
type childResult struct {
	lim            extractLimits
	info           Info
	childErr       string // the child's {"error": …}
	readErr        error  // from readInfo or readPages
	eof            bool   // readErr is the output ending too soon
	waitErr        error
	overOutput     bool
	timedOut       bool
	stderr         string
	pageErrors     int
	firstPageError string
}

// err decides what a run amounts to; ctx is the caller's.
func (r *childResult) err(ctx context.Context) error {
	var cbErr *callbackError
	if errors.As(r.readErr, &cbErr) {
		return cbErr.err
	}
	ok := r.readErr == nil && r.childErr == "" && r.waitErr == nil && !r.overOutput
	if !ok && ctx.Err() != nil {
		// Not the PDF's fault: the caller gave up (a shutdown, say).
		return fmt.Errorf("extract: %w", context.Cause(ctx))
	}
	fail := func(kind error, detail string) error {
		return &ExtractError{Kind: kind, Detail: detail, Stderr: r.stderr}
	}
	switch {
	case r.overOutput:
		return fail(ErrTextTooLarge, "")
	case ok:
	case r.timedOut:
		return fail(ErrTimeout, "after "+formatSeconds(r.lim.timeout))
	case r.childErr == childErrPassword:
		return fail(ErrPasswordProtected, "")
	case strings.HasPrefix(r.childErr, childErrNotPDF):
		detail := strings.TrimPrefix(r.childErr, childErrNotPDF)
		return fail(ErrNotPDF, strings.TrimSpace(strings.TrimPrefix(detail, ":")))
	case r.childErr == childErrTooLarge:
		return fail(ErrPDFTooLarge, fmt.Sprintf("it is over %d MiB", MaxExtractInput>>20))
	case r.childErr != "" && outOfMemory(r.stderr):
		return fail(ErrReaderFailed, fmt.Sprintf("the reader ran out of memory (limit %d MB)", r.lim.memoryMB))
	case r.childErr != "":
		return fail(ErrReaderFailed, "the reader failed ("+r.childErr+")")
	case r.readErr != nil && !r.eof:
		// The output made no sense; the child was killed for it.
		return fail(ErrReaderFailed, r.readErr.Error())
	case r.waitErr != nil:
		return fail(ErrReaderFailed, stoppedDetail(r.waitErr, r.stderr, r.lim.memoryMB))
	case r.readErr != nil:
		return fail(ErrReaderFailed, r.readErr.Error())
	}
	if r.pageErrors > 0 && r.pageErrors == r.info.Pages {
		// Every page failed: most likely MuPDF hit the memory limit, which
		// it survives page by page. Nothing was read, so the PDF failed.
		if r.info.Pages == 1 {
			return fail(ErrReaderFailed, fmt.Sprintf("its only page could not be read (%s)", r.firstPageError))
		}
		return fail(ErrReaderFailed, fmt.Sprintf("none of its %d pages could be read (%s)", r.info.Pages, r.firstPageError))
	}
	return nil
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

// stoppedDetail describes how the child ended, for a person.
func stoppedDetail(waitErr error, stderr string, memoryMB int) string {
	if outOfMemory(stderr) {
		return fmt.Sprintf("the reader ran out of memory (limit %d MB)", memoryMB)
	}
	// A Go runtime crash says what happened on a line of its own.
	for _, line := range strings.Split(stderr, "\n") {
		for _, p := range []string{"fatal error: ", "panic: ", "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE"} {
			if strings.HasPrefix(line, p) {
				return "the reader crashed (" + strings.TrimSpace(line) + ")"
			}
		}
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		return "the reader stopped (" + exitErr.String() + ")"
	}
	return "the reader stopped (" + waitErr.Error() + ")"
}

// outOfMemory tells whether the child's stderr shows that it hit its memory
// limit: the Go runtime, the race detector and MuPDF each say so in their own
// words.
func outOfMemory(stderr string) bool {
	stderr = strings.ToLower(stderr)
	for _, s := range []string{
		"out of memory",                  // Go: the heap cannot grow
		"cannot allocate memory",         // Go: mmap failed (ENOMEM)
		"failed to create new os thread", // Go: pthread_create failed
		"failed to allocate",             // ThreadSanitizer, under -race
		"alloc (",                        // MuPDF: "malloc (N bytes) failed"
	} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// formatSeconds writes d in seconds for a person: "60 s", "1.5 s".
func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}

// cpuSeconds is the child's CPU-time limit: a backstop that ends a child that
// spins on after its parent has gone. The wall-clock timeout comes first.
func cpuSeconds(timeout time.Duration) int {
	return int(2*timeout.Seconds()) + 10
}

// childEnv is the part of the server's environment the child inherits.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		key, _, _ := strings.Cut(kv, "=")
		switch key {
		case "PATH", "TMPDIR", "LANG", "LC_ALL",
			"GODEBUG", "GOGC", "GOMAXPROCS", "GOTRACEBACK", "GORACE", "GOCOVERDIR":
			env = append(env, kv)
		}
	}
	return env
}

// countingReader fails once more than max bytes have been read.
type countingReader struct {
	r    io.Reader
	n    int64
	max  int64
	over bool
}

var errOutputTooLarge = errors.New("output over the limit")

func (c *countingReader) Read(p []byte) (int, error) {
	if c.over {
		return 0, errOutputTooLarge
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		c.over = true
		return n, errOutputTooLarge
	}
	return n, err
}

// headWriter keeps the first max bytes written to it and drops the rest; it
// never fails, so the child is never blocked on stderr.
type headWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped bool
}

func (w *headWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.buf.Len(); room < len(p) {
		w.buf.Write(p[:max(room, 0)])
		w.dropped = true
	} else {
		w.buf.Write(p)
	}
	return len(p), nil
}

func (w *headWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.buf.String()
	if w.dropped {
		s += "…"
	}
	return s
}

// ExtractMain is the extraction child ("silo extract"): it reads one PDF from
// stdin and writes its page count, title and page texts to stdout as JSON
// lines (see the top of this file). It limits its own memory first, from
// SILO_EXTRACT_MEMORY_MB (default 1024). With SILO_EXTRACT_MODE=info it writes
// only the first line. It returns the process exit code.
func ExtractMain(stdin io.Reader, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "silo extract: "+format+"\n", args...)
	}
	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	emit := func(v any) bool {
		if err := enc.Encode(v); err != nil {
			logf("write: %v", err)
			return false
		}
		if err := out.Flush(); err != nil {
			logf("write: %v", err)
			return false
		}
		return true
	}
	fail := func(code int, msg string) int {
		logf("%s", msg)
		if !emit(errorLine{Error: msg}) {
			return exitExtractFailed
		}
		return code
	}

	memoryMB, err := envInt(envExtractMemoryMB, defaultExtractMemoryMB)
	if err != nil {
		logf("%v", err)
		return exitExtractFailed
	}
	cpu, err := envInt(envExtractCPUSeconds, defaultExtractCPU)
	if err != nil {
		logf("%v", err)
		return exitExtractFailed
	}
	if err := limitChild(memoryMB, cpu); err != nil {
		logf("%v", err)
		return exitExtractFailed
	}

	pdf, err := readInput(stdin)
	if err != nil {
		logf("read stdin: %v", err)
		return exitExtractFailed
	}
	if len(pdf) > MaxExtractInput {
		return fail(exitExtractTooLarge, childErrTooLarge)
	}
	pdf, err = pdfStart(pdf)
	if err != nil {
		return fail(exitExtractNotPDF, childErrNotPDF+": "+err.Error())
	}

	doc, err := fitz.NewFromMemory(pdf)
	if doc != nil {
		defer doc.Close()
	}
	switch {
	case errors.Is(err, fitz.ErrNeedsPassword):
		return fail(exitExtractPassword, childErrPassword)
	case errors.Is(err, fitz.ErrOpenDocument), errors.Is(err, fitz.ErrOpenMemory):
		return fail(exitExtractNotPDF, childErrNotPDF+": it cannot be opened")
	case err != nil:
		// No context (out of memory): the reader's fault, not the file's.
		return fail(exitExtractFailed, strings.TrimPrefix(err.Error(), "fitz: "))
	}

	pages := doc.NumPage()
	if pages <= 0 {
		// MuPDF finds no pages when the page tree is broken beyond repair.
		return fail(exitExtractNotPDF, childErrNotPDF+": no pages could be found in it")
	}
	if !emit(infoLine{Pages: pages, Title: pdfTitle(doc)}) {
		return exitExtractFailed
	}
	switch os.Getenv(envExtractMode) {
	case modeInfo:
		return exitExtractOK
	case modeRender:
		return renderPage(doc, pages, emit, fail)
	case modeLocate:
		return locatePage(doc, pages, emit, fail)
	default: // modeText
		if !awaitGate() {
			return exitExtractOK // the parent wants no pages
		}
		for i := range pages {
			if !emit(extractPage(doc, i, logf)) {
				return exitExtractFailed
			}
		}
		return exitExtractOK
	}
}

// awaitGate waits until the parent writes a byte to the gate, the file
// descriptor SILO_EXTRACT_GATE names, and reports whether it did: false means
// the parent closed it (or went away) instead. Without a gate it returns true
// at once.
func awaitGate() bool {
	fd, err := strconv.Atoi(os.Getenv(envExtractGate))
	if err != nil || fd < 3 {
		return true
	}
	gate := os.NewFile(uintptr(fd), "gate")
	defer gate.Close()
	var b [1]byte
	n, _ := gate.Read(b[:])
	return n == 1
}

// readInput reads the PDF from stdin, at most MaxExtractInput+1 bytes. The
// parent's size hint saves the copies of a growing buffer, which count
// against the memory limit.
func readInput(stdin io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	if n, err := strconv.Atoi(os.Getenv(envExtractInputBytes)); err == nil && n >= 0 && n <= MaxExtractInput {
		buf.Grow(n + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(stdin, MaxExtractInput+1))
	return buf.Bytes(), err
}

// extractPage reads the text of page i (from 0). It is the one place that
// looks at a page, so OCR of pages without a text layer can go here.
func extractPage(doc *fitz.Document, i int, logf func(string, ...any)) pageLine {
	text, err := doc.Text(i)
	if err != nil {
		logf("page %d: %v", i+1, err)
		return pageLine{N: i + 1, Error: strings.TrimPrefix(err.Error(), "fitz: ")}
	}
	return pageLine{N: i + 1, Text: text}
}

// pdfStart checks the PDF signature, which readers accept anywhere in the
// first KiB, and returns pdf from it (go-fitz wants it at the very start).
func pdfStart(pdf []byte) ([]byte, error) {
	if len(pdf) == 0 {
		return nil, errors.New("the file is empty")
	}
	i := bytes.Index(pdf[:min(len(pdf), 1024)], []byte("%PDF-"))
	if i < 0 {
		return nil, errors.New("no PDF header")
	}
	return pdf[i:], nil
}

// pdfTitle returns the title from the document's metadata, in UTF-8 (MuPDF
// decodes UTF-16 titles). go-fitz returns a NUL-padded 256-byte buffer, so a
// longer title is cut, and a rune cut in half is dropped.
func pdfTitle(doc *fitz.Document) string {
	title, _, _ := strings.Cut(doc.Metadata()["title"], "\x00")
	return strings.TrimSpace(strings.ToValidUTF8(title, ""))
}

// envInt reads a positive integer from the environment.
func envInt(key string, def int) (int, error) {
	s := os.Getenv(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", key, s)
	}
	return n, nil
}

// limitChild sets the child's resource limits before it reads any input.
//
// Memory is limited with RLIMIT_DATA, which since Linux 4.7 counts every
// private writable mapping: the Go heap, thread stacks and MuPDF's mallocs.
// MuPDF survives a failed malloc (the page fails), the Go runtime does not
// (the child dies with "out of memory"); both are reported as such. The
// obvious RLIMIT_AS does not work: the Go runtime reserves about 1.6 GB of
// address space at start, so any limit under about 2 GB kills the child
// before it reads a byte, whatever the PDF.
func limitChild(memoryMB, cpuSec int) error {
	limit := uint64(memoryMB) << 20
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		return fmt.Errorf("set memory limit of %d MiB: %w", memoryMB, err)
	}
	// The Go heap is part of the limit: collect before reaching it. MuPDF's
	// cache of fonts and images is too: evict before filling it. The child
	// lives for one PDF and makes little garbage, so the soft limit is its
	// only GC trigger: no collection at all for most PDFs, about a tenth
	// less CPU per child (BENCHMARKS.md, issue 4).
	debug.SetMemoryLimit(int64(limit) / 2)
	debug.SetGCPercent(-1)
	fitz.MaxStore = int(min(limit/4, 256<<20))
	// At the hard limit the kernel sends SIGKILL (the Go runtime ignores the
	// SIGXCPU sent at the soft one).
	cpu := uint64(cpuSec)
	if err := syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: cpu, Max: cpu}); err != nil {
		return fmt.Errorf("set CPU limit of %d s: %w", cpuSec, err)
	}
	return nil
}
