package embed

import "testing"

func TestHashEmbedAllocations(t *testing.T) {
	for _, dims := range []int{384, 2000} {
		e := NewHash(dims)
		s := scratchPool.New().(*hashScratch)
		v := make([]float32, dims)
		text := BenchText(0)
		e.embed(s, text, v) // the scratch table grows to fit once
		allocs := testing.AllocsPerRun(100, func() {
			clear(v)
			e.embed(s, text, v)
		})
		if allocs != 0 {
			t.Errorf("dims %d: got %v allocations per text, want 0", dims, allocs)
		}
	}
}
