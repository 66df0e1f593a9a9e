package pdf

// HandoffTTL is how long a child handed over waits for a worker.
const HandoffTTL = handoffTTL

// Pid is the process id of the child, for tests that check it is gone.
func (x *Extraction) Pid() int { return x.cmd.Process.Pid }

// WarmChildren returns the warm children that wait for a PDF, oldest first.
func (p *Pool) WarmChildren() []*Extraction {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*Extraction(nil), p.warm...)
}
