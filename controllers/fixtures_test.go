package controllers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// Fixtures and polling for the envtest suite.

// waitTimeout bounds every eventual assertion: generous, the machine is
// slow and shared.
const waitTimeout = 90 * time.Second

// testLabel is the node label each test's AppGroups select on, so tests
// never see each other's nodes.
const testLabel = "test.ferry.dev/suite"

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls fn until it returns nil, failing the test with fn's
// last error after waitTimeout.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	testenv.Eventually(t, waitTimeout, what, fn)
}

// newNamespace creates a namespace for one test; its name also keys the
// test's nodes.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "t-" + rand.String(8)}}
	if err := env.Client.Create(testContext(t), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// newNode creates a Node selected by the namespace's AppGroups when
// selected is true; it is deleted when the test ends.
func newNode(t *testing.T, ns, suffix string, selected bool) string {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + suffix, Labels: map[string]string{}}}
	if selected {
		n.Labels[testLabel] = ns
	}
	if err := env.Client.Create(testContext(t), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.IgnoreNotFound(env.Client.Delete(context.Background(), n)) })
	return n.Name
}

// deleteNode deletes a Node.
func deleteNode(t *testing.T, name string) {
	t.Helper()
	if err := env.Client.Delete(testContext(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

// waitAppGroupGone waits until ag is gone from the API server.
func waitAppGroupGone(t *testing.T, ag *ferryv1.AppGroup) {
	t.Helper()
	eventually(t, "AppGroup "+ag.Name+" gone", func() error {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ag), &ferryv1.AppGroup{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%w)", err)
	})
}

// setNodeLabel sets (or with value "", removes) a label of a node.
func setNodeLabel(t *testing.T, node, key, value string) {
	t.Helper()
	n := &corev1.Node{}
	if err := env.Client.Get(testContext(t), types.NamespacedName{Name: node}, n); err != nil {
		t.Fatal(err)
	}
	orig := n.DeepCopy()
	if value == "" {
		delete(n.Labels, key)
	} else {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[key] = value
	}
	if err := env.Client.Patch(testContext(t), n, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
}

// newAppGroup creates an AppGroup at revision "1" selecting the test's
// nodes, two processes per node, one node at a time; mutate may change it
// first. When the test ends it is deleted, and its pools drained as agents
// would, until it is gone.
func newAppGroup(t *testing.T, ns, name string, mutate func(*ferryv1.AppGroup)) *ferryv1.AppGroup {
	t.Helper()
	ag := &ferryv1.AppGroup{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Annotations: map[string]string{ferryv1.RevisionAnnotation: "1"},
		},
		Spec: ferryv1.AppGroupSpec{
			AppTemplate: ferryv1.AppTemplate{
				App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/" + name},
				Listen: ferryv1.ListenSpec{Port: 8080},
				Pool:   ferryv1.PoolSpec{MinProcesses: 2, MaxProcesses: 6},
			},
			NodeSelector: map[string]ferryv1.LabelValue{testLabel: ferryv1.LabelValue(ns)},
		},
	}
	if mutate != nil {
		mutate(ag)
	}
	ctx := testContext(t)
	if err := env.Client.Create(ctx, ag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAppGroup(t, ag) })
	return getAppGroup(t, ns, name)
}

// deleteAppGroup deletes an AppGroup and drains its pools until it is gone.
func deleteAppGroup(t *testing.T, ag *ferryv1.AppGroup) {
	ctx := context.Background()
	if err := client.IgnoreNotFound(env.Client.Delete(ctx, ag)); err != nil {
		t.Error(err)
		return
	}
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		var pools ferryv1.ProcessPoolList
		if err := env.Client.List(ctx, &pools, client.InNamespace(ag.Namespace),
			client.MatchingLabels{ferryv1.AppGroupLabel: contract.LabelValue(ag.Name)}); err == nil {
			for i := range pools.Items {
				if !pools.Items[i].DeletionTimestamp.IsZero() {
					_ = removeDrainFinalizer(ctx, &pools.Items[i])
				}
			}
		}
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(ag), &ferryv1.AppGroup{})
		if apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("AppGroup %s/%s not gone after deletion", ag.Namespace, ag.Name)
}

func getAppGroup(t *testing.T, ns, name string) *ferryv1.AppGroup {
	t.Helper()
	ag := &ferryv1.AppGroup{}
	if err := env.Client.Get(testContext(t), types.NamespacedName{Namespace: ns, Name: name}, ag); err != nil {
		t.Fatal(err)
	}
	return ag
}

// patchAppGroup changes an AppGroup, retrying on conflicts.
func patchAppGroup(t *testing.T, ns, name string, mutate func(*ferryv1.AppGroup)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ag := &ferryv1.AppGroup{}
		if err := env.Client.Get(testContext(t), types.NamespacedName{Namespace: ns, Name: name}, ag); err != nil {
			return err
		}
		mutate(ag)
		return env.Client.Update(testContext(t), ag)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// bump sets the revision annotation with a merge patch, as `kubectl
// annotate` does. (A typed Update would also rewrite the defaulted
// durations, "5m" as "5m0s", and so move metadata.generation.)
func bump(t *testing.T, ns, name, revision string) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{ferryv1.RevisionAnnotation: revision}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Patch(testContext(t), ag, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// target is the revision the manager should compute for the AppGroup now.
func target(t *testing.T, ns, name string) string {
	t.Helper()
	rev, err := contract.TargetRevision(getAppGroup(t, ns, name))
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// pools lists the AppGroup's pools by node.
func pools(ctx context.Context, ns, agName string) (map[string]*ferryv1.ProcessPool, error) {
	var list ferryv1.ProcessPoolList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns),
		client.MatchingLabels{ferryv1.AppGroupLabel: contract.LabelValue(agName)}); err != nil {
		return nil, err
	}
	out := map[string]*ferryv1.ProcessPool{}
	for i := range list.Items {
		out[list.Items[i].Spec.NodeName] = &list.Items[i]
	}
	return out, nil
}

// revisions is each node's pool's spec.revision.
func revisions(t *testing.T, ns, agName string) map[string]string {
	t.Helper()
	ps, err := pools(testContext(t), ns, agName)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for node, p := range ps {
		out[node] = p.Spec.Revision
	}
	return out
}

// waitCondition waits until the AppGroup's condition has the status and
// reason and its message contains each of msgs; it returns the AppGroup.
func waitCondition(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string, msgs ...string) *ferryv1.AppGroup {
	t.Helper()
	var ag *ferryv1.AppGroup
	eventually(t, fmt.Sprintf("%s %s=%s/%s", name, typ, status, reason), func() error {
		ag = &ferryv1.AppGroup{}
		if err := env.Client.Get(testContext(t), types.NamespacedName{Namespace: ns, Name: name}, ag); err != nil {
			return err
		}
		c := meta.FindStatusCondition(ag.Status.Conditions, typ)
		if c == nil {
			return errors.New("no such condition yet")
		}
		if c.Status != status || c.Reason != reason {
			return fmt.Errorf("is %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		for _, m := range msgs {
			if !strings.Contains(c.Message, m) {
				return fmt.Errorf("message %q lacks %q", c.Message, m)
			}
		}
		return nil
	})
	return ag
}

// waitStatus waits until check accepts the AppGroup's status.
func waitStatus(t *testing.T, ns, name, what string, check func(*ferryv1.AppGroupStatus) error) *ferryv1.AppGroup {
	t.Helper()
	var ag *ferryv1.AppGroup
	eventually(t, name+" "+what, func() error {
		ag = &ferryv1.AppGroup{}
		if err := env.Client.Get(testContext(t), types.NamespacedName{Namespace: ns, Name: name}, ag); err != nil {
			return err
		}
		return check(&ag.Status)
	})
	return ag
}

// waitEvent waits for an event of the given type and reason on the
// AppGroup whose note contains each of notes.
func waitEvent(t *testing.T, ns, name, typ, reason string, notes ...string) {
	t.Helper()
	eventually(t, "event "+reason, func() error {
		var list eventsv1.EventList
		if err := env.Client.List(testContext(t), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
	next:
		for _, e := range list.Items {
			if e.Regarding.Name != name || e.Regarding.Kind != "AppGroup" {
				continue
			}
			seen = append(seen, e.Reason)
			if e.Reason != reason || e.Type != typ {
				continue
			}
			for _, n := range notes {
				if !strings.Contains(e.Note, n) {
					continue next
				}
			}
			return nil
		}
		return fmt.Errorf("seen only %v", seen)
	})
}

// assertNoEvent fails the test if the AppGroup has an event of reason.
func assertNoEvent(t *testing.T, ns, name, reason string) {
	t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(testContext(t), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Regarding.Kind == "AppGroup" && e.Reason == reason {
			t.Fatalf("event %s: %s", reason, e.Note)
		}
	}
}

// assertEventCount fails the test unless the AppGroup has n events of
// reason, each occurrence counted (an event recorded again is one object
// with a series).
func assertEventCount(t *testing.T, ns, name, reason string, n int) {
	t.Helper()
	assertEventCountOf(t, ns, name, reason, "", n)
}

// assertEventCountOf is assertEventCount of the events whose note contains
// note.
func assertEventCountOf(t *testing.T, ns, name, reason, note string, n int) {
	t.Helper()
	if got := eventCountOf(t, ns, name, reason, note); got != n {
		t.Fatalf("%d %s events (of %q), want %d", got, reason, note, n)
	}
}

// eventCountOf is how many events of reason the AppGroup has whose note
// contains note, each occurrence counted.
func eventCountOf(t *testing.T, ns, name, reason, note string) int {
	t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(testContext(t), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Regarding.Kind == "AppGroup" && e.Reason == reason && strings.Contains(e.Note, note) {
			got++
			if e.Series != nil {
				got += int(e.Series.Count) - 1
			}
		}
	}
	return got
}

// passMark is where the manager's passes over the AppGroup stand:
// waitPasses waits for passes begun after it.
func passMark(ns, name string) int {
	return passes.mark(types.NamespacedName{Namespace: ns, Name: name})
}

// waitPasses waits until n passes over the AppGroup begun after mark have
// ended: passes of this AppGroup, not of any (a test's own pass may still
// be queued when another's ends).
func waitPasses(t *testing.T, ns, name string, mark, n int) {
	t.Helper()
	key := types.NamespacedName{Namespace: ns, Name: name}
	eventually(t, fmt.Sprintf("%d passes over %s", n, key), func() error {
		if got := passes.endedSince(key, mark); got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
}

// metricValue sums the samples of a counter or gauge whose labels include
// the given ones.
func metricValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := metrics.Registry.(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// denyInNamespace has the API server refuse every op on resource (of
// ferry.dev) in ns with msg, as an admission policy (Gatekeeper, Kyverno,
// a ValidatingAdmissionPolicy) would, until the test ends. The policy
// takes a moment to be in force: the caller probes for it.
func denyInNamespace(t *testing.T, ns, name string, op admissionregistrationv1.OperationType, resource, msg string) {
	t.Helper()
	ctx := testContext(t)
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{op},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{"ferry.dev"}, APIVersions: []string{"*"},
							Resources: []string{resource}},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: msg}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
}
