package main_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// metricsServerName is the name the test's certificate is for, and the
// name its client verifies: the metrics Service's, as Prometheus would.
const metricsServerName = "ferry-manager-metrics.ferry-system.svc"

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
	ca := newTestCA(t)
	dir := t.TempDir()
	first := ca.writeServing(t, dir, "metrics.crt", "metrics.key", 1)

	metricsAddr := freeAddr(t)
	var logs bytes.Buffer
	_, stop := startManager(ctx, t, &logs, managerBinary(t), "--kubeconfig", env.Kubeconfig,
		"--metrics-bind-address", metricsAddr, "--metrics-cert-path", dir,
		"--metrics-cert-name", "metrics.crt", "--metrics-cert-key", "metrics.key",
		"--health-probe-bind-address", "0", "--agent-lease-namespace", ns)
	defer stop()

	url := "https://" + metricsAddr + "/metrics"
	testenv.Eventually(t, 2*time.Minute, "verified metrics with the reader's token", func() error {
		return ca.scrape(url, tokens.Reader, first)
	})
	if code, _, err := ca.get(url, "", nil); err != nil || code != http.StatusUnauthorized {
		t.Errorf("GET %s with no token over verified TLS: %d %v, want 401", url, code, err)
	}

	// A renewal, as cert-manager's: written aside, then moved in place.
	renewed := ca.writeServing(t, dir, "metrics.crt", "metrics.key", 2)
	testenv.Eventually(t, 2*time.Minute, "the renewed certificate served", func() error {
		return ca.scrape(url, tokens.Reader, renewed)
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
		args := append([]string{"--kubeconfig", env.Kubeconfig, "--metrics-bind-address", freeAddr(t),
			"--health-probe-bind-address", "0"}, c.args...)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, managerBinary(t), args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%q: err %v, want an exit naming %q; output:\n%s", c.args, err, c.want, out)
		}
	}
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1000), Subject: pkix.Name{CommonName: "ferry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// writeServing issues a serving certificate for metricsServerName and
// 127.0.0.1, with serial, and writes it and its key as dir/certName and
// dir/keyName, each written aside and renamed into place, key first. It
// returns the certificate.
func (ca *testCA) writeServing(t *testing.T, dir, certName, keyName string, serial int64) *x509.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: metricsServerName},
		DNSNames: []string{metricsServerName}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	writeAtomically(t, filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func writeAtomically(t *testing.T, path string, data []byte) {
	t.Helper()
	aside := path + ".new"
	if err := os.WriteFile(aside, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, path); err != nil {
		t.Fatal(err)
	}
}

// scrape GETs url with token, as get does, and checks that the answer is
// the metrics, over the certificate want.
func (ca *testCA) scrape(url, token string, want *x509.Certificate) error {
	code, body, err := ca.get(url, token, want)
	if err == nil && (code != http.StatusOK || !strings.Contains(body, "ferry_appgroups_resisting")) {
		err = fmt.Errorf("GET %s: %d %.200s", url, code, body)
	}
	return err
}

// get GETs url with token (none if empty) over TLS that verifies the
// server's certificate against the CA, for metricsServerName, and returns
// the status and body; an error when the certificate served is not want
// (nil: any the CA issued).
func (ca *testCA) get(url, token string, want *x509.Certificate) (int, string, error) {
	code, body, state, err := testenv.GetWithTokenOver(url, token, &tls.Config{RootCAs: ca.pool, ServerName: metricsServerName})
	if err != nil {
		return 0, "", err
	}
	if got := state.PeerCertificates[0]; want != nil && !got.Equal(want) {
		return 0, "", fmt.Errorf("served the certificate of serial %s, want %s", got.SerialNumber, want.SerialNumber)
	}
	return code, body, nil
}
