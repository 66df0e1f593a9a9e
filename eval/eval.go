// Package eval measures silo's retrieval on the SQuAD PDFs of
// ../shared/datasets/squad-pdfs (make eval): for each question, does a
// passage of the top k contain an answer (hit@k), and how long did the
// search take. Beside silo's search modes it scores a plain Okapi BM25
// baseline over the same chunks, so that the figures say what the search
// adds to counting words.
//
// This file holds the metric, the baseline and the report; the run through
// silo's API is BenchmarkEval in run_test.go.
package eval

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"silo/words"
)

// MaxPassage is the longest passage, in characters, that can count as a
// hit: longer ones would make the test trivial.
const MaxPassage = 1200

// Question is one question of the data set with its accepted answers.
type Question struct {
	ID       string   `json:"id"`
	Question string   `json:"question"`
	Answers  []string `json:"answers"`
}

// Document is one PDF of the data set and the questions about it.
type Document struct {
	Slug      string     `json:"-"` // the file name without .questions.json
	Title     string     `json:"title"`
	PDF       string     `json:"pdf"` // file name in the same folder
	Questions []Question `json:"questions"`
}

// Load reads every <slug>.questions.json of dir, ordered by slug.
func Load(dir string) ([]Document, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.questions.json"))
	if err != nil {
		return nil, err
	}
	slices.Sort(paths)
	var docs []Document
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var d Document
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("eval: %s: %w", filepath.Base(p), err)
		}
		d.Slug = strings.TrimSuffix(filepath.Base(p), ".questions.json")
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("eval: no *.questions.json in %s", dir)
	}
	return docs, nil
}

// Normalize prepares a text for the answer match: soft hyphens removed,
// hyphenation at a line break undone ("gov-\nernment" is "government"),
// lower case, and every run of white space one space.
func Normalize(s string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\u00ad':
		case r == '-' && hyphenAtBreak(s, i):
			// The word goes on after the line break: skip the break too.
			i += size
			for i < len(s) {
				r, size := utf8.DecodeRuneInString(s[i:])
				if !unicode.IsSpace(r) {
					break
				}
				i += size
			}
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteString(strings.ToLower(string(r)))
		}
		i += size
	}
	return b.String()
}

// hyphenAtBreak reports whether the hyphen at s[i] ends a line in the middle
// of a word: a letter before it, then white space holding a line break,
// then a lower-case letter.
func hyphenAtBreak(s string, i int) bool {
	before, _ := utf8.DecodeLastRuneInString(s[:i])
	if !unicode.IsLetter(before) {
		return false
	}
	newline := false
	j := i + 1
	for j < len(s) {
		r, size := utf8.DecodeRuneInString(s[j:])
		if !unicode.IsSpace(r) {
			return newline && unicode.IsLower(r)
		}
		newline = newline || r == '\n' || r == '\r'
		j += size
	}
	return false
}

// FirstHit returns the 1-based rank of the first passage that is at most
// MaxPassage characters long and contains one of the answers, or 0 when
// none does.
func FirstHit(passages, answers []string) int {
	var want []string
	for _, a := range answers {
		if a := Normalize(a); a != "" {
			want = append(want, a)
		}
	}
	for i, p := range passages {
		if utf8.RuneCountInString(p) > MaxPassage {
			continue
		}
		p := Normalize(p)
		for _, a := range want {
			if strings.Contains(p, a) {
				return i + 1
			}
		}
	}
	return 0
}

// Tokens splits a text as the baseline does: silo's words (words.Plain:
// lower-cased runs of letters and numbers), the baseline's own stop words
// removed, no stemming.
func Tokens(text string) []string {
	var out []string
	var sc words.Scanner
	sc.Reset(text, words.Plain)
	for sc.Next() {
		if w := string(sc.Word()); !stopWords[w] {
			out = append(out, w)
		}
	}
	return out
}

// stopWords are common English function words (NLTK's English list).
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`i me my myself we our ours ourselves you your yours yourself yourselves
		he him his himself she her hers herself it its itself they them their theirs themselves what which who
		whom this that these those am is are was were be been being have has had having do does did doing a an
		the and but if or because as until while of at by for with about against between into through during
		before after above below to from up down in out on off over under again further then once here there
		when where why how all any both each few more most other some such no nor not only own same so than too
		very s t can will just don should now`) {
		m[w] = true
	}
	return m
}()

// BM25 ranks passages by Okapi BM25 over Tokens, with k1 = 1.2 and
// b = 0.75. A term's weight is idf = ln(1 + (N − n + 0.5)/(n + 0.5)) for a
// term in n of N passages (the form that stays positive, as in Lucene);
// each distinct query term counts once.
type BM25 struct {
	tf    []map[string]int // term frequencies of each passage
	len   []int            // passage lengths in tokens
	df    map[string]int
	avgdl float64
}

// BM25 parameters.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// NewBM25 indexes the passages.
func NewBM25(passages []string) *BM25 {
	m := &BM25{df: map[string]int{}}
	total := 0
	for _, p := range passages {
		tf := map[string]int{}
		toks := Tokens(p)
		for _, t := range toks {
			tf[t]++
		}
		for t := range tf {
			m.df[t]++
		}
		m.tf = append(m.tf, tf)
		m.len = append(m.len, len(toks))
		total += len(toks)
	}
	if len(passages) > 0 {
		m.avgdl = float64(total) / float64(len(passages))
	}
	return m
}

// Scores returns every passage's score for the query.
func (m *BM25) Scores(query string) []float64 {
	scores := make([]float64, len(m.tf))
	n := float64(len(m.tf))
	seen := map[string]bool{}
	for _, t := range Tokens(query) {
		if seen[t] || m.df[t] == 0 {
			continue
		}
		seen[t] = true
		df := float64(m.df[t])
		idf := math.Log(1 + (n-df+0.5)/(df+0.5))
		for i, tf := range m.tf {
			f := float64(tf[t])
			if f == 0 {
				continue
			}
			norm := 1 - bm25B + bm25B*float64(m.len[i])/m.avgdl
			scores[i] += idf * f * (bm25K1 + 1) / (f + bm25K1*norm)
		}
	}
	return scores
}

// Top returns the indexes of the k best passages for the query, best first
// (the earlier passage first on a tie); passages without a query term are
// left out.
func (m *BM25) Top(query string, k int) []int {
	scores := m.Scores(query)
	var idx []int
	for i, s := range scores {
		if s > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	return idx[:min(k, len(idx))]
}

// Tally counts the outcomes of one method's questions.
type Tally struct {
	N, Hit1, Hit5 int
	Latencies     []time.Duration // empty when the method is not timed
}

// Add counts one question whose first hit was at rank (0: none), answered
// in d (0: not timed).
func (t *Tally) Add(rank int, d time.Duration) {
	t.N++
	if rank == 1 {
		t.Hit1++
	}
	if rank >= 1 && rank <= 5 {
		t.Hit5++
	}
	if d > 0 {
		t.Latencies = append(t.Latencies, d)
	}
}

// Merge adds the counts of o to t.
func (t *Tally) Merge(o *Tally) {
	t.N += o.N
	t.Hit1 += o.Hit1
	t.Hit5 += o.Hit5
	t.Latencies = append(t.Latencies, o.Latencies...)
}

// HitAt1 is the share of questions answered by the first passage.
func (t *Tally) HitAt1() float64 { return ratio(t.Hit1, t.N) }

// HitAt5 is the share of questions answered by one of the first five.
func (t *Tally) HitAt5() float64 { return ratio(t.Hit5, t.N) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Mean is the mean latency (0 when not timed).
func (t *Tally) Mean() time.Duration {
	if len(t.Latencies) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range t.Latencies {
		sum += d
	}
	return sum / time.Duration(len(t.Latencies))
}

// P95 is the 95th percentile latency by the nearest-rank method (0 when not
// timed).
func (t *Tally) P95() time.Duration {
	if len(t.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(t.Latencies)
	slices.Sort(s)
	return s[int(math.Ceil(0.95*float64(len(s))))-1]
}

// Report holds the tallies of one engine's run: by document and method.
type Report struct {
	Methods []string // in the order they are shown
	Docs    []string // in the order they are shown
	tallies map[[2]string]*Tally
}

// Tally returns the tally of a document and method, made on first use.
func (r *Report) Tally(doc, method string) *Tally {
	if r.tallies == nil {
		r.tallies = map[[2]string]*Tally{}
	}
	key := [2]string{doc, method}
	t, ok := r.tallies[key]
	if !ok {
		t = &Tally{}
		r.tallies[key] = t
		if !slices.Contains(r.Docs, doc) {
			r.Docs = append(r.Docs, doc)
		}
		if !slices.Contains(r.Methods, method) {
			r.Methods = append(r.Methods, method)
		}
	}
	return t
}

// Overall sums a method's tallies over the given documents (all when docs
// is nil).
func (r *Report) Overall(method string, docs []string) *Tally {
	if docs == nil {
		docs = r.Docs
	}
	sum := &Tally{}
	for _, d := range docs {
		if t, ok := r.tallies[[2]string{d, method}]; ok {
			sum.Merge(t)
		}
	}
	return sum
}

// Group is a named set of documents whose sums the report shows.
type Group struct {
	Name string
	Docs []string
}

// Write prints one line per document and method, then a line per group and
// method (sums over the group's documents) and the overall lines.
func (r *Report) Write(w io.Writer, title string, groups ...Group) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, title)
	fmt.Fprintln(tw, "document\tmethod\tquestions\thit@1\thit@5\tmean ms\tp95 ms\t")
	line := func(doc, method string, t *Tally) {
		lat := func(d time.Duration) string {
			if len(t.Latencies) == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.3f\t%s\t%s\t\n", doc, method, t.N, t.HitAt1(), t.HitAt5(), lat(t.Mean()), lat(t.P95()))
	}
	for _, d := range r.Docs {
		for _, m := range r.Methods {
			if t, ok := r.tallies[[2]string{d, m}]; ok {
				line(d, m, t)
			}
		}
	}
	for _, g := range append(groups, Group{Name: "OVERALL"}) {
		for _, m := range r.Methods {
			line(g.Name, m, r.Overall(m, g.Docs))
		}
	}
	return tw.Flush()
}

// quoteLine is a quotation in an offline answer: a line "- “…” [p. N]",
// or "[Title, p. N]" in an answer from several documents.
var quoteLine = regexp.MustCompile(`(?m)^- “(.*)” \[(?:[^\]]*, )?pp?\. [^\]]*\]$`)

// Quotes returns the sentences an offline (extractive) answer quotes, in
// order, without the "…" of a clipped one.
func Quotes(answer string) []string {
	var out []string
	for _, m := range quoteLine.FindAllStringSubmatch(answer, -1) {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(m[1], "…"), "…"))
	}
	return out
}
