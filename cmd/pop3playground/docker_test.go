package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDockerfileFlags checks that what the Dockerfile gives the binary
// (environment, health check arguments, ports) is accepted by it and
// agrees with itself, without needing Docker.
func TestDockerfileFlags(t *testing.T) {
	src, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(src), "\\\n", " ")
	stages := strings.Split(text, "\nFROM ")
	final := stages[len(stages)-1]

	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ENV (.+)$`).FindAllStringSubmatch(final, -1) {
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	getenv := func(k string) string { return env[k] }
	for k := range env {
		if !strings.HasPrefix(k, envPrefix) {
			t.Errorf("ENV %s is not one of the binary's variables", k)
		}
	}

	var health []string
	if m := regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD (\[.*\])\s*$`).FindStringSubmatch(final); m == nil {
		t.Fatal("no HEALTHCHECK CMD in exec form")
	} else if err := json.Unmarshal([]byte(m[1]), &health); err != nil {
		t.Fatal(err)
	}
	var entry []string
	if m := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])\s*$`).FindStringSubmatch(final); m == nil {
		t.Fatal("no ENTRYPOINT in exec form")
	} else if err := json.Unmarshal([]byte(m[1]), &entry); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(final, "COPY --from=build /out/pop3playground "+entry[0]+"\n") || health[0] != entry[0] {
		t.Errorf("the ENTRYPOINT %q and HEALTHCHECK %q do not run the binary copied in", entry[0], health[0])
	}

	var out bytes.Buffer
	cfg, err := parseConfig(append(entry[1:], health[1:]...), getenv, &out)
	if err != nil {
		t.Fatalf("the binary refuses the Dockerfile's settings: %v", err)
	}
	for _, addr := range []string{cfg.pop3Addr, cfg.httpAddr, cfg.smtpAddr, cfg.labPOP3Addr, cfg.labSMTPAddr} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "" {
			t.Errorf("%q: inside a container the listeners must be on every interface", addr)
		}
		if !regexp.MustCompile(`(?m)^EXPOSE .*\b` + port + `\b`).MatchString(final) {
			t.Errorf("port %s is not EXPOSEd", port)
		}
	}
	u, err := url.Parse(cfg.probe)
	if _, httpPort, _ := net.SplitHostPort(cfg.httpAddr); err != nil || u.Port() != httpPort || u.Path != "/readyz" {
		t.Errorf("the health check probes %q, not the HTTP listener's /readyz", cfg.probe)
	}

	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "VOLUME"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Dockerfile lacks %s", want)
		}
	}
	if !slices.ContainsFunc(stages[:len(stages)-1], func(s string) bool { return strings.Contains(s, " AS build") }) {
		t.Error("the Dockerfile is not multi-stage")
	}
}

func TestProbe(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--probe", srv.URL + "/readyz"}, noEnv, &out, &out); err != nil {
		t.Errorf("probe of a ready server: %v", err)
	}
	ready = false
	if err := run(context.Background(), []string{"--probe", srv.URL + "/readyz"}, noEnv, &out, &out); err == nil {
		t.Error("probe of a server that is not ready succeeded")
	}
	if err := run(context.Background(), []string{"--probe", "http://127.0.0.1:1/readyz"}, noEnv, &out, &out); err == nil {
		t.Error("probe of nothing succeeded")
	}
}

// Every base image is named in full (registry/repository:tag): podman and
// buildah stop at a short name ("golang:1.26" did not resolve to an alias).
func TestDockerfileNamesImagesFully(t *testing.T) {
	src, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(string(src), -1) {
		first, _, _ := strings.Cut(m[1], "/")
		if !strings.Contains(m[1], "/") || !strings.ContainsAny(first, ".:") && first != "localhost" {
			t.Errorf("FROM %s: name the registry (docker.io/library/…)", m[1])
		}
	}
}
