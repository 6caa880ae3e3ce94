package wsgi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// ReadyFD is the descriptor on which the loader writes its one readiness or
// error message: the first of exec.Cmd.ExtraFiles.
const ReadyFD = 3

// DefaultStartupFile is the startup file when Options.StartupFile is empty,
// as the API defaults it.
const DefaultStartupFile = "passenger_wsgi.py"

// maxMessage bounds the ready message; the loader cuts tracebacks well below.
const maxMessage = 1 << 20

//go:embed ferry_wsgi_loader.py
var loader []byte

// loaderName is the loader's file name: content-addressed, so agents of
// different versions sharing a directory never overwrite each other's.
var loaderName = func() string {
	sum := sha256.Sum256(loader)
	return "ferry_wsgi_loader-" + hex.EncodeToString(sum[:8]) + ".py"
}()

// Install writes the loader script into dir and returns its absolute path.
// It creates dir (mode 0755) if needed and leaves an identical file in place.
// The file is written to a temporary name and renamed, so concurrent calls
// (from one agent or several) are safe and a reader never sees a partial
// file. The file is mode 0644: workers run as other users.
func Install(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("installing the WSGI loader: %w", err)
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("installing the WSGI loader: %w", err)
		}
		// MkdirAll's mode passes through the umask; workers must read the dir.
		if err := os.Chmod(dir, 0o755); err != nil {
			return "", fmt.Errorf("installing the WSGI loader: %w", err)
		}
	}
	path := filepath.Join(dir, loaderName)
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, loader) {
		return path, nil
	}
	tmp, err := os.CreateTemp(dir, ".ferry_wsgi_loader-*.tmp")
	if err != nil {
		return "", fmt.Errorf("installing the WSGI loader: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.Write(loader)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("installing the WSGI loader: %w", err)
	}
	return path, nil
}

// Options says which application a loader process serves and where.
type Options struct {
	// Python is the interpreter: a name looked up on PATH or a path.
	// Default: python3.
	Python string
	// Root is the application root, an absolute path. The loader resolves
	// its symlinks once, puts it first on sys.path and changes into it; the
	// spawner also sets cmd.Dir to it.
	Root string
	// StartupFile is the file, relative to Root, that defines
	// `application`. Default: passenger_wsgi.py.
	StartupFile string
	// Socket is the absolute path of the Unix socket the loader listens on.
	// Keep it under 108 bytes (the sun_path limit).
	Socket string
	// Revision is informational: the application sees it as FERRY_REVISION.
	Revision string
}

// Argv returns the command line that runs the loader at loaderPath:
// [python, "-u", loaderPath]. -u keeps stdout and stderr unbuffered so the
// agent sees output (and tracebacks) as it is written. Nothing follows the
// path: the loader takes an argument there for its tests alone
// (--test-streak-resay=SECONDS, the bound after which an error streak is
// said in full again, 60 s otherwise), out of the app's reach, which its
// environment (an AppGroup's spec.app.env) is not.
func (o Options) Argv(loaderPath string) []string {
	python := o.Python
	if python == "" {
		python = "python3"
	}
	return []string{python, "-u", loaderPath}
}

// Env returns the FERRY_* variables ("K=V") the loader reads, to be
// appended to the worker's environment.
func (o Options) Env() []string {
	startup := o.StartupFile
	if startup == "" {
		startup = DefaultStartupFile
	}
	return []string{
		"FERRY_APP_ROOT=" + o.Root,
		"FERRY_STARTUP_FILE=" + startup,
		"FERRY_SOCKET=" + o.Socket,
		"FERRY_READY_FD=" + strconv.Itoa(ReadyFD),
		"FERRY_REVISION=" + o.Revision,
	}
}

// Message is what the loader reports on ReadyFD: either Ready with the
// worker's PID, or an Error (one line, e.g. "ModuleNotFoundError: No module
// named 'foo'") with the Python traceback that explains it.
type Message struct {
	Ready     bool   `json:"ready,omitempty"`
	PID       int    `json:"pid,omitempty"`
	Error     string `json:"error,omitempty"`
	Traceback string `json:"traceback,omitempty"`
}

// ReadMessage reads the single JSON line the loader writes on ReadyFD. An
// error message from the loader is a Message with Error set and a nil error.
// EOF before a whole line is io.ErrUnexpectedEOF: the process died before it
// could report, and the caller should report its exit status and its last
// output lines instead. To bound the wait, set a read deadline on r (an
// *os.File from os.Pipe supports it) or kill the process.
func ReadMessage(r io.Reader) (Message, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxMessage)).ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(line) >= maxMessage {
				return Message{}, fmt.Errorf("reading the WSGI loader's message: longer than %d bytes", maxMessage)
			}
			return Message{}, io.ErrUnexpectedEOF
		}
		return Message{}, fmt.Errorf("reading the WSGI loader's message: %w", err)
	}
	var m Message
	if err := json.Unmarshal(line, &m); err != nil {
		return Message{}, fmt.Errorf("reading the WSGI loader's message %q: %w", truncate(line, 200), err)
	}
	switch {
	case m.Ready && m.PID > 0 && m.Error == "":
	case !m.Ready && m.Error != "":
	default:
		return Message{}, fmt.Errorf("reading the WSGI loader's message: neither ready with a pid nor an error: %q", truncate(line, 200))
	}
	return m, nil
}

func truncate(b []byte, n int) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return b[:n]
	}
	return b
}
