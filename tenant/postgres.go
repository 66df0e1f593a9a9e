package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"silo/schema"
)

// The names silo gives the shared objects on each PostgreSQL server.
const (
	// pgTemplate is the database every tenant database is copied from; it is
	// kept at the newest tenant schema.
	pgTemplate = "silo_tenant_template"
	// pgGroup is the role every tenant role belongs to; it holds the table
	// privileges in the template (so in every copy), while CONNECT is granted
	// per database to that tenant's role alone.
	pgGroup = "silo_tenants"
	// pgTemplateLock is the advisory lock key under which one process at a
	// time migrates a server's template.
	pgTemplateLock int64 = 0x73696c6f5f746d70 // "silo_tmp"
)

// PostgreSQL error codes silo acts on.
const (
	pgDuplicateObject   = "42710"
	pgDuplicateDatabase = "42P04"
	pgObjectInUse       = "55006"
)

// Postgres makes one database and one login role per tenant on a set of
// PostgreSQL servers, placing each new tenant on the server with the fewest.
type Postgres struct {
	servers  map[string]*pgServer // by location, host:port
	order    []string
	migrator *schema.Migrator
}

// pgServer is one server silo makes tenant databases on.
type pgServer struct {
	admin *url.URL      // a role that may create databases and roles
	pool  *pgxpool.Pool // connections to admin's own database

	mu              sync.RWMutex // held for writing while the template migrates
	templateVersion string
}

// NewPostgres connects to each server URL (a role allowed to create
// databases and roles) and makes sure its template database is at the newest
// tenant schema (migrator: tenant/postgres).
func NewPostgres(ctx context.Context, urls []string, migrator *schema.Migrator) (*Postgres, error) {
	p := &Postgres{servers: map[string]*pgServer{}, migrator: migrator}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("tenant: TENANT_DATABASE_URL: %w", err)
		}
		loc := u.Host
		if u.Port() == "" {
			loc += ":5432"
		}
		if _, dup := p.servers[loc]; dup {
			continue
		}
		cfg, err := pgxpool.ParseConfig(raw)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("tenant: TENANT_DATABASE_URL %s: %w", u.Redacted(), err)
		}
		cfg.MaxConns = 4
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("tenant: connect to %s: %w", u.Redacted(), err)
		}
		p.servers[loc] = &pgServer{admin: u, pool: pool}
		p.order = append(p.order, loc)
	}
	if err := p.MigrateTemplate(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close closes the connections to every server.
func (p *Postgres) Close() {
	for _, s := range p.servers {
		s.pool.Close()
	}
}

// Engine is "postgres".
func (p *Postgres) Engine() string { return "postgres" }

// Migrator applies the PostgreSQL tenant schema.
func (p *Postgres) Migrator() *schema.Migrator { return p.migrator }

// Locations are the servers, as host:port.
func (p *Postgres) Locations() []string { return p.order }

func (p *Postgres) server(loc string) (*pgServer, error) {
	s, ok := p.servers[loc]
	if !ok {
		return nil, fmt.Errorf("tenant: no TENANT_DATABASE_URL server at %s", loc)
	}
	return s, nil
}

// dbURL is the server's URL with another database and, when user is set,
// another role.
func (s *pgServer) dbURL(db, user, password string) string {
	u := *s.admin
	u.Path = "/" + db
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// AtlasURL is the tenant database on its server, as the admin role.
func (p *Postgres) AtlasURL(t Tenant) string {
	s, err := p.server(t.Location)
	if err != nil {
		return ""
	}
	return s.dbURL(t.Name, "", "")
}

// MigrateTemplate makes each server's group role and template database if
// missing and brings the template to the newest tenant schema.
func (p *Postgres) MigrateTemplate(ctx context.Context) error {
	for _, loc := range p.order {
		if err := p.servers[loc].migrateTemplate(ctx, p.migrator); err != nil {
			return fmt.Errorf("tenant: template on %s: %w", loc, err)
		}
	}
	return nil
}

func (s *pgServer) migrateTemplate(ctx context.Context, m *schema.Migrator) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Other processes (silo instances starting together, silo tenants
	// migrate) may migrate the same template at once, and PostgreSQL fails
	// one of two concurrent GRANTs on one object ("tuple concurrently
	// updated"): they take turns under an advisory lock, which the
	// transaction holds until it ends.
	lock, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgTemplateLock); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, "CREATE ROLE "+pgGroup+" NOLOGIN"); err != nil && !isCode(err, pgDuplicateObject) {
		return err
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", pgTemplate).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := s.pool.Exec(ctx, "CREATE DATABASE "+pgTemplate); err != nil && !isCode(err, pgDuplicateDatabase) {
			return err
		}
		if _, err := s.pool.Exec(ctx, "REVOKE ALL ON DATABASE "+pgTemplate+" FROM PUBLIC"); err != nil {
			return err
		}
	}
	_, to, err := m.Apply(ctx, s.dbURL(pgTemplate, "", ""))
	if err != nil {
		return err
	}
	// The tenant roles may read and write the tables, not change them.
	conn, err := pgx.Connect(ctx, s.dbURL(pgTemplate, "", ""))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, stmt := range []string{
		"GRANT USAGE ON SCHEMA public TO " + pgGroup,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + pgGroup,
		"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO " + pgGroup,
		"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + pgGroup,
		"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO " + pgGroup,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	s.templateVersion = to
	return nil
}

// Create makes the tenant's role and its database, a copy of the template,
// that only that role may connect to. An earlier attempt's role gets the
// password again; its database is adopted and migrated.
func (p *Postgres) Create(ctx context.Context, t *Tenant) (string, error) {
	s, err := p.server(t.Location)
	if err != nil {
		return "", err
	}
	if !safePassword(t.Password) {
		return "", errors.New("tenant: a postgres tenant needs a generated password (is SECRET_KEY set?)")
	}
	ident := pgx.Identifier{t.Name}.Sanitize()
	password := "'" + t.Password + "'" // letters and digits only: checked above
	t.ExternalID, t.DSN = t.Name, s.dbURL(t.Name, t.Name, t.Password)

	_, err = s.pool.Exec(ctx, "CREATE ROLE "+ident+" LOGIN PASSWORD "+password+" IN ROLE "+pgGroup)
	if isCode(err, pgDuplicateObject) {
		_, err = s.pool.Exec(ctx, "ALTER ROLE "+ident+" LOGIN PASSWORD "+password)
	}
	if err != nil {
		return "", fmt.Errorf("create role: %w", err)
	}

	version, err := s.createFromTemplate(ctx, ident)
	if isCode(err, pgDuplicateDatabase) { // an earlier attempt made it
		_, version, err = p.migrator.Apply(ctx, p.AtlasURL(*t))
	}
	if err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	for _, stmt := range []string{
		"REVOKE ALL ON DATABASE " + ident + " FROM PUBLIC",
		"GRANT CONNECT, TEMPORARY ON DATABASE " + ident + " TO " + ident,
	} {
		if _, err := s.pool.Exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return version, nil
}

// createFromTemplate copies the template. PostgreSQL refuses while anyone is
// connected to the template (a migration that just ended may linger a
// moment), so that is retried briefly.
func (s *pgServer) createFromTemplate(ctx context.Context, ident string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for attempt := 0; ; attempt++ {
		_, err := s.pool.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE "+pgTemplate)
		if err == nil {
			return s.templateVersion, nil
		}
		if !isCode(err, pgObjectInUse) || attempt == 50 {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Drop drops the tenant's database, closing its connections, and its role.
func (p *Postgres) Drop(ctx context.Context, t Tenant) error {
	s, err := p.server(t.Location)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(t.Name, NamePrefix) {
		return fmt.Errorf("tenant: refusing to drop %q: not a tenant database", t.Name)
	}
	ident := pgx.Identifier{t.Name}.Sanitize()
	for _, stmt := range []string{
		"DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)",
		"DROP ROLE IF EXISTS " + ident,
	} {
		if _, err := s.pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("tenant: %s: %w", stmt, err)
		}
	}
	return nil
}

// Existing lists the tenant databases and roles on every server.
func (p *Postgres) Existing(ctx context.Context) ([]Tenant, error) {
	var out []Tenant
	for _, loc := range p.order {
		rows, err := p.servers[loc].pool.Query(ctx, `
			SELECT datname FROM pg_database WHERE starts_with(datname, $1)
			UNION SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)`, NamePrefix)
		if err != nil {
			return nil, fmt.Errorf("tenant: list databases on %s: %w", loc, err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("tenant: list databases on %s: %w", loc, err)
		}
		for _, n := range names {
			out = append(out, Tenant{Name: n, Location: loc, ExternalID: n})
		}
	}
	return out, nil
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

func safePassword(pw string) bool {
	if len(pw) < 16 {
		return false
	}
	for _, r := range pw {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// Sizes returns the size in bytes of each of the tenants' databases, by name.
func (p *Postgres) Sizes(ctx context.Context, ts []Tenant) (map[string]int64, error) {
	byServer := map[string][]string{}
	for _, t := range ts {
		byServer[t.Location] = append(byServer[t.Location], t.Name)
	}
	out := make(map[string]int64, len(ts))
	for loc, names := range byServer {
		s, err := p.server(loc)
		if err != nil {
			continue // a server no longer configured: size unknown
		}
		rows, err := s.pool.Query(ctx, "SELECT datname, pg_database_size(datname) FROM pg_database WHERE datname = ANY($1)", names)
		if err != nil {
			return nil, fmt.Errorf("tenant: database sizes on %s: %w", loc, err)
		}
		for rows.Next() {
			var name string
			var size int64
			if err := rows.Scan(&name, &size); err != nil {
				rows.Close()
				return nil, err
			}
			out[name] = size
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
