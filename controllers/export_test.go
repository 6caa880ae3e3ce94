package controllers

import (
	coordinationv1 "k8s.io/api/coordination/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// SawSigns reports whether r has seen each pool's report and each agent
// Lease's renewal as they are: a test that steps the manager's clock past
// a report must let the manager see it first, as time would.
func SawSigns(r *AppGroupReconciler, pools []ferryv1.ProcessPool, leases []coordinationv1.Lease) bool {
	for _, p := range pools {
		if p.Status.HeartbeatTime != nil && !r.signs.seen(reportSign(p.Namespace, p.Name), p.Status.HeartbeatTime.Time) {
			return false
		}
	}
	for _, l := range leases {
		if l.Spec.HolderIdentity != nil && l.Spec.RenewTime != nil && !r.signs.seen(leaseObjectSign(l.Namespace, l.Name), l.Spec.RenewTime.Time) {
			return false
		}
	}
	return true
}
