package wsgi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// hangGuard bounds every wait in these tests. It only turns a hang into a
// failure; nothing asserts how fast anything is.
const hangGuard = 60 * time.Second

// worker is one loader process, started the way the spawner starts it.
type worker struct {
	cmd     *exec.Cmd
	msg     Message
	root    string
	socket  string
	output  *testsupport.Output
	exited  chan struct{}
	waitErr error
	client  *http.Client
}

// copyApp copies the test application testdata/<name> into a fresh root.
func copyApp(t testing.TB, name string) string {
	t.Helper()
	root := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", name, "passenger_wsgi.py"))
	if err != nil {
		t.Fatal(err)
	}
	writeApp(t, root, string(src))
	return root
}

// copyTree copies the tree testdata/<name> into a fresh root.
func copyTree(t testing.TB, name string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	return root
}

func writeApp(t testing.TB, root, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "passenger_wsgi.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// spawn starts the loader on the application in root and reads its
// message. Exactly as the spawner does: ExtraFiles carries the write end of a
// pipe as fd 3, Dir is the root, the environment is PATH plus Options.Env.
func spawn(t testing.TB, root string) *worker {
	t.Helper()
	return spawnStartup(t, root, "")
}

// spawnStartup is spawn with Options.StartupFile set to startup.
func spawnStartup(t testing.TB, root, startup string) *worker {
	t.Helper()
	return spawnWith(t, root, startup, nil, nil)
}

// spawnWith is spawnStartup with args after the loader's path (a knob
// the loader reads for tests only; the spawner's Options.Argv has none)
// and env (NAME=value) added to the environment, as an AppGroup's
// spec.app.env adds to it.
func spawnWith(t testing.TB, root, startup string, args, env []string) *worker {
	t.Helper()
	loader, err := Install(filepath.Join(t.TempDir(), "loader"))
	if err != nil {
		t.Fatal(err)
	}
	// t.TempDir paths can exceed the 107-byte limit of a socket path.
	sockDir, err := os.MkdirTemp("", "fw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })

	o := Options{Root: root, StartupFile: startup, Socket: filepath.Join(sockDir, "s"), Revision: "rev-7"}
	argv := append(o.Argv(loader), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = root
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH")}, o.Env()...), env...)
	w := &worker{cmd: cmd, root: root, socket: o.Socket, output: &testsupport.Output{}, exited: make(chan struct{})}
	cmd.Stdout = w.output
	cmd.Stderr = w.output

	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd.ExtraFiles = []*os.File{wr}
	err = cmd.Start()
	wr.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-w.exited:
		default:
			_ = cmd.Process.Kill()
			<-w.exited
		}
		if t.Failed() {
			t.Logf("worker output:\n%s", w.output.String())
		}
	})

	if err := r.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatal(err)
	}
	w.msg, err = ReadMessage(r)
	if err != nil {
		t.Fatalf("ReadMessage: %v\noutput:\n%s", err, w.output.String())
	}
	w.client = &http.Client{
		Timeout: hangGuard,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", w.socket)
			},
			MaxIdleConnsPerHost: 4,
		},
	}
	t.Cleanup(w.client.CloseIdleConnections)
	return w
}

// expectOutput waits until the worker's output says s, failing t with
// what it says if it does not within 10 s: the worker writes it as it
// answers, and the pipe is copied on its own time.
func (w *worker) expectOutput(t testing.TB, s string) {
	t.Helper()
	testsupport.Eventually(t, 10*time.Second, fmt.Sprintf("the worker's output to say %q", s), func() error {
		if out := w.output.String(); !strings.Contains(out, s) {
			return fmt.Errorf("it says:\n%s", out)
		}
		return nil
	})
}

// wait waits for the process to exit and returns its exit code.
func (w *worker) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-w.exited:
	case <-time.After(hangGuard):
		t.Fatalf("the worker did not exit\noutput:\n%s", w.output.String())
	}
	var exitErr *exec.ExitError
	if errors.As(w.waitErr, &exitErr) {
		return exitErr.ExitCode()
	}
	if w.waitErr != nil {
		t.Fatalf("wait: %v", w.waitErr)
	}
	return 0
}

// expectLoadError checks that the loader reported the error want and exited 1.
func (w *worker) expectLoadError(t testing.TB, want string) {
	t.Helper()
	if w.msg.Ready {
		t.Fatalf("the loader is ready, want the error %q", want)
	}
	if w.msg.Error != want {
		t.Errorf("error %q, want %q", w.msg.Error, want)
	}
	if code := w.wait(t); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
}

// expectServes checks that the loader came up ready and answers / with want.
func (w *worker) expectServes(t testing.TB, want string) {
	t.Helper()
	if !w.msg.Ready {
		t.Fatalf("message %+v, want ready", w.msg)
	}
	resp, body := w.get(t, "/")
	expectStatus(t, resp, body, 200)
	if body != want {
		t.Errorf("body %q, want %q", body, want)
	}
}

func (w *worker) get(t testing.TB, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://ferry"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w.do(t, req)
}

func (w *worker) do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := w.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp, string(body)
}

// rawConn is one connection to the worker, written to by hand.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func (w *worker) dial(t testing.TB) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", w.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatal(err)
	}
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// roundTrip writes raw and reads one response to a request of method.
func (c *rawConn) roundTrip(t testing.TB, method, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("writing %q: %v", raw, err)
	}
	return c.read(t, method)
}

func (c *rawConn) read(t testing.TB, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a response body: %v", err)
	}
	return resp, string(body)
}

// expectEOF checks that the worker closed the connection.
func (c *rawConn) expectEOF(t testing.TB) {
	t.Helper()
	if b, err := c.br.ReadByte(); err == nil {
		t.Fatalf("the connection is still open: read %q", b)
	}
}

func expectStatus(t testing.TB, resp *http.Response, body string, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("status %d, want %d; body %q", resp.StatusCode, code, body)
	}
}

func TestReady(t *testing.T) {
	t.Parallel()
	w := spawn(t, copyApp(t, "app"))
	if !w.msg.Ready || w.msg.Error != "" {
		t.Fatalf("message %+v, want ready", w.msg)
	}
	if w.msg.PID != w.cmd.Process.Pid {
		t.Errorf("pid %d, want %d", w.msg.PID, w.cmd.Process.Pid)
	}
	if fi, err := os.Stat(w.socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("no socket at %s once ready: %v", w.socket, err)
	}
}

func TestImportErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		src       string
		error     string // in Message.Error
		traceback string // in Message.Traceback and on stderr
	}{{
		name:      "syntax error",
		src:       "x = 1\ndef application(:\n    pass\n",
		error:     "SyntaxError: ",
		traceback: "passenger_wsgi.py",
	}, {
		name:      "import error",
		src:       "import sys\nprint('booting', file=sys.stderr)\nimport ferry_no_such_module\n",
		error:     "ModuleNotFoundError: No module named 'ferry_no_such_module'",
		traceback: `passenger_wsgi.py", line 3, in <module>`,
	}, {
		name:      "exception at import",
		src:       "def f():\n    raise RuntimeError('no database')\nf()\n",
		error:     "RuntimeError: no database",
		traceback: "in f\n",
	}, {
		name:      "missing application",
		src:       "app = None\n",
		error:     "passenger_wsgi.py does not define 'application'",
		traceback: "does not define 'application'",
	}, {
		name:      "application not callable",
		src:       "application = 42\n",
		error:     "'application' is not callable",
		traceback: "not callable",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeApp(t, root, tt.src)
			w := spawn(t, root)
			if w.msg.Ready {
				t.Fatalf("message %+v, want an error", w.msg)
			}
			if !strings.Contains(w.msg.Error, tt.error) || strings.Contains(w.msg.Error, "\n") {
				t.Errorf("error %q, want one line containing %q", w.msg.Error, tt.error)
			}
			if !strings.Contains(w.msg.Traceback, tt.traceback) {
				t.Errorf("traceback %q, want it to contain %q", w.msg.Traceback, tt.traceback)
			}
			if strings.Contains(w.msg.Traceback, "ferry_wsgi_loader") || strings.Contains(w.msg.Traceback, "<frozen") {
				t.Errorf("traceback shows the loader's own frames:\n%s", w.msg.Traceback)
			}
			if code := w.wait(t); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if out := w.output.String(); !strings.Contains(out, tt.traceback) {
				t.Errorf("stderr %q, want the traceback", out)
			}
		})
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	w := spawn(t, copyApp(t, "app"))

	t.Run("GET", func(t *testing.T) {
		resp, body := w.get(t, "/")
		expectStatus(t, resp, body, 200)
		if body != "ok\n" {
			t.Errorf("body %q", body)
		}
	})

	t.Run("large POST", func(t *testing.T) {
		data := make([]byte, 8<<20)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		want := hex.EncodeToString(sum[:])
		for _, path := range []string{"/sha256", "/raw/readall"} {
			req, _ := http.NewRequest(http.MethodPost, "http://ferry"+path, bytes.NewReader(data))
			resp, body := w.do(t, req)
			expectStatus(t, resp, body, 200)
			var got struct {
				SHA256 string
				Length int
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.SHA256 != want || got.Length != len(data) {
				t.Errorf("%s: got %d bytes with sha256 %s, want %d bytes with %s", path, got.Length, got.SHA256, len(data), want)
			}
		}
	})

	t.Run("chunked POST", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789abcdef"), 100_000)
		sum := sha256.Sum256(data)
		// A reader of unknown length makes the client send it chunked.
		req, _ := http.NewRequest(http.MethodPost, "http://ferry/sha256", io.MultiReader(bytes.NewReader(data)))
		req.ContentLength = -1
		resp, body := w.do(t, req)
		expectStatus(t, resp, body, 200)
		var got struct {
			SHA256 string
			Length int
			TE     *string
			CL     *string
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if got.TE == nil || *got.TE != "chunked" || got.CL != nil {
			t.Errorf("Transfer-Encoding %v, CONTENT_LENGTH %v: the request was not sent chunked", got.TE, got.CL)
		}
		if got.SHA256 != hex.EncodeToString(sum[:]) || got.Length != len(data) {
			t.Errorf("got %d bytes with sha256 %s, want %d", got.Length, got.SHA256, len(data))
		}
	})

	t.Run("chunked body with extensions, trailers and a request after it", func(t *testing.T) {
		c := w.dial(t)
		raw := "POST /lines HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"4;name=value\r\nab\nc\r\n3\r\nd\ne\r\n0\r\nX-Trailer: y\r\n\r\n" +
			"GET / HTTP/1.1\r\nHost: x\r\n\r\n" // sent in the same write
		resp, body := c.roundTrip(t, "POST", raw)
		expectStatus(t, resp, body, 200)
		if want := `["ab\n", "cd\n", "e"]`; body != want {
			t.Errorf("lines %s, want %s", body, want)
		}
		resp, body = c.read(t, "GET")
		expectStatus(t, resp, body, 200)
	})

	t.Run("wsgi.input methods", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "http://ferry/raw/mixed", strings.NewReader("abcdef\nghijkl\nmn\nop"))
		resp, body := w.do(t, req)
		expectStatus(t, resp, body, 200)
		// readline(4), readline(), read(3), readline(0), read(0), readlines(), read()
		if want := `["abcd", "ef\n", "ghi", "", "", "jkl\n", "mn\n", "op", ""]`; body != want {
			t.Errorf("got %s, want %s", body, want)
		}
	})

	t.Run("Expect 100-continue", func(t *testing.T) {
		c := w.dial(t)
		resp, body := c.roundTrip(t, "POST", "POST /sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		expectStatus(t, resp, body, 100)
		if _, err := io.WriteString(c, "hello"); err != nil {
			t.Fatal(err)
		}
		resp, body = c.read(t, "POST")
		expectStatus(t, resp, body, 200)
		if !strings.Contains(body, `"length": 5`) {
			t.Errorf("body %s", body)
		}

		// Never asked for, never sent: the worker answers without 100 and
		// closes, as the body may or may not follow.
		c = w.dial(t)
		resp, body = c.roundTrip(t, "POST", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if !resp.Close {
			t.Error("an unanswered Expect: 100-continue kept the connection")
		}
		c.expectEOF(t)
	})

	t.Run("Expect 100-continue after the response began", func(t *testing.T) {
		// The app answers, then reads the body: a 100 Continue then would
		// land in the response's body (the proxy, which passes Expect on,
		// saw "invalid byte in chunk length" and cut the response short).
		c := w.dial(t)
		if _, err := io.WriteString(c, "POST /raw/late-read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, resp, "", 200)
		if _, err := io.WriteString(c, "hello"); err != nil { // as a client may, once it waited for a 100
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "receiving\ngot 5 bytes\n" {
			t.Errorf("body %q (%v), want %q", body, err, "receiving\ngot 5 bytes\n")
		}
		if !resp.Close {
			t.Error("a response that began with the body unsent kept the connection")
		}
	})

	t.Run("streamed response", func(t *testing.T) {
		resp, body := w.get(t, "/stream?n=4")
		expectStatus(t, resp, body, 200)
		if want := "chunk 0\nchunk 1\nchunk 2\nchunk 3\n"; body != want {
			t.Errorf("body %q, want %q", body, want)
		}
		if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
			t.Errorf("Transfer-Encoding %v, want chunked", resp.TransferEncoding)
		}
	})

	t.Run("write callable", func(t *testing.T) {
		resp, body := w.get(t, "/write")
		expectStatus(t, resp, body, 200)
		if body != "part1,part2,part3" {
			t.Errorf("body %q", body)
		}
	})

	t.Run("application's Content-Length", func(t *testing.T) {
		resp, body := w.get(t, "/length")
		expectStatus(t, resp, body, 200)
		if body != "hello" || resp.ContentLength != 5 || len(resp.TransferEncoding) != 0 {
			t.Errorf("body %q, length %d, Transfer-Encoding %v", body, resp.ContentLength, resp.TransferEncoding)
		}
	})

	t.Run("latin-1 header value", func(t *testing.T) {
		resp, body := w.get(t, "/latin1")
		expectStatus(t, resp, body, 200)
		if got := resp.Header.Get("X-Latin"); got != "caf\xe9" {
			t.Errorf("X-Latin %q, want %q", got, "caf\xe9")
		}
	})

	t.Run("hop-by-hop headers from the application", func(t *testing.T) {
		c := w.dial(t)
		resp, body := c.roundTrip(t, "GET", "GET /hop HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if resp.Header.Get("Keep-Alive") != "" || !resp.Close {
			t.Errorf("headers %v: want Keep-Alive dropped and Connection: close honoured", resp.Header)
		}
		c.expectEOF(t)
	})

	t.Run("HEAD and 204", func(t *testing.T) {
		c := w.dial(t)
		for _, path := range []string{"/", "/stream", "/write"} {
			resp, body := c.roundTrip(t, "HEAD", "HEAD "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			expectStatus(t, resp, body, 200)
		}
		resp, body := c.roundTrip(t, "GET", "GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 204)
		// Had any of them sent a body, this would read garbage.
		resp, body = c.roundTrip(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if body != "ok\n" {
			t.Errorf("body %q", body)
		}
	})

	t.Run("HEAD with an empty body claims no length", func(t *testing.T) {
		// Werkzeug (Flask) answers a HEAD with an empty iterable, and sets
		// Content-Length only when it knows it: a streamed response's GET
		// is chunked, so its HEAD must not say "Content-Length: 0" (RFC
		// 9110 8.6: only the length a GET would have had).
		c := w.dial(t)
		resp, body := c.roundTrip(t, "HEAD", "HEAD /streamed HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if resp.ContentLength != -1 || resp.Close {
			t.Errorf("Content-Length %d, Connection: close %v; want no length (a GET has none) and the connection kept", resp.ContentLength, resp.Close)
		}
		resp, body = c.roundTrip(t, "GET", "GET /streamed HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if body != "a,b\nc,d\n" || resp.ContentLength != -1 {
			t.Errorf("GET: body %q, Content-Length %d; want the stream, chunked", body, resp.ContentLength)
		}
	})

	t.Run("HEAD stops at the first body chunk", func(t *testing.T) {
		// A HEAD to an event stream, or to a large file an app streams,
		// needs nothing of the body past its first chunk: the worker must
		// answer then and close the iterable, not run it to its end
		// (never, for an endless stream, which held the worker for good).
		c := w.dial(t)
		_, body := c.roundTrip(t, "GET", "GET /closed HTTP/1.1\r\nHost: x\r\n\r\n")
		before, _ := strconv.Atoi(body)
		resp, body := c.roundTrip(t, "HEAD", "HEAD /event-stream HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if got := resp.Header.Get("Content-Type"); got != "text/event-stream" || resp.ContentLength != -1 || resp.Close {
			t.Errorf("Content-Type %q, Content-Length %d, Connection: close %v; want the app's type, no length (a GET has none) and the connection kept",
				got, resp.ContentLength, resp.Close)
		}
		resp, body = c.roundTrip(t, "GET", "GET /closed HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if after, _ := strconv.Atoi(body); after != before+1 {
			t.Errorf("close() count %d after the HEAD, want %d", after, before+1)
		}
	})

	t.Run("keep-alive", func(t *testing.T) {
		c := w.dial(t)
		for i := range 200 {
			var resp *http.Response
			var body string
			switch i % 3 {
			case 0:
				resp, body = c.roundTrip(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			case 1:
				resp, body = c.roundTrip(t, "POST", "POST /sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
			case 2:
				resp, body = c.roundTrip(t, "GET", "GET /stream?n=2 HTTP/1.1\r\nHost: x\r\n\r\n")
			}
			expectStatus(t, resp, body, 200)
			if resp.Close {
				t.Fatalf("request %d: the worker asked to close the connection", i)
			}
		}
	})

	t.Run("HTTP/1.0", func(t *testing.T) {
		c := w.dial(t)
		// A list body has a known length: the connection can be kept.
		resp, body := c.roundTrip(t, "GET", "GET /raw/list HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if resp.Close || resp.ContentLength != 3 {
			t.Error("an HTTP/1.0 keep-alive request got Connection: close")
		}
		resp, body = c.roundTrip(t, "GET", "GET /stream?n=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if body != "chunk 0\nchunk 1\n" || len(resp.TransferEncoding) != 0 {
			t.Errorf("body %q, Transfer-Encoding %v: want it delimited by closing", body, resp.TransferEncoding)
		}
		c.expectEOF(t)

		c = w.dial(t)
		resp, body = c.roundTrip(t, "GET", "GET / HTTP/1.0\r\n\r\n")
		expectStatus(t, resp, body, 200)
		c.expectEOF(t)
	})

	t.Run("two connections", func(t *testing.T) {
		a, b := w.dial(t), w.dial(t)
		resp, body := a.roundTrip(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		// a is now idle, kept alive: b must be served all the same.
		resp, body = b.roundTrip(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		// b idle, a again; and a half-sent request on b blocks no one.
		if _, err := io.WriteString(b, "GET / HTTP/1.1\r\nHo"); err != nil {
			t.Fatal(err)
		}
		resp, body = a.roundTrip(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		resp, body = b.roundTrip(t, "GET", "st: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
	})

	t.Run("environ", func(t *testing.T) {
		environ := func(req *http.Request) map[string]any {
			t.Helper()
			resp, body := w.do(t, req)
			expectStatus(t, resp, body, 200)
			var env map[string]any
			if err := json.Unmarshal([]byte(body), &env); err != nil {
				t.Fatal(err)
			}
			return env
		}
		check := func(env map[string]any, want map[string]any) {
			t.Helper()
			for k, v := range want {
				got, ok := env[k]
				if v == nil {
					if ok {
						t.Errorf("%s = %v, want it absent", k, got)
					}
					continue
				}
				if got != v {
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
		}

		req, _ := http.NewRequest(http.MethodGet, "http://ferry/environ/a%20b%C3%A9?x=1&y=%20z", nil)
		req.Host = "example.com:8443"
		req.Header.Set("X-Forwarded-For", "203.0.113.9, 198.51.100.4")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Add("X-Multi", "a")
		req.Header.Add("X-Multi", "b")
		req.Header["X_sneaky"] = []string{"1"}
		req.Header["Proxy"] = []string{"http://evil"}
		check(environ(req), map[string]any{
			"REQUEST_METHOD":        "GET",
			"SCRIPT_NAME":           "",
			"PATH_INFO":             "/environ/a b\u00c3\u00a9", // UTF-8 bytes, decoded as latin-1
			"QUERY_STRING":          "x=1&y=%20z",
			"REQUEST_URI":           "/environ/a%20b%C3%A9?x=1&y=%20z",
			"RAW_URI":               "/environ/a%20b%C3%A9?x=1&y=%20z", // gunicorn's name for the target as sent
			"SERVER_NAME":           "example.com",
			"SERVER_PORT":           "8443",
			"SERVER_PROTOCOL":       "HTTP/1.1",
			"REMOTE_ADDR":           "198.51.100.4",
			"HTTP_HOST":             "example.com:8443",
			"HTTP_X_MULTI":          "a, b", // RFC 9110 5.3: "For consistency, use comma SP", as a single line would
			"HTTP_X_SNEAKY":         nil,
			"HTTP_PROXY":            nil,
			"CONTENT_TYPE":          nil,
			"CONTENT_LENGTH":        nil,
			"wsgi.url_scheme":       "https",
			"wsgi.multithread":      false,
			"wsgi.multiprocess":     true,
			"wsgi.run_once":         false,
			"wsgi.input_terminated": true,
		})

		req, _ = http.NewRequest(http.MethodGet, "http://ferry/environ", nil)
		req.Header.Set("X-Forwarded-Host", "public.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		check(environ(req), map[string]any{
			"SERVER_NAME":  "public.example",
			"SERVER_PORT":  "443",
			"REMOTE_ADDR":  "127.0.0.1",
			"QUERY_STRING": "",
		})

		// An absolute-form target: the app's REQUEST_URI is its path and
		// query, RAW_URI what came, as under gunicorn.
		c := w.dial(t)
		resp, body := c.roundTrip(t, "GET", "GET http://example.com/environ?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
		expectStatus(t, resp, body, 200)
		var env map[string]any
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			t.Fatal(err)
		}
		check(env, map[string]any{
			"PATH_INFO":    "/environ",
			"QUERY_STRING": "q=1",
			"REQUEST_URI":  "/environ?q=1",
			"RAW_URI":      "http://example.com/environ?q=1",
		})

		req, _ = http.NewRequest(http.MethodPost, "http://ferry/environ", strings.NewReader("a=1"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		check(environ(req), map[string]any{
			"REQUEST_METHOD":      "POST",
			"SERVER_NAME":         "ferry",
			"SERVER_PORT":         "80",
			"wsgi.url_scheme":     "http",
			"CONTENT_TYPE":        "application/x-www-form-urlencoded",
			"CONTENT_LENGTH":      "3",
			"HTTP_CONTENT_TYPE":   nil,
			"HTTP_CONTENT_LENGTH": nil,
		})
	})

	t.Run("close is called", func(t *testing.T) {
		closed := func() int {
			t.Helper()
			_, body := w.get(t, "/closed")
			n, err := strconv.Atoi(body)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := closed()
		resp, body := w.get(t, "/close")
		expectStatus(t, resp, body, 200)
		if body != "ab" {
			t.Errorf("body %q", body)
		}
		afterOK := closed()
		c := w.dial(t)
		if _, err := io.WriteString(c, "GET /boom-late HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Error("a response whose iterable raised mid-body ended cleanly: want the connection cut")
		}
		afterError := closed()
		if afterOK != before+1 || afterError != afterOK+1 {
			t.Errorf("close() counts %d, %d, %d: want one more after each request", before, afterOK, afterError)
		}
		// A client that goes away from an endless body: the next write
		// fails, and the iterable is closed all the same.
		c = w.dial(t)
		if _, err := io.WriteString(c, "GET /endless HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := http.ReadResponse(c.br, nil); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if afterGone := closed(); afterGone != afterError+1 {
			t.Errorf("close() count %d after the client went away, want %d", afterGone, afterError+1)
		}
	})

	t.Run("application error", func(t *testing.T) {
		c := w.dial(t)
		resp, body := c.roundTrip(t, "GET", "GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 500)
		if resp.Close {
			t.Error("a 500 closed the connection; want it kept")
		}
		resp, body = c.roundTrip(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		w.expectOutput(t, "RuntimeError: boom")
		resp, body = c.roundTrip(t, "GET", "GET /exc-info HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 503)
	})

	t.Run("str subclasses in status and headers", func(t *testing.T) {
		// gunicorn, uWSGI, mod_wsgi and waitress take any str: a StrEnum
		// member or a Markup/SafeString a framework passed through.
		c := w.dial(t)
		resp, body := c.roundTrip(t, "GET", "GET /raw/str-subclass HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if got := resp.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type %q, want application/json", got)
		}
		if got := resp.Header.Get("X-Safe"); got != "yes" || body != "{}" {
			t.Errorf("X-Safe %q, body %q", got, body)
		}
	})

	t.Run("bytes subclasses in a body", func(t *testing.T) {
		c := w.dial(t)
		resp, body := c.roundTrip(t, "GET", "GET /raw/bytes-subclass HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if body != "a bytes subclass" {
			t.Errorf("body %q, want each chunk once", body)
		}
	})

	t.Run("control characters in a header value", func(t *testing.T) {
		// HTTP allows none but HTAB in a field value, and the proxy's HTTP
		// parser refuses the response (a 502 without a word of the app's):
		// the app's start_response fails instead, a 500 with its traceback.
		c := w.dial(t)
		for _, v := range []string{"a%01b", "a%1Bb", "a%7Fb", "a%0Bb", "a%00b", "a%0D%0AX-Injected:%201", "a%0Ab", "a%0Db"} {
			resp, body := c.roundTrip(t, "GET", "GET /raw/header?"+v+" HTTP/1.1\r\nHost: x\r\n\r\n")
			expectStatus(t, resp, body, 500)
		}
		w.expectOutput(t, "ValueError: header 'X-Value' contains a control character: 'a\\x01b'")
		for v, want := range map[string]string{"a%09b": "a\tb", "caf%E9": "caf\xe9"} {
			resp, body := c.roundTrip(t, "GET", "GET /raw/header?"+v+" HTTP/1.1\r\nHost: x\r\n\r\n")
			expectStatus(t, resp, body, 200)
			if got := resp.Header.Get("X-Value"); got != want {
				t.Errorf("X-Value %q, want %q", got, want)
			}
		}
	})

	t.Run("str in a list body", func(t *testing.T) {
		// The whole list is known before anything is sent: a clear 500, not
		// a 200 cut short.
		c := w.dial(t)
		resp, body := c.roundTrip(t, "GET", "GET /raw/str-in-list HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 500)
		w.expectOutput(t, "response body data must be bytes, not str")
		resp, body = c.roundTrip(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
	})

	t.Run("unread request body", func(t *testing.T) {
		c := w.dial(t)
		small := strings.Repeat("x", 100_000)
		resp, body := c.roundTrip(t, "POST", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(small), small))
		expectStatus(t, resp, body, 200)
		if resp.Close {
			t.Error("a small unread body closed the connection; want it drained")
		}
		resp, body = c.roundTrip(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)

		// Too much to drain: the worker answers, then closes.
		// Each writer goroutine gets its own connection: c is dialled anew
		// below while it may still write (a closure over c wrote the rest
		// of one body into the next connection, under -race).
		c = w.dial(t)
		big := 4 << 20
		go func(c *rawConn) {
			_, _ = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", big)
			_, _ = c.Write(make([]byte, big)) // fails once the worker closes
		}(c)
		resp, body = c.read(t, "POST")
		expectStatus(t, resp, body, 200)
		if !resp.Close {
			t.Error("a large unread body kept the connection; want Connection: close")
		}

		// Whenever the worker will close the connection for what it leaves
		// unread and knows it by the head, the head says so: the proxy
		// would otherwise take the connection for a kept one. Just over the
		// limit, some of it received with the head; and chunked, its first
		// chunk alone over it.
		over := 256<<10 + 1000
		for head, size := range map[string]int{
			fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", over):              over,
			fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", big): big,
		} {
			c = w.dial(t)
			go func(c *rawConn) { _, _ = c.Write(append([]byte(head), make([]byte, size)...)) }(c) // fails once the worker closes
			resp, body = c.read(t, "POST")
			expectStatus(t, resp, body, 200)
			if !resp.Close {
				t.Errorf("%.60q: no Connection: close", head)
			}
			c.expectEOF(t)
		}
	})

	t.Run("malformed requests", func(t *testing.T) {
		tests := []struct {
			raw  string
			code int
		}{
			{"GARBAGE\r\n\r\n", 400},
			{"GET /\r\n\r\n", 400},
			{"GET / HTTP/1.1\r\nNo colon\r\n\r\n", 400},
			{"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
			{"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
			{"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400},
			{"GET / HTTP/1.1\nHost: x\n\n", 400},
			{"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400},
			{"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
			{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
			{"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
			{"GET nope HTTP/1.1\r\n\r\n", 400},
			{"GET / HTTP/2.0\r\n\r\n", 505},
			{"GET / HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 70_000) + "\r\n\r\n", 431},
			{"GET / HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 70_000), 431},
		}
		for _, tt := range tests {
			c := w.dial(t)
			go func() { _, _ = io.WriteString(c, tt.raw) }()
			resp, body := c.read(t, "GET")
			if resp.StatusCode != tt.code {
				t.Errorf("%.60q: status %d, want %d", tt.raw, resp.StatusCode, tt.code)
			}
			if !resp.Close {
				t.Errorf("%.60q: no Connection: close", tt.raw)
			}
			_ = body
			c.expectEOF(t)
		}
		// A malformed chunked body fails the application's read, not the worker.
		c := w.dial(t)
		resp, body := c.roundTrip(t, "POST", "POST /sha256 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
		expectStatus(t, resp, body, 500)
		if !resp.Close {
			t.Error("a malformed chunked body kept the connection")
		}
		resp, body = w.get(t, "/")
		expectStatus(t, resp, body, 200)
	})

	t.Run("no PEP 3333 violations", func(t *testing.T) {
		out := w.output.String()
		for _, bad := range []string{"AssertionError", "WSGIWarning", "without being closed"} {
			if strings.Contains(out, bad) {
				t.Errorf("stderr mentions %s:\n%s", bad, out)
			}
		}
	})
}

// What a request to an application that breaks PEP 3333 in the commonest
// ways gets (a 500, the connection kept) and what stderr says: the loader's
// own frames are left out of the traceback, so the message alone must say
// what the application did.
func TestApplicationMistakes(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeApp(t, root, `
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/no-start-response":
        return []
    if path == "/data-before-start-response":
        return [b"x"]
    if path == "/not-latin-1":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Disposition", "attachment; filename=\u2192.txt")])
        return [b"ok"]
    if path == "/early-hints":
        start_response("103 Early Hints", [("Link", "</app.css>; rel=preload")])
        return []
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/none":
        return None
    if path == "/bytes":
        return b"hello"
    if path == "/str":
        return "hello"
    if path == "/write-then-empty":
        write(b"written")
        return b""  # iterates as nothing: old apps do this, and it works
    return [b"ok"]
`)
	w := spawn(t, root)
	c := w.dial(t)
	for path, want := range map[string]string{
		"/no-start-response":          "AssertionError: the application returned without calling start_response()\n",
		"/data-before-start-response": "AssertionError: the application produced body data before calling start_response()\n",
		"/none":                       "TypeError: the application returned None, not an iterable of bytes\n",
		"/bytes":                      "TypeError: the application returned bytes, not an iterable of bytes (return [body])\n",
		"/str":                        "TypeError: the application returned str, not an iterable of bytes (return [body])\n",
	} {
		resp, body := c.roundTrip(t, "GET", "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 500)
		w.expectOutput(t, "ferry-wsgi: error serving GET "+path+"\n"+want)
	}
	// A 1xx is interim: sent as the answer, the proxy read past it for a
	// final one that never came, and the request hung with its worker's slot.
	resp, body := c.roundTrip(t, "GET", "GET /early-hints HTTP/1.1\r\nHost: x\r\n\r\n")
	expectStatus(t, resp, body, 500)
	w.expectOutput(t, "ValueError: status '103 Early Hints' is not a final status (a 1xx is interim: its client would wait for another answer)\n")
	// A character latin-1 cannot encode: the error names the header, not
	// a position in a head the app never saw.
	resp, body = c.roundTrip(t, "GET", "GET /not-latin-1 HTTP/1.1\r\nHost: x\r\n\r\n")
	expectStatus(t, resp, body, 500)
	w.expectOutput(t, "ValueError: header 'Content-Disposition' holds a character that is not latin-1, as PEP 3333 requires: ")
	resp, body = c.roundTrip(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	expectStatus(t, resp, body, 200)
	resp, body = c.roundTrip(t, "GET", "GET /write-then-empty HTTP/1.1\r\nHost: x\r\n\r\n")
	expectStatus(t, resp, body, 200)
	if body != "written" {
		t.Errorf("body %q, want %q", body, "written")
	}
}

// An application that is a class (its instances the response, as in PEP
// 3333's example): the instance is iterated and its close() called.
func TestApplicationClass(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeApp(t, root, `
CLOSED = []

class application:
    def __init__(self, environ, start_response):
        self.path = environ["PATH_INFO"]
        self.start_response = start_response

    def __iter__(self):
        self.start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"closed %d, " % len(CLOSED)
        yield self.path.encode()

    def close(self):
        CLOSED.append(self.path)
`)
	w := spawn(t, root)
	c := w.dial(t)
	for i, want := range []string{"closed 0, /a", "closed 1, /b"} {
		resp, body := c.roundTrip(t, "GET", fmt.Sprintf("GET /%c HTTP/1.1\r\nHost: x\r\n\r\n", 'a'+i))
		expectStatus(t, resp, body, 200)
		if body != want {
			t.Errorf("body %q, want %q", body, want)
		}
	}
}

// fileWrapperApp serves files of its root through wsgi.file_wrapper, and
// counts the reads and closes of the files it hands the loader.
const fileWrapperApp = `
import io
from urllib.parse import parse_qs

COUNTS = {"reads": 0, "closed": 0}


class Tracked(io.BufferedReader):
    """A real file, as open(path, "rb") gives, whose read() and close() are counted."""

    def __init__(self, path):
        super().__init__(io.FileIO(path))

    def read(self, n=-1):
        COUNTS["reads"] += 1
        return super().read(n)

    def close(self):
        if not self.closed:
            COUNTS["closed"] += 1
        super().close()


class TrackedBytes(io.BytesIO):
    """No descriptor: the loader must read it."""

    def read(self, n=-1):
        COUNTS["reads"] += 1
        return super().read(n)

    def close(self):
        COUNTS["closed"] += 1
        super().close()


def application(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    path = environ["PATH_INFO"]
    if path == "/counts":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("%(reads)d %(closed)d" % COUNTS).encode()]
    if path == "/bytes":
        f = TrackedBytes(open(q["name"], "rb").read())
    elif path == "/text":
        f = open(q["name"], encoding="latin-1")  # text mode: read() gives str
    else:
        f = Tracked(q["name"])
    if "seek" in q:
        f.seek(int(q["seek"]))
    if "readahead" in q:
        io.BufferedReader.read(f, int(q["readahead"]))  # uncounted; the descriptor's position is now past the file's
    wrapper = environ["wsgi.file_wrapper"](f, 4096)
    if "range" in q and wrapper.seekable():
        wrapper.seek(int(q["range"]))  # as Werkzeug's _RangeWrapper does
    headers = [("Content-Type", "application/octet-stream")]
    if "cl" in q:
        headers.append(("Content-Length", q["cl"]))
    start_response(q.get("status", "200 OK"), headers)
    return wrapper
`

// wsgi.file_wrapper: a regular file goes out with sendfile (its read() is
// never called), byte-exact, from its position and no further than the
// app's Content-Length; a body-less answer never touches the file; a file
// without a descriptor is read; a file shorter than its Content-Length
// closes the connection; close() is called every time.
func TestFileWrapper(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeApp(t, root, fileWrapperApp)
	data := make([]byte, 12<<20+123)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	w := spawn(t, root)
	c := w.dial(t)
	counts := func(t *testing.T) (reads, closed int) {
		t.Helper()
		resp, body := c.roundTrip(t, "GET", "GET /counts HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if _, err := fmt.Sscan(body, &reads, &closed); err != nil {
			t.Fatalf("counts %q: %v", body, err)
		}
		return reads, closed
	}
	size := strconv.Itoa(len(data))

	tests := []struct {
		name, method, query string
		want                []byte // the body
		length              int64  // the Content-Length said; -1: none
		reads               bool   // the loader calls read()
	}{
		{"with the app's Content-Length", "GET", "name=big.bin&cl=" + size, data, int64(len(data)), false},
		{"without one: the file's size", "GET", "name=big.bin", data, int64(len(data)), false},
		{"from the file's position", "GET", "name=big.bin&seek=1000", data[1000:], int64(len(data) - 1000), false},
		{"no further than the Content-Length", "GET", "name=big.bin&seek=1000&cl=5000", data[1000:6000], 5000, false},
		{"from a buffered file's position", "GET", "name=big.bin&readahead=10", data[10:], int64(len(data) - 10), false},
		{"seeked through the wrapper", "GET", "name=big.bin&range=7", data[7:], int64(len(data) - 7), false},
		{"HEAD", "HEAD", "name=big.bin", nil, int64(len(data)), false},
		{"HEAD with the app's Content-Length", "HEAD", "name=big.bin&cl=" + size, nil, int64(len(data)), false},
		{"204", "GET", "name=big.bin&status=204+No+Content", nil, -1, false},
		{"304", "GET", "name=big.bin&status=304+Not+Modified&cl=" + size, nil, int64(len(data)), false},
		{"no descriptor", "GET", "name=big.bin", data, -1, true},
		{"no descriptor, a Content-Length", "GET", "name=big.bin&cl=70000", data[:70000], 70000, true},
		{"no descriptor, HEAD", "HEAD", "name=big.bin", nil, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/file"
			if strings.HasPrefix(tt.name, "no descriptor") {
				path = "/bytes"
			}
			reads, closed := counts(t)
			resp, body := c.roundTrip(t, tt.method, tt.method+" "+path+"?"+tt.query+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode >= 300 && resp.StatusCode != 304 && resp.StatusCode != 204 {
				t.Fatalf("status %d; body %q", resp.StatusCode, body)
			}
			if !bytes.Equal([]byte(body), tt.want) {
				t.Errorf("body of %d bytes, want %d bytes, byte-exact", len(body), len(tt.want))
			}
			if got := resp.Header.Get("Content-Length"); tt.length >= 0 && got != strconv.FormatInt(tt.length, 10) || tt.length < 0 && got != "" {
				t.Errorf("Content-Length %q, want %d (-1: none)", got, tt.length)
			}
			if resp.Close {
				t.Error("the connection was not kept")
			}
			afterReads, afterClosed := counts(t)
			if got := afterReads - reads; (got > 0) != tt.reads {
				t.Errorf("%d read() calls; want reads %v", got, tt.reads)
			}
			if afterClosed != closed+1 {
				t.Errorf("close() called %d times, want once", afterClosed-closed)
			}
		})
	}

	t.Run("a file shorter than its Content-Length", func(t *testing.T) {
		for _, path := range []string{"/file", "/bytes"} {
			_, closed := counts(t)
			c := w.dial(t)
			if _, err := fmt.Fprintf(c, "GET %s?name=big.bin&seek=%d&cl=1000 HTTP/1.1\r\nHost: x\r\n\r\n", path, len(data)-10); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(body, data[len(data)-10:]) {
				t.Errorf("%s: body %q, %v; want the file's last 10 bytes, then the connection closed", path, body, err)
			}
			if _, after := counts(t); after != closed+1 {
				t.Errorf("%s: close() called %d times, want once", path, after-closed)
			}
		}
	})

	// A Content-Length past what sendfile's count can say (2^63 and up) is
	// a file that ends first like any other: its bytes, then the connection
	// closed; not an OverflowError logged as the app's, with nothing sent.
	t.Run("a Content-Length past a 64-bit count", func(t *testing.T) {
		c := w.dial(t)
		if _, err := fmt.Fprintf(c, "GET /file?name=big.bin&seek=%d&cl=18446744073709551616 HTTP/1.1\r\nHost: x\r\n\r\n", len(data)-10); err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(c.br)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(raw, []byte("\r\n\r\n"+string(data[len(data)-10:]))) {
			t.Errorf("answer %.200q; want the file's last 10 bytes after the head, then the connection closed", raw)
		}
		if strings.Contains(w.output.String(), "OverflowError") {
			t.Error("the worker logged an OverflowError")
		}
	})

	// A regular file sendfile refuses (EINVAL: /proc's, some FUSE file
	// systems) is read and sent instead, from the same offset: its head is
	// out by then, so failing would cut the answer short.
	t.Run("a file sendfile refuses", func(t *testing.T) {
		resp, body := c.roundTrip(t, "GET", "GET /file?name=/proc/self/status&cl=20 HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 200)
		if len(body) != 20 || !strings.HasPrefix(body, "Name:") || resp.Close {
			t.Errorf("body %q, Connection: close %v; want /proc/self/status's first 20 bytes and the connection kept", body, resp.Close)
		}
	})

	// A text-mode file is not sent as its bytes (which ones? its encoding
	// decides): it is read like any other file-like, and its first str is
	// the app's mistake, as PEP 3333 has it: a 500 and a traceback naming it.
	t.Run("a text-mode file", func(t *testing.T) {
		resp, body := c.roundTrip(t, "GET", "GET /text?name=big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
		expectStatus(t, resp, body, 500)
		if resp.Close {
			t.Error("the connection was not kept")
		}
		w.expectOutput(t, "TypeError: response body data must be bytes, not str")
	})

	t.Run("HTTP/1.0 keeps the connection", func(t *testing.T) {
		c := w.dial(t)
		for range 2 {
			resp, body := c.roundTrip(t, "GET", "GET /file?name=big.bin&seek=100 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
			expectStatus(t, resp, body, 200)
			if body != string(data[100:]) || resp.Close {
				t.Errorf("body of %d bytes, Connection: close %v; want %d bytes and the connection kept", len(body), resp.Close, len(data)-100)
			}
		}
	})
}

// A chained exception's traceback leaves out the loader's own frames, as the
// last one's does: an app that turns the loader's error reading its upload
// into its own, and an iterable whose close() fails after its iteration did.
func TestChainedTracebacks(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeApp(t, root, `
class Body:
    def __iter__(self):
        raise KeyError("iterating")

    def close(self):
        raise RuntimeError("closing")


def application(environ, start_response):
    if environ["PATH_INFO"] == "/upload":
        try:
            environ["wsgi.input"].read()
        except ValueError as e:
            raise RuntimeError("cannot read the upload") from e
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Body()
`)
	w := spawn(t, root)
	c := w.dial(t)
	resp, body := c.roundTrip(t, "POST", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
	expectStatus(t, resp, body, 500)
	c = w.dial(t)
	resp, body = c.roundTrip(t, "GET", "GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
	expectStatus(t, resp, body, 500)
	for _, want := range []string{"RuntimeError: cannot read the upload\n", "RuntimeError: closing\n"} {
		w.expectOutput(t, want)
	}
	out := w.output.String()
	for _, want := range []string{
		"BadRequestBody: malformed chunked request body: bad chunk size\n\nThe above exception was the direct cause",
		`in __iter__` + "\n", "KeyError: 'iterating'\n\nDuring handling of the above exception, another exception occurred",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ferry_wsgi_loader") {
		t.Errorf("stderr shows the loader's own frames:\n%s", out)
	}
}

// A request that fails the same way again (the readinessPath, asked ten
// times a second until startTimeout) gets its traceback once a streak of
// failures, and a line at each power of two; a request served ends the
// streak, and the next failure's traceback is said in full.
func TestRepeatedErrorIsSaidOnceAStreak(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeApp(t, root, `
def healthz():
    raise RuntimeError("database unreachable")


def application(environ, start_response):
    if environ["PATH_INFO"] == "/healthz":
        healthz()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
`)
	w := spawn(t, root)
	const (
		traceback = "ferry-wsgi: error serving GET /healthz\nTraceback (most recent call last):\n"
		same      = "ferry-wsgi: error serving GET /healthz: same as before (RuntimeError: database unreachable), "
	)
	get := func(path string, code int) {
		t.Helper()
		resp, body := w.get(t, path)
		expectStatus(t, resp, body, code)
	}
	for range 5 {
		get("/healthz", 500)
	}
	w.expectOutput(t, same+"4 times in a row; next said at 8, or in full once 60 s have passed since the last traceback\n")
	get("/", 200)
	get("/healthz", 500)
	testsupport.Eventually(t, 10*time.Second, "the second streak's traceback", func() error {
		if n := strings.Count(w.output.String(), traceback); n != 2 {
			return fmt.Errorf("%d tracebacks, want 2", n)
		}
		return nil
	})
	out := w.output.String()
	if n := strings.Count(out, "RuntimeError: database unreachable\n"); n != 2 || strings.Count(out, same) != 2 ||
		!strings.Contains(out, same+"2 times in a row; next said at 4, or in full once 60 s have passed since the last traceback\n") {
		t.Errorf("want the traceback in full at the 1st and 6th failure, and a line at the 2nd and 4th; the output is:\n%s", out)
	}
}

// streakApp fails /healthz the same way every time and serves /argv
// with its sys.argv after the loader's path and /env with the names in
// its environment that mention STREAK (either ends a streak).
const streakApp = `
import os
import sys


def healthz():
    raise RuntimeError("database unreachable")


def application(environ, start_response):
    if environ["PATH_INFO"] == "/argv":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(sys.argv[1:]).encode()]
    if environ["PATH_INFO"] == "/env":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(sorted(k for k in os.environ if "STREAK" in k)).encode()]
    healthz()
`

// The bound the streak tests set in place of STREAK_RESAY's 60 s, short
// enough to wait out, with the loader's argument testResayFlag.
const (
	testResay     = 300 * time.Millisecond
	testResayFlag = "--test-streak-resay="
)

// spawnStreak starts streakApp's worker with STREAK_RESAY at testResay and
// returns it with the lines it says of the nth failure of a streak of
// /healthz: short, at a power of two within the bound; full, in full
// again past it (the traceback follows).
func spawnStreak(t *testing.T) (w *worker, short, full func(n int) string) {
	t.Helper()
	root := t.TempDir()
	writeApp(t, root, streakApp)
	bound := strconv.FormatFloat(testResay.Seconds(), 'g', -1, 64)
	w = spawnWith(t, root, "", []string{testResayFlag + bound}, nil)
	short = func(n int) string {
		return fmt.Sprintf("ferry-wsgi: error serving GET /healthz: same as before (RuntimeError: database unreachable), "+
			"%d times in a row; next said at %d, or in full once %s s have passed since the last traceback\n", n, 2*n, bound)
	}
	full = func(n int) string {
		return fmt.Sprintf("ferry-wsgi: error serving GET /healthz: same as before, %d times in a row; "+
			"in full again, %s s or more since the last traceback\n%s", n, bound, streakTraceback)
	}
	return w, short, full
}

const streakTraceback = "Traceback (most recent call last):\n"

// A failure of a streak that comes STREAK_RESAY or more after its last
// traceback is said in full again, with the count: an app failing the
// same way for hours does not leave its only traceback hours back in the
// log. The test waits the bound out between two failures, so the second
// must be in full; TestRepeatedErrorIsSaidOnceAStreak, under the 60 s
// bound, pins the lines within it.
func TestRepeatedErrorIsSaidInFullAgainAfterTheBound(t *testing.T) {
	t.Parallel()
	w, _, full := spawnStreak(t)
	// The knob is the loader's alone: not in the app's sys.argv, which is
	// the agent's.
	if resp, body := w.get(t, "/argv"); body != "[]" {
		expectStatus(t, resp, body, 200)
		t.Errorf("the app's sys.argv[1:] is %s, want [] (no %s)", body, testResayFlag)
	}
	resp, body := w.get(t, "/healthz")
	expectStatus(t, resp, body, 500)
	// The bound itself: the loader said its traceback before it answered.
	time.Sleep(testResay)
	resp, body = w.get(t, "/healthz")
	expectStatus(t, resp, body, 500)
	w.expectOutput(t, full(2))
	out := w.output.String()
	if n := strings.Count(out, streakTraceback); n != 2 || strings.Contains(out, "next said at") {
		t.Errorf("want the traceback in full at both failures (%d tracebacks) and no line in between; the output is:\n%s", n, out)
	}
}

// A malformed --test-streak-resay is ignored with a line, and the bound
// stays 60 s: before, float() of it raised before the loader's try, and
// the loader died with a bare traceback without reporting to the agent
// (ReadMessage: EOF). An empty value is malformed too.
func TestMalformedStreakResayIsIgnored(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"soon", "nan", "-1", ""} {
		t.Run(bad, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeApp(t, root, streakApp)
			w := spawnWith(t, root, "", []string{testResayFlag + bad}, nil)
			if !w.msg.Ready {
				t.Fatalf("message %+v, want ready", w.msg)
			}
			w.expectOutput(t, fmt.Sprintf("ferry-wsgi: %s'%s' is no number of seconds; ignored, the bound stays 60 s\n", testResayFlag, bad))
			for range 2 {
				resp, body := w.get(t, "/healthz")
				expectStatus(t, resp, body, 500)
			}
			w.expectOutput(t, "2 times in a row; next said at 4, or in full once 60 s have passed since the last traceback\n")
		})
	}
}

// The bound is no setting of the app's: FERRY_WSGI_TEST_STREAK_RESAY in
// the environment, which an AppGroup's spec.app.env reaches (a FERRY_
// name the agent does not set is the app's), changes nothing, and stays
// in the app's environment. Before, the loader took the test knob from
// there: an app setting it to 0 had every failure in full. Here the
// second failure is the short line of the 60 s bound.
func TestStreakResayIsNoSettingOfTheApp(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeApp(t, root, streakApp)
	w := spawnWith(t, root, "", nil, []string{"FERRY_WSGI_TEST_STREAK_RESAY=0"})
	if !w.msg.Ready {
		t.Fatalf("message %+v, want ready", w.msg)
	}
	for range 2 {
		resp, body := w.get(t, "/healthz")
		expectStatus(t, resp, body, 500)
	}
	w.expectOutput(t, "2 times in a row; next said at 4, or in full once 60 s have passed since the last traceback\n")
	if out := w.output.String(); strings.Count(out, streakTraceback) != 1 {
		t.Errorf("want the traceback once, at the first failure; the output is:\n%s", out)
	}
	if resp, body := w.get(t, "/env"); body != "['FERRY_WSGI_TEST_STREAK_RESAY']" {
		expectStatus(t, resp, body, 200)
		t.Errorf("the app's os.environ has %s of the names with STREAK, want its own FERRY_WSGI_TEST_STREAK_RESAY", body)
	}
}

// The bound counts from the streak's last traceback, not from its last
// line of any kind: a short line at a power of two leaves it. Failure 1
// is in full; failure 2, within the bound (2/3 of it later), is the short
// line at 2; failure 3, half the bound after that, comes more than the
// bound after the traceback and is said in full. Before, the short line
// reset the time, and failure 3 (not a power of two) said nothing: an app
// failing ten times a second had its traceback again only after some 2.7
// minutes, not the minute the docs say. Only lower bounds on the waits
// matter, but failure 2 must come within the bound: an attempt whose
// failure 2 came past it (said in full, a stalled machine) ends its streak
// and is made again.
func TestRepeatedErrorBoundCountsFromTheTraceback(t *testing.T) {
	t.Parallel()
	w, short, full := spawnStreak(t)
	fail := func() {
		t.Helper()
		resp, body := w.get(t, "/healthz")
		expectStatus(t, resp, body, 500)
	}
	const attempts = 5
	for range attempts {
		from := len(w.output.String())
		fail()
		time.Sleep(testResay * 2 / 3)
		fail()
		var second string
		testsupport.Eventually(t, 10*time.Second, "failure 2's line", func() error {
			out := w.output.String()[from:]
			for _, l := range []string{short(2), full(2)} {
				if strings.Contains(out, l) {
					second = l
					return nil
				}
			}
			return fmt.Errorf("neither %q nor %q; it says:\n%s", short(2), full(2), out)
		})
		if second == full(2) {
			resp, body := w.get(t, "/env") // served: the streak ends
			expectStatus(t, resp, body, 200)
			continue
		}
		time.Sleep(testResay / 2)
		fail()
		w.expectOutput(t, short(2)+full(3))
		return
	}
	t.Fatalf("in each of %d attempts failure 2 came %v or more after failure 1; the machine is too slow for the test", attempts, testResay)
}

// sys.exit() in a request ends the worker, as it ends a gunicorn worker,
// but not without a word: Python prints nothing for a SystemExit, and the
// worker vanished from its own log with its request unanswered.
func TestSysExitInARequest(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeApp(t, root, `
import sys

def shutdown():
    sys.exit(3)

def application(environ, start_response):
    shutdown()
`)
	w := spawn(t, root)
	c := w.dial(t)
	if _, err := io.WriteString(c, "GET /admin/stop HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.expectEOF(t)
	if code := w.wait(t); code != 3 {
		t.Errorf("exit code %d, want the app's 3", code)
	}
	out := w.output.String()
	for _, want := range []string{"ferry-wsgi: error serving GET /admin/stop\n", "in shutdown\n", "SystemExit: 3\n", "the application raised SystemExit: the process exits"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr does not say %q:\n%s", want, out)
		}
	}
}

// A startup file named like a package it imports (Flask's and mod_wsgi's
// "yourapplication.wsgi" doing "from yourapplication import app", or an old
// Django "django.wsgi") must not shadow that package.
func TestStartupFileNamedLikeAPackage(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "yourapplication"), 0o755); err != nil {
		t.Fatal(err)
	}
	pkg := "def app(environ, start_response):\n" +
		"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
		"    return [b'from the package\\n']\n"
	if err := os.WriteFile(filepath.Join(root, "yourapplication", "__init__.py"), []byte(pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "yourapplication.wsgi"), []byte("from yourapplication import app as application\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := spawnStartup(t, root, "yourapplication.wsgi")
	if !w.msg.Ready {
		t.Fatalf("message %+v, want ready", w.msg)
	}
	resp, body := w.get(t, "/")
	expectStatus(t, resp, body, 200)
	if body != "from the package\n" {
		t.Errorf("body %q", body)
	}
}

// A startup file that does not define 'application' is told which of its
// names look like a WSGI application (objects and functions that take two
// arguments), or which application factory it has, and the line to add.
func TestNoApplicationSaysWhatIsThere(t *testing.T) {
	t.Parallel()
	for startup, want := range map[string]string{
		"app_attr.py": "app_attr.py does not define 'application'; it defines app (a Flask object), which looks like a WSGI application: " +
			"add 'application = app' to app_attr.py (Ferry calls 'application'; no AppGroup field names another)",
		"factory_only.py": "factory_only.py does not define 'application'; it defines create_app, an application factory: " +
			"add 'application = create_app()' to factory_only.py",
		"with_proxy.py": "with_proxy.py does not define 'application'; it defines create_app, an application factory: " +
			"add 'application = create_app()' to with_proxy.py",
		"two_apps.py": "two_apps.py does not define 'application'; it defines handler (a WSGIHandler object), serve (a function), which look like a WSGI application: " +
			"add 'application = <the one to serve>' to two_apps.py (Ferry calls 'application'; no AppGroup field names another)",
		"mysite/__init__.py": "mysite/__init__.py does not define 'application': define application(environ, start_response), or assign your application to it",
	} {
		t.Run(startup, func(t *testing.T) {
			t.Parallel()
			spawnStartup(t, copyTree(t, "shapes"), startup).expectLoadError(t, want)
		})
	}
}

// An 'application' that cannot be called with environ and start_response
// (an application factory assigned uncalled) imported fine and failed every
// request; it fails the spawn now, saying what to write. One inspect cannot
// read, or that takes any arguments, is served.
func TestApplicationThatCannotTakeTwoArguments(t *testing.T) {
	t.Parallel()
	const serve = "def serve(environ, start_response, greeting=b'served'):\n" +
		"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
		"    return [greeting]\n"
	const refused = "passenger_wsgi.py: 'application' cannot be called as application(environ, start_response): "
	for _, tt := range []struct {
		name, src string
		error     string // "": served
	}{{
		name:  "an uncalled factory",
		src:   "from shop import create_app\napplication = create_app\n",
		error: refused + "it is create_app(config=None) (too many positional arguments); if create_app makes the application, call it: application = create_app()",
	}, {
		name:  "a function of one argument",
		src:   "def application(request):\n    pass\n",
		error: refused + "it is application(request) (too many positional arguments); a WSGI application takes (environ, start_response)",
	}, {
		name: "an object of three arguments",
		src:  "class Handler:\n    def __call__(self, environ, start_response, extra):\n        pass\napplication = Handler()\n",
		error: refused + "it is a Handler object taking (environ, start_response, extra) (missing a required argument: 'extra'); " +
			"a WSGI application takes (environ, start_response)",
	}, {
		name: "a decorator's wrapper",
		src: "import functools\n" + serve +
			"def request_application(f):\n    def application(*args):\n        return serve(*args)\n    return functools.update_wrapper(application, f)\n" +
			"@request_application\ndef application(request):\n    pass\n",
	}, {
		name: "a partial",
		src:  "import functools\n" + serve + "application = functools.partial(serve, greeting=b'served')\n",
	}, {
		name: "an object taking anything",
		src:  serve + "class Handler:\n    def __call__(self, *args, **kwargs):\n        return serve(*args)\napplication = Handler()\n",
	}, {
		name: "a signature inspect cannot read",
		src: serve + "class Handler:\n    __signature__ = 'unreadable'\n    def __call__(self, environ, start_response):\n        return serve(environ, start_response)\n" +
			"application = Handler()\n",
	}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := copyTree(t, "shapes")
			writeApp(t, root, tt.src)
			w := spawn(t, root)
			if tt.error != "" {
				w.expectLoadError(t, tt.error)
				return
			}
			w.expectServes(t, "served")
		})
	}
}

// Where the startup file is, and what it is loaded as. A file in a package
// directory (one with __init__.py) is a module of its package, as
// gunicorn's shop.wsgi would be: its relative imports work, and Django's
// mysite/wsgi.py is mysite.wsgi. One whose package root does not import
// as such (a src/ layout without PYTHONPATH) stays top-level, as before,
// and its relative import's error says why and what to do.
// startupFile is a path: written as a module name, as gunicorn takes it,
// the error names the file meant, if it is there. A missing one is named
// with its field and root, not as Python's FileNotFoundError (the agent
// checks before it spawns; this is the loader's check, for a file removed
// since).
func TestWhereTheStartupFileIs(t *testing.T) {
	t.Parallel()
	const failed = "error: " // a want that starts so is the loader's error, %s its root
	for startup, want := range map[string]string{
		"shop/wsgi.py":       "shop, as shop\n",
		"mysite/wsgi.py":     "mysite, as mysite.wsgi\n",
		"pkgapp/__init__.py": "pkgapp ran 1 time(s)\n",
		"src/shop/wsgi.py": failed + "src/shop/wsgi.py: attempted relative import with no known parent package: src/shop is a package directory, " +
			"but importing shop from root finds shop/__init__.py first, so the file was loaded as a top-level module: rename one of them, or import absolutely",
		"src/store/wsgi.py": failed + "src/store/wsgi.py: attempted relative import with no known parent package: src/store is a package directory, " +
			"but importing store from root finds nothing, so the file was loaded as a top-level module: put its parent on the path (env PYTHONPATH=src, relative to root), or import absolutely",
		"mysite.wsgi":             failed + "app.startupFile mysite.wsgi: no such file in app.root %s; startupFile is a path, not a module name: did you mean mysite/wsgi.py?",
		"mysite.wsgi:application": failed + "app.startupFile mysite.wsgi:application: no such file in app.root %s; startupFile is a path, not a module name: did you mean mysite/wsgi.py?",
		"app_attr":                failed + "app.startupFile app_attr: no such file in app.root %s; startupFile is a path, not a module name: did you mean app_attr.py?",
		"mysite.asgi":             failed + "app.startupFile mysite.asgi: no such file in app.root %s",
		"mysite/asgi.py":          failed + "app.startupFile mysite/asgi.py: no such file in app.root %s",
	} {
		t.Run(startup, func(t *testing.T) {
			t.Parallel()
			root := copyTree(t, "shapes")
			w := spawnStartup(t, root, startup)
			if msg, ok := strings.CutPrefix(want, failed); ok {
				if strings.Contains(msg, "%s") {
					msg = fmt.Sprintf(msg, root)
				}
				w.expectLoadError(t, msg)
				return
			}
			w.expectServes(t, want)
		})
	}
}

func TestSIGTERM(t *testing.T) {
	t.Parallel()

	t.Run("in flight", func(t *testing.T) {
		t.Parallel()
		w := spawn(t, copyApp(t, "app"))
		started := filepath.Join(t.TempDir(), "started")
		type result struct {
			resp *http.Response
			body string
			err  error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := w.client.Get("http://ferry/wait?started=" + started)
			if err != nil {
				done <- result{err: err}
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			done <- result{resp, string(body), err}
		}()
		testsupport.Eventually(t, hangGuard, "the slow request to start", func() error {
			_, err := os.Stat(started)
			return err
		})
		// A second connection whose request arrives while the first is served.
		c := w.dial(t)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		var r result
		select {
		case r = <-done:
		case <-time.After(hangGuard):
			t.Fatal("the in-flight request never finished")
		}
		if r.err != nil {
			t.Fatalf("in-flight request: %v", r.err)
		}
		expectStatus(t, r.resp, r.body, 200)
		if r.body != "released\n" || !r.resp.Close {
			t.Errorf("body %q, Connection: close %v; want the whole response and the connection closed", r.body, r.resp.Close)
		}
		resp, body := c.read(t, "GET")
		expectStatus(t, resp, body, 200)
		if code := w.wait(t); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		if _, err := os.Stat(w.socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the socket file is still there: %v", err)
		}
	})

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		w := spawn(t, copyApp(t, "app"))
		resp, body := w.get(t, "/") // leaves an idle keep-alive connection
		expectStatus(t, resp, body, 200)
		if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := w.wait(t); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	})
}

func TestReadMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Message
		wantErr error // nil: any error when wantOK is false
		wantOK  bool
	}{
		{name: "ready", in: `{"ready": true, "pid": 42}` + "\n", want: Message{Ready: true, PID: 42}, wantOK: true},
		{name: "error", in: `{"error": "E: x", "traceback": "T"}` + "\n", want: Message{Error: "E: x", Traceback: "T"}, wantOK: true},
		{name: "nothing", in: "", wantErr: io.ErrUnexpectedEOF},
		{name: "cut short", in: `{"ready": true, "pid"`, wantErr: io.ErrUnexpectedEOF},
		{name: "not JSON", in: "hello\n"},
		{name: "ready without pid", in: `{"ready": true}` + "\n"},
		{name: "empty object", in: "{}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadMessage(strings.NewReader(tt.in))
			if tt.wantOK {
				if err != nil || got != tt.want {
					t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("got %+v, %v; want error %v", got, err, tt.wantErr)
			}
		})
	}
}

func TestReadMessageProcessDied(t *testing.T) {
	t.Parallel()
	// A process that dies before writing: the spawner sees ErrUnexpectedEOF.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("python3", "-c", "import sys; sys.exit(3)")
	cmd.ExtraFiles = []*os.File{w}
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMessage(r); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadMessage: %v, want io.ErrUnexpectedEOF", err)
	}
	var exitErr *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("wait: %v, want exit status 3", err)
	}
}

func TestInstall(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = Install(dir) })
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatalf("Install: %v", errs[i])
		}
		if paths[i] != paths[0] {
			t.Fatalf("Install returned %s and %s", paths[0], paths[i])
		}
	}
	path := paths[0]
	if !filepath.IsAbs(path) || filepath.Dir(path) != dir {
		t.Errorf("path %s, want an absolute path in %s", path, dir)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, loader) {
		t.Fatalf("the installed file differs from the embedded loader (%v)", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", fi.Mode(), err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("dir mode %v (%v), want 0755", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d files, want only the loader", len(entries))
	}
	// A corrupted file of that name is replaced.
	if err := os.WriteFile(path, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, loader) {
		t.Error("Install left a corrupted loader in place")
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	o := Options{Root: "/srv/app", Socket: "/run/ferry/w1.sock", Revision: "7-abc"}
	if got, want := o.Argv("/var/lib/ferry/l.py"), []string{"python3", "-u", "/var/lib/ferry/l.py"}; !slices.Equal(got, want) {
		t.Errorf("Argv %v, want %v", got, want)
	}
	o.Python = "/venv/bin/python"
	if got := o.Argv("/l.py"); got[0] != "/venv/bin/python" {
		t.Errorf("Argv %v, want the configured interpreter", got)
	}
	want := []string{
		"FERRY_APP_ROOT=/srv/app",
		"FERRY_STARTUP_FILE=passenger_wsgi.py",
		"FERRY_SOCKET=/run/ferry/w1.sock",
		"FERRY_READY_FD=3",
		"FERRY_REVISION=7-abc",
	}
	if got := o.Env(); !slices.Equal(got, want) {
		t.Errorf("Env %v, want %v", got, want)
	}
}

// BenchmarkKeepAlive measures one loader process serving a trivial app over
// one keep-alive connection, as the proxy's busiest connection would.
func BenchmarkKeepAlive(b *testing.B) {
	w := spawn(b, copyApp(b, "bench"))
	c := w.dial(b)
	if err := c.SetDeadline(time.Time{}); err != nil {
		b.Fatal(err)
	}
	req := []byte("GET / HTTP/1.1\r\nHost: ferry\r\nUser-Agent: bench\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n")
	get := &http.Request{Method: "GET"}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(c.br, get)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
