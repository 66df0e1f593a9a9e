// Helpers of the store tests: a tenant database of a new user on SQLite or
// on the PostgreSQL server of TEST_POSTGRES_URL, and what it holds of a
// document's chunks and vectors, read back with SQL.

package store_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/store"
	"silo/tenant"
	"silo/testrig"
	"silo/testrig/testdb"
)

// tenantEngines are the tenant database engines the tests run on.
var tenantEngines = []string{"sqlite", "postgres"}

// forEachTenantEngine runs test once per tenant engine, in parallel.
func forEachTenantEngine(t *testing.T, test func(t *testing.T, engine string)) {
	t.Helper()
	for _, engine := range tenantEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			test(t, engine)
		})
	}
}

// rig is a control plane, a tenant manager and one user whose tenant
// database is ready.
type rig struct {
	store   *models.Store
	tenants *tenant.Manager
	user    *models.User
	engine  string
}

// newRig makes a fresh SQLite control plane and a user with a tenant
// database on engine ("sqlite" or "postgres"); the tenant database is
// dropped when the test ends.
func newRig(t *testing.T, engine string) *rig {
	t.Helper()
	ctx := context.Background()
	st := testdb.ControlPlane(t, config.SQLite)
	var mgr *tenant.Manager
	switch engine {
	case "sqlite":
		mgr = testrig.SQLiteTenants(t, st, slog.New(slog.DiscardHandler))
	case "postgres":
		mgr = testrig.PostgresTenants(t, st)
	default:
		t.Fatalf("unknown tenant engine %q", engine)
	}
	u, err := st.SignIn(ctx, models.Profile{Email: "store-" + testdb.RandomHex(5) + "@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.Ensure(ctx, u); err != nil {
		t.Fatalf("make the tenant database: %v", err)
	}
	t.Cleanup(func() {
		if err := mgr.Delete(context.Background(), u); err != nil {
			t.Errorf("drop the tenant database: %v", err)
		}
	})
	return &rig{store: st, tenants: mgr, user: u, engine: engine}
}

// tenantDB opens the user's tenant database until the test ends.
func (r *rig) tenantDB(t *testing.T) *tenant.DB {
	t.Helper()
	v, err := r.store.VectorDatabaseByUser(context.Background(), r.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	db, release, err := r.tenants.DB(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return db
}

// tenantDB returns a ready tenant database of a new user on engine.
func tenantDB(t *testing.T, engine string) *tenant.DB {
	t.Helper()
	return newRig(t, engine).tenantDB(t)
}

// storedChunk is a chunk as the tenant database holds it.
type storedChunk struct {
	Position int
	Text     string
	Vector   []float32 // nil when the row has none
}

// storedChunks reads the document's chunks, in order, with their vectors.
func (r *rig) storedChunks(t *testing.T, docID string) []storedChunk {
	t.Helper()
	db := r.tenantDB(t)
	var rows []struct {
		Position int    `bun:"position"`
		Text     string `bun:"text"`
		Vec      []byte `bun:"vec"`
	}
	expr := "embedding AS vec"
	if db.Engine == "postgres" {
		expr = "embedding::text AS vec" // pgvector's text form, [1,2,3]
	}
	err := db.NewSelect().Table("chunks").Column("position", "text").ColumnExpr(expr).
		Where("document_id = ?", docID).Order("position").Scan(context.Background(), &rows)
	if err != nil {
		t.Fatal(err)
	}
	dims := 0
	if db.Engine != "postgres" && len(rows) > 0 {
		dims = r.dims(t)
	}
	out := make([]storedChunk, len(rows))
	for i, row := range rows {
		out[i] = storedChunk{Position: row.Position, Text: row.Text}
		switch {
		case row.Vec == nil:
		case db.Engine == "postgres":
			out[i].Vector = parsePGVector(t, string(row.Vec))
		default:
			out[i].Vector = decodeVector(t, row.Vec, dims)
		}
	}
	return out
}

// dims is the tenant database's recorded embedding dimensions.
func (r *rig) dims(t *testing.T) int {
	t.Helper()
	_, dims := r.meta(t)
	n, err := strconv.Atoi(dims)
	if err != nil {
		t.Fatalf("tenant meta: embedding_dimensions %q: %v", dims, err)
	}
	return n
}

// decodeVector is the vector of dims numbers in a SQLite vector blob,
// dense or sparse.
func decodeVector(t *testing.T, b []byte, dims int) []float32 {
	t.Helper()
	v := make([]float32, dims)
	switch {
	case len(b) == 4*dims:
		for j := range v {
			v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
	case len(b)%6 == 1 && b[0] == store.VectorSparse:
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

func parsePGVector(t *testing.T, s string) []float32 {
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

// meta is the tenant database's recorded embedding model and dimensions.
func (r *rig) meta(t *testing.T) (model, dims string) {
	t.Helper()
	db := r.tenantDB(t)
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

// wantVectors checks that chunks hold exactly want's vectors as the engine
// stores them: float32s of want's width on SQLite, half precision
// zero-padded to schema.VectorDims on PostgreSQL.
func (r *rig) wantVectors(t *testing.T, chunks []storedChunk, want [][]float32) {
	t.Helper()
	if len(chunks) != len(want) {
		t.Fatalf("got %d chunks, want %d", len(chunks), len(want))
	}
	for i, ch := range chunks {
		w := want[i]
		width := len(w)
		if r.engine == "postgres" {
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
			if r.engine == "postgres" {
				tolerance = 1e-4 + math.Abs(float64(wj))/1000 // halfvec: 11 significant bits
			}
			if math.Abs(float64(got-wj)) > tolerance {
				t.Fatalf("chunk %d, number %d: got %v, want %v (the vector is not the embedder's)", ch.Position, j, got, wj)
			}
		}
	}
}
