package agenttest

import (
	"io"
	"net"
	"testing"
)

// Send dials addr and writes raw on the new connection, which it returns
// for the caller to read and close: the tests' raw HTTP, which a client
// library would not send (bytes as they are, a client that hangs up).
func Send(t testing.TB, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, raw); err != nil {
		_ = c.Close()
		t.Fatal(err)
	}
	return c
}
