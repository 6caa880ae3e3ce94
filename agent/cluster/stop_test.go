package cluster

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
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
	stop := runAgent(t, "node-t", env.Config, stateDir(t))
	port := freePort(t)
	pp := newPool(ns, "stuck-node-t", "node-t", "1-aaa", port, example("hello-wsgi"))
	pp.Spec.Template.Pool.MinProcesses, pp.Spec.Template.Pool.MaxProcesses = 1, 1
	pp.Spec.Template.Pool.ShutdownTimeout = &metav1.Duration{Duration: timeout}
	if err := env.Client.Create(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pp)
	waitPool(t, key, "a ready report", rolledOut)

	answered := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/slow?ms=600000", port))
		if err == nil {
			err = fmt.Errorf("status %d", resp.StatusCode)
			_ = resp.Body.Close()
		}
		answered <- err
	}()
	var stuck ferryv1.ProcessInfo
	waitPool(t, key, "the request in the worker", func(p *ferryv1.ProcessPool) bool {
		for _, proc := range p.Status.Processes {
			if proc.Sessions > 0 {
				stuck = proc
				return true
			}
		}
		return false
	})

	start := time.Now()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stop()
	}()
	select {
	case <-stopped:
	case <-time.After(2 * time.Minute):
		t.Fatal("the agent did not stop within two minutes")
	}
	took := time.Since(start)
	t.Logf("the agent stopped in %s with shutdownTimeout %s", took.Round(time.Millisecond), timeout)
	if took >= 2*timeout {
		t.Errorf("the agent's stop took %s, want one shutdownTimeout (%s) in all", took.Round(time.Millisecond), timeout)
	}
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
