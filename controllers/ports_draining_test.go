package controllers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestDrainingPoolElsewhereLetsNewerTakeNode: beta (newer) holds n1
// and has a pool draining on n3 (unselected); a new node n2 is selected by
// both beta and the older alpha. alpha wins n2 (older, neither holds), and
// beta gets no pool there. (Found by review, against the real API server:
// beta's pass skipped the AppGroup list and created a pool on n2 too.)
func TestDrainingPoolElsewhereLetsNewerTakeNode(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "alpha", func(ag *ferryv1.AppGroup) { ag.Spec.NodeSelector = map[string]string{"review.ferry.dev/a": ns} })
	time.Sleep(1100 * time.Millisecond)
	n1, n3 := newNode(t, ns, "1", true), newNode(t, ns, "3", true)
	newAppGroup(t, ns, "beta", nil)
	a1, a3 := newAgent(t, ns, n1, "192.0.2.2"), newAgent(t, ns, n3, "192.0.2.4")
	rollAll("beta", 2, a1, a3)
	waitRolledOut(t, ns, "beta", 2)
	setNodeLabel(t, n3, testLabel, "")
	eventually(t, "beta's pool on n3 deleting", func() error {
		p, err := a3.find("beta")
		if err != nil || p.DeletionTimestamp.IsZero() {
			return errors.New("not yet")
		}
		return nil
	})
	n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-2", Labels: map[string]string{testLabel: ns, "review.ferry.dev/a": ns}}}
	if err := env.Client.Create(testContext(t), n2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.IgnoreNotFound(env.Client.Delete(context.Background(), n2)) })
	a2 := newAgent(t, ns, n2.Name, "192.0.2.3")
	sawBeta := false
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
		if _, err := a2.find("beta"); err == nil {
			sawBeta = true
		}
	}
	_, alphaErr := a2.find("alpha")
	if sawBeta {
		t.Errorf("beta (newer) got a pool on %s, which the older alpha selects (alpha's pool there: %v)", n2.Name, alphaErr == nil)
	}
}
