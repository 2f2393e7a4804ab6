package sessions

import (
	"bufio"
	"fmt"
	"strings"
)

// ParseLesson parses a lesson file; errors start with the line number.
func ParseLesson(id, src string) (*Lesson, error) {
	p := &lessonParser{l: &Lesson{ID: id}, sc: bufio.NewScanner(strings.NewReader(src))}
	if err := p.frontMatter(); err != nil {
		return nil, err
	}
	for {
		line, ok := p.next()
		if !ok {
			break
		}
		if strings.HasPrefix(line, "```") {
			p.fence = !p.fence
		}
		if done, err := p.directive(line); err != nil {
			return nil, err
		} else if done {
			continue
		}
		p.text.WriteString(line)
		p.text.WriteByte('\n')
	}
	if err := p.sc.Err(); err != nil {
		return nil, p.fail("%v", err)
	}
	if p.fence {
		return nil, p.fail("a ``` code block is not closed")
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if len(p.l.Steps) == 0 {
		return nil, p.fail("the lesson has no steps: each starts with a \"## \" heading and a check: line")
	}
	return p.l, nil
}

// A lessonParser reads a lesson's Markdown line by line.
type lessonParser struct {
	l         *Lesson
	sc        *bufio.Scanner
	n         int // the line read last, from 1
	text      strings.Builder
	step      *Step // the step being read; nil in the introduction
	checkLine int   // where the step began
	fence     bool  // inside a ``` code block
}

func (p *lessonParser) next() (string, bool) {
	if !p.sc.Scan() {
		return "", false
	}
	p.n++
	return strings.TrimRight(p.sc.Text(), " \t\r"), true
}

func (p *lessonParser) fail(format string, a ...any) error {
	return fmt.Errorf("%d: %s", max(p.n, 1), fmt.Sprintf(format, a...))
}

// frontMatter reads the lines between "---" and "---": title and summary.
func (p *lessonParser) frontMatter() error {
	if line, _ := p.next(); line != "---" {
		return p.fail("a lesson starts with front matter: a line \"---\", then title: and summary:")
	}
	for {
		line, ok := p.next()
		if !ok {
			return p.fail("the front matter is not closed by a line \"---\"")
		}
		if line == "---" {
			break
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return p.fail("want key: value in the front matter, got %q", line)
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "title":
			p.l.Title = val
		case "summary":
			p.l.Summary = val
		default:
			return p.fail("unknown front matter key %q (want title or summary)", key)
		}
	}
	if p.l.Title == "" {
		return p.fail("the front matter has no title")
	}
	return nil
}

// directive handles a line that starts a step ("## ") or is one of its
// check:, conn:, do: or in: lines, and reports whether it did. Lines in a
// code block are text.
func (p *lessonParser) directive(line string) (bool, error) {
	st := p.step
	if p.fence || st == nil && !strings.HasPrefix(line, "## ") {
		return false, nil
	}
	key, val, _ := strings.Cut(line, ":")
	val = strings.TrimSpace(val)
	switch {
	case strings.HasPrefix(line, "## "):
		if err := p.finish(); err != nil {
			return false, err
		}
		p.step = &Step{Title: strings.TrimSpace(line[3:])}
		p.checkLine = p.n
	case key == "check":
		if st.Check.alts != nil {
			return false, p.fail("step %q has a second check: line", st.Title)
		}
		c, err := ParseCheck(val)
		if err != nil {
			return false, p.fail("%v", err)
		}
		st.Check = c
	case st.Check.alts == nil: // the rest come after check:
		return false, nil
	case key == "conn":
		if err := st.parseConn(val, len(p.l.Steps)); err != nil {
			return false, p.fail("%v", err)
		}
	case key == "do":
		if st.Do != nil {
			return false, p.fail("step %q has a second do: line", st.Title)
		}
		do, err := ParseDo(val)
		if err != nil {
			return false, p.fail("%v", err)
		}
		st.Do = do
	case key == "in":
		in := strings.ToUpper(val)
		if in != "AUTHORIZATION" && in != "TRANSACTION" {
			return false, p.fail("in: %q: want AUTHORIZATION or TRANSACTION", in)
		}
		st.In = in
	default:
		return false, nil
	}
	return true, nil
}

// finish ends the introduction or the step being read.
func (p *lessonParser) finish() error {
	body := strings.TrimSpace(p.text.String())
	p.text.Reset()
	if p.step == nil {
		p.l.Intro = body
		return nil
	}
	if p.step.Check.alts == nil {
		return fmt.Errorf("%d: step %q has no check: line", p.checkLine, p.step.Title)
	}
	p.step.Text = body
	p.l.Steps = append(p.l.Steps, *p.step)
	return nil
}
