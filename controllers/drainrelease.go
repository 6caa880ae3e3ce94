package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// drainReleaser removes the drain finalizer of every pool being deleted
// whose Node is gone: no agent is left to drain it. It goes by the pools
// alone, not their AppGroup, so that it also releases those whose AppGroup
// is gone (its finalizer removed by hand while they drained, or another
// AppGroup made under its name since), which no AppGroup's pass sees any
// more: they stayed for good.
type drainReleaser struct {
	// client reads from the manager's cache and writes to the API server.
	client client.Client
	// apiReader confirms that a Node the cache does not show is gone.
	apiReader client.Reader
}

// poolNodeIndex is the cache's field index of pools by spec.nodeName: a
// Node's deletion finds its pools.
const poolNodeIndex = "spec.nodeName"

func indexPoolNode(o client.Object) []string {
	if p, ok := o.(*ferryv1.ProcessPool); ok {
		return []string{p.Spec.NodeName}
	}
	return nil
}

// setupDrainReleaser registers the releaser with mgr: it looks at a pool
// when it is deleted (or seen deleting when the manager starts) and, for
// every pool on it, when a Node is deleted.
func setupDrainReleaser(mgr ctrl.Manager, apiReader client.Reader) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &ferryv1.ProcessPool{}, poolNodeIndex, indexPoolNode); err != nil {
		return err
	}
	d := &drainReleaser{client: mgr.GetClient(), apiReader: apiReader}
	deleting := predicate.NewPredicateFuncs(func(o client.Object) bool { return !o.GetDeletionTimestamp().IsZero() })
	return ctrl.NewControllerManagedBy(mgr).
		For(&ferryv1.ProcessPool{}, builder.WithPredicates(deleting)).
		WatchesMetadata(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(d.poolsOnNode),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc:  func(event.CreateEvent) bool { return false },
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		Named("drain-releaser").
		Complete(d)
}

// poolsOnNode maps a Node to the pools on it.
func (d *drainReleaser) poolsOnNode(ctx context.Context, node client.Object) []reconcile.Request {
	var list ferryv1.ProcessPoolList
	if err := d.client.List(ctx, &list, client.MatchingFields{poolNodeIndex: node.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list the pools of a deleted node", "node", node.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// Reconcile removes the drain finalizer of the pool when it is being
// deleted and its Node is gone.
func (d *drainReleaser) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &ferryv1.ProcessPool{}
	if err := d.client.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if p.DeletionTimestamp.IsZero() || !controllerutil.ContainsFinalizer(p, contract.DrainFinalizer) {
		return ctrl.Result{}, nil
	}
	if gone, err := d.nodeGone(ctx, p.Spec.NodeName); !gone || err != nil {
		return ctrl.Result{}, err
	}
	orig := p.DeepCopy()
	controllerutil.RemoveFinalizer(p, contract.DrainFinalizer)
	if err := d.client.Patch(ctx, p, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctrl.LoggerFrom(ctx).Info("Removed drain finalizer of a pool whose node is gone", "pool", klog.KObj(p), "node", p.Spec.NodeName)
	return ctrl.Result{}, nil
}

// nodeGone: the cache shows no Node name, and neither does the API server
// (the cache may lag a Node made again under its name).
func (d *drainReleaser) nodeGone(ctx context.Context, name string) (bool, error) {
	for _, r := range []client.Reader{d.client, d.apiReader} {
		n := &metav1.PartialObjectMetadata{}
		n.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Node"))
		err := r.Get(ctx, client.ObjectKey{Name: name}, n)
		if !apierrors.IsNotFound(err) {
			return false, err
		}
	}
	return true, nil
}
