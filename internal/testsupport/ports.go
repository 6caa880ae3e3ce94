package testsupport

import (
	"net"
	"testing"
)

// FreePort is a TCP port on 127.0.0.1 that nothing listens on as it
// returns.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePortOn(t, "127.0.0.1")
}

// FreePortOn is a TCP port on ip that nothing listens on as it returns:
// the kernel's pick, listened on and closed. Another process may take it
// before the test listens there; the tests live with that.
func FreePortOn(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
