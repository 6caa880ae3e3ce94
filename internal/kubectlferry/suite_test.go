package kubectlferry

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// env is the real control plane the plugin talks to. No manager and no
// agent run: each test plays them by writing the AppGroup's and the
// ProcessPools' statuses through the status subresource, as they would,
// since what is under test is how the plugin reads and writes.
var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// hash is the spec hash part of the revisions the tests write, as the
// manager would form them: "<annotation>-<hash>".
const hash = "0a1b2c3d4e"

// testNow is the plugin's clock in the tests that pin it.
var testNow = time.Now().UTC().Truncate(time.Second)

func ago(d time.Duration) *metav1.Time { return &metav1.Time{Time: testNow.Add(-d)} }

// result is one run of the plugin.
type result struct {
	out, err string
	code     int
}

// run runs the plugin in-process against the test API server, its clock
// pinned to testNow.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runApp(t, &App{}, args...)
}

func runApp(t *testing.T, a *App, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a.Out, a.Err = &out, &errb
	if a.Now == nil {
		a.Now = func() time.Time { return testNow }
	}
	if a.PollInterval == 0 {
		a.PollInterval = 20 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := a.Run(ctx, append(args, "--kubeconfig", env.Kubeconfig))
	return result{out: out.String(), err: errb.String(), code: code}
}

// newNamespace creates a namespace of its own for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kf-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// template is the app every test AppGroup runs.
func template() ferryv1.AppTemplate {
	return ferryv1.AppTemplate{
		App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/hello"},
		Listen: ferryv1.ListenSpec{Port: 8080},
		Pool:   ferryv1.PoolSpec{MinProcesses: 2, MaxProcesses: 4},
	}
}

// newAppGroup creates an AppGroup; revision "" leaves the annotation out.
// Each of edits changes it before it is created (notResisting).
func newAppGroup(t *testing.T, ns, name, revision string, edits ...func(*ferryv1.AppGroup)) *ferryv1.AppGroup {
	t.Helper()
	ag := &ferryv1.AppGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{"team": "web"}},
		Spec:       ferryv1.AppGroupSpec{AppTemplate: template()},
	}
	if revision != "" {
		ag.Annotations[ferryv1.RevisionAnnotation] = revision
	}
	for _, edit := range edits {
		edit(ag)
	}
	if err := env.Client.Create(context.Background(), ag); err != nil {
		t.Fatal(err)
	}
	return ag
}

// notResisting turns ag's deployment error resistance off
// (restart.resistDeploymentErrors false).
func notResisting(ag *ferryv1.AppGroup) { ag.Spec.Restart.ResistDeploymentErrors = ptr.To(false) }

func getAppGroup(t *testing.T, ns, name string) *ferryv1.AppGroup {
	t.Helper()
	ag := &ferryv1.AppGroup{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, ag); err != nil {
		t.Fatal(err)
	}
	return ag
}

// setAppGroupStatus plays the manager: it writes the AppGroup's status and
// returns the object as written.
func setAppGroupStatus(t *testing.T, ns, name string, mutate func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus)) *ferryv1.AppGroup {
	t.Helper()
	ag := getAppGroup(t, ns, name)
	mutate(ag, &ag.Status)
	if err := env.Client.Status().Update(context.Background(), ag); err != nil {
		t.Fatal(err)
	}
	return ag
}

// cond is a condition as the manager or an agent writes it.
func cond(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg,
		LastTransitionTime: metav1.Time{Time: testNow.Add(-time.Minute)}}
}

// rolledOut is the status the manager writes once revision runs on every
// one of nodes nodes.
func rolledOut(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus, revision string, nodes int32) {
	st.ObservedGeneration = ag.Generation
	st.Revision = revision
	st.Processes = ferryv1.ProcessCounts{Ready: 2 * nodes, Updated: 2 * nodes, Total: 2 * nodes}
	st.Nodes = ferryv1.NodeCounts{Ready: nodes, Updated: nodes, Total: nodes}
	st.ReadyProcesses = fmt.Sprintf("%d/%d", 2*nodes, 2*nodes)
	st.ReadyNodes = fmt.Sprintf("%d/%d", nodes, nodes)
	st.Conditions = []metav1.Condition{
		cond(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady,
			fmt.Sprintf("%d/%d nodes ready, %d/%d processes ready", nodes, nodes, 2*nodes, 2*nodes)),
		cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete,
			fmt.Sprintf("Revision %s runs on %d/%d nodes", revision, nodes, nodes)),
		cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError,
			"No pool resists a deployment error"),
	}
}

// newPool plays the manager: it creates the pool of ag on node, labelled
// and named as the manager makes it, ag its controller (owner reference).
// Each of edits changes it before it is created.
func newPool(t *testing.T, ag *ferryv1.AppGroup, node, revision string, edits ...func(*ferryv1.ProcessPool)) *ferryv1.ProcessPool {
	t.Helper()
	p := &ferryv1.ProcessPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: ag.Namespace, Name: contract.PoolName(ag.Name, node),
			Labels:          contract.PoolLabels(ag.Name, node),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ag, ferryv1.GroupVersion.WithKind("AppGroup"))}},
		Spec: ferryv1.ProcessPoolSpec{NodeName: node, AppGroup: ag.Name, Revision: revision, Template: template()},
	}
	for _, edit := range edits {
		edit(p)
	}
	if err := env.Client.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// assertContains reports each of wants that out lacks.
func assertContains(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// setPoolStatus plays the node's agent.
func setPoolStatus(t *testing.T, p *ferryv1.ProcessPool, st ferryv1.ProcessPoolStatus) {
	t.Helper()
	p.Status = st
	if err := env.Client.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}
