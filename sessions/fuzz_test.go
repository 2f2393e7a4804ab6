package sessions

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseLesson: an organiser's lesson file, however broken, is either
// a lesson or an error naming what is wrong; never a panic.
func FuzzParseLesson(f *testing.F) {
	f.Add("---\ntitle: Ours\n---\nIntro.\n## Count\ncheck: ok STAT\n\nType `STAT`.\n")
	f.Add("---\ntitle: x\nsummary: y\n---\n## A\ncheck: state TRANSACTION\n## B\ncheck: code IN-USE\n")
	f.Add("---\ntitle: \n---\n## \ncheck: reply\n")
	f.Add("no front matter\n## Step\ncheck: event lock-taken\n")
	f.Add("---\ntitle: t\n---\n## s\ncheck: ok RETR 1 2 3\ncheck: err\n")
	entries, _ := builtinLessons.ReadDir("lessons")
	for _, e := range entries {
		b, _ := builtinLessons.ReadFile("lessons/" + e.Name())
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, src string) {
		l, err := ParseLesson("fuzz", src)
		if err == nil && (l == nil || l.Title == "" || len(l.Steps) == 0) {
			t.Fatalf("ParseLesson accepted %q as %+v", src, l)
		}
		if err != nil && err.Error() == "" {
			t.Fatal("an error without words")
		}
	})
}

// FuzzParseCheck: a step's check line.
func FuzzParseCheck(f *testing.F) {
	for _, s := range []string{"ok STAT", "err PASS", "reply LIST 1", "code IN-USE", "state UPDATE", "event marked", "", "ok", "nonsense words"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParseCheck(s)
	})
}

// FuzzParseUsers: the users file is the organiser's input: every line is
// an account, a comment, or an error with its line number.
func FuzzParseUsers(f *testing.F) {
	f.Add([]byte("guest:visitor\n# comment\nmrose:tanstaaf\n"))
	f.Add([]byte("a:b:c\n\n:x\nbad name:pw\n"))
	f.Add([]byte("\xff\xfe:pw\r\nguest:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, order, err := parseUsers(data, "users")
		if err != nil {
			if !strings.Contains(err.Error(), "users") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if len(users) != len(order) {
			t.Fatalf("%d users, %d in order", len(users), len(order))
		}
		for _, name := range order {
			if !validAccountName(name) || !utf8.ValidString(name) {
				t.Fatalf("accepted account name %q", name)
			}
		}
	})
}
