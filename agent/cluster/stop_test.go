package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// TestAgentStopTakesOneShutdownTimeout: an agent that stops while a
// request is stuck in a worker (a WSGI worker finishes its request before
// it heeds SIGTERM, so this one ignores it) stops within one
// shutdownTimeout, the SIGKILL and reap aside: the proxy's drain and the
// workers' stop share it. Before, the drain alone waited up to twice the
// timeout and ten seconds, and the workers' stop one timeout more, past
// the grace period the chart gives the agent. The worker is gone and the
// stuck client has its answer (an error or a closed connection), not a
// hang. The duration is the behaviour here: its bound is loose (twice the
// timeout), and the measure is logged.
func TestAgentStopTakesOneShutdownTimeout(t *testing.T) {
	const timeout = 3 * time.Second
	ns := namespace(t)
	stop := runAgent(t, "node-st", env.Config, stateDir(t))
	port := freePort(t)
	_, key := createSized(t, ns, "stuck-node-st", "node-st", port, 1, timeout)
	waitPool(t, key, "a ready report", rolledOut)

	answered, stuck := stickRequest(t, key, port)

	agenttest.StopsWithin(t, stop, timeout)
	if err := syscall.Kill(int(stuck.PID), 0); err == nil {
		t.Errorf("worker %d still runs after the agent stopped", stuck.PID)
	}
	select {
	case err := <-answered:
		t.Logf("the stuck client got: %v", err)
	case <-time.After(time.Minute):
		t.Error("the stuck client had no answer a minute after the agent stopped")
	}
}

// stickRequest sends pool key, on port, a request that its worker does not
// answer for ten minutes, and waits until the worker has it. answered
// gets what the client got at last: an error, or the answer's status.
func stickRequest(t *testing.T, key types.NamespacedName, port int32) (answered <-chan error, stuck ferryv1.ProcessInfo) {
	t.Helper()
	ch := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/slow?ms=600000", port))
		if err == nil {
			err = fmt.Errorf("status %d", resp.StatusCode)
			_ = resp.Body.Close()
		}
		ch <- err
	}()
	waitPool(t, key, "the request in the worker", func(p *ferryv1.ProcessPool) bool {
		for _, proc := range p.Status.Processes {
			if proc.Sessions > 0 {
				stuck = proc
				return true
			}
		}
		return false
	})
	return ch, stuck
}

// TestGonePoolStopsBesideTheOthers: a pool whose ProcessPool is gone at
// once (its drain finalizer taken off, by hand or by the manager for a
// Node that went) stops in the background, as a deleted one drains: the
// node's other pools are reconciled meanwhile (and, should the agent stop
// then, stop beside it, not after it). Before, its stop ran on the agent's
// one reconcile worker: a request stuck in it held every other pool's
// changes, and the agent's own stop, for up to its shutdownTimeout. What
// shows it is an order, not a clock: the other pool rolls to a new
// revision while the gone pool's stuck worker still runs.
func TestGonePoolStopsBesideTheOthers(t *testing.T) {
	ns := namespace(t)
	runAgent(t, "node-g", env.Config, stateDir(t))
	gonePort := freePort(t)
	gone, goneKey := createSized(t, ns, "gone-node-g", "node-g", gonePort, 1, 20*time.Second)
	waitPool(t, goneKey, "a ready report", rolledOut)
	_, otherKey := readyPool(t, ns, "other-node-g", "node-g", freePort(t))
	_, stuck := stickRequest(t, goneKey, gonePort)

	patchPool(t, getPool(t, goneKey), func(p *ferryv1.ProcessPool) { controllerutil.RemoveFinalizer(p, contract.DrainFinalizer) })
	if err := env.Client.Delete(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the gone pool's proxy closed", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", gonePort))
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	patchPool(t, getPool(t, otherKey), func(p *ferryv1.ProcessPool) { p.Spec.Revision = "2-bbb" })
	waitPool(t, otherKey, "the other pool rolled to 2-bbb", rolledOut)
	if err := syscall.Kill(int(stuck.PID), 0); err != nil {
		t.Errorf("the gone pool's stuck worker %d was stopped before the other pool rolled (%v): its stop held the agent's reconciles", stuck.PID, err)
	}
}

// killLog is a logger that keeps the pids of the workers the pool says it
// killed (SIGKILL), beside testr's lines.
type killLog struct {
	mu     sync.Mutex
	killed map[int64]bool
}

func (k *killLog) logger(t *testing.T) logr.Logger {
	return funcr.NewJSON(func(obj string) {
		t.Log(obj)
		if !strings.Contains(obj, `"Killed worker that did not exit within shutdownTimeout"`) {
			return
		}
		var line struct {
			PID int64 `json:"pid"`
		}
		if err := json.Unmarshal([]byte(obj), &line); err == nil {
			k.mu.Lock()
			k.killed[line.PID] = true
			k.mu.Unlock()
		}
	}, funcr.Options{})
}

func (k *killLog) wasKilled(pid int32) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.killed[int64(pid)]
}

// TestIdleWorkersExitOnSIGTERMAsTheAgentStops: as the agent stops while a
// request is stuck in one worker, the pool's other, idle, workers still
// get their SIGTERM and the time to exit on it, not SIGKILL right after:
// only a process whose own requests took the shutdownTimeout is killed.
// Before, the proxy's drain, waiting on the stuck request, used up the
// shared deadline, and every worker of the pool was then killed outright
// (a long poll or a slow upload in flight cost every worker its clean
// exit).
func TestIdleWorkersExitOnSIGTERMAsTheAgentStops(t *testing.T) {
	ns := namespace(t)
	kl := &killLog{killed: map[int64]bool{}}
	stop := runAgent(t, "node-i", env.Config, stateDir(t), func(o *Options) {
		o.Log = kl.logger(t)
	})
	port := freePort(t)
	_, key := createSized(t, ns, "idle-node-i", "node-i", port, 2, 3*time.Second)
	waitPool(t, key, "2 ready workers", func(p *ferryv1.ProcessPool) bool {
		return rolledOut(p) && p.Status.ReadyProcesses == "2/2"
	})
	_, stuck := stickRequest(t, key, port)
	var idle int32
	for _, proc := range getPool(t, key).Status.Processes {
		if proc.PID != stuck.PID {
			idle = proc.PID
		}
	}
	if idle == 0 {
		t.Fatal("no idle worker beside the stuck one")
	}
	stop()
	if !kl.wasKilled(stuck.PID) {
		t.Errorf("the stuck worker %d was not killed", stuck.PID)
	}
	if kl.wasKilled(idle) {
		t.Errorf("the idle worker %d was killed (SIGKILL right after SIGTERM), want it to exit on SIGTERM", idle)
	}
	if err := syscall.Kill(int(idle), 0); err == nil {
		t.Errorf("the idle worker %d still runs after the agent stopped", idle)
	}
}

// createSized creates a pool of the hello-wsgi example on node, of
// exactly workers processes, with shutdownTimeout timeout.
func createSized(t *testing.T, ns, name, node string, port, workers int32, timeout time.Duration) (*ferryv1.ProcessPool, types.NamespacedName) {
	t.Helper()
	pp := newPool(ns, name, node, "1-aaa", port, example("hello-wsgi"))
	pp.Spec.Template.Pool.MinProcesses, pp.Spec.Template.Pool.MaxProcesses = workers, workers
	pp.Spec.Template.Pool.ShutdownTimeout = &metav1.Duration{Duration: timeout}
	if err := env.Client.Create(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	return pp, client.ObjectKeyFromObject(pp)
}
