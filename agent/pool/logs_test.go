package pool_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
)

// logbook records what a logger is told: each entry with the pairs of
// WithValues before its own, in the order a JSON encoder writes them.
type logbook struct {
	mu      sync.Mutex
	entries []logEntry
}

type logEntry struct {
	msg string
	kvs []any
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

func (b *logbook) all() []logEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.entries)
}

// waitFor waits until an entry starts with prefix and returns the first.
func (b *logbook) waitFor(t *testing.T, prefix string) logEntry {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if es := b.find(prefix); len(es) > 0 {
			return es[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q", prefix)
		}
	}
}

type bookSink struct {
	b      *logbook
	values []any
}

func (s *bookSink) Init(logr.RuntimeInfo) {}
func (s *bookSink) Enabled(int) bool      { return true }
func (s *bookSink) Info(_ int, msg string, kvs ...any) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.entries = append(s.b.entries, logEntry{msg: msg, kvs: append(slices.Clone(s.values), kvs...)})
}
func (s *bookSink) Error(err error, msg string, kvs ...any) {
	s.Info(0, msg, append([]any{"error", err}, kvs...)...)
}
func (s *bookSink) WithValues(kvs ...any) logr.LogSink {
	return &bookSink{b: s.b, values: append(slices.Clone(s.values), kvs...)}
}
func (s *bookSink) WithName(string) logr.LogSink { return s }

// checkLines fails the test for a line that carries a key twice (a JSON
// log then holds an object with a duplicate name), or a time.Duration,
// which the agent's JSON log writes as a bare number of seconds.
func checkLines(t *testing.T, b *logbook) {
	t.Helper()
	for _, e := range b.all() {
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

// bookLogger is a pool's logger as agent/cluster gives it: named "pool".
func bookLogger(b *logbook) *logr.Logger {
	l := logr.New(&bookSink{b: b}).WithValues("pool", "t/logs")
	return &l
}

// TestLogLines: the pool's lines and its workers' output name the pool
// once, with the key its caller gave, and carry durations as "30s", not as
// numbers.
func TestLogLines(t *testing.T) {
	t.Run("a spawn and an overrun", func(t *testing.T) {
		book := &logbook{}
		tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
		e := agenttest.Start(t, pool.Config{Name: "t/logs", Revision: "1", Template: tmpl},
			agenttest.Options{Log: bookLogger(book)})
		e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
		w, err := e.Pool.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		e.Pool.Overran(w, "/stuck", 30*time.Second)
		e.Pool.Release(w)
		killing := book.waitFor(t, "Killing worker")
		if v, _ := killing.value("maxRequestTime"); v != "30s" {
			t.Errorf("maxRequestTime logged as %#v, want \"30s\"", v)
		}
		if _, n := book.waitFor(t, "Spawned worker").value("pool"); n != 1 {
			t.Errorf("Spawned worker names the pool %d times, want once", n)
		}
		checkLines(t, book)
	})
	t.Run("a failed spawn and its output", func(t *testing.T) {
		book := &logbook{}
		tmpl := agenttest.WSGI("broken-wsgi", 1, 1)
		agenttest.Start(t, pool.Config{Name: "t/logs", Revision: "1", Template: tmpl}, agenttest.Options{Log: bookLogger(book)})
		out := book.waitFor(t, "Worker output")
		if v, n := out.value("pool"); n != 1 || v != "t/logs" {
			t.Errorf("a worker's output names the pool %d times (%v), want once: %v", n, v, out.kvs)
		}
		book.waitFor(t, "Spawn failed")
		checkLines(t, book)
	})
	t.Run("shutdownTimeout", func(t *testing.T) {
		book := &logbook{}
		tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
		tmpl.Pool.ShutdownTimeout = &metav1.Duration{Duration: 500 * time.Millisecond}
		e := agenttest.Start(t, pool.Config{Name: "t/logs", Revision: "1", Template: tmpl},
			agenttest.Options{Log: bookLogger(book)})
		e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
		go func() {
			if resp, err := http.Get(e.URL + "/slow?ms=20000"); err == nil {
				resp.Body.Close()
			}
		}()
		busyWorker(t, e)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.Pool.Close(ctx)
		if v, _ := book.waitFor(t, "Worker did not finish its requests").value("timeout"); v != "500ms" {
			t.Errorf("timeout logged as %#v, want \"500ms\"", v)
		}
		checkLines(t, book)
	})
}
