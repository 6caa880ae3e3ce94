package testsupport

import (
	"net"
	"strconv"
	"testing"

	"github.com/ferry-dev/ferry/internal/freeport"
)

// FreePort is a TCP port on 127.0.0.1 that nothing listens on as it
// returns.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePortOn(t, "127.0.0.1")
}

// FreeAddr is 127.0.0.1:FreePort, an address to give a server to bind.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// FreePortOn is freeport.On(ip), failing the test on an error. Another
// process may take the port before the test listens there; the tests
// live with that.
func FreePortOn(t testing.TB, ip string) int {
	t.Helper()
	port, err := freeport.On(ip)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
