package freeport_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/ferry-dev/ferry/internal/freeport"
)

// TestLoopbackPortCanBeListenedOn: the port given is one the caller can
// then listen on.
func TestLoopbackPortCanBeListenedOn(t *testing.T) {
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listening on the port given, %d: %v", port, err)
	}
	_ = l.Close()
}

// TestOnAnAddressNotOfThisMachine: an address no interface has is an
// error, not a port.
func TestOnAnAddressNotOfThisMachine(t *testing.T) {
	if port, err := freeport.On("192.0.2.1"); err == nil { // TEST-NET-1
		t.Fatalf("got port %d on 192.0.2.1, want an error", port)
	}
}
