package standalone

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAdminSocketIsNeverOpenToOthers: under a umask that leaves new
// files open to everyone (0), no other user can connect to the admin
// socket at any moment: not when its listen has just returned (before
// any chmod), nor once listenAdmin returns (mode 0600). Each is a real
// connect by nobody, at that moment: a socket bound at its final path
// before a chmod would take that connection, and the agent would accept
// it, restarts and all.
func TestAdminSocketIsNeverOpenToOthers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("another user connects as nobody: run as root, as make test and CI do")
	}
	dir, err := os.MkdirTemp("", "fadmin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // as a state directory: anyone may traverse it
		t.Fatal(err)
	}
	path := filepath.Join(dir, "admin.sock")

	defer syscall.Umask(syscall.Umask(0))
	listened := 0
	afterAdminListen = func(bound string) {
		if listened++; listened > 1 {
			return
		}
		if connectsAsNobody(t, bound) {
			t.Errorf("nobody connected to the admin socket %s as its listen returned", bound)
		}
	}
	defer func() { afterAdminListen = nil }()
	l, err := listenAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if listened != 1 {
		t.Fatalf("the listen hook ran %d times, want once", listened)
	}

	if connectsAsNobody(t, path) {
		t.Errorf("nobody connected to the admin socket %s", path)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("admin socket: %v, %v; want mode 600", st, err)
	}
	c, err := net.Dial("unix", path) // its own user still may
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	// Another agent's socket, put there since the check that none was, is
	// kept, and this one refused.
	if _, _, err := listenPrivately(path); !errors.Is(err, errInUse) {
		t.Errorf("listening again on %s: %v, want refused as in use", path, err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Errorf("the first admin socket, after another was refused: %v", err)
	} else {
		_ = c.Close()
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || entries[0].Name() != "admin.sock" {
		t.Errorf("%s holds %v, want the admin socket alone", dir, names(entries))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the closed admin socket is still at %s (%v)", path, err)
	}
}

// connectsAsNobody tells whether a process of user nobody connects to
// the unix socket at path; it fails the test unless the connect either
// succeeds or is refused for want of permission.
func connectsAsNobody(t *testing.T, path string) bool {
	t.Helper()
	cmd := exec.Command(systemPython(t), "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    sys.exit(3)
`, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		return false
	}
	t.Fatalf("connecting to %s as nobody: %v\n%s", path, err, out)
	return false
}

// systemPython is the python3 every user may run (not root's pyenv shim,
// which a PATH may name first).
func systemPython(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		if p := filepath.Join(dir, "python3"); unix.Access(p, unix.X_OK) == nil {
			return p
		}
	}
	t.Fatal("no python3 in /usr/local/bin, /usr/bin or /bin: make test installs Debian's")
	return ""
}

// TestAdminSocketPathLength: the socket, first made in a directory beside
// its path (a longer path), is bound through that directory's descriptor,
// so any path a unix socket may have is taken, up to 107 bytes; a longer
// one is refused, saying so.
func TestAdminSocketPathLength(t *testing.T) {
	dir, err := os.MkdirTemp("", "flen")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// A long directory, where the socket is first made in a longer one.
	longest := filepath.Join(dir, strings.Repeat("d", 107-len(dir)-len("/admin.sock")-1), "admin.sock")
	l, err := listenAdmin(longest)
	if err != nil {
		t.Fatalf("listening on a path of %d bytes: %v", len(longest), err)
	}
	c, err := net.Dial("unix", longest)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	_ = l.Close()
	_, err = listenAdmin(longest + "x")
	if err == nil || !strings.Contains(err.Error(), "too long a path for a unix socket (at most 107 bytes)") {
		t.Errorf("listening on a path of 108 bytes: %v, want refused as too long", err)
	}
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestTwoAgentsStartingOnAStaleSocket: two agents start at once where a
// dead agent's admin socket is, and both find it dead. The one paused
// just before removing it (slow) must not remove the socket the other
// (quick) has linked meanwhile, as if it were the dead one: slow finds
// quick's socket live and is refused, and quick stays reachable at the
// path. Before, slow removed whatever was at the path and linked its
// own: both ran, and quick could not be reached.
func TestTwoAgentsStartingOnAStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	deadSocket(t, path)
	var quick net.Listener
	var quickErr error
	removals := 0
	beforeAdminRemove = func() {
		if removals++; removals == 1 { // slow, about to remove the dead socket
			quick, quickErr = listenAdmin(path)
		}
	}
	defer func() { beforeAdminRemove = nil }()
	slow, err := listenAdmin(path)
	if slow != nil {
		defer slow.Close()
	}
	if quickErr != nil {
		t.Fatalf("the agent that started while the other was about to remove the dead socket: %v", quickErr)
	}
	defer quick.Close()
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("the agent paused before removing the dead socket: %v, want refused as in use (the other's socket is there, live)", err)
	}
	answers(t, path, quick)
}

// TestClosedAdminSocketKeepsTheNextAgents: an agent started while another
// closes its admin socket (in its drain) finds that socket dead and puts
// its own there; the closing one must not then remove the new one.
func TestClosedAdminSocketKeepsTheNextAgents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	first, err := listenAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	next := startsOnClose(t, path)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	answers(t, path, next())
}

// startsOnClose starts an agent's admin socket at path the moment the
// first removal of an admin socket is about to be made (the closing
// agent's own), and returns a function giving that agent's listener.
func startsOnClose(t *testing.T, path string) func() net.Listener {
	t.Helper()
	var next net.Listener
	var nextErr error
	started := false
	beforeAdminRemove = func() {
		if !started {
			started = true
			next, nextErr = listenAdmin(path)
		}
	}
	t.Cleanup(func() {
		beforeAdminRemove = nil
		if next != nil {
			_ = next.Close()
		}
	})
	return func() net.Listener {
		t.Helper()
		if !started || nextErr != nil {
			t.Fatalf("the agent started as the other closed (started: %t): %v", started, nextErr)
		}
		return next
	}
}

// answers checks that the admin socket at path is l's, and answers.
func answers(t *testing.T, path string, l net.Listener) {
	t.Helper()
	if st, err := os.Lstat(path); err != nil || !os.SameFile(st, l.(*adminListener).linked) {
		t.Fatalf("the socket at %s (%v) is not the running agent's", path, err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the running agent's admin socket: %v", err)
	}
	_ = c.Close()
}

// deadSocket leaves at path the socket of an agent that died.
func deadSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	_ = l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
}
