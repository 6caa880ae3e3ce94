package cluster

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"k8s.io/client-go/rest"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestDrainingPoolDoesNotReportOnItsSuccessor: a deleted pool is released
// by hand (or by the manager, its Node gone) during its drain delay, and a
// pool of the same name is created on the node. The old pool's reporter,
// which runs on through the delay, must not write the old pool's status
// (its processes, its address) onto the new pool.
func TestDrainingPoolDoesNotReportOnItsSuccessor(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	dir := stateDir(t)
	const delay = 8 * time.Second
	runAgent(t, "node-u", env.Config, dir, func(o *Options) { o.DrainDelay = delay })
	oldPort := freePort(t)
	pp, key := readyPool(t, ns, "hello-node-u", "node-u", oldPort)
	cur := waitPool(t, key, "the old pool's processes", rolledOut)
	oldPIDs := map[int64]bool{}
	for _, p := range cur.Status.Processes {
		oldPIDs[int64(p.PID)] = true
	}
	deletedAt := time.Now()
	releaseDuringDrain(t, dir, pp, key)
	newPort := freePort(t)
	pp2 := newPool(ns, "hello-node-u", "node-u", "1-aaa", newPort, example("hello-wsgi"))
	if err := env.Client.Create(ctx, pp2); err != nil {
		t.Fatal(err)
	}
	oldURL := fmt.Sprintf("http://127.0.0.1:%d/", oldPort)
	oldAddr := "127.0.0.1:" + strconv.Itoa(int(oldPort))
	// Through the rest of the old pool's delay (traffic on it moves its
	// figures, so its reporter has something to write) and a while after.
	for time.Since(deletedAt) < delay+3*time.Second {
		if resp, err := http.Get(oldURL); err == nil {
			resp.Body.Close()
		}
		got := &ferryv1.ProcessPool{}
		if err := env.Client.Get(ctx, key, got); err == nil && got.UID == pp2.UID {
			if got.Status.Address == oldAddr {
				t.Fatalf("the new pool's status has the old pool's address %s", oldAddr)
			}
			for _, p := range got.Status.Processes {
				if oldPIDs[int64(p.PID)] {
					t.Fatalf("the new pool's status lists the old pool's process %d: %+v", p.PID, got.Status.Processes)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitPool(t, key, "the new pool ready on its own port", func(p *ferryv1.ProcessPool) bool {
		return p.UID == pp2.UID && rolledOut(p) && p.Status.Address == "127.0.0.1:"+strconv.Itoa(int(newPort))
	})
}

// TestNotReadyWithoutAPIServerOrSavedPools: an agent that has never heard
// from the API server and has nothing saved to resume knows nothing to run:
// it is not ready (its probe says "not synced with the API server and
// nothing saved to resume"). With a saved pool it is, and serves it.
func TestNotReadyWithoutAPIServerOrSavedPools(t *testing.T) {
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://127.0.0.1:1" // nothing listens there
	cfg.Timeout = time.Second
	for _, saved := range []bool{false, true} {
		dir := stateDir(t)
		if saved {
			st, err := newStore(filepath.Join(dir, "pools"))
			if err != nil {
				t.Fatal(err)
			}
			pp := newPool("default", "app-node-z", "node-z", "1-aaa", freePort(t), example("hello-wsgi"))
			pp.UID, pp.Generation = "u-1", 1
			if err := st.save(pp); err != nil {
				t.Fatal(err)
			}
		}
		claimNode(t, "node-z")
		a, err := New(Options{NodeName: "node-z", Config: cfg, BindAddress: "127.0.0.1", StateDir: dir,
			HeartbeatInterval: time.Second, StatsInterval: time.Second, Log: testr.New(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = a.Run(ctx) }()
		if saved {
			waitUntil(t, "ready on the saved pool", a.Ready)
		} else {
			time.Sleep(2 * time.Second) // what restoring it had would have taken
			if a.Ready() {
				t.Error("API server unreachable and nothing saved: ready, want not ready")
			}
		}
		cancel()
		testsupport.Receive(t, 2*time.Minute, fmt.Sprintf("the agent stopped (API server unreachable, pool saved %v)", saved), done)
	}
}

// TestDeletedDuringPredecessorsDrain: a deleted pool is released by hand
// during its drain delay, a pool of the same name is created on the node,
// and deleted in turn while the first still drains. The second is drained
// and let go too, once the first is done, not left serving with its
// finalizer until some unrelated event.
func TestDeletedDuringPredecessorsDrain(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	dir := stateDir(t)
	const delay = 6 * time.Second
	runAgent(t, "node-v", env.Config, dir, func(o *Options) { o.DrainDelay = delay })
	pp, key := readyPool(t, ns, "hello-node-v", "node-v", freePort(t))
	releaseDuringDrain(t, dir, pp, key)
	newPort := freePort(t)
	pp2 := newPool(ns, "hello-node-v", "node-v", "1-aaa", newPort, example("hello-wsgi"))
	if err := env.Client.Create(ctx, pp2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new pool serving", func() bool {
		code, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/", newPort))
		return err == nil && code == 200
	})
	if err := env.Client.Delete(ctx, pp2); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, 2*delay+20*time.Second, "the second pool, deleted while the first drained, drained and let go",
		func() error { return poolGone(key) })
}
