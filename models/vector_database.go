package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Tenant database statuses. A row is written provisioning before the
// database is made and becomes ready after; deleting marks a database being
// dropped with its account.
const (
	TenantProvisioning = "provisioning"
	TenantReady        = "ready"
	TenantDeleting     = "deleting"
)

// VectorDatabase is one tenant's entry in the tenant directory: which
// database belongs to whom, where it is, and what state it is in.
type VectorDatabase struct {
	bun.BaseModel `bun:"table:vector_databases"`

	ID            int64      `bun:"id,pk,autoincrement"`
	UserID        int64      `bun:"user_id,notnull"`
	Engine        string     `bun:"engine,notnull"`
	Name          string     `bun:"name,notnull"`        // the database's (role's, project's, file's) name
	ExternalID    string     `bun:"external_id,notnull"` // the provider's id: a Neon project id, else Name
	Location      string     `bun:"location,notnull"`    // server, region or directory
	Status        string     `bun:"status,notnull"`
	SchemaVersion string     `bun:"schema_version,notnull"`
	Credentials   string     `bun:"credentials,notnull"` // encrypted; never shown or logged
	Error         string     `bun:"error,notnull"`       // why the last provisioning attempt failed
	LeaseUntil    *time.Time `bun:"lease_until"`
	CreatedAt     time.Time  `bun:"created_at,notnull"`
	UpdatedAt     time.Time  `bun:"updated_at,notnull"`

	User *User `bun:"rel:belongs-to,join:user_id=id"` // loaded by the queries that say so
}

// VectorDatabaseByUser returns the user's tenant database row, or
// ErrNotFound.
func (s *Store) VectorDatabaseByUser(ctx context.Context, userID int64) (*VectorDatabase, error) {
	v := new(VectorDatabase)
	err := s.DB.NewSelect().Model(v).Where("user_id = ?", userID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("models: vector database of user %d: %w", userID, err)
	}
	return v, nil
}

// InsertVectorDatabase writes v as the user's row unless the user has one
// already (one row per user, whoever writes first), then returns the row
// that stands.
func (s *Store) InsertVectorDatabase(ctx context.Context, v *VectorDatabase) (*VectorDatabase, error) {
	now := time.Now().UTC()
	v.CreatedAt, v.UpdatedAt = now, now
	if _, err := s.DB.NewInsert().Model(v).Ignore().Exec(ctx); err != nil {
		return nil, fmt.Errorf("models: insert vector database: %w", err)
	}
	return s.VectorDatabaseByUser(ctx, v.UserID)
}

// LeaseVectorDatabase claims a provisioning row for one worker until the
// lease runs out, and reports whether this caller got it. A crashed
// worker's lease simply expires.
func (s *Store) LeaseVectorDatabase(ctx context.Context, id int64, d time.Duration) (bool, error) {
	now := time.Now().UTC()
	res, err := s.DB.NewUpdate().Model((*VectorDatabase)(nil)).
		Set("lease_until = ?", now.Add(d)).
		Set("updated_at = ?", now).
		Where("id = ?", id).
		Where("status IN (?)", bun.List([]string{TenantProvisioning, TenantDeleting})).
		Where("(lease_until IS NULL OR lease_until < ?)", now).
		Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("models: lease vector database %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// UpdateVectorDatabase stores v's engine, place, status, schema version,
// credentials and error, and releases its lease.
func (s *Store) UpdateVectorDatabase(ctx context.Context, v *VectorDatabase) error {
	v.UpdatedAt = time.Now().UTC()
	v.LeaseUntil = nil
	_, err := s.DB.NewUpdate().Model(v).
		Column("engine", "name", "external_id", "location", "status", "schema_version", "credentials", "error", "lease_until", "updated_at").
		WherePK().Exec(ctx)
	if err != nil {
		return fmt.Errorf("models: update vector database %d: %w", v.ID, err)
	}
	return nil
}

// SetSchemaVersion records a tenant database's schema version.
func (s *Store) SetSchemaVersion(ctx context.Context, id int64, version string) error {
	_, err := s.DB.NewUpdate().Model((*VectorDatabase)(nil)).
		Set("schema_version = ?", version).
		Set("updated_at = ?", time.Now().UTC()).
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("models: set schema version of %d: %w", id, err)
	}
	return nil
}

// TenantFilter selects rows of the tenant directory; its zero value selects
// every row.
type TenantFilter struct {
	Status        string  // only rows with this status
	BehindOf      string  // only rows whose schema version is not this one
	IDs           []int64 // only these rows
	Email         string  // only rows of users whose e-mail address contains this
	Offset, Limit int
}

// Tenants returns the directory rows the filter selects, oldest first, each
// with its user, and how many rows match in all.
func (s *Store) Tenants(ctx context.Context, f TenantFilter) ([]VectorDatabase, int, error) {
	out := []VectorDatabase{}
	q := s.DB.NewSelect().Model(&out).Relation("User").Order("vector_database.id")
	if f.Status != "" {
		q.Where("vector_database.status = ?", f.Status)
	}
	if f.BehindOf != "" {
		q.Where("vector_database.schema_version <> ?", f.BehindOf)
	}
	if strings.ContainsRune(f.Email, 0) {
		return out, 0, nil // no address holds a NUL byte, which PostgreSQL refuses in a query
	}
	if f.Email != "" {
		like := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(NormalizeEmail(f.Email))
		q.Where("? LIKE ? ESCAPE '!'", bun.Ident("user.email"), "%"+like+"%")
	}
	if f.IDs != nil {
		if len(f.IDs) == 0 {
			return out, 0, nil
		}
		q.Where("vector_database.id IN (?)", bun.List(f.IDs))
	}
	if f.Limit > 0 {
		q.Offset(int64(f.Offset)).Limit(int64(f.Limit))
	}
	n, err := q.ScanAndCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("models: tenants: %w", err)
	}
	return out, int(n), nil
}

// TenantCounts returns how many tenant databases each location holds.
func (s *Store) TenantCounts(ctx context.Context) (map[string]int, error) {
	var rows []struct {
		Location string `bun:"location"`
		N        int    `bun:"n"`
	}
	err := s.DB.NewSelect().Model((*VectorDatabase)(nil)).
		Column("location").ColumnExpr("COUNT(*) AS n").
		Group("location").Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("models: tenant counts: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Location] = r.N
	}
	return out, nil
}

// DeleteUser deletes the user and, by cascade, their tenant directory row,
// documents and API tokens. Their sessions go through the session manager.
func (s *Store) DeleteUser(ctx context.Context, userID int64) error {
	if _, err := s.DB.NewDelete().Model((*User)(nil)).Where("id = ?", userID).Exec(ctx); err != nil {
		return fmt.Errorf("models: delete user %d: %w", userID, err)
	}
	return nil
}

// settingInstallation names the installation's id in the settings table.
const settingInstallation = "installation"

// Installation returns this installation's id, made on first use: eight
// random lower-case letters and digits.
func (s *Store) Installation(ctx context.Context) (string, error) {
	type setting struct {
		bun.BaseModel `bun:"table:settings"`
		Name          string `bun:"name,pk"`
		Value         string `bun:"value,notnull"`
	}
	row := &setting{Name: settingInstallation, Value: NewPublicID()[:8]}
	if _, err := s.DB.NewInsert().Model(row).Ignore().Exec(ctx); err != nil {
		return "", fmt.Errorf("models: record the installation id: %w", err)
	}
	if err := s.DB.NewSelect().Model(row).WherePK().Scan(ctx); err != nil {
		return "", fmt.Errorf("models: read the installation id: %w", err)
	}
	return row.Value, nil
}
