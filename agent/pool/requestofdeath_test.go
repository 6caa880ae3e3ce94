package pool_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	"github.com/ferry-dev/ferry/bench/loadgen"
)

// TestRequestOfDeathDoesNotTakeAOneWorkerPoolDown: a client keeps sending
// a request that kills the worker (GET /crash: a bug, or an attacker) to a
// one-worker pool of a revision known to stay up, while another client
// asks for /. Each replacement dies young, on the same path, while the
// others are served: a request of death, not a crash loop. The pool (at
// minProcesses) replaces the worker at once every time, as Passenger and
// gunicorn do: no backoff, no scaling error, / served throughout, the bad
// path logged once. Before, the third young death in a row was taken as the app's and
// backed off, growing, and every user of the app got 503s meanwhile.
func TestRequestOfDeathDoesNotTakeAOneWorkerPoolDown(t *testing.T) {
	e, _ := startLasted(t, "t/deathurl")

	users := load(t, e.URL, 1) // GET /, answered 200 by a living worker
	const want = 8
	var deaths int
	var refused []string // /crash answered otherwise than by its worker's death
	for end := time.Now().Add(90 * time.Second); deaths < want && time.Now().Before(end); {
		code, body, err := fetch(e.URL + "/crash")
		switch {
		case err == nil && code == http.StatusBadGateway && strings.Contains(body, "exited while handling this request"):
			deaths++
		case len(refused) < 5:
			refused = append(refused, fmt.Sprintf("%d %q %v", code, body, err))
		}
		if s := e.Pool.Status(); s.ScalingError != nil {
			t.Fatalf("after %d requests of death: scaling error %+v (failures %d); want none: the app serves every other request",
				deaths, s.ScalingError, s.ScalingFailures)
		}
	}
	if deaths < want {
		t.Fatalf("%d of %d requests of death killed their worker; others answered: %v", deaths, want, refused)
	}
	e.servedThrough(t, users)
	e.loggedOnce(t, "GET /crash")
}

// TestRequestOfDeathOverHTTP10: as
// TestRequestOfDeathDoesNotTakeAOneWorkerPoolDown, with every request in
// HTTP/1.0, which net/http's server takes (the proxy's forward), not the
// front end: the answers that show the app serves its other paths are
// seen there too. Before they were, every request was an answer there by
// default; now none is until its head comes.
func TestRequestOfDeathOverHTTP10(t *testing.T) {
	e, _ := startLasted(t, "t/deathurl10")
	addr := strings.TrimPrefix(e.URL, "http://")
	for deaths := 1; deaths <= 8; deaths++ {
		if got := exchange(t, addr, "GET / HTTP/1.0\r\nHost: t\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.0 200 ") {
			t.Fatalf("before request of death %d, / got %.60q; want 200", deaths, got)
		}
		before := e.obs.died.Load()
		// A 502 saying its worker exited is sent once the pool was told
		// of the death (DiedIn): its report to the observer must come.
		got := exchange(t, addr, "GET /crash HTTP/1.0\r\nHost: t\r\n\r\n")
		if strings.HasPrefix(got, "HTTP/1.0 502 ") && strings.Contains(got, "exited while handling this request") &&
			!e.obs.diedSince(before, 30*time.Second) {
			t.Fatalf("request of death %d got %.120q, and the pool reported no death within 30 s", deaths, got)
		}
		if s := e.replaced(t, before); s.ScalingError != nil {
			t.Fatalf("after %d requests of death: scaling error %+v; want none: the app serves every other request", deaths, s.ScalingError)
		}
	}
	e.loggedOnce(t, "GET /crash")
}

// TestRequestOfDeathThroughADeploy: a client keeps sending a request of
// death to a one-worker pool while a new revision rolls out. The new
// revision has not shown yet that it stays up, and its deaths would count
// as a failed start (halting the rollout, the old revision resisting), but
// these are in the request of death the pool already took as one: they
// are excused. The rollout completes, / is served throughout, nothing
// counts as a failed spawn.
func TestRequestOfDeathThroughADeploy(t *testing.T) {
	e, cfg := startLasted(t, "t/deathdeploy")

	users := load(t, e.URL, 1)
	attack := func(until func() bool) {
		t.Helper()
		for end := time.Now().Add(90 * time.Second); !until(); {
			if time.Now().After(end) {
				t.Fatalf("attacking for 90 s: %+v", e.Pool.Status())
			}
			_, _, _ = fetch(e.URL + "/crash")
			if s := e.Pool.Status(); s.ScalingError != nil || s.Resisting != nil {
				t.Fatalf("scaling error %+v, resisting %+v (failures %d); want neither: the app serves every other request",
					s.ScalingError, s.Resisting, s.ScalingFailures)
			}
		}
	}
	attack(e.tookAsRequestOfDeath)
	cfg.Revision = "2"
	e.Pool.Update(cfg)
	rolled := func() bool {
		s := e.Pool.Status()
		return s.Restart == nil && s.Counts.Updated == s.Counts.Total && s.Counts.Total == 1
	}
	attack(rolled)
	// Revision 2's own processes, young, die in it too.
	deaths := e.obs.died.Load()
	attack(func() bool { return e.obs.died.Load() >= deaths+3 })
	if s := e.servedThrough(t, users); s.Processes[0].Revision != "2" {
		t.Errorf("serving revision %s, want 2", s.Processes[0].Revision)
	}
	e.loggedOnce(t, "GET /crash")
}

// TestBrokenRevisionThroughARequestOfDeath: the request of death of
// TestRequestOfDeathThroughADeploy goes on while a new revision rolls out
// that dies in every request: its deaths in other requests count as ever,
// and its rollout is stopped by them.
func TestBrokenRevisionThroughARequestOfDeath(t *testing.T) {
	e, cfg := startLasted(t, "t/deathbroken")
	for end := time.Now().Add(60 * time.Second); !e.tookAsRequestOfDeath(); {
		if time.Now().After(end) {
			t.Fatal("no request of death taken as one within a minute")
		}
		_, _, _ = fetch(e.URL + "/crash")
		_, _, _ = fetch(e.URL + "/")
	}
	flag := dieFlag(t)
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Revision = "2"
	cfg.Template.App.Env = append(cfg.Template.App.Env, env("DIE_IN_REQUEST_IF_EXISTS", flag))
	e.Pool.Update(cfg)
	for end := time.Now().Add(60 * time.Second); ; {
		s := e.Pool.Status()
		if s.Resisting != nil && s.Resisting.Revision == "2" || s.ScalingError != nil && s.ScalingError.Revision == "2" {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("revision 2 died in every request for a minute with nothing counted: %+v", s)
		}
		_, _, _ = fetch(e.URL + "/crash")
		_, _, _ = fetch(e.URL + "/")
	}
	e.book.Check(t)
}

// TestRequestOfDeathFromAClientThatHangsUp: the request of death of
// TestRequestOfDeathDoesNotTakeAOneWorkerPoolDown, from a client that
// sends it and closes its connection at once, as an attacker need not wait
// for an answer, and one that takes a moment to kill (/crash/late: the
// client is gone before the worker dies). The client's request
// was not answered (it proves nothing of the path being served), and the
// dying worker must not be handed the next request, which would take the
// blame (and fail). No backoff, / served throughout, the path logged.
func TestRequestOfDeathFromAClientThatHangsUp(t *testing.T) {
	e, _ := startLasted(t, "t/hangup")
	obs := e.obs
	addr := strings.TrimPrefix(e.URL, "http://")

	users := load(t, e.URL, 1)
	const want = 8
	for end := time.Now().Add(90 * time.Second); obs.died.Load() < want && time.Now().Before(end); {
		before := obs.died.Load()
		hangUp(t, addr, "GET /crash/late HTTP/1.1\r\nHost: t\r\n\r\n")
		if s := e.replaced(t, before); s.ScalingError != nil {
			t.Fatalf("after %d requests of death from clients that hung up: scaling error %+v (failures %d); "+
				"want none: the app serves every other request", obs.died.Load(), s.ScalingError, s.ScalingFailures)
		}
	}
	if n := obs.died.Load(); n < want {
		t.Fatalf("%d of %d requests of death killed their worker", n, want)
	}
	e.servedThrough(t, users)
	e.loggedOnce(t, "GET /crash/late")
}

// deathEnv is a pool of testdata/bootdie with its observer and log: the
// request-of-death tests'.
type deathEnv struct {
	*agenttest.Env
	obs  *observer
	book *agenttest.Logbook
	size int32 // its processes
}

// startDeath starts a deathEnv named name of size processes, standalone's
// (ResistEarlyCrashes) when resist, and returns it and its config once
// they are ready.
func startDeath(t *testing.T, name string, size int32, resist bool) (*deathEnv, pool.Config) {
	root, _ := filepath.Abs("testdata/bootdie")
	cfg := pool.Config{Name: name, Revision: "1", Template: agenttest.WSGIAt(root, size, size)}
	d := &deathEnv{obs: &observer{}, book: agenttest.NewLogbook(t), size: size}
	log := d.book.Logger()
	d.Env = agenttest.Start(t, cfg, agenttest.Options{Tick: 50 * time.Millisecond, Observer: d.obs, Log: &log,
		ResistEarlyCrashes: resist})
	d.WaitFor(t, 30*time.Second, "the processes ready", agenttest.Ready(size))
	return d, cfg
}

// startLasted starts a one-process deathEnv named name, and returns it
// and its config once its revision lasted.
func startLasted(t *testing.T, name string) (*deathEnv, pool.Config) {
	d, cfg := startDeath(t, name, 1, false)
	d.WaitFor(t, 30*time.Second, "the revision lasted", func(s pool.Status) bool { return s.RevisionLasted })
	return d, cfg
}

const requestOfDeathLogged = "Worker processes keep dying in requests to one path"

// replaced waits, after a request of death, for its worker's death (up to
// 5 s: the request may have found no worker to kill) while there were
// before deaths, as the pool reports it to its observer, then for the
// pool's one worker to be ready again, and returns the pool's status.
func (d *deathEnv) replaced(t *testing.T, before int64) pool.Status {
	t.Helper()
	d.obs.diedSince(before, 5*time.Second)
	return d.WaitFor(t, 30*time.Second, "the worker replaced", agenttest.Ready(1))
}

// tookAsRequestOfDeath: the pool logged a run's deaths as a request of
// death.
func (d *deathEnv) tookAsRequestOfDeath() bool { return len(d.book.Find(requestOfDeathLogged)) > 0 }

// servedThrough checks what a request of death must leave: no request of
// users (load on /) failed, every worker ready in the end, and no spawn
// counted as failed. It returns the pool's status.
func (d *deathEnv) servedThrough(t *testing.T, users func() *loadgen.Result) pool.Status {
	t.Helper()
	rep := users().Report()
	if rep.Failed != 0 || rep.Requests == 0 {
		t.Errorf("%d of %d requests to / failed (%v), want none: no worker died under one", rep.Failed, rep.Requests, rep.FirstFailure)
	}
	s := d.WaitFor(t, 30*time.Second, "the last worker replaced", agenttest.Ready(d.size))
	if s.ScalingFailures != 0 || s.LastSpawnError != nil || d.obs.failed.Load() != 0 {
		t.Errorf("scaling failures %d, last spawn error %+v, spawn failures counted %d; want none (every spawn succeeded)",
			s.ScalingFailures, s.LastSpawnError, d.obs.failed.Load())
	}
	return s
}

// loggedOnce checks the request of death was logged once, as request.
func (d *deathEnv) loggedOnce(t *testing.T, request string) {
	t.Helper()
	got := d.book.WaitFor(t, requestOfDeathLogged)
	if req, _ := got.Value("request"); req != request {
		t.Errorf("the request of death is logged as %v, want %s", req, request)
	}
	if n := len(d.book.Find(requestOfDeathLogged)); n != 1 {
		t.Errorf("the request of death logged %d times, want once", n)
	}
	d.book.Check(t)
}

// TestBotchedBodyIsNoAnswer: with request buffering off, a request whose
// client botches its body (a malformed chunk: 400; or stops sending it:
// 408) reached its worker, which gave no answer: it must not be taken as
// answered. Sent to the path of a request of death that kills once its
// whole body came (/crash/upload), it would pass for that path served,
// the run would be no request of death, and the deaths after it would
// back the pool off: a client could take the app down by sending, beside
// the request of death, the same request botched. No backoff, / served
// throughout.
func TestBotchedBodyIsNoAnswer(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	tmpl := agenttest.WSGIAt(root, 1, 1)
	tmpl.Proxy.RequestBuffering = ptr.To(false)
	e := agenttest.Start(t, pool.Config{Name: "t/botched", Revision: "1", Template: tmpl},
		agenttest.Options{Tick: 50 * time.Millisecond, Proxy: proxy.Options{RequestBodyTimeout: 300 * time.Millisecond}})
	e.WaitFor(t, 30*time.Second, "the revision lasted", func(s pool.Status) bool { return s.RevisionLasted })
	addr := strings.TrimPrefix(e.URL, "http://")

	users := load(t, e.URL, 1)
	const upload = "POST /crash/upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
	const want = 5
	for deaths := 0; deaths < want; deaths++ {
		if got := exchange(t, addr, upload+"Content-Length: 5\r\n\r\nhello"); !strings.Contains(got, "exited while handling this request") {
			t.Fatalf("request of death %d got %q, want its worker's death", deaths+1, got)
		}
		e.WaitFor(t, 30*time.Second, "the worker replaced", agenttest.Ready(1))
		if s := e.Pool.Status(); s.LastSpawnError != nil {
			t.Fatalf("after %d requests of death and two botched ones: spawn error %+v; "+
				"want none: the app serves every other request", deaths+1, s.LastSpawnError)
		}
		if deaths != 1 { // botched after the first young death: the first worker lasted, its death begins no run
			continue
		}
		for _, b := range []struct{ body, want string }{
			{"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", "HTTP/1.1 400"},
			{"Content-Length: 10\r\n\r\nhello", "HTTP/1.1 408"},
		} {
			if got := exchange(t, addr, upload+b.body); !strings.HasPrefix(got, b.want) {
				t.Fatalf("a botched body got %q, want %s", got, b.want)
			}
		}
	}
	if rep := users().Report(); rep.Failed != 0 || rep.Requests == 0 {
		t.Errorf("%d of %d requests to / failed (%v), want none", rep.Failed, rep.Requests, rep.FirstFailure)
	}
}

// TestRequestOfDeathMidAnswer: a request of death that kills its worker
// partway through the answer, after the client got part of it (an export
// that crashes halfway: /crash/midway), on both of the proxy's servers
// (HTTP/1.1: the front end; HTTP/1.0: net/http's; one key). The worker
// was at the request when it died: it must not be given back as free
// before its exit is known, or it is handed the next request (which it
// refuses, dead), its death is taken as no request's, and counted as a
// crash soon after ready: the pool backs off. No backoff, / served
// throughout, the path logged.
func TestRequestOfDeathMidAnswer(t *testing.T) {
	e, _ := startLasted(t, "t/midway")
	obs := e.obs
	addr := strings.TrimPrefix(e.URL, "http://")

	users := load(t, e.URL, 1)
	const want = 8
	for i := 0; obs.died.Load() < want; i++ {
		before := obs.died.Load()
		got := exchange(t, addr, "GET /crash/midway HTTP/1."+strconv.Itoa(1-i%2)+"\r\nHost: t\r\nConnection: close\r\n\r\n")
		if status, _, _ := strings.Cut(got, "\r\n"); !strings.HasSuffix(status, " 200 OK") || len(got) >= 4<<20 {
			t.Fatalf("request of death %d got %d bytes (%.40q), want 200 and its answer cut short", i+1, len(got), got)
		}
		if s := e.replaced(t, before); s.LastSpawnError != nil {
			t.Fatalf("after %d requests of death mid-answer: spawn error %+v; want none: the app serves every other request",
				obs.died.Load(), s.LastSpawnError)
		}
	}
	e.servedThrough(t, users)
	e.loggedOnce(t, "GET /crash/midway")
}

// exchange sends request on a new connection to addr and returns what
// comes back until the proxy closes it.
func exchange(t *testing.T, addr, request string) string {
	t.Helper()
	c := agenttest.Send(t, addr, request)
	defer func() { _ = c.Close() }()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

// hangUp sends request on a new connection to addr and closes it at once.
func hangUp(t *testing.T, addr, request string) {
	t.Helper()
	_ = agenttest.Send(t, addr, request).Close()
}

// TestDeathsInRequestsOnEveryPathBackOff: code of a revision known to stay
// up, broken in place so that every request kills its worker, whatever the
// path, is no request of death: the deaths come on several paths, and no
// other path is served. After maxExcused young deaths in a row the pool
// backs off, as for any crash loop.
func TestDeathsInRequestsOnEveryPathBackOff(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	flag := dieFlag(t)
	e := agenttest.Start(t, pool.Config{Name: "t/everypath", Revision: "1",
		Template: agenttest.WSGIAt(root, 1, 1, env("DIE_IN_REQUEST_IF_EXISTS", flag))},
		agenttest.Options{Tick: 50 * time.Millisecond})
	e.WaitFor(t, 30*time.Second, "the revision lasted", func(s pool.Status) bool { return s.RevisionLasted })
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var counted atomic.Bool
	for end := time.Now().Add(60 * time.Second); !counted.Load() && time.Now().Before(end); {
		for _, path := range []string{"/", "/crash", "/other"} {
			_, _, _ = fetch(e.URL + path)
			if s := e.Pool.Status(); s.ScalingFailures > 0 {
				counted.Store(true)
				if s.ScalingError == nil || !strings.Contains(s.ScalingError.Reason, "in a row") {
					t.Errorf("scaling error %+v, want one saying such deaths came in a row", s.ScalingError)
				}
				break
			}
		}
	}
	if !counted.Load() {
		t.Fatal("workers died in every request, on every path, for a minute with no death counted: want a backoff")
	}
}

// TestRequestOfDeathNeedsAnAnsweredRequest: code of a lasted revision
// broken in place so that every request hangs (a dependency gone dead)
// while one path kills its worker answers nothing: a request that
// maxRequestTime ended (504, its worker killed) was not answered, and is
// no sign that the app serves others. The deaths on the one path count
// from the third, as any crash loop's; they are no request of death.
func TestRequestOfDeathNeedsAnAnsweredRequest(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	flag := dieFlag(t)
	tmpl := agenttest.WSGIAt(root, 1, 1, env("HANG_IF_EXISTS", flag))
	tmpl.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
	e := agenttest.Start(t, pool.Config{Name: "t/hangdie", Revision: "1", Template: tmpl},
		agenttest.Options{Tick: 50 * time.Millisecond})
	e.WaitFor(t, 30*time.Second, "the revision lasted", func(s pool.Status) bool { return s.RevisionLasted })
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var timedOut int
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); {
		_, _, _ = fetch(e.URL + "/crash")
		if s := e.Pool.Status(); s.ScalingFailures > 0 {
			if s.ScalingError == nil || !strings.Contains(s.ScalingError.Reason, "in a row") {
				t.Errorf("scaling error %+v, want one saying such deaths came in a row", s.ScalingError)
			}
			return
		}
		if code, _, _ := fetch(e.URL + "/"); code == http.StatusGatewayTimeout {
			timedOut++
		}
	}
	t.Fatalf("workers died in every request to /crash for a minute while every other request hung (%d ended by maxRequestTime) "+
		"with no death counted: want a backoff, nothing was answered", timedOut)
}

// fetch is a GET that returns its failure rather than failing the test.
func fetch(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
