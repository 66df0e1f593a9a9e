package testrig

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"silo/testrig/testdb"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// neonAPIRoot is where the fake serves Neon's API below its address, as
// https://console.neon.tech/api/v2 does.
const neonAPIRoot = "/api/v2"

// FakeNeon is a stand-in for Neon's v2 API: the same paths, JSON field
// names and status codes for projects, their operations and connection
// URIs, each project backed by a real database on a local PostgreSQL
// server. It can be told to fail requests, to find out how a client copes.
type FakeNeon struct {
	// URL is the API root to give a client, like
	// https://console.neon.tech/api/v2.
	URL string
	// APIKey is the only bearer token the fake accepts.
	APIKey string

	t      testing.TB
	server *url.URL // the PostgreSQL server projects' databases live on

	mu         sync.Mutex
	projects   map[string]*fakeProject // by id
	ops        map[string]*fakeOperation
	polls      int    // GETs of an operation before it ends
	final      string // the status operations end in
	faults     []Fault
	faultsSent int
}

// Fault makes the fake answer requests with an error instead of serving
// them.
type Fault struct {
	// Method limits the fault to requests with this method; "" is any.
	Method string
	// Path limits the fault to requests whose path below the API root
	// matches this path.Match pattern, such as "/projects" or
	// "/projects/*/operations/*"; "" is any.
	Path string
	// Status is the status to answer; a 429 comes with Retry-After: 0.
	Status int
	// Times is how many requests to fail; 0 fails every one until
	// ClearFaults.
	Times int
	// Served serves the request first and then answers Status, like a
	// response lost on the way back: a failed POST /projects still makes
	// the project.
	Served bool
}

// fakeProject is one project and the database behind it.
type fakeProject struct {
	ID         string    `json:"id"`
	PlatformID string    `json:"platform_id"`
	RegionID   string    `json:"region_id"`
	Name       string    `json:"name"`
	PGVersion  int       `json:"pg_version"`
	ProxyHost  string    `json:"proxy_host"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`

	branchID, role, database string
	uri                      *url.URL // the backing database
}

// fakeOperation is one operation on a project.
type fakeOperation struct {
	ID            string    `json:"id"`
	ProjectID     string    `json:"project_id"`
	BranchID      string    `json:"branch_id"`
	Action        string    `json:"action"`
	Status        string    `json:"status"`
	FailuresCount int       `json:"failures_count"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`

	polls int
}

// NewFakeNeon starts a fake Neon API whose projects get databases on the
// PostgreSQL server at pgServerURL (a role that may create databases; the
// server needs pgvector). It stops, and drops every database it made, when
// the test ends. Operations finish on their second poll.
func NewFakeNeon(t testing.TB, pgServerURL string) *FakeNeon {
	t.Helper()
	u, err := url.Parse(pgServerURL)
	if err != nil {
		t.Fatalf("bad PostgreSQL server URL: %v", err)
	}
	f := &FakeNeon{
		APIKey: "napi_fake_" + testdb.RandomHex(16),
		t:      t, server: u,
		projects: map[string]*fakeProject{}, ops: map[string]*fakeOperation{},
		polls: 2, final: "finished",
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /projects", f.listProjects)
	mux.HandleFunc("POST /projects", f.createProject)
	mux.HandleFunc("GET /projects/{id}", f.getProject)
	mux.HandleFunc("DELETE /projects/{id}", f.deleteProject)
	mux.HandleFunc("GET /projects/{id}/operations", f.listOperations)
	mux.HandleFunc("GET /projects/{id}/operations/{op}", f.getOperation)
	mux.HandleFunc("GET /projects/{id}/connection_uri", f.connectionURI)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		neonError(w, http.StatusNotFound, "not found")
	})
	srv := httptest.NewServer(http.StripPrefix(neonAPIRoot, f.authorize(f.inject(mux))))
	f.URL = srv.URL + neonAPIRoot
	t.Cleanup(func() {
		srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range f.projects {
			f.dropDatabase(p)
		}
	})
	return f
}

// Inject adds a fault; faults are tried in the order they were added.
func (f *FakeNeon) Inject(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fault)
}

// ClearFaults removes every fault.
func (f *FakeNeon) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// FaultsServed is how many requests were answered with a fault.
func (f *FakeNeon) FaultsServed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faultsSent
}

// SetOperations makes new operations end in status (finished, failed,
// error…) on their polls-th GET.
func (f *FakeNeon) SetOperations(polls int, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls, f.final = polls, status
}

// Projects returns the project ids the fake holds and their names.
func (f *FakeNeon) Projects() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]string, len(f.projects))
	for id, p := range f.projects {
		out[id] = p.Name
	}
	return out
}

// authorize answers 401 unless the request carries the API key.
func (f *FakeNeon) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.APIKey {
			neonError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// inject answers with the first fault that matches the request.
func (f *FakeNeon) inject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fault, ok := f.takeFault(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if fault.Served {
			next.ServeHTTP(httptest.NewRecorder(), r)
		}
		if fault.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		neonError(w, fault.Status, fmt.Sprintf("injected fault: %d %s", fault.Status, http.StatusText(fault.Status)))
	})
}

func (f *FakeNeon) takeFault(r *http.Request) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, fault := range f.faults {
		if fault.Method != "" && fault.Method != r.Method {
			continue
		}
		if ok, _ := path.Match(fault.Path, r.URL.Path); fault.Path != "" && !ok {
			continue
		}
		if fault.Times > 0 {
			if f.faults[i].Times--; f.faults[i].Times == 0 {
				f.faults = slices.Delete(f.faults, i, i+1)
			}
		}
		f.faultsSent++
		return fault, true
	}
	return Fault{}, false
}

// listProjects serves GET /projects: search matches part of a name or id;
// limit (1 to 400, default 10) and cursor (the last id of the page before)
// page through the projects oldest first.
func (f *FakeNeon) listProjects(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := neonLimit(w, q.Get("limit"), 400)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	all := make([]*fakeProject, 0, len(f.projects))
	for _, p := range f.projects {
		if s := q.Get("search"); s == "" || strings.Contains(p.Name, s) || strings.Contains(p.ID, s) {
			all = append(all, p)
		}
	}
	slices.SortFunc(all, func(a, b *fakeProject) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if c := q.Get("cursor"); c != "" {
		i := slices.IndexFunc(all, func(p *fakeProject) bool { return p.ID == c })
		if i < 0 {
			neonError(w, http.StatusBadRequest, "invalid cursor")
			return
		}
		all = all[i+1:]
	}
	page := all[:min(limit, len(all))]
	cursor := q.Get("cursor")
	if len(page) > 0 {
		cursor = page[len(page)-1].ID
	}
	neonJSON(w, http.StatusOK, map[string]any{"projects": page, "pagination": map[string]string{"cursor": cursor}})
}

// createProject serves POST /projects: a project with its default branch,
// role, database and read-write endpoint, and the operations starting them.
func (f *FakeNeon) createProject(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Project *struct {
			Name      string `json:"name"`
			RegionID  string `json:"region_id"`
			PGVersion int    `json:"pg_version"`
			Branch    struct {
				Name         string `json:"name"`
				RoleName     string `json:"role_name"`
				DatabaseName string `json:"database_name"`
			} `json:"branch"`
		} `json:"project"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Project == nil {
		neonError(w, http.StatusBadRequest, "request body must be a JSON object with a project")
		return
	}
	in := req.Project
	if in.PGVersion == 0 {
		in.PGVersion = 17
	}
	if in.PGVersion < 14 || in.PGVersion > 17 {
		neonError(w, http.StatusBadRequest, fmt.Sprintf("pg_version %d is not supported", in.PGVersion))
		return
	}
	now := time.Now().UTC()
	p := &fakeProject{
		ID: fakeProjectID(), PlatformID: "aws", RegionID: cmp.Or(in.RegionID, "aws-us-east-2"),
		PGVersion: in.PGVersion, CreatedAt: now, UpdatedAt: now,
		branchID: "br-" + fakeProjectID(), role: cmp.Or(in.Branch.RoleName, "neondb_owner"),
		database: cmp.Or(in.Branch.DatabaseName, "neondb"),
	}
	p.Name = cmp.Or(in.Name, p.ID)
	p.ProxyHost = strings.TrimPrefix(p.RegionID, "aws-") + ".aws.neon.tech"
	if err := f.createDatabase(r.Context(), p); err != nil {
		neonError(w, http.StatusInternalServerError, "could not create the project's database")
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.projects[p.ID] = p
	var ops []*fakeOperation
	for _, action := range []string{"create_timeline", "start_compute"} {
		op := &fakeOperation{
			ID: fakeUUID(), ProjectID: p.ID, BranchID: p.branchID, Action: action,
			Status: "running", CreatedAt: now, UpdatedAt: now,
		}
		f.ops[op.ID] = op
		ops = append(ops, op)
	}
	pass, _ := p.uri.User.Password()
	endpointID := "ep-" + fakeProjectID()
	neonJSON(w, http.StatusCreated, map[string]any{
		"project": p,
		"connection_uris": []map[string]any{{
			"connection_uri": f.connectionString(p),
			"connection_parameters": map[string]string{
				"database": strings.TrimPrefix(p.uri.Path, "/"), "password": pass, "role": p.uri.User.Username(),
				"host": p.uri.Host, "pooler_host": p.uri.Host,
			},
		}},
		"roles":     []map[string]any{{"branch_id": p.branchID, "name": p.role, "protected": false, "created_at": now, "updated_at": now}},
		"databases": []map[string]any{{"id": 1, "branch_id": p.branchID, "name": p.database, "owner_name": p.role, "created_at": now, "updated_at": now}},
		"branch": map[string]any{
			"id": p.branchID, "project_id": p.ID, "name": cmp.Or(in.Branch.Name, "main"), "default": true,
			"current_state": "init", "pending_state": "ready", "created_at": now, "updated_at": now,
		},
		"endpoints": []map[string]any{{
			"id": endpointID, "project_id": p.ID, "branch_id": p.branchID, "region_id": p.RegionID,
			"host": endpointID + "." + p.ProxyHost, "type": "read_write", "current_state": "init",
			"pending_state": "active", "created_at": now, "updated_at": now,
		}},
		"operations": ops,
	})
}

// getProject serves GET /projects/{id}.
func (f *FakeNeon) getProject(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.project(w, r)
	if !ok {
		return
	}
	neonJSON(w, http.StatusOK, map[string]any{"project": p})
}

// deleteProject serves DELETE /projects/{id}, dropping its database.
func (f *FakeNeon) deleteProject(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.project(w, r)
	if !ok {
		return
	}
	if !f.dropDatabase(p) {
		neonError(w, http.StatusInternalServerError, "could not delete the project's database")
		return
	}
	delete(f.projects, p.ID)
	for id, op := range f.ops {
		if op.ProjectID == p.ID {
			delete(f.ops, id)
		}
	}
	neonJSON(w, http.StatusOK, map[string]any{"project": p})
}

// listOperations serves GET /projects/{id}/operations, newest first.
func (f *FakeNeon) listOperations(w http.ResponseWriter, r *http.Request) {
	limit, ok := neonLimit(w, r.URL.Query().Get("limit"), 1000)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.project(w, r)
	if !ok {
		return
	}
	var ops []*fakeOperation
	for _, op := range f.ops {
		if op.ProjectID == p.ID {
			ops = append(ops, op)
		}
	}
	slices.SortFunc(ops, func(a, b *fakeOperation) int { return b.CreatedAt.Compare(a.CreatedAt) })
	ops = ops[:min(limit, len(ops))]
	cursor := ""
	if len(ops) > 0 {
		cursor = ops[len(ops)-1].ID
	}
	neonJSON(w, http.StatusOK, map[string]any{"operations": ops, "pagination": map[string]string{"cursor": cursor}})
}

// getOperation serves GET /projects/{id}/operations/{op}; each GET of a
// running operation brings it closer to its end.
func (f *FakeNeon) getOperation(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.project(w, r)
	if !ok {
		return
	}
	op, ok := f.ops[r.PathValue("op")]
	if !ok || op.ProjectID != p.ID {
		neonError(w, http.StatusNotFound, "operation not found")
		return
	}
	if op.Status == "running" {
		if op.polls++; op.polls >= f.polls {
			op.Status, op.UpdatedAt = f.final, time.Now().UTC()
		}
	}
	neonJSON(w, http.StatusOK, map[string]any{"operation": op})
}

// connectionURI serves GET /projects/{id}/connection_uri for the role and
// database of the project's default branch.
func (f *FakeNeon) connectionURI(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("role_name") == "" || q.Get("database_name") == "" {
		neonError(w, http.StatusBadRequest, "role_name and database_name are required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.project(w, r)
	if !ok {
		return
	}
	if q.Get("role_name") != p.role {
		neonError(w, http.StatusNotFound, "role not found")
		return
	}
	if q.Get("database_name") != p.database {
		neonError(w, http.StatusNotFound, "database not found")
		return
	}
	neonJSON(w, http.StatusOK, map[string]string{"uri": f.connectionString(p)})
}

// project is the request's project, or answers 404. f.mu must be held.
func (f *FakeNeon) project(w http.ResponseWriter, r *http.Request) (*fakeProject, bool) {
	p, ok := f.projects[r.PathValue("id")]
	if !ok {
		neonError(w, http.StatusNotFound, "project not found")
	}
	return p, ok
}

// connectionString is how clients reach p's database. Like the URIs Neon
// hands out it says postgresql:// and carries channel_binding (prefer: the
// local server has no TLS to bind to).
func (f *FakeNeon) connectionString(p *fakeProject) string {
	u := *p.uri
	u.Scheme = "postgresql"
	q := u.Query()
	q.Set("channel_binding", "prefer")
	u.RawQuery = q.Encode()
	return u.String()
}

// createDatabase makes the database behind p on the PostgreSQL server.
func (f *FakeNeon) createDatabase(ctx context.Context, p *fakeProject) error {
	name := "neon_" + testdb.RandomHex(6)
	conn, err := pgx.Connect(ctx, f.server.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return err
	}
	u := *f.server
	u.Path = "/" + name
	p.uri = &u
	return nil
}

// dropDatabase drops the database behind p, reporting failures to the test.
func (f *FakeNeon) dropDatabase(p *fakeProject) bool {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.server.String())
	if err != nil {
		f.t.Errorf("fake neon: connect to drop %s: %v", p.ID, err)
		return false
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{strings.TrimPrefix(p.uri.Path, "/")}.Sanitize()+" WITH (FORCE)"); err != nil {
		f.t.Errorf("fake neon: drop the database of %s: %v", p.ID, err)
		return false
	}
	return true
}

// neonLimit reads a limit query parameter, or answers 400.
func neonLimit(w http.ResponseWriter, s string, maxLimit int) (int, bool) {
	if s == "" {
		return 10, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		neonError(w, http.StatusBadRequest, fmt.Sprintf("limit must be from 1 to %d", maxLimit))
		return 0, false
	}
	return n, true
}

// neonJSON answers v as JSON with status.
func neonJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// neonError answers Neon's error body: {"code": …, "message": …}.
func neonError(w http.ResponseWriter, status int, message string) {
	neonJSON(w, status, map[string]string{"code": "", "message": message})
}

// fakeProjectID is an id shaped like Neon's: adjective-noun-number.
func fakeProjectID() string {
	adjectives := []string{"shiny", "winter", "bold", "floral", "bitter", "dark", "little", "rough"}
	nouns := []string{"wind", "boat", "cloud", "king", "sound", "snowflake", "smoke", "fog"}
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%s-%06d", adjectives[int(b[0])%len(adjectives)], nouns[int(b[1])%len(nouns)],
		(int(b[2])<<16|int(b[3])<<8|int(b[4]))%1000000)
}

// fakeUUID is a random version 4 UUID, the shape of Neon's operation ids.
func fakeUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
