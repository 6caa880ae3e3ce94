package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// simAgent plays one node's agent: it finds its pools the way the real
// agent does (contract.NodeSelector), writes their status, and drains them
// when they are deleted. Every report is explicit, so a test decides
// exactly what the manager sees and when.
type simAgent struct {
	t    *testing.T
	ns   string
	node string
	// addr is the host part of the address the agent reports.
	addr string
}

func newAgent(t *testing.T, ns, node, addr string) *simAgent {
	return &simAgent{t: t, ns: ns, node: node, addr: addr}
}

// pool waits until the manager has created this node's pool of the
// AppGroup and returns it.
func (a *simAgent) pool(agName string) *ferryv1.ProcessPool {
	a.t.Helper()
	var found *ferryv1.ProcessPool
	eventually(a.t, fmt.Sprintf("pool of %s on %s", agName, a.node), func() error {
		var err error
		found, err = a.find(agName)
		return err
	})
	return found
}

func (a *simAgent) find(agName string) (*ferryv1.ProcessPool, error) {
	var list ferryv1.ProcessPoolList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(a.ns),
		client.MatchingLabelsSelector{Selector: contract.NodeSelector(a.node)}); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if p := &list.Items[i]; p.Spec.AppGroup == agName && p.Spec.NodeName == a.node {
			return p, nil
		}
	}
	return nil, errors.New("no pool yet")
}

// report writes the pool's status as fn leaves it, with a heartbeat from
// the manager's clock and the agent's address; it returns the pool.
func (a *simAgent) report(agName string, fn func(p *ferryv1.ProcessPool)) *ferryv1.ProcessPool {
	a.t.Helper()
	var p *ferryv1.ProcessPool
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p = a.pool(agName)
		p.Status.HeartbeatTime = &metav1.Time{Time: clk.Now()}
		p.Status.ObservedGeneration = p.Generation
		p.Status.ListenPort = p.Spec.Template.Listen.Port
		if a.addr != "" {
			p.Status.Address = fmt.Sprintf("%s:%d", a.addr, p.Spec.Template.Listen.Port)
		}
		fn(p)
		c := p.Status.ProcessCounts
		p.Status.ReadyProcesses = fmt.Sprintf("%d/%d", c.Ready, c.Total)
		return env.Client.Status().Update(context.Background(), p)
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return p
}

// heartbeat reports nothing new but the heartbeat.
func (a *simAgent) heartbeat(agName string) {
	a.t.Helper()
	a.report(agName, func(*ferryv1.ProcessPool) {})
}

// rollOut reports n processes, all of spec.revision and ready.
func (a *simAgent) rollOut(agName string, n int32) *ferryv1.ProcessPool {
	a.t.Helper()
	return a.report(agName, func(p *ferryv1.ProcessPool) { setRolledOut(p, n) })
}

// setRolledOut sets p's status to n processes, all of spec.revision and ready.
func setRolledOut(p *ferryv1.ProcessPool, n int32) {
	st := &p.Status
	st.ObservedRevision = p.Spec.Revision
	st.ProcessCounts = ferryv1.ProcessCounts{Ready: n, Updated: n, Total: n}
	st.RestartProgress = nil
	st.DeploymentError = nil
	setCondition(p, ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady)
	setCondition(p, ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete)
	setCondition(p, ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError)
}

// booting reports what an agent reports of a new pool: n processes of
// spec.revision spawning, none ready yet, and (as the agent's own
// RollingRestart says: no restart) nothing rolling.
func (a *simAgent) booting(agName string, n int32) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		setRolledOut(p, n)
		p.Status.ProcessCounts.Ready = 0
		setCondition(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)
	})
}

// restarting reports a rolling restart onto spec.revision with done of n
// processes replaced, every process ready.
func (a *simAgent) restarting(agName string, done, n int32) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		st := &p.Status
		st.ObservedRevision = p.Spec.Revision
		st.ProcessCounts = ferryv1.ProcessCounts{Ready: n, Updated: done, Total: n}
		st.RestartProgress = &ferryv1.RestartProgress{Revision: p.Spec.Revision, Done: done, Total: n}
		setCondition(p, ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady)
		setCondition(p, ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut)
	})
}

// restartingBlocking reports what an agent reports while its Blocking
// restart onto spec.revision runs: every old process stopped, n of its
// spawns booting (none ready yet), RollingRestart RestartingBlocking.
func (a *simAgent) restartingBlocking(agName string, n int32) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		st := &p.Status
		st.ObservedRevision = p.Spec.Revision
		st.ProcessCounts = ferryv1.ProcessCounts{Ready: 0, Updated: n, Total: n}
		st.RestartProgress = &ferryv1.RestartProgress{Revision: p.Spec.Revision, Done: 0, Total: n}
		setCondition(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)
		setCondition(p, ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRestartingBlocking)
	})
}

// cannotListen reports n processes of spec.revision, all ready, behind a
// proxy that cannot listen (the agent's ListenFailed, with why).
func (a *simAgent) cannotListen(agName string, n int32, why string) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		setRolledOut(p, n)
		setCondition(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed)
		meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady).Message = why
	})
}

// notReady reports ready of n processes ready, below minProcesses.
func (a *simAgent) notReady(agName string, ready, n int32) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		p.Status.ObservedRevision = p.Spec.Revision
		p.Status.ProcessCounts = ferryv1.ProcessCounts{Ready: ready, Updated: n, Total: n}
		setCondition(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)
	})
}

// resist reports that spawning spec.revision failed and the pool froze,
// its n old processes serving.
func (a *simAgent) resist(agName, reason, output string, n int32) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		st := &p.Status
		st.ObservedRevision = p.Spec.Revision
		st.ProcessCounts = ferryv1.ProcessCounts{Ready: n, Updated: 0, Total: n}
		st.RestartProgress = &ferryv1.RestartProgress{Revision: p.Spec.Revision, Done: 0, Total: n}
		st.DeploymentError = &ferryv1.SpawnError{Revision: p.Spec.Revision, Reason: reason, Output: output, Time: metav1.Time{Time: clk.Now()}}
		setCondition(p, ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady)
		setCondition(p, ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted)
		setCondition(p, ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed)
	})
}

// leaveBehind reports what an agent whose restart onto spec.revision could
// not replace left of its n processes reports with resistDeploymentErrors
// false: its restart over, those left on an older revision, all ready,
// and its last failed spawn of the revision.
func (a *simAgent) leaveBehind(agName string, left, n int32, reason, output string) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		setRolledOut(p, n)
		st := &p.Status
		st.ProcessCounts.Updated = n - left
		st.LastSpawnError = &ferryv1.SpawnError{Revision: p.Spec.Revision, Reason: reason, Output: output, Time: metav1.Time{Time: clk.Now()}}
		setCondition(p, ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete)
	})
}

// failSpawns reports what an agent that restarted on a broken revision
// does: no process runs, and every spawn of the revision fails
// (ScalingError), with nothing older to resist with.
func (a *simAgent) failSpawns(agName, reason string) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		st := &p.Status
		st.ObservedRevision = p.Spec.Revision
		st.ProcessCounts = ferryv1.ProcessCounts{}
		st.RestartProgress = nil
		st.LastSpawnError = &ferryv1.SpawnError{Revision: p.Spec.Revision, Reason: reason, Time: metav1.Time{Time: clk.Now()}}
		setCondition(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)
		// As the agent says of a revision that never started there.
		setCondition(p, ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted)
		setCondition(p, ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError)
		setCondition(p, ferryv1.ConditionScalingError, metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff)
	})
}

// drain removes the drain finalizer from this node's pool of the
// AppGroup, which must be being deleted: its processes are gone.
func (a *simAgent) drain(agName string) {
	a.t.Helper()
	eventually(a.t, "drain on "+a.node, func() error {
		p, err := a.find(agName)
		if err != nil {
			return err
		}
		if p.DeletionTimestamp.IsZero() {
			return errors.New("the pool is not being deleted")
		}
		return removeDrainFinalizer(context.Background(), p)
	})
}

// waitGone waits until this node's pool of the AppGroup is gone.
func (a *simAgent) waitGone(agName string) {
	a.t.Helper()
	eventually(a.t, "pool of "+agName+" on "+a.node+" gone", func() error {
		if _, err := a.find(agName); err == nil {
			return errors.New("still there")
		}
		return nil
	})
}

func removeDrainFinalizer(ctx context.Context, p *ferryv1.ProcessPool) error {
	orig := p.DeepCopy()
	if !controllerutil.RemoveFinalizer(p, contract.DrainFinalizer) {
		return nil
	}
	err := env.Client.Patch(ctx, p, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func setCondition(p *ferryv1.ProcessPool, typ string, status metav1.ConditionStatus, reason string) {
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: reason,
		LastTransitionTime: metav1.Time{Time: clk.Now()}, ObservedGeneration: p.Generation,
	})
}
