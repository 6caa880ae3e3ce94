package packaging_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// revisionCases are ferry.dev/revision values for the revision policy and
// the manager's ValidateRevision alike: both accept the same and refuse
// the rest in the same words, a value quoted as it is shown, or not shown
// where Go's %q and CEL's strings.quote would quote it differently (a
// control character other than \a to \r, a space other than ' ', a format
// character), and the length counted in characters by both.
var revisionCases = []string{
	"1",
	"42",
	"0a1b2c3d",
	"v1.2.3_rc-1",
	"-.-",
	strings.Repeat("a", 63),
	strings.Repeat("a", 64),
	"",
	"bad value!",
	"2 ",
	"a/b",
	`say "hi"`,
	`back\slash`,
	"two\nlines",
	"tab\there",
	"bell\a, back\b, feed\f, return\r, vtab\v",
	"café",
	strings.Repeat("é", 32), // 64 bytes, 32 characters: not too long
	strings.Repeat("é", 64), // too long
	"esc\x1b[0m",
	"nul\x00",
	"del\x7f",
	"nb\u00a0sp",
	"zero\u200bwidth",
	"line\u2028separator",
	"c1\u0085",
}

// TestRevisionPolicy applies the chart's revision policy and makes the
// requests a user and the manager make: it refuses an invalid
// ferry.dev/revision annotation on create and on annotate, with the
// manager's own words (the table holds the policy's rule and message to
// contract.ValidateRevision), and lets every other write through, to an
// AppGroup whose stored value is invalid too.
func TestRevisionPolicy(t *testing.T) {
	ctx := testContext(t)
	const appNS = "apps-revision"
	ensureNamespace(t, appNS, nil)

	// Stored before the policy, as in a cluster that had none. A policy
	// an earlier test deleted may still act for a moment.
	stale := newRevisionAppGroup(appNS, "stale", ptr.To("bad value!"))
	t.Cleanup(func() { forceDelete(stale) })
	testenv.Eventually(t, time.Minute, "an invalid revision is stored without the policy", func() error {
		return env.Client.Create(ctx, stale.DeepCopy())
	})

	var objs []*unstructured.Unstructured
	for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		objs = append(objs, find(t, render(t, renderOpts{release: "rev", namespace: "ferry-rev"}), kind, "-revision"))
	}
	policy := objs[0].GetName()
	if _, err := kubectlIn(ctx, encode(t, objs), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = kubectlIn(context.Background(), encode(t, objs), "delete", "--ignore-not-found", "-f", "-")
	})
	denied := fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request: ", policy, policy)

	// The API server takes the policy up a moment after it is made.
	testenv.Eventually(t, time.Minute, "the policy refuses an invalid revision", func() error {
		ag := newRevisionAppGroup(appNS, "probe", ptr.To("bad value!"))
		return wantDenied(env.Client.Create(ctx, ag, client.DryRunAll), denied)
	})

	t.Run("create", func(t *testing.T) {
		for i, value := range revisionCases {
			ag := newRevisionAppGroup(appNS, fmt.Sprintf("create-%d", i), &value)
			err := env.Client.Create(ctx, ag)
			if err == nil {
				t.Cleanup(func() { forceDelete(ag) })
			}
			want := contract.ValidateRevision(value)
			switch {
			case want == nil && err != nil:
				t.Errorf("revision %q: the manager takes it, the policy refuses it: %v", value, err)
			case want != nil:
				if werr := wantDenied(err, denied+want.Error()); werr != nil {
					t.Errorf("revision %q: %v", value, werr)
				}
			}
		}
	})

	t.Run("annotate", func(t *testing.T) {
		ag := newRevisionAppGroup(appNS, "annotated", nil)
		if err := env.Client.Create(ctx, ag); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { forceDelete(ag) })
		// A new annotation, then changes of it, as a user deploys; then
		// its removal.
		for _, value := range []string{"bad value!", "1", "2", strings.Repeat("9", 64), "", "3"} {
			err := annotate(ctx, appNS, "annotated", ferryv1.RevisionAnnotation+"="+value)
			if want := contract.ValidateRevision(value); want != nil {
				err = wantRefused(err, denied+want.Error())
			}
			if err != nil {
				t.Errorf("%s=%q: %v", ferryv1.RevisionAnnotation, value, err)
			}
		}
		if err := annotate(ctx, appNS, "annotated", ferryv1.RevisionAnnotation+"-"); err != nil {
			t.Errorf("removing the annotation: %v", err)
		}
	})

	t.Run("stored invalid value", func(t *testing.T) {
		// Every write that leaves the annotation as it is passes: the
		// manager's finalizer, a label, the spec, the status.
		live := &ferryv1.AppGroup{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(stale), live); err != nil {
			t.Fatal(err)
		}
		if err := managerPatch(ctx, live, func() { controllerutil.AddFinalizer(live, contract.DrainFinalizer) }); err != nil {
			t.Errorf("adding the manager's finalizer: %v", err)
		}
		if _, err := env.Kubectl(ctx, "label", "appgroup", "stale", "-n", appNS, "team=web"); err != nil {
			t.Errorf("labelling it: %v", err)
		}
		if _, err := env.Kubectl(ctx, "patch", "appgroup", "stale", "-n", appNS, "--type=merge",
			"-p", `{"spec":{"pool":{"maxProcesses":3}}}`); err != nil {
			t.Errorf("patching its spec: %v", err)
		}
		if err := env.Client.Status().Patch(ctx, stale, client.RawPatch("application/merge-patch+json",
			[]byte(`{"status":{"readyProcesses":"0/0"}}`))); err != nil {
			t.Errorf("writing its status: %v", err)
		}
		// Annotated anew, the value is checked.
		if err := wantRefused(annotate(ctx, appNS, "stale", ferryv1.RevisionAnnotation+"=bad value!!"),
			denied+contract.ValidateRevision("bad value!!").Error()); err != nil {
			t.Errorf("annotating it anew: %v", err)
		}
		// Deleted, the manager releases it by removing its finalizer with
		// an update.
		if err := env.Client.Delete(ctx, stale); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(stale), live); err != nil {
			t.Fatal(err)
		}
		if err := managerPatch(ctx, live, func() { controllerutil.RemoveFinalizer(live, contract.DrainFinalizer) }); err != nil {
			t.Fatalf("removing the manager's finalizer: %v", err)
		}
		testenv.Eventually(t, 30*time.Second, "the deleted AppGroup is gone", func() error {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(stale), &ferryv1.AppGroup{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there (%w)", err)
		})
	})
}

// TestRevisionPolicyMatchesNoSubresource: the policy fails closed
// (failurePolicy Fail), so it must never stand between the manager and
// the AppGroups' status: it matches the appgroups resource alone, on
// CREATE and UPDATE. With revisionPolicy=false the chart renders none.
func TestRevisionPolicyMatchesNoSubresource(t *testing.T) {
	vap := find(t, render(t, renderOpts{}), "ValidatingAdmissionPolicy", "-revision")
	rules := nested[[]any](t, vap.Object, "spec", "matchConstraints", "resourceRules")
	if len(rules) != 1 {
		t.Fatalf("the revision policy has %d resource rules, want 1", len(rules))
	}
	rule := rules[0].(map[string]any)
	if got := fmt.Sprint(rule["resources"]); got != "[appgroups]" {
		t.Errorf("the revision policy matches %s, want [appgroups] alone", got)
	}
	if got := fmt.Sprint(rule["operations"]); got != "[CREATE UPDATE]" {
		t.Errorf("the revision policy matches operations %s, want [CREATE UPDATE]", got)
	}
	for _, o := range render(t, renderOpts{sets: []string{"revisionPolicy=false"}}) {
		if strings.HasSuffix(o.GetName(), "-revision") {
			t.Errorf("revisionPolicy=false renders %s", kindName(o))
		}
	}
}

// annotate runs `kubectl annotate --overwrite` on an AppGroup, as a user
// does.
func annotate(ctx context.Context, ns, name, arg string) error {
	_, err := env.Kubectl(ctx, "annotate", "appgroup", name, "-n", ns, "--overwrite", arg)
	return err
}

// wantRefused checks that kubectl failed with want in its error output.
func wantRefused(err error, want string) error {
	switch {
	case err == nil:
		return fmt.Errorf("accepted; want refused with %q", want)
	case !strings.Contains(err.Error(), want):
		return fmt.Errorf("refused without %q: %w", want, err)
	}
	return nil
}

// managerPatch changes ag with change and writes it as the manager does:
// a merge patch with optimistic locking.
func managerPatch(ctx context.Context, ag *ferryv1.AppGroup, change func()) error {
	patch := client.MergeFromWithOptions(ag.DeepCopy(), client.MergeFromWithOptimisticLock{})
	change()
	return env.Client.Patch(ctx, ag, patch)
}

// newRevisionAppGroup is a minimal AppGroup with revision as its
// ferry.dev/revision annotation, or none when nil.
func newRevisionAppGroup(ns, name string, revision *string) *ferryv1.AppGroup {
	ag := &ferryv1.AppGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: ferryv1.AppGroupSpec{AppTemplate: ferryv1.AppTemplate{
			App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/app"},
			Listen: ferryv1.ListenSpec{Port: 8080},
		}},
	}
	if revision != nil {
		ag.Annotations = map[string]string{ferryv1.RevisionAnnotation: *revision}
	}
	return ag
}

// forceDelete removes an AppGroup, finalizers and all.
func forceDelete(ag *ferryv1.AppGroup) {
	ctx := context.Background()
	_ = env.Client.Patch(ctx, ag, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))
	_ = env.Client.Delete(ctx, ag)
}
