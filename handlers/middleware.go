package handlers

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"silo/models"
)

// Keys of values kept in the session and in gin's context.
const (
	sessionUserID = "user_id"
	sessionCSRF   = "csrf"
	ctxUser       = "user"
)

// logRequests writes one line per request: method, path (never the query,
// which can carry OAuth codes), status, duration and the user.
func (h *Handler) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	user := "-"
	if u := currentUser(c); u != nil {
		user = u.PublicID
	}
	h.log.Info("request",
		"method", c.Request.Method,
		"path", c.Request.URL.Path,
		"status", c.Writer.Status(),
		"duration", time.Since(start).Round(time.Microsecond),
		"bytes", c.Writer.Size(),
		"user", user,
	)
}

// recoverPanic logs a panic with its stack and shows the 500 page.
func (h *Handler) recoverPanic(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler { //nolint:errorlint // compared as net/http does
			panic(v)
		}
		h.log.Error("panic", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if c.Writer.Written() {
			c.Abort()
			return
		}
		h.fail(c, http.StatusInternalServerError, "", nil)
	}()
	c.Next()
}

// securityHeaders sets the headers every response carries: a content
// security policy that allows only silo itself (and Google's avatar
// pictures), no sniffing, no framing, no referrer to other sites.
func securityHeaders(https bool) gin.HandlerFunc {
	const csp = "default-src 'self'; img-src 'self' data: https://*.googleusercontent.com; " +
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	return func(c *gin.Context) {
		hd := c.Writer.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if https {
			hd.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		c.Next()
	}
}

// limitBody caps how much of a request body is read.
func limitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		c.Next()
	}
}

// loadUser puts the signed-in user, if any, in the context. A session whose
// user no longer exists is destroyed.
func (h *Handler) loadUser(c *gin.Context) {
	id := h.sessions.GetInt64(c, sessionUserID)
	if id == 0 {
		c.Next()
		return
	}
	u, err := h.store.User(c.Request.Context(), id)
	switch {
	case errors.Is(err, models.ErrNotFound):
		if err := h.sessions.Destroy(c); err != nil {
			h.fail(c, http.StatusInternalServerError, "", err)
			return
		}
	case err != nil:
		h.fail(c, http.StatusInternalServerError, "", err)
		return
	default:
		c.Set(ctxUser, u)
	}
	c.Next()
}

// requireUser sends people who are not signed in to the sign-in page.
func (h *Handler) requireUser(c *gin.Context) {
	if currentUser(c) == nil {
		c.Abort()
		redirect(c, "/login")
		return
	}
	c.Next()
}

// currentUser is the signed-in user (pages) or the token's owner (API).
func currentUser(c *gin.Context) *models.User {
	u, _ := c.Value(ctxUser).(*models.User)
	return u
}

// csrfToken returns the session's CSRF token, making one if needed.
func (h *Handler) csrfToken(c *gin.Context) string {
	if t := h.sessions.GetString(c, sessionCSRF); t != "" {
		return t
	}
	return h.newCSRFToken(c)
}

// newCSRFToken gives the session a fresh CSRF token (at sign-in, so a token
// seen before signing in is worthless after).
func (h *Handler) newCSRFToken(c *gin.Context) string {
	t := randomString()
	h.sessions.Put(c, sessionCSRF, t)
	return t
}

// checkCSRF refuses a state-changing request whose token (form field
// csrf_token, or the X-CSRF-Token header htmx sends) is not the session's.
func (h *Handler) checkCSRF(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		c.Next()
		return
	}
	want := h.sessions.GetString(c, sessionCSRF)
	got := c.GetHeader("X-CSRF-Token")
	if got == "" {
		if err := c.Request.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				h.fail(c, http.StatusRequestEntityTooLarge, "That request is too large.", nil)
				return
			}
			h.fail(c, http.StatusBadRequest, "That request could not be read.", err)
			return
		}
		got = c.Request.PostForm.Get("csrf_token")
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		h.fail(c, http.StatusForbidden, "This form has expired or did not come from silo. Reload the page and try again.",
			fmt.Errorf("csrf token mismatch (sent: %t)", got != ""))
		return
	}
	c.Next()
}

// requireToken authenticates API requests by their bearer token.
func (h *Handler) requireToken(c *gin.Context) {
	scheme, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		c.Header("WWW-Authenticate", `Bearer realm="silo"`)
		h.fail(c, http.StatusUnauthorized, "missing API token: send Authorization: Bearer <token>", nil)
		return
	}
	u, err := h.store.UserByAPIToken(c.Request.Context(), strings.TrimSpace(token))
	if errors.Is(err, models.ErrNotFound) {
		c.Header("WWW-Authenticate", `Bearer realm="silo", error="invalid_token"`)
		h.fail(c, http.StatusUnauthorized, "invalid API token", nil)
		return
	}
	if err != nil {
		h.fail(c, http.StatusInternalServerError, "", err)
		return
	}
	c.Set(ctxUser, u)
	c.Next()
}
