package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/deployargs"
	"github.com/ferry-dev/ferry/internal/testenv"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// managerBinary builds ferry-manager once for the tests that run it.
func managerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-manager-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ferry-manager")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestBinary runs the real ferry-manager with the arguments the chart
// renders (internal/deployargs), leader election included: it serves its
// probes, and its metrics only to an authorized token, takes the leader
// Lease and reconciles an AppGroup.
func TestBinary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	bin := managerBinary(t)
	for _, ns := range []string{"ferry-system", "apps"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	metricsAddr, probeAddr := testsupport.FreeAddr(t), testsupport.FreeAddr(t)
	var logs bytes.Buffer
	// The arguments the chart renders (deployargs), on free ports, and
	// $POD_NAMESPACE, which it sets too: out of a cluster, that is the
	// leader Lease's namespace.
	settings := deployargs.DefaultManager()
	settings.MetricsBindAddress, settings.HealthProbeBindAddress = metricsAddr, probeAddr
	t.Setenv("POD_NAMESPACE", "ferry-system")
	args := append(deployargs.ManagerArgs(settings), "--kubeconfig", env.Kubeconfig)
	cmd, stop := startManager(ctx, t, &logs, bin, args...)
	defer stop()

	for _, path := range []string{"/healthz", "/readyz"} {
		testenv.Eventually(t, 2*time.Minute, path, func() error {
			code, body, err := get("http://" + probeAddr + path)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("%d %s", code, body)
			}
			return err
		})
	}
	testenv.Eventually(t, 2*time.Minute, "leader lease", func() error {
		return env.Client.Get(ctx, types.NamespacedName{Namespace: "ferry-system", Name: contract.ManagerLeaseName}, &coordinationv1.Lease{})
	})

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"ferry.dev/web": "true"}}}
	if err := env.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	ag := &ferryv1.AppGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "apps"},
		Spec: ferryv1.AppGroupSpec{
			AppTemplate: ferryv1.AppTemplate{
				App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/hello"},
				Listen: ferryv1.ListenSpec{Port: 8080},
			},
			NodeSelector: map[string]ferryv1.LabelValue{"ferry.dev/web": "true"},
		},
	}
	if err := env.Client.Create(ctx, ag); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, "pool created", func() error {
		return env.Client.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "hello-node-a"}, &ferryv1.ProcessPool{})
	})
	testenv.Eventually(t, 2*time.Minute, "status written", func() error {
		got := &ferryv1.AppGroup{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ag), got); err != nil {
			return err
		}
		if !strings.HasPrefix(got.Status.Revision, "0-") || got.Status.ReadyNodes != "0/1" {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})

	// Metrics are served over HTTPS to the tokens allowed to get them.
	tokens, err := env.MetricsTokens(ctx, "ferry-system")
	if err != nil {
		t.Fatal(err)
	}
	checkMetricsAuth(t, "https://"+metricsAddr+"/metrics", tokens, func(body string) error {
		for _, want := range []string{
			"ferry_rollouts_started_total 1", "ferry_rollouts_completed_total", "ferry_rollouts_halted_total",
			"ferry_appgroups_resisting 0", `controller_runtime_reconcile_total{controller="appgroup"`,
		} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("/metrics lacks %q", want)
			}
		}
		return nil
	})
	// Not in plain HTTP.
	if code, _, err := get("http://" + metricsAddr + "/metrics"); err == nil && code == http.StatusOK {
		t.Errorf("plain HTTP /metrics answered %d", code)
	}

	// A clean stop releases the leader Lease (an empty holder), which is
	// how `kubectl ferry status` tells that no manager leads.
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	lease := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: "ferry-system", Name: contract.ManagerLeaseName}, lease); err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || *h != "" {
		t.Errorf("after a clean stop the leader Lease's holder is %v, want released (empty)", h)
	}
}

// TestFlags checks the flag set: defaults, and that a bad value stops the
// manager before it connects anywhere.
func TestFlags(t *testing.T) {
	out, _ := exec.Command("go", "run", ".", "--help").CombinedOutput()
	for _, want := range []string{
		`-metrics-bind-address string`, `(default ":8080")`, "-metrics-secure\n", "(default true)",
		"-metrics-cert-path string", `-metrics-cert-name string`, `(default "tls.crt")`, `-metrics-cert-key string`, `(default "tls.key")`,
		`-health-probe-bind-address string`, `(default ":8081")`,
		// A back-quoted word in a usage string becomes the flag's value
		// name ("-leader-election-namespace kubectl ferry status"): each
		// string flag reads "string".
		"-leader-elect", "-leader-election-namespace string", "-agent-lease-namespace string", "-kubeconfig string",
		"-agent-stale-after duration", "(default 40s)", "-zap-log-level",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	out, err := exec.Command("go", "run", ".", "--kubeconfig", env.Kubeconfig, "--agent-stale-after", "0s",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--agent-stale-after must be positive") {
		t.Errorf("--agent-stale-after 0s: err %v, output:\n%s", err, out)
	}
	// The error is logged without the manager's Go stack trace, in JSON
	// and console logs.
	if strings.Contains(string(out), `"stacktrace"`) || strings.Contains(string(out), "main.go:") {
		t.Errorf("--agent-stale-after 0s: the error carries a Go stack trace:\n%s", out)
	}
	out, _ = exec.Command("go", "run", ".", "--kubeconfig", env.Kubeconfig, "--agent-stale-after", "0s",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-encoder=console").CombinedOutput()
	if !strings.Contains(string(out), "\tERROR\tManager failed") || strings.Contains(string(out), "main.go:") {
		t.Errorf("--zap-encoder=console: want the error without a Go stack trace:\n%s", out)
	}
	out, _ = exec.Command("go", "run", ".", "--kubeconfig", env.Kubeconfig, "--agent-stale-after", "0s",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-stacktrace-level=error").CombinedOutput()
	if !strings.Contains(string(out), `"stacktrace"`) {
		t.Errorf("--zap-stacktrace-level=error: want the error with a Go stack trace:\n%s", out)
	}
	// A boolean flag's separate value ends Go's flag parsing: the flags
	// after it would be dropped, so the manager refuses to start.
	out, err = exec.Command("go", "run", ".", "--kubeconfig", env.Kubeconfig, "--leader-elect", "false",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unexpected argument "false"`) {
		t.Errorf("--leader-elect false: err %v, output:\n%s", err, out)
	}
}

// logSink holds a manager's output.
type logSink interface {
	io.Writer
	String() string
}

// startManager starts the manager binary bin with args, its output in
// logs. The caller defers stop: it interrupts the manager and waits for
// it (before ctx is cancelled, which would kill it), and shows its logs if
// the test failed.
func startManager(ctx context.Context, t *testing.T, logs logSink, bin string, args ...string) (cmd *exec.Cmd, stop func()) {
	t.Helper()
	cmd = exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("manager logs:\n%s", logs.String())
		}
	}
}
