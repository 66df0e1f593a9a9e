// Tests of Pool: the warm children started ahead of uploads, the hand-over of
// an upload's child to the worker that reads its pages, and what becomes of
// the children nobody claims. The children are real readers (the test
// binary, see TestMain in main_test.go).

package pdf_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"silo/pdf"
	"silo/testrig/pdfchild"
)

// newPool is a Pool of test-binary readers that logs to the test's output.
func newPool(t *testing.T, warm, maxHandoffs int) *pdf.Pool {
	return &pdf.Pool{
		Extractor:   pdfchild.Extractor(),
		Warm:        warm,
		MaxHandoffs: maxHandoffs,
		Log:         slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
}

// gone tells whether the process pid has ended and been reaped.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// readsTwoPages checks that x, a child started on two-pages.pdf, reads its
// two pages with their text.
func readsTwoPages(t *testing.T, x *pdf.Extraction) {
	t.Helper()
	if got := x.Info(); got.Pages != 2 {
		t.Errorf("got %+v, want 2 pages", got)
	}
	var pages []pdf.Page
	if err := x.Pages(context.Background(), func(p pdf.Page) error {
		pages = append(pages, p)
		return nil
	}); err != nil {
		t.Fatalf("Pages: %v", err)
	}
	if len(pages) != 2 || !strings.Contains(pages[1].Text, "two") {
		t.Errorf("got pages %+v, want 2, the second with its text", pages)
	}
}

// waitWarm waits until n warm children wait in p and returns them.
func waitWarm(t *testing.T, p *pdf.Pool, n int) []*pdf.Extraction {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if warm := p.WarmChildren(); len(warm) == n {
			return warm
		}
	}
	t.Fatalf("got %d warm children, want %d", len(p.WarmChildren()), n)
	return nil
}

// TestPoolWarm checks the children started ahead of the uploads: an upload
// takes one that waits, each reads one PDF only, one that died while it
// waited is not taken for the PDF's fault, and Close stops those that wait.
func TestPoolWarm(t *testing.T) {
	ctx := context.Background()
	file := readFixture(t, "two-pages.pdf")
	p := newPool(t, 2, 1)
	defer p.Close()
	seen := map[int]bool{}
	for i := range 5 {
		x, err := p.Start(ctx, file)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if seen[x.Pid()] {
			t.Fatalf("start %d: a child read a second PDF", i)
		}
		seen[x.Pid()] = true
		readsTwoPages(t, x)
		time.Sleep(50 * time.Millisecond) // let the warm children start
	}

	// An upload takes the warm child that waited longest, and another
	// starts in its place.
	warm := waitWarm(t, p, 2)
	x, err := p.Start(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if x.Pid() != warm[0].Pid() {
		t.Errorf("Start read the PDF with child %d, want the warm child %d", x.Pid(), warm[0].Pid())
	}
	readsTwoPages(t, x)
	for _, w := range waitWarm(t, p, 2) {
		if w.Pid() == x.Pid() {
			t.Errorf("the child that read the PDF still waits for another")
		}
	}

	// Kill the children that wait: the next upload must still be read.
	for _, w := range p.WarmChildren() {
		_ = syscall.Kill(-w.Pid(), syscall.SIGKILL)
	}
	time.Sleep(50 * time.Millisecond)
	x, err = p.Start(ctx, file)
	if err != nil || x.Info().Pages != 2 {
		t.Fatalf("after the warm children died: got %v; want 2 pages", err)
	}
	readsTwoPages(t, x)

	// Close stops the children that wait, and none start ahead after it;
	// an upload still gets a child of its own.
	warm = waitWarm(t, p, 2)
	p.Close()
	if n := len(p.WarmChildren()); n != 0 {
		t.Errorf("after Close: %d warm children, want none", n)
	}
	for _, w := range warm {
		if !gone(w.Pid()) {
			t.Errorf("warm child %d outlived Close", w.Pid())
		}
	}
	x, err = p.Start(ctx, file)
	if err != nil {
		t.Fatalf("Start after Close: %v", err)
	}
	readsTwoPages(t, x)
	time.Sleep(200 * time.Millisecond)
	if n := len(p.WarmChildren()); n != 0 {
		t.Errorf("a Start after Close left %d warm children, want none", n)
	}
}

// TestPoolNotWarm checks that a Pool with Warm 0 starts a child per upload
// and none ahead.
func TestPoolNotWarm(t *testing.T) {
	p := newPool(t, 0, 1)
	defer p.Close()
	x, err := p.Start(context.Background(), readFixture(t, "two-pages.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	readsTwoPages(t, x)
	time.Sleep(200 * time.Millisecond)
	if n := len(p.WarmChildren()); n != 0 {
		t.Errorf("got %d warm children, want none", n)
	}
}

// TestPoolHandoff checks the hand-over of an upload's child: a worker claims
// it once, a second child for the same document replaces the first, a child
// beyond MaxHandoffs or after Close is closed at once, and Close stops those
// that wait.
func TestPoolHandoff(t *testing.T) {
	ctx := context.Background()
	file := readFixture(t, "two-pages.pdf")
	start := func(t *testing.T, p *pdf.Pool) *pdf.Extraction {
		t.Helper()
		x, err := p.Start(ctx, file)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}

	t.Run("claimed once", func(t *testing.T) {
		t.Parallel()
		p := newPool(t, 0, 2)
		defer p.Close()
		x := start(t, p)
		p.Handoff("doc", x)
		if got := p.Claim("other"); got != nil {
			t.Errorf("Claim of another document: got child %d, want none", got.Pid())
		}
		got := p.Claim("doc")
		if got != x {
			t.Fatalf("Claim: got %v, want the child handed over", got)
		}
		if again := p.Claim("doc"); again != nil {
			t.Errorf("a second Claim: got child %d, want none", again.Pid())
		}
		readsTwoPages(t, got)
	})

	t.Run("handed over again", func(t *testing.T) {
		t.Parallel()
		p := newPool(t, 0, 2)
		defer p.Close()
		first, second := start(t, p), start(t, p)
		p.Handoff("doc", first)
		p.Handoff("doc", second)
		if !gone(first.Pid()) {
			t.Error("the child replaced by a second one for the same document is still there")
		}
		got := p.Claim("doc")
		if got != second {
			t.Fatalf("Claim: got %v, want the second child", got)
		}
		readsTwoPages(t, got)
	})

	for _, maxHandoffs := range []int{0, 1} { // 0 is taken for 1
		t.Run(fmt.Sprintf("over MaxHandoffs %d", maxHandoffs), func(t *testing.T) {
			t.Parallel()
			p := newPool(t, 0, maxHandoffs)
			defer p.Close()
			a, b := start(t, p), start(t, p)
			p.Handoff("a", a)
			p.Handoff("b", b)
			if !gone(b.Pid()) {
				t.Error("a child handed over beyond MaxHandoffs is still there")
			}
			if gone(a.Pid()) {
				t.Error("the child handed over first is gone")
			}
			if got := p.Claim("b"); got != nil {
				t.Errorf("Claim of the child beyond MaxHandoffs: got child %d, want none", got.Pid())
			}
			if got := p.Claim("a"); got != a {
				t.Fatalf("Claim: got %v, want the child handed over first", got)
			}
			readsTwoPages(t, a)
			// A claimed child no longer counts: another may wait.
			c := start(t, p)
			p.Handoff("c", c)
			if got := p.Claim("c"); got != c {
				t.Fatalf("Claim after a Claim: got %v, want the child handed over", got)
			}
			c.Close()
		})
	}

	t.Run("Close", func(t *testing.T) {
		t.Parallel()
		p := newPool(t, 0, 2)
		x := start(t, p)
		p.Handoff("doc", x)
		p.Close()
		if !gone(x.Pid()) {
			t.Error("a child handed over outlived Close")
		}
		if got := p.Claim("doc"); got != nil {
			t.Errorf("Claim after Close: got child %d, want none", got.Pid())
		}
		// Start still starts children; one handed over is closed at once.
		y := start(t, p)
		p.Handoff("late", y)
		if !gone(y.Pid()) {
			t.Error("a child handed over after Close is still there")
		}
		if got := p.Claim("late"); got != nil {
			t.Errorf("Claim of a child handed over after Close: got child %d, want none", got.Pid())
		}
	})
}

// TestPoolHandoffExpires checks that a child nobody claims within
// HandoffTTL is closed, and that one claimed in time is not. The Pool runs
// on synctest's clock; the children are real, started outside the bubble.
func TestPoolHandoffExpires(t *testing.T) {
	file := readFixture(t, "two-pages.pdf")
	e := pdfchild.Extractor()
	var xs [2]*pdf.Extraction
	for i := range xs {
		x, err := e.Start(context.Background(), file)
		if err != nil {
			t.Fatal(err)
		}
		xs[i] = x
	}
	unclaimed, claimed := xs[0], xs[1]
	synctest.Test(t, func(t *testing.T) {
		p := &pdf.Pool{Extractor: e, MaxHandoffs: 2, Log: slog.New(slog.NewTextHandler(t.Output(), nil))}
		defer p.Close()
		p.Handoff("unclaimed", unclaimed)
		p.Handoff("claimed", claimed)
		time.Sleep(pdf.HandoffTTL - time.Second)
		synctest.Wait()
		if gone(unclaimed.Pid()) {
			t.Fatal("a child handed over was closed before HandoffTTL")
		}
		if got := p.Claim("claimed"); got != claimed {
			t.Fatalf("Claim before HandoffTTL: got %v, want the child handed over", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !gone(unclaimed.Pid()) {
			t.Error("a child nobody claimed outlived HandoffTTL")
		}
		if got := p.Claim("unclaimed"); got != nil {
			t.Errorf("Claim after HandoffTTL: got child %d, want none", got.Pid())
		}
		if gone(claimed.Pid()) {
			t.Error("the child claimed in time was closed")
		}
	})
	readsTwoPages(t, claimed)
}
