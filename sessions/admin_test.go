package sessions

import (
	"strings"
	"testing"

	"github.com/pop3playground/pop3playground/pop3"
)

func TestOrganiserView(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	v, _ := vs.New("a")
	other, _ := vs.New("b")
	if v.Handle == other.Handle || len(v.Handle) != 8 || vs.ByHandle(v.Handle) != v || vs.ByHandle("nobody") != nil {
		t.Fatalf("handles %q, %q", v.Handle, other.Handle)
	}
	if name := v.Name(); len(strings.Fields(name)) != 3 || strings.Contains(name, v.ID) {
		t.Errorf("pseudonym %q", name)
	}

	info := &pop3.ConnInfo{ID: 7, Proxied: true, ProxyTLVs: map[byte][]byte{TLVToken: []byte(v.Token)}}
	for _, e := range []pop3.Event{
		{Kind: pop3.EventConnected},
		{Kind: pop3.EventCommand, Verb: "USER", Line: "USER guest"},
		{Kind: pop3.EventReply, Verb: "USER", Line: "+OK", OK: true},
		{Kind: pop3.EventCommand, Verb: "PASS", Line: "PASS ****"},
		{Kind: pop3.EventReply, Verb: "PASS", Line: "-ERR [AUTH] wrong password", Code: "AUTH"},
		{Kind: pop3.EventCommand, Verb: "PASS", Line: "PASS ****"},
		{Kind: pop3.EventState, State: "TRANSACTION", User: "guest"},
		{Kind: pop3.EventReply, Verb: "PASS", Line: "+OK", OK: true},
		{Kind: pop3.EventCommand, Verb: "RETR", Line: "RETR 99"},
		{Kind: pop3.EventReply, Verb: "RETR", Line: "-ERR no message 99"},
	} {
		e.Conn, e.Info = 7, info
		vs.Observe(e)
	}
	st := v.Status()
	if st.Conns != 1 || st.State != "TRANSACTION" || st.User != "guest" || st.LastCommand != "RETR 99" {
		t.Errorf("status %+v", st)
	}
	errs := vs.RecentErrors(10)
	if len(errs) != 2 || errs[0].Command != "RETR 99" || errs[0].Reply != "-ERR no message 99" || errs[1].Command != "PASS ****" || errs[0].Visitor != v.Name() {
		t.Errorf("recent errors %+v", errs)
	}
	vs.Observe(pop3.Event{Kind: pop3.EventClosed, Conn: 7, Info: info})
	if st := v.Status(); st.Conns != 0 || st.State != "" {
		t.Errorf("after close: %+v", st)
	}

	v.Watch(1)
	if st := v.Status(); st.Watchers != 1 {
		t.Errorf("watchers %d", st.Watchers)
	}
	v.Watch(-1)
	entries, _, _ := v.Events.Since(0)
	last := entries[len(entries)-2:]
	if last[0].Type != EntryWatch || last[0].Watchers != 1 || last[1].Watchers != 0 {
		t.Errorf("watch entries %+v", last)
	}
}
