package agenttest

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
)

// Logbook records what the agent logs, and passes it on to the test's
// log: each entry with the pairs of WithValues before its own, in the
// order a JSON encoder writes them.
type Logbook struct {
	t       *testing.T
	mu      sync.Mutex
	entries []LogEntry
	added   chan struct{} // closed, and replaced, at each new entry
}

// LogEntry is one logged line.
type LogEntry struct {
	Msg     string
	IsError bool  // logged with Error
	Err     error // the error logged with Error
	KVs     []any
}

// NewLogbook returns an empty logbook that passes lines on to t's log.
func NewLogbook(t *testing.T) *Logbook { return &Logbook{t: t, added: make(chan struct{})} }

// Logger is a logger that writes to b.
func (b *Logbook) Logger() logr.Logger { return b.Over(testr.New(b.t)) }

// Over is a logger that writes to b and passes each line on to inner
// instead of the test's log.
func (b *Logbook) Over(inner logr.Logger) logr.Logger {
	return logr.New(&bookSink{b: b, inner: inner.GetSink()})
}

// Value is the value of key in e, and how many times e carries key.
func (e LogEntry) Value(key string) (any, int) {
	var v any
	n := 0
	for i := 0; i+1 < len(e.KVs); i += 2 {
		if e.KVs[i] == key {
			v, n = e.KVs[i+1], n+1
		}
	}
	return v, n
}

// Find returns the entries whose message starts with prefix.
func (b *Logbook) Find(prefix string) []LogEntry {
	out, _ := b.find(prefix)
	return out
}

// find is Find, and a channel closed at the next entry.
func (b *Logbook) find(prefix string) ([]LogEntry, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []LogEntry
	for _, e := range b.entries {
		if strings.HasPrefix(e.Msg, prefix) {
			out = append(out, e)
		}
	}
	return out, b.added
}

// WaitFor waits (a minute at most) until an entry starts with prefix and
// returns the first.
func (b *Logbook) WaitFor(t *testing.T, prefix string) LogEntry {
	t.Helper()
	es := b.await(prefix, 1)
	if len(es) == 0 {
		t.Fatalf("no log line %q within a minute", prefix)
	}
	return es[0]
}

// WaitForN waits (a minute at most) until n entries start with prefix and
// returns every entry that does, n or more.
func (b *Logbook) WaitForN(t *testing.T, prefix string, n int) []LogEntry {
	t.Helper()
	es := b.await(prefix, n)
	if len(es) < n {
		t.Fatalf("%d log lines %q within a minute, want %d", len(es), prefix, n)
	}
	return es
}

// await returns the entries that start with prefix once there are n, or
// those there are after a minute.
func (b *Logbook) await(prefix string, n int) []LogEntry {
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for {
		es, added := b.find(prefix)
		if len(es) >= n {
			return es
		}
		select {
		case <-added:
		case <-timeout.C:
			es, _ = b.find(prefix)
			return es
		}
	}
}

// Check fails the test for a line that carries a key twice (a JSON log
// then holds an object with a duplicate name), or a time.Duration, which
// the agent's JSON log writes as a bare number of seconds.
func (b *Logbook) Check(t *testing.T) {
	t.Helper()
	for _, e := range b.Find("") {
		seen := map[any]bool{}
		for i := 0; i+1 < len(e.KVs); i += 2 {
			if seen[e.KVs[i]] {
				t.Errorf("%q carries %v twice: %v", e.Msg, e.KVs[i], e.KVs)
			}
			seen[e.KVs[i]] = true
			if d, ok := e.KVs[i+1].(time.Duration); ok {
				t.Errorf("%q logs %v as a time.Duration (%d), not as %q", e.Msg, e.KVs[i], int64(d), d.String())
			}
		}
	}
}

type bookSink struct {
	b      *Logbook
	inner  logr.LogSink
	values []any
}

func (s *bookSink) Init(logr.RuntimeInfo) {}
func (s *bookSink) Enabled(int) bool      { return true }

func (s *bookSink) record(e LogEntry) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.entries = append(s.b.entries, e)
	close(s.b.added)
	s.b.added = make(chan struct{})
}

// GetCallStackHelper makes testr name the agent's line, not this sink's.
func (s *bookSink) GetCallStackHelper() func() { return s.b.t.Helper }

func (s *bookSink) Info(level int, msg string, kvs ...any) {
	s.b.t.Helper()
	s.record(LogEntry{Msg: msg, KVs: append(slices.Clone(s.values), kvs...)})
	if s.inner.Enabled(level) {
		s.inner.Info(level, msg, kvs...)
	}
}

func (s *bookSink) Error(err error, msg string, kvs ...any) {
	s.b.t.Helper()
	s.record(LogEntry{Msg: msg, IsError: true, Err: err, KVs: append(slices.Clone(s.values), kvs...)})
	s.inner.Error(err, msg, kvs...)
}

func (s *bookSink) WithValues(kvs ...any) logr.LogSink {
	return &bookSink{b: s.b, inner: s.inner.WithValues(kvs...), values: append(slices.Clone(s.values), kvs...)}
}

func (s *bookSink) WithName(name string) logr.LogSink {
	return &bookSink{b: s.b, inner: s.inner.WithName(name), values: s.values}
}
