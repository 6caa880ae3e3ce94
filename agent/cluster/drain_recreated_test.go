package cluster

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// TestRecreatedDuringDrainDelay: a deleted pool is released by hand
// (or by the manager, its Node gone) while its agent waits out the drain
// delay, and a pool of the same name is created on the node again. The
// old drain leaves the new pool's finalizer and saved spec alone. (Found by
// review: it removed both.)
func TestRecreatedDuringDrainDelay(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	dir := stateDir(t)
	runAgent(t, "node-r", env.Config, dir, func(o *Options) { o.DrainDelay = 3 * time.Second })
	port := freePort(t)
	pp := newPool(ns, "hello-node-r", "node-r", "1-aaa", port, example("hello-wsgi"))
	if err := env.Client.Create(ctx, pp); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pp)
	waitPool(t, key, "a ready report", rolledOut)
	if err := env.Client.Delete(ctx, pp); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the agent is in the delay
	old := &ferryv1.ProcessPool{}
	if err := env.Client.Get(ctx, key, old); err != nil {
		t.Fatal(err)
	}
	orig := old.DeepCopy()
	controllerutil.RemoveFinalizer(old, contract.DrainFinalizer)
	if err := env.Client.Patch(ctx, old, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	for env.Client.Get(ctx, key, &ferryv1.ProcessPool{}) == nil {
		time.Sleep(50 * time.Millisecond)
	}
	pp2 := newPool(ns, "hello-node-r", "node-r", "1-aaa", port, example("hello-wsgi"))
	if err := env.Client.Create(ctx, pp2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the agent saves the new pool's spec
	waitPool(t, key, "the new pool ready", rolledOut)
	time.Sleep(4 * time.Second) // past the old pool's delay and drain
	got := &ferryv1.ProcessPool{}
	if err := env.Client.Get(ctx, key, got); err != nil {
		if apierrors.IsNotFound(err) {
			t.Fatal("new pool gone")
		}
		t.Fatal(err)
	}
	if got.UID != pp2.UID {
		t.Fatalf("not the new pool")
	}
	if !slices.Contains(got.Finalizers, contract.DrainFinalizer) {
		t.Errorf("the old pool's drain removed the new pool's drain finalizer: %v", got.Finalizers)
	}
	st, _ := newStore(dir + "/pools")
	if _, err := os.Stat(st.path(key)); err != nil {
		t.Errorf("the new pool's saved spec: %v", err)
	}
}
