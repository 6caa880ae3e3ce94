package metrics

import (
	"maps"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestRequestsCountByPoolAndCode: the per-pool recorder, whose counters
// are resolved once, counts into the same series as a lookup per request
// would, for codes inside and outside its table, from many goroutines,
// and from a second recorder of the same pool (a pool re-created).
func TestRequestsCountByPoolAndCode(t *testing.T) {
	m := New()
	web, api := m.Requests("web"), m.Requests("api")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				web.RequestDone(200, time.Millisecond)
			}
			web.RequestDone(499, time.Second)
		})
	}
	wg.Wait()
	api.RequestDone(503, 0)
	api.RequestDone(999, 0) // not an HTTP status; still counted under its number
	api.RequestDone(42, 0)
	m.Requests("web").RequestDone(200, 0)

	counts, series := gather(t, m)
	for _, c := range []struct {
		pool, code string
		want       float64
	}{{"web", "200", 801}, {"web", "499", 8}, {"api", "503", 1}, {"api", "999", 1}, {"api", "42", 1}} {
		if got := counts[c.pool+"/"+c.code]; got != c.want {
			t.Errorf("ferry_requests_total{pool=%q,code=%q} = %v, want %v", c.pool, c.code, got, c.want)
		}
	}
	if n := series["ferry_request_duration_seconds"]; n != 2 {
		t.Errorf("ferry_request_duration_seconds has %d series, want 2 (one per pool)", n)
	}
	web.RequestReplayed()
	web.RequestReplayed()
	if got := replayed(t, m, "web"); got != 2 {
		t.Errorf("ferry_requests_replayed_total{pool=\"web\"} = %v, want 2", got)
	}
	if got := replayed(t, m, "api"); got != 0 {
		t.Errorf("ferry_requests_replayed_total{pool=\"api\"} = %v, want 0 (a series from the start)", got)
	}
	if n := series["ferry_requests_total"]; n != 5 {
		t.Errorf("ferry_requests_total has %d series, want 5: a code is a series only once it was used", n)
	}
}

// gather scrapes m: ferry_requests_total by "pool/code", and the number
// of series of every family.
func gather(t *testing.T, m *Metrics) (counts map[string]float64, series map[string]int) {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts, series = map[string]float64{}, map[string]int{}
	for _, f := range families {
		series[f.GetName()] = len(f.GetMetric())
		if f.GetName() != "ferry_requests_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			counts[label(mt, "pool")+"/"+label(mt, "code")] = mt.GetCounter().GetValue()
		}
	}
	return counts, series
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// replayed is ferry_requests_replayed_total of pool; -1 when it has no series.
func replayed(t *testing.T, m *Metrics, pool string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "ferry_requests_replayed_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "pool" && l.GetValue() == pool {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// record feeds every metric of a pool once: requests, spawns, restarts,
// exits, overruns, replays.
func record(m *Metrics, name string) {
	r := m.Requests(name)
	r.RequestDone(200, time.Millisecond)
	r.RequestDone(999, time.Millisecond) // a code outside the recorder's table
	r.RequestReplayed()
	m.SpawnStarted(name, pool.SpawnScale)
	m.SpawnSucceeded(name, time.Second)
	m.SpawnFailed(name, pool.SpawnRestart)
	m.RestartStarted(name, ferryv1.RestartRolling)
	m.RestartFinished(name, pool.OutcomeCompleted)
	m.WorkerExited(name, true)
	m.WorkerOverran(name)
}

// TestUntrackDeletesThePoolsSeries: once a pool stops (it was deleted),
// no series labelled with it is exported any more, of any metric; another
// pool's stay. A pool re-created under the name before the old one stops
// (a successor while it drains) keeps them, and is scraped, until it stops
// too.
func TestUntrackDeletesThePoolsSeries(t *testing.T) {
	m := New()
	status := func(name string, queue int32) func() pool.Status {
		return func() pool.Status {
			return pool.Status{Name: name, QueueLength: queue, Processes: []ferryv1.ProcessInfo{
				{PID: 1, Revision: "1", State: ferryv1.ProcessReady, MemoryBytes: 1 << 20}}}
		}
	}
	untrackGone := m.Track("ns/gone", status("ns/gone", 0))
	untrackKept := m.Track("ns/kept", status("ns/kept", 0))
	defer untrackKept()
	record(m, "ns/gone")
	record(m, "ns/kept")
	before := agenttest.PoolSeries(t, m.Registry, "ns/gone")
	for _, name := range []string{"ferry_requests_total", "ferry_request_duration_seconds", "ferry_requests_replayed_total",
		"ferry_spawn_duration_seconds", "ferry_spawns_total", "ferry_spawn_failures_total", "ferry_restarts_total",
		"ferry_restarts_finished_total", "ferry_worker_exits_total", "ferry_workers_overran_total",
		"ferry_queue_length", "ferry_processes", "ferry_process_memory_bytes", "ferry_scaling_error"} {
		if before[name] == 0 {
			t.Errorf("%s has no series of ns/gone before it stops: the test does not record it", name)
		}
	}

	untrackGone()
	if left := agenttest.PoolSeries(t, m.Registry, "ns/gone"); len(left) > 0 {
		t.Errorf("series of ns/gone left after it stopped: %v", left)
	}
	if kept := agenttest.PoolSeries(t, m.Registry, "ns/kept"); !maps.Equal(kept, before) {
		t.Errorf("series of ns/kept = %v, want them all, as ns/gone had: %v", kept, before)
	}
	untrackGone() // a second call does nothing

	// A successor under the name, tracked before the old pool stops.
	untrackOld := m.Track("ns/again", status("ns/again", 1))
	record(m, "ns/again")
	untrackNew := m.Track("ns/again", status("ns/again", 7))
	want := agenttest.PoolSeries(t, m.Registry, "ns/again")
	untrackOld()
	if got := agenttest.PoolSeries(t, m.Registry, "ns/again"); !maps.Equal(got, want) {
		t.Errorf("after the old pool stopped, its successor's series = %v, want %v", got, want)
	}
	if q := queueLength(t, m, "ns/again"); q != 7 {
		t.Errorf("ferry_queue_length{pool=\"ns/again\"} = %v, want 7: the successor's", q)
	}
	untrackNew()
	if left := agenttest.PoolSeries(t, m.Registry, "ns/again"); len(left) > 0 {
		t.Errorf("series of ns/again left after both stopped: %v", left)
	}
}

// TestCountersStartAtZero: a pool's counters are exported at 0 from its
// start, each label its known values, so that the first spawn failure or
// overrun moves a series that exists (rate, increase and alerts see it).
// Before, ferry_workers_overran_total was missing until the first overrun
// (the standalone walk), though the docs list it.
func TestCountersStartAtZero(t *testing.T) {
	m := New()
	defer m.Track("ns/new", func() pool.Status { return pool.Status{Name: "ns/new"} })()
	want := map[string]int{"ferry_spawns_total": 3, "ferry_spawn_failures_total": 3, "ferry_restarts_total": 2,
		"ferry_restarts_finished_total": 4, "ferry_worker_exits_total": 2, "ferry_workers_overran_total": 1,
		"ferry_requests_replayed_total": 1}
	got := agenttest.PoolSeries(t, m.Registry, "ns/new")
	for name, n := range want {
		if got[name] != n {
			t.Errorf("%s has %d series of a pool that just started, want %d at 0", name, got[name], n)
		}
	}
	if v := replayed(t, m, "ns/new"); v != 0 {
		t.Errorf("ferry_requests_replayed_total = %v, want 0", v)
	}
}

func queueLength(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			if f.GetName() == "ferry_queue_length" && label(s, "pool") == name {
				return s.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// TestRequestDoneAfterUntrack: a request still in flight when its pool
// stopped (a drain that timed out) ends after untrack deleted the pool's
// series: its count goes nowhere, and creates no series again (found by
// review).
func TestRequestDoneAfterUntrack(t *testing.T) {
	m := New()
	untrack := m.Track("ns/gone", func() pool.Status { return pool.Status{Name: "ns/gone"} })
	r := m.Requests("ns/gone")
	r.RequestDone(200, time.Millisecond)
	untrack()
	r.RequestDone(502, time.Millisecond) // a code not seen before
	r.RequestDone(200, time.Millisecond) // one seen before
	r.RequestDone(999, time.Millisecond) // one never cached
	if left := agenttest.PoolSeries(t, m.Registry, "ns/gone"); len(left) > 0 {
		t.Errorf("series of a stopped pool exported after a late RequestDone: %v", left)
	}
	// Tracked again under its name: counted again.
	m.Track("ns/gone", func() pool.Status { return pool.Status{Name: "ns/gone"} })
	m.Requests("ns/gone").RequestDone(502, time.Millisecond)
	if left := agenttest.PoolSeries(t, m.Registry, "ns/gone"); left["ferry_requests_total"] != 1 {
		t.Errorf("a pool tracked again under the name: series %v, want its request counted", left)
	}
}
