// Package views holds silo's html/template pages and htmx fragments,
// embedded in the binary and parsed once at start.
//
// A page template is named after its file and includes "header.html" and
// "footer.html" itself; a fragment is the very template its page includes,
// so a partial render and a full render cannot drift apart.
package views

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"strings"
)

//go:embed *.html
var files embed.FS

// Templates is the parsed set of every page and fragment.
type Templates struct{ set *template.Template }

// Parse parses every embedded template; an error means the binary is broken
// and silo must not start.
func Parse() (*Templates, error) {
	set, err := template.New("").Funcs(template.FuncMap{
		"initial": initial,
		"bytes":   formatBytes,
		"add":     func(a, b int) int { return a + b },
		"pages":   pageNumbers,
		"oneline": oneLine,
	}).ParseFS(files, "*.html")
	if err != nil {
		return nil, fmt.Errorf("views: %w", err)
	}
	return &Templates{set: set}, nil
}

// Render executes the template called name into a buffer first, so a
// template error never sends half a page, then writes it to w.
func (t *Templates) Render(w io.Writer, name string, data any) error {
	var buf bytes.Buffer
	if err := t.set.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("views: render %s: %w", name, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// oneLine is an error message on one line for a table cell: escaped
// newlines ("\\n", as a driver's message may carry them) and real ones
// become spaces, runs of white space one, and a message of over 300
// characters is cut with "…".
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, `\n`, " ")), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:299]) + "…"
	}
	return s
}

// initial is the first letter of a name, for an avatar without a picture.
func initial(s string) string {
	for _, r := range s {
		return string(r)
	}
	return "?"
}

// formatBytes writes a size for people: 7.9 MB.
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// pageNumbers is 1…n, for ranging over a document's pages.
func pageNumbers(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}
