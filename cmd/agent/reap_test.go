package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testenv"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// orphanApp is a WSGI app whose /orphans makes three orphans, as a shell's
// `daemon &` does: each is forked by a child that exits at once, so it is
// handed to the first process of the pid namespace. Each names itself
// ferry-orphan (its comm) and exits once the file gate exists in the app
// root.
const orphanApp = `import os, time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/orphans":
        gate = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gate")
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                if os.fork() == 0:
                    with open("/proc/self/comm", "w") as f:
                        f.write("ferry-orphan")
                    while not os.path.exists(gate):
                        time.sleep(0.01)
                    os._exit(0)
                os._exit(0)
            os.waitpid(pid, 0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
`

// TestAgentAsPID1ReapsOrphans: the agent image starts the agent as its
// container's first process, to which every orphan in the container is
// handed (a worker's children once it exits, a double fork's grandchild).
// Their exits are pid 1's to collect, or they stay zombies and fill the
// container's pid limit. The agent starts here as the first process of a
// pid namespace of its own, as in a container; a worker makes three
// orphans, which exit: none is left a zombie, the worker serves on, and
// SIGTERM to pid 1 drains the agent, whose exit pid 1's is.
func TestAgentAsPID1ReapsOrphans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("a pid namespace of the agent's own takes root (unshare --pid): run as root, as make test and CI do")
	}
	port := testsupport.FreePort(t)
	yaml := strings.Replace(appYAML("reap", ".", "PORT", 1), "PORT", strconv.Itoa(port), 1)
	dir, readLog, unshare := startAgentUnder(t, []string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM"},
		map[string]string{"app.yaml": yaml, "passenger_wsgi.py": orphanApp})
	t.Cleanup(func() { stopChildren(unshare.Pid) })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(path string) int {
		resp, err := http.Get(url + path)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	testenv.Eventually(t, time.Minute, "the app served", func() error { return status(get("/")) })
	if !strings.Contains(readLog(), "The agent runs under its own pid 1, which collects the exits of orphaned processes") {
		t.Fatalf("the agent, started as pid 1 of its namespace, did not say its pid 1 collects orphans' exits")
	}
	first := childOf(t, unshare.Pid)
	if code := get("/orphans"); code != http.StatusOK {
		t.Fatalf("GET /orphans: %d", code)
	}
	testenv.Eventually(t, 30*time.Second, "the three orphans handed to the agent", func() error {
		return count(orphansOf(first), 3)
	})
	if err := os.WriteFile(filepath.Join(dir, "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the orphans' exits collected", func() error {
		return count(orphansOf(first), 0)
	})
	if code := get("/"); code != http.StatusOK {
		t.Errorf("GET / after: %d, want 200 (the worker serves on)", code)
	}
	// The kubelet's SIGTERM, to pid 1, reaches the agent, which drains;
	// pid 1 exits as it did.
	stopChildren(unshare.Pid)
	if log := readLog(); !strings.Contains(log, "Shutting down: draining requests and stopping workers") {
		t.Errorf("SIGTERM to pid 1 did not reach the agent: no drain in its log")
	}
	if st, err := unshare.Wait(); err != nil || !st.Success() {
		t.Errorf("pid 1 exited %v, %v; want 0, as the agent", st, err)
	}
}

// childOf is the pid of the one child of pid (the agent unshare forked).
func childOf(t *testing.T, pid int) int {
	t.Helper()
	var child int
	testenv.Eventually(t, 10*time.Second, "the agent under unshare", func() error {
		for _, p := range procStats() {
			if p.ppid == pid {
				child = p.pid
				return nil
			}
		}
		return fmt.Errorf("no child of pid %d", pid)
	})
	return child
}

// stopChildren stops the children of pid (the agent, under unshare) as
// the kubelet does: SIGTERM, a minute to drain, then SIGKILL, which ends
// everything in the agent's pid namespace. unshare itself ignores SIGTERM
// while it waits for its child, so startAgent's SIGTERM to it would wait
// for ever.
func stopChildren(pid int) {
	children := func() (out []int) {
		for _, p := range procStats() {
			if p.ppid == pid {
				out = append(out, p.pid)
			}
		}
		return out
	}
	signal := func(sig syscall.Signal) {
		for _, c := range children() {
			_ = syscall.Kill(c, sig)
		}
	}
	signal(syscall.SIGTERM)
	for i := 0; i < 600 && len(children()) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	signal(syscall.SIGKILL)
}

// status is nil for 200, else an error naming code.
func status(code int) error {
	if code != http.StatusOK {
		return fmt.Errorf("status %d", code)
	}
	return nil
}

// count is nil when pids has want entries, else an error listing them.
func count(pids []int, want int) error {
	if len(pids) != want {
		return fmt.Errorf("%d processes (%v), want %d", len(pids), pids, want)
	}
	return nil
}

// orphansOf lists the processes named ferry-orphan whose parent is pid,
// running or exited and not collected (zombies).
func orphansOf(pid int) []int {
	var out []int
	for _, p := range procStats() {
		if p.ppid == pid && p.comm == "ferry-orphan" {
			out = append(out, p.pid)
		}
	}
	return out
}

type procStat struct {
	pid, ppid int
	comm      string
}

// procStats reads /proc/*/stat: "pid (comm) state ppid ...".
func procStats() []procStat {
	entries, _ := os.ReadDir("/proc")
	var out []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		f := strings.Fields(s[close+1:])
		if open < 0 || close < open || len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out = append(out, procStat{pid: pid, ppid: ppid, comm: s[open+1 : close]})
	}
	return out
}
