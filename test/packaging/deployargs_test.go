package packaging_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/ferry/internal/deployargs"
)

// The chart renders the manager's and the agent's arguments and
// environment exactly as internal/deployargs defines them: what `make
// local-up` and the end-to-end tests start the binaries with is what a
// cluster runs.

func TestChartRendersDeployArgs(t *testing.T) {
	objs := render(t, renderOpts{})
	checkArgs(t, "chart manager", find(t, objs, "Deployment", "manager"), deployargs.ManagerArgs(deployargs.DefaultManager()))
	checkArgs(t, "chart agent", find(t, objs, "DaemonSet", "agent"), deployargs.AgentArgs(deployargs.DefaultAgent()))
	checkEnv(t, "chart agent", find(t, objs, "DaemonSet", "agent"), deployargs.AgentEnvVars)
	checkEnv(t, "chart manager", find(t, objs, "Deployment", "manager"), deployargs.ManagerEnvVars)
}

// TestChartRendersDeployArgsWithMetricsOff: with both metricsBindAddress
// 0 the chart renders neither --metrics-secure nor --metrics-cert-path (a
// certificate Secret given or not), which the binaries would ignore, and
// deployargs renders the same for "0".
func TestChartRendersDeployArgsWithMetricsOff(t *testing.T) {
	objs := render(t, renderOpts{sets: []string{"manager.metricsBindAddress=0", "agent.metricsBindAddress=0",
		"manager.metricsCertSecret=ferry-metrics-cert", "agent.metricsCertSecret=ferry-metrics-cert"}})
	manager := deployargs.DefaultManager()
	manager.MetricsBindAddress, manager.MetricsCertPath = "0", deployargs.MetricsCertMountPath
	checkArgs(t, "manager with metrics off", find(t, objs, "Deployment", "manager"), deployargs.ManagerArgs(manager))
	agent := deployargs.DefaultAgent()
	agent.MetricsBindAddress, agent.MetricsCertPath = "0", deployargs.MetricsCertMountPath
	checkArgs(t, "agent with metrics off", find(t, objs, "DaemonSet", "agent"), deployargs.AgentArgs(agent))
}

func TestConfigRendersDeployArgs(t *testing.T) {
	objs := kustomize(t, "default")
	checkArgs(t, "config/manager", find(t, objs, "Deployment", "manager"), deployargs.ManagerArgs(deployargs.DefaultManager()))
	checkArgs(t, "config/agent", find(t, objs, "DaemonSet", "agent"), deployargs.AgentArgs(deployargs.DefaultAgent()))
	checkEnv(t, "config/agent", find(t, objs, "DaemonSet", "agent"), deployargs.AgentEnvVars)
	checkEnv(t, "config/manager", find(t, objs, "Deployment", "manager"), deployargs.ManagerEnvVars)
}

// TestChartRendersLocalDeployArgs: the chart can express the local stack's
// settings too (testdata/local.yaml), so the values are the same knobs the
// local stack turns.
func TestChartRendersLocalDeployArgs(t *testing.T) {
	objs := render(t, renderOpts{valuesFiles: []string{"local.yaml"}})
	manager := find(t, objs, "Deployment", "manager")
	checkArgs(t, "local manager", manager, deployargs.ManagerArgs(deployargs.LocalManager()))
	checkEnv(t, "local manager", manager, deployargs.ManagerEnvVars)
	agent := find(t, objs, "DaemonSet", "agent")
	checkArgs(t, "local agent", agent, deployargs.AgentArgs(deployargs.LocalAgent("/var/lib/ferry-local")))
	checkEnv(t, "local agent", agent, deployargs.AgentEnvVars)

	// The kubelet resolves $(HOST_IP) from the downward API as Expand does
	// from LocalAgentEnv: a simulated node's agent binds its own address.
	env := deployargs.LocalAgentEnv("node-2", "127.0.0.3")
	got := deployargs.Expand(args(t, agent), env)
	for _, want := range []string{"--node-name=node-2", "--bind-address=127.0.0.3", "--metrics-bind-address=127.0.0.3:9441",
		"--health-probe-bind-address=127.0.0.3:9442", "--lease-namespace=" + deployargs.LocalNamespace} {
		if !slices.Contains(got, want) {
			t.Errorf("expanded local agent args lack %s: %q", want, got)
		}
	}
	// Its container ports follow the bind addresses.
	ports := map[string]float64{} // numbers decode as float64
	for _, p := range nested[[]any](t, container(t, agent), "ports") {
		p := p.(map[string]any)
		ports[p["name"].(string)] = p["containerPort"].(float64)
	}
	if ports["metrics"] != 9441 || ports["health"] != 9442 {
		t.Errorf("local agent ports %v, want metrics 9441, health 9442", ports)
	}
}

func args(t *testing.T, o *unstructured.Unstructured) []string {
	t.Helper()
	var out []string
	for _, a := range nested[[]any](t, container(t, o), "args") {
		out = append(out, a.(string))
	}
	return out
}

func checkArgs(t *testing.T, what string, o *unstructured.Unstructured, want []string) {
	t.Helper()
	if got := args(t, o); !slices.Equal(got, want) {
		t.Errorf("%s args:\n got %q\nwant %q (internal/deployargs)", what, got, want)
	}
}

// checkEnv checks that the container's environment is exactly want: each
// variable from the downward API field path want names.
func checkEnv(t *testing.T, what string, o *unstructured.Unstructured, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	env, _, _ := unstructured.NestedSlice(container(t, o), "env")
	for _, e := range env {
		e := e.(map[string]any)
		path, _, _ := unstructured.NestedString(e, "valueFrom", "fieldRef", "fieldPath")
		if path == "" {
			t.Errorf("%s env %v is not from the downward API", what, e)
		}
		got[e["name"].(string)] = path
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s env: got %v, want %v (internal/deployargs)", what, got, want)
	}
}

// TestChartRendersWorkerUsers: agent.workerUsers is the agent's
// --worker-users, as deployargs renders it; unset, no flag at all.
func TestChartRendersWorkerUsers(t *testing.T) {
	objs := render(t, renderOpts{sets: []string{`agent.workerUsers=nobody\,10000-19999`}})
	settings := deployargs.DefaultAgent()
	settings.WorkerUsers = "nobody,10000-19999"
	checkArgs(t, "agent with worker users", find(t, objs, "DaemonSet", "agent"), deployargs.AgentArgs(settings))
}

// TestChartMountsTheMetricsCertificate: <component>.metricsCertSecret
// mounts that Secret read-only where the component's --metrics-cert-path
// points (deployargs.MetricsCertMountPath), and the component's
// ServiceMonitor verifies the certificate against the Secret's ca.crt, for
// one name: the metrics Service's, or for the agents, on every node's
// address, agent.metricsCertServerName; the other component's certificate
// stays self-signed. With plain HTTP metrics there is no certificate to
// serve: nothing is mounted.
func TestChartMountsTheMetricsCertificate(t *testing.T) {
	for _, c := range []struct {
		component, other string
		extra            []string
		serverName       string
	}{
		{"manager", "agent", nil, "ferry-manager-metrics.ferry-system.svc"},
		{"agent", "manager", nil, "ferry-agent-metrics.ferry-system.svc"},
		{"agent", "manager", []string{"agent.metricsCertServerName=metrics.agents.example.com"}, "metrics.agents.example.com"},
	} {
		sets := append([]string{c.component + ".metricsCertSecret=ferry-metrics-cert", "metrics.serviceMonitor.enabled=true"}, c.extra...)
		objs := render(t, renderOpts{sets: sets})
		checkMetricsCertArgs(t, objs, c.component, true, deployargs.MetricsCertMountPath)
		checkMetricsCertMount(t, workload(t, objs, c.component), "ferry-metrics-cert")
		want := map[string]any{
			c.component: map[string]any{"ca": map[string]any{"secret": map[string]any{"name": "ferry-metrics-cert", "key": "ca.crt"}},
				"serverName": c.serverName},
			c.other: map[string]any{"insecureSkipVerify": true},
		}
		for _, component := range []string{c.component, c.other} {
			sm := find(t, objs, "ServiceMonitor", component)
			ep := nested[[]any](t, sm.Object, "spec", "endpoints")[0].(map[string]any)
			if !reflect.DeepEqual(ep["tlsConfig"], want[component]) {
				t.Errorf("%v: %s ServiceMonitor tlsConfig %v, want %v", sets, component, ep["tlsConfig"], want[component])
			}
		}

		plain := render(t, renderOpts{sets: append(sets, c.component+".metricsSecure=false")})
		checkMetricsCertArgs(t, plain, c.component, false, "")
		checkMetricsCertMount(t, workload(t, plain, c.component), "")
	}
}

// workload is the Deployment of the manager or the DaemonSet of the agents.
func workload(t *testing.T, objs []*unstructured.Unstructured, component string) *unstructured.Unstructured {
	t.Helper()
	if component == "manager" {
		return find(t, objs, "Deployment", "manager")
	}
	return find(t, objs, "DaemonSet", "agent")
}

// checkMetricsCertArgs checks the component's arguments: the defaults,
// with metrics secure or not, and the certificate's path.
func checkMetricsCertArgs(t *testing.T, objs []*unstructured.Unstructured, component string, secure bool, certPath string) {
	t.Helper()
	what := fmt.Sprintf("%s with a certificate, metrics secure %t", component, secure)
	if component == "manager" {
		settings := deployargs.DefaultManager()
		settings.MetricsSecure, settings.MetricsCertPath = secure, certPath
		checkArgs(t, what, workload(t, objs, component), deployargs.ManagerArgs(settings))
		return
	}
	settings := deployargs.DefaultAgent()
	settings.MetricsSecure, settings.MetricsCertPath = secure, certPath
	checkArgs(t, what, workload(t, objs, component), deployargs.AgentArgs(settings))
}

// checkMetricsCertMount checks that o mounts the Secret named secret
// read-only at deployargs.MetricsCertMountPath, or, with secret "", that
// nothing is mounted there.
func checkMetricsCertMount(t *testing.T, o *unstructured.Unstructured, secret string) {
	t.Helper()
	volumes, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "volumes")
	mounts, _, _ := unstructured.NestedSlice(container(t, o), "volumeMounts")
	var got []string
	for _, m := range mounts {
		m := m.(map[string]any)
		if m["mountPath"] != deployargs.MetricsCertMountPath {
			continue
		}
		for _, v := range volumes {
			v := v.(map[string]any)
			if name, _, _ := unstructured.NestedString(v, "secret", "secretName"); v["name"] == m["name"] {
				got = append(got, fmt.Sprintf("Secret %s read-only %v", name, m["readOnly"]))
			}
		}
	}
	want := []string{"Secret " + secret + " read-only true"}
	if secret == "" {
		want = nil
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s mounts at %s: %q, want %q", o.GetName(), deployargs.MetricsCertMountPath, got, want)
	}
}
