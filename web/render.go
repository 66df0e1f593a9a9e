package web

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"silo/models"
)

// Frame is what every page shows around its content: its title, the
// signed-in user and the CSRF token its forms carry. Page data embeds it.
type Frame struct {
	Title string
	User  *models.User
	CSRF  string
	// Section is the nav's entry the page is under ("documents",
	// "settings", "admin"), marked aria-current.
	Section string
	// Notice is what the last action says once done ("Deleted …"),
	// shown on the next page (Notify).
	Notice string
}

// Frame returns the frame of a page for this request. A sessionless request
// (an error page for a static file, say) has no user and no forms.
func (b *Base) Frame(c *gin.Context, title string) Frame {
	if Sessionless(c.Request.URL.Path) {
		return Frame{Title: title}
	}
	return Frame{
		Title: title, User: CurrentUser(c), CSRF: b.CSRFToken(c), Section: section(c.Request.URL.Path),
		Notice: b.Sessions.PopString(c, sessionNotice),
	}
}

// Notify keeps a message for the next page the person sees, once: what
// an action did, before its redirect.
func (b *Base) Notify(c *gin.Context, msg string) {
	b.Sessions.Put(c, sessionNotice, msg)
}

// Render writes a page or fragment with a status. A template error becomes
// the 500 page, never half a page.
func (b *Base) Render(c *gin.Context, status int, name string, data any) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	var buf strings.Builder
	if err := b.views.Render(&buf, name, data); err != nil {
		b.log.Error("render", "template", name, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		if err := b.views.Render(&buf, "error.html", b.errorPage(c, status, "")); err != nil {
			c.String(status, "Internal Server Error")
			return
		}
	}
	c.String(status, buf.String())
}

// errorPageData is what error.html shows.
type errorPageData struct {
	Frame
	Status    int
	Heading   string
	Message   string
	Back      string
	BackLabel string
}

func (b *Base) errorPage(c *gin.Context, status int, message string) errorPageData {
	d := errorPageData{Frame: b.Frame(c, http.StatusText(status)), Status: status, Back: "/", BackLabel: "Back to your documents"}
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

// Fail is the one way a handler gives up: it logs err (if any) with the
// request and answers with message, as JSON under /api, as the error page
// otherwise. message is what a person reads; err stays in the log.
func (b *Base) Fail(c *gin.Context, status int, message string, err error) {
	if err != nil {
		level := b.log.Warn
		if status >= 500 {
			level = b.log.Error
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
	b.Render(c, status, "error.html", b.errorPage(c, status, message))
}

// NotFound answers 404.
func (b *Base) NotFound(c *gin.Context) { b.Fail(c, http.StatusNotFound, "", nil) }

// MethodNotAllowed answers 405.
func (b *Base) MethodNotAllowed(c *gin.Context) {
	b.Fail(c, http.StatusMethodNotAllowed, "This address does not take that kind of request.", nil)
}

// Redirect sends the browser elsewhere after a form post; htmx requests get
// HX-Redirect so the whole page changes.
func Redirect(c *gin.Context, to string) {
	if c.GetHeader("HX-Request") == "true" {
		c.Header("HX-Redirect", to)
		c.Status(http.StatusOK)
		return
	}
	c.Redirect(http.StatusSeeOther, to)
}

// Fragment renders a template and sends it as one server-sent event.
func (b *Base) Fragment(s *SSE, event, name string, data any) error {
	var buf strings.Builder
	if err := b.views.Render(&buf, name, data); err != nil {
		b.log.Error("render event", "template", name, "err", err)
		return err
	}
	return s.Send(event, buf.String())
}

// section is the nav's entry a page's path is under.
func section(path string) string {
	switch {
	case path == "/settings" || strings.HasPrefix(path, "/settings/"):
		return "settings"
	case path == "/admin" || strings.HasPrefix(path, "/admin/"):
		return "admin"
	case path == "/" || path == "/ask" || strings.HasPrefix(path, "/documents/"):
		return "documents"
	}
	return ""
}
