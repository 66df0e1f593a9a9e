// The tests run the provisioner against testrig's fake Neon API, which
// speaks Neon's HTTP API, through a real tenant.Manager.
package neon_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"silo/config"
	"silo/models"
	"silo/schema"
	"silo/tenant"
	"silo/tenant/neon"
	"silo/testrig"
	"silo/testrig/testdb"
)

// neonRig is a Manager with the Neon provisioner on a fake Neon API and a
// fresh SQLite control plane.
type neonRig struct {
	fake     *testrig.FakeNeon
	prov     *neon.Neon
	migrator *schema.Migrator
	sealer   *tenant.Sealer
	store    *models.Store
	mgr      *tenant.Manager
}

const neonRegion = "aws-eu-central-1"

func newNeonRig(t *testing.T) *neonRig {
	t.Helper()
	pg := testdb.ServerURL(t, config.Postgres)
	fake := testrig.NewFakeNeon(t, pg)
	migrator, err := schema.NewMigrator(testdb.AtlasBin(t), "tenant/postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(migrator.Close)
	prov := neon.New(fake.URL, fake.APIKey, neonRegion, migrator, nil)
	prov.SetWaits(time.Millisecond, time.Millisecond) // the fake answers at once
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := tenant.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	store := testdb.ControlPlane(t, config.SQLite)
	return &neonRig{
		fake: fake, prov: prov, migrator: migrator, sealer: sealer, store: store,
		mgr: tenant.NewManager(store, prov, tenant.Options{Sealer: sealer}),
	}
}

func (r *neonRig) user(t *testing.T, email string) *models.User {
	t.Helper()
	u, err := r.store.SignIn(context.Background(), models.Profile{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// post makes a project called name straight through the API, as another
// attempt or another program would, and returns its id.
func (r *neonRig) post(t *testing.T, name string) string {
	t.Helper()
	resp := r.request(t, http.MethodPost, "/projects", `{"project": {"name": "`+name+`"}}`)
	defer resp.Body.Close()
	var body struct {
		Project struct {
			ID string `json:"id"`
		} `json:"project"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /projects: got %d, %v; want 201", resp.StatusCode, err)
	}
	return body.Project.ID
}

func (r *neonRig) request(t *testing.T, method, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, r.fake.URL+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.fake.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// checkReady checks that v is ready and that its project is the only one
// with the user's name, at the newest schema.
func (r *neonRig) checkReady(t *testing.T, u *models.User, v *models.VectorDatabase) {
	t.Helper()
	ctx := context.Background()
	name := "silo_t_" + u.PublicID
	if v.Status != models.TenantReady || v.Engine != "neon" || v.Location != neonRegion {
		t.Fatalf("got row %s/%s/%s, want ready/neon/%s", v.Status, v.Engine, v.Location, neonRegion)
	}
	projects := r.fake.Projects()
	if len(projects) != 1 || projects[v.ExternalID] != name {
		t.Fatalf("got projects %v, want only %s called %s", projects, v.ExternalID, name)
	}
	plain, err := r.sealer.Open(v.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	var creds struct {
		DSN string `json:"dsn"`
	}
	if err := json.Unmarshal([]byte(plain), &creds); err != nil {
		t.Fatal(err)
	}
	if creds.DSN == "" || strings.Contains(v.Credentials, creds.DSN) {
		t.Fatalf("got credentials %q, want the DSN sealed in them", v.Credentials)
	}
	tn := tenant.Tenant{Name: name, Location: v.Location, ExternalID: v.ExternalID, DSN: creds.DSN}
	current, pending, err := r.migrator.Status(ctx, r.prov.AtlasURL(tn))
	if err != nil {
		t.Fatal(err)
	}
	if pending != 0 || current != v.SchemaVersion || current != r.migrator.Latest() {
		t.Fatalf("got version %q with %d pending, row says %q; want %s", current, pending, v.SchemaVersion, r.migrator.Latest())
	}
	conn, err := pgx.Connect(ctx, creds.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var chunks, vector bool
	err = conn.QueryRow(ctx, `SELECT to_regclass('public.chunks') IS NOT NULL,
		EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')`).Scan(&chunks, &vector)
	if err != nil {
		t.Fatal(err)
	}
	if !chunks || !vector {
		t.Fatalf("got chunks table %v and vector extension %v, want both", chunks, vector)
	}
}

// checkNoOrphans checks that the fake's projects and the directory's rows
// are the same.
func (r *neonRig) checkNoOrphans(t *testing.T) {
	t.Helper()
	rows, _, err := r.store.Tenants(context.Background(), models.TenantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	projects := r.fake.Projects()
	for _, v := range rows {
		if _, ok := projects[v.ExternalID]; !ok {
			t.Errorf("row %d names project %s, which does not exist", v.ID, v.ExternalID)
		}
	}
	if len(projects) != len(rows) {
		t.Errorf("got %d projects %v for %d rows, want one each", len(projects), projects, len(rows))
	}
}

func TestNeonEnsure(t *testing.T) {
	r := newNeonRig(t)
	u := r.user(t, "ada@example.com")
	ctx := context.Background()
	v, err := r.mgr.Ensure(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	r.checkReady(t, u, v)
	r.checkNoOrphans(t)

	again, err := r.mgr.Ensure(ctx, u)
	if err != nil || again.ExternalID != v.ExternalID {
		t.Fatalf("second Ensure: got %+v, %v; want project %s", again, err, v.ExternalID)
	}
	existing, err := r.prov.Existing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := tenant.Tenant{Name: "silo_t_" + u.PublicID, Location: neonRegion, ExternalID: v.ExternalID}
	if len(existing) != 1 || existing[0] != want {
		t.Fatalf("Existing: got %+v, want [%+v]", existing, want)
	}
}

func TestNeonRetriesBusyAndFailingAPI(t *testing.T) {
	r := newNeonRig(t)
	r.fake.Inject(testrig.Fault{Status: http.StatusTooManyRequests, Times: 2})
	r.fake.Inject(testrig.Fault{Method: http.MethodPost, Path: "/projects", Status: http.StatusServiceUnavailable, Times: 2})
	r.fake.Inject(testrig.Fault{Status: http.StatusBadGateway, Times: 2})
	u := r.user(t, "ada@example.com")
	v, err := r.mgr.Ensure(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.fake.FaultsServed(); got != 6 {
		t.Errorf("got %d faults served, want 6", got)
	}
	r.checkReady(t, u, v)
	r.checkNoOrphans(t)
}

func TestNeonPersistentFailureLeavesNoProject(t *testing.T) {
	for _, tc := range []struct {
		name   string
		served bool // each POST makes the project; only its answer fails
	}{
		{"refused", false},
		{"answer lost", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newNeonRig(t)
			r.fake.Inject(testrig.Fault{Method: http.MethodPost, Path: "/projects", Status: http.StatusInternalServerError, Served: tc.served})
			u := r.user(t, "ada@example.com")
			ctx := context.Background()
			_, err := r.mgr.Ensure(ctx, u)
			if err == nil {
				t.Fatal("Ensure succeeded while Neon fails every creation")
			}
			const want = "neon: POST /projects: 500 Internal Server Error: injected fault: 500 Internal Server Error (after 6 attempts)"
			if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), r.fake.APIKey) {
				t.Fatalf("got error %q, want it to say %q and not the key", err, want)
			}
			v, err := r.store.VectorDatabaseByUser(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != models.TenantProvisioning || !strings.Contains(v.Error, want) {
				t.Fatalf("got row %s with error %q, want provisioning with the failure", v.Status, v.Error)
			}

			r.fake.ClearFaults()
			if v, err = r.mgr.Ensure(ctx, u); err != nil {
				t.Fatal(err)
			}
			r.checkReady(t, u, v)
			r.checkNoOrphans(t)
		})
	}
}

// A failure after the project is made and before its id is recorded (here
// Neon stops answering polls of its operations) leaves a project that the
// next attempt adopts.
func TestNeonAdoptsProjectAfterFailure(t *testing.T) {
	r := newNeonRig(t)
	r.fake.Inject(testrig.Fault{Method: http.MethodGet, Path: "/projects/*/operations/*", Status: http.StatusInternalServerError})
	u := r.user(t, "ada@example.com")
	ctx := context.Background()
	if _, err := r.mgr.Ensure(ctx, u); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("got %v, want the failure polling the operations", err)
	}
	before := r.fake.Projects()
	v, err := r.store.VectorDatabaseByUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 1 || v.Status != models.TenantProvisioning || v.ExternalID != "silo_t_"+u.PublicID {
		t.Fatalf("got projects %v and row %s naming %s, want one project and a provisioning row without its id", before, v.Status, v.ExternalID)
	}

	r.fake.ClearFaults()
	if v, err = r.mgr.Ensure(ctx, u); err != nil {
		t.Fatal(err)
	}
	if before[v.ExternalID] == "" {
		t.Fatalf("got project %s, want the one made before the failure: %v", v.ExternalID, before)
	}
	r.checkReady(t, u, v)
	r.checkNoOrphans(t)
}

func TestNeonReducesDuplicateProjects(t *testing.T) {
	r := newNeonRig(t)
	u := r.user(t, "ada@example.com")
	first := r.post(t, "silo_t_"+u.PublicID)
	r.post(t, "silo_t_"+u.PublicID)
	r.post(t, "silo_t_"+u.PublicID)
	v, err := r.mgr.Ensure(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	if v.ExternalID != first {
		t.Errorf("kept project %s, want the oldest, %s", v.ExternalID, first)
	}
	r.checkReady(t, u, v)
	r.checkNoOrphans(t)
}

func TestNeonFailedOperationDeletesProject(t *testing.T) {
	r := newNeonRig(t)
	r.fake.SetOperations(2, "failed")
	u := r.user(t, "ada@example.com")
	ctx := context.Background()
	_, err := r.mgr.Ensure(ctx, u)
	if err == nil || !strings.Contains(err.Error(), "create_timeline on project") || !strings.Contains(err.Error(), "ended failed") {
		t.Fatalf("got error %v, want the failed operation", err)
	}
	if p := r.fake.Projects(); len(p) != 0 {
		t.Fatalf("got projects %v after a failed creation, want none", p)
	}

	r.fake.SetOperations(2, "finished")
	v, err := r.mgr.Ensure(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	r.checkReady(t, u, v)
}

func TestNeonReconcileDropsOrphans(t *testing.T) {
	r := newNeonRig(t)
	ctx := context.Background()
	u := r.user(t, "ada@example.com")
	if _, err := r.mgr.Ensure(ctx, u); err != nil {
		t.Fatal(err)
	}
	r.post(t, "silo_t_orphan")
	orphans, err := r.mgr.Reconcile(ctx)
	if err != nil || orphans != 1 {
		t.Fatalf("Reconcile: got %d orphans, %v; want 1", orphans, err)
	}
	r.checkNoOrphans(t)

	if err := r.mgr.Delete(ctx, u); err != nil {
		t.Fatal(err)
	}
	if p := r.fake.Projects(); len(p) != 0 {
		t.Fatalf("got projects %v after deleting the user, want none", p)
	}
}

func TestNeonDrop(t *testing.T) {
	r := newNeonRig(t)
	u := r.user(t, "ada@example.com")
	ctx := context.Background()
	v, err := r.mgr.Ensure(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	tn := tenant.Tenant{Name: "silo_t_" + u.PublicID, Location: v.Location, ExternalID: v.ExternalID}
	for range 2 { // the second finds nothing to drop, which is fine
		if err := r.prov.Drop(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	if p := r.fake.Projects(); len(p) != 0 {
		t.Fatalf("got projects %v after Drop, want none", p)
	}
	resp := r.request(t, http.MethodGet, "/projects/"+v.ExternalID, "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET the dropped project: got %d, want 404", resp.StatusCode)
	}
}

// Without the project's id (a crash came before it was recorded), Drop
// deletes the projects with the tenant's name, and no other.
func TestNeonDropByName(t *testing.T) {
	r := newNeonRig(t)
	r.post(t, "silo_t_crashed")
	r.post(t, "silo_t_crashed")
	other := r.post(t, "silo_t_crashed_not")
	if err := r.prov.Drop(context.Background(), tenant.Tenant{Name: "silo_t_crashed", ExternalID: "silo_t_crashed"}); err != nil {
		t.Fatal(err)
	}
	if p := r.fake.Projects(); len(p) != 1 || p[other] == "" {
		t.Fatalf("got projects %v, want only %s left", p, other)
	}
}

func TestNeonLeavesOtherProjectsAlone(t *testing.T) {
	r := newNeonRig(t)
	ctx := context.Background()
	other := r.post(t, "production")
	err := r.prov.Drop(ctx, tenant.Tenant{Name: "silo_t_x", ExternalID: other})
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("got %v, want a refusal", err)
	}
	if p := r.fake.Projects(); p[other] != "production" {
		t.Fatalf("got projects %v, want production kept", p)
	}
	existing, err := r.prov.Existing(ctx)
	if err != nil || len(existing) != 0 {
		t.Fatalf("Existing: got %v, %v; want no tenants", existing, err)
	}
}

func TestNeonClientErrorFailsAtOnce(t *testing.T) {
	r := newNeonRig(t)
	prov := neon.New(r.fake.URL, "napi_wrong", neonRegion, r.migrator, nil)
	prov.SetWaits(time.Hour, time.Hour) // a retry would hang the test
	tn := tenant.Tenant{Name: "silo_t_x"}
	_, err := prov.Create(context.Background(), &tn)
	const want = "neon: GET /projects: 401 Unauthorized: authentication required"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}
