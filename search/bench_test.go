package search_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"silo/embed"
	"silo/eval"
	"silo/search"
	"silo/store"
	"silo/testrig/datasets"
	"silo/testrig/tenantdata"
	"silo/words"
)

// BenchmarkWorkspaceSearch measures a hybrid search of all of a tenant's
// documents (POST /api/v1/search's work, without HTTP) as the workspace
// grows to 25, 125 and 500 documents of about 140 chunks each. Every
// document is its own: sentences drawn at random (seeded by the document's
// number) from chunk/testdata's four articles, about as long as the four
// together, in pages of about 2,500 bytes, so that chunks' texts are all
// but never repeated (68,162 distinct of 68,212 at 500 documents), as in a
// real workspace. Each size asks the 1973 oil crisis article's questions
// once and reports p50 and p95 in ms, on SQLite and on PostgreSQL tenants
// (TEST_POSTGRES_URL). make bench runs it.
func BenchmarkWorkspaceSearch(b *testing.B) {
	var sentences []string
	length := 0
	for _, name := range []string{"1973-oil-crisis.txt", "immune-system.txt", "victoria-australia.txt", "geotopo-pages-1-24.txt"} {
		raw, err := os.ReadFile(filepath.Join("..", "chunk", "testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		length += len(raw)
		for page := range strings.SplitSeq(string(raw), "\f") {
			sentences = append(sentences, words.SplitSentences(page)...)
		}
	}
	var doc eval.Document
	if err := json.Unmarshal(datasets.Read(b, "squad-pdfs", "1973-oil-crisis.questions.json"), &doc); err != nil {
		b.Fatal(err)
	}
	document := func(n int) []string {
		r := rand.New(rand.NewPCG(20261207, uint64(n)))
		pages := []string{fmt.Sprintf("Volume %d of the collection, kept by archivist number %d.", n, n*7)}
		for total := 0; total < length; {
			s := sentences[r.IntN(len(sentences))]
			last := &pages[len(pages)-1]
			if len(*last) >= 2500 {
				pages = append(pages, s)
			} else {
				*last += " " + s
			}
			total += len(s) + 1
		}
		return pages
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			for b.Loop() {
				c := store.New(searchDB(b, engine))
				e := embed.NewHash(0)
				s := &search.Searcher{Embedder: e}
				var ids []string
				chunks := 0
				for _, size := range []int{25, 125, 500} {
					for len(ids) < size {
						id := fmt.Sprintf("doc%03d", len(ids))
						chunks += len(tenantdata.Index(b, c, e, id, document(len(ids))))
						ids = append(ids, id)
					}
					var took []time.Duration
					for _, q := range doc.Questions {
						start := time.Now()
						if _, err := s.Search(context.Background(), c, ids, q.Question, search.ModeHybrid, 5); err != nil {
							b.Fatal(err)
						}
						took = append(took, time.Since(start))
					}
					slices.Sort(took)
					p := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))]) / float64(time.Millisecond) }
					b.ReportMetric(p(0.5), fmt.Sprintf("p50-ms-%d-docs", size))
					b.ReportMetric(p(0.95), fmt.Sprintf("p95-ms-%d-docs", size))
					b.ReportMetric(float64(chunks), fmt.Sprintf("chunks-%d-docs", size))
				}
			}
		})
	}
}
