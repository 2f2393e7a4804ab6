package pop3

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// Every entry of the command table is whole: a handler, an explanation of
// its +OK, and what the reference shows.
func TestCommandTableIsWhole(t *testing.T) {
	seen := map[string]bool{}
	for _, cmd := range commands {
		if seen[cmd.verb] {
			t.Errorf("%s is in the table twice", cmd.verb)
		}
		seen[cmd.verb] = true
		if cmd.run == nil || cmd.explain == nil || len(cmd.in) == 0 {
			t.Errorf("%s: no handler, explanation or state", cmd.verb)
		}
		if cmd.syntax == "" || cmd.summary == "" || cmd.example == "" || cmd.rfc == "" {
			t.Errorf("%s: the reference is incomplete", cmd.verb)
		}
		if cmd.verb != strings.ToUpper(cmd.verb) || len(cmd.verb) < 3 || len(cmd.verb) > 4 {
			t.Errorf("%s: RFC 1939 §3 keywords are three or four characters", cmd.verb)
		}
	}
	if transactionHint != "STAT, LIST, RETR, TOP, UIDL, DELE, RSET, NOOP or QUIT" {
		t.Errorf("transaction hint %q", transactionHint)
	}
}

// Every kind of reply declared in this package has an explanation: a
// reply kind added without one fails here.
func TestEveryReplyKindIsExplained(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "reply.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		vs, ok := node.(*ast.ValueSpec)
		if !ok || vs.Type == nil || fmt.Sprint(vs.Type) != "ReplyKind" {
			return true
		}
		for _, name := range vs.Names {
			k := ReplyKind(strings.Trim(vs.Values[0].(*ast.BasicLit).Value, `"`))
			n++
			if k == KindOK || k == KindGreeting {
				continue
			}
			if explanations[k] == "" {
				t.Errorf("%s (%q) has no explanation", name.Name, k)
			}
		}
		return true
	})
	if n < 20 {
		t.Fatalf("found %d reply kinds in reply.go", n)
	}
	for k := range explanations {
		if explain("", replyState{said: said{kind: k}}) != explanations[k] {
			t.Errorf("%s: explain does not give its explanation", k)
		}
	}
}

// MultiLine knows the bodies RFC 1939 and its extensions define.
func TestMultiLine(t *testing.T) {
	for line, want := range map[string]bool{
		"RETR 1": true, "retr 1": true, "TOP 1 0": true, "CAPA": true,
		"LIST": true, "LIST 1": false, "UIDL": true, "UIDL 2": false, "AUTH": true, "AUTH PLAIN": false,
		"STAT": false, "QUIT": false, "STLS": false, "NOPE": false, "": false, "LIST ": true,
	} {
		if got := MultiLine(line); got != want {
			t.Errorf("MultiLine(%q) = %v", line, got)
		}
	}
}
