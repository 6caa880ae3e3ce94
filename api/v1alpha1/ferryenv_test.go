package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestFerryEnvStoredBeforeTheRule: an AppGroup stored with an env name
// the agent sets for its workers (FERRY_SOCKET, a WSGI app's) before the
// API refused them (here: with the rule taken out of the
// CRD, then put back) stays updatable while its spec is unchanged, the API
// server ratcheting the rule; a change to its spec is refused with the
// rule's message, which says to rename the variable.
func TestFerryEnvStoredBeforeTheRule(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	const path = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/x-kubernetes-validations"
	out, err := env.Kubectl(ctx, "get", "crd", "appgroups.ferry.dev", "-o",
		"jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.spec.x-kubernetes-validations}")
	if err != nil {
		t.Fatal(err)
	}
	var rules []map[string]any
	if err := json.Unmarshal([]byte(out), &rules); err != nil {
		t.Fatalf("the CRD's spec rules %q: %v", out, err)
	}
	i := -1
	for n, r := range rules {
		if strings.Contains(fmt.Sprint(r["rule"]), "'FERRY_REVISION'") {
			i = n
		}
	}
	if i < 0 {
		t.Fatalf("no FERRY_REVISION rule among the CRD's spec rules: %s", out)
	}
	rule, _ := json.Marshal(rules[i])
	patch := func(op string) {
		p := fmt.Sprintf(`[{"op":"remove","path":"%s/%d"}]`, path, i)
		if op == "add" {
			p = fmt.Sprintf(`[{"op":"add","path":"%s/%d","value":%s}]`, path, i, rule)
		}
		if _, err := env.Kubectl(context.Background(), "patch", "crd", "appgroups.ferry.dev", "--type=json", "-p", p); err != nil {
			t.Fatalf("patching the AppGroup CRD: %v", err)
		}
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			patch("add")
		}
	}
	patch("remove")
	t.Cleanup(restore)

	withFerryEnv := func(name string) *unstructured.Unstructured {
		obj := decode(t, validAppGroup)
		obj.SetNamespace(ns)
		obj.SetName(name)
		setPath(t, obj.Object, "spec.app.env", []any{map[string]any{"name": "FERRY_SOCKET", "value": "/tmp/x"}})
		return obj
	}
	// The API server takes up a changed CRD a moment later: until then
	// the rule still refuses.
	until(t, "the CRD without the rule accepts FERRY_SOCKET", func() bool {
		return env.Client.Create(ctx, withFerryEnv("stored-before")) == nil
	})
	restore()
	until(t, "the CRD with the rule back refuses FERRY_SOCKET", func() bool {
		probe := withFerryEnv("probe")
		if env.Client.Create(ctx, probe) != nil {
			return true
		}
		_ = env.Client.Delete(ctx, probe)
		return false
	})

	obj := withFerryEnv("stored-before")
	get := func() {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
	}
	get()
	obj.SetLabels(map[string]string{"team": "blog"})
	if err := env.Client.Update(ctx, obj); err != nil {
		t.Fatalf("a label on an AppGroup stored with FERRY_SOCKET refused: %v", err)
	}
	get()
	setPath(t, obj.Object, "spec.pool.maxProcesses", 3)
	err = env.Client.Update(ctx, obj)
	if err == nil || !strings.Contains(err.Error(), "spec.app.env: ") || !strings.Contains(err.Error(), ferryEnvForm) {
		t.Fatalf("a spec change keeping FERRY_SOCKET: got %v, want refused naming spec.app.env with %q", err, ferryEnvForm)
	}
}

// TestAppsOwnFerryEnvNamesAccepted: env names beginning with FERRY_ that
// the agent does not set for the app's workers are the app's: a WSGI app's
// FERRY_MODE, and a Command app's FERRY_SOCKET and the loader's other
// names (a Command app has no loader). Such an AppGroup, which ran before
// the rule, also takes a spec change.
func TestAppsOwnFerryEnvNamesAccepted(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	for i, tc := range []struct {
		base  string
		names []string
	}{
		{validAppGroup, []string{"FERRY_MODE", "FERRY_REVISIONS", "FERRY_SOCKET_PATH", "FERRY_"}},
		{validCommandAppGroup, []string{"FERRY_MODE", "FERRY_SOCKET", "FERRY_APP_ROOT", "FERRY_STARTUP_FILE", "FERRY_READY_FD"}},
	} {
		obj := decode(t, tc.base)
		obj.SetNamespace(ns)
		obj.SetName(fmt.Sprintf("own-%d", i))
		var envs []any
		for _, n := range tc.names {
			envs = append(envs, map[string]any{"name": n, "value": "x"})
		}
		setPath(t, obj.Object, "spec.app.env", envs)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Errorf("%s with env %v refused: %v", obj.GetName(), tc.names, err)
			continue
		}
		setPath(t, obj.Object, "spec.pool.maxProcesses", 3)
		if err := env.Client.Update(ctx, obj); err != nil {
			t.Errorf("a spec change to %s with env %v refused: %v", obj.GetName(), tc.names, err)
		}
	}
}

// TestPoolsTakeTheAgentsEnvNames guards that the rules refusing the
// agent's worker variables are the AppGroup's alone: the manager renders
// a ProcessPool from an AppGroup stored before them, env and all, and
// that pool, created or changed, must not be refused (the agent then
// keeps its own values over the app's). A WSGI pool may hold every name
// the agent sets for a WSGI worker, a Command pool FERRY_REVISION and
// PORT.
func TestPoolsTakeTheAgentsEnvNames(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	for i, tc := range []struct {
		set   map[string]any
		names []string
	}{
		{nil, []string{"FERRY_SOCKET", "FERRY_REVISION", "FERRY_APP_ROOT", "FERRY_STARTUP_FILE", "FERRY_READY_FD"}},
		{map[string]any{"spec.template.app.type": "Command", "spec.template.app.command": []any{"./server"}},
			[]string{"FERRY_REVISION", "PORT", "FERRY_SOCKET"}},
	} {
		pp := decode(t, validProcessPool)
		pp.SetNamespace(ns)
		pp.SetName(fmt.Sprintf("stored-before-%d", i))
		for path, v := range tc.set {
			setPath(t, pp.Object, path, v)
		}
		var envs []any
		for _, n := range tc.names {
			envs = append(envs, map[string]any{"name": n, "value": "1"})
		}
		setPath(t, pp.Object, "spec.template.app.env", envs)
		if err := env.Client.Create(ctx, pp); err != nil {
			t.Errorf("a pool with env %v refused: %v", tc.names, err)
			continue
		}
		setPath(t, pp.Object, "spec.revision", "2-def")
		if err := env.Client.Update(ctx, pp); err != nil {
			t.Errorf("a new revision of a pool with env %v refused: %v", tc.names, err)
		}
	}
}

// until waits, up to the test context's minute, for ok.
func until(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
