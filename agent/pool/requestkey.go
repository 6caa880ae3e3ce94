package pool

import (
	"bytes"
	"hash/maphash"
	"strings"
	"time"
	"unicode/utf8"
)

// RequestKey is a digest of a request's method and path (its target
// without the query), which the proxy hands Acquire: the pool keeps, for
// each worker with one request at it, that request's key, so that a run of
// young deaths all in requests of one key, while others are answered, is
// taken as a request of death and not as the app's crash loop
// (excusedDeaths). A hash, not the text: the front end has the target
// only as bytes of a buffer it reuses, and a string of it would cost an
// allocation on every request. 0 is no key (a caller that has none).
type RequestKey uint64

var keySeed = maphash.MakeSeed()

// KeyOf is the key of a request of method to target.
func KeyOf(method, target string) RequestKey {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	return mixKey(maphash.String(keySeed, method), maphash.String(keySeed, target))
}

// KeyOfBytes is KeyOf for a target the caller has as bytes; the same
// request has the same key either way.
func KeyOfBytes(method string, target []byte) RequestKey {
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	return mixKey(maphash.String(keySeed, method), maphash.Bytes(keySeed, target))
}

// mixKey combines the hashes of a method and a path; never 0.
func mixKey(method, path uint64) RequestKey {
	return RequestKey((method*0x9e3779b97f4a7c15 ^ path) | 1)
}

// takeLocked gives w one more request, of key. The worker keeps the key
// only while that request is alone at it: with several, which of them a
// death was in is not known. Once its process was found exited under a
// request (Release), the key of that request stays, whatever is handed
// the dead worker before its exit is recorded.
func (w *Worker) takeLocked(key RequestKey) {
	w.sessions++
	if w.sessions == 1 {
		w.busySince = time.Now()
	}
	switch {
	case w.inRequest:
	case w.sessions == 1:
		w.key = key
	default:
		w.key = 0
	}
}

// excusedDeaths is the run of young deaths in a request of a lasted
// revision, from the first until a worker readied after it lasted or
// served until it was recycled (servedLocked).
type excusedDeaths struct {
	n     int       // deaths of the run excused
	since time.Time // the run's first death
	// key is the request every death of the run was in; 0 once they were
	// in requests of several keys, or in one whose key is not known.
	key RequestKey
	// other: a worker ready since the run began answered a request of
	// another key (the app serves, as of now); answered: any worker did
	// (deadlyUnproven); keyServed: a worker answered one of key (it does
	// not kill every process it reaches).
	other, answered, keyServed bool
	// logged: the run's request of death was logged
	// (noteRequestOfDeathLocked).
	logged bool
}

// maxExcused is how many young deaths in a request in a row are taken as
// the requests' (a request of death, now and then) before the pool takes
// them as its app's, and backs off, unless the run is of one request of
// death (deadly): otherwise it cannot tell a client that keeps sending a
// request that kills from an app that dies on its own under load, or code
// of a proven revision broken in place.
const maxExcused = 2

// deadly: every death of the run was in a request of one key, which no
// worker answered, while a worker ready since the run began answered
// another: the request kills the processes, not the app. An app that dies
// on its own dies in requests of any key (or answers none but the one it
// gets), and code broken in place answers no other.
func (r *excusedDeaths) deadly() bool { return r.key != 0 && r.other && !r.keyServed }

// excuseLocked: a young death in a request of key, of a revision that
// lasted, is the request's, unless maxExcused such deaths came in a row
// and the run is not of one request of death (deadly). ofKey: it was
// excused as the run's request of death.
func (p *Pool) excuseLocked(now time.Time, key RequestKey) (excused, ofKey bool) {
	r := &p.excused
	if r.n == 0 {
		*r = excusedDeaths{since: now, key: key}
	} else if key != r.key {
		r.key = 0
	}
	switch {
	case r.n < maxExcused:
	case r.deadly():
		ofKey = true
	default:
		return false, false
	}
	r.n++
	return true, ofKey
}

// excuseUnproven: a young death in a request of key, of a revision not
// yet known to stay up. The first of a run is excused: one request of
// death, sent once, would otherwise halt a rollout, return a node to the
// revision before, or back a new app off, and a revision whose processes
// die on their own dies again, in other requests or in ones it also
// answers, and is then counted. A later one only when it is the request
// of death of the run (deadlyUnproven), which may be the one that killed
// the processes of the revisions before it too: a client that keeps
// sending it, through a deploy or at a new app, must not halt the
// rollout or take the app down. ofKey: excused as the run's request of
// death. Any other death of such a revision counts (watchExit), and does
// not change the run.
//
// So a revision that boots and dies, under load (a request at each
// process as it dies), is caught at its second death, not its first:
// meanwhile a process of the revision is spawned in the excused one's
// place as the pool's scaling asks and a rolling restart goes on, each
// such process failing at most the request it dies in (502), and a spawn
// of it in flight as the pool comes to resist it is stopped before it
// serves (errResisted). That is the
// price of not halting a rollout (in a cluster, returning a node) on one
// request of death, which a single death cannot tell from the app's own.
func (r *excusedDeaths) excuseUnproven(now time.Time, key RequestKey) (excused, ofKey bool) {
	switch {
	case r.n == 0:
		*r = excusedDeaths{since: now, key: key}
	case key != r.key || !r.deadlyUnproven():
		return false, false
	default:
		ofKey = true
	}
	r.n++
	return true, ofKey
}

// deadlyUnproven is deadly for a revision not yet known to stay up, whose
// processes are all young: that the app serves other requests may be
// shown by any process, not only by one ready since the run began. A
// client that sends the request of death in a loop kills the processes
// faster than their replacements boot; waiting for one of these to
// answer, the deaths between would count, and back a new app off until
// it answers nothing.
func (r *excusedDeaths) deadlyUnproven() bool {
	return r.key != 0 && r.answered && !r.keyServed // answered covers other (answeredLocked)
}

// answeredLocked notes, during a run of excused deaths, a request w
// answered: its process did not die under it. Only while it was the one
// request at w (w.key is known), and not once w was found faulty: a
// request that maxRequestTime ended (Overran) or that w refused
// (Unreachable) got no answer, and says nothing of the app serving:
// called by Release.
func (p *Pool) answeredLocked(w *Worker) {
	r := &p.excused
	switch {
	case w.key == r.key:
		r.keyServed = true
	case w.readyAt.After(r.since):
		r.other = true
		fallthrough
	default:
		r.answered = true
	}
}

// maxLoggedPath and maxLoggedMethod bound the path and method a request
// of death is logged with: they are the client's (a method may be any
// token the headers' limit allows).
const (
	maxLoggedPath   = 200
	maxLoggedMethod = 20
)

// DiedIn tells the pool the request the proxy had at w when w's process
// exited under it, for the log: the death is decided on by the request's
// key, when the exit is (watchExit), and the proxy may learn of it before
// or after. Called only for a request that failed so, off the request
// path.
func (p *Pool) DiedIn(w *Worker, method, path string) {
	request := cutForLog(method, maxLoggedMethod) + " " + LoggedPath(path)
	p.mu.Lock()
	if w.diedIn == "" {
		w.diedIn = request
	}
	p.noteRequestOfDeathLocked(w)
	p.mu.Unlock()
}

// noteRequestOfDeathLocked logs, once a run, the request that keeps
// killing workers, once both are known: that w's death was excused as the
// run's request of death (watchExit), and what the request was (DiedIn).
func (p *Pool) noteRequestOfDeathLocked(w *Worker) {
	if !w.ofKey || w.diedIn == "" || p.excused.logged {
		return
	}
	p.excused.logged = true
	p.log.Info("Worker processes keep dying in requests to one path while other requests are served: "+
		"taken as a request of death, not as the app crashing; each is taken as its request's, with no backoff",
		"request", w.diedIn, "pid", w.PID(), "revision", w.Revision, "deaths", p.excused.n)
}

// LoggedPath is a request's path as a log line shows it: cut at
// maxLoggedPath bytes, as the client chooses it, up to the headers'
// limit, and a log line per failed request must not carry kilobytes.
func LoggedPath(path string) string { return cutForLog(path, maxLoggedPath) }

// cutForLog is s cut to at most max bytes, then "...", at the start of a
// character, so that a cut path of valid UTF-8 stays valid.
func cutForLog(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
