package web_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/web"
)

// Every route of the visitor's API but the one that makes the session
// refuses a request without one, in the same words: the refusal is
// written once, for the whole resource.
func TestVisitorAPIRefusesWithoutASession(t *testing.T) {
	e := newEnv(t)
	n := 0
	chi.Walk(e.web.Routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if !strings.HasPrefix(route, "/api/") || route == "/api/session" {
			return nil
		}
		n++
		req, _ := http.NewRequest(method, e.http.URL+strings.ReplaceAll(route, "{id}", "01-lab-sheet"), strings.NewReader("step=1"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body.String(), "no playground session: load the page first") {
			t.Errorf("%s %s without a session: %s %s", method, route, resp.Status, body.String())
		}
		return nil
	})
	if n < 8 {
		t.Errorf("walked %d visitor API routes", n)
	}
}

// The access log has a line per request with its id (also sent back as
// X-Request-Id), status and the visitor's pseudonym, and no token,
// cookie or client address.
func TestAccessLogNamesPseudonymsOnly(t *testing.T) {
	var buf pop3test.SyncBuffer
	e := newEnv(t, func(_ *pop3.Server, cfg *web.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	b := e.visit(t)
	resp, err := b.client.Get(e.http.URL + "/api/lessons")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	v := e.visitors.All()[0]
	log := buf.String()
	var line string
	for l := range strings.SplitSeq(log, "\n") {
		if strings.Contains(l, "path=/api/lessons") {
			line = l
		}
	}
	if id == "" || !strings.Contains(line, "id="+id) || !strings.Contains(line, "status=200") || !strings.Contains(line, v.Name()) {
		t.Errorf("request %q logged as %q", id, line)
	}
	for _, secret := range []string{v.Token, v.ID, "127.0.0.1", "Cookie"} {
		if strings.Contains(log, secret) {
			t.Errorf("the access log holds %q", secret)
		}
	}
}
