// Package testdb makes what silo's tests run against: fresh control-plane
// databases on SQLite, PostgreSQL and MariaDB, migrated by the real atlas
// CLI. It imports none of silo's upper layers, so any package's tests may
// use it.
//
// PostgreSQL and MariaDB come from TEST_POSTGRES_URL and TEST_MYSQL_URL (a
// server URL; testdb makes and drops a database of its own per test). When
// one is unset the tests that need it are skipped, except under CI=true,
// where they fail.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/go-sql-driver/mysql" // the driver behind TEST_MYSQL_URL
	"github.com/jackc/pgx/v5"

	"silo/config"
	"silo/models"
	"silo/schema"
)

// Engines are the control-plane engines every engine-wide test runs on.
var Engines = []config.Engine{config.SQLite, config.Postgres, config.MySQL}

// ServerURL returns the test server for engine, or skips (fails in CI).
func ServerURL(t testing.TB, engine config.Engine) string {
	t.Helper()
	name := map[config.Engine]string{config.Postgres: "TEST_POSTGRES_URL", config.MySQL: "TEST_MYSQL_URL"}[engine]
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must test the %s control plane", name, engine)
		}
		t.Skipf("%s is not set; skipping the %s control plane", name, engine)
	}
	return v
}

// NewDatabaseURL returns the DATABASE_URL of a fresh, empty database on
// engine, removed when the test ends.
func NewDatabaseURL(t testing.TB, engine config.Engine) string {
	t.Helper()
	if engine == config.SQLite {
		return "sqlite://" + filepath.Join(t.TempDir(), "silo.db")
	}
	server := ServerURL(t, engine)
	name := "silo_test_" + RandomHex(6)
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("bad test server URL: %v", err)
	}
	ctx := context.Background()
	switch engine {
	case config.Postgres:
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Fatalf("connect to %s: %v", u.Redacted(), err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatalf("create database: %v", err)
		}
		t.Cleanup(func() { execAdmin(t, engine, server, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	case config.MySQL:
		execAdmin(t, engine, server, "CREATE DATABASE "+name)
		t.Cleanup(func() { execAdmin(t, engine, server, "DROP DATABASE IF EXISTS "+name) })
	}
	u.Path = "/" + name
	return u.String()
}

// execAdmin runs one statement on the test server itself.
func execAdmin(t testing.TB, engine config.Engine, server, stmt string) {
	t.Helper()
	ctx := context.Background()
	if engine == config.Postgres {
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("connect: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
		return
	}
	u, _ := url.Parse(server)
	pass, _ := u.User.Password()
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/", u.User.Username(), pass, u.Host))
	if err != nil {
		t.Errorf("connect: %v", err)
		return
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Errorf("%s: %v", stmt, err)
	}
}

// AtlasBin returns the atlas CLI the tests use: ATLAS_BIN, else bin/atlas
// at the repository's root. `make test` builds it.
func AtlasBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ATLAS_BIN"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", "atlas")
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("%s is missing: run `make atlas` (make test does)", p)
			}
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Migrate applies the control-plane migrations to store's database.
func Migrate(t testing.TB, store *models.Store) {
	t.Helper()
	m, err := schema.NewMigrator(AtlasBin(t), store.MigrationDir())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, _, err := m.Apply(context.Background(), store.AtlasURL()); err != nil {
		t.Fatalf("migrate %s: %v", store.Engine, err)
	}
}

// ControlPlane opens a fresh, migrated control plane on engine, closed when
// the test ends.
func ControlPlane(t testing.TB, engine config.Engine) *models.Store {
	t.Helper()
	store := Open(t, NewDatabaseURL(t, engine))
	Migrate(t, store)
	return store
}

// Open opens the control plane at databaseURL, closed when the test ends.
func Open(t testing.TB, databaseURL string) *models.Store {
	t.Helper()
	store, err := models.Open(context.Background(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return store
}

// RandomHex is n random bytes in hex, for unique names.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
