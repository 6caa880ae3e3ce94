package packaging_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// endpoints is what the chart renders for one component's metrics and
// health endpoints.
type endpoints struct {
	arg         []string // its --metrics-bind-address, --metrics-secure and --health-probe-bind-address
	ports       []string // its container's ports, name:port; "none" without a ports field
	probes      []string // its container's probes
	service     bool     // its metrics Service
	monitor     bool     // its ServiceMonitor
	metricsAuth bool     // its ServiceAccount in the metrics-auth ClusterRoleBinding
	cert        bool     // its metrics certificate: a pod volume, a mount, or --metrics-cert-path
}

func (e endpoints) String() string {
	return fmt.Sprintf("args %q, ports %q, probes %q, metrics Service %t, ServiceMonitor %t, metrics-auth %t, certificate %t",
		e.arg, e.ports, e.probes, e.service, e.monitor, e.metricsAuth, e.cert)
}

// endpointsOf reads a component's endpoints from a rendered chart.
func endpointsOf(t *testing.T, objs []*unstructured.Unstructured, component string) endpoints {
	t.Helper()
	var e endpoints
	w := workload(t, objs, component)
	c := container(t, w)
	for _, a := range args(t, w) {
		for _, flag := range []string{"--metrics-bind-address=", "--metrics-secure=", "--health-probe-bind-address="} {
			if strings.HasPrefix(a, flag) {
				e.arg = append(e.arg, a)
			}
		}
		e.cert = e.cert || strings.HasPrefix(a, "--metrics-cert-path=")
	}
	if ports, ok := c["ports"]; ok {
		for _, p := range ports.([]any) {
			p := p.(map[string]any)
			e.ports = append(e.ports, fmt.Sprintf("%v:%v", p["name"], p["containerPort"]))
		}
	} else {
		e.ports = []string{"none"}
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
		if _, ok := c[probe]; ok {
			e.probes = append(e.probes, probe)
		}
	}
	mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	for _, m := range mounts {
		e.cert = e.cert || m.(map[string]any)["name"] == "metrics-cert"
	}
	// A volume left behind with no mount would still hold the pod back
	// until its Secret exists.
	volumes, _, _ := unstructured.NestedSlice(w.Object, "spec", "template", "spec", "volumes")
	for _, v := range volumes {
		e.cert = e.cert || v.(map[string]any)["name"] == "metrics-cert"
	}
	for _, s := range ofKind(objs, "Service") {
		e.service = e.service || s.GetName() == "ferry-"+component+"-metrics"
	}
	for _, sm := range ofKind(objs, "ServiceMonitor") {
		e.monitor = e.monitor || sm.GetName() == "ferry-"+component
	}
	for _, b := range ofKind(objs, "ClusterRoleBinding") {
		if b.GetName() != "ferry-metrics-auth" {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		for _, s := range subjects {
			e.metricsAuth = e.metricsAuth || s.(map[string]any)["name"] == "ferry-"+component
		}
	}
	return e
}

// TestChartTurnsEndpointsOff: a metrics bind address of 0, or the
// manager's health probe bind address of 0 (the number, however a values
// file writes it, or the string "0") turns that endpoint off, as the
// binaries take it, and the chart renders nothing that points at the
// closed port: no container port, no probes, no --metrics-secure, metrics
// Service, ServiceMonitor, metrics certificate or metrics-auth grant, and
// no scraper, metrics-auth or metrics-reader ClusterRole when no secure
// metrics are left; no ClusterRoleBinding names a ClusterRole left out. With an address, all of them. The agent's probes stay
// (the schema refuses 0 there): its /readyz stops the DaemonSet's rollout
// at an agent that cannot work.
func TestChartTurnsEndpointsOff(t *testing.T) {
	// Everything that could point at an endpoint, on.
	base := []string{"metrics.serviceMonitor.enabled=true", "manager.metricsCertSecret=manager-cert", "agent.metricsCertSecret=agent-cert"}
	on := map[string]endpoints{
		"manager": {arg: []string{"--metrics-bind-address=:8080", "--metrics-secure=true", "--health-probe-bind-address=:8081"},
			ports: []string{"metrics:8080", "health:8081"}, probes: []string{"livenessProbe", "readinessProbe"},
			service: true, monitor: true, metricsAuth: true, cert: true},
		"agent": {arg: []string{"--metrics-bind-address=:9441", "--metrics-secure=true", "--health-probe-bind-address=:9442"},
			ports: []string{"metrics:9441", "health:9442"}, probes: []string{"livenessProbe", "readinessProbe"},
			service: true, monitor: true, metricsAuth: true, cert: true},
	}
	// Metrics off take --metrics-secure with them: the binaries ignore it
	// then, and an extra argument may set it (only what the chart renders
	// is refused there).
	metricsOff := func(e endpoints) endpoints {
		e.arg = slices.DeleteFunc(slices.Clone(e.arg), func(a string) bool { return strings.HasPrefix(a, "--metrics-secure=") })
		e.arg[0] = "--metrics-bind-address=0"
		e.ports = e.ports[1:]
		e.service, e.monitor, e.metricsAuth, e.cert = false, false, false, false
		return e
	}
	healthOff := func(e endpoints) endpoints {
		e.arg = slices.Clone(e.arg)
		e.arg[len(e.arg)-1] = "--health-probe-bind-address=0"
		e.ports = e.ports[:len(e.ports)-1]
		if len(e.ports) == 0 {
			e.ports = []string{"none"}
		}
		e.probes = nil
		return e
	}
	plainHTTP := func(e endpoints) endpoints {
		e.arg = slices.Clone(e.arg)
		e.arg[1] = "--metrics-secure=false"
		e.metricsAuth, e.cert = false, false
		return e
	}
	dir := t.TempDir()
	valuesFile := func(name, values string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(values), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	// One 0 a YAML number, as a values file may write it unquoted.
	allOff := valuesFile("all-off.yaml", `manager: {metricsBindAddress: 0, healthProbeBindAddress: "0"}
agent: {metricsBindAddress: "0"}
`)
	// The schema compares numbers by value: these are the number 0 too.
	otherZeros := valuesFile("other-zeros.yaml", `manager: {metricsBindAddress: -0.0}
agent: {metricsBindAddress: 0e0}
`)
	for _, tt := range []struct {
		name       string
		sets       []string
		valuesFile string
		want       map[string]endpoints
		// The metrics-auth and metrics-reader ClusterRoles: for secure
		// metrics alone (plain HTTP checks no token, and grants nothing).
		metricsRBAC bool
		scraper     bool // the chart's scraper ServiceAccount
	}{
		{"all on", nil, "", on, true, true},
		{"manager metrics off", []string{"manager.metricsBindAddress=0"}, "",
			map[string]endpoints{"manager": metricsOff(on["manager"]), "agent": on["agent"]}, true, true},
		{"manager probes off", []string{"manager.healthProbeBindAddress=0"}, "",
			map[string]endpoints{"manager": healthOff(on["manager"]), "agent": on["agent"]}, true, true},
		{"agent metrics off, manager's plain HTTP", []string{"agent.metricsBindAddress=0", "manager.metricsSecure=false"}, "",
			map[string]endpoints{"manager": plainHTTP(on["manager"]), "agent": metricsOff(on["agent"])}, false, false},
		{"all metrics plain HTTP", []string{"manager.metricsSecure=false", "agent.metricsSecure=false"}, "",
			map[string]endpoints{"manager": plainHTTP(on["manager"]), "agent": plainHTTP(on["agent"])}, false, false},
		{"all but the agent's probes off, from a values file", nil, allOff,
			map[string]endpoints{"manager": healthOff(metricsOff(on["manager"])), "agent": metricsOff(on["agent"])}, false, false},
		{"metrics off as -0.0 and 0e0, from a values file", nil, otherZeros,
			map[string]endpoints{"manager": metricsOff(on["manager"]), "agent": metricsOff(on["agent"])}, false, false},
		// A token of the user's: the reader it is bound to stays, the
		// chart's scraper is not needed.
		{"secure metrics with a token Secret of the user's", []string{"metrics.serviceMonitor.tokenSecret.name=prometheus-token"}, "",
			on, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := renderOpts{sets: append(slices.Clone(base), tt.sets...)}
			if tt.valuesFile != "" {
				o.valuesFiles = []string{tt.valuesFile}
			}
			// With every component's metrics off, the ServiceMonitors
			// asked for would scrape nothing: refused, and judged without.
			if !tt.want["manager"].service && !tt.want["agent"].service {
				if _, err := templateRaw(testContext(t), o); err == nil ||
					!strings.Contains(err.Error(), "metrics.serviceMonitor.enabled asks for ServiceMonitors that would scrape nothing") {
					t.Errorf("every component's metrics off with metrics.serviceMonitor.enabled: want refused, got: %v", err)
				}
				o.sets = slices.DeleteFunc(o.sets, func(s string) bool { return s == "metrics.serviceMonitor.enabled=true" })
			}
			objs := render(t, o)
			for _, component := range []string{"manager", "agent"} {
				if got := endpointsOf(t, objs, component); got.String() != tt.want[component].String() {
					t.Errorf("%s:\n got %s\nwant %s", component, got, tt.want[component])
				}
			}
			rendered := func(kindAndName string) bool {
				return slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return kindName(o) == kindAndName })
			}
			for _, role := range []string{"ClusterRole/ferry-metrics-auth", "ClusterRole/ferry-metrics-reader"} {
				if got := rendered(role); got != tt.metricsRBAC {
					t.Errorf("%s rendered %t, want %t", role, got, tt.metricsRBAC)
				}
			}
			if got := rendered("ServiceAccount/ferry-metrics-scraper"); got != tt.scraper {
				t.Errorf("scraper rendered %t, want %t", got, tt.scraper)
			}
			// A binding to a ClusterRole the chart left out would grant
			// nothing, or whatever a role of that name elsewhere grants.
			for _, b := range ofKind(objs, "ClusterRoleBinding") {
				role, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
				if !rendered("ClusterRole/" + role) {
					t.Errorf("%s binds ClusterRole %s, which is not rendered", kindName(b), role)
				}
			}
		})
	}
}
