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
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
		Recorder:        mgr.GetEventRecorder(controllers.EventRecorderName),
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
// made a pass (restartManagerAfter).
func restartManager(t *testing.T) {
	t.Helper()
	restartManagerAfter(t, func() {})
}

// restartManagerAfter is restartManager, with between done while no
// manager runs (the clock stepped over an outage that ended the last).
// It returns once the new manager has made a pass: it began (its first
// look, from which it gives agents their grace) before the test goes on.
func restartManagerAfter(t *testing.T, between func()) {
	t.Helper()
	stopManager()
	passes := reconciles(t)
	between()
	stop, err := startManager(managerConfig)
	if err != nil {
		t.Fatal(err)
	}
	stopManager = stop
	eventually(t, "a pass of the new manager", func() error {
		if reconciles(t) <= passes {
			return errors.New("no pass yet")
		}
		return nil
	})
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
