package search_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"silo/config"
	"silo/embed"
	"silo/search"
	"silo/store"
	"silo/tenant"
	"silo/testrig"
	"silo/testrig/tenantdata"
	"silo/testrig/testdb"
)

// searchDB returns a ready tenant database of a new user on SQLite, or on
// the PostgreSQL server of TEST_POSTGRES_URL.
func searchDB(t testing.TB, engine string) *tenant.DB {
	t.Helper()
	control := testdb.ControlPlane(t, config.SQLite)
	var m *tenant.Manager
	if engine == "postgres" {
		m = testrig.PostgresTenants(t, control)
	} else {
		m = testrig.SQLiteTenants(t, control, nil)
	}
	return tenantdata.Open(t, control, m, tenantdata.NewUser(t, control, m).ID)
}

func TestSearch(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			db := searchDB(t, engine)
			c := store.New(db)
			e := embed.NewHash(0)
			s := &search.Searcher{Embedder: e}
			ctx := context.Background()

			// A small document beside a large one: the filter to the small
			// one must still give k results (the HNSW filter pitfall).
			var small, large []string
			for i := range 8 {
				small = append(small, strings.Repeat(fmt.Sprintf("The lighthouse keeper logged storm number %d in the harbour book. ", i), 14))
			}
			small[5] = "The keeper's cat, Marmalade, was born in 1893 on the island of Skerryvore.\n\n" + small[5]
			for i := range 300 {
				large = append(large, strings.Repeat(fmt.Sprintf("Quarterly revenue of division %d rose with the cat food sales. ", i), 14))
			}
			smallChunks := tenantdata.Index(t, c, e, "small", small)
			tenantdata.Index(t, c, e, "large", large)

			for _, mode := range []string{search.ModeHybrid, search.ModeVector, search.ModeFullText} {
				res, err := s.Search(ctx, c, []string{"small"}, "When was the keeper's cat Marmalade born?", mode, 5)
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if mode != search.ModeFullText && len(res) != 5 {
					t.Errorf("%s: got %d results, want 5 (the document has %d chunks)", mode, len(res), len(smallChunks))
				}
				if len(res) == 0 || !strings.Contains(res[0].Text, "1893") || res[0].Page > 6 || res[0].PageEnd < 6 {
					t.Errorf("%s: best of %d results is not the passage with the answer, on page 6", mode, len(res))
					continue
				}
				for _, r := range res {
					if strings.Contains(r.Text, "revenue") {
						t.Errorf("%s: a passage of another document came back: %q", mode, r.Text[:40])
					}
					if n := utf8.RuneCountInString(r.Text); n > search.MaxPassageRunes {
						t.Errorf("%s: got a passage of %d runes, want at most %d", mode, n, search.MaxPassageRunes)
					}
				}
				for i := 1; i < len(res); i++ {
					if res[i].Score > res[i-1].Score {
						t.Errorf("%s: results not best first: %v then %v", mode, res[i-1].Score, res[i].Score)
					}
				}
			}

			// The other way round: the large document's full text, whose
			// chunks come after the small one's, has none of the small one's.
			res, err := s.Search(ctx, c, []string{"large"}, "When was the keeper's cat Marmalade born?", search.ModeFullText, 5)
			if err != nil || len(res) != 5 {
				t.Fatalf("full text of the large document: got %d results, %v; want 5", len(res), err)
			}
			for _, r := range res {
				if strings.Contains(r.Text, "keeper") {
					t.Errorf("full text of the large document: a passage of the small one came back: %q", r.Text[:40])
				}
			}

			// Text that is FTS syntax is searched as words, never obeyed.
			for _, q := range []string{`"unbalanced`, `lighthouse*`, `NEAR(keeper cat)`, `keeper OR 1=1 --`, `'; DROP TABLE chunks; --`, `   `, `the of and`, `keeper's & !cat | (storm`, `a:* <-> b`} {
				for _, mode := range []string{search.ModeHybrid, search.ModeVector, search.ModeFullText} {
					if _, err := s.Search(ctx, c, []string{"small"}, q, mode, 3); err != nil {
						t.Errorf("%s query %q: %v", mode, q, err)
					}
				}
			}
			if res, _ := s.Search(ctx, c, []string{"small"}, "lighthouse", search.ModeHybrid, 3); len(res) != 3 {
				t.Errorf("after hostile queries: got %d results, want 3 (the index is intact)", len(res))
			}
			if res, err := s.Search(ctx, c, []string{"missing"}, "lighthouse", search.ModeHybrid, 3); err != nil || len(res) != 0 {
				t.Errorf("search of an unknown document: got %d results, %v; want none", len(res), err)
			}
		})
	}
}

// TestSearchWidens checks that a passage grows past its chunk toward its
// best sentence: the answer here is the first sentence of the next chunk,
// after a paragraph that ends with the question's other words.
func TestSearchWidens(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			db := searchDB(t, engine)
			c := store.New(db)
			e := embed.NewHash(0)
			filler := strings.Repeat("The harbour book lists ships, tides and weather for every day of the year. ", 10)
			pages := []string{
				filler + "\n\nThe keeper's cat Marmalade lived on the island of Skerryvore.",
				"She was born there in 1893. " + filler,
				filler,
			}
			chunks := tenantdata.Index(t, c, e, "doc", pages)
			if len(chunks) < 3 {
				t.Fatalf("got %d chunks, want at least 3", len(chunks))
			}
			res, err := (&search.Searcher{Embedder: e}).Search(context.Background(), c, []string{"doc"}, "In what year was Marmalade the cat born on Skerryvore?", search.ModeHybrid, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 || !strings.Contains(res[0].Text, "Marmalade") || !strings.Contains(res[0].Text, "1893") {
				t.Fatalf("got %+v, want the passage with Marmalade and 1893", res)
			}
			if n := utf8.RuneCountInString(res[0].Text); n > search.MaxPassageRunes {
				t.Errorf("got %d runes, want at most %d", n, search.MaxPassageRunes)
			}
			if res[0].Page != 1 || res[0].PageEnd != 2 {
				t.Errorf("got pages %d-%d, want 1-2", res[0].Page, res[0].PageEnd)
			}
		})
	}
}

// TestSearchWhileReembedding checks a search by an embedder other than the
// one the tenant's vectors were made with, as while a tenant is re-embedded
// for a new model: a vector search says so instead of ranking at random, and
// a hybrid search still finds the passage by its words.
func TestSearchWhileReembedding(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			db := searchDB(t, engine)
			c := store.New(db)
			ctx := context.Background()
			var pages []string
			for i := range 12 {
				pages = append(pages, strings.Repeat(fmt.Sprintf("The ferry timetable for route %d changed in spring. ", i), 12))
			}
			pages[7] = "The harbour master, Ingrid Solberg, retired in 1987 after forty years.\n\n" + pages[7]
			tenantdata.Index(t, c, embed.NewHash(0), "doc", pages)

			next := &search.Searcher{Embedder: embed.NewHash(1000)}
			if res, err := next.Search(ctx, c, []string{"doc"}, "When did the harbour master retire?", search.ModeVector, 3); !errors.Is(err, store.ErrOtherModel) {
				t.Errorf("vector search by another model: got %d results, %v; want %v", len(res), err, store.ErrOtherModel)
			}
			res, err := next.Search(ctx, c, []string{"doc"}, "When did the harbour master retire?", search.ModeHybrid, 3)
			if err != nil || len(res) == 0 || !strings.Contains(res[0].Text, "1987") {
				t.Errorf("hybrid search by another model: got %d results, %v; want the harbour master's passage first", len(res), err)
			}
		})
	}
}

// A search of several documents ranks their passages together: a question
// finds the document that answers it, each passage says which document it
// comes from and is widened within it, and a document left out is not
// searched.
func TestSearchAcrossDocuments(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			c := store.New(searchDB(t, engine))
			e := embed.NewHash(0)
			s := &search.Searcher{Embedder: e}
			ctx := context.Background()
			var harbour, orchard []string
			for i := range 6 {
				harbour = append(harbour, strings.Repeat(fmt.Sprintf("The lighthouse keeper logged storm number %d in the harbour book. ", i), 14))
				orchard = append(orchard, strings.Repeat(fmt.Sprintf("The orchard gave %d baskets of apples in the dry autumn. ", i), 14))
			}
			orchard[3] = "The orchard's oldest pear tree was planted in 1761 by Agnes Moor.\n\n" + orchard[3]
			tenantdata.Index(t, c, e, "harbour", harbour)
			tenantdata.Index(t, c, e, "orchard", orchard)
			const question = "Who planted the oldest pear tree of the orchard?"

			for _, mode := range []string{search.ModeHybrid, search.ModeVector, search.ModeFullText} {
				res, err := s.Search(ctx, c, []string{"harbour", "orchard"}, question, mode, 4)
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if len(res) != 4 || res[0].DocumentID != "orchard" || !strings.Contains(res[0].Text, "Agnes Moor") {
					t.Fatalf("%s: got %+v, want 4 passages, the orchard's pear tree first", mode, res)
				}
				for _, r := range res {
					if r.DocumentID == "orchard" && strings.Contains(r.Text, "harbour") || r.DocumentID == "harbour" && strings.Contains(r.Text, "orchard") {
						t.Errorf("%s: passage of %s widened with another document's text: %q", mode, r.DocumentID, r.Text)
					}
				}
			}
			res, err := s.Search(ctx, c, []string{"harbour"}, question, search.ModeHybrid, 4)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.DocumentID != "harbour" {
					t.Errorf("a search of the harbour book found %s: %q", r.DocumentID, r.Text)
				}
			}
		})
	}
}

// A question the document answers is found, in every mode; one about
// something it never mentions is not, even when a word of it is respelt
// into one of the document's ("boiling" into "oil"), while a misspelt
// question word still finds the document's spelling.
func TestFound(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "chunk", "testdata", "1973-oil-crisis.txt"))
	if err != nil {
		t.Fatal(err)
	}
	c := store.New(searchDB(t, "sqlite"))
	e := embed.NewHash(0)
	tenantdata.Index(t, c, e, "oil", strings.Split(string(raw), "\f"))
	tenantdata.Index(t, c, e, "venture", []string{"The oil joint venture began in 1973 in Rotterdam."})
	s := &search.Searcher{Embedder: e}
	for _, tc := range []struct {
		doc, question string
		found         bool
	}{
		{"oil", "When did the 1973 oil crisis begin?", true},
		{"oil", "Which countries did the OAPEC embargo target?", true},
		{"oil", "When did the oil embrgo begin?", true},
		{"oil", "What is the capital of Mars?", false},
		{"oil", "What is the boiling point of water?", false},
		{"oil", "How do I bake sourdough bread?", false},
		{"oil", "Who wrote the Harry Potter novels?", false},
		{"venture", "When did the joint venture begin?", true},
		{"venture", "What is the boiling point?", false}, // read as "oil joint" to search
	} {
		for _, mode := range []string{search.ModeHybrid, search.ModeVector, search.ModeFullText} {
			res, err := s.Search(context.Background(), c, []string{tc.doc}, tc.question, mode, 5)
			if err != nil {
				t.Fatal(err)
			}
			if got := search.Found(res); got != tc.found {
				support := 0.0
				if len(res) > 0 {
					support = res[0].Support
				}
				t.Errorf("%s, %s: found %v (support %.2f), want %v", tc.question, mode, got, support, tc.found)
			}
		}
	}
	if search.Found(nil) {
		t.Error("no passage: found")
	}
}
