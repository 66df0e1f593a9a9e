package pdf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Extractor reads PDFs in a child process with a timeout, a memory limit and
// a cap on the output. The zero value is not usable: Command must be set. An
// Extractor is safe for concurrent use; each call starts its own child. It
// needs a Unix (process groups, rlimits); the limits are measured on Linux.
type Extractor struct {
	// Command is the child, e.g. {os.Executable(), "extract"}, which must end
	// up calling ChildMain.
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
// one child, not two (Pool.Start, Pool.Handoff).
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
		// The gate is the child's fd 3 (see ChildMain).
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
// mode.
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
		return fail(ErrPDFTooLarge, fmt.Sprintf("it is over %d MiB", maxExtractInput>>20))
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
