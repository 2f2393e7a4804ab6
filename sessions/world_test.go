package sessions

import (
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDefaultWorld(t *testing.T) {
	w, err := DefaultWorld()
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Warnings) > 0 {
		t.Errorf("warnings: %q", w.Warnings)
	}
	var names []string
	for _, a := range w.Accounts() {
		names = append(names, a.Name)
	}
	if !slices.Equal(names, []string{"guest", "mrose"}) {
		t.Fatalf("accounts %q", names)
	}
	guest := w.Account("guest")
	if len(guest.Messages) < 6 {
		t.Fatalf("guest has %d messages, want at least 6", len(guest.Messages))
	}
	text := func(i int) string { return string(guest.Messages[i-1].data) }
	if n := strings.Count(text(3), "\r\nReceived: "); n < 4 {
		t.Errorf("message 3 has %d Received: headers, want a chain of at least 4", n)
	}
	if !strings.Contains(text(5), "Content-Type: multipart/mixed") || !strings.Contains(text(5), "Content-Disposition: attachment") {
		t.Error("message 5 is not multipart/mixed with an attachment")
	}
	if !strings.Contains(text(4), "\r\n.\r\n") || !strings.Contains(text(4), "\r\n\r\n.This") {
		t.Error("message 4 lacks lines starting with a dot (a lone dot, and the first body line)")
	}
	if got := guest.Messages[1].Subject; got != "Réunion au café ☕ — vendredi" {
		t.Errorf("message 2 subject decodes to %q", got)
	}
	if got := guest.Messages[1].From; !strings.HasPrefix(got, "Anaïs Lefèvre") {
		t.Errorf("message 2 From decodes to %q", got)
	}
	if s := guest.Messages[5].Size(); s < 45_000 || s > 60_000 {
		t.Errorf("message 6 is %d octets, want about 50 KB", s)
	}
	if s := guest.Messages[6].Size(); s > 500 {
		t.Errorf("message 7 is %d octets, want a short one", s)
	}
	for i, m := range guest.Messages {
		if strings.Contains(strings.ReplaceAll(string(m.data), "\r\n", ""), "\n") || !strings.HasSuffix(string(m.data), "\r\n") {
			t.Errorf("message %d is not CRLF-normalised", i+1)
		}
	}
	mrose := w.Account("mrose")
	if len(mrose.Messages) != 2 || !mrose.CheckPassword("tanstaaf") || mrose.CheckPassword("visitor") {
		t.Errorf("mrose: %d messages", len(mrose.Messages))
	}
	// mboxrd quoting is undone.
	if !strings.Contains(string(mrose.Messages[0].data), "\r\nFrom now on, no passwords") {
		t.Error(`">From " was not unquoted in mrose.mbox`)
	}
}

// writeTree writes files (path → content) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// treeHash digests every file's name, content and mode under dir.
func treeHash(t *testing.T, dir string) [32]byte {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		io.WriteString(h, p+fi.Mode().String()+fi.ModTime().String())
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

const hdr = "From: a@example.org\nSubject: s\n\n"

func TestLoadDir(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"users": "# organiser's accounts\n\nalice:wonder:land\nbob:builder\r\ncarol:c\nempty:nothing here\n",
		// Maildir: new/ and cur/, ordered by name; tmp/ and dotfiles ignored.
		"alice/new/1700000002.M2.host":      hdr + "second\n",
		"alice/cur/1700000001.M1.host:2,S":  hdr + "first\n",
		"alice/cur/1700000003.M3.host:2,RS": hdr + "third\n",
		"alice/tmp/1700000004.M4.host":      hdr + "being delivered\n",
		"alice/cur/.hidden":                 "junk",
		// A folder of .eml files in natural order.
		"bob/10.eml":    hdr + "ten\n",
		"bob/2.eml":     hdr + "two\n",
		"bob/notes.txt": "not a message",
		"carol.mbox":    "From x Mon Jan  1 00:00:00 2026\n" + hdr + ">From here\n\nFrom y Mon Jan  1 00:00:00 2026\n" + hdr + "second\n",
		"README.md":     "organiser's notes",
		".git/HEAD":     "ref",
	})
	before := treeHash(t, dir)
	w, err := LoadDir(dir, filepath.Join(dir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	if treeHash(t, dir) != before {
		t.Error("loading changed the organiser's files")
	}
	bodies := func(name string) []string {
		var out []string
		for _, m := range w.Account(name).Messages {
			_, body, _ := strings.Cut(string(m.data), "\r\n\r\n")
			out = append(out, body)
		}
		return out
	}
	if got := bodies("alice"); !slices.Equal(got, []string{"first\r\n", "second\r\n", "third\r\n"}) {
		t.Errorf("alice (Maildir) = %q", got)
	}
	if got := bodies("bob"); !slices.Equal(got, []string{"two\r\n", "ten\r\n"}) {
		t.Errorf("bob (.eml) = %q", got)
	}
	if got := bodies("carol"); !slices.Equal(got, []string{"From here\r\n", "second\r\n"}) {
		t.Errorf("carol (mbox) = %q", got)
	}
	if got := w.Account("empty"); got == nil || len(got.Messages) != 0 || !got.CheckPassword("nothing here") {
		t.Errorf("a user without a mailbox should have an empty maildrop")
	}
	if !w.Account("alice").CheckPassword("wonder:land") {
		t.Error("a password may hold a colon")
	}
	if len(w.Accounts()) != 4 {
		t.Errorf("%d accounts, want 4", len(w.Accounts()))
	}
	if len(w.Warnings) != 1 || !strings.Contains(w.Warnings[0], "README.md: skipped") {
		t.Errorf("warnings %q, want README.md skipped", w.Warnings)
	}
}

func TestLoadDirErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no colon", map[string]string{"users": "# c\nguest visitor\n"}, "users:2: expected name:password"},
		{"space in name", map[string]string{"users": "a b:c\n"}, `users:1: invalid account name "a b"`},
		{"empty password", map[string]string{"users": "a:\n"}, `users:1: account "a" has an empty password`},
		{"twice", map[string]string{"users": "a:1\nb:2\na:3\n"}, `users:3: account "a" is listed twice`},
		{"no accounts", map[string]string{"users": "# nothing\n"}, "users: no accounts"},
		{"mailbox without user", map[string]string{"users": "a:1\n", "b.mbox": ""}, `b.mbox: account "b" has no password`},
		{"two mailboxes", map[string]string{"users": "a:1\n", "a.mbox": "", "a/1.eml": hdr}, `a second mailbox for account "a"`},
		{"not an mbox", map[string]string{"users": "a:1\n", "a.mbox": "\nSubject: hi\n"}, `a.mbox:2: not an mbox file`},
		{"bad header in mbox", map[string]string{"users": "a:1\n", "a.mbox": "From x\n" + hdr + "\nFrom y\nSubject: ok\nthis is no header\n\nbody\n"}, "a.mbox:8: malformed header line"},
		{"bad header in eml", map[string]string{"users": "a:1\n", "a/1.eml": "Subject: ok\nDate: x\nno colon here\n\nbody"}, "1.eml:3: malformed header line \"no colon here\""},
		{"continuation first", map[string]string{"users": "a:1\n", "a/1.eml": " folded\n\nbody"}, "1.eml:1: the header begins with a continuation line"},
		{"empty message", map[string]string{"users": "a:1\n", "a/new/1": ""}, "a/new/1:1: empty message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			_, err := LoadDir(dir, filepath.Join(dir, "users"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			var le *LoadError
			if !errors.As(err, &le) || !strings.HasPrefix(le.File, dir) && le.File != filepath.Join(dir, "users") {
				t.Errorf("error %v does not name the file under %s", err, dir)
			}
		})
	}
	if _, err := LoadDir(t.TempDir(), "/nonexistent/users"); err == nil {
		t.Error("a missing users file loaded")
	}
}

func TestNaturalCompare(t *testing.T) {
	names := []string{"10.eml", "2.eml", "1.eml", "a10.eml", "a9.eml", "b.eml", "02.eml"}
	slices.SortFunc(names, naturalCompare)
	want := []string{"1.eml", "2.eml", "02.eml", "10.eml", "a9.eml", "a10.eml", "b.eml"}
	if !slices.Equal(names, want) {
		t.Errorf("sorted %q, want %q", names, want)
	}
}

func TestUIDsAreStableAndUnique(t *testing.T) {
	dir := writeTree(t, map[string]string{"users": "a:1\n", "a/1.eml": hdr + "same\n", "a/2.eml": hdr + "same\n", "a/3.eml": hdr + "other\n"})
	w1, err := LoadDir(dir, filepath.Join(dir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := LoadDir(dir, filepath.Join(dir, "users"))
	seen := map[string]bool{}
	for i, m := range w1.Account("a").Messages {
		if seen[m.UID()] {
			t.Errorf("duplicate UID %q", m.UID())
		}
		seen[m.UID()] = true
		if m.UID() != w2.Account("a").Messages[i].UID() {
			t.Errorf("UID of message %d changed between loads", i+1)
		}
	}
}

func FuzzParseMbox(f *testing.F) {
	f.Add("From x\nSubject: a\n\nbody\n>From y\n\nFrom z\nA: b\n c\n\n.\n")
	f.Add("From \n\n")
	f.Add("\n\nFrom a\r\nX: y\r\n\r\n")
	f.Fuzz(func(t *testing.T, data string) {
		msgs, err := parseMbox([]byte(data), "f.mbox")
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for _, m := range msgs {
			s := string(m.data)
			if !strings.HasSuffix(s, "\r\n") || strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") {
				t.Fatalf("message %q is not CRLF-normalised", s)
			}
		}
	})
}

func FuzzNewMessage(f *testing.F) {
	f.Add("Subject: =?UTF-8?B?w6k=?=\nFrom: x\n folded\n\nbody")
	f.Add("no header")
	f.Add("A: b\r\n\r\n")
	f.Fuzz(func(t *testing.T, data string) {
		m, err := newMessage([]byte(data), "f.eml", 1)
		if err != nil {
			return
		}
		if int(m.Size()) != len(m.data) || m.Size() == 0 {
			t.Fatalf("size %d for %q", m.Size(), m.data)
		}
	})
}

func TestFirstLogin(t *testing.T) {
	name, pass, ok := loadDefault(t).FirstLogin()
	if !ok || name != "guest" || pass != "visitor" {
		t.Errorf("FirstLogin = %q, %q, %v; want guest, visitor", name, pass, ok)
	}
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("zed:z\nalice:a\n"), 0o644)
	w, err := LoadDir(dir, users)
	if err != nil {
		t.Fatal(err)
	}
	if name, pass, _ := w.FirstLogin(); name != "alice" || pass != "a" {
		t.Errorf("without guest: %q, %q; want the first account by name", name, pass)
	}
}

// Every line end becomes CRLF, a lone CR's too: POP3 never serves a lone
// CR, which a client splitting lines at CR would read as a line end (a
// lone-CR "." would end the reply for it, unstuffed).
func TestNormalizeCRLF(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a", "a\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb", "a\r\nb\r\n"},
		{"before\r.\r+OK fake\r\n", "before\r\n.\r\n+OK fake\r\n"},
		{"a\r", "a\r\n"},
		{"\r\r\n\n", "\r\n\r\n\r\n"},
	} {
		got := normalizeCRLF([]byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("normalizeCRLF(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if n := crlfLen([]byte(tc.in)); n != len(tc.want) || cap(got) != len(got) {
			t.Errorf("crlfLen(%q) = %d, cap %d; want %d", tc.in, n, cap(got), len(tc.want))
		}
	}
}
