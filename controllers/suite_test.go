package controllers_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"

	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/testenv"
)

var (
	// env is the real control plane; the manager under test runs against
	// it in this process.
	env *testenv.Env
	// clk is the manager's clock. Simulated agents stamp their heartbeats
	// with it; a test steps it to make reports stale.
	clk = clocktesting.NewFakePassiveClock(time.Now().Truncate(time.Second))
)

// managerUser is the manager's ServiceAccount, as config/rbac names it.
const managerUser = "system:serviceaccount:ferry-system:ferry-manager"

// staleAfter is the manager's --agent-stale-after in these tests.
const staleAfter = 40 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	// The manager's logs go to stderr, which go test shows only for a
	// failing package or with -v.
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()

	// The manager runs as its ServiceAccount, with only the RBAC in
	// config/rbac: every test also checks that it is enough.
	if err := applyRBAC(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: managerUser}

	stop, err := startManager(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { stopManager() }()
	stopManager = stop
	return m.Run()
}

// stopManager stops the manager under test (restartManager replaces it).
var stopManager func()

// managerConfig is the manager's client configuration, kept for
// restartManager.
var managerConfig *rest.Config

// startManager starts a manager, with a new AppGroupReconciler, against
// the control plane, and waits for its cache; stop stops it and waits.
func startManager(cfg *rest.Config) (stop func(), err error) {
	managerConfig = cfg
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(managerRequests.wrap)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		// Each pass's log lines count the passes over each AppGroup
		// (passes).
		Logger:                 logr.New(&passSink{next: ctrl.Log.GetSink()}),
		Scheme:                 env.Scheme,
		Cache:                  controllers.CacheOptions(contract.DefaultLeaseNamespace),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// A restarted manager registers its controllers' names again in
		// this process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, err
	}
	r := &controllers.AppGroupReconciler{
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		Scheme:          mgr.GetScheme(),
		Recorder:        loggingRecorder{next: mgr.GetEventRecorder(controllers.EventRecorderName), log: &recordedEvents},
		Clock:           clk,
		AgentStaleAfter: staleAfter,
		LeaseNamespace:  contract.DefaultLeaseNamespace,
		// The simulated agents' processes never crash: nothing to wait
		// for, but in withCrashWindow's tests (settleFor).
		SettleFor:            settleFor,
		ResyncEvery:          resyncEvery,
		MaxEndpointsPerSlice: maxEndpointsPerSlice,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	reconciler = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		stop()
		return nil, errors.New("the manager's cache did not sync")
	}
	return stop, nil
}

// reconciler is the manager under test's reconciler.
var reconciler *controllers.AppGroupReconciler

// setClock steps the manager's clock to at once the manager has seen every
// pool's report and every agent Lease's renewal as they are now. The
// manager times an agent's signs by when it sees them (signs): stepped
// before it saw a report just written, it would take the report for one
// made at the new time, which real time never does.
func setClock(t *testing.T, at time.Time) {
	t.Helper()
	eventually(t, "the manager to see the agents' last reports and renewals", func() error {
		ctx := context.Background()
		var pools ferryv1.ProcessPoolList
		if err := env.Client.List(ctx, &pools); err != nil {
			return err
		}
		var leases coordinationv1.LeaseList
		if err := env.Client.List(ctx, &leases, client.InNamespace(contract.DefaultLeaseNamespace)); err != nil {
			return err
		}
		if !controllers.SawSigns(reconciler, pools.Items, leases.Items) {
			return errors.New("not yet")
		}
		return nil
	})
	clk.SetTime(at)
}

// managerRequests counts the requests the manager under test sends the
// API server.
var managerRequests requestCounter

// requestCounter counts the requests of a client by method and path
// ("POST /api/v1/namespaces/ns/services").
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// wrap counts the requests sent through rt.
func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		c.mu.Lock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[req.Method+" "+req.URL.Path]++
		c.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

// count is how many requests of method to path were sent.
func (c *requestCounter) count(method, path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[method+" "+path]
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// resyncEvery is the ResyncEvery of the managers startManager starts
// (zero: the default, past every wait of the tests).
var resyncEvery time.Duration

// settleFor is the SettleFor of the managers startManager starts: -1, no
// settling, but while a test restarted the manager with the crash window
// (withCrashWindow; settle's other tests are TestSettle and the e2e
// test's).
var settleFor time.Duration = -1

// maxEndpointsPerSlice is the MaxEndpointsPerSlice of the managers
// startManager starts (zero: the default, 1000).
var maxEndpointsPerSlice int

// restartManager stops the manager under test and starts a new one, as
// a new leader or a manager back from a crash: what it knows of each
// AppGroup is what the API server has. It returns once the new one has
// made its first pass over each AppGroup (restartManagerAfter).
func restartManager(t *testing.T) {
	t.Helper()
	restartManagerAfter(t, func() {})
}

// restartManagerAfter is restartManager, with between done while no
// manager runs (the clock stepped over an outage that ended the last).
// It returns once the new manager has made its first pass over each
// AppGroup there is: it began (its first look, from which it gives agents
// their grace) before the test goes on, and no pass the test's AppGroup
// is due on the restart is left to come. (A pass over any AppGroup would
// show the first look, not that the test's own pass is done.)
func restartManagerAfter(t *testing.T, between func()) {
	t.Helper()
	// The old manager's passes are over once it stopped: a pass begun
	// after the marks is the new one's.
	stopManager()
	var list ferryv1.AppGroupList
	if err := env.Client.List(testContext(t), &list); err != nil {
		t.Fatal(err)
	}
	marks := map[types.NamespacedName]int{}
	for i := range list.Items {
		key := client.ObjectKeyFromObject(&list.Items[i])
		marks[key] = passes.mark(key)
	}
	between()
	stop, err := startManager(managerConfig)
	if err != nil {
		t.Fatal(err)
	}
	stopManager = stop
	for key, mark := range marks {
		eventually(t, "the new manager's first pass over "+key.String(), func() error {
			if passes.endedSince(key, mark) > 0 {
				return nil
			}
			// One gone meanwhile may get no pass: nothing to wait for.
			err := env.Client.Get(context.Background(), key, &ferryv1.AppGroup{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return errors.Join(errors.New("no pass yet"), err)
		})
	}
}

// passes counts the manager's passes over each AppGroup.
var passes passCounter

// passCounter counts, per AppGroup, the passes the AppGroup controller
// began and ended, from the lines controller-runtime logs for each pass
// ("Reconciling" before it, one of passEnds after): the only sign of a
// pass that finds nothing to change, which writes nothing. The passes
// over one AppGroup never overlap (the work queue hands a key to one
// worker at a time), so the n-th ended pass is the n-th begun.
type passCounter struct {
	mu           sync.Mutex
	begun, ended map[types.NamespacedName]int
	// due is, per AppGroup, when by the manager's clock the pass its
	// last pass asked for is due (RequeueAfter from when that pass
	// ended); none when the last pass asked for none.
	due map[types.NamespacedName]time.Time
}

// passEnds are the messages controller-runtime logs when a pass returns.
var passEnds = map[string]bool{
	"Reconcile successful": true, "Reconcile done, requeueing": true, "Reconciler error": true,
}

// note counts a log line of the AppGroup controller's pass over key.
func (c *passCounter) note(key types.NamespacedName, msg string) {
	begun := msg == "Reconciling"
	if !begun && !passEnds[msg] && !strings.HasPrefix(msg, "Reconcile done, requeueing after ") {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.begun == nil {
		c.begun, c.ended = map[types.NamespacedName]int{}, map[types.NamespacedName]int{}
		c.due = map[types.NamespacedName]time.Time{}
	}
	if begun {
		c.begun[key]++
		return
	}
	c.ended[key]++
	delete(c.due, key)
	if after, err := time.ParseDuration(strings.TrimPrefix(msg, "Reconcile done, requeueing after ")); err == nil {
		c.due[key] = clk.Now().Add(after)
	}
}

// dueWithin reports whether the last pass over key asked for another due
// after from and by to, the manager's clock (a pass the work queue brings
// on the real clock, which the tests' stepped one outruns: DuePass), and
// when it is due (zero: none asked for).
func (c *passCounter) dueWithin(key types.NamespacedName, from, to time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	due, ok := c.due[key]
	return due, ok && due.After(from) && !due.After(to)
}

// mark is how many passes over key have begun: those begun later end
// past it (endedSince).
func (c *passCounter) mark(key types.NamespacedName) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.begun[key]
}

// endedSince is how many passes over key begun after mark have ended.
func (c *passCounter) endedSince(key types.NamespacedName, mark int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.ended[key]-mark, 0)
}

// passSink is the manager's log sink: next's, which also counts the
// passes (passes). It takes every level, so that controller-runtime's
// V(5) lines of each pass reach it, and hands next those next takes.
type passSink struct {
	next logr.LogSink
	// controller and key are the pass's, from the values the
	// controller's logger carries.
	controller string
	key        types.NamespacedName
}

func (s *passSink) Init(info logr.RuntimeInfo) { s.next.Init(info) }

func (s *passSink) Enabled(int) bool { return true }

func (s *passSink) Info(level int, msg string, kv ...any) {
	if s.controller == "appgroup" && s.key.Name != "" {
		passes.note(s.key, msg)
	}
	if s.next.Enabled(level) {
		s.next.Info(level, msg, kv...)
	}
}

func (s *passSink) Error(err error, msg string, kv ...any) {
	if s.controller == "appgroup" && s.key.Name != "" {
		passes.note(s.key, msg)
	}
	s.next.Error(err, msg, kv...)
}

func (s *passSink) WithValues(kv ...any) logr.LogSink {
	out := *s
	out.next = s.next.WithValues(kv...)
	for i := 0; i+1 < len(kv); i += 2 {
		v, _ := kv[i+1].(string)
		switch kv[i] {
		case "controller":
			out.controller = v
		case "namespace":
			out.key.Namespace = v
		case "name":
			out.key.Name = v
		}
	}
	return &out
}

func (s *passSink) WithName(name string) logr.LogSink {
	out := *s
	out.next = s.next.WithName(name)
	return &out
}

// applyRBAC creates the namespace ferry-system and every object in
// config/rbac, as `kubectl apply -k config/rbac` would.
func applyRBAC() error {
	ctx := context.Background()
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ferry-system"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "rbac", "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if err := env.Client.Create(ctx, obj); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	return nil
}
