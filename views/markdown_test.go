package views

import (
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	if got := string(Markdown("See [Jacksonville, p. 5].", nil)); strings.Contains(got, "<a") {
		t.Errorf("one document's answer: %q, want a titled citation left as text", got)
	}
	cases := []struct {
		name, in string
		want     []string
		notWant  []string
	}{
		{"emphasis and lists", "**Bold** and *it*\n\n- one\n- two", []string{"<strong>Bold</strong>", "<em>it</em>", "<li>one</li>"}, nil},
		{"page citation", "It rose in 1973 [p. 4].", []string{`<a href="#page-4">[p. 4]</a>`}, nil},
		{"page span", "See [pp. 3–5].", []string{`<a href="#page-3">[pp. 3–5]</a>`}, nil},
		{"inline html shown as text", "hi <script>alert(1)</script> <img src=x onerror=alert(1)>", []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;"}, []string{"<script", "<img"}},
		{"html block shown as text", "<div onclick=\"x()\">\nhello\n</div>\n\nafter", []string{"&lt;div onclick=&#34;x()&#34;&gt;", "<p>after</p>"}, []string{"<div"}},
		{"html comment", "a <!-- secret --> b", []string{"&lt;!-- secret --&gt;"}, []string{"<!--"}},
		{"javascript link", "[click](javascript:alert(1))", []string{"click"}, []string{"javascript:"}},
		{"html in code is escaped", "`<b>x</b>`", []string{"<code>&lt;b&gt;x&lt;/b&gt;</code>"}, nil},
		{"attribute injection via citation", `[p. 4" onmouseover="x]`, nil, []string{"onmouseover=\""}},
		{"titled citations", "In 1973 [1973 oil crisis, p. 2]; on a river [Jacksonville, pp. 5–6]; elsewhere [Unknown, p. 3].",
			[]string{`<a href="/documents/oil#page-2">[1973 oil crisis, p. 2]</a>`, `<a href="/documents/jax#page-5">[Jacksonville, pp. 5–6]</a>`, "[Unknown, p. 3]"}, []string{"#page-3"}},
		{"titled citation with a hostile title", `[x" onclick="y, p. 2]`, nil, []string{`onclick="`}},
	}
	documents := map[string]string{"1973 oil crisis": "/documents/oil", "Jacksonville": "/documents/jax", `x" onclick="y`: "/documents/x"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := string(Markdown(tc.in, documents))
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("Markdown(%q) = %q, want it to contain %q", tc.in, got, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("Markdown(%q) = %q, must not contain %q", tc.in, got, w)
				}
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"migrate: sql: \\nALTER TABLE x\\n  ADD y;\nexit status 1": "migrate: sql: ALTER TABLE x ADD y; exit status 1",
		"short":                  "short",
		strings.Repeat("é", 400): strings.Repeat("é", 299) + "…",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
