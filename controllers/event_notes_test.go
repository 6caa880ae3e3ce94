package controllers_test

import (
	"errors"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestWriteFailedEventWithALongAnswer: an admission policy (Gatekeeper,
// Kyverno, a ValidatingAdmissionPolicy) refuses the pools with a verbose
// message. The manager records WriteFailed with the API server's whole
// answer as the note; events.k8s.io/v1 refuses notes over 1024 bytes, so
// the one warning that says why the AppGroup gets no pool is never
// recorded.
func TestWriteFailedEventWithALongAnswer(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	name := "deny-pools-" + ns
	msg := strings.Repeat("pools need an owner label (policy P-17). ", 22) // ~900 bytes
	denyInNamespace(t, ns, name, admissionregistrationv1.Create, "processpools", msg)
	// Wait until the policy is in force.
	eventually(t, "the policy refusing pools", func() error {
		probe := &ferryv1.ProcessPool{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "probe-"},
			Spec: ferryv1.ProcessPoolSpec{NodeName: "nowhere", AppGroup: "probe", Revision: "1-x",
				Template: ferryv1.AppTemplate{App: ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv"},
					Listen: ferryv1.ListenSpec{Port: 8080}}},
		}
		err := env.Client.Create(ctx, probe)
		if err == nil {
			_ = env.Client.Delete(ctx, probe)
			return errors.New("a pool was still created")
		}
		if !strings.Contains(err.Error(), "policy P-17") {
			return err
		}
		return nil
	})

	newNode(t, ns, "a", true)
	newAppGroup(t, ns, "blog", nil)
	waitEvent(t, ns, "blog", corev1.EventTypeWarning, "WriteFailed", "could not create the pool", "policy P-17")
}
