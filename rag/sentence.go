package rag

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"unicode"
)

// sentenceRank orders the candidates of a search by their best sentence: a
// question is usually answered by one sentence that shares its rarer words,
// while a passage can rank high on words scattered over many sentences.
// Word weights are inverse frequencies among the candidates.
func sentenceRank(query string, cands []Result) []Result {
	q := termSet(query)
	if len(q) == 0 || len(cands) == 0 {
		return nil
	}
	df := map[string]int{}
	chunkTerms := make([]map[string]bool, len(cands))
	for i, c := range cands {
		chunkTerms[i] = termSet(c.Text)
		for t := range q {
			if chunkTerms[i][t] {
				df[t]++
			}
		}
	}
	idf := func(t string) float64 { return math.Log(1 + float64(len(cands))/float64(1+df[t])) }
	out := make([]Result, len(cands))
	for i, c := range cands {
		best := 0.0
		sentences := splitSentences(c.Text)
		for j, s := range sentences {
			terms := termSet(s)
			if j+1 < len(sentences) { // a clause may run on into the next sentence
				for t := range termSet(sentences[j+1]) {
					terms[t] = true
				}
			}
			score := 0.0
			for t := range q {
				if terms[t] {
					score += idf(t)
				}
			}
			best = max(best, score)
		}
		out[i] = c
		out[i].Score = best
	}
	slices.SortStableFunc(out, func(a, b Result) int { return cmp.Compare(b.Score, a.Score) })
	return out
}

// termSet is the set of a text's content words, stemmed.
func termSet(text string) map[string]bool {
	set := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	}) {
		if b := []byte(w); !isStopWord(b) {
			set[string(stem(b))] = true
		}
	}
	return set
}

// splitSentences cuts a passage at sentence ends.
func splitSentences(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); i++ {
		if c := text[i]; (c == '.' || c == '?' || c == '!' || c == '\n') && (i+1 == len(text) || text[i+1] == ' ' || text[i+1] == '\n') {
			if s := strings.TrimSpace(text[start : i+1]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(text[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
