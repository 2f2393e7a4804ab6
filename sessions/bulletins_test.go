package sessions

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// read returns the content of every message in account's maildrop of sb,
// through a real login, and releases it.
func readAll(t *testing.T, sb *Sandbox, account string) []string {
	t.Helper()
	md, err := sb.Open(account)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	var out []string
	for i := range infos(md) {
		r, _ := md.Open(i)
		b, _ := io.ReadAll(r)
		out = append(out, string(b))
	}
	return out
}

func TestBulletins(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"2-welcome.eml":  "From: Organiser <org@example.org>\nTo: everyone@example.org,\n  and-more@example.org\nStatus: RO\nSubject: Welcome\n\nHello, all.\n",
		"10-rooms.eml":   "From: org@example.org\nSubject: Rooms\nstatus: O\n\nRoom 101.\n",
		".hidden":        "not a bulletin",
		"drafts/ignored": "From: x\n\nfolders are skipped\n",
	})
	before := treeHash(t, dir)
	w := loadDefault(t)
	if err := w.Bulletins.LoadBulletins(dir); err != nil {
		t.Fatal(err)
	}
	if got := w.Bulletins.Bulletins(); len(got) != 2 || got[0].Subject != "Welcome" || got[1].Subject != "Rooms" {
		t.Fatalf("bulletins %+v", got)
	}

	a := NewSandbox(w)
	msgs := readAll(t, a, "guest")
	if len(msgs) != 9 {
		t.Fatalf("guest has %d messages after the first login, want 7 + 2 bulletins", len(msgs))
	}
	welcome := msgs[7]
	if want := "To: guest\r\nFrom: Organiser <org@example.org>\r\nSubject: Welcome\r\n\r\nHello, all.\r\n"; welcome != want {
		t.Errorf("the bulletin as delivered:\n%q\nwant\n%q", welcome, want)
	}
	if strings.Contains(strings.ToLower(msgs[8]), "status:") {
		t.Errorf("a Status: header was delivered:\n%s", msgs[8])
	}
	// Once: the next login has no new copies; a new bulletin arrives once.
	if n := len(readAll(t, a, "guest")); n != 9 {
		t.Errorf("second login: %d messages, want 9", n)
	}
	if _, err := w.Bulletins.Post("Organiser <org@example.org>", "Break until 11:00", "Coffee is in room 2.\n"); err != nil {
		t.Fatal(err)
	}
	msgs = readAll(t, a, "guest")
	if len(msgs) != 10 || !strings.Contains(msgs[9], "Subject: Break until 11:00\r\n") || !strings.Contains(msgs[9], "\r\nTo: guest\r\n") && !strings.HasPrefix(msgs[9], "To: guest\r\n") {
		t.Errorf("after a post: %d messages, last %q", len(msgs), msgs[len(msgs)-1])
	}
	// Every account gets them; a new visitor gets the current ones, and
	// so does a reset sandbox: Reset brings every message back, as the
	// page says.
	if n := len(readAll(t, a, "mrose")); n != 2+3 {
		t.Errorf("mrose has %d messages, want 2 + 3 bulletins", n)
	}
	if n := len(readAll(t, NewSandbox(w), "guest")); n != 10 {
		t.Errorf("a new sandbox has %d messages, want 10", n)
	}
	a.Reset()
	if n := len(readAll(t, a, "guest")); n != 10 {
		t.Errorf("after a reset: %d messages, want the world's 7 and the 3 bulletins", n)
	}
	// The UIDs are the same in every sandbox, and distinct.
	md1, _ := NewSandbox(w).Open("guest")
	md2, _ := NewSandbox(w).Open("guest")
	if u1, u2 := infos(md1)[9].UID, infos(md2)[9].UID; u1 != u2 || !strings.HasPrefix(u1, "bulletin.3.") {
		t.Errorf("UIDs %q and %q", u1, u2)
	}
	md1.Close()
	md2.Close()

	if treeHash(t, dir) != before {
		t.Error("the bulletins directory changed")
	}
}

func TestBulletinErrors(t *testing.T) {
	var b Board
	for _, tc := range []struct{ from, subject, body, want string }{
		{"o", "", "text", "needs a subject"},
		{"o", "two\nlines", "text", "one line each"},
		{"o", "s", " \n", "needs a text"},
	} {
		if _, err := b.Post(tc.from, tc.subject, tc.body); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Post(%q, %q, %q): %v, want %q", tc.from, tc.subject, tc.body, err, tc.want)
		}
	}
	if _, err := b.Post("o", "s", strings.Repeat("x", MaxBulletinSize)); err == nil {
		t.Error("an oversized bulletin was accepted")
	}
	dir := writeTree(t, map[string]string{"1.eml": "From: a\nnot a header line\n\nbody\n"})
	if err := b.LoadBulletins(dir); err == nil || !strings.Contains(err.Error(), "1.eml:2: malformed header line") {
		t.Errorf("a broken bulletin file: %v", err)
	}
	for range MaxBulletins - b.Len() {
		if _, err := b.Post("o", "s", "t"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Post("o", "s", "t"); err == nil {
		t.Error("the board took more than MaxBulletins")
	}
}

func TestResetAll(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	a, _ := vs.New("a")
	b, _ := vs.New("b")
	for _, v := range []*Visitor{a, b} {
		md, _ := v.Sandbox.Open("guest")
		md.Delete([]int{0})
		md.Close()
	}
	if n := vs.ResetAll(); n != 2 {
		t.Errorf("ResetAll reset %d sandboxes", n)
	}
	for _, v := range []*Visitor{a, b} {
		if n := len(v.Sandbox.Messages("guest")); n != 7 {
			t.Errorf("after ResetAll: %d messages", n)
		}
		if e, _, _ := v.Events.Since(0); len(e) != 1 || e[0].Type != EntryReset {
			t.Errorf("the visitor's page was not told: %+v", e)
		}
	}
}

// A bulletin's body is held once, whatever the number of accounts: each
// account's copy adds only its rewritten header.
func TestBulletinBodiesAreShared(t *testing.T) {
	var b Board
	body := strings.Repeat("All work and no play makes a long bulletin.\n", 5000) // ~220 KB
	if _, err := b.Post("Organiser <org@example.org>", "Big news", body); err != nil {
		t.Fatal(err)
	}
	before := heapInUse()
	var copies []*Message
	for i := range 100 {
		msgs, _ := b.deliver(fmt.Sprintf("student%d", i), 0)
		copies = append(copies, msgs...)
	}
	grew := heapInUse() - before
	if len(copies) != 100 {
		t.Fatalf("%d copies", len(copies))
	}
	if &copies[0].data[0] != &copies[99].data[0] {
		t.Error("two accounts' copies hold the body twice")
	}
	if grew > 200<<10 { // 100 headers, not 100 bodies of 220 KB
		t.Errorf("100 copies of a 220 KB bulletin took %d KB of heap", grew>>10)
	}
	got, _ := io.ReadAll(copies[42].Reader())
	if !bytes.HasPrefix(got, []byte("To: student42\r\n")) || !bytes.HasSuffix(got, []byte("long bulletin.\r\n")) || int64(len(got)) != copies[42].Size() {
		t.Errorf("copy 42 reads %d octets (size %d), starting %.40q", len(got), copies[42].Size(), got)
	}
}
