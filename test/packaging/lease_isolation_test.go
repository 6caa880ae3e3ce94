package packaging_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferry-dev/ferry/agent/cluster"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// runLeases checks the lease isolation policy: node A's agent creates and
// renews its own node's Lease with the agent's own code
// (cluster.RenewLease), and may not fake another node's liveness, take its
// Lease over, write any other Lease, or delete one; RBAC keeps it out of
// other namespaces. The manager's Leases (leader election) are untouched.
func (s *isolationScenario) runLeases(t *testing.T, policy string) {
	ctx := testContext(t)
	ns := s.saNS
	denied := fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request", policy, policy)
	leaseA, leaseB := contract.AgentLeaseName(s.nodeA), contract.AgentLeaseName(s.nodeB)
	// Node C's agent has not made its Lease yet (a node just added): node
	// A's may not make it first, holding it itself, which would leave C's
	// agent unable to renew it (no take-over) and C looking dead.
	nodeC := strings.Replace(s.nodeA, "node-a", "node-c", 1)
	leaseC := contract.AgentLeaseName(nodeC)
	// A node whose name is too long for "ferry-agent-<node>" gets a
	// shortened, hashed Lease name: its agent may still write it.
	longNode := s.nodeA + "." + strings.Repeat("n", 240)
	agentLong := impersonate(t, "system:serviceaccount:"+ns+":"+s.agentSA, ns, map[string][]string{nodeNameExtra: {longNode}})
	// Nodes whose names begin as the long one's does, for their first 150
	// characters: a short one, and one as long whose name then differs.
	// Their agents have not made their Leases yet; the long node's may
	// not make them first.
	leaseShort := contract.AgentLeaseName(longNode[:150])
	leaseSibling := contract.AgentLeaseName(longNode[:150] + "e" + longNode[151:])
	for _, name := range []string{leaseA, leaseB, leaseC, contract.AgentLeaseName(longNode), leaseShort, leaseSibling, "forged-" + s.nodeA, "unlabelled-" + s.nodeA} {
		t.Cleanup(func() {
			_ = env.Client.Delete(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
		})
	}

	// RBAC and the policy take effect within moments.
	testenv.Eventually(t, time.Minute, "the agent creates its own node's Lease", func() error {
		return cluster.RenewLease(ctx, s.agentA, ns, s.nodeA, 10*time.Second)
	})
	if err := cluster.RenewLease(ctx, s.agentA, ns, s.nodeA, 10*time.Second); err != nil {
		t.Errorf("renewing its own node's Lease: %v", err)
	}
	// Node B's own agent made its Lease (here: the test, as admin).
	if err := cluster.RenewLease(ctx, env.Client, ns, s.nodeB, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	holderB := fmt.Sprintf(`may not write Lease %s with holder "%s"`, leaseB, s.nodeB)
	steps := []struct {
		name string
		err  func() error
		want []string // nil: allowed
	}{
		{"renewing another node's Lease", func() error { return cluster.RenewLease(ctx, s.agentA, ns, s.nodeB, 10*time.Second) },
			[]string{denied, holderB}},
		{"taking another node's Lease over", func() error {
			return updateLease(ctx, s.agentA, ns, leaseB, func(l *coordinationv1.Lease) { l.Spec.HolderIdentity = ptr.To(s.nodeA) })
		}, []string{denied, fmt.Sprintf("may not take over Lease %s: it is held by node %s", leaseB, s.nodeB)}},
		{"creating a Lease for another node", func() error {
			return s.agentA.Create(ctx, agentLease(ns, "forged-"+s.nodeA, s.nodeB, true))
		}, []string{denied, fmt.Sprintf(`may not write Lease forged-%s with holder "%s"`, s.nodeA, s.nodeB)}},
		{"creating another node's Lease before that node's agent does", func() error {
			return s.agentA.Create(ctx, agentLease(ns, leaseC, s.nodeA, true))
		}, []string{denied, fmt.Sprintf("may not write Lease %s: the agent Lease of node %s is named ferry-agent-%[2]s", leaseC, s.nodeA)}},
		{"a node with a long name renews its own Lease", func() error {
			return cluster.RenewLease(ctx, agentLong, ns, longNode, 10*time.Second)
		}, nil},
		{"a node with a long name creating the Lease of a node whose name begins as its own", func() error {
			return agentLong.Create(ctx, agentLease(ns, leaseShort, longNode, true))
		}, []string{denied, fmt.Sprintf("may not write Lease %s: the agent Lease of node %s is named", leaseShort, longNode)}},
		{"a node with a long name creating the Lease of another with a long name that begins as its own", func() error {
			return agentLong.Create(ctx, agentLease(ns, leaseSibling, longNode, true))
		}, []string{denied, fmt.Sprintf("may not write Lease %s: the agent Lease of node %s is named", leaseSibling, longNode)}},
		{"creating a Lease without the agent-lease label", func() error {
			return s.agentA.Create(ctx, agentLease(ns, "unlabelled-"+s.nodeA, s.nodeA, false))
		}, []string{denied, "it writes only the agent Lease of its own node"}},
		{"taking the label off its own Lease", func() error {
			return updateLease(ctx, s.agentA, ns, leaseA, func(l *coordinationv1.Lease) { l.Labels = nil })
		}, []string{denied, "it writes only the agent Lease of its own node"}},
		{"renewing without a node in the credentials", func() error {
			return cluster.RenewLease(ctx, s.agentNoNode, ns, s.nodeA, 10*time.Second)
		}, []string{denied, "the Ferry agent's credentials name no node"}},
		{"deleting its own Lease (RBAC)", func() error {
			return s.agentA.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: leaseA, Namespace: ns}})
		}, []string{`cannot delete resource "leases"`}},
		{"a Lease in another namespace (RBAC)", func() error {
			return cluster.RenewLease(ctx, s.agentA, s.appNS, s.nodeA, 10*time.Second)
		}, []string{`cannot get resource "leases"`}},
		{"the manager writes any Lease", func() error {
			return updateLease(ctx, s.manager, ns, leaseB, func(l *coordinationv1.Lease) { l.Spec.HolderIdentity = ptr.To("someone") })
		}, nil},
	}
	for _, st := range steps {
		err := st.err()
		switch {
		case st.want == nil && err != nil:
			t.Errorf("%s: want allowed, got %v", st.name, err)
		case st.want != nil:
			if werr := wantDenied(err, st.want...); werr != nil {
				t.Errorf("%s: %v", st.name, werr)
			}
		}
	}

	// Beyond RBAC: granted delete by a later, broader role, the agent is
	// still refused by the policy.
	grant := []byte(fmt.Sprintf(`
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: test-lease-delete, namespace: %[1]s}
rules:
- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: test-lease-delete, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: test-lease-delete}
subjects:
- {kind: ServiceAccount, name: %[2]s, namespace: %[1]s}
`, ns, s.agentSA))
	if _, err := kubectlIn(ctx, grant, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = kubectlIn(context.Background(), grant, "delete", "--ignore-not-found", "-f", "-") })
	testenv.Eventually(t, time.Minute, "the policy refuses the agent a delete RBAC allows", func() error {
		err := s.agentA.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: leaseA, Namespace: ns}})
		return wantDenied(err, denied, "the Ferry agent may not delete Leases")
	})
}

func agentLease(ns, name, holder string, labelled bool) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))},
	}
	if labelled {
		l.Labels = contract.AgentLeaseLabels(holder)
	}
	return l
}

// updateLease reads the Lease as the admin and writes it changed by mutate
// as c.
func updateLease(ctx context.Context, c client.Client, ns, name string, mutate func(*coordinationv1.Lease)) error {
	l := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, l); err != nil {
		return err
	}
	mutate(l)
	return c.Update(ctx, l)
}
