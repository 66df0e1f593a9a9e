package search

import (
	"cmp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"silo/words"
)

// Sentence is a sentence of a passage, scored against a question.
type Sentence struct {
	Text     string
	Before   string  // the sentence before it in its passage, if any
	Passage  int     // index of the passage among those ranked
	Index    int     // position among all the passages' sentences
	Score    float64 // how well it answers the question (see RankSentences)
	Fragment bool    // cut by the start of its chunk: it begins mid-sentence
}

// RankSentences scores every sentence of passages against the question as
// the search reads it (question.sentenceScore, without the next sentence's
// share: each sentence is quoted alone), with BM25 inverse frequencies
// among the sentences. Long sentences are discounted, and earlier passages
// win ties. Best first.
func RankSentences(question string, passages []Result) []Sentence {
	tr := newTermReader()
	var all []Sentence
	var terms [][]string
	var vecs [][]int32
	for i, p := range passages {
		before := ""
		for j, s := range words.JoinAbbreviations(words.SplitSentences(p.Text)) {
			r, _ := utf8.DecodeRuneInString(s)
			all = append(all, Sentence{Text: s, Before: before, Passage: i, Index: len(all), Fragment: j == 0 && unicode.IsLower(r)})
			ts, ws := tr.read(s, nil, nil)
			terms, vecs = append(terms, ts), append(vecs, ws)
			before = s
		}
	}
	df := map[string]int{}
	for _, ts := range terms {
		for k, t := range ts {
			if !slices.Contains(ts[:k], t) {
				df[t]++
			}
		}
	}
	q := readQuestion(tr, question, df, len(all))
	for i := range all {
		score := q.sentenceScore(all[i].Text, terms[i], nil, vecs[i])
		if n := len(strings.Fields(all[i].Text)); n > 40 {
			score *= 40 / float64(n)
		}
		all[i].Score = score
	}
	slices.SortStableFunc(all, func(a, b Sentence) int { return cmp.Compare(b.Score, a.Score) })
	return all
}
