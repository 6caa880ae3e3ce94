package contract

import ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"

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
