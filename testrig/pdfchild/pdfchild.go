// Package pdfchild makes a test binary its own PDF reader child, as silo's
// binary is for "silo extract": TestMain calls Run first thing, and the
// Extractor of this package starts the test binary as the child. It imports
// only silo/pdf, so the tests of any package but pdf's internal ones can
// use it.
package pdfchild

import (
	"os"
	"strings"

	"silo/pdf"
)

// env makes the test binary act as "silo extract".
const env = "SILO_EXTRACT_CHILD"

// Run turns the test binary into the reader child when an Extractor of this
// package started it, and returns at once otherwise.
func Run() {
	if os.Getenv(env) == "1" {
		os.Exit(pdf.ChildMain(os.Stdin, os.Stdout, os.Stderr))
	}
}

// Extractor runs the test binary as the reader child (see Run). Under
// -race, a child would sleep a second at exit (ThreadSanitizer's
// atexit_sleep_ms); its environment turns that off.
func Extractor() *pdf.Extractor {
	return &pdf.Extractor{
		Command: []string{os.Args[0]},
		Env: []string{
			env + "=1",
			"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
		},
	}
}
