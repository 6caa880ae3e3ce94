package pool

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr/funcr"
)

// TestRequestKey: the two front ends' keys of one request agree (the
// query left out), and differ by method and path.
func TestRequestKey(t *testing.T) {
	k := KeyOf("GET", "/crash?x=1")
	if b := KeyOfBytes("GET", []byte("/crash?y=2")); b != k {
		t.Errorf("KeyOfBytes(GET /crash?y=2) = %x, KeyOf(GET /crash?x=1) = %x: want one key", b, k)
	}
	for _, other := range []RequestKey{KeyOf("POST", "/crash"), KeyOf("GET", "/crash/"), KeyOf("GET", "/")} {
		if other == k {
			t.Errorf("a different request has the key of GET /crash")
		}
	}
	if KeyOf("", "") == 0 {
		t.Error("a key is 0, which means none")
	}
}

// TestExcuseLocked: past maxExcused young deaths in a row, only a run of
// deaths all in requests of one key, none of them answered, with another
// key answered by a worker ready since the run began, is excused.
func TestExcuseLocked(t *testing.T) {
	crash, root, slow := KeyOf("GET", "/crash"), KeyOf("GET", "/"), KeyOf("GET", "/slow")
	start := time.Unix(1000, 0)
	before := &Worker{readyAt: start.Add(-time.Second)}
	after := &Worker{readyAt: start.Add(time.Second)}
	type answer struct {
		w   *Worker
		key RequestKey
	}
	for _, c := range []struct {
		name     string
		deaths   []RequestKey
		answered []answer // after the first death
		excused  []bool
		ofKey    int // deaths excused as the run's request of death
	}{
		{"one key, another answered", []RequestKey{crash, crash, crash, crash}, []answer{{after, root}},
			[]bool{true, true, true, true}, 2},
		{"one key, nothing else answered", []RequestKey{slow, slow, slow}, nil, []bool{true, true, false}, 0},
		{"one key, another answered only by a worker older than the run", []RequestKey{crash, crash, crash},
			[]answer{{before, root}}, []bool{true, true, false}, 0},
		{"one key, which was answered too", []RequestKey{slow, slow, slow}, []answer{{after, root}, {after, slow}},
			[]bool{true, true, false}, 0},
		{"two keys", []RequestKey{crash, root, crash}, []answer{{after, slow}}, []bool{true, true, false}, 0},
		{"unknown key", []RequestKey{0, 0, 0}, []answer{{after, root}}, []bool{true, true, false}, 0},
		{"a second key after the run was excused", []RequestKey{crash, crash, crash, slow, crash}, []answer{{after, root}},
			[]bool{true, true, true, false, false}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &Pool{}
			ofKey := 0
			for i, k := range c.deaths {
				excused, byKey := p.excuseLocked(start.Add(time.Duration(i)*time.Millisecond), k)
				if excused != c.excused[i] {
					t.Errorf("death %d excused %v, want %v", i+1, excused, c.excused[i])
				}
				if byKey {
					ofKey++
				}
				if i == 0 {
					for _, a := range c.answered {
						a.w.key = a.key
						p.answeredLocked(a.w)
					}
				}
			}
			if ofKey != c.ofKey {
				t.Errorf("%d deaths excused as a request of death, want %d", ofKey, c.ofKey)
			}
		})
	}
}

// TestExcuseUnproven: a death of a revision not yet known to stay up is
// excused when it is the first of a run (it starts one), or the request of
// death of the run under way (deadlyUnproven: answers of other requests
// by any process count), and then counts in the run; any other leaves the
// run as it was.
func TestExcuseUnproven(t *testing.T) {
	crash, root := KeyOf("GET", "/crash"), KeyOf("GET", "/")
	now := time.Now()
	deadly := excusedDeaths{n: 3, key: crash, other: true, answered: true}
	for _, c := range []struct {
		name           string
		run            excusedDeaths
		key            RequestKey
		excused, ofKey bool
		want           excusedDeaths // the run after
	}{
		{"the run's request of death", deadly, crash, true, true, excusedDeaths{n: 4, key: crash, other: true, answered: true}},
		{"answered by processes ready before the run", excusedDeaths{n: 1, key: crash, answered: true}, crash, true, true,
			excusedDeaths{n: 2, key: crash, answered: true}},
		{"another request", deadly, root, false, false, deadly},
		{"an unknown request", deadly, 0, false, false, deadly},
		{"no run: the first death starts one", excusedDeaths{}, crash, true, false, excusedDeaths{n: 1, since: now, key: crash}},
		{"no run, an unknown request", excusedDeaths{}, 0, true, false, excusedDeaths{n: 1, since: now}},
		{"a run of several requests", excusedDeaths{n: 3, other: true, answered: true}, crash, false, false,
			excusedDeaths{n: 3, other: true, answered: true}},
		{"its request answered too", excusedDeaths{n: 3, key: crash, answered: true, keyServed: true}, crash, false, false,
			excusedDeaths{n: 3, key: crash, answered: true, keyServed: true}},
		{"nothing else answered", excusedDeaths{n: 1, key: crash}, crash, false, false, excusedDeaths{n: 1, key: crash}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.run
			excused, byKey := r.excuseUnproven(now, c.key)
			if excused != c.excused || byKey != c.ofKey {
				t.Errorf("excused %v, as the request of death %v; want %v, %v", excused, byKey, c.excused, c.ofKey)
			}
			if r != c.want {
				t.Errorf("the run became %+v, want %+v", r, c.want)
			}
		})
	}
}

// TestTakeLockedKeepsTheKeyOfADeath: a worker keeps the key of its one
// request; with two at once, none; and once its process was found exited
// under a request (Release), a request handed the dead worker before its
// exit is recorded does not take that one's place.
func TestTakeLockedKeepsTheKeyOfADeath(t *testing.T) {
	crash, root := KeyOf("GET", "/crash"), KeyOf("GET", "/")
	w := &Worker{}
	if w.takeLocked(crash); w.key != crash {
		t.Fatalf("one request at the worker: key %x, want its own", w.key)
	}
	if w.takeLocked(root); w.key != 0 {
		t.Fatalf("two requests at the worker: key %x, want none", w.key)
	}
	w = &Worker{}
	w.takeLocked(crash)
	w.sessions--
	w.inRequest = true // Release found its process exited
	if w.takeLocked(root); w.key != crash {
		t.Fatalf("a request handed the dead worker took the key of the one it died in")
	}
}

// BenchmarkKeyOfBytes is what the front end's request path pays for a
// request's key.
func BenchmarkKeyOfBytes(b *testing.B) {
	target := []byte("/api/v1/items/12345?page=2")
	for b.Loop() {
		_ = KeyOfBytes("GET", target)
	}
}

// TestDiedInBoundsTheLoggedRequest: the request of death is logged with
// its method and path cut (both are the client's: a method may be any
// token up to the headers' limit), a path cut between characters, not
// inside one.
func TestDiedInBoundsTheLoggedRequest(t *testing.T) {
	var logged []string
	p := &Pool{log: funcr.New(func(_, args string) { logged = append(logged, args) }, funcr.Options{})}
	long := strings.Repeat("X", 10000)
	path := "/" + strings.Repeat("a", maxLoggedPath-2) + "é/rest" // é straddles the cut
	w := &Worker{ofKey: true}
	p.DiedIn(w, long, path)
	method, rest, _ := strings.Cut(w.diedIn, " ")
	if len(method) > maxLoggedMethod+len("...") || !strings.HasSuffix(method, "...") {
		t.Errorf("a %d-byte method is logged as %d bytes (%.30q), want it cut at %d", len(long), len(method), method, maxLoggedMethod)
	}
	if len(rest) > maxLoggedPath+len("...") || !utf8.ValidString(rest) || !strings.HasSuffix(rest, "a...") {
		t.Errorf("a %d-byte path is logged as %q, want it cut before the character that straddles byte %d", len(path), rest, maxLoggedPath)
	}
	if len(logged) != 1 || len(logged[0]) > 2*(maxLoggedMethod+maxLoggedPath)+200 {
		t.Errorf("logged %d lines (%.80q...), want one, of bounded length", len(logged), logged)
	}
}

// TestInFlight: what the log says of the requests a stopping worker did
// not finish: their count, and how long it has had one without a pause.
func TestInFlight(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	cases := []struct {
		name     string
		sessions int
		since    time.Duration
		want     int
		wantBusy string
	}{
		{"none", 0, time.Hour, 0, ""},
		{"one, 90s old", 1, 90 * time.Second, 1, "1m30s"},
		{"three, to 10ms", 3, 1234567 * time.Microsecond, 3, "1.23s"},
	}
	for _, c := range cases {
		w := &Worker{sessions: c.sessions, busySince: now.Add(-c.since)}
		if n, busy := w.inFlightLocked(now); n != c.want || busy != c.wantBusy {
			t.Errorf("%s: %d, %q; want %d, %q", c.name, n, busy, c.want, c.wantBusy)
		}
	}
}

// TestTakeNotesBusySince: busySince is when the worker went from no
// request to one, kept while others join.
func TestTakeNotesBusySince(t *testing.T) {
	w := &Worker{capacity: 2}
	w.takeLocked(0)
	first := w.busySince
	if first.IsZero() {
		t.Fatal("busySince not set by the first request")
	}
	w.takeLocked(0)
	if w.busySince != first {
		t.Errorf("busySince moved with a second request: %v, was %v", w.busySince, first)
	}
}
