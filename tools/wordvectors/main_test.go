package main

import (
	"os"
	"path/filepath"
	"strings"
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
	// Asked for more plain words than there are, or given no dimensions, it
	// fails and leaves the table it would replace alone.
	if err := os.WriteFile(out, []byte("the old table"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(in, out, 4); err == nil || !strings.Contains(err.Error(), "only 3 plain words of 3 dimensions, want 4") {
		t.Errorf("4 words of 3: got %v", err)
	}
	noDims := filepath.Join(dir, "nodims.json")
	if err := os.WriteFile(noDims, []byte(`{"words": ["law"], "vectors": {"law": [1, 2]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(noDims, out, 1); err == nil || !strings.Contains(err.Error(), "no dimensions") {
		t.Errorf("no dimensions: got %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "the old table" {
		t.Errorf("a failed run changed the table: %q", b)
	}
	if err := run(in, out, 3); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(out + ".*"); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
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
