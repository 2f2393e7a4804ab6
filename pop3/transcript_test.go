package pop3_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/pop3playground/pop3playground/pop3"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts under testdata/")

// Whole sessions, asserted byte for byte: each file under
// testdata/transcripts holds the lines a client sends (-- client --) and
// the exchange they give (-- transcript --), every octet the server sent
// quoted. The server serves pop3test's maildrops. go test -update
// rewrites the transcripts after an intended change.
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "transcripts", "*.txtar"))
	if len(files) < 4 {
		t.Fatalf("%d transcripts", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			a, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, f := range a.Files {
				if f.Name == "client" {
					lines = strings.Split(strings.TrimSuffix(string(f.Data), "\n"), "\n")
				}
			}
			got := playTranscript(t, lines)
			if *update {
				a.Files = []txtar.File{{Name: "client", Data: []byte(strings.Join(lines, "\n") + "\n")}, {Name: "transcript", Data: got}}
				if err := os.WriteFile(file, txtar.Format(a), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if len(a.Files) != 2 || a.Files[1].Name != "transcript" {
				t.Fatalf("%s has no transcript section (go test -run TestTranscripts -update writes it)", file)
			}
			if want := a.Files[1].Data; !bytes.Equal(got, want) {
				w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
				for i := range min(len(w), len(g)) {
					if w[i] != g[i] {
						t.Fatalf("line %d:\nwant %s\n got %s", i+1, w[i], g[i])
					}
				}
				t.Fatalf("%d lines, want %d", len(g), len(w))
			}
		})
	}
}

// playTranscript sends each line in lockstep and records the exchange.
func playTranscript(t *testing.T, lines []string) []byte {
	env := testServer(t)
	c := env.dial(t)
	var b strings.Builder
	server := func(l string) {
		l = timestampRe.ReplaceAllString(l, "<TIMESTAMP>")
		b.WriteString("S: " + strconv.Quote(l+"\r\n") + "\n")
	}
	server(c.Greeting)
	for _, line := range lines {
		b.WriteString("C: " + strconv.Quote(line+"\r\n") + "\n")
		status := c.Cmd(line)
		server(status)
		switch {
		case !strings.HasPrefix(status, "+OK"):
		case strings.EqualFold(line, "QUIT"):
			c.ExpectClosed()
			b.WriteString("(closed)\n")
		case pop3.MultiLine(line):
			for {
				l := c.ReadLine()
				server(l)
				if l == "." {
					break
				}
			}
		}
	}
	return []byte(b.String())
}
