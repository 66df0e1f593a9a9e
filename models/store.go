// Package models holds the control plane: bun models and the queries silo
// runs on them, on SQLite, PostgreSQL or MySQL/MariaDB.
package models

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alexedwards/scs/mysqlstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/sqlite3store"
	"github.com/alexedwards/scs/v2"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"

	"silo/config"
)

// Store is the control plane: one bun database on one of three engines.
type Store struct {
	DB     *bun.DB
	Engine config.Engine
	url    string        // DATABASE_URL
	pool   *pgxpool.Pool // PostgreSQL only: shared by bun and the session store
}

// Open connects to the control plane named by databaseURL (sqlite://PATH,
// postgres://… or mysql://user:pass@host:port/db) and checks that it answers.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	engine, err := (&config.Config{DatabaseURL: databaseURL}).Engine()
	if err != nil {
		return nil, fmt.Errorf("models: DATABASE_URL: %w", err)
	}
	s := &Store{Engine: engine, url: databaseURL}
	switch engine {
	case config.SQLite:
		path := sqlitePath(databaseURL)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("models: create %s: %w", filepath.Dir(path), err)
		}
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
		if err != nil {
			return nil, fmt.Errorf("models: open sqlite: %w", err)
		}
		s.DB = bun.NewDB(sqldb, sqlitedialect.New())
	case config.Postgres:
		pool, err := pgxpool.New(ctx, databaseURL)
		if err != nil {
			return nil, fmt.Errorf("models: open postgres: %w", err)
		}
		s.pool = pool
		s.DB = bun.NewDB(stdlib.OpenDBFromPool(pool), pgdialect.New())
	case config.MySQL:
		dsn, err := mysqlDSN(databaseURL)
		if err != nil {
			return nil, fmt.Errorf("models: DATABASE_URL: %w", err)
		}
		sqldb, err := sql.Open("mysql", dsn)
		if err != nil {
			return nil, fmt.Errorf("models: open mysql: %w", err)
		}
		sqldb.SetConnMaxLifetime(5 * time.Minute)
		s.DB = bun.NewDB(sqldb, mysqldialect.New())
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("models: the control plane does not answer: %w", err)
	}
	return s, nil
}

// Ping checks that the control plane answers.
func (s *Store) Ping(ctx context.Context) error { return s.DB.PingContext(ctx) }

// Close closes every connection.
func (s *Store) Close() {
	_ = s.DB.Close()
	if s.pool != nil {
		s.pool.Close()
	}
}

// MigrationDir is the schema directory of the control plane's dialect.
func (s *Store) MigrationDir() string { return "control/" + string(s.Engine) }

// AtlasURL is the control plane's address in the form the atlas CLI takes.
func (s *Store) AtlasURL() string {
	if s.Engine == config.SQLite {
		// atlas runs in a directory of its own: a relative path would miss.
		path := sqlitePath(s.url)
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return "sqlite://" + path + "?_fk=1"
	}
	return s.url
}

// SessionStore returns the scs store that keeps sessions in the control
// plane's sessions table. Its own clean-up goroutines are left off (two of
// them race with StopCleanup); DeleteExpiredSessions does their job.
func (s *Store) SessionStore() scs.Store {
	switch s.Engine {
	case config.Postgres:
		return pgxstore.NewWithCleanupInterval(s.pool, 0)
	case config.MySQL:
		return mysqlstore.NewWithCleanupInterval(s.DB.DB, 0)
	default:
		return sqlite3store.NewWithCleanupInterval(s.DB.DB, 0)
	}
}

// DeleteExpiredSessions removes sessions past their expiry, written in each
// session store's own format.
func (s *Store) DeleteExpiredSessions(ctx context.Context) error {
	now := map[config.Engine]string{
		config.Postgres: "current_timestamp",
		config.MySQL:    "UTC_TIMESTAMP(6)",
		config.SQLite:   "julianday('now')",
	}[s.Engine]
	if _, err := s.DB.ExecContext(ctx, "DELETE FROM sessions WHERE expiry < "+now); err != nil {
		return fmt.Errorf("models: delete expired sessions: %w", err)
	}
	return nil
}

// sqlitePath is the file path in sqlite://PATH.
func sqlitePath(databaseURL string) string {
	path := strings.TrimPrefix(databaseURL, "sqlite://")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path
}

// mysqlDSN turns mysql://user:pass@host:port/db?opts into the DSN of
// go-sql-driver/mysql, with times parsed in UTC.
func mysqlDSN(databaseURL string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", err
	}
	cfg, err := mysql.ParseDSN("/?" + u.RawQuery) // the driver's own options
	if err != nil {
		return "", err
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" {
		return "", fmt.Errorf("%s names no database", u.Redacted())
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	return cfg.FormatDSN(), nil
}

// NewPublicID returns a random, unguessable identifier for URLs: 128 bits in
// lower-case base32.
func NewPublicID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}
