package testenv

import (
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// Output is testsupport.Output: a process's output read while it runs.
type Output = testsupport.Output

// Eventually is testsupport.Eventually: fn polled until it returns nil.
func Eventually(t testing.TB, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	testsupport.Eventually(t, timeout, what, fn)
}
