package spawn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

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
		inode, ok := listenerOn(tc.line, 0x1F90)
		if ok != tc.want || ok && inode != "4242" {
			t.Errorf("%s: %q, %v; want %v", tc.name, inode, ok, tc.want)
		}
	}
}

// procHex writes ip as /proc/net/tcp does: each 32-bit word of the
// network-order address printed as a number in the host's byte order.
func procHex(ip net.IP) string {
	var b strings.Builder
	for i := 0; i < len(ip); i += 4 {
		fmt.Fprintf(&b, "%08X", uint32(ip[i])|uint32(ip[i+1])<<8|uint32(ip[i+2])<<16|uint32(ip[i+3])<<24)
	}
	return b.String()
}

// TestListenerOwner, on this machine's /proc: a worker's own listener is
// its; one of this test's, on 127.0.0.1 or [::], is not; a port nobody
// listens on cannot be told.
func TestListenerOwner(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}})
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	if got := listenerOwner(p.PID, portOf(t, p.Address)); got != ownerWorker {
		t.Errorf("the worker's own port: %v, want ownerWorker", got)
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		l, err := net.Listen(network, ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if got := listenerOwner(p.PID, l.Addr().(*net.TCPAddr).Port); got != ownerOther {
			t.Errorf("%s: a port this test listens on: %v, want ownerOther", network, got)
		}
	}
	free, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	releasePort(free)
	if got := listenerOwner(p.PID, free); got != ownerUnknown {
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
			"signal.signal(signal.SIGTERM, lambda *a: child.terminate())\n" + // killGroup cannot reach it
			"sys.exit(child.wait())", "$(PORT)"}})
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	if got := listenerOwner(p.PID, portOf(t, p.Address)); got != ownerWorker {
		t.Errorf("the port of the worker's child in its own session: %v, want ownerWorker", got)
	}
}

// TestSpawnCommandOnATakenPort: a worker whose port another process took
// first fails to bind it, and the spawn fails saying so; the other
// process's answers to the readiness probe do not make it ready.
func TestSpawnCommandOnATakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), ReadHeaderTimeout: time.Second}
	go func() { _ = other.Serve(l) }()
	defer other.Close()
	port := l.Addr().(*net.TCPAddr).Port
	pickPort = func() (int, error) { return port, nil }
	defer func() { pickPort = freePort }()

	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}, ReadinessPath: "/"})
	p, err := Spawn(context.Background(), spec)
	if err == nil {
		p.Stop(5 * time.Second)
		t.Fatal("the spawn succeeded on a port another process answers on")
	}
	var se *Error
	want := fmt.Sprintf("its port 127.0.0.1:%d was taken by a process outside the worker", port)
	if !errors.As(err, &se) || !strings.HasPrefix(se.Reason, "exited with status 1 before it was ready") ||
		!strings.Contains(se.Reason, want) || !strings.Contains(se.Output, "Address already in use") {
		t.Errorf("err = %v, want an exit, %q, and the worker's bind error", err, want)
	}
}
