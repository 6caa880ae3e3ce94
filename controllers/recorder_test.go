package controllers_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// recordedEvents are the events the manager under test recorded on
// AppGroups, in the order its passes recorded them (loggingRecorder).
// The API server's Events come through the broadcaster's goroutines in
// an order no test can rely on: one recorded after another may be
// listed before it. Counted from here, an event seen was recorded after
// every event before it in the log.
var recordedEvents eventLog

// loggedEvent is one event of recordedEvents.
type loggedEvent struct {
	namespace, name, reason, note string
}

// eventLog is a log of events, appended to as they are recorded.
type eventLog struct {
	mu     sync.Mutex
	events []loggedEvent
}

func (l *eventLog) add(e loggedEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// mark is where the log stands: the events recorded after it are those
// at it and past.
func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// since are the events from mark on.
func (l *eventLog) since(mark int) []loggedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loggedEvent(nil), l.events[mark:]...)
}

// loggingRecorder logs each event in recordedEvents as it is recorded,
// in the recording pass's goroutine, then hands it to next.
type loggingRecorder struct {
	next events.EventRecorder
	log  *eventLog
}

func (r loggingRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if m, err := meta.Accessor(regarding); err == nil {
		r.log.add(loggedEvent{namespace: m.GetNamespace(), name: m.GetName(), reason: reason, note: fmt.Sprintf(note, args...)})
	}
	r.next.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

// waitLogged waits for an event of reason on AppGroup ns/name whose note
// holds note, recorded at mark or after, and returns the events from
// mark up to it, itself left out.
func waitLogged(t *testing.T, mark int, ns, name, reason, note string) []loggedEvent {
	t.Helper()
	var before []loggedEvent
	eventually(t, "recorded event "+reason, func() error {
		evs := recordedEvents.since(mark)
		for i, e := range evs {
			if e.namespace == ns && e.name == name && e.reason == reason && strings.Contains(e.note, note) {
				before = evs[:i]
				return nil
			}
		}
		return fmt.Errorf("no %s event of %s/%s holding %q among the %d recorded since", reason, ns, name, note, len(evs))
	})
	return before
}

// loggedCount is how many of evs are of reason on AppGroup ns/name.
func loggedCount(evs []loggedEvent, ns, name, reason string) int {
	n := 0
	for _, e := range evs {
		if e.namespace == ns && e.name == name && e.reason == reason {
			n++
		}
	}
	return n
}
