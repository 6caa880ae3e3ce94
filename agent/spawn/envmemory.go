package spawn

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/go-logr/logr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// EnvMemory keeps the values env valueFrom gave the workers of a pool's
// revisions, in the agent's memory only (never on disk, in a
// status or a log line), so that while the API server does not answer,
// a worker of a revision already spawned is replaced with the values its
// siblings got, as the kubelet restarts a container with the Secret it
// holds. Without it, one crash during an outage would lose a worker until
// the API server is back. It covers an unanswered read only: a refusal
// (RBAC), a missing object or key is answered, and the spawn sees it,
// as does a revision whose values were never read by this agent (a new
// revision, an agent restarted meanwhile). Its owner trims it to the
// revisions it runs (Keep). The zero value is ready.
type EnvMemory struct {
	mu   sync.Mutex
	revs []revisionValues
}

type revisionValues struct {
	revision string
	values   map[envKey]rememberedValue
}

type envKey struct{ kind, name, key string }

type rememberedValue struct {
	value string
	ok    bool // false: an optional reference that was missing
}

func keyOf(from ferryv1.EnvVarSource) envKey {
	kind, ref := from.Ref()
	return envKey{kind, ref.Name, ref.Key}
}

// valuesLocked is revision's values; with add, made if missing.
func (m *EnvMemory) valuesLocked(revision string, add bool) map[envKey]rememberedValue {
	for _, r := range m.revs {
		if r.revision == revision {
			return r.values
		}
	}
	if !add {
		return nil
	}
	m.revs = append(m.revs, revisionValues{revision: revision, values: map[envKey]rememberedValue{}})
	return m.revs[len(m.revs)-1].values
}

// Keep forgets the values of every revision but those keep says the
// owner still runs or may spawn (its target, its live workers'): a pool
// that rolls through many revisions does not hold them all.
func (m *EnvMemory) Keep(keep func(revision string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revs = slices.DeleteFunc(m.revs, func(r revisionValues) bool { return !keep(r.revision) })
}

func (m *EnvMemory) remember(revision string, from ferryv1.EnvVarSource, v rememberedValue) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.valuesLocked(revision, true)[keyOf(from)] = v
}

// forget drops what was read of from, for every revision: the answer
// (a refusal, the object or key missing) holds for them all.
func (m *EnvMemory) forget(from ferryv1.EnvVarSource) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.revs {
		delete(r.values, keyOf(from))
	}
}

func (m *EnvMemory) recall(revision string, from ferryv1.EnvVarSource) (rememberedValue, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.valuesLocked(revision, false)[keyOf(from)]
	return v, ok
}

// source is src for the workers of revision, remembering what it reads,
// and answering from memory what it could not read for want of an answer.
func (m *EnvMemory) source(revision string, src EnvSource, log logr.Logger) EnvSource {
	return rememberingSource{mem: m, revision: revision, src: src, log: log}
}

type rememberingSource struct {
	mem      *EnvMemory
	revision string
	src      EnvSource
	log      logr.Logger
}

func (r rememberingSource) Value(ctx context.Context, from ferryv1.EnvVarSource) (string, bool, error) {
	v, ok, err := r.src.Value(ctx, from)
	var unread *EnvUnreadError
	switch {
	case err == nil:
		r.mem.remember(r.revision, from, rememberedValue{v, ok})
	case errors.As(err, &unread) && unread.Unanswered:
		if got, found := r.mem.recall(r.revision, from); found {
			r.log.Info("The API server did not answer the read of an env valueFrom; the worker gets the value its revision's workers got",
				"revision", r.revision, "source", describeEnvSource(from), "error", err.Error())
			return got.value, got.ok, nil
		}
	default: // answered (refused, missing): what was read before holds no more
		r.mem.forget(from)
	}
	return v, ok, err
}
