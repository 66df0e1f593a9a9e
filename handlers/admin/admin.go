// Package admin serves the admins' pages and API: the tenant dashboard and
// migrating every tenant database, with live progress over server-sent
// events, failures listed and retryable.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"silo/models"
	"silo/tenant"
	"silo/web"
)

// tenantsPerPage is how many tenants one dashboard page lists.
const tenantsPerPage = 50

// ssePoll is how often a migration run's event stream looks for news.
const ssePoll = 250 * time.Millisecond

// staleRun is how long after its start a run still "running" is taken for
// one whose process died, so it no longer blocks a new run.
const staleRun = time.Hour

// Admin serves the admin pages and API.
type Admin struct {
	*web.Base
	store   *models.Store
	tenants *tenant.Manager
	log     *slog.Logger
	// background runs migration runs; Close cancels backgroundCtx and waits.
	background       sync.WaitGroup
	backgroundCtx    context.Context
	cancelBackground context.CancelFunc
}

// New returns the admin handlers on base. Close stops the migration runs
// they started.
func New(base *web.Base, store *models.Store, tenants *tenant.Manager, log *slog.Logger) *Admin {
	a := &Admin{Base: base, store: store, tenants: tenants, log: log}
	a.backgroundCtx, a.cancelBackground = context.WithCancel(context.Background())
	return a
}

// Close stops any migration run and waits for it. A run stopped half-way
// is finished by the next one.
func (a *Admin) Close() {
	a.cancelBackground()
	a.background.Wait()
}

// Routes adds the admin pages to pages (signed-in people's) and the admin
// API to api (token holders'), for admins only.
func (a *Admin) Routes(pages, api *gin.RouterGroup) {
	p := pages.Group("/admin", a.RequireAdmin)
	p.GET("", a.adminPage)
	p.POST("/migrations", a.migrateAll)
	p.GET("/migrations/:id", a.runPage)
	p.GET("/migrations/:id/events", a.runEvents)
	p.POST("/migrations/:id/retry", a.retryFailed)
	j := api.Group("/admin", a.RequireAdmin)
	j.GET("/tenants", a.apiTenants)
	j.POST("/tenants/migrate", a.apiMigrate)
	j.GET("/migrations/:id", a.apiRun)
}

// tenantRow is one line of the tenant dashboard.
type tenantRow struct {
	models.VectorDatabase
	Email     string
	Place     string // where it is (tenant.Manager.Place)
	Size      int64  // bytes; 0 when unknown
	Documents int
	Behind    bool
}

// tenantPage is one page of the tenant directory with what the dashboard
// and the API show of it.
type tenantPage struct {
	Tenants        []tenantRow
	Page, Pages    int
	Total          int
	Behind         int // ready tenants of all pages not at Latest
	Latest         string
	Email          string // the search, if any: Total counts its matches
	PrevPage, Next int
}

// loadTenantPage reads page (from 1) of the tenant directory, or of the
// tenants whose e-mail address contains email, with sizes and document
// counts.
func (a *Admin) loadTenantPage(ctx context.Context, page int, email string) (*tenantPage, error) {
	if page < 1 {
		page = 1
	}
	rows, total, err := a.store.Tenants(ctx, models.TenantFilter{Email: email, Offset: (page - 1) * tenantsPerPage, Limit: tenantsPerPage})
	if err != nil {
		return nil, err
	}
	userIDs := make([]int64, len(rows))
	for i, v := range rows {
		userIDs[i] = v.UserID
	}
	docs, err := a.store.DocumentCounts(ctx, userIDs)
	if err != nil {
		return nil, err
	}
	sizes, err := a.tenants.Sizes(ctx, rows)
	if err != nil {
		a.log.Warn("tenant database sizes", "err", err) // the page is still useful without them
	}
	latest := a.tenants.LatestSchema()
	_, behind, err := a.store.Tenants(ctx, models.TenantFilter{Status: models.TenantReady, BehindOf: latest, Limit: 1})
	if err != nil {
		return nil, err
	}
	p := &tenantPage{Page: page, Total: total, Behind: behind, Latest: latest, Email: email, Pages: max(1, (total+tenantsPerPage-1)/tenantsPerPage)}
	if page > 1 {
		p.PrevPage = min(page-1, p.Pages) // past the end, "previous" is the last page
	}
	if page < p.Pages {
		p.Next = page + 1
	}
	for _, v := range rows {
		p.Tenants = append(p.Tenants, tenantRow{
			VectorDatabase: v, Email: v.User.Email, Place: a.tenants.Place(v), Size: sizes[v.ID], Documents: docs[v.UserID],
			Behind: v.Status == models.TenantReady && v.SchemaVersion != latest,
		})
	}
	return p, nil
}

// adminPageData is what admin.html shows.
type adminPageData struct {
	web.Frame
	*tenantPage
	Runs    []models.MigrationRun
	Running *models.MigrationRun
}

// adminPage is the tenant dashboard.
func (a *Admin) adminPage(c *gin.Context) {
	ctx := c.Request.Context()
	page, _ := strconv.Atoi(c.Query("page"))
	tp, err := a.loadTenantPage(ctx, page, c.Query("q"))
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	runs, err := a.store.MigrationRuns(ctx, 10)
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	d := adminPageData{Frame: a.Frame(c, "Tenants"), tenantPage: tp, Runs: runs}
	if r, err := a.store.RunningMigration(ctx, time.Now().Add(-staleRun)); err == nil {
		d.Running = r
	}
	a.Render(c, http.StatusOK, "admin.html", d)
}

// errRunUnderWay means a migration run is already going on.
var errRunUnderWay = errors.New("a migration run is already under way")

// startMigration plans a run (every tenant behind, or only those rows) and
// runs it in the background; it returns the run as planned.
func (a *Admin) startMigration(ctx context.Context, startedBy string, only []int64) (*models.MigrationRun, error) {
	if r, err := a.store.RunningMigration(ctx, time.Now().Add(-staleRun)); err == nil {
		return r, errRunUnderWay
	} else if !errors.Is(err, models.ErrNotFound) {
		return nil, err
	}
	mig, err := a.tenants.PlanMigration(ctx, startedBy, only)
	if err != nil {
		return nil, err
	}
	a.background.Go(func() {
		run, err := a.tenants.Migrate(a.backgroundCtx, mig, tenant.DefaultConcurrency(), nil)
		if err != nil {
			a.log.Error("migration run", "run", mig.Run.PublicID, "err", err)
			return
		}
		a.log.Info("migration run finished", "run", run.PublicID, "migrated", run.Done, "failed", run.Failed, "total", run.Total)
	})
	return mig.Run, nil
}

// migrateAll starts a run over every tenant that is behind, or shows the
// run under way; with none behind, it says so on the dashboard instead.
func (a *Admin) migrateAll(c *gin.Context) {
	ctx := c.Request.Context()
	if r, err := a.store.RunningMigration(ctx, time.Now().Add(-staleRun)); err == nil {
		web.Redirect(c, "/admin/migrations/"+r.PublicID)
		return
	}
	_, behind, err := a.store.Tenants(ctx, models.TenantFilter{Status: models.TenantReady, BehindOf: a.tenants.LatestSchema(), Limit: 1})
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	if behind == 0 {
		a.Notify(c, "Every tenant is at the newest schema: there is nothing to migrate.")
		web.Redirect(c, "/admin")
		return
	}
	run, err := a.startMigration(ctx, web.CurrentUser(c).Email, nil)
	if err != nil && !errors.Is(err, errRunUnderWay) {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	web.Redirect(c, "/admin/migrations/"+run.PublicID)
}

// retryFailed starts a run over the tenants that failed in a run.
func (a *Admin) retryFailed(c *gin.Context) {
	ctx := c.Request.Context()
	run, ok := a.migrationRun(c)
	if !ok {
		return
	}
	failed, err := a.store.MigrationResults(ctx, run.ID, 0, true)
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	ids := make([]int64, 0, len(failed))
	for _, r := range failed {
		ids = append(ids, r.VectorDatabaseID)
	}
	next, err := a.startMigration(ctx, web.CurrentUser(c).Email, ids)
	if err != nil && !errors.Is(err, errRunUnderWay) {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	web.Redirect(c, "/admin/migrations/"+next.PublicID)
}

// migrationRun loads the run named in the path, or answers 404.
func (a *Admin) migrationRun(c *gin.Context) (*models.MigrationRun, bool) {
	run, err := a.store.MigrationRunByPublicID(c.Request.Context(), c.Param("id"))
	if errors.Is(err, models.ErrNotFound) {
		a.Fail(c, http.StatusNotFound, "", nil)
		return nil, false
	}
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return nil, false
	}
	return run, true
}

// runPageData is what admin_run.html shows.
type runPageData struct {
	web.Frame
	Run     *models.MigrationRun
	Results []models.MigrationResult
	LastID  int64
}

// Live reports whether the run is still under way, so the page streams.
func (d runPageData) Live() bool { return d.Run.Status == models.RunRunning }

// runPage shows one migration run; while it runs, the results stream in.
func (a *Admin) runPage(c *gin.Context) {
	run, ok := a.migrationRun(c)
	if !ok {
		return
	}
	results, err := a.store.MigrationResults(c.Request.Context(), run.ID, 0, false)
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	d := runPageData{Frame: a.Frame(c, "Migration run"), Run: run, Results: results}
	if n := len(results); n > 0 {
		d.LastID = results[n-1].ID
	}
	a.Render(c, http.StatusOK, "admin_run.html", d)
}

// runEvents streams a run's progress over SSE: a "result" event with a
// table row for each tenant as it finishes, a "progress" event with the
// counters, and "done" when the run has ended. It reads the control plane,
// so it follows a run made by any silo instance.
func (a *Admin) runEvents(c *gin.Context) {
	run, ok := a.migrationRun(c)
	if !ok {
		return
	}
	after, _ := strconv.ParseInt(c.Query("after"), 10, 64)
	ctx := c.Request.Context()
	stream := web.StartSSE(c)
	tick := time.NewTicker(ssePoll)
	defer tick.Stop()
	for {
		// The run first, its results second: a run seen ended has every
		// result stored, so none can slip in after the last read.
		var results []models.MigrationResult
		latest, err := a.store.MigrationRunByPublicID(ctx, run.PublicID)
		if err == nil {
			run = latest
			results, err = a.store.MigrationResults(ctx, run.ID, after, false)
		}
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error("migration events", "run", run.PublicID, "err", err)
			}
			return
		}
		for i := range results {
			if err := a.Fragment(stream, "result", "admin_result_row.html", &results[i]); err != nil {
				return
			}
			after = results[i].ID
		}
		if len(results) > 0 || run.Status != models.RunRunning {
			if err := a.Fragment(stream, "progress", "admin_run_progress.html", run); err != nil {
				return
			}
		}
		if run.Status != models.RunRunning {
			_ = stream.Send("done", run.Status)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// tenantJSON is a tenant as the admin API shows it.
type tenantJSON struct {
	Email         string    `json:"email"`
	Engine        string    `json:"engine"`
	Location      string    `json:"location"`
	Database      string    `json:"database"`
	Status        string    `json:"status"`
	SchemaVersion string    `json:"schema_version"`
	Behind        bool      `json:"behind"`
	SizeBytes     int64     `json:"size_bytes"`
	Documents     int       `json:"documents"`
	Error         string    `json:"error,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// apiTenants answers GET /api/v1/admin/tenants?page=N&q=…, q an e-mail
// address or part of one.
func (a *Admin) apiTenants(c *gin.Context) {
	page, _ := strconv.Atoi(c.Query("page"))
	tp, err := a.loadTenantPage(c.Request.Context(), page, c.Query("q"))
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	out := make([]tenantJSON, len(tp.Tenants))
	for i, t := range tp.Tenants {
		out[i] = tenantJSON{
			Email: t.Email, Engine: t.Engine, Location: t.Place, Database: t.ExternalID,
			Status: t.Status, SchemaVersion: t.SchemaVersion, Behind: t.Behind, SizeBytes: t.Size,
			Documents: t.Documents, Error: t.Error, CreatedAt: t.CreatedAt,
		}
	}
	c.JSON(http.StatusOK, gin.H{
		"tenants": out, "page": tp.Page, "pages": tp.Pages, "per_page": tenantsPerPage,
		"total": tp.Total, "latest_schema": tp.Latest,
	})
}

// runJSON is a migration run as the admin API shows it.
type runJSON struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	TargetVersion string `json:"target_version"`
	Total         int    `json:"total"`
	Done          int    `json:"done"`
	Failed        int    `json:"failed"`
}

func newRunJSON(r *models.MigrationRun) runJSON {
	return runJSON{
		ID: r.PublicID, Status: r.Status, TargetVersion: r.TargetVersion,
		Total: r.Total, Done: r.Done, Failed: r.Failed,
	}
}

// apiMigrate answers POST /api/v1/admin/tenants/migrate: 202 with the run,
// which goes on in the background (409 with the run under way, if any).
func (a *Admin) apiMigrate(c *gin.Context) {
	run, err := a.startMigration(c.Request.Context(), web.CurrentUser(c).Email, nil)
	status := http.StatusAccepted
	switch {
	case errors.Is(err, errRunUnderWay):
		status = http.StatusConflict
	case err != nil:
		a.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	c.JSON(status, gin.H{"run": newRunJSON(run)})
}

// apiRun answers GET /api/v1/admin/migrations/{id}: the run and each
// tenant's outcome.
func (a *Admin) apiRun(c *gin.Context) {
	run, ok := a.migrationRun(c)
	if !ok {
		return
	}
	results, err := a.store.MigrationResults(c.Request.Context(), run.ID, 0, false)
	if err != nil {
		a.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	type resultJSON struct {
		Email      string `json:"email"`
		From       string `json:"from"`
		To         string `json:"to"`
		DurationMS int64  `json:"duration_ms"`
		Error      string `json:"error,omitempty"`
	}
	out := make([]resultJSON, len(results))
	for i, r := range results {
		out[i] = resultJSON{From: r.FromVersion, To: r.ToVersion, DurationMS: r.DurationMS, Error: r.Error}
		if r.VectorDatabase != nil && r.VectorDatabase.User != nil {
			out[i].Email = r.VectorDatabase.User.Email
		}
	}
	c.JSON(http.StatusOK, gin.H{"run": newRunJSON(run), "results": out})
}
