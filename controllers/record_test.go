package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/scheme"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestNodeReturnedOfOnePassNameEachNode: two nodes returned in one pass
// (a wave of two whose revision dies young on both) get a NodeReturned
// each, with its own note. client-go's event recorder folds the events of
// one regarding object at one resourceVersion, reason and related object
// into a series that keeps the first note: recorded without the pool as
// related, the second node's return was lost ("count 2", node a's note).
// The recorder is client-go's own, writing to a fake clientset: what is
// shown is what record hands it.
func TestNodeReturnedOfOnePassNameEachNode(t *testing.T) {
	cs := fake.NewClientset()
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	r := &AppGroupReconciler{Recorder: b.NewRecorder(scheme.New(), EventRecorderName)}
	ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blog", UID: "u", ResourceVersion: "7"}}
	for _, node := range []string{"a", "b"} {
		p := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blog-" + node, UID: types.UID("p-" + node)}}
		r.record(ctx, ag, statusEvent{Type: corev1.EventTypeWarning, Reason: EventNodeReturned, Action: "Rollout",
			Note: "Returned node " + node + " to revision 1", Related: p})
	}
	testsupport.Eventually(t, time.Minute, "a NodeReturned naming each node", func() error {
		list, err := cs.EventsV1().Events("ns").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var notes []string
		for _, e := range list.Items {
			notes = append(notes, e.Note)
		}
		for _, node := range []string{"a", "b"} {
			if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "node "+node+" ") }) {
				return fmt.Errorf("no event names node %s; notes %q", node, notes)
			}
		}
		return nil
	})
}
