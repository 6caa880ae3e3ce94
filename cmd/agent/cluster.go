package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ferry-dev/ferry/agent/cluster"
	"github.com/ferry-dev/ferry/agent/metrics"
	"github.com/ferry-dev/ferry/agent/pid1"
	"github.com/ferry-dev/ferry/agent/proxy"
	"github.com/ferry-dev/ferry/agent/spawn"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/logging"
	"github.com/ferry-dev/ferry/internal/metricscert"
	"github.com/ferry-dev/ferry/internal/version"
)

// runCluster is the agent of one node in a cluster: the flags are those
// internal/deployargs.AgentArgs renders (and the Helm chart with it).
func runCluster(args []string) error {
	fs := flag.NewFlagSet("ferry-agent", flag.ExitOnError)
	f := bindClusterFlags(fs)
	if err := noOperands("ferry-agent", parseArgs(fs, args)); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	certs, err := f.metricsCert.Watcher(f.metricsAddr, f.metricsSecure)
	if err != nil {
		return err
	}
	log := f.newLogger()
	pid1.Announce(log)
	warnOfRootGroup(log)
	if msg := unlistedWarning(f.advertise, f.bind); msg != "" {
		log.Info(msg)
	}
	// controller-runtime's cache logs through its own logger.
	ctrllog.SetLogger(log)
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(f.qps), f.burst
	m := metrics.New()
	agent, err := cluster.New(f.options(cfg, m, log))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	endpoint := metricsEndpoint{addr: f.metricsAddr, secure: f.metricsSecure, certs: certs}
	if err := serveMetrics(ctx, endpoint, cfg, promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}),
		log.WithName("metrics")); err != nil {
		return err
	}
	serve(ctx, f.probeAddr, probes(agent), nil, log.WithName("probes"))
	log.Info("Starting agent", "version", version.Version, "node", f.node, "bindAddress", f.bind, "metricsCertPath", f.metricsCert.Dir)
	if f.simulate > 0 {
		log.Info("Simulating workers for a benchmark: no process runs and nothing is served", "step", f.simulate)
	}
	return agent.Run(ctx)
}

// clusterFlags are runCluster's flags.
type clusterFlags struct {
	node, kubeconfig, bind, advertise, stateDir, leaseNS string
	metricsAddr, probeAddr                               string
	metricsSecure                                        bool
	metricsCert                                          *metricscert.Files
	heartbeat, stats, drainDelay, simulate               time.Duration
	qps                                                  float64
	burst                                                int
	popts                                                func() proxy.Options
	users                                                *spawn.WorkerUsers
	newLogger                                            func() logr.Logger
}

// bindClusterFlags defines runCluster's flags on fs.
func bindClusterFlags(fs *flag.FlagSet) *clusterFlags {
	f := &clusterFlags{}
	fs.StringVar(&f.node, "node-name", os.Getenv("NODE_NAME"), "the node this agent serves (default $NODE_NAME)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG when set; else the in-cluster config, then ~/.kube/config)")
	fs.StringVar(&f.bind, "bind-address", "0.0.0.0",
		"address the proxies listen on, each on its pool's listen.port (0.0.0.0 or empty: every address; then set --advertise-address)")
	fs.StringVar(&f.advertise, "advertise-address", "",
		"address reported in each pool's status, which the manager lists in the AppGroup's Service: an IPv4 address of the node the cluster reaches (default: --bind-address; 0.0.0.0, a loopback or a link-local address is left out of the Service, and the agent says so at its start)")
	fs.StringVar(&f.stateDir, "state-dir", "/var/lib/ferry", "directory for the WSGI loader, worker sockets and saved pool specs")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":9441", "address of the Prometheus /metrics endpoint (0, or empty, turns it off)")
	fs.BoolVar(&f.metricsSecure, "metrics-secure", true,
		"serve /metrics over HTTPS (a self-signed certificate, or --metrics-cert-path's) to callers whose bearer token the API server authenticates (TokenReview) and allows to get the non-resource URL /metrics (SubjectAccessReview); false serves it in plain HTTP to anyone")
	f.metricsCert = metricscert.BindFlags(fs)
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":9442", "address of /healthz and /readyz (0 turns them off)")
	fs.DurationVar(&f.heartbeat, "heartbeat-interval", 10*time.Second,
		"how often the agent renews its Lease, which tells the manager it is alive")
	fs.DurationVar(&f.stats, "stats-interval", 30*time.Second,
		"how often, at most, a pool's status is rewritten when only its figures (CPU, memory, requests) changed; state changes are reported at once, an unchanged status every 5 minutes")
	fs.StringVar(&f.leaseNS, "lease-namespace", envOr("POD_NAMESPACE", contract.DefaultLeaseNamespace),
		"namespace of the agent's Lease, which must be the manager's --agent-lease-namespace: $POD_NAMESPACE when set")
	fs.Float64Var(&f.qps, "kube-api-qps", 50, "the agent's sustained rate of API requests")
	fs.IntVar(&f.burst, "kube-api-burst", 100, "the agent's burst of API requests")
	fs.DurationVar(&f.drainDelay, "drain-delay", 5*time.Second,
		"how long a deleted pool (its node unselected, its AppGroup deleted), the old port of a pool whose listen.port moved, or every pool of an agent that stops (once it reported so), goes on serving new connections before it drains, while load balancers stop sending there (0: drain at once)")
	fs.DurationVar(&f.simulate, "simulate-workers", 0,
		"FOR BENCHMARKS ONLY: report each pool's processes without running any (one replaced per this step on a new revision); nothing is served")
	f.popts = proxyFlags(fs)
	f.users = workerUsersFlag(fs)
	f.newLogger = logging.BindFlags(fs)
	return f
}

// check refuses flags that cannot work, saying which.
func (f *clusterFlags) check() error {
	if f.node == "" {
		return errors.New("--node-name is required (in a DaemonSet, set NODE_NAME from spec.nodeName)")
	}
	if err := positive(map[string]float64{"--heartbeat-interval": f.heartbeat.Seconds(),
		"--stats-interval": f.stats.Seconds(), "--kube-api-qps": f.qps, "--kube-api-burst": float64(f.burst)}); err != nil {
		return err
	}
	if f.drainDelay < 0 || f.simulate < 0 {
		return errors.New("--drain-delay and --simulate-workers may not be negative")
	}
	return advertiseProblem(f.advertise, f.bind)
}

// advertiseProblem refuses the address each pool would report that no
// Service could list: --advertise-address, or, when it is unset,
// --bind-address. The manager lists it in the Services' EndpointSlices,
// which are IPv4. Every address ("" or 0.0.0.0, the flags' defaults) and
// loopback ones (the local stack's) are left to the manager, which leaves
// them out of the Service.
func advertiseProblem(advertise, bind string) error {
	if advertise != "" {
		if why := unlistable(advertise); why != "" {
			return fmt.Errorf("--advertise-address %q %s. Give the agent an IPv4 address of the node (the chart's "+
				"agent.advertiseAddress; its default, $(HOST_IP) from status.hostIP, is the node's first address, IPv6 on "+
				"an IPv6-only cluster or an IPv6-first dual-stack one)", advertise, why)
		}
		return nil
	}
	if bind == "" {
		return nil
	}
	if why := unlistable(bind); why != "" {
		return fmt.Errorf("--advertise-address is unset, so each pool reports its --bind-address, %q, which %s. "+
			"Set --advertise-address to an IPv4 address of the node", bind, why)
	}
	return nil
}

// unlistable says why addr, reported as a pool's address, is one no
// Service could list (it "is not an IP address: ..."), or "".
func unlistable(addr string) string {
	ip := net.ParseIP(addr)
	switch {
	case ip == nil:
		return "is not an IP address: the manager lists it in the Services' EndpointSlices"
	case ip.To4() == nil:
		return "is an IPv6 address, and Ferry does not serve IPv6 nodes yet: the manager lists IPv4 addresses only " +
			"in the Services' EndpointSlices, so no request would reach this node's pools"
	}
	return ""
}

// unlistedWarning is what the agent says at its start when the address
// each pool reports, --advertise-address or else --bind-address, is one
// the manager leaves out of the AppGroups' Services
// (contract.UnlistedAddress) and advertiseProblem lets pass: every
// address (0.0.0.0, the default, or empty), a loopback or a link-local
// one. The pools run and are Ready, and no Service reaches them: without
// a word here, only the AppGroup's Ready said so. "" when the Services
// list the address.
func unlistedWarning(advertise, bind string) string {
	lead, host := "Each pool reports its --advertise-address", advertise
	if advertise == "" {
		lead, host = "--advertise-address is unset, so each pool reports its --bind-address", bind
	}
	what := contract.UnlistedAddress(net.ParseIP(host))
	switch {
	case host == "":
		what = "every address"
	case what == "":
		return ""
	}
	return fmt.Sprintf("%s, %q, %s, which the manager leaves out of the AppGroups' Services (the API server takes "+
		"it in no EndpointSlice): the pools run and are Ready, but no request reaches them through a Service. "+
		"Set --advertise-address to an IPv4 address of the node that the cluster reaches (the chart sets "+
		"$(HOST_IP), the node's IP). The local stack's agents report loopback addresses and are reached there: "+
		"for them this is expected", lead, host, what)
}

// options are the agent's options the flags give, with cfg, m and log.
func (f *clusterFlags) options(cfg *rest.Config, m *metrics.Metrics, log logr.Logger) cluster.Options {
	return cluster.Options{
		NodeName: f.node, Config: cfg, BindAddress: f.bind, AdvertiseAddress: f.advertise, StateDir: f.stateDir,
		HeartbeatInterval: f.heartbeat, StatsInterval: f.stats, LeaseNamespace: f.leaseNS, Proxy: f.popts(), Metrics: m,
		Log: log, SimulateWorkers: f.simulate, DrainDelay: f.drainDelay, WorkerUsers: *f.users,
		AgentPorts: agentPorts(f.metricsAddr, f.probeAddr),
	}
}

// readiness is what /readyz asks of the agent (cluster.Agent).
type readiness interface {
	Ready() bool
	CRDOutdated() bool
}

// probes serves /healthz, and /readyz once agent is ready; not ready, it
// says why: an outdated CRD and the fix, in the words the agent logged
// once (cluster.CRDOutdatedReason), at each look; or nothing known to run
// yet.
func probes(agent readiness) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case agent.CRDOutdated():
			http.Error(w, cluster.CRDOutdatedReason, http.StatusServiceUnavailable)
			return
		case !agent.Ready():
			http.Error(w, "not synced with the API server and nothing saved to resume", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// metricsEndpoint is where and how the metrics are served: over HTTPS
// when secure, with the certificate of certs (--metrics-cert-path), or a
// self-signed one when it is nil.
type metricsEndpoint struct {
	addr   string
	secure bool
	certs  *certwatcher.CertWatcher
}

// serveMetrics serves h at e.addr, at the path /metrics: to authorized
// callers over HTTPS when secure, else in plain HTTP to anyone. It
// watches e.certs for a renewal until ctx is done.
func serveMetrics(ctx context.Context, e metricsEndpoint, cfg *rest.Config, h http.Handler, log logr.Logger) error {
	if metricscert.Off(e.addr) {
		return nil
	}
	if !e.secure {
		serve(ctx, e.addr, metricsPathOnly(h), nil, log)
		return nil
	}
	h, err := authorizedOnly(cfg, h, log)
	if err != nil {
		return err
	}
	tlsConfig, err := metricsTLS(e.certs)
	if err != nil {
		return err
	}
	if e.certs != nil {
		go watchCerts(ctx, e.certs, log)
	}
	serve(ctx, e.addr, metricsPathOnly(h), tlsConfig, log)
	return nil
}

// watchCerts reads the certificate again whenever its files change, until
// ctx is done. Should the watch fail to begin, the certificate read at
// start is still served, and a renewal is not: the agent goes on, as its
// pools matter more than its metrics, and says so.
func watchCerts(ctx context.Context, certs *certwatcher.CertWatcher, log logr.Logger) {
	if err := certs.Start(ctx); err != nil && ctx.Err() == nil {
		log.Error(err, "Stopped watching the metrics certificate: a renewal is not served until the agent restarts")
	}
}

// metricsPathOnly serves h at /metrics and 404 at every other path, as
// the manager's metrics server (controller-runtime's) does: without it,
// any path (/, /healthz, ...) answered with the metrics, which tells a
// probe or a scanner pointed at the wrong port that all is well. Other
// paths are refused before the token is checked, as at the manager's.
func metricsPathOnly(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	return mux
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = ctrlconfig.GetConfig()
	}
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "ferry-agent/" + version.Version
	return cfg, nil
}

// positive refuses a flag at zero or below, which would otherwise leave a
// loop without a pause, or be taken for the default.
func positive(flags map[string]float64) error {
	for _, name := range slices.Sorted(maps.Keys(flags)) {
		if flags[name] <= 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// agentPorts are the ports of the agent's own endpoints, with what each
// is, for the message of a pool whose listen.port is one of them. An
// address that turns its endpoint off ("0", "") has none.
func agentPorts(metricsAddr, probeAddr string) map[int32]string {
	ports := map[int32]string{}
	for _, e := range [][2]string{
		{metricsAddr, "metrics endpoint (--metrics-bind-address, agent.metricsBindAddress in the chart)"},
		{probeAddr, "health probe endpoint (--health-probe-bind-address, agent.healthProbeBindAddress in the chart)"},
	} {
		_, p, err := net.SplitHostPort(e[0])
		if err != nil {
			continue
		}
		if n, err := strconv.ParseUint(p, 10, 16); err == nil && n != 0 {
			ports[int32(n)] = e[1]
		}
	}
	return ports
}
