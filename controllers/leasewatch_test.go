package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/scheme"
)

// TestLeaseWatcherNoticesShortSilences checks the lease watcher's passes:
// none while the agent renews on time, one when its Lease goes stale, and
// one after a silence longer than the bound that no check saw stale (the
// agent renewed again between two checks). A fake client stands in for the
// manager's cache: the watcher only reads it, and the test sets the
// Lease's renewals and the clock check by check.
func TestLeaseWatcherNoticesShortSilences(t *testing.T) {
	ctx := context.Background()
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: contract.AgentLeaseName("node-a"),
			Labels: contract.AgentLeaseLabels("node-a")},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-a")},
	}
	pool := testPool("node-a", "1-abc")
	pool.Labels = contract.PoolLabels("blog", "node-a")
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(lease, pool).Build()
	clk := clocktesting.NewFakePassiveClock(t0)
	events := make(chan event.GenericEvent, 10)
	w := &leaseWatcher{client: c, namespace: "ferry-system", staleAfter: staleAfter, every: time.Second, clock: clk,
		events: events, stale: map[string]bool{}, renewed: map[string]time.Time{}, log: logr.Discard()}

	steps := []struct {
		name           string
		renewed, check time.Duration // after t0
		want           bool
	}{
		{"first seen, fresh", 0, time.Second, false},
		{"renewed on time", 10 * time.Second, 11 * time.Second, false},
		{"renewed after 50s of silence, never seen stale", 60 * time.Second, 61 * time.Second, true},
		{"renewed on time again", 70 * time.Second, 71 * time.Second, false},
		{"stale", 70 * time.Second, 71*time.Second + staleAfter + time.Second, true},
		{"renewed again", 200 * time.Second, 201 * time.Second, true},
	}
	for _, st := range steps {
		lease.Spec.RenewTime = ptr.To(metav1.NewMicroTime(t0.Add(st.renewed)))
		if err := c.Update(ctx, lease); err != nil {
			t.Fatal(err)
		}
		clk.SetTime(t0.Add(st.check))
		if err := w.check(ctx); err != nil {
			t.Fatal(err)
		}
		var got []string
		for len(events) > 0 {
			got = append(got, (<-events).Object.GetName())
		}
		if st.want && (len(got) != 1 || got[0] != "blog") || !st.want && len(got) > 0 {
			t.Errorf("%s: passes asked for %v, want %v", st.name, got, map[bool][]string{true: {"blog"}}[st.want])
		}
	}
}
