// Package deployargs is the one definition of how Ferry's binaries are
// started: the command-line arguments and environment of the manager and
// of the agent. The Helm chart renders the same arguments from its values;
// `make local-up` and the end-to-end tests start the binaries with what
// this package returns; a test renders the chart and compares, so the
// chart cannot drift from what is tested.
//
// Arguments may reference environment variables as $(NAME), the way a
// container's args do; Expand resolves them as the kubelet would.
package deployargs

import (
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/ferry-dev/ferry/internal/metricscert"
)

// Manager holds the manager's settings (chart: .Values.manager).
type Manager struct {
	LeaderElect        bool
	MetricsBindAddress string
	// MetricsSecure serves /metrics over HTTPS to authorized tokens only;
	// not rendered for metrics that are off (MetricsBindAddress 0).
	MetricsSecure bool
	// MetricsCertPath is the directory of the certificate (tls.crt) and
	// key (tls.key) secure metrics serve; empty: a self-signed one. The
	// chart mounts manager.metricsCertSecret at MetricsCertMountPath.
	// Rendered only for metrics that are on and secure.
	MetricsCertPath        string
	HealthProbeBindAddress string
	AgentStaleAfter        time.Duration
	// AgentLeaseNamespace is where agents renew their Leases:
	// $(POD_NAMESPACE), the release's namespace.
	AgentLeaseNamespace     string
	KubeAPIQPS              int
	KubeAPIBurst            int
	MaxConcurrentReconciles int
	LogLevel                string // zap level: debug, info, error, or an integer
}

// DefaultManager is what the chart renders with its default values.
func DefaultManager() Manager {
	return Manager{LeaderElect: true, MetricsBindAddress: ":8080", MetricsSecure: true, HealthProbeBindAddress: ":8081",
		AgentStaleAfter: 40 * time.Second, AgentLeaseNamespace: "$(POD_NAMESPACE)", KubeAPIQPS: 300, KubeAPIBurst: 600,
		MaxConcurrentReconciles: 8, LogLevel: "info"}
}

// LocalManager is the manager of `make local-up` and the e2e tests: with
// leader election, as the chart runs it, so that its Lease in
// LocalNamespace tells `kubectl ferry status` when no manager runs; its
// ports on 127.0.0.1 away from the apps' ports, which the simulated nodes'
// agents serve on 127.0.0.2, ... Its metrics are plain HTTP, on loopback,
// for curl and the benchmarks.
func LocalManager() Manager {
	m := DefaultManager()
	m.MetricsBindAddress = "127.0.0.1:18080"
	m.MetricsSecure = false
	m.HealthProbeBindAddress = "127.0.0.1:18081"
	return m
}

// ManagerArgs are the manager's arguments.
func ManagerArgs(m Manager) []string {
	args := []string{
		fmt.Sprintf("--leader-elect=%t", m.LeaderElect),
		"--metrics-bind-address=" + m.MetricsBindAddress,
	}
	args = append(args, metricsArgs(m.MetricsBindAddress, m.MetricsSecure, m.MetricsCertPath)...)
	return append(args,
		"--health-probe-bind-address="+m.HealthProbeBindAddress,
		"--agent-stale-after="+m.AgentStaleAfter.String(),
		"--agent-lease-namespace="+m.AgentLeaseNamespace,
		fmt.Sprintf("--kube-api-qps=%d", m.KubeAPIQPS),
		fmt.Sprintf("--kube-api-burst=%d", m.KubeAPIBurst),
		fmt.Sprintf("--max-concurrent-reconciles=%d", m.MaxConcurrentReconciles),
		"--zap-log-level="+m.LogLevel,
	)
}

// metricsArgs are --metrics-secure and --metrics-cert-path for metrics
// served at bindAddress, as the chart renders them: neither for metrics
// that are off (0 or empty), which the binaries ignore them for, and the
// certificate only for secure metrics: plain HTTP serves none, and the
// binaries refuse one there.
func metricsArgs(bindAddress string, secure bool, certPath string) []string {
	if metricscert.Off(bindAddress) {
		return nil
	}
	args := []string{fmt.Sprintf("--metrics-secure=%t", secure)}
	if secure && certPath != "" {
		args = append(args, "--metrics-cert-path="+certPath)
	}
	return args
}

// MetricsCertMountPath is where the chart mounts the Secret of
// manager.metricsCertSecret in the manager's container, and that of
// agent.metricsCertSecret in the agent's.
const MetricsCertMountPath = "/etc/ferry/metrics-certs"

// ManagerEnvVars names the environment the manager's arguments reference,
// and where a pod gets each from (a downward API field path).
var ManagerEnvVars = map[string]string{
	"POD_NAMESPACE": "metadata.namespace",
}

// LocalNamespace is the namespace of the local stack's Ferry (where the
// agents renew their Leases).
const LocalNamespace = "ferry-system"

// LocalManagerEnv is the environment of the local stack's manager.
func LocalManagerEnv() map[string]string { return map[string]string{"POD_NAMESPACE": LocalNamespace} }

// Agent holds the agent's settings (chart: .Values.agent).
type Agent struct {
	// BindAddress is where the proxies listen: 0.0.0.0 on a real node;
	// $(HOST_IP) when several simulated nodes share one host.
	BindAddress string
	// AdvertiseAddress is the address reported for the Service's endpoints.
	AdvertiseAddress   string
	StateDir           string
	MetricsBindAddress string
	// MetricsSecure serves /metrics over HTTPS to authorized tokens only.
	MetricsSecure bool
	// MetricsCertPath is as the manager's: the chart mounts
	// agent.metricsCertSecret at MetricsCertMountPath.
	MetricsCertPath        string
	HealthProbeBindAddress string
	HeartbeatInterval      time.Duration
	StatsInterval          time.Duration
	DrainDelay             time.Duration
	// LeaseNamespace is where the agent renews its Lease: $(POD_NAMESPACE).
	LeaseNamespace     string
	KubeAPIQPS         int
	KubeAPIBurst       int
	ReadHeaderTimeout  time.Duration
	IdleTimeout        time.Duration
	SendTimeout        time.Duration
	RequestBodyTimeout time.Duration
	MaxHeaderBytes     int
	// ResponseBufferMemory is --response-buffer-memory, in bytes.
	ResponseBufferMemory int64
	// RequestBufferDisk is --request-buffer-disk, in bytes.
	RequestBufferDisk int64
	TrustForwardedFor bool
	LogLevel          string
	// WorkerUsers is --worker-users; empty: not rendered (any user but
	// root).
	WorkerUsers string
}

// DefaultAgent is what the chart renders with its default values.
func DefaultAgent() Agent {
	return Agent{BindAddress: "0.0.0.0", AdvertiseAddress: "$(HOST_IP)", StateDir: "/var/lib/ferry",
		MetricsBindAddress: ":9441", MetricsSecure: true, HealthProbeBindAddress: ":9442", HeartbeatInterval: 10 * time.Second,
		StatsInterval: 30 * time.Second, DrainDelay: 5 * time.Second, LeaseNamespace: "$(POD_NAMESPACE)", KubeAPIQPS: 50, KubeAPIBurst: 100,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, SendTimeout: 60 * time.Second,
		RequestBodyTimeout: 60 * time.Second, MaxHeaderBytes: 65536, ResponseBufferMemory: 256 << 20,
		RequestBufferDisk: 1 << 30, LogLevel: "info"}
}

// LocalAgent is the agent of one simulated node of `make local-up` and the
// e2e tests: every agent shares the host, so each binds its node's own
// loopback address and keeps its own state directory. Its metrics are
// plain HTTP, on loopback, for curl.
func LocalAgent(stateDir string) Agent {
	a := DefaultAgent()
	a.BindAddress = "$(HOST_IP)"
	a.MetricsBindAddress = "$(HOST_IP):9441"
	a.MetricsSecure = false
	a.HealthProbeBindAddress = "$(HOST_IP):9442"
	a.StateDir = stateDir
	return a
}

// AgentArgs are the agent's arguments (cluster mode).
func AgentArgs(a Agent) []string {
	args := []string{
		"--node-name=$(NODE_NAME)",
		"--bind-address=" + a.BindAddress,
		"--advertise-address=" + a.AdvertiseAddress,
		"--state-dir=" + a.StateDir,
		"--metrics-bind-address=" + a.MetricsBindAddress,
	}
	args = append(args, metricsArgs(a.MetricsBindAddress, a.MetricsSecure, a.MetricsCertPath)...)
	args = append(args,
		"--health-probe-bind-address="+a.HealthProbeBindAddress,
		"--heartbeat-interval="+a.HeartbeatInterval.String(),
		"--stats-interval="+a.StatsInterval.String(),
		"--drain-delay="+a.DrainDelay.String(),
		"--lease-namespace="+a.LeaseNamespace,
		fmt.Sprintf("--kube-api-qps=%d", a.KubeAPIQPS),
		fmt.Sprintf("--kube-api-burst=%d", a.KubeAPIBurst),
		"--read-header-timeout="+a.ReadHeaderTimeout.String(),
		"--idle-timeout="+a.IdleTimeout.String(),
		"--send-timeout="+a.SendTimeout.String(),
		"--request-body-timeout="+a.RequestBodyTimeout.String(),
		fmt.Sprintf("--max-header-bytes=%d", a.MaxHeaderBytes),
		fmt.Sprintf("--response-buffer-memory=%d", a.ResponseBufferMemory),
		fmt.Sprintf("--request-buffer-disk=%d", a.RequestBufferDisk),
		fmt.Sprintf("--trust-forwarded-for=%t", a.TrustForwardedFor),
		"--zap-log-level="+a.LogLevel,
	)
	if a.WorkerUsers != "" {
		args = append(args, "--worker-users="+a.WorkerUsers)
	}
	return args
}

// AgentEnvVars names the environment the agent's arguments reference, and
// where a pod gets each from (a downward API field path).
var AgentEnvVars = map[string]string{
	"NODE_NAME":     "spec.nodeName",
	"HOST_IP":       "status.hostIP",
	"POD_NAMESPACE": "metadata.namespace",
}

// LocalAgentEnv is the environment of a simulated node's agent.
func LocalAgentEnv(node, hostIP string) map[string]string {
	return map[string]string{"NODE_NAME": node, "HOST_IP": hostIP, "POD_NAMESPACE": LocalNamespace}
}

var ref = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// Expand resolves $(NAME) references in args from env, as the kubelet
// does for a container: an unknown reference is left as written, and
// $$(NAME) stays a literal $(NAME).
func Expand(args []string, env map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expandOne(a, env)
	}
	return out
}

func expandOne(s string, env map[string]string) string {
	var b []byte
	last := 0
	for _, m := range ref.FindAllStringSubmatchIndex(s, -1) {
		start, end := m[0], m[1]
		if start > 0 && s[start-1] == '$' {
			b = append(b, s[last:start-1]...)
			b = append(b, s[start:end]...)
			last = end
			continue
		}
		b = append(b, s[last:start]...)
		if v, ok := env[s[m[2]:m[3]]]; ok {
			b = append(b, v...)
		} else {
			b = append(b, s[start:end]...)
		}
		last = end
	}
	b = append(b, s[last:]...)
	return string(b)
}

// Environ returns os.Environ() with env set on top, for exec.Cmd.Env.
func Environ(env map[string]string) []string {
	out := os.Environ()
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
