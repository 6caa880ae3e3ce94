// Package e2e runs Ferry end to end on the local stack (internal/localstack:
// real kube-apiserver and etcd, the real manager and agent binaries started
// with the chart's arguments, two simulated nodes on 127.0.0.2 and
// 127.0.0.3, real worker processes) under continuous HTTP load through
// both nodes.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/bench/loadgen"
	"github.com/ferry-dev/ferry/controllers"
	"github.com/ferry-dev/ferry/internal/localstack"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

var (
	stack *localstack.Stack
	repo  string
)

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repo = filepath.Join(filepath.Dir(file), "..", "..")
	dir, err := os.MkdirTemp("", "fe2e")
	if err != nil {
		panic(err)
	}
	_ = os.Chmod(dir, 0o755)
	code := func() int {
		bin := filepath.Join(dir, "bin")
		if err := localstack.BuildBinaries(repo, bin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Without leader election, unlike `make local-up` and the chart: a
		// leader exits once it could not renew its Lease for 10 s, and the
		// API server outage below is longer; what it tests is how one
		// manager judges the agents across an outage it lived through.
		stack, err = localstack.Up(context.Background(), localstack.Options{Dir: dir, Bin: bin, Progress: os.Stderr,
			ManagerArgs: []string{"--leader-elect=false"},
			FreePorts:   true}) // beside a `make local-up` stack, which has the fixed ports
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() {
			if err := stack.Down(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}()
		code := m.Run()
		if code != 0 {
			for _, log := range []string{"manager.log", "agent-node-1.log", "agent-node-2.log"} {
				data, _ := os.ReadFile(filepath.Join(dir, "logs", log))
				lines := strings.Split(string(data), "\n")
				fmt.Fprintf(os.Stderr, "--- end of %s ---\n%s\n", log, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
		return code
	}()
	os.RemoveAll(dir)
	os.Exit(code)
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", stack.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// freePort finds a port free on every simulated node's address.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		port := testsupport.FreePort(t)
		free := true
		for _, n := range stack.Nodes() {
			if l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", n.IP, port)); err != nil {
				free = false
			} else {
				l.Close()
			}
		}
		if free {
			return port
		}
	}
	t.Fatal("no port free on every node")
	return 0
}

// traffic is continuous keep-alive load through every node, counting
// failures as they happen.
type traffic struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	stop       func()
	done       chan struct{}
	checkedOK  int64 // tr.ok at the last check
	urls       []string
	okAt       []atomic.Int64 // answers through each of urls
}

// checkUploads posts a chunked body larger than the proxy keeps in memory
// to every node: through the agents' buffering (agent/proxy's tests show
// how it arrives), the app gets it whole.
func checkUploads(t *testing.T, port int) {
	t.Helper()
	body := bytes.Repeat([]byte("0123456789abcdef"), 12<<10) // 192 KiB
	for _, n := range stack.Nodes() {
		url := fmt.Sprintf("http://%s:%d/echo", n.IP, port)
		req, err := http.NewRequest(http.MethodPost, url, io.NopCloser(bytes.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1 // chunked
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Errorf("%s: a %d-byte chunked upload came back as %d %d bytes (%v)", n.Name, len(body), resp.StatusCode, len(got), err)
		}
	}
}

func startTraffic(t *testing.T, port int) *traffic {
	t.Helper()
	var urls []string
	for _, n := range stack.Nodes() {
		urls = append(urls, fmt.Sprintf("http://%s:%d/", n.IP, port))
	}
	return startTrafficTo(t, urls)
}

// startTrafficTo is startTraffic to the given URLs alone.
func startTrafficTo(t *testing.T, urls []string) *traffic {
	t.Helper()
	tr := &traffic{done: make(chan struct{}), urls: urls, okAt: make([]atomic.Int64, len(urls))}
	ctx, cancel := context.WithCancel(context.Background())
	tr.stop = func() { cancel(); <-tr.done }
	go func() {
		defer close(tr.done)
		_, _ = loadgen.Run(ctx, loadgen.Config{URLs: urls, Clients: 8, Timeout: time.Minute, OnRecord: func(r loadgen.Record) {
			if r.OK() {
				tr.ok.Add(1)
				tr.okAt[r.Client%len(urls)].Add(1) // loadgen's client c sends to urls[c % len(urls)]
				return
			}
			tr.failed.Add(1)
			tr.mu.Lock()
			if len(tr.failures) < 10 {
				tr.failures = append(tr.failures, fmt.Sprintf("%s status %d %s", r.Kind, r.Status, r.Err))
			}
			tr.mu.Unlock()
		}})
	}()
	t.Cleanup(func() {
		select {
		case <-tr.done:
		default:
			tr.stop()
		}
	})
	return tr
}

// reachedEach waits until the load has had an answer through each of its
// URLs (every node), for a minute at most.
func (tr *traffic) reachedEach(t *testing.T) {
	t.Helper()
	testsupport.Eventually(t, time.Minute, "an answer through every node", func() error {
		for i := range tr.okAt {
			if tr.okAt[i].Load() == 0 {
				return fmt.Errorf("none through %s yet", tr.urls[i])
			}
		}
		return nil
	})
}

// check fails the test if any request failed so far, or if none was
// answered: "none failed" of no traffic proves nothing (a load that never
// started, a node never reached). A load still running must answer one
// since the last check, and has a minute to; a stopped one is summed up.
func (tr *traffic) check(t *testing.T, phase string) {
	t.Helper()
	running := true
	// A loop of its own, not testsupport.Eventually: a load that answers
	// nothing within the minute is reported below with its failures, which
	// say why, rather than ending the test here.
	for deadline := time.Now().Add(time.Minute); running && tr.ok.Load() <= tr.checkedOK && time.Now().Before(deadline); {
		select {
		case <-tr.done: // stopped: nothing more will come
			running = false
		case <-time.After(50 * time.Millisecond):
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ok := tr.ok.Load()
	if ok == 0 || running && ok <= tr.checkedOK {
		t.Errorf("%s: no request answered since the last check (%d in all): the load proves nothing", phase, ok)
	}
	tr.checkedOK = ok
	if n := tr.failed.Load(); n > 0 {
		t.Errorf("%s: %d requests failed (of %d): %v", phase, n, n+tr.ok.Load(), tr.failures)
	} else {
		t.Logf("%s: %d requests, none failed", phase, tr.ok.Load())
	}
}

// waitFor polls the AppGroup (and its pools) until cond holds.
func waitFor(t *testing.T, key types.NamespacedName, what string, timeout time.Duration,
	cond func(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool) bool) (*ferryv1.AppGroup, []ferryv1.ProcessPool) {
	t.Helper()
	var ag *ferryv1.AppGroup
	var pools ferryv1.ProcessPoolList
	testsupport.Eventually(t, timeout, what, func() error {
		ag, pools = &ferryv1.AppGroup{}, ferryv1.ProcessPoolList{}
		if err := stack.Client.Get(context.Background(), key, ag); err != nil {
			return err
		}
		if err := stack.Client.List(context.Background(), &pools, client.InNamespace(key.Namespace),
			client.MatchingLabels{ferryv1.AppGroupLabel: key.Name}); err != nil {
			return err
		}
		if !cond(ag, pools.Items) {
			return fmt.Errorf("status: %+v", ag.Status)
		}
		return nil
	})
	return ag, pools.Items
}

// checkColumns compares the named columns of `kubectl get appgroups
// NAME`, read by their headers.
func checkColumns(t *testing.T, name, when string, want map[string]string) {
	t.Helper()
	out := kubectl(t, "get", "appgroups", name)
	got, err := tableRow(out)
	if err != nil {
		t.Fatalf("kubectl get appgroups %s %s: %v\n%s", name, when, err, out)
	}
	for col, v := range want {
		if got[col] != v {
			t.Errorf("kubectl get appgroups %s %s: %s is %q, want %q\n%s", name, when, col, got[col], v, out)
		}
	}
}

// tableRow reads kubectl's table of one object into its cells by their
// headers. Every cell must be one word, as the default columns' are once
// the manager has written the status: a row of another number of words
// than the header is refused rather than misread.
func tableRow(out string) (map[string]string, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		return nil, fmt.Errorf("want a header and one row, got %d lines", len(lines))
	}
	header, row := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(header) != len(row) {
		return nil, fmt.Errorf("%d headers, %d cells", len(header), len(row))
	}
	cells := map[string]string{}
	for i, h := range header {
		cells[h] = row[i]
	}
	return cells, nil
}

func condStatus(ag *ferryv1.AppGroup, typ string) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(ag.Status.Conditions, typ); c != nil {
		return c.Status
	}
	return ""
}

// rolledOut: every node runs rev on every process, ready, nothing rolling.
func rolledOut(revPrefix string) func(*ferryv1.AppGroup, []ferryv1.ProcessPool) bool {
	return func(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool) bool {
		if !strings.HasPrefix(ag.Status.Revision, revPrefix) || ag.Status.ObservedGeneration != ag.Generation ||
			condStatus(ag, ferryv1.ConditionReady) != metav1.ConditionTrue ||
			condStatus(ag, ferryv1.ConditionRollingRestart) != metav1.ConditionFalse ||
			ag.Status.Nodes.Total != 2 || ag.Status.Nodes.Updated != 2 || len(pools) != 2 {
			return false
		}
		for _, p := range pools {
			if p.Spec.Revision != ag.Status.Revision {
				return false
			}
			for _, proc := range p.Status.Processes {
				if proc.Revision != ag.Status.Revision {
					return false
				}
			}
		}
		return true
	}
}

func patchApp(t *testing.T, key types.NamespacedName, example string, revision string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}},"spec":{"app":{"root":%q}}}`,
		ferryv1.RevisionAnnotation, revision, filepath.Join(repo, "examples", example))
	kubectl(t, "patch", "appgroup", key.Name, "-n", key.Namespace, "--type", "merge", "-p", patch)
}

// applyAppGroup applies AppGroup name in default at revision 1: the
// hello-wsgi example with env (a YAML list), two processes on each node,
// on port. It returns the manifest's file.
func applyAppGroup(t *testing.T, name string, port int, env string) string {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata:
  name: %s
  namespace: default
  annotations: {ferry.dev/revision: "1"}
spec:
  app:
    type: WSGI
    root: %s
    env: %s
  listen: {port: %d}
  pool: {minProcesses: 2, maxProcesses: 2}
  nodeSelector: {%s: "true"}
`, name, filepath.Join(repo, "examples", "hello-wsgi"), env, port, localstack.NodeLabel)
	f := filepath.Join(t.TempDir(), "ag.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "apply", "-f", f)
	return f
}

// TestRollingResistingAndAPIServerDowntime is the local stack's story, in
// order, under continuous load through both nodes: apply; roll; break a
// deploy; mend it; lose the API server for longer than the manager's
// staleness bound. No request may fail.
func TestRollingResistingAndAPIServerDowntime(t *testing.T) {
	port := freePort(t)
	key := types.NamespacedName{Namespace: "default", Name: "e2e"}
	// Apply -> Ready, as a user would wait for it.
	f := applyAppGroup(t, "e2e", port, `[{name: BOOT_DELAY, value: "1"}, {name: REQUEST_DELAY_MS, value: "2"}]`)
	t.Cleanup(func() { kubectl(t, "delete", "-f", f, "--wait=true", "--timeout=2m") })
	kubectl(t, "wait", "--for=condition=Ready", "appgroup/e2e", "--timeout=180s")
	waitFor(t, key, "revision 1 on both nodes", 2*time.Minute, rolledOut("1-"))
	checkUploads(t, port)
	tr := startTraffic(t, port)
	tr.reachedEach(t) // the load through both nodes before the first change

	t.Run("annotation bump rolls with zero failed requests", func(t *testing.T) {
		kubectl(t, "annotate", "appgroup", "e2e", "ferry.dev/revision=2", "--overwrite")
		_, _ = waitFor(t, key, "RESTARTING True", time.Minute, func(ag *ferryv1.AppGroup, _ []ferryv1.ProcessPool) bool {
			return strings.HasPrefix(ag.Status.Revision, "2-") && condStatus(ag, ferryv1.ConditionRollingRestart) == metav1.ConditionTrue
		})
		out := kubectl(t, "get", "appgroups", "e2e")
		t.Logf("during the rollout:\n%s", out)
		waitFor(t, key, "revision 2 everywhere, RESTARTING cleared", 2*time.Minute, rolledOut("2-"))
		checkColumns(t, "e2e", "after the rollout", map[string]string{
			"READY": "True", "REASON": ferryv1.ReasonProcessesReady, "RESTARTING": "False", "RESISTING": "False"})
		tr.check(t, "rolling restart")
	})

	t.Run("broken revision resists on the first node only", func(t *testing.T) {
		patchApp(t, key, "broken-wsgi", "3")
		// Resisting, the first node serves on with its old processes: the
		// AppGroup stays Ready.
		ag, _ := waitFor(t, key, "RESISTING True, READY True", 2*time.Minute, func(ag *ferryv1.AppGroup, _ []ferryv1.ProcessPool) bool {
			return condStatus(ag, ferryv1.ConditionResistingDeploymentError) == metav1.ConditionTrue &&
				condStatus(ag, ferryv1.ConditionReady) == metav1.ConditionTrue
		})
		c := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionResistingDeploymentError)
		if !strings.Contains(c.Message, "node-1") || !strings.Contains(c.Message, "ModuleNotFoundError") {
			t.Errorf("RESISTING message lacks the node or the cause: %s", c.Message)
		}
		checkColumns(t, "e2e", "while resisting", map[string]string{"READY": "True", "RESISTING": "True"})
		// The second node must never get the broken revision: watch it for
		// a while, as long as a healthy rollout would take to reach it. A
		// loop of its own, not testsupport.Eventually: it samples what must
		// hold throughout, and waits for nothing.
		broken := ag.Status.Revision
		deadline := time.Now().Add(8 * time.Second)
		for time.Now().Before(deadline) {
			_, pools := waitFor(t, key, "pools", time.Minute, func(*ferryv1.AppGroup, []ferryv1.ProcessPool) bool { return true })
			for _, p := range pools {
				if p.Spec.NodeName == "node-2" && p.Spec.Revision == broken {
					t.Fatalf("node-2 got the broken revision %s", broken)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		tr.check(t, "deployment error")
	})

	outer := t
	t.Run("an agent restarted while resisting returns to the working revision", func(t *testing.T) {
		// The restarted agent has lost the old processes it resisted with
		// and cannot spawn the broken revision: the manager returns its
		// node to revision 2. Its proxy is down while it restarts, so the
		// load pauses meanwhile.
		tr.stop()
		tr.check(t, "before the agent restart")
		if err := stack.StopAgent("node-1"); err != nil {
			t.Fatal(err)
		}
		if err := stack.StartAgent("node-1"); err != nil {
			t.Fatal(err)
		}
		ag, _ := waitFor(t, key, "node-1 back on revision 2 and ready, the rollout still halted", 3*time.Minute,
			func(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool) bool {
				for _, p := range pools {
					if p.Spec.NodeName == "node-1" && (!strings.HasPrefix(p.Spec.Revision, "2-") ||
						p.Status.ObservedRevision != p.Spec.Revision || p.Status.ProcessCounts.Ready < 2) {
						return false
					}
				}
				rr := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart)
				return rr != nil && rr.Reason == ferryv1.ReasonRolloutHalted && strings.Contains(rr.Message, "which now runs revision 2-") &&
					condStatus(ag, ferryv1.ConditionResistingDeploymentError) == metav1.ConditionTrue &&
					condStatus(ag, ferryv1.ConditionReady) == metav1.ConditionTrue
			})
		t.Logf("after the agent restart: %s", meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart).Message)
		tr = startTraffic(outer, port)
		tr.reachedEach(t) // the restarted node too
		tr.check(t, "after the agent restart")
	})

	t.Run("a fixed revision recovers", func(t *testing.T) {
		patchApp(t, key, "hello-wsgi", "4")
		waitFor(t, key, "revision 4 everywhere, not resisting", 2*time.Minute, func(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool) bool {
			return condStatus(ag, ferryv1.ConditionResistingDeploymentError) == metav1.ConditionFalse && rolledOut("4-")(ag, pools)
		})
		tr.check(t, "recovery")
	})

	t.Run("API server down past the staleness bound", func(t *testing.T) {
		if err := stack.StopAPIServer(); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		// Longer than --agent-stale-after (40s): no agent renews its Lease
		// meanwhile, and the manager must not blame them for it.
		const outage = controllers.DefaultAgentStaleAfter + 5*time.Second
		time.Sleep(outage)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := stack.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		waitFor(t, key, "status to catch up", 2*time.Minute, func(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool) bool {
			for _, p := range pools {
				if p.Status.HeartbeatTime == nil || !p.Status.HeartbeatTime.After(down.Add(outage)) {
					return false
				}
			}
			return rolledOut("4-")(ag, pools)
		})
		tr.check(t, "API server downtime")
		// The agents were silent only because nobody could hear them:
		// Ready stays True, also for the staleness bound after the API
		// server is back (while the manager's cache catches up), and
		// nobody is told they stopped reporting. A loop of its own, not
		// testsupport.Eventually: it samples what must hold throughout.
		for until := back.Add(controllers.DefaultAgentStaleAfter + 10*time.Second); time.Now().Before(until); time.Sleep(2 * time.Second) {
			ag, _ := waitFor(t, key, "the AppGroup", time.Minute, func(*ferryv1.AppGroup, []ferryv1.ProcessPool) bool { return true })
			if c := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionReady); c == nil ||
				c.Status != metav1.ConditionTrue || c.LastTransitionTime.After(down) {
				t.Fatalf("Ready %s after the outage: %+v, want True since before it", time.Since(back).Round(time.Second), c)
			}
		}
		var evs eventsv1.EventList
		if err := stack.Client.List(context.Background(), &evs, client.InNamespace(key.Namespace)); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == key.Name && ev.Reason == controllers.EventAgentNotReporting && !ev.EventTime.Before(&metav1.MicroTime{Time: down}) {
				t.Errorf("AgentNotReporting after the API server's outage: %s", ev.Note)
			}
		}
	})
	tr.stop()
	tr.check(t, "the whole story")
}

// TestRevisionThatBootsAndDiesStopsAtTheFirstNode rolls onto a revision
// whose processes become ready and die three seconds later. Its first
// node finishes its restart before the first crash; the next node must
// still not get it (the manager waits out the crash window on a revision
// not yet proven), and the first node, failing it, returns to the revision
// that worked. The second node serves throughout without a failure.
func TestRevisionThatBootsAndDiesStopsAtTheFirstNode(t *testing.T) {
	port := freePort(t)
	key := types.NamespacedName{Namespace: "default", Name: "bootdie"}
	f := applyAppGroup(t, "bootdie", port, "[]")
	t.Cleanup(func() { kubectl(t, "delete", "-f", f, "--wait=true", "--timeout=2m") })
	waitFor(t, key, "revision 1 on both nodes", 2*time.Minute, rolledOut("1-"))
	var node2 string
	for _, n := range stack.Nodes() {
		if n.Name == "node-2" {
			node2 = fmt.Sprintf("http://%s:%d/", n.IP, port)
		}
	}
	tr := startTrafficTo(t, []string{node2})

	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"2"}},"spec":{"app":{"root":%q,"env":[{"name":"DIE_AFTER","value":"3"}]}}}`,
		ferryv1.RevisionAnnotation, filepath.Join(repo, "agent", "pool", "testdata", "bootdie"))
	kubectl(t, "patch", "appgroup", "bootdie", "--type", "merge", "-p", patch)
	var reachedNode2 string
	ag, _ := waitFor(t, key, "the rollout halted, node-1 back on revision 1", 3*time.Minute,
		func(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool) bool {
			back := false
			for _, p := range pools {
				if p.Spec.NodeName == "node-2" && strings.HasPrefix(p.Spec.Revision, "2-") {
					reachedNode2 = p.Spec.Revision
				}
				if p.Spec.NodeName == "node-1" {
					back = strings.HasPrefix(p.Spec.Revision, "1-") && p.Status.ObservedRevision == p.Spec.Revision &&
						p.Status.ProcessCounts.Ready >= 2
				}
			}
			rr := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart)
			return reachedNode2 != "" || back && rr != nil && rr.Reason == ferryv1.ReasonRolloutHalted
		})
	if reachedNode2 != "" {
		t.Fatalf("node-2 got revision %s, whose processes die after boot", reachedNode2)
	}
	rr := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart)
	if !strings.Contains(rr.Message, "node-1") || !strings.Contains(rr.Message, "after it was ready") {
		t.Errorf("RollingRestart does not say where and why the rollout halted: %s", rr.Message)
	}
	t.Logf("halted: %s", rr.Message)
	tr.stop()
	tr.check(t, "node-2 throughout")
}
