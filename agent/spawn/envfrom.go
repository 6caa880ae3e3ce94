package spawn

import (
	"context"
	"fmt"
	"strings"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// EnvSource reads the values of env variables given by valueFrom (a key
// of a Secret or ConfigMap). The agent's cluster mode reads them from the
// API server, in the pool's namespace, at each spawn.
type EnvSource interface {
	// Value returns the value from names; ok is false when the Secret,
	// ConfigMap or key is missing and from says it is optional. Its error
	// names what could not be read and what to do.
	Value(ctx context.Context, from ferryv1.EnvVarSource) (value string, ok bool, err error)
}

// EnvUnreadError is an EnvSource's error for a read that failed for no
// fault of the revision: the API server did not answer, or refused the
// agent (RBAC). The spawn fails, and its caller backs off and tries
// again (Error.NotTheRevisions) rather than resisting the revision: once
// the API server answers, or the agent is granted the read, the same
// revision spawns. A missing Secret, ConfigMap or key is the revision's.
type EnvUnreadError struct {
	Err error
	// Unanswered: the API server did not answer (unreachable, timed out,
	// overloaded), as opposed to refusing the agent. A worker of a
	// revision already spawned then gets the value its siblings got
	// (EnvMemory).
	Unanswered bool
}

func (e *EnvUnreadError) Error() string { return e.Err.Error() }
func (e *EnvUnreadError) Unwrap() error { return e.Err }

// maxEnvString is the longest "NAME=value" Linux takes in an environment
// (MAX_ARG_STRLEN, 32 pages): exec refuses a longer one with "argument
// list too long", naming neither the variable nor where its value came
// from. A plain value is bounded by the CRD; one read from a Secret is not.
const maxEnvString = 32 * 4096

// resolveEnv is env with each valueFrom read from src: a variable whose
// optional source is missing is left out, as a Pod leaves it out. The
// values go only into the returned list, which becomes the worker's
// environment; env (the template's) is not changed.
func resolveEnv(ctx context.Context, env []ferryv1.EnvVar, src EnvSource) ([]ferryv1.EnvVar, error) {
	if !hasValueFrom(env) {
		return env, nil
	}
	out := make([]ferryv1.EnvVar, 0, len(env))
	for _, e := range env {
		if e.ValueFrom == nil {
			out = append(out, e)
			continue
		}
		if src == nil {
			return nil, fmt.Errorf("env %s: valueFrom reads a Secret or ConfigMap from the API server, and this agent has none (standalone): set value instead", e.Name)
		}
		v, ok, err := src.Value(ctx, *e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if n := len(e.Name) + 1 + len(v) + 1; n > maxEnvString {
			return nil, fmt.Errorf("env %s: the value of %s is %d bytes, more than an environment variable can hold (%d with its name): put it in a file the app reads",
				e.Name, describeEnvSource(*e.ValueFrom), len(v), maxEnvString)
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("env %s: the value of %s holds a NUL character, which no environment variable can hold: store it without one (or read it from a file)",
				e.Name, describeEnvSource(*e.ValueFrom))
		}
		if ok {
			out = append(out, ferryv1.EnvVar{Name: e.Name, Value: v})
		}
	}
	return out, nil
}

func hasValueFrom(env []ferryv1.EnvVar) bool {
	for _, e := range env {
		if e.ValueFrom != nil {
			return true
		}
	}
	return false
}

// describeEnvSource names the key from reads: `key "k" of Secret "s"`.
func describeEnvSource(from ferryv1.EnvVarSource) string {
	kind, ref := from.Ref()
	return fmt.Sprintf("key %q of %s %q", ref.Key, kind, ref.Name)
}
