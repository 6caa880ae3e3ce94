package cluster

import (
	"encoding/json"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

func TestDesiredStatus(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	earlier := metav1.Time{Time: now.Add(-time.Hour)}
	pp := &ferryv1.ProcessPool{Spec: ferryv1.ProcessPoolSpec{Revision: "2"}}
	pp.Generation = 7
	s := pool.Status{Revision: "2", MinProcesses: 1, Counts: ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 2},
		Processes: []ferryv1.ProcessInfo{{PID: 1, Revision: "2", State: ferryv1.ProcessReady}, {PID: 2, Revision: "2", State: ferryv1.ProcessReady}}}
	current := ferryv1.ProcessPoolStatus{Conditions: []metav1.Condition{{Type: ferryv1.ConditionReady,
		Status: metav1.ConditionTrue, Reason: ferryv1.ReasonProcessesReady, LastTransitionTime: earlier}}}

	got := desiredStatus(current, pp.Generation, s, "10.0.0.1", listening{port: 8080}, now)
	if got.ObservedRevision != "2" || got.ReadyProcesses != "2/2" || got.Address != "10.0.0.1:8080" ||
		got.ObservedGeneration != 7 || got.HeartbeatTime.Time != now || len(got.Conditions) != 4 {
		t.Fatalf("status = %+v", got)
	}
	if c := meta.FindStatusCondition(got.Conditions, ferryv1.ConditionReady); !c.LastTransitionTime.Equal(&earlier) ||
		c.ObservedGeneration != 7 {
		t.Errorf("Ready kept its transition time? %+v", c)
	}
	if got.LastedRevision != "" {
		t.Errorf("lastedRevision %q before a process lasted, want none", got.LastedRevision)
	}

	// Once a process of it lasted: said at once, as a change of state.
	s.RevisionLasted = true
	lasted := desiredStatus(got, pp.Generation, s, "10.0.0.1", listening{port: 8080}, now)
	if lasted.LastedRevision != "2" || !stateChanged(got, lasted) {
		t.Errorf("lastedRevision %q (a change of state: %t), want 2, written at once", lasted.LastedRevision, stateChanged(got, lasted))
	}

	// A second young death within the second of the first: the same
	// lastSpawnError as stored (whole seconds), the count says it is
	// another, at once (restart --wait reads it).
	s.LastSpawnError = &ferryv1.SpawnError{Revision: "2", Reason: "exited with status 3 0.2s after it was ready", Time: metav1.NewTime(now)}
	s.SpawnFailures = 1
	once := desiredStatus(lasted, pp.Generation, s, "10.0.0.1", listening{port: 8080}, now)
	s.SpawnFailures = 2
	twice := desiredStatus(once, pp.Generation, s, "10.0.0.1", listening{port: 8080}, now)
	if once.SpawnFailures != 1 || twice.SpawnFailures != 2 || !stateChanged(once, twice) {
		t.Errorf("spawnFailures %d then %d (a change of state: %t), want 1 then 2, written at once",
			once.SpawnFailures, twice.SpawnFailures, stateChanged(once, twice))
	}
}

// TestDesiredStatusListening: the address is where the proxy serves, and
// Ready says why the spec's port is not served, and whether the old one
// still is.
func TestDesiredStatusListening(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	pp := &ferryv1.ProcessPool{Spec: ferryv1.ProcessPoolSpec{Revision: "2"}}
	s := pool.Status{Revision: "2", MinProcesses: 1, Counts: ferryv1.ProcessCounts{Ready: 1, Updated: 1, Total: 1},
		Processes: []ferryv1.ProcessInfo{{PID: 1, Revision: "2", State: ferryv1.ProcessReady}}}
	current := ferryv1.ProcessPoolStatus{Conditions: []metav1.Condition{{Type: ferryv1.ConditionReady,
		Status: metav1.ConditionTrue, Reason: ferryv1.ReasonProcessesReady, LastTransitionTime: metav1.Time{Time: now.Add(-time.Hour)}}}}
	taken := listenError(9090, syscall.EADDRINUSE)
	denied := listenError(80, syscall.EACCES)
	metricsUse := "metrics endpoint (--metrics-bind-address)"
	tests := []struct {
		name    string
		host    string
		l       listening
		address string
		ready   metav1.ConditionStatus
		reason  string
		message string // the whole message, when Ready is False
	}{
		{"serving on the spec's port", "10.0.0.1", listening{port: 8080}, "10.0.0.1:8080",
			metav1.ConditionTrue, ferryv1.ReasonProcessesReady, ""},
		{"an IPv6 host", "fd00::1", listening{port: 8080}, "[fd00::1]:8080",
			metav1.ConditionTrue, ferryv1.ReasonProcessesReady, ""},
		{"the port taken, nothing served: the spec's port", "127.0.0.3", listening{port: 9090, err: taken}, "127.0.0.3:9090",
			metav1.ConditionFalse, ferryv1.ReasonListenFailed,
			"the proxy cannot listen: listen tcp 127.0.0.3:9090: bind: address already in use; " +
				"another process on the node holds port 9090: free it, or choose another listen.port"},
		{"the agent's own port", "127.0.0.3", listening{port: 9090, err: taken, agentUse: metricsUse}, "127.0.0.3:9090",
			metav1.ConditionFalse, ferryv1.ReasonListenFailed,
			"the proxy cannot listen: listen tcp 127.0.0.3:9090: bind: address already in use; " +
				"port 9090 is this agent's own metrics endpoint (--metrics-bind-address): choose another listen.port"},
		{"a port the agent may not bind: no word of another process", "127.0.0.3", listening{port: 80, err: denied}, "127.0.0.3:80",
			metav1.ConditionFalse, ferryv1.ReasonListenFailed,
			"the proxy cannot listen: listen tcp 127.0.0.3:80: bind: permission denied"},
		{"moved onto a taken port: the old port, which serves", "127.0.0.3", listening{port: 9090, err: taken, old: 8080},
			"127.0.0.3:8080", metav1.ConditionFalse, ferryv1.ReasonListenFailed,
			"the proxy cannot listen on port 9090 (listen tcp 127.0.0.3:9090: bind: address already in use; " +
				"another process on the node holds port 9090: free it, or choose another listen.port); " +
				"it still serves on the old port 8080 until 9090 is free"},
		{"held by this agent's own pool: named, not another process", "127.0.0.3",
			listening{port: 9090, err: taken, held: true, holder: portUse{pool: "default/hello", how: heldDeleted, drainDelay: 5 * time.Second}},
			"127.0.0.3:9090", metav1.ConditionFalse, ferryv1.ReasonListenFailed,
			"the proxy cannot listen: listen tcp 127.0.0.3:9090: bind: address already in use; " +
				"port 9090 is still held by this agent's pool default/hello, deleted, which serves on there for the drain delay " +
				"(--drain-delay, agent.drainDelay in the chart: 5s) before it drains: this pool listens there as soon as it is released; nothing to do"},
		{"moved onto a port this agent's pool holds: the old port serves", "127.0.0.3",
			listening{port: 9090, err: taken, old: 8080, held: true, holder: portUse{pool: "default/other", how: heldMovedFrom, drainDelay: 5 * time.Second}},
			"127.0.0.3:8080", metav1.ConditionFalse, ferryv1.ReasonListenFailed,
			"the proxy cannot listen on port 9090 (listen tcp 127.0.0.3:9090: bind: address already in use; " +
				"port 9090 is still held by this agent's pool default/other, which moved off it and serves on there for the drain delay " +
				"(--drain-delay, agent.drainDelay in the chart: 5s): this pool listens there as soon as it is released; nothing to do); " +
				"it still serves on the old port 8080 until 9090 is free"},
		{"an old port without a failure is no longer served", "127.0.0.3", listening{port: 9090, old: 8080}, "127.0.0.3:9090",
			metav1.ConditionTrue, ferryv1.ReasonProcessesReady, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := desiredStatus(current, pp.Generation, s, tt.host, tt.l, now)
			if got.Address != tt.address {
				t.Errorf("address = %q, want %q", got.Address, tt.address)
			}
			if got.ListenPort != tt.l.port {
				t.Errorf("listenPort = %d, want the spec's %d", got.ListenPort, tt.l.port)
			}
			c := meta.FindStatusCondition(got.Conditions, ferryv1.ConditionReady)
			if c.Status != tt.ready || c.Reason != tt.reason || (tt.ready == metav1.ConditionFalse && c.Message != tt.message) {
				t.Errorf("Ready = %s %s %q, want %s %s %q", c.Status, c.Reason, c.Message, tt.ready, tt.reason, tt.message)
			}
			if tt.ready == metav1.ConditionFalse && c.LastTransitionTime.Time != now {
				t.Errorf("Ready's transition time kept although it turned False: %v", c.LastTransitionTime)
			}
		})
	}
}

// TestPortUseAdvice: a port one of the agent's own pools holds is named
// with that pool and how it holds it: whether it is released by itself
// (nothing to do) or not (choose another listen.port).
func TestPortUseAdvice(t *testing.T) {
	const delay = "for the drain delay (--drain-delay, agent.drainDelay in the chart: 5s)"
	const waits = "this pool listens there as soon as it is released; nothing to do"
	tests := []struct {
		name string
		use  portUse
		want string
	}{
		{"a deleted pool in its drain delay", portUse{pool: "default/hello", how: heldDeleted},
			"port 9000 is still held by this agent's pool default/hello, deleted, which serves on there " + delay + " before it drains: " + waits},
		{"an earlier pool of the same name, deleted", portUse{pool: "default/hello", sameName: true, how: heldDeleted},
			"port 9000 is still held by this agent's earlier pool of this name, default/hello, deleted, which serves on there " + delay +
				" before it drains: " + waits},
		{"a port another pool moved off", portUse{pool: "default/other", how: heldMovedFrom},
			"port 9000 is still held by this agent's pool default/other, which moved off it and serves on there " + delay + ": " + waits},
		{"the old port of a pool whose new one is taken", portUse{pool: "default/other", how: heldOldPort, newPort: 9001},
			"port 9000 is still served by this agent's pool default/other, whose new listen.port 9001 is taken: " +
				"it serves on 9000 until 9001 is free; choose another listen.port"},
		{"another pool's listen.port", portUse{pool: "default/other", how: heldServing},
			"port 9000 is the listen.port of this agent's pool default/other: two pools on a node cannot share a port; choose another listen.port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.use.drainDelay = 5 * time.Second
			if got := tt.use.advice(9000); got != tt.want {
				t.Errorf("advice =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// listenError is the error net.Listen gives for 127.0.0.3:port when the
// bind fails with errno.
func listenError(port int, errno syscall.Errno) error {
	return &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3), Port: port},
		Err: os.NewSyscallError("bind", errno)}
}

func TestStateChangedIgnoresStats(t *testing.T) {
	now := time.Now()
	base := ferryv1.ProcessPoolStatus{ObservedRevision: "1", Processes: []ferryv1.ProcessInfo{{PID: 1, Revision: "1",
		State: ferryv1.ProcessReady}}, HeartbeatTime: &metav1.Time{Time: now}}
	stats := *base.DeepCopy()
	stats.HeartbeatTime = &metav1.Time{Time: now.Add(time.Second)}
	stats.QueueLength = 4
	stats.Processes[0].Processed, stats.Processes[0].Sessions, stats.Processes[0].MemoryBytes, stats.Processes[0].CPUPercent = 10, 1, 1<<20, 5
	if stateChanged(base, stats) {
		t.Error("moving figures counted as a change of state")
	}
	state := *base.DeepCopy()
	state.Processes[0].State = ferryv1.ProcessDraining
	if !stateChanged(base, state) {
		t.Error("a process changing state was not a change of state")
	}
	rev := *base.DeepCopy()
	rev.ObservedRevision = "2"
	if !stateChanged(base, rev) {
		t.Error("a new observed revision was not a change of state")
	}
}

func TestWriteDue(t *testing.T) {
	now := time.Now()
	const stats, report = 30 * time.Second, 5 * time.Minute
	last := ferryv1.ProcessPoolStatus{ObservedRevision: "1", Processes: []ferryv1.ProcessInfo{{PID: 1, Revision: "1",
		State: ferryv1.ProcessReady, Processed: 3}}, HeartbeatTime: &metav1.Time{Time: now}}
	same := *last.DeepCopy()
	same.HeartbeatTime = &metav1.Time{Time: now.Add(time.Minute)}
	figures := *same.DeepCopy()
	figures.Processes[0].Processed = 4
	state := *same.DeepCopy()
	state.Processes[0].State = ferryv1.ProcessDraining
	tests := []struct {
		name       string
		written    bool
		desired    ferryv1.ProcessPoolStatus
		sinceWrite time.Duration
		want       bool
	}{
		{"the first report", false, same, 0, true},
		{"a change of state, at once", true, state, time.Second, true},
		{"figures moved, before the stats interval", true, figures, 10 * time.Second, false},
		{"figures moved, at the stats interval", true, figures, stats, true},
		{"nothing moved, at the stats interval", true, same, stats, false},
		{"nothing moved, long after", true, same, report - time.Second, false},
		{"nothing moved, at the report interval", true, same, report, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := writeDue(tt.written, last, tt.desired, tt.sinceWrite, stats, report); got != tt.want {
				t.Errorf("writeDue = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestUnchangedStatusAfterRoundTrip: the next status of a pool in which
// nothing moved, computed on top of what the API stored (condition times in
// whole seconds), is not a write at the stats interval. (It was: every
// condition's transition time lost its nanoseconds on the way, and each
// pool's unchanged status was written again 30s after every change.)
func TestUnchangedStatusAfterRoundTrip(t *testing.T) {
	const stats, report = 30 * time.Second, 5 * time.Minute
	now := time.Date(2026, 11, 22, 12, 0, 0, 123456789, time.UTC)
	pp := &ferryv1.ProcessPool{Spec: ferryv1.ProcessPoolSpec{Revision: "2"}}
	s := pool.Status{Revision: "2", MinProcesses: 1, Counts: ferryv1.ProcessCounts{Ready: 1, Updated: 1, Total: 1},
		Processes: []ferryv1.ProcessInfo{{PID: 1, Revision: "2", State: ferryv1.ProcessReady}}}

	written := desiredStatus(ferryv1.ProcessPoolStatus{}, pp.Generation, s, "10.0.0.1", listening{port: 8080}, now)
	data, err := json.Marshal(written)
	if err != nil {
		t.Fatal(err)
	}
	var stored ferryv1.ProcessPoolStatus
	if err := json.Unmarshal(data, &stored); err != nil {
		t.Fatal(err)
	}
	next := desiredStatus(stored, pp.Generation, s, "10.0.0.1", listening{port: 8080}, now.Add(stats))
	if writeDue(true, written, next, stats, stats, report) {
		t.Errorf("an unchanged status is written again at the stats interval: %+v, then %+v", written.Conditions, next.Conditions)
	}
}

// TestPatchBaseAfterStaleCache: a status write diffed against a cache that
// has not seen the previous write yet still clears what that write set.
func TestPatchBaseAfterStaleCache(t *testing.T) {
	cached := &ferryv1.ProcessPool{}
	cached.ResourceVersion = "7"
	cached.Status = ferryv1.ProcessPoolStatus{ObservedRevision: "1",
		ProcessCounts: ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 2}}
	// Written, not yet in the cache: one process of two replaced.
	rolling := ferryv1.ProcessPoolStatus{ObservedRevision: "2", ProcessCounts: ferryv1.ProcessCounts{Ready: 2, Updated: 1, Total: 2},
		RestartProgress: &ferryv1.RestartProgress{Revision: "2", Done: 1, Total: 2}}
	// Now: both replaced, the restart over.
	done := ferryv1.ProcessPoolStatus{ObservedRevision: "2", ProcessCounts: ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 2}}

	tests := []struct {
		name   string
		stored bool
		want   []string // substrings the patch must carry
		absent []string
	}{
		{"diffed against what the reporter stored", true, []string{`"restartProgress":null`, `"updated":2`}, nil},
		{"nothing stored yet: against the cache", false, []string{`"observedRevision":"2"`}, []string{`restartProgress`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := patchBase(cached, rolling, tt.stored)
			if base.ResourceVersion != "7" {
				t.Errorf("base resourceVersion = %q, want the cache's", base.ResourceVersion)
			}
			obj := base.DeepCopy()
			obj.Status = done
			data, err := client.MergeFrom(base).Data(obj)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.want {
				if !strings.Contains(string(data), s) {
					t.Errorf("patch %s lacks %s", data, s)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(string(data), s) {
					t.Errorf("patch %s carries %s", data, s)
				}
			}
		})
	}
	if cached.Status.RestartProgress != nil || cached.Status.ProcessCounts.Updated != 2 {
		t.Errorf("patchBase changed the cached object: %+v", cached.Status)
	}
}

func TestNextWake(t *testing.T) {
	const stats = 30 * time.Second
	tests := []struct {
		name                             string
		sinceWrite, backoff, untilListen time.Duration
		want                             time.Duration
	}{
		{"just written: one stats interval", 0, 0, never, stats},
		{"figures due in 10s", 20 * time.Second, 0, never, 10 * time.Second},
		{"due and unchanged: one interval from now, not a spin", 45 * time.Second, 0, never, stats},
		{"due in a hair: no sooner than the coalescing delay", stats - time.Millisecond, 0, never, coalesce},
		{"failed write: the backoff", 10 * time.Second, 2 * time.Second, never, 2 * time.Second},
		{"a backoff shorter than coalescing", 0, time.Millisecond, never, coalesce},
		{"a taken port due before the figures", 0, 0, 5 * time.Second, 5 * time.Second},
		{"a taken port due after the figures", 28 * time.Second, 0, 5 * time.Second, 2 * time.Second},
		{"a taken port due before the backoff ends", 0, 10 * time.Second, 5 * time.Second, 5 * time.Second},
		{"a taken port overdue: no sooner than the coalescing delay", 0, 0, -time.Second, coalesce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextWake(tt.sinceWrite, stats, tt.backoff, tt.untilListen); got != tt.want {
				t.Errorf("nextWake(%v, %v, %v, %v) = %v, want %v", tt.sinceWrite, stats, tt.backoff, tt.untilListen, got, tt.want)
			}
		})
	}
}
