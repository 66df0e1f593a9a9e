package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"silo/config"
	"silo/models"
	"silo/testrig/testdb"
)

// lockedBuffer is an io.Writer that a running server may write to while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cliEnv is the environment of one silo: its own data directory (so its own
// SQLite control plane) and the tests' atlas CLI, plus vars.
func cliEnv(t *testing.T, vars map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{
		"DATA_DIR":  t.TempDir(),
		"ATLAS_BIN": testdb.AtlasBin(t),
	}
	for k, v := range vars {
		env[k] = v
	}
	return env
}

// silo runs the command line with env and returns the exit code and output.
func silo(ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut lockedBuffer
	code = run(ctx, args, func(name string) string { return env[name] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustSilo runs the command line and fails the test unless it exits with
// want.
func mustSilo(t *testing.T, want int, env map[string]string, args ...string) (stdout, stderr string) {
	t.Helper()
	code, stdout, stderr := silo(t.Context(), env, args...)
	if code != want {
		t.Fatalf("silo %s: got exit code %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

func TestServeRefusesAnUnmigratedControlPlane(t *testing.T) {
	t.Parallel()
	env := cliEnv(t, map[string]string{"PORT": strconv.Itoa(freePort(t))})
	for _, args := range [][]string{{"serve"}, {}} { // serve is the default
		_, stderr := mustSilo(t, 1, env, args...)
		if !strings.Contains(stderr, "silo migrate") {
			t.Errorf("silo %v on an unmigrated control plane: got stderr %q, want it to say to run silo migrate", args, stderr)
		}
	}
}

func TestTokenRefusesAnUnmigratedControlPlane(t *testing.T) {
	t.Parallel()
	env := cliEnv(t, nil)
	stdout, stderr := mustSilo(t, 1, env, "token", "you@example.com")
	if stdout != "" {
		t.Errorf("silo token on an unmigrated control plane: got stdout %q, want none", stdout)
	}
	if !strings.Contains(stderr, "silo migrate") {
		t.Errorf("silo token on an unmigrated control plane: got stderr %q, want it to say to run silo migrate", stderr)
	}
}

// TestMigrateAndToken runs silo migrate and silo token on each engine and
// checks the token against the control plane.
func TestMigrateAndToken(t *testing.T) {
	for _, engine := range testdb.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			env := cliEnv(t, nil)
			if engine != config.SQLite {
				env["DATABASE_URL"] = testdb.NewDatabaseURL(t, engine)
			}
			databaseURL := env["DATABASE_URL"]
			if databaseURL == "" {
				databaseURL = "sqlite://" + filepath.Join(env["DATA_DIR"], "silo.db")
			}

			mustSilo(t, 0, env, "migrate")
			mustSilo(t, 0, env, "migrate") // idempotent

			stdout, _ := mustSilo(t, 0, env, "token", "You@Example.com")
			first := strings.TrimSpace(stdout)
			if !strings.HasPrefix(first, "silo_") || strings.ContainsAny(first, " \n") {
				t.Fatalf("silo token: got stdout %q, want one silo_… token", stdout)
			}
			stdout, _ = mustSilo(t, 0, env, "token", "you@example.com")
			second := strings.TrimSpace(stdout)
			if second == first || !strings.HasPrefix(second, "silo_") {
				t.Errorf("second silo token: got %q after %q, want a different silo_… token", second, first)
			}

			store := testdb.Open(t, databaseURL)
			for _, tok := range []string{first, second} {
				u, err := store.UserByAPIToken(t.Context(), tok)
				if err != nil {
					t.Fatalf("UserByAPIToken(%q): %v", tok, err)
				}
				if u.Email != "you@example.com" {
					t.Errorf("UserByAPIToken(%q): got %q, want you@example.com", tok, u.Email)
				}
			}
			n, err := store.DB.NewSelect().Model((*models.User)(nil)).Count(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("users after two tokens for one address: got %d, want 1", n)
			}
		})
	}
}

func TestTokenMakesAdmins(t *testing.T) {
	t.Parallel()
	env := cliEnv(t, map[string]string{"ADMIN_EMAILS": "Boss@Example.com"})
	mustSilo(t, 0, env, "migrate")
	stdout, _ := mustSilo(t, 0, env, "token", "boss@example.com")
	store := testdb.Open(t, "sqlite://"+filepath.Join(env["DATA_DIR"], "silo.db"))
	u, err := store.UserByAPIToken(t.Context(), strings.TrimSpace(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if !u.IsAdmin {
		t.Errorf("user made by silo token for an address in ADMIN_EMAILS: got IsAdmin false, want true")
	}
}

func TestCommandLineErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantCode   int
		wantStdout string // a substring; "" means stdout must be empty
		wantStderr string // a substring
	}{
		{"help", nil, []string{"help"}, 0, "usage: silo", ""},
		{"-h", nil, []string{"-h"}, 0, "usage: silo", ""},
		{"--help", nil, []string{"--help"}, 0, "usage: silo", ""},
		{"help ignores a bad configuration", map[string]string{"PORT": "abc"}, []string{"help"}, 0, "usage: silo", ""},
		{"unknown command", nil, []string{"frobnicate"}, 2, "", "usage: silo"},
		{"migrate with an argument", nil, []string{"migrate", "now"}, 2, "", "usage: silo"},
		{"serve with an argument", nil, []string{"serve", "now"}, 2, "", "usage: silo"},
		{"token without an address", nil, []string{"token"}, 2, "", "usage: silo"},
		{"token with two addresses", nil, []string{"token", "a@example.com", "b@example.com"}, 2, "", "usage: silo"},
		{"token of something that is not an address", nil, []string{"token", "not-an-email"}, 1, "", "not-an-email"},
		{"bad PORT", map[string]string{"PORT": "abc"}, []string{"migrate"}, 2, "", "PORT"},
		{"bad LOG_FORMAT", map[string]string{"LOG_FORMAT": "xml"}, []string{"serve"}, 2, "", "LOG_FORMAT"},
		{"ATLAS_BIN missing", map[string]string{"ATLAS_BIN": "/nonexistent/bin/atlas"}, []string{"migrate"}, 1, "", "make atlas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := silo(t.Context(), cliEnv(t, tt.env), tt.args...)
			if code != tt.wantCode {
				t.Errorf("silo %v: got exit code %d, want %d (stderr %q)", tt.args, code, tt.wantCode, stderr)
			}
			if tt.wantStdout == "" && stdout != "" || !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("silo %v: got stdout %q, want %q", tt.args, stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("silo %v: got stderr %q, want it to contain %q", tt.args, stderr, tt.wantStderr)
			}
		})
	}
}

// TestServe starts silo serve with migrations on start, checks that it
// answers, and that cancelling its context shuts it down cleanly.
func TestServe(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	env := cliEnv(t, map[string]string{
		"MIGRATE_ON_START": "true",
		"DEV_LOGIN":        "true",
		"PORT":             strconv.Itoa(port),
		"BASE_URL":         "http://127.0.0.1:" + strconv.Itoa(port),
		"LOG_FORMAT":       "json",
	})
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	var code int
	exited := make(chan struct{}) // closed when run has returned code
	go func() {
		defer close(exited)
		code = run(ctx, []string{"serve"}, func(name string) string { return env[name] }, &stdout, &stderr)
	}()
	t.Cleanup(func() { // on a failure below, still stop the server
		cancel()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Error("silo serve: still running 30s after its context ended")
		}
	})

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("silo serve: exited with %d before answering\nstderr: %s", code, stderr.String())
		default:
		}
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz: got %v, %v within 10s, want 200\nstderr: %s", resp, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	resp, err := client.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /login: got %d, want 200", resp.StatusCode)
	}
	for _, want := range []string{"Sign in to silo", `action="/auth/dev"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /login: got a page without %q, want the dev sign-in form", want)
		}
	}

	cancel()
	select {
	case <-exited:
		if code != 0 {
			t.Errorf("silo serve after its context ended: got exit code %d, want 0\nstderr: %s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("silo serve: still running 5s after its context ended, want a graceful shutdown")
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("GET /healthz after shutdown: got a response, want the port closed")
	}
	for _, want := range []string{`"msg":"control plane schema is current"`, `"msg":"silo is serving"`, `"msg":"shutting down"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("silo serve log: got %s, want a line with %s", stderr.String(), want)
		}
	}
	if stdout.String() != "" {
		t.Errorf("silo serve: got stdout %q, want none (logs go to stderr)", stdout.String())
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// `make run` uses the default DATA_DIR, ./data: a relative path, which atlas
// (run in a directory of its own) must still find.
func TestRelativeDataDir(t *testing.T) {
	atlas := testdb.AtlasBin(t)
	t.Chdir(t.TempDir())
	env := map[string]string{"ATLAS_BIN": atlas}
	mustSilo(t, 0, env, "migrate")
	mustSilo(t, 0, env, "token", "relative@example.com")
	stdout, _ := mustSilo(t, 0, env, "tenants", "list")
	if !strings.Contains(stdout, "relative@example.com") || !strings.Contains(stdout, "ready") {
		t.Errorf("tenants list: got\n%s\nwant relative@example.com ready", stdout)
	}
	tenants, err := filepath.Glob(filepath.Join("data", "tenants", "silo_t_*.db"))
	if err != nil || len(tenants) != 1 {
		t.Errorf("tenant files under ./data/tenants: got %v, %v; want one", tenants, err)
	}
}
