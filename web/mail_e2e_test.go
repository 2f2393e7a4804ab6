package web_test

import (
	"io"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/pires/go-proxyproto"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/web"
)

// withMail runs an SMTP listener delivering into the env's visitors and
// tells the page its domain; it returns the listener's address.
func withMail(t *testing.T, addr *string) option {
	return func(_ *pop3.Server, c *web.Config) {
		c.MailDomain = "play.example"
		if lessons, err := sessions.BuiltinLessons(); err == nil {
			c.Visitors.Lessons = lessons // the mail lesson too
		}
		s := gosmtp.NewServer(sessions.NewDelivery(c.Visitors, "play.example"))
		s.Domain = "play.example"
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lb, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		// As the binary does: a public listener, and the bridge's own,
		// where the PROXY header is required.
		pl := &proxyproto.Listener{Listener: lb, ReadHeaderTimeout: 5 * time.Second,
			ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil }}
		go s.Serve(l)
		go s.Serve(pl)
		t.Cleanup(func() { s.Close() })
		*addr = l.Addr().String()
		_, port, _ := net.SplitHostPort(*addr)
		c.SMTPAddr, c.SMTPPort = lb.Addr().String(), port
	}
}

func sendMail(t *testing.T, addr, to, msg string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("teacher@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	io.WriteString(w, msg)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
}

// The page shows the personal address; mail sent to it is announced in
// the inspector as arriving at the next login, and the next login has it.
func TestBrowserMailArrivesAtTheNextLogin(t *testing.T) {
	ctx := browserContext(t)
	var smtpAddr string
	e := newEnv(t, withMail(t, &smtpAddr))
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	pop3test.WaitFor(t, func() bool {
		return strings.HasSuffix(evalString(t, ctx, `document.getElementById("pl-address").textContent`), "@play.example")
	})
	address := evalString(t, ctx, `document.getElementById("pl-address").textContent`)
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	waitTerm(t, ctx, "guest's maildrop has 7 messages", 1)
	sendMail(t, smtpAddr, address, "Subject: Welcome to SMTP\r\n\r\nHello.\r\n")
	pop3test.WaitFor(t, func() bool {
		return strings.Contains(evalString(t, ctx, `document.getElementById("inspector").textContent`), "you will see it when you log in again")
	})
	typeLine(t, ctx, "STAT")
	waitTerm(t, ctx, "+OK 7 ", 1)
	typeLine(t, ctx, "QUIT")
	waitTerm(t, ctx, "Connection closed by foreign host.", 1)
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "+OK POP3 server ready", 2)
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	waitTerm(t, ctx, "guest's maildrop has 8 messages", 1)
	typeLine(t, ctx, "TOP 8 0")
	waitTerm(t, ctx, "by play.example (POP3 Playground) with ESMTP", 1)
}

// The page's SMTP terminal: the same bridge to the SMTP listener, typed
// by hand as the lab sheets do with telnet; the message arrives at the
// next POP3 login with the browser named in its Received field.
func TestBrowserSMTPTerminal(t *testing.T) {
	ctx := browserContext(t)
	var smtpAddr string
	e := newEnv(t, withMail(t, &smtpAddr))
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	pop3test.WaitFor(t, func() bool {
		return strings.Contains(evalString(t, ctx, `document.getElementById("pl-address").textContent`), "@")
	})
	address := evalString(t, ctx, `document.getElementById("pl-address").textContent`)
	if err := chromedp.Run(ctx, chromedp.Click("#smtp summary", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	smtpText := func() string { return evalString(t, ctx, `document.getElementById("smtp-out").textContent`) }
	pop3test.WaitFor(t, func() bool { return strings.Contains(smtpText(), "220 play.example ESMTP") })
	for _, line := range []string{"EHLO laptop", "MAIL FROM:<me@example.org>", "RCPT TO:<" + address + ">", "DATA",
		"Subject: typed by hand", "", "Hello from the SMTP terminal.", ".", "QUIT"} {
		if err := chromedp.Run(ctx, chromedp.SendKeys("#smtp-input", line+"\r", chromedp.ByID)); err != nil {
			t.Fatal(err)
		}
	}
	pop3test.WaitFor(t, func() bool { return strings.Contains(smtpText(), "221 ") })
	if s := smtpText(); !strings.Contains(s, "Send the message now: header lines") || !strings.Contains(s, "The greeting: the server is ready") {
		t.Errorf("the SMTP replies are not explained:\n%s", s)
	}
	if s := smtpText(); !strings.Contains(s, "354 ") || !strings.Contains(s, "250 2.0.0") || strings.Contains(s, "\n500 ") || strings.Contains(s, "\n502 ") {
		t.Fatalf("the SMTP dialogue:\n%s", s)
	}
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	waitTerm(t, ctx, "guest's maildrop has 8 messages", 1)
	typeLine(t, ctx, "TOP 8 0")
	waitTerm(t, ctx, "Subject: typed by hand", 1)
	if s := evalString(t, ctx, `document.getElementById("term-out").textContent`); !strings.Contains(s, "Received: from laptop ([127.0.0.1])") {
		t.Errorf("the Received field does not name the browser: %s", s[max(0, len(s)-600):])
	}
}

// The compose panel sends by driving the SMTP terminal: the student sees
// the dialogue, the dot-led line arrives as written, at the next login.
func TestBrowserComposePanel(t *testing.T) {
	ctx := browserContext(t)
	var smtpAddr string
	e := newEnv(t, withMail(t, &smtpAddr))
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	err := chromedp.Run(ctx,
		chromedp.Click("#smtp summary", chromedp.ByQuery),
		chromedp.SendKeys("#c-subject", "Composed", chromedp.ByID),
		chromedp.SendKeys("#c-body", "First line\n.dot line\nLast", chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if to := evalString(t, ctx, `document.getElementById("c-to").value`); !strings.HasSuffix(to, "@play.example") {
		t.Fatalf("To is pre-filled with %q, want the student's own address", to)
	}
	if err := chromedp.Run(ctx, chromedp.Click(`#compose button[type=submit]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool {
		return strings.HasPrefix(evalString(t, ctx, `document.getElementById("compose-status").textContent`), "Sent:")
	})
	dialogue := evalString(t, ctx, `document.getElementById("smtp-out").textContent`)
	for _, want := range []string{"MAIL FROM:<guest.", "RCPT TO:<guest.", "354 ", "..dot line", "250 2.0.0"} {
		if !strings.Contains(dialogue, want) {
			t.Errorf("the SMTP terminal lacks %q:\n%s", want, dialogue)
		}
	}
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	waitTerm(t, ctx, "guest's maildrop has 8 messages", 1)
	typeLine(t, ctx, "RETR 8")
	waitTerm(t, ctx, "Subject: Composed", 1)
	waitTerm(t, ctx, "..dot line", 1) // on the POP3 wire it is stuffed again
}

// "View as a mail client": the route drawn oldest first with the
// playground's hop marked, the text shown as text, and an HTML part with
// a script that runs nothing.
func TestBrowserMailClientView(t *testing.T) {
	ctx := browserContext(t)
	var smtpAddr string
	e := newEnv(t, withMail(t, &smtpAddr))
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	pop3test.WaitFor(t, func() bool {
		return strings.Contains(evalString(t, ctx, `document.getElementById("pl-address").textContent`), "@")
	})
	address := evalString(t, ctx, `document.getElementById("pl-address").textContent`)
	sendMail(t, smtpAddr, address, "Received: from laptop by smtp.example.org with ESMTPSA id y2; Mon, 23 Nov 2026 10:00:00 +0000\r\n"+
		"From: Ada <ada@example.org>\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n<b>not bold</b>\r\n"+
		"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p id=x>hi<script>parent.document.title='pwned';parent.pwned=1</script><img src=http://198.51.100.9/track.png></p>\r\n--b--\r\n")
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	typeLine(t, ctx, "RETR 8")
	waitTerm(t, ctx, "Subject: =?UTF-8?Q?caf=C3=A9?=", 1)
	waitTerm(t, ctx, "end of the reply:", 1)
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById("view-message").click()`, nil)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for evalString(t, ctx, `String(document.getElementById("mailview").hidden)`) != "false" {
		if time.Now().After(deadline) {
			t.Fatalf("the view never opened; the page says %q", evalString(t, ctx, `document.getElementById("transcript-status").textContent`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	view := evalString(t, ctx, `document.getElementById("mailview").textContent`)
	for _, want := range []string{"Subject", "café", "Ada <ada@example.org>", "smtp.example.org received it from laptop with ESMTPSA",
		"play.example received it from localhost ([127.0.0.1]) with ESMTP", "this playground", "<b>not bold</b>"} {
		if !strings.Contains(view, want) {
			t.Errorf("the view lacks %q:\n%s", want, view)
		}
	}
	if hops := evalString(t, ctx, `[...document.querySelectorAll("#mv-route li")].map(li => li.className).join(",")`); hops != "hop,hop own-hop" {
		t.Errorf("hops %q: want the playground's last", hops)
	}
	// The playground's hop is a list item like the other, one row of the
	// same width, its number shown: not a grid of the page's.
	if box := evalString(t, ctx, `(() => { const [a, b] = document.querySelectorAll("#mv-route li");
		const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
		return [getComputedStyle(b).display, Math.round(rb.width) === Math.round(ra.width), rb.height <= 2 * ra.height].join(" ") })()`); box != "list-item true true" {
		t.Errorf("the playground's hop renders as %q; want \"list-item true true\" (a list item as wide as the other, at most twice as tall)", box)
	}
	time.Sleep(300 * time.Millisecond) // give a script every chance to run
	if got := evalString(t, ctx, `String(window.pwned) + " " + document.title`); got != "undefined POP3 Playground" {
		t.Errorf("the message's script ran: %q", got)
	}
	if n := evalString(t, ctx, `String(document.querySelectorAll("#mailview b, #mailview img").length)`); n != "0" {
		t.Error("the message's markup reached the page outside the sandboxed iframe")
	}
	if sb := evalString(t, ctx, `document.querySelector("#mv-body iframe").getAttribute("sandbox")`); sb != "" {
		t.Errorf("the iframe's sandbox is %q, want empty (everything blocked)", sb)
	}
}
