package packaging_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ferry-dev/ferry/agent/cluster"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// nodeNameExtra is the user-info extra the API server sets from a bound
// pod token's node claim.
const nodeNameExtra = "authentication.kubernetes.io/node-name"

// TestNodeIsolationPolicy applies the RBAC and the node and lease isolation
// ValidatingAdmissionPolicies, as the chart renders them and as config/rbac
// has them, and makes the agent's requests: as the agent's service account
// with a node name (impersonated, and with a real token bound to a pod on a
// node), without one, and as the manager.
func TestNodeIsolationPolicy(t *testing.T) {
	for _, tt := range []struct {
		name, ns, agentSA, managerSA string
		objects                      func(t *testing.T) []*unstructured.Unstructured
	}{{
		name: "chart", ns: "ferry-iso", agentSA: "iso-ferry-agent", managerSA: "iso-ferry-manager",
		objects: func(t *testing.T) []*unstructured.Unstructured {
			var out []*unstructured.Unstructured
			for _, o := range render(t, renderOpts{release: "iso", namespace: "ferry-iso"}) {
				switch o.GetKind() {
				case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
					"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
					out = append(out, o)
				}
			}
			return out
		},
	}, {
		name: "config", ns: "ferry-system", agentSA: "ferry-agent", managerSA: "ferry-manager",
		objects: func(t *testing.T) []*unstructured.Unstructured { return kustomize(t, "rbac") },
	}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			objs := tt.objects(t)
			ensureNamespace(t, tt.ns, map[string]string{"pod-security.kubernetes.io/enforce": "privileged"})
			if _, err := kubectlIn(ctx, encode(t, objs), "apply", "--server-side", "-f", "-"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_, _ = kubectlIn(context.Background(), encode(t, objs), "delete", "--ignore-not-found", "--wait=false", "-f", "-")
			})
			vap := find(t, objs, "ValidatingAdmissionPolicy", "node-isolation")
			s := newIsolationScenario(t, tt.name, tt.ns, tt.agentSA, tt.managerSA)
			s.run(t, vap.GetName())
			t.Run("leases", func(t *testing.T) {
				s.runLeases(t, find(t, objs, "ValidatingAdmissionPolicy", "lease-isolation").GetName())
			})
		})
	}
}

// isolationScenario is two nodes' pools and the clients that write them.
type isolationScenario struct {
	appNS, nodeA, nodeB, poolA, poolB string
	agentA, agentNoNode, manager      client.Client
	agentSA, managerSA, saNS          string
}

func newIsolationScenario(t *testing.T, name, saNS, agentSA, managerSA string) *isolationScenario {
	t.Helper()
	ctx := testContext(t)
	s := &isolationScenario{
		appNS: "apps-iso-" + name, nodeA: "iso-" + name + "-node-a", nodeB: "iso-" + name + "-node-b",
		agentSA: agentSA, managerSA: managerSA, saNS: saNS,
	}
	s.poolA, s.poolB = contract.PoolName("blog", s.nodeA), contract.PoolName("blog", s.nodeB)
	ensureNamespace(t, s.appNS, nil)
	for _, node := range []string{s.nodeA, s.nodeB} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
		if err := env.Client.Create(ctx, n); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		pp := &ferryv1.ProcessPool{
			ObjectMeta: metav1.ObjectMeta{
				Name: contract.PoolName("blog", node), Namespace: s.appNS,
				Labels: contract.PoolLabels("blog", node), Finalizers: []string{contract.DrainFinalizer},
			},
			Spec: ferryv1.ProcessPoolSpec{
				NodeName: node, AppGroup: "blog", Revision: "1-0123456789",
				Template: ferryv1.AppTemplate{
					App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/blog"},
					Listen: ferryv1.ListenSpec{Port: 8080},
				},
			},
		}
		if err := env.Client.Create(ctx, pp); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx := context.Background()
			_ = env.Client.Patch(ctx, pp, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))
			_ = env.Client.Delete(ctx, pp)
		})
	}
	agent := func(extra map[string][]string) client.Client {
		return impersonate(t, "system:serviceaccount:"+saNS+":"+agentSA, saNS, extra)
	}
	s.agentA = agent(map[string][]string{nodeNameExtra: {s.nodeA}})
	s.agentNoNode = agent(nil)
	// The manager's pod token names a node too; the policy ignores it.
	s.manager = impersonate(t, "system:serviceaccount:"+saNS+":"+managerSA, saNS, map[string][]string{nodeNameExtra: {s.nodeB}})
	return s
}

func (s *isolationScenario) run(t *testing.T, policy string) {
	ctx := testContext(t)
	denied := fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request", policy, policy)
	otherNode := fmt.Sprintf("the Ferry agent on node %s may not write ProcessPool %s: it belongs to node %s", s.nodeA, s.poolB, s.nodeB)

	// RBAC and the policy take effect within moments: wait for both.
	testenv.Eventually(t, time.Minute, "the agent may write its own node's status", func() error {
		return patchStatus(ctx, s.agentA, s.appNS, s.poolA, "10.0.0.1:8080")
	})
	testenv.Eventually(t, time.Minute, "the policy denies the agent another node's status", func() error {
		return wantDenied(patchStatus(ctx, s.agentA, s.appNS, s.poolB, "10.0.0.1:8080"), denied, otherNode)
	})

	steps := []struct {
		name string
		err  func() error
		want []string // nil: allowed
	}{
		{"own status", func() error { return patchStatus(ctx, s.agentA, s.appNS, s.poolA, "10.0.0.1:8081") }, nil},
		{"other node's status", func() error { return patchStatus(ctx, s.agentA, s.appNS, s.poolB, "10.0.0.1:8081") },
			[]string{denied, otherNode}},
		{"other node's spec", func() error { return patchSpec(ctx, s.agentA, s.appNS, s.poolB, "2-0123456789") },
			[]string{denied, otherNode}},
		{"own spec", func() error { return patchSpec(ctx, s.agentA, s.appNS, s.poolA, "2-0123456789") },
			[]string{denied, "the Ferry agent may not change a ProcessPool's spec"}},
		{"own labels", func() error {
			return patchMeta(ctx, s.agentA, s.appNS, s.poolA, `{"metadata":{"labels":{"stolen":"yes"}}}`)
		}, []string{denied, "the Ferry agent may only remove finalizers"}},
		{"adding a finalizer", func() error {
			return patchMeta(ctx, s.agentA, s.appNS, s.poolA, `{"metadata":{"finalizers":["ferry.dev/drain","example.com/mine"]}}`)
		}, []string{denied, "the Ferry agent may only remove finalizers"}},
		{"status without a node in the credentials", func() error {
			return patchStatus(ctx, s.agentNoNode, s.appNS, s.poolA, "10.0.0.1:8082")
		}, []string{denied, "the Ferry agent's credentials name no node"}},
		{"creating a pool (RBAC)", func() error {
			pp := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: "forged", Namespace: s.appNS},
				Spec: ferryv1.ProcessPoolSpec{NodeName: s.nodeA, AppGroup: "blog", Revision: "1",
					Template: ferryv1.AppTemplate{App: ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/"}, Listen: ferryv1.ListenSpec{Port: 80}}}}
			return s.agentA.Create(ctx, pp)
		}, []string{`cannot create resource "processpools"`}},
		{"deleting a pool (RBAC)", func() error {
			return s.agentA.Delete(ctx, &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: s.poolA, Namespace: s.appNS}})
		}, []string{`cannot delete resource "processpools"`}},
		{"the manager writes any spec", func() error { return patchSpec(ctx, s.manager, s.appNS, s.poolB, "3-0123456789") }, nil},
		{"the manager writes any labels", func() error {
			return patchMeta(ctx, s.manager, s.appNS, s.poolA, `{"metadata":{"labels":{"example.com/touched":"yes"}}}`)
		}, nil},
	}
	for _, st := range steps {
		err := st.err()
		switch {
		case st.want == nil && err != nil:
			t.Errorf("%s: want allowed, got %v", st.name, err)
		case st.want != nil:
			if werr := wantDenied(err, st.want...); werr != nil {
				t.Errorf("%s: %v", st.name, werr)
			}
		}
	}

	t.Run("real bound token", func(t *testing.T) { s.runWithBoundToken(t, denied, otherNode) })
	t.Run("beyond RBAC", func(t *testing.T) { s.runBeyondRBAC(t, denied) })

	// Draining a deleted pool: the agent removes its finalizer (as
	// agent/cluster does, a merge patch with optimistic locking) from its
	// own node's pool, and may not from another node's.
	for _, name := range []string{s.poolA, s.poolB} {
		if err := env.Client.Delete(ctx, &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.appNS}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := wantDenied(removeDrainFinalizer(ctx, s.agentA, s.appNS, s.poolB), denied, otherNode); err != nil {
		t.Errorf("removing another node's finalizer: %v", err)
	}
	if err := removeDrainFinalizer(ctx, s.agentA, s.appNS, s.poolA); err != nil {
		t.Errorf("removing its own node's finalizer: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "the drained pool is gone", func() error {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.appNS, Name: s.poolA}, &ferryv1.ProcessPool{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%w)", err)
	})
}

// runWithBoundToken makes the agent's requests with the credentials a real
// agent pod has: a service account token bound to a pod scheduled on node
// A. The API server itself puts the node in the request's user info.
func (s *isolationScenario) runWithBoundToken(t *testing.T, denied, otherNode string) {
	ctx := testContext(t)
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-" + s.nodeA, Namespace: s.saNS},
		Spec: corev1.PodSpec{
			NodeName: s.nodeA, ServiceAccountName: s.agentSA,
			Containers: []corev1.Container{{Name: "agent", Image: "ghcr.io/ferry-dev/ferry-agent:test"}},
		},
	}
	pod, err = cs.CoreV1().Pods(s.saNS).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Pods(s.saNS).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	tr, err := cs.CoreV1().ServiceAccounts(s.saNS).CreateToken(ctx, s.agentSA, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To[int64](600),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tr.Status.Token
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// Who the API server says the token is.
	rev, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx,
		&authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rev.Status.UserInfo.Extra[nodeNameExtra]; len(got) != 1 || got[0] != s.nodeA {
		t.Fatalf("the bound token's user info carries %s=%v, want [%s]", nodeNameExtra, got, s.nodeA)
	}
	if err := patchStatus(ctx, c, s.appNS, s.poolA, "10.0.0.1:8083"); err != nil {
		t.Errorf("own node's status with a bound token: %v", err)
	}
	if err := wantDenied(patchStatus(ctx, c, s.appNS, s.poolB, "10.0.0.1:8083"), denied, otherNode); err != nil {
		t.Errorf("other node's status with a bound token: %v", err)
	}
	// The agent's own lease code, with the agent's real credentials: the
	// Lease RBAC and the lease isolation policy let it through (creating,
	// then renewing), and only for its own node.
	testenv.Eventually(t, time.Minute, "the agent renews its own node's Lease with a bound token", func() error {
		return cluster.RenewLease(ctx, c, s.saNS, s.nodeA, 10*time.Second)
	})
	if err := cluster.RenewLease(ctx, c, s.saNS, s.nodeA, 10*time.Second); err != nil {
		t.Errorf("renewing its own node's Lease again with a bound token: %v", err)
	}
	if err := wantDenied(cluster.RenewLease(ctx, c, s.saNS, s.nodeB, 10*time.Second), "may not write Lease"); err != nil {
		t.Errorf("another node's Lease with a bound token: %v", err)
	}
}

// runBeyondRBAC grants the agent what its ClusterRole does not (creating
// and deleting pools) and checks that the policy still refuses it: a
// too-broad role added later does not undo the isolation.
func (s *isolationScenario) runBeyondRBAC(t *testing.T, denied string) {
	ctx := testContext(t)
	name := "test-extra-" + s.appNS
	grant := []byte(fmt.Sprintf(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: %[1]s}
rules:
- {apiGroups: [ferry.dev], resources: [processpools], verbs: [create, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %[1]s}
subjects:
- {kind: ServiceAccount, name: %[2]s, namespace: %[3]s}
`, name, s.agentSA, s.saNS))
	if _, err := kubectlIn(ctx, grant, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = kubectlIn(context.Background(), grant, "delete", "--ignore-not-found", "-f", "-") })
	onlyUpdate := "the Ferry agent may only update ProcessPools and their status"
	testenv.Eventually(t, time.Minute, "the policy refuses the agent a create RBAC allows", func() error {
		pp := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: "forged", Namespace: s.appNS},
			Spec: ferryv1.ProcessPoolSpec{NodeName: s.nodeA, AppGroup: "blog", Revision: "1",
				Template: ferryv1.AppTemplate{App: ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/"}, Listen: ferryv1.ListenSpec{Port: 80}}}}
		return wantDenied(s.agentA.Create(ctx, pp), denied, onlyUpdate)
	})
	testenv.Eventually(t, time.Minute, "the policy refuses the agent a delete RBAC allows", func() error {
		pp := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: s.poolA, Namespace: s.appNS}}
		return wantDenied(s.agentA.Delete(ctx, pp), denied, onlyUpdate)
	})
}

// impersonate returns a client acting as a service account, with extra
// user info as a bound pod token would carry it.
func impersonate(t *testing.T, user, ns string, extra map[string][]string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: user,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		Extra:    extra,
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func patchStatus(ctx context.Context, c client.Client, ns, name, address string) error {
	pp := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	patch := fmt.Sprintf(`{"status":{"address":%q,"observedRevision":"1-0123456789"}}`, address)
	return c.Status().Patch(ctx, pp, client.RawPatch("application/merge-patch+json", []byte(patch)))
}

func patchSpec(ctx context.Context, c client.Client, ns, name, revision string) error {
	pp := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	patch := fmt.Sprintf(`{"spec":{"revision":%q}}`, revision)
	return c.Patch(ctx, pp, client.RawPatch("application/merge-patch+json", []byte(patch)))
}

func patchMeta(ctx context.Context, c client.Client, ns, name, patch string) error {
	pp := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	return c.Patch(ctx, pp, client.RawPatch("application/merge-patch+json", []byte(patch)))
}

// removeDrainFinalizer does what agent/cluster does once a deleted pool
// has drained.
func removeDrainFinalizer(ctx context.Context, c client.Client, ns, name string) error {
	pp := &ferryv1.ProcessPool{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pp); err != nil {
		return err
	}
	patch := client.MergeFromWithOptions(pp.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(pp, contract.DrainFinalizer)
	return c.Patch(ctx, pp, patch)
}

// wantDenied checks that err is a Forbidden error containing every one of
// want.
func wantDenied(err error, want ...string) error {
	if err == nil {
		return fmt.Errorf("allowed; want denied with %q", want)
	}
	if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
		return fmt.Errorf("want Forbidden, got %w", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			return fmt.Errorf("the denial lacks %q: %w", w, err)
		}
	}
	return nil
}
