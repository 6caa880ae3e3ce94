package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/spawn"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// envecho is the testdata app answering GET /NAME with $NAME.
func envecho() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "envecho")
}

func fromSecret(name, key string) *ferryv1.EnvVarSource {
	return &ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: name, Key: key}}
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

// wantEnv fails the test unless every worker behind port answers name
// with want (code 200), or, for want "", says it is unset (404).
func wantEnv(t *testing.T, port int32, name, want string) {
	t.Helper()
	for range 4 { // two workers: ask a few times
		code, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/%s", port, name))
		switch {
		case err != nil:
			t.Fatalf("GET /%s: %v", name, err)
		case want == "" && code != 404:
			t.Fatalf("GET /%s: %d %q, want it unset (404)", name, code, body)
		case want != "" && (code != 200 || body != want):
			t.Fatalf("GET /%s: %d %q, want 200 %q", name, code, body, want)
		}
	}
}

// TestEnvFromSecretAndConfigMap: a worker spawned by a real agent gets
// SECRET_KEY from a Secret and MODE from a ConfigMap, nothing for an
// optional reference to a missing Secret, and a changed Secret's value at
// the next rolling restart; no value is in the ProcessPool (status too),
// the agent's log or its saved state.
func TestEnvFromSecretAndConfigMap(t *testing.T) {
	ns := namespace(t)
	secret, secret2, mode := "sk-"+rand.String(16), "sk2-"+rand.String(16), "cm-"+rand.String(16)
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "django"}, Data: map[string][]byte{"SECRET_KEY": []byte(secret)}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"mode": mode}})
	book := agenttest.NewLogbook(t)
	state := stateDir(t)
	runAgent(t, "node-env", env.Config, state, logTo(book))
	port := freePort(t)
	pp := newPool(ns, "env-node-env", "node-env", "1-aaa", port, envecho())
	pp.Spec.Template.App.Env = []ferryv1.EnvVar{
		{Name: "SECRET_KEY", ValueFrom: fromSecret("django", "SECRET_KEY")},
		{Name: "MODE", ValueFrom: &ferryv1.EnvVarSource{ConfigMapKeyRef: &ferryv1.KeySelector{Name: "settings", Key: "mode"}}},
		{Name: "ABSENT", ValueFrom: &ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "nosuch", Key: "k", Optional: ptr.To(true)}}},
		{Name: "PLAIN", Value: "plain"},
	}
	create(t, pp)
	key := client.ObjectKeyFromObject(pp)
	got := waitPool(t, key, "rolled out", rolledOut)
	wantEnv(t, port, "SECRET_KEY", secret)
	wantEnv(t, port, "MODE", mode)
	wantEnv(t, port, "ABSENT", "")
	wantEnv(t, port, "PLAIN", "plain")

	// As a Pod's env: read at each spawn, so a rolling restart picks up
	// the changed Secret.
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "django"}, s); err != nil {
		t.Fatal(err)
	}
	s.Data["SECRET_KEY"] = []byte(secret2)
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	patchPool(t, got, func(p *ferryv1.ProcessPool) { p.Spec.Revision = "2-bbb" })
	waitPool(t, key, "revision 2 rolled out", rolledOut)
	wantEnv(t, port, "SECRET_KEY", secret2)

	values := []string{secret, secret2, mode}
	final := &ferryv1.ProcessPool{}
	if err := env.Client.Get(context.Background(), key, final); err != nil {
		t.Fatal(err)
	}
	whole, _ := json.Marshal(final)
	notIn(t, "the ProcessPool", string(whole), values)
	var logged strings.Builder
	for _, e := range book.Find("") {
		fmt.Fprintf(&logged, "%s %v %v\n", e.Msg, e.Err, e.KVs)
	}
	if !strings.Contains(logged.String(), "Spawned worker") {
		t.Fatalf("the logbook caught no spawn:\n%s", logged.String())
	}
	notIn(t, "the agent's log", logged.String(), values)
	err := filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err == nil {
			notIn(t, "the agent's state file "+path, string(data), values)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func notIn(t *testing.T, where, text string, values []string) {
	t.Helper()
	for _, v := range values {
		if strings.Contains(text, v) {
			t.Errorf("%s holds the value %q", where, v)
		}
	}
}

// TestEnvFromMissingSecretIsResisted: a new revision whose env names a
// Secret that does not exist fails its spawn with a message naming the
// Secret, its namespace and key, and what to do; the pool resists it, the
// old workers serving.
func TestEnvFromMissingSecretIsResisted(t *testing.T) {
	ns := namespace(t)
	runAgent(t, "node-nosecret", env.Config, stateDir(t))
	port := freePort(t)
	pp := newPool(ns, "env-node-nosecret", "node-nosecret", "1-aaa", port, envecho())
	pp.Spec.Template.App.Env = []ferryv1.EnvVar{{Name: "PLAIN", Value: "one"}}
	create(t, pp)
	key := client.ObjectKeyFromObject(pp)
	got := waitPool(t, key, "rolled out", rolledOut)
	patchPool(t, got, func(p *ferryv1.ProcessPool) {
		p.Spec.Revision = "2-nosecret"
		p.Spec.Template.App.Env = []ferryv1.EnvVar{{Name: "PLAIN", Value: "two"}, {Name: "SECRET_KEY", ValueFrom: fromSecret("django", "SECRET_KEY")}}
	})
	resisting := waitPool(t, key, "resistance reported", func(p *ferryv1.ProcessPool) bool {
		return meta.IsStatusConditionTrue(p.Status.Conditions, ferryv1.ConditionResistingDeploymentError)
	})
	de := resisting.Status.DeploymentError
	want := fmt.Sprintf(`could not start: env SECRET_KEY: Secret "django" in namespace %s does not exist: create it with the key "SECRET_KEY", or mark the reference optional (a pool that resists a revision for this needs a new one: kubectl ferry restart)`, ns)
	if de == nil || de.Revision != "2-nosecret" || de.Reason != want {
		t.Errorf("deploymentError = %+v, want revision 2-nosecret, reason %q", de, want)
	}
	if resisting.Status.ProcessCounts.Ready != 2 {
		t.Errorf("old processes not serving: %+v", resisting.Status.ProcessCounts)
	}
	wantEnv(t, port, "PLAIN", "one")
}

// TestPickValue: what each outcome of the read gives, and the words of
// each failure.
func TestPickValue(t *testing.T) {
	gr := schema.GroupResource{Resource: "secrets"}
	notFound := apierrors.NewNotFound(gr, "django")
	forbidden := apierrors.NewForbidden(gr, "django", errors.New("no RBAC"))
	down := errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")
	unauthorized := apierrors.NewUnauthorized("token expired")
	canceled := fmt.Errorf("Get \"https://10.0.0.1:6443/api/v1/namespaces/ns/secrets/django\": %w", context.Canceled)
	ref := ferryv1.KeySelector{Name: "django", Key: "SECRET_KEY"}
	opt := ferryv1.KeySelector{Name: "django", Key: "SECRET_KEY", Optional: ptr.To(true)}
	data := map[string]string{"SECRET_KEY": "v", "OTHER": "w"}
	cases := []struct {
		name    string
		ref     ferryv1.KeySelector
		data    map[string]string
		err     error
		value   string
		ok      bool
		wantErr string
		// unread is "" or what the spawn.EnvUnreadError (no fault of the
		// revision, tried again) allows: "stand-in" (unanswered: the
		// agent's memory of the revision's value may stand in), or "none".
		unread string
	}{
		{"found", ref, data, nil, "v", true, "", ""},
		{"empty value found", ref, map[string]string{"SECRET_KEY": ""}, nil, "", true, "", ""},
		{"no such Secret", ref, nil, notFound, "", false,
			`Secret "django" in namespace ns does not exist: create it with the key "SECRET_KEY", or mark the reference optional (a pool that resists a revision for this needs a new one: kubectl ferry restart)`, ""},
		{"no such Secret, optional", opt, nil, notFound, "", false, "", ""},
		{"no such key", ref, map[string]string{"OTHER": "w"}, nil, "", false,
			`Secret "django" in namespace ns has no key "SECRET_KEY": add it, or mark the reference optional (a pool that resists a revision for this needs a new one: kubectl ferry restart)`, ""},
		{"no such key, optional", opt, map[string]string{"OTHER": "w"}, nil, "", false, "", ""},
		{"forbidden, optional or not", opt, nil, forbidden, "", false,
			`the agent may not get Secrets in namespace ns, so cannot read key "SECRET_KEY" of Secret "django": the chart's agent.secretEnv=true grants it (docs/install.md, Who Ferry trusts); the agent tries again`, "none"},
		{"API server away, optional or not", opt, nil, down, "", false,
			`could not read Secret "django" in namespace ns (is the API server reachable from the node?); the agent tries again: ` + down.Error(), "stand-in"},
		{"credentials refused", ref, nil, unauthorized, "", false,
			`could not read Secret "django" in namespace ns (is the API server reachable from the node?); the agent tries again: ` + unauthorized.Error(), "none"},
		{"spawn given up (the pool closing)", ref, nil, canceled, "", false,
			`could not read Secret "django" in namespace ns (is the API server reachable from the node?); the agent tries again: ` + canceled.Error(), "none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			value, found := tc.data[tc.ref.Key]
			v, ok, err := pickValue("Secret", tc.ref, "ns", value, found, tc.err)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if v != tc.value || ok != tc.ok || gotErr != tc.wantErr {
				t.Errorf("pickValue = %q, %v, %q; want %q, %v, %q", v, ok, gotErr, tc.value, tc.ok, tc.wantErr)
			}
			unread := ""
			if u := (*spawn.EnvUnreadError)(nil); errors.As(err, &u) {
				unread = map[bool]string{false: "none", true: "stand-in"}[u.Unanswered]
			}
			if unread != tc.unread {
				t.Errorf("pickValue's error %v: unread %q, want %q", err, unread, tc.unread)
			}
		})
	}
}

// grant gives user the rules (YAML, a list) cluster-wide, until the test
// ends.
func grant(t *testing.T, user, name, rules string) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: %[1]s}
rules: %[3]s
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %[1]s}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: %[2]s}]
`, name, user, rules)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := env.Kubectl(context.Background(), "apply", "-f", path); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = env.Kubectl(context.Background(), "delete", "--ignore-not-found", "-f", path) })
}

// TestEnvFromForbiddenSaysWhatGrantsIt: an agent with the chart's RBAC
// without agent.secretEnv (ProcessPools and Leases only), restarting onto
// a revision with a valueFrom, fails the spawn with a message naming the
// Secret, the key and the value that grants it; the pool neither resists
// the revision nor reports it as one that cannot start (ScalingError
// SpawnBlocked, which the manager does not hold against it), the old
// processes serving; once granted get on Secrets, the restart completes
// with no new revision.
func TestEnvFromForbiddenSaysWhatGrantsIt(t *testing.T) {
	ns := namespace(t)
	user := "ferry-agent-" + rand.String(6)
	grant(t, user, user, `[{apiGroups: [ferry.dev], resources: [processpools], verbs: [get, list, watch, patch]},
  {apiGroups: [ferry.dev], resources: [processpools/status], verbs: [patch]},
  {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, create, update]}]`)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "django"}, Data: map[string][]byte{"SECRET_KEY": []byte("granted")}})
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	runAgent(t, "node-forbidden", cfg, stateDir(t))
	port := freePort(t)
	pp := newPool(ns, "env-node-forbidden", "node-forbidden", "1-aaa", port, envecho())
	create(t, pp)
	key := client.ObjectKeyFromObject(pp)
	got := waitPool(t, key, "revision 1 rolled out", rolledOut)
	patchPool(t, got, func(p *ferryv1.ProcessPool) {
		p.Spec.Revision = "2-secret"
		p.Spec.Template.App.Env = []ferryv1.EnvVar{{Name: "SECRET_KEY", ValueFrom: fromSecret("django", "SECRET_KEY")}}
	})
	want := fmt.Sprintf(`could not start: env SECRET_KEY: the agent may not get Secrets in namespace %s, so cannot read key "SECRET_KEY" of Secret "django": the chart's agent.secretEnv=true grants it (docs/install.md, Who Ferry trusts); the agent tries again`, ns)
	blocked := waitPool(t, key, "the forbidden read reported", func(p *ferryv1.ProcessPool) bool {
		return p.Status.LastSpawnError != nil && p.Status.LastSpawnError.Reason == want &&
			meta.IsStatusConditionTrue(p.Status.Conditions, ferryv1.ConditionScalingError)
	})
	st := blocked.Status
	if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionScalingError); c.Reason != ferryv1.ReasonSpawnBlocked {
		t.Errorf("ScalingError reason %q, want %s: the manager would take revision 2 for one that cannot start here", c.Reason, ferryv1.ReasonSpawnBlocked)
	}
	if meta.IsStatusConditionTrue(st.Conditions, ferryv1.ConditionResistingDeploymentError) || st.ProcessCounts.Ready != 2 {
		t.Errorf("resisting %v, counts %+v: want revision 1's 2 processes serving, nothing resisted",
			meta.IsStatusConditionTrue(st.Conditions, ferryv1.ConditionResistingDeploymentError), st.ProcessCounts)
	}
	grant(t, user, user+"-env", `[{apiGroups: [""], resources: [secrets, configmaps], verbs: [get]}]`)
	waitPool(t, key, "revision 2 rolled out once granted", rolledOut)
	wantEnv(t, port, "SECRET_KEY", "granted")
}

// TestObjectValues: the one key is found in a Secret's data, and in a
// ConfigMap's data or binaryData; a key in neither is not found.
func TestObjectValues(t *testing.T) {
	s := &corev1.Secret{Data: map[string][]byte{"SECRET_KEY": []byte("s"), "EMPTY": {}}}
	cm := &corev1.ConfigMap{Data: map[string]string{"MODE": "m"}, BinaryData: map[string][]byte{"BLOB": []byte("b")}}
	cases := []struct {
		name  string
		get   func(string) (string, bool)
		key   string
		value string
		found bool
	}{
		{"secret key", func(k string) (string, bool) { return secretValue(s, k) }, "SECRET_KEY", "s", true},
		{"secret empty value", func(k string) (string, bool) { return secretValue(s, k) }, "EMPTY", "", true},
		{"secret no key", func(k string) (string, bool) { return secretValue(s, k) }, "NONE", "", false},
		{"configmap data", func(k string) (string, bool) { return configMapValue(cm, k) }, "MODE", "m", true},
		{"configmap binaryData", func(k string) (string, bool) { return configMapValue(cm, k) }, "BLOB", "b", true},
		{"configmap no key", func(k string) (string, bool) { return configMapValue(cm, k) }, "NONE", "", false},
	}
	for _, tc := range cases {
		if v, ok := tc.get(tc.key); v != tc.value || ok != tc.found {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, v, ok, tc.value, tc.found)
		}
	}
}

// TestEnvFromOutageKeepsTheRevisionsValues: with the API server
// unreachable, a worker of a revision whose env has valueFrom that dies is
// replaced, with the value last read (kept in the agent's
// memory: spawn.EnvMemory), not left out until the API server is back.
func TestEnvFromOutageKeepsTheRevisionsValues(t *testing.T) {
	ns := namespace(t)
	fwd, cfg := throughForwarder(t)
	book := agenttest.NewLogbook(t)
	runAgent(t, "node-envout", cfg, stateDir(t), logTo(book))
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "django"}, Data: map[string][]byte{"SECRET_KEY": []byte("kept")}})
	port := freePort(t)
	pp := newPool(ns, "env-node-envout", "node-envout", "1-aaa", port, envecho())
	pp.Spec.Template.App.Env = []ferryv1.EnvVar{{Name: "SECRET_KEY", ValueFrom: fromSecret("django", "SECRET_KEY")}}
	create(t, pp)
	ready := waitPool(t, client.ObjectKeyFromObject(pp), "revision 1 rolled out", rolledOut)
	old := map[int]bool{}
	for _, p := range ready.Status.Processes {
		old[int(p.PID)] = true
	}

	fwd.cut()
	defer fwd.restore(t)
	victim := ready.Status.Processes[0].PID
	if err := syscall.Kill(int(victim), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, 90*time.Second, "a worker spawned in place of the killed one", func() error {
		for _, e := range book.Find("Spawned worker") {
			if pid, _ := e.Value("pid"); pid != nil && !old[pid.(int)] {
				return nil
			}
		}
		return errors.New("none yet")
	})
	recalled := book.Find("The API server did not answer the read of an env valueFrom")
	if len(recalled) == 0 {
		t.Fatal("no log line says the replacement got its revision's value from the agent's memory")
	}
	if src, _ := recalled[0].Value("source"); src != `key "SECRET_KEY" of Secret "django"` {
		t.Errorf("the line names %v, want the key and the Secret", src)
	}
	wantEnv(t, port, "SECRET_KEY", "kept")
	book.Check(t)
}
