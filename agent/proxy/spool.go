package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

// SpoolMemory is how much of a buffered request body is held in memory;
// the rest goes to a file in Options.SpoolDir.
const SpoolMemory = 64 << 10

// spooled is a request body read before its request queues for a worker
// (request buffering): a slow upload then holds no worker, and a client
// that gives up mid-upload never reaches one. The first SpoolMemory bytes
// are in mem, the rest in file, which is unlinked at once, so nothing is
// left behind however the agent ends. The buffers are not pooled: when a
// worker answers before it read the body, the body's writer may still be
// reading them after the request ended.
type spooled struct {
	mem  []byte
	file *os.File
	size int64 // bytes read from the client: mem, then file
	// rest is the client's body, still to be read after what was spooled,
	// when the body outgrew the limit or could not be spooled to a file;
	// nil when the whole body was read.
	rest io.Reader
	// fileErr is why the body could not go to a file, when it could not.
	fileErr error
}

// spool reads r's body, up to limit bytes, and returns the request the
// worker gets: with the whole body, framed by its length (a chunked body
// too, unless it declared trailers, which need chunks to travel), or,
// past the limit, with what was read followed by the rest as it comes.
// A body declared longer than limit is not read: r comes back as it was.
// The error is the client's: its body failed (malformed, cut short).
func (s *Server) spool(r *http.Request, limit int64) (*http.Request, *spooled, error) {
	if r.ContentLength > limit {
		return r, nil, nil
	}
	sp := &spooled{}
	if err := sp.read(r.Body, limit, s.opts.SpoolDir); err != nil {
		sp.close()
		return nil, nil, err
	}
	if sp.fileErr != nil {
		s.opts.Log.Error(sp.fileErr, "Cannot buffer a request body to a file; streaming the rest of it", "dir", s.opts.SpoolDir)
	}
	out := new(http.Request)
	*out = *r
	out.Body = io.NopCloser(sp.reader())
	if sp.rest == nil && len(r.Trailer) == 0 {
		out.ContentLength = sp.size
		out.TransferEncoding = nil
		if sp.size == 0 {
			out.Body = http.NoBody
		}
	}
	return out, sp, nil
}

// read fills mem, then file, from body until it ends or more than limit
// bytes came. mem grows as bytes come, not as the client declared: a
// client's Content-Length costs no memory before its bytes arrive.
func (sp *spooled) read(body io.Reader, limit int64, dir string) error {
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	for sp.size <= limit {
		p := (*buf)[:min(int64(len(*buf)), limit+1-sp.size)]
		n, err := body.Read(p)
		if n > 0 {
			if werr := sp.keep(p[:n], dir); werr != nil {
				// No file to spool to (a full disk, say): the request
				// still goes, the rest of its body streamed.
				sp.fileErr = werr
				sp.rest = io.MultiReader(bytes.NewReader(bytes.Clone(p[:n])), body)
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
	sp.rest = body // past the limit: the rest streams
	return nil
}

// keep appends p to what was spooled: to mem while it fits, else to the
// file, made on first need.
func (sp *spooled) keep(p []byte, dir string) error {
	if sp.file == nil && len(sp.mem)+len(p) <= SpoolMemory {
		sp.mem = append(sp.mem, p...)
		sp.size += int64(len(p))
		return nil
	}
	if sp.file == nil {
		f, err := os.CreateTemp(dir, "body-")
		if err != nil {
			return err
		}
		sp.file = f
		if err := os.Remove(f.Name()); err != nil {
			return fmt.Errorf("unlink %s: %w", f.Name(), err)
		}
	}
	if _, err := sp.file.Write(p); err != nil {
		return err
	}
	sp.size += int64(len(p))
	return nil
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

// close gives back the file. A writer still reading it gets an error.
func (sp *spooled) close() {
	if sp != nil && sp.file != nil {
		_ = sp.file.Close()
	}
}

// PrepareSpoolDir makes dir, for Options.SpoolDir, readable by the agent
// alone (bodies are the clients' data), and removes any body file an agent
// that died between making and unlinking one left there.
func PrepareSpoolDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	stale, err := filepath.Glob(filepath.Join(dir, "body-*"))
	for _, f := range stale {
		err = errors.Join(err, os.Remove(f))
	}
	return err
}
