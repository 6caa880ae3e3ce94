package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// lastWrite is the manager's last status write of one AppGroup.
type lastWrite struct {
	uid types.UID
	// base is the resourceVersion the write was made on.
	base string
	// older are resourceVersions known to come before the write: base
	// and, when the pass started from an earlier entry, that entry's. They
	// decide only where resourceVersions cannot be compared (behind).
	older map[string]bool
	// obj is the AppGroup as the write left it; nil when the write failed
	// in a way that leaves unknown whether it was made (not a conflict).
	obj *ferryv1.AppGroup
}

// writtenMemory keeps each AppGroup's last status write until the cache
// shows it. The cache shows a write some time after it; a pass that
// follows at once (its own pool writes queue it) would plan from the
// status before, which may lack a halt the last pass found, and give the
// halted revision to the next node; and its own status write, made on the
// cache's resourceVersion, would fail.
//
// While the cache shows the AppGroup at a version before the write
// (behind), a pass starts from the object the write returned (its spec is
// at least as new as the cache's), so that it plans from the last status
// and its own write's precondition is current. When the write's outcome
// is unknown, passes read the API server. Once the cache has caught up,
// the entry goes. A new leader starts empty.
type writtenMemory struct {
	mu sync.Mutex
	m  map[types.NamespacedName]lastWrite
}

// newer is what a pass over cached (as the cache shows it) should start
// from instead, if anything: the object of a write the cache has not seen
// yet (known true), or the word that such a write's outcome is unknown
// (known false: read the API server).
func (w *writtenMemory) newer(cached *ferryv1.AppGroup) (obj *ferryv1.AppGroup, known, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, found := w.m[client.ObjectKeyFromObject(cached)]
	switch {
	case !found:
		return nil, false, false
	case e.uid != cached.UID || !e.behind(cached.ResourceVersion):
		delete(w.m, client.ObjectKeyFromObject(cached)) // another object, or the cache has caught up
		return nil, false, false
	case e.obj == nil:
		return nil, false, true
	}
	return e.obj.DeepCopy(), true, true
}

// wrote records a status write made on base that left ag.
func (w *writtenMemory) wrote(ag *ferryv1.AppGroup, base string) {
	w.set(ag, base, ag.DeepCopy())
}

// failed records that a status write made on base failed in a way that
// leaves unknown whether it was made, or that the AppGroup it was made on
// was behind the API server's (a conflict): passes read the API server
// until the cache moves past base.
func (w *writtenMemory) failed(ag *ferryv1.AppGroup, base string) {
	w.set(ag, base, nil)
}

// set records a write made on base. An entry still there is the one the
// pass started from (newer drops those the cache caught up with): the
// versions it knew to be older are older than this write too.
func (w *writtenMemory) set(ag *ferryv1.AppGroup, base string, obj *ferryv1.AppGroup) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]lastWrite{}
	}
	e := lastWrite{uid: ag.UID, base: base, obj: obj, older: map[string]bool{base: true}}
	if prev, ok := w.m[client.ObjectKeyFromObject(ag)]; ok && prev.uid == ag.UID {
		for v := range prev.older {
			e.older[v] = true
		}
	}
	w.m[client.ObjectKeyFromObject(ag)] = e
}

// forget drops an AppGroup that is gone.
func (w *writtenMemory) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}

// behind: a cache showing the AppGroup at rv has not seen the write. The
// API server's resourceVersions compare as numbers (etcd's revisions): the
// cache is behind a known write while below the version it returned, and
// behind a write of unknown outcome while at or below the version it was
// made on (the write, with that version as its precondition, would be the
// next one). Where they do not compare, the versions known to come before
// the write decide, which can miss versions it never saw.
func (e lastWrite) behind(rv string) bool {
	ref, unknown := e.base, e.obj == nil
	if !unknown {
		ref = e.obj.ResourceVersion
	}
	c, err := resourceversion.CompareResourceVersion(rv, ref)
	switch {
	case err != nil:
		return e.older[rv]
	case unknown:
		return c <= 0
	}
	return c < 0
}

// objectMemory keeps a T per AppGroup, safe for concurrent passes. An
// entry is of one object (its UID): an AppGroup deleted and created again
// under its name, before a pass saw it gone, has no entry. A new leader
// starts empty.
type objectMemory[T any] struct {
	mu sync.Mutex
	m  map[types.NamespacedName]uidEntry[T]
}

type uidEntry[T any] struct {
	uid types.UID
	v   T
}

// get is k's entry, if it is of the object uid.
func (s *objectMemory[T]) get(k types.NamespacedName, uid types.UID) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[k]; ok && e.uid == uid {
		return e.v, true
	}
	var zero T
	return zero, false
}

func (s *objectMemory[T]) set(k types.NamespacedName, uid types.UID, v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.NamespacedName]uidEntry[T]{}
	}
	s.m[k] = uidEntry[T]{uid: uid, v: v}
}

// find are the keys of the entries match is true of.
func (s *objectMemory[T]) find(match func(types.NamespacedName, T) bool) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []types.NamespacedName
	for k, e := range s.m {
		if match(k, e.v) {
			keys = append(keys, k)
		}
	}
	return keys
}

// forget drops k's entry.
func (s *objectMemory[T]) forget(k types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}

// streaks counts events in a row per AppGroup, safe for concurrent passes.
type streaks struct {
	mu sync.Mutex
	m  map[types.NamespacedName]int
}

// inc counts one more for k and returns the count.
func (s *streaks) inc(k types.NamespacedName) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.NamespacedName]int{}
	}
	s.m[k]++
	return s.m[k]
}

// reset ends k's streak.
func (s *streaks) reset(k types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}
