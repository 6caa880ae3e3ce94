package contract

import (
	"cmp"
	"context"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// OwnedPools lists, from c, the ProcessPools ag controls, sorted by node
// then name: of those labelled for it (by LabelValue, as the API server
// knows no index of ours), the ones whose controller owner reference names
// its UID. The label names ag by its name alone, so a pool an earlier
// AppGroup of the same name left behind bears it too, and is not ag's.
// The manager's live reads and kubectl-ferry count ag's pools so.
func OwnedPools(ctx context.Context, c client.Reader, ag *ferryv1.AppGroup) ([]ferryv1.ProcessPool, error) {
	var list ferryv1.ProcessPoolList
	if err := c.List(ctx, &list, client.InNamespace(ag.Namespace),
		client.MatchingLabels{ferryv1.AppGroupLabel: LabelValue(ag.Name)}); err != nil {
		return nil, err
	}
	return ControlledPools(list.Items, ag), nil
}

// ControlledPools is, of pools, those ag controls, sorted by node then
// name (in place: it reuses pools' array).
func ControlledPools(pools []ferryv1.ProcessPool, ag *ferryv1.AppGroup) []ferryv1.ProcessPool {
	owned := slices.DeleteFunc(pools, func(p ferryv1.ProcessPool) bool { return !metav1.IsControlledBy(&p, ag) })
	slices.SortFunc(owned, func(a, b ferryv1.ProcessPool) int {
		return cmp.Or(cmp.Compare(a.Spec.NodeName, b.Spec.NodeName), cmp.Compare(a.Name, b.Name))
	})
	return owned
}

// KeptPools is, node by node, the pool of an AppGroup the manager keeps
// there of pools, in whatever order they are listed: of a node's pools
// not being deleted, the one of the lowest name. It deletes the others on
// the node (two pools for one node: a lost race's), and a node whose pools
// are all being deleted has none kept (it is given a new one once they
// have drained). kubectl-ferry reads a node's pool by the same rule, so
// that a pool being deleted beside the node's own is not read as the
// node's, and neither depends on the order the API server lists in.
func KeptPools(pools []*ferryv1.ProcessPool) map[string]*ferryv1.ProcessPool {
	kept := map[string]*ferryv1.ProcessPool{}
	for _, p := range pools {
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		if k := kept[p.Spec.NodeName]; k == nil || p.Name < k.Name {
			kept[p.Spec.NodeName] = p
		}
	}
	return kept
}

// PoolPointers points at each of pools, as KeptPools and the manager's
// passes take them.
func PoolPointers(pools []ferryv1.ProcessPool) []*ferryv1.ProcessPool {
	ptrs := make([]*ferryv1.ProcessPool, len(pools))
	for i := range pools {
		ptrs[i] = &pools[i]
	}
	return ptrs
}
