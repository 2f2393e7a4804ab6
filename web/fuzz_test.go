package web_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzLastEventID: whatever a browser (or anyone) sends as Last-Event-ID,
// the event stream starts, and resumes where the number says or afresh.
func FuzzLastEventID(f *testing.F) {
	e := newEnv(f)
	b := e.visit(f)
	for _, s := range []string{"", "0", "1", "18446744073709551615", "18446744073709551616", "-1", "3 ", "abc", "\x00", "9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/events", nil)
		if !validHeaderValue(id) {
			return // net/http would not send it
		}
		req.Header.Set("Last-Event-ID", id)
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatalf("Last-Event-ID %q: %v", id, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("Last-Event-ID %q: %s", id, resp.Status)
		}
		first, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.HasPrefix(first, "retry:") {
			t.Fatalf("Last-Event-ID %q: stream starts %q, %v", id, first, err)
		}
	})
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
