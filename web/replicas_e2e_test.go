package web_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions/storetest"
)

// A student in Chromium does the lab sheet and "Where mail comes from"
// on three replicas of the binary, on one redis-server, behind HAProxy
// round robin without stickiness: the page, its event stream, its two
// terminals' WebSockets and its lesson requests land on replicas in
// turn, and the lessons tick as on one playground.
func TestBrowserOnThreeReplicas(t *testing.T) {
	haproxy := pop3test.NeedClient(t, "haproxy") // CI installs it and requires it
	ctx := browserContext(t)
	redis := storetest.StartRedis(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "pop3playground")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/pop3playground/pop3playground/cmd/pop3playground").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	var servers string
	logs := make([]*pop3test.SyncBuffer, 3)
	for i := 1; i <= 3; i++ {
		web := free()
		cmd := exec.Command(bin, "--store", "redis://"+redis.Addr+"/0", "--admin-token", "replicas-share-this-token",
			"--hostname", fmt.Sprintf("r%d", i), "--http-addr", web, "--pop3-addr", "127.0.0.1:0", "--smtp-addr", "127.0.0.1:0",
			"--lab-pop3-addr", "", "--lab-smtp-addr", "", "--trusted-proxies", "127.0.0.0/8", "--visitor-rate", "0")
		logs[i-1] = &pop3test.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = io.Discard, logs[i-1]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		for j := 0; ; j++ {
			if resp, err := http.Get("http://" + web + "/healthz"); err == nil {
				resp.Body.Close()
				break
			}
			if j == 200 {
				t.Fatalf("replica %d never listened on %s", i, web)
			}
			time.Sleep(50 * time.Millisecond)
		}
		servers += fmt.Sprintf("  server r%d %s check inter 500ms\n", i, web)
	}
	front := free()
	cfg := fmt.Sprintf(`defaults
  mode http
  timeout connect 2s
  timeout client 120s
  timeout server 120s
  timeout tunnel 120s
frontend web
  bind %s
  default_backend web
backend web
  balance roundrobin
  option forwardfor
%s`, front, servers)
	file := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(file, []byte(cfg), 0o644)
	hp := exec.Command(haproxy, "-db", "-f", file)
	hp.Stdout, hp.Stderr = io.Discard, io.Discard
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Process.Kill(); hp.Wait() })
	for j := 0; ; j++ {
		if resp, err := http.Get("http://" + front + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if j == 100 {
			t.Fatal("HAProxy never listened")
		}
		time.Sleep(50 * time.Millisecond)
	}

	openPage(t, ctx, "http://"+front+"/")
	waitTerm(t, ctx, "+OK POP3 Playground ready", 1)
	for _, l := range []struct {
		id    string
		steps int
	}{{"01-lab-sheet", 4}, {"07-mail-in", 5}} {
		openLesson(t, ctx, l.id)
		doLessonWithTheBar(t, ctx, l.id, l.steps)
	}
	screenshot(t, ctx, filepath.Join(screenshotDir(t), "three-replicas.png"))
	// Every replica served some of the student's requests (the access
	// log names the visitor of each): round robin, not one replica
	// behind a balancer. Which replica greeted which terminal session
	// depends on how many requests came between, so it is only told.
	for i, l := range logs {
		if !regexp.MustCompile(`msg=http .*visitor="?[A-Z]`).MatchString(l.String()) {
			t.Errorf("replica r%d served none of the student's requests", i+1)
		}
	}
	text, _ := termText(ctx)
	greeted := map[string]bool{}
	for _, m := range regexp.MustCompile(`@(r\d)>`).FindAllStringSubmatch(text, -1) {
		greeted[m[1]] = true
	}
	t.Logf("the terminal's POP3 sessions were greeted by %v", greeted)
}
