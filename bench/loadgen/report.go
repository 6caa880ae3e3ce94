package loadgen

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Restart-window tails, from the peer baseline's definition of W.
const (
	// WindowTail is added to the restart-done time to get W.
	WindowTail = 2 * time.Second
	// WindowNoNewPID is added to the trigger exit to get W when no new PID
	// appeared.
	WindowNoNewPID = 5 * time.Second
)

// Report holds every figure the peer baseline defines for a run (see the
// package documentation for the exact definitions). Durations are
// time.Duration in Go and integer nanoseconds in JSON (fields ending in _ns);
// time points are offsets from the start of the run.
type Report struct {
	// Clients and URLs echo the configuration.
	Clients int      `json:"clients"`
	URLs    []string `json:"urls,omitempty"`
	// Elapsed is the length of the run, from its start to when the last client
	// stopped.
	Elapsed time.Duration `json:"elapsed_ns"`

	// Requests counts completed requests, OK + Failed.
	Requests int `json:"requests"`
	OK       int `json:"ok"`
	Failed   int `json:"failed"`
	// FailedByKind counts failed requests by Record.Kind.
	FailedByKind map[string]int `json:"failed_by_kind,omitempty"`
	// FirstFailure holds, per kind, the error text (or "status N") of the
	// first failed request of that kind, for diagnosis.
	FirstFailure map[string]string `json:"first_failure,omitempty"`
	// Aborted counts requests cut off by the caller's cancellation; they are
	// in no other figure.
	Aborted int `json:"aborted"`
	// RPS is Requests / Elapsed.
	RPS float64 `json:"rps"`

	// MaxLatency is over every request, failed ones included.
	MaxLatency time.Duration `json:"max_latency_ns"`
	// LongestGap is the longest interval of the run with no successful
	// completion, the start and end of the run counting as boundaries.
	LongestGap Gap `json:"longest_gap"`
	// Steady covers requests completed before the trigger, or all requests
	// when the trigger did not run.
	Steady Window `json:"steady"`

	// NewConns counts requests that dialled a new connection;
	// NewConnsPerRequest is NewConns / Requests.
	NewConns           int     `json:"new_conns"`
	NewConnsPerRequest float64 `json:"new_conns_per_request"`
	// TransportRetries counts requests the Go transport silently re-sent.
	TransportRetries int `json:"transport_retries"`

	// PIDs lists, sorted, every PID that answered a request successfully.
	PIDs []int `json:"pids"`

	// Restart holds the restart figures; nil when the trigger did not run.
	Restart *Restart `json:"restart,omitempty"`
	// TriggerSkipped reports that a trigger was configured but the run
	// ended before TriggerAt.
	TriggerSkipped bool `json:"trigger_skipped,omitempty"`

	// Series has one bucket per second of the run, by completion time.
	Series []Bucket `json:"series"`
}

// Window summarises the requests of a window. Latencies are of the
// successful requests only, nearest-rank percentiles.
type Window struct {
	OK     int           `json:"ok"`
	Failed int           `json:"failed"`
	P50    time.Duration `json:"p50_ns"`
	P90    time.Duration `json:"p90_ns"`
	P99    time.Duration `json:"p99_ns"`
	Max    time.Duration `json:"max_ns"`
}

// Gap is an interval with no successful completion.
type Gap struct {
	Length time.Duration `json:"length_ns"`
	From   time.Duration `json:"from_ns"`
	To     time.Duration `json:"to_ns"`
}

// Restart holds the figures that exist only when the trigger ran.
type Restart struct {
	// TriggerStart and TriggerEnd are when the trigger started and returned;
	// TriggerErr is its error text, "" if it succeeded.
	TriggerStart time.Duration `json:"trigger_start_ns"`
	TriggerEnd   time.Duration `json:"trigger_end_ns"`
	TriggerErr   string        `json:"trigger_err,omitempty"`

	// OldPIDs answered before the trigger; NewPIDs were first seen at or
	// after it and are not old. Both sorted.
	OldPIDs []int `json:"old_pids"`
	NewPIDs []int `json:"new_pids"`
	// LastNewPIDFirst is the first response of the last new PID to appear
	// (0 if none); LastOldPIDLast is the last response of any old PID (0 if
	// none).
	LastNewPIDFirst time.Duration `json:"last_new_pid_first_ns"`
	LastOldPIDLast  time.Duration `json:"last_old_pid_last_ns"`
	// Done reports that a new PID appeared. Only then is Duration defined:
	// max(LastNewPIDFirst, LastOldPIDLast) - TriggerStart.
	Done     bool          `json:"done"`
	Duration time.Duration `json:"duration_ns"`

	// WindowEnd is W; the restart window is [TriggerStart, WindowEnd].
	// WindowCapped reports that W was cut to the end of the run.
	WindowEnd    time.Duration `json:"window_end_ns"`
	WindowCapped bool          `json:"window_capped,omitempty"`
	// Window covers requests in flight at any moment of the restart window.
	Window Window `json:"window"`
	// WindowGap is the longest gap within the restart window.
	WindowGap Gap `json:"window_gap"`

	// PIDsAfterWindow lists the PIDs that answered after W; PIDsReplaced
	// counts the old PIDs absent from it.
	PIDsAfterWindow []int `json:"pids_after_window"`
	PIDsReplaced    int   `json:"pids_replaced"`
}

// Bucket is one second of the run, by completion time.
type Bucket struct {
	// Second is the bucket's start, in whole seconds from the start of the run.
	Second int `json:"t_s"`
	OK     int `json:"ok"`
	Failed int `json:"failed"`
	// P50 is over the successful requests, Max over all of them.
	P50 time.Duration `json:"p50_ns"`
	Max time.Duration `json:"max_ns"`
}

type pidSpan struct{ first, last time.Duration }

// Report computes the figures of the run. It reads only Records, End,
// Aborted, the trigger fields and Config.Clients, URLs, Trigger and TriggerAt,
// so a hand-built Result works.
func (r *Result) Report() Report {
	rep := Report{
		Clients:  r.Config.Clients,
		URLs:     r.Config.URLs,
		Elapsed:  r.End,
		Requests: len(r.Records),
		Aborted:  r.Aborted,
		PIDs:     []int{},
	}
	pids := map[int]*pidSpan{}
	okEnds := make([]time.Duration, 0, len(r.Records))
	nb := int(r.End/time.Second) + 1
	bucketLat := make([][]time.Duration, nb)
	rep.Series = make([]Bucket, nb)
	for i := range rep.Series {
		rep.Series[i].Second = i
	}
	for _, rec := range r.Records {
		lat := rec.Latency()
		rep.MaxLatency = max(rep.MaxLatency, lat)
		if rec.NewConn {
			rep.NewConns++
		}
		if rec.Retried {
			rep.TransportRetries++
		}
		b := &rep.Series[min(max(int(rec.End/time.Second), 0), nb-1)]
		b.Max = max(b.Max, lat)
		if !rec.OK() {
			rep.Failed++
			b.Failed++
			if rep.FailedByKind == nil {
				rep.FailedByKind = map[string]int{}
				rep.FirstFailure = map[string]string{}
			}
			if rep.FailedByKind[rec.Kind]++; rep.FailedByKind[rec.Kind] == 1 {
				rep.FirstFailure[rec.Kind] = failureText(rec)
			}
			continue
		}
		rep.OK++
		b.OK++
		bucketLat[b.Second] = append(bucketLat[b.Second], lat)
		okEnds = append(okEnds, rec.End)
		if rec.PID == 0 {
			continue
		}
		if sp := pids[rec.PID]; sp == nil {
			pids[rec.PID] = &pidSpan{rec.End, rec.End}
		} else {
			sp.first = min(sp.first, rec.End)
			sp.last = max(sp.last, rec.End)
		}
	}
	for i, lat := range bucketLat {
		slices.Sort(lat)
		rep.Series[i].P50 = Percentile(lat, 50)
	}
	slices.Sort(okEnds)
	rep.LongestGap = LongestGap(okEnds, 0, r.End)
	if r.End > 0 {
		rep.RPS = float64(rep.Requests) / r.End.Seconds()
	}
	if rep.Requests > 0 {
		rep.NewConnsPerRequest = float64(rep.NewConns) / float64(rep.Requests)
	}
	rep.PIDs = slices.Sorted(maps.Keys(pids))
	if rep.PIDs == nil {
		rep.PIDs = []int{}
	}

	if !r.Triggered {
		rep.TriggerSkipped = r.Config.Trigger != nil && r.Config.TriggerAt > 0
		rep.Steady = window(r.Records, func(rec Record) bool { return true })
		return rep
	}
	rs := restartFigures(pids, r.TriggerStart, r.TriggerEnd, r.End)
	if r.TriggerErr != nil {
		rs.TriggerErr = r.TriggerErr.Error()
	}
	t0, w := rs.TriggerStart, rs.WindowEnd
	rep.Steady = window(r.Records, func(rec Record) bool { return rec.End < t0 })
	rs.Window = window(r.Records, func(rec Record) bool { return rec.Start <= w && rec.End >= t0 })
	rs.WindowGap = LongestGap(okEnds, t0, w)
	rep.Restart = rs
	return rep
}

// restartFigures derives the PID sets, the restart duration, W and the
// replaced PIDs from the successful responses of each PID.
func restartFigures(pids map[int]*pidSpan, t0, trigEnd, end time.Duration) *Restart {
	rs := &Restart{TriggerStart: t0, TriggerEnd: trigEnd, OldPIDs: []int{}, NewPIDs: []int{}, PIDsAfterWindow: []int{}}
	for pid, sp := range pids {
		if sp.first < t0 {
			rs.OldPIDs = append(rs.OldPIDs, pid)
			rs.LastOldPIDLast = max(rs.LastOldPIDLast, sp.last)
		} else {
			rs.NewPIDs = append(rs.NewPIDs, pid)
			rs.LastNewPIDFirst = max(rs.LastNewPIDFirst, sp.first)
		}
	}
	slices.Sort(rs.OldPIDs)
	slices.Sort(rs.NewPIDs)
	if len(rs.NewPIDs) > 0 {
		done := max(rs.LastNewPIDFirst, rs.LastOldPIDLast)
		rs.Done = true
		rs.Duration = done - t0
		rs.WindowEnd = done + WindowTail
	} else {
		rs.WindowEnd = trigEnd + WindowNoNewPID
	}
	if rs.WindowEnd > end {
		rs.WindowEnd = end
		rs.WindowCapped = true
	}
	for pid, sp := range pids {
		if sp.last > rs.WindowEnd {
			rs.PIDsAfterWindow = append(rs.PIDsAfterWindow, pid)
		}
	}
	slices.Sort(rs.PIDsAfterWindow)
	for _, pid := range rs.OldPIDs {
		if _, found := slices.BinarySearch(rs.PIDsAfterWindow, pid); !found {
			rs.PIDsReplaced++
		}
	}
	return rs
}

// window summarises the records selected by in.
func window(recs []Record, in func(Record) bool) Window {
	var w Window
	var lat []time.Duration
	for _, rec := range recs {
		if !in(rec) {
			continue
		}
		if !rec.OK() {
			w.Failed++
			continue
		}
		lat = append(lat, rec.Latency())
	}
	slices.Sort(lat)
	w.OK = len(lat)
	w.P50 = Percentile(lat, 50)
	w.P90 = Percentile(lat, 90)
	w.P99 = Percentile(lat, 99)
	w.Max = Percentile(lat, 100)
	return w
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the value at 1-based rank ceil(p/100 * n). It returns
// 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// p*n is exact for the usual integer p, so the division is correctly
	// rounded and a whole rank is never pushed up by float error.
	rank := int(math.Ceil(p * float64(n) / 100))
	return sorted[min(max(rank, 1), n)-1]
}

// LongestGap returns the longest interval within [from, to] that contains no
// time of ends (sorted successful completion times). from and to are
// boundaries: with no completion inside, the gap is the whole interval. Of
// equal gaps the first is returned.
func LongestGap(ends []time.Duration, from, to time.Duration) Gap {
	g := Gap{From: from, To: from}
	if to <= from {
		return g
	}
	prev := from
	i, _ := slices.BinarySearch(ends, from)
	for _, e := range ends[i:] {
		if e >= to {
			break
		}
		if e-prev > g.Length {
			g = Gap{Length: e - prev, From: prev, To: e}
		}
		prev = e
	}
	if to-prev > g.Length {
		g = Gap{Length: to - prev, From: prev, To: to}
	}
	return g
}

func failureText(rec Record) string {
	if rec.Err != "" {
		return rec.Err
	}
	return fmt.Sprintf("status %d", rec.Status)
}

// String renders the report as a compact human-readable table. The series
// is left out; use JSON for it.
func (rep Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clients %d, urls %s, elapsed %s\n", rep.Clients, strings.Join(rep.URLs, " "), fmtSecs(rep.Elapsed))
	fmt.Fprintf(&b, "requests %d  ok %d  failed %d  aborted %d  rps %.1f\n", rep.Requests, rep.OK, rep.Failed, rep.Aborted, rep.RPS)
	for _, k := range slices.Sorted(maps.Keys(rep.FailedByKind)) {
		fmt.Fprintf(&b, "  failed %-12s %6d  first: %s\n", k, rep.FailedByKind[k], rep.FirstFailure[k])
	}
	fmt.Fprintf(&b, "max latency %s  longest gap %s (%s .. %s)\n", fmtMS(rep.MaxLatency), fmtSecs(rep.LongestGap.Length), fmtSecs(rep.LongestGap.From), fmtSecs(rep.LongestGap.To))
	fmt.Fprintf(&b, "new conns / requests %.2f (%d)  transport retries %d\n", rep.NewConnsPerRequest, rep.NewConns, rep.TransportRetries)
	fmt.Fprintf(&b, "pids %s\n", pidList(rep.PIDs))
	fmt.Fprintf(&b, "%-8s %8s %7s %10s %10s %10s %10s\n", "window", "ok", "failed", "p50", "p90", "p99", "max")
	row := func(name string, w Window) {
		fmt.Fprintf(&b, "%-8s %8d %7d %10s %10s %10s %10s\n", name, w.OK, w.Failed, fmtMS(w.P50), fmtMS(w.P90), fmtMS(w.P99), fmtMS(w.Max))
	}
	row("steady", rep.Steady)
	if rep.TriggerSkipped {
		b.WriteString("trigger did not run: the run ended first\n")
	}
	rs := rep.Restart
	if rs == nil {
		return b.String()
	}
	row("restart", rs.Window)
	rel := func(t time.Duration) string { return "+" + fmtSecs(t-rs.TriggerStart) }
	errText := rs.TriggerErr
	if errText == "" {
		errText = "none"
	}
	fmt.Fprintf(&b, "trigger at %s, ran %s, error: %s\n", fmtSecs(rs.TriggerStart), fmtSecs(rs.TriggerEnd-rs.TriggerStart), errText)
	dur := "n/a: no new pid"
	if rs.Done {
		dur = fmtSecs(rs.Duration)
	}
	var when []string
	if rs.Done {
		when = append(when, "last new pid first answered "+rel(rs.LastNewPIDFirst))
	}
	if len(rs.OldPIDs) > 0 {
		when = append(when, "last old pid answered "+rel(rs.LastOldPIDLast))
	}
	fmt.Fprintf(&b, "restart duration %s", dur)
	if len(when) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(when, ", "))
	}
	b.WriteString("\n")
	capped := ""
	if rs.WindowCapped {
		capped = " (capped at run end: pids replaced unverified)"
	}
	fmt.Fprintf(&b, "restart window %s .. %s%s, longest gap %s (%s .. %s)\n", fmtSecs(rs.TriggerStart), fmtSecs(rs.WindowEnd), capped,
		fmtSecs(rs.WindowGap.Length), fmtSecs(rs.WindowGap.From), fmtSecs(rs.WindowGap.To))
	fmt.Fprintf(&b, "pids replaced %d/%d  old %s  new %s  after window %s\n", rs.PIDsReplaced, len(rs.OldPIDs),
		pidList(rs.OldPIDs), pidList(rs.NewPIDs), pidList(rs.PIDsAfterWindow))
	return b.String()
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func fmtSecs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

func pidList(pids []int) string {
	if len(pids) == 0 {
		return "[]"
	}
	return strings.ReplaceAll(fmt.Sprint(pids), " ", ",")
}
