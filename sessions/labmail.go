package sessions

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
)

// A labMessage is one message of the lab's maildrop and the bug it is
// there to catch.
type labMessage struct {
	subject string
	catches string
	body    string // after the header; LF line ends, made CRLF
}

// labMessages make the usual bugs of a POP3 client show (RFC 1939 §3).
var labMessages = []labMessage{
	{subject: "Dots", catches: "a client that does not remove the stuffed dot, or stops at a line \".\" inside the body",
		body: ".This first body line starts with a dot.\nA line holding a single dot follows:\n.\nTwo dots:\n..\nA dot and a word:\n.x\n...and three dots.\nThe end.\n"},
	{subject: "A 998-octet line", catches: "a client that cuts or wraps long lines (RFC 5322 §2.1.1 allows 998 octets)",
		body: "The next line is 998 octets long, the most RFC 5322 allows:\n" + strings.Repeat("0123456789", 99) + "abcdefgh\nThe end.\n"},
	{subject: "=?UTF-8?B?OC1iaXQgdGV4dCDigJQgw6lsw6h2ZSwgY2Fmw6k=?=", catches: "a client that reads the message as ASCII or decodes it as it goes: 8-bit octets, an RFC 2047 header",
		body: "Élève, café, naïve, Zürich, 東京, emoji 📬: these octets are UTF-8, sent as they are.\n"},
	{subject: "An empty body", catches: "a client that expects a body after the blank line", body: ""},
	{subject: "Ends with a blank line", catches: "a client that trims the message's last empty line", body: "Two blank lines follow.\n\n\n"},
	{subject: "A large message (1 MB)", catches: "a client that reads a reply with one read, or holds a fixed buffer", body: largeBody()},
}

func largeBody() string {
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "%06d the quick brown fox jumps over the lazy dog; line %d of the large message\n", i, i)
	}
	return b.String()
}

// labWorld is the world the lab's sandboxes are made of: one account,
// LabAccount, holding labMessages.
var labWorld = sync.OnceValue(func() *World {
	msgs := make([]*Message, len(labMessages))
	for i, lm := range labMessages {
		raw := fmt.Sprintf("From: Client lab <lab@playground.invalid>\nTo: %s@playground.invalid\nSubject: %s\nDate: Sun, 6 Dec 2026 12:00:%02d +0000\nMessage-ID: <lab-%d@playground.invalid>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s",
			LabAccount, lm.subject, i, i+1, lm.body)
		m, err := newMessage([]byte(raw), "lab", 1)
		if err != nil {
			panic(err)
		}
		msgs[i] = m
	}
	assignUIDs(msgs)
	return &World{accounts: map[string]*Account{LabAccount: newAccount(LabAccount, LabPassword, msgs)}, names: []string{LabAccount}}
})

// A LabMessage is what the lab's card says of a message of its maildrop.
type LabMessage struct {
	N       int    `json:"n"`
	Subject string `json:"subject"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"` // of the message as sent, dot-stuffing undone
	Catches string `json:"catches"`
}

// LabMaildrop describes the lab's messages as a new session gets them.
func LabMaildrop() []LabMessage {
	a := labWorld().Account(LabAccount)
	out := make([]LabMessage, len(a.Messages))
	for i, m := range a.Messages {
		sum := sha256.Sum256(m.data)
		out[i] = LabMessage{N: i + 1, Subject: m.Subject, Size: m.Size(), SHA256: hex.EncodeToString(sum[:]), Catches: labMessages[i].catches}
	}
	return out
}
