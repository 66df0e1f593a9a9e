package pdf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/gen2brain/go-fitz"
)

// ChildMain is the extraction child ("silo extract"): it reads one PDF from
// stdin and writes its page count, title and page texts to stdout as JSON
// lines (see protocol.go). It limits its own memory first, from
// SILO_EXTRACT_MEMORY_MB (default 1024). It returns the process exit code.
func ChildMain(stdin io.Reader, stdout, stderr io.Writer) int {
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
	if len(pdf) > maxExtractInput {
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

// readInput reads the PDF from stdin, at most maxExtractInput+1 bytes. The
// parent's size hint saves the copies of a growing buffer, which count
// against the memory limit.
func readInput(stdin io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	if n, err := strconv.Atoi(os.Getenv(envExtractInputBytes)); err == nil && n >= 0 && n <= maxExtractInput {
		buf.Grow(n + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(stdin, maxExtractInput+1))
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
	// only GC trigger: no collection at all for most PDFs.
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
