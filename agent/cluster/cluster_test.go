package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/metrics"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/testenv"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The agents renew their Leases in Ferry's namespace.
	if _, err := env.Kubectl(context.Background(), "create", "namespace", contract.DefaultLeaseNamespace); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func example(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", name)
}

// freePort is testsupport.FreePort, as a pool's listen.port.
func freePort(t *testing.T) int32 {
	t.Helper()
	return int32(testsupport.FreePort(t))
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := "t-" + rand.String(6)
	if _, err := env.Kubectl(context.Background(), "create", "namespace", ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

// newPool is the ProcessPool a manager would write for node.
func newPool(ns, name, node, revision string, port int32, root string) *ferryv1.ProcessPool {
	d := func(x time.Duration) *metav1.Duration { return &metav1.Duration{Duration: x} }
	return &ferryv1.ProcessPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: contract.PoolLabels(name, node),
			Finalizers: []string{contract.DrainFinalizer}},
		Spec: ferryv1.ProcessPoolSpec{NodeName: node, AppGroup: name, Revision: revision, Template: ferryv1.AppTemplate{
			App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: root, StartupFile: "passenger_wsgi.py", Concurrency: 1},
			Listen: ferryv1.ListenSpec{Port: port},
			Pool: ferryv1.PoolSpec{MinProcesses: 2, MaxProcesses: 2, MaxRequestQueueSize: 100, QueueTimeout: d(time.Minute),
				IdleTimeout: d(5 * time.Minute), StartTimeout: d(30 * time.Second), ShutdownTimeout: d(10 * time.Second)},
			Restart: ferryv1.RestartSpec{Strategy: ferryv1.RestartRolling, ResistDeploymentErrors: ptr.To(true), MaxConcurrentNodes: 1},
		}},
	}
}

// runAgent runs an agent for node against cfg until the returned stop;
// opts may change its options first.
func runAgent(t *testing.T, node string, cfg *rest.Config, stateDir string, opts ...func(*Options)) (stop func()) {
	t.Helper()
	_, stop = startAgent(t, node, cfg, stateDir, opts...)
	return stop
}

// startAgent is runAgent that also returns the agent.
func startAgent(t *testing.T, node string, cfg *rest.Config, stateDir string, opts ...func(*Options)) (*Agent, func()) {
	t.Helper()
	claimNode(t, node)
	o := Options{NodeName: node, Config: cfg, BindAddress: "127.0.0.1", StateDir: stateDir,
		HeartbeatInterval: time.Second, StatsInterval: time.Second, Log: testr.New(t)}
	for _, f := range opts {
		f(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return a, stop
}

// nodesClaimed is, for each node these tests ran an agent on or gave a
// pool to, its nodeClaim. The package's tests share one API server, and a
// test's pools stay after it (nothing empties its namespace, and their
// drain finalizer keeps them): another test's agent on the node, or the
// same test's in a later run of -count, would run them, save their specs
// and resume them, on ports long since given to others.
var (
	nodesClaimedMu sync.Mutex
	nodesClaimed   = map[string]*nodeClaim{}
)

// nodeClaim is the test that claimed a node, and whether it has ended.
type nodeClaim struct {
	test  string
	ended bool
}

// claimNode fails t if another test, or an earlier run of t, ran an agent
// on node or gave it a pool: a test's agents and pools are on nodes of its
// own. Keyed by t.Name(), so a subtest claims its nodes apart from its
// parent's and its siblings'.
func claimNode(t *testing.T, node string) {
	t.Helper()
	nodesClaimedMu.Lock()
	defer nodesClaimedMu.Unlock()
	claim, taken := nodesClaimed[node]
	switch {
	case !taken:
		claim = &nodeClaim{test: t.Name()}
		nodesClaimed[node] = claim
		t.Cleanup(func() {
			nodesClaimedMu.Lock()
			defer nodesClaimedMu.Unlock()
			claim.ended = true
		})
	case claim.test != t.Name():
		t.Fatalf("%s ran an agent on %s or gave it a pool already; its pools there would run on this test's agent: give this test a node of its own", claim.test, node)
	case claim.ended:
		t.Fatalf("a previous run of %s left its pools on %s (their drain finalizer keeps them in the API server), where this run would meet them: run with -count=1", t.Name(), node)
	}
}

// readyPool creates a pool of the hello example named name on node,
// listening on port, and waits until its agent reports it rolled out.
func readyPool(t *testing.T, ns, name, node string, port int32) (*ferryv1.ProcessPool, types.NamespacedName) {
	t.Helper()
	pp := newPool(ns, name, node, "1-aaa", port, example("hello-wsgi"))
	if err := env.Client.Create(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pp)
	waitPool(t, key, "a ready report", rolledOut)
	return pp, key
}

func stateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fag")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// waitPool polls the pool of key until cond holds, for at most 90 s, and
// returns it.
func waitPool(t *testing.T, key types.NamespacedName, what string, cond func(*ferryv1.ProcessPool) bool) *ferryv1.ProcessPool {
	t.Helper()
	var pp *ferryv1.ProcessPool
	testsupport.Eventually(t, 90*time.Second, what, func() error {
		pp = &ferryv1.ProcessPool{}
		if err := env.Client.Get(context.Background(), key, pp); err != nil {
			return err
		}
		if !cond(pp) {
			return fmt.Errorf("not yet: %+v", pp.Status)
		}
		return nil
	})
	return pp
}

// waitUntil polls cond until it holds, for at most 90 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testsupport.Eventually(t, 90*time.Second, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

func rolledOut(pp *ferryv1.ProcessPool) bool {
	s := pp.Status
	c := meta.FindStatusCondition(s.Conditions, ferryv1.ConditionRollingRestart)
	return s.ObservedRevision == pp.Spec.Revision && s.ProcessCounts.Total > 0 && s.ProcessCounts.Updated == s.ProcessCounts.Total &&
		s.ProcessCounts.Ready == s.ProcessCounts.Total && c != nil && c.Status == metav1.ConditionFalse
}

func get(url string) (int, string, error) { return getWith(http.DefaultClient, url) }

// poolGone is nil once the pool of key is gone.
func poolGone(key types.NamespacedName) error {
	err := env.Client.Get(context.Background(), key, &ferryv1.ProcessPool{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err == nil:
		return errors.New("still there")
	}
	return err
}

// served is nil when url answers 200.
func served(url string) error {
	code, _, err := get(url)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("status %d", code)
	}
	return err
}

func getWith(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestAgentServesReportsRollsAndDrains(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	runAgent(t, "node-a", env.Config, stateDir(t))
	port := freePort(t)
	pp := newPool(ns, "hello-node-a", "node-a", "1-aaa", port, example("hello-wsgi"))
	claimNode(t, "node-b") // no agent runs there, but its pool stays
	other := newPool(ns, "hello-node-b", "node-b", "1-aaa", freePort(t), example("hello-wsgi"))
	for _, p := range []*ferryv1.ProcessPool{pp, other} {
		if err := env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	key := client.ObjectKeyFromObject(pp)

	got := waitPool(t, key, "a ready report", func(p *ferryv1.ProcessPool) bool {
		return meta.IsStatusConditionTrue(p.Status.Conditions, ferryv1.ConditionReady) && rolledOut(p)
	})
	if want := "127.0.0.1:" + strconv.Itoa(int(port)); got.Status.Address != want || got.Status.ReadyProcesses != "2/2" ||
		got.Status.HeartbeatTime == nil || len(got.Status.Processes) != 2 || got.Status.ObservedGeneration != got.Generation {
		t.Errorf("status = %+v, want address %s, 2/2 ready, a heartbeat and the process table", got.Status, want)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if code, _, err := get(url); err != nil || code != 200 {
		t.Fatalf("GET through the node's proxy: %d %v", code, err)
	}

	// The GET moved the figures: they go out at the stats interval, without
	// a change of state; the node's Lease is renewed at the heartbeat
	// interval.
	hb := got.Status.HeartbeatTime.Time
	waitPool(t, key, "a later report", func(p *ferryv1.ProcessPool) bool {
		return p.Status.HeartbeatTime != nil && p.Status.HeartbeatTime.After(hb)
	})
	lease := &coordinationv1.Lease{}
	leaseKey := types.NamespacedName{Namespace: contract.DefaultLeaseNamespace, Name: contract.AgentLeaseName("node-a")}
	if err := env.Client.Get(ctx, leaseKey, lease); err != nil {
		t.Fatalf("the agent's lease: %v", err)
	}
	if *lease.Spec.HolderIdentity != "node-a" || lease.Labels[contract.AgentLeaseComponentLabel] != contract.AgentLeaseComponent {
		t.Errorf("lease %+v", lease)
	}
	renewed := lease.Spec.RenewTime.Time
	waitUntil(t, "the agent's lease renewed", func() bool {
		return env.Client.Get(ctx, leaseKey, lease) == nil && lease.Spec.RenewTime.After(renewed)
	})

	// Another node's pool is not this agent's business.
	if o := (&ferryv1.ProcessPool{}); env.Client.Get(ctx, client.ObjectKeyFromObject(other), o) == nil &&
		o.Status.HeartbeatTime != nil {
		t.Errorf("the agent of node-a reported node-b's pool")
	}

	// A new revision rolls; RollingRestart shows while it does.
	patchPool(t, got, func(p *ferryv1.ProcessPool) { p.Spec.Revision = "2-bbb" })
	rolled := waitPool(t, key, "revision 2 rolled out", func(p *ferryv1.ProcessPool) bool {
		return p.Status.ObservedRevision == "2-bbb" && rolledOut(p)
	})
	for _, proc := range rolled.Status.Processes {
		if proc.Revision != "2-bbb" {
			t.Errorf("process %d on %s after the roll", proc.PID, proc.Revision)
		}
	}

	// A new port: the new one serves before the old one closes.
	newPort := freePort(t)
	patchPool(t, rolled, func(p *ferryv1.ProcessPool) { p.Spec.Template.Listen.Port = newPort })
	newURL := fmt.Sprintf("http://127.0.0.1:%d/", newPort)
	// Until the new port serves, the old one must: the old port checked
	// first, a refusal there means the new one has been open since before,
	// so its check after must succeed. Fresh connections: a kept one would
	// hide a closed listener.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	serves := func(u string) bool {
		resp, err := fresh.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	// A loop of its own, not waitUntil: it fails at once when neither
	// port serves, and tries often so as not to miss such a gap.
	deadline := time.Now().Add(time.Minute)
	for {
		oldServes := serves(url)
		if serves(newURL) {
			break
		}
		if !oldServes {
			t.Fatal("during the port move, neither the old port nor the new one served")
		}
		if time.Now().After(deadline) {
			t.Fatal("the new port never served")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rolled = waitPool(t, key, "the new address reported", func(p *ferryv1.ProcessPool) bool {
		return p.Status.Address == "127.0.0.1:"+strconv.Itoa(int(newPort))
	})
	url = newURL

	// Deleting: the agent drains, then lets the pool go.
	if err := env.Client.Delete(ctx, rolled); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, time.Minute, "the deleted pool gone (the agent removing its finalizer)", func() error {
		return poolGone(key)
	})
	if _, _, err := get(url); err == nil {
		t.Error("the proxy still answers after the pool was deleted")
	}
}

// TestDeletedPoolServesThroughItsDrainDelay: a deleted pool goes on
// taking new connections for the drain delay (load balancers still send
// to its node while they learn its endpoint is terminating), then drains
// and lets the pool go. The delay ends on the test's cue, once it has seen
// new connections served after the agent saw the deletion: a delay of
// seconds would race the test's requests on a loaded machine (the timer's
// own end is TestRecreatedDuringDrainDelay's and the successor tests').
func TestDeletedPoolServesThroughItsDrainDelay(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	m := metrics.New()
	book := agenttest.NewLogbook(t)
	onCue, endDelay := drainDelayOnCue()
	defer endDelay()
	runAgent(t, "node-dd", env.Config, stateDir(t), logTo(book), onCue, func(o *Options) { o.Metrics = m })
	port := freePort(t)
	pp, key := readyPool(t, ns, "hello-node-dd", "node-dd", port)
	if err := env.Client.Delete(ctx, pp); err != nil {
		t.Fatal(err)
	}
	// The agent has seen the deletion: without the delay it would drain
	// now, and refuse new connections.
	book.WaitFor(t, "Pool deleted; serving on for the drain delay")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 10 {
		resp, err := fresh.Get(url)
		if err != nil {
			t.Fatalf("new connection %d after the agent saw the pool's deletion: %v", i+1, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d after the agent saw the pool's deletion: %d", i+1, resp.StatusCode)
		}
	}
	if env.Client.Get(ctx, key, &ferryv1.ProcessPool{}) != nil {
		t.Error("the pool is gone while its drain delay runs")
	}
	endDelay()
	waitUntil(t, "the deleted pool gone after its drain delay", func() bool {
		return env.Client.Get(ctx, key, &ferryv1.ProcessPool{}) != nil
	})
	if _, err := fresh.Get(url); err == nil {
		t.Error("the proxy still answers after the pool was drained")
	}
	// Its metrics went with it (before its finalizer: the agent is done
	// with it then).
	if left := agenttest.PoolSeries(t, m.Registry, key.String()); len(left) > 0 {
		t.Errorf("series of the deleted pool %s left: %v", key, left)
	}
}

// drainDelayOnCue gives the agent drain delays (a deleted pool's, a moved
// port's, its stop's) that end once end is called: for a test that must
// act within one, which would race a delay of seconds on a loaded
// machine. The test defers end too, so that a test that fails before its
// cue does not hold its agent's stop (a cleanup, after the defers) for
// the hour.
func drainDelayOnCue() (opt func(*Options), end func()) {
	over := make(chan struct{})
	return func(o *Options) { o.DrainDelay, o.drainDelayOver = time.Hour, over }, sync.OnceFunc(func() { close(over) })
}

// deleteAndTouch deletes pp, waits until its agent serves out the drain
// delay (book), and then writes the pool, as its status or the manager's
// labels would be written: the agent's copy is stale from then on.
func deleteAndTouch(t *testing.T, book *agenttest.Logbook, pp *ferryv1.ProcessPool) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Delete(ctx, pp); err != nil {
		t.Fatal(err)
	}
	book.WaitFor(t, "Pool deleted; serving on for the drain delay")
	patchPool(t, getPool(t, client.ObjectKeyFromObject(pp)), func(p *ferryv1.ProcessPool) {
		metav1.SetMetaDataAnnotation(&p.ObjectMeta, "test.ferry.dev/touched", "yes")
	})
}

// TestDrainOfAPoolChangedMeanwhileLogsNoError: a deleted pool written
// during its drain delay (its status reported, or its labels patched by
// the manager) makes the agent's copy stale. Taking the finalizer off then
// meets a conflict, which is no failure: the agent reads the pool again
// and retries at once, without an error in its log.
func TestDrainOfAPoolChangedMeanwhileLogsNoError(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	book := agenttest.NewLogbook(t)
	onCue, endDelay := drainDelayOnCue()
	defer endDelay()
	runAgent(t, "node-cm", env.Config, stateDir(t), logTo(book), onCue)
	pp, key := readyPool(t, ns, "hello-node-cm", "node-cm", freePort(t))
	deleteAndTouch(t, book, pp)
	endDelay() // the pool written within it
	waitUntil(t, "the deleted pool released", func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, key, &ferryv1.ProcessPool{}))
	})
	book.WaitFor(t, "Drained deleted pool")
	for _, e := range book.Find("") {
		if e.IsError {
			t.Errorf("logged an error while draining a deleted pool: %q %v", e.Msg, e.KVs)
		}
	}
	book.Check(t)
}

// TestStoppingAgentSaysSo: an agent that stops (SIGTERM: an upgrade, a
// node drain) takes its node's processes and proxy with it. Its pools'
// last status must not go on saying they serve until its Lease goes
// stale: it reports Ready=False, AgentStopping, as it stops. Then it
// serves on, new connections too, for the drain delay (the manager takes
// the node out of the Service, and load balancers take a while to
// follow), and only then drains. Once stopped, its last report lists no
// process.
func TestStoppingAgentSaysSo(t *testing.T) {
	ns := namespace(t)
	stop := runAgent(t, "node-s", env.Config, stateDir(t), func(o *Options) { o.DrainDelay = 10 * time.Second })
	port := freePort(t)
	_, key := readyPool(t, ns, "hello-node-s", "node-s", port)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stop()
	}()
	pp := waitPool(t, key, "Ready=False, AgentStopping", func(p *ferryv1.ProcessPool) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady)
		return c != nil && c.Reason == ferryv1.ReasonAgentStopping
	})
	c := meta.FindStatusCondition(pp.Status.Conditions, ferryv1.ConditionReady)
	if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "node-s is stopping") || c.ObservedGeneration != pp.Generation {
		t.Errorf("Ready as the agent stops: %+v, want False, %s, naming the node", c, ferryv1.ReasonAgentStopping)
	}
	// What it says of its proxy holds through the drain delay.
	if !strings.Contains(c.Message, "serves on for the drain delay (10s)") || strings.Contains(c.Message, "its proxy takes no new connections") {
		t.Errorf("Ready's message as the agent stops: %q, want it to say that the proxy serves on for the drain delay (10s)", c.Message)
	}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if code, _, err := getWith(fresh, fmt.Sprintf("http://127.0.0.1:%d/", port)); code != http.StatusOK {
		t.Errorf("a new connection in the drain delay: %d, %v; want it served", code, err)
	}
	testsupport.Receive(t, 2*time.Minute, "the agent stopped after its drain delay (10s)", stopped)
	if _, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Error("the proxy still answers after the agent stopped")
	}
	// Its processes are gone, and its last report says so, not only its
	// Lease once stale.
	pp = waitPool(t, key, "the stopped agent's last report", func(p *ferryv1.ProcessPool) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady)
		return c != nil && strings.Contains(c.Message, "node-s stopped")
	})
	if c := meta.FindStatusCondition(pp.Status.Conditions, ferryv1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != ferryv1.ReasonAgentStopping {
		t.Errorf("Ready once the agent stopped: %+v, want False, %s", c, ferryv1.ReasonAgentStopping)
	}
	if n := pp.Status.ProcessCounts.Ready; n != 0 || len(pp.Status.Processes) != 0 {
		t.Errorf("once the agent stopped, its pool reports %d ready processes of %v; want none", n, pp.Status.Processes)
	}
}

// TestMovedPortServesThroughTheDrainDelay: after a move of listen.port,
// the old port goes on taking new connections for the drain delay (the
// manager moves the node's endpoint only once the agent reports the new
// port, and load balancers follow later still), then drains; the status
// reports the new port at once.
func TestMovedPortServesThroughTheDrainDelay(t *testing.T) {
	ns := namespace(t)
	runAgent(t, "node-d", env.Config, stateDir(t), func(o *Options) { o.DrainDelay = 20 * time.Second })
	oldPort := freePort(t)
	_, key := readyPool(t, ns, "hello-node-d", "node-d", oldPort)
	newPort := freePort(t)
	setPort(t, key, newPort)
	moved := waitPool(t, key, "the new port reported", func(p *ferryv1.ProcessPool) bool {
		return p.Status.Address == "127.0.0.1:"+strconv.Itoa(int(newPort)) && p.Status.ListenPort == newPort
	})
	if c := meta.FindStatusCondition(moved.Status.Conditions, ferryv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Ready after the move: %+v", c)
	}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	serves := func(port int32) error {
		resp, err := fresh.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := serves(newPort); err != nil {
		t.Fatalf("the new port, reported: %v", err)
	}
	if err := serves(oldPort); err != nil {
		t.Fatalf("the old port, within the drain delay after the move: %v", err)
	}
	waitUntil(t, "the old port drained after the drain delay", func() bool { return serves(oldPort) != nil })
}

// TestMoveBackWithinTheDrainDelay: listen.port moves from A to B and back
// to A while A still serves out its drain delay: the pool takes A's proxy
// back (its listener holds A) rather than failing to listen there, and B
// drains in its turn (found by review).
func TestMoveBackWithinTheDrainDelay(t *testing.T) {
	ns := namespace(t)
	runAgent(t, "node-mb", env.Config, stateDir(t), func(o *Options) { o.DrainDelay = 20 * time.Second })
	portA := freePort(t)
	_, key := readyPool(t, ns, "hello-node-mb", "node-mb", portA)
	portB := freePort(t)
	setPort(t, key, portB)
	waitPool(t, key, "port B reported", func(p *ferryv1.ProcessPool) bool {
		return p.Status.Address == "127.0.0.1:"+strconv.Itoa(int(portB)) && p.Status.ListenPort == portB
	})
	setPort(t, key, portA)
	back := waitPool(t, key, "port A reported", func(p *ferryv1.ProcessPool) bool { return p.Status.ListenPort == portA })
	if c := meta.FindStatusCondition(back.Status.Conditions, ferryv1.ConditionReady); c.Status != metav1.ConditionTrue ||
		back.Status.Address != "127.0.0.1:"+strconv.Itoa(int(portA)) {
		t.Errorf("after the move back to A within its drain delay: address %s, Ready %s %s %q", back.Status.Address, c.Status, c.Reason, c.Message)
	}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, port := range []int32{portA, portB} { // B serves out its own drain delay
		resp, err := fresh.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatalf("port %d after the move back: %v", port, err)
		}
		resp.Body.Close()
	}
}

func TestAgentReportsDeploymentError(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	runAgent(t, "node-r", env.Config, stateDir(t))
	pp := newPool(ns, "app-node-r", "node-r", "1-aaa", freePort(t), example("hello-wsgi"))
	if err := env.Client.Create(ctx, pp); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pp)
	got := waitPool(t, key, "ready", rolledOut)
	patchPool(t, got, func(p *ferryv1.ProcessPool) {
		p.Spec.Revision = "2-broken"
		p.Spec.Template.App.Root = example("broken-wsgi")
	})
	resisting := waitPool(t, key, "resistance reported", func(p *ferryv1.ProcessPool) bool {
		return meta.IsStatusConditionTrue(p.Status.Conditions, ferryv1.ConditionResistingDeploymentError)
	})
	de := resisting.Status.DeploymentError
	if de == nil || de.Revision != "2-broken" || !strings.Contains(de.Output, "Traceback") ||
		resisting.Status.ObservedRevision != "2-broken" {
		t.Errorf("deploymentError = %+v, observedRevision %q", de, resisting.Status.ObservedRevision)
	}
	c := meta.FindStatusCondition(resisting.Status.Conditions, ferryv1.ConditionResistingDeploymentError)
	if !strings.Contains(c.Message, "Resisting deployment error") {
		t.Errorf("condition message %q", c.Message)
	}
	if resisting.Status.ProcessCounts.Ready != 2 {
		t.Errorf("old processes not serving: %+v", resisting.Status.ProcessCounts)
	}
}

// TestAgentReportsSpawnFailuresOfACrashLoop: processes that die soon
// after they are ready (2 s, within the crash window) are counted in the
// status as failed spawns in a row (spawnFailures), and the count stays
// between deaths, while the replacement is ready and ScalingError is
// False: kubectl ferry restart --wait reads it there to tell a second
// death from a first. Once one lives the crash window, it is 0 again,
// lastSpawnError staying. Before, the status carried no count (seen
// failing: waited 90 s for it).
func TestAgentReportsSpawnFailuresOfACrashLoop(t *testing.T) {
	ns := namespace(t)
	runAgent(t, "node-c", env.Config, stateDir(t))
	flag := filepath.Join(testsupport.WorkerDir(t), "die")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, file, _, _ := runtime.Caller(0)
	pp := newPool(ns, "app-node-c", "node-c", "1-aaa", freePort(t), filepath.Join(filepath.Dir(file), "..", "pool", "testdata", "bootdie"))
	tmpl := &pp.Spec.Template
	tmpl.Pool.MinProcesses, tmpl.Pool.MaxProcesses = 1, 1
	tmpl.Restart.ResistDeploymentErrors = ptr.To(false)
	// DIE_IF_EXISTS: only processes that boot while flag exists die.
	tmpl.App.Env = []ferryv1.EnvVar{{Name: "DIE_AFTER", Value: "2"}, {Name: "DIE_IF_EXISTS", Value: flag}}
	if err := env.Client.Create(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pp)
	youngDeath := func(p *ferryv1.ProcessPool) bool {
		e := p.Status.LastSpawnError
		return e != nil && e.Revision == "1-aaa" && contract.DiedAfterReadyIn(e.Reason)
	}
	waitPool(t, key, "two young deaths counted, the replacement ready", func(p *ferryv1.ProcessPool) bool {
		return youngDeath(p) && p.Status.SpawnFailures >= 2 && p.Status.ProcessCounts.Ready == 1 &&
			meta.IsStatusConditionFalse(p.Status.Conditions, ferryv1.ConditionScalingError)
	})
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	waitPool(t, key, "the count over once a process lived the crash window", func(p *ferryv1.ProcessPool) bool {
		return youngDeath(p) && p.Status.SpawnFailures == 0 && p.Status.LastedRevision == "1-aaa"
	})
}

// TestPortTakenIsReported: a pool whose port is taken says so in Ready
// (another process holds it: none of the agent's own pools does, see
// TestAgentHeldPort), logs it once (as what it is, no error of the
// agent's), and listens as soon as the port is free.
func TestPortTakenIsReported(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	book := agenttest.NewLogbook(t)
	runAgent(t, "node-p", env.Config, stateDir(t), logTo(book))
	port := freePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	pp := newPool(ns, "app-node-p", "node-p", "1-aaa", port, example("hello-wsgi"))
	if err := env.Client.Create(ctx, pp); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pp)
	waitPool(t, key, "ListenFailed", func(p *ferryv1.ProcessPool) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady)
		return c != nil && c.Reason == ferryv1.ReasonListenFailed && strings.Contains(c.Message, "address already in use") &&
			strings.Contains(c.Message, fmt.Sprintf("another process on the node holds port %d", port))
	})
	// A sleep that stays: a retry that fails again changes nothing a test
	// can see (no new line is the point), so wait four retries' time (one
	// every half heartbeat, 500ms here) before counting the lines.
	time.Sleep(2 * time.Second)
	checkCannotListenLogged(t, book, "Proxy cannot listen; will retry", port)
	l.Close()
	waitPool(t, key, "Ready once the port is free", func(p *ferryv1.ProcessPool) bool {
		return meta.IsStatusConditionTrue(p.Status.Conditions, ferryv1.ConditionReady)
	})
	if v, _ := book.WaitFor(t, "Proxy listens again").Value("port"); v != port {
		t.Errorf("Proxy listens again: port %v, want %d", v, port)
	}
	book.Check(t)
}

// checkCannotListenLogged: a port that cannot be opened is logged once,
// with msg, at Info with the error, however often it is tried again; no
// line says so as an error.
func checkCannotListenLogged(t *testing.T, book *agenttest.Logbook, msg string, port int32) {
	t.Helper()
	lines := book.Find(msg)
	if len(lines) != 1 {
		t.Fatalf("%d lines %q, want one however often the port is tried", len(lines), msg)
	}
	e := lines[0]
	errText, _ := e.Value("error")
	if s, _ := errText.(string); e.IsError || !strings.Contains(s, "address already in use") {
		t.Errorf("%q: logged as an error %v, error %#v; want Info with the error's text", msg, e.IsError, errText)
	}
	if v, _ := e.Value("port"); v != port {
		t.Errorf("%q: port %v, want %d", msg, v, port)
	}
	for _, e := range book.Find("") {
		if e.IsError && strings.Contains(strings.ToLower(e.Msg), "listen") {
			t.Errorf("logged as an error: %q %v", e.Msg, e.KVs)
		}
	}
}

// TestTakenPortIsTriedAgainSoon: a taken port is tried again every half
// heartbeat, whatever the stats interval: freed, it is served within
// seconds, although the pool's figures are due only every 10 minutes and
// nothing else wakes its reporter. (It was tried only when the reporter
// woke, up to a stats interval later.)
func TestTakenPortIsTriedAgainSoon(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	const stats, deadline = 10 * time.Minute, time.Minute
	runAgent(t, "node-t", env.Config, stateDir(t), func(o *Options) {
		o.StatsInterval, o.HeartbeatInterval = stats, 2*time.Second
	})
	port := freePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pp := newPool(ns, "app-node-t", "node-t", "1-aaa", port, example("hello-wsgi"))
	if err := env.Client.Create(ctx, pp); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pp)
	waitPool(t, key, "the workers ready, the port taken", func(p *ferryv1.ProcessPool) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady)
		return rolledOut(p) && c != nil && c.Reason == ferryv1.ReasonListenFailed
	})

	l.Close()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	testsupport.Eventually(t, deadline, fmt.Sprintf("port %d freed, served (stats interval %v)", port, stats), func() error {
		return served(url)
	})
	waitPool(t, key, "Ready once the port is served", func(p *ferryv1.ProcessPool) bool {
		return meta.IsStatusConditionTrue(p.Status.Conditions, ferryv1.ConditionReady) &&
			p.Status.Address == fmt.Sprintf("127.0.0.1:%d", port)
	})
}

// forwarder is a TCP proxy to the API server that a test can cut and
// restore, to make the API server unreachable for the agent only, or
// freeze and thaw, to make it answer nothing.
type forwarder struct {
	target string
	mu     sync.Mutex
	l      net.Listener
	addr   string
	conns  map[net.Conn]bool
	// thawed is closed when the forwarder is not frozen: nothing is
	// passed on while it is open.
	thawed chan struct{}
}

// throughForwarder is a forwarder to the test API server, and a config
// that reaches it through it (cut and restore make it unreachable and
// back).
func throughForwarder(t *testing.T) (*forwarder, *rest.Config) {
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	fwd := newForwarder(t, u.Host)
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://" + fwd.addr
	cfg.Timeout = 5 * time.Second
	return fwd, cfg
}

func newForwarder(t *testing.T, target string) *forwarder {
	f := &forwarder{target: target, conns: map[net.Conn]bool{}, thawed: make(chan struct{})}
	close(f.thawed)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	f.serve(l)
	t.Cleanup(f.cut)
	return f
}

func (f *forwarder) serve(l net.Listener) {
	f.mu.Lock()
	f.l = l
	f.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", f.target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns[c], f.conns[up] = true, true
			f.mu.Unlock()
			go f.pipe(up, c)
			go f.pipe(c, up)
		}
	}()
}

// pipe passes what src sends on to dst while the forwarder is not frozen.
func (f *forwarder) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.mu.Lock()
			thawed := f.thawed
			f.mu.Unlock()
			<-thawed
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// freeze makes the API server answer nothing, as one stopped with SIGSTOP:
// connections are still taken, new ones too, and what is sent on them
// waits until thaw.
func (f *forwarder) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.thawed = make(chan struct{})
}

// thaw passes on what waited, and what comes.
func (f *forwarder) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.thawLocked()
}

func (f *forwarder) thawLocked() {
	select {
	case <-f.thawed:
	default:
		close(f.thawed)
	}
}

// cut closes the listener and every connection: the API is unreachable.
func (f *forwarder) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.l != nil {
		f.l.Close()
		f.l = nil
	}
	for c := range f.conns {
		c.Close()
	}
	f.conns = map[net.Conn]bool{}
	f.thawLocked() // what waited finds its connection closed
}

func (f *forwarder) restore(t *testing.T) {
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	f.serve(l)
}

// TestAgentSurvivesTheAPIServer: with the API server unreachable the agent
// keeps serving; restarted while it is still unreachable, it resumes its
// pool from disk, and nothing else; once it is back, the status catches
// up.
func TestAgentSurvivesTheAPIServer(t *testing.T) {
	ns := namespace(t)
	fwd, cfg := throughForwarder(t)
	state := stateDir(t)
	book := agenttest.NewLogbook(t)
	stop := runAgent(t, "node-sa", cfg, state, logTo(book))

	port := freePort(t)
	_, key := readyPool(t, ns, "app-node-sa", "node-sa", port)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	fwd.cut()
	for range 20 {
		if code, _, err := get(url); err != nil || code != 200 {
			t.Fatalf("with the API unreachable: %d %v", code, err)
		}
	}
	// Restart the agent while the API is still away: it resumes from disk.
	stop()
	if _, _, err := get(url); err == nil {
		t.Fatal("the stopped agent still serves")
	}
	restarted := agenttest.NewLogbook(t)
	a, _ := startAgent(t, "node-sa", cfg, state, logTo(restarted))
	testsupport.Eventually(t, time.Minute, "the restarted agent resuming its pool from disk", func() error {
		return served(url)
	})
	// What it resumed is this test's pool alone: restore is done once the
	// agent is Ready, the API server away (it never synced).
	waitUntil(t, "the restarted agent Ready on its saved specs", a.Ready)
	var resumed []any
	for _, e := range restarted.Find("Resumed pool from its saved spec") {
		pool, _ := e.Value("pool")
		resumed = append(resumed, pool)
	}
	if running := runningPools(a); len(resumed) != 1 || resumed[0] != key || !slices.Equal(running, []types.NamespacedName{key}) {
		t.Errorf("the restarted agent resumed %v and runs %v, want %v alone", resumed, running, key)
	}
	// Stopping an agent that resumed from disk, with the API still away,
	// must not hang (its reporters never saw the cache synced).
	stop2 := runAgent(t, "node-sa-probe", cfg, stateDir(t))
	stopped := make(chan struct{})
	go func() { stop2(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("an agent with the API server away did not stop")
	}
	before := waitPool(t, key, "the last report", func(*ferryv1.ProcessPool) bool { return true }).Status.HeartbeatTime.Time

	fwd.restore(t)
	waitPool(t, key, "the status to catch up", func(p *ferryv1.ProcessPool) bool {
		return p.Status.HeartbeatTime != nil && p.Status.HeartbeatTime.After(before) && rolledOut(p)
	})
	// Its reports waited for the sync (TestRestartWithSavedPoolsLogsNoError):
	// the failed writes' line is TestStatusWritesFailingAreLoggedOnce's.
	book.Check(t)
	restarted.Check(t)
}

// runningPools are the pools a runs, sorted.
func runningPools(a *Agent) []types.NamespacedName {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := slices.Collect(maps.Keys(a.pools))
	slices.SortFunc(keys, func(x, y types.NamespacedName) int { return strings.Compare(x.String(), y.String()) })
	return keys
}

// TestStatusWritesFailingAreLoggedOnce: while the API server is away, a
// pool whose figures move tries to write its status every heartbeat. An
// outage of minutes on a node with many pools must not write a line per
// pool per heartbeat: as the Lease's renewals, a failure is logged when
// it starts, when it fails in a way not yet logged since, and every five
// minutes while it lasts; its end once.
func TestStatusWritesFailingAreLoggedOnce(t *testing.T) {
	ns := namespace(t)
	fwd, cfg := throughForwarder(t)
	book := agenttest.NewLogbook(t)
	runAgent(t, "node-q", cfg, stateDir(t), logTo(book))
	port := freePort(t)
	_, key := readyPool(t, ns, "app-node-q", "node-q", port)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	fwd.cut()
	// Requests move the pool's figures: each stats interval (1s here) is
	// a write, which fails, and is retried every heartbeat (1s).
	failing := func() []agenttest.LogEntry {
		var es []agenttest.LogEntry
		for _, e := range book.Find("Could not report status") {
			if v, _ := e.Value("pool"); v == key {
				es = append(es, e)
			}
		}
		return es
	}
	for len(failing()) == 0 {
		if code, _, err := get(url); err != nil || code != 200 {
			t.Fatalf("with the API unreachable: %d %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for start := time.Now(); time.Since(start) < 4*time.Second; time.Sleep(50 * time.Millisecond) {
		if code, _, err := get(url); err != nil || code != 200 {
			t.Fatalf("with the API unreachable: %d %v", code, err)
		}
	}
	before := waitPool(t, key, "the last report", func(*ferryv1.ProcessPool) bool { return true }).Status.HeartbeatTime.Time
	fwd.restore(t)
	waitPool(t, key, "the status to catch up", func(p *ferryv1.ProcessPool) bool {
		return p.Status.HeartbeatTime != nil && p.Status.HeartbeatTime.After(before)
	})
	es := failing()
	if v, _ := es[0].Value("retryIn"); v != "500ms" {
		t.Errorf("retryIn logged as %#v, want \"500ms\"", v)
	}
	for i, e := range es {
		if v, _ := e.Value("failingSince"); v == nil {
			t.Errorf("%q without failingSince: %v", e.Msg, e.KVs)
		}
		if i > 0 && troubleKey(e.Err) == troubleKey(es[i-1].Err) {
			t.Errorf("the same failure logged again within %v: %v (%d lines in all)", leaseRemindEvery, e.Err, len(es))
			break
		}
	}
	if v, _ := book.WaitFor(t, "Reported status again").Value("failedFor"); v == nil {
		t.Error("the end of the failures logged without failedFor")
	}
	book.Check(t)
}

// TestRestartWithSavedPoolsLogsNoError: an agent restarted with the API
// server up (an upgrade, a node reboot) resumes its pools from their
// saved specs before its cache has synced. That its first reports wait
// for the sync is no failure: nothing is logged as an error.
func TestRestartWithSavedPoolsLogsNoError(t *testing.T) {
	ns := namespace(t)
	dir := stateDir(t)
	stop := runAgent(t, "node-w", env.Config, dir)
	_, key := readyPool(t, ns, "hello-node-w", "node-w", freePort(t))
	stop()
	before := waitPool(t, key, "the last report", func(*ferryv1.ProcessPool) bool { return true }).Status.HeartbeatTime.Time
	book := agenttest.NewLogbook(t)
	runAgent(t, "node-w", env.Config, dir, logTo(book))
	book.WaitFor(t, "Resumed pool from its saved spec")
	waitPool(t, key, "a report of the restarted agent", func(p *ferryv1.ProcessPool) bool {
		return p.Status.HeartbeatTime != nil && p.Status.HeartbeatTime.After(before) && rolledOut(p)
	})
	for _, e := range book.Find("") {
		if e.IsError {
			t.Errorf("logged an error while resuming with the API server up: %q %v: %v", e.Msg, e.KVs, e.Err)
		}
	}
	book.Check(t)
}

// TestSimulatedWorkers: the benchmark-only mode reports processes and rolls
// revisions without running any.
func TestSimulatedWorkers(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	claimNode(t, "node-sim")
	a, err := New(Options{NodeName: "node-sim", Config: env.Config, BindAddress: "127.0.0.1", StateDir: stateDir(t),
		HeartbeatInterval: time.Second, Log: testr.New(t), SimulateWorkers: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	pp := newPool(ns, "sim-node-sim", "node-sim", "1-aaa", freePort(t), "/nonexistent/app")
	if err := env.Client.Create(ctx, pp); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pp)
	got := waitPool(t, key, "simulated processes", rolledOut)
	if got.Status.ReadyProcesses != "2/2" {
		t.Fatalf("status %+v", got.Status)
	}
	patchPool(t, got, func(p *ferryv1.ProcessPool) { p.Spec.Revision = "2-bbb" })
	waitPool(t, key, "a simulated roll", func(p *ferryv1.ProcessPool) bool {
		return p.Status.ObservedRevision == "2-bbb" && rolledOut(p)
	})
}

// TestRecreatedDuringDrainDelay: a deleted pool is released by hand
// (or by the manager, its Node gone) while its agent waits out the drain
// delay, and a pool of the same name is created on the node again. The
// old drain leaves the new pool's finalizer and saved spec alone. (Found by
// review: it removed both.)
func TestRecreatedDuringDrainDelay(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	dir := stateDir(t)
	book := agenttest.NewLogbook(t)
	m := metrics.New()
	runAgent(t, "node-rc", env.Config, dir, logTo(book), func(o *Options) { o.DrainDelay = 3 * time.Second; o.Metrics = m })
	port := freePort(t)
	pp, key := readyPool(t, ns, "hello-node-rc", "node-rc", port)
	releaseDuringDrain(t, dir, pp, key)
	pp2 := newPool(ns, "hello-node-rc", "node-rc", "1-aaa", port, example("hello-wsgi"))
	if err := env.Client.Create(ctx, pp2); err != nil {
		t.Fatal(err)
	}
	waitPool(t, key, "the new pool ready", rolledOut) // its spec saved before it started
	// What must not happen would happen when the old delay ends: nothing
	// shows that it has, so wait past it.
	time.Sleep(4 * time.Second)
	got := &ferryv1.ProcessPool{}
	if err := env.Client.Get(ctx, key, got); err != nil {
		if apierrors.IsNotFound(err) {
			t.Fatal("new pool gone")
		}
		t.Fatal(err)
	}
	if got.UID != pp2.UID {
		t.Fatalf("not the new pool")
	}
	if !slices.Contains(got.Finalizers, contract.DrainFinalizer) {
		t.Errorf("the old pool's drain removed the new pool's drain finalizer: %v", got.Finalizers)
	}
	st, err := newStore(dir + "/pools")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.path(key)); err != nil {
		t.Errorf("the new pool's saved spec: %v", err)
	}
	if v, _ := book.WaitFor(t, "Pool deleted; serving on for the drain delay").Value("drainDelay"); v != "3s" {
		t.Errorf("drainDelay logged as %#v, want \"3s\"", v)
	}
	// The old pool's end took neither the new one's status from the
	// scrape nor its series (they share the name).
	if got := agenttest.PoolSeries(t, m.Registry, key.String()); got["ferry_queue_length"] != 1 || got["ferry_spawns_total"] == 0 {
		t.Errorf("series of the new pool %s after the old one drained: %v, want its status and spawns", key, got)
	}
	book.Check(t)
}

// TestPortMoveOntoTakenPortKeepsOldPort: listen.port changed to a port
// another program holds on the node. The API promises that "a node where
// the new port is taken stays on the old one"; the pool must keep serving
// on its old port until the new one can be opened, not go dark on both,
// and its status must say so: the address is the old port's, and Ready
// (False, ListenFailed) names both ports. Once the new port is free, the
// pool moves there and the old port drains.
func TestPortMoveOntoTakenPortKeepsOldPort(t *testing.T) {
	ns := namespace(t)
	book := agenttest.NewLogbook(t)
	runAgent(t, "node-m", env.Config, stateDir(t), logTo(book))
	oldPort := freePort(t)
	_, key := readyPool(t, ns, "app-node-m", "node-m", oldPort)
	oldAddr := fmt.Sprintf("127.0.0.1:%d", oldPort)
	oldURL := "http://" + oldAddr + "/"
	if code, _, err := get(oldURL); err != nil || code != 200 {
		t.Fatalf("GET on the old port before the move: %d %v", code, err)
	}

	// Another program holds the new port.
	newPort := freePort(t)
	newAddr := fmt.Sprintf("127.0.0.1:%d", newPort)
	l, err := net.Listen("tcp", newAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	setPort(t, key, newPort)
	failed := waitPool(t, key, "ListenFailed on the new port", func(p *ferryv1.ProcessPool) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady)
		return c != nil && c.Reason == ferryv1.ReasonListenFailed
	})
	if failed.Status.Address != oldAddr {
		t.Errorf("status.address = %q while the old port serves, want the old port's %q", failed.Status.Address, oldAddr)
	}
	c := meta.FindStatusCondition(failed.Status.Conditions, ferryv1.ConditionReady)
	for _, want := range []string{fmt.Sprintf("cannot listen on port %d", newPort), "address already in use",
		fmt.Sprintf("still serves on the old port %d until %d is free", oldPort, newPort)} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Ready's message %q lacks %q", c.Message, want)
		}
	}
	if c.Status != metav1.ConditionFalse {
		t.Errorf("Ready = %s while the spec's port is not served, want False", c.Status)
	}

	// Give the old proxy's drain, were it started, time to close its listener.
	time.Sleep(2 * time.Second)
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	pids := map[string]bool{}
	for _, p := range failed.Status.Processes {
		pids[strconv.Itoa(int(p.PID))] = true
	}
	for range 5 {
		code, body, err := getWith(fresh, oldURL)
		if err != nil {
			t.Fatalf("the pool serves on neither port: the old port %d was drained although the new port %d is taken: %v",
				oldPort, newPort, err)
		}
		if code != http.StatusOK || !pids[strings.TrimSpace(body)] {
			t.Fatalf("GET on the old port after a move onto a taken port: %d %q, want 200 from a worker of %v", code, body, pids)
		}
	}
	checkCannotListenLogged(t, book, "The new port is taken; serving on the old one until it is free", newPort)
	if n := len(book.Find("Proxy cannot listen")); n != 0 {
		t.Errorf("%d lines say the proxy cannot listen, besides the one that says the old port serves", n)
	}

	// Once the new port is free, the pool moves there.
	l.Close()
	waitPool(t, key, "the status on the new port, Ready", func(p *ferryv1.ProcessPool) bool {
		return p.Status.Address == newAddr && meta.IsStatusConditionTrue(p.Status.Conditions, ferryv1.ConditionReady)
	})
	if code, _, err := getWith(fresh, "http://"+newAddr+"/"); err != nil || code != 200 {
		t.Fatalf("GET on the new port once free: %d %v", code, err)
	}
	waitUntil(t, "the old port drained", func() bool {
		_, _, err := getWith(fresh, oldURL)
		return err != nil
	})
	if v, _ := book.WaitFor(t, "Proxy listens again; the old port drains").Value("port"); v != newPort {
		t.Errorf("Proxy listens again: port %v, want %d", v, newPort)
	}
	book.Check(t)
}

// releaseDuringDrain deletes pp, waits until the agent has seen that (it
// removes the pool's saved spec at the start of the drain delay, the pool
// serving on through it), then takes the drain finalizer off by hand, as
// an operator (or the manager, the Node gone) may, and waits for the pool
// to be gone from the API.
func releaseDuringDrain(t *testing.T, dir string, pp *ferryv1.ProcessPool, key types.NamespacedName) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Delete(ctx, pp); err != nil {
		t.Fatal(err)
	}
	st, err := newStore(dir + "/pools")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the deleted pool's saved spec removed", func() bool {
		_, err := os.Stat(st.path(key))
		return os.IsNotExist(err)
	})
	patchPool(t, getPool(t, key), func(p *ferryv1.ProcessPool) { controllerutil.RemoveFinalizer(p, contract.DrainFinalizer) })
	waitUntil(t, "the released pool gone", func() bool { return env.Client.Get(ctx, key, &ferryv1.ProcessPool{}) != nil })
}

// TestShutdownAfterMoveDrainsTheOldPort: an agent stopped right after its
// pool moved to a new port still answers a request that was arriving on
// the old one (its body half sent), before the pool's workers stop.
func TestShutdownAfterMoveDrainsTheOldPort(t *testing.T) {
	ns := namespace(t)
	stop := runAgent(t, "node-sm", env.Config, stateDir(t))
	oldPort := freePort(t)
	_, key := readyPool(t, ns, "app-node-sm", "node-sm", oldPort)

	req := agenttest.StartHalfSentEcho(t, fmt.Sprintf("127.0.0.1:%d", oldPort))
	newPort := freePort(t)
	setPort(t, key, newPort)
	newURL := fmt.Sprintf("http://127.0.0.1:%d/", newPort)
	waitUntil(t, "the new port serving", func() bool {
		code, _, err := get(newURL)
		return err == nil && code == 200
	})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stop()
	}()
	// The stop under way: the new port's proxy, which holds no request,
	// has shut down; the old one's request keeps the pool open.
	waitUntil(t, "the new port closed by the stop", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", newPort))
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case <-stopped:
		t.Error("the agent stopped while a request on its old port was in flight")
	default:
	}
	req.Finish(t)
	testsupport.Receive(t, 2*time.Minute, "the agent stopped once the old port's request was done", stopped)
}

// setPort patches the pool's listen.port.
func setPort(t *testing.T, key types.NamespacedName, port int32) {
	t.Helper()
	patchPool(t, getPool(t, key), func(p *ferryv1.ProcessPool) { p.Spec.Template.Listen.Port = port })
}

// getPool reads the pool at key from the API server.
func getPool(t *testing.T, key types.NamespacedName) *ferryv1.ProcessPool {
	t.Helper()
	pp := &ferryv1.ProcessPool{}
	if err := env.Client.Get(context.Background(), key, pp); err != nil {
		t.Fatal(err)
	}
	return pp
}

// patchPool merge-patches pp, in place, with what mutate changes in it.
func patchPool(t *testing.T, pp *ferryv1.ProcessPool, mutate func(*ferryv1.ProcessPool)) {
	t.Helper()
	patch := client.MergeFrom(pp.DeepCopy())
	mutate(pp)
	if err := env.Client.Patch(context.Background(), pp, patch); err != nil {
		t.Fatal(err)
	}
}

// TestAgentStoppedInADrainDelayReleasesThePool: an agent that stops
// (an upgrade, a node drain) while a deleted pool serves out its drain
// delay cuts the delay short, drains the pool and takes its drain
// finalizer off before it exits, though the pool was written meanwhile:
// the pool is gone once the agent is, not held until an agent starts on
// the node again. The deleted pool does not report AgentStopping nor
// serve on for a second drain delay as the node's other pools do.
func TestAgentStoppedInADrainDelayReleasesThePool(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	book := agenttest.NewLogbook(t)
	claimNode(t, "node-x")
	a, err := New(Options{NodeName: "node-x", Config: env.Config, BindAddress: "127.0.0.1", StateDir: stateDir(t),
		HeartbeatInterval: time.Second, StatsInterval: time.Second, Log: book.Logger(), DrainDelay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	pp, key := readyPool(t, ns, "hello-node-x", "node-x", freePort(t))
	deleteAndTouch(t, book, pp)
	// The stop ends the drain delay: the finalizer's removal is tried
	// with the agent stopped, on a copy the touch made stale.
	cancel()
	testsupport.Receive(t, 2*time.Minute, "the agent stopped in the deleted pool's drain delay", done)
	got := &ferryv1.ProcessPool{}
	if err := env.Client.Get(ctx, key, got); !apierrors.IsNotFound(err) {
		c := meta.FindStatusCondition(got.Status.Conditions, ferryv1.ConditionReady)
		t.Errorf("the deleted pool is still there after its agent stopped (finalizers %v, Ready %+v): %v", got.Finalizers, c, err)
	}
	if es := book.Find("Agent stopping; serving on"); len(es) > 0 {
		t.Errorf("the deleted pool served on as the agent stopped: %q", es[0].Msg)
	}
}
