package standalone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestReloadOntoTakenPortKeepsServing: the file moves an AppGroup to a
// port another program holds. The reload fails and says why, and the
// AppGroup goes on serving on its old port: a reload that cannot be
// applied changes nothing.
func TestReloadOntoTakenPortKeepsServing(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	oldURL := s.url() + "/"
	taken := testsupport.FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", taken))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	oldPort := s.port
	s.port = taken
	s.write(t, 2, "1")
	err = r.client.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("reload onto a taken port: %v", err)
	}
	st, err := r.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Apps) != 1 || st.Apps[0].Listen != fmt.Sprintf("127.0.0.1:%d", oldPort) {
		t.Errorf("after a failed move the agent serves %+v, want hello on its old port %d", st.Apps, oldPort)
	}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := fresh.Get(oldURL)
	if err != nil {
		t.Fatalf("after a reload onto a taken port, the AppGroup serves on neither port: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET on the old port: %d", resp.StatusCode)
	}

	// Once the port is free, a reload moves the AppGroup there, without a
	// moment in which it serves on neither port. A loop of its own, not
	// testsupport.Eventually: it samples, every 20ms so as not to miss a
	// gap, what must hold throughout the move, and fails at once.
	l.Close()
	stop := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		defer close(failed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ok := false
			for _, u := range []string{oldURL, s.url() + "/"} {
				if resp, err := fresh.Get(u); err == nil {
					resp.Body.Close()
					ok = ok || resp.StatusCode == 200
				}
			}
			if !ok {
				failed <- fmt.Errorf("served on neither port during the move")
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if err := r.client.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(t, "ready on the new port", func(a AppStatus) bool {
		return a.Listen == fmt.Sprintf("127.0.0.1:%d", taken) && a.Pool.Counts.Ready >= a.Pool.MinProcesses
	})
	close(stop)
	if err := <-failed; err != nil {
		t.Error(err)
	}
	if code, _ := get(t, s.url()+"/"); code != 200 {
		t.Errorf("GET on the new port = %d", code)
	}
}

// TestReloadToNewRootRestartsOnce: a reload points the AppGroup at another
// root (a new release directory) that holds a tmp/restart.txt of its own,
// as a deploy that touched it leaves it. The new root rolls the AppGroup to
// the new revision once; the restart file, which did not change, must not
// roll it again.
func TestReloadToNewRootRestartsOnce(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	release := filepath.Join(s.dir, "release2")
	if out, err := exec.Command("cp", "-r", s.root, release).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(release, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(release, "tmp", "restart.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.file, []byte(strings.Replace(string(data), "root: app}", "root: release2}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.client.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := r.waitStatus(t, "the new root rolled out", func(a AppStatus) bool {
		return a.Root == release && a.Pool.Restart == nil && a.Pool.LastRestart != nil && a.Pool.Counts.Updated == a.Pool.Counts.Total
	})
	// A sleep that stays: what must not come is a second roll, and there is
	// nothing to wait on, as a poll that finds the restart file unchanged
	// does and says nothing a test can see. Ten polls' time (every 100ms
	// here), after which a roll would show in the status.
	time.Sleep(time.Second)
	b := r.waitStatus(t, "status", func(AppStatus) bool { return true })
	if b.Pool.Revision != a.Pool.Revision || strings.Contains(b.Pool.Revision, "+") {
		t.Errorf("a reload to a new root rolled twice: %s, then %s", a.Pool.Revision, b.Pool.Revision)
	}
}

// TestReloadToNewPortKeepsProcesses: a new listen.port is no revision. As
// in a cluster, the AppGroup's processes serve on at the new port, on the
// revision a restart gave them: a move respawns nothing, and so cannot
// take down a pool whose old processes resist a broken deploy.
func TestReloadToNewPortKeepsProcesses(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	rev, err := r.client.Restart(context.Background(), "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	before := r.waitStatus(t, "restarted", func(a AppStatus) bool {
		return a.Pool.Revision == rev && a.Pool.Restart == nil && a.Pool.Counts.Ready >= 2 &&
			a.Pool.Counts.Updated == a.Pool.Counts.Total
	})
	pids := func(a AppStatus) map[int32]bool {
		m := map[int32]bool{}
		for _, p := range a.Pool.Processes {
			m[p.PID] = true
		}
		return m
	}
	s.port = testsupport.FreePort(t)
	s.write(t, 2, "1")
	if err := r.client.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := r.waitStatus(t, "on the new port", func(a AppStatus) bool {
		return a.Listen == fmt.Sprintf("127.0.0.1:%d", s.port) && a.Pool.Counts.Ready >= 2
	})
	if after.Pool.Revision != rev {
		t.Errorf("after a move the pool runs revision %s, want %s (a port is no revision)", after.Pool.Revision, rev)
	}
	if got, want := pids(after), pids(before); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a move the processes are %v, want the same as before, %v", got, want)
	}
	if code, _ := get(t, s.url()+"/"); code != 200 {
		t.Errorf("GET on the new port = %d", code)
	}
}

// TestShutdownAfterMoveDrainsTheOldPort: a request still on the old port
// when the agent shuts down after a move is drained like one on the new
// port: the pool closes only once the old proxy's requests are done, not
// under them (a 503 "shutting down" to a request the agent had taken).
func TestShutdownAfterMoveDrainsTheOldPort(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	req := agenttest.StartHalfSentEcho(t, fmt.Sprintf("127.0.0.1:%d", s.port))

	s.port = testsupport.FreePort(t)
	s.write(t, 2, "1")
	if err := r.client.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(t, "on the new port", func(a AppStatus) bool {
		return a.Listen == fmt.Sprintf("127.0.0.1:%d", s.port)
	})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		r.stop()
	}()
	// The stop under way: the new port's proxy, which holds no request,
	// has shut down; the old one's request keeps the pool open.
	testsupport.Eventually(t, time.Minute, "the new port closed by the stop", func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
			return errors.New("it still accepts connections")
		}
		return nil
	})
	select {
	case <-stopped:
		t.Error("the agent stopped while a request on its old port was in flight")
	default:
	}
	req.Finish(t)
	testsupport.Receive(t, 2*time.Minute, "the agent stopped once the old port's request was done", stopped)
}

// TestStatusDuringMoves: status may be asked while reloads move the
// AppGroup from port to port (run with -race: a.addr and a.proxy change).
func TestStatusDuringMoves(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = r.srv.Status()
		}
	}()
	for range 3 {
		s.port = testsupport.FreePort(t)
		s.write(t, 2, "1")
		if err := r.srv.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	testsupport.Receive(t, 2*time.Minute, "the status reader's last Status returned", done)
	if st := r.srv.Status(); len(st.Apps) != 1 || st.Apps[0].Listen != fmt.Sprintf("127.0.0.1:%d", s.port) {
		t.Errorf("status after the moves: %+v, want hello on port %d", st.Apps, s.port)
	}
}

// TestMoveBackAtOnce: a reload may move the AppGroup back to the port it
// just left, however soon: the old port is closed by the time the move
// returns, not whenever its drain gets to run (bind: address already in
// use, about one time in sixty).
func TestMoveBackAtOnce(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	ports := []int{s.port, testsupport.FreePort(t)}
	for i := range 200 {
		s.port = ports[(i+1)%2]
		s.write(t, 2, "1")
		if err := r.srv.Reload(); err != nil {
			t.Fatalf("move %d, to %d: %v", i+1, s.port, err)
		}
	}
	if code, _ := get(t, s.url()+"/"); code != 200 {
		t.Errorf("GET after the moves = %d", code)
	}
}
