package standalone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// listenAdmin listens on the admin socket, mode 0600 (whoever can use it
// can restart apps). A stale socket of a dead agent is replaced; one of a
// live agent is an error. Closing the listener removes the socket, if it
// is still this one.
func listenAdmin(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	l, linked, err := listenPrivately(path)
	switch {
	case errors.Is(err, errInUse):
		return nil, inUse(path)
	case err != nil:
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return &adminListener{Listener: l, path: path, linked: linked}, nil
}

// errInUse is a socket found at the admin socket's path.
var errInUse = errors.New("in use")

func inUse(path string) error {
	return fmt.Errorf("admin socket %s is in use: is another ferry-agent running? (use --admin-socket)", path)
}

// listenPrivately listens on a unix socket that only this agent's user
// can connect to, from the first moment, and puts it at path. A socket
// made at path would have the mode the umask leaves until a chmod, and
// a connection another user made meanwhile would be accepted; the umask
// cannot be narrowed for the while, as it is the process's, which other
// goroutines create files under. So the socket is made in a directory of
// its own, mode 0700, which no other user may enter, made 0600 there, and
// then linked at path (the directory is beside path, on its filesystem):
// a link, unlike a rename, does not replace a socket another agent
// started at the same moment has put there since. It returns the socket
// as linked, to tell it from another put at path later.
func listenPrivately(path string) (*net.UnixListener, fs.FileInfo, error) {
	if len(path) >= maxSocketPath {
		return nil, nil, fmt.Errorf("%s is too long a path for a unix socket (at most %d bytes): choose a shorter --admin-socket",
			path, maxSocketPath-1)
	}
	private, err := os.MkdirTemp(filepath.Dir(path), ".admin-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(private)
	bound := filepath.Join(private, "s")
	// Bound through the directory's descriptor, the socket's address is
	// short, whatever the length of bound (which is longer than path's).
	d, err := os.Open(private)
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: fmt.Sprintf("/proc/self/fd/%d/s", d.Fd()), Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	if afterAdminListen != nil {
		afterAdminListen(bound)
	}
	// The listener would remove the socket at bound, which goes with its
	// directory: adminListener removes the one at path.
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(bound, 0o600); err != nil {
		_ = l.Close()
		return nil, nil, err
	}
	linked, err := link(bound, path)
	if err != nil {
		_ = l.Close()
		return nil, nil, err
	}
	return l, linked, nil
}

// link links the socket at bound at path, and returns it as linked. A
// socket found at path is another agent's: in use if it answers; if not,
// its agent is gone, and it is removed and the link made again. Linked
// first and checked after, a socket is removed only once seen dead, and
// only if still the one seen: two agents starting at once on a stale
// socket cannot each remove the socket the other has just linked.
func link(bound, path string) (fs.FileInfo, error) {
	for range 3 { // each turn another agent's socket died or went: rare
		err := os.Link(bound, path)
		if err == nil {
			return os.Lstat(bound)
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// Seen before the dial: one put there after it would pass for dead.
		found, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = c.Close()
			return nil, errInUse
		}
		if err := removeIfSame(path, found); err != nil {
			return nil, err
		}
	}
	return nil, errInUse
}

// removeIfSame removes the file at path if it is still the one seen as
// was; one that another agent has put there since is its own.
func removeIfSame(path string, was fs.FileInfo) error {
	if beforeAdminRemove != nil {
		beforeAdminRemove()
	}
	now, err := os.Lstat(path)
	if err != nil || !os.SameFile(now, was) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// maxSocketPath is the size of Linux's sockaddr_un.sun_path, which holds
// a socket's path and its terminating NUL.
const maxSocketPath = 108

// afterAdminListen, when set (by a test), is called with the path the
// admin socket is made at, as soon as its listen returns.
var afterAdminListen func(bound string)

// beforeAdminRemove, when set (by a test), is called before a socket at
// the admin socket's path (a dead one found there, or this agent's own as
// it closes) is checked for the last time and removed.
var beforeAdminRemove func()

// adminListener is the admin socket's listener, which removes the socket
// when first closed, as a listener of net.Listen does; but only if the
// socket at its path is still the one it linked (linked): another agent,
// started as this one stopped, may have put its own there.
type adminListener struct {
	net.Listener
	path   string
	linked fs.FileInfo
	remove sync.Once
}

func (l *adminListener) Close() error {
	err := l.Listener.Close()
	l.remove.Do(func() { _ = removeIfSame(l.path, l.linked) })
	return err
}

// RestartRequest is POST /v1/restart.
type RestartRequest struct {
	Name     string `json:"name"`
	Revision string `json:"revision,omitempty"`
}

// RestartResponse answers it.
type RestartResponse struct {
	Revision string `json:"revision"`
}

type errorResponse struct {
	Error string `json:"error"`
}

func (s *Server) adminServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("POST /v1/restart", func(w http.ResponseWriter, r *http.Request) {
		var req RestartRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, errorResponse{"bad request: " + err.Error()})
			return
		}
		rev, err := s.Restart(req.Name, req.Revision)
		switch {
		case errors.Is(err, ErrNotFound):
			writeJSON(w, http.StatusNotFound, errorResponse{err.Error()})
		case err != nil:
			writeJSON(w, http.StatusBadRequest, errorResponse{err.Error()})
		default:
			writeJSON(w, http.StatusOK, RestartResponse{Revision: rev})
		}
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.Reload(); err != nil {
			writeJSON(w, http.StatusBadRequest, errorResponse{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	if s.opts.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Metrics.Registry, promhttp.HandlerOpts{}))
	}
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Client talks to a standalone agent's admin socket.
type Client struct {
	Socket string
	http   *http.Client
}

// NewClient returns a client for the admin socket at path.
func NewClient(path string) *Client {
	return &Client{Socket: path, http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}},
	}}
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (StatusResponse, error) {
	var out StatusResponse
	return out, c.call(ctx, http.MethodGet, "/v1/status", nil, &out)
}

// Restart asks for a restart and returns the revision it rolls to.
func (c *Client) Restart(ctx context.Context, name, revision string) (string, error) {
	var out RestartResponse
	err := c.call(ctx, http.MethodPost, "/v1/restart", RestartRequest{Name: name, Revision: revision}, &out)
	return out.Revision, err
}

// Reload asks the agent to re-read its file.
func (c *Client) Reload(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/v1/reload", struct{}{}, nil)
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the agent at %s (is `ferry-agent standalone` running? see --admin-socket): %w",
			c.Socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e errorResponse
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("agent answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
