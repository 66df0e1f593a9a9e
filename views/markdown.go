package views

import (
	"bytes"
	"html/template"
	"regexp"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// md renders answers: CommonMark with tables and strikethrough. Raw HTML in
// the source is dropped and links to javascript: and the like lose their
// target (goldmark's safe default), so an answer can never inject markup.
var md = goldmark.New(goldmark.WithExtensions(extension.Table, extension.Strikethrough))

// pageCite matches a page citation in an answer: [p. 12], [p. 12–13],
// [pp. 3-4].
var pageCite = regexp.MustCompile(`\[pp?\.\s?(\d{1,5})(?:\s?[–-]\s?(\d{1,5}))?\]`)

// Markdown renders an answer's markdown as safe HTML, each page citation a
// link to that page of the document (#page-N).
func Markdown(s string) template.HTML {
	src := pageCite.ReplaceAllString(s, "[$0](#page-$1)")
	var buf bytes.Buffer
	if err := md.Convert([]byte(src), &buf); err != nil {
		return template.HTML(template.HTMLEscapeString(s)) //nolint:gosec // escaped
	}
	return template.HTML(buf.String()) //nolint:gosec // goldmark without WithUnsafe escapes raw HTML and unsafe links
}
