package templates

import "testing"

func TestMarkdown(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"One\nparagraph.\n\nTwo.", "<p>One paragraph.</p>\n<p>Two.</p>\n"},
		{"Type `USER guest`, then `x < y`.", `<p>Type <button type="button" class="cmd" data-cmd="USER guest" title="Put it on the terminal's input line"><code>USER guest</code></button>, then <code>x &lt; y</code>.</p>` + "\n"},
		{"**bold** and *em* and [RFC](https://www.rfc-editor.org/rfc/rfc1939)", `<p><strong>bold</strong> and <em>em</em> and <a href="https://www.rfc-editor.org/rfc/rfc1939" rel="noopener noreferrer" target="_blank">RFC</a></p>` + "\n"},
		{"- a\n- b\n  more\n\n1. c\n2. d", "<ul><li>a</li><li>b more</li></ul>\n<ol><li>c</li><li>d</li></ol>\n"},
		{"```\n<b>\n```", "<pre><code>&lt;b&gt;\n</code></pre>\n"},
		// Markup in the source stays text; only http(s) links become links.
		{`<script>alert(1)</script> [x](javascript:alert(1)) "q"`, "<p>&lt;script&gt;alert(1)&lt;/script&gt; [x](javascript:alert(1)) &#34;q&#34;</p>\n"},
		{"an `unmatched backtick", "<p>an `unmatched backtick</p>\n"},
		{"`rset` is not a command line; `RSET` is", `<p><code>rset</code> is not a command line; <button type="button" class="cmd" data-cmd="RSET" title="Put it on the terminal's input line"><code>RSET</code></button> is</p>` + "\n"},
	} {
		if got := markdown(tc.src); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}
