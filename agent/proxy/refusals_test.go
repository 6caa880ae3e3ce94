package proxy_test

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestRefusalsAreLogged: requests the pool refuses for a full queue (503)
// or the queue timeout (504) are logged, each reason once at its first
// refusal and not again for every request (refusals holds the rest to one
// line a minute, TestRefusalsSummed). Before, only the metrics counted
// them: an app answering 503s had nothing in the agent's log.
func TestRefusalsAreLogged(t *testing.T) {
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.Pool.MaxRequestQueueSize = 1
	tmpl.Pool.QueueTimeout = &metav1.Duration{Duration: 2 * time.Second}
	e := agenttest.Start(t, pool.Config{Name: "t/refusals", Revision: "1", Template: tmpl},
		agenttest.Options{Log: &log, Proxy: proxy.Options{}})
	e.WaitFor(t, time.Minute, "a ready worker", agenttest.Ready(1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	busy := make(chan struct{})
	go func() { // holds the one process
		defer close(busy)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/slow?ms=60000", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	e.WaitFor(t, time.Minute, "the process busy", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	})
	queued := make(chan int)
	go func() {
		resp, _ := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
		queued <- resp.StatusCode
	}()
	e.WaitFor(t, time.Minute, "a request queued", func(s pool.Status) bool { return s.QueueLength == 1 })
	for range 3 {
		if resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil)); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("with the queue full: %d %q, want 503", resp.StatusCode, body)
		}
	}
	if code := <-queued; code != http.StatusGatewayTimeout {
		t.Errorf("the queued request: %d, want 504 after queueTimeout", code)
	}
	// The process still sleeps: spare the cleanup its minute.
	_ = syscall.Kill(int(e.Pool.Status().Processes[0].PID), syscall.SIGKILL)
	cancel()
	<-busy
	for _, want := range []string{"Requests refused with 503", "Requests answered 504"} {
		lines := book.Find(want)
		if len(lines) != 1 {
			t.Errorf("%d lines %q, want one", len(lines), want)
			continue
		}
		if n, _ := lines[0].Value("refused"); n != int64(1) {
			t.Errorf("%q says refused=%v, want 1 (the first)", lines[0].Msg, n)
		}
		if !strings.Contains(lines[0].Msg, "at most once a minute") {
			t.Errorf("%q does not say the rest are held back", lines[0].Msg)
		}
	}
}
