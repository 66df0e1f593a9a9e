package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// SSE writes server-sent events to one client and flushes each.
type SSE struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// StartSSE sends the event-stream headers and lifts the server's write
// timeout for this response: a stream lasts as long as it needs to.
func StartSSE(c *gin.Context) *SSE {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Writer.WriteHeader(http.StatusOK)
	c.Writer.WriteHeaderNow()
	// gin's writer may sit on the session middleware's writer, which cannot
	// flush; the response controller finds the connection beneath both.
	var w http.ResponseWriter = c.Writer
	if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
		w = u.Unwrap()
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	// Send the headers now, so the client (and any proxy) sees the stream
	// open before the first event, which may be long coming.
	_ = rc.Flush()
	return &SSE{w: c.Writer, rc: rc}
}

// Send writes one event; data may span lines.
func (s *SSE) Send(event, data string) error {
	var b strings.Builder
	if event != "" {
		fmt.Fprintf(&b, "event: %s\n", event)
	}
	// A lone CR also ends an SSE line: as a line of its own it would lose
	// its "data:" and what follows it.
	data = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(data)
	for _, line := range strings.Split(data, "\n") {
		fmt.Fprintf(&b, "data: %s\n", line)
	}
	b.WriteString("\n")
	if _, err := s.w.Write([]byte(b.String())); err != nil {
		return err
	}
	return s.rc.Flush()
}
