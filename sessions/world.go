// Package sessions holds the fixture world (the accounts and messages the
// playground serves, loaded once and never written) and the sandboxes: cheap
// copy-on-write views of it, one per visitor or per connection, in which POP3
// deletions really happen. It implements pop3.Backend.
package sessions

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// An Account is a user of the world and their pristine maildrop.
type Account struct {
	Name     string
	password string
	Messages []*Message
	size     int64 // of all the messages, for a login's STAT without a scan
}

func newAccount(name, password string, msgs []*Message) *Account {
	a := &Account{Name: name, password: password, Messages: msgs}
	for _, m := range msgs {
		a.size += m.Size()
	}
	return a
}

// A World is the fixture: every account and its messages, immutable once
// loaded.
type World struct {
	accounts map[string]*Account
	names    []string // sorted
	// Warnings lists what the loader skipped (files of unknown kinds).
	Warnings []string
	// Bulletins are the world's one changing part: messages every maildrop
	// receives at its next login.
	Bulletins Board
}

// Account returns the named account, or nil.
func (w *World) Account(name string) *Account { return w.accounts[name] }

// Accounts returns the accounts sorted by name.
func (w *World) Accounts() []*Account {
	as := make([]*Account, len(w.names))
	for i, n := range w.names {
		as[i] = w.accounts[n]
	}
	return as
}

// FirstLogin is the login the web page offers: guest if the world has that
// account, else the first by name. ok is false for a world without accounts.
func (w *World) FirstLogin() (name, password string, ok bool) {
	a := w.accounts["guest"]
	if a == nil && len(w.names) > 0 {
		a = w.accounts[w.names[0]]
	}
	if a == nil {
		return "", "", false
	}
	return a.Name, a.password, true
}

//go:embed defaultworld
var defaultWorld embed.FS

// DefaultWorld loads the embedded default world: guest/visitor with seven
// messages for the lab sheets, and mrose/tanstaaf of RFC 1939's APOP example.
func DefaultWorld() (*World, error) {
	fsys, err := fs.Sub(defaultWorld, "defaultworld")
	if err != nil {
		return nil, err
	}
	users, err := fs.ReadFile(fsys, "users")
	if err != nil {
		return nil, err
	}
	return load(fsys, "defaultworld", users, "defaultworld/users", "users")
}

// LoadDir loads an organiser's world: in dir, one entry per account named
// after it (NAME/ as a Maildir with cur/ and new/ or a folder of .eml files,
// or NAME.mbox), and the passwords in usersFile (name:password lines, #
// comments). Files are opened read-only. An error names the file and line.
func LoadDir(dir, usersFile string) (*World, error) {
	users, err := os.ReadFile(usersFile)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", dir)
	}
	// The users file may live in the mailbox directory: it is no mailbox.
	skip := ""
	abs, err1 := filepath.Abs(usersFile)
	absDir, err2 := filepath.Abs(dir)
	if err1 == nil && err2 == nil && filepath.Dir(abs) == absDir {
		skip = filepath.Base(abs)
	}
	return load(os.DirFS(dir), dir, users, usersFile, skip)
}

// A LoadError is a problem in the world's files, with where it is.
type LoadError struct {
	File string
	Line int // 0 when the problem is the whole file
	Msg  string
}

func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// load reads the world in fsys; root names it in messages, and skip is the
// name of an entry that is not a mailbox (the users file).
func load(fsys fs.FS, root string, users []byte, usersName, skip string) (*World, error) {
	passwords, order, err := parseUsers(users, usersName)
	if err != nil {
		return nil, err
	}
	w := &World{accounts: make(map[string]*Account)}
	display := func(name string) string { return filepath.Join(root, filepath.FromSlash(name)) }

	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || name == skip {
			continue
		}
		var account string
		var msgs []*Message
		switch {
		case e.IsDir():
			account = name
			msgs, err = loadFolder(fsys, name, display)
		case strings.HasSuffix(name, ".mbox") && e.Type().IsRegular():
			account = strings.TrimSuffix(name, ".mbox")
			var data []byte
			if data, err = fs.ReadFile(fsys, name); err == nil {
				msgs, err = parseMbox(data, display(name))
			}
		default:
			w.Warnings = append(w.Warnings, display(name)+": skipped: not a folder or an .mbox file")
			continue
		}
		if err != nil {
			return nil, err
		}
		if w.accounts[account] != nil {
			return nil, &LoadError{File: display(name), Msg: fmt.Sprintf("a second mailbox for account %q", account)}
		}
		pw, ok := passwords[account]
		if !ok {
			return nil, &LoadError{File: display(name), Msg: fmt.Sprintf("account %q has no password in %s", account, usersName)}
		}
		assignUIDs(msgs)
		w.accounts[account] = newAccount(account, pw, msgs)
	}
	// A user without a mailbox has an empty maildrop.
	for _, name := range order {
		if w.accounts[name] == nil {
			w.accounts[name] = newAccount(name, passwords[name], nil)
		}
	}
	for name := range w.accounts {
		w.names = append(w.names, name)
	}
	slices.Sort(w.names)
	return w, nil
}

// parseUsers reads name:password lines; # starts a comment line.
func parseUsers(data []byte, file string) (map[string]string, []string, error) {
	passwords := make(map[string]string)
	var order []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return &LoadError{File: file, Line: i + 1, Msg: fmt.Sprintf(format, args...)}
		}
		name, pw, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			return nil, nil, bad("expected name:password")
		case !validAccountName(name):
			return nil, nil, bad("invalid account name %q: use 1 to 64 printable ASCII characters, no spaces", name)
		case pw == "":
			return nil, nil, bad("account %q has an empty password", name)
		case strings.ContainsFunc(pw, func(r rune) bool { return r < ' ' || r == 0x7f }):
			return nil, nil, bad("the password of %q holds a control character", name)
		case passwords[name] != "":
			return nil, nil, bad("account %q is listed twice", name)
		}
		passwords[name] = pw
		order = append(order, name)
	}
	if len(order) == 0 {
		return nil, nil, &LoadError{File: file, Msg: "no accounts: expected name:password lines"}
	}
	return passwords, order, nil
}

func validAccountName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == ':' {
			return false
		}
	}
	return true
}

// loadFolder loads NAME/: a Maildir (messages in cur/ and new/, in order of
// their names, which begin with the delivery time) or else a folder of .eml
// files in natural order (2.eml before 10.eml).
func loadFolder(fsys fs.FS, dir string, display func(string) string) ([]*Message, error) {
	var files []string
	isMaildir := false
	for _, sub := range []string{"cur", "new"} {
		entries, err := fs.ReadDir(fsys, path.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		isMaildir = true
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, path.Join(dir, sub, e.Name()))
			}
		}
	}
	if isMaildir {
		slices.SortFunc(files, func(a, b string) int { return strings.Compare(path.Base(a), path.Base(b)) })
	} else {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".eml") && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, path.Join(dir, e.Name()))
			}
		}
		slices.SortFunc(files, naturalCompare)
	}
	msgs := make([]*Message, 0, len(files))
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		m, err := newMessage(data, display(f), 1)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// naturalCompare orders names with their digit runs compared as numbers.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := leadingDigits(a), leadingDigits(b)
		if da != "" && db != "" {
			na, _ := strconv.ParseUint(strings.TrimLeft(da, "0")+"0", 10, 64)
			nb, _ := strconv.ParseUint(strings.TrimLeft(db, "0")+"0", 10, 64)
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
