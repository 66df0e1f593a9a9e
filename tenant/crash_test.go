package tenant

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/testrig/testdb"
)

// The environment of the helper process TestKillMidProvisioning starts.
const (
	helperEnv      = "SILO_TEST_HELPER_PROVISION" // set: this process is the helper
	helperStore    = "SILO_TEST_HELPER_STORE"     // the control plane's file
	helperKey      = "SILO_TEST_HELPER_KEY"       // the sealer's key, hex
	helperUser     = "SILO_TEST_HELPER_USER"      // the user to provision
	helperStep     = "SILO_TEST_HELPER_STEP"      // the step to stop at
	helperReachedF = "reached step %s"            // what it prints there
)

// TestHelperProvision is not a test: it is the process that
// TestKillMidProvisioning kills. It provisions a user's PostgreSQL tenant
// and, after the step it is told, says so on stdout and waits to be killed.
func TestHelperProvision(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("the helper process of TestKillMidProvisioning")
	}
	ctx := context.Background()
	store := controlPlaneAt(t, os.Getenv(helperStore), false)
	m, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/postgres")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := NewPostgres(ctx, []string{testdb.ServerURL(t, config.Postgres)}, m)
	if err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(os.Getenv(helperKey))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := strconv.ParseInt(os.Getenv(helperUser), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.User(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	mgr := NewManager(store, pg, Options{Sealer: sealer})
	stop := os.Getenv(helperStep)
	mgr.afterStep = func(step string) error {
		if step == stop {
			fmt.Printf(helperReachedF+"\n", step)
			time.Sleep(time.Hour) // until killed
		}
		return nil
	}
	if _, err := mgr.Ensure(ctx, u); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("Ensure finished without stopping at step %q", stop)
}

// killAt runs the helper process to provision u on r's control plane and
// kills it with SIGKILL once it has passed step.
func killAt(t *testing.T, r *rig, storePath string, u *models.User, step string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProvision$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(),
		helperEnv+"=1",
		helperStore+"="+storePath,
		helperKey+"="+hex.EncodeToString(r.key),
		helperUser+"="+strconv.FormatInt(u.ID, 10),
		helperStep+"="+step,
		"TEST_POSTGRES_URL="+r.server,
		"ATLAS_BIN="+testdb.AtlasBin(t),
	)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // should the test fail before the kill

	reached := make(chan error, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		var seen []string
		for lines.Scan() {
			if lines.Text() == fmt.Sprintf(helperReachedF, step) {
				reached <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
			seen = append(seen, lines.Text())
		}
		reached <- fmt.Errorf("the helper's stdout ended without reaching step %s: %q", step, seen)
	}()
	select {
	case err = <-reached:
	case <-time.After(2 * time.Minute):
		err = errors.New("the helper did not reach the step within 2 minutes")
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("%v\nhelper stderr: %s", err, stderr.String())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if cmd.ProcessState == nil || cmd.ProcessState.Success() || !strings.Contains(fmt.Sprint(err), "killed") {
		t.Fatalf("the helper after SIGKILL: got %v, want it killed", err)
	}
}

// TestKillMidProvisioning kills the process provisioning a PostgreSQL
// tenant (SIGKILL: no clean-up of any kind) after each step, and checks that
// what it left is finished by Reconcile once its lease has run out, and not
// before.
func TestKillMidProvisioning(t *testing.T) {
	for _, step := range []string{"row", "database", "ready"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			storePath := filepath.Join(t.TempDir(), "silo.db")
			r := newRigWith(t, enginePostgres, rigConfig{storePath: storePath})
			u := r.user(t, "crash@example.com")
			ctx := context.Background()

			start := time.Now()
			killAt(t, r, storePath, u, step)

			v := r.row(t, u)
			if v == nil {
				t.Fatal("no directory row after the kill")
			}
			dbs := r.databases(t)
			switch step {
			case "row":
				// The row is written, nobody has taken it yet, and there is
				// no database: the next worker may take it at once.
				if v.Status != models.TenantProvisioning || v.LeaseUntil != nil || len(dbs) != 0 {
					t.Fatalf("after a kill at row: got row %s with lease %v, databases %v; want provisioning, no lease, none", v.Status, v.LeaseUntil, dbs)
				}
			case "database":
				// The database is made, the row still provisioning and held
				// by the dead worker's lease.
				if v.Status != models.TenantProvisioning || v.LeaseUntil == nil || !v.LeaseUntil.After(start.Add(leaseTime/2)) || !slices.Equal(dbs, []string{nameFor(u)}) {
					t.Fatalf("after a kill at database: got row %s with lease %v, databases %v; want provisioning, leased, %s", v.Status, v.LeaseUntil, dbs, nameFor(u))
				}
				// Nobody takes a row whose lease runs: neither Reconcile
				// nor a sign-in, which waits and gives up.
				if n, err := r.mgr.Reconcile(ctx); err != nil || n != 0 {
					t.Fatalf("Reconcile during the lease: got %d, %v; want 0, nil", n, err)
				}
				shortCtx, cancel := context.WithTimeout(ctx, time.Second)
				_, err := r.mgr.Ensure(shortCtx, u)
				cancel()
				if !errors.Is(err, ErrNotReady) {
					t.Fatalf("Ensure during the lease: got %v, want ErrNotReady", err)
				}
				if got := r.row(t, u); got.Status != models.TenantProvisioning || !got.LeaseUntil.Equal(*v.LeaseUntil) {
					t.Fatalf("row during the lease: got %s with lease %v, want it untouched", got.Status, got.LeaseUntil)
				}
				if got := r.prov.creates.Load(); got != 0 {
					t.Fatalf("Create calls during the lease: got %d, want 0", got)
				}
				// The dead worker's lease runs out.
				if _, err := r.store.DB.NewUpdate().Model((*models.VectorDatabase)(nil)).
					Set("lease_until = ?", time.Now().UTC().Add(-time.Second)).Where("id = ?", v.ID).Exec(ctx); err != nil {
					t.Fatal(err)
				}
			case "ready":
				if v.Status != models.TenantReady || !slices.Equal(dbs, []string{nameFor(u)}) {
					t.Fatalf("after a kill at ready: got row %s, databases %v; want ready, %s", v.Status, dbs, nameFor(u))
				}
			}

			if n, err := r.mgr.Reconcile(ctx); err != nil || n != 0 {
				t.Fatalf("Reconcile: got %d, %v; want 0, nil", n, err)
			}
			r.checkReady(t, u)
			checkUsable(t, r, r.row(t, u))
		})
	}
}

// TestReconcileOrphans makes tenant databases no row accounts for, and
// databases that only look like tenants': Reconcile drops the former and
// counts them, never touches the latter, and leaves a real tenant alone.
func TestReconcileOrphans(t *testing.T) {
	for _, engine := range rigEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, engine)
			ctx := context.Background()
			u := r.user(t, "kept@example.com")
			v := r.ensure(t, u)

			// An orphan: a tenant database (with its role) and no row.
			orphan := Tenant{Name: NamePrefix + randomName(), Location: r.real.Locations()[0], Password: newPassword()}
			r.own(orphan.Name)
			if _, err := r.real.Create(ctx, &orphan); err != nil {
				t.Fatal(err)
			}
			// Look-alikes: not silo's prefix, or not at the start. On
			// PostgreSQL "silo_tenant_…" would match a LIKE 'silo_t_%'.
			lookalikes := []string{"silo_tenant_" + randomName(), "xsilo_t_" + randomName(), "silo_t" + randomName()}
			r.makeLookalikes(t, lookalikes)

			if got := r.databases(t); !slices.Equal(got, sorted(nameFor(u), orphan.Name)) {
				t.Fatalf("tenant databases before Reconcile: got %v, want %v", got, sorted(nameFor(u), orphan.Name))
			}
			if n, err := r.mgr.Reconcile(ctx); err != nil || n != 1 {
				t.Fatalf("Reconcile: got %d orphans, %v; want 1, nil", n, err)
			}
			if got := r.databases(t); !slices.Equal(got, []string{nameFor(u)}) {
				t.Errorf("tenant databases after Reconcile: got %v, want %v", got, []string{nameFor(u)})
			}
			r.checkLookalikes(t, lookalikes)

			if engine == enginePostgres {
				// A role left without its database (a crash between the
				// two) is an orphan too.
				role := NamePrefix + randomName()
				r.own(role)
				if _, err := r.admin(t, "postgres").Exec(ctx, "CREATE ROLE "+role); err != nil {
					t.Fatal(err)
				}
				if n, err := r.mgr.Reconcile(ctx); err != nil || n != 1 {
					t.Fatalf("Reconcile with an orphan role: got %d orphans, %v; want 1, nil", n, err)
				}
				if _, roles := r.pgExisting(t, []string{role}); len(roles) != 0 {
					t.Errorf("orphan role after Reconcile: got %v, want none", roles)
				}
			}

			r.checkReady(t, u) // the real tenant is whole, and a Reconcile finds nothing more
			checkUsable(t, r, v)
			r.checkLookalikes(t, lookalikes)
		})
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// makeLookalikes makes databases (files) with names that are not tenants'.
func (r *rig) makeLookalikes(t *testing.T, names []string) {
	t.Helper()
	ctx := context.Background()
	for _, n := range names {
		if r.engine == engineSQLite {
			r.mu.Lock()
			r.ignored[n+".db"] = true
			r.mu.Unlock()
			if err := os.WriteFile(filepath.Join(r.dir, n+".db"), []byte("not a tenant"), 0o600); err != nil {
				t.Fatal(err)
			}
			continue
		}
		ident := pgx.Identifier{n}.Sanitize()
		if _, err := r.admin(t, "postgres").Exec(ctx, "CREATE DATABASE "+ident); err != nil {
			t.Fatal(err)
		}
		if _, err := r.admin(t, "postgres").Exec(ctx, "CREATE ROLE "+ident); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			conn, err := pgx.Connect(context.Background(), r.server)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(context.Background())
			for _, stmt := range []string{"DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)", "DROP ROLE IF EXISTS " + ident} {
				if _, err := conn.Exec(context.Background(), stmt); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// checkLookalikes checks that the look-alikes are all still there.
func (r *rig) checkLookalikes(t *testing.T, names []string) {
	t.Helper()
	for _, n := range names {
		if r.engine == engineSQLite {
			if b, err := os.ReadFile(filepath.Join(r.dir, n+".db")); err != nil || string(b) != "not a tenant" {
				t.Errorf("look-alike file %s.db: got %q, %v; want it untouched", n, b, err)
			}
			continue
		}
		dbs, roles := r.pgExisting(t, []string{n})
		if len(dbs) != 1 || len(roles) != 1 {
			t.Errorf("look-alike %s: got databases %v and roles %v, want both kept", n, dbs, roles)
		}
	}
}
