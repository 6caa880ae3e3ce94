// Package metricscert is the certificate of one's own that the manager's
// and the agent's secure metrics serve instead of a self-signed one: the
// same flags (--metrics-cert-path, --metrics-cert-name, --metrics-cert-key)
// for both, read once at start (a file that cannot be read stops the
// program, with the reason) and again when it changes, so that a renewal
// is served without a restart.
//
// It builds on controller-runtime's certwatcher rather than the metrics
// server's CertDir, which falls back to a self-signed certificate when the
// files are missing: a wrong path or name would go unnoticed.
package metricscert
