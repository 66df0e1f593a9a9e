// Package static holds the files served under /static, embedded in the
// binary: htmx and its SSE extension (vendored from npm at the versions in
// their names) and silo's stylesheet.
package static

import "embed"

// FS is every static file.
//
//go:embed *.js *.css
var FS embed.FS
