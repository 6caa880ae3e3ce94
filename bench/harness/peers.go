package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-dev/ferry/internal/freeport"
)

// wsgiRun is one run of a WSGI server: its directories, port and app
// parameters.
type wsgiRun struct {
	h *Harness
	// dir is the run's directory; app the app root in it (a fresh copy of
	// examples/hello-wsgi/passenger_wsgi.py and an empty tmp/).
	dir, app string
	// state is a short directory under /tmp for Unix sockets (Ferry's
	// state dir, uWSGI's FIFO), removed after the run.
	state     string
	port      int
	boot      float64
	delayMS   int
	processes int
}

func (r *wsgiRun) env() []string {
	return []string{
		"BOOT_DELAY=" + strconv.FormatFloat(r.boot, 'f', -1, 64),
		"REQUEST_DELAY_MS=" + strconv.Itoa(r.delayMS),
	}
}

func (r *wsgiRun) url() string { return fmt.Sprintf("http://127.0.0.1:%d/", r.port) }

// wsgiServer is one way to serve the hello app, and how to restart it.
type wsgiServer struct {
	id     string
	server string
	method string
	// clients overrides the scenario's client count (Ferry at 256).
	clients int
	// spec writes the run's files and returns how to start the server and
	// the files it wrote (name: content) for the report.
	spec func(r *wsgiRun) (serverSpec, map[string]string, error)
	// trigger returns the restart command, given the running server.
	trigger func(r *wsgiRun, s *server) string
}

// ferryOptions vary Ferry's AppGroup between configurations.
type ferryOptions struct {
	queue    int    // maxRequestQueueSize; 0: default
	strategy string // restart.strategy; "": default (Rolling)
}

func ferryWSGI(id, method string, clients int, o ferryOptions) wsgiServer {
	return wsgiServer{
		id: id, server: "Ferry (standalone agent)", method: method, clients: clients,
		spec: func(r *wsgiRun) (serverSpec, map[string]string, error) {
			pool := fmt.Sprintf("minProcesses: %d, maxProcesses: %d", r.processes, r.processes)
			if o.queue > 0 {
				pool += fmt.Sprintf(", maxRequestQueueSize: %d", o.queue)
			}
			restart := ""
			if o.strategy != "" {
				restart = fmt.Sprintf("  restart: {strategy: %s}\n", o.strategy)
			}
			yaml := fmt.Sprintf(`apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata:
  name: hello
spec:
  app:
    type: WSGI
    root: %s
    python: /usr/bin/python3
    env:
    - {name: BOOT_DELAY, value: "%s"}
    - {name: REQUEST_DELAY_MS, value: "%d"}
  listen: {port: %d}
  pool: {%s}
%s`, r.app, strconv.FormatFloat(r.boot, 'f', -1, 64), r.delayMS, r.port, pool, restart)
			file := filepath.Join(r.dir, "appgroup.yaml")
			if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
				return serverSpec{}, nil, err
			}
			return serverSpec{
				Name: "ferry-agent",
				Argv: []string{r.h.opts.Agent, "standalone", "-f", file, "--state-dir", filepath.Join(r.state, "ferry"), "--bind-address", "127.0.0.1"},
				Dir:  r.dir, StopSignal: syscall.SIGTERM, Log: filepath.Join(r.dir, "server.log"),
			}, map[string]string{"appgroup.yaml": yaml}, nil
		},
		// Without --wait, as the peers' triggers return once the restart
		// is asked for: --wait also waits out the crash window (10 s)
		// after the restart, past the run's end. No figure reads the
		// trigger's exit once new PIDs answered (loadgen's doc).
		trigger: func(r *wsgiRun, _ *server) string {
			return shellQuote([]string{r.h.opts.Agent, "restart", "hello", "--admin-socket", filepath.Join(r.state, "ferry", "admin.sock")})
		},
	}
}

func passengerWSGI(id, method string, trigger func(r *wsgiRun) string) wsgiServer {
	return wsgiServer{
		id: id, server: "Passenger OSS, builtin engine", method: method,
		spec: func(r *wsgiRun) (serverSpec, map[string]string, error) {
			n := strconv.Itoa(r.processes)
			return serverSpec{
				Name: "passenger",
				Argv: []string{"passenger", "start", "--engine", "builtin", "--min-instances", n, "--max-pool-size", n,
					"--python", "/usr/bin/python3", "-e", "production", "--address", "127.0.0.1", "--port", strconv.Itoa(r.port)},
				Dir: r.app, Env: r.env(), StopSignal: syscall.SIGTERM, Log: filepath.Join(r.dir, "server.log"),
			}, nil, nil
		},
		trigger: func(r *wsgiRun, _ *server) string { return trigger(r) },
	}
}

func gunicornWSGI(id, method string) wsgiServer {
	return wsgiServer{
		id: id, server: "gunicorn, sync workers", method: method,
		spec: func(r *wsgiRun) (serverSpec, map[string]string, error) {
			return serverSpec{
				Name: "gunicorn",
				Argv: []string{"/usr/bin/gunicorn", "-w", strconv.Itoa(r.processes), "-b", fmt.Sprintf("127.0.0.1:%d", r.port), "passenger_wsgi:application"},
				Dir:  r.app, Env: r.env(), StopSignal: syscall.SIGTERM, Log: filepath.Join(r.dir, "server.log"),
			}, nil, nil
		},
		trigger: func(_ *wsgiRun, s *server) string { return fmt.Sprintf("kill -HUP %d", s.PID()) },
	}
}

func uwsgiWSGI(id, method string, chain bool) wsgiServer {
	return wsgiServer{
		id: id, server: "uWSGI --lazy-apps", method: method,
		spec: func(r *wsgiRun) (serverSpec, map[string]string, error) {
			return serverSpec{
				Name: "uwsgi",
				Argv: []string{"/usr/bin/uwsgi", "--plugin", "python3", "--http-socket", fmt.Sprintf("127.0.0.1:%d", r.port),
					"--master", "--processes", strconv.Itoa(r.processes), "--lazy-apps", "--disable-logging",
					"--wsgi-file", "passenger_wsgi.py", "--master-fifo", filepath.Join(r.state, "uwsgi.fifo")},
				// SIGINT stops the whole uWSGI stack at once (SIGTERM would
				// reload it).
				Dir: r.app, Env: r.env(), StopSignal: syscall.SIGINT, Log: filepath.Join(r.dir, "server.log"),
			}, nil, nil
		},
		trigger: func(r *wsgiRun, s *server) string {
			if chain {
				return "echo c > " + filepath.Join(r.state, "uwsgi.fifo")
			}
			return fmt.Sprintf("kill -HUP %d", s.PID())
		},
	}
}

// restartServers are the restart scenario's configurations, in the order
// they run.
func restartServers() []wsgiServer {
	return []wsgiServer{
		ferryWSGI("ferry-rolling", "rolling restart: `ferry-agent restart hello`", 0, ferryOptions{}),
		ferryWSGI("ferry-rolling-c256", "rolling restart, 256 clients, maxRequestQueueSize 512", 256, ferryOptions{queue: 512}),
		ferryWSGI("ferry-blocking", "`strategy: Blocking` (parity with Passenger OSS)", 0, ferryOptions{strategy: "Blocking"}),
		passengerWSGI("passenger-restart-app", "`passenger-config restart-app APPROOT`",
			func(r *wsgiRun) string { return "passenger-config restart-app " + r.app }),
		passengerWSGI("passenger-restart-txt", "`touch tmp/restart.txt`",
			func(r *wsgiRun) string { return "touch " + filepath.Join(r.app, "tmp", "restart.txt") }),
		gunicornWSGI("gunicorn-hup", "`kill -HUP master`"),
		uwsgiWSGI("uwsgi-chain", "chain reload: master FIFO `c`", true),
		uwsgiWSGI("uwsgi-hup", "`kill -HUP master` (reload of the whole stack)", false),
	}
}

// wsgiServers are the throughput scenario's servers.
func wsgiServers() []wsgiServer {
	return []wsgiServer{
		ferryWSGI("ferry", "", 0, ferryOptions{}),
		passengerWSGI("passenger", "", nil),
		gunicornWSGI("gunicorn", ""),
		uwsgiWSGI("uwsgi", "", false),
	}
}

// newWSGIRun prepares a run directory with a fresh copy of the app.
func (h *Harness) newWSGIRun(dir string, boot float64, delayMS, processes int) (*wsgiRun, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	app := filepath.Join(dir, "app")
	if err := copyFile(h.exampleApp(), filepath.Join(app, "passenger_wsgi.py")); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(app, "tmp"), 0o755); err != nil {
		return nil, err
	}
	state, err := shortTempDir()
	if err != nil {
		return nil, err
	}
	port, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	return &wsgiRun{h: h, dir: dir, app: app, state: state, port: port, boot: boot, delayMS: delayMS, processes: processes}, nil
}

// startWSGI starts srv for run r and waits until every worker answered and
// one more second, as the baseline protocol says.
func (h *Harness) startWSGI(ctx context.Context, srv wsgiServer, r *wsgiRun) (*server, []int, serverSpec, map[string]string, error) {
	spec, files, err := srv.spec(r)
	if err != nil {
		return nil, nil, spec, nil, err
	}
	spec.SweepPath = r.dir
	s, err := startServer(spec)
	if err != nil {
		return nil, nil, spec, files, err
	}
	timeout := 60*time.Second + time.Duration(float64(r.processes)*r.boot*1.5*float64(time.Second))
	pids, err := waitWorkers(ctx, s, r.url()+"slow?ms=100", r.processes, timeout)
	if err == nil {
		err = sleepCtx(ctx, time.Second)
	}
	if err != nil {
		s.Stop()
		return nil, nil, spec, files, err
	}
	return s, pids, spec, files, nil
}

// placeholders stand, in the report, for the run's paths and port.
func (r *wsgiRun) placeholders() placeholders {
	return placeholders{h: r.h, runDir: r.dir, tmpDir: r.state, port: r.port}
}

// cleanup removes the run's socket directory and checks the port is free.
func (r *wsgiRun) cleanup() string {
	_ = os.RemoveAll(r.state)
	if !portFree(r.port) {
		return fmt.Sprintf("port %d still accepts after the stop", r.port)
	}
	return ""
}

// recordServer fills cfg's server command and files from spec and files,
// with placeholders, when no earlier run of the configuration did and
// spec was built (has an Argv); it reports whether it did. The report
// shows one run's command: each run's differs only in what the
// placeholders stand for.
func (p placeholders) recordServer(cfg *ConfigResult, spec serverSpec, files map[string]string) bool {
	if cfg.ServerCmd != "" || spec.Argv == nil {
		return false
	}
	cfg.ServerCmd = p.describe(spec)
	cfg.Files = map[string]string{}
	for k, v := range files {
		cfg.Files[k] = p.apply(v)
	}
	return true
}

// describe renders a spec for the report with placeholders.
func (p placeholders) describe(spec serverSpec) string {
	cmd := shellQuote(spec.Argv)
	if len(spec.Env) > 0 {
		cmd = strings.Join(spec.Env, " ") + " " + cmd
	}
	if spec.Dir != "" {
		cmd = "cd " + spec.Dir + " && " + cmd
	}
	return p.apply(cmd)
}
