package controllers

import (
	"context"
	"maps"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// takenLook is what the last pass that looked at the names an AppGroup
// needs (a create, and a get of the object in the way) found taken, and
// when the next look is due. A pass before then takes what it found
// (scope.known) instead of looking: an AppGroup's passes come with every
// report of its agents, and each look would cost the requests again.
type takenLook struct {
	// since is since when passes have found names taken
	// (takenRecheckAfter); next is when the next look is due.
	since, next time.Time
	// generation, annotations and labels are the AppGroup's at the look:
	// a change of it looks at once (kubectl annotate, to look now).
	generation  int64
	annotations map[string]string
	labels      map[string]string
	taken       []nameTaken
	poolTaken   []poolNamesTaken
}

// nextLook is the look a pass over ag at now makes, that found taken and
// poolTaken, after prev (ok false: none since the names were free).
func nextLook(prev takenLook, ok bool, ag *ferryv1.AppGroup, now time.Time, taken []nameTaken, poolTaken []poolNamesTaken) takenLook {
	since := now
	if ok {
		since = prev.since
	}
	return takenLook{
		since: since, next: now.Add(takenRecheckAfter(since, now)),
		generation: ag.Generation, annotations: maps.Clone(ag.Annotations), labels: maps.Clone(ag.Labels),
		taken: slices.Clone(taken), poolTaken: slices.Clone(poolTaken),
	}
}

// due: a pass over ag at now looks again: the wait is over, or ag
// changed since the look.
func (l takenLook) due(ag *ferryv1.AppGroup, now time.Time) bool {
	return !now.Before(l.next) || l.generation != ag.Generation ||
		!maps.Equal(l.annotations, ag.Annotations) || !maps.Equal(l.labels, ag.Labels)
}

// poolOf is what the look found of node's pool names, if taken.
func (l takenLook) poolOf(node string) (poolNamesTaken, bool) {
	i := slices.IndexFunc(l.poolTaken, func(t poolNamesTaken) bool { return t.node == node })
	if i < 0 {
		return poolNamesTaken{}, false
	}
	return l.poolTaken[i], true
}

// holdsPoolName: the look found a pool's names taken, one of them name.
func (l takenLook) holdsPoolName(name string) bool {
	return slices.ContainsFunc(l.poolTaken, func(t poolNamesTaken) bool { return slices.Contains(t.names, name) })
}

// knownTaken: the pass takes the last look's finding (scope.known), and
// that found kind's object name taken; it is counted taken again.
func (s *scope) knownTaken(kind, name string) bool {
	if s.known == nil || !slices.Contains(s.known.taken, nameTaken{kind: kind, name: name}) {
		return false
	}
	s.taken = append(s.taken, nameTaken{kind: kind, name: name})
	return true
}

// knownPoolsTaken takes out of nodes those whose pool names the last look
// found taken, when the pass takes its finding (scope.known) and the cache
// still shows both names another's, and counts them taken again. The
// cache holds every ProcessPool: one gone, the pass looks at once.
func (r *AppGroupReconciler) knownPoolsTaken(ctx context.Context, s *scope, nodes []string) []string {
	if s.known == nil {
		return nodes
	}
	return slices.DeleteFunc(nodes, func(node string) bool {
		t, ok := s.known.poolOf(node)
		ok = ok && !slices.ContainsFunc(t.names, func(name string) bool {
			p := &ferryv1.ProcessPool{}
			err := r.Client.Get(ctx, types.NamespacedName{Namespace: s.ag.Namespace, Name: name}, p)
			return err != nil || metav1.IsControlledBy(p, s.ag) && p.Spec.NodeName == node
		})
		if ok {
			s.poolTaken = append(s.poolTaken, t)
		}
		return ok
	})
}

// takenFreed queues, when a ProcessPool goes, the AppGroups whose pool
// its name kept from being made (their pass finds it gone:
// knownPoolsTaken). The manager does not watch the Services and
// EndpointSlices it did not make: one of those freed is seen at the next
// look due.
func takenFreed(looks *objectMemory[takenLook]) handler.EventHandler {
	return handler.Funcs{DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		ns, name := e.Object.GetNamespace(), e.Object.GetName()
		for _, key := range looks.find(func(key types.NamespacedName, l takenLook) bool {
			return key.Namespace == ns && l.holdsPoolName(name)
		}) {
			q.Add(reconcile.Request{NamespacedName: key})
		}
	}}
}
