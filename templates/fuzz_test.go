package templates

import (
	"strings"
	"testing"
)

// allowedTags are the only markup the lesson Markdown may produce; every
// "<" in its output must begin one of them.
var allowedTags = []string{
	"<p>", "</p>", "<ul>", "</ul>", "<ol>", "</ol>", "<li>", "</li>", "<pre>", "</pre>",
	"<code>", `<button type="button" class="cmd" data-cmd="`, "</button>", "</code>", "<strong>", "</strong>", "<em>", "</em>",
	`<a href="http://`, `<a href="https://`, "</a>",
}

// FuzzMarkdown: whatever a lesson file holds, the rendered HTML has only
// the allowed tags, and no attribute value that breaks out of its quotes.
func FuzzMarkdown(f *testing.F) {
	for _, s := range []string{
		"One\nparagraph.\n\nTwo.", "Type `USER guest`, then `x < y`.",
		"**bold** and *em* and [RFC](https://www.rfc-editor.org/rfc/rfc1939)",
		"- a\n- b\n  more\n\n1. c\n2. d", "```\n<b>\n```",
		`<script>alert(1)</script> [x](javascript:alert(1)) "q"`,
		"[a](https://x\" onmouseover=\"alert(1))", "`USER \"><img src=x>`",
		"**[*x*](https://e.org/*)**", "<!-- -->\n```\n```\n```",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		out := markdown(src)
		for i := strings.IndexByte(out, '<'); i >= 0; {
			rest := out[i:]
			ok := false
			for _, tag := range allowedTags {
				if strings.HasPrefix(rest, tag) {
					ok = true
					if strings.HasSuffix(tag, `"`) || strings.HasSuffix(tag, "//") {
						// The attribute value runs to the next quote and
						// holds no markup.
						v := rest[len(tag):]
						end := strings.IndexByte(v, '"')
						if end < 0 || strings.ContainsAny(v[:end], "<>") {
							t.Fatalf("markdown(%q) = %q: an attribute value breaks out", src, out)
						}
					}
					break
				}
			}
			if !ok {
				t.Fatalf("markdown(%q) = %q: unexpected markup at %q", src, out, rest[:min(len(rest), 20)])
			}
			j := strings.IndexByte(rest[1:], '<')
			if j < 0 {
				break
			}
			i += 1 + j
		}
	})
}
