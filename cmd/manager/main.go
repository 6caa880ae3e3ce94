// Command ferry-manager runs Ferry's manager: it turns AppGroups into one
// ProcessPool per selected node, rolls new revisions across nodes in waves
// and rolls the node agents' reports up into each AppGroup's status. The
// logic lives in package controllers; this only wires flags.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/logging"
	"github.com/ferry-dev/ferry/internal/metricsauth"
	"github.com/ferry-dev/ferry/internal/metricscert"
	"github.com/ferry-dev/ferry/internal/version"
)

// leaderElectionID names the Lease the manager replicas compete for.
const leaderElectionID = contract.ManagerLeaseName

func main() {
	var (
		metricsAddr, probeAddr, pprofAddr, leaderElectionNamespace, leaseNamespace string
		leaderElect, metricsSecure                                                 bool
		staleAfter                                                                 time.Duration
		qps                                                                        float64
		burst, workers                                                             int
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080",
		`Address the Prometheus metrics endpoint (/metrics) binds to; "0" (or empty) disables it.`)
	flag.BoolVar(&metricsSecure, "metrics-secure", true,
		"Serve /metrics over HTTPS (a self-signed certificate, or --metrics-cert-path's) to callers whose bearer "+
			"token the API server authenticates (TokenReview) and allows to get the non-resource URL /metrics "+
			"(SubjectAccessReview); false serves it in plain HTTP to anyone.")
	metricsCert := metricscert.BindFlags(flag.CommandLine)
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081",
		`Address the /healthz and /readyz endpoints bind to; "0" disables them.`)
	flag.StringVar(&pprofAddr, "pprof-bind-address", "",
		`Address Go's profiler (/debug/pprof/, plain HTTP, no authentication) binds to, for finding where the `+
			`manager's CPU or memory goes; empty (the default) or "0" disables it. Keep it on loopback.`)
	flag.BoolVar(&leaderElect, "leader-elect", false,
		"Elect a leader among manager replicas through a Lease, so that only one reconciles at a time.")
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", os.Getenv("POD_NAMESPACE"),
		"Namespace of the leader election Lease, which kubectl ferry status reads (in its --lease-namespace) to tell "+
			"that no manager runs: $POD_NAMESPACE when set (the chart sets it), else the manager's own namespace when "+
			"it runs in a cluster; out of one, --leader-elect needs this flag or $POD_NAMESPACE.")
	flag.DurationVar(&staleAfter, "agent-stale-after", controllers.DefaultAgentStaleAfter,
		"How long a node agent may go without renewing its Lease (or reporting a pool) before what it reported is "+
			"treated as Unknown. Agents renew every 10s.")
	flag.StringVar(&leaseNamespace, "agent-lease-namespace", envOr("POD_NAMESPACE", contract.DefaultLeaseNamespace),
		"Namespace where the node agents renew their Leases, which each agent's --lease-namespace must name: "+
			"$POD_NAMESPACE when set.")
	flag.Float64Var(&qps, "kube-api-qps", controllers.DefaultKubeAPIQPS,
		"Sustained rate of the manager's API requests, per second (client-side; the API server's priority and "+
			"fairness still applies). A new AppGroup costs about eight writes.")
	flag.IntVar(&burst, "kube-api-burst", controllers.DefaultKubeAPIBurst, "Burst of the manager's API requests above --kube-api-qps.")
	flag.IntVar(&workers, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles,
		"How many AppGroups are reconciled at once. Each pass waits on a few API round trips in sequence, so "+
			"more workers help most when the API server is not busy.")
	newLogger := logging.BindFlags(flag.CommandLine)
	// --kubeconfig is registered by controller-runtime's config package;
	// its usage leaves out where the config comes from without it.
	flag.Lookup("kubeconfig").Usage = "Kubeconfig file (default: $KUBECONFIG when set; else the in-cluster config, " +
		"then ~/.kube/config)."
	flag.Parse()
	// The flag package stops at the first argument that is not a flag and
	// ignores every flag after it: refuse it rather than run without them
	// ("--leader-elect false" turns leader election on and drops the rest).
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ferry-manager: unexpected argument %q: the flags after it would be ignored "+
			"(flags are --name=value; a boolean flag is --name or --name=false)\n", flag.Arg(0))
		os.Exit(2)
	}

	ctrl.SetLogger(newLogger())
	metrics := metricsSettings{addr: metricsAddr, secure: metricsSecure, cert: *metricsCert}
	if err := run(metrics, probeAddr, pprofAddr, leaderElect, leaderElectionNamespace, staleAfter,
		leaseNamespace, float32(qps), burst, workers); err != nil {
		ctrl.Log.Error(err, "Manager failed")
		os.Exit(1)
	}
}

func run(metrics metricsSettings, probeAddr, pprofAddr string, leaderElect bool, leaderElectionNamespace string, staleAfter time.Duration,
	leaseNamespace string, qps float32, burst, workers int) error {
	if staleAfter <= 0 {
		return fmt.Errorf("--agent-stale-after must be positive, got %s", staleAfter)
	}
	if qps <= 0 || burst <= 0 || workers <= 0 {
		return fmt.Errorf("--kube-api-qps, --kube-api-burst and --max-concurrent-reconciles must be positive")
	}
	metricsOpts, certs, err := metricsOptions(metrics)
	if err != nil {
		return err
	}
	log := ctrl.Log.WithName("setup")
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := ferryv1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = qps, burst
	ctx := ctrl.SetupSignalHandler()
	if err := waitForAPIServer(ctx, cfg, probeAddr, log); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting
		}
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         controllers.CacheOptions(leaseNamespace),
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		PprofBindAddress:              pprofAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return err
	}
	r := &controllers.AppGroupReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Scheme:                  mgr.GetScheme(),
		Recorder:                mgr.GetEventRecorder(controllers.EventRecorderName),
		AgentStaleAfter:         staleAfter,
		LeaseNamespace:          leaseNamespace,
		MaxConcurrentReconciles: workers,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	if certs != nil {
		// Watches the files for a renewal, on every replica: each serves
		// its own metrics, leader or not.
		if err := mgr.Add(certs); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("Configured manager", "version", version.Version, "leaderElection", leaderElect,
		"agentStaleAfter", staleAfter, "agentLeaseNamespace", leaseNamespace, "workers", workers,
		"metricsCertPath", metrics.cert.Dir)
	return mgr.Start(ctx)
}

// metricsSettings are the flags of the metrics endpoint.
type metricsSettings struct {
	addr   string
	secure bool
	cert   metricscert.Files
}

// metricsOptions serves /metrics at m.addr, secure as kubebuilder's
// scaffold does: HTTPS, and only to callers the API server authenticates
// and allows to get /metrics. The certificate is m.cert's, through the
// returned watcher (which the manager must run: it reads a renewal), or
// else self-signed (Prometheus then skips its verification: the token, not
// the certificate, is what guards the endpoint). With metrics off
// (metricscert.Off), nothing is served, and no certificate read.
func metricsOptions(m metricsSettings) (metricsserver.Options, *certwatcher.CertWatcher, error) {
	certs, err := m.cert.Watcher(m.addr, m.secure)
	if err != nil {
		return metricsserver.Options{}, nil, err
	}
	if metricscert.Off(m.addr) {
		return metricsserver.Options{BindAddress: "0"}, nil, nil
	}
	if !m.secure {
		return metricsserver.Options{BindAddress: m.addr}, nil, nil
	}
	opts := metricsserver.Options{
		BindAddress:    m.addr,
		SecureServing:  true,
		FilterProvider: metricsFilter,
		// HTTP/1.1 only: HTTP/2's stream reset and continuation floods
		// (CVE-2023-44487, CVE-2023-39325) reach a server before any
		// token is checked, and a scrape gains nothing from HTTP/2.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if certs != nil {
		opts.TLSOpts = append(opts.TLSOpts, func(c *tls.Config) { c.GetCertificate = certs.GetCertificate })
	}
	return opts, certs, nil
}

// metricsFilter lets through only the callers the API server authenticates
// and allows to get /metrics (internal/metricsauth, which the agent's
// secure metrics use too).
func metricsFilter(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	f, err := metricsauth.ForConfig(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return func(log logr.Logger, h http.Handler) (http.Handler, error) { return f.Wrap(log, h), nil }, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
