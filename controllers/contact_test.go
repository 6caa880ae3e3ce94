package controllers

import (
	"testing"
	"time"
)

// TestHearingFrom: a silence is counted from when contact came back only
// for an agent that was within the bound when the outage began.
func TestHearingFrom(t *testing.T) {
	outage := hearing{since: t0, lost: t0.Add(-time.Minute)}
	for _, tt := range []struct {
		name string
		h    hearing
		last time.Time
		want time.Time
	}{
		{"no outage seen", hearing{}, t0.Add(-time.Hour), t0.Add(-time.Hour)},
		{"alive when the outage began", outage, t0.Add(-70 * time.Second), t0},
		{"at the bound when it began", outage, t0.Add(-100 * time.Second), t0},
		{"past the bound when it began", outage, t0.Add(-101 * time.Second), t0.Add(-101 * time.Second)},
		{"seen since contact came back", outage, t0.Add(time.Second), t0.Add(time.Second)},
	} {
		if got := tt.h.from(tt.last, staleAfter); !got.Equal(tt.want) {
			t.Errorf("%s: from = %s, want %s", tt.name, got, tt.want)
		}
	}
}
