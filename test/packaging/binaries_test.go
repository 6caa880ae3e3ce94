package packaging_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/deployargs"
	"github.com/ferry-dev/ferry/internal/testenv"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// binVersion is the version stamped into the binaries the tests build.
const binVersion = "v9.9.9-packaging"

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// ferryBinaries builds ferry-manager and ferry-agent once, with `make
// build` (VCS stamping off, as in the Docker build context), into a
// temporary directory.
func ferryBinaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir = filepath.Join(workDir, "make-bin")
		mk := exec.Command("make", "-C", root, "--no-print-directory", "build", "BIN="+binDir, "VERSION="+binVersion)
		mk.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		if out, err := mk.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("make build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// TestBinariesRunWithTheChartsRBAC runs the real manager and agent with
// the arguments the chart renders and the credentials their pods would
// have: service account tokens bound to pods, the agent's on its node. So
// the chart's RBAC and the node isolation policy are proven sufficient for
// what the binaries do: an AppGroup becomes Ready and serves, rolls to a
// new revision, and is deleted, its pool drained and its finalizers
// removed, with no request forbidden.
func TestBinariesRunWithTheChartsRBAC(t *testing.T) {
	ctx := testContext(t)
	bin := ferryBinaries(t)
	const rel, ns, appNS, node = "rbac", "ferry-rbac", "apps-rbac", "rbac-node"
	// Loopback addresses of their own, away from the local stack's and
	// the e2e tests' (127.0.0.1-127.0.0.9).
	const managerIP, nodeIP = "127.0.0.76", "127.0.0.77"
	appPort, managerProbe, agentProbe := testsupport.FreePortOn(t, nodeIP), testsupport.FreePortOn(t, managerIP), testsupport.FreePortOn(t, nodeIP)
	managerMetrics := net.JoinHostPort(managerIP, strconv.Itoa(testsupport.FreePortOn(t, managerIP)))
	agentMetrics := net.JoinHostPort(nodeIP, strconv.Itoa(testsupport.FreePortOn(t, nodeIP)))

	// The state directory is the node's /var/lib/ferry: open to the
	// workers, which run as nobody and load the WSGI loader from it.
	stateDir, err := os.MkdirTemp("", "ferry-rbac-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(stateDir) })
	if err := os.Chmod(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}

	objs := render(t, renderOpts{release: rel, namespace: ns, valuesFiles: []string{"local.yaml"}, sets: []string{
		"manager.leaderElect=true",
		// Secure metrics, as by default (local.yaml turns them off).
		"manager.metricsSecure=true", "agent.metricsSecure=true",
		"manager.metricsBindAddress=" + managerMetrics,
		"manager.healthProbeBindAddress=" + net.JoinHostPort(managerIP, strconv.Itoa(managerProbe)),
		"agent.metricsBindAddress=" + agentMetrics,
		"agent.healthProbeBindAddress=$(HOST_IP):" + strconv.Itoa(agentProbe),
		"agent.stateDir=" + stateDir,
	}})
	var rbac []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
			"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			rbac = append(rbac, o)
		}
	}
	ensureNamespace(t, ns, nil)
	ensureNamespace(t, appNS, nil)
	if _, err := kubectlIn(ctx, encode(t, rbac), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = kubectlIn(context.Background(), encode(t, rbac), "delete", "--ignore-not-found", "--wait=false", "-f", "-")
	})
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{"ferry.dev/web": "true", "test.ferry.dev/rbac": "true"}}}
	if err := env.Client.Create(ctx, n); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), n) })

	manager := find(t, objs, "Deployment", "manager")
	agent := find(t, objs, "DaemonSet", "agent")
	managerKubeconfig := podKubeconfig(t, ns, manager, "manager-0", node)
	agentKubeconfig := podKubeconfig(t, ns, agent, "agent-"+node, node)

	// Whatever happens, nothing is left holding finalizers once the
	// binaries are stopped (cleanups run last-registered first).
	t.Cleanup(func() { removeFerryObjects(t, appNS) })

	// The chart's arguments, as the kubelet would expand them, plus what a
	// pod gets from its environment: the kubeconfig, and the namespace
	// leader election finds in-cluster.
	agentEnv := map[string]string{"NODE_NAME": node, "HOST_IP": nodeIP, "POD_NAMESPACE": ns}
	managerEnv := map[string]string{"POD_NAMESPACE": ns}
	mp := startBinary(t, filepath.Join(bin, "ferry-manager"),
		append(deployargs.Expand(args(t, manager), managerEnv), "--kubeconfig="+managerKubeconfig, "--leader-election-namespace="+ns), managerEnv)
	ap := startBinary(t, filepath.Join(bin, "ferry-agent"),
		append(deployargs.Expand(args(t, agent), agentEnv), "--kubeconfig="+agentKubeconfig), agentEnv)
	t.Cleanup(func() {
		ap.stop(t)
		mp.stop(t)
		for _, p := range []*binary{mp, ap} {
			if lines := p.grep("forbidden"); len(lines) > 0 {
				t.Errorf("%s was refused requests; its RBAC or an isolation policy is too narrow:\n%s",
					filepath.Base(p.path), strings.Join(lines, "\n"))
			}
		}
	})
	waitOK(t, "http://"+net.JoinHostPort(managerIP, strconv.Itoa(managerProbe))+"/readyz", mp)
	waitOK(t, "http://"+net.JoinHostPort(nodeIP, strconv.Itoa(agentProbe))+"/readyz", ap)

	ag := &ferryv1.AppGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: appNS, Annotations: map[string]string{ferryv1.RevisionAnnotation: "1"}},
		Spec: ferryv1.AppGroupSpec{
			AppTemplate: ferryv1.AppTemplate{
				App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: filepath.Join(root, "examples", "hello-wsgi")},
				Listen: ferryv1.ListenSpec{Port: int32(appPort)},
				Pool:   ferryv1.PoolSpec{MinProcesses: 1, MaxProcesses: 2},
			},
			NodeSelector: map[string]ferryv1.LabelValue{"test.ferry.dev/rbac": "true"},
		},
	}
	if err := env.Client.Create(ctx, ag); err != nil {
		t.Fatal(err)
	}
	url := "http://" + net.JoinHostPort(nodeIP, strconv.Itoa(appPort)) + "/"
	waitRevision := func(rev string) {
		t.Helper()
		testenv.Eventually(t, 3*time.Minute, "the AppGroup is Ready on revision "+rev, func() error {
			for _, p := range []*binary{mp, ap} {
				if lines := p.grep("forbidden"); len(lines) > 0 {
					t.Fatalf("%s was refused a request:\n%s", filepath.Base(p.path), lines[0])
				}
			}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ag), ag); err != nil {
				return err
			}
			if c := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("Ready: %+v", c)
			}
			if !strings.HasPrefix(ag.Status.Revision, rev+"-") || ag.Status.Processes.Updated < 1 {
				return fmt.Errorf("revision %q, processes %+v", ag.Status.Revision, ag.Status.Processes)
			}
			resp, err := http.Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("X-Revision"), rev+"-") {
				return fmt.Errorf("GET %s: %s, X-Revision %q", url, resp.Status, resp.Header.Get("X-Revision"))
			}
			return nil
		})
	}
	waitRevision("1")

	// Both serve their metrics to a token bound to the chart's
	// metrics-reader ClusterRole, checking it with the rights the chart
	// gives them (a refused TokenReview would be logged as forbidden).
	reader := readerToken(t, ns, find(t, objs, "ClusterRole", "metrics-reader").GetName())
	for _, m := range []struct{ url, want string }{
		{"https://" + managerMetrics + "/metrics", "ferry_rollouts_started_total"},
		{"https://" + agentMetrics + "/metrics", `pool="` + appNS + `/hello-` + node + `"`},
	} {
		for token, want := range map[string]int{"": http.StatusUnauthorized, testenv.Forge(reader): http.StatusUnauthorized, reader: http.StatusOK} {
			code, body, err := testenv.GetWithToken(m.url, token)
			if err != nil || code != want || (want == http.StatusOK && !strings.Contains(body, m.want)) {
				t.Errorf("GET %s (with a token: %t): %d, %v, want %d with %s; body:\n%.2000s", m.url, token != "", code, err, want, m.want, body)
			}
		}
	}

	// The agent renews its node's Lease in the release's namespace, where
	// the manager reads it.
	lease := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: contract.AgentLeaseName(node)}, lease); err != nil {
		t.Errorf("the agent's Lease: %v", err)
	} else if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != node {
		t.Errorf("the agent's Lease is held by %q, want %q", h, node)
	}

	// A deploy: bump the revision.
	patch := []byte(`{"metadata":{"annotations":{"ferry.dev/revision":"2"}}}`)
	if err := env.Client.Patch(ctx, ag, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
	waitRevision("2")

	// Delete it: the manager deletes the pool, the agent drains it and
	// removes its finalizer, the manager then its own.
	if err := env.Client.Delete(ctx, ag); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 3*time.Minute, "the AppGroup and its pools are gone", func() error {
		pools := &ferryv1.ProcessPoolList{}
		if err := env.Client.List(ctx, pools, client.InNamespace(appNS)); err != nil {
			return err
		}
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(ag), &ferryv1.AppGroup{})
		if !apierrors.IsNotFound(err) || len(pools.Items) > 0 {
			return fmt.Errorf("AppGroup: %w; %d pools left", err, len(pools.Items))
		}
		return nil
	})
}

// readerToken is the token of a new ServiceAccount of ns bound to the
// ClusterRole role: a scraper's, such as Prometheus's.
func readerToken(t *testing.T, ns, role string) string {
	t.Helper()
	ctx := testContext(t)
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "scraper"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-scraper"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
		_ = cs.CoreV1().ServiceAccounts(ns).Delete(context.Background(), sa.Name, metav1.DeleteOptions{})
	})
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// podKubeconfig writes a kubeconfig with the token a pod of workload o
// would get: its service account's, bound to a pod on node.
func podKubeconfig(t *testing.T, ns string, o *unstructured.Unstructured, podName, node string) string {
	t.Helper()
	ctx := testContext(t)
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	sa := nested[string](t, o.Object, "spec", "template", "spec", "serviceAccountName")
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: sa,
			Containers: []corev1.Container{{Name: "c", Image: "ghcr.io/ferry-dev/test:none"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Pods(ns).Delete(context.Background(), podName, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To[int64](3600),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: sa}
	cfg.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// binary is a Ferry binary the test started.
type binary struct {
	path string
	cmd  *exec.Cmd
	log  *testenv.Output
	done chan struct{}
}

func startBinary(t *testing.T, path string, args []string, env map[string]string) *binary {
	t.Helper()
	b := &binary{path: path, log: &testenv.Output{}, done: make(chan struct{})}
	b.cmd = exec.Command(path, args...)
	b.cmd.Env = deployargs.Environ(env)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = b.cmd.Wait()
		close(b.done)
	}()
	return b
}

// stop sends SIGTERM (the agent drains), and kills after a minute.
func (b *binary) stop(t *testing.T) {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(time.Minute):
		_ = b.cmd.Process.Kill()
		<-b.done
		t.Errorf("%s did not stop within a minute", filepath.Base(b.path))
	}
	if t.Failed() {
		t.Logf("%s log:\n%s", filepath.Base(b.path), b.log.String())
	}
}

func (b *binary) grep(s string) []string {
	var out []string
	for _, line := range strings.Split(b.log.String(), "\n") {
		if strings.Contains(strings.ToLower(line), s) {
			out = append(out, line)
		}
	}
	return out
}

func waitOK(t *testing.T, url string, b *binary) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "GET "+url, func() error {
		select {
		case <-b.done:
			t.Fatalf("%s exited:\n%s", filepath.Base(b.path), b.log.String())
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, body)
		}
		return nil
	})
}
