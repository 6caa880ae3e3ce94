package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/ferry-dev/ferry/internal/metricsauth"
)

// authorizedOnly lets through to h only the callers the manager's secure
// metrics let through (internal/metricsauth): those whose bearer token the
// API server authenticates (a TokenReview) and allows to get /metrics (a
// SubjectAccessReview). Decisions are cached for a while, so a scrape
// every 30s costs the API server little.
func authorizedOnly(cfg *rest.Config, h http.Handler, log logr.Logger) (http.Handler, error) {
	filter, err := metricsauth.ForConfig(cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("secure metrics: %w", err)
	}
	return filter.Wrap(log, h), nil
}

// metricsTLS is the TLS of the secure metrics, as the manager's: HTTP/1.1
// only (which takes serve's Protocols too: net/http would add h2 to
// NextProtos), as HTTP/2's stream reset and continuation floods reach a
// server before any token is checked; the certificate of certs, or else
// one made at start, for localhost, that no one verifies (the bearer token
// guards the endpoint; TLS keeps it from the network).
func metricsTLS(certs *certwatcher.CertWatcher) (*tls.Config, error) {
	c := &tls.Config{NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	if certs != nil {
		c.GetCertificate = certs.GetCertificate
		return c, nil
	}
	cert, key, err := certutil.GenerateSelfSignedCertKeyWithFixtures("localhost", []net.IP{net.IPv4(127, 0, 0, 1)}, nil, "")
	if err != nil {
		return nil, fmt.Errorf("secure metrics: making a self-signed certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("secure metrics: %w", err)
	}
	c.Certificates = []tls.Certificate{pair}
	return c, nil
}
