package cluster

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// TestUnlabelledPoolServesOn: a pool whose ferry.dev/node label goes
// (removed by hand, or by a tool that rewrote the pool's labels) is
// still this node's (spec.nodeName, by which the agent selects its
// pools), and the AppGroup's Service still sends here. The agent serves
// it on, says once that the label is missing, and, when the label comes
// back (the manager puts it back at its next pass), that it is back: no
// request fails meanwhile, neither the one in flight as the label went
// nor any sent after, and every answer comes from the processes that ran
// before. Once (the agent's cache selected by the label), the agent
// stopped the pool at once, cutting the request in flight and refusing
// the rest, and when the label came back started a new pool, every
// process spawned again.
func TestUnlabelledPoolServesOn(t *testing.T) {
	ns := namespace(t)
	book := agenttest.NewLogbook(t)
	runAgent(t, "node-unlabelled", env.Config, stateDir(t), logTo(book))
	port := freePort(t)
	pp, key := readyPool(t, ns, "hello-node-unlabelled", "node-unlabelled", port)
	before := poolPIDs(getPool(t, key))
	addr := "127.0.0.1:" + strconv.Itoa(int(port))
	load := startLoad(t, "http://"+addr+"/")
	inFlight := agenttest.StartHalfSentEcho(t, addr)

	patchPool(t, getPool(t, key), func(p *ferryv1.ProcessPool) { delete(p.Labels, ferryv1.NodeLabel) })
	// The agent has seen the label go: it says so and serves on, or
	// (once) stopped the pool.
	waitUntil(t, "the agent acted on the label's removal", func() bool {
		return logged(book, "Pool not labelled for this node", key) > 0 || logged(book, "Stopped pool", key) > 0
	})
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 10 {
		if err := answeredBy(fresh, "http://"+addr+"/", before); err != nil {
			t.Fatalf("new connection %d after the agent saw the label go: %v", i+1, err)
		}
	}

	// The manager puts the label back.
	patchPool(t, getPool(t, key), func(p *ferryv1.ProcessPool) {
		p.Labels[ferryv1.NodeLabel] = contract.LabelValue(pp.Spec.NodeName)
	})
	waitUntil(t, "the agent saw the label back", func() bool {
		return logged(book, "Pool labelled for this node again", key) > 0 || logged(book, "Started pool", key) > 1
	})
	inFlight.Finish(t)
	if err := answeredBy(fresh, "http://"+addr+"/", before); err != nil {
		t.Errorf("a request after the label came back: %v", err)
	}
	load.check(t, before)
	if n := logged(book, "Started pool", key); n != 1 {
		t.Errorf("the pool was started %d times, want once: the label's return started it anew", n)
	}
	if n := logged(book, "Pool not labelled for this node", key); n != 1 {
		t.Errorf("the missing label was logged %d times, want once", n)
	}
	after := waitPool(t, key, "a report after the label came back", func(p *ferryv1.ProcessPool) bool {
		return rolledOut(p) && p.Status.ReadyProcesses == "2/2"
	})
	if got := poolPIDs(after); !maps.Equal(got, before) {
		t.Errorf("processes %v after the label came back, want those from before %v", got, before)
	}
	for pid := range before {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("process %d from before the label went: %v", pid, err)
		}
	}
	book.Check(t)
}

// TestUnlabelledPoolFollowsItsSpecAndDrains: while its ferry.dev/node
// label names another node, a pool of this node (spec.nodeName) still
// gets the changes to its spec and, deleted, is drained and released as
// any deleted pool is: the agent's cache selects by spec.nodeName. Once
// (the cache selected by the label), it was stopped at the label's
// change, and its drain finalizer stayed: nothing of the agent's looked
// at it again.
func TestUnlabelledPoolFollowsItsSpecAndDrains(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	book := agenttest.NewLogbook(t)
	runAgent(t, "node-relabelled", env.Config, stateDir(t), logTo(book))
	_, key := readyPool(t, ns, "hello-node-relabelled", "node-relabelled", freePort(t))

	patchPool(t, getPool(t, key), func(p *ferryv1.ProcessPool) { p.Labels[ferryv1.NodeLabel] = "another-node" })
	waitUntil(t, "the agent acted on the label's change", func() bool {
		return logged(book, "Pool not labelled for this node", key) > 0 || logged(book, "Stopped pool", key) > 0
	})
	patchPool(t, getPool(t, key), func(p *ferryv1.ProcessPool) { p.Spec.Revision = "2-bbb" })
	waitPool(t, key, "revision 2 rolled out without the label", func(p *ferryv1.ProcessPool) bool {
		return p.Status.ObservedRevision == "2-bbb" && rolledOut(p)
	})
	if err := env.Client.Delete(ctx, getPool(t, key)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the deleted pool released", func() bool { return poolGone(key) == nil })
	book.WaitFor(t, "Drained deleted pool")
	book.Check(t)
}

// TestPoolsSelectedByNodeNameNotLabel: the agent runs the pools that
// name its node (spec.nodeName) whatever their ferry.dev/node label,
// which it never saw: one created without it and one labelled for
// another node (as a tool that rewrites labels at admission leaves them;
// the manager puts the label back at its next pass, but the pool must
// not wait for it) run, and, deleted, are drained and released by the
// running agent. A pool of another node labelled for this one is not
// touched: never started, never released. Before, the agent's cache
// selected by the label: the first two were never run, and, deleted,
// kept their drain finalizer until the agent's next start listed every
// pool in the cluster for them.
func TestPoolsSelectedByNodeNameNotLabel(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	const node, other = "node-field", "node-field-other"
	book := agenttest.NewLogbook(t)
	runAgent(t, node, env.Config, stateDir(t), logTo(book))

	// Created first: the agent, which hears of pools in the order they
	// were written, has heard of it once it runs those made after it.
	claimNode(t, other) // no agent runs there, but the pool stays
	theirs := newPool(ns, "hello-theirs", other, "1-aaa", freePort(t), example("hello-wsgi"))
	theirs.Labels[ferryv1.NodeLabel] = contract.LabelValue(node)
	create(t, theirs)
	unlabelled := newPool(ns, "hello-unlabelled", node, "1-aaa", freePort(t), example("hello-wsgi"))
	delete(unlabelled.Labels, ferryv1.NodeLabel)
	relabelled := newPool(ns, "hello-relabelled", node, "1-aaa", freePort(t), example("hello-wsgi"))
	relabelled.Labels[ferryv1.NodeLabel] = contract.LabelValue(other)
	create(t, unlabelled, relabelled)
	mine := []*ferryv1.ProcessPool{unlabelled, relabelled}
	for _, pp := range mine {
		waitPool(t, client.ObjectKeyFromObject(pp), "a ready report of "+pp.Name, rolledOut)
		if err := served("http://127.0.0.1:" + strconv.Itoa(int(pp.Spec.Template.Listen.Port)) + "/"); err != nil {
			t.Errorf("%s: %v", pp.Name, err)
		}
	}

	// Deleted after theirs: once they are released, the agent has heard
	// of its deletion too.
	for _, pp := range append([]*ferryv1.ProcessPool{theirs}, mine...) {
		if err := env.Client.Delete(ctx, pp); err != nil {
			t.Fatal(err)
		}
	}
	for _, pp := range mine {
		key := client.ObjectKeyFromObject(pp)
		waitUntil(t, pp.Name+" released and its drain logged", drainedAndLogged(book, key))
		if n := logged(book, "Drained deleted pool", key); n != 1 {
			t.Errorf("%s drained %d times, want once", pp.Name, n)
		}
	}
	key := client.ObjectKeyFromObject(theirs)
	got := getPool(t, key)
	if !controllerutil.ContainsFinalizer(got, contract.DrainFinalizer) {
		t.Errorf("another node's pool lost its drain finalizer (%v) to this node's agent", got.Finalizers)
	}
	if len(got.Status.Conditions) > 0 || got.Status.ObservedRevision != "" {
		t.Errorf("another node's pool has a status from this node's agent: %+v", got.Status)
	}
	if n := len(ofPool(book.Find(""), key)); n != 0 {
		t.Errorf("this node's agent logged %d lines of another node's pool, want none: %v", n, ofPool(book.Find(""), key))
	}
	book.Check(t)
}

// TestNoteLabel: a pool's missing or wrong ferry.dev/node label is said
// once, when it goes, and its return once, when it comes back; a node
// whose name is too long for a label value is matched by its hashed
// value, and a label that changes from one wrong value to another says
// nothing more.
func TestNoteLabel(t *testing.T) {
	long := strings.Repeat("n", 70)
	const off, back = "Pool not labelled for this node", "Pool labelled for this node again"
	for _, tc := range []struct {
		name   string
		node   string
		labels []string // the label at each reconcile; "-": none
		want   []string // what is logged, in order
	}{
		{"labelled", "node-a", []string{"node-a", "node-a"}, nil},
		{"removed and put back", "node-a", []string{"node-a", "-", "-", "node-a", "node-a"}, []string{off, back}},
		{"created without it", "node-a", []string{"-", "node-a"}, []string{off, back}},
		{"another node's, then none", "node-a", []string{"node-b", "-", "node-a"}, []string{off, back}},
		{"lost twice", "node-a", []string{"-", "node-a", "node-b", "node-a"}, []string{off, back, off, back}},
		{"a long node name's hashed value", long, []string{contract.LabelValue(long)}, nil},
		{"a long node name cut without its hash", long, []string{long[:63]}, []string{off}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			book := agenttest.NewLogbook(t)
			a := &Agent{opts: Options{NodeName: tc.node}, log: book.Logger(), unlabelled: map[types.NamespacedName]bool{}}
			key := types.NamespacedName{Namespace: "ns", Name: "pool"}
			for _, l := range tc.labels {
				pp := &ferryv1.ProcessPool{}
				if l != "-" {
					pp.Labels = map[string]string{ferryv1.NodeLabel: l}
				}
				a.noteLabel(key, pp)
			}
			var got []string
			for _, e := range book.Find("") {
				got = append(got, strings.SplitN(e.Msg, ";", 2)[0])
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("logged %q, want %q", got, tc.want)
			}
			book.Check(t)
		})
	}
}

// ofPool are the entries of es about the pool of key.
func ofPool(es []agenttest.LogEntry, key types.NamespacedName) []agenttest.LogEntry {
	var out []agenttest.LogEntry
	for _, e := range es {
		if v, _ := e.Value("pool"); v == any(key) {
			out = append(out, e)
		}
	}
	return out
}

// logged is how many lines of book about the pool of key start with
// prefix.
// drainedAndLogged is whether the pool of key is gone and book holds the
// agent's line saying it drained it: the agent takes the finalizer off
// first and logs after, so a test that counts the lines once the pool is
// gone can read them a moment before the line is written.
func drainedAndLogged(book *agenttest.Logbook, key types.NamespacedName) func() bool {
	return func() bool { return poolGone(key) == nil && logged(book, "Drained deleted pool", key) > 0 }
}

func logged(book *agenttest.Logbook, prefix string, key types.NamespacedName) int {
	return len(ofPool(book.Find(prefix), key))
}

// poolPIDs are the pids of the processes pp's status lists.
func poolPIDs(pp *ferryv1.ProcessPool) map[int]bool {
	pids := map[int]bool{}
	for _, p := range pp.Status.Processes {
		pids[int(p.PID)] = true
	}
	return pids
}

// answeredBy is nil when url answers 200 from one of pids (the hello
// example's body is its worker's pid).
func answeredBy(c *http.Client, url string, pids map[int]bool) error {
	pid, err := getPID(c, url)
	if err == nil && !pids[pid] {
		err = fmt.Errorf("answered by process %d, not one of %v", pid, pids)
	}
	return err
}

// getPID GETs url and returns the pid of the worker that answered 200.
func getPID(c *http.Client, url string) (int, error) {
	code, body, err := getWith(c, url)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("status %d: %s", code, body)
	}
	return strconv.Atoi(strings.TrimSpace(body))
}

// load sends GETs to a pool without pause until check, over kept
// connections and over fresh ones, and keeps what each got.
type load struct {
	stop chan struct{}
	wg   sync.WaitGroup
	end  func() // stops it, once

	mu     sync.Mutex
	sent   int
	failed int
	first  error // the first failure
	pids   map[int]int
}

// startLoad starts a load on url, stopped at the end of the test.
func startLoad(t *testing.T, url string) *load {
	l := &load{stop: make(chan struct{}), pids: map[int]int{}}
	l.end = sync.OnceFunc(func() {
		close(l.stop)
		l.wg.Wait()
	})
	t.Cleanup(l.end)
	clients := []*http.Client{
		{Transport: &http.Transport{}},
		{Transport: &http.Transport{DisableKeepAlives: true}},
	}
	for _, c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				pid, err := getPID(c, url)
				l.mu.Lock()
				l.sent++
				switch {
				case err == nil:
					l.pids[pid]++
				case l.failed == 0:
					l.first = err
					fallthrough
				default:
					l.failed++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// check stops the load and fails the test for any request that failed or
// was answered by a process not in pids.
func (l *load) check(t *testing.T, pids map[int]bool) {
	t.Helper()
	l.end()
	t.Logf("load: %d requests, answered by %v", l.sent, l.pids)
	if l.failed > 0 {
		t.Errorf("%d of %d requests failed, the first: %v", l.failed, l.sent, l.first)
	}
	for pid := range l.pids {
		if !pids[pid] {
			t.Errorf("a request was answered by process %d, not one of those from before %v", pid, pids)
		}
	}
}

// TestRestartedAgentReleasesUnlabelledDeletedPool: an agent that stops
// while an unlabelled pool of its node drains, before it could take the
// pool's drain finalizer off, leaves that to the node's next agent (it
// says so). Here it stops through an API server outage; killed (SIGKILL,
// OOM) mid-drain, it leaves the same: the pool deleted, its finalizer on,
// its label gone, its saved spec removed as the drain began. The next
// agent, whose cache selects by spec.nodeName, drains and releases it.
// Once, nothing of that agent found the pool (its cache selected by the
// label, and the pool was not on disk): the finalizer stayed for good,
// and held the namespace's deletion; then the agent listed every pool
// of the cluster at its start for such ones.
func TestRestartedAgentReleasesUnlabelledDeletedPool(t *testing.T) {
	ns := namespace(t)
	const node = "node-unlabelled-kill"
	fwd, cfg := throughForwarder(t)
	cfg.Timeout = time.Second
	state := stateDir(t)
	book := agenttest.NewLogbook(t)
	onCue, endDelay := drainDelayOnCue()
	defer endDelay()
	stop := runAgent(t, node, cfg, state, logTo(book), onCue)
	pp, key := readyPool(t, ns, "hello-"+node, node, freePort(t))
	patchPool(t, getPool(t, key), func(p *ferryv1.ProcessPool) { delete(p.Labels, ferryv1.NodeLabel) })
	book.WaitFor(t, "Pool not labelled for this node")
	if err := env.Client.Delete(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	book.WaitFor(t, "Pool deleted; serving on for the drain delay")
	fwd.cut()
	stop()
	book.WaitFor(t, "Could not remove the drain finalizer; the node's next agent will")
	if p := getPool(t, key); !controllerutil.ContainsFinalizer(p, contract.DrainFinalizer) {
		t.Fatalf("the pool lost its drain finalizer (%v) with its agent away", p.Finalizers)
	}

	next := agenttest.NewLogbook(t)
	runAgent(t, node, env.Config, state, logTo(next))
	waitUntil(t, "the deleted unlabelled pool released by the node's next agent, its drain logged", drainedAndLogged(next, key))
	if n := logged(next, "Drained deleted pool", key); n != 1 {
		t.Errorf("the next agent drained the pool %d times, want once", n)
	}
	next.Check(t)
}

// TestUnlabelledPoolDeletedWhileTheAgentWasAway: a pool whose label went
// while its agent ran, and that was deleted while the agent was away, is
// drained and released by the agent when it is back: with its saved spec
// (kept), and without it (the node's state lost, or the label gone
// before the agent saved the pool), which nothing found once the cache
// selected by the label.
func TestUnlabelledPoolDeletedWhileTheAgentWasAway(t *testing.T) {
	for _, keep := range []bool{true, false} {
		name := map[bool]string{true: "state kept", false: "state lost"}[keep]
		node := map[bool]string{true: "node-away-kept", false: "node-away-lost"}[keep]
		t.Run(name, func(t *testing.T) {
			ns := namespace(t)
			state := stateDir(t)
			book := agenttest.NewLogbook(t)
			stop := runAgent(t, node, env.Config, state, logTo(book))
			pp, key := readyPool(t, ns, "hello-"+node, node, freePort(t))
			patchPool(t, getPool(t, key), func(p *ferryv1.ProcessPool) { delete(p.Labels, ferryv1.NodeLabel) })
			book.WaitFor(t, "Pool not labelled for this node")
			stop()
			if err := env.Client.Delete(context.Background(), pp); err != nil {
				t.Fatal(err)
			}
			if !keep {
				state = stateDir(t)
			}
			next := agenttest.NewLogbook(t)
			runAgent(t, node, env.Config, state, logTo(next))
			waitUntil(t, "the deleted unlabelled pool released", func() bool { return poolGone(key) == nil })
			next.Check(t)
		})
	}
}

// TestNoteLabelSaysWhoPutsTheLabelBack: the manager puts the label back
// on the pools an AppGroup controls (it made them), and on no other: the
// line for a pool made by hand, or one owned (not controlled) by an
// AppGroup, or controlled by something else, says nothing will.
func TestNoteLabelSaysWhoPutsTheLabelBack(t *testing.T) {
	const manager, byHand = "the manager puts the label back at its next pass", "nothing puts the label back"
	yes := true
	ref := func(apiVersion, kind string, controller bool) metav1.OwnerReference {
		r := metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: "hello", UID: "u"}
		if controller {
			r.Controller = &yes
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		owners []metav1.OwnerReference
		want   string
	}{
		{"made by the manager", []metav1.OwnerReference{ref(ferryv1.GroupVersion.String(), "AppGroup", true)}, manager},
		{"another version of the AppGroup API", []metav1.OwnerReference{ref("ferry.dev/v1", "AppGroup", true)}, manager},
		{"made by hand", nil, byHand},
		{"owned, not controlled, by an AppGroup", []metav1.OwnerReference{ref(ferryv1.GroupVersion.String(), "AppGroup", false)}, byHand},
		{"controlled by another kind", []metav1.OwnerReference{ref("apps/v1", "Deployment", true)}, byHand},
		{"an AppGroup of another group", []metav1.OwnerReference{ref("example.com/v1", "AppGroup", true)}, byHand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			book := agenttest.NewLogbook(t)
			a := &Agent{opts: Options{NodeName: "node-a"}, log: book.Logger(), unlabelled: map[types.NamespacedName]bool{}}
			pp := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{OwnerReferences: tc.owners}}
			pp.Spec.AppGroup = "hello"
			a.noteLabel(types.NamespacedName{Namespace: "ns", Name: "pool"}, pp)
			lines := book.Find("Pool not labelled for this node")
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want one", len(lines))
			}
			for _, s := range []string{manager, byHand} {
				if has := strings.Contains(lines[0].Msg, s); has != (s == tc.want) {
					t.Errorf("logged %q: %q in it: %v, want %v", lines[0].Msg, s, has, s == tc.want)
				}
			}
			book.Check(t)
		})
	}
}
