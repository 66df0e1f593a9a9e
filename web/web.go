// Package web is what every page and API handler of silo shares: sessions
// and the signed-in user, CSRF tokens, bearer tokens, the page frame and
// error pages (HTML, or JSON under /api), security headers, request logging
// and panics, and server-sent events. Package handlers and the area
// packages under it (handlers/admin) build on a Base.
package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"silo/config"
	"silo/models"
	"silo/views"
)

// sessionCleanup is how often expired sessions are deleted.
const sessionCleanup = 10 * time.Minute

// Base holds what the handlers share. Its methods are middleware and the
// helpers that answer a request.
type Base struct {
	// Sessions are scs sessions stored in the control plane.
	Sessions *scs.SessionManager

	cfg   *config.Config
	store *models.Store
	views *views.Templates
	log   *slog.Logger
	// stop ends the session clean-up goroutine, which closes done.
	stop, done chan struct{}
}

// New returns the Base of one server; it deletes expired sessions in the
// background until Close.
func New(cfg *config.Config, store *models.Store, tmpl *views.Templates, log *slog.Logger) *Base {
	b := &Base{cfg: cfg, store: store, views: tmpl, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	sm := scs.New()
	sm.Store = store.SessionStore()
	sm.Lifetime = 30 * 24 * time.Hour
	sm.IdleTimeout = 7 * 24 * time.Hour
	sm.Cookie.Name = "silo_session"
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Secure = cfg.HTTPS()
	sm.Cookie.Persist = true
	sm.ErrorFunc = b.sessionError
	b.Sessions = sm
	go b.deleteExpiredSessions()
	return b
}

// Close stops the session clean-up and waits for it.
func (b *Base) Close() {
	close(b.stop)
	<-b.done
}

// deleteExpiredSessions deletes expired sessions every sessionCleanup until
// Close.
func (b *Base) deleteExpiredSessions() {
	defer close(b.done)
	tick := time.NewTicker(sessionCleanup)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := b.store.DeleteExpiredSessions(ctx); err != nil {
				b.log.Error("delete expired sessions", "err", err)
			}
			cancel()
		}
	}
}

// sessionError is scs's error handler: the session store failed.
func (b *Base) sessionError(w http.ResponseWriter, r *http.Request, err error) {
	b.log.Error("session store", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte("silo cannot reach its database right now. Please try again in a moment.\n"))
}

// Sessionless reports whether requests for path run without a session: the
// API (bearer tokens), the health check and static files.
func Sessionless(path string) bool {
	return path == "/healthz" || strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/static/")
}

// RandomToken is 256 random bits, URL-safe.
func RandomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
