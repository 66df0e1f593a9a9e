package rag

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxSnippet is the longest snippet of a citation, in bytes, "…" included.
const maxSnippet = 300

// pageRef matches a page reference in an answer: [p. 12], [p. 12–13],
// [pp. 3-4], and lists such as [p. 3, 5] or [pp. 3, 7–8].
var pageRef = regexp.MustCompile(`\[pp?\.\s*(\d{1,5}(?:\s*[–-]\s*\d{1,5})?(?:\s*[,;]\s*(?:pp?\.\s*)?\d{1,5}(?:\s*[–-]\s*\d{1,5})?)*)\]`)

// pageSpan is the pages a reference names, first to last.
type pageSpan struct{ first, last int }

// citedPages returns the page spans an answer refers to, in the order they
// appear.
func citedPages(answer string) []pageSpan {
	var out []pageSpan
	for _, m := range pageRef.FindAllStringSubmatch(answer, -1) {
		for _, item := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == ';' }) {
			item = strings.TrimLeft(strings.TrimSpace(item), "p. ")
			a, b, isRange := strings.Cut(strings.ReplaceAll(item, "–", "-"), "-")
			first, err := strconv.Atoi(strings.TrimSpace(a))
			if err != nil {
				continue
			}
			last := first
			if isRange {
				if n, err := strconv.Atoi(strings.TrimSpace(b)); err == nil && n >= first {
					last = n
				}
			}
			out = append(out, pageSpan{first, last})
		}
	}
	return out
}

// pageLabel writes a passage's pages the way answers cite them: "p. 4" or
// "pp. 4–5".
func pageLabel(p Result) string {
	if p.PageEnd > p.Page {
		return "pp. " + strconv.Itoa(p.Page) + "–" + strconv.Itoa(p.PageEnd)
	}
	return "p. " + strconv.Itoa(p.Page)
}

// Cite returns the sources of an answer to question written from passages:
// the passages on the pages the answer cites as [p. N] (or [pp. N–M]), in
// the order the answer first cites them, or every passage when the answer
// cites none of theirs. Each citation holds the passage's pages and, as its
// snippet, the sentence of the passage that best matches the question (at
// most 300 bytes). Passages with the same pages and snippet are cited once.
func Cite(question, answer string, passages []Result) []Citation {
	spans := citedPages(answer)
	type use struct{ passage, order int }
	var used []use
	for i, p := range passages {
		last := max(p.PageEnd, p.Page)
		if j := slices.IndexFunc(spans, func(s pageSpan) bool { return s.first <= last && p.Page <= s.last }); j >= 0 {
			used = append(used, use{i, j})
		}
	}
	if len(used) == 0 {
		for i := range passages {
			used = append(used, use{i, 0})
		}
	}
	slices.SortStableFunc(used, func(a, b use) int { return cmp.Compare(a.order, b.order) })
	var out []Citation
	for _, u := range used {
		p := passages[u.passage]
		c := Citation{Page: p.Page, Text: snippet(question, p.Text)}
		if p.PageEnd > p.Page {
			c.PageEnd = p.PageEnd
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// snippet is the sentence of text that best matches the question, or its
// first sentence when none matches, clipped to maxSnippet.
func snippet(question, text string) string {
	ranked := rankSentences(question, []Result{{Text: text}})
	if len(ranked) == 0 {
		return ""
	}
	best := ranked[0]
	if best.score == 0 {
		best = slices.MinFunc(ranked, func(a, b sentence) int { return cmp.Compare(a.index, b.index) })
	}
	return best.quote(maxSnippet)
}

// sentence is a sentence of a passage, scored against a question.
type sentence struct {
	text     string
	before   string  // the sentence before it in its passage, if any
	passage  int     // index of the passage among those ranked
	index    int     // position among all the passages' sentences
	score    float64 // how well it answers the question (see rankSentences)
	fragment bool    // cut by the start of its chunk: it begins mid-sentence
}

// quote returns the sentence clipped to n bytes, with "…" where it was cut
// (a fragment starts with "…").
func (s sentence) quote(n int) string {
	text := s.text
	if s.fragment {
		text = "…" + text
	}
	return clip(text, n)
}

// rankSentences scores every sentence of passages against the question as
// the search reads it (question.sentenceScore, without the next sentence's
// share: each sentence is quoted alone), with BM25 inverse frequencies
// among the sentences. Long sentences are discounted, and earlier passages
// win ties. Best first.
func rankSentences(question string, passages []Result) []sentence {
	tr := newTermReader()
	var all []sentence
	var terms [][]string
	var words [][]int32
	for i, p := range passages {
		before := ""
		for j, s := range joinAbbreviations(splitSentences(p.Text)) {
			r, _ := utf8.DecodeRuneInString(s)
			all = append(all, sentence{text: s, before: before, passage: i, index: len(all), fragment: j == 0 && unicode.IsLower(r)})
			ts, ws := tr.read(s, nil, nil)
			terms, words = append(terms, ts), append(words, ws)
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
		score := q.sentenceScore(all[i].text, terms[i], nil, words[i])
		if n := len(strings.Fields(all[i].text)); n > 40 {
			score *= 40 / float64(n)
		}
		all[i].score = score
	}
	slices.SortStableFunc(all, func(a, b sentence) int { return cmp.Compare(b.score, a.score) })
	return all
}

// joinAbbreviations mends sentences that splitSentences cut after an
// abbreviation or an initial ("Mr.", "William E.", "U.S."), as the chunker's
// sentenceEnd tells them, joining each to the next.
func joinAbbreviations(sentences []string) []string {
	out := sentences[:0:0]
	for i := 0; i < len(sentences); i++ {
		s := sentences[i]
		for i+1 < len(sentences) && strings.HasSuffix(s, ".") && !sentenceEnd([]rune(s)) {
			i++
			s += " " + sentences[i]
		}
		out = append(out, s)
	}
	return out
}

// clip shortens text to at most n bytes at a word boundary, ending it with
// "…"; a text that fits is returned as it is.
func clip(text string, n int) string {
	if len(text) <= n {
		return text
	}
	cut := text[:n-len("…")]
	for !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	if i := strings.LastIndexByte(cut, ' '); i > n/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:") + "…"
}
