package kubectlferry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// healthyFixture is AppGroup hello, on revision 8, mid-rollout on node-2:
// node-1 runs two new processes and reported 5 s ago; node-2 has replaced
// one of two processes, is replacing PID 2002, and its agent stamped its
// report 2 minutes ago (the API server times both reports as they are
// written, by the fixture: TestStatusSilentAgent moves the plugin's clock
// past them). A pool of another AppGroup shares the namespace.
func healthyFixture(t *testing.T) (ns string) {
	t.Helper()
	ns = newNamespace(t)
	target := "8-" + hash
	ag := newAppGroup(t, ns, "hello", "8")
	setAppGroupStatus(t, ns, "hello", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, target, 2)
		st.Nodes.Updated, st.Processes.Updated = 1, 3
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut,
			"node 2/2 (node-2), process 2/2")
	})
	started := metav1.Time{Time: testNow.Add(-time.Hour)}
	// Created out of node order: the view sorts by node.
	p2 := newPool(t, ag, "node-2", target)
	setPoolStatus(t, p2, ferryv1.ProcessPoolStatus{
		Address: "127.0.0.3:8080", ObservedRevision: target,
		ProcessCounts:  ferryv1.ProcessCounts{Ready: 2, Updated: 1, Total: 2},
		ReadyProcesses: "2/2",
		Processes: []ferryv1.ProcessInfo{
			{PID: 2001, Revision: target, State: ferryv1.ProcessReady, Processed: 12, StartedAt: metav1.Time{Time: testNow.Add(-30 * time.Second)}},
			{PID: 2002, Revision: "7-" + hash, State: ferryv1.ProcessDraining, Replacing: true, Sessions: 1, Processed: 2873, StartedAt: started},
		},
		RestartProgress: &ferryv1.RestartProgress{Revision: target, Done: 1, Total: 2, ReplacingPID: 2002},
		HeartbeatTime:   ago(2 * time.Minute),
		Conditions: []metav1.Condition{
			cond(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "2/2 processes ready"),
			cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut, "process 2/2"),
		},
	})
	p1 := newPool(t, ag, "node-1", target)
	setPoolStatus(t, p1, ferryv1.ProcessPoolStatus{
		Address: "127.0.0.2:8080", ObservedRevision: target,
		ProcessCounts:  ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 2},
		ReadyProcesses: "2/2",
		Processes: []ferryv1.ProcessInfo{
			{PID: 1001, Revision: target, State: ferryv1.ProcessReady, Processed: 40, StartedAt: started, MemoryBytes: 60 << 20},
			{PID: 1002, Revision: target, State: ferryv1.ProcessReady, Processed: 41, StartedAt: started},
		},
		HeartbeatTime: ago(5 * time.Second),
		Conditions: []metav1.Condition{
			cond(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "2/2 processes ready"),
		},
	})
	other := newAppGroup(t, ns, "other", "")
	setPoolStatus(t, newPool(t, other, "node-1", "0-"+hash), ferryv1.ProcessPoolStatus{
		Address: "127.0.0.2:9090", HeartbeatTime: ago(time.Second),
		Processes: []ferryv1.ProcessInfo{{PID: 9999, Revision: "0-" + hash, State: ferryv1.ProcessReady}},
	})
	return ns
}

func TestStatusHealthy(t *testing.T) {
	ns := healthyFixture(t)
	// The figures' age is the API server's: node-1's status was written
	// 5s before the plugin's clock, node-2's before it.
	p1 := &ferryv1.ProcessPool{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: contract.PoolName("hello", "node-1")}, p1); err != nil {
		t.Fatal(err)
	}
	written := lastWritten(p1)
	r := runApp(t, &App{Now: func() time.Time { return written.Add(5 * time.Second) }}, "status", "hello", "-n", ns)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	out := r.out
	assertContains(t, out,
		"----------- AppGroup "+ns+"/hello -----------",
		"Target revision          : 8-"+hash+" (ferry.dev/revision: 8)",
		"Processes                : 4/4 ready, 3 updated",
		"Nodes                    : 2/2 ready, 1 updated",
		"Ready                    : True (ProcessesReady) 2/2 nodes ready, 4/4 processes ready",
		"RollingRestart           : True (RollingOut) node 2/2 (node-2), process 2/2",
		"ResistingDeploymentError : False (NoDeploymentError) No pool resists a deployment error",
		"Pools      : 2", "Processes  : 4",
		"hello on node-1 (127.0.0.2:8080):",
		"hello on node-2 (127.0.0.3:8080):",
		"* PID: 1001", "* PID: 1002", "* PID: 2001", "* PID: 2002",
		"Memory  : 60M",
		"State: Draining  Revision: 7-"+hash+" (old)",
		"Rolling restart: 1 of 2 processes replaced, to revision 8-"+hash,
		"figures as of 5s ago (the agent sends them when a process changes state, else at most every --stats-interval)",
		"Last used: now", // PID 2002, in a request
	)
	// Sorted by node, the marker on the replaced process only, no stale
	// note (both were written just now), and nothing of the other
	// AppGroup.
	n1, n2 := strings.Index(out, "hello on node-1"), strings.Index(out, "hello on node-2")
	if n1 > n2 {
		t.Errorf("pools not sorted by node:\n%s", out)
	}
	if strings.Count(out, "Rolling restarting...") != 1 ||
		strings.Index(out, "Rolling restarting...") < strings.Index(out, "* PID: 2002") {
		t.Errorf("want one \"Rolling restarting...\", under PID 2002:\n%s", out)
	}
	if strings.Count(out, "figures as of") != 2 {
		t.Errorf("want the figures' age for each node:\n%s", out)
	}
	for _, unwanted := range []string{"9999", "9090", "App groups", "has not taken up", "has not reconciled", "has not reported"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("unexpected %q in:\n%s", unwanted, out)
		}
	}
	if r.err != "" {
		t.Errorf("unexpected standard error: %s", r.err)
	}
}

// TestStatusShowsThePoolsTheAppGroupOwns: the pools are those the AppGroup
// controls, by its UID, as the manager counts them, not all those labelled
// for it: an AppGroup deleted and created again under the same name leaves
// its pool on node-1 behind (as it does when, e.g., the earlier one's
// ferry.dev/drain finalizer was removed by hand before its pools drained,
// or it was deleted with --cascade=orphan; here no manager runs and the
// test control plane has no garbage collector), labelled for the new one
// and of the name the manager gives node-1's pool, so the new one's pool
// there takes the hashed name (createPool). Status shows the new pool
// alone, in its rows, its count and --json. (Seen failing when it listed
// by label: `missing "Pools      : 1"`, the old pool's row shown on node-1
// above the new one's, with PID 7001 and "not given revision 2-0a1b2c3d4e
// yet: waiting for its wave".)
func TestStatusShowsThePoolsTheAppGroupOwns(t *testing.T) {
	ns := newNamespace(t)
	target := "2-" + hash
	before := newAppGroup(t, ns, "app", "1")
	setPoolStatus(t, newPool(t, before, "node-1", "1-"+hash), ferryv1.ProcessPoolStatus{
		Address: "127.0.0.2:8080", ObservedRevision: "1-" + hash, HeartbeatTime: ago(time.Second),
		Processes: []ferryv1.ProcessInfo{{PID: 7001, Revision: "1-" + hash, State: ferryv1.ProcessReady}},
	})
	// No manager: no finalizer keeps it.
	if err := env.Client.Delete(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	ag := newAppGroup(t, ns, "app", "2")
	if ag.UID == before.UID {
		t.Fatal("the AppGroup made again has the UID of the one deleted")
	}
	hashed := contract.HashedPoolName("app", "node-1")
	setPoolStatus(t, newPool(t, ag, "node-1", target, func(p *ferryv1.ProcessPool) { p.Name = hashed }),
		ferryv1.ProcessPoolStatus{
			Address: "127.0.0.2:8080", ObservedRevision: target, HeartbeatTime: ago(time.Second),
			ProcessCounts: ferryv1.ProcessCounts{Ready: 1, Updated: 1, Total: 1}, ReadyProcesses: "1/1",
			Processes: []ferryv1.ProcessInfo{{PID: 1001, Revision: target, State: ferryv1.ProcessReady}},
		})
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, target, 1) })

	r := run(t, "status", "app", "-n", ns)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	assertContains(t, r.out, "Pools      : 1", "app on node-1 (127.0.0.2:8080):", "* PID: 1001")
	if strings.Contains(r.out, "7001") {
		t.Errorf("the deleted AppGroup's pool is shown:\n%s", r.out)
	}
	j := run(t, "status", "app", "-n", ns, "--json")
	var got StatusJSON
	if err := json.Unmarshal([]byte(j.out), &got); err != nil {
		t.Fatalf("%v: %s", err, j.out)
	}
	if len(got.Pools) != 1 || got.Pools[0].Name != hashed {
		t.Errorf("--json pools %+v, want %s alone", got.Pools, hashed)
	}
}

func TestStatusResisting(t *testing.T) {
	ns := newNamespace(t)
	oldRev, target := "8-"+hash, "9-"+hash
	ag := newAppGroup(t, ns, "broken", "9")
	msg := "node node-1: revision " + target + " failed to spawn (exited with status 1); the old processes keep serving. " +
		"Output: ModuleNotFoundError: No module named 'nothing_here'"
	setAppGroupStatus(t, ns, "broken", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, target, 3)
		st.Nodes.Updated, st.Processes.Updated = 0, 0
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted,
			"Rollout of revision "+target+" halted at 0/3 nodes updated: node-1 resisting a deployment error")
		st.Conditions[2] = cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, msg)
	})
	old := []ferryv1.ProcessInfo{
		{PID: 1001, Revision: oldRev, State: ferryv1.ProcessReady},
		{PID: 1002, Revision: oldRev, State: ferryv1.ProcessReady},
	}
	traceback := "Traceback (most recent call last):\n  File \"/srv/hello/passenger_wsgi.py\", line 1, in <module>\n" +
		"    import nothing_here\nModuleNotFoundError: No module named 'nothing_here'\n"
	setPoolStatus(t, newPool(t, ag, "node-1", target), ferryv1.ProcessPoolStatus{
		Address: "127.0.0.2:8080", ObservedRevision: target, Processes: old, HeartbeatTime: ago(time.Second),
		DeploymentError: &ferryv1.SpawnError{Revision: target, Reason: "exited with status 1", Output: traceback,
			Time: metav1.Time{Time: testNow.Add(-10 * time.Second)}},
		Conditions: []metav1.Condition{
			cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, "exited with status 1"),
		},
	})
	setPoolStatus(t, newPool(t, ag, "node-2", oldRev), ferryv1.ProcessPoolStatus{
		Address: "127.0.0.3:8080", ObservedRevision: oldRev, Processes: old, HeartbeatTime: ago(time.Second),
	})
	newPool(t, ag, "node-3", oldRev) // its agent never reported

	r := run(t, "status", "broken", "-n", ns)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	assertContains(t, r.out,
		"ResistingDeploymentError : True (SpawnFailed) "+msg,
		"RollingRestart           : False (RolloutHalted) Rollout of revision "+target+" halted",
		"broken on node-1 (127.0.0.2:8080):",
		"Resisting deployment error: revision "+target+" failed to spawn at "+
			testNow.Add(-10*time.Second).Format(time.RFC3339)+": exited with status 1",
		"    | Traceback (most recent call last):",
		"    |     import nothing_here",
		"    | ModuleNotFoundError: No module named 'nothing_here'",
		"Old processes keep serving",
		"State: Ready     Revision: "+oldRev+" (old)",
		"broken on node-2 (127.0.0.3:8080):",
		"not given revision "+target+" yet: the rollout is halted",
		"broken on node-3:",
		"agent on node-3 has not reported yet",
	)
}

// TestStatusRolloutIncomplete: a pool whose restart left processes on an
// older revision (resistDeploymentErrors false: its RollingRestart
// condition says RolloutIncomplete) says how many and why, the first line
// of its last spawn error, as `ferry-agent status` does, and that the
// pool keeps that one only, not one for each process left (before, one
// error under "2 of 2 processes" read as the cause of both, said once);
// a pool whose restart completed says nothing of it. Before, the view
// showed only the processes marked (old), and the why was in --json
// alone. resistDeploymentErrors turned on since: the view says it was
// false when the revision rolled, not that it is (before, "is false").
func TestStatusRolloutIncomplete(t *testing.T) {
	ns := newNamespace(t)
	oldRev, target := "5-"+hash, "6-"+hash
	ag := newAppGroup(t, ns, "partial", "6")
	setResistance(t, ag, false)
	setAppGroupStatus(t, ns, "partial", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, target, 2)
		st.Nodes.Updated, st.Processes.Updated = 1, 2
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete,
			"Revision "+target+" runs on 1/2 nodes; on node-1 some processes could not be replaced and keep serving "+
				"an older revision (resistDeploymentErrors is false)")
	})
	reason := "the app failed to load: ModuleNotFoundError: No module named 'nothing_here'\n(while importing passenger_wsgi.py)"
	old := []ferryv1.ProcessInfo{
		{PID: 1001, Revision: oldRev, State: ferryv1.ProcessReady},
		{PID: 1002, Revision: oldRev, State: ferryv1.ProcessReady},
	}
	setPoolStatus(t, newPool(t, ag, "node-1", target), ferryv1.ProcessPoolStatus{
		Address: "127.0.0.2:8080", ObservedRevision: target, Processes: old, HeartbeatTime: ago(time.Second),
		ProcessCounts: ferryv1.ProcessCounts{Ready: 2, Updated: 0, Total: 2},
		LastSpawnError: &ferryv1.SpawnError{Revision: target, Reason: reason, Output: "Traceback (most recent call last):",
			Time: metav1.Time{Time: testNow.Add(-10 * time.Second)}},
		Conditions: []metav1.Condition{
			cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete,
				"2 of 2 processes could not be replaced and keep serving an older revision (resistDeploymentErrors is false): "+reason),
		},
	})
	setPoolStatus(t, newPool(t, ag, "node-2", target), ferryv1.ProcessPoolStatus{
		Address: "127.0.0.3:8080", ObservedRevision: target, HeartbeatTime: ago(time.Second),
		ProcessCounts: ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 2},
		Processes: []ferryv1.ProcessInfo{
			{PID: 2001, Revision: target, State: ferryv1.ProcessReady},
			{PID: 2002, Revision: target, State: ferryv1.ProcessReady},
		},
		Conditions: []metav1.Condition{
			cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete,
				"2 of 2 processes on revision "+target),
		},
	})

	r := run(t, "status", "partial", "-n", ns)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	pointer := "kubectl ferry status partial -n " + ns + ` --json | jq '.pools[] | select(.node == "node-1").status.lastSpawnError'`
	assertContains(t, r.out,
		"partial on node-1 (127.0.0.2:8080):\n",
		"  Rolling restart incomplete: 2 of 2 processes could not be replaced and keep serving an older revision "+
			"(resistDeploymentErrors is false); they are tried again at the next revision:\n"+
			"    - the app failed to load: ModuleNotFoundError: No module named 'nothing_here'\n"+
			"    (the pool keeps the last spawn's error only, not one for each of the 2 processes; node-1's agent logged each. "+
			"The last: "+pointer+", with its output.)\n",
		"State: Ready     Revision: "+oldRev+" (old)",
	)
	// The pointer, pasted, prints node-1's error in full: its status
	// --json run here, its jq query run by jq. Before, it named
	// "pools[].status.lastSpawnError", which jq refuses (no leading dot)
	// and which, fixed, prints every pool's.
	if i := strings.Index(r.out, "kubectl ferry status partial -n"); i < 0 {
		t.Errorf("no pointer to paste in:\n%s", r.out)
	} else {
		line, _, _ := strings.Cut(r.out[i:], ", with its output.)")
		cmd, query, _ := strings.Cut(line, " | jq '")
		j := run(t, strings.Fields(strings.TrimPrefix(cmd, "kubectl ferry "))...)
		if j.code != ExitOK {
			t.Fatalf("%s: exit %d: %s", cmd, j.code, j.err)
		}
		var got ferryv1.SpawnError
		if out := runJQ(t, strings.TrimSuffix(query, "'"), j.out); json.Unmarshal([]byte(out), &got) != nil ||
			got.Reason != reason || got.Output != "Traceback (most recent call last):" {
			t.Errorf("%s printed %s; want node-1's last spawn error, its reason and output", line, out)
		}
	}
	if strings.Count(r.out, "Rolling restart incomplete") != 1 ||
		strings.Index(r.out, "Rolling restart incomplete") > strings.Index(r.out, "partial on node-2") {
		t.Errorf("want the incomplete restart on node-1 only:\n%s", r.out)
	}
	if strings.Contains(r.out, "(while importing") {
		t.Errorf("more than the reason's first line shown:\n%s", r.out)
	}

	// Turned on since, which takes nothing back.
	setResistance(t, ag, true)
	r = run(t, "status", "partial", "-n", ns)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	assertContains(t, r.out, "  Rolling restart incomplete: 2 of 2 processes could not be replaced and keep serving an older revision "+
		"(resistDeploymentErrors was false when revision "+target+" rolled); they are tried again at the next revision:\n")
}

// TestIncomplete: the view's incomplete restart of a pool shows its last
// spawn error when it is of the revision the pool took up, and says the
// pool keeps no other when more than one process was left behind; it
// says resistDeploymentErrors was false once the AppGroup has it on.
func TestIncomplete(t *testing.T) {
	const rev = "6-" + hash
	pointer := `kubectl ferry status partial -n ns --json | jq '.pools[] | select(.node == "node-1").status.lastSpawnError'`
	tests := []struct {
		name        string
		resist      *bool
		left        int32
		errRevision string // "": no last spawn error
		details     string
		resistsNow  bool
	}{
		{name: "one left", resist: ptr.To(false), left: 1, errRevision: rev,
			details: "the last spawn's error: " + pointer},
		{name: "two left", resist: ptr.To(false), left: 2, errRevision: rev,
			details: "the pool keeps the last spawn's error only, not one for each of the 2 processes; " +
				"node-1's agent logged each. The last: " + pointer},
		{name: "last error of another revision", resist: ptr.To(false), left: 2, errRevision: "5-" + hash},
		{name: "no error", resist: ptr.To(false), left: 2},
		{name: "resistance turned on since", resist: ptr.To(true), left: 2, errRevision: rev, resistsNow: true,
			details: "the pool keeps the last spawn's error only, not one for each of the 2 processes; " +
				"node-1's agent logged each. The last: " + pointer},
		{name: "resistance unset since (the default, on)", left: 1, errRevision: rev, resistsNow: true,
			details: "the last spawn's error: " + pointer},
	}
	for _, tt := range tests {
		ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "partial"}}
		ag.Spec.Restart.ResistDeploymentErrors = tt.resist
		p := &ferryv1.ProcessPool{Spec: ferryv1.ProcessPoolSpec{NodeName: "node-1", Revision: rev}}
		p.Status.ObservedRevision = rev
		p.Status.ProcessCounts = ferryv1.ProcessCounts{Ready: 2, Updated: 2 - tt.left, Total: 2}
		if tt.errRevision != "" {
			p.Status.LastSpawnError = &ferryv1.SpawnError{Revision: tt.errRevision, Reason: "exited with status 1"}
		}
		in := incomplete(ag, p)
		if in.Left != tt.left || in.Total != 2 || in.Revision != rev || in.ResistsNow != tt.resistsNow {
			t.Errorf("%s: left %d of %d, revision %q, resistsNow %v; want %d of 2, %q, %v", tt.name,
				in.Left, in.Total, in.Revision, in.ResistsNow, tt.left, rev, tt.resistsNow)
		}
		if in.Details != tt.details || (len(in.Errors) == 1) != (tt.details != "") {
			t.Errorf("%s: details %q, %d errors; want %q", tt.name, in.Details, len(in.Errors), tt.details)
		}
	}
}

// setResistance sets ag's restart.resistDeploymentErrors, as a user does.
func setResistance(t *testing.T, ag *ferryv1.AppGroup, on bool) {
	t.Helper()
	patch := client.MergeFrom(ag.DeepCopy())
	ag.Spec.Restart.ResistDeploymentErrors = ptr.To(on)
	if err := env.Client.Patch(context.Background(), ag, patch); err != nil {
		t.Fatal(err)
	}
}

// runJQ runs jq's query on input, as a user pasting a pointer of the view
// does, and returns what it printed. jq is one of the packages
// hack/install-deps.sh installs (make test).
func runJQ(t *testing.T, query, input string) string {
	t.Helper()
	jq, err := exec.LookPath("jq")
	if err != nil {
		t.Fatalf("jq, which the view's pointers use, is not installed (make test installs it): %v", err)
	}
	cmd := exec.Command(jq, "-c", query)
	cmd.Stdin = strings.NewReader(input)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jq %q: %v: %s", query, err, stderr.String())
	}
	return string(out)
}

// haltedFixture is AppGroup name on revision 9, whose rollout node-1
// halted 2 minutes ago (resisted or not), rolled out last on revision 8;
// its pools are the test's to make.
func haltedFixture(t *testing.T, name string, resisted bool) (ns string, ag *ferryv1.AppGroup, oldRev, target string) {
	t.Helper()
	ns = newNamespace(t)
	oldRev, target = "8-"+hash, "9-"+hash
	ag = newAppGroup(t, ns, name, "9")
	setAppGroupStatus(t, ns, name, func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, target, 1)
		st.Nodes.Updated, st.Processes.Updated = 0, 0
		st.HaltedRollout = &ferryv1.HaltedRollout{Revision: target, Node: "node-1", Reason: "exited with status 1",
			Resisted: resisted, Since: metav1.Time{Time: testNow.Add(-2 * time.Minute)}}
		st.LastRolledOut = &ferryv1.RolledOutRevision{Revision: oldRev, App: template().App}
	})
	return ns, ag, oldRev, target
}

// TestStatusHaltedRollout: the halt the manager remembers shows in the
// header, with the revision last rolled out, and a pool the manager
// returned to that revision says so, in the view and in --json.
func TestStatusHaltedRollout(t *testing.T) {
	ns, ag, oldRev, target := haltedFixture(t, "halted", true)
	p := newPool(t, ag, "node-1", oldRev)
	p.Annotations = map[string]string{contract.ReturnedFromAnnotation: target}
	if err := env.Client.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	setPoolStatus(t, p, ferryv1.ProcessPoolStatus{
		Address: "127.0.0.2:8080", ObservedRevision: oldRev, HeartbeatTime: ago(time.Second),
		Processes: []ferryv1.ProcessInfo{{PID: 1001, Revision: oldRev, State: ferryv1.ProcessReady}},
	})

	r := run(t, "status", "halted", "-n", ns)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	pad := strings.Repeat(" ", len(ferryv1.ConditionResistingDeploymentError)+3)
	assertContains(t, r.out,
		"Halted rollout           : revision "+target+", on node-1, 2m ago: exited with status 1\n"+
			pad+"(the node kept serving an older revision)\n"+
			pad+"No other node gets it, and it is not retried: set a new revision to retry.",
		"Last rolled out          : "+oldRev,
		"returned by the manager to revision "+oldRev+": it could not run "+target,
	)
	for _, unwanted := range []string{"waiting for its wave", "not given revision"} {
		if strings.Contains(r.out, unwanted) {
			t.Errorf("%q in:\n%s", unwanted, r.out)
		}
	}
	// A pool on a node the halted revision has not reached, with the mark
	// of a return from an older target (a pool draining elsewhere may keep
	// one): not returned from this one.
	p2 := newPool(t, ag, "node-2", oldRev)
	p2.Annotations = map[string]string{contract.ReturnedFromAnnotation: "7-" + hash}
	if err := env.Client.Update(context.Background(), p2); err != nil {
		t.Fatal(err)
	}
	setPoolStatus(t, p2, ferryv1.ProcessPoolStatus{ObservedRevision: oldRev, HeartbeatTime: ago(time.Second)})
	r = run(t, "status", "halted", "-n", ns)
	assertContains(t, r.out, "not given revision "+target+" yet: the rollout is halted")
	if strings.Contains(r.out, "it could not run 7-") {
		t.Errorf("a return from an older target shown:\n%s", r.out)
	}

	r = run(t, "status", "halted", "-n", ns, "--json")
	var out StatusJSON
	if err := json.Unmarshal([]byte(r.out), &out); err != nil {
		t.Fatalf("%v in:\n%s", err, r.out)
	}
	if len(out.Pools) != 2 || out.Pools[0].ReturnedFrom != target || out.Pools[1].ReturnedFrom != "7-"+hash {
		t.Errorf("pools %+v, want node-1 returned from %s, node-2 marked from 7 (--json shows the annotation as it is)", out.Pools, target)
	}
	if h := out.Status.HaltedRollout; h == nil || h.Node != "node-1" {
		t.Errorf("haltedRollout %+v, want node-1's", h)
	}
}

// TestStatusHaltNotResistedIsRetried: a halt with resisted=false (a
// Blocking restart, or resistDeploymentErrors off) is one whose node stays
// on the revision and keeps retrying it; the halt ends, and the rollout
// goes on, once that node runs it (haltRecord; install.md: "With
// resistDeploymentErrors: false, a node that cannot spawn the new revision
// keeps retrying it, and the rollout goes on once it succeeds"). The
// header must not tell the user it is not retried. (Found by review.)
func TestStatusHaltNotResistedIsRetried(t *testing.T) {
	ns, ag, oldRev, target := haltedFixture(t, "blocking", false)
	p := newPool(t, ag, "node-1", target)
	setPoolStatus(t, p, ferryv1.ProcessPoolStatus{ObservedRevision: target, HeartbeatTime: ago(time.Second)})
	// A node the halt keeps the revision from.
	p2 := newPool(t, ag, "node-2", oldRev)
	setPoolStatus(t, p2, ferryv1.ProcessPoolStatus{ObservedRevision: oldRev, HeartbeatTime: ago(time.Second)})

	haltSays(t, ns, "blocking", "it is not retried", "No other node gets it until that node runs it.")
}

// TestStatusHaltOnEveryNode: a new AppGroup starts on every node at once,
// so when it cannot spawn there, each node already has the revision the
// halt names. The header must not say that no other node gets it (seen
// with a new AppGroup whose app.root was wrong on both nodes of make
// local-up: "No other node gets it until that node runs it.").
func TestStatusHaltOnEveryNode(t *testing.T) {
	ns := newNamespace(t)
	target := "1-" + hash
	ag := newAppGroup(t, ns, "fresh", "1")
	setAppGroupStatus(t, ns, "fresh", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		st.ObservedGeneration = ag.Generation
		st.Revision = target
		st.HaltedRollout = &ferryv1.HaltedRollout{Revision: target, Node: "node-2",
			Reason: "could not start: app.root /srv/hello does not exist", Since: metav1.Time{Time: testNow.Add(-time.Minute)}}
	})
	for _, node := range []string{"node-1", "node-2"} {
		p := newPool(t, ag, node, target)
		setPoolStatus(t, p, ferryv1.ProcessPoolStatus{ObservedRevision: target, HeartbeatTime: ago(time.Second)})
	}

	haltSays(t, ns, "fresh", "No other node gets it", "Every node was given it already; the halt ends once that node runs it.")
}

// TestHaltSummarySaysWhatServes: a halt not resisted says whether older
// processes serve on its node from that node's pool, not that the node
// was left with none: a Rolling restart's old ones serve while its agent
// retries. (Seen failing before: every such halt read "the node was left
// with no process".) It judges them as the manager's halt message does
// (contract.WhatServes): not where the agent stops, its proxy cannot
// listen, or it is not heard from, and by the counts without a process
// table. (Seen failing before: those rows said "older processes serve on
// the node meanwhile", or with no table "no older process serves", where
// the manager's message said the opposite.) That its agent keeps
// retrying is said only where the agent reports on a pool of the
// revision; where there is no such pool, or its agent is not heard from,
// it says which. (Seen failing before: "(its agent keeps retrying)" of a
// silent agent, a pool being deleted, a node on another revision, or no
// pool at all.)
func TestHaltSummarySaysWhatServes(t *testing.T) {
	const target, older = "2-abc", "1-abc"
	h := &ferryv1.HaltedRollout{Revision: target, Node: "node-1", Reason: "exited with status 1", Since: metav1.Time{Time: testNow}}
	// pool is the halted node's, its counts those of procs, as its agent
	// reports them, edited by edits.
	pool := func(procs []ferryv1.ProcessInfo, edits ...func(*ferryv1.ProcessPool)) *ferryv1.ProcessPool {
		p := &ferryv1.ProcessPool{Spec: ferryv1.ProcessPoolSpec{NodeName: "node-1", Revision: target}}
		p.Spec.Template.Listen.Port = 8080
		p.Status.ObservedRevision = target // its agent has taken it up
		p.Status.Processes = procs
		p.Status.ProcessCounts.Total = int32(len(procs))
		for _, pr := range procs {
			if pr.State == ferryv1.ProcessReady {
				p.Status.ProcessCounts.Ready++
			}
			if pr.Revision == target {
				p.Status.ProcessCounts.Updated++
			}
		}
		for _, edit := range edits {
			edit(p)
		}
		return p
	}
	ready := func(rev string) ferryv1.ProcessInfo {
		return ferryv1.ProcessInfo{Revision: rev, State: ferryv1.ProcessReady}
	}
	spawning := ferryv1.ProcessInfo{Revision: target, State: ferryv1.ProcessSpawning}
	notReady := func(reason, address string) func(*ferryv1.ProcessPool) {
		return func(p *ferryv1.ProcessPool) {
			p.Status.Conditions = []metav1.Condition{cond(ferryv1.ConditionReady, metav1.ConditionFalse, reason, "x")}
			p.Status.Address, p.Status.ListenPort = address, 8080
		}
	}
	noTable := func(p *ferryv1.ProcessPool) { p.Status.Processes = nil }
	const (
		olderServe = "(older processes serve on the node meanwhile; its agent keeps retrying)"
		noneOlder  = "(no older process serves on the node; its agent keeps retrying)"
		itServes   = "(a process of it serves on the node, none older; its agent keeps retrying)"
		unknown    = "(its agent keeps retrying)"
		silent     = "(its agent is not heard from)"
		noPool     = "(no pool on the node now)"
		deleted    = "(its pool on the node is being deleted)"
		returned   = "(the node runs revision 1-abc now)"
		unassigned = "(the node is given no revision now)"
		// What follows: the node may yet run it, or, no pool of it
		// there, only a new revision goes on.
		untilItRuns = "No other node gets it until that node runs it."
		newRevision = "No other node gets it: set a new revision to go on."
	)
	for _, tt := range []struct {
		name  string
		pool  *ferryv1.ProcessPool
		heard bool
		want  string
	}{
		{"older processes ready, a retry spawning", pool([]ferryv1.ProcessInfo{ready(older), ready(older), spawning}), true, olderServe},
		{"none running", pool(nil), true, noneOlder},
		{"an older process draining, none ready", pool([]ferryv1.ProcessInfo{{Revision: older, State: ferryv1.ProcessDraining}}),
			true, noneOlder},
		{"no pool on the node", nil, false, noPool},
		// The rows where the manager's judgement differed.
		{"older processes ready, its agent silent", pool([]ferryv1.ProcessInfo{ready(older), ready(older), spawning}), false, silent},
		{"older processes ready, its agent stopping",
			pool([]ferryv1.ProcessInfo{ready(older), ready(older)}, notReady(ferryv1.ReasonAgentStopping, "10.0.0.1:8080")), true, noneOlder},
		{"older processes ready, its proxy unable to listen",
			pool([]ferryv1.ProcessInfo{ready(older), ready(older)}, notReady(ferryv1.ReasonListenFailed, "10.0.0.1:8080")), true, noneOlder},
		{"older processes ready, its proxy serving on its old port",
			pool([]ferryv1.ProcessInfo{ready(older), ready(older)}, notReady(ferryv1.ReasonListenFailed, "10.0.0.1:7070")), true, olderServe},
		{"no process table, two older processes ready by the counts",
			pool([]ferryv1.ProcessInfo{ready(older), ready(older), spawning}, noTable), true, olderServe},
		{"no process table, the retry's one process ready by the counts", pool([]ferryv1.ProcessInfo{ready(target)}, noTable),
			true, itServes},
		// One of two ready, one updated: the counts cannot tell whether
		// the ready one is older.
		{"no process table, one of two ready, one updated", pool([]ferryv1.ProcessInfo{ready(older), spawning}, noTable),
			true, unknown},
		// Between two failures, a retry's process is ready: the node
		// serves the revision, if none older.
		{"a retry's process ready, none older", pool([]ferryv1.ProcessInfo{ready(target), spawning}), true, itServes},
		{"a retry's process ready beside older ones", pool([]ferryv1.ProcessInfo{ready(older), ready(target)}), true, olderServe},
		{"the pool on another revision now", pool([]ferryv1.ProcessInfo{ready(older)}, func(p *ferryv1.ProcessPool) {
			p.Spec.Revision = older
		}), true, returned},
		// The manager says the node is no longer selected.
		{"the pool being deleted, older processes ready", pool([]ferryv1.ProcessInfo{ready(older), ready(older)},
			func(p *ferryv1.ProcessPool) { p.DeletionTimestamp = &metav1.Time{Time: testNow} }), true, deleted},
		{"the pool given no revision now", pool([]ferryv1.ProcessInfo{ready(older)}, func(p *ferryv1.ProcessPool) {
			p.Spec.Revision = ""
		}), true, unassigned},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := haltSummary(h, testNow, false, tt.pool, tt.heard)
			then := untilItRuns
			if slices.Contains([]string{noPool, deleted, returned, unassigned}, tt.want) {
				then = newRevision
			}
			if !strings.HasSuffix(got, "\n"+tt.want+"\n"+then) {
				t.Errorf("got %q, want it to end %q", got, tt.want+"\n"+then)
			}
		})
	}
}

// TestHaltSummaryWhereEveryOtherNodeHasIt: every other node's pool was
// given the revision already and the halt's node has no pool of it left
// (no pool there now, or its pool being deleted: the manager no longer
// counts the node), so the halt ends once the other nodes run it, not
// once that node does, which it never will; a pool of it there, its
// agent heard from or not, may yet run it. With no other node's pool (a
// one-node AppGroup whose node is deselected), or the node's own pool on
// another revision, no node is waiting to run it. A lost creation race's
// second pool on a node, until the manager deletes it, is none of that
// node's: the pool the manager keeps there (contract.KeptPools) says
// whether it was given it. (Seen failing before: "Every node was given it
// already; the halt ends once that node runs it." with no pool there;
// "Every other node was given it already; the halt ends once they run
// it." with only the node's own pool, being deleted; and, with the race's
// older pool counted, "No other node gets it until that node runs it.")
func TestHaltSummaryWhereEveryOtherNodeHasIt(t *testing.T) {
	const target = "2-abc"
	h := &ferryv1.HaltedRollout{Revision: target, Node: "node-1", Reason: "exited with status 1", Since: metav1.Time{Time: testNow}}
	pool := func(node string, edits ...func(*ferryv1.ProcessPool)) ferryv1.ProcessPool {
		p := ferryv1.ProcessPool{Spec: ferryv1.ProcessPoolSpec{NodeName: node, Revision: target}}
		p.Status.ObservedRevision = target
		for _, edit := range edits {
			edit(&p)
		}
		return p
	}
	deleted := func(p *ferryv1.ProcessPool) { p.DeletionTimestamp = &metav1.Time{Time: testNow} }
	older := func(p *ferryv1.ProcessPool) { p.Spec.Revision, p.Status.ObservedRevision = "1-old", "1-old" }
	// lostRace names a node's pool as the second pool a creation race
	// made there, above the node's own name ("app-node-2"): the manager
	// deletes it (contract.KeptPools keeps the lowest name).
	lostRace := func(p *ferryv1.ProcessPool) { p.Name = "app-" + p.Spec.NodeName + "-x" }
	own := func(p *ferryv1.ProcessPool) { p.Name = "app-" + p.Spec.NodeName }
	const (
		thatNode = "Every node was given it already; the halt ends once that node runs it."
		others   = "Every other node was given it already; the halt ends once they run it."
		newOne   = "No other node gets it: set a new revision to go on."
		waits    = "No other node gets it until that node runs it."
	)
	for _, tt := range []struct {
		name string
		// total is status.nodes.total: the nodes selected.
		total int32
		pools []ferryv1.ProcessPool
		heard bool
		want  string
	}{
		{"no pool on the node", 1, []ferryv1.ProcessPool{pool("node-2")}, false, others},
		{"its pool being deleted", 1, []ferryv1.ProcessPool{pool("node-1", deleted), pool("node-2")}, true, others},
		{"a pool of it, its agent heard from", 2, []ferryv1.ProcessPool{pool("node-1"), pool("node-2")}, true, thatNode},
		{"a pool of it, its agent silent", 2, []ferryv1.ProcessPool{pool("node-1"), pool("node-2")}, false, thatNode},
		{"only its own pool, being deleted", 0, []ferryv1.ProcessPool{pool("node-1", deleted)}, true, newOne},
		{"its pool on another revision", 2, []ferryv1.ProcessPool{pool("node-1", older), pool("node-2")}, true, newOne},
		// The node's pool is the one not being deleted, as the manager
		// keeps it, listed first or not.
		{"a pool of it beside one being deleted", 2, []ferryv1.ProcessPool{pool("node-1", deleted, older), pool("node-1"), pool("node-2")},
			true, thatNode},
		{"a pool of it beside one of it being deleted", 2, []ferryv1.ProcessPool{pool("node-1", deleted), pool("node-1"), pool("node-2")},
			true, thatNode},
		// Another node's pool being deleted is no node given it, nor one
		// kept from it.
		{"the other node's pool being deleted", 1, []ferryv1.ProcessPool{pool("node-1"), pool("node-2", deleted)}, true, waits},
		{"the other node's older pool being deleted", 2, []ferryv1.ProcessPool{pool("node-1"), pool("node-2", deleted, older), pool("node-2")},
			true, thatNode},
		{"no pool on the node, the other's being deleted", 1, []ferryv1.ProcessPool{pool("node-2", deleted), pool("node-3")}, false, others},
		// A lost creation race's pool, not yet deleted, is none of its
		// node's either, listed after the node's own or before it; the
		// node's own pool judges it.
		{"a lost race's older pool beside the other node's own", 2,
			[]ferryv1.ProcessPool{pool("node-1"), pool("node-2", own), pool("node-2", lostRace, older)}, true, thatNode},
		{"a lost race's older pool listed before the other node's own", 2,
			[]ferryv1.ProcessPool{pool("node-1"), pool("node-2", lostRace, older), pool("node-2", own)}, true, thatNode},
		// Not a bug the old count had (any pool not being deleted, of
		// another revision, kept the node from it, as the older own one
		// does): a guard on which of the node's pools is chosen, the
		// kept one and not the race's of the revision.
		{"a lost race's pool of it beside the other node's older own", 2,
			[]ferryv1.ProcessPool{pool("node-1"), pool("node-2", lostRace), pool("node-2", own, older)}, true, waits},
		// A node whose older pool is being deleted, no pool of its own
		// yet (it waits for the old one to drain), is no node given it.
		{"another node's older pool being deleted, none beside", 3,
			[]ferryv1.ProcessPool{pool("node-1"), pool("node-2", deleted, older), pool("node-3")}, true, waits},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kept := contract.KeptPools(contract.PoolPointers(tt.pools))
			onHaltNode := poolOn(h.Node, kept, tt.pools)
			if got := haltSummary(h, testNow, givenToEveryPool(h.Node, target, tt.total, kept), onHaltNode, tt.heard); !strings.HasSuffix(got, "\n"+tt.want) {
				t.Errorf("got %q, want it to end %q", got, tt.want)
			}
		})
	}
}

// TestStatusHaltOnASilentNode: the halt's header says what serves on its
// node only while that node's agent is heard from, as the pool's own
// rows judge it (silence): the manager's message says nothing of a
// silent node's processes either. (Seen failing before: a silent
// agent's last figures read as older processes serving now.)
func TestStatusHaltOnASilentNode(t *testing.T) {
	ns := newNamespace(t)
	target, older := "2-"+hash, "1-"+hash
	ag := newAppGroup(t, ns, "halted", "2")
	setAppGroupStatus(t, ns, "halted", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		st.ObservedGeneration = ag.Generation
		st.Revision = target
		st.HaltedRollout = &ferryv1.HaltedRollout{Revision: target, Node: "node-1",
			Reason: "the app failed to load", Since: metav1.Time{Time: testNow.Add(-time.Minute)}}
	})
	p := newPool(t, ag, "node-1", target)
	setPoolStatus(t, p, ferryv1.ProcessPoolStatus{ObservedRevision: target, HeartbeatTime: ago(time.Second),
		ProcessCounts: ferryv1.ProcessCounts{Total: 2, Ready: 2},
		Processes: []ferryv1.ProcessInfo{{PID: 1, Revision: older, State: ferryv1.ProcessReady},
			{PID: 2, Revision: older, State: ferryv1.ProcessReady}}})
	last := lastWritten(p)

	r := runApp(t, &App{Now: func() time.Time { return last.Add(10 * time.Second) }}, "status", "halted", "-n", ns)
	assertContains(t, r.out, "(older processes serve on the node meanwhile; its agent keeps retrying)")

	r = runApp(t, &App{Now: func() time.Time { return last.Add(10 * time.Minute) }}, "status", "halted", "-n", ns)
	assertContains(t, r.out, "agent on node-1 has not reported for 10m; figures may be stale", "(its agent is not heard from)")
	if strings.Contains(r.out, "older process") {
		t.Errorf("the header says what serves on a silent node:\n%s", r.out)
	}
}

// haltSays runs kubectl ferry status on name, whose rollout is halted on
// a node left with no process, and checks that its header says so, and
// then says, about the nodes, next and not notWant.
func haltSays(t *testing.T, ns, name, notWant, next string) {
	t.Helper()
	r := run(t, "status", name, "-n", ns)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	assertContains(t, r.out, "(no older process serves on the node; its agent keeps retrying)", next)
	if strings.Contains(r.out, notWant) {
		t.Errorf("the halt's header says %q:\n%s", notWant, r.out)
	}
}

func TestStatusJSON(t *testing.T) {
	ns := healthyFixture(t)
	r := run(t, "status", "hello", "-n", ns, "--json")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	var got StatusJSON
	if err := json.Unmarshal([]byte(r.out), &got); err != nil {
		t.Fatalf("%v in:\n%s", err, r.out)
	}
	if got.Namespace != ns || got.Name != "hello" || got.RevisionAnnotation != "8" || got.Generation != 1 {
		t.Errorf("AppGroup fields: %+v", got)
	}
	if got.Status.Revision != "8-"+hash || len(got.Status.Conditions) != 3 || got.Status.Nodes.Total != 2 {
		t.Errorf("AppGroup status: %+v", got.Status)
	}
	if len(got.Pools) != 2 || got.Pools[0].Node != "node-1" || got.Pools[1].Node != "node-2" {
		t.Fatalf("pools: %+v", got.Pools)
	}
	p2 := got.Pools[1]
	if p2.Name != "hello-node-2" || p2.Revision != "8-"+hash || p2.Status.Address != "127.0.0.3:8080" ||
		len(p2.Status.Processes) != 2 || !p2.Status.Processes[1].Replacing || p2.Status.RestartProgress == nil {
		t.Errorf("pool node-2: %+v", p2)
	}
}

func TestStatusManagerBehind(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "fresh", "")
	r := run(t, "status", "fresh", "-n", ns)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	assertContains(t, r.out,
		"Target revision          : - (ferry.dev/revision: unset, so 0)",
		"Ready                    : not reported yet",
		"The manager has not reported on this AppGroup yet",
		"No ProcessPools",
		"Pools      : 0",
	)

	// A bump the manager has not taken up yet.
	setAppGroupStatus(t, ns, "fresh", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, "0-"+hash, 1)
	})
	if r := run(t, "restart", "fresh", "-n", ns); r.code != ExitOK {
		t.Fatalf("restart: exit %d: %s", r.code, r.err)
	}
	r = run(t, "status", "fresh", "-n", ns)
	assertContains(t, r.out, "The manager has not taken up ferry.dev/revision=1 yet (status.revision is 0-"+hash+").")
}

func TestUnknownAppGroup(t *testing.T) {
	ns := newNamespace(t)
	for _, args := range [][]string{
		{"status", "nosuch", "-n", ns},
		{"status", "nosuch", "-n", ns, "--json"},
		{"restart", "nosuch", "-n", ns},
		{"restart", "nosuch", "-n", ns, "--wait"},
	} {
		r := run(t, args...)
		want := `AppGroup "nosuch" not found in namespace "` + ns + `"`
		if r.code != ExitFailure || r.err != "error: "+want+"\n" || r.out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, r.code, r.out, r.err, want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "a command is required"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"status"}, "the AppGroup NAME is required"},
		{[]string{"status", "a", "b"}, "one AppGroup NAME is expected"},
		{[]string{"status", "a", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"--json", "status", "a"}, "unknown flag: --json"},
		{[]string{"restart", "a", "--revision", "bad value"}, "may only contain letters, digits"},
		{[]string{"restart", "a", "--revision", ""}, "is empty"},
		{[]string{"restart", "a", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"restart", "a", "--timeout", "soon"}, "invalid argument"},
		{[]string{"status", "a", "--stale-after", "-1s"}, "--stale-after must be positive"},
	} {
		r := run(t, tt.args...)
		if r.code != ExitUsage || !strings.Contains(r.err, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tt.args, r.code, r.err, tt.want)
		}
	}
	r := run(t, "restart", "--help")
	if r.code != ExitOK || !strings.Contains(r.out, "--revision") || !strings.Contains(r.out, "--wait") {
		t.Errorf("restart --help: exit %d, stdout %q", r.code, r.out)
	}
	r = run(t, "-n", "x", "--help")
	if r.code != ExitOK || !strings.Contains(r.out, "kubectl ferry status NAME") {
		t.Errorf("--help: exit %d, stdout %q", r.code, r.out)
	}
}

// TestStatusSilentAgent: an agent that has written neither its pools'
// statuses nor its node's Lease within --stale-after (and the clocks'
// slack) is called silent, for as long as it has been. The API server
// times the writes, at the real time the fixture makes them, so the
// plugin's clock is moved past them (the healthy fixture's pools read as
// written just now: TestStatusHealthy).
func TestStatusSilentAgent(t *testing.T) {
	ns := healthyFixture(t) // node-2's heartbeat is stamped 2 minutes ago
	p2 := &ferryv1.ProcessPool{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: contract.PoolName("hello", "node-2")}, p2); err != nil {
		t.Fatal(err)
	}
	lease := newAgentLease(t, ns, "node-2", testNow.Add(-5*time.Second))
	last := lastWritten(p2, lease)
	r := runApp(t, &App{Now: func() time.Time { return last.Add(2 * time.Minute) }}, "status", "hello", "-n", ns, "--lease-namespace", ns)
	assertContains(t, r.out, "agent on node-2 has not reported for 2m; figures may be stale")

	// Written 1 minute before the clock: within --stale-after (40s) and
	// the clocks' slack (30s).
	r = runApp(t, &App{Now: func() time.Time { return last.Add(time.Minute) }}, "status", "hello", "-n", ns, "--lease-namespace", ns)
	if strings.Contains(r.out, "agent on node-2 has not reported") {
		t.Errorf("written 1m ago, called silent:\n%s", r.out)
	}

	// The agent stopped an hour ago; since, someone labelled its Lease
	// and its pool by hand, and wrote a condition into the pool's status,
	// each by its own field manager. Neither renews the Lease nor reports
	// (before: the label read as a renewal just now, and the condition as
	// a report).
	labelLater(t, lease, time.Hour)
	labelLater(t, p2, time.Hour)
	p2.Status.Conditions = append(p2.Status.Conditions, metav1.Condition{Type: "Inspected", Status: metav1.ConditionTrue,
		Reason: "ByHand", LastTransitionTime: metav1.Now()})
	if err := env.Client.Status().Update(context.Background(), p2, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	last = lastWritten(p2, lease)
	r = runApp(t, &App{Now: func() time.Time { return last.Add(2 * time.Second) }}, "status", "hello", "-n", ns, "--lease-namespace", ns)
	assertContains(t, r.out, "agent on node-2 has not reported for 60m; figures may be stale")
}

// labelLater plays a hand `kubectl label` of obj (a patch, by its own
// field manager) d after the writes obj has had so far: the API server
// records the label's write at its now, and the same write sets the
// earlier writes' managedFields times back by d, as waiting d would have
// left them (the API server keeps the times a write sends for the entries
// it does not change). obj is left as written.
func labelLater(t *testing.T, obj client.Object, d time.Duration) {
	t.Helper()
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	fields := obj.GetManagedFields()
	for i := range fields {
		if fields[i].Time != nil {
			fields[i].Time = &metav1.Time{Time: fields[i].Time.Add(-d)}
		}
	}
	obj.SetManagedFields(fields)
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels["checked-by"] = "hand"
	obj.SetLabels(labels)
	if err := env.Client.Patch(context.Background(), obj, patch, client.FieldOwner("kubectl-label")); err != nil {
		t.Fatal(err)
	}
	// The premise: the label's write is the latest, the others d older.
	for _, f := range obj.GetManagedFields() {
		if f.Manager != "kubectl-label" && f.Time != nil && !f.Time.Add(d/2).Before(lastWritten(obj)) {
			t.Fatalf("%s's write at %s, the label's at %s: not set back by %s", f.Manager, f.Time, lastWritten(obj), d)
		}
	}
}

// TestStatusAgentClockSkew: an agent stamps its pools' heartbeatTime and
// its Lease's renewTime by its own clock, and the manager times them by
// when it saw them change (controllers/signs.go); the plugin, by when the
// API server recorded the writes. An agent 45 s behind that wrote just now
// is not silent (before, it read "has not reported for 45s" while the
// manager called it Ready); one an hour ahead that stopped writing is,
// --stale-after and the slack past its last write, as the manager says
// (before: not until an hour later). The figures' age is the writes' too.
func TestStatusAgentClockSkew(t *testing.T) {
	ns := newNamespace(t)
	target := "8-" + hash
	ag := newAppGroup(t, ns, "skewed", "8")
	setAppGroupStatus(t, ns, "skewed", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, target, 2) })
	ready := []metav1.Condition{cond(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "2/2 processes ready")}
	now := time.Now()
	behind, ahead := now.Add(-45*time.Second), now.Add(time.Hour)
	p1 := newPool(t, ag, "node-1", target)
	setPoolStatus(t, p1, ferryv1.ProcessPoolStatus{Address: "127.0.0.2:8080", ObservedRevision: target,
		HeartbeatTime: &metav1.Time{Time: behind}, Conditions: ready})
	newAgentLease(t, ns, "node-1", behind)
	p2 := newPool(t, ag, "node-2", target)
	setPoolStatus(t, p2, ferryv1.ProcessPoolStatus{Address: "127.0.0.3:8080", ObservedRevision: target,
		HeartbeatTime: &metav1.Time{Time: ahead}, Conditions: ready})
	lease2 := newAgentLease(t, ns, "node-2", ahead)

	// 10s after node-1's writes, a little less after node-2's.
	r := runApp(t, &App{Now: func() time.Time { return lastWritten(p1).Add(10 * time.Second) }},
		"status", "skewed", "-n", ns, "--lease-namespace", ns)
	if r.code != ExitOK || strings.Contains(r.out, "has not reported") {
		t.Errorf("agents that wrote just now, by skewed clocks, called silent (exit %d):\n%s%s", r.code, r.out, r.err)
	}
	// node-1's figures' age too is the API server's (not 55s).
	assertContains(t, r.out, "figures as of 10s ago")

	// node-2's agent died after its writes.
	last := lastWritten(p2, lease2)
	r = runApp(t, &App{Now: func() time.Time { return last.Add(2 * time.Minute) }}, "status", "skewed", "-n", ns, "--lease-namespace", ns)
	assertContains(t, r.out, "agent on node-2 has not reported for 2m; figures may be stale")
}

// newAgentLease plays node's agent: it creates the node's Lease in ns,
// renewed at renewed by the agent's clock, and returns it as written.
func newAgentLease(t *testing.T, ns, node string, renewed time.Time) *coordinationv1.Lease {
	t.Helper()
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: contract.AgentLeaseName(node), Labels: contract.AgentLeaseLabels(node)},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), RenewTime: &metav1.MicroTime{Time: renewed}},
	}
	if err := env.Client.Create(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l
}

// lastWritten is when the API server last recorded a write to any of objs,
// as it returned them: their latest managedFields time.
func lastWritten(objs ...client.Object) time.Time {
	var last time.Time
	for _, o := range objs {
		for _, f := range o.GetManagedFields() {
			if f.Time != nil && f.Time.After(last) {
				last = f.Time.Time
			}
		}
	}
	return last
}

// TestStatusManagerDown: with no leader Lease (no manager ever led there),
// a note says none may run; with it renewed, the status has no note on
// it; with it released (a clean stop) or not renewed for longer than it
// lasts (a crash, a lost node), a note says the manager may be down and
// the status is what it last wrote. Before, the last status read as
// current (found by a walkthrough), and with no Lease it still did. The
// manager here stamps renewTime an hour behind: its renewals are timed by
// when the API server recorded them, so it is not called down while it
// renews (before: "has not renewed its Lease ... for 60m").
func TestStatusManagerDown(t *testing.T) {
	ns := healthyFixture(t)
	statusAt := func(now time.Time) string {
		t.Helper()
		r := runApp(t, &App{Now: func() time.Time { return now }}, "status", "hello", "-n", ns, "--lease-namespace", ns)
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.err)
		}
		return r.out
	}
	assertContains(t, statusAt(testNow), "No ferry-manager leads: there is no leader Lease "+ns+"/manager.ferry.dev, so none may be running")

	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: contract.ManagerLeaseName},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("ferry-manager-7d9f_1f3a"), LeaseDurationSeconds: ptr.To[int32](15),
			RenewTime: &metav1.MicroTime{Time: time.Now().Add(-time.Hour)}},
	}
	if err := env.Client.Create(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	if out := statusAt(lastWritten(lease).Add(2 * time.Second)); strings.Contains(out, "ferry-manager") && strings.Contains(out, "Lease") {
		t.Errorf("a leader Lease renewed 2s ago by the API server's clock (an hour ago by the manager's), still a note:\n%s", out)
	}

	// The manager stopped renewing 4 minutes ago.
	assertContains(t, statusAt(lastWritten(lease).Add(4*time.Minute)), "The ferry-manager leader ferry-manager-7d9f_1f3a has not renewed its Lease "+ns+
		"/manager.ferry.dev for 4m (it lasts 15s): the manager may be down.")

	// A hand label an hour after the last renewal, by another field
	// manager, renews nothing (before: read as a renewal 2s ago, no note).
	labelLater(t, lease, time.Hour)
	assertContains(t, statusAt(lastWritten(lease).Add(2*time.Second)), "The ferry-manager leader ferry-manager-7d9f_1f3a has not renewed its Lease "+ns+
		"/manager.ferry.dev for 60m (it lasts 15s): the manager may be down.")

	lease.Spec.HolderIdentity = ptr.To("")
	if err := env.Client.Update(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	assertContains(t, statusAt(lastWritten(lease).Add(4*time.Minute)),
		"No ferry-manager leads: its leader Lease "+ns+"/manager.ferry.dev is released, last renewed 4m ago.")
}

func TestManagerNote(t *testing.T) {
	lease := func(holder string, renewed time.Duration, lasts int32) *coordinationv1.Lease {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: contract.ManagerLeaseName}}
		l.Spec.HolderIdentity = ptr.To(holder)
		l.Spec.LeaseDurationSeconds = ptr.To(lasts)
		l.Spec.RenewTime = &metav1.MicroTime{Time: testNow.Add(-renewed)}
		return l
	}
	// written is l as the API server returns it after it recorded the
	// last renewal ago by its own clock (managedFields' time).
	renewed := func(l *coordinationv1.Lease, ago time.Duration) *coordinationv1.Lease {
		l.ManagedFields = []metav1.ManagedFieldsEntry{entry("manager", "", testNow.Add(-ago), renewTimeField...)}
		return l
	}
	gone := apierrors.NewNotFound(coordinationv1.Resource("leases"), contract.ManagerLeaseName)
	forbidden := apierrors.NewForbidden(coordinationv1.Resource("leases"), contract.ManagerLeaseName, errors.New("no RBAC"))
	for _, tt := range []struct {
		name  string
		lease *coordinationv1.Lease
		err   error
		want  string // a part of the note; "" for none
	}{
		{"no Lease: none led, or leader election off", nil, gone,
			"there is no leader Lease ferry-system/manager.ferry.dev, so none may be running"},
		{"Lease not readable", nil, forbidden, ""},
		{"renewed", lease("m1", 2*time.Second, 15), nil, ""},
		{"late, within the clock slack", lease("m1", 40*time.Second, 15), nil, ""},
		{"expired", lease("m1", 50*time.Second, 15), nil, "leader m1 has not renewed its Lease ferry-system/manager.ferry.dev for 50s (it lasts 15s)"},
		{"released", lease("", time.Minute, 1), nil, "its leader Lease ferry-system/manager.ferry.dev is released, last renewed 60s ago"},
		{"never renewed, held", func() *coordinationv1.Lease { l := lease("m1", 0, 15); l.Spec.RenewTime = nil; return l }(), nil, ""},
		// The manager stamps renewTime by its clock; the API server's time
		// of the write is what counts, so a skewed clock misleads no one.
		{"renewTime an hour behind, written just now", renewed(lease("m1", time.Hour, 15), 2*time.Second), nil, ""},
		{"renewTime an hour ahead, not written since", renewed(lease("m1", -time.Hour, 15), 5*time.Minute), nil,
			"leader m1 has not renewed its Lease ferry-system/manager.ferry.dev for 5m (it lasts 15s)"},
		{"released, renewTime an hour behind", renewed(lease("", time.Hour, 1), 2*time.Minute), nil,
			"its leader Lease ferry-system/manager.ferry.dev is released, last renewed 2m ago"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := managerNote("ferry-system", tt.lease, tt.err, testNow)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("managerNote = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSilence(t *testing.T) {
	// pool's status is stamped heartbeat ago (never: not reported);
	// the API server recorded its last status write written ago (never:
	// managedFields carry no time for it, stripped). The manager wrote
	// its spec an hour ago: no report of the agent's.
	const never = time.Duration(-1)
	pool := func(heartbeat, written time.Duration) *ferryv1.ProcessPool {
		p := &ferryv1.ProcessPool{Spec: ferryv1.ProcessPoolSpec{NodeName: "n"}}
		if heartbeat != never {
			p.Status.HeartbeatTime = ago(heartbeat)
		}
		p.ManagedFields = []metav1.ManagedFieldsEntry{entry("manager", "", testNow.Add(-time.Hour), "spec", "nodeName")}
		if written != never {
			p.ManagedFields = append(p.ManagedFields, entry("agent", "status", testNow.Add(-written), heartbeatField...))
		}
		return p
	}
	fresh := map[string]time.Time{"n": testNow.Add(-time.Second)}
	tests := []struct {
		name      string
		heartbeat time.Duration
		written   time.Duration
		leases    map[string]time.Time
		want      time.Duration
	}{
		{"never reported", never, never, fresh, 0},
		{"a recent heartbeat", 10 * time.Second, never, map[string]time.Time{}, 0},
		{"an old heartbeat, no Lease", 2 * time.Minute, never, map[string]time.Time{}, 2 * time.Minute},
		{"an old heartbeat, a fresh Lease", 2 * time.Minute, never, fresh, 0},
		{"an old heartbeat, an older Lease", 2 * time.Minute, never, map[string]time.Time{"n": testNow.Add(-time.Hour)}, 2 * time.Minute},
		{"late, within the clock slack", time.Minute, never, map[string]time.Time{}, 0},
		{"Leases unreadable, within the report interval", 2 * time.Minute, never, nil, 0},
		{"Leases unreadable, beyond it", 7 * time.Minute, never, nil, 7 * time.Minute},
		// The API server's time of the last status write, not the
		// agent's stamp: its clock may be off either way.
		{"stamped long ago, written just now", 45 * time.Second, time.Second, map[string]time.Time{}, 0},
		{"stamped ahead, written long ago", -time.Hour, 2 * time.Minute, map[string]time.Time{}, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := silence(pool(tt.heartbeat, tt.written), testNow, DefaultStaleAfter, tt.leases); got != tt.want {
				t.Errorf("silence = %s, want %s", got, tt.want)
			}
		})
	}
}

// atGeneration stamps every condition of st with generation, as the
// manager stamps those it writes.
func atGeneration(st *ferryv1.AppGroupStatus, generation int64) {
	for i := range st.Conditions {
		st.Conditions[i].ObservedGeneration = generation
	}
}

// TestStatusInvalidRevisionOnNewAppGroup: a new AppGroup whose revision
// annotation is invalid gets conditions saying so, of its generation, and
// no status.observedGeneration (the manager stamps it only after a pass
// with a valid annotation) and no pool. The manager is not behind, and it
// is the annotation, not the nodeSelector, that leaves it without pools.
// (Found by a user walkthrough: both notes said otherwise.)
func TestStatusInvalidRevisionOnNewAppGroup(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "typo", "v 1/2")
	why := contract.ValidateRevision("v 1/2").Error() + "; nothing is rolled out until it is fixed"
	setAppGroupStatus(t, ns, "typo", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		st.Nodes = ferryv1.NodeCounts{Total: 2}
		st.Conditions = []metav1.Condition{
			cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonInvalidRevision, why),
			cond(ferryv1.ConditionRollingRestart, metav1.ConditionUnknown, ferryv1.ReasonInvalidRevision, why),
			cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError,
				"No pool resists a deployment error"),
		}
		atGeneration(st, ag.Generation)
	})
	r := run(t, "status", "typo", "-n", ns)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	assertContains(t, r.out,
		"Target revision          : - (ferry.dev/revision: v 1/2)",
		"Ready                    : False (InvalidRevision) "+why,
		"No ProcessPools: none is created until the ferry.dev/revision annotation is valid: "+why,
	)
	for _, unwanted := range []string{"has not reconciled", "has not reported", "has not taken up", "no node matches",
		"not completed"} {
		if strings.Contains(r.out, unwanted) {
			t.Errorf("%q in:\n%s", unwanted, r.out)
		}
	}
}

// TestStatusGenerationNotes: the manager is behind a spec change only
// while its conditions are of an older generation; conditions of the
// current one with an older status.observedGeneration mean its pass over
// the change did not complete.
func TestStatusGenerationNotes(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "moved", "8")
	setAppGroupStatus(t, ns, "moved", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, "8-"+hash, 1)
		atGeneration(st, ag.Generation)
	})
	ag := getAppGroup(t, ns, "moved")
	ag.Spec.Pool.MaxProcesses = 6 // generation 2
	if err := env.Client.Update(context.Background(), ag); err != nil {
		t.Fatal(err)
	}
	setPoolStatus(t, newPool(t, ag, "node-1", "8-"+hash), ferryv1.ProcessPoolStatus{ObservedRevision: "8-" + hash,
		HeartbeatTime: ago(time.Second)})

	r := run(t, "status", "moved", "-n", ns)
	assertContains(t, r.out, "The manager has not reconciled generation 2 yet (last: 1).")

	setAppGroupStatus(t, ns, "moved", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		atGeneration(st, ag.Generation) // a pass over generation 2 that failed
	})
	r = run(t, "status", "moved", "-n", ns)
	assertContains(t, r.out, "The manager has seen generation 2 but not completed a pass over it "+
		"(status.observedGeneration is 1); it retries, and a WriteFailed event names a write that failed, if one did.")
	if strings.Contains(r.out, "has not reconciled") {
		t.Errorf("the manager said behind a generation its conditions carry:\n%s", r.out)
	}

	// An invalid annotation since: the manager leaves observedGeneration
	// where it was, and says why in RollingRestart.
	ag = getAppGroup(t, ns, "moved")
	ag.Annotations[ferryv1.RevisionAnnotation] = "v 1/2"
	if err := env.Client.Update(context.Background(), ag); err != nil {
		t.Fatal(err)
	}
	why := contract.ValidateRevision("v 1/2").Error() + "; revision 8-" + hash + " stays the target until it is fixed"
	setAppGroupStatus(t, ns, "moved", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonInvalidRevision, why)
		atGeneration(st, ag.Generation)
	})
	r = run(t, "status", "moved", "-n", ns)
	assertContains(t, r.out, "RollingRestart           : False (InvalidRevision) "+why)
	for _, unwanted := range []string{"has not reconciled", "not completed", "has not taken up"} {
		if strings.Contains(r.out, unwanted) {
			t.Errorf("%q in:\n%s", unwanted, r.out)
		}
	}
}

// TestStatusNoPoolsNotes: where the manager says why an AppGroup has no
// pool, the note says that, not "no node matches".
func TestStatusNoPoolsNotes(t *testing.T) {
	portLost := "listen.port 8080 is taken: on node-1 and node-2 it belongs to AppGroup shop/cart (whose pool has it " +
		"there, or which is older). This AppGroup gets no pool there until the port is free"
	for _, tt := range []struct {
		name, annotation string
		status           func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus)
		// older: the status is of the generation before this one.
		older bool
		want  string
	}{
		{name: "the port taken on every selected node", status: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			rolledOut(ag, st, "0-"+hash, 0)
			st.Conditions[0] = cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonPortConflict, portLost)
			st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonPortConflict,
				"No node to roll: another AppGroup has listen.port on every selected node, so there is nothing to roll out (see Ready)")
		}, want: "No ProcessPools: another AppGroup has this one's listen.port on every selected node (see Ready)."},
		{name: "no node selected", status: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			rolledOut(ag, st, "0-"+hash, 0)
			st.Conditions[0] = cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonNoNodes,
				"No node matches spec.nodeSelector")
		}, want: "No ProcessPools: no node matches spec.nodeSelector."},
		{name: "no node selected by an older spec", older: true, status: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			rolledOut(ag, st, "0-"+hash, 0)
			st.Conditions[0] = cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonNoNodes,
				"No node matches spec.nodeSelector")
		}, want: "No ProcessPools: no node matches spec.nodeSelector, or the manager has not created them yet."},
		{name: "an invalid annotation, no node serving a revision to start on", annotation: "v 1/2",
			status: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				rolledOut(ag, st, "8-"+hash, 1)
				st.Nodes.Ready, st.Nodes.Updated = 0, 0
				st.Conditions[0] = cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonInvalidRevision,
					"No pool on node-1: no node serves a revision to start it on, and "+contract.ValidateRevision("v 1/2").Error())
				st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonInvalidRevision,
					contract.ValidateRevision("v 1/2").Error()+"; revision 8-"+hash+" stays the target until it is fixed")
			},
			want: "No ProcessPools: none is created until the ferry.dev/revision annotation is valid: No pool on node-1: " +
				"no node serves a revision to start it on"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNamespace(t)
			newAppGroup(t, ns, "app", tt.annotation)
			setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				tt.status(ag, st)
				st.ObservedGeneration = ag.Generation
				atGeneration(st, ag.Generation)
			})
			if tt.older {
				ag := getAppGroup(t, ns, "app")
				ag.Spec.NodeSelector = map[string]ferryv1.LabelValue{"zone": "b"}
				if err := env.Client.Update(context.Background(), ag); err != nil {
					t.Fatal(err)
				}
			}
			r := run(t, "status", "app", "-n", ns)
			assertContains(t, r.out, tt.want)
			if strings.Count(r.out, "No ProcessPools") != 1 {
				t.Errorf("want one note on the missing pools:\n%s", r.out)
			}
		})
	}
}

// TestStatusWaveWhileRevisionInvalid: while the annotation is invalid, no
// wave starts: a node not on the target is not waiting for one.
func TestStatusWaveWhileRevisionInvalid(t *testing.T) {
	ns := newNamespace(t)
	oldRev, target := "7-"+hash, "8-"+hash
	ag := newAppGroup(t, ns, "frozen", "v 1/2")
	why := contract.ValidateRevision("v 1/2").Error() + "; revision " + target + " stays the target until it is fixed"
	setAppGroupStatus(t, ns, "frozen", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, target, 2)
		st.Nodes.Updated = 1
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonInvalidRevision, why)
	})
	setPoolStatus(t, newPool(t, ag, "node-1", target), ferryv1.ProcessPoolStatus{ObservedRevision: target, HeartbeatTime: ago(time.Second)})
	setPoolStatus(t, newPool(t, ag, "node-2", oldRev), ferryv1.ProcessPoolStatus{ObservedRevision: oldRev, HeartbeatTime: ago(time.Second)})

	r := run(t, "status", "frozen", "-n", ns)
	assertContains(t, r.out, "not given revision "+target+" yet: no wave starts while the ferry.dev/revision annotation is invalid")
	if strings.Contains(r.out, "waiting for its wave") {
		t.Errorf("a node said to wait for a wave that does not start:\n%s", r.out)
	}
}

// TestStatusNoPoolsLeftWhileDeleted: a deleted AppGroup whose pools are
// gone is being released, not short of nodes.
func TestStatusNoPoolsLeftWhileDeleted(t *testing.T) {
	ns := newNamespace(t)
	ag := newAppGroup(t, ns, "gone", "")
	ag.Finalizers = []string{contract.DrainFinalizer}
	if err := env.Client.Update(context.Background(), ag); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(context.Background(), ag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ag := getAppGroup(t, ns, "gone")
		ag.Finalizers = nil
		if err := env.Client.Update(context.Background(), ag); err != nil {
			t.Error(err)
		}
	})
	r := run(t, "status", "gone", "-n", ns)
	assertContains(t, r.out, "No ProcessPools left: the AppGroup is being deleted.")
	if strings.Contains(r.out, "no node matches") {
		t.Errorf("a deleted AppGroup said to match no node:\n%s", r.out)
	}
}

// TestRenewalsByHolder: of two Leases naming one node, the later write
// counts, whichever is listed last (the manager takes the latest too: a
// stray Lease listed after the agent's must not make a live agent read
// silent).
func TestRenewalsByHolder(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	lease := func(name string, written time.Time) coordinationv1.Lease {
		return coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, ManagedFields: []metav1.ManagedFieldsEntry{
				entry("ferry-agent", "", written, renewTimeField...)}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-a"), RenewTime: ptr.To(metav1.NewMicroTime(written))}}
	}
	got := renewalsByHolder([]coordinationv1.Lease{lease("ferry-agent-node-a", t0), lease("stray", t0.Add(-time.Hour))})
	if !got["node-a"].Equal(t0) {
		t.Errorf("node-a renewed %s, want the later Lease's write, %s", got["node-a"], t0)
	}
}

// TestCrashLoopSummary: kubectl ferry status shows the crash loop the
// manager names (status.crashLoop) where RollingRestart's message does
// not say it (seen failing: no "Crash loop" line while a halt on another
// node led the message), and adds nothing where the message does, nor for
// another revision's loop.
func TestCrashLoopSummary(t *testing.T) {
	target := "4-" + hash
	loop := &ferryv1.CrashLoop{Revision: target, Nodes: []string{"node-1"}, NodeCount: 1,
		Reason: ferryv1.CrashLoopNoOlderRevision, Message: "no older revision runs"}
	var cut []string
	for i := range ferryv1.MaxCrashLoopNodes {
		cut = append(cut, fmt.Sprintf("node-%02d", i+1))
	}
	noted := cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision,
		"1/1 nodes updated; on node-1 a process of revision "+target+" died soon after it was ready (exited with status 3), "+
			"and none has lived 10s, the crash window, there yet; nothing returns the node to an older revision "+
			"(no older revision runs): its processes are "+contract.CrashLoopRespawned)
	halted := cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted,
		"Rollout of revision "+target+" halted at 1/3 nodes updated: node-2 resisting a deployment error")
	tests := []struct {
		name  string
		loop  *ferryv1.CrashLoop
		conds []metav1.Condition
		want  string
	}{
		{name: "no loop", conds: []metav1.Condition{halted}},
		{name: "RollingRestart says it", loop: loop, conds: []metav1.Condition{noted}},
		{name: "a halt leads RollingRestart", loop: loop, conds: []metav1.Condition{halted},
			want: "revision " + target + " on node-1: its processes die soon after they are ready, and nothing returns the node " +
				"to an older revision (no older revision runs): its processes are " + contract.CrashLoopRespawned},
		{name: "no RollingRestart yet", loop: &ferryv1.CrashLoop{Revision: target, Nodes: []string{"node-1", "node-2"}, NodeCount: 2,
			Reason: ferryv1.CrashLoopResistanceOff, Message: "resistDeploymentErrors is false"},
			want: "revision " + target + " on node-1 and node-2: its processes die soon after they are ready, and nothing returns " +
				"these nodes to an older revision (resistDeploymentErrors is false): their processes are " + contract.CrashLoopRespawned},
		// The field names at most 64 nodes: nodeCount counts them all
		// (seen failing before nodeCount: "and 59 more").
		{name: "more nodes than the field names", loop: &ferryv1.CrashLoop{Revision: target, Nodes: cut, NodeCount: 70,
			Reason: ferryv1.CrashLoopResistanceOff, Message: "resistDeploymentErrors is false"}, conds: []metav1.Condition{halted},
			want: "revision " + target + " on node-01, node-02, node-03, node-04, node-05 and 65 more: its processes die soon after " +
				"they are ready, and nothing returns these nodes to an older revision (resistDeploymentErrors is false): " +
				"their processes are " + contract.CrashLoopRespawned},
		// The manager's note of two nodes does not say the clause of one.
		{name: "RollingRestart says another loop's clause", loop: loop, conds: []metav1.Condition{
			cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision,
				"1/1 nodes updated; "+contract.CrashLoopClause(2, "no older revision runs"))},
			want: "revision " + target + " on node-1: its processes die soon after they are ready, and nothing returns the node " +
				"to an older revision (no older revision runs): its processes are " + contract.CrashLoopRespawned},
		{name: "another revision's", loop: &ferryv1.CrashLoop{Revision: "3-" + hash, Nodes: []string{"node-1"}},
			conds: []metav1.Condition{halted}},
	}
	for _, tt := range tests {
		st := &ferryv1.AppGroupStatus{Revision: target, CrashLoop: tt.loop, Conditions: tt.conds}
		if got := crashLoopSummary(st); got != tt.want {
			t.Errorf("%s: crashLoopSummary = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// entry is the managedFields entry of manager's last update (of
// subresource: "" or "status"), recorded at written, owning the field
// at path, as the API server writes it ({"f:spec":{"f:renewTime":{}}}).
func entry(manager, subresource string, written time.Time, path ...string) metav1.ManagedFieldsEntry {
	set := "{}"
	for _, name := range slices.Backward(path) {
		set = fmt.Sprintf(`{"f:%s":%s}`, name, set)
	}
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, Subresource: subresource,
		Time: ptr.To(metav1.NewTime(written)), FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(set)}
}

// TestLastWrite: a renewal is timed by the write of the field manager that
// owns the field it stamps, not by the latest write of any manager (a
// hand `kubectl label` of a dead agent's Lease made it read as renewed).
func TestLastWrite(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	stamp := t0.Add(-time.Hour)
	renewer := entry("ferry-agent", "", t0, renewTimeField...)
	label := entry("kubectl-label", "", t0.Add(time.Minute), "metadata", "labels", "checked-by")
	holder := entry("kubectl-edit", "", t0.Add(2*time.Minute), "spec", "holderIdentity")
	untimed := renewer
	untimed.Time = nil
	coOwner := entry("other-applier", "", t0.Add(3*time.Minute), renewTimeField...)
	coOwner.Operation = metav1.ManagedFieldsOperationApply
	reporter := entry("ferry-agent", "status", t0, heartbeatField...)
	condition := entry("kubectl-edit", "status", t0.Add(time.Minute), "status", "conditions")
	// What the API server sends for an Update: the fields under "f:spec"
	// beside renewTime, and "." for the Lease's own.
	real := renewer
	real.FieldsV1 = metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{".":{},"f:ferry.dev/node":{}}},` +
		`"f:spec":{"f:acquireTime":{},"f:holderIdentity":{},"f:leaseDurationSeconds":{},"f:renewTime":{}}}`)
	for _, tt := range []struct {
		name   string
		fields []metav1.ManagedFieldsEntry
		field  []string
		want   time.Time
	}{
		{"the renewer's write", []metav1.ManagedFieldsEntry{renewer}, renewTimeField, t0},
		{"the renewer's write among its other fields", []metav1.ManagedFieldsEntry{real}, renewTimeField, t0},
		{"another manager's label, later", []metav1.ManagedFieldsEntry{renewer, label}, renewTimeField, t0},
		{"another manager's write of another spec field, later", []metav1.ManagedFieldsEntry{holder, renewer}, renewTimeField, t0},
		{"no entry owns renewTime", []metav1.ManagedFieldsEntry{label, holder}, renewTimeField, stamp},
		{"the owner's entry has no time", []metav1.ManagedFieldsEntry{untimed, label}, renewTimeField, stamp},
		{"no managedFields", nil, renewTimeField, stamp},
		{"two owners (applied alike): the later", []metav1.ManagedFieldsEntry{renewer, coOwner}, renewTimeField, t0.Add(3 * time.Minute)},
		{"the reporter's status write", []metav1.ManagedFieldsEntry{label, reporter}, heartbeatField, t0},
		{"another manager's condition in the status, later", []metav1.ManagedFieldsEntry{reporter, condition}, heartbeatField, t0},
		{"a Lease's renewer owns no heartbeatTime", []metav1.ManagedFieldsEntry{renewer}, heartbeatField, stamp},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := lastWrite(tt.fields, tt.field, stamp); !got.Equal(tt.want) {
				t.Errorf("lastWrite = %s, want %s", got, tt.want)
			}
		})
	}
}
