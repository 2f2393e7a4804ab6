package sessions

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/pop3playground/pop3playground/pop3/limit"
)

// syntheticMbox is an mbox of n messages of about size octets each, with
// LF line ends, quoted ">From " lines and blank lines between messages,
// as mail tools write them.
func syntheticMbox(n, size int) []byte {
	var b strings.Builder
	line := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2) + "\n"
	for i := range n {
		fmt.Fprintf(&b, "From sender%d@example.org Mon Nov 23 10:00:00 2026\n", i)
		fmt.Fprintf(&b, "From: Sender %d <sender%d@example.org>\nTo: guest@example.org\nSubject: message %d\nMessage-ID: <%d@example.org>\n\n", i, i, i, i)
		for written := 0; written < size; written += len(line) {
			b.WriteString(line)
		}
		b.WriteString(">From the archives, a quoted line.\n\n")
	}
	return []byte(b.String())
}

// BenchmarkParseMbox reports the mbox parsing rate (MB/s) and the heap
// the parsed messages keep per octet of mbox (target: ≤ 1.3).
func BenchmarkParseMbox(b *testing.B) {
	data := syntheticMbox(2000, 25_000) // ~50 MB
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var kept float64
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		msgs, err := parseMbox(data, "bench.mbox")
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		kept = float64(after.HeapAlloc-before.HeapAlloc) / float64(len(data))
		if len(msgs) != 2000 {
			b.Fatalf("%d messages", len(msgs))
		}
		runtime.KeepAlive(msgs)
		b.StartTimer()
	}
	b.ReportMetric(kept, "heap/mbox-octet")
}

func TestSyntheticMboxParses(t *testing.T) {
	msgs, err := parseMbox(syntheticMbox(3, 300), "s.mbox")
	if err != nil || len(msgs) != 3 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	s := string(msgs[1].data)
	if !strings.HasPrefix(s, "From: Sender 1 <sender1@example.org>\r\n") || !strings.HasSuffix(s, "\r\nFrom the archives, a quoted line.\r\n") || strings.Contains(s, "\n\n") {
		t.Errorf("message 2: %q … %q", s[:60], s[len(s)-60:])
	}
}

// BenchmarkDeliveredHeap delivers 2.2 KB messages into many visitors'
// sandboxes and reports the heap the messages keep per octet delivered
// (target: close to 1; the octets are the stored message's, with the
// playground's Received field, as RETR sends them), and, apart, what the
// delivery added to the visitors' event logs (bounded at EventLogSize
// entries a visitor, whatever is delivered).
func BenchmarkDeliveredHeap(b *testing.B) {
	body := "From: a@example.org\r\nSubject: a message\r\n\r\n" + strings.Repeat("The quick brown fox jumps over the lazy dog.\r\n", 48)
	const visitors, each = 1000, 20
	var kept, events float64
	for range b.N {
		vs := NewVisitors(loadDefault(b))
		vs.Rate = limit.RateLimiter{}
		d := NewDelivery(vs, "play.example")
		d.PerVisitor, d.PerAddress = limit.RateLimiter{}, limit.RateLimiter{}
		var vv []*Visitor
		for range visitors {
			v, err := vs.Create(NewToken(), "192.0.2.1")
			if err != nil {
				b.Fatal(err)
			}
			vv = append(vv, v)
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, v := range vv {
			for range each {
				s := &smtpSession{d: d, helo: "laptop", ip: "192.0.2.1", from: "a@example.org"}
				if err := s.Rcpt(v.PersonalLogin("guest")+"@play.example", nil); err != nil {
					b.Fatal(err)
				}
				if err := s.Data(strings.NewReader(body)); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		var after, noEvents runtime.MemStats
		runtime.ReadMemStats(&after)
		for _, v := range vv {
			v.Events.mu.Lock()
			v.Events.ring = nil
			v.Events.mu.Unlock()
		}
		runtime.GC()
		runtime.ReadMemStats(&noEvents)
		kept = float64(noEvents.HeapAlloc-before.HeapAlloc) / float64(d.Stored())
		events = float64(after.HeapAlloc-noEvents.HeapAlloc) / float64(visitors*each)
		runtime.KeepAlive(vv)
	}
	b.ReportMetric(kept, "heap-B/octet")
	b.ReportMetric(events, "event-B/message")
}
