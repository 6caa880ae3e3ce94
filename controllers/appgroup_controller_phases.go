package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// Labels on the Services and EndpointSlices the manager owns.
const (
	// ManagedByLabel and ManagedByValue mark the Services the manager owns;
	// the manager's cache holds only those (CacheOptions).
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "ferry-manager"
	// EndpointSliceManager is the endpointslice.kubernetes.io/managed-by
	// value of the manager's EndpointSlices, so that Kubernetes' own
	// EndpointSlice controllers leave them alone.
	EndpointSliceManager = "manager.ferry.dev"
	// maxEndpoints is the most endpoints the API server takes in one
	// EndpointSlice.
	maxEndpoints = 1000
)

// sliceCapacity is the most endpoints the manager puts in one slice
// (MaxEndpointsPerSlice).
func (r *AppGroupReconciler) sliceCapacity() int {
	if r.MaxEndpointsPerSlice <= 0 || r.MaxEndpointsPerSlice > maxEndpoints {
		return maxEndpoints
	}
	return r.MaxEndpointsPerSlice
}

// maxConcurrentCreates is how many pools one pass creates at once.
const maxConcurrentCreates = 16

// cacheSyncTimeout bounds how long a pass waits for its own writes to reach
// the cache, so that the next pass plans from them.
const cacheSyncTimeout = 10 * time.Second

// reconcilePools gives every selected node one pool and takes pools away
// from nodes no longer selected. A pool being deleted is drained by its
// node's agent, which then removes the drain finalizer; when the Node is
// gone there is no agent, and the manager removes the finalizer itself
// (drainReleaser).
func (r *AppGroupReconciler) reconcilePools(ctx context.Context, s *scope) error {
	var errs []error
	drainingOn := map[string]bool{}
	kept := contract.KeptPools(s.owned)
	for _, p := range s.owned {
		node := p.Spec.NodeName
		switch {
		case !p.DeletionTimestamp.IsZero() || !s.selected[node]:
			if err := r.deletePool(ctx, p); err != nil {
				errs = append(errs, err)
			}
			drainingOn[node] = true
			s.draining = append(s.draining, p)
		case kept[node] != p:
			// Two pools for one node (a lost race): keep the one
			// contract.KeptPools picks, the lowest name.
			if err := r.deletePool(ctx, p); err != nil {
				errs = append(errs, err)
			}
			s.draining = append(s.draining, p)
		default:
			s.pools[node] = p
		}
	}
	if s.target == "" {
		return errors.Join(errs...)
	}
	var missing []string
	for _, node := range s.nodes {
		// A node whose previous pool still drains gets its new one after:
		// both would want the same port.
		switch {
		case s.pools[node] != nil:
		case drainingOn[node]:
			s.awaitingDrain = append(s.awaitingDrain, node)
		default:
			missing = append(missing, node)
		}
	}
	reports := s.reports(r.AgentStaleAfter)
	var revision string
	var app ferryv1.AppSpec
	if s.revisionErr == nil {
		s.remember(reports)
		revision, app = newPoolRevision(s.ag, s.target, s.nodes, reports, s.halt != nil, s.targetProven(), s.lastGood)
	} else {
		var ok bool
		if revision, app, ok = servedRevision(s.target, s.nodes, reports, s.halt != nil, s.lastGood); !ok {
			s.unserved = missing
			return errors.Join(errs...)
		}
	}
	missing = r.knownPoolsTaken(ctx, s, missing)
	// Each creation is a round trip to the API server: make them at once
	// (at most maxConcurrentCreates), not one after the other.
	created := make([]*ferryv1.ProcessPool, len(missing))
	createErrs := make([]error, len(missing))
	sem := make(chan struct{}, maxConcurrentCreates)
	var wg sync.WaitGroup
	for i, node := range missing {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			created[i], createErrs[i] = r.createPool(ctx, s, node, revision, app)
		}()
	}
	wg.Wait()
	for i, node := range missing {
		var taken *poolNamesTaken
		switch {
		case errors.As(createErrs[i], &taken):
			s.poolTaken = append(s.poolTaken, *taken) // the status says so
			continue
		case createErrs[i] != nil:
			errs = append(errs, writeFailed("create the pool of node "+node, createErrs[i]))
			continue
		}
		s.pools[node] = created[i]
		s.created = append(s.created, created[i])
	}
	// Those the last look found (knownPoolsTaken) came first.
	slices.SortFunc(s.poolTaken, func(a, b poolNamesTaken) int { return strings.Compare(a.node, b.node) })
	return errors.Join(errs...)
}

// awaitCreated waits until the cache shows every pool the pass created: the
// next pass must see them, or it would create them again. It runs once the
// pass's other writes are made, so that the wait for the watch overlaps
// them, and waits once for all the pools rather than a cache round trip
// each.
func (r *AppGroupReconciler) awaitCreated(ctx context.Context, s *scope) error {
	var errs []error
	for _, p := range s.created {
		if err := r.waitForCache(ctx, p, func(client.Object) bool { return true }); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deletePool deletes a pool, if not already deleting (drainReleaser lets
// go of one whose Node is gone).
func (r *AppGroupReconciler) deletePool(ctx context.Context, p *ferryv1.ProcessPool) error {
	if !p.DeletionTimestamp.IsZero() {
		return nil
	}
	if err := r.Client.Delete(ctx, p, client.Preconditions{UID: &p.UID}); err != nil {
		return client.IgnoreNotFound(err)
	}
	ctrl.LoggerFrom(ctx).Info("Deleted pool", "pool", klog.KObj(p), "node", p.Spec.NodeName)
	return nil
}

// newPoolRevision is the revision, and the app, a new node's pool starts
// on: the target once it is proven (it ran rolled out on a node, past the
// crash window) and its rollout is not halted; else the fallback revision,
// if any (what a node serves ready on an earlier revision, or the last
// revision rolled out everywhere). A node that joins mid-rollout, before
// the target has proven itself, so serves what works and is given the
// target in a later wave, when it has processes of its own to resist a
// broken target with (planWave); given the target at once, a target that
// cannot start would have left it serving nothing until the manager
// returned it. A node that joins during a halted rollout serves what
// works too, and takes the next target in its turn. With no fallback (a
// new AppGroup's first revision) it is the target.
func newPoolRevision(ag *ferryv1.AppGroup, target string, nodes []string, reports map[string]poolReport,
	halted, proven bool, last *ferryv1.RolledOutRevision) (string, ferryv1.AppSpec) {
	if halted || !proven {
		if rev, app, ok := fallback(nodes, reports, last, target); ok {
			return rev, app
		}
	}
	return target, *ag.Spec.App.DeepCopy()
}

// servedRevision is the revision, and the app, a new node's pool starts on
// while the revision annotation is invalid, when the spec's app may belong
// to no valid revision: what another node serves ready (the target first,
// unless its rollout is halted), else the fallback (the last revision
// rolled out everywhere). The node then serves like the others, and rolls
// when the annotation is fixed. ok is false when nothing is known to work.
func servedRevision(target string, nodes []string, reports map[string]poolReport,
	halted bool, last *ferryv1.RolledOutRevision) (string, ferryv1.AppSpec, bool) {
	if !halted {
		for _, node := range nodes {
			if r, ok := reports[node]; ok && r.OnTarget && r.servesSpecReady() {
				return target, *r.Pool.Spec.Template.App.DeepCopy(), true
			}
		}
		if last != nil && last.Revision == target {
			return target, *last.App.DeepCopy(), true
		}
	}
	return fallback(nodes, reports, last, target)
}

// createPool creates the pool of node on revision, running app. Its name
// is contract.PoolName, or contract.HashedPoolName when another object has
// that name already. The caller waits for the cache to show it.
func (r *AppGroupReconciler) createPool(ctx context.Context, s *scope, node, revision string, app ferryv1.AppSpec) (*ferryv1.ProcessPool, error) {
	ag := s.ag
	names := []string{contract.PoolName(ag.Name, node), contract.HashedPoolName(ag.Name, node)}
	for _, name := range names {
		p := &ferryv1.ProcessPool{
			ObjectMeta: metav1.ObjectMeta{
				Name:       name,
				Namespace:  ag.Namespace,
				Labels:     contract.PoolLabels(ag.Name, node),
				Finalizers: []string{contract.DrainFinalizer},
			},
			Spec: ferryv1.ProcessPoolSpec{
				NodeName: node,
				AppGroup: ag.Name,
				Revision: revision,
				Template: *ag.Spec.AppTemplate.DeepCopy(),
			},
		}
		p.Spec.Template.App = app
		if err := controllerutil.SetControllerReference(ag, p, r.Scheme); err != nil {
			return nil, err
		}
		err := r.Client.Create(ctx, p)
		if err == nil {
			ctrl.LoggerFrom(ctx).Info("Created pool", "pool", klog.KObj(p), "node", node, "revision", revision)
			return p, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		existing := &ferryv1.ProcessPool{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(p), existing); err != nil {
			return nil, err
		}
		if metav1.IsControlledBy(existing, ag) && existing.Spec.NodeName == node {
			// Ours: the cache has not seen it yet.
			return existing, nil
		}
	}
	return nil, &poolNamesTaken{node: node, names: names}
}

// poolNamesTaken is a node's pool that cannot be made: both names it may
// have (createPool) are other ProcessPools' (not the AppGroup's, or of
// another node). No retry helps, so it is no error of the pass but a
// Ready reason (NameTaken) that names them.
type poolNamesTaken struct {
	node  string
	names []string
}

func (e *poolNamesTaken) Error() string {
	return fmt.Sprintf("creating the pool of node %s: names %q and %q are taken by other ProcessPools", e.node, e.names[0], e.names[1])
}

// reconcileRollout keeps every pool's spec in line with the AppGroup: the
// listen, pool and restart settings at once, the app and the revision when
// the pool's wave comes (planWave).
func (r *AppGroupReconciler) reconcileRollout(ctx context.Context, s *scope) error {
	plan := r.planRollout(ctx, s)
	var errs []error
	for _, node := range s.nodes {
		p := s.pools[node]
		if p == nil {
			continue
		}
		desired, returned := plan.desired(s, node, p)
		if equality.Semantic.DeepEqual(p, desired) {
			continue
		}
		if err := r.patchPool(ctx, s, p, desired, returned); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rolloutPlan is what a pass gives each node's pool of the rollout.
type rolloutPlan struct {
	// canRoll: the target is valid and set, so pools may be given it.
	canRoll bool
	// give are the nodes whose wave comes now (planWave).
	give map[string]bool
	// back are the nodes returned from the target to what worked
	// (returnsFromTarget), with that revision and its app.
	back map[string]spawnable
}

// spawnable is a revision and the app that runs it.
type spawnable struct {
	revision string
	app      ferryv1.AppSpec
}

// planRollout decides, from the pools' reports, which nodes get the target
// now and which go back from it. While the revision annotation is invalid
// no wave starts, but a node that cannot spawn the target with nothing
// older to serve still goes back to what works: the invalid annotation
// stops new waves, not resistance, and the node would serve nothing until
// the annotation is fixed.
func (r *AppGroupReconciler) planRollout(ctx context.Context, s *scope) rolloutPlan {
	plan := rolloutPlan{canRoll: s.revisionErr == nil && s.target != "", give: map[string]bool{}, back: map[string]spawnable{}}
	if s.target == "" {
		return plan
	}
	reports := s.reports(r.AgentStaleAfter)
	s.remember(reports)
	ordered := make([]poolReport, 0, len(reports))
	for _, node := range s.nodes {
		if rep, ok := reports[node]; ok {
			ordered = append(ordered, rep)
			if !returnsFromTarget(s.ag, rep, s.targetProven(), s.halt) {
				continue
			}
			if rev, app, ok := fallback(s.nodes, reports, s.lastGood, s.target); ok {
				plan.back[node] = spawnable{rev, app}
			}
		}
	}
	if !plan.canRoll {
		return plan
	}
	wave := planWave(ordered, s.ag.Spec.Restart.MaxConcurrentNodes, s.halt, s.targetProven())
	for _, node := range wave.Give {
		plan.give[node] = true
	}
	if len(wave.Give) > 0 {
		ctrl.LoggerFrom(ctx).Info("Started wave", "revision", s.target, "nodes", wave.Give,
			"rolling", len(wave.Rolling), "waiting", len(wave.Waiting))
	}
	return plan
}

// desired is node's pool p as the plan wants it, and whether the plan
// returns it from the target.
func (plan rolloutPlan) desired(s *scope, node string, p *ferryv1.ProcessPool) (*ferryv1.ProcessPool, bool) {
	desired := p.DeepCopy()
	t := &desired.Spec.Template
	if _, lost := s.portLost[node]; !lost {
		// Where another AppGroup has the new port, the pool keeps
		// its old one (leavePortsTaken).
		t.Listen = s.ag.Spec.Listen
	}
	t.Pool = *s.ag.Spec.Pool.DeepCopy()
	t.Restart = *s.ag.Spec.Restart.DeepCopy()
	t.Proxy = *s.ag.Spec.Proxy.DeepCopy()
	to, returned := plan.back[node]
	switch {
	case returned:
		desired.Spec.Revision = to.revision
		t.App = to.app
		metav1.SetMetaDataAnnotation(&desired.ObjectMeta, contract.ReturnedFromAnnotation, s.target)
	case plan.canRoll && (plan.give[node] || p.Spec.Revision == s.target):
		desired.Spec.Revision = s.target
		t.App = *s.ag.Spec.App.DeepCopy()
	}
	if v, ok := desired.Annotations[contract.ReturnedFromAnnotation]; ok && (v != s.target || desired.Spec.Revision == s.target) {
		// Returned from an earlier target, or given the target again.
		delete(desired.Annotations, contract.ReturnedFromAnnotation)
	}
	if s.proven != "" && desired.Spec.Revision == s.proven {
		metav1.SetMetaDataAnnotation(&desired.ObjectMeta, contract.ProvenAnnotation, s.proven)
	} else {
		delete(desired.Annotations, contract.ProvenAnnotation)
	}
	if desired.Labels == nil {
		desired.Labels = map[string]string{}
	}
	for k, v := range contract.PoolLabels(s.ag.Name, node) {
		desired.Labels[k] = v
	}
	controllerutil.AddFinalizer(desired, contract.DrainFinalizer)
	return desired, returned
}

// patchPool writes desired over p, and when that moves its revision, says
// so (an event for a node returned from the target) and waits for the
// cache to show it.
func (r *AppGroupReconciler) patchPool(ctx context.Context, s *scope, p, desired *ferryv1.ProcessPool, returned bool) error {
	log := ctrl.LoggerFrom(ctx)
	revisionMoved := desired.Spec.Revision != p.Spec.Revision
	failed := p.Status.LastSpawnError
	// No resourceVersion guard: the manager is the spec's only writer,
	// and the agent's status reports move the resourceVersion all the
	// time.
	if err := r.Client.Patch(ctx, desired, client.MergeFrom(p)); err != nil {
		return err
	}
	*p = *desired
	if !revisionMoved {
		return nil
	}
	node := p.Spec.NodeName
	if returned {
		// Said as the event says it: the target may be proven (the node
		// resisted it, then lost its old processes), and its processes
		// may have spawned and died.
		note := returnedNote(node, p.Spec.Revision, s.target, failed)
		log.Info("Returned node to an older revision", "pool", klog.KObj(p), "node", node, "revision", p.Spec.Revision,
			"halted", s.target, "why", note)
		r.record(ctx, s.ag, statusEvent{Type: corev1.EventTypeWarning, Reason: EventNodeReturned, Action: "Rollout", Note: note,
			Related: p})
	} else {
		log.Info("Gave revision to node", "pool", klog.KObj(p), "node", node, "revision", s.target)
	}
	// The next pass counts this pool as rolling only if the cache shows
	// its new spec; wait for it rather than over-roll.
	generation := p.Generation
	return r.waitForCache(ctx, p, func(o client.Object) bool { return o.GetGeneration() >= generation })
}

// returnedNote is NodeReturned's note for node, returned to revision from
// target, whose agent last reported failed of its spawns. The agent counts
// a process of the target that died within the crash window of ready as a
// failed spawn (contract.YoungDeathOf): that one spawned, so the note
// says what became of it, not that the node cannot spawn the target.
func returnedNote(node, revision, target string, failed *ferryv1.SpawnError) string {
	if contract.YoungDeathOf(failed, target) {
		// Not "no older process to serve": its agent held the revision's
		// spawns mid-restart, its old processes serving on (pool's
		// holdingLocked), and the manager returned it all the same.
		return fmt.Sprintf("Returned node %s to revision %s: its processes of revision %s died soon after they were ready (%s)",
			node, revision, target, cutMiddle(failed.Reason, maxReason))
	}
	return fmt.Sprintf("Returned node %s to revision %s: it cannot spawn revision %s and had no older process to serve",
		node, revision, target)
}

// reconcileTraffic keeps the AppGroup's Service and EndpointSlices: one
// endpoint per node whose agent reported an address, ready where its pool
// is ready and its report recent.
func (r *AppGroupReconciler) reconcileTraffic(ctx context.Context, s *scope) error {
	ag := s.ag
	name := contract.ServiceName(ag.Name)
	port := ag.Spec.Listen.Port
	if s.knownTaken("Service", name) {
		return nil
	}

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ag.Namespace}}
	if err := r.createOrPatch(ctx, ag, svc, func() error {
		if svc.Labels == nil {
			svc.Labels = map[string]string{}
		}
		svc.Labels[ManagedByLabel] = ManagedByValue
		svc.Labels[ferryv1.AppGroupLabel] = contract.LabelValue(ag.Name)
		svc.Spec.Selector = nil
		svc.Spec.Ports = []corev1.ServicePort{{
			Name: "http", Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(port),
		}}
		return controllerutil.SetControllerReference(ag, svc, r.Scheme)
	}); err != nil {
		var taken *nameTaken
		if errors.As(err, &taken) {
			// The status says so; no slice is written: labelled with
			// another's Service, it would send that Service's traffic
			// to the AppGroup's nodes.
			s.taken = append(s.taken, *taken)
			return nil
		}
		return writeFailed("create or update Service "+name, err)
	}

	return r.reconcileEndpoints(ctx, s)
}

// reconcileEndpoints keeps the AppGroup's EndpointSlices: the active pools
// of the pass (s.pools, none while the AppGroup is deleted) and the
// draining ones (s.draining), terminating, in slices of the port they
// serve on, as many as that port's endpoints need (planSlices). Nearly
// always that is listen.port alone, in one slice named as the Service. A
// pool kept on its old port where another AppGroup holds listen.port
// (leavePortsTaken) is in a slice of its own port (endpointSliceName):
// the Service's port is named, and each slice says which port its
// endpoints serve it on, so the Service reaches those nodes too.
func (r *AppGroupReconciler) reconcileEndpoints(ctx context.Context, s *scope) error {
	ag := s.ag
	reports := s.reports(r.AgentStaleAfter)
	active := make([]poolReport, 0, len(reports))
	for _, node := range s.nodes {
		if rep, ok := reports[node]; ok {
			active = append(active, rep)
		}
	}
	draining := make([]poolReport, 0, len(s.draining))
	for _, p := range s.draining {
		rep := assessPool(p, s.target, s.now, r.AgentStaleAfter, s.leases[p.Spec.NodeName], s.hearing)
		r.noteJudged(rep) // its endpoint's serving says what the pass judged
		draining = append(draining, rep)
	}
	byPort := endpointsByPort(active, draining)
	ports := slices.Sorted(maps.Keys(byPort))
	if _, ok := byPort[ag.Spec.Listen.Port]; !ok {
		ports = append(ports, ag.Spec.Listen.Port) // emptied, if it exists
	}
	had, err := r.sliceNodes(ctx, ag)
	if err != nil {
		return err
	}
	var errs []error
	wanted := map[string]bool{}
	for _, port := range ports {
		errs = append(errs, r.writeEndpointSlices(ctx, ag, port, byPort[port], had[port], wanted))
	}
	errs = append(errs, r.deleteEndpointSlicesBut(ctx, ag, wanted))
	return errors.Join(errs...)
}

// writeEndpointSlices writes the slices of want, the endpoints of port,
// as planSlices spreads them from had, and adds their names to wanted. A
// name an object not the AppGroup's has (a *nameTaken at its write) is
// skipped: its endpoints are planned again into the next free one, so
// every node stays behind the Service, and a Warning event says which
// object has the name and where its endpoints went (warnSliceMoved),
// once that slice is written: while its write fails, the WriteFailed of
// the error returned says so, and the pass that writes it names it.
// The slices before it in the plan are as they were (a node goes to the
// first index that fits), so only those after it are written again.
func (r *AppGroupReconciler) writeEndpointSlices(ctx context.Context, ag *ferryv1.AppGroup, port int32, want []discoveryv1.Endpoint,
	had map[int][]string, wanted map[string]bool) error {
	taken := map[int]bool{}
	var moved []movedSlice
	wrote := map[int][]discoveryv1.Endpoint{}
	failed := map[int]bool{} // of wrote, those whose write failed
	var errs []error
	for {
		plan, at := planSlices(want, had, r.sliceCapacity(), taken)
		if _, ok := plan[0]; !ok && port == ag.Spec.Listen.Port && !taken[0] {
			plan[0] = nil // the Service's own: emptied, if it exists
		}
		again := false
		for _, i := range slices.Sorted(maps.Keys(plan)) {
			if done, ok := wrote[i]; ok && equality.Semantic.DeepEqual(done, plan[i]) {
				continue
			}
			name := endpointSliceName(ag, port, i)
			err := r.writeEndpointSlice(ctx, ag, name, port, plan[i])
			var t *nameTaken
			if errors.As(err, &t) {
				taken[i] = true
				if len(plan[i]) == 0 {
					continue // an emptied one needs no other name
				}
				moved = append(moved, movedSlice{name: name, node: ptr.Deref(plan[i][0].NodeName, "")})
				again = true
				break
			}
			wanted[name] = true
			wrote[i] = plan[i]
			failed[i] = err != nil
			if err == nil && len(plan[i]) > 0 {
				// Written (an empty one may have been no more than a
				// look at the cache, which shows no unlabelled object).
				r.sliceNameFree(ag, name)
			}
			errs = append(errs, err)
		}
		if !again {
			for _, m := range moved {
				if !failed[at[m.node]] {
					r.warnSliceMoved(ctx, ag, m.name, endpointSliceName(ag, port, at[m.node]))
				}
			}
			return errors.Join(errs...)
		}
	}
}

// movedSlice is a slice name found taken in a pass, and the node of the
// first endpoint planned there: where it goes is where they went.
type movedSlice struct{ name, node string }

// warnSliceMoved records, once per name as far as this manager remembers
// (sliceNameFree forgets it), that an object not ag's has name, which a
// slice of ag's would have, and that its endpoints are in the slice to
// instead: writeEndpointSlices calls it once the slice to is written.
// Nothing is lost, so Ready does not say so: a Service's slices are those
// labelled with its name, whatever theirs.
func (r *AppGroupReconciler) warnSliceMoved(ctx context.Context, ag *ferryv1.AppGroup, name, to string) {
	key := client.ObjectKeyFromObject(ag)
	warned, _ := r.slicesMoved.get(key, ag.UID)
	if slices.Contains(warned, name) {
		return
	}
	r.slicesMoved.set(key, ag.UID, append(slices.Clone(warned), name))
	r.record(ctx, ag, statusEvent{Type: corev1.EventTypeWarning, Reason: EventNameTaken, Action: "Write", Note: sliceMovedNote(name, to),
		Related: &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ag.Namespace, Name: name}}})
}

// sliceMovedNote is warnSliceMoved's note.
func sliceMovedNote(name, to string) string {
	return "EndpointSlice " + name + " is not this AppGroup's (the manager never takes over an object it did not make): " +
		"the endpoints it would hold are in EndpointSlice " + to + " instead, behind the Service as the others, so no node is left out"
}

// sliceNameFree forgets that warnSliceMoved named the slice name of ag:
// the AppGroup's own has it now, and one in the way again is news.
func (r *AppGroupReconciler) sliceNameFree(ag *ferryv1.AppGroup, name string) {
	key := client.ObjectKeyFromObject(ag)
	if warned, ok := r.slicesMoved.get(key, ag.UID); ok && slices.Contains(warned, name) {
		r.slicesMoved.set(key, ag.UID, slices.DeleteFunc(slices.Clone(warned), func(n string) bool { return n == name }))
	}
}

// endpointSliceName names the index'th slice of ag's endpoints on port
// (planSlices): the first is the Service's name for listen.port,
// "<service>.<port>" for another; those after it "<service>.<port>-<index>".
// The dot keeps each from ever being another AppGroup's: a Service's name
// has none (contract.ServiceName), and "<service>-<port>" was AppGroup
// "<service>-<port>"'s own slice (found by review).
func endpointSliceName(ag *ferryv1.AppGroup, port int32, index int) string {
	name := contract.ServiceName(ag.Name)
	switch {
	case index > 0:
		return fmt.Sprintf("%s.%d-%d", name, port, index)
	case port == ag.Spec.Listen.Port:
		return name
	}
	return fmt.Sprintf("%s.%d", name, port)
}

// sliceOf is the port and index of ag's slice name (endpointSliceName);
// ok is false for a name it gives to no port and index, such as
// "<service>.<listen.port>": a slice made while listen.port was another,
// whose nodes the Service's own slice takes now.
func sliceOf(ag *ferryv1.AppGroup, name string) (port int32, index int, ok bool) {
	if name == contract.ServiceName(ag.Name) {
		return ag.Spec.Listen.Port, 0, true
	}
	rest, ok := strings.CutPrefix(name, contract.ServiceName(ag.Name)+".")
	if !ok {
		return 0, 0, false
	}
	p, i, indexed := strings.Cut(rest, "-")
	p64, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return 0, 0, false
	}
	if indexed {
		if index, err = strconv.Atoi(i); err != nil {
			return 0, 0, false
		}
	}
	// Only the name itself: not "-0", "-01" or "08080".
	return int32(p64), index, endpointSliceName(ag, int32(p64), index) == name
}

// sliceNodes are, by port and index (sliceOf), the nodes of the endpoints
// of ag's slices in the cache: where planSlices keeps them. A slice of an
// AppGroup of ag's name deleted before it was created again counts too:
// it is adopted when written (ownName).
func (r *AppGroupReconciler) sliceNodes(ctx context.Context, ag *ferryv1.AppGroup) (map[int32]map[int][]string, error) {
	var list discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &list, client.InNamespace(ag.Namespace), client.MatchingFields{extraSliceIndex: ag.Name}); err != nil {
		return nil, err
	}
	first := &discoveryv1.EndpointSlice{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: ag.Namespace, Name: contract.ServiceName(ag.Name)}, first)
	switch {
	case err == nil:
		list.Items = append(list.Items, *first)
	case !apierrors.IsNotFound(err):
		return nil, err
	}
	out := map[int32]map[int][]string{}
	for i := range list.Items {
		sl := &list.Items[i]
		port, index, ok := sliceOf(ag, sl.Name)
		if !ok || !ownName(sl, ag) {
			continue
		}
		if out[port] == nil {
			out[port] = map[int][]string{}
		}
		nodes := make([]string, 0, len(sl.Endpoints)) // an empty slice is one there is
		for _, e := range sl.Endpoints {
			nodes = append(nodes, ptr.Deref(e.NodeName, ""))
		}
		out[port][index] = nodes
	}
	return out, nil
}

// planSlices spreads want, the endpoints of one port in order
// (desiredEndpoints), over slices of at most capacity endpoints each, by
// index (endpointSliceName), as Kubernetes' own EndpointSlice controller
// spreads a Service's past its maxEndpointsPerSlice. had are the nodes
// of each slice of the port there is: a node stays in its slice while
// others come and go, so that a change rewrites one slice, not every one
// after it. A node new to the port goes to the first slice there is with
// room, else to a new one at the first index free. A node's endpoints (two
// where a pool of it drains beside its active one) stay together; those
// of a slice over capacity (lowered) past its first are placed anew. The
// plan holds the slices with endpoints, each in want's order; a slice of
// had that is not in it has none left. Slices are not merged as their
// nodes go: each keeps its own, and takes the next new ones. An index in
// taken, whose name an object not the AppGroup's has, is never used: its
// endpoints go on in the next free one, behind the Service all the same
// (a Service's slices are those labelled with its name, whatever theirs).
// at is each node's index in the plan.
func planSlices(want []discoveryv1.Endpoint, had map[int][]string, capacity int,
	taken map[int]bool) (plan map[int][]discoveryv1.Endpoint, at map[string]int) {
	of := map[string][]discoveryv1.Endpoint{} // by node
	var nodes []string
	for _, e := range want {
		node := ptr.Deref(e.NodeName, "")
		if of[node] == nil {
			nodes = append(nodes, node)
		}
		of[node] = append(of[node], e)
	}
	count := map[int]int{}
	at = map[string]int{}
	// An empty slice takes a node whatever capacity: a node's endpoints
	// are never split (more than capacity only where it is below two).
	fits := func(i int, node string) bool {
		return !taken[i] && (count[i] == 0 || count[i]+len(of[node]) <= capacity)
	}
	place := func(i int, node string) {
		at[node] = i
		count[i] += len(of[node])
	}
	existing := slices.Sorted(maps.Keys(had))
	for _, i := range existing {
		for _, node := range had[i] {
			if _, placed := at[node]; !placed && of[node] != nil && fits(i, node) {
				place(i, node)
			}
		}
	}
	for _, node := range nodes {
		if _, placed := at[node]; placed {
			continue
		}
		if j := slices.IndexFunc(existing, func(i int) bool { return fits(i, node) }); j >= 0 {
			place(existing[j], node)
			continue
		}
		// None there is has room: the first index free or of a slice
		// this plan began, with room.
		i := 0
		for !fits(i, node) {
			i++
		}
		place(i, node)
	}
	plan = map[int][]discoveryv1.Endpoint{}
	for _, e := range want {
		i := at[ptr.Deref(e.NodeName, "")]
		plan[i] = append(plan[i], e)
	}
	return plan, at
}

// extraSliceIndex indexes the EndpointSlices other than the one named as
// the Service (endpointSliceName: of a port other than listen.port, or
// past a port's first) by the AppGroup that controls them, so that a pass
// finds its own, nearly always none, without going over every slice of
// the namespace.
const extraSliceIndex = "ferry.dev/extra-slice-of"

func indexExtraSlice(o client.Object) []string {
	ref := metav1.GetControllerOf(o)
	if ref == nil || ref.Kind != "AppGroup" || o.GetName() == contract.ServiceName(ref.Name) {
		return nil
	}
	return []string{ref.Name}
}

// endpointsByPort groups desiredEndpoints by the port each pool serves on:
// its spec's listen.port, or the old port it still serves on while the
// new one is taken (ServesOn).
func endpointsByPort(active, draining []poolReport) map[int32][]discoveryv1.Endpoint {
	group := func(reports []poolReport) map[int32][]poolReport {
		m := map[int32][]poolReport{}
		for _, r := range reports {
			port := r.Pool.Spec.Template.Listen.Port
			if r.ServesOn != 0 {
				port = r.ServesOn
			}
			m[port] = append(m[port], r)
		}
		return m
	}
	a, d := group(active), group(draining)
	ports := map[int32]bool{}
	for _, m := range []map[int32][]poolReport{a, d} {
		for port := range m {
			ports[port] = true
		}
	}
	out := map[int32][]discoveryv1.Endpoint{}
	for port := range ports {
		if eps := desiredEndpoints(a[port], d[port]); len(eps) > 0 {
			out[port] = eps
		}
	}
	return out
}

// writeEndpointSlice creates or updates the slice name, of endpoints on
// port (at most sliceCapacity: planSlices). An empty one is not created (a
// Service without slices has no endpoints, as one with an empty slice, and
// a new AppGroup costs one write less); the Service's own slice, once it
// exists, is kept, emptied, and another is deleted
// (deleteEndpointSlicesBut). Unchanged, it is not written
// (controllerutil.CreateOrPatch).
func (r *AppGroupReconciler) writeEndpointSlice(ctx context.Context, ag *ferryv1.AppGroup, name string, port int32,
	endpoints []discoveryv1.Endpoint) error {
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ag.Namespace}}
	if len(endpoints) == 0 {
		err := r.Client.Get(ctx, client.ObjectKeyFromObject(slice), slice)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	if err := r.createOrPatch(ctx, ag, slice, func() error {
		if slice.Labels == nil {
			slice.Labels = map[string]string{}
		}
		slice.Labels[discoveryv1.LabelServiceName] = contract.ServiceName(ag.Name)
		slice.Labels[discoveryv1.LabelManagedBy] = EndpointSliceManager
		slice.Labels[ferryv1.AppGroupLabel] = contract.LabelValue(ag.Name)
		if slice.AddressType == "" {
			slice.AddressType = discoveryv1.AddressTypeIPv4
		}
		slice.Ports = []discoveryv1.EndpointPort{{
			Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port),
		}}
		slice.Endpoints = endpoints
		return controllerutil.SetControllerReference(ag, slice, r.Scheme)
	}); err != nil {
		var taken *nameTaken
		if errors.As(err, &taken) {
			return err
		}
		return writeFailed("create or update EndpointSlice "+name, err)
	}
	return nil
}

// deleteEndpointSlicesBut deletes ag's EndpointSlices not in keep, and
// none of the Service's own: those of a port no pool serves on any more,
// and those past a port's first left with no endpoint (planSlices).
func (r *AppGroupReconciler) deleteEndpointSlicesBut(ctx context.Context, ag *ferryv1.AppGroup, keep map[string]bool) error {
	var list discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &list, client.InNamespace(ag.Namespace), client.MatchingFields{extraSliceIndex: ag.Name}); err != nil {
		return err
	}
	var errs []error
	for i := range list.Items {
		sl := &list.Items[i]
		if keep[sl.Name] || sl.Name == contract.ServiceName(ag.Name) || !metav1.IsControlledBy(sl, ag) {
			continue
		}
		if err := r.Client.Delete(ctx, sl); client.IgnoreNotFound(err) != nil {
			errs = append(errs, writeFailed("delete EndpointSlice "+sl.Name, err))
		}
	}
	return errors.Join(errs...)
}

// createOrPatch is controllerutil.CreateOrPatch on the cache, and, when
// its create meets the AppGroup's own object that the cache does not show,
// a patch of the API server's copy: the cache lags an earlier pass's
// create, or the object lost the label the cache selects by (someone took
// it off; mutate puts it back). An object of the name that is not the
// AppGroup's is a *nameTaken: the manager never takes one over, also when
// the cache shows it (it carries the label the cache selects by: a copy of
// one of the manager's own, say).
func (r *AppGroupReconciler) createOrPatch(ctx context.Context, ag *ferryv1.AppGroup, obj client.Object, mutate controllerutil.MutateFn) error {
	key := client.ObjectKeyFromObject(obj)
	v := reflect.ValueOf(obj).Elem()
	_, err := controllerutil.CreateOrPatch(ctx, r.Client, obj, func() error {
		// A resourceVersion is the cache's copy's (CreateOrPatch found
		// it): one to patch only if it is the AppGroup's.
		if obj.GetResourceVersion() != "" && !ownName(obj, ag) {
			return &nameTaken{kind: v.Type().Name(), name: key.Name}
		}
		return mutate()
	})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	// obj holds what the create sent: start again from the server's copy.
	v.Set(reflect.Zero(v.Type()))
	if gerr := r.APIReader.Get(ctx, key, obj); gerr != nil {
		return err
	}
	if !ownName(obj, ag) {
		return &nameTaken{kind: v.Type().Name(), name: key.Name}
	}
	before := obj.DeepCopyObject().(client.Object)
	if err := mutate(); err != nil {
		return err
	}
	return r.Client.Patch(ctx, obj, client.MergeFrom(before))
}

// ownName: obj is controlled by an AppGroup of ag's name, ag or one
// deleted before it was created again, whose objects garbage collection
// has yet to delete. Those are adopted (SetControllerReference replaces
// the controller of the same kind and name, whatever its uid), as the
// cache's path always did: they are the name's own, and what waits for a
// collector is no conflict to report.
func ownName(obj client.Object, ag *ferryv1.AppGroup) bool {
	ref := metav1.GetControllerOf(obj)
	if ref == nil {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == ferryv1.GroupVersion.Group && ref.Kind == "AppGroup" && ref.Name == ag.Name
}

// serviceOwned: the Service of ag's name exists and is ag's (ownName), as
// the cache shows it, else the API server (the cache holds only the
// Services the manager labels: not another's).
func (r *AppGroupReconciler) serviceOwned(ctx context.Context, ag *ferryv1.AppGroup) (bool, error) {
	svc := &corev1.Service{}
	key := client.ObjectKey{Namespace: ag.Namespace, Name: contract.ServiceName(ag.Name)}
	err := r.Client.Get(ctx, key, svc)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, svc)
	}
	if err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return ownName(svc, ag), nil
}

// nameTaken is an object of a name the AppGroup's Service or an
// EndpointSlice of it needs that is not the AppGroup's (createOrPatch):
// no retry helps, so it is no error of the pass but, for the Service, a
// Ready reason (NameTaken), and for a slice another name
// (writeEndpointSlices).
type nameTaken struct {
	// kind and name are the object's.
	kind, name string
}

func (e *nameTaken) Error() string { return e.kind + " " + e.name + " is not this AppGroup's" }

// desiredEndpoints lists one endpoint per pool whose agent reported an
// IPv4 address the API accepts in an EndpointSlice (not one of
// contract.UnlistedAddress's, which Ready's message names): first the
// active pools (in node order), ready and serving where the pool serves on
// a recent report (poolReport.Serving: a process ready, though fewer than
// minProcesses), terminating where the agent stops (its proxy serves out
// its drain delay: serving while a process is ready, for kube-proxy to
// fall back on when no node is ready); then the draining ones, terminating
// and never ready (serving while their processes still are).
func desiredEndpoints(active, draining []poolReport) []discoveryv1.Endpoint {
	var out []discoveryv1.Endpoint
	add := func(r poolReport, terminating bool) {
		serving := r.Serving || r.Stopping && r.Pool.Status.ProcessCounts.Ready > 0
		ip := reportedIP(r.Pool.Status.Address)
		if contract.UnlistedAddress(ip) != "" {
			return
		}
		out = append(out, discoveryv1.Endpoint{
			Addresses: []string{ip.To4().String()},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr.To(serving && !terminating),
				Serving:     ptr.To(serving),
				Terminating: ptr.To(terminating),
			},
			NodeName: ptr.To(r.Node),
		})
	}
	for _, r := range active {
		add(r, r.Stopping)
	}
	for _, r := range draining {
		add(r, true)
	}
	return out
}

// reportedIP is the IP of a pool's reported address ("host:port", or a
// bare host); nil when it holds none.
func reportedIP(addr string) net.IP {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	return net.ParseIP(addr)
}

// waitForCache waits until the cache holds obj in a state done accepts, so
// that the next pass plans from this one's writes.
func (r *AppGroupReconciler) waitForCache(ctx context.Context, obj client.Object, done func(client.Object) bool) error {
	key := client.ObjectKeyFromObject(obj)
	cached, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("waiting for the cache: %T is not a client.Object", obj)
	}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, cacheSyncTimeout, true, func(ctx context.Context) (bool, error) {
		if err := r.Client.Get(ctx, key, cached); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return done(cached), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the cache to show %s: %w", key, err)
	}
	return nil
}
