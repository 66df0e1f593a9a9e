package answer

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"silo/search"
	"silo/store"
	"silo/words"
)

// maxSnippet is the longest snippet of a citation, in bytes, "…" included.
const maxSnippet = 300

// pageRef matches a page reference in an answer: [p. 12], [p. 12–13],
// [pp. 3-4], lists such as [p. 3, 5] or [pp. 3, 7–8], and any of them after
// a document's title: [Title, p. 12].
var pageRef = regexp.MustCompile(`\[(?:([^\[\]\n]{1,200}?),\s*)?pp?\.\s*(\d{1,5}(?:\s*[–-]\s*\d{1,5})?(?:\s*[,;]\s*(?:pp?\.\s*)?\d{1,5}(?:\s*[–-]\s*\d{1,5})?)*)\]`)

// pageList matches what pageRef may take for a title but is pages: "p. 1".
var pageList = regexp.MustCompile(`^pp?\.\s*[\d\s–,;-]+$`)

// pageSpan is the pages a reference names, first to last, and the title of
// the document it names, if any.
type pageSpan struct {
	first, last int
	title       string
}

// citedPages returns the page spans an answer refers to, in the order they
// appear.
func citedPages(answer string) []pageSpan {
	var out []pageSpan
	for _, m := range pageRef.FindAllStringSubmatch(answer, -1) {
		title, list := strings.TrimSpace(m[1]), m[2]
		if pageList.MatchString(title) { // [p. 1, p. 9]: no title, two pages
			title, list = "", title+","+list
		}
		for _, item := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ';' }) {
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
			out = append(out, pageSpan{first, last, title})
		}
	}
	return out
}

// pageLabel writes a passage's pages the way answers cite them: "p. 4" or
// "pp. 4–5", after its document's title when titled ("Title, p. 4").
func pageLabel(p search.Result, titled bool) string {
	label := "p. " + strconv.Itoa(p.Page)
	if p.PageEnd > p.Page {
		label = "pp. " + strconv.Itoa(p.Page) + "–" + strconv.Itoa(p.PageEnd)
	}
	if titled && p.Title != "" {
		return p.Title + ", " + label
	}
	return label
}

// cite returns the sources of an answer to question written from passages:
// the passages on the pages the answer cites as [p. N] (or [pp. N–M]), of
// the document it names when a reference names a passage's title ([Title,
// p. N]), in the order the answer first cites them, or every passage when
// the answer cites none of theirs. Each citation holds the passage's
// document, its pages and, as its snippet, the sentence of the passage that
// best matches the question (at most 300 bytes). Passages with the same
// pages and snippet are cited once.
func cite(question, answer string, passages []search.Result) []store.Citation {
	spans := citedPages(answer)
	titles := map[string]bool{}
	for _, p := range passages {
		titles[p.Title] = p.Title != ""
	}
	type use struct{ passage, order int }
	var used []use
	for i, p := range passages {
		last := max(p.PageEnd, p.Page)
		cites := func(s pageSpan) bool {
			return s.first <= last && p.Page <= s.last && (!titles[s.title] || s.title == p.Title)
		}
		if j := slices.IndexFunc(spans, cites); j >= 0 {
			used = append(used, use{i, j})
		}
	}
	if len(used) == 0 {
		for i := range passages {
			used = append(used, use{i, 0})
		}
	}
	slices.SortStableFunc(used, func(a, b use) int { return cmp.Compare(a.order, b.order) })
	var out []store.Citation
	for _, u := range used {
		p := passages[u.passage]
		c := store.Citation{DocumentID: p.DocumentID, Title: p.Title, Page: p.Page, Text: snippet(question, p.Text)}
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
// first sentence when none matches, clipped to maxSnippet; a heading is
// one only when the text has nothing else.
func snippet(question, text string) string {
	ranked := search.RankSentences(question, []search.Result{{Text: text}})
	if prose := slices.DeleteFunc(slices.Clone(ranked), func(s search.Sentence) bool { return words.IsHeading(s.Text) }); len(prose) > 0 {
		ranked = prose
	}
	if len(ranked) == 0 {
		return ""
	}
	best := ranked[0]
	if best.Score == 0 {
		best = slices.MinFunc(ranked, func(a, b search.Sentence) int { return cmp.Compare(a.Index, b.Index) })
	}
	return quote(best, maxSnippet)
}

// quote returns a sentence clipped to n bytes, with "…" where it was cut
// (a fragment starts with "…").
func quote(s search.Sentence, n int) string {
	text := s.Text
	if s.Fragment {
		text = "…" + text
	}
	return clip(text, n)
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
