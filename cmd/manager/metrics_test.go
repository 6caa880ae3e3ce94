package main_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/internal/testenv"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// checkMetricsAuth checks who may read a secure metrics endpoint at url
// (https://.../metrics): the reader (200, its body checked by then), not
// a token the API server authenticates but does not authorize (403), nor
// one it rejects (401), nor anybody without a token (401).
func checkMetricsAuth(t *testing.T, url string, tokens testenv.ScrapeTokens, then func(body string) error) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "metrics with the reader's token", func() error {
		code, body, err := testenv.GetWithToken(url, tokens.Reader)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET %s with the reader's token: %d %s", url, code, body)
		}
		return then(body)
	})
	for _, err := range tokens.Refusals(url) {
		t.Error(err)
	}
}

// TestInsecureMetrics: --metrics-secure=false serves /metrics in plain
// HTTP to anyone, as before secure metrics (the local stack's setting).
func TestInsecureMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "insecure"}}); err != nil {
		t.Fatal(err)
	}
	metricsAddr := testsupport.FreeAddr(t)
	var logs bytes.Buffer
	_, stop := startManager(ctx, t, &logs, managerBinary(t), "--kubeconfig", env.Kubeconfig, "--metrics-secure=false",
		"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", "0", "--agent-lease-namespace", "insecure")
	defer stop()
	testenv.Eventually(t, 2*time.Minute, "plain HTTP metrics", func() error {
		code, body, err := get("http://" + metricsAddr + "/metrics")
		if err == nil && (code != http.StatusOK || !strings.Contains(body, "ferry_appgroups_resisting")) {
			err = fmt.Errorf("%d, body without ferry_appgroups_resisting:\n%s", code, body)
		}
		return err
	})
}
