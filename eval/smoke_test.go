package eval_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"silo/eval"
	"silo/search"
	"silo/testrig/datasets"
)

// TestEvalSmoke asks every smokeEvery-th question of smokeDoc, the data
// set's document with the fewest questions: 16 of its 96. Under the race
// detector a hybrid search takes 0.1-0.2 s, and each question is asked
// twice (through the API and in process).
const (
	smokeDoc   = "jacksonville-florida"
	smokeEvery = 6
)

// TestEvalSmoke runs make eval's harness (newRun, evaluate) on one document,
// on a SQLite tenant, in hybrid mode, so that make test notices when the
// harness or the search behind it breaks: every question asked is counted
// for the BM25 baseline, the hybrid search through the API and the same
// search in process; each search is timed; and the hybrid search finds an
// answer in its top 5 about as often as the baseline, at least. make eval
// gives the figures.
func TestEvalSmoke(t *testing.T) {
	dir := datasets.Dir(t, "squad-pdfs")
	docs, err := eval.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(docs, func(d eval.Document) bool { return d.Slug == smokeDoc })
	if i < 0 {
		t.Fatalf("no %s.questions.json in %s", smokeDoc, dir)
	}
	doc := docs[i]
	var sample []eval.Question
	for k := 0; k < len(doc.Questions); k += smokeEvery {
		sample = append(sample, doc.Questions[k])
	}
	doc.Questions = sample

	r := newRun(t, "sqlite")
	var out strings.Builder
	r.out = &out
	start := time.Now()
	report := r.evaluate(t, dir, []eval.Document{doc}, []string{search.ModeHybrid})
	t.Logf("evaluated in %v", time.Since(start))
	if err := report.Write(&out, "sqlite tenant, hybrid:"); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())

	bm25 := report.Overall("bm25", nil)
	hybrid := report.Overall(search.ModeHybrid, nil)
	direct := report.Overall(search.ModeHybrid+"-direct", nil)
	for _, m := range []struct {
		name  string
		tally *eval.Tally
		timed bool
	}{{"bm25", bm25, false}, {"hybrid", hybrid, true}, {"hybrid-direct", direct, true}} {
		if m.tally.N != len(doc.Questions) {
			t.Errorf("%s: got %d questions counted, want %d", m.name, m.tally.N, len(doc.Questions))
		}
		if want := 0; m.timed {
			want = len(doc.Questions)
			if len(m.tally.Latencies) != want {
				t.Errorf("%s: got %d latencies, want %d", m.name, len(m.tally.Latencies), want)
			}
		} else if len(m.tally.Latencies) != 0 {
			t.Errorf("%s: got %d latencies, want none (not timed)", m.name, len(m.tally.Latencies))
		}
	}
	// make eval has hybrid ahead of BM25 overall; the margin, one question
	// of the 16, leaves changes of the ranking to make eval to judge.
	const margin = 0.1
	if hybrid.HitAt5() < bm25.HitAt5()-margin {
		t.Errorf("hit@5: hybrid %.3f, bm25 %.3f; want hybrid at least bm25 − %.2f", hybrid.HitAt5(), bm25.HitAt5(), margin)
	}
	if direct.Hit5 != hybrid.Hit5 {
		t.Errorf("hit@5 in process: got %d, want %d as through the API", direct.Hit5, hybrid.Hit5)
	}
}
