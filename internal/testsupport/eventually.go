package testsupport

import (
	"testing"
	"time"
)

// Eventually polls fn until it returns nil, failing the test with fn's
// last error once timeout has passed. The tests that start real
// processes (the manager, agents, a control plane) wait on them through
// it: what they wait for is a state reached, not a time elapsed, and the
// timeout only bounds a test that would otherwise hang.
func Eventually(t testing.TB, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Receive is what ch gives, failing the test, naming what it waited for,
// once timeout has passed: a test waiting on something the code under
// test must do (a stop that returns, a request answered) fails saying so
// if the code breaks, rather than hang until the test binary's timeout
// names nothing. As for Eventually, the timeout only bounds the wait.
func Receive[T any](t testing.TB, timeout time.Duration, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("%s: not within %s", what, timeout)
		var zero T
		return zero
	}
}
