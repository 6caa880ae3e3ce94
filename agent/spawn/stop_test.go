package spawn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// spawnWithChild spawns a Command worker whose shell starts child (a
// shell command run in the background) and then becomes the server; it
// returns the worker and the child's pid.
func spawnWithChild(t *testing.T, child string, env ...ferryv1.EnvVar) (*Process, int) {
	t.Helper()
	dir := testsupport.SharedDir(t) // the worker writes the child's pid there
	pidFile := filepath.Join(dir, "child.pid")
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"sh", "-c", child + " & echo $! > " + pidFile + "; exec python3 server.py $PORT"}, Env: env})
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	pid := readPID(t, pidFile)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // if the test fails
	return p, pid
}

// readPID reads the pid a test's shell wrote (echo $!) to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s holds %q, not a pid", path, b)
	}
	return pid
}

// waitGone waits until pid no longer runs (a zombie has ended), failing
// the test, naming what, if it still runs after a minute.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	testsupport.Eventually(t, time.Minute, what, func() error {
		if testsupport.Running(pid) {
			return fmt.Errorf("pid %d still runs", pid)
		}
		return nil
	})
}

// TestCrashedWorkerLeavesNoChildren: a worker that dies on its own (here
// by SIGKILL to the server alone) takes its process group with it: a child
// it left behind would hold memory, and maybe its socket, for good.
func TestCrashedWorkerLeavesNoChildren(t *testing.T) {
	p, child := spawnWithChild(t, "sleep 1000")
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	waitGone(t, child, "the crashed worker's child gone")
}

// TestStopReachesChildrenOutsideTheGroup: a child in a session of its own
// (setsid, as dumb-init starts its child) gets no signal sent to the
// worker's process group. Stop still leaves nothing of the worker
// running: what it started is killed once the worker has exited, both
// when the worker exits on SIGTERM and when it must be killed.
func TestStopReachesChildrenOutsideTheGroup(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		env     []ferryv1.EnvVar
	}{
		{"worker exits on SIGTERM", 5 * time.Second, nil},
		{"worker ignores SIGTERM", 500 * time.Millisecond, []ferryv1.EnvVar{{Name: "IGNORE_TERM", Value: "1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, child := spawnWithChild(t, "setsid sleep 1000", tc.env...)
			if sid, _ := unix.Getsid(child); sid != child {
				t.Fatalf("the child's session is %d, want its own", sid)
			}
			p.Stop(tc.timeout)
			waitGone(t, child, "the worker's child in its own session gone after Stop")
			if n := pidfds(t); n != 0 {
				t.Errorf("%d pidfds open after Stop: the strays' handles leak", n)
			}
		})
	}
}

// pidfds counts this process's open pidfds (the spawn package's tests run
// one at a time: any open is one Stop left).
func pidfds(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "anon_inode:[pidfd]" {
			n++
		}
	}
	return n
}

// TestStopCountsOnlySignalsToALiveProcess: Stop's SIGKILL, and the SIGTERM
// before it, count (Sent, Stop's killed) only if the process still ran as
// they were sent. A process that exited of its own (status 3) before the
// stop, its reaper late (on a loaded machine it may see the exit after
// the timeout), was neither terminated nor killed by the agent: before,
// Stop said killed (the pool logged "Killed worker that did not exit
// within shutdownTimeout"), and its exit, judged at the reaper's time,
// read as the answer to the agent's signals. One that still runs, and
// ignores SIGTERM, was sent both and killed. The reaper here is the
// test's: the processes are exec's children, not spawned. The dead one's
// group holds a child that ignores SIGTERM: its end says Stop's SIGKILL
// went out before the test reaps.
func TestStopCountsOnlySignalsToALiveProcess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	cmd := exec.Command("sh", "-c", `trap "" TERM; sleep 60 & echo $! > `+pidFile+`; exit 3`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{PID: cmd.Process.Pid, done: make(chan struct{})}
	reaped := false
	t.Cleanup(func() {
		_ = syscall.Kill(-p.PID, syscall.SIGKILL)
		if !reaped {
			_ = cmd.Wait()
		}
	})
	waitGone(t, p.PID, "the process exited, a zombie (no reaper yet)")
	child := readPID(t, pidFile)
	killed := make(chan bool, 1)
	go func() { killed <- p.Stop(0) }() // SIGKILL right after SIGTERM
	waitGone(t, child, "the group's child gone: Stop sent SIGKILL")
	p.exitErr = cmd.Wait() // the late reaper
	reaped = true
	p.exited.Store(true)
	close(p.done)
	if k := <-killed; k || p.Sent(syscall.SIGTERM) || p.Sent(syscall.SIGKILL) {
		t.Errorf("a process that exited (%s) before Stop: Stop says killed %v, Sent SIGTERM %v, SIGKILL %v; want none",
			p.ExitStatus(), k, p.Sent(syscall.SIGTERM), p.Sent(syscall.SIGKILL))
	}

	live := exec.Command("sh", "-c", `trap "" TERM; exec sleep 60`)
	live.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	q := &Process{PID: live.Process.Pid, done: make(chan struct{})}
	go func() {
		q.exitErr = live.Wait()
		q.exited.Store(true)
		close(q.done)
	}()
	t.Cleanup(func() { _ = syscall.Kill(-q.PID, syscall.SIGKILL); <-q.done })
	testsupport.Eventually(t, time.Minute, "the live process ignoring SIGTERM (sleep, past the trap)", func() error {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(q.PID) + "/comm"); string(b) != "sleep\n" {
			return errors.New("not yet")
		}
		return nil
	})
	if k := q.Stop(0); !k || !q.Sent(syscall.SIGTERM) || !q.Sent(syscall.SIGKILL) || q.ExitStatus() != "signal: killed" {
		t.Errorf("a live process ignoring SIGTERM: Stop says killed %v, Sent SIGTERM %v, SIGKILL %v, status %q; "+
			"want killed, both sent, \"signal: killed\"", k, q.Sent(syscall.SIGTERM), q.Sent(syscall.SIGKILL), q.ExitStatus())
	}
}
