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
	"github.com/ferry-dev/ferry/internal/testsupport"
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
	victim, result := victimSocket(t), appResult(t)
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
	got := waitResult(t, result)
	if body := get(t, p, "/"); strings.Fields(body)[0] != strconv.Itoa(p.PID) {
		t.Errorf("the worker of pid %d was answered by %q (the app: %s)", p.PID, body, got)
	}
}

// TestWorkerThatRedirectsItsSocketAtOnceIsRefused: the app's link is in
// its socket's place as its loader listens (testdata/swapatlisten), the
// race TestWorkerCannotRedirectItsSocket's app sometimes wins. The spawn
// is refused for the replaced socket; before, the loader read its
// socket's inode through the link, into a directory only root may enter,
// and died of a PermissionError traceback the user had to read through.
func TestWorkerThatRedirectsItsSocketAtOnceIsRefused(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/swapatlisten", StartupFile: "passenger_wsgi.py",
		Env: []ferryv1.EnvVar{{Name: "SWAP_TARGET", Value: victimSocket(t)}}})
	p, err := Spawn(context.Background(), spec)
	if err == nil {
		p.Stop(5 * time.Second)
		t.Fatalf("spawned pid %d at %s; want it refused for its replaced socket", p.PID, p.Address)
	}
	if !strings.Contains(err.Error(), "is not the worker's own socket") {
		t.Fatalf("spawn: %v; want it refused for its replaced socket", err)
	}
}

// TestWorkerCannotKeepItsSocketDirectory: the agent's chown alone leaves
// the directory's mode and ACL as the worker set them while it owned it.
// An app that opened the directory to itself (mode 0777, or an ACL entry
// naming its user) must still be unable to change it once the agent took
// it back, or it replaces its socket after the agent checked it, and the
// agent's next connection, made at the socket's path, goes elsewhere.
func TestWorkerCannotKeepItsSocketDirectory(t *testing.T) {
	for _, widen := range []string{"mode", "acl"} {
		t.Run(widen, func(t *testing.T) {
			victim, result := victimSocket(t), appResult(t)
			spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/widen", StartupFile: "passenger_wsgi.py",
				Env: []ferryv1.EnvVar{{Name: "WIDEN", Value: widen}, {Name: "SWAP_TARGET", Value: victim}, {Name: "SWAP_RESULT", Value: result}}})
			p, err := Spawn(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Stop(5 * time.Second) })
			if body := get(t, p, "/"); strings.Fields(body)[0] != strconv.Itoa(p.PID) {
				t.Fatalf("the worker of pid %d was answered by %q before its app tried", p.PID, body)
			}
			got := waitResult(t, result)
			if body := get(t, p, "/"); strings.Fields(body)[0] != strconv.Itoa(p.PID) {
				t.Errorf("the worker of pid %d was answered by %q (the app: %s)", p.PID, body, got)
			}
			if info, err := os.Stat(filepath.Dir(p.Address)); err != nil {
				t.Error(err)
			} else if info.Mode().Perm() != 0o700 {
				t.Errorf("socket directory mode %v, want 0700", info.Mode())
			}
		})
	}
}

// victimSocket serves "victim" on a socket in a directory only root may
// enter, as the standalone agent's admin socket or another user's
// worker's socket is, and returns its path.
func victimSocket(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the worker must run as another user than the agent: run as root")
	}
	victim := filepath.Join(t.TempDir(), "victim.sock") // 0700, root's
	l, err := net.Listen("unix", victim)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "victim\n") })}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return victim
}

// appResult is a path where a hostile app, running as nobody, can write
// what came of its attempt.
func appResult(t *testing.T) string {
	t.Helper()
	return filepath.Join(testsupport.SharedDir(t), "result")
}

// waitResult returns what the app wrote to result.
func waitResult(t *testing.T, result string) []byte {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got, _ := os.ReadFile(result); len(got) > 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatal("the app never said whether it replaced its socket")
		}
	}
}
