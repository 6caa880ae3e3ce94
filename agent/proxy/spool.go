package proxy

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SpoolMemory is how much of a buffered request body is held in memory;
// the rest goes to a file in Options.SpoolDir.
const SpoolMemory = 64 << 10

// spooled is a request body read before its request queues for a worker
// (request buffering): a slow upload then holds no worker, and a client
// that gives up mid-upload never reaches one. The first SpoolMemory bytes
// are in mem, the rest in file, which has no name (openUnnamed), so
// nothing is left behind however the agent ends. The buffers are not
// pooled: when a worker answers before it read the body, the body's
// writer may still be reading them after the request ended.
type spooled struct {
	dir  string  // where file is made
	disk *Budget // what file may take, shared with the agent's other bodies
	mem  []byte
	file *os.File
	size int64 // bytes read from the client: mem, then file
	// taken is what file took of disk, given back when it is closed.
	taken int64
	// rest is the client's body, still to be read after what was spooled,
	// when the body outgrew the limit or could not be spooled to a file;
	// nil when the whole body was read.
	rest io.Reader
	// fileErr is why the body could not go to a file, when it could not.
	fileErr error
}

// errDiskBudget is why a body goes no further to a file when the agent's
// buffered bodies already hold Options.RequestDisk.
var errDiskBudget = errors.New("the request bodies buffered in files already take all of --request-buffer-disk")

// spool reads r's body, up to limit bytes, and returns the request the
// worker gets: with the whole body, framed by its length (a chunked body
// too, unless it has trailers the worker gets (trailerKept), which need
// chunks to travel), or,
// past the limit, with what was read followed by the rest as it comes.
// A body declared longer than limit is not read: r comes back as it was.
// The error is the client's: its body failed (malformed, cut short).
// Each read of the body must come within RequestBodyTimeout.
func (s *Server) spool(rw http.ResponseWriter, r *http.Request, limit int64) (*http.Request, *spooled, error) {
	limit = min(limit, math.MaxInt64-1) // read takes limit+1 bytes to know it was passed
	if r.ContentLength > limit {
		return r, nil, nil
	}
	sp := &spooled{dir: s.opts.SpoolDir, disk: s.opts.RequestDisk}
	rc := http.NewResponseController(rw)
	timeout := s.opts.RequestBodyTimeout
	body := readerFunc(func(p []byte) (int, error) {
		_ = rc.SetReadDeadline(time.Now().Add(timeout))
		return r.Body.Read(p)
	})
	err := sp.read(body, r.Body, r.ContentLength, limit)
	if err != nil {
		// Nothing more is read from this client: net/http would read on
		// (up to 256 KiB of the body, without a deadline) before it
		// closes the connection.
		_ = rc.SetReadDeadline(time.Now())
		sp.close()
		return nil, nil, err
	}
	// No deadline after: what is left of a body past the limit streams
	// at the client's pace, as a body does when buffering is off, each
	// read bound by forward's idleBody. (Once a body was read to its end,
	// net/http clears the deadline itself.)
	_ = rc.SetReadDeadline(time.Time{})
	switch {
	case errors.Is(sp.fileErr, errDiskBudget):
		s.budgetSpent()
	case sp.fileErr != nil:
		s.fileFailed(sp.fileErr)
	}
	out := new(http.Request)
	*out = *r
	out.Body = io.NopCloser(sp.reader())
	if sp.rest == nil && len(keptTrailers(r.Trailer, r.Header["Connection"])) == 0 {
		out.ContentLength = sp.size
		out.TransferEncoding = nil
		if sp.size == 0 {
			out.Body = http.NoBody
		}
	}
	return out, sp, nil
}

// read fills mem, then file, from body until it ends or more than limit
// bytes came; length is the body's declared length (-1: chunked); rest is
// the same body without read's deadlines, for what streams.
func (sp *spooled) read(body, rest io.Reader, length, limit int64) error {
	most := min(SpoolMemory, limit+1)
	if length >= 0 {
		most = min(most, length)
	}
	if done, err := sp.readMem(body, int(most)); done || err != nil {
		return err
	}
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	for sp.size <= limit {
		p := (*buf)[:min(int64(len(*buf)), limit+1-sp.size)]
		n, err := body.Read(p)
		if n > 0 {
			if werr := sp.toFile(p[:n]); werr != nil {
				// No file to spool to (a full disk, the agent's disk
				// budget used up): the request still goes, the rest of
				// its body streamed.
				sp.fileErr = werr
				sp.rest = io.MultiReader(bytes.NewReader(bytes.Clone(p[:n])), rest)
				return nil
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
	sp.rest = rest // past the limit: the rest streams
	return nil
}

// readMem reads body into mem, up to most bytes, and says whether the
// body ended there. mem grows as bytes come, from 4 KiB: a client's
// Content-Length costs little before its bytes arrive, and a stalled
// upload holds little more than what it sent.
func (sp *spooled) readMem(body io.Reader, most int) (done bool, err error) {
	for len(sp.mem) < most {
		if len(sp.mem) == cap(sp.mem) { // doubled, from 4 KiB, never past most
			grown := make([]byte, len(sp.mem), min(max(2*cap(sp.mem), 4<<10), most))
			sp.mem = grown[:copy(grown, sp.mem)]
		}
		room := sp.mem[len(sp.mem):min(cap(sp.mem), most)]
		n, err := body.Read(room)
		sp.mem = sp.mem[:len(sp.mem)+n]
		sp.size += int64(n)
		switch {
		case err == io.EOF:
			return true, nil
		case err != nil:
			return false, err
		}
	}
	return false, nil
}

// toFile appends p to the file, made on first need, if the disk budget
// has room for it.
func (sp *spooled) toFile(p []byte) error {
	if !sp.disk.take(int64(len(p))) {
		return errDiskBudget
	}
	sp.taken += int64(len(p))
	if sp.file == nil {
		f, err := openUnnamed(sp.dir)
		if err != nil {
			return err
		}
		sp.file = f
	}
	if _, err := sp.file.Write(p); err != nil {
		return err
	}
	sp.size += int64(len(p))
	return nil
}

// openUnnamed opens a file in dir that has no name (O_TMPFILE): nothing to
// unlink, nothing left behind, one system call. On a file system without
// that, the file gets a name, removed at once.
func openUnnamed(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(a request body)")), nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return openUnlinked(dir)
}

// openUnlinked opens a new file in dir and removes its name.
func openUnlinked(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "body-")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil { // PrepareSpoolDir removes it
		_ = f.Close()
		return nil, fmt.Errorf("unlink %s: %w", f.Name(), err)
	}
	return f, nil
}

// reader reads the body back: mem, the file, then the rest, if any.
func (sp *spooled) reader() io.Reader {
	rs := []io.Reader{bytes.NewReader(sp.mem)}
	if sp.file != nil {
		rs = append(rs, io.NewSectionReader(sp.file, 0, sp.size-int64(len(sp.mem))))
	}
	if sp.rest != nil {
		rs = append(rs, sp.rest)
	}
	return io.MultiReader(rs...)
}

// fileFailed logs that a body could not go to a file, at most once a
// minute: a full disk fails every large body.
func (s *Server) fileFailed(err error) {
	if onceAMinute(&s.spoolFailedAt) {
		s.opts.Log.Error(err, "Cannot buffer request bodies to files; the rest of each streams to its worker as it comes (logged at most once a minute)",
			"dir", s.opts.SpoolDir)
	}
}

// budgetSpent logs, at most once a minute, that bodies stream because the
// agent's request bodies in files take all of Options.RequestDisk: a
// bound reached, not a failure (fileFailed keeps its own minute for
// those, so one does not hide the other).
func (s *Server) budgetSpent() {
	if onceAMinute(&s.budgetSpentAt) {
		s.opts.Log.Info("Request bodies buffered in files take all of --request-buffer-disk; the rest of each new one streams to its worker (logged at most once a minute)",
			"dir", s.opts.SpoolDir)
	}
}

// onceAMinute reports whether a minute has passed since it last said yes
// for at (UnixNano of that time), and takes this one if so: one caller
// wins among concurrent ones.
func onceAMinute(at *atomic.Int64) bool {
	now := time.Now().UnixNano()
	last := at.Load()
	return now-last >= int64(time.Minute) && at.CompareAndSwap(last, now)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// close gives back the file and what it took of the disk budget. A writer
// still reading it gets an error.
func (sp *spooled) close() {
	if sp == nil {
		return
	}
	if sp.file != nil {
		_ = sp.file.Close()
	}
	sp.disk.give(sp.taken)
	sp.taken = 0
}

// UseSpoolDir makes the directory for buffered bodies under SpoolDir, or
// under stateDir when SpoolDir is empty (PrepareSpoolDir), and points
// SpoolDir at it: what an agent does before it starts its proxies.
func (o *Options) UseSpoolDir(stateDir string) error {
	dir, err := PrepareSpoolDir(cmp.Or(o.SpoolDir, stateDir))
	if err != nil {
		return fmt.Errorf("preparing the directory for request bodies: %w", err)
	}
	o.SpoolDir = dir
	return nil
}

// SpoolDirName is the directory PrepareSpoolDir makes for buffered bodies.
const SpoolDirName = "ferry-request-bodies"

// PrepareSpoolDir makes the directory for Options.SpoolDir under parent,
// the agent's own, so that nothing else's files are touched: readable by
// the agent alone (bodies are the clients' data), and without any body an
// agent that died between making and unlinking one left there.
func PrepareSpoolDir(parent string) (string, error) {
	dir := filepath.Join(parent, SpoolDirName)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	// Only a directory of the agent's own: not a link another user of a
	// shared parent (/tmp) made, to have the agent chmod or empty another.
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("%s is not a directory of this agent's user", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", err
	}
	stale, err := filepath.Glob(filepath.Join(dir, "body-*"))
	for _, f := range stale {
		err = errors.Join(err, os.Remove(f))
	}
	return dir, err
}
