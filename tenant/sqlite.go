package tenant

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"silo/schema"
)

// SQLite makes one SQLite file per tenant in a directory. New files are
// copies of a template file kept at the newest tenant schema.
type SQLite struct {
	dir      string
	migrator *schema.Migrator

	mu              sync.RWMutex // held for writing while the template migrates
	templateVersion string
}

// templateFile is the template's name in the tenants directory; it does not
// start with NamePrefix, so it is never taken for a tenant.
const templateFile = ".template.db"

// NewSQLite returns a provisioner of tenant files in dir, with the template
// brought to the newest schema by migrator (tenant/sqlite).
func NewSQLite(ctx context.Context, dir string, migrator *schema.Migrator) (*SQLite, error) {
	// atlas runs in a directory of its own: a relative path would miss.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("tenant: create %s: %w", dir, err)
	}
	p := &SQLite{dir: dir, migrator: migrator}
	if err := p.MigrateTemplate(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Engine is "sqlite".
func (p *SQLite) Engine() string { return "sqlite" }

// Locations is the one directory.
func (p *SQLite) Locations() []string { return []string{p.dir} }

// Migrator applies the SQLite tenant schema.
func (p *SQLite) Migrator() *schema.Migrator { return p.migrator }

func (p *SQLite) path(t Tenant) string { return sqliteFile(t) }

// sqliteFile is the path of a SQLite tenant's file.
func sqliteFile(t Tenant) string { return filepath.Join(t.Location, t.Name+".db") }

// AtlasURL is the tenant file's sqlite:// URL.
func (p *SQLite) AtlasURL(t Tenant) string { return "sqlite://" + p.path(t) + "?_fk=1" }

// MigrateTemplate brings the template file to the newest tenant schema.
func (p *SQLite) MigrateTemplate(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, to, err := p.migrator.Apply(ctx, p.AtlasURL(Tenant{Name: strings.TrimSuffix(templateFile, ".db"), Location: p.dir}))
	if err != nil {
		return fmt.Errorf("tenant: migrate the sqlite template: %w", err)
	}
	p.templateVersion = to
	return nil
}

// Create copies the template to the tenant's file, or adopts and migrates a
// file an earlier attempt left.
func (p *SQLite) Create(ctx context.Context, t *Tenant) (string, error) {
	path := p.path(*t)
	t.ExternalID, t.DSN = t.Name, path
	if _, err := os.Stat(path); err == nil {
		_, to, err := p.migrator.Apply(ctx, p.AtlasURL(*t))
		return to, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err := copyFile(filepath.Join(p.dir, templateFile), path); err != nil {
		return "", fmt.Errorf("tenant: create %s: %w", path, err)
	}
	return p.templateVersion, nil
}

// Drop removes the tenant's file and its journal files.
func (p *SQLite) Drop(_ context.Context, t Tenant) error {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(p.path(t) + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tenant: drop %s: %w", t.Name, err)
		}
	}
	return nil
}

// Existing lists the tenant files in the directory.
func (p *SQLite) Existing(context.Context) ([]Tenant, error) {
	paths, err := filepath.Glob(filepath.Join(p.dir, NamePrefix+"*.db"))
	if err != nil {
		return nil, err
	}
	out := make([]Tenant, len(paths))
	for i, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".db")
		out[i] = Tenant{Name: name, Location: p.dir, ExternalID: name}
	}
	return out, nil
}

// copyFile copies src to a new file dst, whole or not at all: it writes a
// temporary file, syncs it and renames it into place.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".create-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // a no-op after the rename
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// Sizes returns the size in bytes of each of the tenants' files (with their
// write-ahead logs), by name.
func (p *SQLite) Sizes(_ context.Context, ts []Tenant) (map[string]int64, error) {
	out := make(map[string]int64, len(ts))
	for _, t := range ts {
		var size int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(p.path(t) + suffix); err == nil {
				size += fi.Size()
			}
		}
		if size > 0 {
			out[t.Name] = size
		}
	}
	return out, nil
}
