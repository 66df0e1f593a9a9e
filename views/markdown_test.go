package views

import (
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
		notWant  []string
	}{
		{"emphasis and lists", "**Bold** and *it*\n\n- one\n- two", []string{"<strong>Bold</strong>", "<em>it</em>", "<li>one</li>"}, nil},
		{"page citation", "It rose in 1973 [p. 4].", []string{`<a href="#page-4">[p. 4]</a>`}, nil},
		{"page span", "See [pp. 3–5].", []string{`<a href="#page-3">[pp. 3–5]</a>`}, nil},
		{"raw html dropped", "hi <script>alert(1)</script> <img src=x onerror=alert(1)>", nil, []string{"<script", "<img", "onerror"}},
		{"javascript link", "[click](javascript:alert(1))", nil, []string{"javascript:"}},
		{"html in code is escaped", "`<b>x</b>`", []string{"<code>&lt;b&gt;x&lt;/b&gt;</code>"}, nil},
		{"attribute injection via citation", `[p. 4" onmouseover="x]`, nil, []string{"onmouseover=\""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := string(Markdown(tc.in))
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
