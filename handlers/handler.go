// Package handlers serves silo over HTTP: gin handlers, one file per area,
// on what packages web and handlers/access share, and the Router that
// serves them all, those of package handlers/chat (a document's page and
// the conversations, see chat.Handler.Routes) and handlers/admin (the
// /admin routes) too.
//
// Routes, the UI action behind each, and the template it renders:
//
//	GET  /                        documents page            documents.html (document_list.html, or workspace.html while setting up)
//	GET  /workspace               poll while setting up     workspace.html, or HX-Refresh once ready
//	POST /documents               upload PDFs (htmx)        document_list.html, refusals on top
//	GET  /documents/list          poll while ingesting      document_list.html
//	GET  /documents/:id, …/chat, …/messages/…, /ask, /ask/…   a document's page, the conversations (handlers/chat)
//	GET  /documents/:id/pages/:n  a page's image (chat page)  PNG, drawn by the PDF reader child, cached
//	GET  /documents/:id/pages/:n/boxes?text=  where a source's snippet lies on the page  {boxes: [{x, y, w, h}]}, from the PDF reader child
//	POST /documents/:id/title     rename it                 redirect to its page, which says so
//	GET  /documents/:id/file      its original PDF          a download named as it was uploaded
//	GET  /documents/:id/delete    what deleting it deletes  delete.html, asking to confirm
//	POST /documents/:id/delete    delete it                 redirect to /, which says so
//	POST /documents/:id/retry     retry a failed one        document_list.html (htmx) or redirect
//	GET  /login                   sign-in choices           login.html
//	GET  /auth/google             start Google sign-in      redirect to Google
//	GET  /auth/google/callback    finish Google sign-in     redirect to / (or login.html with the reason)
//	POST /auth/dev                email-only sign-in        redirect to / (or login.html with the reason)
//	POST /logout                  sign out                  redirect to /login
//	GET  /settings                API tokens, delete        settings.html
//	POST /settings/tokens         make an API token         settings.html, showing it once
//	POST /settings/tokens/:id/revoke  revoke a token        redirect to /settings
//	POST /account/delete          delete the account        redirect to /login (settings.html if not confirmed)
//	GET  /admin                   tenant dashboard          admin.html
//	POST /admin/migrations        migrate all tenants       redirect to the run
//	GET  /admin/migrations/:id    one run, live             admin_run.html (admin_run_progress.html, admin_result_row.html)
//	GET  /admin/migrations/:id/events  the run's SSE stream  admin_result_row.html, admin_run_progress.html
//	POST /admin/migrations/:id/retry   retry the failures   redirect to the new run
//	GET  /api/v1/documents        the documents, as JSON    -
//	POST /api/v1/documents        upload one PDF            202 {id, status}
//	GET, DELETE /api/v1/documents/:id, PATCH {title} to rename it; GET …/:id/file its PDF
//	POST /api/v1/documents/:id/search  hybrid search       {results: [{document_id, title, text, page, page_end, score}]}
//	POST /api/v1/search                the same across documents (all ready ones, or those named)
//	POST /api/v1/chat, POST /api/v1/documents/:id/chat  chat across documents, with a document (handlers/chat)
//	GET  /api/v1/documents/:id/pages/:n, …/pages/:n/boxes?text=  a page's image; where a snippet lies on it (as the pages above)
//	DELETE /api/v1/account        delete the account        204
//	GET  /api/v1/admin/tenants, POST /api/v1/admin/tenants/migrate, GET /api/v1/admin/migrations/:id
//	GET  /healthz                 control plane answers?    -
//	GET  /static/*                htmx, the SSE extension, the stylesheet
package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"silo/config"
	"silo/handlers/access"
	"silo/handlers/admin"
	"silo/handlers/chat"
	"silo/ingest"
	"silo/models"
	"silo/pdf"
	"silo/pipeline"
	"silo/search"
	"silo/static"
	"silo/tenant"
	"silo/views"
	"silo/web"
)

// maxBodyBytes bounds every request body (uploads get their own limit).
const maxBodyBytes = 1 << 20

// Handler holds what the handlers need; its methods are the handlers.
type Handler struct {
	*access.Access
	admin    *admin.Admin
	cfg      *config.Config
	store    *models.Store
	tenants  *tenant.Manager
	readers  *pdf.Pool
	ingester *ingest.Ingester
	searcher *search.Searcher
	chats    *chat.Handler
	log      *slog.Logger
	google   *oauth2.Config
	// httpClient talks to Google; its timeout bounds a sign-in.
	httpClient *http.Client
}

// New returns the handlers for one server. Close stops what it started.
func New(cfg *config.Config, store *models.Store, tenants *tenant.Manager, parts pipeline.Parts, tmpl *views.Templates, log *slog.Logger) *Handler {
	base := web.New(cfg, store, tmpl, log)
	docs := access.New(base, store, tenants)
	h := &Handler{
		Access:     docs,
		admin:      admin.New(base, store, tenants, log),
		chats:      chat.New(docs, store, parts.Chat, tmpl, cfg.ChatTimeout, log),
		cfg:        cfg,
		store:      store,
		tenants:    tenants,
		readers:    parts.Readers,
		ingester:   parts.Ingester,
		searcher:   parts.Searcher,
		log:        log,
		httpClient: &http.Client{Timeout: 15 * time.Second},
	}
	if cfg.GoogleEnabled() {
		h.google = &oauth2.Config{
			ClientID:     cfg.GoogleClientID,
			ClientSecret: cfg.GoogleClientSecret,
			RedirectURL:  cfg.BaseURL + "/auth/google/callback",
			Scopes:       []string{"openid", "email", "profile"},
			Endpoint: oauth2.Endpoint{
				AuthURL:   cfg.GoogleAuthURL,
				TokenURL:  cfg.GoogleTokenURL,
				AuthStyle: oauth2.AuthStyleInParams,
			},
		}
	}
	return h
}

// Close stops the session clean-up, the answers being written and any
// migration run, and waits for them. A run stopped half-way is finished by
// the next one; an answer stopped so ends as failed.
func (h *Handler) Close() {
	h.chats.Close()
	h.admin.Close()
	h.Base.Close()
}

// Router returns the whole HTTP surface. Pages run inside the session
// middleware; the API, health check and static files do not touch sessions.
func (h *Handler) Router() http.Handler {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	_ = r.SetTrustedProxies(nil) // ClientIP is the peer; silo reads no forwarding header
	r.Use(h.LogRequests, h.RecoverPanic, web.SecurityHeaders(h.cfg.HTTPS()))
	r.NoRoute(h.NotFound)
	r.NoMethod(h.MethodNotAllowed)

	r.GET("/healthz", h.healthz)
	r.StaticFS("/static", http.FS(static.FS))

	api := r.Group("/api/v1", h.RequireToken)
	api.POST("/documents", web.LimitBody(h.uploadLimit(1)), h.apiUpload)
	api = api.Group("", web.LimitBody(maxBodyBytes))
	api.GET("/documents", h.apiDocuments)
	api.GET("/documents/:id", h.apiDocument)
	api.DELETE("/documents/:id", h.apiDeleteDocument)
	api.PATCH("/documents/:id", h.apiRenameDocument)
	api.GET("/documents/:id/file", h.downloadDocument)
	api.POST("/documents/:id/search", h.apiSearch)
	api.POST("/search", h.apiWorkspaceSearch)
	api.GET("/documents/:id/pages/:n", h.pageImage)
	api.GET("/documents/:id/pages/:n/boxes", h.pageBoxes)
	api.DELETE("/account", h.apiDeleteAccount)

	// Uploads get a body limit of their own; everything else 1 MiB, set
	// before the CSRF check reads a form.
	r.POST("/documents", web.LimitBody(h.uploadLimit(maxFilesPerUpload)), h.LoadUser, h.CheckCSRF, h.RequireUser, h.upload)
	pages := r.Group("/", web.LimitBody(maxBodyBytes), h.LoadUser, h.CheckCSRF)
	pages.GET("/login", h.loginPage)
	pages.POST("/logout", h.logout)
	if h.google != nil {
		pages.GET("/auth/google", h.googleStart)
		pages.GET("/auth/google/callback", h.googleCallback)
	}
	if h.cfg.DevLoginEnabled() {
		pages.POST("/auth/dev", h.devLogin)
	}

	signedIn := pages.Group("/", h.RequireUser)
	signedIn.GET("/", h.documentsPage)
	signedIn.GET("/workspace", h.workspaceStatus)
	signedIn.GET("/documents/list", h.documentList)
	signedIn.GET("/documents/:id/pages/:n", h.pageImage)
	signedIn.GET("/documents/:id/pages/:n/boxes", h.pageBoxes)
	signedIn.POST("/documents/:id/title", h.renameDocument)
	signedIn.GET("/documents/:id/file", h.downloadDocument)
	signedIn.GET("/documents/:id/delete", h.confirmDelete)
	signedIn.POST("/documents/:id/delete", h.deleteDocument)
	signedIn.POST("/documents/:id/retry", h.retryDocument)
	signedIn.GET("/settings", h.settingsPage)
	signedIn.POST("/settings/tokens", h.createToken)
	signedIn.POST("/settings/tokens/:id/revoke", h.revokeToken)
	signedIn.POST("/account/delete", h.deleteAccount)

	h.chats.Routes(signedIn, api)
	h.admin.Routes(signedIn, api)

	withSessions := h.Sessions.LoadAndSave(r)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if web.Sessionless(req.URL.Path) {
			r.ServeHTTP(w, req)
			return
		}
		withSessions.ServeHTTP(w, req)
	})
}

// healthz answers 200 when the control plane answers, 503 otherwise.
func (h *Handler) healthz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := h.store.Ping(ctx); err != nil {
		h.log.Warn("health check: control plane does not answer", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}
