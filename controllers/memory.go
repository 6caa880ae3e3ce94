package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// rolloutMemory is what an AppGroup's status remembers of its rollout:
// status.haltedRollout, lastRolledOut and provenRevision.
type rolloutMemory struct {
	uid      types.UID
	halt     *ferryv1.HaltedRollout
	lastGood *ferryv1.RolledOutRevision
	proven   string
}

// writtenMemory keeps, per AppGroup, the rollout memory of the manager's
// last successful status write. The cache shows a write some time after
// it; a pass that follows at once (its own pool writes queue it) would
// plan from the status before, and could give a halted revision to the
// next node. The manager is the status's only writer, so its last write
// is the newest: a pass takes the memory from here when it has it. A new
// leader starts empty and reads the status, which no one else writes.
type writtenMemory struct {
	mu sync.Mutex
	m  map[types.NamespacedName]rolloutMemory
}

// get is the memory last written for ag, if it is of this very object.
func (w *writtenMemory) get(ag *ferryv1.AppGroup) (rolloutMemory, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, ok := w.m[types.NamespacedName{Namespace: ag.Namespace, Name: ag.Name}]
	return m, ok && m.uid == ag.UID
}

// wrote records the memory of a status just written for ag.
func (w *writtenMemory) wrote(ag *ferryv1.AppGroup) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]rolloutMemory{}
	}
	st := &ag.Status
	w.m[types.NamespacedName{Namespace: ag.Namespace, Name: ag.Name}] = rolloutMemory{uid: ag.UID,
		halt: st.HaltedRollout.DeepCopy(), lastGood: st.LastRolledOut.DeepCopy(), proven: st.ProvenRevision}
}

// forget drops an AppGroup that is gone.
func (w *writtenMemory) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
