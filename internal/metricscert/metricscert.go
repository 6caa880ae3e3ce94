package metricscert

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// Files names the certificate and key files a secure metrics endpoint
// serves; Dir "" for a self-signed certificate.
type Files struct{ Dir, CertName, KeyName string }

// BindFlags binds --metrics-cert-path, --metrics-cert-name and
// --metrics-cert-key to fs; the returned Files holds them once fs is
// parsed.
func BindFlags(fs *flag.FlagSet) *Files {
	f := &Files{}
	fs.StringVar(&f.Dir, "metrics-cert-path", "",
		"Directory holding the certificate and key the secure /metrics serves (a cert-manager Certificate's Secret, "+
			"mounted), read again when they change; empty: a self-signed certificate made at start.")
	fs.StringVar(&f.CertName, "metrics-cert-name", "tls.crt", "The certificate's file in --metrics-cert-path.")
	fs.StringVar(&f.KeyName, "metrics-cert-key", "tls.key", "The key's file in --metrics-cert-path.")
	return f
}

// errNotSecure refuses a certificate for plain HTTP metrics.
var errNotSecure = errors.New("--metrics-cert-path needs --metrics-secure: plain HTTP serves no certificate")

// Off tells whether the metrics bind address addr turns the metrics off:
// "0", as both components' --metrics-bind-address says, or "" (the agent
// always took it so; the manager takes it so too, rather than leave it to
// controller-runtime, whose default it would be, serving on :8080).
func Off(addr string) bool { return addr == "" || addr == "0" }

// Watcher reads the certificate and key of f, for metrics served at addr,
// secure or not, and returns a watcher whose GetCertificate serves them:
// it must be started (its Start) for a renewal to be read. It returns nil
// when the metrics are off (nothing to serve: the files are neither read
// nor checked, so a Secret that is missing or not yet issued stops
// nothing) or f names no directory (a self-signed certificate, or plain
// HTTP), and an error when the files cannot be read or the metrics are
// plain HTTP.
func (f Files) Watcher(addr string, secure bool) (*certwatcher.CertWatcher, error) {
	switch {
	case Off(addr) || f.Dir == "":
		return nil, nil
	case !secure:
		return nil, errNotSecure
	}
	certs, err := certwatcher.New(filepath.Join(f.Dir, f.CertName), filepath.Join(f.Dir, f.KeyName))
	if err != nil {
		return nil, fmt.Errorf("--metrics-cert-path: %w", err)
	}
	return certs, nil
}
