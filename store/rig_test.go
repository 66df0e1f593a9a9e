// Helpers of the store tests: a tenant database of a new user on SQLite or
// on the PostgreSQL server of TEST_POSTGRES_URL. What it holds of a
// document's chunks and vectors is read back with package tenantdata.

package store_test

import (
	"log/slog"
	"testing"

	"silo/config"
	"silo/models"
	"silo/tenant"
	"silo/testrig"
	"silo/testrig/tenantdata"
	"silo/testrig/testdb"
)

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
	return &rig{store: st, tenants: mgr, user: tenantdata.NewUser(t, st, mgr), engine: engine}
}

// tenantDB opens the user's tenant database until the test ends.
func (r *rig) tenantDB(t *testing.T) *tenant.DB {
	t.Helper()
	return tenantdata.Open(t, r.store, r.tenants, r.user.ID)
}

// tenantDB returns a ready tenant database of a new user on engine.
func tenantDB(t *testing.T, engine string) *tenant.DB {
	t.Helper()
	return newRig(t, engine).tenantDB(t)
}
