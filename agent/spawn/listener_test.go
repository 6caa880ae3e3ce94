package spawn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestListenerOn: the lines of /proc/net/tcp and tcp6 that are a socket
// listening for 127.0.0.1 on the port, in this machine's byte order.
func TestListenerOn(t *testing.T) {
	loopback, other := procHex(net.IPv4(127, 0, 0, 1).To4()), procHex(net.IPv4(10, 0, 0, 5).To4())
	mapped, v6loop := procHex(net.IPv4(127, 0, 0, 1).To16()), procHex(net.IPv6loopback)
	line := func(addr, port, state string) string {
		return fmt.Sprintf("   3: %s:%s 00000000:0000 %s 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0",
			addr, port, state)
	}
	for _, tc := range []struct {
		name, line string
		want       bool
	}{
		{"127.0.0.1", line(loopback, "1F90", "0A"), true},
		{"0.0.0.0", line("00000000", "1F90", "0A"), true},
		{"[::]", line(strings.Repeat("0", 32), "1F90", "0A"), true},
		{"[::ffff:127.0.0.1]", line(mapped, "1F90", "0A"), true},
		{"another address", line(other, "1F90", "0A"), false},
		{"[::1]", line(v6loop, "1F90", "0A"), false},
		{"another port", line(loopback, "1F91", "0A"), false},
		{"a connection, not a listener", line(loopback, "1F90", "01"), false},
		{"the header", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", false},
		{"garbage", line("zz", "1F90", "0A"), false},
	} {
		inode, uid, ok := listenerOn(tc.line, 0x1F90)
		if ok != tc.want || ok && (inode != "4242" || uid != "1000") {
			t.Errorf("%s: inode %q, uid %q, %v; want %v", tc.name, inode, uid, ok, tc.want)
		}
	}
}

// procHex writes ip as /proc/net/tcp does: each 32-bit word of the
// network-order address printed as a number in the host's byte order.
func procHex(ip net.IP) string {
	var b strings.Builder
	for i := 0; i < len(ip); i += 4 {
		fmt.Fprintf(&b, "%08X", binary.NativeEndian.Uint32(ip[i:]))
	}
	return b.String()
}

// TestListenerOwner, on this machine's /proc: a worker's own listener is
// its; another worker's, of the same user, is not; nor is one of this
// test's on 0.0.0.0 or [::] (IPv6 only: Go's tcp6), whose user differs
// when the test runs as root; a port nobody listens on cannot be told.
func TestListenerOwner(t *testing.T) {
	spawn := func() *Process {
		spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
			Command: []string{"python3", "server.py", "$(PORT)"}})
		p, err := Spawn(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(5 * time.Second) })
		return p
	}
	p, q := spawn(), spawn()
	if got := listenerOwner(p.PID, p.uid, portOf(t, p.Address)); got != ownerWorker {
		t.Errorf("the worker's own port: %v, want ownerWorker", got)
	}
	if got := listenerOwner(q.PID, q.uid, portOf(t, p.Address)); got != ownerOther {
		t.Errorf("another worker's port: %v, want ownerOther", got)
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		l, err := net.Listen(network, ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if got := listenerOwner(p.PID, p.uid, l.Addr().(*net.TCPAddr).Port); got != ownerOther {
			t.Errorf("%s: a port this test listens on: %v, want ownerOther", network, got)
		}
	}
	free, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	releasePort(free)
	if got := listenerOwner(p.PID, p.uid, free); got != ownerUnknown {
		t.Errorf("a port nobody listens on: %v, want ownerUnknown", got)
	}
}

// TestListenerOfAChildOutsideTheGroup: a worker whose server runs in a
// child that left the process group (a new session, as dumb-init starts
// its child) still owns its listener.
func TestListenerOfAChildOutsideTheGroup(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "-c", "import signal, subprocess, sys\n" +
			"child = subprocess.Popen(['python3', 'server.py', sys.argv[1]], start_new_session=True)\n" +
			"signal.signal(signal.SIGTERM, lambda *a: child.terminate())\n" + // signals to the group miss it
			"sys.exit(child.wait())", "$(PORT)"}})
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	if got := listenerOwner(p.PID, p.uid, portOf(t, p.Address)); got != ownerWorker {
		t.Errorf("the port of the worker's child in its own session: %v, want ownerWorker", got)
	}
}

// TestSpawnCommandOnATakenPort: a worker whose port another process took
// first fails to bind it, and the spawn fails saying so (after its tries
// on other ports, which the test gives the same); the other process's
// answers to the readiness probe do not make it ready.
func TestSpawnCommandOnATakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	p, err := spawnBehind(t, l, 0)
	if err == nil {
		p.Stop(5 * time.Second)
		t.Fatal("the spawn succeeded on a port another process answers on")
	}
	var se *Error
	want := fmt.Sprintf("its port %d was taken by another socket before it bound it", port)
	if !errors.As(err, &se) || !strings.HasPrefix(se.Reason, "exited with status 1 before it was ready") ||
		!strings.Contains(se.Reason, want) || !strings.Contains(se.Output, "Address already in use") {
		t.Errorf("err = %v, want an exit, %q, and the worker's bind error", err, want)
	}
}

// TestSpawnCommandOnATakenPortAnsweringSlowly: the worker exits (it could
// not bind) while a program of its own user, which took its port, is
// still answering the probe; that answer does not make the exited worker
// ready. The listener's user is the worker's, so only the worker's open
// files tell them apart; TestSpawnCommandWithTheDaemonSetsCapabilities
// runs this again where the agent cannot read those of a live worker.
// (The worker has exited by the time the answer comes, so it holds no
// file: /proc says another holds the listener, and the readiness loop's
// own refusal of an exited worker is a second guard this cannot single
// out.)
func TestSpawnCommandOnATakenPortAnsweringSlowly(t *testing.T) {
	ident, err := workerIdentity(t.Context(), "", WorkerUsers{})
	if err != nil {
		t.Fatal(err)
	}
	uid := os.Geteuid() // a non-root agent's workers are its own user
	if ident.cred != nil {
		uid = int(ident.cred.Uid)
	}
	p, err := spawnBehind(t, listenAs(t, uid), 500*time.Millisecond)
	if err == nil {
		exited := p.Exited()
		p.Stop(5 * time.Second)
		t.Fatalf("the spawn succeeded on a port another process answers on (the worker exited: %v)", exited)
	}
	var se *Error
	if !errors.As(err, &se) || !strings.HasPrefix(se.Reason, "exited with status 1 before it was ready") {
		t.Errorf("err = %v, want the worker's exit", err)
	}
}

// listenAs listens on 127.0.0.1 with a socket made as uid, as a program of
// that user would: /proc/net/tcp gives a socket the file system uid of
// the thread that made it, which is set here for that thread alone.
func listenAs(t *testing.T, uid int) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Setfsuid(uid); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	_ = unix.Setfsuid(os.Geteuid())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// spawnBehind serves HTTP on l, another program's listener, answering
// each request after delay, and spawns a Command worker given l's port,
// with a readiness path.
func spawnBehind(t *testing.T, l net.Listener, delay time.Duration) (*Process, error) {
	t.Helper()
	other := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		time.Sleep(delay)
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = other.Serve(l) }()
	t.Cleanup(func() { _ = other.Close() })
	givePort(t, l.Addr().(*net.TCPAddr).Port)
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}, ReadinessPath: "/"})
	return Spawn(context.Background(), spec)
}

// givePort makes port the next Command workers' (the package's tests do
// not run in parallel).
func givePort(t *testing.T, port int) {
	pickPort = func() (int, error) { return port, nil }
	t.Cleanup(func() { pickPort = freePort })
}

// TestSpawnCommandNextToAnIPv6OnlyListener: a socket on [::] that takes no
// IPv4 (Go's tcp6 sets IPV6_V6ONLY) shares its port with the worker's on
// 127.0.0.1, which the probe reaches: the worker is ready.
func TestSpawnCommandNextToAnIPv6OnlyListener(t *testing.T) {
	l, err := net.Listen("tcp6", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	givePort(t, port)

	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}})
	spec.StartTimeout = 10 * time.Second
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatalf("a worker that bound 127.0.0.1:%d and answers there was refused: %v", port, err)
	}
	p.Stop(5 * time.Second)
}

// TestSpawnCommandWithTheDaemonSetsCapabilities runs three tests again in
// a process with only the capabilities the agent's DaemonSet keeps (root,
// without CAP_SYS_PTRACE, so a worker's fds cannot be read): a worker is
// ready on its own port; one whose port a root process took is not; nor is
// one whose port a program of its own user took. It needs root, as the
// DaemonSet's agent runs, and as make test and CI do on this project's
// machines.
func TestSpawnCommandWithTheDaemonSetsCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test drops from root to the DaemonSet's capabilities: run it as root, as the agent runs")
	}
	caps := "-all,+chown,+dac_override,+fowner,+kill,+net_bind_service,+setgid,+setuid" // config/agent/agent.yaml
	cmd := exec.Command("setpriv", "--inh-caps=-all", "--bounding-set="+caps, "--",
		os.Args[0], "-test.run=^(TestSpawnCommand|TestSpawnCommandOnATakenPort|TestSpawnCommandOnATakenPortAnsweringSlowly)$",
		"-test.count=1", "-test.v")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Count(string(out), "--- PASS") != 3 {
		t.Fatalf("with the DaemonSet's capabilities: %v\n%s", err, out)
	}
}

// capturedTCP is /proc/net/tcp and tcp6 as captured while python3
// listened on 127.0.0.1:8000 (inode 168072) and [::1]:8001 (167906), with
// rows added: another process's listener on 0.0.0.0:9000, a connection to
// the first, a listener on the worker's $PORT 41234 (0xA112) and one on
// [::]:8000. The addresses are written in this machine's byte order
// (procHex), as the kernel writes them.
func capturedTCP() []string {
	lo, any4 := procHex(net.IPv4(127, 0, 0, 1).To4()), procHex(net.IPv4zero.To4())
	lo6, any6 := procHex(net.IPv6loopback), procHex(net.IPv6unspecified)
	row := func(sl, local, remote, st, uid, inode string) string {
		return fmt.Sprintf("%4s: %s %s %s 00000000:00000000 00:00000000 00000000 %5s        0 %s 1 00000000fbfde047 100 0 0 10 0", sl, local, remote, st, uid, inode)
	}
	tcp := strings.Join([]string{
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
		row("8", lo+":1F40", any4+":0000", "0A", "0", "168072"),
		row("9", any4+":2328", any4+":0000", "0A", "1000", "170001"),
		row("10", lo+":1F40", lo+":C822", "01", "0", "170002"),
		row("11", lo+":A112", any4+":0000", "0A", "0", "170003"),
	}, "\n") + "\n"
	tcp6 := strings.Join([]string{
		"  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
		row("0", lo6+":1F41", any6+":0000", "0A", "0", "167906"),
		row("1", any6+":1F40", any6+":0000", "0A", "0", "170004"),
	}, "\n") + "\n"
	return []string{tcp, tcp6}
}

// TestListensOf: the addresses the worker's sockets listen on, from
// /proc/net/tcp and tcp6: listeners only, its own only, and not one that
// takes its $PORT (bound since the last probe).
func TestListensOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		held []string
		want []string
	}{
		{"the app on another port", []string{"168072"}, []string{"127.0.0.1:8000"}},
		{"another process's listener is not the worker's", nil, nil},
		{"a connection is no listener", []string{"170002"}, nil},
		{"its $PORT, bound since the last probe", []string{"170003"}, nil},
		{"IPv6 loopback", []string{"167906"}, []string{"[::1]:8001"}},
		{"several, sorted", []string{"170004", "167906", "168072", "170002"}, []string{"127.0.0.1:8000", "[::1]:8001", "[::]:8000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held := map[string]bool{}
			for _, inode := range tc.held {
				held[inode] = true
			}
			if got := listensOf(capturedTCP(), held, 41234); !slices.Equal(got, tc.want) {
				t.Errorf("listensOf = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestListensInstead: where a worker listens instead of 127.0.0.1:$PORT,
// and what to do: another port wants $PORT, $PORT on another address
// wants 127.0.0.1.
func TestListensInstead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs []string
		want  string
	}{
		{"nowhere known", nil, ""},
		{"another port", []string{"127.0.0.1:8000"}, "it listens on 127.0.0.1:8000 instead; make it listen on $PORT (41234)"},
		{"$PORT on IPv6 loopback only", []string{"[::1]:41234"},
			"it listens on [::1]:41234 instead; make it listen on 127.0.0.1 (or every address) at $PORT (41234)"},
		{"many", []string{"127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003", "127.0.0.1:8004"},
			"it listens on 127.0.0.1:8000, 127.0.0.1:8001, 127.0.0.1:8002 and 2 more instead; make it listen on $PORT (41234)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := listensInstead(tc.addrs, 41234); got != tc.want {
				t.Errorf("listensInstead =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
