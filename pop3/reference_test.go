package pop3_test

import (
	"strings"
	"testing"

	"github.com/pop3playground/pop3playground/pop3"
)

// TestReferenceExamplesWork runs each example of the command reference in a
// state it is valid in, on the default mailbox: a student who clicks one
// gets what the reference promises.
func TestReferenceExamplesWork(t *testing.T) {
	for _, d := range pop3.Reference {
		t.Run(d.Verb, func(t *testing.T) {
			env := testServer(t) // its own sandbox: no lock left from another case
			if !strings.HasPrefix(strings.ToUpper(d.Example), d.Verb) {
				t.Fatalf("example %q does not use %s", d.Example, d.Verb)
			}
			var c *client
			if d.States[0] == "TRANSACTION" {
				c = env.authenticated(t)
			} else {
				c = env.greeted(t)
			}
			switch d.Verb {
			case "PASS":
				c.Expect("USER guest", "+OK")
			case "APOP":
				// The digest is made up: the example shows the form.
				c.Expect(d.Example, "-ERR [AUTH]")
				return
			case "AUTH":
				c.Expect(d.Example, "+ ")
				return
			}
			c.Expect(d.Example, "+OK")
		})
	}
}
