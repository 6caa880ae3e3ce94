package cluster

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
)

// logbook records what an agent logs (and passes it on to the test's
// log): each entry with the pairs of WithValues before its own, in the
// order a JSON encoder writes them.
type logbook struct {
	t       *testing.T
	mu      sync.Mutex
	entries []logEntry
}

type logEntry struct {
	msg     string
	isError bool // logged with Error
	kvs     []any
}

func newLogbook(t *testing.T) *logbook { return &logbook{t: t} }

// use makes the agent log to b: an option of runAgent's.
func (b *logbook) use(o *Options) {
	o.Log = logr.New(&bookSink{b: b, inner: testr.New(b.t).GetSink()})
}

// value is the value of key in e, and how many times e carries key.
func (e logEntry) value(key string) (any, int) {
	var v any
	n := 0
	for i := 0; i+1 < len(e.kvs); i += 2 {
		if e.kvs[i] == key {
			v, n = e.kvs[i+1], n+1
		}
	}
	return v, n
}

// find returns the entries whose message starts with prefix.
func (b *logbook) find(prefix string) []logEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []logEntry
	for _, e := range b.entries {
		if strings.HasPrefix(e.msg, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits until an entry starts with prefix and returns the first.
func (b *logbook) waitFor(t *testing.T, prefix string) logEntry {
	t.Helper()
	var e logEntry
	waitUntil(t, "the log line "+prefix, func() bool {
		es := b.find(prefix)
		if len(es) > 0 {
			e = es[0]
		}
		return len(es) > 0
	})
	return e
}

// check fails the test for a line that carries a key twice (a JSON log
// then holds an object with a duplicate name), or a time.Duration, which
// the agent's JSON log writes as a bare number of seconds.
func (b *logbook) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	entries := slices.Clone(b.entries)
	b.mu.Unlock()
	for _, e := range entries {
		seen := map[any]bool{}
		for i := 0; i+1 < len(e.kvs); i += 2 {
			if seen[e.kvs[i]] {
				t.Errorf("%q carries %v twice: %v", e.msg, e.kvs[i], e.kvs)
			}
			seen[e.kvs[i]] = true
			if d, ok := e.kvs[i+1].(time.Duration); ok {
				t.Errorf("%q logs %v as a time.Duration (%d), not as %q", e.msg, e.kvs[i], int64(d), d.String())
			}
		}
	}
}

type bookSink struct {
	b      *logbook
	inner  logr.LogSink
	values []any
}

func (s *bookSink) Init(logr.RuntimeInfo) {}
func (s *bookSink) Enabled(int) bool      { return true }

func (s *bookSink) record(e logEntry) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.entries = append(s.b.entries, e)
}

// GetCallStackHelper makes testr name the agent's line, not this sink's.
func (s *bookSink) GetCallStackHelper() func() { return s.b.t.Helper }

func (s *bookSink) Info(level int, msg string, kvs ...any) {
	s.b.t.Helper()
	s.record(logEntry{msg: msg, kvs: append(slices.Clone(s.values), kvs...)})
	if s.inner.Enabled(level) {
		s.inner.Info(level, msg, kvs...)
	}
}

func (s *bookSink) Error(err error, msg string, kvs ...any) {
	s.b.t.Helper()
	s.record(logEntry{msg: msg, isError: true, kvs: append(slices.Clone(s.values), kvs...)})
	s.inner.Error(err, msg, kvs...)
}

func (s *bookSink) WithValues(kvs ...any) logr.LogSink {
	return &bookSink{b: s.b, inner: s.inner.WithValues(kvs...), values: append(slices.Clone(s.values), kvs...)}
}

func (s *bookSink) WithName(name string) logr.LogSink {
	return &bookSink{b: s.b, inner: s.inner.WithName(name), values: s.values}
}
