package packaging_test

import (
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

// TestChartMountsTheMetricsCertificate: manager.metricsCertSecret mounts
// that Secret read-only where the manager's --metrics-cert-path points
// (deployargs.MetricsCertMountPath), and the manager's ServiceMonitor
// verifies the certificate against the Secret's ca.crt, for the metrics
// Service's name; the agents' certificate stays self-signed. With plain
// HTTP metrics there is no certificate to serve: nothing is mounted.
// TestChartRendersWorkerUsers: agent.workerUsers is the agent's
// --worker-users, as deployargs renders it; unset, no flag at all.
func TestChartRendersWorkerUsers(t *testing.T) {
	objs := render(t, renderOpts{sets: []string{`agent.workerUsers=nobody\,10000-19999`}})
	settings := deployargs.DefaultAgent()
	settings.WorkerUsers = "nobody,10000-19999"
	checkArgs(t, "agent with worker users", find(t, objs, "DaemonSet", "agent"), deployargs.AgentArgs(settings))
}

func TestChartMountsTheMetricsCertificate(t *testing.T) {
	sets := []string{"manager.metricsCertSecret=ferry-metrics-cert", "metrics.serviceMonitor.enabled=true"}
	objs := render(t, renderOpts{sets: sets})
	manager := find(t, objs, "Deployment", "manager")
	settings := deployargs.DefaultManager()
	settings.MetricsCertPath = deployargs.MetricsCertMountPath
	checkArgs(t, "manager with a certificate", manager, deployargs.ManagerArgs(settings))
	volumes := nested[[]any](t, manager.Object, "spec", "template", "spec", "volumes")
	mounts := nested[[]any](t, container(t, manager), "volumeMounts")
	if len(volumes) != 1 || len(mounts) != 1 {
		t.Fatalf("manager volumes %v, mounts %v; want the certificate's alone", volumes, mounts)
	}
	secret, _, _ := unstructured.NestedString(volumes[0].(map[string]any), "secret", "secretName")
	mount := mounts[0].(map[string]any)
	if secret != "ferry-metrics-cert" || mount["mountPath"] != deployargs.MetricsCertMountPath || mount["readOnly"] != true ||
		mount["name"] != volumes[0].(map[string]any)["name"] {
		t.Errorf("manager volume %v mounted as %v; want Secret ferry-metrics-cert read-only at %s",
			volumes[0], mount, deployargs.MetricsCertMountPath)
	}
	want := map[string]any{
		"manager": map[string]any{"ca": map[string]any{"secret": map[string]any{"name": "ferry-metrics-cert", "key": "ca.crt"}},
			"serverName": "ferry-manager-metrics.ferry-system.svc"},
		"agent": map[string]any{"insecureSkipVerify": true},
	}
	for _, component := range []string{"manager", "agent"} {
		sm := find(t, objs, "ServiceMonitor", component)
		ep := nested[[]any](t, sm.Object, "spec", "endpoints")[0].(map[string]any)
		if !reflect.DeepEqual(ep["tlsConfig"], want[component]) {
			t.Errorf("%s ServiceMonitor tlsConfig %v, want %v", component, ep["tlsConfig"], want[component])
		}
	}

	plain := find(t, render(t, renderOpts{sets: append(sets, "manager.metricsSecure=false")}), "Deployment", "manager")
	settings = deployargs.DefaultManager()
	settings.MetricsSecure = false
	checkArgs(t, "plain HTTP manager with a certificate", plain, deployargs.ManagerArgs(settings))
	if v, ok, _ := unstructured.NestedSlice(plain.Object, "spec", "template", "spec", "volumes"); ok {
		t.Errorf("plain HTTP manager mounts %v", v)
	}
}
