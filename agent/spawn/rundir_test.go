package spawn

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestWorkersNeverShareASocketDirectory: a worker's loader unlinks the
// socket at its path before it binds its own, so a second worker given a
// directory that exists would take the first's requests. Another agent
// sharing the state directory counts its workers from 1 too; here the
// count restarts, as in a new agent of the same pid, over a directory left
// by one before. Each worker must still answer at its own address.
func TestWorkersNeverShareASocketDirectory(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/ok", StartupFile: "passenger_wsgi.py"})
	var procs []*Process
	for range 2 {
		sockSeq.Store(0) // an agent starting afresh
		p, err := Spawn(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(5 * time.Second) })
		procs = append(procs, p)
	}
	if procs[0].Address == procs[1].Address {
		t.Fatalf("both workers were given %s", procs[0].Address)
	}
	for _, p := range procs {
		if body := get(t, p, "/"); strings.Fields(body)[0] != strconv.Itoa(p.PID) {
			t.Errorf("the worker of pid %d at %s was answered by %q", p.PID, p.Address, body)
		}
		if info, err := os.Stat(filepath.Dir(p.Address)); err != nil || info.Mode().Perm() != 0o700 {
			t.Errorf("socket directory of %d: %v, %v; want mode 0700", p.PID, info, err)
		}
	}
}

// TestWorkerCannotRedirectItsSocket: the agent connects to a WSGI
// worker's socket at its path, as root, which may connect to any socket.
// An app that puts a link to another socket in its own socket's place
// (here a socket in a directory only root may enter, as the standalone
// agent's admin socket or another app's worker's) must not be answered
// from there: either the spawn fails, saying so, or the socket directory
// is the agent's by the time the app tries, and the worker answers.
func TestWorkerCannotRedirectItsSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the worker must run as another user than the agent: run as root")
	}
	private := t.TempDir() // 0700, root's
	victim := filepath.Join(private, "victim.sock")
	l, err := net.Listen("unix", victim)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "victim\n") })}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	shared, err := os.MkdirTemp("", "fswap") // the app's to write: t.TempDir's parent is root's alone
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(shared) })
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	result := filepath.Join(shared, "result")

	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/swap", StartupFile: "passenger_wsgi.py",
		Env: []ferryv1.EnvVar{{Name: "SWAP_TARGET", Value: victim}, {Name: "SWAP_RESULT", Value: result}}})
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		if !strings.Contains(err.Error(), "is not the worker's own socket") {
			t.Fatalf("spawn: %v; want it refused for its replaced socket", err)
		}
		return
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); len(got) == 0; time.Sleep(10 * time.Millisecond) {
		if got, _ = os.ReadFile(result); len(got) == 0 && time.Now().After(deadline) {
			t.Fatal("the app never said whether it replaced its socket")
		}
	}
	if body := get(t, p, "/"); strings.Fields(body)[0] != strconv.Itoa(p.PID) {
		t.Errorf("the worker of pid %d was answered by %q (the app: %s)", p.PID, body, got)
	}
}
