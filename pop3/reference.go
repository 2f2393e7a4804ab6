package pop3

// A CommandDoc describes one command for people learning POP3: the page's
// command reference is built from these.
type CommandDoc struct {
	Verb    string
	States  []string // the states it is valid in
	Syntax  string   // e.g. "RETR msg"; [optional] arguments in brackets
	Summary string
	Example string // a line that works on the default mailbox
	RFC     string // where it is defined
}

// Reference documents every command the server knows, in the order a
// session uses them. A test checks it against the server's command table.
var Reference = []CommandDoc{
	{"CAPA", []string{"AUTHORIZATION", "TRANSACTION"}, "CAPA", "List the server's capabilities: what a client may use beyond RFC 1939.", "CAPA", "RFC 2449 §5"},
	{"USER", []string{"AUTHORIZATION"}, "USER name", "Name the maildrop to open; PASS follows.", "USER guest", "RFC 1939 §7"},
	{"PASS", []string{"AUTHORIZATION"}, "PASS password", "Give the password for the name sent by USER; on success the maildrop is locked and the session enters TRANSACTION. The password crosses the wire in the clear.", "PASS visitor", "RFC 1939 §7"},
	{"APOP", []string{"AUTHORIZATION"}, "APOP name digest", "Log in without sending the password: digest is the MD5, in hex, of the greeting's <timestamp> followed by the password.", "APOP guest 0123456789abcdef0123456789abcdef", "RFC 1939 §7"},
	{"AUTH", []string{"AUTHORIZATION"}, "AUTH [mechanism [initial-response]]", "Log in with a SASL mechanism (PLAIN, LOGIN); without arguments, list the mechanisms.", "AUTH PLAIN", "RFC 5034"},
	{"STLS", []string{"AUTHORIZATION"}, "STLS", "Start TLS on this connection: after +OK the client begins a TLS handshake, then logs in over the encrypted channel.", "STLS", "RFC 2595 §4"},
	{"STAT", []string{"TRANSACTION"}, "STAT", "Count the messages and their total size in octets, marked ones left out.", "STAT", "RFC 1939 §5"},
	{"LIST", []string{"TRANSACTION"}, "LIST [msg]", "Give each message's number and size, or one message's.", "LIST", "RFC 1939 §5"},
	{"UIDL", []string{"TRANSACTION"}, "UIDL [msg]", "Give each message's unique-id, which stays the same across sessions: how clients know what they have already fetched.", "UIDL", "RFC 1939 §7"},
	{"TOP", []string{"TRANSACTION"}, "TOP msg n", "Send a message's header and the first n lines of its body.", "TOP 1 0", "RFC 1939 §7"},
	{"RETR", []string{"TRANSACTION"}, "RETR msg", "Send a whole message, dot-stuffed, ended by a line holding a single dot.", "RETR 1", "RFC 1939 §5"},
	{"DELE", []string{"TRANSACTION"}, "DELE msg", "Mark a message for deletion. It is removed only when QUIT enters the UPDATE state.", "DELE 1", "RFC 1939 §5"},
	{"RSET", []string{"TRANSACTION"}, "RSET", "Unmark every message marked for deletion in this session.", "RSET", "RFC 1939 §5"},
	{"NOOP", []string{"TRANSACTION"}, "NOOP", "Do nothing but answer +OK: keeps an idle session alive.", "NOOP", "RFC 1939 §5"},
	{"QUIT", []string{"AUTHORIZATION", "TRANSACTION"}, "QUIT", "End the session. From TRANSACTION it enters UPDATE: marked messages are removed and the lock released.", "QUIT", "RFC 1939 §6"},
}
