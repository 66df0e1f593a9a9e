// Package schema holds silo's atlas migration directories, embedded in the
// binary, and applies them with the atlas CLI through atlas-go-sdk.
//
// control/<dialect> is the control plane; tenant/<engine> (later) is every
// tenant database.
package schema

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"ariga.io/atlas-go-sdk/atlasexec"
)

//go:embed control tenant
var migrations embed.FS

// AtlasInstallHint is the command that installs the atlas CLI.
const AtlasInstallHint = "make atlas"

// ErrAtlasMissing means the atlas CLI could not be found.
var ErrAtlasMissing = errors.New("the atlas CLI was not found (looked at $ATLAS_BIN, ./bin/atlas and $PATH): run `" + AtlasInstallHint + "` to build it into ./bin/atlas")

// FindAtlas returns the path of the atlas CLI: configured (ATLAS_BIN), then
// ./bin/atlas, then atlas on the PATH.
func FindAtlas(configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("ATLAS_BIN=%s: %w; run `%s` or fix the path", configured, err, AtlasInstallHint)
		}
		return configured, nil
	}
	if p, err := filepath.Abs(filepath.Join("bin", "atlas")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("atlas"); err == nil {
		return p, nil
	}
	return "", ErrAtlasMissing
}

// Migrator applies one embedded migration directory to databases.
type Migrator struct {
	dir      *atlasexec.WorkingDir
	client   *atlasexec.Client
	atlasBin string
	latest   string
}

// NewMigrator copies the migration directory at path (for example
// "control/sqlite") out of the binary for the atlas CLI at atlasBin. Close
// removes the copy.
func NewMigrator(atlasBin, path string) (*Migrator, error) {
	sub, err := fs.Sub(migrations, path)
	if err != nil {
		return nil, fmt.Errorf("schema: %s: %w", path, err)
	}
	return newMigrator(atlasBin, path, sub)
}

// NewMigratorFS is NewMigrator over a migration directory given as a file
// system (its .sql files and atlas.sum at the root) rather than one embedded
// in the binary: tests use it to add a migration to a copy of a directory.
func NewMigratorFS(atlasBin string, dir fs.FS) (*Migrator, error) {
	return newMigrator(atlasBin, "the migration directory", dir)
}

func newMigrator(atlasBin, path string, sub fs.FS) (*Migrator, error) {
	files, err := fs.Glob(sub, "*.sql") // sorted, oldest first
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("schema: no migrations in %s", path)
	}
	latest, _, _ := strings.Cut(files[len(files)-1], "_")
	wd, err := atlasexec.NewWorkingDir(atlasexec.WithMigrations(sub))
	if err != nil {
		return nil, fmt.Errorf("schema: copy %s: %w", path, err)
	}
	client, err := atlasexec.NewClient(wd.Path(), atlasBin)
	if err != nil {
		_ = wd.Close()
		return nil, fmt.Errorf("schema: %w", err)
	}
	return &Migrator{dir: wd, client: client, atlasBin: atlasBin, latest: latest}, nil
}

// Latest is the newest migration version in the directory.
func (m *Migrator) Latest() string { return m.latest }

// Close removes the copied migration directory.
func (m *Migrator) Close() { _ = m.dir.Close() }

// Apply brings the database at url (an atlas URL) to the newest version and
// returns the versions it went from and to.
func (m *Migrator) Apply(ctx context.Context, url string) (from, to string, err error) {
	client, err := m.clientFor(url)
	if err != nil {
		return "", "", err
	}
	res, err := client.MigrateApply(ctx, &atlasexec.MigrateApplyParams{
		DirURL: "file://migrations",
		URL:    url,
	})
	if err != nil {
		return "", "", fmt.Errorf("schema: apply: %w", atlasError(err))
	}
	if res.Target == "" { // nothing to apply
		return res.Current, res.Current, nil
	}
	return res.Current, res.Target, nil
}

// Status reports the database's current version and how many migrations are
// still to apply.
func (m *Migrator) Status(ctx context.Context, url string) (current string, pending int, err error) {
	client, err := m.clientFor(url)
	if err != nil {
		return "", 0, err
	}
	res, err := client.MigrateStatus(ctx, &atlasexec.MigrateStatusParams{
		DirURL: "file://migrations",
		URL:    url,
	})
	if err != nil {
		return "", 0, fmt.Errorf("schema: status: %w", atlasError(err))
	}
	if len(res.Applied) == 0 {
		return "", len(res.Pending), nil // atlas says "No migration applied yet"
	}
	return res.Current, len(res.Pending), nil
}

// clientFor returns the atlas client for a database. atlas locks a SQLite
// database with a lock file named the same for every database, in $TMPDIR:
// each SQLite database gets a TMPDIR of its own, so migrating two tenant
// files at once does not collide while one file stays locked against two
// migrations.
func (m *Migrator) clientFor(url string) (*atlasexec.Client, error) {
	path, ok := strings.CutPrefix(url, "sqlite://")
	if !ok {
		return m.client, nil
	}
	path, _, _ = strings.Cut(path, "?")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	sum := sha256.Sum256([]byte(path))
	dir := filepath.Join(os.TempDir(), "silo-atlas-locks", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("schema: lock directory: %w", err)
	}
	client, err := atlasexec.NewClient(m.dir.Path(), m.atlasBin)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	env := atlasexec.NewOSEnviron()
	env["TMPDIR"] = dir
	if err := client.SetEnv(env); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return client, nil
}

// atlasError keeps what the atlas CLI said, which is the useful part.
func atlasError(err error) error {
	var ae *atlasexec.Error
	if errors.As(err, &ae) && ae.Stderr != "" {
		return errors.New(strings.TrimPrefix(strings.TrimSpace(ae.Stderr), "Error: "))
	}
	return err
}

// VectorDims is the width of a tenant database's vectors: PostgreSQL
// tenants store them as halfvec(2000) (HNSW's limit), and no tenant, on
// either engine, holds wider ones; shorter ones are zero-padded.
const VectorDims = 2000
