//go:build race

package proxy

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// TestRawSocketIOOrdersForTheRaceDetector: what a goroutine did before a
// rawSocket's Write happened, for the race detector, before what the
// peer's goroutine does after reading it, as with net.Conn's Write.
func TestRawSocketIOOrdersForTheRaceDetector(t *testing.T) {
	c, peer := tcpPair(t)
	r := newRawSocket(c)
	var x int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		x = 1
		if _, err := r.Write([]byte("a")); err != nil {
			t.Error(err)
		}
	}()
	if _, err := peer.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if x != 1 { // a race, unless the Write's ordering is seen
		t.Error("x was not set before the byte came")
	}
	wg.Wait()
}

// TestRawSocketReadIsSeenByTheRaceDetector: a goroutine that writes a
// buffer a rawSocket's Read fills, unordered with it, is a race the
// detector reports, as it does with net.Conn's Read. The race is run in a
// child process: it fails the test it happens in.
func TestRawSocketReadIsSeenByTheRaceDetector(t *testing.T) {
	if os.Getenv("FERRY_RAWSOCK_RACE_CHILD") == "1" {
		c, peer := tcpPair(t)
		r := newRawSocket(c)
		buf := make([]byte, 8)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf[0] = 1
		}()
		time.Sleep(20 * time.Millisecond) // not an ordering: the race stays one
		if _, err := peer.Write([]byte("b")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRawSocketReadIsSeenByTheRaceDetector$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FERRY_RAWSOCK_RACE_CHILD=1")
	out, _ := cmd.CombinedOutput()
	if !bytes.Contains(out, []byte("WARNING: DATA RACE")) {
		t.Errorf("the race detector did not see the Read fill the buffer:\n%s", out)
	}
}
