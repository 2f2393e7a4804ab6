package sessions

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// What a mail client shows of a message (issue 13): the header decoded
// (RFC 2047), the text and HTML parts, the attachments, and the route the
// message took, read from its Received fields. The standard library's
// MIME packages suffice: nothing here needs a charset beyond UTF-8,
// US-ASCII and Latin-1, and other charsets are shown as they are, said so.

// A MailView is a message as a mail client shows it.
type MailView struct {
	From, To, Cc, Subject, Date string
	Text                        []string // text/plain parts, decoded
	HTML                        []string // text/html parts, decoded: for a sandboxed iframe only
	Attachments                 []Attachment
	Route                       []Hop // oldest first
	Notes                       []string
}

// An Attachment is a part a mail client would offer to save.
type Attachment struct {
	Name, Type string
	Size       int
}

// A Hop is one Received field: a server that handled the message.
type Hop struct {
	From, By, With, ID string
	Time               time.Time `json:",omitzero"`
	// Delay is the time since the hop before, when both are dated.
	Delay time.Duration
	// Playground is the hop this playground added on delivery.
	Playground bool
}

// MaxViewSize bounds the message a view is made of.
const MaxViewSize = 4 << 20

// Bounds of the MIME structure a view walks: a message of many thousand
// empty parts costs the view far more than its octets.
const (
	MaxViewParts = 200
	MaxViewDepth = 8
)

var (
	errTooManyParts = fmt.Errorf("the message has more than %d MIME parts: this view shows messages of at most %d", MaxViewParts, MaxViewParts)
	errTooDeep      = fmt.Errorf("the message's MIME parts are nested more than %d deep: this view shows messages of at most %d levels", MaxViewDepth, MaxViewDepth)
)

// ViewMessage parses raw (a message as RETR sends it, dot-unstuffed). The
// route marks as the playground's the hop it added on delivery: the
// newest Received field, if its id is one the playground gave.
func (vs *Visitors) ViewMessage(raw []byte) (*MailView, error) {
	return viewMessage(raw, vs.IsOwnHop)
}

func viewMessage(raw []byte, ownHop func(id string) bool) (*MailView, error) {
	if len(raw) > MaxViewSize {
		return nil, errors.New("the message is too large to view")
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, errors.New("not a mail message: " + err.Error())
	}
	v := &MailView{}
	dec := mime.WordDecoder{CharsetReader: charsetReader}
	h := func(name string) string {
		s := m.Header.Get(name)
		if d, err := dec.DecodeHeader(s); err == nil {
			return d
		}
		return s
	}
	v.From, v.To, v.Cc, v.Subject, v.Date = h("From"), h("To"), h("Cc"), h("Subject"), h("Date")
	v.Route = route(m.Header["Received"], ownHop)
	parts := 0
	if err := v.walk(textproto(m.Header), m.Body, 0, &parts); err != nil {
		return nil, err
	}
	return v, nil
}

// textproto is the header's Content-Type and -Transfer-Encoding and
// -Disposition, which is all a part needs.
type partHeader struct{ ctype, encoding, disposition string }

func textproto(h mail.Header) partHeader {
	return partHeader{h.Get("Content-Type"), h.Get("Content-Transfer-Encoding"), h.Get("Content-Disposition")}
}

// walk adds a part, or the parts of a multipart, to the view; parts
// counts them all, against MaxViewParts.
func (v *MailView) walk(ph partHeader, body io.Reader, depth int, parts *int) error {
	if *parts++; *parts > MaxViewParts {
		return errTooManyParts
	}
	ctype, params, err := mime.ParseMediaType(ph.ctype)
	if ph.ctype == "" || err != nil {
		ctype, params = "text/plain", map[string]string{"charset": "us-ascii"}
	}
	if strings.HasPrefix(ctype, "multipart/") {
		if depth >= MaxViewDepth {
			return errTooDeep
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				break
			}
			if err := v.walk(partHeader{p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition")}, p, depth+1, parts); err != nil {
				return err
			}
		}
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(decodeTransfer(ph.encoding, body), MaxViewSize))
	disp, dparams, _ := mime.ParseMediaType(ph.disposition)
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	if wd, err := (&mime.WordDecoder{}).DecodeHeader(name); err == nil {
		name = wd
	}
	switch {
	case disp == "attachment" || name != "" || ctype != "text/plain" && ctype != "text/html":
		v.Attachments = append(v.Attachments, Attachment{Name: name, Type: ctype, Size: len(data)})
	case ctype == "text/html":
		v.HTML = append(v.HTML, v.text(data, params["charset"]))
	default:
		v.Text = append(v.Text, v.text(data, params["charset"]))
	}
	return nil
}

// text decodes a text part's charset: UTF-8 and US-ASCII as they are,
// Latin-1 by hand; anything else is shown as it is, with a note.
func (v *MailView) text(b []byte, charset string) string {
	switch strings.ToLower(charset) {
	case "", "utf-8", "us-ascii", "ascii":
		if !utf8.Valid(b) {
			v.Notes = append(v.Notes, "a part is not valid UTF-8: shown as Latin-1")
			return latin1(b)
		}
		return string(b)
	case "iso-8859-1", "latin1", "windows-1252":
		return latin1(b)
	}
	v.Notes = append(v.Notes, "a part is in "+charset+", which this view does not convert")
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func latin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/8)
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

func charsetReader(charset string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "windows-1252":
		b, err := io.ReadAll(in)
		return strings.NewReader(latin1(b)), err
	}
	return nil, errors.New("unknown charset " + charset)
}

func decodeTransfer(enc string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &stripSpace{r: r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// stripSpace drops the line ends base64 bodies are folded with.
type stripSpace struct{ r io.Reader }

func (s *stripSpace) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			p[j] = c
			j++
		}
	}
	if j == 0 && err == nil && n > 0 {
		return s.Read(p)
	}
	return j, err
}

var (
	receivedFrom = regexp.MustCompile(`(?i)\bfrom\s+(.+?)\s+(?:by|with|id|for|via)\b`)
	receivedBy   = regexp.MustCompile(`(?i)\bby\s+(\S+)`)
	receivedWith = regexp.MustCompile(`(?i)\bwith\s+(\S+)`)
	receivedID   = regexp.MustCompile(`(?i)\bid\s+(\S+)`)
)

// route reads the Received fields, newest first in the header, as hops
// oldest first: each server that handled the message added one on top.
func route(fields []string, ownHop func(id string) bool) []Hop {
	var hops []Hop
	for i := len(fields) - 1; i >= 0; i-- {
		f := strings.Join(strings.Fields(fields[i]), " ")
		clauses, date, _ := strings.Cut(f, ";")
		hop := Hop{}
		if m := receivedFrom.FindStringSubmatch(clauses + " by"); m != nil {
			hop.From = m[1]
		}
		if m := receivedBy.FindStringSubmatch(clauses); m != nil {
			hop.By = m[1]
		}
		if m := receivedWith.FindStringSubmatch(clauses); m != nil {
			hop.With = m[1]
		}
		if m := receivedID.FindStringSubmatch(clauses); m != nil {
			hop.ID = strings.TrimSuffix(m[1], ";")
		}
		hop.Playground = i == 0 && ownHop != nil && ownHop(hop.ID)
		if t, err := mail.ParseDate(strings.TrimSpace(date)); err == nil {
			hop.Time = t
			if n := len(hops); n > 0 && !hops[n-1].Time.IsZero() {
				hop.Delay = t.Sub(hops[n-1].Time)
			}
		}
		hops = append(hops, hop)
	}
	return hops
}
