package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// markerVar is set in every server's environment so that the stop sweep
// finds its processes even when they left the process group.
const markerVar = "FERRYBENCH_RUN"

// serverSpec is how to run one server process.
type serverSpec struct {
	// Name is what logs and errors call the server.
	Name string
	Argv []string
	Dir  string
	// Env is added to the base environment (basicEnv).
	Env []string
	// StopSignal stops the server cleanly; StopTimeout bounds the wait
	// before the whole process group is killed.
	StopSignal  syscall.Signal
	StopTimeout time.Duration
	// Log receives the server's stdout and stderr.
	Log string
	// SweepPath: a process whose command line contains it is the run's,
	// and is killed by the sweep if still alive after the stop.
	SweepPath string
}

// server is a running server.
type server struct {
	spec   serverSpec
	cmd    *exec.Cmd
	marker string
	exited chan struct{}
	err    error // the exit, once exited is closed
}

// basicEnv is the environment every server gets: Debian's PATH first (not
// pyenv's shims: every server runs Debian's /usr/bin/python3), HOME, LANG.
func basicEnv() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + os.Getenv("HOME"),
		"LANG=C.UTF-8",
	}
}

func startServer(spec serverSpec) (*server, error) {
	logf, err := os.OpenFile(spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	var b [8]byte
	_, _ = rand.Read(b[:])
	s := &server{spec: spec, marker: hex.EncodeToString(b[:]), exited: make(chan struct{})}
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = append(append(basicEnv(), spec.Env...), markerVar+"="+s.marker)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	s.cmd = cmd
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// PID is the server's main process.
func (s *server) PID() int { return s.cmd.Process.Pid }

// Exited is closed when the main process has exited.
func (s *server) Exited() <-chan struct{} { return s.exited }

// exitError describes an early exit, pointing at the log.
func (s *server) exitError() error {
	err := s.err
	if err == nil {
		err = errors.New("exit status 0")
	}
	return fmt.Errorf("%s exited early (%w); see %s", s.spec.Name, err, s.spec.Log)
}

// Stop stops the server with its stop signal, kills its process group
// after StopTimeout, then sweeps up any of its processes still alive and
// returns what the sweep found.
func (s *server) Stop() []string {
	sig := s.spec.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	timeout := s.spec.StopTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	pgid := s.cmd.Process.Pid
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(timeout):
	}
	// Whatever is left in the group (workers that outlived their master)
	// goes too; a clean stop leaves nothing here.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.exited
	return sweep(s.marker, s.spec.SweepPath)
}

// sweep kills every process carrying marker in its environment or path on
// its command line, and describes them.
func sweep(marker, path string) []string {
	var found []int
	var desc []string
	for _, pid := range allPIDs() {
		if pid == os.Getpid() {
			continue
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if (marker != "" && bytes.Contains(env, []byte(markerVar+"="+marker))) ||
			(path != "" && bytes.Contains(cmdline, []byte(path))) {
			found = append(found, pid)
			desc = append(desc, fmt.Sprintf("pid %d: %s", pid, strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))))
		}
	}
	if len(found) == 0 {
		return nil
	}
	for _, pid := range found {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		alive := 0
		for _, pid := range found {
			if processAlive(pid) {
				alive++
			}
		}
		if alive == 0 {
			return desc
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range found {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return desc
}

// processAlive: the process exists and is not a zombie.
func processAlive(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, ok := bytes.Cut(st, []byte(") "))
	return ok && len(rest) > 0 && rest[0] != 'Z'
}

func allPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// parentPID reads a process's parent from /proc.
func parentPID(pid int) (int, error) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return 0, fmt.Errorf("pid %d: odd stat", pid)
	}
	f := strings.Fields(string(st[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("pid %d: odd stat", pid)
	}
	return strconv.Atoi(f[1])
}

// portFree reports whether nothing accepts on 127.0.0.1:port.
func portFree(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}

// shortTempDir makes a world-traversable directory under /tmp for Unix
// sockets, whose paths must stay short.
func shortTempDir() (string, error) {
	d, err := os.MkdirTemp("", "fb")
	if err != nil {
		return "", err
	}
	return d, os.Chmod(d, 0o755)
}

// copyFile copies src to dst, world-readable.
func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
