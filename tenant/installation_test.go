package tenant

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"silo/models"
	"silo/schema"
	"silo/testrig/testdb"
)

// Two installations share a tenants directory (as two would share a
// database server): each one's Reconcile drops only its own orphans.
func TestReconcileKeepsOtherInstallationsTenants(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	migrator, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(migrator.Close)
	prov, err := NewSQLite(ctx, dir, migrator)
	if err != nil {
		t.Fatal(err)
	}
	installation := func() (*Manager, *models.Store) {
		store := controlPlane(t)
		id, err := store.Installation(ctx)
		if err != nil || len(id) != 8 {
			t.Fatalf("Installation: got %q, %v; want an 8-character id", id, err)
		}
		again, _ := store.Installation(ctx)
		if again != id {
			t.Fatalf("Installation changed from %q to %q", id, again)
		}
		m := NewManager(store, prov, Options{Installation: id})
		t.Cleanup(m.Close)
		return m, store
	}
	a, storeA := installation()
	b, storeB := installation()
	ua, _ := storeA.SignIn(ctx, models.Profile{Email: "a@example.com"})
	ub, _ := storeB.SignIn(ctx, models.Profile{Email: "b@example.com"})
	va, err := a.Ensure(ctx, ua)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.Ensure(ctx, ub)
	if err != nil {
		t.Fatal(err)
	}
	if va.Name == vb.Name || va.Name[:16] == vb.Name[:16] {
		t.Fatalf("tenant names %q and %q do not tell the installations apart", va.Name, vb.Name)
	}
	orphan := a.prefix() + "orphan"
	if err := os.WriteFile(filepath.Join(dir, orphan+".db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := a.Reconcile(ctx)
	if err != nil || n != 1 {
		t.Fatalf("A's Reconcile: got %d orphans, %v; want 1 (its own orphan), nil", n, err)
	}
	if n, err := b.Reconcile(ctx); err != nil || n != 0 {
		t.Fatalf("B's Reconcile: got %d orphans, %v; want 0", n, err)
	}
	for _, name := range []string{va.Name, vb.Name} {
		if _, err := os.Stat(filepath.Join(dir, name+".db")); err != nil {
			t.Errorf("tenant %s: %v; want it kept", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, orphan+".db")); err == nil {
		t.Errorf("A's orphan is still there")
	}
}
