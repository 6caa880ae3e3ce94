package harness

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const wrkOutput = `Running 10s test @ http://127.0.0.1:8080/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.05ms    1.02ms  22.71ms   91.02%
    Req/Sec     8.23k   712.38     9.81k    70.50%
  Latency Distribution
     50%  774.00us
     75%    1.12ms
     90%    1.86ms
     99%    5.43ms
  163846 requests in 10.00s, 19.84MB read
  Socket errors: connect 0, read 12, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:  16379.48
Transfer/sec:      1.98MB
`

func TestParseWrk(t *testing.T) {
	var wr WrkResult
	if err := parseWrk(wrkOutput, &wr); err != nil {
		t.Fatal(err)
	}
	if wr.RPS != 16379.48 || wr.Requests != 163846 || wr.Errors != 16 {
		t.Errorf("rps %v requests %d errors %d", wr.RPS, wr.Requests, wr.Errors)
	}
	if wr.P50 != 774*time.Microsecond || wr.P99 != 5430*time.Microsecond {
		t.Errorf("p50 %v p99 %v", wr.P50, wr.P99)
	}
	if err := parseWrk("unable to connect", &wr); err == nil {
		t.Error("no error for output without a summary")
	}
}

func TestPlaceholders(t *testing.T) {
	h := &Harness{opts: Options{Tools: "/r/bench/results/bin", Agent: "/r/bin/ferry-agent", Repo: "/r"}}
	p := placeholders{h: h, runDir: "/r/bench/results/restart/x/run-1", tmpDir: "/tmp/fb123", port: 4321, pid: 99}
	got := p.apply("cd /r/bench/results/restart/x/run-1 && /r/bin/ferry-agent standalone --state-dir /tmp/fb123/ferry " +
		"--port 4321 -url http://127.0.0.1:4321/ 143210 kill -HUP 99; /r/bench/results/bin/loadgen /r/examples/a")
	want := "cd $RUN && bin/ferry-agent standalone --state-dir $STATE/ferry --port $PORT -url http://127.0.0.1:$PORT/ 143210 " +
		"kill -HUP $SERVER_PID; bench/results/bin/loadgen examples/a"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"loadgen", "-trigger", "kill -HUP 1", "it's", "a=b:c/d"})
	want := `loadgen -trigger 'kill -HUP 1' 'it'\''s' a=b:c/d`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestProcStats(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms, n int) procSample { return procSample{start.Add(time.Duration(ms) * time.Millisecond), n} }
	samples := []procSample{at(0, 4), at(900, 4), at(1000, 5), at(1500, 3), at(2500, 4), at(4000, 6)}
	ps := procStats(samples, start, time.Second, 3*time.Second)
	want := ProcStats{Samples: 6, Before: 4, Max: 6, InWindow: 5, MinInWindow: 3}
	if *ps != want {
		t.Errorf("got %+v, want %+v", *ps, want)
	}
	if ps := procStats(samples, start, 0, 0); ps.Before != 6 || ps.InWindow != 0 || ps.MinInWindow != 0 {
		t.Errorf("no trigger: %+v", *ps)
	}
}

func TestMedianRunNoReports(t *testing.T) {
	if got := medianRun([]RunResult{{Error: "x"}}); got != -1 {
		t.Errorf("medianRun = %d, want -1", got)
	}
}

func TestMetricLabel(t *testing.T) {
	line := `apiserver_request_total{code="200",group="ferry.dev",resource="processpools",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 42`
	for name, want := range map[string]string{"resource": "processpools", "subresource": "status", "verb": "PATCH", "code": "200", "method": ""} {
		if got := label(line, name); got != want {
			t.Errorf("label(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestFerrySpawnSeconds: the spawn times come from the agent's "Spawned
// worker" lines, whose duration is a Go duration string ("2.203s"); a
// number of seconds is read too. The first initial spawns (the pool's
// start) are left out. Before, only numbers were read, and every spawn
// time of a run was lost: the restart-duration target read 0.00 s spawns.
func TestFerrySpawnSeconds(t *testing.T) {
	log := `{"level":"info","msg":"Spawned worker","pid":1,"duration":"2.2s"}
{"level":"info","msg":"Started restart"}
{"level":"info","msg":"Spawned worker","pid":2,"duration":"2.25s"}
{"level":"info","msg":"Spawned worker","pid":3,"duration":2.5}
{"level":"info","msg":"Spawned worker","pid":4,"duration":"1500ms"}
not json
`
	path := filepath.Join(t.TempDir(), "server.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := ferrySpawnSeconds(path, 1), []float64{2.25, 2.5, 1.5}; !slices.Equal(got, want) {
		t.Errorf("spawn seconds %v, want %v", got, want)
	}
}

// TestRecordServerOnce: a configuration's report shows the command and
// files of its first run whose spec was built, with placeholders; later
// runs, and a run whose spec failed, leave it.
func TestRecordServerOnce(t *testing.T) {
	h := &Harness{opts: Options{Tools: "/r/bench/results/bin", Agent: "/r/bin/ferry-agent", Repo: "/r"}}
	run := func(n, port int) placeholders {
		r := &wsgiRun{h: h, dir: fmt.Sprintf("/r/bench/results/wsgi/x/run-%d", n), state: fmt.Sprintf("/tmp/fb%d", n), port: port}
		return r.placeholders()
	}
	var cfg ConfigResult
	if run(1, 4000).recordServer(&cfg, serverSpec{}, map[string]string{"a": "x"}) || cfg.ServerCmd != "" || cfg.Files != nil {
		t.Fatalf("a spec that failed (no Argv) was recorded: %+v", cfg)
	}
	spec := serverSpec{Argv: []string{"/r/bin/ferry-agent", "standalone", "--port", "4001"}, Dir: "/r/bench/results/wsgi/x/run-2/app"}
	files := map[string]string{"ferry.yaml": "root: /r/bench/results/wsgi/x/run-2/app\nstate: /tmp/fb2\nport: 4001\n"}
	if !run(2, 4001).recordServer(&cfg, spec, files) {
		t.Fatal("the first built spec was not recorded")
	}
	wantCmd := "cd $RUN/app && bin/ferry-agent standalone --port $PORT"
	wantFiles := map[string]string{"ferry.yaml": "root: $RUN/app\nstate: $STATE\nport: $PORT\n"}
	if cfg.ServerCmd != wantCmd || !maps.Equal(cfg.Files, wantFiles) {
		t.Errorf("recorded %q %q; want %q %q", cfg.ServerCmd, cfg.Files, wantCmd, wantFiles)
	}
	later := serverSpec{Argv: []string{"/r/bin/ferry-agent", "standalone", "--port", "4002"}}
	if run(3, 4002).recordServer(&cfg, later, nil) || cfg.ServerCmd != wantCmd || !maps.Equal(cfg.Files, wantFiles) {
		t.Errorf("a later run replaced the record: %q %q", cfg.ServerCmd, cfg.Files)
	}
}
