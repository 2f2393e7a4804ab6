package sessions

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// A Proof is the lab's verdict on a message the client saved (or its
// SHA-256 digest).
type Proof struct {
	Name string `json:"name"`
	N    int    `json:"n,omitempty"` // the lab message it is (or most resembles)
	OK   bool   `json:"ok"`
	Line int    `json:"line,omitempty"` // the first line that differs, from 1
	Saw  string `json:"saw,omitempty"`
	Want string `json:"want,omitempty"`
	Why  string `json:"why"`
}

// maxProofs bounds the proofs a lab keeps.
const maxProofs = 50

// Submit compares saved messages (name → content) and digests (hex
// SHA-256, optionally followed by a name, as sha256sum prints them) with
// the lab's maildrop, and keeps the verdicts for the card.
func (l *Lab) Submit(files map[string][]byte, digests []string) []Proof {
	var out []Proof
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		out = append(out, proveFile(name, files[name]))
	}
	for _, d := range digests {
		out = append(out, proveDigest(d))
	}
	l.record(labFact{Op: "proof", Proofs: out})
	return out
}

// labVariant is a digest of a lab message as a buggy client would save
// it, and the bug.
type labVariant struct {
	n   int
	why string
}

// labDigests maps the SHA-256 of each lab message, and of the usual wrong
// copies of it, to what they are.
var labDigests = sync.OnceValue(func() map[string]labVariant {
	m := map[string]labVariant{}
	for i, msg := range labWorld().Account(LabAccount).Messages {
		exact := msg.data
		lf := bytes.ReplaceAll(exact, []byte("\r\n"), []byte("\n"))
		stuffed := dotStuff(exact)
		add := func(b []byte, why string) {
			sum := sha256.Sum256(b)
			if _, ok := m[hex.EncodeToString(sum[:])]; !ok {
				m[hex.EncodeToString(sum[:])] = labVariant{i + 1, why}
			}
		}
		add(exact, "")
		add(lf, "saved with LF line ends: the same message")
		add(stuffed, "the stuffed dots were not removed: a line that starts with \"..\" on the wire is a body line that starts with \".\" (RFC 1939 §3)")
		add(bytes.ReplaceAll(stuffed, []byte("\r\n"), []byte("\n")), "the stuffed dots were not removed (RFC 1939 §3); saved with LF line ends")
		add(append(slices.Clone(exact), ".\r\n"...), "the final \".\" line was kept: it ends the reply and is not part of the message (RFC 1939 §3)")
		add(bytes.TrimSuffix(exact, []byte("\r\n")), "the message's last CRLF was dropped")
	}
	return m
})

// dotStuff is a message as it travels in a multi-line reply, without the
// final "." line.
func dotStuff(b []byte) []byte {
	var out []byte
	for line := range bytes.SplitAfterSeq(b, []byte("\r\n")) {
		if len(line) > 0 && line[0] == '.' {
			out = append(out, '.')
		}
		out = append(out, line...)
	}
	return out
}

func proveDigest(line string) Proof {
	f := strings.Fields(line)
	if len(f) == 0 {
		return Proof{Name: line, Why: "empty line"}
	}
	d := strings.ToLower(f[0])
	p := Proof{Name: d}
	if len(f) > 1 {
		p.Name = strings.TrimPrefix(f[len(f)-1], "*")
	}
	v, ok := labDigests()[d]
	switch {
	case len(d) != 64 || strings.Trim(d, "0123456789abcdef") != "":
		p.Why = "not a SHA-256 digest (64 hexadecimal digits, as sha256sum prints them)"
	case !ok:
		p.Why = "matches no message of the lab's maildrop, nor the usual wrong copies: send the file itself to see the first line that differs"
	case v.why == "" || strings.HasPrefix(v.why, "saved with LF"):
		p.N, p.OK, p.Why = v.n, true, "message "+strconv.Itoa(v.n)+", as sent"
	default:
		p.N, p.Why = v.n, "message "+strconv.Itoa(v.n)+": "+v.why
	}
	return p
}

// proveFile compares a saved message with the lab message it most
// resembles, and names the first line that differs and its likely cause.
func proveFile(name string, b []byte) Proof {
	sum := sha256.Sum256(b)
	if p := proveDigest(hex.EncodeToString(sum[:]) + "  " + name); p.OK {
		return p
	}
	got := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	best, bestLine := 0, -1
	var want []string
	for i, m := range labWorld().Account(LabAccount).Messages {
		w := strings.Split(strings.ReplaceAll(string(m.data), "\r\n", "\n"), "\n")
		k := 0
		for k < len(w) && k < len(got) && w[k] == got[k] {
			k++
		}
		if k > bestLine {
			best, bestLine, want = i+1, k, w
		}
	}
	p := Proof{Name: name, N: best, Line: bestLine + 1}
	var saw, sent string
	if bestLine < len(got) {
		saw = got[bestLine]
	}
	if bestLine < len(want) {
		sent = want[bestLine]
	}
	p.Saw, p.Want = truncate(saw, 120), truncate(sent, 120)
	p.Why = fmt.Sprintf("message %d, line %d: %s", best, bestLine+1, lineCause(saw, sent, bestLine >= len(got)-1, bestLine >= len(want)-1))
	return p
}

// lineCause names the likely cause of a saved line that differs from the
// one sent.
func lineCause(saw, sent string, savedEnded, sentEnded bool) string {
	switch {
	case strings.HasPrefix(sent, ".") && saw == "."+sent:
		return "starts with \"" + truncate(saw, 12) + "\": the stuffed dot was not removed (RFC 1939 §3)"
	case savedEnded && !sentEnded:
		return "the saved message ends here, the sent one goes on: the client stopped early (a line \".\" inside the body is \"..\" on the wire; a reply can take many reads) (RFC 1939 §3)"
	case sentEnded && !savedEnded:
		return "the saved message goes on after the end: the final \".\" line, or the next reply, was kept (RFC 1939 §3)"
	case len(saw) < len(sent) && strings.HasPrefix(sent, saw):
		return fmt.Sprintf("cut at %d octets of %d: lines may be 998 octets long (RFC 5322 §2.1.1), and a read may return part of one", len(saw), len(sent))
	case strings.TrimRight(saw, "\r") == sent:
		return "a stray CR: the CRLF line end was kept as well as removed"
	}
	return "the octets differ: save the message's octets as received, without decoding or re-encoding 8-bit text or headers (RFC 1939 §3, RFC 6532)"
}
