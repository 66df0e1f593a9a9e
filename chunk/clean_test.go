package chunk

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"silo/testrig/datasets"
)

// readPageFixture reads a fixture of page texts separated by form feeds.
func readPageFixture(tb testing.TB, name string) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Split(string(b), "\f")
}

// textFixtures are the page-text fixtures in testdata.
var textFixtures = []string{
	"1973-oil-crisis.txt",
	"victoria-australia.txt",
	"immune-system.txt",
	"multicolumn.txt",
	"geotopo-pages-1-24.txt",
}

func TestCleanPagesSnippets(t *testing.T) {
	// Real lines from the fixtures and the sample PDFs, one page each.
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"blank lines only", " \n\t\n \n", ""},
		{"spaces and tabs fold", "Warsaw  is\tthe   capital ", "Warsaw is the capital"},
		{"lines of a paragraph join",
			"One of the most famous people born in Warsaw was Maria Skłodowska-Curie, who \nachieved international recognition for her research on radioactivity.",
			"One of the most famous people born in Warsaw was Maria Skłodowska-Curie, who achieved international recognition for her research on radioactivity."},
		{"blank line keeps the paragraph break",
			"Casimir Pulaski, a Polish general, was born \nhere in 1745.\n\nThe Saxon Garden, covering the area of 15.5 ha, was formally a royal garden.",
			"Casimir Pulaski, a Polish general, was born here in 1745.\n\nThe Saxon Garden, covering the area of 15.5 ha, was formally a royal garden."},
		{"several blank lines are one break", "First paragraph.\n\n\n\nSecond paragraph.", "First paragraph.\n\nSecond paragraph."},
		{"ligatures", "The ﬁrst ﬂoor of the oﬃce was ﬀ and ﬄ", "The first floor of the office was ff and ffl"},
		{"soft hyphen inside a word", "inter\u00adnational co\u00adoperation", "international cooperation"},
		{"soft hyphen at a line end", "the inter\u00ad\nnational law", "the international law"},
		{"zero-width and no-break spaces", "Kabaty\u00a0Woods\u200b and\u2009lakes", "Kabaty Woods and lakes"},
		{"carriage returns", "line one\r\nline two\rline three", "line one line two line three"},
		{"real compound at a line end keeps its hyphen",
			"Development of the Strategic Petroleum Reserve began in 1975, and in 1977 the cabinet-\nlevel Department of Energy was created.",
			"Development of the Strategic Petroleum Reserve began in 1975, and in 1977 the cabinet-level Department of Energy was created."},
		{"prefix keeps its hyphen",
			"advocating Palestinian self-\ndetermination, and threatening to reconsider its policy",
			"advocating Palestinian self-determination, and threatening to reconsider its policy"},
		{"capital after the hyphen",
			"The Commission's President (currently an ex-Luxembourg Prime Minister, Jean-\nClaude Juncker) sets the agenda",
			"The Commission's President (currently an ex-Luxembourg Prime Minister, Jean-Claude Juncker) sets the agenda"},
		{"digits around the hyphen", "in the 1908-\n09 season", "in the 1908-09 season"},
		{"dash glued to a word", "(Ford's Victorian plants—in Broadmeadows and Geelong—\nwill close in October 2016).", "(Ford's Victorian plants—in Broadmeadows and Geelong—will close in October 2016)."},
		{"spaced dash", "There are 13 natural reserves in Warsaw –\namong others, Bielany Forest", "There are 13 natural reserves in Warsaw – among others, Bielany Forest"},
		{"joined word seen elsewhere joins",
			"The international community met. Later the interna-\ntional response followed.",
			"The international community met. Later the international response followed."},
		{"hyphenated form seen elsewhere keeps",
			"A well-known legend. The best-\nknown legend and the well-\nknown story.",
			"A well-known legend. The best-known legend and the well-known story."},
		{"short line ending a sentence ends a paragraph",
			"Warsaw University of Technology is the second academic school of technology in the \ncountry, founded in 1818.\nThe Saxon Garden, covering the area of 15.5 ha, was formally a royal garden of the city.",
			"Warsaw University of Technology is the second academic school of technology in the country, founded in 1818.\n\nThe Saxon Garden, covering the area of 15.5 ha, was formally a royal garden of the city."},
		{"short heading line starts a paragraph",
			"Prime number: part 2\nA large body of mathematical work would still be valid when calling 1 a prime, but Euclid's\nfundamental theorem of arithmetic would not.",
			"Prime number: part 2\n\nA large body of mathematical work would still be valid when calling 1 a prime, but Euclid's fundamental theorem of arithmetic would not."},
		{"a column break inside a sentence",
			"Vivamus viverra fermentum felis. Donec nonummy\n\npellentesque ante. Phasellus adipiscing semper elit.",
			"Vivamus viverra fermentum felis. Donec nonummy pellentesque ante. Phasellus adipiscing semper elit."},
		{"a column break inside a word",
			"International law is law. The interna-\n\ntional court sits.",
			"International law is law. The international court sits."},
		{"a blank line after a sentence is a paragraph break", "It ended.\n\nthen lower case.", "It ended.\n\nthen lower case."},
		{"quotes are left alone", "the west’s construction of the east as the “other”.", "the west’s construction of the east as the “other”."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CleanPages([]string{tc.in})
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("CleanPages(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCleanPagesTypesetterHyphenation(t *testing.T) {
	// pdfTeX hyphenates words freely: its line-end hyphens go, unless the
	// halves are whole words the document uses.
	pages := CleanPages(readPageFixture(t, "multicolumn.txt"))
	text := strings.Join(pages, "\n\n")
	for _, want := range []string{"consectetuer adipiscing elit", "tristique senectus", "rhoncus sem", "ultrices bibendum", "Curabitur auctor", "dignissim rutrum", "sollicitudin vel"} {
		if !strings.Contains(text, want) {
			t.Errorf("cleaned multicolumn.txt lacks %q", want)
		}
	}
	for _, bad := range []string{"adip-", "tris-", "rhon-", "Cur-"} {
		if strings.Contains(text, bad) {
			t.Errorf("cleaned multicolumn.txt still has %q", bad)
		}
	}
}

func TestCleanPagesCompoundsAtLineEnds(t *testing.T) {
	// The Wikipedia PDFs are laid out without hyphenation: every hyphen at
	// a line end belongs to the word, and benchmark answers contain them.
	tests := map[string][]string{
		"1973-oil-crisis.txt": {"cabinet-level", "self-determination", "mass-market"},
		"immune-system.txt":   {"non-specific", "co-receptor", "age-related", "anti-inflammatory", "slow-wave-sleep", "long-lasting"},
	}
	for name, words := range tests {
		text := strings.Join(CleanPages(readPageFixture(t, name)), "\n\n")
		for _, w := range words {
			if !strings.Contains(text, w) {
				joined := strings.ReplaceAll(w, "-", "")
				t.Errorf("%s: got %v for %q, want the hyphen kept", name, strings.Contains(text, joined), w)
			}
		}
	}
}

func TestCleanPagesRunningHeadersAndFooters(t *testing.T) {
	body := []string{
		"The first page has the introduction, which runs over several lines\nof text like any other page of a report.",
		"The second page talks about money and how much of it there was,\nwhich is never enough.",
		"Report: part 2\nThe third page opens a section whose heading is not a header and\nhas a few more lines.",
		"The fourth page is about the weather, which was fine all year\nexcept in the spring.",
		"The fifth page ends the report with a summary of everything that\nwas said before it.",
	}
	var pages []string
	for i, b := range body {
		pages = append(pages, fmt.Sprintf("ACME Corp — Annual Report 2023\n%d\n\n%s\n\nPage %d of %d\n", i+1, b, i+1, len(body)))
	}
	got := CleanPages(pages)
	if len(got) != len(pages) {
		t.Fatalf("got %d pages, want %d", len(got), len(pages))
	}
	for i, p := range got {
		want := CleanPages([]string{body[i]})[0]
		if p != want {
			t.Errorf("page %d: got %q, want %q", i+1, p, want)
		}
	}
}

func TestCleanPagesKeepsHeadingsThatOpenPages(t *testing.T) {
	// "Victoria (Australia): part N" opens pages 2 and 4 and is the second
	// line of page 3: a heading, not a header, though it is on 3 of 5 pages.
	raw := readPageFixture(t, "victoria-australia.txt")
	got := strings.Join(CleanPages(raw), "\n\n")
	for _, n := range []string{"2", "3", "4"} {
		if h := "Victoria (Australia): part " + n; !strings.Contains(got, h) {
			t.Errorf("heading %q was dropped", h)
		}
	}
}

func TestCleanPagesPageNumbers(t *testing.T) {
	// Fewer than four pages: only page numbers that match the page go.
	pages := []string{
		"Lorem ipsum dolor sit amet.\n1\n",
		"2\nUt purus elit, vestibulum ut.",
		"Nam dui ligula, fringilla a.\n\n- 3 -",
	}
	want := []string{"Lorem ipsum dolor sit amet.", "Ut purus elit, vestibulum ut.", "Nam dui ligula, fringilla a."}
	if got := CleanPages(pages); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
	// A number that is not the page's stays.
	if got := CleanPages([]string{"The answer is\n\n42"}); got[0] != "The answer is\n\n42" {
		t.Errorf("got %q, want the 42 kept", got[0])
	}
	// A book numbered from its first chapter: the shared offset goes too.
	book := []string{"Call me Ishmael.", "It was a dark night.", "Nobody came.", "The end was near.", "So it goes.", "Reader, I married him."}
	var numbered []string
	for i, p := range book {
		numbered = append(numbered, fmt.Sprintf("%s\n%d", p, i+11))
	}
	if got := CleanPages(numbered); fmt.Sprint(got) != fmt.Sprint(book) {
		t.Errorf("book numbered from 11: got %q, want %q", got, book)
	}
}

func TestCleanPagesKeepsPageNumbering(t *testing.T) {
	in := []string{"", "Only the second page has text.", "  \n ", "Fourth."}
	got := CleanPages(in)
	want := []string{"", "Only the second page has text.", "", "Fourth."}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := CleanPages(nil); len(got) != 0 {
		t.Errorf("CleanPages(nil) = %q, want none", got)
	}
}

func TestCleanPagesAcrossPageBreak(t *testing.T) {
	pages := []string{
		"He requested Congress to appropriate $2.2 billion in emer-",
		"gency aid to Israel. The emergency was real.",
	}
	got := CleanPages(pages)
	want := []string{"He requested Congress to appropriate $2.2 billion in emergency", "aid to Israel. The emergency was real."}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCleanPagesGeoTopo(t *testing.T) {
	raw := readPageFixture(t, "geotopo-pages-1-24.txt")
	got := CleanPages(raw)
	// Page numbers stand at the top of the book's numbered pages.
	for i, p := range got {
		first, _, _ := strings.Cut(p, "\n")
		if first == fmt.Sprint(i+1) || strings.HasSuffix(p, "\n\n"+fmt.Sprint(i+1)) {
			t.Errorf("page %d still has its page number: %q", i+1, first)
		}
	}
	text := strings.Join(got, "\n\n")
	for _, w := range []string{"Widerspruchsbeweisen", "Übungsaufgaben"} {
		if !strings.Contains(text, w) {
			t.Errorf("cleaned GeoTopo lacks %q", w)
		}
	}
}

// checkCleanProperties checks what any cleaned document must satisfy.
func checkCleanProperties(t *testing.T, name string, raw, got []string) {
	t.Helper()
	if len(got) != len(raw) {
		t.Fatalf("%s: got %d pages, want %d", name, len(got), len(raw))
	}
	for i, p := range got {
		where := fmt.Sprintf("%s page %d", name, i+1)
		switch {
		case strings.Contains(p, "  "):
			t.Errorf("%s: double space", where)
		case strings.Contains(p, "\n\n\n"):
			t.Errorf("%s: more than one blank line", where)
		case strings.ContainsAny(p, "\t\r\f\u00ad\ufb00\ufb01\ufb02\ufb03\ufb04"):
			t.Errorf("%s: tab, carriage return, form feed, soft hyphen or ligature left", where)
		case p != strings.TrimSpace(p):
			t.Errorf("%s: white space at an end", where)
		}
		for _, para := range strings.Split(p, "\n\n") {
			if strings.Contains(para, "\n") {
				t.Errorf("%s: a line break inside a paragraph: %q", where, para)
				break
			}
			if para != strings.TrimSpace(para) {
				t.Errorf("%s: paragraph with white space at an end: %q", where, para)
			}
		}
		if m := lineBreakHyphen.FindString(p); m != "" {
			t.Errorf("%s: a hyphen left at a line break: %q", where, m)
		}
	}
	// Every word of the text survives, except halves of words mended at a
	// line end and lines dropped as headers: check the inner words of
	// every line.
	text := strings.Join(got, " ")
	have := make(map[string]bool)
	for _, w := range strings.FieldsFunc(text, notLetterOrDigit) {
		have[w] = true
	}
	missing := 0
	for _, page := range raw {
		for _, line := range strings.Split(normalizeRunes(page), "\n") {
			words := strings.FieldsFunc(line, notLetterOrDigit)
			for k := 1; k+1 < len(words); k++ {
				if !have[words[k]] {
					missing++
					if missing <= 5 {
						t.Errorf("%s: word %q of line %q is missing", name, words[k], line)
					}
				}
			}
		}
	}
}

// lineBreakHyphen finds a hyphen followed by a line break and a lower-case
// letter: hyphenation left undone.
var lineBreakHyphen = regexp.MustCompile(`\pL-\s*\n\s*\p{Ll}`)

func notLetterOrDigit(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }

func TestCleanPagesFixtureProperties(t *testing.T) {
	for _, name := range textFixtures {
		raw := readPageFixture(t, name)
		got := CleanPages(raw)
		checkCleanProperties(t, name, raw, got)
		if again := CleanPages(raw); fmt.Sprint(again) != fmt.Sprint(got) {
			t.Errorf("%s: two runs differ", name)
		}
	}
}

// TestCleanPagesSharedPDFs runs the clean-up and the chunker over every
// PDF of the shared data sets as mutool extracts them. Elsewhere than CI
// (which installs mupdf-tools), the fixtures cover the same ground when
// mutool is not there.
func TestCleanPagesSharedPDFs(t *testing.T) {
	mutool, err := exec.LookPath("mutool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mutool is not installed: CI must run this test (apt-get install mupdf-tools)")
		}
		t.Skip("mutool is not installed (apt-get install mupdf-tools)")
	}
	files, _ := filepath.Glob(filepath.Join(datasets.Dir(t, "squad-pdfs"), "*.pdf"))
	squad, checked := len(files), 0
	more, _ := filepath.Glob(filepath.Join(datasets.Dir(t, "sample-pdfs"), "*.pdf"))
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no PDFs in the shared data sets")
	}
	for _, f := range files {
		out, err := exec.Command(mutool, "draw", "-q", "-F", "txt", "-o", "-", f).Output()
		if err != nil && len(out) == 0 {
			continue // encrypted or unreadable: the extractor's business
		}
		out = bytes.TrimSuffix(out, []byte("\f"))
		raw := strings.Split(string(out), "\f")
		got := CleanPages(raw)
		checkCleanProperties(t, filepath.Base(f), raw, got)
		checkChunks(t, filepath.Base(f), got, 0, -1, ChunkPages(got, 0, -1))
		checked++
		if strings.Contains(f, "squad-pdfs") {
			for i, p := range got {
				if strings.Contains(p, "-\n") {
					t.Errorf("%s page %d: a hyphen before a line break", f, i+1)
				}
			}
		}
	}
	// mutool reads every PDF but the password-protected one and the one
	// whose metadata it cannot parse: a run that skipped more would be
	// checking little.
	if want := len(files) - 2; checked < want {
		t.Errorf("mutool read %d of %d PDFs (%d of them SQuAD), want at least %d", checked, len(files), squad, want)
	}
}

func BenchmarkCleanPages(b *testing.B) {
	var pages []string
	for _, name := range textFixtures {
		pages = append(pages, readPageFixture(b, name)...)
	}
	n := 0
	for b.Loop() {
		CleanPages(pages)
		n++
	}
	b.ReportMetric(float64(len(pages)*n)/b.Elapsed().Seconds(), "pages/s")
}
