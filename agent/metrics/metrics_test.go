package metrics

import (
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
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
