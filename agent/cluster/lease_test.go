package cluster

import (
	"errors"
	"fmt"
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

// TestLeaseTroubleIgnoresWhatChangesEachTry: an error that names the
// connection's own ephemeral port (a reset, a broken pipe) differs on
// every try; it is still the same trouble, not one to log every second.
func TestLeaseTroubleIgnoresWhatChangesEachTry(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	reset := func(port int) error {
		return fmt.Errorf(`Put "https://10.96.0.1:443/apis/coordination.k8s.io/v1/namespaces/ferry-system/leases/ferry-agent-node-a?timeout=10s": `+
			"read tcp 10.244.1.5:%d->10.96.0.1:443: read: connection reset by peer", port)
	}
	var lt leaseTrouble
	logged := 0
	for i := range 60 {
		if _, log := lt.failed(t0.Add(time.Duration(i)*time.Second), reset(40000+i)); log {
			logged++
		}
	}
	if logged != 1 {
		t.Errorf("a minute of resets, each from another local port, logged %d times, want once", logged)
	}
	if _, log := lt.failed(t0.Add(time.Minute), errors.New(`leases.coordination.k8s.io "ferry-agent-node-a" is forbidden`)); !log {
		t.Error("a Forbidden after the resets is not logged")
	}
}
