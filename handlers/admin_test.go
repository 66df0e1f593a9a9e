package handlers_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/sqliteshim"

	"silo/config"
	"silo/models"
	"silo/testrig"
)

// Helpers of the admin tests (the browser tests use them too).

// adminEmail is the address in ADMIN_EMAILS in the admin tests.
const adminEmail = "admin@example.com"

// oldSchema is a tenant schema version older than any silo has.
const oldSchema = "20200101000000"

// bobSchema is another old tenant schema version.
const bobSchema = "20210101000000"

// runWait bounds how long a test waits for a migration run or its events.
const runWait = time.Minute

// newAdminServer starts silo with adminEmail in ADMIN_EMAILS, its browser
// signed in as that admin (which also makes the admin's tenant database).
func newAdminServer(t *testing.T, engine config.Engine) *testrig.Server {
	t.Helper()
	srv := newServer(t, engine, func(cfg *config.Config) { cfg.AdminEmails = []string{adminEmail} })
	srv.SignIn(t, adminEmail)
	return srv
}

// signedInAs is srv seen from a new browser signed in as email through the
// dev form, which makes email's tenant database as a real sign-in does.
func signedInAs(t *testing.T, srv *testrig.Server, email string) *testrig.Server {
	t.Helper()
	b := withBrowser(srv, testrig.NewBrowser())
	b.SignIn(t, email)
	return b
}

// userOf is the user with email.
func userOf(t *testing.T, store *models.Store, email string) *models.User {
	t.Helper()
	u, err := store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatalf("user %s: %v", email, err)
	}
	return u
}

// tenantOf is email's row in the tenant directory.
func tenantOf(t *testing.T, store *models.Store, email string) *models.VectorDatabase {
	t.Helper()
	v, err := store.VectorDatabaseByUser(context.Background(), userOf(t, store, email).ID)
	if err != nil {
		t.Fatalf("tenant of %s: %v", email, err)
	}
	return v
}

// tokenOf makes an API token for email's user.
func tokenOf(t *testing.T, store *models.Store, email string) string {
	t.Helper()
	token, err := store.CreateAPIToken(context.Background(), userOf(t, store, email).ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// tenantFile is a SQLite tenant's database file.
func tenantFile(v *models.VectorDatabase) string {
	return filepath.Join(v.Location, v.ExternalID+".db")
}

// setSchemaVersion records version as email's tenant schema version in the
// control plane, as if the database had been left behind by an older silo.
func setSchemaVersion(t *testing.T, store *models.Store, email, version string) {
	t.Helper()
	if err := store.SetSchemaVersion(context.Background(), tenantOf(t, store, email).ID, version); err != nil {
		t.Fatal(err)
	}
}

// corruptTenantFile overwrites email's tenant file with bytes that are not
// a SQLite database and returns the function that puts the original back.
func corruptTenantFile(t *testing.T, store *models.Store, email string) (restore func()) {
	t.Helper()
	path := tenantFile(tenantOf(t, store, email))
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the tenant file of %s: %v", email, err)
	}
	if err := os.WriteFile(path, []byte(strings.Repeat("this is not a database\n", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.WriteFile(path, orig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// lockTenantFile holds an exclusive lock on email's tenant file, so that
// migrating it waits (atlas waits a few seconds for a locked database), and
// returns the function that lets go; the test's end lets go too. Tests use
// it to watch a migration run while it is under way.
func lockTenantFile(t *testing.T, store *models.Store, email string) (release func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open(sqliteshim.ShimName, tenantFile(tenantOf(t, store, email)))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatalf("journal mode of the tenant file of %s: %v", email, err)
	}
	if strings.EqualFold(mode, "wal") {
		t.Fatalf("the tenant file of %s is in WAL mode, where a lock does not hold readers off", email)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("lock the tenant file of %s: %v", email, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_, _ = conn.ExecContext(ctx, "ROLLBACK")
			_ = conn.Close()
			_ = db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// fileSum is the SHA-256 of a file's contents.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

var (
	tableHeader = regexp.MustCompile(`(?s)<th[^>]*>(.*?)</th>`)
	tableRow    = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	tableCell   = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	anyTag      = regexp.MustCompile(`<[^>]*>`)
)

// text is the visible text of an HTML snippet, spaces collapsed.
func text(snippet string) string {
	return strings.Join(strings.Fields(html.UnescapeString(anyTag.ReplaceAllString(snippet, " "))), " ")
}

// tableRows reads the one data table of page (or a fragment of rows, with
// columns given): each body row as column heading → cell text, in order.
func tableRows(t *testing.T, page string, columns ...string) []map[string]string {
	t.Helper()
	if columns == nil {
		for _, m := range tableHeader.FindAllStringSubmatch(page, -1) {
			columns = append(columns, text(m[1]))
		}
	}
	var out []map[string]string
	for _, r := range tableRow.FindAllStringSubmatch(page, -1) {
		cells := tableCell.FindAllStringSubmatch(r[1], -1)
		if len(cells) == 0 { // the heading row
			continue
		}
		if len(cells) != len(columns) {
			if len(cells) == 1 { // a "nothing here" row spanning the table
				continue
			}
			t.Fatalf("a table row with %d cells under %d headings %q:\n%s", len(cells), len(columns), columns, r[0])
		}
		row := make(map[string]string, len(cells))
		for i, c := range cells {
			row[columns[i]] = text(c[1])
		}
		out = append(out, row)
	}
	return out
}

// rowOf is the row whose first column is key, or nil.
func rowOf(rows []map[string]string, column, key string) map[string]string {
	for _, r := range rows {
		if r[column] == key {
			return r
		}
	}
	return nil
}

// runColumns are the headings of a migration run's result table.
var runColumns = []string{"Tenant", "From", "To", "Time", "Outcome"}

// runIDFrom is the run id in a /admin/migrations/{id} address.
func runIDFrom(t *testing.T, location string) string {
	t.Helper()
	id, ok := strings.CutPrefix(location, "/admin/migrations/")
	if !ok || id == "" || strings.Contains(id, "/") {
		t.Fatalf("got %q, want /admin/migrations/{id}", location)
	}
	return id
}

// startMigrateAll presses "Migrate all tenants" on the dashboard and returns
// the id of the run it redirects to.
func startMigrateAll(t *testing.T, admin *testrig.Server) string {
	t.Helper()
	resp, body := admin.PostForm(t, "/admin/migrations", url.Values{"csrf_token": {admin.CSRFToken(t, "/admin")}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /admin/migrations: got status %d, want 303; body:\n%s", resp.StatusCode, body)
	}
	return runIDFrom(t, resp.Header.Get("Location"))
}

// apiRun is a migration run as GET /api/v1/admin/migrations/{id} shows it.
type apiRun struct {
	Run struct {
		ID            string `json:"id"`
		Status        string `json:"status"`
		TargetVersion string `json:"target_version"`
		Total         int    `json:"total"`
		Done          int    `json:"done"`
		Failed        int    `json:"failed"`
	} `json:"run"`
	Results []struct {
		Email      string `json:"email"`
		From       string `json:"from"`
		To         string `json:"to"`
		DurationMS int64  `json:"duration_ms"`
		Error      string `json:"error"`
	} `json:"results"`
}

// fetchRun reads a run through the admin API.
func fetchRun(t *testing.T, srv *testrig.Server, token, id string) apiRun {
	t.Helper()
	resp, body := apiGet(t, srv, "/api/v1/admin/migrations/"+id, "Bearer "+token)
	wantStatus(t, resp, http.StatusOK, body)
	var r apiRun
	wantJSON(t, resp, body, &r)
	return r
}

// waitRun polls the admin API until the run is no longer running.
func waitRun(t *testing.T, srv *testrig.Server, token, id string) apiRun {
	t.Helper()
	deadline := time.Now().Add(runWait)
	for {
		r := fetchRun(t, srv, token, id)
		if r.Run.Status != models.RunRunning {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: still running after %s: %+v", id, runWait, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// resultEmails are the e-mail addresses of a run's results, sorted.
func resultEmails(r apiRun) []string {
	var out []string
	for _, res := range r.Results {
		out = append(out, res.Email)
	}
	slices.Sort(out)
	return out
}

// sseEvent is one server-sent event.
type sseEvent struct{ Name, Data string }

// eventStream is an SSE response, read event by event in the background.
type eventStream struct {
	Header http.Header
	events chan sseEvent // closed when the server ends the stream
	err    error         // why reading stopped, if not a clean end; set before events closes
}

// openEvents GETs path with srv's browser as an EventSource does and reads
// its events until the server ends the stream (or the test ends).
func openEvents(t *testing.T, srv *testrig.Server, path string) *eventStream {
	t.Helper()
	s, err := dialEvents(t, srv, path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialEvents is openEvents for any goroutine: it returns the error.
func dialEvents(t *testing.T, srv *testrig.Server, path string) (*eventStream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runWait)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		return nil, err
	}
	return readEvents(ctx, srv.Browser, req)
}

// readEvents sends req with client, wants an event stream back, and reads
// its events in the background until the server ends it or ctx ends.
func readEvents(ctx context.Context, client *http.Client, req *http.Request) (*eventStream, error) {
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: got status %d, want 200: %s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: got Content-Type %q, want text/event-stream", req.Method, req.URL.Path, ct)
	}
	s := &eventStream{Header: resp.Header, events: make(chan sseEvent)}
	go func() {
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		defer func() {
			if ctx.Err() == nil {
				s.err = sc.Err()
			}
		}()
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != nil {
					ev.Data = strings.Join(data, "\n")
					select {
					case s.events <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, ":"): // a comment
			default:
				field, value, _ := strings.Cut(line, ":")
				value = strings.TrimPrefix(value, " ")
				switch field {
				case "event":
					ev.Name = value
				case "data":
					data = append(data, value)
				}
			}
		}
	}()
	return s, nil
}

// next is the stream's next event; ok is false when the stream has ended.
// It fails the test when nothing comes within wait.
func (s *eventStream) next(t *testing.T, wait time.Duration) (ev sseEvent, ok bool) {
	t.Helper()
	select {
	case ev, ok = <-s.events:
		if !ok && s.err != nil {
			t.Fatalf("the stream broke: %v", s.err)
		}
		return ev, ok
	case <-time.After(wait):
		t.Fatalf("no event and no end of the stream within %s", wait)
		return sseEvent{}, false
	}
}

// quiet fails the test if an event comes within d.
func (s *eventStream) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("got event %q (%s) while nothing had happened, want none", ev.Name, ev.Data)
		}
		t.Fatal("the stream ended while the run was still running")
	case <-time.After(d):
	}
}

// untilDone reads events up to and including "done" and checks that the
// stream ends right after it.
func (s *eventStream) untilDone(t *testing.T) []sseEvent {
	t.Helper()
	var out []sseEvent
	for {
		ev, ok := s.next(t, runWait)
		if !ok {
			t.Fatalf("the stream ended without a done event; got %v", out)
		}
		out = append(out, ev)
		if ev.Name == "done" {
			break
		}
	}
	if ev, ok := s.next(t, 10*time.Second); ok {
		t.Fatalf("got event %q after done, want the stream to end", ev.Name)
	}
	return out
}

// byName keeps the events called name.
func byName(events []sseEvent, name string) []sseEvent {
	var out []sseEvent
	for _, ev := range events {
		if ev.Name == name {
			out = append(out, ev)
		}
	}
	return out
}

// counters is what a run's progress line says: migrated, failed, in all.
func counters(t *testing.T, fragment string) (done, failed, total int) {
	t.Helper()
	m := regexp.MustCompile(`(\d+) migrated · (\d+) failed · (\d+) in all`).FindStringSubmatch(text(fragment))
	if m == nil {
		t.Fatalf("no progress line (N migrated · N failed · N in all) in:\n%s", fragment)
	}
	done, _ = strconv.Atoi(m[1])
	failed, _ = strconv.Atoi(m[2])
	total, _ = strconv.Atoi(m[3])
	return done, failed, total
}

// The tests.

func TestAdminRoutesRefuseOthers(t *testing.T) {
	t.Parallel()
	srv := newAdminServer(t, config.SQLite)
	ann := signedInAs(t, srv, "ann@example.com")
	ctx := context.Background()
	run, err := srv.Store.CreateMigrationRun(ctx, "20991231000000", adminEmail, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.FinishMigrationRun(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	runs := func() int {
		n, err := srv.Store.DB.NewSelect().Model((*models.MigrationRun)(nil)).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}
	before := runs()

	t.Run("signed in, not an admin", func(t *testing.T) {
		csrf := ann.CSRFToken(t, "/")
		for _, tc := range []struct{ method, path string }{
			{http.MethodGet, "/admin"},
			{http.MethodGet, "/admin?page=2"},
			{http.MethodPost, "/admin/migrations"},
			{http.MethodGet, "/admin/migrations/x"},
			{http.MethodGet, "/admin/migrations/" + run.PublicID},
			{http.MethodGet, "/admin/migrations/" + run.PublicID + "/events"},
			{http.MethodPost, "/admin/migrations/" + run.PublicID + "/retry"},
		} {
			// A valid CSRF token, so the refusal is the admin check's.
			body := ""
			if tc.method == http.MethodPost {
				body = "csrf_token=" + url.QueryEscape(csrf)
			}
			resp, page := send(t, ann.Browser, tc.method, srv.URL+tc.path, body, nil)
			wantStatus(t, resp, http.StatusForbidden, page)
			if !strings.Contains(page, "for silo&#39;s admins") && !strings.Contains(page, "for silo's admins") {
				t.Errorf("%s %s: got a 403 page without the reason:\n%s", tc.method, tc.path, page)
			}
			if strings.Contains(resp.Header.Get("Content-Type"), "event-stream") {
				t.Errorf("%s %s: got an event stream", tc.method, tc.path)
			}
		}
	})

	t.Run("signed out", func(t *testing.T) {
		anon := withBrowser(srv, testrig.NewBrowser())
		for _, path := range []string{"/admin", "/admin/migrations/" + run.PublicID, "/admin/migrations/" + run.PublicID + "/events"} {
			resp, _ := anon.Get(t, path)
			wantRedirect(t, resp, "/login")
		}
		csrf := anon.CSRFToken(t, "/login")
		for _, path := range []string{"/admin/migrations", "/admin/migrations/" + run.PublicID + "/retry"} {
			resp, _ := anon.PostForm(t, path, url.Values{"csrf_token": {csrf}})
			wantRedirect(t, resp, "/login")
		}
	})

	t.Run("API, not an admin", func(t *testing.T) {
		token := tokenOf(t, srv.Store, "ann@example.com")
		for _, tc := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/admin/tenants"},
			{http.MethodPost, "/api/v1/admin/tenants/migrate"},
			{http.MethodGet, "/api/v1/admin/migrations/" + run.PublicID},
		} {
			resp, body := send(t, srv.Browser, tc.method, srv.URL+tc.path, "", http.Header{"Authorization": {"Bearer " + token}})
			wantStatus(t, resp, http.StatusForbidden, body)
			var got map[string]any
			wantJSON(t, resp, body, &got)
			if msg, _ := got["error"].(string); msg == "" || len(got) != 1 {
				t.Errorf(`%s %s: got %s, want only an "error" message`, tc.method, tc.path, body)
			}
		}
		resp, body := send(t, srv.Browser, http.MethodGet, srv.URL+"/api/v1/admin/tenants", "", nil)
		wantStatus(t, resp, http.StatusUnauthorized, body)
	})

	if n := runs(); n != before {
		t.Errorf("got %d migration runs after the refused requests, want %d", n, before)
	}

	t.Run("the Admin link", func(t *testing.T) {
		_, page := ann.Get(t, "/")
		if strings.Contains(page, `href="/admin"`) {
			t.Error("a non-admin's page links to /admin")
		}
		_, page = srv.Get(t, "/")
		if !strings.Contains(page, `href="/admin"`) {
			t.Errorf("the admin's page has no link to /admin:\n%s", page)
		}
	})
}

func TestAdminDashboard(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newAdminServer(t, engine)
		signedInAs(t, srv, "ann@example.com")
		signedInAs(t, srv, "bob@example.com")
		latest := tenantOf(t, srv.Store, adminEmail).SchemaVersion
		if latest == "" {
			t.Fatal("a new tenant has no schema version")
		}
		setSchemaVersion(t, srv.Store, "ann@example.com", oldSchema)
		bob := userOf(t, srv.Store, "bob@example.com")
		now := time.Now().UTC().Truncate(time.Second)
		for i := range 2 {
			doc := &models.Document{
				PublicID: fmt.Sprintf("bobsdocument%020d", i), UserID: bob.ID, Title: "Report", FileName: "report.pdf",
				SizeBytes: 10, Pages: 1, Status: models.DocumentReady, CreatedAt: now, UpdatedAt: now,
			}
			if _, err := srv.Store.DB.NewInsert().Model(doc).Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
		}

		resp, page := srv.Get(t, "/admin")
		wantStatus(t, resp, http.StatusOK, page)
		rows := tableRows(t, page)
		if len(rows) != 3 {
			t.Fatalf("got %d tenant rows, want 3:\n%s", len(rows), page)
		}
		if !strings.Contains(text(page), "3 tenant databases") || !strings.Contains(page, latest) {
			t.Errorf("the dashboard does not say 3 tenant databases and the newest schema %s:\n%s", latest, page)
		}
		for _, tc := range []struct {
			email, schema string
			behind        bool
			documents     string
		}{
			{adminEmail, latest, false, "0"},
			{"ann@example.com", oldSchema, true, "0"},
			{"bob@example.com", latest, false, "2"},
		} {
			row := rowOf(rows, "E-mail", tc.email)
			if row == nil {
				t.Errorf("no row for %s in %v", tc.email, rows)
				continue
			}
			if row["Engine"] != "sqlite" || row["Status"] != models.TenantReady {
				t.Errorf("%s: got engine %q, status %q, want sqlite, ready", tc.email, row["Engine"], row["Status"])
			}
			if !strings.Contains(row["Schema"], tc.schema) || strings.Contains(row["Schema"], "behind") != tc.behind {
				t.Errorf("%s: got schema %q, want %s (behind: %t)", tc.email, row["Schema"], tc.schema, tc.behind)
			}
			if row["Documents"] != tc.documents {
				t.Errorf("%s: got %q documents, want %s", tc.email, row["Documents"], tc.documents)
			}
			fi, err := os.Stat(tenantFile(tenantOf(t, srv.Store, tc.email)))
			if err != nil {
				t.Fatal(err)
			}
			if got := parseSize(row["Size"]); math.Abs(got-float64(fi.Size())) > 0.05*float64(fi.Size()) {
				t.Errorf("%s: got size %q, want about %d bytes", tc.email, row["Size"], fi.Size())
			}
		}

		token := tokenOf(t, srv.Store, adminEmail)
		resp, body := apiGet(t, srv, "/api/v1/admin/tenants", "Bearer "+token)
		wantStatus(t, resp, http.StatusOK, body)
		var got struct {
			Tenants []struct {
				Email         string `json:"email"`
				Engine        string `json:"engine"`
				Status        string `json:"status"`
				SchemaVersion string `json:"schema_version"`
				Behind        bool   `json:"behind"`
				SizeBytes     int64  `json:"size_bytes"`
				Documents     int    `json:"documents"`
			} `json:"tenants"`
			Total        int    `json:"total"`
			LatestSchema string `json:"latest_schema"`
		}
		wantJSON(t, resp, body, &got)
		if got.Total != 3 || len(got.Tenants) != 3 || got.LatestSchema != latest {
			t.Fatalf("GET /api/v1/admin/tenants: got total %d, %d tenants, latest %q; want 3, 3, %s", got.Total, len(got.Tenants), got.LatestSchema, latest)
		}
		for _, tn := range got.Tenants {
			fi, err := os.Stat(tenantFile(tenantOf(t, srv.Store, tn.Email)))
			if err != nil {
				t.Fatal(err)
			}
			wantBehind := tn.Email == "ann@example.com"
			if tn.Engine != "sqlite" || tn.Status != "ready" || tn.Behind != wantBehind || tn.SizeBytes != fi.Size() {
				t.Errorf("API tenant %s: got %+v, want sqlite, ready, behind %t, %d bytes", tn.Email, tn, wantBehind, fi.Size())
			}
		}
		// Judged by the keys, not by substrings: a random database name once
		// held "dsn".
		var raw struct {
			Tenants []map[string]json.RawMessage `json:"tenants"`
		}
		wantJSON(t, resp, body, &raw)
		shown := map[string]bool{"email": true, "engine": true, "location": true, "database": true, "status": true,
			"schema_version": true, "behind": true, "size_bytes": true, "documents": true, "error": true, "created_at": true}
		for _, tn := range raw.Tenants {
			for key := range tn {
				if !shown[key] {
					t.Errorf("the API shows tenant field %q: %s", key, body)
				}
			}
		}
	})
}

// parseSize reads a size such as "45.1 kB" or "812 B" in bytes, or -1.
func parseSize(s string) float64 {
	num, unit, ok := strings.Cut(s, " ")
	n, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil {
		return -1
	}
	mult := map[string]float64{"B": 1, "kB": 1e3, "KB": 1e3, "KiB": 1 << 10, "MB": 1e6, "MiB": 1 << 20, "GB": 1e9}[unit]
	if mult == 0 {
		return -1
	}
	return n * mult
}

func TestAdminDashboardPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newAdminServer(t, engine)
		ctx := context.Background()
		own := tenantOf(t, srv.Store, adminEmail)
		// 54 more tenants, written to the directory as a provisioner does
		// (the dashboard reads the directory; their files are not needed).
		emails := []string{adminEmail}
		for i := 1; i <= 54; i++ {
			email := fmt.Sprintf("tenant%02d@example.com", i)
			emails = append(emails, email)
			u, err := srv.Store.SignIn(ctx, models.Profile{Email: email})
			if err != nil {
				t.Fatal(err)
			}
			_, err = srv.Store.InsertVectorDatabase(ctx, &models.VectorDatabase{
				UserID: u.ID, Engine: own.Engine, ExternalID: "silo_t_" + u.PublicID, Location: own.Location,
				Status: models.TenantReady, SchemaVersion: own.SchemaVersion,
			})
			if err != nil {
				t.Fatal(err)
			}
		}

		listed := func(query string) ([]string, string) {
			t.Helper()
			resp, page := srv.Get(t, "/admin"+query)
			wantStatus(t, resp, http.StatusOK, page)
			var out []string
			for _, r := range tableRows(t, page) {
				out = append(out, r["E-mail"])
			}
			return out, text(page)
		}
		first, page := listed("")
		if !slices.Equal(first, emails[:50]) {
			t.Errorf("page 1: got %d tenants %v, want the first 50", len(first), first)
		}
		if !strings.Contains(page, "55 tenant databases") || !strings.Contains(page, "page 1 of 2") {
			t.Errorf("page 1 does not say 55 tenant databases, page 1 of 2:\n%s", page)
		}
		second, page := listed("?page=2")
		if !slices.Equal(second, emails[50:]) {
			t.Errorf("page 2: got %v, want %v", second, emails[50:])
		}
		if !strings.Contains(page, "page 2 of 2") {
			t.Errorf("page 2 does not say page 2 of 2:\n%s", page)
		}
		for _, q := range []string{"?page=-1", "?page=0", "?page=abc", "?page="} {
			got, _ := listed(q)
			if !slices.Equal(got, first) {
				t.Errorf("/admin%s: got %d tenants starting %v, want page 1", q, len(got), got[:min(len(got), 3)])
			}
		}
		// Past the end: the last page, or an empty page that does not claim
		// there are no tenants and leads back to tenants.
		resp, raw := srv.Get(t, "/admin?page=999")
		wantStatus(t, resp, http.StatusOK, raw)
		past, page := listed("?page=999")
		switch {
		case slices.Equal(past, second):
		case len(past) == 0:
			if strings.Contains(page, "No tenants yet") {
				t.Errorf("/admin?page=999 says %q while there are 55:\n%s", "No tenants yet", page)
			}
			m := regexp.MustCompile(`href="/admin\?page=(\d+)"`).FindAllStringSubmatch(raw, -1)
			back := false
			for _, l := range m {
				back = back || l[1] == "1" || l[1] == "2"
			}
			if !back {
				t.Errorf("/admin?page=999 links to no page with tenants: %v", m)
			}
		default:
			t.Errorf("/admin?page=999: got %v, want the last page or none", past)
		}

		token := tokenOf(t, srv.Store, adminEmail)
		for _, tc := range []struct {
			query       string
			page, count int
		}{
			{"", 1, 50}, {"?page=2", 2, 5}, {"?page=abc", 1, 50}, {"?page=-1", 1, 50},
		} {
			resp, body := apiGet(t, srv, "/api/v1/admin/tenants"+tc.query, "Bearer "+token)
			wantStatus(t, resp, http.StatusOK, body)
			var got struct {
				Tenants []map[string]any `json:"tenants"`
				Page    int              `json:"page"`
				Pages   int              `json:"pages"`
				Total   int              `json:"total"`
			}
			wantJSON(t, resp, body, &got)
			if got.Total != 55 || got.Pages != 2 || got.Page != tc.page || len(got.Tenants) != tc.count {
				t.Errorf("GET /api/v1/admin/tenants%s: got total %d, pages %d, page %d, %d tenants; want 55, 2, %d, %d",
					tc.query, got.Total, got.Pages, got.Page, len(got.Tenants), tc.page, tc.count)
			}
		}
		resp, body := apiGet(t, srv, "/api/v1/admin/tenants?page=999", "Bearer "+token)
		wantStatus(t, resp, http.StatusOK, body)
		var past999 struct {
			Tenants json.RawMessage `json:"tenants"`
			Total   int             `json:"total"`
		}
		wantJSON(t, resp, body, &past999)
		if past999.Total != 55 || (string(past999.Tenants) != "[]" && !strings.Contains(string(past999.Tenants), "tenant54@")) {
			t.Errorf("GET /api/v1/admin/tenants?page=999: got %s, want total 55 and no tenants (or the last page)", body)
		}

		// A search by e-mail, in any case; LIKE's wildcards are plain
		// characters in it.
		found, page := listed("?q=TENANT1")
		if want := emails[10:20]; !slices.Equal(found, want) || !strings.Contains(page, "10 matches") {
			t.Errorf("?q=TENANT1: got %v, want %v and 10 matches", found, want)
		}
		for _, q := range []string{"?q=%25", "?q=_", "?q=nobody", "?q=a%00b"} {
			if got, page := listed(q); len(got) != 0 || !strings.Contains(page, "No tenant's e-mail address contains") {
				t.Errorf("/admin%s: got %v, want none", q, got)
			}
		}
		resp, body = apiGet(t, srv, "/api/v1/admin/tenants?q=tenant5", "Bearer "+token)
		var search struct {
			Total int `json:"total"`
		}
		wantJSON(t, resp, body, &search)
		if search.Total != 5 { // tenant50 to tenant54
			t.Errorf("GET /api/v1/admin/tenants?q=tenant5: total %d, want 5", search.Total)
		}
	})
}

// TestAdminMigrateAll follows a whole "migrate all tenants" run: two of
// three tenants are behind, one of those is broken; the run is watched over
// SSE as it happens, its failure retried, and a second run finds nothing to
// do.
func TestAdminMigrateAll(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		ctx := context.Background()
		srv := newAdminServer(t, engine)
		signedInAs(t, srv, "ann@example.com")
		signedInAs(t, srv, "bob@example.com")
		token := tokenOf(t, srv.Store, adminEmail)
		latest := tenantOf(t, srv.Store, adminEmail).SchemaVersion
		setSchemaVersion(t, srv.Store, "ann@example.com", oldSchema)
		setSchemaVersion(t, srv.Store, "bob@example.com", bobSchema)
		restoreBob := corruptTenantFile(t, srv.Store, "bob@example.com")
		upToDate := tenantOf(t, srv.Store, adminEmail)
		upToDateSum := fileSum(t, tenantFile(upToDate))

		// Ann's database is locked, so the run waits on her while it is
		// watched; Bob's fails at once.
		releaseAnn := lockTenantFile(t, srv.Store, "ann@example.com")
		id := startMigrateAll(t, srv)

		resp, page := srv.Get(t, "/admin/migrations/"+id)
		wantStatus(t, resp, http.StatusOK, page)
		if !strings.Contains(page, `sse-connect="/admin/migrations/`+id+`/events`) {
			t.Errorf("the page of a running run does not stream its events:\n%s", page)
		}
		if _, _, total := counters(t, page); total != 2 {
			t.Errorf("the run page says %d tenants in all, want the 2 that are behind", total)
		}

		// While it runs, a second start goes to the same run.
		if again := startMigrateAll(t, srv); again != id {
			t.Errorf("migrate all while run %s runs: got run %s, want the same run", id, again)
		}
		resp, body := send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/admin/tenants/migrate", "", http.Header{"Authorization": {"Bearer " + token}})
		wantStatus(t, resp, http.StatusConflict, body)
		var conflict apiRun
		wantJSON(t, resp, body, &conflict)
		if conflict.Run.ID != id {
			t.Errorf("the 409 names run %q, want the run under way %s", conflict.Run.ID, id)
		}
		_, dash := srv.Get(t, "/admin")
		if !strings.Contains(dash, "A migration run is under way") || !strings.Contains(dash, "/admin/migrations/"+id) {
			t.Errorf("the dashboard does not point to the run under way:\n%s", dash)
		}

		stream := openEvents(t, srv, "/admin/migrations/"+id+"/events")
		var events []sseEvent
		// Bob's failure comes, then nothing while Ann's database is locked.
		for len(byName(events, "result")) < 1 || len(byName(events, "progress")) < 1 {
			ev, ok := stream.next(t, runWait)
			if !ok {
				t.Fatalf("the stream ended early; got %v", events)
			}
			events = append(events, ev)
		}
		stream.quiet(t, 400*time.Millisecond)
		releaseAnn()
		events = append(events, stream.untilDone(t)...)

		results := byName(events, "result")
		if len(results) != 2 {
			t.Fatalf("got %d result events, want one per tenant behind (2): %v", len(results), events)
		}
		rows := map[string]string{}
		for _, ev := range results {
			if !strings.HasPrefix(strings.TrimSpace(ev.Data), "<tr") {
				t.Errorf("a result event is not a table row: %q", ev.Data)
			}
			r := tableRows(t, ev.Data, runColumns...)
			if len(r) != 1 {
				t.Fatalf("a result event with %d rows: %q", len(r), ev.Data)
			}
			rows[r[0]["Tenant"]] = r[0]["Outcome"]
		}
		if rows["ann@example.com"] != "ok" {
			t.Errorf("Ann's result: got %q, want ok", rows["ann@example.com"])
		}
		if !strings.Contains(rows["bob@example.com"], "not a database") {
			t.Errorf("Bob's result: got %q, want the error (not a database)", rows["bob@example.com"])
		}
		if _, ok := rows[adminEmail]; ok {
			t.Error("the up-to-date tenant was migrated")
		}
		progress := byName(events, "progress")
		if len(progress) < 2 {
			t.Errorf("got %d progress events, want one after each result", len(progress))
		}
		if done, failed, total := counters(t, progress[len(progress)-1].Data); done != 1 || failed != 1 || total != 2 {
			t.Errorf("the last progress: got %d migrated, %d failed of %d, want 1, 1 of 2", done, failed, total)
		}
		if last := events[len(events)-1]; last.Data != models.RunFailed {
			t.Errorf("done: got %q, want %q", last.Data, models.RunFailed)
		}

		// The run page, now still.
		resp, page = srv.Get(t, "/admin/migrations/"+id)
		wantStatus(t, resp, http.StatusOK, page)
		if done, failed, _ := counters(t, page); done != 1 || failed != 1 {
			t.Errorf("run page: got %d migrated, %d failed, want 1 and 1", done, failed)
		}
		if strings.Contains(page, "sse-connect") {
			t.Error("the page of a finished run still streams")
		}
		if !strings.Contains(page, `hx-post="/admin/migrations/`+id+`/retry"`) || !strings.Contains(page, "Retry the 1 failed") {
			t.Errorf("the run page has no retry button:\n%s", page)
		}
		if r := tableRows(t, page); len(r) != 2 || !strings.Contains(rowOf(r, "Tenant", "bob@example.com")["Outcome"], "not a database") {
			t.Errorf("run page rows: got %v, want Ann ok and Bob's error", r)
		}

		// The control plane has the outcomes.
		run, err := srv.Store.MigrationRunByPublicID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != models.RunFailed || run.Total != 2 || run.Done != 1 || run.Failed != 1 || run.FinishedAt == nil || run.TargetVersion != latest {
			t.Errorf("stored run: got %+v, want failed, 2 in all, 1 done, 1 failed, finished, to %s", run, latest)
		}
		stored, err := srv.Store.MigrationResults(ctx, run.ID, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != 2 {
			t.Fatalf("got %d stored results, want 2", len(stored))
		}
		for _, res := range stored {
			switch email := res.VectorDatabase.User.Email; email {
			case "ann@example.com":
				if res.Error != "" || res.ToVersion != latest || res.FromVersion == "" || res.DurationMS <= 0 {
					t.Errorf("Ann's stored result: got %+v, want from a version to %s, a duration, no error", res, latest)
				}
			case "bob@example.com":
				if !strings.Contains(res.Error, "not a database") || res.ToVersion != "" || res.FromVersion != bobSchema || res.DurationMS < 0 {
					t.Errorf("Bob's stored result: got %+v, want the error, from %s (where his row was) and no new version", res, bobSchema)
				}
			default:
				t.Errorf("a stored result for %s, which was not behind", email)
			}
		}
		if v := tenantOf(t, srv.Store, "ann@example.com"); v.SchemaVersion != latest {
			t.Errorf("Ann's schema version: got %q, want %s", v.SchemaVersion, latest)
		}
		if v := tenantOf(t, srv.Store, "bob@example.com"); v.SchemaVersion != bobSchema {
			t.Errorf("Bob's schema version: got %q, want %s, unchanged after the failure", v.SchemaVersion, bobSchema)
		}
		after := tenantOf(t, srv.Store, adminEmail)
		if !after.UpdatedAt.Equal(upToDate.UpdatedAt) || after.SchemaVersion != latest || fileSum(t, tenantFile(after)) != upToDateSum {
			t.Error("the up-to-date tenant was touched by the run")
		}

		// Retry the failure, as htmx posts it.
		restoreBob()
		resp, body = send(t, srv.Browser, http.MethodPost, srv.URL+"/admin/migrations/"+id+"/retry", "", http.Header{
			"X-Csrf-Token": {csrfTokenIn(t, page)}, "Hx-Request": {"true"},
		})
		wantStatus(t, resp, http.StatusOK, body)
		retry := runIDFrom(t, resp.Header.Get("HX-Redirect"))
		if retry == id {
			t.Fatal("the retry redirects to the run it retries")
		}
		r := waitRun(t, srv, token, retry)
		if r.Run.Status != models.RunFinished || r.Run.Total != 1 || r.Run.Done != 1 || r.Run.Failed != 0 {
			t.Errorf("retry run: got %+v, want finished, 1 of 1", r.Run)
		}
		if got := resultEmails(r); !slices.Equal(got, []string{"bob@example.com"}) || r.Results[0].Error != "" || r.Results[0].To != latest {
			t.Errorf("retry results: got %+v, want Bob, migrated to %s", r.Results, latest)
		}
		if v := tenantOf(t, srv.Store, "bob@example.com"); v.SchemaVersion != latest {
			t.Errorf("Bob's schema version after the retry: got %q, want %s", v.SchemaVersion, latest)
		}

		// Everyone is up to date: the button is off, and a run is not
		// started but the dashboard says why.
		_, dash = srv.Get(t, "/admin")
		if strings.Contains(dash, "behind") || !strings.Contains(dash, "every tenant is at the newest schema") || !strings.Contains(dash, `type="submit" disabled`) {
			t.Errorf("the dashboard with every tenant up to date, want no tenant behind and Migrate all off:\n%s", dash)
		}
		runs, _ := srv.Store.MigrationRuns(context.Background(), 100)
		resp, _ = srv.PostForm(t, "/admin/migrations", url.Values{"csrf_token": {srv.CSRFToken(t, "/admin")}})
		wantRedirect(t, resp, "/admin")
		if _, dash = srv.Get(t, "/admin"); !strings.Contains(dash, "Every tenant is at the newest schema: there is nothing to migrate.") {
			t.Errorf("migrate all with nothing behind: the dashboard does not say so:\n%s", dash)
		}
		if after, _ := srv.Store.MigrationRuns(context.Background(), 100); len(after) != len(runs) {
			t.Errorf("migrate all with nothing behind started a run: %d runs, were %d", len(after), len(runs))
		}
	})
}

func TestAdminMigrationConflict(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		ctx := context.Background()
		srv := newAdminServer(t, engine)
		token := tokenOf(t, srv.Store, adminEmail)
		// A run under way, started by another silo instance.
		running, err := srv.Store.CreateMigrationRun(ctx, "20991231000000", "other@example.com", 5)
		if err != nil {
			t.Fatal(err)
		}
		migrate := func() (*http.Response, apiRun) {
			t.Helper()
			resp, body := send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/admin/tenants/migrate", "",
				http.Header{"Authorization": {"Bearer " + token}})
			var r apiRun
			wantJSON(t, resp, body, &r)
			return resp, r
		}
		resp, r := migrate()
		wantStatus(t, resp, http.StatusConflict, "")
		if r.Run.ID != running.PublicID || r.Run.Status != models.RunRunning {
			t.Errorf("409: got run %+v, want the run under way %s", r.Run, running.PublicID)
		}
		if id := startMigrateAll(t, srv); id != running.PublicID {
			t.Errorf("migrate all during a run: got run %s, want %s", id, running.PublicID)
		}

		// A run "running" for longer than any run takes died with its
		// process; it no longer blocks.
		_, err = srv.Store.DB.NewUpdate().Model((*models.MigrationRun)(nil)).
			Set("started_at = ?", time.Now().UTC().Add(-3*time.Hour)).Where("id = ?", running.ID).Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		resp, r = migrate()
		wantStatus(t, resp, http.StatusAccepted, "")
		if r.Run.ID == "" || r.Run.ID == running.PublicID {
			t.Errorf("202: got run %q, want a new run", r.Run.ID)
		}
		waitRun(t, srv, token, r.Run.ID)
	})
}

func TestAdminRunEvents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		ctx := context.Background()
		srv := newAdminServer(t, engine)
		own := tenantOf(t, srv.Store, adminEmail)

		resp, body := srv.Get(t, "/admin/migrations/nosuchrun/events")
		wantStatus(t, resp, http.StatusNotFound, body)
		resp, body = srv.Get(t, "/admin/migrations/nosuchrun")
		wantStatus(t, resp, http.StatusNotFound, body)

		// A run made elsewhere (the stream reads the control plane), with
		// nothing new yet: the stream opens at once and waits.
		run, err := srv.Store.CreateMigrationRun(ctx, own.SchemaVersion, "other@example.com", 1)
		if err != nil {
			t.Fatal(err)
		}
		type dialed struct {
			s   *eventStream
			err error
		}
		opened := make(chan dialed, 1)
		go func() {
			s, err := dialEvents(t, srv, "/admin/migrations/"+run.PublicID+"/events")
			opened <- dialed{s, err}
		}()
		var stream *eventStream
		select {
		case d := <-opened:
			if d.err != nil {
				t.Fatal(d.err)
			}
			stream = d.s
		case <-time.After(5 * time.Second):
			t.Fatal("the event stream of a run with no news yet sent no response headers within 5s (an EventSource stays connecting)")
		}
		if cc := stream.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") && !strings.Contains(cc, "no-cache") {
			t.Errorf("event stream: got Cache-Control %q, want no caching", cc)
		}
		stream.quiet(t, 400*time.Millisecond)

		res := &models.MigrationResult{RunID: run.ID, VectorDatabaseID: own.ID, FromVersion: oldSchema, ToVersion: own.SchemaVersion, DurationMS: 42}
		if err := srv.Store.AddMigrationResult(ctx, res); err != nil {
			t.Fatal(err)
		}
		ev, _ := stream.next(t, 10*time.Second)
		if ev.Name != "result" || !strings.Contains(ev.Data, adminEmail) || !strings.Contains(ev.Data, "42 ms") {
			t.Fatalf("got event %q (%s), want the result row of %s", ev.Name, ev.Data, adminEmail)
		}
		ev, _ = stream.next(t, 10*time.Second)
		if ev.Name != "progress" {
			t.Fatalf("got event %q, want progress", ev.Name)
		}
		if done, failed, total := counters(t, ev.Data); done != 1 || failed != 0 || total != 1 {
			t.Errorf("progress: got %d, %d of %d, want 1, 0 of 1", done, failed, total)
		}
		if _, err := srv.Store.FinishMigrationRun(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		rest := stream.untilDone(t)
		if len(byName(rest, "result")) != 0 {
			t.Errorf("the result was sent twice: %v", rest)
		}
		if last := rest[len(rest)-1]; last.Data != models.RunFinished {
			t.Errorf("done: got %q, want %q", last.Data, models.RunFinished)
		}

		// A finished run: every result, the progress and done at once, then
		// the end of the stream.
		start := time.Now()
		events := openEvents(t, srv, "/admin/migrations/"+run.PublicID+"/events").untilDone(t)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the stream of a finished run took %s", d)
		}
		var names []string
		for _, ev := range events {
			names = append(names, ev.Name)
		}
		if !slices.Equal(names, []string{"result", "progress", "done"}) {
			t.Errorf("finished run: got events %q, want result, progress, done", names)
		}
		// after= skips what the page already shows.
		events = openEvents(t, srv, "/admin/migrations/"+run.PublicID+"/events?after="+strconv.FormatInt(res.ID, 10)).untilDone(t)
		if len(byName(events, "result")) != 0 || len(byName(events, "progress")) != 1 {
			t.Errorf("after the last result: got %v, want progress and done only", events)
		}
	})
}

// TestAdminAPIMigrate runs a migration of several tenants at once through
// the API: each one's outcome must be recorded, however their workers
// interleave (on MySQL, concurrent outcomes once deadlocked and were lost).
func TestAdminAPIMigrate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine config.Engine) {
		srv := newAdminServer(t, engine)
		latest := tenantOf(t, srv.Store, adminEmail).SchemaVersion
		var behind []string
		for i := range 8 {
			email := fmt.Sprintf("tenant%d@example.com", i)
			signedInAs(t, srv, email)
			setSchemaVersion(t, srv.Store, email, oldSchema)
			behind = append(behind, email)
		}
		setSchemaVersion(t, srv.Store, behind[0], "")
		token := tokenOf(t, srv.Store, adminEmail)

		resp, body := send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/admin/tenants/migrate", "",
			http.Header{"Authorization": {"Bearer " + token}})
		wantStatus(t, resp, http.StatusAccepted, body)
		var started apiRun
		wantJSON(t, resp, body, &started)
		if started.Run.ID == "" || started.Run.Total != len(behind) || started.Run.TargetVersion != latest {
			t.Fatalf("202: got %s, want a run id, total %d, target %s", body, len(behind), latest)
		}
		if v := resp.Header.Values("Set-Cookie"); len(v) != 0 {
			t.Errorf("the API set cookies: %q", v)
		}
		r := waitRun(t, srv, token, started.Run.ID)
		if r.Run.Status != models.RunFinished || r.Run.Done != len(behind) || r.Run.Failed != 0 {
			t.Errorf("run: got %+v, want finished with all %d done", r.Run, len(behind))
		}
		if got := resultEmails(r); !slices.Equal(got, behind) {
			t.Errorf("results: got %v, want one for each of %v", got, behind)
		}
		for _, email := range behind {
			if v := tenantOf(t, srv.Store, email); v.SchemaVersion != latest {
				t.Errorf("%s: got schema version %q after the run, want %s", email, v.SchemaVersion, latest)
			}
		}
		for _, res := range r.Results {
			if res.To != latest || res.Error != "" {
				t.Errorf("result of %s: got %+v, want to %s without error", res.Email, res, latest)
			}
		}

		resp, body = apiGet(t, srv, "/api/v1/admin/migrations/nosuchrun", "Bearer "+token)
		wantStatus(t, resp, http.StatusNotFound, body)
		var nf map[string]any
		wantJSON(t, resp, body, &nf)
		if nf["error"] == nil {
			t.Errorf(`404: got %s, want an "error"`, body)
		}
	})
}
