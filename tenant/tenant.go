// Package tenant gives every tenant a database of its own: provisioners for
// PostgreSQL servers, Neon projects and SQLite files, crash-safe
// provisioning at sign-up, a cache of tenant connections, deletion, and
// migrating every tenant database at once.
package tenant

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"silo/models"
	"silo/schema"
)

// Tenant is one tenant database: what the control plane records of it.
type Tenant struct {
	Name       string // database, role, project or file name: silo_t_<user public id>
	Location   string // the server, region or directory it lives in
	ExternalID string // the provider's id for it (a Neon project id); else Name
	Password   string // the tenant role's password, where there is one
	DSN        string // how silo connects to it; secret
}

// Provisioner makes and drops tenant databases on one engine.
//
// Create must be idempotent: called again for a tenant whose earlier attempt
// failed half-way, it adopts what that attempt made and finishes it. Drop of
// something that does not exist is not an error.
type Provisioner interface {
	// Engine names the engine: postgres, neon or sqlite.
	Engine() string
	// Locations are the places a new tenant may go.
	Locations() []string
	// Create makes t's database at the newest tenant schema, fills in
	// ExternalID and DSN, and returns the schema version it is at.
	Create(ctx context.Context, t *Tenant) (version string, err error)
	// Drop removes t's database and anything made for it (its role).
	Drop(ctx context.Context, t Tenant) error
	// Existing lists the tenant databases that exist, to find orphans.
	Existing(ctx context.Context) ([]Tenant, error)
	// AtlasURL is the address atlas migrates t's database at.
	AtlasURL(t Tenant) string
	// Migrator applies the tenant schema of the engine.
	Migrator() *schema.Migrator
}

// NamePrefix starts the name of every tenant database silo makes; nothing
// else is ever dropped.
const NamePrefix = "silo_t_"

// leaseTime bounds how long one worker may hold a provisioning row before
// another may take over (a crashed worker's lease runs out).
const leaseTime = 2 * time.Minute

// prefix starts the names of this installation's tenant databases.
func (m *Manager) prefix() string {
	if m.installation == "" {
		return NamePrefix
	}
	return NamePrefix + m.installation + "_"
}

// nameFor is the tenant database name of a user: derived from the
// installation and the user's random public id, so a retry finds what an
// earlier attempt made, and no other installation's reconciler takes it
// for an orphan.
func (m *Manager) nameFor(u *models.User) string { return m.prefix() + u.PublicID }

// Manager provisions, finds and deletes tenant databases, keeping the
// control plane's tenant directory the truth about them.
type Manager struct {
	store  *models.Store
	prov   Provisioner
	sealer *Sealer
	pools  *Pools
	log    *slog.Logger
	// installation is part of every tenant name (see Options).
	installation string

	// afterStep, when set (by tests), runs after each provisioning step and
	// may fail it: "row", "database", "ready".
	afterStep func(step string) error

	// placing makes choosing a new tenant's location and writing its row
	// one step, so that concurrent sign-ups count each other and spread
	// evenly (within this process).
	placing sync.Mutex
}

// Options are a Manager's settings beside its store and provisioner.
type Options struct {
	Sealer *Sealer // seals tenant credentials; nil when there are none (SQLite)
	// Installation is this installation's id (models.Store.Installation):
	// part of every tenant database's name, and the only names Reconcile
	// ever drops. Empty means the bare prefix (tests).
	Installation string
	MaxConns     int          // open tenant connections, all tenants together (TENANT_MAX_CONNS)
	Log          *slog.Logger // nil discards
}

// NewManager returns a Manager that makes tenant databases with prov and
// keeps them in store's directory. Close releases its connections.
func NewManager(store *models.Store, prov Provisioner, opts Options) *Manager {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{store: store, prov: prov, sealer: opts.Sealer, pools: NewPools(opts.MaxConns), log: opts.Log, installation: opts.Installation}
}

// Close closes every open tenant connection.
func (m *Manager) Close() { m.pools.Close() }

// DB returns the open database of a ready tenant row and the function that
// hands it back; connections are shared under TENANT_MAX_CONNS.
func (m *Manager) DB(ctx context.Context, v *models.VectorDatabase) (*DB, func(), error) {
	return m.pools.Acquire(ctx, v.ID, func() (Tenant, error) {
		t, err := m.tenant(v, v.Name)
		if err == nil && t.DSN == "" && v.Engine == "sqlite" { // a file needs no sealed credentials
			t.DSN = sqliteFile(t)
		}
		return t, err
	})
}

// sizer is a provisioner that can tell how big its tenant databases are.
type sizer interface {
	Sizes(ctx context.Context, ts []Tenant) (map[string]int64, error)
}

// Sizes returns the size in bytes of the rows' databases, by row id; a size
// the engine cannot tell is missing.
func (m *Manager) Sizes(ctx context.Context, rows []models.VectorDatabase) (map[int64]int64, error) {
	out := make(map[int64]int64, len(rows))
	sz, ok := m.prov.(sizer)
	if !ok {
		return out, nil
	}
	ts := make([]Tenant, len(rows))
	for i, v := range rows {
		ts[i] = Tenant{Name: v.Name, Location: v.Location, ExternalID: v.ExternalID}
	}
	byName, err := sz.Sizes(ctx, ts)
	if err != nil {
		return nil, err
	}
	for _, v := range rows {
		if n, ok := byName[v.Name]; ok {
			out[v.ID] = n
		}
	}
	return out, nil
}

// LatestSchema is the newest tenant schema version.
func (m *Manager) LatestSchema() string { return m.prov.Migrator().Latest() }

// Place says where a tenant database is, for people: the server's address
// or Neon's region; "this server" for a SQLite file (its path is not
// shown).
func (m *Manager) Place(v models.VectorDatabase) string {
	if v.Engine == EngineSQLite {
		return "this server"
	}
	return v.Location
}

// Provisioner returns the manager's provisioner.
func (m *Manager) Provisioner() Provisioner { return m.prov }

// ErrNotReady means the tenant database is still being set up by another
// request or process.
var ErrNotReady = errors.New("tenant: the workspace is still being set up")

// Ensure returns the user's ready tenant database, making it if the user has
// none. It is idempotent and crash-safe: the directory row is written
// provisioning first (one per user, whoever comes first), then the database
// is made, then the row becomes ready. When another worker holds the row,
// Ensure waits for it up to ctx's deadline and then returns ErrNotReady.
func (m *Manager) Ensure(ctx context.Context, u *models.User) (*models.VectorDatabase, error) {
	pending := false // the row is there, not ready: running out of time now means ErrNotReady
	for {
		v, err := m.store.VectorDatabaseByUser(ctx, u.ID)
		if errors.Is(err, models.ErrNotFound) {
			v, err = m.insertRow(ctx, u)
		}
		if err != nil {
			if pending && ctx.Err() != nil { // the wait ran out mid-query
				return nil, ErrNotReady
			}
			return nil, err
		}
		if v.Status == models.TenantReady {
			return v, nil
		}
		if v.Status == models.TenantDeleting {
			return nil, fmt.Errorf("tenant: %s is being deleted", v.Name)
		}
		pending = true
		leased, err := m.store.LeaseVectorDatabase(ctx, v.ID, leaseTime)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ErrNotReady
			}
			return nil, err
		}
		if leased {
			return m.provision(ctx, v, v.Name)
		}
		select { // another worker is on it
		case <-ctx.Done():
			return nil, ErrNotReady
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// insertRow writes the provisioning row: the name, the place and the
// credentials are chosen now, so every retry makes the same database.
func (m *Manager) insertRow(ctx context.Context, u *models.User) (*models.VectorDatabase, error) {
	v, err := m.placeRow(ctx, u)
	if err != nil {
		return nil, err
	}
	return v, m.step("row")
}

// placeRow chooses the place of u's new tenant and writes its row.
func (m *Manager) placeRow(ctx context.Context, u *models.User) (*models.VectorDatabase, error) {
	m.placing.Lock()
	defer m.placing.Unlock()
	loc, err := m.placement(ctx)
	if err != nil {
		return nil, err
	}
	t := Tenant{Name: m.nameFor(u), Location: loc, ExternalID: m.nameFor(u)}
	if m.sealer != nil {
		t.Password = newPassword()
	}
	creds, err := m.seal(t)
	if err != nil {
		return nil, err
	}
	return m.store.InsertVectorDatabase(ctx, &models.VectorDatabase{
		UserID: u.ID, Engine: m.prov.Engine(), Name: t.Name, ExternalID: t.ExternalID, Location: loc,
		Status: models.TenantProvisioning, Credentials: creds,
	})
}

// placement picks the location with the fewest tenants.
func (m *Manager) placement(ctx context.Context) (string, error) {
	locs := m.prov.Locations()
	if len(locs) == 1 {
		return locs[0], nil
	}
	counts, err := m.store.TenantCounts(ctx)
	if err != nil {
		return "", err
	}
	best := locs[0]
	for _, l := range locs[1:] {
		if counts[l] < counts[best] {
			best = l
		}
	}
	return best, nil
}

// provision makes the database of a leased provisioning row and marks it
// ready. On failure the row keeps the error and stays provisioning, for the
// next attempt to finish.
func (m *Manager) provision(ctx context.Context, v *models.VectorDatabase, name string) (*models.VectorDatabase, error) {
	t, err := m.tenant(v, name)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	version, err := m.prov.Create(ctx, &t)
	if err == nil {
		err = m.step("database")
	}
	if err != nil {
		v.Error = err.Error()
		if uerr := m.store.UpdateVectorDatabase(context.WithoutCancel(ctx), v); uerr != nil {
			m.log.Error("record provisioning failure", "tenant", t.Name, "err", uerr)
		}
		return nil, fmt.Errorf("tenant: provision %s: %w", t.Name, err)
	}
	creds, err := m.seal(t)
	if err != nil {
		return nil, err
	}
	v.ExternalID, v.Credentials, v.SchemaVersion = t.ExternalID, creds, version
	v.Status, v.Error = models.TenantReady, ""
	if err := m.store.UpdateVectorDatabase(ctx, v); err != nil {
		return nil, err
	}
	if err := m.step("ready"); err != nil {
		return nil, err
	}
	m.log.Info("tenant database ready", "tenant", t.Name, "engine", v.Engine, "location", v.Location, "duration", time.Since(start).Round(time.Millisecond))
	return v, nil
}

// Delete drops the user's tenant database and then deletes the user with
// their directory row, documents and tokens. If the drop fails the row stays
// deleting, and Reconcile finishes the job.
func (m *Manager) Delete(ctx context.Context, u *models.User) error {
	v, err := m.store.VectorDatabaseByUser(ctx, u.ID)
	switch {
	case errors.Is(err, models.ErrNotFound):
	case err != nil:
		return err
	default:
		v.Status = models.TenantDeleting
		if err := m.store.UpdateVectorDatabase(ctx, v); err != nil {
			return err
		}
		if err := m.drop(ctx, v, v.Name); err != nil {
			return err
		}
	}
	return m.store.DeleteUser(ctx, u.ID)
}

// drop closes the connections to a directory row's database and drops it.
func (m *Manager) drop(ctx context.Context, v *models.VectorDatabase, name string) error {
	t, err := m.tenant(v, name)
	if err != nil {
		return err
	}
	m.pools.Evict(v.ID)
	if err := m.prov.Drop(ctx, t); err != nil {
		return fmt.Errorf("tenant: drop %s: %w", name, err)
	}
	m.log.Info("tenant database dropped", "tenant", name, "engine", v.Engine)
	return nil
}

// Reconcile makes the tenant directory and the databases agree, after a
// crash or a failed attempt: it drops databases no row accounts for (never
// anything without silo's tenant prefix), finishes provisioning rows nobody
// holds, and finishes deletions. It reports how many databases it dropped as
// orphans.
func (m *Manager) Reconcile(ctx context.Context) (orphans int, err error) {
	// Databases first, rows second: a row is always written before its
	// database, so a database made after this listing has a row in the next.
	existing, err := m.prov.Existing(ctx)
	if err != nil {
		return 0, err
	}
	rows, _, err := m.store.Tenants(ctx, models.TenantFilter{})
	if err != nil {
		return 0, err
	}
	known := make(map[string]bool, len(rows))
	for _, v := range rows {
		known[v.Name] = true
	}
	var errs []error
	for _, t := range existing {
		if known[t.Name] || !strings.HasPrefix(t.Name, m.prefix()) {
			continue // ours, or another installation's
		}
		if err := m.prov.Drop(ctx, t); err != nil {
			errs = append(errs, err)
			continue
		}
		orphans++
		m.log.Warn("dropped an orphan tenant database", "tenant", t.Name, "location", t.Location)
	}
	for i := range rows {
		v := &rows[i]
		if v.Status == models.TenantReady {
			continue
		}
		leased, err := m.store.LeaseVectorDatabase(ctx, v.ID, leaseTime)
		if err == nil && leased { // nobody else is on it
			if v.Status == models.TenantProvisioning {
				_, err = m.provision(ctx, v, v.Name)
			} else {
				err = m.Delete(ctx, v.User)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return orphans, errors.Join(errs...)
}

func (m *Manager) step(name string) error {
	if m.afterStep == nil {
		return nil
	}
	return m.afterStep(name)
}

// secret is what a row's sealed credentials hold.
type secret struct {
	Password string `json:"password,omitempty"`
	DSN      string `json:"dsn,omitempty"`
}

// seal encrypts t's credentials for its row. Without a sealer (SQLite
// tenants, no SECRET_KEY) nothing is stored: a file needs no password.
func (m *Manager) seal(t Tenant) (string, error) {
	if m.sealer == nil {
		return "", nil
	}
	b, _ := json.Marshal(secret{Password: t.Password, DSN: t.DSN})
	return m.sealer.Seal(string(b))
}

// tenant reads a directory row back into a Tenant called name, credentials
// opened.
func (m *Manager) tenant(v *models.VectorDatabase, name string) (Tenant, error) {
	t := Tenant{Name: name, Location: v.Location, ExternalID: v.ExternalID}
	plain, err := m.sealer.Open(v.Credentials)
	if err != nil {
		return t, err
	}
	if plain != "" {
		var s secret
		if err := json.Unmarshal([]byte(plain), &s); err != nil {
			return t, fmt.Errorf("tenant: stored credentials are corrupt: %w", err)
		}
		t.Password, t.DSN = s.Password, s.DSN
	}
	return t, nil
}

// newPassword is a random password of letters and digits only, so it is
// safe inside a quoted SQL literal and a URL.
func newPassword() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}
