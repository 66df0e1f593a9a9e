package schema_test

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/testrig/testdb"
)

// controlTables are the tables the control-plane migrations make.
var controlTables = []string{"users", "vector_databases", "documents", "sessions", "api_tokens"}

// latestVersion is the version of the newest migration file in the
// control-plane directory of engine, read from the source tree the binary
// embeds.
func latestVersion(t *testing.T, engine config.Engine) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("control", string(engine), "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files for %s: %v", engine, err)
	}
	sort.Strings(files)
	version, _, _ := strings.Cut(filepath.Base(files[len(files)-1]), "_")
	return version
}

func newMigrator(t *testing.T, store *models.Store) *schema.Migrator {
	t.Helper()
	m, err := schema.NewMigrator(testdb.AtlasBin(t), store.MigrationDir())
	if err != nil {
		t.Fatalf("NewMigrator(%s): %v", store.MigrationDir(), err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestMigrateControlPlane migrates an empty database on every engine and
// checks the versions atlas reports and that the tables are there.
func TestMigrateControlPlane(t *testing.T) {
	for _, engine := range testdb.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			store := testdb.Open(t, testdb.NewDatabaseURL(t, engine))
			m := newMigrator(t, store)
			latest := latestVersion(t, engine)

			current, pending, err := m.Status(ctx, store.AtlasURL())
			if err != nil {
				t.Fatalf("Status of an empty database: %v", err)
			}
			if pending == 0 || current != "" {
				t.Errorf("Status of an empty database: got %d pending, current %q; want more than 0 and no version", pending, current)
			}

			from, to, err := m.Apply(ctx, store.AtlasURL())
			if err != nil {
				t.Fatalf("first Apply: %v", err)
			}
			if from != "" || to != latest {
				t.Errorf("first Apply: got from %q to %q, want from %q to %q", from, to, "", latest)
			}

			current, pending, err = m.Status(ctx, store.AtlasURL())
			if err != nil {
				t.Fatalf("Status after Apply: %v", err)
			}
			if current != latest || pending != 0 {
				t.Errorf("Status after Apply: got current %q, %d pending; want %q, 0", current, pending, latest)
			}

			from, to, err = m.Apply(ctx, store.AtlasURL())
			if err != nil {
				t.Fatalf("second Apply: %v", err)
			}
			if from != latest || to != latest {
				t.Errorf("second Apply: got from %q to %q, want from %q to %q", from, to, latest, latest)
			}

			for _, table := range controlTables {
				n, err := store.DB.NewSelect().TableExpr(table).Count(ctx)
				if err != nil {
					t.Errorf("count %s after migrating: %v", table, err)
				} else if n != 0 {
					t.Errorf("rows in %s after migrating: got %d, want 0", table, n)
				}
			}
		})
	}
}

func TestNewMigratorUnknownDirectory(t *testing.T) {
	m, err := schema.NewMigrator(testdb.AtlasBin(t), "control/oracle")
	if err == nil {
		m.Close()
		t.Fatal("NewMigrator(control/oracle): got no error, want one")
	}
	if !strings.Contains(err.Error(), "control/oracle") {
		t.Errorf("NewMigrator(control/oracle): got %q, want it to name the directory", err)
	}
}

func TestApplyReportsAtlasError(t *testing.T) {
	store := testdb.Open(t, testdb.NewDatabaseURL(t, config.SQLite))
	m := newMigrator(t, store)
	// A database URL atlas cannot open: the error carries what atlas said.
	_, _, err := m.Apply(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "missing", "dir", "x.db"))
	if err == nil {
		t.Fatal("Apply to an unopenable database: got no error, want one")
	}
	if !strings.HasPrefix(err.Error(), "schema: apply: ") {
		t.Errorf("Apply to an unopenable database: got %q, want it to start with %q", err, "schema: apply: ")
	}
}

func TestFindAtlasConfigured(t *testing.T) {
	atlas := testdb.AtlasBin(t)
	got, err := schema.FindAtlas(atlas)
	if got != atlas || err != nil {
		t.Errorf("FindAtlas(%q): got %q, %v; want %q, nil", atlas, got, err, atlas)
	}

	missing := filepath.Join(t.TempDir(), "no", "atlas")
	got, err = schema.FindAtlas(missing)
	if err == nil {
		t.Fatalf("FindAtlas(%q): got %q, no error; want an error", missing, got)
	}
	for _, want := range []string{"make atlas", "ATLAS_BIN", missing} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("FindAtlas(%q): got error %q, want it to mention %q", missing, err, want)
		}
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FindAtlas(%q): got error %v, want it to wrap os.ErrNotExist", missing, err)
	}
}

// TestFindAtlasSearch covers an empty ATLAS_BIN: ./bin/atlas first, then the
// PATH, else ErrAtlasMissing. It changes the working directory and PATH, so
// it does not run in parallel.
func TestFindAtlasSearch(t *testing.T) {
	t.Run("nowhere", func(t *testing.T) {
		t.Chdir(t.TempDir())
		t.Setenv("PATH", "")
		got, err := schema.FindAtlas("")
		if !errors.Is(err, schema.ErrAtlasMissing) {
			t.Errorf("FindAtlas(\"\"): got %q, %v; want ErrAtlasMissing", got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "make atlas") {
			t.Errorf("FindAtlas(\"\"): got error %q, want it to mention make atlas", err)
		}
	})
	t.Run("on the PATH", func(t *testing.T) {
		t.Chdir(t.TempDir())
		dir := t.TempDir()
		want := writeExecutable(t, filepath.Join(dir, "atlas"))
		t.Setenv("PATH", dir)
		got, err := schema.FindAtlas("")
		if got != want || err != nil {
			t.Errorf("FindAtlas(\"\"): got %q, %v; want %q, nil", got, err, want)
		}
	})
	t.Run("./bin/atlas before the PATH", func(t *testing.T) {
		wd := t.TempDir()
		t.Chdir(wd)
		want := writeExecutable(t, filepath.Join(wd, "bin", "atlas"))
		dir := t.TempDir()
		writeExecutable(t, filepath.Join(dir, "atlas"))
		t.Setenv("PATH", dir)
		got, err := schema.FindAtlas("")
		if err != nil {
			t.Fatalf("FindAtlas(\"\"): got error %v, want %q", err, want)
		}
		if !filepath.IsAbs(got) || !sameFile(t, got, want) {
			t.Errorf("FindAtlas(\"\"): got %q, want the absolute path of %q", got, want)
		}
	})
}

func writeExecutable(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(fa, fb)
}
