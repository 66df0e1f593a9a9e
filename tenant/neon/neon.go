// Package neon provisions tenant databases as Neon projects, one a tenant,
// through the Neon API.
package neon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"silo/schema"
	"silo/tenant"
)

// The role and database of a tenant project's default branch. Create asks
// for them by name (they are Neon's defaults too), so a later attempt knows
// what to ask the connection URI of.
const (
	neonRole     = "neondb_owner"
	neonDatabase = "neondb"
)

// neonPGVersion is the PostgreSQL major version of new tenant projects.
const neonPGVersion = 16

const (
	// neonAttempts bounds the tries of one API call while Neon is busy or
	// failing.
	neonAttempts = 6
	// neonOperationsTimeout bounds the wait for a project's operations.
	neonOperationsTimeout = time.Minute
)

// Neon makes one Neon project per tenant, named after the tenant, in one
// region, through Neon's v2 API. The project's owner role runs the tenant's
// migrations and queries.
type Neon struct {
	apiURL   string // such as https://console.neon.tech/api/v2
	apiKey   string
	region   string
	migrator *schema.Migrator
	client   *http.Client

	backoff time.Duration // the wait before the second try of a call; it doubles, with jitter
	poll    time.Duration // the first wait between polls of an operation; it doubles
}

// New returns a provisioner of Neon projects in region (such as
// aws-us-east-2) through the API at apiURL with apiKey, migrated by migrator
// (tenant/postgres). client nil means a client with a 30-second timeout.
func New(apiURL, apiKey, region string, migrator *schema.Migrator, client *http.Client) *Neon {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Neon{
		apiURL: strings.TrimRight(apiURL, "/"), apiKey: apiKey, region: region,
		migrator: migrator, client: client,
		backoff: 500 * time.Millisecond, poll: 250 * time.Millisecond,
	}
}

// SetWaits changes how long Neon is waited for: backoff before the second
// try of an API call that Neon refused for being busy or failing (it
// doubles, with jitter, unless Neon says Retry-After), and poll before the
// first poll of an operation (it doubles too). Tests shorten them.
func (n *Neon) SetWaits(backoff, poll time.Duration) { n.backoff, n.poll = backoff, poll }

// Engine is "neon".
func (n *Neon) Engine() string { return "neon" }

// Locations is the one region.
func (n *Neon) Locations() []string { return []string{n.region} }

// Migrator applies the PostgreSQL tenant schema.
func (n *Neon) Migrator() *schema.Migrator { return n.migrator }

// AtlasURL is the project owner's connection URI without channel_binding,
// which atlas's PostgreSQL driver (lib/pq) would send to the server as a
// setting, and fail.
func (n *Neon) AtlasURL(t tenant.Tenant) string {
	u, err := url.Parse(t.DSN)
	if err != nil {
		return t.DSN
	}
	q := u.Query()
	if !q.Has("channel_binding") {
		return t.DSN
	}
	q.Del("channel_binding")
	u.RawQuery = q.Encode()
	return u.String()
}

// neonProject is what silo reads of a Neon project.
type neonProject struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	RegionID  string    `json:"region_id"`
	CreatedAt time.Time `json:"created_at"`
}

// neonOperation is one step Neon takes on a project, such as starting its
// compute.
type neonOperation struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// Create makes the tenant's project, or adopts the one an earlier attempt
// made, and brings its database to the newest tenant schema. When several
// projects carry the tenant's name (a retried creation made two), the
// oldest is kept and the others deleted.
func (n *Neon) Create(ctx context.Context, t *tenant.Tenant) (string, error) {
	if !strings.HasPrefix(t.Name, tenant.NamePrefix) {
		return "", fmt.Errorf("neon: refusing to create project %q: not a tenant name", t.Name)
	}
	projects, err := n.projectsNamed(ctx, t.Name)
	if err != nil {
		return "", err
	}
	var created, uri string // the project this call made and its URI
	if len(projects) == 0 {
		p, u, err := n.createProject(ctx, t.Name)
		if err != nil {
			return "", err
		}
		created, uri = p.ID, u
		// A POST retried after a lost answer may have made a second one.
		if projects, err = n.projectsNamed(ctx, t.Name); err != nil {
			return "", err
		}
		if !slices.ContainsFunc(projects, func(q neonProject) bool { return q.ID == p.ID }) {
			projects = append(projects, p)
		}
	}
	keep, err := n.keepOldest(ctx, projects)
	if err != nil {
		return "", err
	}
	if keep.ID != created { // adopted: it may still be starting
		if err := n.settle(ctx, keep.ID); err != nil {
			return "", err
		}
		uri = ""
	}
	if uri == "" {
		if uri, err = n.connectionURI(ctx, keep.ID); err != nil {
			return "", err
		}
	}
	t.ExternalID, t.DSN = keep.ID, uri
	_, version, err := n.migrator.Apply(ctx, n.AtlasURL(*t))
	if err != nil {
		return "", fmt.Errorf("migrate project %s: %w", keep.ID, scrubURI(err, uri))
	}
	return version, nil
}

// createProject makes a project called name and waits until Neon has
// finished making it; it returns the project and its owner's connection
// URI, if Neon gave one. If making it fails the project is deleted.
func (n *Neon) createProject(ctx context.Context, name string) (neonProject, string, error) {
	var body struct {
		Project        neonProject     `json:"project"`
		Operations     []neonOperation `json:"operations"`
		ConnectionURIs []struct {
			ConnectionURI string `json:"connection_uri"`
		} `json:"connection_uris"`
	}
	req := map[string]any{"project": map[string]any{
		"name": name, "region_id": n.region, "pg_version": neonPGVersion,
		"branch": map[string]string{"role_name": neonRole, "database_name": neonDatabase},
	}}
	if err := n.call(ctx, http.MethodPost, "/projects", nil, req, &body); err != nil {
		return neonProject{}, "", err
	}
	p := body.Project
	if p.ID == "" {
		return neonProject{}, "", errors.New("neon: POST /projects: the answer names no project")
	}
	if err := n.wait(ctx, p.ID, body.Operations); err != nil {
		return neonProject{}, "", n.discardFailed(ctx, p.ID, err)
	}
	var uri string
	if len(body.ConnectionURIs) > 0 {
		uri = body.ConnectionURIs[0].ConnectionURI
	}
	return p, uri, nil
}

// keepOldest deletes every project but the oldest and returns that one, so
// that two workers tidying the same duplicates keep the same project.
func (n *Neon) keepOldest(ctx context.Context, projects []neonProject) (neonProject, error) {
	slices.SortFunc(projects, func(a, b neonProject) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, p := range projects[1:] {
		if err := n.deleteProject(ctx, p.ID); err != nil {
			return neonProject{}, fmt.Errorf("delete duplicate project %s of %s: %w", p.ID, p.Name, err)
		}
	}
	return projects[0], nil
}

// settle waits for the operations still under way on a project; if one
// fails the project is deleted.
func (n *Neon) settle(ctx context.Context, projectID string) error {
	var body struct {
		Operations []neonOperation `json:"operations"`
	}
	if err := n.call(ctx, http.MethodGet, "/projects/"+url.PathEscape(projectID)+"/operations", url.Values{"limit": {"1000"}}, nil, &body); err != nil {
		return err
	}
	var pending []neonOperation
	for _, op := range body.Operations {
		if !neonOperationEnded(op.Status) {
			pending = append(pending, op)
		}
	}
	return n.discardFailed(ctx, projectID, n.wait(ctx, projectID, pending))
}

// discardFailed deletes a project whose making failed (err is
// errNeonOperationFailed), so that the next attempt makes a new one, and
// returns err.
func (n *Neon) discardFailed(ctx context.Context, projectID string, err error) error {
	if !errors.Is(err, errNeonOperationFailed) {
		return err
	}
	if derr := n.deleteProject(context.WithoutCancel(ctx), projectID); derr != nil {
		return fmt.Errorf("%w (and deleting the project: %v)", err, derr)
	}
	return err
}

// errNeonOperationFailed marks an operation that ended without doing its
// work; the project it was making is no good.
var errNeonOperationFailed = errors.New("neon: operation failed")

// neonOperationEnded reports whether an operation in status is over, well
// or badly.
func neonOperationEnded(status string) bool {
	switch status {
	case "finished", "skipped", "failed", "error", "cancelled":
		return true
	}
	return false
}

// wait polls each operation until it has finished, for at most
// neonOperationsTimeout in all.
func (n *Neon) wait(ctx context.Context, projectID string, ops []neonOperation) error {
	ctx, cancel := context.WithTimeout(ctx, neonOperationsTimeout)
	defer cancel()
	for _, op := range ops {
		for delay := n.poll; op.Status != "finished" && op.Status != "skipped"; delay = min(2*delay, 5*time.Second) {
			if neonOperationEnded(op.Status) {
				err := fmt.Errorf("%w: %s on project %s ended %s", errNeonOperationFailed, op.Action, projectID, op.Status)
				if op.Error != "" {
					err = fmt.Errorf("%w: %s", err, op.Error)
				}
				return err
			}
			if err := neonSleep(ctx, delay); err != nil {
				return fmt.Errorf("neon: %s on project %s still %s: %w", op.Action, projectID, op.Status, err)
			}
			var body struct {
				Operation neonOperation `json:"operation"`
			}
			if err := n.call(ctx, http.MethodGet, "/projects/"+url.PathEscape(projectID)+"/operations/"+url.PathEscape(op.ID), nil, nil, &body); err != nil {
				return err
			}
			op = body.Operation
		}
	}
	return nil
}

// connectionURI asks for the owner's connection URI of a project's default
// branch.
func (n *Neon) connectionURI(ctx context.Context, projectID string) (string, error) {
	var body struct {
		URI string `json:"uri"`
	}
	q := url.Values{"role_name": {neonRole}, "database_name": {neonDatabase}}
	if err := n.call(ctx, http.MethodGet, "/projects/"+url.PathEscape(projectID)+"/connection_uri", q, nil, &body); err != nil {
		return "", err
	}
	if body.URI == "" {
		return "", fmt.Errorf("neon: project %s: no connection URI", projectID)
	}
	return body.URI, nil
}

// Drop deletes the tenant's project. Without its id (a crash came before
// it was recorded) it deletes every project with the tenant's name. Only
// projects whose name is a tenant name are ever deleted.
func (n *Neon) Drop(ctx context.Context, t tenant.Tenant) error {
	if !strings.HasPrefix(t.Name, tenant.NamePrefix) {
		return fmt.Errorf("neon: refusing to drop %q: not a tenant database", t.Name)
	}
	if t.ExternalID == "" || t.ExternalID == t.Name {
		projects, err := n.projectsNamed(ctx, t.Name)
		if err != nil {
			return fmt.Errorf("neon: drop %s: %w", t.Name, err)
		}
		for _, p := range projects {
			if err := n.deleteProject(ctx, p.ID); err != nil {
				return fmt.Errorf("neon: drop %s: %w", t.Name, err)
			}
		}
		return nil
	}
	var body struct {
		Project neonProject `json:"project"`
	}
	err := n.call(ctx, http.MethodGet, "/projects/"+url.PathEscape(t.ExternalID), nil, nil, &body)
	if isNeonStatus(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("neon: drop %s: %w", t.Name, err)
	}
	if !strings.HasPrefix(body.Project.Name, tenant.NamePrefix) {
		return fmt.Errorf("neon: refusing to drop project %s: it is %q, not a tenant's", t.ExternalID, body.Project.Name)
	}
	if err := n.deleteProject(ctx, t.ExternalID); err != nil {
		return fmt.Errorf("neon: drop %s: %w", t.Name, err)
	}
	return nil
}

// deleteProject deletes a project; one already gone is no error.
func (n *Neon) deleteProject(ctx context.Context, id string) error {
	err := n.call(ctx, http.MethodDelete, "/projects/"+url.PathEscape(id), nil, nil, nil)
	if isNeonStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// Existing lists the projects whose name is a tenant name.
func (n *Neon) Existing(ctx context.Context) ([]tenant.Tenant, error) {
	projects, err := n.projects(ctx, tenant.NamePrefix)
	if err != nil {
		return nil, fmt.Errorf("neon: list projects: %w", err)
	}
	var out []tenant.Tenant
	for _, p := range projects {
		if strings.HasPrefix(p.Name, tenant.NamePrefix) {
			out = append(out, tenant.Tenant{Name: p.Name, Location: p.RegionID, ExternalID: p.ID})
		}
	}
	return out, nil
}

// projectsNamed lists the projects called exactly name.
func (n *Neon) projectsNamed(ctx context.Context, name string) ([]neonProject, error) {
	projects, err := n.projects(ctx, name)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(projects, func(p neonProject) bool { return p.Name != name }), nil
}

// projects lists the projects whose name or id contains search, every page.
func (n *Neon) projects(ctx context.Context, search string) ([]neonProject, error) {
	const limit = 400 // the most Neon gives at once
	var out []neonProject
	q := url.Values{"search": {search}, "limit": {strconv.Itoa(limit)}}
	for {
		var page struct {
			Projects   []neonProject `json:"projects"`
			Pagination struct {
				Cursor string `json:"cursor"`
			} `json:"pagination"`
		}
		if err := n.call(ctx, http.MethodGet, "/projects", q, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Projects...)
		next := page.Pagination.Cursor
		if len(page.Projects) < limit || next == "" || next == q.Get("cursor") {
			return out, nil
		}
		q.Set("cursor", next)
	}
}

// neonError is an answer of the Neon API other than success.
type neonError struct {
	method, path string
	status       int
	message      string // Neon's explanation
}

func (e *neonError) Error() string {
	s := fmt.Sprintf("neon: %s %s: %d %s", e.method, e.path, e.status, http.StatusText(e.status))
	if e.message != "" {
		s += ": " + e.message
	}
	return s
}

func isNeonStatus(err error, status int) bool {
	var ne *neonError
	return errors.As(err, &ne) && ne.status == status
}

// call makes one API request, with in as its JSON body when not nil, and
// decodes the answer into out when not nil. When Neon is busy (429, or 423
// while another operation holds the project) or failing (5xx), or the
// request does not get through, it tries again after a growing, jittered
// wait, or the one Neon asks for in Retry-After, up to neonAttempts times.
// Other answers fail at once with Neon's message. Errors name the method
// and path, never the key.
func (n *Neon) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return err
		}
	}
	target := n.apiURL + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	for attempt := 1; ; attempt++ {
		wait, err := n.try(ctx, method, path, target, payload, out)
		if err == nil || wait < 0 {
			return err
		}
		if attempt == neonAttempts {
			return fmt.Errorf("%w (after %d attempts)", err, attempt)
		}
		if wait == 0 {
			d := n.backoff << (attempt - 1)
			wait = d/2 + rand.N(d/2+1) // equal jitter
		}
		if serr := neonSleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (gave up waiting to retry: %v)", err, serr)
		}
	}
}

// try makes one attempt of a call. A failure comes with how long to wait
// before trying again: the Retry-After Neon asked for (at least 1ms), 0 for
// the usual backoff, less than 0 for never.
func (n *Neon) try(ctx context.Context, method, path, target string, payload []byte, out any) (time.Duration, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return -1, fmt.Errorf("neon: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+n.apiKey)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, fmt.Errorf("neon: %s %s: %w", method, path, ctx.Err())
		}
		var uerr *url.Error
		if errors.As(err, &uerr) { // it would repeat the whole URL
			err = uerr.Err
		}
		return 0, fmt.Errorf("neon: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, fmt.Errorf("neon: %s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode < 300 {
		if out == nil {
			return 0, nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return -1, fmt.Errorf("neon: %s %s: decode the answer: %w", method, path, err)
		}
		return 0, nil
	}
	var apiErr struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(b, &apiErr)
	ne := &neonError{method: method, path: path, status: resp.StatusCode, message: apiErr.Message}
	busy := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusLocked
	if !busy && resp.StatusCode < 500 {
		return -1, ne
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		return max(time.Duration(s)*time.Second, time.Millisecond), ne
	}
	return 0, ne
}

// neonSleep waits d or until ctx ends.
func neonSleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// scrubURI keeps a connection URI's password out of an error that might
// quote it.
func scrubURI(err error, uri string) error {
	u, perr := url.Parse(uri)
	if perr != nil {
		return err
	}
	pass, ok := u.User.Password()
	if !ok || pass == "" || !strings.Contains(err.Error(), pass) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pass, "xxxxx"))
}
