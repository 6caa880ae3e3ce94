package testsupport

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestRunning: a process that runs runs; killed and not yet reaped (a
// zombie) it does not, nor once reaped.
func TestRunning(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !Running(pid) {
		t.Fatal("a sleeping process does not run, says Running")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	Eventually(t, time.Minute, "the killed process a zombie", func() error {
		if Running(pid) {
			return errors.New("still running")
		}
		return nil
	})
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Errorf("the zombie is gone before it was reaped: %v", err)
	}
	_ = cmd.Wait()
	if Running(pid) {
		t.Error("a reaped process runs, says Running")
	}
}
