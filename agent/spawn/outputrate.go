package spawn

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// OutputRate bounds how many of a worker's output lines the agent logs: a
// burst of Burst lines, then PerSecond lines a second (0: none past the
// burst). Lines over it are counted, not logged; the tail kept for spawn
// errors keeps them all the same.
type OutputRate struct {
	Burst     int
	PerSecond float64
}

// DefaultOutputRate is the rate of a Spec that gives none: far above what
// an app writes while it serves (a traceback, a line a request), far below
// the million lines in four seconds of a worker flooding stdout, which the
// agent's log would otherwise carry in full, each line a JSON entry.
var DefaultOutputRate = OutputRate{Burst: 10000, PerSecond: 1000}

func (r OutputRate) String() string {
	return fmt.Sprintf("%g lines a second past a burst of %d", r.PerSecond, r.Burst)
}

// bucket is a token bucket of output lines, the pure part of outputLog:
// full at Burst, refilled at PerSecond, a logged line takes a token. Once
// it is empty, lines are dropped until it holds a second's lines again (or
// is full, when Burst is less): a worker writing steadily over the rate
// is then told of once a second, not at every line that finds a token.
type bucket struct {
	rate    OutputRate
	tokens  float64
	last    time.Time // of the last refill
	dropped int       // lines dropped in the current run; 0: none dropped
	first   time.Time // of the run's first dropped line
	latest  time.Time // of its last
}

// droppedRun is a run of dropped lines that ended: how many, and the time
// from the first to the last.
type droppedRun struct {
	lines int
	span  time.Duration
}

func newBucket(rate OutputRate, now time.Time) *bucket {
	return &bucket{rate: rate, tokens: float64(rate.Burst), last: now}
}

func (b *bucket) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = min(float64(b.rate.Burst), b.tokens+now.Sub(b.last).Seconds()*b.rate.PerSecond)
		b.last = now
	}
}

// resumeLevel is what the bucket must hold to end a run of drops.
func (b *bucket) resumeLevel() float64 {
	return min(float64(b.rate.Burst), max(b.rate.PerSecond, 1))
}

// take says whether a line written at now is logged, and returns the run
// of drops that it ends, if it ends one.
func (b *bucket) take(now time.Time) (bool, droppedRun) {
	ended := b.resume(now)
	switch {
	case b.dropped > 0:
	case b.tokens >= 1:
		b.tokens--
		return true, ended
	default:
		b.first = now
	}
	b.dropped++
	b.latest = now
	return false, ended
}

// resume ends the run of drops, if there is one and the bucket holds
// resumeLevel at now.
func (b *bucket) resume(now time.Time) droppedRun {
	b.refill(now)
	if b.dropped == 0 || b.tokens < b.resumeLevel() {
		return droppedRun{}
	}
	return b.end()
}

// end ends the run of drops, if there is one (the output closed).
func (b *bucket) end() droppedRun {
	if b.dropped == 0 {
		return droppedRun{}
	}
	r := droppedRun{lines: b.dropped, span: b.latest.Sub(b.first)}
	b.dropped = 0
	return r
}

// resumeAt is when the bucket will hold resumeLevel, if no line takes a
// token; zero when it is never refilled.
func (b *bucket) resumeAt() time.Time {
	if b.rate.PerSecond <= 0 {
		return time.Time{}
	}
	need := max(b.resumeLevel()-b.tokens, 0)
	return b.last.Add(time.Duration(math.Ceil(need / b.rate.PerSecond * float64(time.Second))))
}

// outputLog logs one worker's output lines, both streams, at most at its
// rate, and a line for each run of lines dropped over it: when the bucket
// has refilled (at the next line, or by a timer when none comes), or when
// the output closes.
type outputLog struct {
	mu     sync.Mutex
	b      *bucket
	log    logr.Logger
	pid    int
	timer  *time.Timer // set during a run of drops, to end it once the bucket refills
	closed bool
}

func newOutputLog(rate OutputRate, log logr.Logger, pid int) *outputLog {
	return &outputLog{b: newBucket(rate, time.Now()), log: log, pid: pid}
}

// line logs text, a line of stream, unless it is over the rate.
func (o *outputLog) line(stream, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ok, ended := o.b.take(time.Now())
	o.report(ended)
	if !ok {
		o.arm()
		return
	}
	o.log.Info("Worker output", "pid", o.pid, "stream", stream, "line", text)
}

// arm sets the timer that ends the run of drops, unless one is set.
func (o *outputLog) arm() {
	at := o.b.resumeAt()
	if o.timer != nil || o.closed || at.IsZero() {
		return
	}
	o.timer = time.AfterFunc(time.Until(at), o.tick)
}

func (o *outputLog) tick() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.timer = nil
	if o.closed {
		return
	}
	o.report(o.b.resume(time.Now()))
	if o.b.dropped > 0 {
		o.arm()
	}
}

// close reports the run of drops the output ended in, if it did.
func (o *outputLog) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	if o.timer != nil {
		o.timer.Stop()
	}
	o.report(o.b.end())
}

// droppedMsg is the line for a run of dropped output lines.
const droppedMsg = "Worker output over its rate; lines dropped from the log (a failed spawn's error still has " +
	"the worker's last lines; write high-volume output to a file of the app's own)"

// report logs r, if it dropped lines.
func (o *outputLog) report(r droppedRun) {
	if r.lines == 0 {
		return
	}
	o.log.Info(droppedMsg, "pid", o.pid, "dropped", r.lines,
		"over", r.span.Round(time.Millisecond).String(), "rate", o.b.rate.String())
}
