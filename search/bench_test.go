package search_test

import (
	"context"
	"encoding/json"
	"fmt"
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
)

// BenchmarkWorkspaceSearch measures a hybrid search of all of a tenant's
// documents (POST /api/v1/search's work, without HTTP) as the workspace
// grows to 25, 125 and 500 documents of about 150 chunks each: the page
// texts of chunk/testdata's four articles, each repeated four times, every
// document with words of its own. Each size asks the 1973 oil crisis
// article's questions once and reports p50 and p95 in ms, on SQLite and on
// PostgreSQL tenants (TEST_POSTGRES_URL). make bench runs it.
func BenchmarkWorkspaceSearch(b *testing.B) {
	var articles [][]string
	for _, name := range []string{"1973-oil-crisis.txt", "immune-system.txt", "victoria-australia.txt", "geotopo-pages-1-24.txt"} {
		raw, err := os.ReadFile(filepath.Join("..", "chunk", "testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		pages := strings.Split(string(raw), "\f")
		var long []string
		for range 4 {
			long = append(long, pages...)
		}
		articles = append(articles, long)
	}
	var doc eval.Document
	if err := json.Unmarshal(datasets.Read(b, "squad-pdfs", "1973-oil-crisis.questions.json"), &doc); err != nil {
		b.Fatal(err)
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
						pages := slices.Clone(articles[len(ids)%len(articles)])
						pages[0] = fmt.Sprintf("Volume %d of the collection, kept by archivist number %d.\n\n", len(ids), len(ids)*7) + pages[0]
						chunks += len(tenantdata.Index(b, c, e, id, pages))
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
