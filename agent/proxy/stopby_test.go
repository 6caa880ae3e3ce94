package proxy_test

import (
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestRequestCutByTheAgentSaysSo: a request in flight at a worker that
// ignores SIGTERM, when a rolling restart stops it at shutdownTimeout, is
// answered 502 saying the agent stopped the worker and why, not that the
// worker exited, and the log says the same. Before, the client got
// "exited while handling this request", as for a crash.
func TestRequestCutByTheAgentSaysSo(t *testing.T) {
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "pool", "testdata", "abrupt")
	hold := filepath.Join(testsupport.SharedDir(t), "never") // /hold waits for it: for ever
	tmpl := agenttest.WSGIAt(root, 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"python3", "server.py"},
		Concurrency: 1, Env: []ferryv1.EnvVar{{Name: "HOLD_FILE", Value: hold}, {Name: "IGNORE_TERM", Value: "1"}}}
	tmpl.Pool.ShutdownTimeout = &metav1.Duration{Duration: time.Second}
	e := agenttest.Start(t, pool.Config{Name: "t/stopby", Revision: "1", Template: tmpl}, agenttest.Options{Log: &log})
	pid := e.WaitFor(t, time.Minute, "a ready worker", agenttest.Ready(1)).Processes[0].PID
	answered := agenttest.GetLater(e.URL + "/hold")
	// In the app (it made never.reached), not only counted: a worker stopped
	// before the proxy sent the request would refuse the connection, and
	// the request would go to the new worker.
	e.WaitFor(t, time.Minute, "the request in the app", func(s pool.Status) bool {
		return exists(hold+".reached") && len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	})
	e.Pool.Update(pool.Config{Name: "t/stopby", Revision: "2", Template: tmpl})
	a := <-answered
	want := "ferry: the agent stopped the worker process (pid " + strconv.Itoa(int(pid)) +
		") for a rolling restart: its requests were not done within shutdownTimeout (1s); the request was cut"
	if a.Err != nil || a.Code != http.StatusBadGateway || !strings.Contains(a.Body, want) {
		t.Errorf("the cut request got %d %q (%v), want 502 %q", a.Code, a.Body, a.Err, want)
	}
	failed := book.WaitFor(t, "Request failed in a worker")
	if v, _ := failed.Value("stoppedBy"); v != "for a rolling restart: its requests were not done within shutdownTimeout (1s)" {
		t.Errorf("the failure's log says stoppedBy %#v, want the restart's stop: %v", v, failed.KVs)
	}
}
