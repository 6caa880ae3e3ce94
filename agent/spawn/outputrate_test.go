package spawn

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// bucketStep is one call on a bucket at ms milliseconds: take (a line), resume
// (the timer) or end (the output closed), and what it should return.
type bucketStep struct {
	ms  int
	op  string
	ok  bool       // take's
	run droppedRun // the run of drops it ends
}

func TestBucket(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	for _, tc := range []struct {
		name  string
		rate  OutputRate
		steps []bucketStep
	}{
		{"the burst, then the rate", OutputRate{Burst: 2, PerSecond: 4}, []bucketStep{
			{0, "take", true, droppedRun{}},
			{0, "take", true, droppedRun{}},
			{0, "take", false, droppedRun{}},
			{250, "take", false, droppedRun{}}, // a token, but not a second's: still dropping
			{500, "take", true, droppedRun{2, ms(250)}},
			{500, "take", true, droppedRun{}},
			{500, "take", false, droppedRun{}},
		}},
		{"a steady flood is told of once a second", OutputRate{Burst: 4, PerSecond: 4}, []bucketStep{
			{0, "take", true, droppedRun{}},
			{0, "take", true, droppedRun{}},
			{0, "take", true, droppedRun{}},
			{0, "take", true, droppedRun{}},
			{0, "take", false, droppedRun{}},
			{250, "take", false, droppedRun{}},
			{500, "take", false, droppedRun{}},
			{750, "take", false, droppedRun{}},
			{1000, "take", true, droppedRun{4, ms(750)}},
		}},
		{"no refill: dropped until the output closes", OutputRate{Burst: 1, PerSecond: 0}, []bucketStep{
			{0, "take", true, droppedRun{}},
			{0, "take", false, droppedRun{}},
			{10000, "take", false, droppedRun{}},
			{20000, "resume", false, droppedRun{}},
			{20000, "end", false, droppedRun{2, ms(10000)}},
			{20000, "end", false, droppedRun{}},
		}},
		{"the timer ends a run once the bucket refilled", OutputRate{Burst: 1, PerSecond: 4}, []bucketStep{
			{0, "take", true, droppedRun{}},
			{0, "take", false, droppedRun{}},
			{100, "resume", false, droppedRun{}},
			{250, "resume", false, droppedRun{1, 0}},
			{250, "take", true, droppedRun{}},
		}},
		{"nothing to end", OutputRate{Burst: 1, PerSecond: 1}, []bucketStep{
			{0, "end", false, droppedRun{}},
			{0, "resume", false, droppedRun{}},
			{0, "take", true, droppedRun{}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Unix(1000, 0)
			b := newBucket(tc.rate, t0)
			for i, s := range tc.steps {
				now := t0.Add(ms(s.ms))
				var ok bool
				var run droppedRun
				switch s.op {
				case "take":
					ok, run = b.take(now)
				case "resume":
					run = b.resume(now)
				case "end":
					run = b.end()
				}
				if ok != s.ok || run != s.run {
					t.Fatalf("step %d (%s at %dms) = %v, %+v; want %v, %+v", i, s.op, s.ms, ok, run, s.ok, s.run)
				}
			}
		})
	}
}

func TestBucketResumeAt(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(OutputRate{Burst: 4, PerSecond: 4}, t0)
	for range 5 {
		b.take(t0)
	}
	if got, want := b.resumeAt(), t0.Add(time.Second); !got.Equal(want) {
		t.Errorf("resumeAt after the burst = %v, want %v", got, want)
	}
	b.take(t0.Add(250 * time.Millisecond)) // dropped: refills, takes nothing
	if got, want := b.resumeAt(), t0.Add(time.Second); !got.Equal(want) {
		t.Errorf("resumeAt a dropped line later = %v, want %v", got, want)
	}
	never := newBucket(OutputRate{Burst: 1, PerSecond: 0}, t0)
	never.take(t0)
	never.take(t0)
	if got := never.resumeAt(); !got.IsZero() {
		t.Errorf("resumeAt without refill = %v, want never (zero)", got)
	}
}

// droppedCounts reads the dropped counts and pids of the drop lines in log.
func droppedCounts(t *testing.T, log []string) (counts []int, pids []string) {
	t.Helper()
	re := regexp.MustCompile(`"pid"=(\d+) "dropped"=(\d+)`)
	for _, l := range log {
		if !strings.Contains(l, "Worker output over its rate") {
			continue
		}
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("drop line without pid and count: %s", l)
		}
		n, _ := strconv.Atoi(m[2])
		counts, pids = append(counts, n), append(pids, m[1])
	}
	return counts, pids
}

func countWorkerOutput(log []string) int {
	return len(slices.DeleteFunc(slices.Clone(log), func(l string) bool { return !strings.Contains(l, `"msg"="Worker output"`) }))
}

// TestOutputLogReportsARunWithoutAnotherLine: a worker that floods and
// then writes nothing is told of by the timer, not only at its exit. The
// run ends once the bucket holds 2 lines again, a second at 2 lines a
// second: the 10 lines are written well within it on a loaded machine
// too (at 50 a second, a pause of 40ms in the loop ended the run early).
func TestOutputLogReportsARunWithoutAnotherLine(t *testing.T) {
	spec := Spec{}
	lines := captureLog(&spec)
	o := newOutputLog(OutputRate{Burst: 2, PerSecond: 2}, spec.Log, 42)
	defer o.close()
	for i := range 10 {
		o.line("stdout", fmt.Sprint("line ", i))
	}
	var counts []int
	waitFor(t, "drop line", lines, func() bool { counts, _ = droppedCounts(t, lines()); return len(counts) > 0 })
	logged := countWorkerOutput(lines())
	if len(counts) != 1 || logged+counts[0] != 10 || counts[0] == 0 {
		t.Fatalf("logged %d lines and drop lines %v, want one drop line, the two adding to 10:\n%s",
			logged, counts, strings.Join(lines(), "\n"))
	}
}

// waitFor waits up to 10s for cond (testsupport.Eventually); what is
// what it waits for, said with the log's lines when it does not come.
func waitFor(t *testing.T, what string, lines func() []string, cond func() bool) {
	t.Helper()
	testsupport.Eventually(t, 10*time.Second, what, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("not yet, in:\n%s", strings.Join(lines(), "\n"))
	})
}

// TestFloodingWorkerIsLoggedAtItsRate: a real worker that writes 3000
// lines and crashes (one stream, so that the order is known) has its burst logged, one line counting the rest
// with its pid, and its crash's last line in the spawn error.
func TestFloodingWorkerIsLoggedAtItsRate(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "-c", `import sys
for i in range(3000):
    print("flood", i)
print("Traceback: the crash after the flood")
sys.exit(1)`}})
	spec.OutputRate = OutputRate{Burst: 100, PerSecond: 0}
	lines := captureLog(&spec)
	_, err := Spawn(context.Background(), spec)
	var se *Error
	if !errors.As(err, &se) || !strings.HasSuffix(se.Output, "Traceback: the crash after the flood") {
		t.Fatalf("err = %v, want the crash's line last in its output", err)
	}
	// Every line is logged or counted once the output has closed.
	var counts []int
	var pids []string
	waitFor(t, "account of all 3001 lines", lines, func() bool {
		counts, pids = droppedCounts(t, lines())
		accounted := countWorkerOutput(lines())
		for _, n := range counts {
			accounted += n
		}
		return accounted == 3001
	})
	if logged := countWorkerOutput(lines()); logged != 100 || !slices.Equal(counts, []int{2901}) {
		t.Fatalf("logged %d lines and drop lines %v, want 100 and [2901]", logged, counts)
	}
	if !slices.ContainsFunc(lines(), func(l string) bool {
		return strings.Contains(l, `"pid"=`+pids[0]+` "stream"="stdout" "line"="flood 99"`)
	}) {
		t.Errorf("the drop line's pid %s is not the worker's (its line \"flood 99\")", pids[0])
	}
}
