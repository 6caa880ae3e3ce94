package packaging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferry-dev/ferry/internal/testenv"
)

var ferryCRDs = []string{"appgroups.ferry.dev", "processpools.ferry.dev"}

// TestHelmLifecycle installs the chart, upgrades it with changed values and
// uninstalls it, twice: with crds.keep (the CRDs and the AppGroups in them
// survive) and without (they go).
func TestHelmLifecycle(t *testing.T) {
	ctx := testContext(t)
	const rel, ns, appNS = "life", "ferry-life", "apps-life"

	// The control plane came up with the CRDs installed from
	// config/crd/bases; here Helm creates them. They are put back for the
	// other tests whatever happens.
	removeFerryCRDs(t)
	t.Cleanup(func() { restoreFerryCRDs(t) })

	// Install.
	out, err := helm(ctx, "install", rel, chartDir, "-n", ns, "--create-namespace")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Ferry v0.1.0 is installed in namespace ferry-life",
		"kubectl label node NODE ferry.dev/web=true",
		"kubectl get appgroups",
		"kubectl annotate appgroup hello ferry.dev/revision=2 --overwrite",
		"/srv (host path /srv)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("helm install's notes lack %q:\n%s", want, out)
		}
	}
	installed := manifest(t, rel, ns)
	wantObjs := render(t, renderOpts{release: rel, namespace: ns})
	if a, b := kindNames(installed), kindNames(wantObjs); !slices.Equal(a, b) {
		t.Fatalf("the release holds %q, helm template renders %q", a, b)
	}
	for _, o := range installed {
		if _, err := get(ctx, o); err != nil {
			t.Errorf("%s of the release: %v", kindName(o), err)
		}
	}
	waitEstablished(t, ferryCRDs...)
	for _, name := range ferryCRDs {
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		crd.SetName(name)
		live, err := get(ctx, crd)
		if err != nil {
			t.Fatal(err)
		}
		if live.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s lacks helm.sh/resource-policy: keep", name)
		}
	}
	// The CRDs serve: the sample AppGroup goes in, and `kubectl get
	// appgroups` lists it.
	ensureNamespace(t, appNS, nil)
	testenv.Eventually(t, time.Minute, "applying the sample AppGroup", func() error {
		_, err := env.Kubectl(ctx, "apply", "-n", appNS, "-k", filepath.Join(root, "config", "samples"))
		return err
	})
	if out, err := env.Kubectl(ctx, "get", "appgroups", "-n", appNS); err != nil || !strings.Contains(out, "hello") {
		t.Fatalf("kubectl get appgroups: %v\n%s", err, out)
	}

	// Values that would break the manager or the agents are refused
	// before the release changes: by the schema, or by the chart.
	for set, want := range map[string]string{
		"agent.bindAddress=not-an-ip": "at '/agent/bindAddress': 'not-an-ip' is not valid ipv4",
		"manager.agentStaleAfter=5s":  "manager.agentStaleAfter is 5s, under twice agent.heartbeatInterval (10s)",
		"agent.heartbeatInterval=0s":  "agent.heartbeatInterval is 0s: it must be above zero",
		"manager.image.tag=has space": "at '/manager/image/tag': 'has space' does not match",
	} {
		if _, err := helm(ctx, "upgrade", rel, chartDir, "-n", ns, "--reuse-values", "--set", set); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("helm upgrade --set %s: want refused with %q, got %v", set, want, err)
		}
	}
	if rev := releaseRevision(t, rel, ns); rev != 1 {
		t.Errorf("release revision %d after refused upgrades, want 1", rev)
	}

	// Upgrade with changed values.
	if _, err := helm(ctx, "upgrade", rel, chartDir, "-n", ns, "-f", filepath.Join("testdata", "upgrade.yaml")); err != nil {
		t.Fatal(err)
	}
	dep := liveObject(t, "apps/v1", "Deployment", ns, rel+"-ferry-manager")
	if r, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); r != 2 {
		t.Errorf("after upgrade the manager has %d replicas, want 2", r)
	}
	if a := args(t, dep); !slices.Contains(a, "--zap-log-level=debug") {
		t.Errorf("after upgrade the manager's args are %q", a)
	}
	ds := liveObject(t, "apps/v1", "DaemonSet", ns, rel+"-ferry-agent")
	if img := container(t, ds)["image"]; img != "ghcr.io/ferry-dev/ferry-agent:v0.2.0" {
		t.Errorf("after upgrade the agent image is %v", img)
	}
	var hostPaths []string
	for _, v := range nested[[]any](t, ds.Object, "spec", "template", "spec", "volumes") {
		if p, ok, _ := unstructured.NestedString(v.(map[string]any), "hostPath", "path"); ok {
			hostPaths = append(hostPaths, p)
		}
	}
	if want := []string{"/srv", "/opt/apps", "/var/lib/ferry"}; !slices.Equal(hostPaths, want) {
		t.Errorf("after upgrade the agent's host paths are %q, want %q", hostPaths, want)
	}
	if rev := releaseRevision(t, rel, ns); rev != 2 {
		t.Errorf("release revision %d after one upgrade", rev)
	}

	// Uninstall: everything goes but the CRDs, which keep the AppGroup.
	out, err = helm(ctx, "uninstall", rel, "-n", ns, "--wait")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "kept due to the resource policy") {
		t.Errorf("helm uninstall does not say it kept the CRDs:\n%s", out)
	}
	for _, o := range installed {
		_, err := get(ctx, o)
		switch {
		case o.GetKind() == "CustomResourceDefinition" && err != nil:
			t.Errorf("CRD %s did not survive uninstall: %v", o.GetName(), err)
		case o.GetKind() != "CustomResourceDefinition" && !apierrors.IsNotFound(err):
			t.Errorf("%s survived uninstall (%v)", kindName(o), err)
		}
	}
	if out, err := env.Kubectl(ctx, "get", "appgroup", "hello", "-n", appNS); err != nil {
		t.Errorf("the AppGroup did not survive uninstall: %v\n%s", err, out)
	}

	// Install again with crds.keep=false: Helm adopts the kept CRDs, and
	// uninstalling now deletes them.
	if _, err := helm(ctx, "install", rel, chartDir, "-n", ns, "--set", "crds.keep=false"); err != nil {
		t.Fatal(err)
	}
	for _, o := range ofKind(manifest(t, rel, ns), "CustomResourceDefinition") {
		if _, ok := o.GetAnnotations()["helm.sh/resource-policy"]; ok {
			t.Errorf("crds.keep=false: CRD %s keeps its resource policy", o.GetName())
		}
	}
	// Without a manager, no finalizer holds the AppGroup.
	if _, err := env.Kubectl(ctx, "delete", "appgroup", "hello", "-n", appNS, "--wait"); err != nil {
		t.Fatal(err)
	}
	if _, err := helm(ctx, "uninstall", rel, "-n", ns, "--wait"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, "the CRDs are deleted with crds.keep=false", func() error {
		for _, name := range ferryCRDs {
			if out, err := env.Kubectl(ctx, "get", "crd", name, "--ignore-not-found", "-o", "name"); err != nil || out != "" {
				return fmt.Errorf("CRD %s: %q %w", name, out, err)
			}
		}
		return nil
	})
}

// TestSecondReleaseRefused: with one release installed, a second one in
// another namespace (crds.enabled=false, as it would need: the first
// owns the CRDs) is refused before it creates anything, naming the first;
// the first still upgrades, and `helm template` (no cluster) renders.
func TestSecondReleaseRefused(t *testing.T) {
	ctx := testContext(t)
	const first, firstNS, second, secondNS = "first", "ferry-first", "second", "ferry-second"
	// The CRDs are the control plane's (config/crd/bases): neither
	// release owns them.
	if _, err := helm(ctx, "install", first, chartDir, "-n", firstNS, "--create-namespace", "--set", "crds.enabled=false"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = helm(context.Background(), "uninstall", first, "-n", firstNS, "--wait") })

	_, err := helm(ctx, "install", second, chartDir, "-n", secondNS, "--create-namespace", "--set", "crds.enabled=false")
	if err == nil {
		t.Cleanup(func() { _, _ = helm(context.Background(), "uninstall", second, "-n", secondNS, "--wait") })
	}
	want := "Ferry is already installed in this cluster: Helm release first in namespace ferry-first runs its manager " +
		"(Deployment ferry-first/first-ferry-manager). One Ferry per cluster: a second manager would write every AppGroup's " +
		"status too, judging the nodes by Leases it does not have. Upgrade that release (helm upgrade first -n ferry-first), " +
		"or uninstall it before installing this one"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("a second release: want refused with %q, got %v", want, err)
	}
	if out, err := helm(ctx, "list", "-n", secondNS, "-a", "-q"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("the refused release left %q (%v)", out, err)
	}
	if out, err := env.Kubectl(ctx, "get", "clusterrole", second+"-ferry-manager", "--ignore-not-found", "-o", "name"); err != nil || out != "" {
		t.Errorf("the refused release made its ClusterRole: %q %v", out, err)
	}
	// The first release is its own: it upgrades.
	if _, err := helm(ctx, "upgrade", first, chartDir, "-n", firstNS, "--reuse-values", "--set", "manager.logLevel=debug"); err != nil {
		t.Errorf("upgrading the first release: %v", err)
	}
	// helm template has no cluster to look in.
	if _, err := templateRaw(ctx, renderOpts{release: second, namespace: secondNS}); err != nil {
		t.Errorf("helm template of a second release: %v", err)
	}

	// A Ferry installed with kustomize (config/default) counts too.
	if _, err := helm(ctx, "uninstall", first, "-n", firstNS, "--wait"); err != nil {
		t.Fatal(err)
	}
	dep := find(t, kustomize(t, "manager"), "Deployment", "ferry-manager")
	ensureNamespace(t, dep.GetNamespace(), nil)
	if err := env.Client.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), dep) })
	_, err = helm(ctx, "install", second, chartDir, "-n", secondNS, "--set", "crds.enabled=false")
	if err == nil {
		t.Cleanup(func() { _, _ = helm(context.Background(), "uninstall", second, "-n", secondNS, "--wait") })
	}
	want = "Ferry is already installed in this cluster: its manager runs as Deployment ferry-system/ferry-manager, " +
		"not a Helm release's (kubectl apply -k config/default makes it)."
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("beside config/default's manager: want refused with %q, got %v", want, err)
	}
}

// TestOutdatedProcessPoolCRDRefused: with crds.enabled=false, against a
// ProcessPool CRD without the selectable field spec.nodeName (CRDs
// managed apart from the chart, not upgraded), `helm install` is refused
// before it creates anything, saying why and what to do, and so is `helm
// upgrade` of a release installed before the CRD lost it; `helm
// template` (no cluster) renders. Once the CRD declares the field, the
// upgrade goes through. Once, the agents were installed, each followed no
// pool, and the DaemonSet's rollout stopped at its first node.
func TestOutdatedProcessPoolCRDRefused(t *testing.T) {
	ctx := testContext(t)
	const rel, ns = "crd", "ferry-crd"
	want := "crds.enabled is false, and the ProcessPool CRD in this cluster (processpools.ferry.dev) lacks the selectable " +
		"field spec.nodeName (in v1alpha1) that this chart's agents list their node's pools by"
	fix := "Upgrade the CRDs first, to this chart's"
	// The CRDs are the control plane's (config/crd/bases), put back
	// whatever happens.
	t.Cleanup(func() { restoreFerryCRDs(t) })
	setSelectableNodeName(t, false)

	_, err := helm(ctx, "install", rel, chartDir, "-n", ns, "--create-namespace", "--set", "crds.enabled=false")
	if err == nil {
		t.Cleanup(func() { _, _ = helm(context.Background(), "uninstall", rel, "-n", ns, "--wait") })
	}
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fix) {
		t.Fatalf("against an outdated CRD: want refused with %q and %q, got %v", want, fix, err)
	}
	if out, err := helm(ctx, "list", "-n", ns, "-a", "-q"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("the refused release left %q (%v)", out, err)
	}
	// helm template has no cluster to look in.
	if _, err := templateRaw(ctx, renderOpts{release: rel, namespace: ns, sets: []string{"crds.enabled=false"}}); err != nil {
		t.Errorf("helm template against an outdated CRD: %v", err)
	}

	// With the CRD upgraded, it installs; an upgrade after the CRD lost
	// the field is refused, and goes through once it has it again.
	setSelectableNodeName(t, true)
	if _, err := helm(ctx, "install", rel, chartDir, "-n", ns, "--create-namespace", "--set", "crds.enabled=false"); err != nil {
		t.Fatalf("against an upgraded CRD: %v", err)
	}
	t.Cleanup(func() { _, _ = helm(context.Background(), "uninstall", rel, "-n", ns, "--wait") })
	setSelectableNodeName(t, false)
	_, err = helm(ctx, "upgrade", rel, chartDir, "-n", ns, "--reuse-values", "--set", "manager.logLevel=debug")
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("upgrading against an outdated CRD: want refused with %q, got %v", want, err)
	}
	if n := releaseRevision(t, rel, ns); n != 1 {
		t.Errorf("the refused upgrade made revision %d, want the release left at 1", n)
	}
	setSelectableNodeName(t, true)
	if _, err := helm(ctx, "upgrade", rel, chartDir, "-n", ns, "--reuse-values", "--set", "manager.logLevel=debug"); err != nil {
		t.Errorf("upgrading against an upgraded CRD: %v", err)
	}
}

// TestAbsentCRDsRefused: with crds.enabled=false, in a cluster without
// Ferry's CRDs (managed apart from the chart, not yet applied), `helm
// install` is refused before it creates anything, naming the CRDs and
// saying how to install them; `helm template` and a client-side dry run
// (no cluster to look in) render. With one CRD, it names the other; once
// both are applied, it installs.
// Before, it installed a manager and agents that had no API to watch.
func TestAbsentCRDsRefused(t *testing.T) {
	ctx := testContext(t)
	const rel, ns = "absent", "ferry-absent"
	want := "crds.enabled is false, and this cluster lacks Ferry's CRDs appgroups.ferry.dev and processpools.ferry.dev"
	fix := "Install the CRDs first, this chart's: kubectl apply --server-side -f ferry/files/crds/"
	// The CRDs are the control plane's (config/crd/bases), put back
	// whatever happens.
	t.Cleanup(func() { restoreFerryCRDs(t) })
	removeFerryCRDs(t)

	_, err := helm(ctx, "install", rel, chartDir, "-n", ns, "--create-namespace", "--set", "crds.enabled=false")
	if err == nil {
		t.Cleanup(func() { _, _ = helm(context.Background(), "uninstall", rel, "-n", ns, "--wait") })
	}
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fix) {
		t.Fatalf("without the CRDs: want refused with %q and %q, got %v", want, fix, err)
	}
	if out, err := helm(ctx, "list", "-n", ns, "-a", "-q"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("the refused release left %q (%v)", out, err)
	}
	// Neither has a cluster to look in.
	if _, err := templateRaw(ctx, renderOpts{release: rel, namespace: ns, sets: []string{"crds.enabled=false"}}); err != nil {
		t.Errorf("helm template without the CRDs: %v", err)
	}
	if _, err := helm(ctx, "install", rel, chartDir, "-n", ns, "--dry-run=client", "--set", "crds.enabled=false"); err != nil {
		t.Errorf("helm install --dry-run=client without the CRDs: %v", err)
	}

	// With one of the two, it names the other.
	if _, err := env.Kubectl(ctx, "apply", "--server-side", "-f", filepath.Join(root, "config", "crd", "bases", "ferry.dev_processpools.yaml")); err != nil {
		t.Fatal(err)
	}
	waitEstablished(t, "processpools.ferry.dev")
	_, err = helm(ctx, "install", rel, chartDir, "-n", ns, "--create-namespace", "--set", "crds.enabled=false")
	if err == nil {
		t.Cleanup(func() { _, _ = helm(context.Background(), "uninstall", rel, "-n", ns, "--wait") })
	}
	want = "crds.enabled is false, and this cluster lacks Ferry's CRD appgroups.ferry.dev: "
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("with the ProcessPool CRD only: want refused with %q, got %v", want, err)
	}

	restoreFerryCRDs(t)
	if _, err := helm(ctx, "install", rel, chartDir, "-n", ns, "--create-namespace", "--set", "crds.enabled=false"); err != nil {
		t.Fatalf("with the CRDs applied: %v", err)
	}
	t.Cleanup(func() { _, _ = helm(context.Background(), "uninstall", rel, "-n", ns, "--wait") })
}

// TestDroppingUnkeptCRDsRefused: `helm upgrade --set crds.enabled=false`
// of a release that installed the CRDs with crds.keep=false is refused
// before it changes anything, saying why and how to go on; the CRDs and
// the AppGroup in them stay, the release at its revision. Done as the
// refusal says (crds.keep=true first, crds.enabled still true), the same
// upgrade goes through and the CRDs stay. Before, Helm deleted both CRDs,
// gone from the manifest and not marked kept, and with them every AppGroup.
func TestDroppingUnkeptCRDsRefused(t *testing.T) {
	ctx := testContext(t)
	const rel, ns, appNS = "drop", "ferry-drop", "apps-drop"
	want := "crds.enabled is false, and this release installed Ferry's CRDs appgroups.ferry.dev and processpools.ferry.dev " +
		"without helm.sh/resource-policy: keep (crds.keep=false): Helm would delete them, gone from the chart, and with them " +
		"every AppGroup and ProcessPool in the cluster"
	fix := "helm upgrade drop CHART -n ferry-drop --reuse-values --set crds.keep=true (CHART: this chart, as given to this upgrade)"
	// Here Helm creates the CRDs; the control plane's (config/crd/bases)
	// are put back afterwards, without the release's ownership, whatever
	// happens.
	removeFerryCRDs(t)
	t.Cleanup(func() {
		removeFerryCRDs(t)
		restoreFerryCRDs(t)
	})
	if _, err := helm(ctx, "install", rel, chartDir, "-n", ns, "--create-namespace", "--set", "crds.keep=false"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = helm(context.Background(), "uninstall", rel, "-n", ns, "--wait") })
	waitEstablished(t, ferryCRDs...)
	ensureNamespace(t, appNS, nil)
	testenv.Eventually(t, time.Minute, "applying the sample AppGroup", func() error {
		_, err := env.Kubectl(ctx, "apply", "-n", appNS, "-k", filepath.Join(root, "config", "samples"))
		return err
	})
	// stay checks that the CRDs and the AppGroup are there, none being
	// deleted (Helm's delete returns once the API server marked them).
	stay := func(when string) {
		t.Helper()
		for _, name := range ferryCRDs {
			out, err := env.Kubectl(ctx, "get", "crd", name, "-o", "jsonpath={.metadata.deletionTimestamp}")
			if err != nil || out != "" {
				t.Errorf("%s: CRD %s deleted (%q, %v)", when, name, out, err)
			}
		}
		out, err := env.Kubectl(ctx, "get", "appgroup", "hello", "-n", appNS, "-o", "jsonpath={.metadata.deletionTimestamp}")
		if err != nil || out != "" {
			t.Errorf("%s: AppGroup hello deleted (%q, %v)", when, out, err)
		}
	}

	_, err := helm(ctx, "upgrade", rel, chartDir, "-n", ns, "--reuse-values", "--set", "crds.enabled=false")
	refused := err != nil && strings.Contains(err.Error(), want) && strings.Contains(err.Error(), fix)
	if !refused {
		t.Errorf("crds.enabled=false over CRDs without keep: want refused with %q and %q, got %v", want, fix, err)
	}
	stay("after the refused upgrade")
	if n := releaseRevision(t, rel, ns); n != 1 {
		t.Errorf("the refused upgrade made revision %d, want the release left at 1", n)
	}
	if !refused {
		t.FailNow()
	}
	// helm template has no cluster to look in.
	if _, err := templateRaw(ctx, renderOpts{release: rel, namespace: ns, sets: []string{"crds.enabled=false"}}); err != nil {
		t.Errorf("helm template with crds.enabled=false: %v", err)
	}

	// As the refusal says: keep them first, then turn crds.enabled off.
	if _, err := helm(ctx, "upgrade", rel, chartDir, "-n", ns, "--reuse-values", "--set", "crds.keep=true"); err != nil {
		t.Fatal(err)
	}
	if _, err := helm(ctx, "upgrade", rel, chartDir, "-n", ns, "--reuse-values", "--set", "crds.enabled=false"); err != nil {
		t.Fatalf("crds.enabled=false over kept CRDs: %v", err)
	}
	if crds := ofKind(manifest(t, rel, ns), "CustomResourceDefinition"); len(crds) != 0 {
		t.Errorf("with crds.enabled=false the release still holds %q", kindNames(crds))
	}
	stay("after crds.enabled=false over kept CRDs")
}

// setSelectableNodeName declares spec.nodeName a selectable field of the
// ProcessPool CRD, as config/crd/bases does, or takes it out as in a CRD
// older than the agents (testenv's SetNodeNameSelectable, failing t).
func setSelectableNodeName(t *testing.T, on bool) {
	t.Helper()
	if err := env.SetNodeNameSelectable(testContext(t), on); err != nil {
		t.Fatal(err)
	}
}

// TestAllKnobsAcceptedByAPIServer: the chart rendered with every value
// changed is accepted, object by object, by the API server (server-side dry
// run), ServiceMonitors included.
func TestAllKnobsAcceptedByAPIServer(t *testing.T) {
	ctx := testContext(t)
	objs := render(t, renderOpts{release: "knobs", namespace: "ferry-knobs", valuesFiles: []string{"all-knobs.yaml"}})
	if _, err := env.Kubectl(ctx, "apply", "--server-side", "-f", filepath.Join("testdata", "servicemonitor-crd.yaml")); err != nil {
		t.Fatal(err)
	}
	waitEstablished(t, "servicemonitors.monitoring.coreos.com")
	ensureNamespace(t, "ferry-knobs", nil)
	ensureNamespace(t, "monitoring", nil)
	dryRunApply(t, objs)
}

// TestKustomizeDefaultAcceptedByAPIServer: every object of `kubectl
// kustomize config/default` is accepted by the API server (server-side dry
// run), and is namespaced exactly when its kind is.
func TestKustomizeDefaultAcceptedByAPIServer(t *testing.T) {
	objs := kustomize(t, "default")
	want := []string{
		"ClusterRole/ferry-agent", "ClusterRole/ferry-manager", "ClusterRole/ferry-metrics-auth", "ClusterRole/ferry-metrics-reader",
		"ClusterRoleBinding/ferry-agent", "ClusterRoleBinding/ferry-manager", "ClusterRoleBinding/ferry-metrics-auth",
		"CustomResourceDefinition/appgroups.ferry.dev", "CustomResourceDefinition/processpools.ferry.dev",
		"DaemonSet/ferry-agent", "Deployment/ferry-manager", "Namespace/ferry-system",
		"Role/ferry-agent-lease", "Role/ferry-manager-leader-election",
		"RoleBinding/ferry-agent-lease", "RoleBinding/ferry-manager-leader-election",
		"Service/ferry-agent-metrics", "Service/ferry-manager-metrics",
		"ServiceAccount/ferry-agent", "ServiceAccount/ferry-manager",
		"ValidatingAdmissionPolicy/ferry-agent-lease-isolation", "ValidatingAdmissionPolicy/ferry-agent-node-isolation",
		"ValidatingAdmissionPolicy/ferry-revision",
		"ValidatingAdmissionPolicyBinding/ferry-agent-lease-isolation", "ValidatingAdmissionPolicyBinding/ferry-agent-node-isolation",
		"ValidatingAdmissionPolicyBinding/ferry-revision",
	}
	if got := kindNames(objs); !slices.Equal(got, want) {
		t.Errorf("config/default renders:\n got %q\nwant %q", got, want)
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := env.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", kindName(o), err)
		}
		namespaced := m.Scope.Name() == meta.RESTScopeNameNamespace
		if namespaced && o.GetNamespace() != "ferry-system" || !namespaced && o.GetNamespace() != "" {
			t.Errorf("%s has namespace %q (namespaced kind: %t)", kindName(o), o.GetNamespace(), namespaced)
		}
	}
	// The namespace itself must exist for its objects to be dry-run.
	ensureNamespace(t, "ferry-system", find(t, objs, "Namespace", "ferry-system").GetLabels())
	dryRunApply(t, objs)

	// And the samples are valid AppGroups.
	ensureNamespace(t, "apps-samples", nil)
	if _, err := env.Kubectl(testContext(t), "apply", "--dry-run=server", "-n", "apps-samples", "-k",
		filepath.Join(root, "config", "samples")); err != nil {
		t.Error(err)
	}
}

// TestPodSecurity: the manager's pod meets Pod Security "restricted"; the
// agent's needs "privileged" (host network, host paths), which the docs
// and NOTES say.
func TestPodSecurity(t *testing.T) {
	for _, level := range []string{"restricted", "baseline", "privileged"} {
		ensureNamespace(t, "psa-"+level, map[string]string{
			"pod-security.kubernetes.io/enforce":         level,
			"pod-security.kubernetes.io/enforce-version": "latest",
			"pod-security.kubernetes.io/warn":            level,
			"pod-security.kubernetes.io/warn-version":    "latest",
		})
	}
	for _, tt := range []struct {
		name   string
		values []string
	}{{"defaults", nil}, {"all knobs", []string{"all-knobs.yaml"}}} {
		t.Run("manager with "+tt.name, func(t *testing.T) {
			dep := find(t, render(t, renderOpts{valuesFiles: tt.values}), "Deployment", "manager")
			// A Deployment is admitted with warnings only: its pod is what
			// Pod Security enforces on.
			if stderr, err := dryRunCreate(t, "psa-restricted", podFrom(t, dep)); err != nil || stderr != "" {
				t.Errorf("the manager's pod in a restricted namespace: %v %s", err, stderr)
			}
			if stderr, err := dryRunCreate(t, "psa-restricted", dep); err != nil || stderr != "" {
				t.Errorf("the manager's Deployment in a restricted namespace: %v %s", err, stderr)
			}
		})
	}
	// A control: the same pod with privilege escalation allowed is refused,
	// so the namespace does enforce.
	t.Run("manager escalating", func(t *testing.T) {
		dep := find(t, render(t, renderOpts{sets: []string{"manager.containerSecurityContext.allowPrivilegeEscalation=true"}}), "Deployment", "manager")
		_, err := dryRunCreate(t, "psa-restricted", podFrom(t, dep))
		if err == nil || !strings.Contains(err.Error(), "allowPrivilegeEscalation != false") {
			t.Errorf("want a PodSecurity denial naming allowPrivilegeEscalation, got %v", err)
		}
	})
	t.Run("agent", func(t *testing.T) {
		ds := find(t, render(t, renderOpts{}), "DaemonSet", "agent")
		for _, level := range []string{"restricted", "baseline"} {
			_, err := dryRunCreate(t, "psa-"+level, podFrom(t, ds))
			if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") || !strings.Contains(err.Error(), "hostNetwork") {
				t.Errorf("the agent's pod in a %s namespace: want a PodSecurity denial naming hostNetwork, got %v", level, err)
			}
		}
		if stderr, err := dryRunCreate(t, "psa-privileged", podFrom(t, ds)); err != nil || stderr != "" {
			t.Errorf("the agent's pod in a privileged namespace: %v %s", err, stderr)
		}
	})
}

// podFrom makes a Pod of a workload's pod template, as its controller would.
func podFrom(t *testing.T, o *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	spec := nested[map[string]any](t, o.Object, "spec", "template", "spec")
	labels := nested[map[string]any](t, o.Object, "spec", "template", "metadata", "labels")
	pod := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": strings.ToLower(o.GetKind()) + "-pod", "labels": labels},
		"spec":     spec,
	}}
	return pod
}

// dryRunCreate creates o in namespace ns with a server-side dry run and
// returns kubectl's warnings.
func dryRunCreate(t *testing.T, ns string, o *unstructured.Unstructured) (string, error) {
	t.Helper()
	c := o.DeepCopy()
	c.SetNamespace(ns)
	cmd := exec.CommandContext(testContext(t), "kubectl", "--kubeconfig", env.Kubeconfig, "create", "--dry-run=server", "-f", "-")
	cmd.Stdin = bytes.NewReader(encode(t, []*unstructured.Unstructured{c}))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stderr.String(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stderr.String(), nil
}

// dryRunApply applies objs with a server-side dry run and checks that the
// API server took every one.
func dryRunApply(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	out, err := kubectlIn(testContext(t), encode(t, objs), "apply", "--server-side", "--force-conflicts",
		"--field-manager=ferry-packaging-test", "--dry-run=server", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "(server dry run)"); n != len(objs) {
		t.Errorf("the API server took %d of %d objects:\n%s", n, len(objs), out)
	}
}

// manifest returns the objects of an installed release.
func manifest(t *testing.T, rel, ns string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helm(testContext(t), "get", "manifest", rel, "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func releaseRevision(t *testing.T, rel, ns string) int {
	t.Helper()
	out, err := helm(testContext(t), "list", "-n", ns, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		Name     string `json:"name"`
		Revision string `json:"revision"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if r.Name == rel {
			var n int
			_, _ = fmt.Sscan(r.Revision, &n)
			return n
		}
	}
	t.Fatalf("release %s not listed: %s", rel, out)
	return 0
}

// get reads o's live object.
func get(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}, live)
	return live, err
}

func liveObject(t *testing.T, apiVersion, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	o := &unstructured.Unstructured{}
	o.SetAPIVersion(apiVersion)
	o.SetKind(kind)
	o.SetNamespace(ns)
	o.SetName(name)
	live, err := get(testContext(t), o)
	if err != nil {
		t.Fatal(err)
	}
	return live
}

// ensureNamespace creates a namespace with labels unless it exists. (The
// test control plane has no namespace controller: a deleted namespace
// would stay Terminating, so tests never delete them.)
func ensureNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	ns.SetLabels(labels)
	if err := env.Client.Create(testContext(t), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func waitEstablished(t *testing.T, names ...string) {
	t.Helper()
	args := []string{"wait", "--for=condition=Established", "--timeout=60s"}
	for _, n := range names {
		args = append(args, "crd/"+n)
	}
	if _, err := env.Kubectl(testContext(t), args...); err != nil {
		t.Fatal(err)
	}
}

// removeFerryCRDs deletes Ferry's CRDs and everything in them.
func removeFerryCRDs(t *testing.T) {
	t.Helper()
	removeFerryObjects(t, "")
	args := append([]string{"delete", "crd", "--ignore-not-found", "--wait", "--timeout=2m"}, ferryCRDs...)
	if _, err := env.Kubectl(testContext(t), args...); err != nil {
		t.Fatal(err)
	}
}

// removeFerryObjects deletes the AppGroups and ProcessPools of namespace ns
// (all when ""), finalizers notwithstanding: no manager or agent is left
// to honour them.
func removeFerryObjects(t *testing.T, ns string) {
	t.Helper()
	ctx := testContext(t)
	for _, kind := range []string{"ProcessPool", "AppGroup"} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: "ferry.dev", Version: "v1alpha1", Kind: kind + "List"})
		if err := env.Client.List(ctx, list, client.InNamespace(ns)); err != nil && !meta.IsNoMatchError(err) && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			if len(o.GetFinalizers()) > 0 {
				patch := []byte(`{"metadata":{"finalizers":null}}`)
				if err := env.Client.Patch(ctx, o, client.RawPatch("application/merge-patch+json", patch)); err != nil && !apierrors.IsNotFound(err) {
					t.Fatal(err)
				}
			}
			if err := env.Client.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		}
	}
}

// restoreFerryCRDs puts config/crd/bases back, as the control plane
// started with them, and waits until they serve.
func restoreFerryCRDs(t *testing.T) {
	t.Helper()
	ctx := testContext(t)
	testenv.Eventually(t, 2*time.Minute, "no Ferry CRD is being deleted", func() error {
		for _, name := range ferryCRDs {
			out, err := env.Kubectl(ctx, "get", "crd", name, "--ignore-not-found", "-o", "jsonpath={.metadata.deletionTimestamp}")
			if err != nil || out != "" {
				return fmt.Errorf("CRD %s deleting since %q (%w)", name, out, err)
			}
		}
		return nil
	})
	if _, err := env.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(root, "config", "crd", "bases")); err != nil {
		t.Fatal(err)
	}
	waitEstablished(t, ferryCRDs...)
	testenv.Eventually(t, time.Minute, "the ferry.dev API serves", func() error {
		_, err := env.Kubectl(ctx, "get", "appgroups,processpools", "-A")
		return err
	})
}
