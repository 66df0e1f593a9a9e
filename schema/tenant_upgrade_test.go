package schema_test

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"silo/config"
	"silo/schema"
	"silo/testrig/testdb"
)

// sketchMigration is the tenant migration that keys the HNSW index by a
// sketch and keeps only long documents' chunks in it.
const sketchMigration = "20261122080000"

// TestPostgresTenantUpgradeIndexesLongDocuments migrates a PostgreSQL tenant
// database that already holds documents across the sketch-index migration:
// the chunks of a document of more than 400 chunks go into the new index,
// a shorter document's do not, and the vectors are kept.
func TestPostgresTenantUpgradeIndexesLongDocuments(t *testing.T) {
	ctx := t.Context()
	url := testdb.NewDatabaseURL(t, config.Postgres)
	atlas := testdb.AtlasBin(t)

	// The migrations before it, in a directory of their own.
	before := t.TempDir()
	files, err := filepath.Glob(filepath.Join("tenant", "postgres", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Base(f) >= sketchMigration {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(before, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(atlas, "migrate", "hash", "--dir", "file://"+before).CombinedOutput(); err != nil {
		t.Fatalf("atlas migrate hash: %v: %s", err, out)
	}
	apply := func(m *schema.Migrator, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		_, to, err := m.Apply(ctx, url)
		if err != nil {
			t.Fatalf("migrate: %v", err)
		}
		return to
	}
	if to := apply(schema.NewMigratorFS(atlas, os.DirFS(before))); to >= sketchMigration {
		t.Fatalf("the older migrations reached %s", to)
	}

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for doc, n := range map[string]int{"long": 401, "short": 3} {
		_, err := db.ExecContext(ctx, `INSERT INTO chunks (document_id, page, page_end, position, text, embedding)
			SELECT $1, 1, 1, g, 'chunk ' || g,
				(SELECT array_agg(CASE WHEN i % 97 = g % 97 THEN 1 ELSE 0 END)::halfvec(2000) FROM generate_series(1, 2000) i)
			FROM generate_series(1, $2::int) g`, doc, n)
		if err != nil {
			t.Fatal(err)
		}
	}

	apply(schema.NewMigrator(atlas, "tenant/postgres"))
	for doc, want := range map[string]string{"long": "401 401", "short": "3 0"} {
		var got string
		err := db.QueryRowContext(ctx, `SELECT count(*) || ' ' || count(*) FILTER (WHERE ann) FROM chunks
			WHERE document_id = $1 AND embedding IS NOT NULL`, doc).Scan(&got)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s document: chunks with a vector, of them in the index: got %s, want %s", doc, got, want)
		}
	}
	var valid bool
	if err := db.QueryRowContext(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'chunks_embedding_sketch_idx'::regclass`).Scan(&valid); err != nil || !valid {
		t.Errorf("the sketch index: valid %v, %v", valid, err)
	}
	var indexed int
	if err := db.QueryRowContext(ctx, `SELECT reltuples::int FROM pg_class WHERE relname = 'chunks_embedding_sketch_idx'`).Scan(&indexed); err != nil {
		t.Fatal(err)
	}
	if indexed != 401 {
		t.Errorf("the sketch index holds %d entries, want 401", indexed)
	}
}
