package sessions

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

func TestBuiltinLessons(t *testing.T) {
	lessons, err := BuiltinLessons()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range lessons {
		ids = append(ids, l.ID)
		if l.Title == "" || l.Summary == "" || l.Intro == "" {
			t.Errorf("%s: title, summary or introduction missing", l.ID)
		}
		for i, s := range l.Steps {
			if s.Title == "" || s.Text == "" {
				t.Errorf("%s step %d: title or text missing", l.ID, i+1)
			}
		}
	}
	want := "01-lab-sheet 02-dele-rset-update 03-peeking 04-lock 05-apop 06-capa-stls 07-mail-in"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("lessons %s, want %s", got, want)
	}
}

func TestParseLessonErrors(t *testing.T) {
	const head = "---\ntitle: T\n---\n"
	for _, tc := range []struct{ src, want string }{
		{"", "1: a lesson starts with front matter"},
		{"---\ntitle: T\n", "2: the front matter is not closed"},
		{"---\ntitel: T\n---\n## S\ncheck: ok STAT\n", `2: unknown front matter key "titel"`},
		{"---\nsummary: S\n---\n## S\ncheck: ok STAT\n", "3: the front matter has no title"},
		{head + "Intro only.\n", "4: the lesson has no steps"},
		{head + "## Step one\nText.\n", `4: step "Step one" has no check: line`},
		{head + "## S\ncheck: ok STAT\ncheck: ok LIST\n", `6: step "S" has a second check: line`},
		{head + "## S\ncheck: ok FROB\n", "5: \"ok FROB\": the server has no command FROB"},
		{head + "## S\ncheck: sometimes STAT\n", "5: \"sometimes STAT\": a check starts with ok"},
		{head + "## S\ncheck: state LIMBO\n", "5: \"state LIMBO\": the states are"},
		{head + "## S\ncheck: event exploded\n", "5: \"event exploded\": unknown event"},
		{head + "## S\ncheck: ok STAT |\n", "5: empty check"},
		{head + "## S\ncheck: ok STAT\n```\ncode\n", "7: a ``` code block is not closed"},
		{head + "## S\ncheck: ok STAT\ndo: FROB 1\n", "6: do: \"FROB 1\": the server has no command FROB"},
		{head + "## S\ncheck: ok STAT\ndo: smtp: BDAT 3\n", "6: do: \"smtp: BDAT 3\": the SMTP terminal's commands are"},
		{head + "## S\ncheck: ok STAT\ndo: RETR {last}\n", "6: do: \"RETR {last}\": a line may hold {address}, {count} or {apop}"},
		{head + "## S\ncheck: ok STAT\ndo: STAT\ndo: LIST\n", `7: step "S" has a second do: line`},
	} {
		_, err := ParseLesson("x", tc.src)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}

	// The step bar's actions.
	l, err := ParseLesson("x", head+"## S\ncheck: ok STAT\ndo: QUIT | {connect} | smtp: RCPT TO:<{address}> | APOP guest {apop} | {reset}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(l.Steps[0].Do); got != "[{ QUIT} {connect } {smtp RCPT TO:<{address}>} { APOP guest {apop}} {reset }]" {
		t.Errorf("do: %s", got)
	}

	// A "## " line or a check: inside a code block is text.
	l, err = ParseLesson("x", head+"## S\ncheck: ok STAT\n```\n## not a step\ncheck: not a check\n```\n")
	if err != nil || len(l.Steps) != 1 || !strings.Contains(l.Steps[0].Text, "## not a step") {
		t.Errorf("code block: %v, %+v", err, l)
	}
}

func TestLoadLessonsFromADirectory(t *testing.T) {
	builtin, err := BuiltinLessons()
	if err != nil {
		t.Fatal(err)
	}
	dir := fstest.MapFS{
		"03-peeking.md": {Data: []byte("---\ntitle: Our own peeking\n---\n## Count\ncheck: ok STAT\n")},
		"90-ours.md":    {Data: []byte("---\ntitle: Ours\n---\n## No-op\ncheck: ok NOOP\n")},
		"README.txt":    {Data: []byte("not a lesson")},
	}
	lessons, err := LoadLessons(dir, builtin)
	if err != nil {
		t.Fatal(err)
	}
	if len(lessons) != len(builtin)+1 || lessons[2].Title != "Our own peeking" || lessons[len(lessons)-1].ID != "90-ours" {
		t.Errorf("got %d lessons, third %q, last %q", len(lessons), lessons[2].Title, lessons[len(lessons)-1].ID)
	}
	if builtin[2].Title == "Our own peeking" {
		t.Error("loading replaced a built-in lesson in place")
	}

	dir["50-broken.md"] = &fstest.MapFile{Data: []byte("---\ntitle: Broken\n---\n## S\ncheck: ok FROB\n")}
	if _, err := LoadLessons(dir, builtin); err == nil || !strings.HasPrefix(err.Error(), "50-broken.md:5: ") {
		t.Errorf("broken file: %v, want an error naming 50-broken.md:5", err)
	}
	if _, err := LoadLessons(fstest.MapFS{}, builtin); err == nil {
		t.Error("a directory without lessons is accepted")
	}
}

func TestCheckMatch(t *testing.T) {
	reply := func(verb string, ok bool, code string) Event {
		return Event{Kind: EventReply, Verb: verb, OK: ok, Code: code}
	}
	for _, tc := range []struct {
		check string
		e     Event
		args  string
		want  bool
	}{
		{"ok RETR 3", reply("RETR", true, ""), "3", true},
		{"ok RETR 3", reply("RETR", true, ""), "4", false},
		{"ok RETR 3", reply("RETR", false, ""), "3", false},
		{"ok retr", reply("RETR", true, ""), "7", true},
		{"ok TOP * 0", reply("TOP", true, ""), "5 0", true},
		{"ok TOP * 0", reply("TOP", true, ""), "5 1", false},
		{"ok TOP * 0", reply("TOP", true, ""), "5", false},
		{"err PASS", reply("PASS", false, "AUTH"), "****", true},
		{"reply PASS", reply("PASS", true, ""), "****", true},
		{"code in-use", reply("PASS", false, "IN-USE"), "", true},
		{"code [IN-USE]", reply("PASS", false, "AUTH"), "", false},
		{"ok PASS | ok APOP", reply("APOP", true, ""), "guest x", true},
		{"state transaction", Event{Kind: EventState, State: "TRANSACTION"}, "", true},
		{"state UPDATE", Event{Kind: EventState, State: "TRANSACTION"}, "", false},
		{"event marked", Event{Kind: EventMarked, Msg: 1}, "", true},
		{"event reset", Event{Kind: EventReset}, "", true},
		{"event update", Event{Kind: EventCommand, Verb: "QUIT"}, "", false},
	} {
		c, err := ParseCheck(tc.check)
		if err != nil {
			t.Fatalf("%s: %v", tc.check, err)
		}
		if got := c.Match(tc.e, strings.Fields(tc.args)); got != tc.want {
			t.Errorf("%q on %+v with %q: %v, want %v", tc.check, tc.e, tc.args, got, tc.want)
		}
	}
}

// TestLessonsTickFromARealSession drives lessons with a real POP3 server
// and a personal login over TCP: progress comes from what the server did.
func TestLessonsTickFromARealSession(t *testing.T) {
	w := loadDefault(t)
	vs := NewVisitors(w)
	lessons, err := BuiltinLessons()
	if err != nil {
		t.Fatal(err)
	}
	vs.Lessons = lessons
	srv := pop3.NewServer(&Backend{World: w, Visitors: vs})
	srv.Observer = vs
	srv.AuthFailureDelay = time.Millisecond
	srv.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	v, _ := vs.New("127.0.0.1")
	other, _ := vs.New("127.0.0.1")

	session := func(lines ...string) {
		t.Helper()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		read := func() string {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("after %q: %v", lines, err)
			}
			return line
		}
		read() // greeting
		for _, line := range lines {
			fmt.Fprintf(c, "%s\r\n", line)
			status := read()
			if strings.HasPrefix(status, "+OK") && (line == "LIST" || line == "UIDL" || strings.HasPrefix(line, "RETR") || strings.HasPrefix(line, "TOP")) {
				for read() != ".\r\n" {
				}
			}
		}
		if lines[len(lines)-1] == "QUIT" {
			if _, err := r.ReadString('\n'); !errors.Is(err, io.EOF) {
				t.Fatalf("no close after QUIT: %v", err)
			}
		}
	}
	progress := func(want map[string]int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := v.Progress()
			same := true
			for id, n := range want {
				same = same && got[id] == n
			}
			if same {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("progress %v, want %v", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	user := v.PersonalLogin("guest")

	// Only the lesson under way moves (the lab sheet, the first); RETR 1
	// is not RETR 3.
	session("USER "+user, "PASS visitor", "UIDL", "RETR 1", "LIST", "NOOP", "QUIT")
	progress(map[string]int{"01-lab-sheet": 2, "02-dele-rset-update": 0, "03-peeking": 0, "04-lock": 0, "05-apop": 0})
	session("USER "+user, "PASS visitor", "RETR 3", "STAT", "DELE 1", "QUIT")
	progress(map[string]int{"01-lab-sheet": 4, "02-dele-rset-update": 0, "03-peeking": 0})
	// Finished, the lab sheet hands over to lesson 2.
	session("USER "+user, "PASS visitor", "DELE 1", "LIST", "RSET", "DELE 1", "QUIT")
	progress(map[string]int{"02-dele-rset-update": 5, "03-peeking": 0})
	session("USER "+user, "PASS visitor", "LIST", "QUIT")
	progress(map[string]int{"02-dele-rset-update": 6})
	vs.Reset(v)
	progress(map[string]int{"02-dele-rset-update": 7})
	// Out of order does not count: TOP before STAT leaves lesson 3 at
	// STAT.
	session("USER "+user, "PASS visitor", "TOP 2 0", "UIDL", "STAT", "TOP 2 0", "UIDL", "QUIT")
	progress(map[string]int{"03-peeking": 3, "04-lock": 0})

	// The progress reached the visitor's event log, and nobody else's.
	entries, _, _ := v.Events.Since(0)
	var ticks []string
	for _, e := range entries {
		if e.Type == EntryLesson && e.Lesson.Lesson == "02-dele-rset-update" {
			ticks = append(ticks, fmt.Sprint(e.Lesson.Done, "/", e.Lesson.Steps))
		}
	}
	if got := strings.Join(ticks, " "); got != "1/7 2/7 3/7 4/7 5/7 6/7 7/7" {
		t.Errorf("lesson 2's log entries: %s", got)
	}
	if n := vs.Completions("02-dele-rset-update"); n != 1 {
		t.Errorf("lesson 2 completed %d times", n)
	}
	if p := other.Progress(); len(p) != 0 {
		t.Errorf("another visitor made progress: %v", p)
	}

	vs.RestartLesson(v, lessons[1])
	if p := v.Progress(); p["02-dele-rset-update"] != 0 || p["01-lab-sheet"] != 4 {
		t.Errorf("after restarting lesson 2: %v", p)
	}
}

// Every built-in step offers the step bar something to press: a lesson can
// be finished from the bar alone (web: TestBrowserStepBarAloneFinishesTheLessons).
func TestBuiltinStepsHaveActions(t *testing.T) {
	lessons, err := BuiltinLessons()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lessons {
		for i, st := range l.Steps {
			if len(st.Do) == 0 {
				t.Errorf("%s step %d (%s) has no do: line", l.ID, i+1, st.Title)
			}
		}
	}
}

func TestLessonWarnings(t *testing.T) {
	l, err := ParseLesson("x", "---\ntitle: T\n---\n## S\ncheck: ok STAT\ndo: USER bob | PASS pw | RETR 9\n## A\ncheck: ok APOP\ndo: APOP guest {apop}\n")
	if err != nil {
		t.Fatal(err)
	}
	world := loadDefault(t)
	got := world.LessonWarnings([]*Lesson{l})
	want := []string{"lesson x, step 1 (S): USER bob: the world has no account bob"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	l2, _ := ParseLesson("y", "---\ntitle: T\n---\n## S\ncheck: ok STAT\ndo: USER guest | PASS wrong | TOP 8 0\n")
	got = world.LessonWarnings([]*Lesson{l2})
	if len(got) != 2 || !strings.Contains(got[0], "PASS wrong is not guest's password") || !strings.Contains(got[1], "TOP 8 0 names message 8, and guest has 7") {
		t.Errorf("warnings %q", got)
	}
	builtin, _ := BuiltinLessons()
	if got := world.LessonWarnings(builtin); len(got) != 0 {
		t.Errorf("the built-in lessons on the embedded world: %q", got)
	}
}
