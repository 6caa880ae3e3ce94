package agenttest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// HalfSentEcho is a POST /echo of "hello" whose head and first two body
// bytes are sent: the proxy has taken it and buffers its body, and asks
// its pool for a worker only once the rest comes (Finish).
type HalfSentEcho struct{ conn net.Conn }

// StartHalfSentEcho sends the first part of the request to addr, and
// returns once the agent has accepted its connection (acceptedOn): until
// then it is only in the kernel's queue, which a move's close of the
// listener resets.
func StartHalfSentEcho(t testing.TB, addr string) *HalfSentEcho {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := io.WriteString(conn, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhe"); err != nil {
		t.Fatal(err)
	}
	acceptedOn(t, conn.RemoteAddr().(*net.TCPAddr).Port)
	return &HalfSentEcho{conn: conn}
}

// acceptedOn waits until a connection to port has been accepted: an
// accepted socket has an inode in /proc/self/net/tcp, a queued one none.
func acceptedOn(t testing.TB, port int) {
	t.Helper()
	local := fmt.Sprintf(":%04X", port)
	testsupport.Eventually(t, time.Minute, fmt.Sprintf("a connection on port %d accepted", port), func() error {
		data, err := os.ReadFile("/proc/self/net/tcp")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st ... inode
			f := strings.Fields(line)
			if len(f) > 9 && strings.HasSuffix(f[1], local) && f[3] == "01" && f[9] != "0" {
				return nil
			}
		}
		return errors.New("none yet")
	})
}

// Finish sends the rest of the body and checks the answer is a 200 with
// the body echoed.
func (h *HalfSentEcho) Finish(t testing.TB) {
	t.Helper()
	if _, err := io.WriteString(h.conn, "llo"); err != nil {
		t.Fatalf("the proxy dropped the half-sent request: %v", err)
	}
	_ = h.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(h.conn), nil)
	if err != nil {
		t.Fatalf("no answer to the half-sent request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("the half-sent request got %d %q, want 200 \"hello\"", resp.StatusCode, body)
	}
}
