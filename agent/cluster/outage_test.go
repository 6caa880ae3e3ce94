package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestOutageIsLoggedOncePerKind: through an outage whose errors change
// from try to try, the agent logs the failures of its Lease's renewals
// and of each pool's status writes once per kind of outage. First the API
// server answers nothing (as one stopped with SIGSTOP: connections are
// taken, nothing comes back), and a try that passes its deadline (1s
// here, 10s in the agent) says so in words that change from one try to
// the next ("context deadline exceeded", "request canceled (Client.Timeout
// exceeded while awaiting headers)"; on the local stack, "TLS handshake
// timeout" too); then it refuses connections.
func TestOutageIsLoggedOncePerKind(t *testing.T) {
	ns := namespace(t)
	fwd, failures, book := outageAgent(t, "node-o")
	port := freePort(t)
	_, key := readyPool(t, ns, "app-node-o", "node-o", port)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	outages := []struct {
		kind       string
		start, end func()
	}{
		{troubleNoAnswer, fwd.freeze, fwd.thaw},
		{troubleUnreachable, fwd.cut, func() { fwd.restore(t) }},
	}
	for i, o := range outages {
		o.start()
		// Requests move the pool's figures: a status write every stats
		// interval (1s), each failing, retried within a heartbeat (1s).
		before := failures.counts()
		for failures.since(before, "/leases/") < 6 || failures.since(before, "/status") < 6 {
			if code, _, err := get(url); err != nil || code != 200 {
				t.Fatalf("with %s: %d %v", o.kind, code, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		o.end()
		book.WaitForN(t, "Renewed the agent's lease again", i+1)
		for len(ofPool(book.Find("Reported status again"), key)) < i+1 {
			if code, _, err := get(url); err != nil || code != 200 {
				t.Fatalf("after %s: %d %v", o.kind, code, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%s: %d lease renewals and %d status writes failed", o.kind, failures.since(before, "/leases/"),
			failures.since(before, "/status"))
	}

	checkOncePerKind(t, "the Lease's renewals", book.Find("Could not renew the agent's lease"), troubleNoAnswer, troubleUnreachable)
	checkOncePerKind(t, "the pool's status writes", ofPool(book.Find("Could not report status"), key), troubleNoAnswer, troubleUnreachable)
	book.Check(t)
}

// checkOncePerKind fails t unless the failures of what logged (es) are
// one line for each of kinds (troubleKeys).
func checkOncePerKind(t *testing.T, what string, es []agenttest.LogEntry, kinds ...string) {
	t.Helper()
	perKind := map[string][]string{}
	for _, e := range es {
		perKind[troubleKey(e.Err)] = append(perKind[troubleKey(e.Err)], e.Err.Error())
	}
	for _, kind := range kinds {
		if n := len(perKind[kind]); n != 1 {
			t.Errorf("%s failing because %s logged %d times, want once:\n%s", what, kind, n, strings.Join(perKind[kind], "\n"))
		}
	}
}

// TestDrainFinalizerThroughAnOutage: a deleted pool's finalizer that
// cannot be taken off through an outage (the API server answers nothing,
// then refuses connections) is taken off once it is over. Its failures
// are logged once per kind of outage, not at every retry, and the release
// with how long they lasted.
func TestDrainFinalizerThroughAnOutage(t *testing.T) {
	ns := namespace(t)
	onCue, endDelay := drainDelayOnCue()
	defer endDelay()
	fwd, failures, book := outageAgent(t, "node-f", onCue)
	pp, key := readyPool(t, ns, "app-node-f", "node-f", freePort(t))
	finalizerPatches := func(path string) bool { return strings.HasSuffix(path, "/processpools/"+pp.Name) }
	if err := env.Client.Delete(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	book.WaitFor(t, "Pool deleted; serving on for the drain delay")

	outages := []struct {
		kind       string
		start, end func()
	}{
		{troubleNoAnswer, fwd.freeze, func() {}}, // the cut ends the freeze
		{troubleUnreachable, fwd.cut, func() { fwd.restore(t) }},
	}
	for _, o := range outages {
		before := failures.counts()
		o.start()
		endDelay() // the first outage begun: the removal meets it
		waitUntil(t, "the finalizer's removal to fail twice with "+o.kind, func() bool {
			return failures.sinceWhere(before, finalizerPatches) >= 2
		})
		o.end()
	}
	waitUntil(t, "the deleted pool released", func() bool {
		return apierrors.IsNotFound(env.Client.Get(context.Background(), key, &ferryv1.ProcessPool{}))
	})

	checkOncePerKind(t, "the finalizer's removal", book.Find("Could not remove the drain finalizer"), troubleNoAnswer, troubleUnreachable)
	if v, _ := book.WaitFor(t, "Drained deleted pool").Value("failedFor"); v == nil {
		t.Error("the release after failures logged without failedFor")
	}
	book.Check(t)
}

// TestAgentStopEndsTheFinalizersRetryWait: an agent told to stop while
// the removal of a drained pool's finalizer waits to be tried again (the
// API server unreachable) stops without waiting for that retry: it tries
// once more, then leaves the finalizer to the node's next agent, saying
// so. The retry is 5 minutes away here (30s at most in the agent), so an
// agent that slept through it would not stop within the test's minute.
func TestAgentStopEndsTheFinalizersRetryWait(t *testing.T) {
	ns := namespace(t)
	fwd, cfg := throughForwarder(t)
	cfg.Timeout = time.Second
	book := agenttest.NewLogbook(t)
	onCue, endDelay := drainDelayOnCue()
	defer endDelay()
	stop := runAgent(t, "node-fw", cfg, stateDir(t), logTo(book), onCue, func(o *Options) {
		o.releaseRetry = func(int) time.Duration { return 5 * time.Minute }
	})
	pp, _ := readyPool(t, ns, "app-node-fw", "node-fw", freePort(t))
	if err := env.Client.Delete(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	book.WaitFor(t, "Pool deleted; serving on for the drain delay")
	fwd.cut()
	endDelay() // the API server unreachable: the removal fails
	book.WaitFor(t, "Could not remove the drain finalizer; will retry")

	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("the agent did not stop within a minute of its context's end: its release of a drained pool's " +
			"finalizer waited for its retry (in 5m) instead of ending with the agent")
	}
	book.WaitFor(t, "Could not remove the drain finalizer; the node's next agent will")
	book.Check(t)
}

// TestFailedSaveIsTriedAgainThroughAnOutage: a save of a pool's spec that
// fails (a directory in the way of its write, as a full or failing disk
// would fail it) is tried again on its own, not at the pool's next
// reconcile, which its status writes bring only while the API server
// answers: with the API server unreachable and the disk then mended, the
// new spec is saved without any event, so an agent restarted then
// resumes it, not the older one: an agent started on its state
// directory, the API server still unreachable, resumes the new revision.
// Its failures are logged once, not at every retry, and the save after
// them says so.
func TestFailedSaveIsTriedAgainThroughAnOutage(t *testing.T) {
	ns := namespace(t)
	fwd, cfg := throughForwarder(t)
	cfg.Timeout = time.Second
	book := agenttest.NewLogbook(t)
	dir := stateDir(t)
	var failedSaves atomic.Int32
	stop := runAgent(t, "node-sf", cfg, dir, logTo(book), func(o *Options) {
		o.saveRetry = 100 * time.Millisecond
		o.saveFailed = func(types.NamespacedName) { failedSaves.Add(1) }
	})
	pp, key := readyPool(t, ns, "app-node-sf", "node-sf", freePort(t))
	path := (&store{dir: filepath.Join(dir, "pools")}).path(key)
	if err := os.Mkdir(path+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	patchPool(t, pp, func(p *ferryv1.ProcessPool) { p.Spec.Revision = "2-bbb" })
	book.WaitFor(t, "Could not save the pool's spec")

	fwd.cut()
	defer fwd.restore(t)
	before := failedSaves.Load()
	waitUntil(t, "three failed saves with the API server unreachable", func() bool { return failedSaves.Load() >= before+3 })
	if err := os.Remove(path + ".tmp"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new spec saved, the API server unreachable", func() bool {
		saved, readErr, parseErr := readSpec(path)
		return readErr == nil && parseErr == nil && saved.Spec.Revision == "2-bbb" && saved.Generation == pp.Generation
	})

	if n := len(book.Find("Could not save the pool's spec")); n != 1 {
		t.Errorf("the failed saves logged %d times, want once", n)
	}
	if v, _ := book.WaitFor(t, "Saved the pool's spec after failed tries").Value("failedFor"); v == nil {
		t.Error("the save after failures logged without failedFor")
	}
	book.Check(t)

	// The API server still unreachable, an agent restarted resumes the
	// new spec from the disk. (On a node of its own, as every test's
	// agents are, claimNode: another test's pools there would be resumed
	// too.)
	stop()
	restarted := agenttest.NewLogbook(t)
	runAgent(t, "node-sf", cfg, dir, logTo(restarted))
	resumed := restarted.WaitFor(t, "Resumed pool from its saved spec")
	pool, _ := resumed.Value("pool")
	if rev, _ := resumed.Value("revision"); pool != key || rev != "2-bbb" {
		t.Errorf("the restarted agent resumed pool %v at revision %v, want %v at 2-bbb, the spec saved by the retry", pool, rev, key)
	}
}

// outageAgent runs an agent for node through a forwarder (returned, to
// freeze or cut) with 1s deadlines, with its failed requests counted and
// its log in a logbook; opts change its options first.
func outageAgent(t *testing.T, node string, opts ...func(*Options)) (*forwarder, *failureCounts, *agenttest.Logbook) {
	t.Helper()
	fwd, cfg := throughForwarder(t)
	cfg.Timeout = time.Second
	failures := countFailures(cfg)
	book := agenttest.NewLogbook(t)
	runAgent(t, node, cfg, stateDir(t), append(opts, logTo(book))...)
	return fwd, failures, book
}

// failureCounts counts the requests through a config that failed without
// an answer, by path.
type failureCounts struct {
	mu     sync.Mutex
	failed []string // the paths
}

// countFailures has cfg's requests counted.
func countFailures(cfg *rest.Config) *failureCounts {
	fc := &failureCounts{}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err != nil {
				fc.mu.Lock()
				fc.failed = append(fc.failed, req.URL.Path)
				fc.mu.Unlock()
			}
			return resp, err
		})
	}
	return fc
}

func (fc *failureCounts) counts() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.failed)
}

// since is how many requests whose path holds part failed after the
// first n failures.
func (fc *failureCounts) since(n int, part string) int {
	return fc.sinceWhere(n, func(path string) bool { return strings.Contains(path, part) })
}

// sinceWhere is how many requests whose path is one of match's failed
// after the first n failures.
func (fc *failureCounts) sinceWhere(n int, match func(path string) bool) int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	count := 0
	for _, p := range fc.failed[n:] {
		if match(p) {
			count++
		}
	}
	return count
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
