package statusview

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

func TestWrite(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.Time { return metav1.Time{Time: now.Add(-d)} }
	used, streaming := at(4*time.Second), at(57*time.Second)
	p := Pool{
		Title: "hello", Root: "/srv/hello", Listen: "0.0.0.0:8080", Revision: "2-abc", MinProcesses: 2, MaxProcesses: 4,
		QueueLength: 3,
		Restart:     &ferryv1.RestartProgress{Revision: "2-abc", Done: 1, Total: 2, ReplacingPID: 18334},
		Processes: []ferryv1.ProcessInfo{
			{PID: 29843, Revision: "2-abc", State: ferryv1.ProcessReady, Processed: 1, StartedAt: at(14 * time.Second),
				LastUsed: &used, MemoryBytes: 60 << 20},
			{PID: 18334, Revision: "1-def", State: ferryv1.ProcessDraining, Replacing: true, Sessions: 1, Processed: 2873,
				StartedAt: at(5*time.Hour + 53*time.Minute + 26*time.Second), CPUPercent: 3, MemoryBytes: 96 << 20,
				LastUsed: &streaming}, // its last request ended 57s ago; it is in another (a stream) now
		},
	}
	var b strings.Builder
	if err := Write(&b, Header{Agent: "ferry-agent test (standalone)"}, []Pool{p}, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"App groups : 1", "Processes  : 2",
		"hello:", "App root: /srv/hello", "Requests in queue: 3",
		"Rolling restart: 1 of 2 processes replaced, to revision 2-abc",
		"* PID: 29843   Sessions: 0       Processed: 1       Uptime: 0h 0m 14s",
		"CPU: 0%      Memory  : 60M     Last used: 4s ago",
		"* PID: 18334   Sessions: 1       Processed: 2873    Uptime: 5h 53m 26s",
		"CPU: 3%      Memory  : 96M     Last used: now",
		"State: Draining  Revision: 1-def (old)",
		"State: Ready     Revision: 2-abc\n",
		"Rolling restarting...",
	} {
		wantIn(t, out, "", want)
	}
	if strings.Count(out, "Rolling restarting...") != 1 {
		t.Errorf("the marker must be on the replaced process only:\n%s", out)
	}

	p.Restart = nil
	p.Resisting = &ferryv1.SpawnError{Revision: "3-fff", Reason: "the app failed to load: ModuleNotFoundError",
		Output: "Traceback (most recent call last):\nModuleNotFoundError: No module named 'x'", Time: metav1.Time{Time: now}}
	b.Reset()
	_ = Write(&b, Header{}, []Pool{p}, now)
	for _, want := range []string{"Resisting deployment error: revision 3-fff failed to spawn",
		"    | Traceback (most recent call last):", "    | ModuleNotFoundError: No module named 'x'"} {
		wantIn(t, b.String(), "", want)
	}
}

// TestWriteScalingRetryStartingAndNotes: a pool backing off says when it
// tries next, and that it goes on trying (in the words of the
// ScalingError condition), a process still spawning shows no pid (it has none yet; it
// read "PID: 0") and its state apart from the next label (it read
// "State: Spawning Revision:"), and the header's notes (a failed reload) are shown. The
// spawn's output is cut to its last 5 lines.
func TestWriteScalingRetryStartingAndNotes(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	next := now.Add(12 * time.Second)
	p := Pool{
		Title: "hello", Revision: "1-abc", MinProcesses: 1, MaxProcesses: 1,
		ScalingError: &ferryv1.SpawnError{Revision: "1-abc", Reason: "exited with status 3 200ms after it was ready",
			Output: "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\n"},
		ScalingRetryAt: &next,
		Processes:      []ferryv1.ProcessInfo{{Revision: "1-abc", State: ferryv1.ProcessSpawning}},
	}
	h := Header{Agent: "ferry-agent test (standalone)", Notes: []string{"Last reload failed at 2026-11-22T11:59:00Z; ...", "  spec.listen: Required value"}}
	var b strings.Builder
	if err := Write(&b, h, []Pool{p}, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Scaling error (backing off; next try in 12s): revision 1-abc died soon after it was ready: exited with status 3",
		"exited with status 3 200ms after it was ready\n    | line 3\n    | line 4\n    | line 5\n    | line 6\n    | line 7\n" +
			"    Spawns are retried with backoff, at most a minute apart, until one works or another revision is requested.\n",
		"* PID: -       Sessions: 0",
		"    State: Spawning  Revision: 1-abc\n",
		"Last reload failed at 2026-11-22T11:59:00Z; ...\n  spec.listen: Required value\n",
	} {
		wantIn(t, out, "", want)
	}
	if strings.Contains(out, "PID: 0") {
		t.Errorf("a spawning process shows pid 0:\n%s", out)
	}
}

// TestWriteIncomplete: a restart that left processes on an older revision
// (resistDeploymentErrors false) says how many, and why, each error's
// first line, at most three of them.
func TestWriteIncomplete(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	failed := ferryv1.SpawnError{Revision: "2-abc", Reason: "the app failed to load: ImportError\nsecond line", Output: "Traceback"}
	p := Pool{Title: "hello", Revision: "2-abc", MinProcesses: 2, MaxProcesses: 4,
		Incomplete: &Incomplete{Left: 4, Total: 4, Errors: []ferryv1.SpawnError{failed, failed, failed, failed},
			Details: "status --json: lastRestart.errors"},
		Processes: []ferryv1.ProcessInfo{{PID: 7, Revision: "1-def", State: ferryv1.ProcessReady}}}
	var b strings.Builder
	if err := Write(&b, Header{}, []Pool{p}, now); err != nil {
		t.Fatal(err)
	}
	want := "  Rolling restart incomplete: 4 of 4 processes could not be replaced and keep serving an older revision " +
		"(resistDeploymentErrors is false); they are tried again at the next revision:\n" +
		strings.Repeat("    - the app failed to load: ImportError\n", 3) +
		"    - and 1 more\n" +
		"    (status --json: lastRestart.errors, with each spawn's output.)\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("missing\n%s\nin:\n%s", want, b.String())
	}
	// A reload turned resistance on since: it was off for that restart.
	p.Incomplete.ResistsNow, p.Incomplete.Revision = true, "2-abc"
	b.Reset()
	_ = Write(&b, Header{}, []Pool{p}, now)
	if want = "an older revision (resistDeploymentErrors was false when revision 2-abc rolled); they are tried again"; !strings.Contains(b.String(), want) {
		t.Errorf("missing\n%s\nin:\n%s", want, b.String())
	}
	// An error with no output (a loader error before the app wrote a
	// line): the view points at the error, not at an empty output. Before,
	// the caller's Details said "with its output" whatever the error had.
	bare := ferryv1.SpawnError{Revision: "2-abc", Reason: "the app failed to load: no startup file"}
	p.Incomplete = &Incomplete{Left: 2, Total: 2, Errors: []ferryv1.SpawnError{bare},
		Details: "the last spawn's error; status --json: pools[].status.lastSpawnError"}
	b.Reset()
	_ = Write(&b, Header{}, []Pool{p}, now)
	want = "    - the app failed to load: no startup file\n" +
		"    (the last spawn's error; status --json: pools[].status.lastSpawnError.)\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("missing\n%s\nin:\n%s", want, b.String())
	}
	// The same with its output; and of several errors, some with output.
	withOut := bare
	withOut.Output = "Traceback"
	p.Incomplete.Errors = []ferryv1.SpawnError{withOut}
	b.Reset()
	_ = Write(&b, Header{}, []Pool{p}, now)
	if want = "(the last spawn's error; status --json: pools[].status.lastSpawnError, with its output.)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("missing\n%s\nin:\n%s", want, b.String())
	}
	p.Incomplete = &Incomplete{Left: 3, Total: 3, Errors: []ferryv1.SpawnError{bare, withOut, withOut},
		Details: "status --json: lastRestart.errors"}
	b.Reset()
	_ = Write(&b, Header{}, []Pool{p}, now)
	if want = "    (status --json: lastRestart.errors, with the output of 2 of them.)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("missing\n%s\nin:\n%s", want, b.String())
	}
	// More failed than the status keeps (a standalone restart keeps 16):
	// those not kept count in "and N more", and the pointer says which
	// it points at. Before, "and 13 more" and no word of the 4 not kept.
	sixteen := make([]ferryv1.SpawnError, 16)
	for i := range sixteen {
		sixteen[i] = failed
	}
	p.Incomplete = &Incomplete{Left: 20, Total: 20, Errors: sixteen, Failed: 20, Details: "status --json: lastRestart.errors"}
	b.Reset()
	_ = Write(&b, Header{}, []Pool{p}, now)
	want = "    - and 17 more\n" +
		"    (status --json: lastRestart.errors, the first 16 of 20, with each spawn's output.)\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("missing\n%s\nin:\n%s", want, b.String())
	}
	// No error known (a ProcessPool's last spawn error of another
	// revision): the sentence ends, with no list to come, and no pointer
	// at errors that are not there, Details or not.
	p.Incomplete = &Incomplete{Left: 1, Total: 2, Failed: 1, Details: "status --json: lastRestart.errors"}
	b.Reset()
	_ = Write(&b, Header{}, []Pool{p}, now)
	want = "they are tried again at the next revision.\n  * PID: 7 "
	if !strings.Contains(b.String(), want) {
		t.Errorf("missing\n%s\nin:\n%s", want, b.String())
	}
}

// TestWriteResistingWithNoOldProcess: resisting a revision whose
// processes died soon after they were ready, the view says they died, not
// that they failed to spawn; with an old process there from before, that
// it keeps serving; with none (only processes spawned since the pool came
// to resist, of the old revision), that none is left, and those are
// marked as spawned while resisting.
func TestWriteResistingWithNoOldProcess(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.Time { return metav1.Time{Time: now.Add(-d)} }
	resisted := &ferryv1.SpawnError{Revision: "2-abc", Reason: "exited with status 3 3s after it was ready",
		Output: "lost the database", Time: at(20 * time.Second)}
	before := ferryv1.ProcessInfo{PID: 10, Revision: "1-def", State: ferryv1.ProcessReady, StartedAt: at(time.Hour)}
	since := ferryv1.ProcessInfo{PID: 11, Revision: "1-def", State: ferryv1.ProcessReady, StartedAt: at(5 * time.Second)}
	write := func(procs ...ferryv1.ProcessInfo) string {
		var b strings.Builder
		p := Pool{Title: "hello", Revision: "2-abc", MinProcesses: 1, MaxProcesses: 2, Resisting: resisted, Processes: procs}
		if err := Write(&b, Header{}, []Pool{p}, now); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	out := write(before, since)
	for _, want := range []string{
		"Resisting deployment error: revision 2-abc died soon after it was ready at 2026-11-22T11:59:40Z: exited with status 3",
		"Old processes keep serving",
		"Revision: 1-def (old)\n",
		"Revision: 1-def (old revision, spawned while resisting)\n",
	} {
		wantIn(t, out, "with an old process: ", want)
	}
	out = write(since)
	if !strings.Contains(out, "No old process is left to serve") || strings.Contains(out, "Old processes keep serving") ||
		strings.Contains(out, "failed to spawn") {
		t.Errorf("with no old process:\n%s", out)
	}
}

// TestSpawnedResistingInTheSameSecond: a process of the old revision
// started in the second the pool came to resist, but before it did (spawned
// just before a restart whose first spawn failed at once),
// kept serving from before: with the agent's own times, to the
// nanosecond, it is not marked as spawned while resisting, and the old
// processes are said to keep serving; one started after, in that second,
// is marked. Before, both times were cut to whole seconds, and the first
// was marked too. Through JSON (metav1.Time: whole seconds, as the API
// server and the admin API carry them) the two tie, and count as spawned
// since, as before.
func TestSpawnedResistingInTheSameSecond(t *testing.T) {
	began := time.Date(2026, 11, 22, 12, 0, 0, 500_000_000, time.UTC)
	e := &ferryv1.SpawnError{Revision: "2-abc", Reason: "exited with status 1", Time: metav1.Time{Time: began}}
	before := ferryv1.ProcessInfo{PID: 10, Revision: "1-def", State: ferryv1.ProcessReady,
		StartedAt: metav1.Time{Time: began.Add(-300 * time.Millisecond)}}
	since := ferryv1.ProcessInfo{PID: 11, Revision: "1-def", State: ferryv1.ProcessReady,
		StartedAt: metav1.Time{Time: began.Add(200 * time.Millisecond)}}
	if spawnedResisting(before, e) {
		t.Errorf("a process started %s before the pool came to resist is marked as spawned while resisting",
			e.Time.Sub(before.StartedAt.Time))
	}
	if !spawnedResisting(since, e) {
		t.Errorf("a process started %s after the pool came to resist is not marked", since.StartedAt.Sub(e.Time.Time))
	}
	if note := ResistanceNote([]ferryv1.ProcessInfo{before}, e); !strings.HasPrefix(note, "Old processes keep serving") {
		t.Errorf("with a process from before: %q", note)
	}

	// As the status carries them.
	var carried struct {
		P ferryv1.ProcessInfo
		E ferryv1.SpawnError
	}
	data, err := json.Marshal(struct {
		P ferryv1.ProcessInfo
		E ferryv1.SpawnError
	}{before, *e})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &carried); err != nil {
		t.Fatal(err)
	}
	if !spawnedResisting(carried.P, &carried.E) {
		t.Errorf("in whole seconds, a process started in the second the pool came to resist is not counted as spawned since")
	}
}

// wantIn fails t when out lacks want; context starts the message.
func wantIn(t *testing.T, out, context, want string) {
	t.Helper()
	if !strings.Contains(out, want) {
		t.Errorf("%smissing %q in:\n%s", context, want, out)
	}
}
