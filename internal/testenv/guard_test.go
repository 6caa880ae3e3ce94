package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestControlPlaneDiesWithItsTestBinary: a test binary that panics with
// its control plane running leaves no etcd or kube-apiserver behind.
func TestControlPlaneDiesWithItsTestBinary(t *testing.T) {
	if os.Getenv("FERRY_TESTENV_PANIC") == "1" {
		env, err := Start(Options{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		fmt.Printf("dir=%s\n", env.dir)
		panic("a test that panics while its control plane runs")
	}

	// The child's output goes to a file: a pipe would be inherited by
	// the control plane, and reading it to its end would wait for that.
	outPath := filepath.Join(t.TempDir(), "out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestControlPlaneDiesWithItsTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FERRY_TESTENV_PANIC=1")
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	_ = out.Close()
	output, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^dir=(\S+)$`).FindSubmatch(output)
	if m == nil || !bytes.Contains(output, []byte("panic: a test that panics")) {
		t.Fatalf("the child did not start its control plane and panic (%v):\n%s", runErr, output)
	}
	dir := string(m[1]) + "/"
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	deadline := time.Now().Add(30 * time.Second)
	for {
		left := processesNaming(dir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
			t.Fatalf("30s after its test binary died, the control plane still runs: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type proc struct {
	pid     int
	cmdline string
}

func (p proc) String() string { return fmt.Sprintf("%d %s", p.pid, p.cmdline) }

// processesNaming lists the running processes whose command line has s.
func processesNaming(s string) []proc {
	entries, _ := os.ReadDir("/proc")
	var found []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(data) == 0 { // gone, or a zombie
			continue
		}
		if cmdline := strings.ReplaceAll(string(data), "\x00", " "); strings.Contains(cmdline, s) {
			found = append(found, proc{pid, cmdline})
		}
	}
	return found
}

// TestGuardWithoutPkillRefusesToStart: a guard that could not kill must
// not start silently (the shell would start, and fail only at the end).
func TestGuardWithoutPkillRefusesToStart(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	g, err := startGuard(t.TempDir())
	if err == nil {
		_ = g.stop()
		t.Fatal("a guard started without pkill")
	}
	if !strings.Contains(err.Error(), "needs pkill") {
		t.Fatalf("error %q does not say what is missing", err)
	}
}
