package standalone

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
)

// TestStopTakesOneShutdownTimeout: an agent that stops while a request is
// stuck in a worker (a WSGI worker finishes its request before it heeds
// SIGTERM, so this one ignores it) stops within one shutdownTimeout, the
// SIGKILL and reap aside: the proxy's drain and the workers' stop share
// it. Before, the drain alone waited up to twice the timeout and ten
// seconds, and the workers' stop one timeout more. The worker is gone and
// the stuck client has its answer (an error or a closed connection), not
// a hang. The duration is the behaviour here: its bound is loose (twice
// the timeout), and the measure is logged.
func TestStopTakesOneShutdownTimeout(t *testing.T) {
	const timeout = 3 * time.Second
	s := newSite(t)
	data, err := os.ReadFile(s.file)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(data), "minProcesses: 2, maxProcesses: 4}", "minProcesses: 1, maxProcesses: 1, shutdownTimeout: 3s}", 1)
	if err := os.WriteFile(s.file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, s)

	answered := make(chan error, 1)
	go func() {
		resp, err := http.Get(s.url() + "/slow?ms=600000")
		if err == nil {
			err = fmt.Errorf("status %d", resp.StatusCode)
			_ = resp.Body.Close()
		}
		answered <- err
	}()
	var pid int32
	r.waitStatus(t, "the request in the worker", func(a AppStatus) bool {
		for _, p := range a.Pool.Processes {
			if p.Sessions > 0 {
				pid = p.PID
				return true
			}
		}
		return false
	})

	agenttest.StopsWithin(t, r.stop, timeout)
	if err := syscall.Kill(int(pid), 0); err == nil {
		t.Errorf("worker %d still runs after the agent stopped", pid)
	}
	select {
	case err := <-answered:
		t.Logf("the stuck client got: %v", err)
	case <-time.After(time.Minute):
		t.Error("the stuck client had no answer a minute after the agent stopped")
	}
}

// TestStopKeepsTheNextAgentsSocket: an agent started while another
// drains, on the same admin socket, finds the draining one's socket dead
// and puts its own there; the draining agent, as it stops, must leave it.
func TestStopKeepsTheNextAgentsSocket(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	next := startsOnClose(t, r.client.Socket)
	r.stop()
	answers(t, r.client.Socket, next())
}
