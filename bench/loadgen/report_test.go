package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// ms and sec build durations rounded to the microsecond, so that values
// written as decimal fractions compare exactly.
func ms(v float64) time.Duration { return time.Duration(math.Round(v*1e3)) * time.Microsecond }

func sec(v float64) time.Duration { return time.Duration(math.Round(v*1e6)) * time.Microsecond }

// ok builds a successful record from start and end in seconds.
func ok(pid int, start, end float64) Record {
	return Record{Start: sec(start), End: sec(end), Status: 200, PID: pid}
}

// failed builds a failed record of the given kind.
func failed(kind string, start, end float64) Record {
	return Record{Start: sec(start), End: sec(end), Kind: kind, Err: "boom"}
}

func TestPercentileNearestRank(t *testing.T) {
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i + 1)
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value p50", []time.Duration{7}, 50, 7},
		{"one value p99", []time.Duration{7}, 99, 7},
		{"ten p50 is rank 5", ten, 50, 5},
		{"ten p90 is rank 9", ten, 90, 9},
		{"ten p99 is rank 10", ten, 99, 10},
		{"ten p100 is max", ten, 100, 10},
		{"ten p1 is rank 1", ten, 1, 1},
		{"ten p51 rounds up to rank 6", ten, 51, 6},
		{"hundred p99 is rank 99", hundred, 99, 99},
		{"hundred p50 is rank 50", hundred, 50, 50},
		{"hundred p99.5 rounds up to 100", hundred, 99.5, 100},
		{"four p50 is rank 2", []time.Duration{10, 20, 30, 40}, 50, 20},
		{"three p50 is rank 2", []time.Duration{10, 20, 30}, 50, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestLongestGap(t *testing.T) {
	tests := []struct {
		name     string
		ends     []time.Duration
		from, to time.Duration
		want     Gap
	}{
		{"no completion: whole interval", nil, 0, sec(5), Gap{sec(5), 0, sec(5)}},
		{"leading boundary counts", []time.Duration{sec(3), sec(4)}, 0, sec(5), Gap{sec(3), 0, sec(3)}},
		{"trailing boundary counts", []time.Duration{sec(1), sec(2)}, 0, sec(5), Gap{sec(3), sec(2), sec(5)}},
		{"inner gap", []time.Duration{sec(1), sec(1.5), sec(4), sec(4.5)}, sec(1), sec(5), Gap{sec(2.5), sec(1.5), sec(4)}},
		{"first of equal gaps", []time.Duration{sec(1), sec(2), sec(3)}, 0, sec(4), Gap{sec(1), 0, sec(1)}},
		{"completions outside are ignored", []time.Duration{sec(1), sec(9)}, sec(2), sec(4), Gap{sec(2), sec(2), sec(4)}},
		{"completion on the boundary", []time.Duration{sec(2), sec(3), sec(4)}, sec(2), sec(4), Gap{sec(1), sec(2), sec(3)}},
		{"empty interval", []time.Duration{sec(1)}, sec(3), sec(3), Gap{0, sec(3), sec(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LongestGap(tt.ends, tt.from, tt.to); got != tt.want {
				t.Errorf("LongestGap = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestReportRestart pins the restart definitions of the peer baseline on
// hand-built runs: T is the trigger start, D the restart-done time, W the
// window end.
func TestReportRestart(t *testing.T) {
	tests := []struct {
		name       string
		recs       []Record
		end        float64 // run end, s
		t0, trigEn float64 // trigger start and exit, s

		wantOld, wantNew   []int
		wantDone           bool
		wantDuration       time.Duration
		wantW              time.Duration
		wantCapped         bool
		wantAfter          []int
		wantReplaced       int
		wantSteadyOK       int
		wantWindowOK       int
		wantWindowFailed   int
		wantWindowGap      Gap
		wantLastNew        time.Duration
		wantLastOld        time.Duration
		wantSteadyFailures int
	}{
		{
			// Spawn-first rolling restart: 1 is replaced by 3, then 2 by 4.
			// D = max(first of last new pid 11 s, last old 10 s) = 11 s.
			name: "rolling restart",
			recs: []Record{
				ok(1, 7.0, 7.5), ok(2, 7.5, 7.9),
				failed(KindRefused, 7.95, 7.99), // failed, before T
				ok(1, 7.9, 8.0),                 // ends exactly at T: in the window, not steady
				ok(1, 8.5, 9.0),
				ok(3, 9.4, 9.5), // first new pid
				ok(2, 9.9, 10.0),
				failed(KindStatus5xx, 10.0, 10.2), // in the window
				ok(4, 10.5, 11.0),                 // first response of the last new pid
				ok(3, 13.0, 13.5),                 // starts exactly at W: in the window
				ok(4, 13.001, 13.2),               // starts after W: not in the window
				ok(3, 20, 20.1),
			},
			end: 25, t0: 8, trigEn: 8.2,
			wantOld: []int{1, 2}, wantNew: []int{3, 4},
			wantDone: true, wantDuration: sec(3), wantW: sec(13),
			wantAfter: []int{3, 4}, wantReplaced: 2,
			wantSteadyOK: 2, wantSteadyFailures: 1,
			wantWindowOK: 6, wantWindowFailed: 1,
			wantWindowGap: Gap{sec(2), sec(11), sec(13)},
			wantLastNew:   sec(11), wantLastOld: sec(10),
		},
		{
			// gunicorn USR2: the old pid keeps serving after the new one is
			// up, so D is the old pid's last response.
			name: "old pid outlives the new",
			recs: []Record{
				ok(1, 7, 7.5), ok(2, 9, 10), ok(1, 11.9, 12), ok(2, 15, 16.5),
			},
			end: 25, t0: 8, trigEn: 8.1,
			wantOld: []int{1}, wantNew: []int{2},
			wantDone: true, wantDuration: sec(4), wantW: sec(14),
			wantAfter: []int{2}, wantReplaced: 1,
			wantSteadyOK: 1, wantWindowOK: 2,
			wantWindowGap: Gap{sec(2), sec(8), sec(10)},
			wantLastNew:   sec(10), wantLastOld: sec(12),
		},
		{
			// Nothing restarted (e.g. the restart command failed): W is
			// trigger exit + 5 s and the old pid is not replaced.
			name: "no new pid",
			recs: []Record{
				ok(1, 7, 7.5), ok(1, 9, 9.1), ok(1, 20, 20.1),
			},
			end: 25, t0: 8, trigEn: 8.2,
			wantOld: []int{1}, wantNew: []int{},
			wantDone: false, wantDuration: 0, wantW: sec(13.2),
			wantAfter: []int{1}, wantReplaced: 0,
			wantSteadyOK: 1, wantWindowOK: 1,
			wantWindowGap: Gap{sec(4.1), sec(9.1), sec(13.2)},
			wantLastOld:   sec(20.1),
		},
		{
			// W = 11 + 2 s lies beyond the end of the run: capped at 12 s,
			// and since nothing answers after W, every old pid counts as
			// replaced.
			name: "window capped",
			recs: []Record{
				ok(1, 7, 7.5), ok(2, 10.9, 11), ok(2, 11.5, 11.9),
			},
			end: 12, t0: 8, trigEn: 8.1,
			wantOld: []int{1}, wantNew: []int{2},
			wantDone: true, wantDuration: sec(3), wantW: sec(12), wantCapped: true,
			wantAfter: []int{}, wantReplaced: 1,
			wantSteadyOK: 1, wantWindowOK: 2,
			wantWindowGap: Gap{sec(3), sec(8), sec(11)},
			wantLastNew:   sec(11), wantLastOld: sec(7.5),
		},
		{
			// Failed responses and unknown pids do not make a pid old or
			// new, and a request spanning T from an old pid is old.
			name: "only successful responses attribute pids",
			recs: []Record{
				ok(1, 7, 7.5),
				{Start: sec(7.6), End: sec(7.7), Status: 503, Kind: KindStatus5xx, PID: 9},
				ok(0, 7.8, 7.9),
				ok(1, 7.9, 8.3),
				ok(2, 8.5, 8.6),
			},
			end: 25, t0: 8, trigEn: 8.1,
			wantOld: []int{1}, wantNew: []int{2},
			wantDone: true, wantDuration: sec(0.6), wantW: sec(10.6),
			wantAfter: []int{}, wantReplaced: 1,
			wantSteadyOK: 2, wantSteadyFailures: 1, wantWindowOK: 2,
			wantWindowGap: Gap{sec(10.6 - 8.6), sec(8.6), sec(10.6)},
			wantLastNew:   sec(8.6), wantLastOld: sec(8.3),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &Result{
				Records: tt.recs, End: sec(tt.end),
				Triggered: true, TriggerStart: sec(tt.t0), TriggerEnd: sec(tt.trigEn),
			}
			rep := res.Report()
			rs := rep.Restart
			if rs == nil {
				t.Fatal("Restart is nil")
			}
			check := func(what string, got, want any) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %v, want %v", what, got, want)
				}
			}
			check("OldPIDs", rs.OldPIDs, tt.wantOld)
			check("NewPIDs", rs.NewPIDs, tt.wantNew)
			check("Done", rs.Done, tt.wantDone)
			check("Duration", rs.Duration, tt.wantDuration)
			check("WindowEnd", rs.WindowEnd, tt.wantW)
			check("WindowCapped", rs.WindowCapped, tt.wantCapped)
			check("PIDsAfterWindow", rs.PIDsAfterWindow, tt.wantAfter)
			check("PIDsReplaced", rs.PIDsReplaced, tt.wantReplaced)
			check("Steady.OK", rep.Steady.OK, tt.wantSteadyOK)
			check("Steady.Failed", rep.Steady.Failed, tt.wantSteadyFailures)
			check("Window.OK", rs.Window.OK, tt.wantWindowOK)
			check("Window.Failed", rs.Window.Failed, tt.wantWindowFailed)
			check("WindowGap", rs.WindowGap, tt.wantWindowGap)
			check("LastNewPIDFirst", rs.LastNewPIDFirst, tt.wantLastNew)
			check("LastOldPIDLast", rs.LastOldPIDLast, tt.wantLastOld)
		})
	}
}

func TestReportLatencyWindows(t *testing.T) {
	// Steady: requests completed before T=10 s, latencies 10..19 ms.
	var recs []Record
	for i := range 10 {
		s := float64(i) * 0.5
		recs = append(recs, Record{Start: sec(s), End: sec(s) + ms(float64(10+i)), Status: 200, PID: 1})
	}
	// A failed request with the largest latency of all: it counts for the
	// max latency only.
	recs = append(recs, Record{Start: sec(6), End: sec(9), Kind: KindTimeout, Err: "timeout"})
	// In the window: one in flight across T (started before it) and a slow
	// one, both successful.
	recs = append(recs,
		Record{Start: sec(9.99), End: sec(10.05), Status: 200, PID: 1},
		Record{Start: sec(10.1), End: sec(12.1), Status: 200, PID: 2},
	)
	res := &Result{Records: recs, End: sec(20), Triggered: true, TriggerStart: sec(10), TriggerEnd: sec(10.01)}
	rep := res.Report()

	want := Window{OK: 10, Failed: 1, P50: ms(14), P90: ms(18), P99: ms(19), Max: ms(19)}
	if rep.Steady != want {
		t.Errorf("Steady = %+v, want %+v", rep.Steady, want)
	}
	wantW := Window{OK: 2, P50: ms(60), P90: sec(2), P99: sec(2), Max: sec(2)}
	if rep.Restart.Window != wantW {
		t.Errorf("restart Window = %+v, want %+v", rep.Restart.Window, wantW)
	}
	if rep.MaxLatency != sec(3) {
		t.Errorf("MaxLatency = %v, want 3s (the failed request)", rep.MaxLatency)
	}
	if rep.Requests != 13 || rep.OK != 12 || rep.Failed != 1 || rep.FailedByKind[KindTimeout] != 1 {
		t.Errorf("counts = %d/%d/%d %v", rep.Requests, rep.OK, rep.Failed, rep.FailedByKind)
	}
	// Whole-run gap: from the last completion (12.1 s) to the end (20 s).
	if want := (Gap{sec(20) - sec(12.1), sec(12.1), sec(20)}); rep.LongestGap != want {
		t.Errorf("LongestGap = %+v, want %+v", rep.LongestGap, want)
	}
	if rep.RPS != 13.0/20 {
		t.Errorf("RPS = %v, want %v", rep.RPS, 13.0/20)
	}
}

func TestReportNoTrigger(t *testing.T) {
	recs := []Record{
		{Client: 0, Start: 0, End: ms(10), Status: 200, PID: 2, NewConn: true},
		{Client: 1, Start: 0, End: ms(20), Status: 200, PID: 1, NewConn: true},
		{Client: 0, Start: ms(10), End: ms(1500), Status: 200, PID: 2, Retried: true, NewConn: true},
		{Client: 1, Start: ms(20), End: ms(1600), Status: 404, Kind: KindStatus4xx, PID: 1},
		{Client: 1, Start: ms(1610), End: ms(1700), Err: "EOF", Kind: KindEOF},
		{Client: 0, Start: ms(1500), End: ms(2500), Status: 200, PID: 1},
	}
	res := &Result{
		Config:  Config{Clients: 2, URLs: []string{"u"}, TriggerAt: sec(30), Trigger: func(context.Context) error { return nil }},
		Records: recs, End: ms(2600),
	}
	rep := res.Report()
	if rep.Restart != nil {
		t.Fatalf("Restart = %+v, want nil", rep.Restart)
	}
	if !rep.TriggerSkipped {
		t.Error("TriggerSkipped = false, want true: a trigger was configured but did not run")
	}
	if want := (Window{OK: 4, Failed: 2, P50: ms(20), P90: ms(1490), P99: ms(1490), Max: ms(1490)}); rep.Steady != want {
		t.Errorf("Steady = %+v, want %+v", rep.Steady, want)
	}
	if !reflect.DeepEqual(rep.PIDs, []int{1, 2}) {
		t.Errorf("PIDs = %v, want [1 2]", rep.PIDs)
	}
	if rep.NewConns != 3 || rep.NewConnsPerRequest != 0.5 || rep.TransportRetries != 1 {
		t.Errorf("NewConns %d (%v per request), retries %d; want 3 (0.5), 1", rep.NewConns, rep.NewConnsPerRequest, rep.TransportRetries)
	}
	if rep.FirstFailure[KindStatus4xx] != "status 404" || rep.FirstFailure[KindEOF] != "EOF" {
		t.Errorf("FirstFailure = %v", rep.FirstFailure)
	}
	// Gap: successes end at 10, 20, 1500 and 2500 ms; run end 2600 ms.
	if want := (Gap{ms(1480), ms(20), ms(1500)}); rep.LongestGap != want {
		t.Errorf("LongestGap = %+v, want %+v", rep.LongestGap, want)
	}
	wantSeries := []Bucket{
		{Second: 0, OK: 2, P50: ms(10), Max: ms(20)},
		{Second: 1, OK: 1, Failed: 2, P50: ms(1490), Max: ms(1580)},
		{Second: 2, OK: 1, P50: ms(1000), Max: ms(1000)},
	}
	if !reflect.DeepEqual(rep.Series, wantSeries) {
		t.Errorf("Series = %+v, want %+v", rep.Series, wantSeries)
	}
	s := rep.String()
	for _, want := range []string{"requests 6", "failed 2", "status-4xx", "trigger did not run", "steady"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
}

func TestReportEmpty(t *testing.T) {
	rep := (&Result{End: sec(1.5), Triggered: true, TriggerStart: sec(0.5), TriggerEnd: sec(0.6), TriggerErr: errors.New("exit status 1")}).Report()
	if rep.Requests != 0 || rep.LongestGap != (Gap{sec(1.5), 0, sec(1.5)}) {
		t.Errorf("empty run: requests %d, gap %+v", rep.Requests, rep.LongestGap)
	}
	rs := rep.Restart
	if rs.Done || rs.WindowEnd != sec(1.5) || !rs.WindowCapped || rs.TriggerErr != "exit status 1" {
		t.Errorf("empty run restart = %+v", rs)
	}
	if len(rep.Series) != 2 {
		t.Errorf("Series has %d buckets, want 2", len(rep.Series))
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
	if s := rep.String(); !strings.Contains(s, "n/a: no new pid") || !strings.Contains(s, "exit status 1") {
		t.Errorf("String():\n%s", s)
	}
}

func TestReportJSON(t *testing.T) {
	res := &Result{
		Records:   []Record{ok(1, 0, 0.01), ok(2, 0.5, 0.6)},
		End:       sec(1),
		Triggered: true, TriggerStart: sec(0.2), TriggerEnd: sec(0.3),
	}
	data, err := json.Marshal(res.Report())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"requests", "rps", "max_latency_ns", "longest_gap", "steady", "restart", "series", "new_conns_per_request", "transport_retries"} {
		if _, found := m[key]; !found {
			t.Errorf("JSON lacks %q: %s", key, data)
		}
	}
	rs := m["restart"].(map[string]any)
	for _, key := range []string{"old_pids", "new_pids", "duration_ns", "window_end_ns", "window", "window_gap", "pids_replaced"} {
		if _, found := rs[key]; !found {
			t.Errorf("restart JSON lacks %q: %s", key, data)
		}
	}
}
