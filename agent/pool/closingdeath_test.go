package pool_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
)

// TestNothingJudgedOfADeathWhileThePoolCloses: a worker dies in a
// request (GET /crash/gate) while its pool closes, waiting for the
// requests under way, as the second death in that request of a new
// revision, the app having answered / in between: open, the pool would
// take the run as a request of death. Closing, it judges nothing: the
// exit line says only where the worker died, and no line says the pool
// took a request of death (nothing is spawned to excuse it for). Before,
// the pool recorded the death in the run as ever, and logged "Worker
// processes keep dying in requests to one path ..." as the agent stopped.
func TestNothingJudgedOfADeathWhileThePoolCloses(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	gate := gatePath(t)
	if err := os.WriteFile(gate, nil, 0o644); err != nil { // /crash/gate kills at once
		t.Fatal(err)
	}
	obs := &observer{}
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	e := agenttest.Start(t, pool.Config{Name: "t/closingdeath", Revision: "1", Template: agenttest.WSGIAt(root, 1, 1, env("GATE", gate))},
		agenttest.Options{Tick: 50 * time.Millisecond, Observer: obs, Log: &log})
	e.WaitFor(t, 30*time.Second, "a ready worker", agenttest.Ready(1))

	// The run's first death, excused; its replacement answers /.
	if code, body, err := fetch(e.URL + "/crash/gate"); code != http.StatusBadGateway {
		t.Fatalf("GET /crash/gate = %d %q (%v), want 502: its worker died", code, body, err)
	}
	if !obs.diedSince(0, 30*time.Second) {
		t.Fatal("GET /crash/gate got 502, and the pool reported no death within 30 s")
	}
	e.WaitFor(t, 30*time.Second, "the worker replaced", agenttest.Ready(1))
	if code, body, err := fetch(e.URL + "/"); code != http.StatusOK {
		t.Fatalf("GET / = %d %q (%v), want 200", code, body, err)
	}
	if s := e.Pool.Status(); s.RevisionLasted || s.ScalingError != nil {
		t.Fatalf("lasted %v, scaling error %+v; want a young revision, its death in a request excused", s.RevisionLasted, s.ScalingError)
	}

	// The second, at a worker the closing pool waits for.
	if err := os.Remove(gate); err != nil {
		t.Fatal(err)
	}
	second := agenttest.GetLater(e.URL + "/crash/gate")
	e.WaitFor(t, 30*time.Second, "the request at the worker", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	})
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.Pool.Close(ctx)
	}()
	book.WaitFor(t, "Closing pool: waiting for the requests under way")
	// The premise: a revision still unproven at the second death. Had a
	// process of it lasted the crash window by now (a slow machine), that
	// death would be taken as its request's directly, and the test would
	// pass without the fix.
	if e.Pool.Status().RevisionLasted {
		t.Fatal("the revision lasted before its second death: the premise is gone")
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if a := <-second; a.Code != http.StatusBadGateway {
		t.Fatalf("GET /crash/gate while the pool closed = %d %q (%v), want 502: its worker died", a.Code, a.Body, a.Err)
	}
	<-closed // every exit handled and logged, and the proxy told of the death (DiedIn) before its 502

	if got := book.Find(requestOfDeathLogged); len(got) != 0 {
		t.Errorf("logged %q as the pool closed; want nothing judged of a death then", got[0].Msg)
	}
	if deaths := book.Find("Worker exited "); len(deaths) != 2 || deaths[1].Msg != "Worker exited while handling a request" {
		t.Errorf("deaths logged %v, want two, the one as the pool closed saying where it died alone", deaths)
	}
	book.Check(t)
}
