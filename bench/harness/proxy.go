package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-dev/ferry/bench/loadgen"
	"github.com/ferry-dev/ferry/internal/freeport"
)

// proxyParams: 16 and 64 clients, 10 s each, no delays.
func (h *Harness) proxyParams() Params {
	p := Params{Runs: h.opts.Runs, Duration: 10 * time.Second, Processes: 1, Clients: []int{16, 64}}
	if h.opts.Smoke {
		p.Duration = 3 * time.Second
	}
	return p
}

// proxyTarget is one way to reach the upstream.
type proxyTarget struct {
	id, server string
	url        string
	// cpu returns the CPU seconds used so far by the proxy and by the
	// upstream.
	cpu     func() (proxy, upstream float64)
	servers []*server
	ph      placeholders
	cmd     string
	files   map[string]string
}

func (t *proxyTarget) stop() []string {
	var left []string
	for i := len(t.servers) - 1; i >= 0; i-- {
		left = append(left, t.servers[i].Stop()...)
	}
	return left
}

func (h *Harness) proxyScenario(ctx context.Context, dir string, sr *ScenarioResult) error {
	p := h.proxyParams()
	sr.Params = p
	state, err := shortTempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)

	var targets []*proxyTarget
	defer func() {
		for _, t := range targets {
			if left := t.stop(); len(left) > 0 {
				h.logf("proxy %s: the stop left %s", t.id, strings.Join(left, "; "))
			}
		}
	}()
	starts := []struct {
		id    string
		start func(context.Context, string, string) (*proxyTarget, error)
	}{{"direct", h.startDirect}, {"ferry", h.startFerryProxy}, {"nginx", h.startNginx}}
	for _, st := range starts {
		if !h.keep(st.id) {
			continue
		}
		t, err := st.start(ctx, dir, state)
		if t != nil {
			targets = append(targets, t)
		}
		if err != nil {
			return err
		}
	}

	type key struct {
		target string
		c      int
	}
	configs := map[key]*ConfigResult{}
	var order []key
	for _, c := range p.Clients {
		for _, t := range targets {
			k := key{t.id, c}
			order = append(order, k)
			configs[k] = &ConfigResult{
				ID: fmt.Sprintf("%s-c%d", t.id, c), Target: t.id, Server: t.server, Clients: c,
				ServerCmd: t.cmd, Files: t.files,
				LoadCmd: t.ph.apply(shellQuote([]string{filepath.Join(h.opts.Tools, "loadgen"), "-c", strconv.Itoa(c), "-d", p.Duration.String(), "-url", t.url})),
			}
		}
	}
	byID := map[string]*proxyTarget{}
	for _, t := range targets {
		byID[t.id] = t
	}
	// Interleaved: each run measures every target at every concurrency.
	var errs []error
	for run := 1; run <= p.Runs; run++ {
		for _, k := range order {
			if ctx.Err() != nil {
				break
			}
			t, cfg := byID[k.target], configs[k]
			h.logf("proxy %s run %d/%d", cfg.ID, run, p.Runs)
			rr := RunResult{Run: run, Dir: filepath.Join("proxy", cfg.ID, fmt.Sprintf("run-%d", run))}
			runDir := filepath.Join(dir, cfg.ID, fmt.Sprintf("run-%d", run))
			pc0, uc0 := t.cpu()
			conns0 := upstreamConns(ctx, t.url)
			res, err := loadgen.Run(ctx, loadgen.Config{URLs: []string{t.url}, Clients: k.c, Duration: p.Duration})
			pc1, uc1 := t.cpu()
			// Less the connection of the second count request itself, if
			// it needed one; -1 when the upstream could not tell.
			rr.UpstreamConns = -1
			if conns1 := upstreamConns(ctx, t.url); conns0 >= 0 && conns1 >= 0 {
				rr.UpstreamConns = max(conns1-conns0-1, 0)
			}
			if err == nil {
				rep := res.Report()
				if err = os.MkdirAll(runDir, 0o755); err == nil {
					err = writeJSON(filepath.Join(runDir, "report.json"), rep)
				}
				rep.Series = nil
				rr.Report = &rep
				rr.CPU = &CPUStats{Proxy: pc1 - pc0, Upstream: uc1 - uc0}
				h.logf("  rps %.0f, p50 %s, p99 %s, failed %d, proxy cpu %.2fs, upstream conns %d", rep.RPS, rep.Steady.P50, rep.Steady.P99, rep.Failed, rr.CPU.Proxy, rr.UpstreamConns)
			}
			if err != nil {
				rr.Error = err.Error()
				errs = append(errs, fmt.Errorf("%s run %d: %w", cfg.ID, run, err))
			}
			cfg.Runs = append(cfg.Runs, rr)
		}
	}
	if wrkPath() != "" {
		for _, k := range order {
			if ctx.Err() != nil {
				break
			}
			t, cfg := byID[k.target], configs[k]
			h.logf("proxy %s wrk", cfg.ID)
			cfg.Wrk = runWrk(ctx, t.url, k.c, p.Duration)
			cfg.Wrk.Cmd = t.ph.apply(cfg.Wrk.Cmd)
		}
	}
	for _, k := range order {
		sr.Configs = append(sr.Configs, *configs[k])
	}
	errs = append(errs, ctx.Err())
	return errors.Join(errs...)
}

// startUpstream starts bench/cmd/upstream on a kernel-given port.
func (h *Harness) startUpstream(ctx context.Context, dir, name string) (*server, int, error) {
	port, err := freeport.Loopback()
	if err != nil {
		return nil, 0, err
	}
	s, err := startServer(serverSpec{
		Name: name, Argv: []string{filepath.Join(h.opts.Tools, "upstream"), "-addr", fmt.Sprintf("127.0.0.1:%d", port)},
		Dir: dir, Log: filepath.Join(dir, name+".log"), SweepPath: dir,
	})
	if err != nil {
		return nil, 0, err
	}
	if err := waitHTTP(ctx, s, fmt.Sprintf("http://127.0.0.1:%d/", port), 30*time.Second); err != nil {
		s.Stop()
		return nil, 0, err
	}
	return s, port, nil
}

func (h *Harness) startDirect(ctx context.Context, dir, _ string) (*proxyTarget, error) {
	d := filepath.Join(dir, "direct")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	up, port, err := h.startUpstream(ctx, d, "upstream")
	if err != nil {
		return nil, err
	}
	t := &proxyTarget{id: "direct", server: "Go upstream, direct", url: fmt.Sprintf("http://127.0.0.1:%d/", port), servers: []*server{up}}
	t.ph = placeholders{h: h, runDir: d, upstream: port}
	t.cmd = t.ph.describe(up.spec)
	t.cpu = func() (float64, float64) { return 0, cpuSeconds(up.PID()) }
	return t, nil
}

func (h *Harness) startFerryProxy(ctx context.Context, dir, state string) (*proxyTarget, error) {
	d := filepath.Join(dir, "ferry")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	port, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	yaml := fmt.Sprintf(`apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata:
  name: upstream
spec:
  app:
    type: Command
    command: [%s, -addr, "127.0.0.1:$(PORT)"]
    concurrency: 1024
    readinessPath: /
  listen: {port: %d}
  pool: {minProcesses: 1, maxProcesses: 1}
`, filepath.Join(h.opts.Tools, "upstream"), port)
	file := filepath.Join(d, "appgroup.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	spec := serverSpec{
		Name: "ferry-agent",
		Argv: []string{h.opts.Agent, "standalone", "-f", file, "--state-dir", filepath.Join(state, "ferry"), "--bind-address", "127.0.0.1"},
		Dir:  d, StopSignal: syscall.SIGTERM, Log: filepath.Join(d, "server.log"), SweepPath: d,
	}
	s, err := startServer(spec)
	if err != nil {
		return nil, err
	}
	t := &proxyTarget{id: "ferry", server: "Ferry proxy (Command AppGroup, 1 process, concurrency 1024)",
		url: fmt.Sprintf("http://127.0.0.1:%d/", port), servers: []*server{s}}
	t.ph = placeholders{h: h, runDir: d, tmpDir: state, port: port}
	t.cmd = t.ph.describe(spec)
	t.files = map[string]string{"appgroup.yaml": t.ph.apply(yaml)}
	if err := waitHTTP(ctx, s, t.url, 60*time.Second); err != nil {
		return t, err
	}
	hc := defaultClient()
	upPID := getPID(ctx, hc, t.url)
	t.cpu = func() (float64, float64) { return cpuSeconds(s.PID()), cpuSeconds(upPID) }
	return t, nil
}

func (h *Harness) startNginx(ctx context.Context, dir, _ string) (*proxyTarget, error) {
	d := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(filepath.Join(d, "tmp"), 0o755); err != nil {
		return nil, err
	}
	up, upPort, err := h.startUpstream(ctx, d, "upstream")
	if err != nil {
		return nil, err
	}
	t := &proxyTarget{id: "nginx", server: "nginx keep-alive reverse proxy", servers: []*server{up}}
	port, err := freeport.Loopback()
	if err != nil {
		return t, err
	}
	conf := fmt.Sprintf(`# nginx as a keep-alive reverse proxy, for the proxy benchmark.
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    keepalive_requests 1000000;
    upstream up {
        server 127.0.0.1:%[2]d;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:%[3]d;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The fields Ferry's proxy sends, so that both upstreams parse
            # the same request: the client's Host and the usual forwarding.
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
}
`, d, upPort, port)
	file := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return t, err
	}
	spec := serverSpec{
		Name: "nginx",
		Argv: []string{"/usr/sbin/nginx", "-p", d, "-c", file, "-e", filepath.Join(d, "error.log"), "-g", "daemon off; master_process on;"},
		Dir:  d, StopSignal: syscall.SIGQUIT, Log: filepath.Join(d, "server.log"), SweepPath: d,
	}
	s, err := startServer(spec)
	if err != nil {
		return t, err
	}
	t.servers = append(t.servers, s)
	t.url = fmt.Sprintf("http://127.0.0.1:%d/", port)
	t.ph = placeholders{h: h, runDir: d, port: port, upstream: upPort}
	t.cmd = t.ph.describe(up.spec) + " &\n" + t.ph.describe(spec)
	t.files = map[string]string{"nginx.conf": t.ph.apply(conf)}
	if err := waitHTTP(ctx, s, t.url, 30*time.Second); err != nil {
		return t, err
	}
	t.cpu = func() (float64, float64) { return groupCPUSeconds(s.PID()), cpuSeconds(up.PID()) }
	return t, nil
}

// upstreamConns asks the upstream, through url's path, how many
// connections it has accepted; -1 if it cannot tell.
func upstreamConns(ctx context.Context, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"_conns", nil)
	if err != nil {
		return -1
	}
	resp, err := defaultClient().Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// CPUStats is CPU time (user + system, seconds) used during a run.
type CPUStats struct {
	Proxy    float64 `json:"proxy"`
	Upstream float64 `json:"upstream"`
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// cpuSeconds is a process's user + system time, every thread included.
func cpuSeconds(pid int) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(st), ')')
	f := strings.Fields(string(st[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTicks
}

// groupCPUSeconds adds up cpuSeconds over the process group pgid (nginx's
// master and workers).
func groupCPUSeconds(pgid int) float64 {
	var sum float64
	for _, pid := range allPIDs() {
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			sum += cpuSeconds(pid)
		}
	}
	return sum
}
