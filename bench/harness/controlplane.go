package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/deployargs"
	"github.com/ferry-dev/ferry/internal/localstack"
)

// ControlPlaneResult is what the control-plane scale scenario measured:
// the real manager and three agents, on the real test API server, with
// AppGroups whose pools the agents simulate (--simulate-workers: status is
// reported, no process runs), so that a thousand fit on two cores.
type ControlPlaneResult struct {
	AppGroups int `json:"appgroups"`
	Nodes     int `json:"nodes"`
	// SimulateStep is how long an agent takes to "replace" one process.
	SimulateStep time.Duration `json:"simulate_step_ns"`
	// Commands are how the manager and the agents ran.
	ManagerCmd string `json:"manager_cmd"`
	AgentCmd   string `json:"agent_cmd"`
	Create     Phase  `json:"create"`
	Rollout    Phase  `json:"rollout"`
	// ManagerPeakRSS is the manager's peak resident memory (VmHWM).
	ManagerPeakRSS int64  `json:"manager_peak_rss_bytes"`
	Error          string `json:"error,omitempty"`
}

// Phase is one measured phase: creating every AppGroup until all are
// Ready, or bumping every revision until all rolled out.
type Phase struct {
	// Submit is how long writing every object took; Converge how long
	// from the first write until every AppGroup reported the outcome.
	Submit   time.Duration `json:"submit_ns"`
	Converge time.Duration `json:"converge_ns"`
	// ManagerCPU is the manager's CPU time during the phase.
	ManagerCPU time.Duration `json:"manager_cpu_ns"`
	// ManagerRequests counts the manager's API requests by method
	// (client-go's rest_client_requests_total), and APIRequests every
	// request the API server served (apiserver_request_total), during the
	// phase.
	ManagerRequests map[string]int64 `json:"manager_requests"`
	APIRequests     int64            `json:"api_requests"`
	// APIRequestsBy splits APIRequests by verb and resource
	// ("PATCH processpools/status"): who wrote what, since the manager
	// alone writes AppGroup status, pools and events, and the agents alone
	// pool status.
	APIRequestsBy map[string]int64 `json:"api_requests_by,omitempty"`
	// Progress is how many AppGroups had converged, once a second.
	Progress []int `json:"progress"`
}

// ManagerRequestsTotal sums ManagerRequests.
func (p Phase) ManagerRequestsTotal() int64 {
	var n int64
	for _, v := range p.ManagerRequests {
		n += v
	}
	return n
}

const controlPlaneNamespace = "scale"

func (h *Harness) controlPlaneScenario(ctx context.Context, dir string, sr *ScenarioResult) error {
	n := 1000
	if h.opts.Smoke {
		n = 100
	}
	step := 20 * time.Millisecond
	res := &ControlPlaneResult{AppGroups: n, Nodes: 3, SimulateStep: step}
	sr.ControlPlane = res
	sr.Params = Params{Runs: 1, Processes: 2}
	err := h.runControlPlane(ctx, dir, res)
	if err != nil {
		res.Error = err.Error()
	}
	return err
}

func (h *Harness) runControlPlane(ctx context.Context, dir string, res *ControlPlaneResult) error {
	bin := filepath.Dir(h.opts.Agent)
	nodes := []localstack.Node{{Name: "node-1", IP: "127.0.0.2"}, {Name: "node-2", IP: "127.0.0.3"}, {Name: "node-3", IP: "127.0.0.4"}}
	extra := []string{"--simulate-workers=" + res.SimulateStep.String()}
	h.logf("controlplane: starting the API server, the manager and %d simulating agents", len(nodes))
	stack, err := localstack.Up(ctx, localstack.Options{Dir: filepath.Join(dir, "stack"), Bin: bin, Nodes: nodes,
		AgentArgs: extra, ManagerArgs: strings.Fields(os.Getenv("BENCH_MANAGER_ARGS")), Progress: io.Discard})
	if err != nil {
		return err
	}
	defer func() { _ = stack.Down() }()
	res.ManagerCmd = strings.TrimSpace("bin/ferry-manager " + strings.Join(deployargs.ManagerArgs(deployargs.LocalManager()), " ") +
		" --kubeconfig=KUBECONFIG " + os.Getenv("BENCH_MANAGER_ARGS"))
	res.AgentCmd = "bin/ferry-agent " + strings.Join(deployargs.AgentArgs(deployargs.LocalAgent("STATE")), " ") +
		" --kubeconfig=KUBECONFIG " + strings.Join(extra, " ")
	cs, err := kubernetes.NewForConfig(stack.Config())
	if err != nil {
		return err
	}
	c := stack.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controlPlaneNamespace}}); err != nil {
		return err
	}
	mgr := stack.ManagerPID()
	// Stopped before the stack is (deferred calls run last first).
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watched, err := watchAppGroups(watchCtx, stack.Config(), c.Scheme())
	if err != nil {
		return err
	}

	h.logf("controlplane: creating %d AppGroups", res.AppGroups)
	res.Create, err = h.phase(ctx, watched, cs, mgr, res.AppGroups, func(i int) error {
		return c.Create(ctx, scaleAppGroup(i))
	}, func(ag *ferryv1.AppGroup) bool {
		return ag.Status.ObservedGeneration == ag.Generation && meta.IsStatusConditionTrue(ag.Status.Conditions, ferryv1.ConditionReady)
	})
	if err != nil {
		return err
	}
	h.logf("controlplane: all Ready after %s", res.Create.Converge.Round(time.Millisecond))

	h.logf("controlplane: bumping every revision")
	res.Rollout, err = h.phase(ctx, watched, cs, mgr, res.AppGroups, func(i int) error {
		patch := []byte(`{"metadata":{"annotations":{"ferry.dev/revision":"2"}}}`)
		ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: controlPlaneNamespace, Name: scaleName(i)}}
		return c.Patch(ctx, ag, client.RawPatch(types.MergePatchType, patch))
	}, func(ag *ferryv1.AppGroup) bool {
		c := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart)
		return strings.HasPrefix(ag.Status.Revision, "2-") && c != nil && c.Status == metav1.ConditionFalse &&
			ag.Status.Nodes.Updated == ag.Status.Nodes.Total && ag.Status.Nodes.Total == 3
	})
	if err != nil {
		return err
	}
	h.logf("controlplane: all rolled out after %s", res.Rollout.Converge.Round(time.Millisecond))
	res.ManagerPeakRSS = peakRSS(mgr)
	return nil
}

// watchAppGroups is the harness's view of the scenario's AppGroups: a
// watch, kept in a local cache, rather than a List of all of them every
// second. A List of a thousand AppGroups a second cost the API server and
// this process a few tenths of the two cores the system under test runs
// on; a watch costs one decode per change. The cache lags the API server by
// a watch event at most, so a phase ends no earlier than it did.
func watchAppGroups(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (client.Reader, error) {
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme,
		DefaultNamespaces: map[string]cache.Config{controlPlaneNamespace: {}}})
	if err != nil {
		return nil, err
	}
	if _, err := ca.GetInformer(ctx, &ferryv1.AppGroup{}); err != nil {
		return nil, err
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		return nil, errors.New("the harness's AppGroup cache did not sync")
	}
	return ca, nil
}

// phase writes n objects with 8 writers, then waits until every AppGroup
// (as watched reads them) satisfies done, and measures the manager meanwhile.
func (h *Harness) phase(ctx context.Context, watched client.Reader, cs *kubernetes.Clientset, mgr, n int,
	write func(int) error,
	done func(*ferryv1.AppGroup) bool) (Phase, error) {
	var p Phase
	cpu0 := procCPU(mgr)
	mreq0, err := managerRequests()
	if err != nil {
		return p, err
	}
	api0, by0, err := apiRequests(ctx, cs)
	if err != nil {
		return p, err
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := write(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return p, err
	}
	p.Submit = time.Since(start)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var list ferryv1.AppGroupList
		if err := watched.List(ctx, &list, client.InNamespace(controlPlaneNamespace)); err != nil {
			return p, err
		}
		ok := 0
		for i := range list.Items {
			if done(&list.Items[i]) {
				ok++
			}
		}
		p.Progress = append(p.Progress, ok)
		if ok == n {
			p.Converge = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("only %d of %d AppGroups converged within 10 minutes", ok, n)
		}
		time.Sleep(time.Second)
	}
	p.ManagerCPU = procCPU(mgr) - cpu0
	mreq1, err := managerRequests()
	if err != nil {
		return p, err
	}
	p.ManagerRequests = map[string]int64{}
	for k, v := range mreq1 {
		if d := v - mreq0[k]; d > 0 {
			p.ManagerRequests[k] = d
		}
	}
	api1, by1, err := apiRequests(ctx, cs)
	if err != nil {
		return p, err
	}
	p.APIRequests = api1 - api0
	p.APIRequestsBy = map[string]int64{}
	for k, v := range by1 {
		if d := v - by0[k]; d > 0 {
			p.APIRequestsBy[k] = d
		}
	}
	return p, nil
}

func scaleName(i int) string { return fmt.Sprintf("app-%04d", i) }

func scaleAppGroup(i int) *ferryv1.AppGroup {
	return &ferryv1.AppGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: controlPlaneNamespace, Name: scaleName(i),
			Annotations: map[string]string{ferryv1.RevisionAnnotation: "1"}},
		Spec: ferryv1.AppGroupSpec{
			AppTemplate: ferryv1.AppTemplate{
				App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/scale/" + scaleName(i)},
				Listen: ferryv1.ListenSpec{Port: int32(20000 + i)},
				Pool:   ferryv1.PoolSpec{MinProcesses: 2, MaxProcesses: 2},
			},
			NodeSelector: map[string]ferryv1.LabelValue{localstack.NodeLabel: "true"},
		},
	}
}

// managerRequests reads client-go's request counters from the local
// manager's metrics endpoint, summed by method.
func managerRequests() (map[string]int64, error) {
	resp, err := http.Get("http://" + deployargs.LocalManager().MetricsBindAddress + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		method := label(line, "method")
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			out[method] += int64(v)
		}
	}
	return out, sc.Err()
}

// apiRequests sums the API server's apiserver_request_total, in all and
// by verb and resource.
func apiRequests(ctx context.Context, cs *kubernetes.Clientset) (int64, map[string]int64, error) {
	data, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, nil, err
	}
	var total int64
	by := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "apiserver_request_total{") {
			if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
				total += int64(v)
				key := label(line, "verb") + " " + label(line, "resource")
				if sub := label(line, "subresource"); sub != "" {
					key += "/" + sub
				}
				by[key] += int64(v)
			}
		}
	}
	return total, by, nil
}

// label is the value of a metric line's label name ("" if absent); the
// name must start the label set or follow a comma, so that "resource"
// does not find "subresource".
func label(line, name string) string {
	for _, sep := range []string{"{", ","} {
		if i := strings.Index(line, sep+name+`="`); i >= 0 {
			rest := line[i+len(sep)+len(name)+2:]
			return rest[:strings.IndexByte(rest, '"')]
		}
	}
	return ""
}

// procCPU is a process's user+system CPU time.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}

// peakRSS is a process's VmHWM.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
