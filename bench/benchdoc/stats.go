package benchdoc

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ferry-dev/ferry/bench/harness"
	"github.com/ferry-dev/ferry/bench/loadgen"
)

// spread is the median, minimum and maximum of a set of values.
type spread struct {
	med, lo, hi float64
	n           int
	// missing counts NaN values (a figure undefined in that run), left out.
	missing int
}

// spreadOf returns the median (the mean of the middle two for an even
// count), minimum and maximum; n == 0 when vals is empty.
func spreadOf(vals []float64) spread {
	v := make([]float64, 0, len(vals))
	for _, x := range vals {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return spread{missing: len(vals)}
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return spread{med: m, lo: v[0], hi: v[len(v)-1], n: len(v), missing: len(vals) - len(v)}
}

// format renders "median (min–max)", or just the median when the extremes
// print the same, with verb (e.g. "%.2f").
func (s spread) format(verb string) string {
	if s.n == 0 {
		return "–"
	}
	out := fmt.Sprintf(verb, s.med)
	if lo, hi := fmt.Sprintf(verb, s.lo), fmt.Sprintf(verb, s.hi); lo != hi {
		out = fmt.Sprintf("%s (%s–%s)", out, lo, hi)
	}
	if s.missing > 0 {
		out += fmt.Sprintf("; none in %d run(s)", s.missing)
	}
	return out
}

// reports returns the loadgen reports of the runs that have one.
func reports(c harness.ConfigResult) []*loadgen.Report {
	var out []*loadgen.Report
	for _, rr := range c.Runs {
		if rr.Report != nil {
			out = append(out, rr.Report)
		}
	}
	return out
}

// over collects f over a configuration's runs with a report; f returns
// false to skip a run.
func over(c harness.ConfigResult, f func(rr harness.RunResult) (float64, bool)) spread {
	var vals []float64
	for _, rr := range c.Runs {
		if rr.Report == nil {
			continue
		}
		if v, ok := f(rr); ok {
			vals = append(vals, v)
		}
	}
	return spreadOf(vals)
}

// rep is over for figures of the report alone.
func rep(c harness.ConfigResult, f func(r *loadgen.Report) float64) spread {
	return over(c, func(rr harness.RunResult) (float64, bool) { return f(rr.Report), true })
}

// restartRep is over for figures of restarted runs.
func restartRep(c harness.ConfigResult, f func(r *loadgen.Report, rs *loadgen.Restart) float64) spread {
	return over(c, func(rr harness.RunResult) (float64, bool) {
		if rr.Report.Restart == nil {
			return 0, false
		}
		return f(rr.Report, rr.Report.Restart), true
	})
}

func ms(d time.Duration) float64   { return float64(d) / float64(time.Millisecond) }
func secs(d time.Duration) float64 { return d.Seconds() }

// ratio is a/b, NaN when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}
