package controllers

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
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
	client client.Reader
	// probe reads the API server itself (not the cache) on each check, so
	// that contact knows when the manager could not hear it; nil: no probe.
	probe   client.Reader
	contact *apiContact
	// caughtUpTo are the Leases' versions the API server answered with
	// when contact came back, which the cache must show before it is
	// trusted.
	caughtUpTo map[string]string
	namespace  string
	staleAfter time.Duration
	every      time.Duration
	// signs time the Leases' renewals by when the watcher saw them;
	// leaseSigns are the Leases it last recorded there.
	signs      *signs
	leaseSigns map[string]bool
	clock      clock.PassiveClock
	events     chan<- event.GenericEvent
	stale      map[string]bool // node -> stale, as last seen
	// staleVouched is stale for passes over AppGroups whose status
	// vouched for their agents (hearing.vouched), as last seen: later
	// than stale for a Lease older than the manager's start.
	staleVouched map[string]bool
	checked      bool // a check has run to its end
	log          logr.Logger

	mu sync.Mutex
	// judgements are what passes concluded of each node's agent since the
	// last check (judged).
	judgements map[string]judgement
}

// judgement is what passes concluded of one node's agent: silent, fresh,
// or both (passes of different AppGroups, or the agent moved between them).
type judgement struct{ silent, fresh bool }

// judged tells the watcher what a pass concluded of node's agent, by the
// Lease (or, with none, the pool's report) it read. The next check asks for
// a pass of the node's AppGroups when it finds the Lease otherwise: no
// check may have seen the change the passes missed (the agent renewed, or
// fell silent, between two checks, or before the watcher first saw its
// Lease), and nothing else would pass over those AppGroups again (pools
// rewritten unchanged do not: poolChanged). A pass that judged an agent
// silent keeps its AppGroup Unknown until a pass trusts the agent again;
// one that judged it fresh keeps it Ready until one does not.
func (w *leaseWatcher) judged(node string, silent bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.judgements == nil {
		w.judgements = map[string]judgement{}
	}
	j := w.judgements[node]
	if silent {
		j.silent = true
	} else {
		j.fresh = true
	}
	w.judgements[node] = j
}

// restoreJudgements gives back judgements a failed check took, to the
// passes' newer ones.
func (w *leaseWatcher) restoreJudgements(old map[string]judgement) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.judgements == nil {
		w.judgements = map[string]judgement{}
	}
	for node, o := range old {
		j := w.judgements[node]
		j.silent, j.fresh = j.silent || o.silent, j.fresh || o.fresh
		w.judgements[node] = j
	}
}

// takeJudgements returns and forgets what passes concluded since the
// last call.
func (w *leaseWatcher) takeJudgements() map[string]judgement {
	w.mu.Lock()
	defer w.mu.Unlock()
	j := w.judgements
	w.judgements = nil
	return j
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

// probeTimeout bounds a probe: an API server that hangs (stopped, not
// gone) is out of contact too.
const probeTimeout = 10 * time.Second

// check judges each agent by its Lease and asks for a pass of a node's
// AppGroups when that judgement changed since the last check, or differs
// from what a pass concluded since (judged). A check that fails part-way
// keeps what it could not act on for the next: a node's state moves only
// once its pass is asked for, and the passes' judgements go back.
func (w *leaseWatcher) check(ctx context.Context) (err error) {
	var leases coordinationv1.LeaseList
	if err := w.client.List(ctx, &leases, client.InNamespace(w.namespace),
		client.MatchingLabels{contract.AgentLeaseComponentLabel: contract.AgentLeaseComponent}); err != nil {
		return err
	}
	if w.probe != nil && !w.probeContact(ctx, leases.Items) {
		return nil // no judging a silence the manager could not hear through
	}
	heard := w.contact.hearing()
	vouched := heard
	vouched.vouched = true
	now := w.clock.Now()
	if w.staleVouched == nil {
		w.staleVouched = map[string]bool{}
	}
	judged := w.takeJudgements()
	defer func() {
		if err != nil {
			w.restoreJudgements(judged)
		}
	}()
	held := w.sightRenewals(leases.Items)
	for node, renewed := range held {
		stale := now.Sub(heard.from(renewed, w.staleAfter)) > w.staleAfter
		staleVouched := now.Sub(vouched.from(renewed, w.staleAfter)) > w.staleAfter
		before, known := w.stale[node]
		// A Lease first seen counts as a change too, stale (the passes so
		// far may have trusted the node's reports) or, after the first
		// check, fresh: an agent's new Lease may end a silence passes
		// judged by its pools' reports while it had none, however long
		// ago (the first check's Leases are the informers' initial list,
		// whose AppGroups have their passes queued already). A pass that
		// concluded otherwise than this check would for any AppGroup
		// does too (judged): fresh where it is stale even for one whose
		// status vouched, silent where it is fresh even for one whose
		// status did not.
		j := judged[node]
		if (known && (before != stale || w.staleVouched[node] != staleVouched)) || (!known && (stale || w.checked)) ||
			(staleVouched && j.fresh) || (!stale && j.silent) {
			if err := w.enqueueNode(ctx, node); err != nil {
				return err
			}
		}
		w.stale[node], w.staleVouched[node] = stale, staleVouched
	}
	for node := range w.stale {
		if _, ok := held[node]; !ok { // the Lease is gone: its pools' reports decide alone
			w.signs.forget(leaseSign(node))
			if err := w.enqueueNode(ctx, node); err != nil {
				return err
			}
			delete(w.stale, node)
			delete(w.staleVouched, node)
		}
	}
	w.checked = true
	return nil
}

// sightRenewals records each Lease's renewal in signs (the watcher sees
// each Lease's versions in order, as the cache holds them) and returns,
// per node, when the manager last saw any Lease it holds renewed (two
// Leases naming one holder must not take turns at looking new). It
// forgets the Leases gone since the last check.
func (w *leaseWatcher) sightRenewals(leases []coordinationv1.Lease) map[string]time.Time {
	held := map[string]time.Time{}
	present := map[string]bool{}
	for _, l := range leases {
		if l.Spec.HolderIdentity == nil || l.Spec.RenewTime == nil {
			continue
		}
		key := leaseObjectSign(l.Namespace, l.Name)
		present[key] = true
		at := w.signs.saw(key, l.Spec.RenewTime.Time)
		if last, ok := held[*l.Spec.HolderIdentity]; !ok || at.After(last) {
			held[*l.Spec.HolderIdentity] = at
		}
	}
	for node, at := range held {
		w.signs.heard(leaseSign(node), at)
	}
	for key := range w.leaseSigns {
		if !present[key] {
			w.signs.forget(key)
		}
	}
	w.leaseSigns = present
	return held
}

// probeContact reads the agents' Leases from the API server itself: when
// that fails, contact is lost; once it works again, contact is back when
// the cache (cached) shows every Lease at least as new as the API server
// did the first time it answered again, and one written since
// (cacheProgress). It reports whether the manager is in contact, its cache
// caught up.
func (w *leaseWatcher) probeContact(ctx context.Context, cached []coordinationv1.Lease) bool {
	var direct coordinationv1.LeaseList
	opts := []client.ListOption{client.InNamespace(w.namespace),
		client.MatchingLabels{contract.AgentLeaseComponentLabel: contract.AgentLeaseComponent}}
	if !w.contact.catchingUp() || w.caughtUpTo != nil {
		opts = append(opts, client.Limit(1)) // a probe: whether it answers
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	err := w.probe.List(pctx, &direct, opts...)
	cancel()
	if err != nil {
		if w.contact.lose() {
			w.log.Info("Lost contact with the API server; agents are not judged silent over the time until it is back",
				"error", err.Error())
		}
		w.caughtUpTo = nil
		return false
	}
	if regained, without := w.contact.reach(); regained {
		w.log.Info("Regained contact with the API server; agents are judged again once the cache has caught up",
			"without", without.Round(time.Second).String())
		return false // the next check reads every Lease, for caughtUpTo
	}
	if !w.contact.catchingUp() {
		return true
	}
	if w.caughtUpTo == nil {
		w.caughtUpTo = versions(direct.Items)
	}
	behind, moved := cacheProgress(w.caughtUpTo, versions(cached))
	if (behind > 0 || !moved) && w.contact.catchingUpFor() < maxCatchUp {
		return false
	}
	w.caughtUpTo = nil
	took := w.contact.caughtUp().Round(time.Second).String()
	if behind > 0 || !moved {
		w.log.Error(nil, "The cache has not caught up with the API server; judging agents by it again all the same",
			"after", took, "leasesBehind", behind, "writtenSince", moved)
	} else {
		w.log.Info("The cache caught up with the API server; agents get the staleness bound from now to renew their Leases",
			"after", took)
	}
	return true
}

// cacheProgress compares the cache's Lease versions (have) with the API
// server's first answer after an outage (first): behind counts the Leases
// the cache shows older than that answer did; moved says the cache shows
// one written since, proof that its watch delivers what happens now. The
// first answer may predate every agent's renewal after the outage, and a
// cache that only matches it may still lag the renewals by more than the
// staleness bound on a loaded machine: both are waited for. A Lease
// deleted meanwhile is not; with none left, nothing is.
//
// Older and newer are the API server's order of writes (resourceVersion),
// not the renewal times: those are the agents' clocks, and an agent whose
// clock stepped back during the catch-up renews with an older time than
// the first answer showed, which made the cache look behind until
// maxCatchUp. A version the API server does not number (it may not, by
// the API conventions) can only be matched: another counts as behind.
func cacheProgress(first, have map[string]string) (behind int, moved bool) {
	left := 0
	for key, version := range first {
		v, ok := have[key]
		if !ok {
			continue
		}
		left++
		switch c, err := resourceversion.CompareResourceVersion(v, version); {
		case err != nil && v != version, err == nil && c < 0:
			behind++
		case err == nil && c > 0:
			moved = true
		}
	}
	return behind, moved || left == 0
}

// maxCatchUp bounds how long agents go unjudged while the cache catches up
// after an outage: informers retry within a minute, and a cache that takes
// much longer is broken, which must not hide dead agents for good.
const maxCatchUp = 3 * time.Minute

// versions are the Leases' resourceVersions by namespace and name.
func versions(leases []coordinationv1.Lease) map[string]string {
	out := make(map[string]string, len(leases))
	for _, l := range leases {
		out[leaseObjectSign(l.Namespace, l.Name)] = l.ResourceVersion
	}
	return out
}

// enqueueNode asks for a pass of every AppGroup with a pool on node. The
// pools are found by spec.nodeName (the drain releaser's index), not by
// their ferry.dev/node label: one whose label went (by hand, or a tool
// that rewrote its labels) is still the node's, and a deleted one the
// manager does not label again keeps its AppGroup waiting for the node's
// agent. That AppGroup's passes requeue for no staleness a Lease tells
// (nextStaleness): missed here, its status said nothing of the agent's
// silence, or of its return, until its resync.
func (w *leaseWatcher) enqueueNode(ctx context.Context, node string) error {
	var pools ferryv1.ProcessPoolList
	if err := w.client.List(ctx, &pools, client.MatchingFields{poolNodeIndex: node}); err != nil {
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
