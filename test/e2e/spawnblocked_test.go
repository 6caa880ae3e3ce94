package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/deployargs"
)

// agentUser is the user the agents of TestSpawnBlockedByRBACWaitsAndGoesOn
// run as, bound to the agent's roles of config/rbac.
const agentUser = "e2e-agent"

// TestSpawnBlockedByRBACWaitsAndGoesOn: the agents run with the RBAC the
// chart gives them by default (config/rbac's agent roles, agent.secretEnv
// off: no Secret may be read). Under load through both nodes, a revision
// adding an env valueFrom of a Secret that exists cannot spawn on the
// first node, for no fault of its own: the rollout waits there, saying
// why and what grants it, the old processes serving, nothing resisted,
// the second node left alone. Once the agents may read Secrets (what
// config/components/agent-secret-env adds), the same revision rolls out
// on both nodes and its processes have the value. No request fails.
func TestSpawnBlockedByRBACWaitsAndGoesOn(t *testing.T) {
	ctx := context.Background()
	role := bindAgentRoles(t, agentUser)
	// Restarted before the AppGroup exists: a restart drains the agent's
	// pools.
	for _, n := range stack.Nodes() {
		restartAgent(t, n.Name, func() error { return stack.StartAgentAs(n.Name, agentUser) })
	}
	t.Cleanup(func() {
		for _, n := range stack.Nodes() {
			restartAgent(t, n.Name, func() error { return stack.StartAgent(n.Name) })
		}
	})
	value := "e2e-" + rand.String(16)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e2e-blocked"},
		Data: map[string][]byte{"SECRET_KEY": []byte(value)}}
	if err := stack.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.Client.Delete(context.Background(), secret) })

	port := freePort(t)
	key := types.NamespacedName{Namespace: "default", Name: "e2e-blocked"}
	f := applyAppGroup(t, key.Name, port, "[]")
	t.Cleanup(func() { kubectl(t, "delete", "-f", f, "--wait=true", "--timeout=2m") })
	waitFor(t, key, "revision 1 on both nodes", 2*time.Minute, rolledOut("1-"))
	tr := startTraffic(t, port)

	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"2"}},"spec":{"app":{"env":[{"name":"SECRET_KEY","valueFrom":{"secretKeyRef":{"name":%q,"key":"SECRET_KEY"}}}]}}}`,
		ferryv1.RevisionAnnotation, secret.Name)
	kubectl(t, "patch", "appgroup", key.Name, "--type", "merge", "-p", patch)
	// The first node's agent may not read the Secret: it says so, and
	// tries again. A manager that took it for a revision that cannot start
	// would halt the rollout (RolloutHalted) or resist it: that fails here
	// at once, not at the wait's end.
	blockedBy := `its spawns blocked: could not start: env SECRET_KEY: the agent may not get Secrets in namespace default, ` +
		`so cannot read key "SECRET_KEY" of Secret "e2e-blocked": the chart's agent.secretEnv=true grants it`
	var target string
	ag, _ := waitFor(t, key, "RollingRestart saying node-1's spawns are blocked", 2*time.Minute,
		func(ag *ferryv1.AppGroup, _ []ferryv1.ProcessPool) bool {
			if !strings.HasPrefix(ag.Status.Revision, "2-") {
				return false
			}
			failIfHeldAgainst(t, ag)
			rr := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart)
			return rr != nil && rr.Status == metav1.ConditionTrue &&
				strings.HasPrefix(rr.Message, "node 1/2 (node-1), ") && strings.Contains(rr.Message, blockedBy)
		})
	target = ag.Status.Revision
	t.Logf("blocked: %s", meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart).Message)
	checkColumns(t, key.Name, "while node-1's spawns are blocked", map[string]string{
		"READY": "True", "REASON": ferryv1.ReasonProcessesReady, "REVISION": target, "PROCESSES": "4/4",
		"UPDATED": "0", "NODES": "2/2", "RESTARTING": "True", "RESISTING": "False"})

	// While blocked, for as long as the manager would wait on node-1 before
	// giving node-2 a revision it has not seen live (and more): node-1
	// stays on the target with revision 1's processes serving, node-2
	// never gets it, nothing is held against it. A loop of its own, not
	// testsupport.Eventually: it samples what must hold throughout.
	for deadline := time.Now().Add(contract.CrashWindow + 5*time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ag, pools := waitFor(t, key, "the AppGroup and its pools", time.Minute, func(*ferryv1.AppGroup, []ferryv1.ProcessPool) bool { return true })
		failIfHeldAgainst(t, ag)
		if ag.Status.Revision != target || condStatus(ag, ferryv1.ConditionReady) != metav1.ConditionTrue {
			t.Fatalf("while blocked: revision %s, Ready %s; want %s, True", ag.Status.Revision, condStatus(ag, ferryv1.ConditionReady), target)
		}
		for _, p := range pools {
			switch p.Spec.NodeName {
			case "node-2":
				if p.Spec.Revision == target {
					t.Fatalf("node-2 got revision %s while node-1's spawns of it are blocked", target)
				}
			case "node-1":
				checkBlockedPool(t, &p, target)
			}
		}
	}
	tr.check(t, "node-1's spawns blocked")

	// As the chart's agent.secretEnv=true and the kustomize component grant
	// it; the agents try again on their own.
	role.Rules = append(role.Rules, secretEnvRule(t))
	if err := stack.Client.Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	// rolledOut(target): the revision it was blocked on, no new one.
	ag, pools := waitFor(t, key, "the same revision 2 on both nodes once the agents may read Secrets", 3*time.Minute, rolledOut(target))
	if c := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionResistingDeploymentError); c != nil && c.Status == metav1.ConditionTrue {
		t.Errorf("RESISTING True after the rollout: %s", c.Message)
	}
	checkColumns(t, key.Name, "after the rollout", map[string]string{
		"READY": "True", "REVISION": target, "PROCESSES": "4/4", "UPDATED": "4", "RESTARTING": "False", "RESISTING": "False"})
	for _, p := range pools {
		for _, proc := range p.Status.Processes {
			wantInEnviron(t, p.Spec.NodeName, proc.PID, "SECRET_KEY="+value)
		}
	}
	tr.stop()
	tr.check(t, "the whole story")
}

// failIfHeldAgainst fails the test at once if the manager holds the
// target against the node whose spawns are blocked: it resists it or
// halted the rollout.
func failIfHeldAgainst(t *testing.T, ag *ferryv1.AppGroup) {
	t.Helper()
	if c := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionResistingDeploymentError); c != nil && c.Status == metav1.ConditionTrue {
		t.Fatalf("RESISTING True for a spawn blocked by RBAC: %s", c.Message)
	}
	if rr := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart); rr != nil && rr.Reason == ferryv1.ReasonRolloutHalted {
		t.Fatalf("the rollout halted for a spawn blocked by RBAC: %s", rr.Message)
	}
}

// checkBlockedPool: node-1's pool is on the target, its agent reports
// ScalingError SpawnBlocked, resists nothing, runs no process of the
// target, and revision 1's two processes serve.
func checkBlockedPool(t *testing.T, p *ferryv1.ProcessPool, target string) {
	t.Helper()
	st := &p.Status
	if p.Spec.Revision != target {
		t.Fatalf("node-1's pool is on revision %s, want %s: sent back from a revision whose spawns are blocked", p.Spec.Revision, target)
	}
	if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionScalingError); st.ObservedRevision == target &&
		(c == nil || c.Status != metav1.ConditionTrue || c.Reason != ferryv1.ReasonSpawnBlocked) {
		t.Errorf("node-1's pool's ScalingError is %+v, want True, %s", c, ferryv1.ReasonSpawnBlocked)
	}
	if meta.IsStatusConditionTrue(st.Conditions, ferryv1.ConditionResistingDeploymentError) {
		t.Fatalf("node-1's pool resists: %+v", st.DeploymentError)
	}
	ready := 0
	for _, proc := range st.Processes {
		// One being spawned (no pid yet) is the agent trying again.
		if proc.Revision == target && proc.PID != 0 {
			t.Fatalf("node-1 runs a process of revision %s, whose spawns are blocked: %+v", target, proc)
		}
		if proc.State == ferryv1.ProcessReady {
			ready++
		}
	}
	if ready < 2 {
		t.Errorf("node-1 has %d ready processes of revision 1, want 2: %+v", ready, st.Processes)
	}
}

// wantInEnviron: the worker process pid (of node) was started with
// entry (NAME=value) in its environment.
func wantInEnviron(t *testing.T, node string, pid int32, entry string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(int(pid)), "environ"))
	if err != nil {
		t.Errorf("%s's worker %d: %v", node, pid, err)
		return
	}
	if !slices.Contains(strings.Split(string(data), "\x00"), entry) {
		t.Errorf("%s's worker %d was started without %s", node, pid, strings.SplitN(entry, "=", 2)[0]+"=<the Secret's value>")
	}
}

// restartAgent stops node's agent (it drains its pools) and starts it
// again with start.
func restartAgent(t *testing.T, node string, start func() error) {
	t.Helper()
	if err := stack.StopAgent(node); err != nil {
		t.Fatal(err)
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
}

// bindAgentRoles binds user to the agent's roles as config/rbac has them
// (read from there, so they cannot drift): the ClusterRole of
// agent_role.yaml and, in the stack's namespace, the Role of
// agent_lease_role.yaml, under names of the test's, until it ends. It
// returns the ClusterRole as created.
func bindAgentRoles(t *testing.T, user string) *rbacv1.ClusterRole {
	t.Helper()
	ctx := context.Background()
	var cr rbacv1.ClusterRole
	readYAML(t, "config/rbac/agent_role.yaml", &cr)
	var lease rbacv1.Role
	readYAML(t, "config/rbac/agent_lease_role.yaml", &lease)
	name := user + "-" + rand.String(6)
	subjects := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: cr.Rules}
	objs := []client.Object{
		role,
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: deployargs.LocalNamespace, Name: name}, Rules: lease.Rules},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: deployargs.LocalNamespace, Name: name}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}},
	}
	for _, o := range objs {
		if err := stack.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, o := range objs {
			if err := stack.Client.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		}
	})
	return role
}

// secretEnvRule is the rule config/components/agent-secret-env adds to
// the agent's ClusterRole (the chart's agent.secretEnv=true adds the
// same: test/packaging checks they match).
func secretEnvRule(t *testing.T) rbacv1.PolicyRule {
	t.Helper()
	var k struct {
		Patches []struct {
			Patch string `json:"patch"`
		} `json:"patches"`
	}
	readYAML(t, "config/components/agent-secret-env/kustomization.yaml", &k)
	var ops []struct {
		Op    string            `json:"op"`
		Path  string            `json:"path"`
		Value rbacv1.PolicyRule `json:"value"`
	}
	if len(k.Patches) == 1 {
		if err := yaml.Unmarshal([]byte(k.Patches[0].Patch), &ops); err != nil {
			t.Fatal(err)
		}
	}
	if len(ops) != 1 || ops[0].Op != "add" || ops[0].Path != "/rules/-" {
		t.Fatalf("config/components/agent-secret-env: want one patch adding one rule, got %+v", k)
	}
	return ops[0].Value
}

// readYAML decodes the repository's file path into v.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
