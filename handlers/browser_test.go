package handlers_test

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/audits"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"silo/config"
	"silo/models"
	"silo/testrig"
	"silo/testrig/datasets"
)

// The browser tests drive Debian's Chromium through the DevTools protocol:
// what htmx, its SSE extension and the Content-Security-Policy do together
// can only be seen in a real browser.

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// browserTestTime bounds each browser test.
const browserTestTime = 60 * time.Second

// chrome is one headless Chromium with one tab, pointed at a silo.
type chrome struct {
	t        *testing.T
	base     string
	ctx      context.Context // the tab; no deadline, so it outlives a failed step
	deadline time.Time       // when the test's time is up

	mu       sync.Mutex
	problems []string // console errors, exceptions and CSP violations, as they come
}

// newChrome starts Chromium for srv. It skips the test when Chromium is not
// installed, except under CI=true, where it fails. The browser closes when the
// test ends, after a screenshot and the page's HTML if the test failed.
func newChrome(t *testing.T, srv *testrig.Server) *chrome {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v; CI must run the browser tests (apt-get install chromium)", chromiumPath, err)
		}
		t.Skipf("%s is not installed (apt-get install chromium); skipping the browser test", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.WindowSize(1280, 900), // a desktop's; tests that look at a phone's width say so
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	c := &chrome{t: t, base: srv.URL, deadline: time.Now().Add(browserTestTime)}
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(c.listen))
	c.ctx = ctx
	t.Cleanup(func() {
		if t.Failed() {
			c.keepEvidence()
		}
		cancelTab()
		cancelAlloc()
	})
	// The first action starts the browser and binds it to its context, so it
	// runs on the tab's own context, which has no deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	// CSP violations are reported as issues, besides the console message.
	enable, cancel := context.WithDeadline(ctx, c.deadline)
	defer cancel()
	if _, err := chromedp.Call(enable, audits.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the Audits domain: %v", err)
	}
	return c
}

// listen records what a page should never produce. It runs in the tab's
// event loop, so it only appends under the lock.
func (c *chrome) listen(ev any) {
	var problem string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			var args []string
			for _, a := range ev.Args {
				if a.Value != nil {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			problem = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		problem = "exception: " + d.Text
		if d.Exception != nil {
			problem += " " + d.Exception.Description
		}
	case *log.EventEntryAdded:
		// silo has no favicon: the browser's own request for one is not the
		// page's doing.
		if strings.HasSuffix(ev.Entry.URL, "/favicon.ico") {
			return
		}
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			problem = fmt.Sprintf("browser %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *audits.EventIssueAdded:
		if ev.Issue != nil && ev.Issue.Code == audits.InspectorIssueCodeContentSecurityPolicyIssue {
			problem = "CSP violation"
			if d := ev.Issue.Details; d != nil && d.ContentSecurityPolicyIssueDetails != nil {
				csp := d.ContentSecurityPolicyIssueDetails
				problem += fmt.Sprintf(": %s blocked %s", csp.ViolatedDirective, csp.BlockedURL)
			}
		}
	}
	if problem == "" {
		return
	}
	c.mu.Lock()
	c.problems = append(c.problems, problem)
	c.mu.Unlock()
}

// takeProblems returns what the pages reported since the last call.
func (c *chrome) takeProblems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.problems
	c.problems = nil
	return p
}

// wantNoProblems fails the test if a page logged an error, threw or broke
// the Content-Security-Policy, apart from reports containing one of
// expected. The browser reports some of these a moment after the fact, so it
// waits a little first.
func (c *chrome) wantNoProblems(when string, expected ...string) {
	c.t.Helper()
	time.Sleep(300 * time.Millisecond)
	var unexpected []string
	for _, p := range c.takeProblems() {
		if !slices.ContainsFunc(expected, func(e string) bool { return strings.Contains(p, e) }) {
			unexpected = append(unexpected, p)
		}
	}
	if len(unexpected) > 0 {
		c.t.Errorf("%s: the browser reported:\n  %s", when, strings.Join(unexpected, "\n  "))
	}
}

// step runs actions, one after the other, within the test's time. Right
// after a page load the browser can still swap the document chromedp found
// an element in; an action that lost its element that way is tried again.
func (c *chrome) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithDeadline(c.ctx, c.deadline)
	defer cancel()
	for i, a := range actions {
		for attempt := 1; ; attempt++ {
			err := chromedp.Do(ctx, a)
			if err == nil {
				break
			}
			if attempt < 5 && staleNode(err) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			c.t.Fatalf("%s (action %d): %v", what, i+1, err)
		}
	}
}

// staleNode reports whether err says an element went away under an action.
func staleNode(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Could not find node with given id") || strings.Contains(msg, "No node with given id") ||
		strings.Contains(msg, "could not set value on node")
}

// eval evaluates a JavaScript expression through the DevTools protocol
// (which the page's CSP does not govern).
func eval[T any](c *chrome, expression string) (T, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expression))
}

// waitFor evaluates a JavaScript expression until it is true, across page
// loads, within the test's time.
func (c *chrome) waitFor(what, expression string) {
	c.t.Helper()
	var last error
	for time.Now().Before(c.deadline) {
		ok, err := eval[bool](c, expression)
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("waited %s for %s (%s); last error: %v", browserTestTime, what, expression, last)
}

// location is the address of the tab's page, without the server.
func (c *chrome) location() string {
	c.t.Helper()
	href, err := eval[string](c, "location.href")
	if err != nil {
		c.t.Fatalf("read the location: %v", err)
	}
	return strings.TrimPrefix(href, c.base)
}

// textOf is the visible text of the first element matching selector, or "".
func (c *chrome) textOf(selector string) string {
	c.t.Helper()
	s, err := eval[string](c, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, selector))
	if err != nil {
		c.t.Fatalf("read %s: %v", selector, err)
	}
	return s
}

// open navigates to path and waits for the page to be loaded.
func (c *chrome) open(path string) {
	c.t.Helper()
	c.step("open "+path, chromedp.Navigate(c.base+path))
	c.waitFor("the page at "+path, `document.readyState === "complete"`)
}

// signIn signs email in through the dev sign-in form.
func (c *chrome) signIn(email string) {
	c.t.Helper()
	c.open("/login")
	c.step("fill in the sign-in form",
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.Click(chromedp.CSS(`form[action="/auth/dev"] button[type="submit"]`)),
	)
	c.waitFor("the documents page", `location.pathname === "/" && document.readyState === "complete" && document.querySelector("h1").innerText === "Your documents"`)
}

// axeSource is axe-core, which wantAccessible runs in the page.
//
//go:embed testdata/axe-core/axe-4.14.1.min.js
var axeSource string

// wantAccessible runs axe-core on the page and fails the test on any
// serious or critical violation of WCAG 2 A or AA, naming the rule and
// the first elements it found.
func (c *chrome) wantAccessible(what string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+";true")); err != nil {
		c.t.Fatalf("%s: load axe-core: %v", what, err)
	}
	report, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}).then(r =>
		r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
			.map(v => v.id + " (" + v.impact + "): " + v.help + ": " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")).join("\n"))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("%s: run axe-core: %v", what, err)
	}
	if report != "" {
		c.t.Errorf("%s: axe-core finds serious accessibility problems:\n%s", what, report)
	}
}

// artifacts is where browser tests keep screenshots: $BROWSER_TEST_ARTIFACTS,
// or a new temporary directory.
func artifacts(t *testing.T) (string, error) {
	if dir := os.Getenv("BROWSER_TEST_ARTIFACTS"); dir != "" {
		return dir, nil
	}
	return os.MkdirTemp("", "silo-browser-")
}

// screenshot shows the page at width pixels wide and keeps a screenshot of
// all of it as the test's name and what (a PNG in artifacts), to look at;
// it fails the test when the page is wider than the window (it would
// scroll sideways).
func (c *chrome) screenshot(what string, width int64) {
	c.t.Helper()
	c.step("a window "+strconv.FormatInt(width, 10)+" px wide", chromedp.EmulateViewport(width, 900))
	c.waitFor("the page laid out again", "innerWidth === "+strconv.FormatInt(width, 10))
	if wide, _ := eval[int64](c, "document.documentElement.scrollWidth"); wide > width {
		c.t.Errorf("%s at %d px: the page is %d px wide and scrolls sideways", what, width, wide)
	}
	dir, err := artifacts(c.t)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot of %s: %v", what, err)
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(c.t.Name()+"-"+what, "_")
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("screenshot: %s", path)
}

// keepEvidence saves a screenshot and the HTML of the page where a failed
// test stopped, in artifacts.
func (c *chrome) keepEvidence() {
	dir, err := artifacts(c.t)
	if err != nil {
		c.t.Logf("no screenshot: %v", err)
		return
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(c.t.Name(), "_")
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90)); err == nil {
		path := filepath.Join(dir, name+".png")
		if err := os.WriteFile(path, png, 0o644); err == nil {
			c.t.Logf("screenshot of the failed test: %s", path)
		}
	}
	if page, err := chromedp.Run(ctx, chromedp.Evaluate[string]("location.href + '\\n' + document.documentElement.outerHTML")); err == nil {
		path := filepath.Join(dir, name+".html")
		if err := os.WriteFile(path, []byte(page), 0o644); err == nil {
			c.t.Logf("HTML of the failed test's page: %s", path)
		}
	}
	if p := c.takeProblems(); len(p) > 0 {
		c.t.Logf("the browser also reported:\n  %s", strings.Join(p, "\n  "))
	}
}

// TestBrowserSignInAndOut signs in and out through the pages in Chromium,
// with no console error and nothing the Content-Security-Policy blocks.
func TestBrowserSignInAndOut(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	c := newChrome(t, srv)

	c.open("/login")
	if got := c.textOf("h1"); got != "Sign in to silo" {
		t.Errorf("/login: got heading %q, want Sign in to silo", got)
	}
	c.wantNoProblems("the sign-in page")

	c.signIn("ann@example.com")
	if got := c.location(); got != "/" {
		t.Errorf("after sign-in: got %s, want /", got)
	}
	if who := c.textOf(".who"); who != "ann@example.com" {
		t.Errorf("after sign-in: the page names %q, want ann@example.com", who)
	}
	for _, check := range []string{`typeof htmx !== "undefined"`, `htmx.version.startsWith("2.")`} {
		if ok, err := eval[bool](c, check); err != nil || !ok {
			t.Errorf("%s: got %t (%v), want true: htmx did not load", check, ok, err)
		}
	}
	// The CSRF header htmx sends is the session's.
	if ok, err := eval[bool](c, `JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"].length > 20`); err != nil || !ok {
		t.Errorf("the page gives htmx no CSRF header: %v", err)
	}
	c.wantNoProblems("the documents page")

	c.step("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
	c.waitFor("the sign-in page", `location.pathname === "/login" && document.querySelector("#email") !== null`)
	c.open("/")
	if got := c.location(); got != "/login" {
		t.Errorf("/ after sign-out: got %s, want /login", got)
	}
	c.wantNoProblems("signing out")

	// The watch works: a picture from elsewhere breaks the policy, and is seen.
	if _, err := eval[chromedp.Void](c, `document.body.insertAdjacentHTML("beforeend", '<img src="https://csp-canary.invalid/x.png">')`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		if seen = append(seen, c.takeProblems()...); len(seen) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(strings.Join(seen, "\n"), "csp-canary.invalid") {
		t.Errorf("a CSP violation made on purpose was not reported (got %q): the test cannot see violations", seen)
	}
}

// TestBrowserAdminWatchesMigration runs "Migrate all tenants" from the
// dashboard and watches the run page fill in over SSE, without a reload,
// then retries the failure with the page's button.
func TestBrowserAdminWatchesMigration(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, func(cfg *config.Config) { cfg.AdminEmails = []string{adminEmail} })
	signedInAs(t, srv, "ann@example.com")
	signedInAs(t, srv, "bob@example.com")
	c := newChrome(t, srv)
	c.signIn(adminEmail)
	setSchemaVersion(t, srv.Store, "ann@example.com", oldSchema)
	setSchemaVersion(t, srv.Store, "bob@example.com", oldSchema)
	restoreBob := corruptTenantFile(t, srv.Store, "bob@example.com")

	c.step("open the dashboard", chromedp.Click(chromedp.CSS(`nav a[href="/admin"]`)))
	c.waitFor("the dashboard", `location.pathname === "/admin" && document.querySelectorAll("tbody tr").length === 3`)
	if n, err := eval[int](c, `[...document.querySelectorAll("tbody tr")].filter(r => r.innerText.includes("behind")).length`); err != nil || n != 2 {
		t.Errorf("the dashboard shows %d tenants behind (%v), want 2", n, err)
	}
	c.wantNoProblems("the dashboard")

	// Ann's database is locked, so the run is still under way when its page
	// opens.
	releaseAnn := lockTenantFile(t, srv.Store, "ann@example.com")
	c.step("migrate all tenants", chromedp.Click(chromedp.CSS(`form[action="/admin/migrations"] button`)))
	c.waitFor("the run page", `location.pathname.startsWith("/admin/migrations/") && document.querySelector("#progress") !== null`)
	first := c.location()
	if !strings.Contains(c.textOf("#progress"), "running") {
		t.Fatalf("the run page opened with progress %q, want a run still running", c.textOf("#progress"))
	}
	if ok, _ := eval[bool](c, `document.querySelector("[sse-connect]") !== null`); !ok {
		t.Fatal("the page of a running run does not connect to its event stream")
	}
	// Bob's failure arrives while the run goes on.
	c.waitFor("Bob's failure", `document.querySelector("#results").innerText.includes("bob@example.com")`)
	if _, err := eval[chromedp.Void](c, `window.siloSamePage = true`); err != nil {
		t.Fatal(err)
	}
	releaseAnn()

	c.waitFor("the run to end on the page", `document.querySelector("#progress").innerText.includes("failed") && !document.querySelector("#progress").innerText.includes("running")`)
	if same, err := eval[bool](c, `window.siloSamePage === true`); err != nil || !same {
		t.Fatal("the run page reloaded; its progress should come over SSE into the same page")
	}
	c.waitFor("Ann's row", `document.querySelector("#results").innerText.includes("ann@example.com")`)
	rows, err := eval[[]string](c, `[...document.querySelectorAll("#results tr")].map(r => r.innerText)`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Errorf("got %d result rows, want one per tenant behind (2): %q", len(rows), rows)
	}
	for _, r := range rows {
		switch {
		case strings.Contains(r, "ann@example.com") && strings.HasSuffix(strings.TrimSpace(r), "ok"):
		case strings.Contains(r, "bob@example.com") && strings.Contains(r, "not a database"):
		default:
			t.Errorf("unexpected result row %q", r)
		}
	}
	if p := c.textOf("#progress"); !regexp.MustCompile(`1\s+migrated · 1\s+failed · 2 in all`).MatchString(p) {
		t.Errorf("progress: got %q, want 1 migrated · 1 failed · 2 in all", p)
	}
	c.wantNoProblems("the live run page")

	// Bob's database is mended; the page's button retries him.
	restoreBob()
	c.waitFor("the retry button", `document.querySelector("#progress button") !== null`)
	c.step("retry the failed", chromedp.Click(chromedp.CSS(`#progress button`)))
	c.waitFor("the retry's run page", fmt.Sprintf(`location.pathname.startsWith("/admin/migrations/") && location.pathname !== %q && document.querySelector("#progress") !== null`, first))
	c.waitFor("the retry to finish", `document.querySelector("#progress").innerText.includes("finished")`)
	if p := c.textOf("#progress"); !regexp.MustCompile(`1\s+migrated · 0\s+failed · 1 in all`).MatchString(p) {
		t.Errorf("retry progress: got %q, want 1 migrated · 0 failed · 1 in all", p)
	}
	c.waitFor("Bob's row in the retry", `document.querySelector("#results").innerText.includes("bob@example.com")`)
	if v := tenantOf(t, srv.Store, "bob@example.com"); v.SchemaVersion == oldSchema {
		t.Error("Bob's schema version did not change after the retry")
	}
	c.wantNoProblems("the retry")
}

// TestBrowserDeleteAccount deletes an account from the settings page.
func TestBrowserDeleteAccount(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, nil)
	other := signedInAs(t, srv, "ann@example.com") // Ann, in another browser
	otherSession := sessionValue(t, other)
	bob := signedInAs(t, srv, "bob@example.com")
	c := newChrome(t, srv)
	c.signIn("ann@example.com")
	ann := userOf(t, srv.Store, "ann@example.com")
	annFile := tenantFile(tenantOf(t, srv.Store, "ann@example.com"))

	c.step("open the settings", chromedp.Click(chromedp.CSS(`nav a[href="/settings"]`)))
	c.waitFor("the settings page", `location.pathname === "/settings" && document.querySelector("#confirm") !== null`)
	c.step("confirm with the wrong address",
		chromedp.SendKeys(chromedp.CSS("#confirm"), "bob@example.com"),
		chromedp.Click(chromedp.CSS(`form[action="/account/delete"] button`)),
	)
	c.waitFor("the refusal", `document.querySelector(".alert") !== null`)
	if got := c.textOf(".alert"); !strings.Contains(got, "Type your e-mail address exactly") {
		t.Errorf("a wrong confirmation: got %q, want the reason", got)
	}
	if _, err := srv.Store.User(context.Background(), ann.ID); err != nil {
		t.Fatalf("a wrong confirmation deleted the account: %v", err)
	}
	// The browser logs the 422 of the refusal itself, and nothing else.
	c.wantNoProblems("the refused deletion", "status of 422")

	c.step("confirm with the right address",
		chromedp.SendKeys(chromedp.CSS("#confirm"), "ann@example.com"),
		chromedp.Click(chromedp.CSS(`form[action="/account/delete"] button`)),
	)
	c.waitFor("the sign-in page", `location.pathname === "/login" && document.querySelector("#email") !== null`)
	if got := c.textOf(".notice"); got != "Your account, its documents and its conversations are deleted." {
		t.Errorf("the sign-in page after the deletion says %q", got)
	}
	if _, err := srv.Store.User(context.Background(), ann.ID); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("Ann after deletion: got %v, want not found", err)
	}
	if _, err := os.Stat(annFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Ann's tenant file after deletion: got %v, want it gone", err)
	}
	c.open("/settings")
	if got := c.location(); got != "/login" {
		t.Errorf("/settings after deletion: got %s, want /login", got)
	}
	if n := sessionRows(t, srv, otherSession); n != 0 {
		t.Errorf("Ann's other browser: got %d session rows after the deletion, want 0", n)
	}
	wantSignedOut(t, other)
	wantSignedIn(t, bob, "bob@example.com")
	c.wantNoProblems("after the deletion")
}

// TestBrowserRemoveFailedDocument removes a PDF that cannot be read from
// the documents list, confirming in the browser's dialog: the list comes
// back without it, with no console error.
func TestBrowserRemoveFailedDocument(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	_, a := signedInAccount(t, srv, "ann@example.com")
	resp, body := apiUpload(t, srv, a, filePart("secret.pdf", datasets.Read(t, "sample-pdfs", "libreoffice-writer-password.pdf")))
	var failed struct{ ID, Status string }
	wantJSON(t, resp, body, &failed)
	if failed.Status != models.DocumentFailed {
		t.Fatalf("the password-protected upload: got %s", body)
	}
	c := newChrome(t, srv)
	var asked atomic.Value // the confirmation's message
	err := chromedp.Listen(c.ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			asked.Store(d.Message)
			go func() { // not in the listener: it may not call the browser
				_, _ = chromedp.Call(c.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c.signIn("ann@example.com")
	remove := `#documents button[hx-post="/documents/` + failed.ID + `/delete"]`
	c.waitFor("the Remove button", `!!document.querySelector('`+remove+`')`)
	c.step("remove it", chromedp.Click(chromedp.CSS(remove)))
	c.waitFor("the list without it", `!document.querySelector('`+remove+`') && !!document.querySelector("#documents .empty")`)
	if got, _ := asked.Load().(string); got != "Remove secret?" {
		t.Errorf("the confirmation asked %q, want %q", got, "Remove secret?")
	}
	if _, err := srv.Store.Document(context.Background(), a.user.ID, failed.ID); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("after Remove: got %v, want the document gone", err)
	}
	c.wantNoProblems("removing a failed document")
}

// TestBrowserLayouts opens every page, signed in as an admin, at a phone's
// width and a desktop's: none scrolls sideways, and a screenshot of each is
// kept (artifacts) to look at.
func TestBrowserLayouts(t *testing.T) {
	t.Parallel()
	srv := newServer(t, config.SQLite, func(cfg *config.Config) { cfg.AdminEmails = []string{adminEmail} })
	c := newChrome(t, srv)
	c.signIn(adminEmail)
	shoot := func(what string) {
		c.screenshot(what, 390)
		c.wantAccessible(what + " at 390 px")
		c.screenshot(what, 1280)
		c.wantAccessible(what + " at 1280 px")
	}
	shoot("documents-empty")
	// The keyboard's first stop is a visible skip link; the nav marks
	// where the page is.
	c.step("tab", chromedp.KeyEvent(kb.Tab))
	c.waitFor("the skip link, visible", `document.activeElement.matches("a.skip[href='#main']") && document.activeElement.getBoundingClientRect().top >= 0`)
	if got := c.textOf(`.nav a[aria-current="page"]`); got != "Documents" {
		t.Errorf("the nav marks %q as the current page, want Documents", got)
	}
	_, a := signedInAccount(t, srv, adminEmail)
	id := uploadPDF(t, srv, a, chatPDF, datasets.Read(t, "squad-pdfs", chatPDF))
	if d := waitDoc(t, srv, a, id, chatWait); d.Status != "ready" {
		t.Fatalf("%s ended %s: %s", chatPDF, d.Status, d.Error)
	}
	c.open("/")
	shoot("documents")
	c.open("/documents/" + id)
	c.step("ask", chromedp.SendKeys(chromedp.CSS("#question"), chatQuestion), chromedp.Click(chromedp.CSS(`#ask button[type="submit"]`)))
	c.waitFor("the answer", `!!document.querySelector(".msg-assistant .sources")`)
	shoot("document")
	// On a phone the conversation comes first, the pages a tab away; a
	// source opens its page there, highlighted, which zooms to twice the
	// pane's width inside the pane.
	c.step("a phone", chromedp.EmulateViewport(390, 900))
	visible := func(sel string) string {
		return `getComputedStyle(document.querySelector("` + sel + `")).display !== "none"`
	}
	c.waitFor("the conversation alone", visible("#chat")+" && !"+visible("#pages-pane"))
	c.step("open a source", chromedp.Click(chromedp.CSS(".sources a.cite")))
	c.waitFor("the source's page highlighted", visible("#pages-pane")+" && !"+visible("#chat")+
		` && document.querySelectorAll(location.hash + " .hl-layer .hl").length > 0`)
	c.step("zoom in", chromedp.Click(chromedp.CSS(`.zoom [data-zoom="2"]`)))
	c.waitFor("the pages at twice the pane's width", `document.querySelector(location.hash).getBoundingClientRect().width > 1.8 * document.querySelector("#pages").clientWidth`)
	c.waitFor("the snippet still in view", `(() => { const r = document.querySelector(location.hash + " .hl-layer .hl").getBoundingClientRect(),
		p = document.querySelector("#pages").getBoundingClientRect();
		return r.top >= p.top && r.bottom <= p.bottom && r.left >= p.left && r.left < p.right })()`)
	c.screenshot("document-source", 390)
	c.step("back to the conversation", chromedp.Click(chromedp.CSS("#tab-chat")))
	c.waitFor("the conversation again", visible("#chat")+" && !"+visible("#pages-pane"))
	c.step("open the details", chromedp.Click(chromedp.CSS(".doc-facts summary")))
	shoot("document-details")
	c.open("/ask")
	shoot("ask")
	c.open("/documents/" + id + "/delete")
	shoot("delete")
	for _, page := range []string{"/settings", "/admin", "/nope"} {
		c.open(page)
		shoot(strings.TrimPrefix(page, "/"))
	}
	if got := c.textOf(`.nav a[aria-current="page"]`); got != "" {
		t.Errorf("on a page that is under none of the nav's entries, the nav marks %q", got)
	}
	// In dark mode too.
	scheme := func(value string) {
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		defer cancel()
		params := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: value}}}
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, params); err != nil {
			t.Fatalf("prefers-color-scheme %s: %v", value, err)
		}
	}
	scheme("dark")
	for name, page := range map[string]string{"dark-documents": "/", "dark-document": "/documents/" + id, "dark-ask": "/ask"} {
		c.open(page)
		shoot(name)
	}
	scheme("light")
	c.open("/")
	c.step("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
	c.waitFor("the sign-in page", `location.pathname === "/login"`)
	shoot("login")
	c.wantNoProblems("the pages", "404")
}

// TestBrowserUploads uploads four files at once from the documents page in
// Chromium: a new PDF, a text file, a PDF already there and one over the
// size limit. The new one is listed; the others are refused, each saying
// why (the duplicate linking to the document there, the big one never
// sent), and the refusals stay while the list refreshes, until dismissed.
func TestBrowserUploads(t *testing.T) {
	t.Parallel()
	srv := docServer(t, func(cfg *config.Config) { cfg.MaxUploadMB = 2 })
	_, a := signedInAccount(t, srv, "ann@example.com")
	dir := t.TempDir()
	files := map[string][]byte{
		"new.pdf":   datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf"),
		"notes.txt": []byte("just some notes"),
		"again.pdf": datasets.Read(t, "sample-pdfs", "minimal-document.pdf"),
		"big.pdf":   append([]byte("%PDF-1.4\n"), make([]byte, 3<<20)...),
	}
	var paths []string
	for name, b := range files {
		paths = append(paths, filepath.Join(dir, name))
		if err := os.WriteFile(paths[len(paths)-1], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	there := uploadPDF(t, srv, a, "minimal.pdf", files["again.pdf"])
	c := newChrome(t, srv)
	c.signIn("ann@example.com")
	c.step("choose four files", chromedp.SetUploadFiles(chromedp.CSS(`#file`), paths))
	c.waitFor("the new document listed", `document.querySelectorAll("#documents .doc").length === 2`)
	c.waitFor("three refusals", `document.querySelectorAll("#refusals .refusal").length === 3`)
	refusals := c.textOf("#refusals")
	for _, want := range []string{"notes.txt is not a PDF", "again.pdf is already uploaded, as “minimal”", "big.pdf is larger than 2 MB"} {
		if !strings.Contains(refusals, want) {
			t.Errorf("the refusals read %q, want %q", refusals, want)
		}
	}
	if ok, _ := eval[bool](c, `!!document.querySelector('#refusals .refusal a[href="/documents/`+there+`"]')`); !ok {
		t.Error("the duplicate's refusal does not link to the document there")
	}
	// The list polls while new.pdf is read; the refusals stay.
	c.waitFor("new.pdf ready", `document.querySelectorAll("#documents .status-ready").length === 2`)
	if n, _ := eval[int](c, `document.querySelectorAll("#refusals .refusal").length`); n != 3 {
		t.Errorf("after the list refreshed, %d refusals are left, want 3", n)
	}
	c.screenshot("refusals", 390)
	c.step("dismiss one", chromedp.Click(chromedp.CSS("#refusals .refusal .dismiss")))
	c.waitFor("two refusals", `document.querySelectorAll("#refusals .refusal").length === 2`)
	c.wantNoProblems("uploading")
}

// TestBrowserRevokeToken: revoking an API token asks first; cancelled, the
// token stays; confirmed, it goes.
func TestBrowserRevokeToken(t *testing.T) {
	t.Parallel()
	srv := docServer(t, nil)
	_, a := signedInAccount(t, srv, "ann@example.com")
	c := newChrome(t, srv)
	var accept atomic.Bool
	var asked atomic.Value // the question
	err := chromedp.Listen(c.ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			asked.Store(d.Message)
			go func() { // not in the listener: it may not call the browser
				_, _ = chromedp.Call(c.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept.Load()})
			}()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c.signIn("ann@example.com")
	c.open("/settings")
	revoke := `form[action$="/revoke"] button`
	c.waitFor("the token", `document.querySelectorAll(".tokens li").length === 1`)
	c.step("revoke, then cancel", chromedp.Click(chromedp.CSS(revoke)))
	time.Sleep(300 * time.Millisecond) // the dialog is answered; a form sent anyway would be under way
	if got, _ := asked.Load().(string); !strings.HasPrefix(got, "Revoke the token") {
		t.Errorf("the confirmation asked %q", got)
	}
	if ok, _ := eval[bool](c, `location.pathname === "/settings" && document.querySelectorAll(".tokens li").length === 1`); !ok {
		t.Error("the token went although the revocation was cancelled")
	}
	accept.Store(true)
	c.step("revoke, and confirm", chromedp.Click(chromedp.CSS(revoke)))
	c.waitFor("no token", `document.querySelectorAll(".tokens li").length === 0`)
	if resp, _ := send(t, srv.Browser, http.MethodGet, srv.URL+"/api/v1/documents", "", a.bearer()); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked token: got %d, want 401", resp.StatusCode)
	}
	c.wantNoProblems("revoking a token")
}
