package packaging_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestHelmLintIsClean(t *testing.T) {
	for _, values := range []string{"", "all-knobs.yaml", "local.yaml"} {
		t.Run("values="+values, func(t *testing.T) {
			args := []string{"lint", "--strict", "--kube-version", kubeVersion, chartDir}
			if values != "" {
				args = append(args, "-f", filepath.Join("testdata", values))
			}
			out, err := helm(testContext(t), args...)
			if err != nil {
				t.Fatal(err)
			}
			// Only the missing icon may be mentioned: Ferry has no logo yet.
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "[") && !strings.Contains(line, "icon is recommended") {
					t.Errorf("helm lint: %s", line)
				}
			}
		})
	}
}

func TestHelmTemplateDefaults(t *testing.T) {
	objs := render(t, renderOpts{})
	want := []string{
		"CustomResourceDefinition/appgroups.ferry.dev", "CustomResourceDefinition/processpools.ferry.dev",
		"ServiceAccount/ferry-manager", "ClusterRole/ferry-manager", "ClusterRoleBinding/ferry-manager",
		"Role/ferry-manager-leader-election", "RoleBinding/ferry-manager-leader-election",
		"ServiceAccount/ferry-agent", "ClusterRole/ferry-agent", "ClusterRoleBinding/ferry-agent",
		"Role/ferry-agent-lease", "RoleBinding/ferry-agent-lease",
		"ClusterRole/ferry-metrics-auth", "ClusterRoleBinding/ferry-metrics-auth", "ClusterRole/ferry-metrics-reader",
		"ValidatingAdmissionPolicy/ferry-agent-node-isolation", "ValidatingAdmissionPolicyBinding/ferry-agent-node-isolation",
		"ValidatingAdmissionPolicy/ferry-agent-lease-isolation", "ValidatingAdmissionPolicyBinding/ferry-agent-lease-isolation",
		"ValidatingAdmissionPolicy/ferry-revision", "ValidatingAdmissionPolicyBinding/ferry-revision",
		"Deployment/ferry-manager", "DaemonSet/ferry-agent",
		"Service/ferry-manager-metrics", "Service/ferry-agent-metrics",
	}
	got := kindNames(objs)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("rendered objects:\n got %q\nwant %q", got, want)
	}
	for _, crd := range ofKind(objs, "CustomResourceDefinition") {
		if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s lacks helm.sh/resource-policy: keep by default", crd.GetName())
		}
	}
	ds := find(t, objs, "DaemonSet", "agent")
	spec := nested[map[string]any](t, ds.Object, "spec", "template", "spec")
	if spec["hostNetwork"] != true || spec["dnsPolicy"] != "ClusterFirstWithHostNet" {
		t.Errorf("agent pod: hostNetwork %v, dnsPolicy %v; want true, ClusterFirstWithHostNet", spec["hostNetwork"], spec["dnsPolicy"])
	}
	if sel := nested[map[string]any](t, spec, "nodeSelector"); sel["ferry.dev/web"] != "true" {
		t.Errorf("agent nodeSelector %v lacks ferry.dev/web=true", sel)
	}
	if _, ok := ds.Object["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)["labels"].(map[string]any)["helm.sh/chart"]; ok {
		t.Error("the agent's pod template carries the chart version: every chart upgrade would restart every node's workers")
	}
}

// TestAgentTokenIsRootsAlone: the workers run in the agent's container,
// as other users. The kubelet writes a container's service account token
// mode 0600, owned by its user, only when every container of the pod names
// its user (runAsUser), and world-readable (0644) otherwise: the agent's
// container must name root, though the image's user is root already, or
// any worker could read the agent's token. An fsGroup would make it the
// group's too.
func TestAgentTokenIsRootsAlone(t *testing.T) {
	ds := find(t, render(t, renderOpts{}), "DaemonSet", "agent")
	spec := nested[map[string]any](t, ds.Object, "spec", "template", "spec")
	for _, c := range nested[[]any](t, spec, "containers") {
		sc, _ := c.(map[string]any)["securityContext"].(map[string]any)
		if fmt.Sprint(sc["runAsUser"]) != "0" {
			t.Errorf("agent container %v: runAsUser %v, want 0", c.(map[string]any)["name"], sc["runAsUser"])
		}
	}
	if psc, _ := spec["securityContext"].(map[string]any); psc["fsGroup"] != nil {
		t.Errorf("agent pod: fsGroup %v, want none", psc["fsGroup"])
	}
}

// TestAgentSecretEnvGrantsGetOnly: the agents' ClusterRole grants no
// Secret or ConfigMap by default, and with agent.secretEnv=true get on
// both, and nothing more (no list or watch: the agent reads by name the
// one an env valueFrom names).
func TestAgentSecretEnvGrantsGetOnly(t *testing.T) {
	for _, tt := range []struct {
		sets []string
		want []any
	}{
		{nil, nil},
		{[]string{"agent.secretEnv=true"}, []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"secrets", "configmaps"}, "verbs": []any{"get"}}}},
	} {
		role := find(t, render(t, renderOpts{sets: tt.sets}), "ClusterRole", "ferry-agent")
		var got []any
		for _, r := range nested[[]any](t, role.Object, "rules") {
			if groups := r.(map[string]any)["apiGroups"].([]any); slices.Contains(groups, any("")) {
				got = append(got, r)
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("--set %q: the agent's core rules %v, want %v", tt.sets, got, tt.want)
		}
	}
}

// TestAgentNodeSelectorReplacesTheDefault: a user's agent.nodeSelector is
// the agents' node selector, not the chart's default with the user's labels
// added (Helm merges a map value into the default map): otherwise agents run
// only on nodes that also carry ferry.dev/web=true, and on none of the
// nodes the user chose.
func TestAgentNodeSelectorReplacesTheDefault(t *testing.T) {
	for _, tt := range []struct {
		sets []string
		want map[string]any
	}{
		{nil, map[string]any{"kubernetes.io/os": "linux", "ferry.dev/web": "true"}},
		{[]string{`agent.nodeSelector.example\.com/pool=web`}, map[string]any{"example.com/pool": "web"}},
		{[]string{`agent.nodeSelector.kubernetes\.io/os=linux`}, map[string]any{"kubernetes.io/os": "linux"}},
	} {
		ds := find(t, render(t, renderOpts{sets: tt.sets}), "DaemonSet", "agent")
		got := nested[map[string]any](t, ds.Object, "spec", "template", "spec", "nodeSelector")
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("--set %q: agent nodeSelector %v, want %v", tt.sets, got, tt.want)
		}
	}
}

func TestHelmTemplateCRDToggles(t *testing.T) {
	if crds := ofKind(render(t, renderOpts{sets: []string{"crds.enabled=false"}}), "CustomResourceDefinition"); len(crds) != 0 {
		t.Errorf("crds.enabled=false rendered %d CRDs", len(crds))
	}
	for _, crd := range ofKind(render(t, renderOpts{sets: []string{"crds.keep=false"}}), "CustomResourceDefinition") {
		if _, ok := crd.GetAnnotations()["helm.sh/resource-policy"]; ok {
			t.Errorf("crds.keep=false: CRD %s still has helm.sh/resource-policy", crd.GetName())
		}
	}
}

func TestHelmTemplateAllKnobs(t *testing.T) {
	objs := render(t, renderOpts{release: "knobs", namespace: "ferry-knobs", valuesFiles: []string{"all-knobs.yaml"}})
	// No metrics-reader ClusterRole: both components' metrics are plain
	// HTTP, which checks no token's rights.
	want := []string{
		"ClusterRole/knobs-agent", "ClusterRole/knobs-manager",
		"ClusterRoleBinding/knobs-agent", "ClusterRoleBinding/knobs-manager", "DaemonSet/knobs-agent", "Deployment/knobs-manager", "Role/knobs-agent-lease", "Role/knobs-manager-leader-election",
		"RoleBinding/knobs-agent-lease", "RoleBinding/knobs-manager-leader-election", "Service/knobs-agent-metrics",
		"Service/knobs-manager-metrics",
		"ServiceMonitor/knobs-agent", "ServiceMonitor/knobs-manager",
	}
	if got := kindNames(objs); !slices.Equal(got, want) {
		t.Errorf("rendered objects:\n got %q\nwant %q", got, want)
	}
	dep := find(t, objs, "Deployment", "manager")
	c := container(t, dep)
	if want := "registry.example.com/ferry/manager@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; c["image"] != want {
		t.Errorf("manager image %v, want %s (the digest wins over the tag)", c["image"], want)
	}
	ds := find(t, objs, "DaemonSet", "agent")
	spec := nested[map[string]any](t, ds.Object, "spec", "template", "spec")
	if spec["serviceAccountName"] != "existing-agent" || spec["priorityClassName"] != "system-node-critical" {
		t.Errorf("agent pod: serviceAccountName %v, priorityClassName %v", spec["serviceAccountName"], spec["priorityClassName"])
	}
	var mounts []string
	for _, m := range nested[[]any](t, container(t, ds), "volumeMounts") {
		m := m.(map[string]any)
		mounts = append(mounts, fmt.Sprintf("%s:%s:%v", m["name"], m["mountPath"], m["readOnly"]))
	}
	if want := []string{"app-srv:/srv:true", "app-apps:/apps:<nil>", "state:/run/ferry:<nil>"}; !slices.Equal(mounts, want) {
		t.Errorf("agent mounts %q, want %q", mounts, want)
	}
	for _, sm := range ofKind(objs, "ServiceMonitor") {
		if sm.GetNamespace() != "monitoring" || sm.GetLabels()["release"] != "kube-prometheus-stack" {
			t.Errorf("ServiceMonitor %s: namespace %s, labels %v", sm.GetName(), sm.GetNamespace(), sm.GetLabels())
		}
	}
	for _, o := range objs {
		if o.GetLabels()["team"] != "web" || o.GetLabels()["app.kubernetes.io/name"] != "ferryboat" {
			t.Errorf("%s/%s lacks commonLabels or nameOverride: %v", o.GetKind(), o.GetName(), o.GetLabels())
		}
	}
}

// TestAllKnobsValuesChangeEveryValue keeps testdata/all-knobs.yaml
// complete: every value of values.yaml is set there, to something else.
func TestAllKnobsValuesChangeEveryValue(t *testing.T) {
	knobs := valueKnobs(t)
	all := readValues(t, filepath.Join("testdata", "all-knobs.yaml"))
	for _, k := range knobs {
		v, ok := lookup(all, k.path)
		if !ok {
			t.Errorf("testdata/all-knobs.yaml does not set %s", strings.Join(k.path, "."))
			continue
		}
		if reflect.DeepEqual(v, k.value) {
			t.Errorf("testdata/all-knobs.yaml sets %s to its default %v", strings.Join(k.path, "."), v)
		}
	}
}

// TestEveryValueIsDocumented: every value in values.yaml has a "# --"
// comment, and a key without one groups documented values.
func TestEveryValueIsDocumented(t *testing.T) {
	if n := len(valueKnobs(t)); n < 50 {
		t.Fatalf("found only %d documented values; is the parser right?", n)
	}
}

// TestEveryValueChangesTheOutput renders the chart with each value changed
// alone (to its all-knobs.yaml setting) and checks the output differs from
// the defaults': no value is dead, and each renders on its own.
func TestEveryValueChangesTheOutput(t *testing.T) {
	// Values that only act with others set; the longest prefix of a value's
	// name applies.
	prereqs := map[string]map[string]any{
		"metrics.serviceMonitor.": {"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}},
		// The chart's own scraper's Secret holds its token at "token".
		"metrics.serviceMonitor.tokenSecret.key": {"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true,
			"tokenSecret": map[string]any{"name": "prometheus-metrics-token"}}}},
		"manager.serviceAccount.create": {"manager": map[string]any{"serviceAccount": map[string]any{"name": "existing"}}},
		"agent.serviceAccount.create":   {"agent": map[string]any{"serviceAccount": map[string]any{"name": "existing"}}},
		// The name the agents' ServiceMonitor verifies their certificate for.
		"agent.metricsCertServerName": {"agent": map[string]any{"metricsCertSecret": "ferry-agent-metrics-cert"},
			"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}},
	}
	all := readValues(t, filepath.Join("testdata", "all-knobs.yaml"))
	dir := t.TempDir()
	write := func(name string, v map[string]any) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var mu sync.Mutex
	base := map[string]string{}
	baseFor := func(prereq string, files []string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if out, ok := base[prereq]; ok {
			return out, nil
		}
		out, err := templateRaw(testContext(t), renderOpts{valuesFiles: files})
		base[prereq] = out
		return out, err
	}
	knobs := valueKnobs(t)
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, k := range knobs {
		name := strings.Join(k.path, ".")
		v, ok := lookup(all, k.path)
		if !ok {
			continue // TestAllKnobsValuesChangeEveryValue reports it
		}
		prereq := ""
		for prefix := range prereqs {
			if strings.HasPrefix(name, prefix) && name != "metrics.serviceMonitor.enabled" && len(prefix) > len(prereq) {
				prereq = prefix
			}
		}
		var files []string
		if prereq != "" {
			files = []string{write(fmt.Sprintf("prereq-%d.yaml", i), prereqs[prereq])}
		}
		knob := write(fmt.Sprintf("knob-%d.yaml", i), setPath(k.path, v))
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			want, err := baseFor(prereq, files)
			if err != nil {
				t.Errorf("%s: rendering the baseline: %v", name, err)
				return
			}
			got, err := templateRaw(testContext(t), renderOpts{valuesFiles: append(slices.Clone(files), knob)})
			if err != nil {
				t.Errorf("%s=%v alone does not render: %v", name, v, err)
				return
			}
			if got == want {
				t.Errorf("%s=%v changes nothing in the rendered chart", name, v)
			}
		}()
	}
	wg.Wait()
}

func TestSchemaRejectsWrongValues(t *testing.T) {
	for _, tt := range []struct {
		name, values, want string
	}{
		{"unknown top-level key", "replicas: 2", "additional properties 'replicas' not allowed"},
		{"misspelt nested key", "agent: {bindAdress: 0.0.0.0}", "additional properties 'bindAdress' not allowed"},
		{"bool as string", `crds: {enabled: "yes"}`, "/crds/enabled"},
		{"integer as string", `manager: {replicaCount: "two"}`, "/manager/replicaCount"},
		{"duration as number", "manager: {agentStaleAfter: 40}", "/manager/agentStaleAfter"},
		{"not a duration", "agent: {heartbeatInterval: soon}", "/agent/heartbeatInterval"},
		{"bind address without port", `agent: {metricsBindAddress: "0.0.0.0"}`, "/agent/metricsBindAddress"},
		// 0, a string or a number, turns an endpoint off; no other number does.
		{"bind address a port number", "manager: {healthProbeBindAddress: 8081}", "/manager/healthProbeBindAddress"},
		{"bind address 00", `agent: {metricsBindAddress: "00"}`, "/agent/metricsBindAddress"},
		// Ports the API server refuses as a containerPort or a Service's
		// port, mid-install.
		{"bind address port 0", `manager: {metricsBindAddress: ":0"}`, "/manager/metricsBindAddress"},
		{"bind address port 0 on the node IP", `agent: {metricsBindAddress: "$(HOST_IP):0"}`, "/agent/metricsBindAddress"},
		{"bind address port 65536", `agent: {healthProbeBindAddress: ":65536"}`, "/agent/healthProbeBindAddress"},
		{"bind address port 99999 on an IPv6", `manager: {healthProbeBindAddress: "[::1]:99999"}`, "/manager/healthProbeBindAddress"},
		// The manager's pod sets no HOST_IP: the manager would get the
		// text unexpanded and fail to listen.
		{"manager metrics on the node IP", `manager: {metricsBindAddress: "$(HOST_IP):8080"}`, "/manager/metricsBindAddress"},
		{"manager probes on the node IP", `manager: {healthProbeBindAddress: "$(HOST_IP):8081"}`, "/manager/healthProbeBindAddress"},
		{"bind address port 01", `manager: {healthProbeBindAddress: ":01"}`, "/manager/healthProbeBindAddress"},
		// Only 0 turns an endpoint off: the schema says so, by its enum.
		{"bind address empty", `manager: {metricsBindAddress: ""}`,
			`at '/manager/metricsBindAddress': value must be one of '0', 0`},
		{"bind address off", `agent: {metricsBindAddress: "off"}`, `at '/agent/metricsBindAddress': value must be one of '0', 0`},
		{"bind address off unquoted as a YAML bool", `manager: {healthProbeBindAddress: off}`,
			`at '/manager/healthProbeBindAddress': value must be one of '0', 0`},
		{"bind address :0", `agent: {metricsBindAddress: ":0"}`, `at '/agent/metricsBindAddress': value must be one of '0', 0`},
		{"bind address a number not 0", `agent: {metricsBindAddress: 0.5}`, `at '/agent/metricsBindAddress': value must be one of '0', 0`},
		// The agent's /readyz stops the DaemonSet's rollout at an agent
		// that cannot work (an outdated CRD), so its probes stay on.
		// Helm drops a null given for a key with a default before the
		// schema sees the values: the key is then missing, which the
		// schema refuses, rather than templates taking nil as off (or,
		// for metricsSecure, rendering --metrics-secure=0).
		{"manager metrics bind address null", "manager: {metricsBindAddress: }", `at '/manager': missing property 'metricsBindAddress'`},
		{"manager probes bind address null", "manager: {healthProbeBindAddress: null}",
			`at '/manager': missing property 'healthProbeBindAddress'`},
		{"manager metrics secure null", "manager: {metricsSecure: ~}", `at '/manager': missing property 'metricsSecure'`},
		{"agent metrics bind address null", "agent: {metricsBindAddress: null}", `at '/agent': missing property 'metricsBindAddress'`},
		{"agent probes bind address null", "agent: {healthProbeBindAddress: }", `at '/agent': missing property 'healthProbeBindAddress'`},
		{"agent metrics secure null", "agent: {metricsSecure: null}", `at '/agent': missing property 'metricsSecure'`},
		{"agent probes off", "agent: {healthProbeBindAddress: 0}", "/agent/healthProbeBindAddress"},
		{"agent probes off as a string", `agent: {healthProbeBindAddress: "0"}`, "/agent/healthProbeBindAddress"},
		{"max header bytes as string", `agent: {maxHeaderBytes: "64k"}`, "/agent/maxHeaderBytes"},
		{"app roots as a map", "agent: {appRoots: {srv: /srv}}", "/agent/appRoots"},
		{"relative app root", "agent: {appRoots: [{name: srv, hostPath: srv}]}", "/agent/appRoots/0/hostPath"},
		{"app root without a name", "agent: {appRoots: [{hostPath: /srv}]}", "/agent/appRoots/0"},
		{"label value not a string", "commonLabels: {team: 1}", "/commonLabels/team"},
		{"bad pull policy", "agent: {image: {pullPolicy: Sometimes}}", "/agent/image/pullPolicy"},
		{"bad log level", "manager: {logLevel: loud}", "/manager/logLevel"},
		{"tolerations as a map", "agent: {tolerations: {key: a}}", "/agent/tolerations"},
		{"env without a name", "agent: {extraEnv: [{value: x}]}", "/agent/extraEnv/0"},
		{"server name as a URL", "agent: {metricsCertServerName: https://metrics.example.com}", "/agent/metricsCertServerName"},
		// Image references the kubelet would refuse to pull.
		{"tag with a colon", `agent: {image: {tag: "bad:tag"}}`,
			`at '/agent/image/tag': 'bad:tag' does not match pattern '^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$'`},
		{"tag with a space", `manager: {image: {tag: "has space"}}`, `at '/manager/image/tag': 'has space' does not match`},
		{"tag starting with a dot", `agent: {image: {tag: ".1"}}`, `at '/agent/image/tag': '.1' does not match`},
		{"short digest", `agent: {image: {digest: "sha256:abc"}}`, `at '/agent/image/digest': 'sha256:abc' does not match`},
		{"digest without its algorithm", `manager: {image: {digest: "` + strings.Repeat("0", 64) + `"}}`, `at '/manager/image/digest'`},
		// Repositories the kubelet could not parse, or would parse as
		// another image (the tag and digest are values of their own).
		{"repository with a tag", `agent: {image: {repository: "ghcr.io/ferry-dev/ferry-agent:v1"}}`,
			`at '/agent/image/repository': 'ghcr.io/ferry-dev/ferry-agent:v1' does not match pattern`},
		{"repository with a digest", `manager: {image: {repository: "ghcr.io/ferry-dev/ferry-manager@sha256:` + strings.Repeat("0", 64) + `"}}`,
			`at '/manager/image/repository': 'ghcr.io/ferry-dev/ferry-manager@sha256:`},
		{"repository in uppercase", `manager: {image: {repository: "ghcr.io/Ferry-Dev/manager"}}`,
			`at '/manager/image/repository': 'ghcr.io/Ferry-Dev/manager' does not match pattern`},
		{"repository with a space", `agent: {image: {repository: "my registry/agent"}}`,
			`at '/agent/image/repository': 'my registry/agent' does not match pattern`},
		{"empty repository", `agent: {image: {repository: ""}}`, `at '/agent/image/repository': '' does not match pattern`},
		{"repository with a double slash", `agent: {image: {repository: "ghcr.io//agent"}}`, `at '/agent/image/repository'`},
		// An advertise address the manager cannot parse into an endpoint.
		{"advertise address a host name", "agent: {advertiseAddress: node-1.example.com}",
			`at '/agent/advertiseAddress': 'node-1.example.com' is not valid ipv4`},
		{"advertise address empty", `agent: {advertiseAddress: ""}`, `at '/agent/advertiseAddress': '' is not valid ipv4`},
		{"advertise address with a port", `agent: {advertiseAddress: "10.0.0.1:8080"}`,
			`at '/agent/advertiseAddress': '10.0.0.1:8080' is not valid ipv4`},
		// Addresses every pool's listen would fail on, after a DNS lookup.
		{"bind address not an IP", "agent: {bindAddress: not-an-ip}", `at '/agent/bindAddress': 'not-an-ip' is not valid ipv4`},
		{"bind address with a port", `agent: {bindAddress: "0.0.0.0:80"}`, `at '/agent/bindAddress': value must be one of '', '$(HOST_IP)'`},
		{"bind address a host name", "agent: {bindAddress: localhost}", `at '/agent/bindAddress': 'localhost' is not valid ipv6`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(f, []byte(tt.values), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := templateRaw(testContext(t), renderOpts{valuesFiles: []string{f}})
			if err == nil {
				t.Fatalf("values %q accepted", tt.values)
			}
			if !strings.Contains(err.Error(), "don't meet the specifications of the schema") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("values %q: want a schema error at %s, got: %v", tt.values, tt.want, err)
			}
		})
	}
}

// TestChartRefusesValuesThatFailAtRunTime: values of the right form that
// the manager or the agents would refuse at start, or run badly with, are
// refused at render time (before `helm install` or `upgrade` changes
// anything), with a sentence naming the value and what is accepted; the
// values around them render.
func TestChartRefusesValuesThatFailAtRunTime(t *testing.T) {
	for _, tt := range []struct {
		sets []string
		want string // "" when accepted
	}{
		{[]string{"agent.heartbeatInterval=0s"}, "agent.heartbeatInterval is 0s: it must be above zero (the default is 10s); " +
			"the agent would not start, saying --heartbeat-interval must be positive"},
		{[]string{"agent.statsInterval=0ms"}, "agent.statsInterval is 0ms: it must be above zero (the default is 30s); " +
			"the agent would not start, saying --stats-interval must be positive"},
		{[]string{"manager.agentStaleAfter=0h0m0.0s"}, "manager.agentStaleAfter is 0h0m0.0s: it must be above zero (the default is 40s); " +
			"the manager would not start, saying --agent-stale-after must be positive"},
		{[]string{"manager.agentStaleAfter=5s"}, "manager.agentStaleAfter is 5s, under twice agent.heartbeatInterval (10s): " +
			"a node's pools would read Unknown between any two renewals of its agent's Lease. Set manager.agentStaleAfter " +
			"to at least 20s, or agent.heartbeatInterval to at most half of it"},
		{[]string{"manager.agentStaleAfter=19.5s"}, "manager.agentStaleAfter is 19.5s, under twice agent.heartbeatInterval (10s): " +
			"a node's pools would read Unknown whenever its agent misses a single renewal of its Lease"},
		{[]string{"agent.heartbeatInterval=1m30s"}, "manager.agentStaleAfter is 40s, under twice agent.heartbeatInterval (1m30s)"},
		{[]string{"agent.heartbeatInterval=500ms", "manager.agentStaleAfter=999ms"}, "under twice agent.heartbeatInterval (500ms)"},
		// Twice this heartbeat is past int64's nanoseconds, and past the
		// longest duration Go reads: only a shorter heartbeat will do.
		{[]string{"agent.heartbeatInterval=2000000h", "manager.agentStaleAfter=2000000h"}, "manager.agentStaleAfter is " +
			"2000000h, under twice agent.heartbeatInterval (2000000h): a node's pools would read Unknown between any two " +
			"renewals of its agent's Lease. Set agent.heartbeatInterval to at most half of manager.agentStaleAfter: " +
			"twice it is past 2562047h47m16.854775807s, the longest duration Go reads (the defaults, 40s and 10s, let " +
			"three renewals be missed)"},
		// Twice the heartbeat is said as a Go duration, from its
		// nanoseconds: 0.00002s, not 2e-05s.
		{[]string{"agent.heartbeatInterval=10us", "manager.agentStaleAfter=15us"}, "manager.agentStaleAfter is 15us, " +
			"under twice agent.heartbeatInterval (10us): a node's pools would read Unknown whenever its agent misses a " +
			"single renewal of its Lease. Set manager.agentStaleAfter to at least 0.00002s, or agent.heartbeatInterval " +
			"to at most half of it (the defaults, 40s and 10s, let three renewals be missed)"},
		// One nanosecond under 2^62: twice it, 2^63-2 ns, Go reads.
		{[]string{"agent.heartbeatInterval=1281023h53m38.427387903s", "manager.agentStaleAfter=2562047h47m16.854775805s"},
			"manager.agentStaleAfter is 2562047h47m16.854775805s, under twice agent.heartbeatInterval " +
				"(1281023h53m38.427387903s): a node's pools would read Unknown whenever its agent misses a single renewal " +
				"of its Lease. Set manager.agentStaleAfter to at least 9223372036.854775806s, or agent.heartbeatInterval " +
				"to at most half of it (the defaults, 40s and 10s, let three renewals be missed)"},
		// A fraction of ns is counted as Go counts it: 0.999999999999999ns is
		// 0, a heartbeat of 1ns, half of 2ns, taken; 0.9999999999999999ns is
		// 1ns, a heartbeat of 2ns, refused.
		{[]string{"agent.heartbeatInterval=1ns0.999999999999999ns", "manager.agentStaleAfter=2ns"}, ""},
		{[]string{"agent.heartbeatInterval=1ns0.9999999999999999ns", "manager.agentStaleAfter=2ns"}, "manager.agentStaleAfter " +
			"is 2ns, under twice agent.heartbeatInterval (1ns0.9999999999999999ns)"},
		// Both said at once.
		{[]string{"agent.heartbeatInterval=0s", "agent.statsInterval=0s"}, "saying --heartbeat-interval must be positive\n" +
			"agent.statsInterval is 0s"},
		// The agent refuses a timeout of 0: there is no "none".
		{[]string{"agent.readHeaderTimeout=0s"}, "agent.readHeaderTimeout is 0s, which the agent refuses at its start (invalid value \"0s\" " +
			"for flag -read-header-timeout: 0s is not above zero: the proxy has no \"none\"; give a duration, 10s by default). " +
			"Set a duration above zero"},
		{[]string{"agent.idleTimeout=0m"}, "agent.idleTimeout is 0m, which the agent refuses at its start"},
		{[]string{"agent.sendTimeout=0ms"}, "agent.sendTimeout is 0ms, which the agent refuses at its start"},
		{[]string{"agent.requestBodyTimeout=0h0s"}, "agent.requestBodyTimeout is 0h0s, which the agent refuses at its start"},
		{[]string{"agent.sendTimeout=1ns", "agent.idleTimeout=24h", "agent.readHeaderTimeout=500ms", "agent.requestBodyTimeout=1h"}, ""},
		{[]string{"manager.agentStaleAfter=20s"}, ""},
		{[]string{"agent.heartbeatInterval=1m30s", "manager.agentStaleAfter=3m"}, ""},
		{[]string{"agent.heartbeatInterval=500ms", "manager.agentStaleAfter=1s"}, ""},
		{[]string{"agent.statsInterval=1ns"}, ""},
		// Go reads microseconds as µs (U+00B5, the micro sign) and μs
		// (U+03BC, the Greek mu): the schema takes both.
		{[]string{"agent.sendTimeout=500μs", "agent.idleTimeout=500µs"}, ""},
		{[]string{"agent.bindAddress="}, ""},
		{[]string{"agent.bindAddress=::"}, ""},
		{[]string{"agent.bindAddress=127.0.0.1"}, ""},
		{[]string{"agent.bindAddress=fd00::10"}, ""},
		{[]string{"agent.image.tag=v1.2.3_rc-1", "manager.image.tag=" + strings.Repeat("a", 128)}, ""},
		// An extra argument may not set a flag the chart sets from a value,
		// past the chart's checks of it, in any of the flag package's forms.
		{[]string{"agent.extraArgs={--heartbeat-interval=0s}"}, "agent.extraArgs has --heartbeat-interval=0s, but the chart " +
			"sets --heartbeat-interval from agent.heartbeatInterval, which an extra argument would override past the chart's " +
			"checks. Set agent.heartbeatInterval instead, and take --heartbeat-interval=0s out of agent.extraArgs"},
		{[]string{"manager.extraArgs={-leader-elect=false}"}, "manager.extraArgs has -leader-elect=false, but the chart sets " +
			"--leader-elect from manager.leaderElect"},
		// A flag that takes a value, without "=", takes the next item:
		// both are named. A bool's takes none.
		{[]string{"agent.extraArgs={--zap-encoder=console,-send-timeout,0s}"}, "agent.extraArgs has -send-timeout 0s (two items), " +
			"but the chart sets --send-timeout from agent.sendTimeout, which an extra argument would override past the chart's " +
			"checks. Set agent.sendTimeout instead, and take -send-timeout and 0s out of agent.extraArgs"},
		{[]string{"agent.extraArgs={--drain-delay,-1s}"}, "agent.extraArgs has --drain-delay -1s (two items)"},
		{[]string{"agent.extraArgs={--send-timeout}"}, "agent.extraArgs has --send-timeout, but the chart"},
		{[]string{"manager.extraArgs={--leader-elect,--zap-encoder=console}"}, "manager.extraArgs has --leader-elect, but the chart " +
			"sets --leader-elect from manager.leaderElect, which an extra argument would override past the chart's checks. " +
			"Set manager.leaderElect instead, and take --leader-elect out of manager.extraArgs"},
		// Only a flag the chart renders with these values is refused.
		{[]string{"agent.extraArgs={--metrics-cert-path=/certs}", "agent.metricsCertSecret=agent-metrics"},
			"sets --metrics-cert-path from agent.metricsCertSecret"},
		{[]string{"manager.extraArgs={--metrics-cert-path,/certs}", "manager.metricsCertSecret=manager-metrics"},
			"manager.extraArgs has --metrics-cert-path /certs (two items), but the chart sets --metrics-cert-path from manager.metricsCertSecret"},
		{[]string{"agent.extraArgs={--worker-users=root}", "agent.workerUsers=www-data"}, "sets --worker-users from agent.workerUsers"},
		{[]string{"agent.extraArgs={--metrics-cert-path=/certs,--worker-users=www-data}", "manager.extraArgs={--metrics-cert-path=/certs}"}, ""},
		{[]string{"agent.extraArgs={--metrics-cert-path=/certs}", "agent.metricsCertSecret=agent-metrics", "agent.metricsSecure=false"}, ""},
		// --metrics-secure is rendered only for metrics that are on: the
		// binaries ignore it for metrics off, and so may an extra argument.
		{[]string{"agent.extraArgs={--metrics-secure=false}"}, "agent.extraArgs has --metrics-secure=false, but the chart " +
			"sets --metrics-secure from agent.metricsSecure"},
		{[]string{"manager.metricsBindAddress=0", "manager.extraArgs={--metrics-secure=false}"}, ""},
		{[]string{"agent.metricsBindAddress=0", "agent.extraArgs={--metrics-secure}"}, ""},
		{[]string{"manager.extraArgs={--zap-log-level=debug}", "agent.extraArgs={--kube-api-qps=1}"},
			"manager.extraArgs has --zap-log-level=debug, but the chart sets --zap-log-level from manager.logLevel, " +
				"which an extra argument would override past the chart's checks. Set manager.logLevel instead, and take " +
				"--zap-log-level=debug out of manager.extraArgs\nagent.extraArgs has --kube-api-qps=1"},
		// The agent's node is its pod's: every agent would claim one node.
		{[]string{"agent.extraArgs={--node-name=node-1}"}, "agent.extraArgs has --node-name=node-1, but the chart sets " +
			"--node-name itself, to each pod's node ($(NODE_NAME)): an agent serves the pools of the node it names, " +
			"renews that node's Lease, and the isolation policies refuse its writes for any node but its own. " +
			"Take --node-name=node-1 out of agent.extraArgs"},
		{[]string{"agent.extraArgs={-node-name,node-1}"}, "agent.extraArgs has -node-name node-1 (two items), but the chart sets " +
			"--node-name itself"},
		// The manager watches the agents' Leases in its --agent-lease-namespace,
		// the agents renew them in their --lease-namespace: either may move,
		// both to one namespace; one not given is the release's.
		{[]string{"manager.extraArgs={--agent-lease-namespace=ferry-leases}"}, "manager.extraArgs has " +
			"--agent-lease-namespace=ferry-leases, but agent.extraArgs has no --lease-namespace: the agents would renew " +
			"their Leases in the release's namespace (ferry-system), and the manager, watching them in ferry-leases, would " +
			"see no renewal and read every node Unknown. Set --agent-lease-namespace in manager.extraArgs and " +
			"--lease-namespace in agent.extraArgs to one namespace, or neither (the release's). The chart's Roles grant " +
			"the Leases in the release's namespace only: in another, a Role and RoleBinding there are yours to make " +
			"(as the chart's ferry-manager-leader-election and ferry-agent-lease)"},
		{[]string{"agent.extraArgs={--zap-encoder=console,--lease-namespace,ferry-leases}"}, "agent.extraArgs has " +
			"--lease-namespace ferry-leases (two items), but manager.extraArgs has no --agent-lease-namespace: the agents " +
			"would renew their Leases in ferry-leases, and the manager, watching them in the release's namespace " +
			"(ferry-system), would see no renewal and read every node Unknown. Set --agent-lease-namespace"},
		{[]string{"manager.extraArgs={--agent-lease-namespace=ferry-leases}", "agent.extraArgs={-lease-namespace=leases}"},
			"manager.extraArgs has --agent-lease-namespace=ferry-leases, but agent.extraArgs has -lease-namespace=leases: " +
				"the agents would renew their Leases in leases, and the manager, watching them in ferry-leases, would see " +
				"no renewal"},
		// The flag package takes the last of a flag given twice.
		{[]string{"manager.extraArgs={--agent-lease-namespace=ferry-leases,--agent-lease-namespace,leases}",
			"agent.extraArgs={--lease-namespace=ferry-leases}"}, "manager.extraArgs has --agent-lease-namespace leases " +
			"(two items), but agent.extraArgs has --lease-namespace=ferry-leases"},
		{[]string{"manager.extraArgs={--agent-lease-namespace=ferry-leases}", "agent.extraArgs={--lease-namespace=ferry-leases}"}, ""},
		// An empty namespace does not mean the release's: the agents fall
		// back on their built-in default, the manager watches none. Both
		// empty agree, and are refused all the same.
		{[]string{"manager.extraArgs={--agent-lease-namespace=}", "agent.extraArgs={--lease-namespace=}"},
			"manager.extraArgs has --agent-lease-namespace=, an empty namespace: the manager would watch no agent's " +
				"Lease, and judge each node by its pools' status writes alone. Name a namespace (one for " +
				"manager.extraArgs' --agent-lease-namespace and agent.extraArgs' --lease-namespace), or take " +
				"--agent-lease-namespace= out of manager.extraArgs (which leaves it at the release's namespace)\n" +
				"agent.extraArgs has --lease-namespace=, an empty namespace: the agents would rely on their built-in " +
				"default, ferry-system, and renew their Leases there whatever the release's namespace. Name a namespace"},
		// In ferry-system too: the release's namespace by chance, not by
		// the chart, and the message says nothing false there.
		{[]string{"agent.extraArgs={--lease-namespace=}"}, "agent.extraArgs has --lease-namespace=, an empty namespace: " +
			"the agents would rely on their built-in default, ferry-system, and renew their Leases there whatever the " +
			"release's namespace"},
		{[]string{"manager.extraArgs={--zap-encoder=console,-agent-lease-namespace}"}, "manager.extraArgs has " +
			"-agent-lease-namespace, its last item, with no namespace after it: the manager would not start (flag needs " +
			"an argument). Name a namespace, the one of agent.extraArgs' --lease-namespace, as " +
			"--agent-lease-namespace=NAMESPACE, or take -agent-lease-namespace out of manager.extraArgs (which leaves it " +
			"at the release's namespace)"},
		{[]string{"agent.extraArgs={--lease-namespace}"}, "agent.extraArgs has --lease-namespace, its last item, with no " +
			"namespace after it: the agents would not start (flag needs an argument). Name a namespace, the one of " +
			"manager.extraArgs' --agent-lease-namespace, as --lease-namespace=NAMESPACE, or take --lease-namespace out " +
			"of agent.extraArgs (which leaves it at the release's namespace)"},
		{[]string{"manager.extraArgs={--agent-lease-namespace,ferry-leases}", "agent.extraArgs={-lease-namespace,ferry-leases}"}, ""},
		{[]string{"manager.extraArgs={-agent-lease-namespace,ferry-leases}", "agent.extraArgs={--lease-namespace=ferry-leases}"}, ""},
		// Naming the release's namespace moves nothing.
		{[]string{"manager.extraArgs={--agent-lease-namespace=ferry-system}"}, ""},
		{[]string{"agent.extraArgs={--lease-namespace=$(POD_NAMESPACE)}"}, ""},
		// Only kubectl ferry status reads where the leader's Lease is.
		{[]string{"manager.extraArgs={--leader-election-namespace=kube-system}"}, ""},
		{[]string{"manager.extraArgs={-leader-election-namespace,ferry-leases}", "manager.leaderElect=true"}, ""},
		// Flags the chart does not set stay free.
		{[]string{"manager.extraArgs={--zap-encoder=console,--pprof-bind-address=127.0.0.1:6060,--kubeconfig=/k}",
			"agent.extraArgs={--zap-encoder=console,--request-buffer-dir=/tmp,--}"}, ""},
		// Advertise addresses no Service can list.
		{[]string{"agent.advertiseAddress=fd00::1"}, "agent.advertiseAddress is fd00::1, an IPv6 address: the manager lists " +
			"only IPv4 addresses in the Services' EndpointSlices, so no AppGroup's Service would reach the nodes. " +
			"Set an IPv4 address of the node's, or $(HOST_IP), the default (the node's IP)"},
		{[]string{"agent.advertiseAddress=0.0.0.0"}, "agent.advertiseAddress is 0.0.0.0, the unspecified address, " +
			"which the API server refuses in an EndpointSlice"},
		{[]string{"agent.advertiseAddress=127.0.0.2"}, "agent.advertiseAddress is 127.0.0.2, a loopback address"},
		{[]string{"agent.advertiseAddress=169.254.3.4"}, "agent.advertiseAddress is 169.254.3.4, a link-local address"},
		{[]string{"agent.advertiseAddress=10.1.2.3"}, ""},
		{[]string{"agent.advertiseAddress=$(HOST_IP)"}, ""},
		{[]string{"agent.image.repository=localhost:5000/ferry__agent/x.y-z", "manager.image.repository=registry.example.com:443/a--b/c_d"}, ""},
		{[]string{"agent.image.repository=[fd00::1]:5000/agent", "manager.image.repository=ferry-manager"}, ""},
	} {
		_, err := templateRaw(testContext(t), renderOpts{sets: tt.sets})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("--set %q refused: %v", tt.sets, err)
		case tt.want != "" && err == nil:
			t.Errorf("--set %q accepted; want refused with %q", tt.sets, tt.want)
		case tt.want != "" && !strings.Contains(err.Error(), tt.want):
			t.Errorf("--set %q: want %q, got: %v", tt.sets, tt.want, err)
		}
	}
}

// TestChartRefusesABooleanApartFromItsFlag: an extra argument of its own
// after a boolean flag of the binary's written without "=" is refused: a
// boolean flag takes no separate value, so the flag package sets the flag
// true and leaves the word as an argument, which both binaries refuse at
// their start. A flag the chart renders, so given, is refused naming both
// items. A value written with "=", or after a flag that takes one (true or
// false too), is not.
func TestChartRefusesABooleanApartFromItsFlag(t *testing.T) {
	for _, tt := range []struct {
		values, want string // want "" when accepted
	}{
		// With the metrics off the chart renders no --metrics-secure, so
		// an extra one is let through; its separate value is not.
		{"agent: {metricsBindAddress: 0, extraArgs: [--metrics-secure, \"false\"]}",
			"agent.extraArgs has --metrics-secure false (two items): the agents would not start, a boolean flag " +
				"taking no separate value (--metrics-secure false sets it true, and leaves false an argument, which the " +
				"binary refuses). Write --metrics-secure=false, one item, or take --metrics-secure and false out of " +
				"agent.extraArgs"},
		{"manager: {extraArgs: [--zap-encoder=console, -zap-devel, \"True\"]}",
			"manager.extraArgs has -zap-devel True (two items): the manager would not start"},
		{"agent: {extraArgs: [--trust-forwarded-for, \"false\"]}", "agent.extraArgs has --trust-forwarded-for false " +
			"(two items), but the chart sets --trust-forwarded-for from agent.trustForwardedFor, which an extra argument " +
			"would override past the chart's checks. Set agent.trustForwardedFor instead, and take --trust-forwarded-for " +
			"and false out of agent.extraArgs"},
		// Any of strconv.ParseBool's words, which --flag=word would take.
		{"manager: {extraArgs: [--zap-devel, \"0\"]}", "manager.extraArgs has --zap-devel 0 (two items): the manager " +
			"would not start, a boolean flag taking no separate value (--zap-devel 0 sets it true, and leaves 0 an " +
			"argument, which the binary refuses). Write --zap-devel=0, one item"},
		{"agent: {extraArgs: [-zap-devel, t]}", "agent.extraArgs has -zap-devel t (two items): the agents would not start"},
		{"agent: {extraArgs: [--zap-devel, F]}", "agent.extraArgs has --zap-devel F (two items): the agents would not start"},
		{"manager: {extraArgs: [--zap-devel, \"1\", --zap-encoder=console]}", "manager.extraArgs has --zap-devel 1 (two items)"},
		// A word no boolean flag takes is left an argument all the same.
		{"manager: {extraArgs: [--zap-devel, \"yes\"]}", "manager.extraArgs has --zap-devel yes (two items): the manager " +
			"would not start, a boolean flag taking no value after it (--zap-devel sets it true, and leaves yes an " +
			"argument, which the binary refuses). Write --zap-devel for true or --zap-devel=false, one item, or take " +
			"--zap-devel and yes out of manager.extraArgs"},
		{"agent: {extraArgs: [--zap-devel, \"\"]}", "agent.extraArgs has --zap-devel \"\" (two items): the agents would not start"},
		{"agent: {metricsBindAddress: 0, extraArgs: [--metrics-secure=false, --zap-devel]}", ""},
		{"manager: {extraArgs: [--zap-encoder, console, --zap-devel]}", ""},
		// A flag that takes a value takes true or false for it: a
		// namespace, a directory, may be named so.
		{"manager: {extraArgs: [--leader-election-namespace, \"false\"]}", ""},
		{"agent: {extraArgs: [--request-buffer-dir, \"true\", --zap-devel, --zap-encoder, \"console\"]}", ""},
	} {
		assertRendered(t, tt.values, tt.want, "")
	}
}

// TestChartRefusesArgumentsOfTheirOwn: extraArgs are walked as the flag
// package parses them, and an item no flag takes is refused, as both
// binaries refuse such an argument at their start: a word where a flag
// belongs (after a flag given its value with "=", or after one that used up
// the item after it), and every item after "--", where the flags end. A
// flag that takes a value uses up the next item, whatever it reads. The
// agent reads past an argument, and names them all; the manager stops at
// its first (TestChartRefusesWhatTheBinariesRefuse).
func TestChartRefusesArgumentsOfTheirOwn(t *testing.T) {
	for _, tt := range []struct {
		values, want string // want "" when accepted
	}{
		{"manager: {extraArgs: [stray]}", "manager.extraArgs has stray, an argument of its own: the manager would " +
			"not start, taking flags alone (--name=value; a boolean flag is --name or --name=false). Give a flag's " +
			"value with \"=\" (--name=VALUE, one item), or take stray out of manager.extraArgs"},
		{"manager: {extraArgs: [--zap-encoder, console, stray]}", "manager.extraArgs has stray, an argument of its own"},
		{"agent: {extraArgs: [--zap-encoder=console, a, \"\", \"-\", --zap-devel]}", "agent.extraArgs has a, \"\" " +
			"and -, arguments of their own: the agents would not start"},
		{"agent: {extraArgs: [\"--\", --zap-devel]}", "agent.extraArgs has --zap-devel after --, an argument of its " +
			"own (the flag package reads no flag after --): the agents would not start. Take -- out of agent.extraArgs, " +
			"so that what follows it is read as flags, or take --zap-devel out"},
		{"agent: {extraArgs: [--zap-devel, \"--\", a, --zap-encoder=json]}", "agent.extraArgs has a and " +
			"--zap-encoder=json after --, arguments of their own"},
		// A flag that takes a value uses up the next item, "--" too.
		{"manager: {extraArgs: [--zap-encoder, console, \"--\"]}", ""},
		{"agent: {extraArgs: [--request-buffer-dir, \"--\", --zap-devel]}", ""},
		{"manager: {extraArgs: [--leader-election-namespace, stray, --zap-devel]}", ""},
	} {
		assertRendered(t, tt.values, tt.want, "")
	}
}

// TestChartRefusesALogLevelTheBinariesRefuse: --zap-log-level takes what
// controller-runtime's levelFlag takes: debug, info, error or panic in any
// case (strings.ToLower's: İ, U+0130, is an i), or what strconv.Atoi reads
// as an integer above 0 (a sign, leading zeros), held by zap as an int8.
// The binaries exit 2 at their start at anything else: 0, which the schema
// once let through, among it. The schema, and the chart's own checks under
// --skip-schema-validation, take what the binaries take, up to 127 (logr's
// V levels stop there; from 129 zap's int8 wraps around): every row runs
// both binaries with the value the chart renders, which must be refused by
// the chart where the binaries refuse it, and get them past their flags
// where the chart takes it. A number is judged as the chart renders it
// (1e6 as 1000000); one with a fraction, which that would cut down, is
// refused saying so. Where the chart takes a row, the binaries are given
// the --zap-log-level of its manifest.
func TestChartRefusesALogLevelTheBinariesRefuse(t *testing.T) {
	bin := ferryBinaries(t)
	binaries := map[string][]string{
		"the manager": {filepath.Join(bin, "ferry-manager")},
		"the agent":   {filepath.Join(bin, "ferry-agent"), "cluster"},
	}
	for _, tt := range []struct {
		values string
		arg    string // --zap-log-level's value, as the chart would render it; "": the manifest's
		taken  bool   // by the binaries
		schema string // the schema's refusal, "" when accepted
		own    string // the chart's own, without the schema
	}{
		{"manager: {logLevel: 0}", "0", false, "/manager/logLevel", "manager.logLevel is 0, which the manager refuses " +
			"at its start (invalid log level \"0\"): set debug, info, error or panic (in any case), or an integer from 1 " +
			"to 127 (higher is more verbose); the schema, skipped here, refuses it"},
		{"agent: {logLevel: \"0\"}", "0", false, "/agent/logLevel", "agent.logLevel is 0, which the agents refuse at their start"},
		{"agent: {logLevel: \"+0\"}", "+0", false, "/agent/logLevel", "agent.logLevel is +0, which the agents refuse at their start"},
		{"agent: {logLevel: -3}", "-3", false, "/agent/logLevel", "agent.logLevel is -3, which the agents refuse at their start"},
		{"agent: {logLevel: verbose}", "verbose", false, "/agent/logLevel", "agent.logLevel is verbose, which the agents refuse"},
		{"manager: {logLevel: \"ınfo\"}", "ınfo", false, "/manager/logLevel", "manager.logLevel is ınfo, which the manager refuses"},
		{"manager: {logLevel: \" info\"}", " info", false, "/manager/logLevel", "manager.logLevel is  info, which the manager refuses"},
		{"agent: {logLevel: \"1_0\"}", "1_0", false, "/agent/logLevel", "agent.logLevel is 1_0, which the agents refuse"},
		// Taken by the binaries, past what logr and zap's int8 hold.
		{"manager: {logLevel: 128}", "128", true, "/manager/logLevel", "manager.logLevel is 128, over 127"},
		{"manager: {logLevel: \"200\"}", "200", true, "/manager/logLevel", "manager.logLevel is 200, over 127"},
		{"agent: {logLevel: \"+0128\"}", "+0128", true, "/agent/logLevel", "agent.logLevel is +0128, over 127"},
		// A number as the chart renders it, a whole one.
		{"agent: {logLevel: 1e6}", "1000000", true, "/agent/logLevel", "agent.logLevel is 1e+06 (rendered as 1000000), over 127"},
		// A fraction the chart would cut down.
		{"manager: {logLevel: 5.5}", "5", true, "/manager/logLevel", "manager.logLevel is 5.5, not a whole number: the " +
			"chart would cut it down, rendering --zap-log-level=5; set debug, info, error or panic (in any case), or an " +
			"integer from 1 to 127"},
		{"agent: {logLevel: 0.5}", "0", false, "/agent/logLevel", "agent.logLevel is 0.5, not a whole number: the " +
			"chart would cut it down, rendering --zap-log-level=0"},
		{"manager: {logLevel: 1}", "", true, "", ""},
		{"agent: {logLevel: \"127\"}", "", true, "", ""},
		{"manager: {logLevel: debug}", "", true, "", ""},
		{"agent: {logLevel: panic}", "", true, "", ""},
		{"manager: {logLevel: DEBUG}", "", true, "", ""},
		{"agent: {logLevel: Info}", "", true, "", ""},
		{"manager: {logLevel: eRRoR}", "", true, "", ""},
		{"agent: {logLevel: PANİC}", "", true, "", ""},
		{"manager: {logLevel: \"+5\"}", "", true, "", ""},
		{"agent: {logLevel: \"007\"}", "", true, "", ""},
		{"manager: {logLevel: \"0127\"}", "", true, "", ""},
	} {
		if !tt.taken && (tt.schema == "" || tt.own == "") {
			t.Errorf("%s: a row the binaries refuse must be refused by the chart", tt.values)
		}
		assertRendered(t, tt.values, tt.schema, "")
		assertRenderedWithoutSchema(t, tt.values, tt.own)
		arg := tt.arg
		if tt.schema == "" {
			arg = renderedLogLevel(t, tt.values)
		}
		for who, cmd := range binaries {
			exit, out := runBinary(t, cmd, "--zap-log-level="+arg)
			// Past its flags, each fails for want of a cluster or a node
			// name, exiting 1 (the manager's error unseen at panic).
			refusal := "invalid log level \"" + arg + "\""
			refused := exit == 2 && strings.Contains(out, refusal)
			past := exit == 1 && !strings.Contains(out, "invalid log level")
			switch {
			case tt.taken && !past:
				t.Errorf("%s, given --zap-log-level=%s: exit %d, saying: %s\nwant it past its flags (exit 1)", who, arg, exit, out)
			case !tt.taken && !refused:
				t.Errorf("%s, given --zap-log-level=%s: exit %d, saying: %s\nwant exit 2, saying %s", who, arg, exit, out, refusal)
			}
		}
	}
}

// renderedLogLevel renders the chart with values (YAML), which set one
// component's logLevel, and returns the value of that component's
// --zap-log-level in the manifest.
func renderedLogLevel(t *testing.T, values string) string {
	t.Helper()
	component := "agent"
	if strings.HasPrefix(values, "manager:") {
		component = "manager"
	}
	return renderedFlag(t, renderOpts{}, values, component, "zap-log-level")
}

// renderedFlag renders the chart with o's options and values (YAML), and
// returns the value of the component's --flag in the manifest.
func renderedFlag(t *testing.T, o renderOpts, values, component, flag string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	o.valuesFiles = []string{f}
	objs := render(t, o)
	obj := find(t, objs, "DaemonSet", "agent")
	if component == "manager" {
		obj = find(t, objs, "Deployment", "manager")
	}
	for _, a := range args(t, obj) {
		if v, ok := strings.CutPrefix(a, "--"+flag+"="); ok {
			return v
		}
	}
	t.Fatalf("values %q: no --%s in %s's args %q", values, flag, obj.GetName(), args(t, obj))
	return ""
}

// TestChartStopsAtAVariableItExpands: an extraArgs item whose flag or
// argument holds $(NAME), NAME one of the container's variables (the
// chart's env, extraEnv), is expanded by the kubelet to what the chart
// cannot know: the walk stops there, refusing nothing of it or after it.
// A $(NAME) the container does not set stays as written, and is judged so.
func TestChartStopsAtAVariableItExpands(t *testing.T) {
	for _, tt := range []struct {
		values, want string // want "" when accepted
	}{
		{"manager: {extraEnv: [{name: FLAGS, value: --zap-devel}], extraArgs: [\"$(FLAGS)\"]}", ""},
		{"agent: {extraEnv: [{name: FLAGS, value: --zap-devel}], extraArgs: [--zap-devel, \"$(FLAGS)\", stray]}", ""},
		{"agent: {extraArgs: [\"$(NODE_NAME)\"]}", ""},
		// A variable in a value is the value's: the flag is still judged.
		{"manager: {extraEnv: [{name: ENC, value: console}], extraArgs: [\"--zap-encoder=$(ENC)\"]}", ""},
		{"manager: {extraEnv: [{name: ENC, value: console}], extraArgs: [\"--zap-encoder=$(ENC)\", --no-such-flag]}",
			"manager.extraArgs has --no-such-flag, a flag the manager does not define"},
		{"manager: {extraArgs: [\"$(UNSET)\"]}", "manager.extraArgs has $(UNSET), an argument of its own"},
		{"manager: {extraArgs: [\"$(NODE_NAME)\"]}", "manager.extraArgs has $(NODE_NAME), an argument of its own"},
		{"agent: {extraEnv: [{name: FLAGS, value: x}], extraArgs: [\"$$(FLAGS)\"]}", "agent.extraArgs has $$(FLAGS), an argument of its own"},
	} {
		assertRendered(t, tt.values, tt.want, "")
	}
}

// TestChartComparesLeaseNamespacesReadToTheEnd: the Lease namespaces are
// compared only when both walks read every item: a walk stopped early
// (at the manager's first argument, at a flag the binary refuses) leaves
// the items after it unread, a Lease namespace among them, and the
// comparison would name it missing.
func TestChartComparesLeaseNamespacesReadToTheEnd(t *testing.T) {
	for _, tt := range []struct {
		values, want, absent string
	}{
		{"manager: {extraArgs: [stray, --agent-lease-namespace=leases]}\nagent: {extraArgs: [--lease-namespace=leases]}",
			"manager.extraArgs has stray, an argument of its own", "has no --agent-lease-namespace"},
		{"manager: {extraArgs: [--agent-lease-namespace=leases]}\nagent: {extraArgs: [--no-such-flag, --lease-namespace=leases]}",
			"agent.extraArgs has --no-such-flag, a flag the agents do not define", "has no --lease-namespace"},
		// The agent reads on past a stray word (its walk too), so its
		// namespace after one is compared.
		{"manager: {extraArgs: [--agent-lease-namespace=leases]}\nagent: {extraArgs: [stray, --lease-namespace=other]}",
			"the agents would renew their Leases in other, and the manager, watching them in leases", "has no --"},
		// Read to the end, they are compared.
		{"manager: {extraArgs: [--agent-lease-namespace=leases, stray]}",
			"manager.extraArgs has --agent-lease-namespace=leases, but agent.extraArgs has no --lease-namespace", ""},
	} {
		assertRendered(t, tt.values, tt.want, tt.absent)
	}
}

// TestChartRefusesWhatTheBinariesRefuse: extraArgs items at which a
// binary fails at its start, in the flag package or right after it, are
// refused, quoting what the binary says: a flag's bad syntax (---x, --=x,
// -=x), a flag the binary does not define (-1 after a boolean flag, which
// takes no value after it, too), a flag that takes a value as the last
// item, and -h, -help or --help, with which the binary prints its usage and
// exits 0, at every start. The binary stops reading at any of these, and
// the manager at its first argument (an item no flag takes, or the first
// after "--"): the chart stops there too, saying so, and says nothing of
// the items after it. The agent reads flags past an argument, and names
// every argument. Each row is run by the built binary too, which must say
// what the chart quotes and exit as the chart says; where the chart quotes
// the binary, its refusal holds what the binary says. What the chart
// accepts gets the binaries past their flags and their checks of them:
// they fail after them, for want of a cluster (KUBECONFIG names no file).
// The agent is given --node-name, as the chart renders it, so that its
// check of its flags runs, refusing a negative --simulate-workers.
func TestChartRefusesWhatTheBinariesRefuse(t *testing.T) {
	bin := ferryBinaries(t)
	cmds := map[string][]string{
		"manager": {filepath.Join(bin, "ferry-manager")},
		"agent":   {filepath.Join(bin, "ferry-agent"), "cluster", "--node-name=n"},
	}
	syntax := func(c, who, item, after string) string {
		return c + ".extraArgs has " + item + ", which the flag package refuses (bad flag syntax: " + item + "): " +
			who + " would not start. A flag is -name or --name, with =VALUE or not, its name beginning with neither " +
			"\"-\" nor \"=\": take " + item + " out of " + c + ".extraArgs" + after
	}
	usage := "which asks the flag package for the usage (-h, -help and --help do, with any value): "
	durationRefused := func(given, value string) string {
		return "agent.extraArgs has " + given + ", a value the flag refuses: the agents would not start (invalid value \"" +
			value + "\" for flag -simulate-workers: parse error)"
	}
	// A negative value Go may read at most 2^63 ns below zero, or past
	// that, not at all.
	nearLowest := func(given, value string) string {
		return "agent.extraArgs has " + given + ", which has digits past the nanosecond, which Go may round either way: " +
			"write it to the nanosecond. Read at most 2562047h47m16.854775808s below zero, the lowest duration Go reads, it " +
			"is negative: the agents would not start (" + negativeRefused + "); read past that, Go does not read it, and the agents " +
			"would not start (invalid value \"" + value + "\" for flag -simulate-workers: parse error). --simulate-workers " +
			"takes " + durationTaken + ": write one, or take " + given + " out of agent.extraArgs"
	}
	for _, tt := range []struct {
		component string
		args      []string
		says      string // what the binary says
		exit      int    // and its exit status
		want      string // the chart's refusal, "" when accepted
		absent    string // not said
	}{
		{"manager", []string{"---x"}, "bad flag syntax: ---x", 2, syntax("manager", "the manager", "---x", ""), ""},
		{"agent", []string{"--=x"}, "bad flag syntax: --=x", 2, syntax("agent", "the agents", "--=x", ""), ""},
		{"agent", []string{"--zap-devel", "-=x", "--no-such-flag"}, "bad flag syntax: -=x", 2, syntax("agent", "the agents",
			"-=x", ". The agents read no item after -=x, nor does this check: the item after it is unchecked"), "--no-such-flag"},
		{"manager", []string{"-h"}, "Usage of ", 0, "manager.extraArgs has -h, " + usage + "the manager would print " +
			"its usage and exit 0 at every start, the kubelet restarting it, a crash loop. Take -h out of " +
			"manager.extraArgs (ferry-manager -h lists the flags)", ""},
		{"agent", []string{"--zap-encoder=console", "-help"}, "Usage of ferry-agent", 0, "agent.extraArgs has -help, " +
			usage + "the agents would print their usage and exit 0 at every start, the kubelet restarting them, a " +
			"crash loop. Take -help out of agent.extraArgs (ferry-agent cluster -h lists the flags)", ""},
		{"manager", []string{"--help=false"}, "Usage of ", 0, "manager.extraArgs has --help=false, " + usage, ""},
		{"manager", []string{"--zap-encoder=console", "--no-such-flag", "x"}, "flag provided but not defined: -no-such-flag", 2,
			"manager.extraArgs has --no-such-flag, a flag the manager does not define: the manager would not start (flag " +
				"provided but not defined: -no-such-flag). Take --no-such-flag out of manager.extraArgs, or name a flag ferry-manager -h " +
				"lists; a flag newer than this chart needs the chart of that version. The manager reads no item after " +
				"--no-such-flag, nor does this check: the item after it is unchecked",
			"has x"},
		{"agent", []string{"--node=node-1"}, "flag provided but not defined: -node", 2, "agent.extraArgs has " +
			"--node=node-1, a flag the agents do not define: the agents would not start (flag provided but not " +
			"defined: -node). Take --node=node-1 out of agent.extraArgs, or name a flag ferry-agent cluster -h lists; a " +
			"flag newer than this chart needs the chart of that version", ""},
		// A boolean takes no value after it: a word beginning with "-" is
		// the next flag.
		{"agent", []string{"--zap-devel", "-1"}, "flag provided but not defined: -1", 2, "agent.extraArgs has -1, a " +
			"flag the agents do not define, read as a flag of its own: --zap-devel before it is a boolean flag, which " +
			"takes no value after it (a boolean's value is given with \"=\", as --zap-devel=false): the agents would " +
			"not start (flag provided but not defined: -1)", ""},
		{"manager", []string{"-zap-devel", "-0"}, "flag provided but not defined: -0", 2, "manager.extraArgs has -0, a " +
			"flag the manager does not define, read as a flag of its own: -zap-devel before it is a boolean flag, which " +
			"takes no value after it (a boolean's value is given with \"=\", as -zap-devel=false): the manager would " +
			"not start (flag provided but not defined: -0)", ""},
		// A value the flag refuses: a boolean's not one of
		// strconv.ParseBool's words, the zap flags' not one of their words.
		{"manager", []string{"--zap-devel=yes", "--no-such-flag"}, `invalid boolean value "yes" for -zap-devel: parse error`, 2,
			"manager.extraArgs has --zap-devel=yes, a value the flag refuses: the manager would not start (invalid " +
				"boolean value \"yes\" for -zap-devel: parse error). --zap-devel takes 1, t, T, TRUE, true, True, 0, " +
				"f, F, FALSE, false or False: write one, or take --zap-devel=yes out of manager.extraArgs. The manager " +
				"reads no item after --zap-devel=yes, nor does this check: the item after it is unchecked", "--no-such-flag"},
		{"agent", []string{"--zap-encoder", "xml"}, `invalid value "xml" for flag -zap-encoder: invalid encoder value "xml"`, 2,
			"agent.extraArgs has --zap-encoder xml (two items), a value the flag refuses: the agents would not start " +
				"(invalid value \"xml\" for flag -zap-encoder: invalid encoder value \"xml\"). --zap-encoder takes " +
				"json or console (in any case)", ""},
		{"manager", []string{"--zap-stacktrace-level=debug"}, `invalid value "debug" for flag -zap-stacktrace-level: invalid stacktrace level "debug"`, 2, "manager.extraArgs " +
			"has --zap-stacktrace-level=debug, a value the flag refuses: the manager would not start (invalid value " +
			"\"debug\" for flag -zap-stacktrace-level: invalid stacktrace level \"debug\"). --zap-stacktrace-level " +
			"takes info, error or panic (in any case)", ""},
		{"agent", []string{"-zap-time-encoding=unix"}, `invalid value "unix" for flag -zap-time-encoding: invalid time-encoding value "unix"`, 2, "agent.extraArgs has " +
			"-zap-time-encoding=unix, a value the flag refuses: the agents would not start (invalid value \"unix\" " +
			"for flag -zap-time-encoding: invalid time-encoding value \"unix\"). --zap-time-encoding takes epoch, " +
			"millis, nanos, iso8601, rfc3339 or rfc3339nano (in any case)", ""},
		// The flag package quotes the value with Go's %q (" and \
		// escaped); a zap flag's Set quotes it as written.
		{"agent", []string{`--zap-encoder=x"y`}, `invalid value "x\"y" for flag -zap-encoder: invalid encoder value "x"y"`, 2,
			`agent.extraArgs has --zap-encoder=x"y, a value the flag refuses: the agents would not start (invalid value ` +
				`"x\"y" for flag -zap-encoder: invalid encoder value "x"y")`, ""},
		{"manager", []string{`--zap-devel=y\es`}, `invalid boolean value "y\\es" for -zap-devel: parse error`, 2,
			`manager.extraArgs has --zap-devel=y\es, a value the flag refuses: the manager would not start (invalid ` +
				`boolean value "y\\es" for -zap-devel: parse error)`, ""},
		{"agent", []string{"--simulate-workers", `1"s`}, `invalid value "1\"s" for flag -simulate-workers: parse error`, 2,
			durationRefused(`--simulate-workers 1"s (two items)`, `1\"s`), ""},
		// A duration flag's value is time.ParseDuration's, or the flag
		// package says "parse error": a word, a number without its unit, a
		// unit Go has not, nothing, 292 years or more.
		{"agent", []string{"--simulate-workers=abc", "--no-such-flag"}, `invalid value "abc" for flag -simulate-workers: parse error`, 2,
			"agent.extraArgs has --simulate-workers=abc, a value the flag refuses: the agents would not start (invalid " +
				"value \"abc\" for flag -simulate-workers: parse error). --simulate-workers takes " + durationTaken +
				": write one, or take --simulate-workers=abc out of agent.extraArgs. The agents read no item after " +
				"--simulate-workers=abc, nor does this check: the item after it is unchecked", "--no-such-flag"},
		{"agent", []string{"--simulate-workers", "10"}, `invalid value "10" for flag -simulate-workers: parse error`, 2,
			"agent.extraArgs has --simulate-workers 10 (two items), a value the flag refuses: the agents would not start " +
				"(invalid value \"10\" for flag -simulate-workers: parse error)", ""},
		{"agent", []string{"-simulate-workers=1d"}, `invalid value "1d" for flag -simulate-workers: parse error`, 2,
			durationRefused("-simulate-workers=1d", "1d"), ""},
		{"agent", []string{"--simulate-workers=3000000h"}, `invalid value "3000000h" for flag -simulate-workers: parse error`, 2,
			durationRefused("--simulate-workers=3000000h", "3000000h"), ""},
		{"agent", []string{"--simulate-workers=2562048h"}, `invalid value "2562048h" for flag -simulate-workers: parse error`, 2,
			durationRefused("--simulate-workers=2562048h", "2562048h"), ""},
		{"agent", []string{"--simulate-workers="}, `invalid value "" for flag -simulate-workers: parse error`, 2,
			durationRefused("--simulate-workers=", ""), ""},
		{"agent", []string{"--simulate-workers", "."}, `invalid value "." for flag -simulate-workers: parse error`, 2,
			durationRefused("--simulate-workers . (two items)", "."), ""},
		{"agent", []string{"--simulate-workers=1.5"}, `invalid value "1.5" for flag -simulate-workers: parse error`, 2,
			durationRefused("--simulate-workers=1.5", "1.5"), ""},
		// One time.ParseDuration reads, but negative, which the agent's
		// check refuses past its flags, exiting 1: given apart, too.
		{"agent", []string{"--simulate-workers=-1s"}, negativeRefused, 1, "agent.extraArgs has " +
			"--simulate-workers=-1s, a negative duration: the agents would not start (" + negativeRefused + "). " +
			"--simulate-workers takes " + durationTaken + ": write one, or take --simulate-workers=-1s out of agent.extraArgs", ""},
		{"agent", []string{"--simulate-workers", "-2562047h47m16.854775808s"}, negativeRefused, 1, "agent.extraArgs has " +
			"--simulate-workers -2562047h47m16.854775808s (two items), a negative duration: the agents would not start (" +
			negativeRefused + ")", ""},
		// Past -2^63 ns by the chart's count, by no more than its one part
		// past the nanosecond: Go may read it as -2^63 ns, negative (the
		// first, its last part 0), or past it, not at all (the
		// second, 1.5ns cut to 1): the chart cannot tell which, and says
		// both. Either way it reads on, as the binary does where it reads
		// it (the third).
		{"agent", []string{"--simulate-workers=-2562047h47m16.854775808s0.00000000100000000000s"}, negativeRefused, 1,
			nearLowest("--simulate-workers=-2562047h47m16.854775808s0.00000000100000000000s",
				"-2562047h47m16.854775808s0.00000000100000000000s"), ""},
		{"agent", []string{"--simulate-workers=-2562047h47m16.854775808s0.0000000015s", "--no-such-flag"},
			`invalid value "-2562047h47m16.854775808s0.0000000015s" for flag -simulate-workers: parse error`, 2,
			nearLowest("--simulate-workers=-2562047h47m16.854775808s0.0000000015s", "-2562047h47m16.854775808s0.0000000015s"),
			""},
		// Read as -2^63 ns, the binary reads on, and stops at the flag
		// after it; the chart reads on too, refusing both.
		{"agent", []string{"--simulate-workers=-2562047h47m16.854775808s0.00000000100000000000s", "--no-such-flag"},
			"flag provided but not defined: -no-such-flag", 2,
			nearLowest("--simulate-workers=-2562047h47m16.854775808s0.00000000100000000000s",
				"-2562047h47m16.854775808s0.00000000100000000000s") + "\nagent.extraArgs has --no-such-flag, a flag " +
				"the agents do not define: the agents would not start (flag provided but not defined: -no-such-flag)", ""},
		// Read past it: the flag package stops at the flag after it.
		{"agent", []string{"--simulate-workers=-1s", "--no-such-flag"}, "flag provided but not defined: -no-such-flag", 2,
			"agent.extraArgs has --no-such-flag, a flag the agents do not define: the agents would not start (flag " +
				"provided but not defined: -no-such-flag)", ""},
		// Only an item that looks like a value is said to be read so.
		{"agent", []string{"--zap-devel", "-false"}, "flag provided but not defined: -false", 2, "agent.extraArgs has " +
			"-false, a flag the agents do not define, read as a flag of its own: --zap-devel before it is a boolean flag, " +
			"which takes no value after it (a boolean's value is given with \"=\", as --zap-devel=false): the agents " +
			"would not start (flag provided but not defined: -false)", ""},
		{"manager", []string{"--zap-devel", "-.5"}, "flag provided but not defined: -.5", 2, "manager.extraArgs has " +
			"-.5, a flag the manager does not define, read as a flag of its own: --zap-devel before it is a boolean flag, " +
			"which takes no value after it (a boolean's value is given with \"=\", as --zap-devel=false): the manager " +
			"would not start (flag provided but not defined: -.5)", ""},
		{"agent", []string{"--zap-devel", "--no-such-flag"}, "flag provided but not defined: -no-such-flag", 2,
			"agent.extraArgs has --no-such-flag, a flag the agents do not define: the agents would not start (flag " +
				"provided but not defined: -no-such-flag)", "read as a flag of its own"},
		{"manager", []string{"--zap-encoder"}, "flag needs an argument: -zap-encoder", 2, "manager.extraArgs has " +
			"--zap-encoder, its last item, with no value after it: the manager would not start (flag needs an " +
			"argument: -zap-encoder). Write --zap-encoder=VALUE, one item, or take --zap-encoder out of " +
			"manager.extraArgs", ""},
		{"agent", []string{"--zap-devel", "--request-buffer-dir"}, "flag needs an argument: -request-buffer-dir", 2,
			"agent.extraArgs has --request-buffer-dir, its last item, with no value after it: the agents would not start " +
				"(flag needs an argument: -request-buffer-dir)", ""},
		// The manager stops at its first argument.
		{"manager", []string{"stray", "--no-such-flag", "-h"}, `unexpected argument "stray": the flags after it would be ignored`,
			2, "manager.extraArgs has stray, an argument of its own: the manager would not start, taking flags alone " +
				"(--name=value; a boolean flag is --name or --name=false). Give a flag's value with \"=\" " +
				"(--name=VALUE, one item), or take stray out of manager.extraArgs. The manager reads no item after " +
				"stray, nor does this check: the 2 items after it are unchecked", "--no-such-flag"},
		{"manager", []string{"--zap-devel", "false", "--metrics-bind-address=:1"}, `unexpected argument "false"`, 2,
			"manager.extraArgs has --zap-devel false (two items): the manager would not start, a boolean flag taking " +
				"no separate value (--zap-devel false sets it true, and leaves false an argument, which the binary " +
				"refuses). Write --zap-devel=false, one item, or take --zap-devel and false out of manager.extraArgs. " +
				"The manager reads no item after false, nor does this check: the item after it is unchecked",
			"--metrics-bind-address=:1"},
		{"manager", []string{"--zap-devel", "--", "a", "--zap-encoder=json"}, `unexpected argument "a"`, 2,
			"manager.extraArgs has a after --, an argument of its own (the flag package reads no flag after --): the " +
				"manager would not start. Take -- out of manager.extraArgs, so that what follows it is read as flags, " +
				"or take a out. The manager reads no item after a, nor does this check: the item after it is unchecked",
			"--zap-encoder=json"},
		{"manager", []string{"-", "b"}, `unexpected argument "-"`, 2, "manager.extraArgs has -, an argument of its own",
			"has -, b"},
		// The agent reads on.
		{"agent", []string{"a", "--zap-encoder=console", "b", "-"}, `ferry-agent takes no argument "a b -"`, 1, "agent.extraArgs " +
			"has a, b and -, arguments of their own: the agents would not start", "nor does this check"},
		// Accepted: the binaries get past their flags and their checks,
		// failing only after them, with no cluster to reach (KUBECONFIG
		// names no file). A flag that takes a value takes the next item,
		// whatever it reads.
		{"manager", []string{"--zap-encoder", "console", "--"}, "Manager failed", 1, "", ""},
		{"manager", []string{"--leader-election-namespace", "false"}, "Manager failed", 1, "", ""},
		{"manager", []string{"--leader-election-namespace", "stray", "--zap-devel"}, "Manager failed", 1, "", ""},
		{"manager", []string{"--kubeconfig", "-"}, "Manager failed", 1, "", ""},
		{"manager", []string{"--zap-devel", "--zap-encoder=console"}, "Manager failed", 1, "", ""},
		{"agent", []string{"--zap-encoder", "console", "--"}, noCluster, 1, "", ""},
		{"agent", []string{"--request-buffer-dir", "--", "--zap-devel"}, noCluster, 1, "", ""},
		{"agent", []string{"--kubeconfig", "-"}, "stat -: no such file or directory", 1, "", ""},
		{"agent", []string{"--simulate-workers=1.5s"}, noCluster, 1, "", ""},
		{"agent", []string{"--simulate-workers", ".5h1m"}, noCluster, 1, "", ""},
		{"agent", []string{"--simulate-workers=0", "--simulate-workers=-0", "--simulate-workers=+1.s"}, noCluster, 1, "", ""},
		{"agent", []string{"--simulate-workers=1µs", "--simulate-workers=1μs", "--simulate-workers=2562047h"}, noCluster, 1, "", ""},
		{"agent", []string{"--simulate-workers=-0s"}, noCluster, 1, "", ""},
		{"agent", []string{"--simulate-workers", "2562047h47m16s"}, noCluster, 1, "", ""},
		// Go's bound, 2^63-1 ns, to the nanosecond: the chart sums in
		// int64, where float64 sums could not tell these two apart.
		{"agent", []string{"--simulate-workers=2562047h47m16.854775807s"}, noCluster, 1, "", ""},
		// Digits past the nanosecond, which Go may round either way: a
		// nanosecond more past its bound (this one Go reads).
		{"agent", []string{"--simulate-workers=2562047h47m16.853775808s0.99999999999999999ms"}, noCluster, 1, "agent.extraArgs " +
			"has --simulate-workers=2562047h47m16.853775808s0.99999999999999999ms, which has digits past the nanosecond, " +
			"which Go may round either way: write it to the nanosecond. Read a nanosecond more, it is past the longest " +
			"duration Go reads, and the agents would not start (invalid value \"2562047h47m16.853775808s0.99999999999999999ms\" " +
			"for flag -simulate-workers: parse error). --simulate-workers takes " + durationTaken + ": write one, or take " +
			"--simulate-workers=2562047h47m16.853775808s0.99999999999999999ms out of agent.extraArgs", ""},
		// A fraction of ns the chart reads as Go does, in float64:
		// -0.9999999999999999ns as -1ns, negative; -0.1ns as 0, taken.
		{"agent", []string{"--simulate-workers", "-0.9999999999999999ns"}, negativeRefused, 1, "agent.extraArgs has " +
			"--simulate-workers -0.9999999999999999ns (two items), a negative duration: the agents would not start (" +
			negativeRefused + ")", ""},
		{"agent", []string{"--simulate-workers", "-0.1ns"}, noCluster, 1, "", ""},
		{"agent", []string{"--simulate-workers=0.1ns"}, noCluster, 1, "", ""},
		{"agent", []string{"--simulate-workers=2562047h47m16.854775808s"}, `invalid value "2562047h47m16.854775808s" for ` +
			"flag -simulate-workers: parse error", 2, durationRefused("--simulate-workers=2562047h47m16.854775808s",
			"2562047h47m16.854775808s"), ""},
	} {
		values, err := json.Marshal(map[string]any{tt.component: map[string]any{"extraArgs": tt.args}})
		if err != nil {
			t.Fatal(err)
		}
		assertRendered(t, string(values), tt.want, tt.absent)
		if quotesTheBinary(tt.says) && !strings.Contains(tt.want, tt.says) {
			t.Errorf("%s %q: the chart's refusal %q does not quote the binary's %q", tt.component, tt.args, tt.want, tt.says)
		}
		cmd := cmds[tt.component]
		exit, out := runBinary(t, cmd, tt.args...)
		if exit != tt.exit || !strings.Contains(out, tt.says) {
			t.Errorf("%q %q exited %d, saying: %s\nwant exit %d, saying %q", cmd, tt.args, exit, out, tt.exit, tt.says)
		}
	}
}

// durationTaken is what the chart says --simulate-workers takes.
const durationTaken = "a duration, as Go's time.ParseDuration reads it: 0, or numbers each followed by a unit " +
	"(ns, us, µs or μs, ms, s, m or h), as 1.5s or 1h30m, a + before them or not, not negative (-0s is 0), up to " +
	"2562047h47m16.854775807s (292 years)"

// negativeRefused is what the agent's check of its flags says, exiting 1,
// of a negative --drain-delay or --simulate-workers.
const negativeRefused = "--drain-delay and --simulate-workers may not be negative"

// noCluster is what the agent says, exiting 1, past its flags and its
// check of them, with KUBECONFIG naming no file.
const noCluster = "invalid configuration: no configuration has been provided"

// quotesTheBinary reports whether says is one of the refusals the chart
// quotes in its own: the flag package's (bad flag syntax, a flag not
// defined, one with no value), a flag's Set's (invalid ... value) and the
// agent's check of its durations (negativeRefused). The
// usage, the manager's "unexpected argument" and the agent's arguments are
// described, not quoted.
func quotesTheBinary(says string) bool {
	for _, p := range []string{"bad flag syntax: ", "flag provided but not defined: ", "flag needs an argument: ", "invalid value ",
		"invalid boolean value ", negativeRefused} {
		if strings.HasPrefix(says, p) {
			return true
		}
	}
	return false
}

// assertRendered renders the chart with values (YAML) and fails unless it
// is accepted (want "") or refused saying want, and, refused, saying
// nothing of absent (none when "").
func assertRendered(t *testing.T, values, want, absent string) {
	t.Helper()
	assertRenderedWith(t, renderOpts{}, values, want, absent)
}

// assertRenderedWithoutSchema is assertRendered under
// --skip-schema-validation, where the chart's own checks (validate.yaml)
// alone refuse what the schema would.
func assertRenderedWithoutSchema(t *testing.T, values, want string) {
	t.Helper()
	assertRenderedWith(t, renderOpts{skipSchema: true}, values, want, "")
}

// assertRenderedWith is assertRendered with o's options besides the
// values file.
func assertRenderedWith(t *testing.T, o renderOpts, values, want, absent string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	o.valuesFiles = []string{f}
	given := fmt.Sprintf("values %q", values)
	if o.skipSchema {
		given += " without the schema"
	}
	_, err := templateRaw(testContext(t), o)
	switch {
	case want == "" && err != nil:
		t.Errorf("%s refused: %v", given, err)
	case want != "" && err == nil:
		t.Errorf("%s accepted; want refused with %q", given, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: want %q, got: %v", given, want, err)
	case absent != "" && err != nil && strings.Contains(err.Error(), absent):
		t.Errorf("%s: want nothing of %q, got: %v", given, absent, err)
	}
}

// TestChartRefusesANamespaceFlagWithoutItsNamespace: the namespace flags
// an extra argument may give (the Lease namespaces, the manager's
// --leader-election-namespace) are refused given empty, which the
// binaries do not take for the release's namespace and say nothing of,
// last with nothing after them, which the binaries refuse, and followed by
// another flag, which the flag package takes for the namespace (no
// namespace begins with "-"), reading it as no flag.
func TestChartRefusesANamespaceFlagWithoutItsNamespace(t *testing.T) {
	for _, tt := range []struct {
		values, want string // want "" when accepted
		absent       string // not said
	}{
		{"manager: {extraArgs: [--leader-election-namespace=]}", "manager.extraArgs has --leader-election-namespace=, " +
			"an empty namespace: the manager would hold its leader election Lease in its service account's namespace, " +
			"the release's (ferry-system), as if the flag were left out, without a word. It is refused all the same, as " +
			"probably a value that came out empty; leave the flag out to mean the release's namespace (take " +
			"--leader-election-namespace= out of manager.extraArgs), or name one (that of the agents' Leases, where " +
			"kubectl ferry status --lease-namespace reads both)", ""},
		{"manager: {extraArgs: [-leader-election-namespace, \"\", --zap-devel]}", "manager.extraArgs has " +
			"-leader-election-namespace \"\" (two items), an empty namespace: the manager would hold", ""},
		{"manager: {extraArgs: [--zap-devel, --leader-election-namespace]}", "manager.extraArgs has " +
			"--leader-election-namespace, its last item, with no namespace after it: the manager would not start (flag " +
			"needs an argument). Name a namespace, as --leader-election-namespace=NAMESPACE, or take " +
			"--leader-election-namespace out of manager.extraArgs (which leaves it at the release's namespace)", ""},
		{"manager: {extraArgs: [--leader-election-namespace, --zap-devel]}", "manager.extraArgs has " +
			"--leader-election-namespace followed by --zap-devel: --leader-election-namespace lacks its namespace. The " +
			"flag package would take --zap-devel for it, not reading it as a flag, so the manager would hold its leader " +
			"election Lease in --zap-devel, a name no namespace can have: it would never lead, and so reconcile nothing. " +
			"Write --leader-election-namespace=NAMESPACE, one item, or take --leader-election-namespace out of " +
			"manager.extraArgs (which leaves it at the release's namespace)", ""},
		// A manager that elects no leader holds no Lease: said so, not that
		// it would never lead.
		{"manager: {leaderElect: false, extraArgs: [--leader-election-namespace, --zap-devel]}", "so the manager " +
			"would name --zap-devel, a name no namespace can have, for its leader election Lease: with " +
			"manager.leaderElect=false it holds no Lease, but kubectl ferry status looks for it there. Write " +
			"--leader-election-namespace=NAMESPACE", "never lead"},
		{"manager: {leaderElect: false, extraArgs: [--leader-election-namespace=Ferry_Leases]}", "manager.extraArgs " +
			"has --leader-election-namespace=Ferry_Leases, which is not a DNS label (lowercase letters, digits and " +
			"\"-\", beginning and ending with a letter or digit): the manager would name Ferry_Leases, a name no " +
			"namespace can have, for its leader election Lease: with manager.leaderElect=false it holds no Lease, but " +
			"kubectl ferry status looks for it there. Name a namespace", "never lead"},
		{"manager: {leaderElect: false, extraArgs: [--leader-election-namespace=]}", "manager.extraArgs has " +
			"--leader-election-namespace=, an empty namespace: with manager.leaderElect=false the manager holds no " +
			"leader election Lease, but would take its service account's namespace, the release's (ferry-system), for " +
			"it, as if the flag were left out, without a word. It is refused all the same", "would hold its leader"},
		// The Lease namespaces: refused for what they lack, not also for
		// differing from the other component's.
		{"agent: {extraArgs: [--lease-namespace, --zap-devel]}", "agent.extraArgs has --lease-namespace followed by " +
			"--zap-devel: --lease-namespace lacks its namespace. The flag package would take --zap-devel for it, not " +
			"reading it as a flag, so the agents would renew their Leases in --zap-devel, a name no namespace can have: " +
			"every renewal would fail, and the manager would read every node Unknown", "would see no renewal"},
		{"manager: {extraArgs: [-agent-lease-namespace, -v]}\nagent: {extraArgs: [--lease-namespace, -v]}",
			"manager.extraArgs has -agent-lease-namespace followed by -v: -agent-lease-namespace lacks its namespace. " +
				"The flag package would take -v for it, not reading it as a flag, so the manager would watch the agents' " +
				"Leases in -v, a name no namespace can have, see no renewal and read every node Unknown. Write " +
				"--agent-lease-namespace=NAMESPACE, one item, or take -agent-lease-namespace out of manager.extraArgs " +
				"(which leaves it at the release's namespace)\nagent.extraArgs has --lease-namespace followed by -v: ",
			"would see no renewal"},
		// "--" is taken for the namespace too, not for the end of the flags.
		{"agent: {extraArgs: [--lease-namespace, \"--\"]}", "agent.extraArgs has --lease-namespace followed by --: " +
			"--lease-namespace lacks its namespace. The flag package would take -- for it, not reading it as the end of " +
			"the flags, so the agents would renew their Leases in --", "would see no renewal"},
		// A namespace is a DNS label: any other name is none.
		{"manager: {extraArgs: [--leader-election-namespace=Ferry_Leases]}", "manager.extraArgs has " +
			"--leader-election-namespace=Ferry_Leases, which is not a DNS label (lowercase letters, digits and \"-\", " +
			"beginning and ending with a letter or digit): the manager would hold its leader election Lease in " +
			"Ferry_Leases, a name no namespace can have: it would never lead, and so reconcile nothing. Name a namespace", ""},
		{"manager: {extraArgs: [--agent-lease-namespace, leases-]}\nagent: {extraArgs: [--lease-namespace=leases-]}",
			"manager.extraArgs has --agent-lease-namespace leases- (two items), which is not a DNS label", "would see no renewal"},
		{"agent: {extraArgs: [--lease-namespace=" + strings.Repeat("n", 64) + "]}", "agent.extraArgs has --lease-namespace=" +
			strings.Repeat("n", 64) + ", which is 64 characters long, over the 63 of a DNS label: the agents would renew " +
			"their Leases in " + strings.Repeat("n", 64) + ", a name no namespace can have", ""},
		{"manager: {extraArgs: [--leader-election-namespace=" + strings.Repeat("n", 63) + "]}", "", ""},
		// A $(VAR) the kubelet expands is not checked, however long.
		{"manager: {extraArgs: [--leader-election-namespace=$(" + strings.Repeat("N", 70) + ")]}", "", ""},
		// A flag taken for the namespace is refused once, for what it is,
		// not also for its length.
		{"manager: {extraArgs: [--leader-election-namespace, --" + strings.Repeat("v", 70) + "=1]}", "manager.extraArgs " +
			"has --leader-election-namespace followed by --" + strings.Repeat("v", 70) + "=1: --leader-election-namespace " +
			"lacks its namespace", "over the 63 of a DNS label"},
		{"manager: {extraArgs: [--agent-lease-namespace=f-1]}\nagent: {extraArgs: [--lease-namespace, f-1]}", "", ""},
		{"manager: {extraArgs: [--leader-election-namespace=ferry-leases, --leader-election-namespace, leases]}", "", ""},
	} {
		assertRendered(t, tt.values, tt.want, tt.absent)
	}
}

// TestChartKnowsTheBinariesFlags: the chart's list of each binary's flags
// (ferry.knownFlags), by which it walks extraArgs, refusing a flag it does
// not list, is the binary's, both ways, each of the kind the binary's is
// (a boolean, a duration, a number or another value): a flag added to a
// binary and not to the list fails here, as does an entry of the list that
// the binary no longer has, or whose kind differs. And the chart walks by
// it: with the metrics off, so that --metrics-secure is no flag the chart
// renders, a flag followed by "false" is refused as a boolean apart from
// its value where it is a boolean, as a value the flag refuses where it is
// a duration, and takes "false" for its value where it is another. Flags
// the chart renders are refused whatever follows them; a number must be
// one of them, as the chart checks no number's form. Each boolean,
// duration and number is rendered alone: the walk stops at a value the
// flag refuses, and the manager reads nothing past the "false" a boolean
// leaves, and neither does the chart.
func TestChartKnowsTheBinariesFlags(t *testing.T) {
	bin := ferryBinaries(t)
	listed := chartKnownFlags(t)
	for _, c := range []struct {
		component, who string
		cmd            []string
	}{
		{"manager", "the manager", []string{filepath.Join(bin, "ferry-manager")}},
		{"agent", "the agents", []string{filepath.Join(bin, "ferry-agent"), "cluster"}},
	} {
		flags := binaryFlags(t, c.cmd...)
		if !reflect.DeepEqual(listed[c.component], flags) {
			t.Errorf("ferry.knownFlags lists, for the %s (name: kind), %v; %q's flags are %v", c.component,
				listed[c.component], c.cmd, flags)
		}
		var values []string
		renders := [][]string{nil}
		for _, name := range sortedKeys(flags) {
			if flags[name] == "value" {
				renders[0] = append(renders[0], "--"+name, "false")
			} else {
				renders = append(renders, []string{"--" + name, "false"})
			}
		}
		refusals := ""
		for _, args := range renders {
			data, err := json.Marshal(map[string]any{c.component: map[string]any{"metricsBindAddress": 0, "extraArgs": args}})
			if err != nil {
				t.Fatal(err)
			}
			values = append(values, string(data))
			f := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(f, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = templateRaw(testContext(t), renderOpts{valuesFiles: []string{f}})
			if err != nil {
				refusals += err.Error() + "\n"
			}
		}
		for _, name := range sortedKeys(flags) {
			kind := flags[name]
			rendered := strings.Contains(refusals, "but the chart sets --"+name+" ")
			if kind == "number" && !rendered {
				t.Errorf("%s's --%s takes a number, which the chart neither renders from a value nor checks in "+
					"extraArgs: check its form as a duration's is checked; values %q", c.cmd[0], name, values)
			}
			if rendered {
				continue
			}
			apart := fmt.Sprintf("%s.extraArgs has --%s false (two items): %s would not start", c.component, name, c.who)
			parseError := fmt.Sprintf("%s.extraArgs has --%s false (two items), a value the flag refuses: %s would "+
				"not start (invalid value \"false\" for flag -%s: parse error)", c.component, name, c.who, name)
			switch {
			case kind == "boolean" && !strings.Contains(refusals, apart):
				t.Errorf("%s's --%s is a boolean flag, which the chart does not walk as one: --%s false was not "+
					"refused with %q; values %q", c.cmd[0], name, name, apart, values)
			case kind != "boolean" && strings.Contains(refusals, apart):
				t.Errorf("%s's --%s takes a value, which the chart walks as a boolean: --%s false was refused "+
					"with %q", c.cmd[0], name, name, apart)
			case kind == "duration" && !strings.Contains(refusals, parseError):
				t.Errorf("%s's --%s takes a duration, which the chart does not check: --%s false was not refused "+
					"with %q; values %q", c.cmd[0], name, name, parseError, values)
			}
		}
	}
}

// TestChartLetsADefinedFlagNamedHelpWin: the flag package prints the
// usage at -h, -help or --help only where the binary defines no flag of
// that name, which neither does now: the chart's walk looks the flag up
// first, as the flag package does, so a binary that came to define one
// would have it walked as its own. Shown with a copy of the chart whose
// ferry.knownFlags lists help (a value) for the manager, and h (a boolean)
// for the agent.
func TestChartLetsADefinedFlagNamedHelpWin(t *testing.T) {
	chart := filepath.Join(t.TempDir(), "ferry")
	if err := os.CopyFS(chart, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	helpers := filepath.Join(chart, "templates", "_helpers.tpl")
	data, err := os.ReadFile(helpers)
	if err != nil {
		t.Fatal(err)
	}
	known := `{{- define "ferry.knownFlags" -}}
{{- if eq .component "manager" }}
`
	doctored := strings.Replace(string(data), known, known+"help: value\n", 1)
	doctored = strings.Replace(doctored, "zap-time-encoding: value\n{{- end }}\n{{- end }}",
		"zap-time-encoding: value\nh: boolean\n{{- end }}\n{{- end }}", 1)
	if strings.Count(doctored, "help: value\n") != 1 || strings.Count(doctored, "h: boolean\n") != 1 {
		t.Fatalf("%s: ferry.knownFlags is not of the form this test edits", helpers)
	}
	if err := os.WriteFile(helpers, []byte(doctored), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		values, want string // want "" when accepted
	}{
		{"manager: {extraArgs: [--help, x, --zap-devel]}", ""},
		{"agent: {extraArgs: [-h, --zap-devel]}", ""},
		{"agent: {extraArgs: [-h, --help=false]}", "agent.extraArgs has --help=false, which asks the flag package for the usage"},
		{"agent: {extraArgs: [-h=yes]}", "agent.extraArgs has -h=yes, a value the flag refuses: the agents would " +
			"not start (invalid boolean value \"yes\" for -h: parse error)"},
		// Not defined for the manager, -h still asks for the usage.
		{"manager: {extraArgs: [-h]}", "manager.extraArgs has -h, which asks the flag package for the usage"},
	} {
		assertRenderedWith(t, renderOpts{chart: chart}, tt.values, tt.want, "")
	}
}

// chartKnownFlags reads the ferry.knownFlags of _helpers.tpl: the
// manager's entries, then, after its else, the agent's, each a name and
// its kind.
func chartKnownFlags(t *testing.T) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	_, body, found := strings.Cut(string(data), `{{- define "ferry.knownFlags" -}}`)
	body, _, ended := strings.Cut(body, "{{- end }}\n{{- end }}")
	manager, agent, split := strings.Cut(body, "{{- else }}")
	if !found || !ended || !split {
		t.Fatalf("_helpers.tpl: no ferry.knownFlags of the form if manager, else agent")
	}
	entry := regexp.MustCompile(`(?m)^([a-z0-9-]+): (boolean|duration|number|value)$`)
	listed := map[string]map[string]string{}
	for component, part := range map[string]string{"manager": manager, "agent": agent} {
		listed[component] = map[string]string{}
		for _, m := range entry.FindAllStringSubmatch(part, -1) {
			listed[component][m[1]] = m[2]
		}
		if len(listed[component]) == 0 {
			t.Fatalf("_helpers.tpl's ferry.knownFlags lists nothing for the %s:\n%s", component, part)
		}
	}
	return listed
}

// binaryFlags lists the flags a binary's usage (cmd, then -h) shows, each
// with its kind, as the flag package's Set tells it: given a value that
// is none (--name=ferry-no-value), it refuses it as an "invalid boolean
// value" only for a boolean flag, with its bare "parse error" for a
// duration or a number (its Duration, Int, Int64, Float64, ...), of which
// a duration alone takes 1s, and takes it, or refuses it otherwise, for
// any other ("value"), printing the usage after. A probe that prints
// none of these fails: the flag was not probed.
func binaryFlags(t *testing.T, cmd ...string) map[string]string {
	t.Helper()
	probe := func(name, value string) string {
		out, _ := exec.Command(cmd[0], append(slices.Clone(cmd[1:]), "--"+name+"="+value, "-h")...).CombinedOutput()
		return string(out)
	}
	usage, _ := exec.Command(cmd[0], append(slices.Clone(cmd[1:]), "-h")...).CombinedOutput()
	flags := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  -(\S+)`).FindAllStringSubmatch(string(usage), -1) {
		name := m[1]
		parseError := "for flag -" + name + ": parse error"
		switch word := probe(name, "ferry-no-value"); {
		case strings.Contains(word, "invalid boolean value"):
			flags[name] = "boolean"
		case strings.Contains(word, parseError):
			flags[name] = "number"
			if second := probe(name, "1s"); strings.Contains(second, "Usage of ") && !strings.Contains(second, parseError) {
				flags[name] = "duration"
			}
		case strings.Contains(word, "Usage of "):
			flags[name] = "value"
		default:
			t.Errorf("%q --%s=ferry-no-value -h printed neither \"invalid boolean value\", %q nor the usage: %s", cmd,
				name, parseError, word)
		}
	}
	if len(flags) < 10 {
		t.Fatalf("%q -h lists %d flags: %s", cmd, len(flags), usage)
	}
	return flags
}

// TestChartRefusesHealthAddressesWithoutTheSchema: the schema refuses an
// agent.healthProbeBindAddress of 0, but `helm install
// --skip-schema-validation` skips it; the chart then refuses it itself,
// saying why, rather than render a health port 0 (or fail on a number).
// So is any value that is no host:port, which the schema requires: a null
// (a required key missing), said as null, not as Go prints a nil; "", which
// rendered a health port without a number; false or a number, which read
// as 0. The manager's, which may be 0, is refused likewise when it is no
// host:port, a null rendering --health-probe-bind-address=0 without a word.
func TestChartRefusesHealthAddressesWithoutTheSchema(t *testing.T) {
	needed := "the chart needs them, their /readyz stopping the DaemonSet's rollout at an agent that cannot work. " +
		"Set a host:port, as :9442 (the default); the schema, skipped here, "
	off := "agent.healthProbeBindAddress is 0, which turns the agents' probes off: " + needed + "refuses 0"
	null := "agent.healthProbeBindAddress is null (unset), which turns the agents' probes off: " + needed +
		"requires a host:port"
	notHostPort := func(is string) string {
		return "agent.healthProbeBindAddress is " + is + ", not a host:port: the agents' probes would have no port " +
			"to ask, and " + needed + "requires a host:port"
	}
	managerNot := func(is string) string {
		return "manager.healthProbeBindAddress is " + is + ", not a host:port: the manager's /healthz and /readyz " +
			"and the pod's probes would have no port. Set a host:port, as :8081 (the default), or 0 to turn them " +
			"off; the schema, skipped here, requires a host:port or 0"
	}
	for _, tt := range []struct{ values, want string }{
		{"agent: {healthProbeBindAddress: 0}", off},
		{`agent: {healthProbeBindAddress: "0"}`, off},
		{"agent: {healthProbeBindAddress: 0.0}", off},
		{"agent: {healthProbeBindAddress: null}", null},
		{"agent: {healthProbeBindAddress: ~}", null},
		{`agent: {healthProbeBindAddress: ""}`, notHostPort(`""`)},
		{"agent: {healthProbeBindAddress: false}", notHostPort("false")},
		{"agent: {healthProbeBindAddress: 9442}", notHostPort("9442")},
		{"agent: {healthProbeBindAddress: localhost}", notHostPort("localhost")},
		// The schema's port range and host: a port 1 to 65535, an IPv6
		// host in brackets.
		{`agent: {healthProbeBindAddress: ":0"}`, notHostPort(":0")},
		{`agent: {healthProbeBindAddress: ":99999"}`, notHostPort(":99999")},
		{`agent: {healthProbeBindAddress: "::1:9442"}`, notHostPort("::1:9442")},
		{"manager: {healthProbeBindAddress: null}", "manager.healthProbeBindAddress is null (unset), which the " +
			"chart would render as 0, turning the manager's probes off without a word. Set a host:port, as :8081 " +
			"(the default), or 0 to turn them off; the schema, skipped here, requires a host:port or 0"},
		{`manager: {healthProbeBindAddress: ""}`, `manager.healthProbeBindAddress is "", which the manager takes ` +
			"as off, while the chart would render probes with no port. Set a host:port, as :8081 (the default), or 0 " +
			"to turn them off; the schema, skipped here, requires a host:port or 0"},
		{`manager: {healthProbeBindAddress: ":65536"}`, managerNot(":65536")},
		{`manager: {healthProbeBindAddress: "::1:8081"}`, managerNot("::1:8081")},
		{`manager: {healthProbeBindAddress: "localhost:00"}`, managerNot("localhost:00")},
		{"manager: {healthProbeBindAddress: \"[::1]:65535\"}\nagent: {healthProbeBindAddress: \"[::1]:1\"}", ""},
		{"manager: {healthProbeBindAddress: false}", managerNot("false")},
		{"manager: {healthProbeBindAddress: 8081}", managerNot("8081")},
		{`manager: {healthProbeBindAddress: "$(HOST_IP):8081"}`, "manager.healthProbeBindAddress is $(HOST_IP):8081, " +
			"which the manager's pod does not set: the manager would get it unexpanded and could not listen, its probes " +
			"failing. Set a host:port, as :8081 (the default), or 0 to turn them off; the schema, skipped here, " +
			"refuses $(HOST_IP) for the manager"},
		{"manager: {healthProbeBindAddress: 0}", ""},
		{`manager: {healthProbeBindAddress: "0"}`, ""},
		{"manager: {healthProbeBindAddress: \"127.0.0.1:8081\"}\nagent: {healthProbeBindAddress: \"$(HOST_IP):1\"}", ""},
	} {
		assertRenderedWithoutSchema(t, tt.values, tt.want)
	}
}

// TestChartRefusesDurationsTheBinariesRefuseWithoutTheSchema: every
// duration the chart renders into a flag is judged, under
// --skip-schema-validation, as the binary judges it: the chart refuses,
// quoting the binary, the values at which it would not start, at every
// start (a crash loop): one time.ParseDuration does not read (the flag
// package exits 2), zero or below for the intervals, --agent-stale-after
// and the proxy timeouts, below zero for --drain-delay (-0s is zero). A
// number renders as an integer (1.5 as 1), no duration without a unit.
// Each row is run by the built binary with the flag the chart renders: a
// refused row must fail as the chart says, an accepted one get past the
// flags and their checks, failing for want of a cluster.
func TestChartRefusesDurationsTheBinariesRefuseWithoutTheSchema(t *testing.T) {
	bin := ferryBinaries(t)
	cmds := map[string][]string{
		"manager": {filepath.Join(bin, "ferry-manager")},
		"agent":   {filepath.Join(bin, "ferry-agent"), "cluster", "--node-name=n"},
	}
	skipped := "; the schema, skipped here, refuses it"
	positive := func(value, def, who, flag string) string {
		return value + ": it must be above zero (the default is " + def + "); " + who + " would not start, saying --" +
			flag + " must be positive"
	}
	parse := func(name, value, who, flag, why string) string {
		return name + " is " + value + ", not a duration " + who + " would read: " + who + " would not start (invalid " +
			"value \"" + value + "\" for flag -" + flag + ": " + why + ")"
	}
	manyParts := strings.Repeat("1ns", 700) + "3000000h5x"
	// Near the lowest duration, one part past the nanosecond: Go reads the
	// first as -2^63 ns, and neither of the others.
	const (
		lowestRead     = "-2562047h47m16.854775808s0.00000000100000000000s"
		lowestOnePast  = "-2562047h47m16.854775808s0.0000000015s"
		lowestHourPast = "-2562047h47m16.854775808s0.00000000000027777777777777775h"
	)
	rounded := func(name, value, def string) string {
		return name + " is " + value + ", which has digits past the nanosecond, which Go may round either way: write " +
			"it to the nanosecond (the default is " + def + "). "
	}
	notAboveZero := func(flag, value, def string) string {
		return "invalid value \"" + value + "\" for flag -" + flag + ": " + value + " is not above zero: the proxy has no " +
			"\"none\"; give a duration, " + def + " by default"
	}
	// What a negative value Go may read as -2^63 ns (readAs), or past
	// that, not at all (why), does.
	nearLowest := func(value, readAs, who, flag, why string) string {
		return "Read at most 2562047h47m16.854775808s below zero, the lowest duration Go reads, " + readAs + "; read past " +
			"that, Go does not read it, and " + who + " would not start (invalid value \"" + value + "\" for flag -" + flag +
			": " + why + ")"
	}
	for _, tt := range []struct {
		name     string // the value, component.key
		flag     string // the flag it renders
		value    any    // as the values file gives it
		rendered string // as the chart renders it, for the rows it refuses
		says     string // what the binary says
		exit     int    // and its exit status
		want     string // the chart's refusal, "" when accepted
	}{
		{"agent.heartbeatInterval", "heartbeat-interval", "-1s", "-1s", "--heartbeat-interval must be positive", 1,
			"agent.heartbeatInterval is " + positive("-1s", "10s", "the agent", "heartbeat-interval") + skipped},
		{"agent.heartbeatInterval", "heartbeat-interval", "-0s", "-0s", "--heartbeat-interval must be positive", 1,
			"agent.heartbeatInterval is " + positive("-0s", "10s", "the agent", "heartbeat-interval")},
		{"agent.heartbeatInterval", "heartbeat-interval", "abc", "abc", "invalid value \"abc\" for flag -heartbeat-interval: " +
			"parse error", 2, parse("agent.heartbeatInterval", "abc", "the agent", "heartbeat-interval", "parse error") +
			". Set a Go duration, as 1.5s or 1h30m, up to 2562047h47m16.854775807s (the default is 10s)" + skipped},
		{"agent.heartbeatInterval", "heartbeat-interval", 1.5, "1", "invalid value \"1\" for flag -heartbeat-interval: " +
			"parse error", 2, "agent.heartbeatInterval is 1.5 (rendered as 1), not a duration the agent would read: the agent " +
			"would not start (invalid value \"1\" for flag -heartbeat-interval: parse error)"},
		{"agent.heartbeatInterval", "heartbeat-interval", "1μs", "", noCluster, 1, ""},
		{"agent.statsInterval", "stats-interval", "-5s", "-5s", "--stats-interval must be positive", 1,
			"agent.statsInterval is " + positive("-5s", "30s", "the agent", "stats-interval") + skipped},
		{"agent.statsInterval", "stats-interval", "+1s", "", noCluster, 1, ""},
		{"manager.agentStaleAfter", "agent-stale-after", "-1m", "-1m", "--agent-stale-after must be positive", 1,
			"manager.agentStaleAfter is " + positive("-1m", "40s", "the manager", "agent-stale-after") + skipped},
		{"manager.agentStaleAfter", "agent-stale-after", "1m0x", "1m0x", "invalid value \"1m0x\" for flag -agent-stale-after: " +
			"parse error", 2, parse("manager.agentStaleAfter", "1m0x", "the manager", "agent-stale-after", "parse error")},
		{"manager.agentStaleAfter", "agent-stale-after", "+1m", "", "no configuration has been provided", 1, ""},
		{"agent.drainDelay", "drain-delay", "-1s", "-1s", negativeRefused, 1, "agent.drainDelay is -1s, a negative " +
			"duration, which the agents refuse at their start (" + negativeRefused + "): set 0s (drain at once) or more " +
			"(the default is 5s)" + skipped},
		{"agent.drainDelay", "drain-delay", "-0.5ms1h", "-0.5ms1h", negativeRefused, 1,
			"agent.drainDelay is -0.5ms1h, a negative duration, which the agents refuse at their start (" + negativeRefused + ")"},
		{"agent.drainDelay", "drain-delay", "abc", "abc", "invalid value \"abc\" for flag -drain-delay: parse error", 2,
			parse("agent.drainDelay", "abc", "the agents", "drain-delay", "parse error")},
		{"agent.drainDelay", "drain-delay", "-0s", "", noCluster, 1, ""},
		{"agent.drainDelay", "drain-delay", "+2s", "", noCluster, 1, ""},
		{"agent.drainDelay", "drain-delay", 0, "", noCluster, 1, ""},
		// Null, the chart's default deleted, renders as 0, which the agents
		// take: a drain delay turned off without a word.
		{"agent.drainDelay", "drain-delay", nil, "0", noCluster, 1, "agent.drainDelay is null (unset), which the " +
			"chart would render as --drain-delay=0, draining at once without a word. Set a Go duration, as 1.5s or " +
			"1h30m (the default is 5s); the schema, skipped here, requires one"},
		{"agent.heartbeatInterval", "heartbeat-interval", nil, "0", "--heartbeat-interval must be positive", 1,
			"agent.heartbeatInterval is " + positive("null (unset) (rendered as 0)", "10s", "the agent",
				"heartbeat-interval") + skipped},
		{"agent.readHeaderTimeout", "read-header-timeout", "-1s", "-1s", notAboveZero("read-header-timeout", "-1s", "10s"), 2,
			"agent.readHeaderTimeout is -1s, which the agent refuses at its start (" + notAboveZero("read-header-timeout",
				"-1s", "10s") + "). Set a duration above zero" + skipped},
		{"agent.readHeaderTimeout", "read-header-timeout", "3000000h", "3000000h", "invalid value \"3000000h\" for flag " +
			"-read-header-timeout: time: invalid duration \"3000000h\"", 2, parse("agent.readHeaderTimeout", "3000000h",
			"the agent", "read-header-timeout", "time: invalid duration \"3000000h\"") + ". Set a Go duration, as 1.5s or " +
			"1h30m, up to 2562047h47m16.854775807s (the default is 10s)"},
		{"agent.idleTimeout", "idle-timeout", "-1s", "-1s", notAboveZero("idle-timeout", "-1s", "2m0s"), 2,
			"agent.idleTimeout is -1s, which the agent refuses at its start (" + notAboveZero("idle-timeout", "-1s", "2m0s")},
		{"agent.idleTimeout", "idle-timeout", "abc", "abc", "invalid value \"abc\" for flag -idle-timeout: time: invalid " +
			"duration \"abc\"", 2, parse("agent.idleTimeout", "abc", "the agent", "idle-timeout", "time: invalid duration \"abc\"")},
		{"agent.idleTimeout", "idle-timeout", "1.h", "", noCluster, 1, ""},
		// Go's bound, to the nanosecond, and one past it.
		{"agent.idleTimeout", "idle-timeout", "2562047h47m16.854775807s", "", noCluster, 1, ""},
		{"agent.idleTimeout", "idle-timeout", "2562047h47m16.854775808s", "2562047h47m16.854775808s", "invalid value " +
			"\"2562047h47m16.854775808s\" for flag -idle-timeout: time: invalid duration \"2562047h47m16.854775808s\"", 2,
			parse("agent.idleTimeout", "2562047h47m16.854775808s", "the agent", "idle-timeout",
				"time: invalid duration \"2562047h47m16.854775808s\"")},
		// Digits past the nanosecond, which Go may round either way of
		// where the binary refuses it: write it to the nanosecond. Go reads
		// 0.00000000100000000000s as 0, refused for a heartbeat;
		// 0.00000000000027777777777777775h as 1ns, and
		// 2562047h47m16.853775808s0.99999999999999999ms as 2^63-1 ns, taken;
		// the chart cannot tell which (it would read 0 and 1, 1ns and 2^63).
		// A fraction of ns the chart reads as Go does, in float64, whatever
		// its digits: 0.1ns is 0, refused as the binary refuses it;
		// 1ns0.1ns and 1ns0.999999999999999ns are 1ns, taken (and sized so
		// against manager.agentStaleAfter: TestChartRefusesValuesThatFailAtRunTime).
		{"agent.heartbeatInterval", "heartbeat-interval", "0.1ns", "0.1ns", "--heartbeat-interval must be positive", 1,
			"agent.heartbeatInterval is " + positive("0.1ns", "10s", "the agent", "heartbeat-interval")},
		{"agent.heartbeatInterval", "heartbeat-interval", "1ns0.1ns", "", noCluster, 1, ""},
		{"agent.heartbeatInterval", "heartbeat-interval", "1ns0.999999999999999ns", "", noCluster, 1, ""},
		{"agent.heartbeatInterval", "heartbeat-interval", "0.00000000100000000000s", "0.00000000100000000000s",
			"--heartbeat-interval must be positive", 1, rounded("agent.heartbeatInterval", "0.00000000100000000000s", "10s") +
				"Read as 0, the agent would not start, saying --heartbeat-interval must be positive"},
		{"agent.statsInterval", "stats-interval", "0.00000000000027777777777777775h", "0.00000000000027777777777777775h",
			noCluster, 1, rounded("agent.statsInterval", "0.00000000000027777777777777775h", "30s") + "Read as 0, the " +
				"agent would not start, saying --stats-interval must be positive"},
		{"agent.idleTimeout", "idle-timeout", "2562047h47m16.853775808s0.99999999999999999ms",
			"2562047h47m16.853775808s0.99999999999999999ms", noCluster, 1, rounded("agent.idleTimeout",
				"2562047h47m16.853775808s0.99999999999999999ms", "2m0s") + "Read a nanosecond more, it is past the " +
				"longest duration Go reads (2562047h47m16.854775807s), and the agent would not start (invalid value " +
				"\"2562047h47m16.853775808s0.99999999999999999ms\" for flag -idle-timeout: time: invalid duration " +
				"\"2562047h47m16.853775808s0.99999999999999999ms\")"},
		{"manager.agentStaleAfter", "agent-stale-after", "2562047h47m16.853775808s0.99999999999999999ms",
			"2562047h47m16.853775808s0.99999999999999999ms", noCluster, 1,
			rounded("manager.agentStaleAfter", "2562047h47m16.853775808s0.99999999999999999ms", "40s") + "Read a " +
				"nanosecond more, it is past the longest duration Go reads (2562047h47m16.854775807s), and the " +
				"manager would not start (invalid value \"2562047h47m16.853775808s0.99999999999999999ms\" for flag " +
				"-agent-stale-after: parse error)"},
		// 0.9999999999999999ns is 1ns to Go, and to the chart: taken; below
		// zero, -1ns, negative.
		{"agent.sendTimeout", "send-timeout", "0.9999999999999999ns", "", noCluster, 1, ""},
		{"agent.sendTimeout", "send-timeout", "0.1ns", "0.1ns", notAboveZero("send-timeout", "0.1ns", "1m0s"), 2,
			"agent.sendTimeout is 0.1ns, which the agent refuses at its start (" + notAboveZero("send-timeout", "0.1ns",
				"1m0s") + "). Set a duration above zero"},
		{"agent.drainDelay", "drain-delay", "-0.9999999999999999ns", "-0.9999999999999999ns", negativeRefused, 1,
			"agent.drainDelay is -0.9999999999999999ns, a negative duration, which the agents refuse at their start (" +
				negativeRefused + "): set 0s (drain at once) or more (the default is 5s)" + skipped},
		{"agent.drainDelay", "drain-delay", "-0.1ns", "", noCluster, 1, ""},
		{"agent.drainDelay", "drain-delay", "0.1ns", "", noCluster, 1, ""},
		// At or past -2^63 ns by the chart's count, by no more than its one
		// part past the nanosecond: Go may read it as -2^63 ns, below zero
		// (those ending 0.00000000100000000000s, its last part 0), or past
		// it, not at all (0.0000000015s, 1.5ns cut to 1, and
		// 0.00000000000027777777777777775h): the chart cannot tell which,
		// and says both.
		{"agent.drainDelay", "drain-delay", lowestRead, lowestRead, negativeRefused, 1,
			rounded("agent.drainDelay", lowestRead, "5s") + nearLowest(lowestRead,
				"it is negative: the agents would not start ("+negativeRefused+")", "the agents", "drain-delay",
				"parse error") + skipped},
		{"agent.drainDelay", "drain-delay", lowestOnePast, lowestOnePast, "invalid value \"" + lowestOnePast + "\" for flag -drain-delay: parse error",
			2, rounded("agent.drainDelay", lowestOnePast, "5s") + nearLowest(lowestOnePast,
				"it is negative: the agents would not start ("+negativeRefused+")", "the agents", "drain-delay",
				"parse error") + skipped},
		{"agent.heartbeatInterval", "heartbeat-interval", lowestRead, lowestRead, "--heartbeat-interval must be positive", 1,
			rounded("agent.heartbeatInterval", lowestRead, "10s") + nearLowest(lowestRead,
				"it is below zero, and the agent would not start, saying --heartbeat-interval must be positive", "the agent",
				"heartbeat-interval", "parse error")},
		{"agent.heartbeatInterval", "heartbeat-interval", lowestHourPast, lowestHourPast, "invalid value \"" + lowestHourPast + "\" for flag " +
			"-heartbeat-interval: parse error", 2, rounded("agent.heartbeatInterval", lowestHourPast, "10s") +
			nearLowest(lowestHourPast, "it is below zero, and the agent would not start, saying --heartbeat-interval must be "+
				"positive", "the agent", "heartbeat-interval", "parse error")},
		{"agent.idleTimeout", "idle-timeout", lowestRead, lowestRead, notAboveZero("idle-timeout", lowestRead, "2m0s"), 2,
			rounded("agent.idleTimeout", lowestRead, "2m0s") + nearLowest(lowestRead, "it is below zero, and the agent would "+
				"not start ("+notAboveZero("idle-timeout", lowestRead, "2m0s")+")", "the agent", "idle-timeout",
				"time: invalid duration \""+lowestRead+"\"")},
		// A whole number past 2^63 Go refuses whatever follows it: a parse
		// error, where the chart's slack for the fraction after it had it
		// unsure.
		{"agent.drainDelay", "drain-delay", "-9223372036854775809ns0.0000000001s", "-9223372036854775809ns0.0000000001s",
			"invalid value \"-9223372036854775809ns0.0000000001s\" for flag -drain-delay: parse error", 2,
			parse("agent.drainDelay", "-9223372036854775809ns0.0000000001s", "the agents", "drain-delay", "parse error")},
		// Its digits past the nanosecond cannot take it to Go's bound: 0.1ns
		// is cut to 0, 2^63-2 ns, taken (a fraction of ns is read as Go
		// reads it, so 0.5ns would not count as past the nanosecond).
		{"agent.idleTimeout", "idle-timeout", "2562047h47m16.854775806s0.0000000001s", "", noCluster, 1, ""},
		{"agent.sendTimeout", "send-timeout", "5x", "5x", "invalid value \"5x\" for flag -send-timeout: time: unknown unit " +
			"\"x\" in duration \"5x\"", 2, parse("agent.sendTimeout", "5x", "the agent", "send-timeout",
			"time: unknown unit \"x\" in duration \"5x\"")},
		// Go stops at the first part it refuses: 3000000h, past its bound,
		// before the x; a whole number past 2^63 before its missing unit.
		{"agent.sendTimeout", "send-timeout", "3000000h5x", "3000000h5x", "invalid value \"3000000h5x\" for flag " +
			"-send-timeout: time: invalid duration \"3000000h5x\"", 2, parse("agent.sendTimeout", "3000000h5x", "the agent",
			"send-timeout", "time: invalid duration \"3000000h5x\"")},
		// The flag package's %q escapes a character Unicode does not print
		// (U+00A0) as \u, the time package every byte past ASCII as \xNN;
		// a " both as \".
		{"agent.idleTimeout", "idle-timeout", "5\u00a0s", "5\u00a0s", `invalid value "5\u00a0s" for flag -idle-timeout: ` +
			`time: unknown unit "\xc2\xa0s" in duration "5\xc2\xa0s"`, 2, "agent.idleTimeout is 5\u00a0s, not a duration " +
			`the agent would read: the agent would not start (invalid value "5\u00a0s" for flag -idle-timeout: time: ` +
			`unknown unit "\xc2\xa0s" in duration "5\xc2\xa0s")`},
		{"agent.sendTimeout", "send-timeout", `a"b`, `a"b`, `invalid value "a\"b" for flag -send-timeout: time: invalid ` +
			`duration "a\"b"`, 2, `agent.sendTimeout is a"b, not a duration the agent would read: the agent would not ` +
			`start (invalid value "a\"b" for flag -send-timeout: time: invalid duration "a\"b")`},
		{"agent.statsInterval", "stats-interval", `1\s`, `1\s`, `invalid value "1\\s" for flag -stats-interval: parse ` +
			`error`, 2, `agent.statsInterval is 1\s, not a duration the agent would read: the agent would not start ` +
			`(invalid value "1\\s" for flag -stats-interval: parse error)`},
		// The time package quotes a byte past ASCII as \xNN, where the flag
		// package's %q keeps µ.
		{"agent.idleTimeout", "idle-timeout", "9999999999999999999µs", "9999999999999999999µs", "invalid value " +
			"\"9999999999999999999µs\" for flag -idle-timeout: time: invalid duration \"9999999999999999999\\xc2\\xb5s\"", 2,
			parse("agent.idleTimeout", "9999999999999999999µs", "the agent", "idle-timeout",
				"time: invalid duration \"9999999999999999999\\xc2\\xb5s\"")},
		{"agent.sendTimeout", "send-timeout", "5μx", "5μx", "invalid value \"5μx\" for flag -send-timeout: time: unknown " +
			"unit \"\\xce\\xbcx\" in duration \"5\\xce\\xbcx\"", 2, parse("agent.sendTimeout", "5μx", "the agent",
			"send-timeout", "time: unknown unit \"\\xce\\xbcx\" in duration \"5\\xce\\xbcx\"")},
		// A sum of exactly 2^63 ns is not past it until the end: Go reads
		// on to the x.
		{"agent.sendTimeout", "send-timeout", "2562047h47m16.854775808s5x", "2562047h47m16.854775808s5x", "invalid value " +
			"\"2562047h47m16.854775808s5x\" for flag -send-timeout: time: unknown unit \"x\" in duration " +
			"\"2562047h47m16.854775808s5x\"", 2, parse("agent.sendTimeout", "2562047h47m16.854775808s5x", "the agent",
			"send-timeout", "time: unknown unit \"x\" in duration \"2562047h47m16.854775808s5x\"")},
		// Many parts before the one past the bound: Go's message, quoted
		// whole. How fast the chart sums them (once, not once a prefix) is
		// not checked here: a test asserts behaviour, not time.
		{"agent.idleTimeout", "idle-timeout", manyParts, manyParts, "invalid value \"" + manyParts + "\" for flag " +
			"-idle-timeout: time: invalid duration \"" + manyParts + "\"", 2, parse("agent.idleTimeout", manyParts,
			"the agent", "idle-timeout", "time: invalid duration \""+manyParts+"\"")},
		{"agent.readHeaderTimeout", "read-header-timeout", "99999999999999999999", "99999999999999999999", "invalid value " +
			"\"99999999999999999999\" for flag -read-header-timeout: time: invalid duration \"99999999999999999999\"", 2,
			parse("agent.readHeaderTimeout", "99999999999999999999", "the agent", "read-header-timeout",
				"time: invalid duration \"99999999999999999999\"")},
		{"agent.sendTimeout", "send-timeout", "1.5.s", "1.5.s", "invalid value \"1.5.s\" for flag -send-timeout: time: " +
			"missing unit in duration \"1.5.s\"", 2, parse("agent.sendTimeout", "1.5.s", "the agent", "send-timeout",
			"time: missing unit in duration \"1.5.s\"")},
		{"agent.requestBodyTimeout", "request-body-timeout", 5, "5", "invalid value \"5\" for flag -request-body-timeout: " +
			"time: missing unit in duration \"5\"", 2, parse("agent.requestBodyTimeout", "5", "the agent",
			"request-body-timeout", "time: missing unit in duration \"5\"")},
		{"agent.requestBodyTimeout", "request-body-timeout", "-0s", "-0s", notAboveZero("request-body-timeout", "-0s", "1m0s"),
			2, "agent.requestBodyTimeout is -0s, which the agent refuses at its start (" +
				notAboveZero("request-body-timeout", "-0s", "1m0s")},
	} {
		component, key, _ := strings.Cut(tt.name, ".")
		values, err := json.Marshal(map[string]any{component: map[string]any{key: tt.value}})
		if err != nil {
			t.Fatal(err)
		}
		assertRenderedWithoutSchema(t, string(values), tt.want)
		if tt.want != "" && tt.says != noCluster && !strings.Contains(tt.want, tt.says) {
			t.Errorf("%s=%v: the chart's refusal %q does not quote the binary's %q", tt.name, tt.value, tt.want, tt.says)
		}
		rendered := tt.rendered
		if rendered == "" {
			rendered = renderedFlag(t, renderOpts{skipSchema: true}, string(values), component, tt.flag)
		}
		cmd := cmds[component]
		exit, out := runBinary(t, cmd, "--"+tt.flag+"="+rendered)
		if exit != tt.exit || !strings.Contains(out, tt.says) {
			t.Errorf("%q --%s=%s exited %d, saying: %s\nwant exit %d, saying %q", cmd, tt.flag, rendered, exit, out, tt.exit, tt.says)
		}
	}
}

// TestChartRefusesMetricsAddressesWithoutTheSchema: under `helm install
// --skip-schema-validation` the chart refuses a metricsBindAddress the
// schema would, as it does the health addresses: anything but a host:port
// (by the schema's pattern) or 0. A null rendered
// --metrics-bind-address=0, turning the metrics off without a word; ""
// and garbage rendered a metrics port and Service the API server or the
// binary refuses; the manager's $(HOST_IP), which its pod does not set,
// reached the manager unexpanded.
func TestChartRefusesMetricsAddressesWithoutTheSchema(t *testing.T) {
	set := func(def string) string {
		return "Set a host:port, as " + def + " (the default), or 0 to turn them off; the schema, skipped here, " +
			"requires a host:port or 0"
	}
	notHostPort := func(c, is, def string) string {
		who := map[string]string{"manager": "the manager", "agent": "the agents"}[c]
		return c + ".metricsBindAddress is " + is + ", not a host:port: " + who + " could not listen on it, nor " +
			"could the chart render a metrics port and Service from it. " + set(def)
	}
	for _, tt := range []struct{ values, want string }{
		{"manager: {metricsBindAddress: null}", "manager.metricsBindAddress is null (unset), which the chart would " +
			"render as 0, turning the manager's metrics off without a word. " + set(":8080")},
		{"agent: {metricsBindAddress: ~}", "agent.metricsBindAddress is null (unset), which the chart would render " +
			"as 0, turning the agents' metrics off without a word. " + set(":9441")},
		{`manager: {metricsBindAddress: ""}`, `manager.metricsBindAddress is "", which the manager takes as off, ` +
			"while the chart would render a metrics port and Service with no port number. " + set(":8080")},
		{`agent: {metricsBindAddress: ""}`, `agent.metricsBindAddress is "", which the agents take as off`},
		{`manager: {metricsBindAddress: "$(HOST_IP):8080"}`, "manager.metricsBindAddress is $(HOST_IP):8080, which " +
			"the manager's pod does not set: the manager would get it unexpanded and could not listen, failing at its " +
			"start. Set a host:port, as :8080 (the default), or 0 to turn them off; the schema, skipped here, refuses " +
			"$(HOST_IP) for the manager"},
		{"manager: {metricsBindAddress: garbage}", notHostPort("manager", "garbage", ":8080")},
		{"manager: {metricsBindAddress: 8080}", notHostPort("manager", "8080", ":8080")},
		{"agent: {metricsBindAddress: false}", notHostPort("agent", "false", ":9441")},
		{`agent: {metricsBindAddress: "off"}`, notHostPort("agent", "off", ":9441")},
		{`agent: {metricsBindAddress: ":0"}`, notHostPort("agent", ":0", ":9441")},
		{`agent: {metricsBindAddress: ":99999"}`, notHostPort("agent", ":99999", ":9441")},
		{`manager: {metricsBindAddress: "::1:8080"}`, notHostPort("manager", "::1:8080", ":8080")},
		{"manager: {metricsBindAddress: 0}\nagent: {metricsBindAddress: \"0\"}", ""},
		{"manager: {metricsBindAddress: 0.0}\nagent: {metricsBindAddress: 0}", ""},
		{"manager: {metricsBindAddress: \"[::1]:65535\"}\nagent: {metricsBindAddress: \"$(HOST_IP):1\"}", ""},
	} {
		assertRenderedWithoutSchema(t, tt.values, tt.want)
	}
}

// TestSchemaCoversEveryValue: every key of values.yaml is a property in
// values.schema.json, so that the schema keeps up with new values.
func TestSchemaCoversEveryValue(t *testing.T) {
	var schema map[string]any
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	defs, _ := schema["definitions"].(map[string]any)
	resolve := func(s map[string]any) map[string]any {
		if ref, ok := s["$ref"].(string); ok {
			return defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
		}
		return s
	}
	var walk func(path []string, values map[string]any, s map[string]any)
	walk = func(path []string, values map[string]any, s map[string]any) {
		s = resolve(s)
		props, _ := s["properties"].(map[string]any)
		for k, v := range values {
			p := append(slices.Clone(path), k)
			sub, ok := props[k].(map[string]any)
			if !ok {
				if _, free := s["additionalProperties"].(map[string]any); free || s["additionalProperties"] == nil && props == nil {
					continue // a free-form map (resources, nodeSelector, ...)
				}
				t.Errorf("values.schema.json has no property %s", strings.Join(p, "."))
				continue
			}
			if m, ok := v.(map[string]any); ok {
				walk(p, m, sub)
			}
		}
	}
	walk(nil, readValues(t, filepath.Join(chartDir, "values.yaml")), schema)
}

// TestChartCopiesAreCurrent: the chart's copies of files of config/ are
// what `make manifests` copies: the CRDs, the manager's ClusterRole, the
// revision policy and the agents' node and lease isolation policies, with
// their bindings.
func TestChartCopiesAreCurrent(t *testing.T) {
	bases, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	copies, _ := filepath.Glob(filepath.Join(chartDir, "files", "crds", "*.yaml"))
	pairs := map[string]string{
		filepath.Join(root, "config", "rbac", "role.yaml"): filepath.Join(chartDir, "files", "rbac", "manager-role.yaml"),
	}
	for _, f := range []string{"revision_policy.yaml", "revision_policy_binding.yaml"} {
		pairs[filepath.Join(root, "config", "admission", f)] = filepath.Join(chartDir, "files", "admission", f)
	}
	for _, f := range []string{"node_isolation_policy.yaml", "node_isolation_policy_binding.yaml",
		"lease_isolation_policy.yaml", "lease_isolation_policy_binding.yaml"} {
		pairs[filepath.Join(root, "config", "rbac", f)] = filepath.Join(chartDir, "files", "rbac", f)
	}
	for _, b := range bases {
		pairs[b] = filepath.Join(chartDir, "files", "crds", filepath.Base(b))
	}
	if len(copies) != len(bases) {
		t.Errorf("charts/ferry/files/crds has %d files, config/crd/bases %d", len(copies), len(bases))
	}
	for src, dst := range pairs {
		a, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s is not a copy of %s; run make manifests", rel(dst), rel(src))
		}
	}

	// And the rendered CRDs are the generated ones, plus labels and the
	// keep annotation.
	rendered := ofKind(render(t, renderOpts{}), "CustomResourceDefinition")
	for _, b := range bases {
		data, _ := os.ReadFile(b)
		want, err := decode(data)
		if err != nil {
			t.Fatal(err)
		}
		got := find(t, rendered, "CustomResourceDefinition", want[0].GetName())
		if !reflect.DeepEqual(got.Object["spec"], want[0].Object["spec"]) {
			t.Errorf("the chart's %s differs from %s", got.GetName(), rel(b))
		}
	}
	role := find(t, render(t, renderOpts{}), "ClusterRole", "ferry-manager")
	data, _ := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	want, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(role.Object["rules"], want[0].Object["rules"]) {
		t.Errorf("the chart's manager ClusterRole differs from config/rbac/role.yaml")
	}
}

// TestChartMatchesConfig: rendered with default values, named like
// config/ (fullnameOverride=ferry) and in ferry-system, the chart makes the
// same objects as `kubectl kustomize config/default`, with the same
// contents but for labels, images and selectors; and with
// agent.secretEnv=true, the same as config/default with the
// agent-secret-env component (config/components).
func TestChartMatchesConfig(t *testing.T) {
	for _, tt := range []struct {
		sets  []string
		dir   string // kustomized, relative to config/
		named string
	}{
		{nil, "default", "config/default"},
		{[]string{"agent.secretEnv=true"}, "../test/packaging/testdata/secret-env", "config/default + components/agent-secret-env"},
	} {
		t.Run(tt.named, func(t *testing.T) {
			chart := byKindName(render(t, renderOpts{sets: append([]string{"fullnameOverride=ferry"}, tt.sets...)}))
			config := byKindName(kustomize(t, tt.dir))
			delete(config, "Namespace/ferry-system") // Helm's --namespace / --create-namespace
			if a, b := sortedKeys(chart), sortedKeys(config); !slices.Equal(a, b) {
				t.Fatalf("objects differ:\n chart  %q\n config %q", a, b)
			}
			for key, c := range chart {
				a, b := comparable(c), comparable(config[key])
				if !reflect.DeepEqual(a, b) {
					ay, _ := yaml.Marshal(a)
					by, _ := yaml.Marshal(b)
					t.Errorf("%s differs between the chart and config/:\n--- chart\n%s\n--- config\n%s", key, ay, by)
				}
			}
		})
	}
}

// byKindName indexes objects by kindName.
func byKindName(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	m := make(map[string]*unstructured.Unstructured, len(objs))
	for _, o := range objs {
		m[kindName(o)] = o
	}
	return m
}

// comparable strips what legitimately differs between the chart and
// config/: labels, annotations, images and label selectors.
func comparable(o *unstructured.Unstructured) map[string]any {
	c := o.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "labels")
	unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	switch c.GetKind() {
	case "Deployment", "DaemonSet":
		unstructured.RemoveNestedField(c.Object, "spec", "selector")
		unstructured.RemoveNestedField(c.Object, "spec", "template", "metadata")
		cs, _, _ := unstructured.NestedSlice(c.Object, "spec", "template", "spec", "containers")
		for _, ct := range cs {
			delete(ct.(map[string]any), "image")
			delete(ct.(map[string]any), "imagePullPolicy")
		}
		_ = unstructured.SetNestedSlice(c.Object, cs, "spec", "template", "spec", "containers")
	case "Service":
		unstructured.RemoveNestedField(c.Object, "spec", "selector")
	}
	return c.Object
}

// knob is one documented value of values.yaml.
type knob struct {
	path  []string
	value any
}

// valueKnobs returns the documented values of values.yaml, failing the
// test for any undocumented one. A value is documented by a comment block
// right above its key whose first line starts with "# --"; a key without
// one must be a map of documented values (a group).
func valueKnobs(t *testing.T) []knob {
	t.Helper()
	path := filepath.Join(chartDir, "values.yaml")
	values := readValues(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keyLine := regexp.MustCompile(`^( *)"?([A-Za-z0-9_./-]+)"?:`)
	documented := map[string]bool{}
	type frame struct {
		indent int
		key    string
	}
	var stack []frame
	var comment []string
	listIndent := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case trimmed == "":
			comment = nil
			continue
		case strings.HasPrefix(trimmed, "#"):
			comment = append(comment, trimmed)
			continue
		case listIndent >= 0 && (indent > listIndent || strings.HasPrefix(trimmed, "- ")):
			comment = nil
			continue // inside a list value
		case strings.HasPrefix(trimmed, "- "):
			listIndent = indent
			comment = nil
			continue
		}
		listIndent = -1
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("values.yaml: cannot parse %q", line)
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, frame{indent, m[2]})
		keys := make([]string, len(stack))
		for i, fr := range stack {
			keys[i] = fr.key
		}
		documented[strings.Join(keys, ".")] = len(comment) > 0 && strings.HasPrefix(comment[0], "# --")
		comment = nil
	}
	var knobs []knob
	var walk func(prefix []string, m map[string]any)
	walk = func(prefix []string, m map[string]any) {
		for _, k := range sortedKeys(m) {
			p := append(slices.Clone(prefix), k)
			name := strings.Join(p, ".")
			doc, seen := documented[name]
			switch sub, isMap := m[k].(map[string]any); {
			case !seen:
				t.Fatalf("values.yaml: the line scanner missed %s", name)
			case doc:
				knobs = append(knobs, knob{p, m[k]})
			case isMap && len(sub) > 0:
				walk(p, sub)
			default:
				t.Errorf("values.yaml: %s has no \"# --\" comment", name)
			}
		}
	}
	walk(nil, values)
	return knobs
}

func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]any{}
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func lookup(m map[string]any, path []string) (any, bool) {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func setPath(path []string, v any) map[string]any {
	out := map[string]any{}
	cur := out
	for _, k := range path[:len(path)-1] {
		next := map[string]any{}
		cur[k] = next
		cur = next
	}
	cur[path[len(path)-1]] = v
	return out
}

// nested returns the field at path, failing the test when it is missing or
// not a T.
func nested[T any](t *testing.T, obj map[string]any, path ...string) T {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil || !ok {
		t.Fatalf("no field %s: %v", strings.Join(path, "."), err)
	}
	tv, ok := v.(T)
	if !ok {
		t.Fatalf("field %s is a %T", strings.Join(path, "."), v)
	}
	return tv
}

// container returns the only container of a workload.
func container(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs := nested[[]any](t, o.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("%s has %d containers, want 1", kindName(o), len(cs))
	}
	return cs[0].(map[string]any)
}

func kindName(o *unstructured.Unstructured) string { return o.GetKind() + "/" + o.GetName() }

func kindNames(objs []*unstructured.Unstructured) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = kindName(o)
	}
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func rel(p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// TestAgentProbesFollowALoopbackBind: the kubelet probes a hostNetwork
// pod at the node's IP; an agent bound to the loopback address alone is
// probed there instead, rather than failing its liveness probe forever
// (and being restarted, with its node's workers).
func TestAgentProbesFollowALoopbackBind(t *testing.T) {
	for _, tt := range []struct {
		addr, want string
	}{
		{":9442", ""},
		{"0.0.0.0:9442", ""},
		{"127.0.0.1:9442", "127.0.0.1"},
		{"127.0.0.2:9442", "127.0.0.2"},
		{"localhost:9442", "localhost"},
		{"[::1]:9442", "::1"},
		// Any case, a trailing dot, the other names of loopback, ::1
		// written out, IPv4-mapped: asked as written, lowercase, undotted.
		{"LOCALHOST:9442", "localhost"},
		{"localhost.:9442", "localhost"},
		{"ip6-localhost:9442", "ip6-localhost"},
		{"IP6-Loopback.:9442", "ip6-loopback"},
		// RHEL's and Fedora's /etc/hosts, which the agent's pod, in the
		// node's network, copies.
		{"localhost4:9442", "localhost4"},
		{"localhost6:9442", "localhost6"},
		{"LOCALHOST.LocalDomain.:9442", "localhost.localdomain"},
		{"localhost6.localdomain6:9442", "localhost6.localdomain6"},
		{"localhost.localdomain.example.com:9442", ""},
		{"[0:0:0:0:0:0:0:1]:9442", "0:0:0:0:0:0:0:1"},
		{"[0::0001]:9442", "0::0001"},
		{"[::ffff:127.0.0.1]:9442", "::ffff:127.0.0.1"},
		{"[::FFFF:7f00:2]:9442", "::ffff:7f00:2"},
		{"[::ffff:10.0.0.1]:9442", ""},
		{"[::2]:9442", ""},
		{"[::10]:9442", ""},
		{"[1::1]:9442", ""},
		{"localhost.example.com:9442", ""},
		{"127.0.0.1.nip.io:9442", ""},
		// The ports at the schema's bounds.
		{":1", ""},
		{"127.0.0.1:65535", "127.0.0.1"},
	} {
		ds := find(t, render(t, renderOpts{sets: []string{"agent.healthProbeBindAddress=" + tt.addr}}), "DaemonSet", "agent")
		containers := nested[[]any](t, ds.Object, "spec", "template", "spec", "containers")
		agent := containers[0].(map[string]any)
		for _, probe := range []string{"livenessProbe", "readinessProbe"} {
			get := nested[map[string]any](t, agent, probe, "httpGet")
			if host, _ := get["host"].(string); host != tt.want {
				t.Errorf("healthProbeBindAddress %q: %s host %q, want %q", tt.addr, probe, host, tt.want)
			}
		}
	}
}

// TestManagerProbesFollowALoopbackBind: the kubelet probes the manager's
// pod at the pod's IP, and a probe's host names an address of the node's,
// never the pod's loopback: a manager bound to a loopback address alone
// (as the local stack's, testdata/local.yaml) serves its endpoints to its
// pod only, and gets no probes and no health port, as with 0, rather than
// fail its liveness probe forever (and be restarted for it).
func TestManagerProbesFollowALoopbackBind(t *testing.T) {
	for _, tt := range []struct {
		addr   string
		probed bool
	}{
		{":8081", true},
		{"0.0.0.0:18081", true},
		{"127.0.0.1:8081", false},
		{"127.9.9.9:18081", false},
		{"localhost:8081", false},
		{"[::1]:8081", false},
		{"LOCALHOST.:8081", false},
		{"ip6-localhost:8081", false},
		{"ip6-loopback:8081", false},
		{"localhost4:8081", false},
		{"localhost6.localdomain6:8081", false},
		{"Localhost.Localdomain:8081", false},
		{"[0:0:0:0:0:0:0:1]:8081", false},
		{"[::ffff:127.0.0.1]:8081", false},
		{"[::ffff:10.0.0.1]:8081", true},
		{"localhost.example.com:8081", true},
		{"0", false},
	} {
		deployment := find(t, render(t, renderOpts{sets: []string{"manager.healthProbeBindAddress=" + tt.addr}}),
			"Deployment", "manager")
		manager := container(t, deployment)
		for _, probe := range []string{"livenessProbe", "readinessProbe"} {
			if _, has := manager[probe]; has != tt.probed {
				t.Errorf("healthProbeBindAddress %q: %s rendered %t, want %t", tt.addr, probe, has, tt.probed)
			}
		}
		health := false
		ports, _ := manager["ports"].([]any)
		for _, p := range ports {
			health = health || p.(map[string]any)["name"] == "health"
		}
		if health != tt.probed {
			t.Errorf("healthProbeBindAddress %q: health port rendered %t, want %t", tt.addr, health, tt.probed)
		}
		if arg := "--health-probe-bind-address=" + tt.addr; !slices.Contains(args(t, deployment), arg) {
			t.Errorf("healthProbeBindAddress %q: the manager's arguments lack %s", tt.addr, arg)
		}
		// A loopback address, unlike 0, is no choice to go without probes:
		// the install's notes say what it costs and what to bind instead
		// (without the CRDs, which the test API server has, unowned).
		notes, err := helm(testContext(t), "install", "ferry", chartDir, "--namespace", "ferry-system",
			"--dry-run=client", "--set", "crds.enabled=false", "--set", "manager.healthProbeBindAddress="+tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		said := "manager.healthProbeBindAddress is " + tt.addr + ", a loopback\naddress, which no probe reaches: " +
			"the manager's pod has no probes, so the\nkubelet takes it as ready once it runs, and does not restart " +
			"a manager that\nhangs. For probes, bind an address the kubelet reaches, as :8081"
		if loopback := !tt.probed && tt.addr != "0"; strings.Contains(notes, said) != loopback {
			_, shown, _ := strings.Cut(notes, "NOTES:")
			t.Errorf("healthProbeBindAddress %q: NOTES saying %q: %t, want %t; NOTES:%s", tt.addr, said, !loopback, loopback,
				shown)
		}
	}
}

// TestMetricsServicesFollowALoopbackBind: metrics bound to a loopback
// address alone are reached from their own network namespace only (inside
// the manager's pod, on an agent's node): the chart renders no metrics
// Service for them, which would have no endpoint that answers, refuses
// the ServiceMonitor metrics.serviceMonitor.enabled asks for, which would
// scrape nothing, and the install's notes say so. The metrics themselves
// stay on, at the address given.
func TestMetricsServicesFollowALoopbackBind(t *testing.T) {
	for _, tt := range []struct {
		component, addr string
		scraped         bool
	}{
		{"manager", ":8080", true},
		{"manager", "127.0.0.1:8080", false},
		{"manager", "[::1]:8080", false},
		{"manager", "localhost.example.com:8080", true},
		{"agent", "$(HOST_IP):9441", true},
		{"agent", "LOCALHOST.:9441", false},
		{"agent", "[::ffff:127.0.0.1]:9441", false},
	} {
		set := tt.component + ".metricsBindAddress=" + tt.addr
		objs := render(t, renderOpts{sets: []string{set}})
		service := slices.ContainsFunc(ofKind(objs, "Service"), func(o *unstructured.Unstructured) bool {
			return o.GetName() == "ferry-"+tt.component+"-metrics"
		})
		if service != tt.scraped {
			t.Errorf("%s: metrics Service rendered %t, want %t", set, service, tt.scraped)
		}
		if arg := "--metrics-bind-address=" + tt.addr; !slices.Contains(args(t, workload(t, objs, tt.component)), arg) {
			t.Errorf("%s: the %s's arguments lack %s", set, tt.component, arg)
		}
		loopback := tt.component + ".metricsBindAddress is " + tt.addr + ", a loopback address,"
		// Beside the other component's metrics, scraped, a ServiceMonitor
		// is rendered for the other alone.
		enabled := "metrics.serviceMonitor.enabled=true"
		monitors := kindNames(ofKind(render(t, renderOpts{sets: []string{set, enabled}}), "ServiceMonitor"))
		if want := "ServiceMonitor/ferry-" + tt.component; slices.Contains(monitors, want) != tt.scraped {
			t.Errorf("%s with a ServiceMonitor: rendered %q, want %s among them: %t", set, monitors, want, tt.scraped)
		}
		if len(monitors) == 0 {
			t.Errorf("%s with a ServiceMonitor: none rendered, want the other component's", set)
		}
		// With the other's metrics off, nothing is scraped: refused.
		other := map[string]string{"manager": "agent", "agent": "manager"}[tt.component] + ".metricsBindAddress=0"
		refusal := loopback + " reached from " + map[string]string{
			"manager": "inside the manager's pod only",
			"agent":   "each agent's node (the agents' pods use the host network) only",
		}[tt.component] + ": no Service reaches it"
		_, err := templateRaw(testContext(t), renderOpts{sets: []string{set, other, enabled}})
		switch {
		case tt.scraped && err != nil:
			t.Errorf("%s, %s with a ServiceMonitor refused: %v", set, other, err)
		case !tt.scraped && (err == nil || !strings.Contains(err.Error(), refusal) ||
			!strings.Contains(err.Error(), "metrics.serviceMonitor.enabled asks for ServiceMonitors that would scrape nothing")):
			t.Errorf("%s, %s with a ServiceMonitor: want refused with %q, got: %v", set, other, refusal, err)
		}
		// Without the CRDs, which the test API server has, unowned.
		notes, err := helm(testContext(t), "install", "ferry", chartDir, "--namespace", "ferry-system",
			"--dry-run=client", "--set", "crds.enabled=false", "--set", set)
		if err != nil {
			t.Fatal(err)
		}
		forward := map[string]string{
			"manager": "kubectl -n ferry-system port-forward deploy/ferry-manager 8080:metrics",
			"agent":   "kubectl -n ferry-system port-forward daemonset/ferry-agent 9441:metrics",
		}[tt.component]
		said := strings.Contains(notes, loopback) && strings.Contains(notes, forward) &&
			strings.Contains(notes, "no Service reaches it, so the chart\nrenders no metrics Service")
		if said == tt.scraped {
			_, shown, _ := strings.Cut(notes, "NOTES:")
			t.Errorf("%s: NOTES saying it is a loopback address no metrics Service renders for, and how to port-forward: %t, want %t; NOTES:%s",
				set, said, !tt.scraped, shown)
		}
	}
}

// TestServiceMonitorsNeedAComponentScraped: metrics.serviceMonitor.enabled
// is refused only when no component's metrics are scraped, each on a
// loopback address alone or off (0), the refusal naming why for each; one
// component scraped is enough, and gets its ServiceMonitor.
func TestServiceMonitorsNeedAComponentScraped(t *testing.T) {
	for _, tt := range []struct {
		values, want string // want "" when accepted
	}{
		{"manager: {metricsBindAddress: \"127.0.0.1:8080\"}\nagent: {metricsBindAddress: \"127.0.0.1:9441\"}\n" +
			"metrics: {serviceMonitor: {enabled: true}}",
			"manager.metricsBindAddress is 127.0.0.1:8080, a loopback address, reached from inside the manager's pod " +
				"only: no Service reaches it; agent.metricsBindAddress is 127.0.0.1:9441, a loopback address, reached " +
				"from each agent's node (the agents' pods use the host network) only: no Service reaches it: the chart " +
				"renders no metrics Service for either, and metrics.serviceMonitor.enabled asks for ServiceMonitors " +
				"that would scrape nothing"},
		{"manager: {metricsBindAddress: 0}\nagent: {metricsBindAddress: \"[::1]:9441\"}\n" +
			"metrics: {serviceMonitor: {enabled: true}}",
			"manager.metricsBindAddress is 0, which turns the manager's metrics off; agent.metricsBindAddress is [::1]:9441"},
		{"manager: {metricsBindAddress: 0}\nagent: {metricsBindAddress: \"0\"}\nmetrics: {serviceMonitor: {enabled: true}}",
			"manager.metricsBindAddress is 0, which turns the manager's metrics off; agent.metricsBindAddress is 0, " +
				"which turns the agents' metrics off: the chart renders no metrics Service for either"},
		{"agent: {metricsBindAddress: \"127.0.0.1:9441\"}\nmetrics: {serviceMonitor: {enabled: true}}", ""},
		{"manager: {metricsBindAddress: \"localhost:8080\"}\nagent: {metricsBindAddress: 0}", ""},
	} {
		assertRendered(t, tt.values, tt.want, "")
	}
}

// TestServiceMonitorsScrapeSecureMetrics: where metrics are secure (the
// default) the ServiceMonitors scrape over HTTPS, skipping the self-signed
// certificate, with the token of a Secret (authorization.credentials):
// the chart's scraper's, or the one metrics.serviceMonitor.tokenSecret
// names, in which case the chart makes no scraper. Where they are not, in
// plain HTTP with no token, and no scraper either. No ServiceMonitor reads
// a file of Prometheus's (bearerTokenFile, deprecated by the Prometheus
// Operator, and refused where arbitraryFSAccessThroughSMs is denied).
func TestServiceMonitorsScrapeSecureMetrics(t *testing.T) {
	enabled := "metrics.serviceMonitor.enabled=true"
	for _, c := range []struct {
		sets    []string
		scheme  string
		secret  string // the Secret the endpoints' credentials name, key
		scraper bool   // the chart makes the scraper
	}{
		{[]string{enabled}, "https", "ferry-metrics-scraper-token/token", true},
		{[]string{enabled, "metrics.serviceMonitor.tokenSecret.name=prometheus-token",
			"metrics.serviceMonitor.tokenSecret.key=jwt"}, "https", "prometheus-token/jwt", false},
		{[]string{enabled, "manager.metricsSecure=false", "agent.metricsSecure=false"}, "", "", false},
	} {
		objs := render(t, renderOpts{sets: c.sets})
		sms := ofKind(objs, "ServiceMonitor")
		if len(sms) != 2 {
			t.Fatalf("%v: %d ServiceMonitors, want 2", c.sets, len(sms))
		}
		for _, sm := range sms {
			ep := nested[[]any](t, sm.Object, "spec", "endpoints")[0].(map[string]any)
			scheme, _ := ep["scheme"].(string)
			skip, _, _ := unstructured.NestedBool(ep, "tlsConfig", "insecureSkipVerify")
			authType, _, _ := unstructured.NestedString(ep, "authorization", "type")
			name, _, _ := unstructured.NestedString(ep, "authorization", "credentials", "name")
			key, _, _ := unstructured.NestedString(ep, "authorization", "credentials", "key")
			secret := name + "/" + key
			if c.secret == "" {
				secret = ""
			}
			if scheme != c.scheme || skip != (c.scheme == "https") || secret != c.secret ||
				(authType == "Bearer") != (c.secret != "") {
				t.Errorf("%v: ServiceMonitor %s endpoint %v, want scheme %q and the token of %q", c.sets, sm.GetName(), ep, c.scheme, c.secret)
			}
			for _, deprecated := range []string{"bearerTokenFile", "bearerTokenSecret"} {
				if _, ok := ep[deprecated]; ok {
					t.Errorf("%v: ServiceMonitor %s endpoint has %s: %v", c.sets, sm.GetName(), deprecated, ep)
				}
			}
		}
		var scraper []string
		for _, o := range objs {
			if strings.Contains(o.GetName(), "metrics-scraper") {
				scraper = append(scraper, kindName(o))
			}
		}
		want := []string{"ClusterRoleBinding/ferry-metrics-scraper", "Secret/ferry-metrics-scraper-token", "ServiceAccount/ferry-metrics-scraper"}
		if !c.scraper {
			want = nil
		}
		slices.Sort(scraper)
		if !slices.Equal(scraper, want) {
			t.Errorf("%v: scraper objects %q, want %q", c.sets, scraper, want)
		}
	}
}

// binaryEnv is the environment the chart tests run the built binaries
// in. Ours could name a node, a namespace or a cluster they would reach:
// theirs is PATH and HOME alone, with a KUBECONFIG naming no file, so
// that the manager's config fails rather than come from ~/.kube/config.
func binaryEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "KUBECONFIG=/nonexistent"}
}

// runBinary runs cmd, a built binary and its first arguments, with args
// after them in binaryEnv, under the test's context, and returns its exit
// code and all it wrote. A binary that could not be run fails the test.
func runBinary(t *testing.T, cmd []string, args ...string) (int, string) {
	t.Helper()
	run := exec.CommandContext(testContext(t), cmd[0], append(slices.Clone(cmd[1:]), args...)...)
	run.Env = binaryEnv()
	out, err := run.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("%q %q: %v", cmd, args, err)
	}
	return 0, string(out)
}
