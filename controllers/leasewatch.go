package controllers

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// leaseWatcher notices when a node's agent falls silent (its Lease is no
// longer renewed) or comes back, and only then asks for a pass of every
// AppGroup with a pool on that node. Agents renew their Lease every few
// seconds; passing every renewal on to every AppGroup would cost a
// reconcile per AppGroup per renewal, for nothing.
type leaseWatcher struct {
	client     client.Reader
	namespace  string
	staleAfter time.Duration
	every      time.Duration
	clock      clock.PassiveClock
	events     chan<- event.GenericEvent
	stale      map[string]bool      // node -> stale, as last seen
	renewed    map[string]time.Time // node -> renewTime, as last seen
	log        logr.Logger
}

// Start checks the Leases every w.every until ctx is done.
func (w *leaseWatcher) Start(ctx context.Context) error {
	log := w.log
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		if err := w.check(ctx); err != nil {
			log.Error(err, "Could not check the agents' leases")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NeedLeaderElection: only the leader reconciles, so only it need watch.
func (w *leaseWatcher) NeedLeaderElection() bool { return true }

func (w *leaseWatcher) check(ctx context.Context) error {
	var leases coordinationv1.LeaseList
	if err := w.client.List(ctx, &leases, client.InNamespace(w.namespace),
		client.MatchingLabels{contract.AgentLeaseComponentLabel: contract.AgentLeaseComponent}); err != nil {
		return err
	}
	now := w.clock.Now()
	seen := map[string]bool{}
	for _, l := range leases.Items {
		if l.Spec.HolderIdentity == nil || l.Spec.RenewTime == nil {
			continue
		}
		node := *l.Spec.HolderIdentity
		seen[node] = true
		stale := now.Sub(l.Spec.RenewTime.Time) > w.staleAfter
		before, known := w.stale[node]
		w.stale[node] = stale
		// A renewal that comes more than the bound after the previous one
		// ends a silence, even one too short for a check to see the Lease
		// stale: a pass made during it read the node's reports as stale,
		// and nothing else would pass over its AppGroups again (pools
		// rewritten unchanged do not: poolChanged).
		prev, renewedBefore := w.renewed[node]
		w.renewed[node] = l.Spec.RenewTime.Time
		gap := renewedBefore && l.Spec.RenewTime.Sub(prev) > w.staleAfter
		// A Lease first seen stale counts as a change too: the passes so
		// far may have trusted the node's reports.
		if (known && before != stale) || (!known && stale) || gap {
			if err := w.enqueueNode(ctx, node); err != nil {
				return err
			}
		}
	}
	for node := range w.stale {
		if !seen[node] { // the Lease is gone: its pools' reports decide alone
			delete(w.stale, node)
			delete(w.renewed, node)
			if err := w.enqueueNode(ctx, node); err != nil {
				return err
			}
		}
	}
	return nil
}

// enqueueNode asks for a pass of every AppGroup with a pool on node.
func (w *leaseWatcher) enqueueNode(ctx context.Context, node string) error {
	var pools ferryv1.ProcessPoolList
	if err := w.client.List(ctx, &pools, client.MatchingLabels(contract.NodeSelectorSet(node))); err != nil {
		return err
	}
	done := map[types.NamespacedName]bool{}
	for _, p := range pools.Items {
		key := types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.AppGroup}
		if done[key] {
			continue
		}
		done[key] = true
		select {
		case w.events <- event.GenericEvent{Object: &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace, Name: key.Name}}}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
