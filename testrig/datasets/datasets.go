// Package datasets reads ../shared/datasets for tests: the sample PDFs (with
// what files.json says of them) and the SQuAD PDFs. A missing folder skips
// the test, except under CI=true, where it fails.
package datasets

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// root is ../shared/datasets from the repository's root; tests run one
// folder below it.
var root = filepath.Join("..", "..", "shared", "datasets")

// Dir returns a folder of the datasets, e.g. "sample-pdfs".
func Dir(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(root, name)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("datasets: %v", err)
		}
		t.Skipf("datasets: %v", err)
	}
	return dir
}

// Read returns the bytes of a file in a folder of the datasets.
func Read(t testing.TB, folder, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(t, folder), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SamplePDF is one entry of sample-pdfs/files.json.
type SamplePDF struct {
	Path      string `json:"path"`
	Pages     int    `json:"pages"`
	Encrypted bool   `json:"encrypted"`
}

// SamplePDFs returns the sample-pdfs folder and the PDFs present in it, by
// file name, as files.json describes them.
func SamplePDFs(t testing.TB) (string, map[string]SamplePDF) {
	t.Helper()
	dir := Dir(t, "sample-pdfs")
	b, err := os.ReadFile(filepath.Join(dir, "files.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Data []SamplePDF }
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("files.json: %v", err)
	}
	described := map[string]SamplePDF{}
	for _, f := range list.Data {
		described[filepath.Base(f.Path)] = f
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.pdf"))
	out := map[string]SamplePDF{}
	for _, p := range paths {
		f, ok := described[filepath.Base(p)]
		if !ok {
			t.Errorf("%s is not in files.json", filepath.Base(p))
			continue
		}
		out[filepath.Base(p)] = f
	}
	if len(out) < 30 {
		t.Fatalf("got %d sample PDFs, want at least 30", len(out))
	}
	return dir, out
}
