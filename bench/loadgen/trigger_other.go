//go:build !unix

package loadgen

import "os/exec"

// setProcessGroup is a no-op where process groups are not available; the
// default cancellation kills only the shell.
func setProcessGroup(*exec.Cmd) {}
