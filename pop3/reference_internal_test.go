package pop3

import (
	"slices"
	"testing"
)

// TestReferenceCoversEveryCommand keeps the page's command reference and
// the server's command table in step.
func TestReferenceCoversEveryCommand(t *testing.T) {
	documented := make(map[string]bool)
	for _, d := range Reference {
		if documented[d.Verb] {
			t.Errorf("%s is documented twice", d.Verb)
		}
		documented[d.Verb] = true
		st, known := commandStates[d.Verb]
		if !known {
			t.Errorf("%s is documented but the server does not know it", d.Verb)
			continue
		}
		want := []string{st.String()}
		if st == -1 {
			want = []string{stateAuthorization.String(), stateTransaction.String()}
		}
		if !slices.Equal(d.States, want) {
			t.Errorf("%s: documented states %v, the server's %v", d.Verb, d.States, want)
		}
		if d.Syntax == "" || d.Summary == "" || d.Example == "" || d.RFC == "" {
			t.Errorf("%s: incomplete: %+v", d.Verb, d)
		}
	}
	for verb := range commandStates {
		if !documented[verb] {
			t.Errorf("%s is not in the reference", verb)
		}
	}
}
