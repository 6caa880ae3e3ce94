package contract

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"k8s.io/apimachinery/pkg/util/validation"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// Agent liveness, the kubelet's way: each node's agent renews one Lease
// (coordination.k8s.io) in the lease namespace every heartbeat interval,
// instead of writing every pool's status that often. The manager reads a
// node's agent as alive while the Lease of which it is the holder
// (spec.holderIdentity is the node's name) was renewed within its
// staleness bound. Pool statuses then only need to be written when they
// change, and their figures at a bounded rate.
const (
	// AgentLeaseComponentLabel marks agent Leases (value AgentLeaseComponent).
	AgentLeaseComponentLabel = "app.kubernetes.io/component"
	// AgentLeaseComponent is AgentLeaseComponentLabel's value on agent Leases.
	AgentLeaseComponent = "ferry-agent-lease"
	// DefaultLeaseNamespace is where agents renew their Leases, and where
	// the manager reads them, when not told otherwise (in a cluster: the
	// namespace Ferry is installed in).
	DefaultLeaseNamespace = "ferry-system"
	// DefaultAgentStaleAfter is how long an agent may go without renewing
	// its Lease (and without writing a pool's status) before what it said
	// is no longer trusted.
	DefaultAgentStaleAfter = 40 * time.Second
	// StatusReportInterval is how often an agent rewrites a pool's status
	// when nothing in it changed, as the kubelet rewrites an unchanged
	// node status (its nodeStatusReportFrequency): a pool's heartbeatTime
	// may be this old while its agent is alive, and its Lease says so.
	StatusReportInterval = 5 * time.Minute
	// ManagerLeaseName is the Lease through which the manager's replicas
	// elect their leader (--leader-elect), in the manager's namespace
	// (--leader-election-namespace; in a cluster, the one Ferry is
	// installed in). `kubectl ferry status` reads it to tell a manager
	// that is down.
	ManagerLeaseName = "manager.ferry.dev"
)

// AgentLeaseName is the name of the Lease the agent of node renews:
// "ferry-agent-<node>", cut and hashed when that would be too long. The
// manager keys Leases by holder, not by name.
func AgentLeaseName(node string) string {
	name := "ferry-agent-" + node
	if len(name) <= validation.DNS1123SubdomainMaxLength {
		return name
	}
	return truncateWithHash(name, validation.DNS1123SubdomainMaxLength, shortHash(node))
}

// AgentLeaseLabels are the labels on node's agent Lease.
func AgentLeaseLabels(node string) map[string]string {
	return map[string]string{AgentLeaseComponentLabel: AgentLeaseComponent, ferryv1.NodeLabel: LabelValue(node)}
}

// AgentRenewals reads when each node's agent last renewed its Lease in
// namespace, keyed by holder (the node's name): the renewTime stamps, by
// the agent's clock, that the manager times by when it sees them change.
// `kubectl ferry status`, which sees no change, times the Leases by their
// writes instead (AgentLeases).
func AgentRenewals(ctx context.Context, r client.Reader, namespace string) (map[string]time.Time, error) {
	leases, err := AgentLeases(ctx, r, namespace)
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(leases))
	for _, l := range leases {
		if l.Spec.HolderIdentity != nil && l.Spec.RenewTime != nil {
			out[*l.Spec.HolderIdentity] = l.Spec.RenewTime.Time
		}
	}
	return out, nil
}

// AgentLeases lists the agents' Leases in namespace: those AgentRenewals
// reads, whole, for a reader that needs more of them than their stamps.
func AgentLeases(ctx context.Context, r client.Reader, namespace string) ([]coordinationv1.Lease, error) {
	var list coordinationv1.LeaseList
	if err := r.List(ctx, &list, client.InNamespace(namespace),
		client.MatchingLabels{AgentLeaseComponentLabel: AgentLeaseComponent}); err != nil {
		return nil, err
	}
	return list.Items, nil
}
