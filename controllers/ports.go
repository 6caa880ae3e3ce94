package controllers

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

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
// AppGroup, then by namespace and name. It is a strict total order, so
// exactly one claim wins on each node.
func (c portClaim) before(o portClaim, node string) bool {
	if c.Holds[node] != o.Holds[node] {
		return c.Holds[node]
	}
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

// claimOf reads an AppGroup's claim: nodeLabels are every Node's labels,
// pools the AppGroup's pools.
func claimOf(ag *ferryv1.AppGroup, nodeLabels map[string]labels.Set, pools []*ferryv1.ProcessPool) portClaim {
	c := portClaim{
		Key:     types.NamespacedName{Namespace: ag.Namespace, Name: ag.Name},
		Created: ag.CreationTimestamp.Time,
		Selects: map[string]bool{},
		Holds:   map[string]bool{},
	}
	sel := labels.SelectorFromSet(ag.Spec.NodeSelector)
	for node, l := range nodeLabels {
		if sel.Matches(l) {
			c.Selects[node] = true
		}
	}
	for _, p := range pools {
		if p.Spec.Template.Listen.Port == ag.Spec.Listen.Port {
			c.Holds[p.Spec.NodeName] = true
		}
	}
	return c
}

// portRivals reads the claims of the other AppGroups on ag's port.
func (r *AppGroupReconciler) portRivals(ctx context.Context, ag *ferryv1.AppGroup, nodeLabels map[string]labels.Set) ([]portClaim, error) {
	var list ferryv1.AppGroupList
	if err := r.Client.List(ctx, &list, client.MatchingFields{portIndex: strconv.Itoa(int(ag.Spec.Listen.Port))}); err != nil {
		return nil, err
	}
	var out []portClaim
	for i := range list.Items {
		o := &list.Items[i]
		if o.UID == ag.UID {
			continue
		}
		pools, err := r.ownedPools(ctx, r.Client, o)
		if err != nil {
			return nil, err
		}
		out = append(out, claimOf(o, nodeLabels, pools))
	}
	return out, nil
}

// portPeers enqueues the other AppGroups on the ports an AppGroup or a
// pool had and has, when it appears, moves port or goes away: one of them
// may now win a node it lost.
type portPeers struct {
	client client.Reader
}

func (h portPeers) enqueue(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], self types.NamespacedName, ports ...int32) {
	for _, port := range slices.Compact(ports) {
		var list ferryv1.AppGroupList
		if err := h.client.List(ctx, &list, client.MatchingFields{portIndex: strconv.Itoa(int(port))}); err != nil {
			continue
		}
		for i := range list.Items {
			if key := client.ObjectKeyFromObject(&list.Items[i]); key != self {
				q.Add(reconcile.Request{NamespacedName: key})
			}
		}
	}
}

// portOf is the port an AppGroup or a pool claims, and the AppGroup's key.
func portOf(o client.Object) (types.NamespacedName, int32, bool) {
	switch v := o.(type) {
	case *ferryv1.AppGroup:
		return client.ObjectKeyFromObject(v), v.Spec.Listen.Port, true
	case *ferryv1.ProcessPool:
		return types.NamespacedName{Namespace: v.Namespace, Name: v.Spec.AppGroup}, v.Spec.Template.Listen.Port, true
	}
	return types.NamespacedName{}, 0, false
}

func (h portPeers) Create(ctx context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if _, ok := e.Object.(*ferryv1.AppGroup); !ok {
		return // a new pool changes nothing for the others: its AppGroup won the node first
	}
	if self, port, ok := portOf(e.Object); ok {
		h.enqueue(ctx, q, self, port)
	}
}

func (h portPeers) Update(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	self, before, ok := portOf(e.ObjectOld)
	_, after, ok2 := portOf(e.ObjectNew)
	if !ok || !ok2 {
		return
	}
	moved := before != after
	if ag, isAG := e.ObjectNew.(*ferryv1.AppGroup); isAG {
		old := e.ObjectOld.(*ferryv1.AppGroup)
		moved = moved || !labels.Equals(old.Spec.NodeSelector, ag.Spec.NodeSelector) ||
			!old.DeletionTimestamp.Equal(ag.DeletionTimestamp)
	}
	if moved {
		h.enqueue(ctx, q, self, before, after)
	}
}

func (h portPeers) Delete(ctx context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if self, port, ok := portOf(e.Object); ok {
		h.enqueue(ctx, q, self, port)
	}
}

func (portPeers) Generic(context.Context, event.TypedGenericEvent[client.Object], workqueue.TypedRateLimitingInterface[reconcile.Request]) {
}

var _ handler.EventHandler = portPeers{}

// portConflictMessage is the Ready message of an AppGroup that lost its
// port on some nodes.
func portConflictMessage(port int32, lost map[string]types.NamespacedName) string {
	nodes := make([]string, 0, len(lost))
	for n := range lost {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	w := lost[nodes[0]]
	return "listen.port " + strconv.Itoa(int(port)) + " on " + nodeList(nodes) + " belongs to AppGroup " + w.String() +
		" (it had the port there first, or is older): this AppGroup gets no pool there until the port is free, " +
		"and a pool it has there keeps its previous port; choose another listen.port"
}
