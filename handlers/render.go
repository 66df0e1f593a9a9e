package handlers

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"silo/models"
)

// base is what every page shows: its title, the signed-in user and the CSRF
// token its forms carry.
type base struct {
	Title string
	User  *models.User
	CSRF  string
}

// page returns the base of a page for this request. A sessionless request
// (an error page for a static file, say) has no user and no forms.
func (h *Handler) page(c *gin.Context, title string) base {
	if sessionless(c.Request.URL.Path) {
		return base{Title: title}
	}
	return base{Title: title, User: currentUser(c), CSRF: h.csrfToken(c)}
}

// render writes a page or fragment with a status. A template error becomes
// the 500 page, never half a page.
func (h *Handler) render(c *gin.Context, status int, name string, data any) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	var buf strings.Builder
	if err := h.views.Render(&buf, name, data); err != nil {
		h.log.Error("render", "template", name, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		if err := h.views.Render(&buf, "error.html", h.errorPage(c, status, "")); err != nil {
			c.String(status, "Internal Server Error")
			return
		}
	}
	c.String(status, buf.String())
}

// errorPageData is what error.html shows.
type errorPageData struct {
	base
	Status    int
	Heading   string
	Message   string
	Back      string
	BackLabel string
}

func (h *Handler) errorPage(c *gin.Context, status int, message string) errorPageData {
	d := errorPageData{base: h.page(c, http.StatusText(status)), Status: status, Back: "/", BackLabel: "Back to your documents"}
	switch status {
	case http.StatusNotFound:
		d.Heading = "We couldn't find that page"
		d.Message = "The link may be old, or the page may have been removed."
	case http.StatusForbidden:
		d.Heading = "You can't do that here"
	case http.StatusInternalServerError:
		d.Heading = "Something went wrong on our side"
		d.Message = "It has been logged. Please try again in a moment."
	default:
		d.Heading = http.StatusText(status)
	}
	if message != "" {
		d.Message = message
	}
	if d.User == nil {
		d.Back, d.BackLabel = "/login", "Go to sign-in"
	}
	return d
}

// fail is the one way a handler gives up: it logs err (if any) with the
// request and answers with message, as JSON under /api, as the error page
// otherwise. message is what a person reads; err stays in the log.
func (h *Handler) fail(c *gin.Context, status int, message string, err error) {
	if err != nil {
		level := h.log.Warn
		if status >= 500 {
			level = h.log.Error
		}
		level("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "status", status, "err", err)
	}
	c.Abort()
	if strings.HasPrefix(c.Request.URL.Path, "/api/") {
		if message == "" {
			message = strings.ToLower(http.StatusText(status))
		}
		c.JSON(status, gin.H{"error": message})
		return
	}
	h.render(c, status, "error.html", h.errorPage(c, status, message))
}

func (h *Handler) notFound(c *gin.Context) { h.fail(c, http.StatusNotFound, "", nil) }

func (h *Handler) methodNotAllowed(c *gin.Context) {
	h.fail(c, http.StatusMethodNotAllowed, "This address does not take that kind of request.", nil)
}

// redirect sends the browser elsewhere after a form post; htmx requests get
// HX-Redirect so the whole page changes.
func redirect(c *gin.Context, to string) {
	if c.GetHeader("HX-Request") == "true" {
		c.Header("HX-Redirect", to)
		c.Status(http.StatusOK)
		return
	}
	c.Redirect(http.StatusSeeOther, to)
}

// sessionError is scs's error handler: the session store failed.
func (h *Handler) sessionError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Error("session store", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte("silo cannot reach its database right now. Please try again in a moment.\n"))
}
