package eval

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Gov-\nernment", "government"},
		{"gov-  \n  ernment", "government"},
		{"soft\u00adhyphen", "softhyphen"},
		{"  Warsaw-born\n\tCity \u00a0 hall ", "warsaw-born city hall"},
		{"1970-\n1980", "1970- 1980"},  // not a word cut in two
		{"East-\nWest", "east- west"},  // a capital starts a new word
		{"well- known", "well- known"}, // no line break
		{"ends with-", "ends with-"},
		{"ÉTÉ", "été"},
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFirstHit(t *testing.T) {
	long := strings.Repeat("x ", 600) + "the answer" // 1,210 characters
	exact := strings.Repeat("é", MaxPassage-len("answer")) + "answer"
	for _, tc := range []struct {
		name     string
		passages []string
		answers  []string
		want     int
	}{
		{"second passage", []string{"nothing here", "The  ANSWER\nis"}, []string{"answer is"}, 2},
		{"any answer", []string{"in 1745 he", "x"}, []string{"Casimir", "1745"}, 1},
		{"hyphenated at a line break", []string{"the gov-\nernment fell"}, []string{"government"}, 1},
		{"soft hyphen", []string{"the gov\u00adernment fell"}, []string{"government"}, 1},
		{"too long to count", []string{long, "answer"}, []string{"answer"}, 2},
		{"1,200 characters (not bytes) count", []string{exact}, []string{"answer"}, 1},
		{"1,201 do not", []string{"é" + exact}, []string{"answer"}, 0},
		{"empty answer matches nothing", []string{"text"}, []string{"", " "}, 0},
		{"none", []string{"a", "b"}, []string{"c"}, 0},
	} {
		if got := FirstHit(tc.passages, tc.answers); got != tc.want {
			t.Errorf("%s: got rank %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestTokens(t *testing.T) {
	got := Tokens("The Cat's 2 cats, in Kraków—running!")
	want := []string{"cat", "2", "cats", "kraków", "running"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q (stop words out, no stemming)", got, want)
	}
}

// TestBM25 checks the scores against numbers computed by hand: three
// passages of 2, 3 and 1 tokens (avgdl 2), N = 3.
func TestBM25(t *testing.T) {
	m := NewBM25([]string{"the cat sat", "cat cat dog", "bird"})
	// "cat" is in 2 of 3: idf = ln(1 + 1.5/2.5) = ln 1.6.
	// Passage 0: tf 1, |d|/avgdl 1: 2.2/(1 + 1.2) = 1.
	// Passage 1: tf 2, |d|/avgdl 1.5: 2·2.2/(2 + 1.2·1.375).
	cat := m.Scores("cat")
	// "dog" and "bird" are in 1 of 3: idf = ln(1 + 2.5/1.5).
	// Passage 1: 2.2/(1 + 1.2·1.375); passage 2: 2.2/(1 + 1.2·0.625).
	dogBird := m.Scores("Dog? bird, bird")
	for _, tc := range []struct {
		name      string
		got, want []float64
	}{
		{"cat", cat, []float64{0.47000362924573563, 0.5665797174469143, 0}},
		{"dog bird", dogBird, []float64{0, 0.8142733421229427, 1.233042489500456}},
	} {
		for i := range tc.want {
			if math.Abs(tc.got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("%s: passage %d: got %v, want %v", tc.name, i, tc.got[i], tc.want[i])
			}
		}
	}
	if got := m.Top("dog bird", 5); !slices.Equal(got, []int{2, 1}) {
		t.Errorf("Top(dog bird): got %v, want [2 1] (passage 0 has no query term)", got)
	}
	if got := m.Top("cat", 1); !slices.Equal(got, []int{1}) {
		t.Errorf("Top(cat, 1): got %v, want [1]", got)
	}
	if got := m.Top("the of", 5); len(got) != 0 {
		t.Errorf("Top(stop words): got %v, want none", got)
	}
}

func TestTally(t *testing.T) {
	var tl Tally
	for i := 1; i <= 20; i++ {
		tl.Add(i%7, time.Duration(i)*time.Millisecond) // ranks 1..6, 0
	}
	// Rank 1 at i = 1, 8, 15; ranks 1–5 at all but i%7 ∈ {0, 6}: 20 − 2 − 3 = 15.
	if tl.N != 20 || tl.Hit1 != 3 || tl.Hit5 != 15 {
		t.Errorf("got N %d, hit@1 %d, hit@5 %d; want 20, 3, 15", tl.N, tl.Hit1, tl.Hit5)
	}
	if tl.Mean() != 10500*time.Microsecond || tl.P95() != 19*time.Millisecond {
		t.Errorf("got mean %v, p95 %v; want 10.5ms, 19ms", tl.Mean(), tl.P95())
	}
	var untimed Tally
	untimed.Add(1, 0)
	if untimed.Mean() != 0 || untimed.P95() != 0 || untimed.HitAt1() != 1 {
		t.Errorf("untimed: got mean %v, p95 %v, hit@1 %v; want 0, 0, 1", untimed.Mean(), untimed.P95(), untimed.HitAt1())
	}
}

func TestReport(t *testing.T) {
	var r Report
	r.Tally("a", "bm25").Add(1, 0)
	r.Tally("a", "hybrid").Add(2, time.Millisecond)
	r.Tally("b", "bm25").Add(0, 0)
	r.Tally("b", "hybrid").Add(1, 3*time.Millisecond)
	var out bytes.Buffer
	if err := r.Write(&out, "title", Group{Name: "held out", Docs: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"title\n",
		"a         bm25    1          1.000  1.000  -        -",
		"held out  hybrid  1          1.000  1.000  3.0      3.0",
		"OVERALL   bm25    2          0.500  0.500  -        -",
		"OVERALL   hybrid  2          0.500  1.000  2.0      3.0",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestQuotes(t *testing.T) {
	answer := "*Quoted from your documents, no language model:*\n\n**Your documents do not seem to answer this.** The closest passages:\n\n" +
		"- “…the embargo began in October 1973.” [1973 oil crisis, p. 2]\n- “The river flows north.” [p. 7]\n- “Two pages.” [Jacksonville, pp. 5–6]\nNot a quote “x” [p. 1]"
	want := []string{"the embargo began in October 1973.", "The river flows north.", "Two pages."}
	if got := Quotes(answer); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
