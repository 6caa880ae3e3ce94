package spawn

import (
	"context"
	"errors"
	"maps"
	"sync"

	"github.com/go-logr/logr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// EnvMemory keeps, for the env valueFrom of a pool's revisions, the last
// answer read of each key, in the agent's memory only (never on disk, in
// a status or a log line), so that while the API server does not answer,
// a worker of a revision already spawned is replaced with the value the
// API server last gave, as the kubelet restarts a container with the
// Secret it holds. Without it, one crash during an outage would lose a
// worker until the API server is back. It covers an unanswered read only:
// a refusal (RBAC), a missing object or key is answered, and the spawn
// sees it, as does a revision whose values were never read by this agent
// (a new revision, an agent restarted meanwhile). It also keeps which
// revisions' ignored env names (appEnv) were logged, so that a pool
// stored before the API refused them says so once per revision, not at
// every spawn. Its owner trims it to the revisions it may spawn (Keep).
// The zero value is ready.
type EnvMemory struct {
	mu sync.Mutex
	// saidIgnored holds the revisions whose ignored env names were logged.
	saidIgnored map[string]bool
	// values is the last answer read of each key, whichever revision's
	// spawn read it: what the API server would give now, as far as the
	// agent knows.
	values map[envKey]rememberedValue
	// read is, for each revision, the keys read for its workers: only
	// those are answered from values for it.
	read map[string]map[envKey]bool
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

// Keep forgets the revisions keep does not name, and the values no
// revision kept has read: a pool that rolls through many revisions does
// not hold them all.
func (m *EnvMemory) Keep(keep func(revision string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	maps.DeleteFunc(m.read, func(rev string, _ map[envKey]bool) bool { return !keep(rev) })
	maps.DeleteFunc(m.saidIgnored, func(rev string, _ bool) bool { return !keep(rev) })
	maps.DeleteFunc(m.values, func(k envKey, _ rememberedValue) bool {
		for _, keys := range m.read {
			if keys[k] {
				return false
			}
		}
		return true
	})
}

// sayIgnored reports whether the app's env names ignored for revision's
// workers are to be logged: the first time it is asked for revision
// (since Keep last let it go), or always with no memory (nil).
func (m *EnvMemory) sayIgnored(revision string) bool {
	if m == nil {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saidIgnored[revision] {
		return false
	}
	if m.saidIgnored == nil {
		m.saidIgnored = map[string]bool{}
	}
	m.saidIgnored[revision] = true
	return true
}

func (m *EnvMemory) remember(revision string, from ferryv1.EnvVarSource, v rememberedValue) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.values == nil {
		m.values, m.read = map[envKey]rememberedValue{}, map[string]map[envKey]bool{}
	}
	if m.read[revision] == nil {
		m.read[revision] = map[envKey]bool{}
	}
	k := keyOf(from)
	m.values[k], m.read[revision][k] = v, true
}

// forget drops the answer of from: the API server's latest (a refusal,
// the object or key missing) holds for every revision.
func (m *EnvMemory) forget(from ferryv1.EnvVarSource) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.values, keyOf(from))
}

func (m *EnvMemory) recall(revision string, from ferryv1.EnvVarSource) (rememberedValue, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := keyOf(from)
	if !m.read[revision][k] {
		return rememberedValue{}, false
	}
	v, ok := m.values[k]
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
			r.log.Info("The API server did not answer the read of an env valueFrom; the worker gets the value last read",
				"revision", r.revision, "source", describeEnvSource(from), "error", err.Error())
			return got.value, got.ok, nil
		}
	case ctx.Err() != nil: // the spawn given up (the pool closing): nothing learnt
	default: // answered (refused, missing): what was read before holds no more
		r.mem.forget(from)
	}
	return v, ok, err
}
