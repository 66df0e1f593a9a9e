package answer_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"silo/answer"
	"silo/chunk"
	"silo/config"
	"silo/embed"
	"silo/search"
	"silo/store"
	"silo/testrig"
	"silo/testrig/datasets"
	"silo/testrig/tenantdata"
	"silo/testrig/testdb"
)

// pageFixtures holds the page texts of the clean-up and chunking tests.
var pageFixtures = filepath.Join("..", "chunk", "testdata")

// readPageFixture returns the pages of a page-text fixture, which are
// separated by form feeds.
func readPageFixture(tb testing.TB, name string) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(pageFixtures, name))
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Split(string(b), "\f")
}

// sqliteContent returns the content of a new user's SQLite tenant database.
func sqliteContent(t *testing.T) store.Content {
	t.Helper()
	plane := testdb.ControlPlane(t, config.SQLite)
	tenants := testrig.SQLiteTenants(t, plane, nil)
	return store.New(tenantdata.Open(t, plane, tenants, tenantdata.NewUser(t, plane, tenants).ID))
}

// TestExtractiveQuality asks the SQuAD questions of one article of the
// shared data set against its chunks, indexed with the offline embedder
// and found by a hybrid search, and counts how often the extractive answer
// quotes an answer when the five passages hold one.
func TestExtractiveQuality(t *testing.T) {
	var set struct {
		Questions []struct {
			Question string   `json:"question"`
			Answers  []string `json:"answers"`
		} `json:"questions"`
	}
	if err := json.Unmarshal(datasets.Read(t, "squad-pdfs", "1973-oil-crisis.questions.json"), &set); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	content := sqliteContent(t)
	e := embed.NewHash(0)
	pages := readPageFixture(t, "1973-oil-crisis.txt")
	chunks := chunk.ChunkPages(chunk.CleanPages(pages), 1000, 150)
	texts := make([]string, len(chunks))
	for i, c := range chunks {
		texts[i] = c.Text
	}
	vectors, err := embed.Document(ctx, e, texts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := content.RecordEmbeddingModel(ctx, e.Model(), e.Dims()); err != nil {
		t.Fatal(err)
	}
	if err := content.ReplaceIndex(ctx, "oil", e.Model(), pages, chunks, vectors); err != nil {
		t.Fatal(err)
	}
	searcher := search.New(e, 1)

	fold := func(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }
	holds := func(text string, answers []string) bool {
		for _, a := range answers {
			if strings.Contains(fold(text), fold(a)) {
				return true
			}
		}
		return false
	}
	found, quoted := 0, 0
	for _, q := range set.Questions {
		passages, err := searcher.Search(ctx, content, []string{"oil"}, q.Question, search.ModeHybrid, 5)
		if err != nil {
			t.Fatal(err)
		}
		var all strings.Builder
		for _, p := range passages {
			all.WriteString(p.Text + " ")
		}
		if !holds(all.String(), q.Answers) {
			continue
		}
		found++
		if holds(strings.Join(collect(t, answer.NewExtractive(), answer.Request{Question: q.Question, Passages: passages, Found: search.Found(passages)}), ""), q.Answers) {
			quoted++
		}
	}
	rate := float64(quoted) / float64(found)
	t.Logf("the answer quotes an answer for %d of %d questions whose passages hold one (%.3f)", quoted, found, rate)
	if found < 100 || rate < 0.88 {
		t.Errorf("got %d of %d (%.3f), want at least 0.88 of at least 100", quoted, found, rate)
	}
}
