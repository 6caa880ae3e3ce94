package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testenv"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestClusterMetricsAreAuthenticated runs the agent against a real API
// server: by default its /metrics is HTTPS and answers only a token the
// API server authenticates and allows to get /metrics; with
// --metrics-secure=false it is plain HTTP to anyone, as before. Either way
// it serves /metrics alone: every other path is 404, as at the manager's.
func TestClusterMetricsAreAuthenticated(t *testing.T) {
	env := startEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "ferry-metrics"
	tokens, err := env.MetricsTokens(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}

	secure := startClusterAgent(t, env, ns, "node-secure")
	url := "https://" + secure + "/metrics"
	testenv.Eventually(t, time.Minute, "metrics with the reader's token", func() error {
		code, body, err := testenv.GetWithToken(url, tokens.Reader)
		if err == nil && (code != http.StatusOK || !strings.Contains(body, "go_goroutines")) {
			err = fmt.Errorf("%d %s", code, body)
		}
		return err
	})
	for _, err := range tokens.Refusals(url) {
		t.Error(err)
	}
	checkMetricsPathOnly(t, "https://"+secure, tokens.Reader)
	if resp, err := http.Get("http://" + secure + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP /metrics answered %s", resp.Status)
		}
	}

	insecure := startClusterAgent(t, env, ns, "node-insecure", "--metrics-secure=false")
	testenv.Eventually(t, time.Minute, "plain HTTP metrics", func() error {
		resp, err := http.Get("http://" + insecure + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("plain HTTP /metrics: %s", resp.Status)
		}
		return nil
	})
	checkMetricsPathOnly(t, "http://"+insecure, "")
}

// agentMetricsServerName is the name the test's certificate is for, and
// the name its client verifies, as the agents' ServiceMonitor does
// (agent.metricsCertServerName): one name for every node's agent, the
// agents' metrics Service's.
const agentMetricsServerName = "ferry-agent-metrics.ferry-system.svc"

// TestMetricsServeTheGivenCertificate: with --metrics-cert-path the
// agent's secure metrics serve the certificate in that directory, mounted
// as the kubelet mounts a Secret, which a client verifies against its CA
// for the name the ServiceMonitor verifies, still only to an authorized
// token and over HTTP/1.1 alone; a renewal of the Secret, swapped in as
// the kubelet does, is served without a restart.
func TestMetricsServeTheGivenCertificate(t *testing.T) {
	env := startEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "ferry-metrics-cert"
	tokens, err := env.MetricsTokens(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	ca := testenv.NewCA(t, agentMetricsServerName)
	dir := t.TempDir()
	first := ca.MountServing(t, dir, 1)

	url := "https://" + startClusterAgent(t, env, ns, "node-cert", "--metrics-cert-path="+dir) + "/metrics"
	testenv.Eventually(t, time.Minute, "verified metrics with the reader's token", func() error {
		return ca.Scrape(url, tokens.Reader, "go_goroutines", first)
	})
	for _, err := range tokens.Refusals(url) {
		t.Error(err)
	}

	renewed := ca.MountServing(t, dir, 2)
	testenv.Eventually(t, time.Minute, "the renewed certificate served", func() error {
		return ca.Scrape(url, tokens.Reader, "go_goroutines", renewed)
	})
}

// TestMetricsCertificateFlagsRefused: a certificate that cannot be read
// (--metrics-cert-name and --metrics-cert-key name the files), or one
// given for plain HTTP metrics, stops the agent at its start with the
// reason, as the manager, rather than serving a self-signed certificate
// (or none) in its place.
func TestMetricsCertificateFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, agentMetricsServerName)
	ca.WriteServing(t, dir, "metrics.crt", "metrics.key", 1)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-cert-path=" + dir}, filepath.Join(dir, "tls.crt")},
		{[]string{"--metrics-cert-path=" + dir, "--metrics-cert-name=metrics.crt"}, filepath.Join(dir, "tls.key")},
		{[]string{"--metrics-cert-path=" + dir, "--metrics-cert-key=metrics.key"}, filepath.Join(dir, "tls.crt")},
		{[]string{"--metrics-cert-path=" + dir, "--metrics-cert-name=metrics.crt", "--metrics-cert-key=metrics.key",
			"--metrics-secure=false"}, "--metrics-cert-path needs --metrics-secure"},
	} {
		// No API server: the flags are refused before the agent reaches one.
		args := append([]string{"--node-name=node-refused", "--kubeconfig=/nonexistent", "--state-dir=" + t.TempDir(),
			"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=0"}, c.args...)
		stdout, stderr, code := ferry(t, args...)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, want 1 and an error naming %q; output:\n%s%s", c.args, code, c.want, stdout, stderr)
		}
	}
}

// TestMetricsOffReadsNoCertificate: with its metrics off
// (--metrics-bind-address=0), the agent neither reads nor checks the
// metrics certificate, which serves nothing: one that is missing (a
// Secret not issued yet), or given with --metrics-secure=false, does not
// stop it at start. It goes on to the API server (here none: its error
// names the kubeconfig).
func TestMetricsOffReadsNoCertificate(t *testing.T) {
	empty := t.TempDir()
	for _, extra := range [][]string{
		{"--metrics-cert-path=" + empty},
		{"--metrics-cert-path=" + empty, "--metrics-secure=false"},
	} {
		args := append([]string{"--node-name=node-off", "--kubeconfig=/nonexistent", "--state-dir=" + t.TempDir(),
			"--metrics-bind-address=0", "--health-probe-bind-address=0"}, extra...)
		stdout, stderr, code := ferry(t, args...)
		if code != 1 || !strings.Contains(stderr, "/nonexistent") || strings.Contains(stderr, "metrics-cert") {
			t.Errorf("%q: exit %d, want 1 and an error naming the kubeconfig, not the certificate; output:\n%s%s",
				extra, code, stdout, stderr)
		}
	}
}

// startEnv starts a control plane, stopped after the test's agents
// (cleanups run last-registered first): the API server waits for their
// connections to close.
func startEnv(t *testing.T) *testenv.Env {
	t.Helper()
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	return env
}

// checkMetricsPathOnly asks the metrics endpoint at base (scheme://host:port)
// for paths other than /metrics, with token (one allowed to get /metrics,
// or none where metrics are plain HTTP): each must be 404, not the metrics.
func checkMetricsPathOnly(t *testing.T, base, token string) {
	t.Helper()
	for _, path := range []string{"/", "/foo", "/metrics/", "/metricsfoo", "/healthz"} {
		code, body, err := testenv.GetWithToken(base+path, token)
		if err != nil || code != http.StatusNotFound {
			t.Errorf("GET %s%s: %d %.80q %v, want 404", base, path, code, body, err)
		}
	}
}

// startClusterAgent starts the agent of node in cluster mode, as a cluster
// admin, with its metrics on a free loopback port, which it returns.
func startClusterAgent(t *testing.T, env *testenv.Env, ns, node string, extra ...string) string {
	t.Helper()
	addr := testsupport.FreeAddr(t)
	args := append([]string{"--node-name=" + node, "--kubeconfig=" + env.Kubeconfig, "--lease-namespace=" + ns,
		"--bind-address=127.0.0.1", "--state-dir=" + t.TempDir(), "--metrics-bind-address=" + addr,
		"--health-probe-bind-address=0"}, extra...)
	cmd := exec.Command(agentBin, args...)
	var logs bytes.Buffer // read only once the agent has exited
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("agent of %s:\n%s", node, logs.String())
		}
	})
	return addr
}
