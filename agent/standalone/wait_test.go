package standalone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/statusview"
)

// dieAfterBoot makes the app's processes boot, be ready, and exit with
// status 3 after seconds, as an app whose thread loses its database does.
func (s *site) dieAfterBoot(t *testing.T, seconds string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.root, "passenger_wsgi.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _ = io.WriteString(f, "\nimport threading, sys, os\n"+
		"threading.Timer("+seconds+", lambda: (print('lost the database', file=sys.stderr, flush=True), os._exit(3))).start()\n")
}

// TestWaitOutlastsTheCrashWindow: restart --wait (WaitRestart) ends a
// restart only once the new revision has lived the crash window, as the
// manager does in a cluster. A healthy restart ends with the revision
// lasted (the pool's RevisionLasted); a revision whose processes are ready
// and die 5 s later, once every old process is replaced, ends in the
// resistance's error, not in success. Before, the wait returned nil as the
// last step's process was ready, and the pool resisted the revision a
// moment later.
func TestWaitOutlastsTheCrashWindow(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rev, err := r.client.Restart(ctx, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	settled := 0
	settling := func() { settled++ }
	if err := WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, settling); err != nil {
		t.Fatalf("a healthy restart: %v", err)
	}
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Apps[0].Pool; !p.RevisionLasted || p.Revision != rev {
		t.Errorf("after the wait of a healthy restart, revision %s lasted=%v; want revision %s lasted", p.Revision,
			p.RevisionLasted, rev)
	}
	if settled != 1 {
		t.Errorf("the wait said %d times that it waits for the crash window; want once", settled)
	}

	s.dieAfterBoot(t, "5")
	rev, err = r.client.Restart(ctx, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	err = WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, nil)
	if !errors.Is(err, ErrResisting) || !strings.Contains(err.Error(), "exited with status 3") ||
		!strings.Contains(err.Error(), "lost the database") {
		t.Fatalf("wait on a revision whose processes die 5s after boot: %v; want the resistance's error", err)
	}
}

// TestWaitGivenUpSaysWhatItWaitedFor: a wait whose context ends (restart
// --timeout) before the restart does says what it waited for, after how
// long, and where the pool stood, not Go's bare "context deadline
// exceeded"; it still wraps it. The new revision's processes hang in
// their import until the test ends.
func TestWaitGivenUpSaysWhatItWaitedFor(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	f, err := os.OpenFile(filepath.Join(s.root, "passenger_wsgi.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(f, "\nimport time\nwhile True:\n    time.sleep(1)\n")
	f.Close()
	rev, err := r.client.Restart(context.Background(), "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, nil)
	var gu *GaveUpError
	if !errors.As(err, &gu) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past its deadline: %v; want a GaveUpError wrapping the deadline", err)
	}
	want := "waiting for hello to run revision " + rev + ": 0 of 3 processes run it, 1 more spawning; the rolling restart has replaced 0 of 2"
	if !strings.HasPrefix(err.Error(), "gave up after ") || !strings.Contains(err.Error(), want) ||
		strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("the wait's error: %v\nwant \"gave up after ... %s\"", err, want)
	}
}

// TestStatusWhileResistingWithNoOldProcess: a revision edited in place
// whose processes die 5 s after they are ready, resisted once the restart
// had replaced every old process, leaves no old process to serve, and the
// replacements resistance spawns, of the old revision's app block, load
// the same code. The wait's error and the status say so, and say the
// processes died soon after they were ready, and the status marks the
// replacements as spawned while resisting. Before, both said "failed to
// spawn" and "Old processes keep serving", and the status listed the
// replacements as "(old)", as if they were old processes serving on.
func TestStatusWhileResistingWithNoOldProcess(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.dieAfterBoot(t, "5")
	rev, err := r.client.Restart(ctx, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	err = WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, nil)
	if !errors.Is(err, ErrResisting) {
		t.Fatalf("wait: %v; want resistance", err)
	}
	for _, want := range []string{"revision " + rev + " died soon after it was ready: exited with status 3",
		"No old process is left to serve"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the wait's error lacks %q: %v", want, err)
		}
	}
	// Resistance spawns a process of the old revision in place of each of
	// the new one's that dies.
	a := r.waitStatus(t, "a process spawned while resisting", func(a AppStatus) bool {
		for _, p := range a.Pool.Processes {
			if a.Pool.Resisting != nil && p.Revision != rev && !p.StartedAt.Before(&a.Pool.Resisting.Time) {
				return true
			}
		}
		return false
	})
	var view strings.Builder
	if err := statusview.Write(&view, Header(StatusResponse{}), View(StatusResponse{Apps: []AppStatus{a}}), time.Now()); err != nil {
		t.Fatal(err)
	}
	out := view.String()
	for _, want := range []string{"Resisting deployment error: revision " + rev + " died soon after it was ready at ",
		"No old process is left to serve", "(old revision, spawned while resisting)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the status view lacks %q:\n%s", want, out)
		}
	}
	for _, wrong := range []string{"failed to spawn", "Old processes keep serving"} {
		if strings.Contains(out, wrong) {
			t.Errorf("the status view says %q:\n%s", wrong, out)
		}
	}
}

// TestWaitOnARevisionAskedForAgain: a revision whose restart ended
// incomplete (resistDeploymentErrors false), asked for again after the
// pool went back to the one its processes run, gets a fresh attempt, and
// restart --wait reports that attempt, not the earlier one's errors. The
// app is mended in between, so the new attempt completes. Before, the
// earlier attempt's lastRestart stayed until the new restart ended: in
// the status read right after the request, and, until the new restart
// started, the wait returned its "2 of 2 processes could not be
// replaced" at once.
func TestWaitOnARevisionAskedForAgain(t *testing.T) {
	s := newSite(t)
	s.resistNothing(t)
	r := run(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := st.Apps[0].Pool.Revision

	s.breakApp(t)
	if _, err := r.client.Restart(ctx, "hello", "r2"); err != nil {
		t.Fatal(err)
	}
	if err := WaitRestart(ctx, r.client, "hello", "r2", 50*time.Millisecond, nil); err == nil ||
		!strings.Contains(err.Error(), "2 of 2 processes could not be replaced") {
		t.Fatalf("wait on a broken revision, resistance off: %v", err)
	}
	// Back to the revision the processes still run: nothing to restart.
	if _, err := r.client.Restart(ctx, "hello", first); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(t, "the pool back at "+first, func(a AppStatus) bool {
		return a.Pool.Revision == first && a.Pool.Restart == nil
	})

	s.fixApp(t)
	if _, err := r.client.Restart(ctx, "hello", "r2"); err != nil {
		t.Fatal(err)
	}
	st, err = r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lr := st.Apps[0].Pool.LastRestart; lr != nil && lr.Revision == "r2" {
		t.Errorf("right after r2 was asked for again, lastRestart is the earlier attempt's: %+v", *lr)
	}
	if err := WaitRestart(ctx, r.client, "hello", "r2", 50*time.Millisecond, nil); err != nil {
		t.Fatalf("wait on r2 asked for again, the app mended: %v", err)
	}
}

// betweenDeaths wraps the transport of a client of the admin socket: a
// status in which hello's pool backs off from a failure (ScalingError
// set) is held back, and asked for again until one without comes, so that
// a wait through it reads a crash loop only between deaths, the
// replacement of the last one ready. held counts the statuses held back;
// shown is the last one let through.
type betweenDeaths struct {
	next  http.RoundTripper
	held  int
	shown pool.Status
}

func (b *betweenDeaths) RoundTrip(req *http.Request) (*http.Response, error) {
	for {
		resp, err := b.next.RoundTrip(req) // a GET: no body to send again
		if err != nil || req.URL.Path != "/v1/status" {
			return resp, err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		var st StatusResponse
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, err
		}
		if len(st.Apps) != 1 || st.Apps[0].Pool.ScalingError == nil {
			if len(st.Apps) == 1 {
				b.shown = st.Apps[0].Pool
			}
			resp.Body = io.NopCloser(bytes.NewReader(data))
			return resp, nil
		}
		b.held++
		// Polling the agent until the pool is between deaths: a wait on
		// that, which the pool does not announce.
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestWaitReadingOnlyBetweenDeathsEndsTheCrashLoop: with
// resistDeploymentErrors false, a revision whose process boots, is ready
// and dies 2 s later is respawned, backing off, for as long as it is
// asked for; restart --wait ends with "die soon after they are ready" at
// the second round of deaths. Here the wait reads the status only between
// deaths (betweenDeaths: never while the pool backs off, its ScalingError
// set; only once a replacement is ready and ScalingError cleared), and
// still ends so: it reads the count of failed rounds that the pool keeps
// then (spawnFailures), not ScalingError, which such a wait never sees.
func TestWaitReadingOnlyBetweenDeathsEndsTheCrashLoop(t *testing.T) {
	s := newSite(t)
	s.write(t, 1, "1")
	s.resistNothing(t)
	r := run(t, s)
	filter := &betweenDeaths{next: r.client.http.Transport}
	c := NewClient(r.client.Socket)
	// No timeout of the client's own: a status held back through a long
	// backoff is no agent that does not answer; the wait's ctx bounds it.
	c.http.Transport, c.http.Timeout = filter, 0
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s.dieAfterBoot(t, "2")
	rev, err := r.client.Restart(ctx, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	err = WaitRestart(ctx, c, "hello", rev, 50*time.Millisecond, nil)
	want := "processes of revision " + rev + " die soon after they are ready: exited with status 3"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "lost the database") {
		t.Fatalf("wait, reading only between deaths, on a revision whose processes die 2s after they are ready, not resisted: %v\nwant %q and the output",
			err, want)
	}
	if p := filter.shown; p.ScalingError != nil || p.SpawnFailures < 2 || p.Counts.Ready < 1 {
		t.Errorf("the wait ended on a status with scalingError %v, spawnFailures %d, %d ready; want it read between deaths "+
			"(no scalingError, a replacement ready) of the second round or later", p.ScalingError, p.SpawnFailures, p.Counts.Ready)
	}
	if filter.held == 0 {
		t.Errorf("no status was held back: the wait never missed a death")
	}
}
