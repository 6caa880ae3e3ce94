package controllers

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// portIndex is the cache's field index of AppGroups by listen.port: a pass
// finds the AppGroups that share its port without listing them all.
const portIndex = "spec.listen.port"

func indexPort(o client.Object) []string {
	ag, ok := o.(*ferryv1.AppGroup)
	if !ok {
		return nil
	}
	return []string{strconv.Itoa(int(ag.Spec.Listen.Port))}
}

// portClaim is one AppGroup's claim on its listen.port: the nodes it
// selects, and those where its pool already has the port (its proxy
// listens there, or will).
type portClaim struct {
	Key     types.NamespacedName
	Created time.Time
	// Selects are the nodes the AppGroup selects.
	Selects map[string]bool
	// Holds are the nodes where a pool of the AppGroup, being deleted or
	// not, has the port in its spec.
	Holds map[string]bool
}

// before is the order in which claims on one node's port win: the one that
// holds the port there (what already serves keeps serving), then the older
// AppGroup (older). It is a strict total order, so exactly one claim wins
// on each node.
func (c portClaim) before(o portClaim, node string) bool {
	if c.Holds[node] != o.Holds[node] {
		return c.Holds[node]
	}
	return c.older(o)
}

// older: c's AppGroup was created before o's, or in the same second and
// before it by namespace and name.
func (c portClaim) older(o portClaim) bool {
	if !c.Created.Equal(o.Created) {
		return c.Created.Before(o.Created)
	}
	if c.Key.Namespace != o.Key.Namespace {
		return c.Key.Namespace < o.Key.Namespace
	}
	return c.Key.Name < o.Key.Name
}

// portLosses are the nodes where self must leave its port to another
// AppGroup's claim, with the winner's key: one per node, the first other
// claim that comes before self there.
func portLosses(self portClaim, others []portClaim) map[string]types.NamespacedName {
	lost := map[string]types.NamespacedName{}
	slices.SortFunc(others, func(a, b portClaim) int {
		return cmp.Or(cmp.Compare(a.Key.Namespace, b.Key.Namespace), cmp.Compare(a.Key.Name, b.Key.Name))
	})
	for node := range self.Selects {
		for _, o := range others {
			// A pool that drains still has the port: a rival keeps the
			// node until its pool is gone.
			if (o.Selects[node] || o.Holds[node]) && o.before(self, node) {
				lost[node] = o.Key
				break
			}
		}
	}
	return lost
}

// portNodeIndex is the cache's field index of ProcessPools by the port
// they listen on and their node, "<port>/<node>": a pool holds its port on
// its node whatever its AppGroup's listen.port says now (a pool kept on
// its old port, one that drains).
const portNodeIndex = "spec.template.listen.port/spec.nodeName"

func portNode(port int32, node string) string { return strconv.Itoa(int(port)) + "/" + node }

func indexPortNode(o client.Object) []string {
	p, ok := o.(*ferryv1.ProcessPool)
	if !ok {
		return nil
	}
	return []string{portNode(p.Spec.Template.Listen.Port, p.Spec.NodeName)}
}

// portRivals reads the claims on ag's listen.port over the nodes it
// selects (selected; nodeLabels are every Node's labels), with own its
// pools:
//
//   - the pools of other AppGroups on the port on those nodes: each
//     holds the port there (portNodeIndex);
//   - where ag has no pool on the port yet, the older AppGroups on the
//     port that select the node (portIndex): the only ones whose
//     selection beats ag's there.
//
// The second list is read only while ag is short of a node, so a pass in
// the steady state costs a lookup per node, however many AppGroups share
// the port on other nodes.
func (r *AppGroupReconciler) portRivals(ctx context.Context, ag *ferryv1.AppGroup, selected map[string]bool,
	nodeLabels map[string]labels.Set, own []*ferryv1.ProcessPool) (self portClaim, rivals []portClaim, err error) {
	port := ag.Spec.Listen.Port
	self = portClaim{Key: client.ObjectKeyFromObject(ag), Created: ag.CreationTimestamp.Time,
		Selects: map[string]bool{}, Holds: map[string]bool{}}
	for node := range selected {
		self.Selects[node] = true
	}
	for _, p := range own {
		if p.Spec.Template.Listen.Port == port {
			self.Holds[p.Spec.NodeName] = true
		}
	}
	claims := map[types.NamespacedName]*portClaim{}
	claim := func(key types.NamespacedName, created time.Time) *portClaim {
		c := claims[key]
		if c == nil {
			c = &portClaim{Key: key, Created: created, Selects: map[string]bool{}, Holds: map[string]bool{}}
			claims[key] = c
		}
		return c
	}
	for node := range selected {
		var pools ferryv1.ProcessPoolList
		if err := r.Client.List(ctx, &pools, client.MatchingFields{portNodeIndex: portNode(port, node)},
			client.UnsafeDisableDeepCopy); err != nil {
			return self, nil, err
		}
		for i := range pools.Items {
			p := &pools.Items[i]
			if metav1.IsControlledBy(p, ag) {
				continue
			}
			key := types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.AppGroup}
			if claims[key] == nil {
				// Its AppGroup's age, read once per AppGroup; the pool's
				// own when the AppGroup is gone.
				created := p.CreationTimestamp.Time
				owner := &ferryv1.AppGroup{}
				if r.Client.Get(ctx, key, owner) == nil {
					created = owner.CreationTimestamp.Time
				}
				claim(key, created)
			}
			claims[key].Holds[node] = true
		}
	}
	short := false // a selected node without an own pool on the port
	for node := range self.Selects {
		short = short || !self.Holds[node]
	}
	if short {
		var list ferryv1.AppGroupList
		if err := r.Client.List(ctx, &list, client.MatchingFields{portIndex: strconv.Itoa(int(port))},
			client.UnsafeDisableDeepCopy); err != nil {
			return self, nil, err
		}
		for i := range list.Items {
			o := &list.Items[i]
			key := client.ObjectKeyFromObject(o)
			c := portClaim{Key: key, Created: o.CreationTimestamp.Time}
			if o.UID == ag.UID || !o.DeletionTimestamp.IsZero() || !c.older(self) {
				// A newer AppGroup's selection never beats ag's; a deleted
				// one's ends at once (what it still has holds through its
				// pools).
				continue
			}
			sel := labels.SelectorFromSet(o.Spec.NodeLabels())
			for node := range selected {
				if !self.Holds[node] && sel.Matches(nodeLabels[node]) {
					claim(key, c.Created).Selects[node] = true
				}
			}
		}
	}
	for _, c := range claims {
		rivals = append(rivals, *c)
	}
	return self, rivals, nil
}

// portPeers queues the AppGroups on a port that lost nodes to another
// (Ready reason PortConflict) when a claim on it may have ended: an
// AppGroup moved off the port, changed its selector or went away, or a
// pool on it moved or went away. (A new claim takes nothing: a new
// AppGroup is the newest, a new pool's AppGroup had won its node.) The
// losers also look again every portRecheck, in case they wrote their
// conflict after the event that ended it.
type portPeers struct {
	client client.Reader
}

// portRecheck is how often an AppGroup that lost nodes to another's port
// looks again by itself.
const portRecheck = time.Minute

func (h portPeers) enqueue(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], ports ...int32) {
	for _, port := range slices.Compact(ports) {
		var list ferryv1.AppGroupList
		if err := h.client.List(ctx, &list, client.MatchingFields{portIndex: strconv.Itoa(int(port))},
			client.UnsafeDisableDeepCopy); err != nil {
			continue
		}
		for i := range list.Items {
			ag := &list.Items[i]
			if c := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionReady); c != nil && c.Reason == ferryv1.ReasonPortConflict {
				q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(ag)})
			}
		}
	}
}

func (portPeers) Create(context.Context, event.TypedCreateEvent[client.Object], workqueue.TypedRateLimitingInterface[reconcile.Request]) {
}

func (h portPeers) Update(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	switch n := e.ObjectNew.(type) {
	case *ferryv1.AppGroup:
		o, ok := e.ObjectOld.(*ferryv1.AppGroup)
		if ok && (o.Spec.Listen.Port != n.Spec.Listen.Port || !labels.Equals(o.Spec.NodeLabels(), n.Spec.NodeLabels()) ||
			!o.DeletionTimestamp.Equal(n.DeletionTimestamp)) {
			h.enqueue(ctx, q, o.Spec.Listen.Port, n.Spec.Listen.Port)
		}
	case *ferryv1.ProcessPool:
		o, ok := e.ObjectOld.(*ferryv1.ProcessPool)
		if ok && o.Spec.Template.Listen.Port != n.Spec.Template.Listen.Port {
			h.enqueue(ctx, q, o.Spec.Template.Listen.Port)
		}
	}
}

func (h portPeers) Delete(ctx context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	switch o := e.Object.(type) {
	case *ferryv1.AppGroup:
		h.enqueue(ctx, q, o.Spec.Listen.Port)
	case *ferryv1.ProcessPool:
		h.enqueue(ctx, q, o.Spec.Template.Listen.Port)
	}
}

func (portPeers) Generic(context.Context, event.TypedGenericEvent[client.Object], workqueue.TypedRateLimitingInterface[reconcile.Request]) {
}

var _ handler.EventHandler = portPeers{}

// portConflictMessage is the Ready message of an AppGroup that lost its
// port on some nodes, naming who has it on each.
func portConflictMessage(port int32, lost map[string]types.NamespacedName) string {
	byWinner := map[types.NamespacedName][]string{}
	for n, w := range lost {
		byWinner[w] = append(byWinner[w], n)
	}
	winners := make([]types.NamespacedName, 0, len(byWinner))
	for w, nodes := range byWinner {
		slices.Sort(nodes)
		winners = append(winners, w)
	}
	slices.SortFunc(winners, func(a, b types.NamespacedName) int { return cmp.Compare(a.String(), b.String()) })
	parts := make([]string, 0, len(winners))
	for _, w := range winners {
		parts = append(parts, "by AppGroup "+w.String()+" on "+nodeList(byWinner[w]))
	}
	return "listen.port " + strconv.Itoa(int(port)) + " is taken " + strings.Join(parts, ", and ") +
		" (whose pool has it there, or which is older). This AppGroup gets no pool there until the port is free " +
		"(a pool it has there on another port serves on that port, still behind the Service, through an EndpointSlice of that port); " +
		"choose another listen.port"
}
