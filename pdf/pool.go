package pdf

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// handoffTTL is how long a reader child handed over at upload (Handoff)
// waits for a worker.
const handoffTTL = 30 * time.Second

// maxWarmInput is the largest PDF a warm child reads; a larger one gets a
// child of its own that knows its size ahead (SILO_EXTRACT_INPUT_BYTES).
const maxWarmInput = 16 << 20

// Pool starts the reader children of uploads, some of them ahead of need,
// and hands each upload's child to the worker that ingests its document, so
// that a document starts one child, not two. It is safe for concurrent use.
type Pool struct {
	Extractor *Extractor
	// Warm is how many reader children Start keeps started ahead, waiting
	// for a PDF (of up to 16 MiB), so that an upload does not wait for a
	// child's start-up: about 12 ms of CPU for silo's binary, most of it
	// the package initialisers of its dependencies. Each child still reads
	// one PDF only. 0 starts every child when needed.
	Warm int
	// MaxHandoffs is how many children handed over may wait for a worker
	// at once; more are closed at once. At least 1.
	MaxHandoffs int
	Log         *slog.Logger

	mu       sync.Mutex
	handoffs map[string]*handoff // by document public id
	warm     []*Extraction       // spawned, waiting for a PDF
	spawning int
	stopped  bool
}

// Start starts the reader child of an upload (Extractor.Start), with a warm
// child when one waits. Handoff then gives it to the workers.
func (p *Pool) Start(ctx context.Context, pdf []byte) (*Extraction, error) {
	if x := p.takeWarm(len(pdf)); x != nil {
		err := x.begin(ctx, pdf)
		var xe *ExtractError
		if err == nil || !errors.As(err, &xe) || xe.Kind != ErrReaderFailed {
			return x, err
		}
		// A warm child may have died while it waited: a new child, and
		// not the warm one, says whether the PDF is at fault.
	}
	return p.Extractor.Start(ctx, pdf)
}

// takeWarm returns a warm child for a PDF of size bytes, if one waits, and
// starts warm children up to Warm again in the background.
func (p *Pool) takeWarm(size int) *Extraction {
	if p.Warm <= 0 || size > maxWarmInput {
		return nil
	}
	p.mu.Lock()
	var x *Extraction
	if len(p.warm) > 0 {
		x = p.warm[0]
		p.warm = p.warm[1:]
	}
	p.mu.Unlock()
	go p.refill()
	return x
}

// refill starts children until Warm of them wait for a PDF.
func (p *Pool) refill() {
	p.mu.Lock()
	n := p.Warm - len(p.warm) - p.spawning
	if p.stopped || n <= 0 {
		p.mu.Unlock()
		return
	}
	p.spawning += n
	p.mu.Unlock()
	for range n {
		x, err := p.Extractor.spawn(modeText, -1)
		if err != nil {
			p.Log.Warn("pdf: start a warm reader", "err", err)
		}
		p.mu.Lock()
		p.spawning--
		if err == nil && !p.stopped {
			p.warm = append(p.warm, x)
			x = nil
		}
		p.mu.Unlock()
		if x != nil {
			x.Close()
		}
	}
}

// handoff is a reader child waiting for the worker that ingests its document.
type handoff struct {
	x      *Extraction
	expire *time.Timer
}

// Handoff gives the reader child that checked a document's PDF at upload
// (Start) to the worker that ingests it (Claim), which then reads the pages
// from it instead of starting a child of its own. The Pool owns x from then
// on. If no worker of this process claims the document within handoffTTL
// (another instance did, or the queue is long), or MaxHandoffs children
// wait already, x is closed and the worker starts a child.
func (p *Pool) Handoff(docID string, x *Extraction) {
	p.mu.Lock()
	if p.stopped || len(p.handoffs) >= max(p.MaxHandoffs, 1) {
		p.mu.Unlock()
		x.Close()
		return
	}
	if p.handoffs == nil {
		p.handoffs = map[string]*handoff{}
	}
	old := p.handoffs[docID]
	h := &handoff{x: x}
	h.expire = time.AfterFunc(handoffTTL, func() {
		if p.take(docID, h) {
			x.Close()
		}
	})
	p.handoffs[docID] = h
	p.mu.Unlock()
	if old != nil {
		old.expire.Stop()
		old.x.Close()
	}
}

// Claim returns the reader child handed over for a document, or nil; the
// caller owns it.
func (p *Pool) Claim(docID string) *Extraction {
	p.mu.Lock()
	h := p.handoffs[docID]
	p.mu.Unlock()
	if h == nil || !p.take(docID, h) {
		return nil
	}
	h.expire.Stop()
	return h.x
}

// take removes h from the waiting children, if it is still there; whoever
// takes it owns its child.
func (p *Pool) take(docID string, h *handoff) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.handoffs[docID] != h {
		return false
	}
	delete(p.handoffs, docID)
	return true
}

// Close stops every waiting child, handed over or warm, for good: the
// workers are gone. Start still starts children; Handoff closes them.
func (p *Pool) Close() {
	p.mu.Lock()
	p.stopped = true
	handoffs, warm := p.handoffs, p.warm
	p.handoffs, p.warm = nil, nil
	p.mu.Unlock()
	for _, h := range handoffs {
		h.expire.Stop()
		h.x.Close()
	}
	for _, x := range warm {
		x.Close()
	}
}
