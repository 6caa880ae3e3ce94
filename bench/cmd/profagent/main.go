// Command profagent is `ferry-agent standalone` with Go's profiler on a
// local HTTP port, for profiling the agent's request path (agent/proxy,
// agent/pool) under bench load. It wires the same packages as cmd/agent
// with default proxy limits; it is a measuring tool, not a way to run Ferry.
//
//	profagent -f appgroup.yaml -state-dir /tmp/p &
//	go tool pprof -top 'http://127.0.0.1:6060/debug/pprof/profile?seconds=8'   # while loadgen runs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof" // the profiler's handlers, on -pprof only
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/ferry-dev/ferry/agent/metrics"
	"github.com/ferry-dev/ferry/agent/proxy"
	"github.com/ferry-dev/ferry/agent/standalone"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "profagent:", err)
		os.Exit(1)
	}
}

func run() error {
	file := flag.String("f", "", "AppGroup YAML file to serve (required)")
	bind := flag.String("bind-address", "127.0.0.1", "address the proxies listen on")
	stateDir := flag.String("state-dir", filepath.Join(os.TempDir(), "ferry-profagent"), "state directory (sockets, loader)")
	pprofAddr := flag.String("pprof", "127.0.0.1:6060", "where /debug/pprof/ is served")
	procs := flag.Int("procs", 0, "GOMAXPROCS for the agent (0: the runtime's default)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if *file == "" {
		return errors.New("-f FILE is required")
	}
	go func() {
		srv := &http.Server{Addr: *pprofAddr, ReadHeaderTimeout: 10 * time.Second}
		fmt.Fprintln(os.Stderr, "profagent: pprof:", srv.ListenAndServe())
	}()
	srv, err := standalone.New(standalone.Options{
		File: *file, BindAddress: *bind, AdminSocket: filepath.Join(*stateDir, "admin.sock"), StateDir: *stateDir,
		Proxy: proxy.Options{}, RestartFilePoll: -1, Log: zap.New(), Metrics: metrics.New(), Agent: "profagent",
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Run(ctx)
}
