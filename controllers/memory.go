package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// rolloutMemory is what an AppGroup's status remembers of its rollout:
// status.haltedRollout, lastRolledOut and provenRevision.
type rolloutMemory struct {
	uid types.UID
	// base is the resourceVersion the write was made on: while the cache
	// still shows the AppGroup at it, the cache has not seen the write.
	base string
	// uncertain: a status write failed in a way that leaves unknown
	// whether it was made (not a conflict); the next pass reads the
	// AppGroup from the API server.
	uncertain bool
	halt      *ferryv1.HaltedRollout
	lastGood  *ferryv1.RolledOutRevision
	proven    string
}

// writtenMemory keeps, per AppGroup, what the manager last wrote of the
// rollout memory. The cache shows a write some time after it; a pass that
// follows at once (its own pool writes queue it) would plan from the
// status before, and could give a halted revision to the next node. So a
// pass takes the memory from here while the cache still shows the
// AppGroup at the resourceVersion the write was made on: the write, made
// with that resourceVersion as its precondition, is the next one after it.
// Once the cache shows any other version, it has seen the write (or
// someone else's since), and the entry is dropped. A new leader starts
// empty.
type writtenMemory struct {
	mu sync.Mutex
	m  map[types.NamespacedName]rolloutMemory
}

func keyOf(ag *ferryv1.AppGroup) types.NamespacedName {
	return types.NamespacedName{Namespace: ag.Namespace, Name: ag.Name}
}

// get is what a pass over ag (as the cache shows it) should start from,
// when not the cache's status: the memory of a write the cache has not
// seen yet (uncertain false), or the word that the last write's outcome is
// unknown (uncertain true: read the API server).
func (w *writtenMemory) get(ag *ferryv1.AppGroup) (rolloutMemory, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, ok := w.m[keyOf(ag)]
	switch {
	case !ok || m.uid != ag.UID:
		return rolloutMemory{}, false
	case m.uncertain:
		delete(w.m, keyOf(ag))
		return m, true
	case m.base != ag.ResourceVersion:
		delete(w.m, keyOf(ag)) // the cache has caught up
		return rolloutMemory{}, false
	}
	return m, true
}

// wrote records the memory of a status just written for ag, on the
// resourceVersion base.
func (w *writtenMemory) wrote(ag *ferryv1.AppGroup, base string) {
	w.set(ag, rolloutMemory{uid: ag.UID, base: base, halt: ag.Status.HaltedRollout.DeepCopy(),
		lastGood: ag.Status.LastRolledOut.DeepCopy(), proven: ag.Status.ProvenRevision})
}

// failed records that a status write for ag failed with an error that
// leaves unknown whether it was made.
func (w *writtenMemory) failed(ag *ferryv1.AppGroup) {
	w.set(ag, rolloutMemory{uid: ag.UID, uncertain: true})
}

func (w *writtenMemory) set(ag *ferryv1.AppGroup, m rolloutMemory) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]rolloutMemory{}
	}
	w.m[keyOf(ag)] = m
}

// forget drops an AppGroup that is gone.
func (w *writtenMemory) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
