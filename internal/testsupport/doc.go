// Package testsupport holds the tests' helpers that need no control plane:
// a process's output read while it runs, a wait for a state, a free port,
// a directory a worker run as another user may enter.
// It imports nothing of envtest's or client-go's, so that a package whose
// tests run no API server (agent/wsgi, agent/standalone) can use them;
// internal/testenv, which starts the control plane, re-exports them.
package testsupport
