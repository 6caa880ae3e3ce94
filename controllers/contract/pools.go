package contract

import ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"

// KeptPools is, node by node, the pool of an AppGroup the manager keeps
// there of pools, as listed: the first not being deleted. It deletes the
// others on the node (two pools for one node: a lost race's), and a node
// whose pools are all being deleted has none kept (it is given a new one
// once they have drained). kubectl-ferry reads a node's pool by the same
// rule, so that a pool being deleted beside the node's own, listed first,
// is not read as the node's.
func KeptPools(pools []*ferryv1.ProcessPool) map[string]*ferryv1.ProcessPool {
	kept := map[string]*ferryv1.ProcessPool{}
	for _, p := range pools {
		if !p.DeletionTimestamp.IsZero() || kept[p.Spec.NodeName] != nil {
			continue
		}
		kept[p.Spec.NodeName] = p
	}
	return kept
}
