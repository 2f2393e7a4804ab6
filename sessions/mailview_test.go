package sessions

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

func worldMessage(t *testing.T, i int) []byte {
	t.Helper()
	b, err := io.ReadAll(loadDefault(t).Account("guest").Messages[i].Reader())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestViewMessage(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	// The routing message: four hops, oldest first, dated with delays.
	v, err := vs.ViewMessage(worldMessage(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Route) != 4 || !strings.Contains(v.Route[0].From, "dorm-wifi-44.students.example.net") ||
		!strings.HasPrefix(v.Route[3].From, "mx2.playground.example") || v.Route[1].Delay <= 0 {
		t.Errorf("route %+v", v.Route)
	}
	if v.Subject != "How did this message reach you?" || len(v.Text) != 1 {
		t.Errorf("subject %q, %d text parts", v.Subject, len(v.Text))
	}
	// RFC 2047 subject.
	if v, _ := vs.ViewMessage(worldMessage(t, 1)); v.Subject != "Réunion au café ☕ — vendredi" {
		t.Errorf("decoded subject %q", v.Subject)
	}
	// An attachment is listed, not shown.
	if v, _ := vs.ViewMessage(worldMessage(t, 4)); len(v.Attachments) != 1 || v.Attachments[0].Name != "lab-sheet.txt" || v.Attachments[0].Size == 0 {
		t.Errorf("attachments %+v", v.Attachments)
	}
	// HTML, quoted-printable and base64 parts, and the playground's hop.
	raw := "Received: from laptop ([127.0.0.1])\r\n\tby play.example (POP3 Playground) with ESMTP id " + vs.newHopID() + "\r\n\tfor <a@play.example>; Tue, 24 Nov 2026 10:00:05 +0000\r\n" +
		"Received: from laptop by smtp.example.org with ESMTPSA id y2; Tue, 24 Nov 2026 10:00:00 +0000\r\n" +
		"Subject: =?ISO-8859-1?Q?caf=E9?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nau lait\r\n" +
		"--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+PHNjcmlwdD5wYXJlbnQucHduZWQ9MTwvc2NyaXB0PmhpPC9wPg==\r\n--b--\r\n"
	v, err = vs.ViewMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if v.Subject != "café" || len(v.Text) != 1 || v.Text[0] != "café au lait" || len(v.HTML) != 1 || !strings.Contains(v.HTML[0], "<script>") {
		t.Errorf("view %+v", v)
	}
	if len(v.Route) != 2 || v.Route[0].Playground || !v.Route[1].Playground || v.Route[1].With != "ESMTP" || v.Route[1].Delay.Seconds() != 5 {
		t.Errorf("route %+v", v.Route)
	}
	if _, err := vs.ViewMessage([]byte("not a message")); err == nil {
		t.Error("junk viewed")
	}
}

// A sender who writes a "(POP3 Playground)" hop of their own is not
// believed: the playground knows the one it added, by its signed id, and
// only as the newest field.
func TestViewMessageKnowsItsOwnHop(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	own := "Received: from laptop ([127.0.0.1])\r\n\tby play.example (POP3 Playground) with ESMTP id " + vs.newHopID() + "\r\n\tfor <a@play.example>; Tue, 24 Nov 2026 10:00:05 +0000\r\n"
	forged := "Received: from evil by play.example (POP3 Playground) with ESMTP id 0123456789ab.0123456789ab; Tue, 24 Nov 2026 09:00:00 +0000\r\n"
	copied := strings.Replace(own, "10:00:05", "09:30:00", 1) // a real id, copied below the top
	for _, tc := range []struct {
		name string
		raw  string
		want []bool // Playground, oldest hop first
	}{
		{"own on top of a forged one", own + forged + "Subject: x\r\n\r\nx\r\n", []bool{false, true}},
		{"forged alone", forged + "Subject: x\r\n\r\nx\r\n", []bool{false}},
		{"a real id copied below the top", own + copied + "Subject: x\r\n\r\nx\r\n", []bool{false, true}},
		{"another playground's key", strings.Replace(own, "id ", "id 1", 1) + "Subject: x\r\n\r\nx\r\n", []bool{false}},
	} {
		v, err := vs.ViewMessage([]byte(tc.raw))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []bool
		for _, h := range v.Route {
			got = append(got, h.Playground)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: Playground hops %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzViewMessage(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n--q--\r\n"))
	f.Add([]byte("Received: from a by b; junk\r\nReceived: ;\r\n\r\n"))
	vs := NewVisitors(loadDefault(f))
	f.Fuzz(func(t *testing.T, raw []byte) {
		vs.ViewMessage(raw)
	})
}
