package main

import (
	"os"
	"path/filepath"
	"testing"

	"silo/wordvec"
)

// The tool keeps plain lower-case words in the package's order, with
// their directions, in the format wordvec reads.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "wink.json")
	// wink's vectors carry two numbers of its own after the dimensions.
	data := `{"dimensions": 3,
		"words": ["the", ",", "law", "Act", "act", "co-op", "short"],
		"vectors": {
			"the": [1, 0, 0, 5.1, 0], ",": [0, 1, 0, 5, 1], "law": [0.5, 0.5, 0, 4, 2],
			"Act": [0, 0, 1, 3, 3], "act": [0, 0, -2, 3, 4], "co-op": [1, 1, 1, 2, 5], "short": [1]}}`
	if err := os.WriteFile(in, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "glove.bin")
	if err := run(in, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := wordvec.Load(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []string{"the", "law", "act"} {
		if tab.ID(w) != int32(i) {
			t.Errorf("ID(%q) = %d, want %d", w, tab.ID(w), i)
		}
	}
	for _, w := range []string{",", "Act", "co-op", "short"} {
		if tab.ID(w) != -1 {
			t.Errorf("%q was kept", w)
		}
	}
	if s := tab.Similarity(tab.ID("the"), tab.ID("law")); s < 0.70 || s > 0.72 {
		t.Errorf("the·law = %.3f, want cos 45° = 0.707", s)
	}
	if s := tab.Similarity(tab.ID("act"), tab.ID("act")); s < 0.999 {
		t.Errorf("act·act = %.3f, want 1", s)
	}
}
