package chunk

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"silo/words"
)

// CleanPages tidies the text of a document's pages, as MuPDF extracts it,
// for chunking and search. Page i+1 is pages[i]; the result has one entry
// per page in the same order, and a page may become empty. Per page it
//
//   - expands ligatures (ﬁ → fi), removes soft hyphens and zero-width
//     characters, and turns other spaces and tabs into plain spaces;
//   - drops running headers and footers: lines among the first or last two
//     of a page that recur, with digits ignored ("Page 3 of 12"), on at least
//     60% of the pages of a document of four pages or more; and a bare page
//     number at the top or bottom of a page that matches the page;
//   - undoes line-break hyphenation ("interna-" + "tional") but keeps real
//     hyphens ("self-" + "determination"), deciding with the rest of the
//     document as evidence (see dehyphenator);
//   - joins the lines of a paragraph with single spaces and separates
//     paragraphs with a blank line ("\n\n"): where the extracted text has a
//     blank line (unless the text after it goes on with a lower-case word,
//     as at the foot of a column), after a short line that ends a sentence,
//     and after a short heading line.
//
// Curly quotes and dashes are left as they are.
func CleanPages(pages []string) []string {
	doc := make([][]string, len(pages))
	for i, p := range pages {
		doc[i] = splitLines(normalizeRunes(p))
	}
	dropRunningLines(doc)
	h := newDehyphenator(doc)
	joinAcrossPages(doc, h)
	out := make([]string, len(pages))
	for i, lines := range doc {
		out[i] = foldPage(lines, h)
	}
	return out
}

// normalizeRunes expands ligatures, drops soft hyphens (joining the two
// halves of a word broken at one), zero-width characters and control
// characters, and maps the many Unicode spaces and line separators to ' '
// and '\n'.
func normalizeRunes(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if c := s[i]; c >= ' ' && c < 0x7f {
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '\u00ad': // soft hyphen: invisible, and it joins a word across a line break
			j := i
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r') {
				j++
			}
			if j < len(s) && s[j] == '\n' {
				j++
				for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
					j++
				}
				i = j
			}
		case r == '\r':
			if i < len(s) && s[i] == '\n' {
				continue
			}
			b.WriteByte('\n')
		case r == '\n' || r == '\f' || r == '\v' || r == '\u2028' || r == '\u0085':
			b.WriteByte('\n')
		case r == '\u2029':
			b.WriteString("\n\n")
		case r == '\u200b' || r == '\u200c' || r == '\u200d' || r == '\u2060' || r == '\ufeff':
		case r == '\u2010' || r == '\u2011':
			b.WriteByte('-')
		case r == '\t' || unicode.IsSpace(r) || unicode.IsControl(r):
			b.WriteByte(' ')
		default:
			if l, ok := words.Ligature(r); ok {
				b.WriteString(l)
			} else {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// splitLines cuts text into lines with runs of spaces folded and the ends
// trimmed; a blank line stays as "".
func splitLines(s string) []string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l = strings.TrimSpace(l); strings.Contains(l, "  ") {
			l = strings.Join(strings.Fields(l), " ")
		}
		lines[i] = l
	}
	return lines
}

// Running headers and footers.
const (
	runningMinPages = 4   // documents shorter than this keep their headers
	runningShare    = 0.6 // share of pages a header or footer must be on
	runningMaxRunes = 150 // longer lines are never headers or footers
	runningEdge     = 2   // lines looked at on each edge of a page
	runningMinLines = 3   // lines a page needs to count
)

// dropRunningLines removes running headers, footers and page numbers from
// the pages' lines in place. Only pages with some body text, at least
// runningMinLines lines, count towards the share; a document whose pages
// each hold one line has no header to tell apart.
func dropRunningLines(doc [][]string) {
	var pages [][]string
	for _, lines := range doc {
		n := 0
		for _, l := range lines {
			if l != "" {
				n++
			}
		}
		if n >= runningMinLines {
			pages = append(pages, lines)
		}
	}
	if len(pages) >= runningMinPages {
		need := int(math.Ceil(runningShare * float64(len(pages))))
		for _, top := range []bool{true, false} {
			drop := runningKeys(pages, top, need)
			for _, lines := range doc {
				for _, i := range edgeLines(lines, top) {
					if !drop[runningKey(lines[i])] {
						break
					}
					lines[i] = ""
				}
			}
		}
	}
	dropPageNumbers(doc)
}

// edgeLines gives the indexes of the first (top) or last non-empty lines
// of a page, outermost first.
func edgeLines(lines []string, top bool) []int {
	var idx []int
	for k := range lines {
		i := k
		if !top {
			i = len(lines) - 1 - k
		}
		if lines[i] != "" {
			idx = append(idx, i)
			if len(idx) == runningEdge {
				break
			}
		}
	}
	return idx
}

// runningKeys finds the running lines of one edge: keys on at least need
// pages. A line counts only where every line outside it on that edge is
// running too, so a section heading that happens to open a few pages
// ("Victoria: part 2") is not mistaken for a header when the text before it
// on some page is ordinary prose.
func runningKeys(doc [][]string, top bool, need int) map[string]bool {
	keys := make(map[string]bool)
	count := make(map[string]int)
	for _, lines := range doc {
		seen := ""
		for _, i := range edgeLines(lines, top) {
			if k := runningKey(lines[i]); k != "" && k != seen {
				count[k]++
				seen = k
			}
		}
	}
	for k, n := range count {
		if n >= need {
			keys[k] = true
		}
	}
	for changed := true; changed; {
		clear(count)
		for _, lines := range doc {
			seen := ""
			for _, i := range edgeLines(lines, top) {
				k := runningKey(lines[i])
				if !keys[k] {
					break
				}
				if k != seen {
					count[k]++
					seen = k
				}
			}
		}
		changed = false
		for k := range keys {
			if count[k] < need {
				delete(keys, k)
				changed = true
			}
		}
	}
	return keys
}

// runningKey is a line as compared between pages: lower-case with every run
// of digits as '#', or "" for a line too long to be a header.
func runningKey(line string) string {
	if line == "" || utf8.RuneCountInString(line) > runningMaxRunes {
		return ""
	}
	var b strings.Builder
	digits := false
	for _, r := range strings.ToLower(line) {
		if unicode.IsDigit(r) {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(r)
	}
	return b.String()
}

// pageNumberLine matches a line that is only a page number: "7", "- 7 -",
// "Page 7", "page 7 of 12", "7/12", "[7]". It is compiled on first use, not
// in every reader child's start-up.
var pageNumberLine = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)^(?:page|p\.|seite|pág\.?|pagina)?\s*[-–—(\[]?\s*(\d{1,5})\s*[-–—)\]]?(?:\s*(?:of|/|von|de|sur)\s*\d{1,5})?$`)
})

// dropPageNumbers removes a bare page number from the top or bottom of each
// page: one that equals the page's number, or differs from it by the offset
// most pages share (front matter numbered apart).
func dropPageNumbers(doc [][]string) {
	number := func(line string) (int, bool) {
		m := pageNumberLine().FindStringSubmatch(line)
		if m == nil {
			return 0, false
		}
		n, err := strconv.Atoi(m[1])
		return n, err == nil
	}
	offsets := make(map[int]int)
	for p, lines := range doc {
		for _, top := range []bool{true, false} {
			if idx := edgeLines(lines, top); len(idx) > 0 {
				if n, ok := number(lines[idx[0]]); ok {
					offsets[n-(p+1)]++
				}
			}
		}
	}
	common, most := 0, 0
	for off, n := range offsets {
		if n > most || n == most && off < common {
			common, most = off, n
		}
	}
	if most < 2 || most*10 < len(doc)*3 {
		common = 0
	}
	for p, lines := range doc {
		for _, top := range []bool{true, false} {
			if idx := edgeLines(lines, top); len(idx) > 0 {
				if n, ok := number(lines[idx[0]]); ok && (n == p+1 || n-(p+1) == common) {
					lines[idx[0]] = ""
				}
			}
		}
	}
}

// dehyphenator decides, for a line that ends in a hyphen, whether the
// hyphen is a typesetter's (join the halves: "interna-" "tional") or part of
// the word (keep it: "self-" "determination"), from evidence in the same
// document, in this order:
//
//  1. the hyphenated pair appears elsewhere inside a line: keep;
//  2. the joined word appears elsewhere: join;
//  3. the first half is a prefix that takes a hyphen (non-, self-, anti-…): keep;
//  4. otherwise the document's habit: one whose lines end in a hyphen far
//     more often than its hyphenated words would explain is hyphenated by
//     its typesetter (TeX, InDesign) and gets joins, except where both
//     halves are words of the document on their own ("cabinet-" "level",
//     "co-" "receptor"); one that is not (most word processors: the
//     Wikipedia PDFs of the retrieval benchmark) keeps every hyphen.
type dehyphenator struct {
	words     map[string]bool // lower-case words seen whole, outside line-end breaks
	pairs     map[string]bool // lower-case "a-b" pairs seen inside a line
	hyphenate bool            // the document's typesetter hyphenates words
}

// strongPrefixes take a hyphen in English whatever follows them.
var strongPrefixes = map[string]bool{
	"all": true, "anti": true, "best": true, "cross": true, "extra": true,
	"half": true, "high": true, "long": true, "low": true, "multi": true,
	"neo": true, "non": true, "pseudo": true, "quasi": true, "self": true,
	"semi": true, "short": true, "socio": true, "ultra": true, "vice": true,
	"well": true,
}

// weakPrefixes take a hyphen before a whole word ("co-receptor",
// "re-establish") but are also common first syllables ("re-sult",
// "ex-ample", "second-ary").
var weakPrefixes = map[string]bool{
	"co": true, "counter": true, "de": true, "ex": true, "first": true,
	"inter": true, "intra": true, "mid": true, "over": true, "post": true,
	"pre": true, "pro": true, "re": true, "second": true, "sub": true,
	"super": true, "third": true, "trans": true, "un": true, "under": true,
}

// newDehyphenator gathers a document's evidence on its line-end hyphens.
func newDehyphenator(doc [][]string) *dehyphenator {
	h := &dehyphenator{words: make(map[string]bool), pairs: make(map[string]bool)}
	// First the words broken at line ends: most documents have none, and
	// only the words and pairs that could decide one need remembering.
	var broken [][2]string
	wanted := make(map[string]bool)
	for p, page := range doc {
		for i, line := range page {
			if left, ok := lineEndHyphen(line); ok {
				if next, ok := nextLine(doc, p, i); ok && softBreak(left, next) {
					right, _, _ := strings.Cut(next, " ")
					l, r := halves(left, right)
					broken = append(broken, [2]string{l, r})
					wanted[l], wanted[r], wanted[l+r], wanted[l+"-"+r] = true, true, true, true
				}
			}
		}
	}
	if len(broken) == 0 {
		return h
	}
	var lines, tokens, hyphenated int
	for p, page := range doc {
		for i, line := range page {
			if line == "" {
				continue
			}
			lines++
			fields := strings.Fields(line)
			from, to := 0, len(fields)
			if _, ok := lineEndHyphen(line); ok {
				to-- // a fragment, not a word
			}
			if prev, ok := prevLine(doc, p, i); ok {
				if _, ok := lineEndHyphen(prev); ok {
					from++
				}
			}
			tokens += len(fields)
			for _, f := range fields[from:max(from, to)] {
				w := strings.ToLower(strings.TrimFunc(f, notWordRune))
				if w == "" {
					continue
				}
				if !strings.Contains(w, "-") {
					if wanted[w] {
						h.words[w] = true
					}
					continue
				}
				hyphenated++
				parts := strings.Split(w, "-")
				for j, part := range parts {
					if wanted[part] {
						h.words[part] = true
					}
					if j > 0 && wanted[parts[j-1]+"-"+part] {
						h.pairs[parts[j-1]+"-"+part] = true
					}
				}
			}
		}
	}
	// Where line breaks fall at random between words, about one line in
	// tokens/hyphenated ends inside a hyphenated word; a typesetter that
	// hyphenates leaves many more. Or the broken words themselves tell:
	// many are words seen whole elsewhere, few pairs seen hyphenated.
	expected := 0.0
	if tokens > 0 {
		expected = float64(lines) * float64(hyphenated) / float64(tokens)
	}
	whole, pairs := 0, 0
	for _, b := range broken {
		switch {
		case h.pairs[b[0]+"-"+b[1]]:
			pairs++
		case h.words[b[0]+b[1]]:
			whole++
		}
	}
	h.hyphenate = float64(len(broken)) > 2*expected+3 || whole >= 3 && whole > 2*pairs
	return h
}

// halves gives the lower-case letters on either side of a line-end hyphen:
// the last part of left ("slow-wave-" → "wave") and the letters that start
// right ("receptor," → "receptor").
func halves(left, right string) (l, r string) {
	l = strings.TrimSuffix(left, "-")
	if k := strings.LastIndexByte(l, '-'); k >= 0 {
		l = l[k+1:]
	}
	l = strings.ToLower(strings.TrimLeftFunc(l, notWordRune))
	r = right
	if k := strings.IndexFunc(r, func(c rune) bool { return !unicode.IsLetter(c) }); k >= 0 {
		r = r[:k]
	}
	return l, strings.ToLower(r)
}

// join reports whether left (ending in "-") and right, the first word of
// the next line, are one word to be written without the hyphen.
func (h *dehyphenator) join(left, right string) bool {
	l, r := halves(left, right)
	switch {
	case l == "" || r == "":
		return false
	case h.pairs[l+"-"+r]:
		return false
	case h.words[l+r]:
		return true
	case strongPrefixes[l], !h.hyphenate:
		return false
	case weakPrefixes[l] && h.words[r]:
		return false
	case utf8.RuneCountInString(l) >= 3 && utf8.RuneCountInString(r) >= 3 && h.words[l] && h.words[r]:
		return false
	}
	return true
}

// notWordRune is true for runes that cannot be part of a word.
func notWordRune(r rune) bool {
	return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-'
}

// lineEndHyphen returns the last word of a line that ends in a hyphen
// directly after a letter or digit ("inter-", "3D-"; not "word -").
func lineEndHyphen(line string) (string, bool) {
	if !strings.HasSuffix(line, "-") || strings.HasSuffix(line, "--") {
		return "", false
	}
	before, _ := utf8.DecodeLastRuneInString(line[:len(line)-1])
	if !unicode.IsLetter(before) && !unicode.IsDigit(before) {
		return "", false
	}
	fields := strings.Fields(line)
	return fields[len(fields)-1], true
}

// softBreak reports whether a line ending in word left, followed by a line
// starting with right, breaks one word at a hyphen a typesetter may have
// added: a lower-case letter on both sides.
func softBreak(left, right string) bool {
	before, _ := utf8.DecodeLastRuneInString(strings.TrimSuffix(left, "-"))
	return unicode.IsLower(before) && startsLower(right)
}

func startsLower(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsLower(r)
}

// prevLine and nextLine find the neighbouring non-empty line, on the same
// page or across a page break.
func prevLine(doc [][]string, p, i int) (string, bool) {
	for ; p >= 0; p, i = p-1, -1 {
		if i < 0 {
			i = len(doc[p])
		}
		for i--; i >= 0; i-- {
			if doc[p][i] != "" {
				return doc[p][i], true
			}
		}
	}
	return "", false
}

func nextLine(doc [][]string, p, i int) (string, bool) {
	for ; p < len(doc); p, i = p+1, -1 {
		for i++; i < len(doc[p]); i++ {
			if doc[p][i] != "" {
				return doc[p][i], true
			}
		}
	}
	return "", false
}

// joinAcrossPages mends a word broken by a hyphen at the end of a page: the
// rest of the word moves from the next page's first line to the end of this
// page, joined or hyphenated as within a page.
func joinAcrossPages(doc [][]string, h *dehyphenator) {
	for p := range doc {
		last := edgeLines(doc[p], false)
		if len(last) == 0 {
			continue
		}
		left, ok := lineEndHyphen(doc[p][last[0]])
		if !ok {
			continue
		}
		for q := p + 1; q < len(doc); q++ {
			first := edgeLines(doc[q], true)
			if len(first) == 0 {
				continue
			}
			next := doc[q][first[0]]
			r, _ := utf8.DecodeRuneInString(next)
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				break
			}
			word, rest, _ := strings.Cut(next, " ")
			line := doc[p][last[0]]
			if softBreak(left, word) && h.join(left, word) {
				line = strings.TrimSuffix(line, "-")
			}
			doc[p][last[0]] = line + word
			doc[q][first[0]] = rest
			break
		}
	}
}

// foldPage joins a page's lines into paragraphs separated by "\n\n".
func foldPage(lines []string, h *dehyphenator) string {
	width := 0
	for _, l := range lines {
		width = max(width, utf8.RuneCountInString(l))
	}
	short := func(l string) bool {
		return width >= 40 && utf8.RuneCountInString(l)*10 < width*6
	}
	var out []byte
	paraLines := 0 // lines in the paragraph so far
	prev := ""
	gap := false // a blank line since prev
	for _, line := range lines {
		if line == "" {
			gap = true
			continue
		}
		switch {
		case paraLines == 0:
		case gap && !runsOnAfterGap(prev, line):
			paraLines = 0
		case !gap && paragraphEnds(prev, line, paraLines == 1, short(prev)):
			paraLines = 0
		}
		gap = false
		switch {
		case paraLines == 0:
			if len(out) > 0 {
				out = append(out, '\n', '\n')
			}
		case endsWithHyphen(prev):
			if left, ok := lineEndHyphen(prev); ok && softBreak(left, line) {
				word, _, _ := strings.Cut(line, " ")
				if h.join(left, word) {
					out = out[:len(out)-1] // the hyphen
				}
			}
		default:
			out = append(out, ' ')
		}
		out = append(out, line...)
		paraLines++
		prev = line
	}
	return string(out)
}

// runsOnAfterGap reports whether line continues the paragraph of prev
// across a blank line, as at the foot of a column: prev ends mid-sentence
// and line starts with a lower-case letter.
func runsOnAfterGap(prev, line string) bool {
	if !startsLower(line) || words.EndsWithStop(prev) {
		return false
	}
	last, _ := utf8.DecodeLastRuneInString(prev)
	return !strings.ContainsRune(":;", last)
}

// endsWithHyphen reports whether a line ends in a hyphen or dash glued to
// the word before it, so the next line continues that word with no space
// ("Jean-" "Claude", "1908-" "09", "plants—" "in").
func endsWithHyphen(line string) bool {
	last, n := utf8.DecodeLastRuneInString(line)
	if last != '-' && last != '–' && last != '—' || n >= len(line) {
		return false
	}
	before, _ := utf8.DecodeLastRuneInString(line[:len(line)-n])
	return !unicode.IsSpace(before) && before != '-'
}

// paragraphEnds reports whether a new paragraph starts at line, after prev
// inside one block of extracted text: prev is a short line that ends a
// sentence, or a short first line without final punctuation (a heading),
// and line starts like a sentence.
func paragraphEnds(prev, line string, prevFirst, prevShort bool) bool {
	if !prevShort || !startsSentence(line) {
		return false
	}
	if words.EndsWithStop(prev) {
		return true
	}
	last, _ := utf8.DecodeLastRuneInString(prev)
	return prevFirst && !strings.ContainsRune(".,;:!?-–—", last)
}

// startsSentence reports whether s starts like a sentence (see
// words.StartsSentence).
func startsSentence(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return words.StartsSentence(r)
}
