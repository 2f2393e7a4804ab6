package templates

import (
	"html"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/a-h/templ"

	"github.com/pop3playground/pop3playground/pop3"
)

// Markdown renders the small Markdown of lesson files: paragraphs, "- " and
// "1. " lists, ``` code blocks, `code`, **bold**, *emphasis* and
// [links](https://…). Everything else is text: the source is escaped first,
// so a lesson file cannot inject markup. A code span that is a POP3 command
// line becomes clickable (class cmd, data-cmd) for the page to type it.
//
// Lesson texts are few and fixed while the server runs, and every page
// load shows them all: each is rendered once and kept (at most
// maxRendered of them).
func Markdown(src string) templ.Component {
	if html, ok := rendered.Load(src); ok {
		return templ.Raw(html.(string))
	}
	html := markdown(src)
	if renderedCount.Add(1) <= maxRendered {
		rendered.Store(src, html)
	}
	return templ.Raw(html)
}

const maxRendered = 4096

var (
	rendered      sync.Map // source → HTML
	renderedCount atomic.Int64
)

func markdown(src string) string {
	var b strings.Builder
	var para []string
	list := "" // "ul" or "ol" while in a list
	flushPara := func() {
		if len(para) > 0 {
			b.WriteString("<p>" + inline(strings.Join(para, " ")) + "</p>\n")
			para = nil
		}
	}
	closeList := func() {
		if list != "" {
			b.WriteString("</li></" + list + ">\n")
			list = ""
		}
	}
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			flushPara()
			closeList()
			b.WriteString("<pre><code>")
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
				b.WriteString(html.EscapeString(lines[i]) + "\n")
			}
			b.WriteString("</code></pre>\n")
			continue
		}
		if trimmed == "" {
			flushPara()
			closeList()
			continue
		}
		kind, item := listItem(trimmed)
		switch {
		case kind != "":
			flushPara()
			if list != kind {
				closeList()
				b.WriteString("<" + kind + "><li>")
				list = kind
			} else {
				b.WriteString("</li><li>")
			}
			b.WriteString(inline(item))
		case list != "" && line != trimmed: // an item's continuation line
			b.WriteString(" " + inline(trimmed))
		default:
			closeList()
			para = append(para, trimmed)
		}
	}
	flushPara()
	closeList()
	return b.String()
}

var orderedItem = regexp.MustCompile(`^\d{1,3}\. `)

func listItem(line string) (kind, item string) {
	if strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "* ") {
		return "ul", line[2:]
	}
	if m := orderedItem.FindString(line); m != "" {
		return "ol", line[len(m):]
	}
	return "", ""
}

var (
	boldRe = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	emRe   = regexp.MustCompile(`\*([^*\s][^*]*)\*`)
	linkRe = regexp.MustCompile(`\[([^\]]+)\]\((https?://[^)\s]+)\)`)
)

// inline renders one paragraph's text: code spans verbatim, the rest with
// bold, emphasis and links.
func inline(s string) string {
	var b strings.Builder
	parts := strings.Split(s, "`")
	for i, p := range parts {
		switch {
		case i%2 == 1 && i < len(parts)-1:
			b.WriteString(codeSpan(p))
		case i%2 == 1: // an unmatched backtick
			b.WriteString("`" + text(p))
		default:
			b.WriteString(text(p))
		}
	}
	return b.String()
}

// text renders plain text with links, bold and emphasis. Bold and
// emphasis apply around and inside a link's text, never to its address (a
// "*" in a URL must stay a "*").
func text(s string) string {
	s = html.EscapeString(s)
	var b strings.Builder
	last := 0
	for _, m := range linkRe.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(emphasis(s[last:m[0]]))
		b.WriteString(`<a href="` + s[m[4]:m[5]] + `" rel="noopener noreferrer" target="_blank">` + emphasis(s[m[2]:m[3]]) + "</a>")
		last = m[1]
	}
	b.WriteString(emphasis(s[last:]))
	return b.String()
}

func emphasis(s string) string {
	s = boldRe.ReplaceAllString(s, "<strong>$1</strong>")
	return emRe.ReplaceAllString(s, "<em>$1</em>")
}

func codeSpan(s string) string {
	e := html.EscapeString(s)
	if isCommand(s) {
		// A button, so that a keyboard reaches it (Tab) and works it
		// (Enter, Space) as a mouse does.
		return `<button type="button" class="cmd" data-cmd="` + e + `" title="Put it on the terminal's input line"><code>` + e + `</code></button>`
	}
	return "<code>" + e + "</code>"
}

// isCommand reports whether s is a POP3 command line: a verb the server
// knows, in capitals, and its arguments.
func isCommand(s string) bool {
	verb, _, _ := strings.Cut(s, " ")
	for _, d := range pop3.Reference {
		if d.Verb == verb {
			return true
		}
	}
	return false
}
