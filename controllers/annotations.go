package controllers

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// readAnnotation is the one annotation under ferry.dev that Ferry reads on
// an AppGroup (docs/install.md says so), and so the closest one to any
// other: a second would bring back a choice by edit distance.
// (contract.ReturnedFromAnnotation is the manager's own, on a pool;
// ferry.dev/drain is a finalizer, ferry.dev/appgroup and ferry.dev/node
// are a pool's labels.)
const readAnnotation = ferryv1.RevisionAnnotation

// maxQuotedValue bounds an annotation's value quoted in an event: the
// annotation is named in full, its value is there to tell one mistake
// from the next.
const maxQuotedValue = 64

// unknownAnnotations are ag's annotations under ferry.dev or a subdomain
// of it that Ferry does not read, with their values: a misspelled
// revision annotation (ferry.dev/revison, ferry.dev/Revision) rolls
// nothing, and without a word the user waits for a rollout that never
// starts.
func unknownAnnotations(ag *ferryv1.AppGroup) map[string]string {
	var out map[string]string
	for k, v := range ag.Annotations {
		prefix, _, ok := strings.Cut(k, "/")
		if !ok || prefix != "ferry.dev" && !strings.HasSuffix(prefix, ".ferry.dev") || k == readAnnotation {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// unknownAnnotationEvents are the warning for the unknown annotations
// (unknownAnnotations) not in warned, the ones warned of already with the
// same value: one event naming them all in key order, as the recorder
// folds events of one pass (same reason, same object at the same
// resourceVersion) into a series with the first one's note.
func unknownAnnotationEvents(unknown, warned map[string]string) []statusEvent {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(unknown)) {
		if w, ok := warned[k]; ok && w == unknown[k] {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s (%q; the closest one Ferry reads is %s)",
			k, cutMiddle(unknown[k], maxQuotedValue), readAnnotation))
	}
	if len(parts) == 0 {
		return nil
	}
	var evs eventList
	evs.add(corev1.EventTypeWarning, EventUnknownAnnotation, "Validate",
		fmt.Sprintf("Ferry does not read %s%s, so %s nothing", plural(len(parts), "annotation ", "annotations "),
			nodeList(parts), plural(len(parts), "it changes", "they change")))
	return evs
}
