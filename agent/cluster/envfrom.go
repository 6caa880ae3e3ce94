package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferry-dev/ferry/agent/spawn"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// envGetTimeout bounds the read of one valueFrom: an API server away fails
// the spawn (retried as any failed spawn) rather than holding it.
const envGetTimeout = 10 * time.Second

// envReader reads env valueFrom for the pools of one namespace, with a
// direct GET of the one Secret or ConfigMap at each spawn: no cache or
// watch holds every Secret of the cluster in the agent's memory, and a
// changed value is read at the next spawn.
type envReader struct {
	c         client.Reader
	namespace string
}

// Value implements the agent/spawn package's EnvSource.
func (r envReader) Value(ctx context.Context, from ferryv1.EnvVarSource) (string, bool, error) {
	kind, ref := from.Ref()
	ctx, cancel := context.WithTimeout(ctx, envGetTimeout)
	defer cancel()
	key := types.NamespacedName{Namespace: r.namespace, Name: ref.Name}
	var v string
	var found bool
	var err error
	if kind == "Secret" {
		s := &corev1.Secret{}
		if err = r.c.Get(ctx, key, s); err == nil {
			v, found = secretValue(s, ref.Key)
		}
	} else {
		cm := &corev1.ConfigMap{}
		if err = r.c.Get(ctx, key, cm); err == nil {
			v, found = configMapValue(cm, ref.Key)
		}
	}
	return pickValue(kind, ref, r.namespace, v, found, err)
}

// secretValue is the one key asked for, copied out alone: the object's
// other values are never made strings the agent would hold.
func secretValue(s *corev1.Secret, key string) (string, bool) {
	b, ok := s.Data[key]
	return string(b), ok
}

// configMapValue is the key's value, from data or binaryData (the API
// server refuses a key in both).
func configMapValue(cm *corev1.ConfigMap, key string) (string, bool) {
	if v, ok := cm.Data[key]; ok {
		return v, true
	}
	b, ok := cm.BinaryData[key]
	return string(b), ok
}

// resistedFix ends the message of a reference the revision got wrong: a
// pool that resists the revision for it spawns it no more, so the fix
// needs a new revision.
const resistedFix = " (a pool that resists a revision for this needs a new one: kubectl ferry restart)"

// pickValue is the value of ref's key (v, found in the object read: kind,
// ref.Name in namespace) or the error reading the object: ok false for an
// optional one missing; otherwise an error that says what is missing or
// refused, and what to do. No error holds a value.
func pickValue(kind string, ref ferryv1.KeySelector, namespace string, v string, found bool, getErr error) (string, bool, error) {
	optional := ref.Optional != nil && *ref.Optional
	what := fmt.Sprintf("%s %q in namespace %s", kind, ref.Name, namespace)
	switch {
	case apierrors.IsNotFound(getErr) && optional:
		return "", false, nil
	case apierrors.IsNotFound(getErr):
		return "", false, fmt.Errorf("%s does not exist: create it with the key %q, or mark the reference optional%s", what, ref.Key, resistedFix)
	case apierrors.IsForbidden(getErr):
		return "", false, &spawn.EnvUnreadError{Err: fmt.Errorf("the agent may not get %ss in namespace %s, so cannot read key %q of %s %q: the chart's agent.secretEnv=true grants it (docs/install.md, Who Ferry trusts); the agent tries again",
			kind, namespace, ref.Key, kind, ref.Name)}
	case getErr != nil:
		// Any other failure is the API server's not answering (a transport
		// error, a timeout, 429, 5xx), but for refused credentials and a
		// spawn given up (the pool closing).
		return "", false, &spawn.EnvUnreadError{Unanswered: !apierrors.IsUnauthorized(getErr) && !errors.Is(getErr, context.Canceled),
			Err: fmt.Errorf("could not read %s (is the API server reachable from the node?); the agent tries again: %w", what, getErr)}
	}
	switch {
	case !found && optional:
		return "", false, nil
	case !found:
		return "", false, fmt.Errorf("%s has no key %q: add it, or mark the reference optional%s", what, ref.Key, resistedFix)
	}
	return v, true, nil
}
