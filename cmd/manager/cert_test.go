package main_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testenv"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// metricsServerName is the name the test's certificate is for, and the
// name its client verifies: the metrics Service's, as Prometheus would.
const metricsServerName = "ferry-manager-metrics.ferry-system.svc"

// managerMetric is a metric the manager's /metrics holds: the answer is
// the manager's metrics.
const managerMetric = "ferry_appgroups_resisting"

// TestMetricsServeTheGivenCertificate: with --metrics-cert-path (and the
// file names of --metrics-cert-name and --metrics-cert-key) the secure
// metrics endpoint serves that certificate, which a client verifies
// against its CA, still only to an authorized token; a renewed
// certificate written in its place is served without a restart.
func TestMetricsServeTheGivenCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "metrics-cert"
	tokens, err := env.MetricsTokens(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	ca := testenv.NewCA(t, metricsServerName)
	dir := t.TempDir()
	first := ca.WriteServing(t, dir, "metrics.crt", "metrics.key", 1)

	metricsAddr := testsupport.FreeAddr(t)
	var logs bytes.Buffer
	_, stop := startManager(ctx, t, &logs, managerBinary(t), "--kubeconfig", env.Kubeconfig,
		"--metrics-bind-address", metricsAddr, "--metrics-cert-path", dir,
		"--metrics-cert-name", "metrics.crt", "--metrics-cert-key", "metrics.key",
		"--health-probe-bind-address", "0", "--agent-lease-namespace", ns)
	defer stop()

	url := "https://" + metricsAddr + "/metrics"
	testenv.Eventually(t, 2*time.Minute, "verified metrics with the reader's token", func() error {
		return ca.Scrape(url, tokens.Reader, managerMetric, first)
	})
	if code, _, err := ca.Get(url, "", nil); err != nil || code != http.StatusUnauthorized {
		t.Errorf("GET %s with no token over verified TLS: %d %v, want 401", url, code, err)
	}

	// A renewal, as cert-manager's: written aside, then moved in place.
	renewed := ca.WriteServing(t, dir, "metrics.crt", "metrics.key", 2)
	testenv.Eventually(t, 2*time.Minute, "the renewed certificate served", func() error {
		return ca.Scrape(url, tokens.Reader, managerMetric, renewed)
	})
}

// TestMetricsCertificateFlagsRefused: a certificate that cannot be read,
// or one given for plain HTTP metrics, stops the manager at start with
// the reason, rather than serving a self-signed certificate (or none) in
// its place.
func TestMetricsCertificateFlagsRefused(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-cert-path", empty}, filepath.Join(empty, "tls.crt")},
		{[]string{"--metrics-cert-path", empty, "--metrics-secure=false"}, "--metrics-cert-path needs --metrics-secure"},
	} {
		args := append([]string{"--kubeconfig", env.Kubeconfig, "--metrics-bind-address", testsupport.FreeAddr(t),
			"--health-probe-bind-address", "0"}, c.args...)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, managerBinary(t), args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%q: err %v, want an exit naming %q; output:\n%s", c.args, err, c.want, out)
		}
	}
}

// TestMetricsOffReadsNoCertificate: with its metrics off
// (--metrics-bind-address=0), the manager neither reads nor checks the
// metrics certificate, which serves nothing: one that is missing (a
// Secret not issued yet), or given with --metrics-secure=false, does not
// stop it; it starts, and answers its readiness probe.
func TestMetricsOffReadsNoCertificate(t *testing.T) {
	empty := t.TempDir()
	for name, extra := range map[string][]string{
		"missing certificate": {"--metrics-cert-path", empty},
		"plain HTTP":          {"--metrics-cert-path", empty, "--metrics-secure=false"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			probes := testsupport.FreeAddr(t)
			var logs bytes.Buffer
			_, stop := startManager(ctx, t, &logs, managerBinary(t), append([]string{"--kubeconfig", env.Kubeconfig,
				"--metrics-bind-address", "0", "--health-probe-bind-address", probes}, extra...)...)
			defer stop()
			testenv.Eventually(t, 2*time.Minute, "the manager ready", func() error {
				code, body, err := get("http://" + probes + "/readyz")
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("readyz: %d %s", code, body)
				}
				return err
			})
		})
	}
}
