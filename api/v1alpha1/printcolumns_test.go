package v1alpha1_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

func clientKey(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func condition(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}
}

// TestKubectlGetShowsPrintColumns runs the machine's real kubectl against
// the test API server and reads the columns off its table, and reads the
// wide columns (messages, with spaces) off the server-side Table kubectl
// asks for. A user scanning the list reads whether each AppGroup is Ready
// and, when not, why in a word, next to the process counts.
func TestKubectlGetShowsPrintColumns(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)

	ready := createAppGroup(t, ns, "blog", rollup("7-0a1b2c3d4e",
		ferryv1.ProcessCounts{Ready: 11, Updated: 4, Total: 12}, ferryv1.NodeCounts{Ready: 3, Updated: 1, Total: 3},
		condition(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "3/3 nodes ready, 11/12 processes ready"),
		condition(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut, "node 2/3, process 3/4"),
		condition(ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError, "")))
	// Every process ready, and yet no request reaches them through the
	// Service: the process count alone read as fine.
	taken := "Service shop is not this AppGroup's: rename or delete it"
	notReady := createAppGroup(t, ns, "shop", rollup("3-5e6f7a8b9c",
		ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 2}, ferryv1.NodeCounts{Ready: 1, Updated: 1, Total: 1},
		condition(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonNameTaken, taken),
		condition(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, "Revision 3-5e6f7a8b9c runs on 1/1 nodes"),
		condition(ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError, "")))

	checkTable(t, ns, "appgroups", ready, map[string]string{
		"READY": "True", "REASON": "ProcessesReady", "REVISION": "7-0a1b2c3d4e", "PROCESSES": "11/12",
		"UPDATED": "4", "NODES": "3/3", "RESTARTING": "True", "RESISTING": "False",
	}, []string{"NAME", "READY", "REASON", "REVISION", "PROCESSES", "UPDATED", "NODES", "RESTARTING", "RESISTING", "AGE"})
	checkTable(t, ns, "appgroups", notReady, map[string]string{
		"READY": "False", "REASON": "NameTaken", "PROCESSES": "2/2", "RESTARTING": "False",
	}, nil)
	checkTable(t, ns, "ag", ready, map[string]string{"REVISION": "7-0a1b2c3d4e"}, nil)
	checkWideHeader(t, ns, "appgroups", ready, "MESSAGE", "ROLLOUT")
	checkServerTable(t, ns, "appgroups", map[string]map[string]string{
		ready:    {"Message": "3/3 nodes ready, 11/12 processes ready", "Rollout": "node 2/3, process 3/4"},
		notReady: {"Ready": "False", "Reason": ferryv1.ReasonNameTaken, "Message": taken},
	})

	readyPool := createProcessPool(t, ns, "blog-node-a", ferryv1.ProcessPoolStatus{
		Address:        "127.0.0.2:8080",
		ReadyProcesses: "3/4",
		HeartbeatTime:  &metav1.Time{Time: time.Now()},
		Conditions: []metav1.Condition{
			condition(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "3 of 4 processes ready (minProcesses 1)"),
			condition(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, "halted"),
			condition(ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, "boom"),
		},
	})
	listen := "the proxy cannot listen: listen tcp :8080: bind: address already in use"
	deafPool := createProcessPool(t, ns, "shop-node-a", ferryv1.ProcessPoolStatus{
		ReadyProcesses: "2/2",
		HeartbeatTime:  &metav1.Time{Time: time.Now()},
		Conditions: []metav1.Condition{
			condition(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, listen),
		},
	})
	checkTable(t, ns, "processpools", readyPool, map[string]string{
		"NODE": "node-a", "READY": "True", "REASON": "ProcessesReady", "REVISION": "1-abc", "PROCESSES": "3/4",
		"RESTARTING": "False", "RESISTING": "True",
	}, []string{"NAME", "NODE", "READY", "REASON", "REVISION", "PROCESSES", "RESTARTING", "RESISTING", "AGE"})
	checkTable(t, ns, "pp", readyPool, map[string]string{"NODE": "node-a"}, nil)
	checkWideHeader(t, ns, "processpools", readyPool, "ADDRESS", "MESSAGE")
	checkServerTable(t, ns, "processpools", map[string]map[string]string{
		readyPool: {"Address": "127.0.0.2:8080", "Message": "3 of 4 processes ready (minProcesses 1)"},
		deafPool:  {"Ready": "False", "Reason": ferryv1.ReasonListenFailed, "Processes": "2/2", "Message": listen},
	})

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

// rollup is an AppGroup status as the manager writes it, its display
// strings made from the counts.
func rollup(revision string, p ferryv1.ProcessCounts, n ferryv1.NodeCounts, conds ...metav1.Condition) ferryv1.AppGroupStatus {
	return ferryv1.AppGroupStatus{
		Revision: revision, Processes: p, Nodes: n, Conditions: conds,
		ReadyProcesses: fmt.Sprintf("%d/%d", p.Ready, p.Total),
		ReadyNodes:     fmt.Sprintf("%d/%d", n.Ready, n.Total),
	}
}

// createAppGroup creates a valid AppGroup with status and returns its name.
func createAppGroup(t *testing.T, ns, name string, status ferryv1.AppGroupStatus) string {
	t.Helper()
	return createWithStatus(t, validAppGroup, ns, name, func(ag *ferryv1.AppGroup) { ag.Status = status })
}

// createProcessPool creates a valid ProcessPool with status and returns
// its name.
func createProcessPool(t *testing.T, ns, name string, status ferryv1.ProcessPoolStatus) string {
	t.Helper()
	return createWithStatus(t, validProcessPool, ns, name, func(pp *ferryv1.ProcessPool) { pp.Status = status })
}

// createWithStatus creates manifest's object as ns/name, then writes the
// status setStatus gives it, as its writer (the manager, an agent) would.
func createWithStatus[T any, P interface {
	*T
	client.Object
}](t *testing.T, manifest, ns, name string, setStatus func(P)) string {
	t.Helper()
	ctx := testContext(t)
	obj := decode(t, manifest)
	obj.SetNamespace(ns)
	obj.SetName(name)
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	typed := P(new(T))
	if err := env.Client.Get(ctx, clientKey(ns, name), typed); err != nil {
		t.Fatal(err)
	}
	setStatus(typed)
	if err := env.Client.Status().Update(ctx, typed); err != nil {
		t.Fatal(err)
	}
	return name
}

// checkTable runs `kubectl get RESOURCE NAME` and compares the named
// columns of its one row; with wantHeader it also pins the column order.
func checkTable(t *testing.T, ns, resource, name string, want map[string]string, wantHeader []string) {
	t.Helper()
	header, row := kubectlRow(t, ns, resource, name)
	if len(header) != len(row) {
		t.Fatalf("kubectl get %s %s: %d columns, %d values: %v %v", resource, name, len(header), len(row), header, row)
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
			t.Errorf("kubectl get %s %s: column %s = %q, want %q\n%v\n%v", resource, name, col, got[col], v, header, row)
		}
	}
}

// checkWideHeader checks that `kubectl get -o wide` adds the wide columns
// after the default ones.
func checkWideHeader(t *testing.T, ns, resource, name string, wide ...string) {
	t.Helper()
	narrow, _ := kubectlRow(t, ns, resource, name)
	header, _ := kubectlRow(t, ns, resource, name, "-o", "wide")
	if want := append(slices.Clone(narrow), wide...); !slices.Equal(header, want) {
		t.Errorf("kubectl get %s -o wide columns = %v, want %v", resource, header, want)
	}
}

// kubectlRow runs `kubectl get RESOURCE NAME` and splits its header and
// its one row into fields (a cell with spaces splits too: only the
// default columns' cells have none).
func kubectlRow(t *testing.T, ns, resource, name string, args ...string) (header, row []string) {
	t.Helper()
	out, err := env.Kubectl(testContext(t), append([]string{"get", resource, name, "-n", ns}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("kubectl get %s %s: want a header and one row, got:\n%s", resource, name, out)
	}
	return strings.Fields(lines[0]), strings.Fields(lines[1])
}

// checkServerTable reads the namespace's objects of resource as kubectl
// does, as a server-side Table with every column (the wide ones too), and
// compares the named cells of the named rows.
func checkServerTable(t *testing.T, ns, resource string, want map[string]map[string]string) {
	t.Helper()
	table := serverTable(t, ns, resource)
	rows := map[string]map[string]string{}
	for _, r := range table.Rows {
		cells := map[string]string{}
		for i, c := range table.ColumnDefinitions {
			cells[c.Name] = fmt.Sprint(r.Cells[i])
		}
		rows[cells["Name"]] = cells
	}
	for name, cols := range want {
		got, ok := rows[name]
		if !ok {
			t.Errorf("the %s Table has no row %s: %v", resource, name, rows)
			continue
		}
		for col, v := range cols {
			if got[col] != v {
				t.Errorf("%s %s: column %s = %q, want %q", resource, name, col, got[col], v)
			}
		}
	}
}

// serverTable GETs the namespace's objects of resource with the Accept
// header kubectl sends, so that the API server renders the CRD's printer
// columns into a meta.k8s.io Table.
func serverTable(t *testing.T, ns, resource string) *metav1.Table {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	gv := ferryv1.GroupVersion
	body, err := cs.Discovery().RESTClient().Get().
		AbsPath("apis", gv.Group, gv.Version, "namespaces", ns, resource).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(testContext(t))
	if err != nil {
		t.Fatalf("GET %s as a Table: %v", resource, err)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatal(err)
	}
	if table.Kind != "Table" {
		t.Fatalf("GET %s as a Table: got a %s", resource, table.Kind)
	}
	return &table
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
