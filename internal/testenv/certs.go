package testenv

import (
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
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CA is a certificate authority made for one test, which issues the
// serving certificates of secure metrics for ServerName (and 127.0.0.1),
// and verifies them as Prometheus would, for ServerName.
type CA struct {
	ServerName string
	cert       *x509.Certificate
	key        *ecdsa.PrivateKey
	pool       *x509.CertPool
}

// NewCA makes a CA whose certificates are for serverName.
func NewCA(t testing.TB, serverName string) *CA {
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
	return &CA{ServerName: serverName, cert: cert, key: key, pool: pool}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// issue makes a serving certificate for ca.ServerName and 127.0.0.1, with
// serial, and returns it, and it and its key PEM-encoded.
func (ca *CA) issue(t testing.TB, serial int64) (cert *x509.Certificate, certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: ca.ServerName},
		DNSNames: []string{ca.ServerName}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
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
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// WriteServing issues a serving certificate with serial and writes it and
// its key as dir/certName and dir/keyName, each written aside and renamed
// into place, key first. It returns the certificate.
func (ca *CA) WriteServing(t testing.TB, dir, certName, keyName string, serial int64) *x509.Certificate {
	t.Helper()
	cert, certPEM, keyPEM := ca.issue(t, serial)
	writeAtomically(t, filepath.Join(dir, keyName), keyPEM)
	writeAtomically(t, filepath.Join(dir, certName), certPEM)
	return cert
}

func writeAtomically(t testing.TB, path string, data []byte) {
	t.Helper()
	aside := path + ".new"
	if err := os.WriteFile(aside, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, path); err != nil {
		t.Fatal(err)
	}
}

// MountServing issues a serving certificate with serial and puts it in
// dir as the kubelet updates a mounted kubernetes.io/tls Secret: tls.crt,
// tls.key and ca.crt are links to ..data/<name>, ..data a link to a new
// directory holding the files, swapped in one rename, and the previous
// directory then removed. It returns the certificate.
func (ca *CA) MountServing(t testing.TB, dir string, serial int64) *x509.Certificate {
	t.Helper()
	cert, certPEM, keyPEM := ca.issue(t, serial)
	files := map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM,
		"ca.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})}
	version := fmt.Sprintf("..%d", serial)
	if err := os.Mkdir(filepath.Join(dir, version), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, version, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	previous, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Symlink(version, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	if previous != "" {
		if err := os.RemoveAll(filepath.Join(dir, previous)); err != nil {
			t.Fatal(err)
		}
	}
	return cert
}

// Scrape GETs url with token, as Get does, and checks that the answer is
// the metrics, holding metric, over the certificate want.
func (ca *CA) Scrape(url, token, metric string, want *x509.Certificate) error {
	code, body, err := ca.Get(url, token, want)
	if err == nil && (code != http.StatusOK || !strings.Contains(body, metric)) {
		err = fmt.Errorf("GET %s: %d %.200s", url, code, body)
	}
	return err
}

// Get GETs url with token (none if empty) over TLS that verifies the
// server's certificate against the CA, for ca.ServerName, and returns the
// status and body; an error when the certificate served is not want (nil:
// any the CA issued).
func (ca *CA) Get(url, token string, want *x509.Certificate) (int, string, error) {
	code, body, state, err := GetWithTokenOver(url, token, &tls.Config{RootCAs: ca.pool, ServerName: ca.ServerName})
	if err != nil {
		return 0, "", err
	}
	if got := state.PeerCertificates[0]; want != nil && !got.Equal(want) {
		return 0, "", fmt.Errorf("served the certificate of serial %s, want %s", got.SerialNumber, want.SerialNumber)
	}
	return code, body, nil
}
