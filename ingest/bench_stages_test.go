// BenchmarkIngestStages: each stage of ingestion on its own.

package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"silo/chunk"
	"silo/embed"
	"silo/models"
	"silo/pdf"
	"silo/store"
	"silo/testrig"
)

// BenchmarkIngestStages times each stage of ingestion on its own over the 13
// squad PDFs, one document after another, to show where BenchmarkIngestSquad's
// time goes; each reports ms per document (docs-ms: all 13 together).
//
//   - info: the upload's reader child up to what the PDF is
//     (Extractor.Start: process start, Go runtime and package
//     initialisation, open the PDF), then stopped (Extraction.Close);
//   - extract: the worker's reader child reading every page's text;
//   - clean+chunk, embed (offline embedder): in the server;
//   - save+index/<engine>: SaveFile and ReplaceIndex in a tenant database.
func BenchmarkIngestStages(b *testing.B) {
	cfg := testrig.Config("")
	files, _ := squadFiles(b, cfg)
	ex := benchExtractor(cfg)
	ctx := context.Background()
	perDoc := func(b *testing.B, total time.Duration) {
		b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N*len(files)), "ms/doc")
	}

	texts := make([][]string, len(files))
	for i, f := range files {
		_, err := ex.Extract(ctx, f.pdf, func(p pdf.Page) error {
			texts[i] = append(texts[i], p.Text)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	type prepared struct {
		pages   []string
		chunks  []chunk.Chunk
		vectors [][]float32
	}
	emb := embed.NewHash(cfg.EmbeddingDimensions)
	prep := func(i int) prepared {
		cleaned := chunk.CleanPages(texts[i])
		chunks := chunk.ChunkPages(cleaned, cfg.ChunkSize, cfg.ChunkOverlap)
		return prepared{pages: cleaned, chunks: chunks}
	}
	embedDoc := func(p *prepared) { // as ingestion does: Embed, then AdjustDocument
		in := make([]string, len(p.chunks))
		for j, ch := range p.chunks {
			in[j] = ch.Text
		}
		v, err := embed.Document(ctx, emb, in)
		if err != nil {
			b.Fatal(err)
		}
		p.vectors = v
	}

	b.Run("info", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			for _, f := range files {
				start := time.Now()
				x, err := ex.Start(ctx, f.pdf)
				if err != nil {
					b.Fatal(err)
				}
				x.Close()
				total += time.Since(start)
			}
		}
		perDoc(b, total)
	})
	b.Run("extract", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			for _, f := range files {
				start := time.Now()
				if _, err := ex.Extract(ctx, f.pdf, nil); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
			}
		}
		perDoc(b, total)
	})
	b.Run("clean+chunk", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			for i := range files {
				start := time.Now()
				prep(i)
				total += time.Since(start)
			}
		}
		perDoc(b, total)
	})
	b.Run("embed", func(b *testing.B) {
		docs := make([]prepared, len(files))
		chunks := 0
		for i := range files {
			docs[i] = prep(i)
			chunks += len(docs[i].chunks)
		}
		var total time.Duration
		for b.Loop() {
			for i := range docs {
				start := time.Now()
				embedDoc(&docs[i])
				total += time.Since(start)
			}
		}
		perDoc(b, total)
		b.ReportMetric(float64(chunks), "chunks")
	})
	// save+index/postgres-hnsw-all is a what-if: the same on a PostgreSQL
	// tenant whose HNSW index holds every chunk, not only those of documents
	// longer than the squad ones, to show what the index would cost them.
	for _, variant := range []string{"sqlite", "postgres", "postgres-hnsw-all"} {
		b.Run("save+index/"+variant, func(b *testing.B) {
			docs := make([]prepared, len(files))
			for i := range files {
				docs[i] = prep(i)
				embedDoc(&docs[i])
			}
			engine, _, _ := strings.Cut(variant, "-")
			r := newIngestRig(b, engine)
			u := r.newTenant(b)
			v, err := r.store.VectorDatabaseByUser(ctx, u.ID)
			if err != nil {
				b.Fatal(err)
			}
			if variant == "postgres-hnsw-all" {
				adminExec(b, v.Name, "CREATE INDEX ON chunks USING hnsw ((embedding_sketch(embedding)::halfvec(250)) halfvec_cosine_ops) WITH (m = 8, ef_construction = 16)")
			}
			var save, index time.Duration
			for b.Loop() {
				for i, f := range files {
					db, release, err := r.tenants.DB(ctx, v)
					if err != nil {
						b.Fatal(err)
					}
					content := store.New(db)
					id := models.NewPublicID()
					start := time.Now()
					if err := content.SaveFile(ctx, id, f.pdf); err != nil {
						b.Fatal(err)
					}
					mid := time.Now()
					if err := content.ReplaceIndex(ctx, id, emb.Model(), docs[i].pages, docs[i].chunks, docs[i].vectors); err != nil {
						b.Fatal(err)
					}
					index += time.Since(mid)
					save += mid.Sub(start)
					release()
				}
			}
			perDoc(b, save+index)
			b.ReportMetric(float64(save.Microseconds())/1000/float64(b.N*len(files)), "save-ms/doc")
			b.ReportMetric(float64(index.Microseconds())/1000/float64(b.N*len(files)), "index-ms/doc")
		})
	}
}
