package web

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"silo/models"
)

// Keys of values kept in the session and in gin's context.
const (
	SessionUserID = "user_id" // the signed-in user's id
	sessionCSRF   = "csrf"
	sessionNotice = "notice" // a message for the next page (Notify)
	ctxUser       = "user"
)

// LogRequests writes one line per request: method, path (never the query,
// which can carry OAuth codes), status, duration and the user.
func (b *Base) LogRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	user := "-"
	if u := CurrentUser(c); u != nil {
		user = u.PublicID
	}
	b.log.Info("request",
		"method", c.Request.Method,
		"path", c.Request.URL.Path,
		"status", c.Writer.Status(),
		"duration", time.Since(start).Round(time.Microsecond),
		"bytes", c.Writer.Size(),
		"user", user,
	)
}

// RecoverPanic logs a panic with its stack and shows the 500 page.
func (b *Base) RecoverPanic(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler { //nolint:errorlint // compared as net/http does
			panic(v)
		}
		b.log.Error("panic", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if c.Writer.Written() {
			c.Abort()
			return
		}
		b.Fail(c, http.StatusInternalServerError, "", nil)
	}()
	c.Next()
}

// SecurityHeaders sets the headers every response carries: a content
// security policy that allows only silo itself (and Google's avatar
// pictures), no sniffing, no framing, no referrer to other sites.
func SecurityHeaders(https bool) gin.HandlerFunc {
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

// LimitBody caps how much of a request body is read; a body whose
// Content-Length says it is larger is refused at the first read, before
// any of it is received.
func LimitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > n {
			// Refused at the first read, and the connection closed after
			// the answer, so the rest of the body is never received.
			c.Request.Body = refusedBody{c.Request.Body, n}
			c.Header("Connection", "close")
		} else {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		}
		c.Next()
	}
}

// refusedBody is a request body over the limit: reading it fails at once.
type refusedBody struct {
	io.ReadCloser
	limit int64
}

func (b refusedBody) Read([]byte) (int, error) { return 0, &http.MaxBytesError{Limit: b.limit} }

// LoadUser puts the signed-in user, if any, in the context. A session whose
// user no longer exists is destroyed.
func (b *Base) LoadUser(c *gin.Context) {
	id := b.Sessions.GetInt64(c, SessionUserID)
	if id == 0 {
		c.Next()
		return
	}
	u, err := b.store.User(c.Request.Context(), id)
	switch {
	case errors.Is(err, models.ErrNotFound):
		if err := b.Sessions.Destroy(c); err != nil {
			b.Fail(c, http.StatusInternalServerError, "", err)
			return
		}
	case err != nil:
		b.Fail(c, http.StatusInternalServerError, "", err)
		return
	default:
		c.Set(ctxUser, u)
	}
	c.Next()
}

// RequireUser sends people who are not signed in to the sign-in page.
func (b *Base) RequireUser(c *gin.Context) {
	if CurrentUser(c) == nil {
		c.Abort()
		Redirect(c, "/login")
		return
	}
	c.Next()
}

// CurrentUser is the signed-in user (pages) or the token's owner (API).
func CurrentUser(c *gin.Context) *models.User {
	u, _ := c.Value(ctxUser).(*models.User)
	return u
}

// CSRFToken returns the session's CSRF token, making one if needed.
func (b *Base) CSRFToken(c *gin.Context) string {
	if t := b.Sessions.GetString(c, sessionCSRF); t != "" {
		return t
	}
	return b.newCSRFToken(c)
}

// newCSRFToken gives the session a fresh CSRF token (at sign-in, so a token
// seen before signing in is worthless after).
func (b *Base) newCSRFToken(c *gin.Context) string {
	t := RandomToken()
	b.Sessions.Put(c, sessionCSRF, t)
	return t
}

// CheckCSRF refuses a state-changing request whose token (form field
// csrf_token, or the X-CSRF-Token header htmx sends) is not the session's.
func (b *Base) CheckCSRF(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		c.Next()
		return
	}
	want := b.Sessions.GetString(c, sessionCSRF)
	got := c.GetHeader("X-CSRF-Token")
	if got == "" {
		if err := c.Request.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				b.Fail(c, http.StatusRequestEntityTooLarge, "That request is too large.", nil)
				return
			}
			b.Fail(c, http.StatusBadRequest, "That request could not be read.", err)
			return
		}
		got = c.Request.PostForm.Get("csrf_token")
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		b.Fail(c, http.StatusForbidden, "This form has expired or did not come from silo. Reload the page and try again.",
			fmt.Errorf("csrf token mismatch (sent: %t)", got != ""))
		return
	}
	c.Next()
}

// RequireToken authenticates API requests by their bearer token.
func (b *Base) RequireToken(c *gin.Context) {
	scheme, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		c.Header("WWW-Authenticate", `Bearer realm="silo"`)
		b.Fail(c, http.StatusUnauthorized, "missing API token: send Authorization: Bearer <token>", nil)
		return
	}
	u, err := b.store.UserByAPIToken(c.Request.Context(), strings.TrimSpace(token))
	if errors.Is(err, models.ErrNotFound) {
		c.Header("WWW-Authenticate", `Bearer realm="silo", error="invalid_token"`)
		b.Fail(c, http.StatusUnauthorized, "invalid API token", nil)
		return
	}
	if err != nil {
		b.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	c.Set(ctxUser, u)
	c.Next()
}

// SignIn gives the request a fresh session of u's, with a new CSRF token,
// so that nothing seen before signing in is worth anything after.
func (b *Base) SignIn(c *gin.Context, u *models.User) error {
	if err := b.Sessions.RenewToken(c); err != nil {
		return err
	}
	b.Sessions.Put(c, SessionUserID, u.ID)
	c.Set(ctxUser, u)
	b.newCSRFToken(c)
	return nil
}

// RequireAdmin lets admins through; everyone else gets 403, on the server.
func (b *Base) RequireAdmin(c *gin.Context) {
	if u := CurrentUser(c); u == nil || !u.IsAdmin {
		b.Fail(c, http.StatusForbidden, "This page is for silo's admins.", nil)
		return
	}
	c.Next()
}
