package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Descriptors: every connection is a file descriptor, and a process that
// runs out of them can no longer accept anything, not even a health
// check. So the playground raises its soft limit to the hard one at start
// and sizes its limits to refuse politely well before the end.

// descriptorsPerVisitor is what a visitor with one terminal open holds:
// the WebSocket, the event stream, the bridge's connection to the POP3
// listener and the POP3 session's end of it.
const descriptorsPerVisitor = 4

// fixedDescriptors are kept for the listeners, the trace and log files,
// the world's files while loading, and the reserve that /healthz,
// /readyz, /metrics and /admin are served from.
const fixedDescriptors = 128

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// returns the limit in force.
func raiseFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	if rl.Cur < rl.Max {
		up := rl
		up.Cur = up.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			rl = up
		}
	}
	return rl.Cur
}

// budget splits the descriptors among the limits.
type budget struct {
	files       uint64 // the soft limit in force
	maxVisitors int    // default of --max-visitors
	maxConns    int    // default of --max-conns (POP3 sessions)
	httpConns   int    // the web side's connections, bridges included
}

// Upper bounds of the derived defaults: beyond these, memory and CPU
// matter more than descriptors on one machine.
const (
	capVisitors = 5000
	capConns    = 10000
)

func newBudget(files uint64) budget {
	usable := int(min(files, 1<<24)) - fixedDescriptors
	if usable < 4*descriptorsPerVisitor {
		usable = 4 * descriptorsPerVisitor
	}
	b := budget{files: files}
	// A quarter for POP3 sessions, the rest for HTTP connections and
	// the bridges' ends.
	b.maxConns = min(capConns, usable/4)
	b.httpConns = usable - b.maxConns
	b.maxVisitors = min(capVisitors, usable/descriptorsPerVisitor)
	return b
}

// rotatingFile is the --trace file: appended to until it holds max
// octets, then renamed to NAME.1 (replacing the previous one) and started
// anew, so a trace keeps at most about twice max on disk.
type rotatingFile struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

func openRotating(path string, max int64) (*rotatingFile, error) {
	r := &rotatingFile{path: filepath.Clean(path), max: max}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write writes one trace record; a record never straddles two files.
func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.max > 0 && r.size > 0 && r.size+int64(len(p)) > r.max {
		r.f.Close()
		r.f = nil
		if err := os.Rename(r.path, r.path+".1"); err != nil {
			return 0, fmt.Errorf("rotating the trace: %w", err)
		}
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
