//go:build cgo && !osusergo

package spawn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hangingLibc makes libc's lookups hang, as a directory that does not
// answer makes them (sssd down, an LDAP server that takes the connection
// and says nothing), until the test ends; each says its call (getpwnam
// alice) on entered as it begins. answering are calls answered at once,
// none said on entered: getpwnam with libcAlice, the others with an
// error, "released", as a hanging call answers once released.
func hangingLibc(t *testing.T, answering ...string) (entered <-chan string) {
	release := make(chan struct{})
	return fakeLibc(t, func(enter func(call string)) libcCalls {
		answers := func(call string) bool {
			if slices.Contains(answering, call) {
				return true
			}
			enter(call)
			<-release
			return false
		}
		return libcCalls{
			getpwuid: func(uid string) (*user.User, error) {
				answers("getpwuid " + uid)
				return nil, errors.New("released")
			},
			getpwnam: func(name string) (*user.User, error) {
				if answers("getpwnam " + name) {
					return libcAlice, nil
				}
				return nil, errors.New("released")
			},
			getgrouplist: func(u *user.User) ([]string, error) {
				answers("getgrouplist " + u.Username)
				return nil, errors.New("released")
			},
			getgrgid: func(gid string) (*user.Group, error) {
				answers("getgrgid " + gid)
				return nil, errors.New("released")
			},
		}
	}, func() { close(release) })
}

// libcAlice is alice's entry (uid 1000) as the tests' fake libc answers it.
var libcAlice = &user.User{Uid: "1000", Gid: "1000", Username: "alice", HomeDir: "/home/alice"}

// libcEnteredRoom is how many calls a fake libc says on entered before
// the next blocks, waiting for the test to read one.
const libcEnteredRoom = 16

// fakeLibc swaps the package's libc, until the test ends, for the calls
// that fake makes, which say each call (getpwnam alice) on entered, by
// enter, as it begins. Cleanup runs release, which lets the calls still
// hanging return, waits for running's lookups to return and restores libc.
func fakeLibc(t *testing.T, fake func(enter func(call string)) libcCalls, release func()) (entered <-chan string) {
	calls := make(chan string, libcEnteredRoom)
	// libc is the package's, swapped here without a lock: safe because no
	// spawn test is parallel (none calls t.Parallel), so none looks a user
	// up meanwhile; the lookups left running took their call from it as
	// they began (libcUntil), and Cleanup waits for them before restoring it.
	saved := libc
	libc = fake(func(call string) { calls <- call })
	t.Cleanup(func() {
		release()
		running.wait() // the next test's lookups join none of these
		libc = saved
	})
	return calls
}

// wait waits for ls's lookups running to return.
func (ls *libcLookups) wait() {
	ls.mu.Lock()
	pending := make([]*libcLookup, 0, len(ls.pending))
	for _, l := range ls.pending {
		pending = append(pending, l)
	}
	ls.mu.Unlock()
	for _, l := range pending {
		<-l.done
	}
}

// TestLibcLookupsEndWithTheirContext: built with cgo, a lookup whose libc
// call hangs (NSS asking a directory that does not answer) ends with its
// context, the spawn's or the agent's start's, saying its cause and that
// the user databases did not answer, naming the user, as getent's does
// built without cgo; the call is left to return on its own. Each is
// checked as its caller words it: a spawn's user, by name and by uid, its
// groups, --worker-users; a failed spawn's owners are lookupUID's and
// lookupGID's own errors, which ownerNames, calling them with the spawn's
// context, shows as the number they could not name.
func TestLibcLookupsEndWithTheirContext(t *testing.T) {
	const nss = "the system's user databases (NSS) did not answer"
	for _, tt := range []struct {
		what      string
		answering []string // libc's calls answered; the others hang
		lookup    func(context.Context) error
		call      string // the call that hangs
		want      string // the error, before ": " and the cause
	}{
		{"a spawn's user by name", nil, func(ctx context.Context) error {
			_, err := rootIdentity(ctx, systemUsers, "alice", WorkerUsers{})
			return err
		}, "getpwnam alice", `user "alice": getpwnam alice: ` + nss},
		{"a spawn's user by uid", nil, func(ctx context.Context) error {
			_, err := rootIdentity(ctx, systemUsers, "4000", WorkerUsers{})
			return err
		}, "getpwuid 4000", `user 4000: getpwuid 4000: ` + nss},
		{"a spawn's user's groups", []string{"getpwnam alice"}, func(ctx context.Context) error {
			_, err := rootIdentity(ctx, systemUsers, "alice", WorkerUsers{})
			return err
		}, "getgrouplist alice", `user "alice": groups: getgrouplist alice: ` + nss},
		{"lookupUID, naming a failed spawn's owner", nil, func(ctx context.Context) error {
			_, err := lookupUID(ctx, "4000")
			return err
		}, "getpwuid 4000", `getpwuid 4000: ` + nss},
		{"lookupGID, naming a failed spawn's group", nil, func(ctx context.Context) error {
			_, err := lookupGID(ctx, "4000")
			return err
		}, "getgrgid 4000", `getgrgid 4000: ` + nss},
		{"--worker-users", nil, func(ctx context.Context) error {
			_, err := ParseWorkerUsers(ctx, "10000-19999,alice")
			return err
		}, "getpwnam alice", `worker users: user "alice": getpwnam alice: ` + nss},
	} {
		t.Run(tt.what, func(t *testing.T) {
			entered := hangingLibc(t, tt.answering...)
			cause := errors.New("the spawn was given up")
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			answered := make(chan error, 1)
			go func() { answered <- tt.lookup(ctx) }()
			select {
			case call := <-entered:
				if call != tt.call {
					t.Fatalf("libc was asked %s; want %s", call, tt.call)
				}
			case err := <-answered:
				t.Fatalf("%s: %v, libc's %s not asked", tt.what, err, tt.call)
			}
			cancel(cause)
			var err error
			select {
			case err = <-answered:
			case <-time.After(10 * time.Second): // a bound on the test's failing, not the lookup's
				t.Fatalf("%s: still waiting on libc's %s 10 s after its context ended", tt.what, tt.call)
			}
			if want := tt.want + ": " + cause.Error(); err == nil || err.Error() != want || !errors.Is(err, cause) {
				t.Errorf("%s: %v; want %q, wrapping the context's cause", tt.what, err, want)
			}
		})
	}
}

// TestLibcLookupsOfAKeyAreOneWhileItRuns: a libc lookup that hangs is
// joined by the next of its key, not run again, so that spawns tried
// again and again while a directory hangs leave one call a key running,
// not one a spawn (each a thread held in libc); another key's is its
// own, and once a lookup returns, its key's next asks libc again.
func TestLibcLookupsOfAKeyAreOneWhileItRuns(t *testing.T) {
	ls := newLibcLookups(time.Now)
	release := make(chan struct{})
	var calls atomic.Int32 // the joiner's, were it run: in start's goroutine, not the test's
	hangs := func() (any, error) { <-release; return "released", nil }
	first := ls.start("getpwnam alice", hangs)
	again := ls.start("getpwnam alice", func() (any, error) { calls.Add(1); return nil, nil })
	if again != first {
		t.Errorf("a second lookup of getpwnam alice while the first hangs was started, not joined")
	}
	other := ls.start("getpwnam bob", func() (any, error) { return "bob's", nil })
	<-other.done
	if other == first || other.val != "bob's" {
		t.Errorf("getpwnam bob, while getpwnam alice hangs: %v; want its own answer", other.val)
	}
	close(release)
	<-first.done
	if first.val != "released" || calls.Load() != 0 {
		t.Errorf("getpwnam alice answered %v, its joiner's call run %d times; want the first's answer, the joiner's never run", first.val, calls.Load())
	}
	next := ls.start("getpwnam alice", func() (any, error) { return "asked again", nil })
	<-next.done
	if next == first || next.val != "asked again" {
		t.Errorf("getpwnam alice once its lookup returned: %v; want libc asked again", next.val)
	}
}

// TestLibcLookupsStuckPastTheLimitAreAskedAgain: a libc lookup still
// running LookupStuckAfter after it began (an old nss_ldap, or nslcd with no
// timelimit, whose call never returns) is no longer joined: the next
// lookup of its key asks libc again, in a call of its own, which the
// lookups after it join, so that the key recovers with its directory
// rather than with the agent's restart, and a key holds at most one more
// thread a window. The stuck call's return, whenever it comes, leaves its
// successor's entry alone.
func TestLibcLookupsStuckPastTheLimitAreAskedAgain(t *testing.T) {
	for _, tt := range []struct {
		age    time.Duration // the stuck lookup's, when the next of its key comes
		joined bool
	}{
		{0, true},
		{LookupStuckAfter - time.Second, true},
		{LookupStuckAfter, false},
		{3 * LookupStuckAfter, false},
	} {
		t.Run(tt.age.String(), func(t *testing.T) {
			clock := time.Unix(1_800_000_000, 0)
			ls := newLibcLookups(func() time.Time { return clock })
			stuckReleased, nextReleased := make(chan struct{}), make(chan struct{})
			stuck := ls.start("getpwnam alice", func() (any, error) { <-stuckReleased; return "the stuck call's", nil })
			clock = clock.Add(tt.age)
			next := ls.start("getpwnam alice", func() (any, error) { <-nextReleased; return "asked again", nil })
			if joined := next == stuck; joined != tt.joined {
				t.Fatalf("getpwnam alice, its lookup running for %s: joined %t; want %t", tt.age, joined, tt.joined)
			}
			if tt.joined {
				close(stuckReleased)
				<-stuck.done
				return
			}
			clock = clock.Add(time.Second)
			if after := ls.start("getpwnam alice", func() (any, error) { return "a third call", nil }); after != next {
				t.Errorf("getpwnam alice, a second after it was asked again: not joined to that call")
			}
			close(stuckReleased) // the stuck call returns at last
			<-stuck.done
			if after := ls.start("getpwnam alice", func() (any, error) { return "a third call", nil }); after != next {
				t.Errorf("getpwnam alice, once the stuck call returned: not joined to the call that replaced it (its entry was dropped)")
			}
			close(nextReleased)
			<-next.done
			if next.val != "asked again" || stuck.val != "the stuck call's" {
				t.Errorf("answers %v and %v; want each call's own", stuck.val, next.val)
			}
		})
	}
}

// TestLibcLookupsJoinedToOneReplacedAsStuckEndWithTheirContext: callers
// already waiting on a libc lookup (joined to it) when the next of its key
// replaces it as stuck (LookupStuckAfter) go on waiting on it, not on its
// replacement, another call into libc, which answers its own caller while
// they wait on; once their own context ends, they say what every caller
// whose lookup hangs says: the system's user databases did not answer,
// with their context's cause. libc's getpwnam is released a call at a
// time here, the replacement first; the lookup's joiner, then its first
// caller, are ended in turn, the other waiting on meanwhile.
func TestLibcLookupsJoinedToOneReplacedAsStuckEndWithTheirContext(t *testing.T) {
	const key = "getpwnam alice"
	clock := &steppedClock{at: time.Unix(1_800_000_000, 0), read: make(chan struct{}, 8)}
	entered, release := libcReleasedOneByOne(t, 2, clock.now)
	const stuckCall, replacementCall = 0, 1
	ask := func(name string) libcCaller {
		ctx, cancel := context.WithCancelCause(t.Context())
		t.Cleanup(func() { cancel(nil) })
		c := libcCaller{name, cancel, make(chan error, 1)}
		go func() { _, err := lookupName(ctx, "alice"); c.answered <- err }()
		<-clock.read // start read the clock, under running's lock: the lookup has joined or begun once that is free
		return c
	}
	pending := func() *libcLookup {
		running.mu.Lock()
		defer running.mu.Unlock()
		return running.pending[key]
	}
	libcAsked := func(who string) {
		t.Helper()
		select {
		case call := <-entered:
			if call != key {
				t.Fatalf("%s: libc was asked %s; want %s", who, call, key)
			}
		case <-time.After(10 * time.Second): // a bound on the test's failing, not the lookup's
			t.Fatalf("%s: libc not asked %s within 10 s", who, key)
		}
	}

	first := ask("the first caller")
	libcAsked(first.name)
	stuck := pending()
	joined := ask("its joiner")
	if pending() != stuck {
		t.Fatalf("%s, while its first call ran: asked again, not joined", key)
	}
	clock.advance(LookupStuckAfter)
	replacing := ask("its replacer")
	if pending() == stuck {
		t.Fatalf("%s, its call running for %s: joined, not asked again", key, LookupStuckAfter)
	}
	libcAsked(replacing.name)

	release(replacementCall)
	select {
	case err := <-replacing.answered:
		if err != nil {
			t.Fatalf("%s, its call into libc released: %v; want alice's entry", replacing.name, err)
		}
	case <-time.After(10 * time.Second): // a bound on the test's failing, not the lookup's
		t.Fatalf("%s: still waiting 10 s after its call into libc was released", replacing.name)
	}
	const nss = "the system's user databases (NSS) did not answer"
	waiting := []libcCaller{joined, first}
	stillWaiting(t, waiting, replacing.name+" answered")
	for len(waiting) > 0 {
		c := waiting[0]
		waiting = waiting[1:]
		cause := fmt.Errorf("%s's spawn was given up", c.name)
		c.cancel(cause)
		var err error
		select {
		case err = <-c.answered:
		case <-time.After(10 * time.Second): // a bound on the test's failing, not the lookup's
			t.Fatalf("%s: still waiting on libc's %s 10 s after its context ended", c.name, key)
		}
		if want := key + ": " + nss + ": " + cause.Error(); err == nil || err.Error() != want || !errors.Is(err, cause) {
			t.Errorf("%s: %v; want %q, wrapping its context's cause", c.name, err, want)
		}
		stillWaiting(t, waiting, c.name+"'s context ended")
	}
	release(stuckCall) // the stuck call returns at last, to no one
}

// libcCaller is a lookup's caller in a test: its context's cancel, and
// its lookup's error once it answers.
type libcCaller struct {
	name     string
	cancel   context.CancelCauseFunc
	answered chan error
}

// stillWaiting fails t if any of callers answers, after what happened,
// within a short while each (a non-blocking look could come before a
// wrong answer does): each is to wait for its own context.
func stillWaiting(t *testing.T, callers []libcCaller, what string) {
	t.Helper()
	for _, c := range callers {
		select {
		case err := <-c.answered:
			t.Fatalf("%s: answered %v once %s; want it to wait for its own context", c.name, err, what)
		case <-time.After(100 * time.Millisecond): // a bound on seeing a wrong answer, not a wait on the lookup
		}
	}
}

// libcReleasedOneByOne makes libc's getpwnam hang, as hangingLibc's
// does, but each call until the test releases that call alone: the
// calls take their own release channel from a queue of n as they begin,
// say their call on entered (getpwnam alice), and, once release(i) lets
// the i-th (from 0) go, answer libcAlice. A call past the n fails at
// once. running is swapped for lookups that read now, the test's clock;
// Cleanup releases the calls left, waits for them all to return and
// restores libc and running.
func libcReleasedOneByOne(t *testing.T, n int, now func() time.Time) (entered <-chan string, release func(i int)) {
	if n > libcEnteredRoom {
		t.Fatalf("libcReleasedOneByOne: %d calls; entered has room for %d", n, libcEnteredRoom)
	}
	queue := make(chan chan struct{}, n)
	releases := make([]chan struct{}, n)
	released := make([]sync.Once, n)
	for i := range releases {
		releases[i] = make(chan struct{})
		queue <- releases[i]
	}
	close(queue)
	release = func(i int) { released[i].Do(func() { close(releases[i]) }) }
	// Each entry of the queue is one return to wait for: a call's that
	// takes it, or Cleanup's, draining those none took. Counted up front,
	// not by the calls as they begin, so that Cleanup's Wait cannot run
	// before a call's Add.
	var returned sync.WaitGroup
	returned.Add(n)
	// running is the package's, swapped without a lock, as fakeLibc swaps
	// libc (no spawn test is parallel), so that these lookups read the
	// test's clock and join none another test left running. Restored
	// after fakeLibc's Cleanup (Cleanups run last first), which waits on
	// these lookups.
	savedRunning := running
	running = newLibcLookups(now)
	t.Cleanup(func() { running = savedRunning })
	entered = fakeLibc(t, func(enter func(call string)) libcCalls {
		return libcCalls{getpwnam: func(name string) (*user.User, error) {
			own, ok := <-queue
			if !ok {
				return nil, fmt.Errorf("getpwnam %s: libc asked more than the test's %d calls", name, n)
			}
			defer returned.Done()
			enter("getpwnam " + name)
			<-own
			return libcAlice, nil
		}}
	}, func() {
		for i := range releases {
			release(i)
		}
		for range queue { // entries no call took: no return to wait for
			returned.Done()
		}
		returned.Wait()
	})
	return entered, release
}

// steppedClock is a clock for libcLookups that the test moves on; each
// read of it (start's, under the lookups' lock) is said on read, so that
// the test knows a lookup has joined or begun before it moves the clock.
type steppedClock struct {
	mu   sync.Mutex
	at   time.Time
	read chan struct{}
}

func (c *steppedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read <- struct{}{}
	return c.at
}

func (c *steppedClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

// TestLibcLookupsOfAnEndedContextAskNothing: a lookup whose context has
// already ended (a spawn given up before it looked its user up) does not
// call into libc, which it could not wait on, and says what one that
// ended while libc ran says. Its user and ids (ended, 4100) are its own,
// so that no lookup another test left running holds its keys.
func TestLibcLookupsOfAnEndedContextAskNothing(t *testing.T) {
	const nss = "the system's user databases (NSS) did not answer"
	ended := &user.User{Uid: "4100", Gid: "4100", Username: "ended"}
	for _, tt := range []struct {
		lookup func(context.Context) error
		key    string // its lookup's in running, were libc asked
		want   string // the error, before ": " and the cause
	}{
		{func(ctx context.Context) error { _, err := lookupName(ctx, "ended"); return err }, "getpwnam ended", "getpwnam ended: " + nss},
		{func(ctx context.Context) error { _, err := lookupUID(ctx, "4100"); return err }, "getpwuid 4100", "getpwuid 4100: " + nss},
		{func(ctx context.Context) error { _, err := groupIDs(ctx, ended); return err }, "getgrouplist ended 4100", "getgrouplist ended: " + nss},
		{func(ctx context.Context) error { _, err := lookupGID(ctx, "4100"); return err }, "getgrgid 4100", "getgrgid 4100: " + nss},
	} {
		t.Run(strings.Fields(tt.want)[0], func(t *testing.T) {
			entered := hangingLibc(t)
			cause := errors.New("the spawn was given up")
			ctx, cancel := context.WithCancelCause(t.Context())
			cancel(cause)
			err := tt.lookup(ctx)
			if want := tt.want + ": " + cause.Error(); err == nil || err.Error() != want || !errors.Is(err, cause) {
				t.Errorf("%v; want %q, wrapping the context's cause", err, want)
			}
			// A lookup begun is running's until hangingLibc's cleanup
			// releases it, though its call may not yet have said so on
			// entered: its key, not entered alone, says whether libc was asked.
			running.mu.Lock()
			_, asked := running.pending[tt.key]
			running.mu.Unlock()
			select {
			case call := <-entered:
				t.Errorf("libc was asked %s, its caller's context already ended", call)
			default:
				if asked {
					t.Errorf("libc was asked %s (its lookup is running), its caller's context already ended", tt.key)
				}
			}
		})
	}
}

// TestLibcLookupsAskNSS: built with cgo, the agent's lookups go through
// libc to the system's user databases (NSS), here nss_wrapper's, which
// answers getpwnam, getpwuid, getgrouplist and getgrgid from files of the
// test's: a user only they know is found by name and by uid, with their
// groups, as an LDAP or sssd user is; one they do not know is unknown.
// The test runs itself again with nss_wrapper preloaded (libnss-wrapper,
// which make test installs: hack/install-deps.sh), which reads its
// files only in a process it starts in.
func TestLibcLookupsAskNSS(t *testing.T) {
	if os.Getenv(nssChild) == "1" {
		lookUpThroughNSSWrapper(t)
		return
	}
	dir := t.TempDir()
	files := map[string]string{
		"passwd": "ldapuser:x:7001:7001:LDAP User,,,:/home/ldapuser:/bin/sh\n",
		"group":  "ldapuser:x:7001:\nproject:x:7100:someone,ldapuser\nother:x:7200:someone\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestLibcLookupsAskNSS$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), nssChild+"=1", "LD_PRELOAD=libnss_wrapper.so",
		"NSS_WRAPPER_PASSWD="+filepath.Join(dir, "passwd"), "NSS_WRAPPER_GROUP="+filepath.Join(dir, "group"))
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "cannot be preloaded") {
		t.Fatalf("the test needs nss_wrapper (Debian's libnss-wrapper), which make test installs (hack/install-deps.sh):\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLibcLookupsAskNSS") {
		t.Fatalf("with nss_wrapper: %v\n%s", err, out)
	}
}

// nssChild marks TestLibcLookupsAskNSS's child, set in its environment
// alone: NSS_WRAPPER_PASSWD, which a developer's shell may export for
// other tests, does not make a test run the child's checks without
// nss_wrapper preloaded.
const nssChild = "FERRY_TEST_NSS_CHILD"

// lookUpThroughNSSWrapper is TestLibcLookupsAskNSS's child, nss_wrapper
// preloaded, whose files say who ldapuser is.
func lookUpThroughNSSWrapper(t *testing.T) {
	for _, name := range []string{"ldapuser", "7001"} {
		id, err := rootIdentity(t.Context(), systemUsers, name, WorkerUsers{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if id.name != "ldapuser" || id.home != "/home/ldapuser" || id.cred.Uid != 7001 || id.cred.Gid != 7001 ||
			!slices.Equal(id.cred.Groups, []uint32{7001, 7100}) {
			t.Errorf("%s: %+v %+v; want ldapuser, uid and gid 7001, in groups 7001 and 7100, at home in /home/ldapuser", name, id, id.cred)
		}
	}
	if g, err := lookupGID(t.Context(), "7100"); err != nil || g.Name != "project" {
		t.Errorf("getgrgid 7100: %v, %v; want project", g, err)
	}
	_, err := rootIdentity(t.Context(), systemUsers, "daemon", WorkerUsers{})
	if want := `user "daemon" does not exist on this machine: create it, or set app.user to one that does`; err == nil || err.Error() != want {
		t.Errorf("daemon, whom nss_wrapper's files lack: %v; want %q", err, want)
	}
}
