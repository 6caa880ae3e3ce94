package cluster

import (
	"errors"
	"testing"
	"time"
)

// TestLeaseTroubleLogging: a renewal that keeps failing is logged when it
// starts, when it fails otherwise, and as a reminder every
// leaseRemindEvery; never every second, never only once.
func TestLeaseTroubleLogging(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	refused := errors.New("dial tcp 10.0.0.1:443: connect: connection refused")
	forbidden := errors.New(`leases.coordination.k8s.io "ferry-agent-node-a" is forbidden`)
	var lt leaseTrouble
	steps := []struct {
		at      time.Duration
		err     error // nil: renewed
		wantLog bool
	}{
		{0, refused, true},
		{time.Second, refused, false},
		{time.Minute, refused, false},
		{2 * time.Minute, forbidden, true},
		{3 * time.Minute, forbidden, false},
		{2*time.Minute + leaseRemindEvery, forbidden, true},
		{2*time.Minute + leaseRemindEvery + time.Second, forbidden, false},
		{10 * time.Minute, nil, true}, // the recovery is logged
		{11 * time.Minute, refused, true},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		if s.err == nil {
			since, was := lt.renewed()
			if was != s.wantLog || !since.Equal(t0) {
				t.Errorf("step %d: renewed = %v, %v; want %v since %v", i, since, was, s.wantLog, t0)
			}
			continue
		}
		since, log := lt.failed(now, s.err)
		if log != s.wantLog {
			t.Errorf("step %d (%v, %v): log = %v, want %v", i, s.at, s.err, log, s.wantLog)
		}
		wantSince := t0
		if i == len(steps)-1 {
			wantSince = now // a new outage after the recovery
		}
		if !since.Equal(wantSince) {
			t.Errorf("step %d: failing since %v, want %v", i, since, wantSince)
		}
	}
	if _, was := lt.renewed(); !was {
		t.Error("renewed after the last failure: was failing = false")
	}
	if _, was := lt.renewed(); was {
		t.Error("renewed twice: was failing = true")
	}
}
