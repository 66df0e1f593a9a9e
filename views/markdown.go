package views

import (
	"bytes"
	"html/template"
	"regexp"
	"sync"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/util"
)

// md renders answers: CommonMark with tables and strikethrough. HTML in the
// source shows as text (see escapeHTML) and links to javascript: and the
// like lose their target (goldmark's safe default), so an answer can never
// inject markup. It is built on first use, not at start: every reader
// child (silo extract) runs the package initialisers and never renders.
var md = sync.OnceValue(func() goldmark.Markdown {
	return goldmark.New(
		goldmark.WithExtensions(extension.Table, extension.Strikethrough),
		goldmark.WithRendererOptions(renderer.WithNodeRenderers(util.Prioritized(escapeHTML{}, 100))),
	)
})

// escapeHTML renders raw HTML, inline or as a block, as escaped text: a
// model that writes <b> means the reader to see it, and silo must never
// pass it on as markup.
type escapeHTML struct{}

// RegisterFuncs implements renderer.NodeRenderer.
func (escapeHTML) RegisterFuncs(r renderer.NodeRendererFuncRegisterer) {
	r.Register(ast.KindRawHTML, func(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			segs := n.(*ast.RawHTML).Segments
			for i := range segs.Len() {
				seg := segs.At(i)
				template.HTMLEscape(w, seg.Value(src))
			}
		}
		return ast.WalkSkipChildren, nil
	})
	r.Register(ast.KindHTMLBlock, func(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		b := n.(*ast.HTMLBlock)
		_, _ = w.WriteString("<p>")
		lines := b.Lines()
		for i := range lines.Len() {
			line := lines.At(i)
			template.HTMLEscape(w, line.Value(src))
		}
		if b.HasClosure() {
			template.HTMLEscape(w, b.ClosureLine.Value(src))
		}
		_, _ = w.WriteString("</p>\n")
		return ast.WalkSkipChildren, nil
	})
}

// pageCite matches a page citation in an answer: [p. 12], [p. 12–13],
// [pp. 3-4].
var pageCite = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\[pp?\.\s?(\d{1,5})(?:\s?[–-]\s?(\d{1,5}))?\]`)
})

// titledCite matches a citation of a page of a named document in an
// answer from several: [Title, p. 12], [Title, pp. 3–4].
var titledCite = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\[([^\[\]\n]{1,300}), pp?\.\s?(\d{1,5})(?:\s?[–-]\s?\d{1,5})?\]`)
})

// Markdown renders an answer's markdown as safe HTML, each page citation a
// link to that page of the document (#page-N). documents, for an answer
// from several documents, maps each title to its document's address: a
// citation [Title, p. N] of one of them links to that page there.
func Markdown(s string, documents map[string]string) template.HTML {
	src := s
	if documents != nil {
		src = titledCite().ReplaceAllStringFunc(src, func(cite string) string {
			m := titledCite().FindStringSubmatch(cite)
			if at, ok := documents[m[1]]; ok {
				return "[" + cite + "](" + at + "#page-" + m[2] + ")"
			}
			return cite
		})
	}
	src = pageCite().ReplaceAllString(src, "[$0](#page-$1)")
	var buf bytes.Buffer
	if err := md().Convert([]byte(src), &buf); err != nil {
		return template.HTML(template.HTMLEscapeString(s)) //nolint:gosec // escaped
	}
	return template.HTML(buf.String()) //nolint:gosec // goldmark escapes text; escapeHTML escapes raw HTML; unsafe links are dropped
}
