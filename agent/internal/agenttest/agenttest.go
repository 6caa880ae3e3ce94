// Package agenttest runs real pools behind real proxies for the agent's
// tests: real worker processes from examples/, real HTTP on loopback.
package agenttest

import (
	"context"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	"github.com/ferry-dev/ferry/agent/spawn"
	"github.com/ferry-dev/ferry/agent/wsgi"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// Example returns the absolute path of examples/<name>.
func Example(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "examples", name)
}

// WSGI returns a template for a WSGI example with the API's defaults
// filled in, as the API server would.
func WSGI(example string, min, max int32, env ...ferryv1.EnvVar) ferryv1.AppTemplate {
	return WSGIAt(Example(example), min, max, env...)
}

// WSGIAt is WSGI for an app at an absolute root.
func WSGIAt(root string, min, max int32, env ...ferryv1.EnvVar) ferryv1.AppTemplate {
	d := func(x time.Duration) *metav1.Duration { return &metav1.Duration{Duration: x} }
	return ferryv1.AppTemplate{
		App: ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: root, StartupFile: "passenger_wsgi.py",
			Concurrency: 1, Env: env},
		Listen: ferryv1.ListenSpec{Port: 8080},
		Pool: ferryv1.PoolSpec{MinProcesses: min, MaxProcesses: max, MaxRequestQueueSize: 100,
			QueueTimeout: d(60 * time.Second), IdleTimeout: d(5 * time.Minute),
			StartTimeout: d(30 * time.Second), ShutdownTimeout: d(30 * time.Second)},
		Restart: ferryv1.RestartSpec{Strategy: ferryv1.RestartRolling, ResistDeploymentErrors: ptr.To(true),
			MaxConcurrentNodes: 1},
	}
}

// Env is a pool serving behind a proxy on a loopback port.
type Env struct {
	Pool  *pool.Pool
	Proxy *proxy.Server
	URL   string
}

// Options tune Start.
type Options struct {
	Proxy    proxy.Options
	Tick     time.Duration
	Log      *logr.Logger
	Observer pool.Observer
	// ResistEarlyCrashes is pool.Options' (standalone's).
	ResistEarlyCrashes bool
	// EnvFrom is pool.Options': what reads env valueFrom.
	EnvFrom spawn.EnvSource
}

// Start runs a pool for cfg behind a proxy; both stop at the end of the test.
func Start(t testing.TB, cfg pool.Config, o Options) *Env {
	t.Helper()
	dir := testsupport.WorkerDir(t) // removed after the pool's close below: cleanups run last first
	loader, err := wsgi.Install(filepath.Join(dir, "loader"))
	if err != nil {
		t.Fatal(err)
	}
	log := logr.Discard()
	if tt, ok := t.(*testing.T); ok {
		log = testr.NewWithOptions(tt, testr.Options{Verbosity: 0})
	}
	if o.Log != nil {
		log = *o.Log
	}
	p := pool.New(cfg, pool.Options{RunDir: dir, LoaderPath: loader, Log: log,
		NewTransport: proxy.NewWorkerTransport, Tick: o.Tick, Observer: o.Observer, ResistEarlyCrashes: o.ResistEarlyCrashes, EnvFrom: o.EnvFrom})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Proxy.Log = log
	srv := proxy.New(p, o.Proxy)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Shutdown(ctx)
		p.Close(ctx)
	})
	return &Env{Pool: p, Proxy: srv, URL: "http://" + l.Addr().String()}
}

// WaitFor waits until cond holds for the pool's status, or fails the test
// after timeout. It re-checks at every change of state, and every 50ms for
// what changes without a notification (request counters: the request path
// does not broadcast).
func (e *Env) WaitFor(t testing.TB, timeout time.Duration, what string, cond func(pool.Status) bool) pool.Status {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ch := e.Pool.Changed()
		s := e.Pool.Status()
		if cond(s) {
			return s
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s; status: %+v", timeout, what, s)
		}
	}
}

// Ready reports n ready processes all on the pool's revision, no restart.
func Ready(n int32) func(pool.Status) bool {
	return func(s pool.Status) bool {
		return s.Counts.Ready == n && s.Counts.Total == n && s.Counts.Updated == n && s.Restart == nil
	}
}

// StopsWithin runs stop, which is to end the agent within one
// shutdownTimeout (timeout), and fails the test if it has not returned in
// two minutes. The time it took is logged, and an error reported past
// twice the timeout: the bound in time is the behaviour here, kept loose
// for a slow machine.
func StopsWithin(t *testing.T, stop func(), timeout time.Duration) {
	t.Helper()
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
}
