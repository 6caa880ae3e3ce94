package controllers

import (
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestTakenLookDue: a pass looks again at names taken once the wait since
// the last look is over, or when the AppGroup changed since (its spec,
// an annotation, a label); else it takes the last look's finding.
func TestTakenLookDue(t *testing.T) {
	ag := &ferryv1.AppGroup{}
	ag.Generation, ag.Annotations, ag.Labels = 2, map[string]string{"ferry.dev/revision": "1"}, map[string]string{"team": "web"}
	look := nextLook(takenLook{}, false, ag, t0, []nameTaken{{"Service", "blog"}}, nil)
	for _, tt := range []struct {
		name   string
		after  time.Duration
		change func(*ferryv1.AppGroup)
		want   bool
	}{
		{"the next pass", 0, nil, false},
		{"before the wait is over", takenRecheck - time.Second, nil, false},
		{"once it is over", takenRecheck, nil, true},
		{"the spec changed", 0, func(ag *ferryv1.AppGroup) { ag.Generation++ }, true},
		{"annotated", 0, func(ag *ferryv1.AppGroup) { ag.Annotations["example.com/poke"] = "1" }, true},
		{"labelled", 0, func(ag *ferryv1.AppGroup) { ag.Labels["team"] = "shop" }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cur := ag.DeepCopy()
			if tt.change != nil {
				tt.change(cur)
			}
			if got := look.due(cur, t0.Add(tt.after)); got != tt.want {
				t.Errorf("due = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestNextLook: each look at names still taken is due after as long as
// they have been taken (takenRecheckAfter), counted from the first look
// that found them.
func TestNextLook(t *testing.T) {
	ag := &ferryv1.AppGroup{}
	first := nextLook(takenLook{}, false, ag, t0, nil, []poolNamesTaken{{node: "node-a", names: []string{"a", "b"}}})
	if !first.since.Equal(t0) || !first.next.Equal(t0.Add(takenRecheck)) {
		t.Errorf("first look: since %v, next %v; want %v, %v", first.since, first.next, t0, t0.Add(takenRecheck))
	}
	later := nextLook(first, true, ag, t0.Add(25*time.Second), nil, first.poolTaken)
	if !later.since.Equal(t0) || !later.next.Equal(t0.Add(50*time.Second)) {
		t.Errorf("look 25s on: since %v, next %v; want %v, %v", later.since, later.next, t0, t0.Add(50*time.Second))
	}
	if !later.holdsPoolName("b") || later.holdsPoolName("c") {
		t.Errorf("holdsPoolName: b %v (want true), c %v (want false)", later.holdsPoolName("b"), later.holdsPoolName("c"))
	}
}
