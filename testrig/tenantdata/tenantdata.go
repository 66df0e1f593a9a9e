// Package tenantdata gives tests a user's tenant database and what it holds,
// read back with SQL: a document's chunks with their vectors as SQLite or
// PostgreSQL stores them, the recorded embedding model, the rows of a
// document. It imports none of silo's layers above store (not ingest,
// search or testrig), so the internal tests of those packages can use it.
package tenantdata

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"silo/chunk"
	"silo/embed"
	"silo/models"
	"silo/schema"
	"silo/store"
	"silo/tenant"
)

// Engines are the tenant database engines the tests run on: SQLite files
// and the PostgreSQL server of TEST_POSTGRES_URL.
var Engines = []string{tenant.EngineSQLite, tenant.EnginePostgres}

// ForEachEngine runs test once per engine of Engines, in parallel subtests.
func ForEachEngine(t *testing.T, test func(t *testing.T, engine string)) {
	t.Helper()
	for _, engine := range Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			test(t, engine)
		})
	}
}

// NewUser signs a new user up on control and makes their tenant database
// with tenants; the database is dropped when the test ends.
func NewUser(t testing.TB, control *models.Store, tenants *tenant.Manager) *models.User {
	t.Helper()
	ctx := context.Background()
	u, err := control.SignIn(ctx, models.Profile{Email: "tenant-" + strings.ToLower(rand.Text()[:10]) + "@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tenants.Ensure(ctx, u); err != nil {
		t.Fatalf("make the tenant database: %v", err)
	}
	t.Cleanup(func() {
		if err := tenants.Delete(context.Background(), u); err != nil {
			t.Errorf("drop the tenant database: %v", err)
		}
	})
	return u
}

// Open opens the tenant database of user userID until the test ends.
func Open(t testing.TB, control *models.Store, tenants *tenant.Manager, userID int64) *tenant.DB {
	t.Helper()
	v, err := control.VectorDatabaseByUser(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	db, release, err := tenants.DB(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return db
}

// Index stores a document of pages in c through the real clean-up, chunking
// and embedding by e, with e's model recorded as ingestion records it, and
// returns its chunks.
func Index(t testing.TB, c store.Content, e embed.Embedder, docID string, pages []string) []chunk.Chunk {
	t.Helper()
	chunks := chunk.ChunkPages(chunk.CleanPages(pages), 1000, 150)
	texts := make([]string, len(chunks))
	for i, ch := range chunks {
		texts[i] = ch.Text
	}
	vectors, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if model, err := c.RecordEmbeddingModel(context.Background(), e.Model(), e.Dims()); err != nil || model != e.Model() {
		t.Fatalf("record the model: got %q, %v; want %q", model, err, e.Model())
	}
	if err := c.ReplaceIndex(context.Background(), docID, e.Model(), pages, chunks, vectors); err != nil {
		t.Fatal(err)
	}
	return chunks
}

// Counts is what db holds of a document: its page rows, its chunk rows and
// whether its file is there.
func Counts(t testing.TB, db *tenant.DB, docID string) (pages, chunks int, file bool) {
	t.Helper()
	count := func(table string) int {
		t.Helper()
		n, err := db.NewSelect().Table(table).Where("document_id = ?", docID).Count(context.Background())
		if err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return int(n)
	}
	return count("pages"), count("chunks"), count("files") == 1
}

// Chunk is a chunk as a tenant database holds it.
type Chunk struct {
	Position int
	Text     string
	Vector   []float32 // nil when the row has none
}

// Chunks reads the document's chunks in db, in order, with their vectors.
func Chunks(t testing.TB, db *tenant.DB, docID string) []Chunk {
	t.Helper()
	var rows []struct {
		Position int    `bun:"position"`
		Text     string `bun:"text"`
		Vec      []byte `bun:"vec"`
	}
	expr := "embedding AS vec"
	if db.Engine == tenant.EnginePostgres {
		expr = "embedding::text AS vec" // pgvector's text form, [1,2,3]
	}
	err := db.NewSelect().Table("chunks").Column("position", "text").ColumnExpr(expr).
		Where("document_id = ?", docID).Order("position").Scan(context.Background(), &rows)
	if err != nil {
		t.Fatal(err)
	}
	dims := 0
	if db.Engine != tenant.EnginePostgres && len(rows) > 0 {
		_, d := Meta(t, db)
		if dims, err = strconv.Atoi(d); err != nil {
			t.Fatalf("tenant meta: embedding_dimensions %q: %v", d, err)
		}
	}
	out := make([]Chunk, len(rows))
	for i, row := range rows {
		out[i] = Chunk{Position: row.Position, Text: row.Text}
		switch {
		case row.Vec == nil:
		case db.Engine == tenant.EnginePostgres:
			out[i].Vector = parsePGVector(t, string(row.Vec))
		default:
			out[i].Vector = decodeVector(t, row.Vec, dims)
		}
	}
	return out
}

// Meta is db's recorded embedding model and dimensions ("" for none).
func Meta(t testing.TB, db *tenant.DB) (model, dims string) {
	t.Helper()
	ctx := context.Background()
	var err error
	if model, err = store.New(db).EmbeddingModel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.NewSelect().Table("meta").Column("value").Where("key = ?", "embedding_dimensions").Scan(ctx, &dims); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return model, dims
}

// VectorSparse is the first byte of a sparse vector blob on SQLite (see
// store/vector/codec.go for both formats).
const VectorSparse = 1

// decodeVector is the vector of dims numbers in a SQLite vector blob, dense
// (float32s) or sparse.
func decodeVector(t testing.TB, b []byte, dims int) []float32 {
	t.Helper()
	v := make([]float32, dims)
	switch {
	case len(b) == 4*dims:
		for j := range v {
			v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
	case len(b)%6 == 1 && b[0] == VectorSparse:
		last := -1
		for p := b[1:]; len(p) > 0; p = p[6:] {
			j := int(binary.LittleEndian.Uint16(p))
			if j <= last || j >= dims {
				t.Fatalf("a sparse vector blob with index %d after %d (%d dimensions)", j, last, dims)
			}
			v[j], last = math.Float32frombits(binary.LittleEndian.Uint32(p[2:])), j
		}
	default:
		t.Fatalf("a vector blob of %d bytes, neither %d float32s nor sparse", len(b), dims)
	}
	return v
}

// parsePGVector is the vector in pgvector's text form, [1,2,3].
func parsePGVector(t testing.TB, s string) []float32 {
	t.Helper()
	fields := strings.Split(strings.Trim(s, "[]"), ",")
	v := make([]float32, len(fields))
	for i, f := range fields {
		x, err := strconv.ParseFloat(f, 32)
		if err != nil {
			t.Fatalf("vector %.40q: %v", s, err)
		}
		v[i] = float32(x)
	}
	return v
}

// WantVectors checks that chunks, read from a tenant database on engine,
// hold exactly want's vectors as the engine stores them: float32s of want's
// width on SQLite, half precision zero-padded to schema.VectorDims on
// PostgreSQL.
func WantVectors(t testing.TB, engine string, chunks []Chunk, want [][]float32) {
	t.Helper()
	if len(chunks) != len(want) {
		t.Fatalf("got %d chunks, want %d", len(chunks), len(want))
	}
	for i, ch := range chunks {
		w := want[i]
		width := len(w)
		if engine == tenant.EnginePostgres {
			width = schema.VectorDims
		}
		if len(ch.Vector) != width {
			t.Fatalf("chunk %d: got a vector of %d numbers, want %d", ch.Position, len(ch.Vector), width)
		}
		for j, got := range ch.Vector {
			wj := float32(0)
			if j < len(w) {
				wj = w[j]
			}
			tolerance := 0.0 // float32s are stored as they are
			if engine == tenant.EnginePostgres {
				tolerance = 1e-4 + math.Abs(float64(wj))/1000 // halfvec: 11 significant bits
			}
			if math.Abs(float64(got-wj)) > tolerance {
				t.Fatalf("chunk %d, number %d: got %v, want %v (the vector is not the embedder's)", ch.Position, j, got, wj)
			}
		}
	}
}
