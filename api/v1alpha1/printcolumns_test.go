package v1alpha1_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

func clientKey(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func condition(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}
}

// TestKubectlGetShowsPrintColumns runs the machine's real kubectl against
// the test API server and reads the columns off its table.
func TestKubectlGetShowsPrintColumns(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)

	ag := decode(t, validAppGroup)
	ag.SetNamespace(ns)
	ag.SetName("blog")
	if err := env.Client.Create(ctx, ag); err != nil {
		t.Fatal(err)
	}
	var typed ferryv1.AppGroup
	if err := env.Client.Get(ctx, clientKey(ns, "blog"), &typed); err != nil {
		t.Fatal(err)
	}
	typed.Status = ferryv1.AppGroupStatus{
		Revision:       "7-0a1b2c3d4e",
		Processes:      ferryv1.ProcessCounts{Ready: 11, Updated: 4, Total: 12},
		Nodes:          ferryv1.NodeCounts{Ready: 3, Updated: 1, Total: 3},
		ReadyProcesses: "11/12",
		ReadyNodes:     "3/3",
		Conditions: []metav1.Condition{
			condition(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "all nodes ready"),
			condition(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut, "node 2/3, process 3/4"),
			condition(ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError, ""),
		},
	}
	if err := env.Client.Status().Update(ctx, &typed); err != nil {
		t.Fatal(err)
	}

	pp := decode(t, validProcessPool)
	pp.SetNamespace(ns)
	pp.SetName("blog-node-a")
	if err := env.Client.Create(ctx, pp); err != nil {
		t.Fatal(err)
	}
	var pool ferryv1.ProcessPool
	if err := env.Client.Get(ctx, clientKey(ns, "blog-node-a"), &pool); err != nil {
		t.Fatal(err)
	}
	pool.Status = ferryv1.ProcessPoolStatus{
		Address:        "127.0.0.2:8080",
		ReadyProcesses: "3/4",
		HeartbeatTime:  &metav1.Time{Time: time.Now()},
		Conditions: []metav1.Condition{
			condition(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, "halted"),
			condition(ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, "boom"),
		},
	}
	if err := env.Client.Status().Update(ctx, &pool); err != nil {
		t.Fatal(err)
	}

	checkTable(t, ns, "appgroups", "blog", map[string]string{
		"REVISION": "7-0a1b2c3d4e", "READY": "11/12", "UPDATED": "4", "NODES": "3/3",
		"RESTARTING": "True", "RESISTING": "False",
	}, []string{"NAME", "REVISION", "READY", "UPDATED", "NODES", "RESTARTING", "RESISTING", "AGE"})
	checkTable(t, ns, "ag", "blog", map[string]string{"REVISION": "7-0a1b2c3d4e"}, nil)
	checkTable(t, ns, "processpools", "blog-node-a", map[string]string{
		"NODE": "node-a", "REVISION": "1-abc", "PROCESSES": "3/4", "RESTARTING": "False", "RESISTING": "True",
	}, []string{"NAME", "NODE", "REVISION", "PROCESSES", "RESTARTING", "RESISTING", "AGE"})
	checkTable(t, ns, "pp", "blog-node-a", map[string]string{"NODE": "node-a"}, nil)

	// Both kinds are in the ferry category.
	out, err := env.Kubectl(ctx, "get", "ferry", "-n", ns, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"appgroup.ferry.dev/blog", "processpool.ferry.dev/blog-node-a"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get ferry lacks %s:\n%s", want, out)
		}
	}
}

// checkTable runs `kubectl get RESOURCE NAME` and compares the named
// columns of its one row; with wantHeader it also pins the column order.
func checkTable(t *testing.T, ns, resource, name string, want map[string]string, wantHeader []string) {
	t.Helper()
	out, err := env.Kubectl(testContext(t), "get", resource, name, "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("kubectl get %s: want a header and one row, got:\n%s", resource, out)
	}
	header, row := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(header) != len(row) {
		t.Fatalf("kubectl get %s: %d columns, %d values:\n%s", resource, len(header), len(row), out)
	}
	if wantHeader != nil && strings.Join(header, " ") != strings.Join(wantHeader, " ") {
		t.Errorf("kubectl get %s columns = %v, want %v", resource, header, wantHeader)
	}
	got := map[string]string{}
	for i, h := range header {
		got[h] = row[i]
	}
	for col, v := range want {
		if got[col] != v {
			t.Errorf("kubectl get %s: column %s = %q, want %q\n%s", resource, col, got[col], v, out)
		}
	}
}

// TestKubectlExplainDocumentsFields checks that a reader finds each field's
// meaning and default with `kubectl explain`, as docs/api.md promises.
func TestKubectlExplainDocumentsFields(t *testing.T) {
	out, err := env.Kubectl(testContext(t), "explain", "appgroup.spec.pool")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"minProcesses", "Default: 1", "maxProcesses", "Default: 6",
		"maxRequestQueueSize", "Default: 100", "idleTimeout", "Default: 5m", "startTimeout", "Default: 90s",
		"shutdownTimeout", "Default: 60s"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain appgroup.spec.pool lacks %q:\n%s", want, out)
		}
	}
	out, err = env.Kubectl(testContext(t), "explain", "appgroup.spec.restart")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"strategy", "Default: Rolling", "resistDeploymentErrors", "Default: true",
		"maxConcurrentNodes", "Default: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain appgroup.spec.restart lacks %q:\n%s", want, out)
		}
	}
}
