package pop3_test

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// needClient finds a real client program, or skips; with
// POP3PG_REQUIRE_INTEROP set (CI sets it) a missing client fails the test.
func runPoplib(t *testing.T, env *testEnv, host, mode string) map[string]any {
	t.Helper()
	py := pop3test.NeedClient(t, "python3")
	_, port, _ := strings.Cut(env.addr, ":")
	out, err := exec.Command(py, "testdata/poplib_client.py", host, port, env.caFile, mode).CombinedOutput()
	if err != nil {
		t.Fatalf("poplib %s: %v\n%s", mode, err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("poplib output %q: %v", out, err)
	}
	return got
}

func TestPythonPoplib(t *testing.T) {
	for _, mode := range []string{"plain", "stls"} {
		t.Run(mode, func(t *testing.T) {
			env := testServer(t)
			got := runPoplib(t, env, "localhost", mode)
			check := func(key string, want any) {
				t.Helper()
				g, _ := json.Marshal(got[key])
				w, _ := json.Marshal(want)
				if string(g) != string(w) {
					t.Errorf("%s = %s, want %s", key, g, w)
				}
			}
			check("login", "+OK guest's maildrop has 7 messages (54859 octets)")
			check("stat", []int{7, 54859})
			check("list", []string{"1 498", "2 810", "3 1995", "4 760", "5 1625", "6 48959", "7 212"})
			check("retr3_received", 4)
			check("top5_last", "")
			check("stat_after_dele", []int{6, 54361})
			check("retr_deleted", "b'-ERR message 1 is marked for deletion; RSET unmarks it'")
			check("stat_after_rset", []int{7, 54859})
			check("quit", "+OK signing off: 0 messages deleted, 7 left")
			// poplib's octet count is the size after undoing the dot-stuffing.
			check("retr3_octets", 1995)
			check("retr6_octets", 48959)
			if lines := got["retr4_lines"].([]any); !slices.Contains(lines, any(".")) || !slices.Contains(lines, any("..")) || !slices.Contains(lines, any(".This first body line starts with a dot.")) {
				t.Errorf("poplib did not get the dot lines of message 4 back: %v", lines)
			}
			if mode == "stls" {
				check("tls", "TLSv1.3")
				if caps := got["capa"].([]any); slices.Contains(caps, any("STLS")) {
					t.Errorf("CAPA after STLS: %v", caps)
				}
			}
		})
	}
}

func TestPythonPoplibAPOP(t *testing.T) {
	env := testServer(t)
	got := runPoplib(t, env, "127.0.0.1", "apop")
	if got["login"] != "+OK mrose's maildrop has 2 messages (913 octets)" {
		t.Errorf("APOP login: %v", got["login"])
	}
}

func curl(t *testing.T, env *testEnv, args ...string) string {
	t.Helper()
	bin := pop3test.NeedClient(t, "curl")
	args = append([]string{"-sS", "--max-time", "10", "-u", "guest:visitor"}, args...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestCurl(t *testing.T) {
	env := testServer(t)
	port := env.addr[strings.LastIndex(env.addr, ":")+1:]
	plain := "pop3://127.0.0.1:" + port
	msg4 := env.be.Messages("guest")[3]

	if got := curl(t, env, plain+"/"); got != "1 498\r\n2 810\r\n3 1995\r\n4 760\r\n5 1625\r\n6 48959\r\n7 212\r\n" {
		t.Errorf("curl LIST = %q", got)
	}
	if got := curl(t, env, plain+"/4"); got != msg4 {
		t.Errorf("curl RETR 4 differs from message 4:\n%q\nwant\n%q", got, msg4)
	}
	if got := curl(t, env, "-X", "UIDL", plain+"/"); strings.Count(got, "\r\n") != 7 {
		t.Errorf("curl UIDL = %q", got)
	}
	if got := curl(t, env, "-X", "TOP 3 0", plain+"/"); strings.Count(got, "Received: ") != 4 || strings.Contains(got, "Read the Received") {
		t.Errorf("curl TOP 3 0 = %q", got)
	}
	// SASL LOGIN instead of curl's default PLAIN, and APOP.
	if got := curl(t, env, "--login-options", "AUTH=LOGIN", plain+"/7"); !strings.Contains(got, "12:30 at the usual place?") {
		t.Errorf("curl AUTH=LOGIN RETR 7 = %q", got)
	}
	if got := curl(t, env, "-u", "mrose:tanstaaf", "--login-options", "AUTH=+APOP", plain+"/2"); !strings.Contains(got, "Two messages of 320 octets") {
		t.Errorf("curl APOP RETR 2 = %q", got)
	}
	// STLS, with the server's certificate as the only trusted one.
	tlsURL := "pop3://localhost:" + port
	if got := curl(t, env, "--ssl-reqd", "--cacert", env.caFile, tlsURL+"/4"); got != msg4 {
		t.Errorf("curl over STLS RETR 4 = %q", got)
	}
}

func TestCurlImplicitTLS(t *testing.T) {
	env := testServer(t)
	l, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	go env.srv.ServeTLS(l)
	port := l.Addr().String()[strings.LastIndex(l.Addr().String(), ":")+1:]
	if got := curl(t, env, "--cacert", env.caFile, "pop3s://localhost:"+port+"/7"); !strings.Contains(got, "12:30 at the usual place?") {
		t.Errorf("curl pop3s RETR 7 = %q", got)
	}
}
