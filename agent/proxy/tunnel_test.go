package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
)

// TestUpgradeCutByTheAgentIsLogged: an upgraded connection (the upgrade
// app's line echo, as a WebSocket) whose worker the agent stops under it
// (a rolling restart at shutdownTimeout; maxRequestTime's kill for
// another request at the worker) gets a line of the proxy's naming its
// path, the worker, why the agent stopped it, how long the tunnel was
// open and the bytes each way. Before, nothing named it: the pool's
// "Worker did not finish its requests" line, or its kill's, alone.
func TestUpgradeCutByTheAgentIsLogged(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cut     func(t *testing.T, e *agenttest.Env, cfg pool.Config)
		stopped string
		openFor time.Duration // at least
	}{{
		name: "rolling restart",
		cut: func(_ *testing.T, e *agenttest.Env, cfg pool.Config) {
			cfg.Revision = "2"
			e.Pool.Update(cfg)
		},
		stopped: "for a rolling restart: its requests were not done within shutdownTimeout (1s)",
		openFor: time.Second, // the restart's wait for it
	}, {
		name: "maxRequestTime",
		cut: func(t *testing.T, e *agenttest.Env, _ pool.Config) {
			resp, _ := do(t, newRequest(t, http.MethodGet, e.URL+"/hang", nil))
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("GET /hang: %d, want 504", resp.StatusCode)
			}
		},
		stopped: "by killing it, as the answer to another request at it did not come, or did not end, within maxRequestTime (1s)",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			book := agenttest.NewLogbook(t)
			log := book.Logger()
			tmpl := commandApp("upgrade")
			tmpl.Pool.ShutdownTimeout = &metav1.Duration{Duration: time.Second}
			tmpl.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
			cfg := pool.Config{Name: "t/cut", Revision: "1", Template: tmpl}
			e := agenttest.Start(t, cfg, agenttest.Options{Log: &log})
			e.WaitFor(t, time.Minute, "a ready worker", agenttest.Ready(1))
			pid := pidOfWorker(t, e)
			c, br, _ := upgradeToEcho(t, e, "")
			fmt.Fprint(c, "hello\n")
			if line, err := br.ReadString('\n'); err != nil || line != "echo: hello\n" {
				t.Fatalf("the tunnel: %q %v", line, err)
			}

			tc.cut(t, e, cfg)
			_ = c.SetReadDeadline(time.Now().Add(time.Minute)) // a guard: the end comes within shutdownTimeout
			if line, err := br.ReadString('\n'); err != io.EOF {
				t.Fatalf("the tunnel at a stopped worker: read %q %v, want its end", line, err)
			}
			_ = c.Close()
			cut := book.WaitFor(t, "Upgraded connection (WebSocket) cut")
			want := map[string]any{"pid": pid, "path": "/chat", "stoppedBy": tc.stopped,
				"bytesToWorker": int64(len("hello\n")), "bytesFromWorker": int64(len("echo: hello\n"))}
			for k, v := range want {
				if got, _ := cut.Value(k); fmt.Sprint(got) != fmt.Sprint(v) {
					t.Errorf("the cut's line says %s %#v, want %#v: %v", k, got, v, cut.KVs)
				}
			}
			v, _ := cut.Value("openFor")
			s, _ := v.(string)
			if d, err := time.ParseDuration(s); err != nil || d < tc.openFor {
				t.Errorf("the cut's line says openFor %#v, want a duration of at least %s", v, tc.openFor)
			}
			book.Check(t)
		})
	}
}
