//go:build cgo && !osusergo

package spawn

import (
	"context"
	"errors"
	"os/user"
	"testing"
	"time"
)

// hangingLibc makes libc's lookups hang, as a directory that does not
// answer makes them (sssd down, an LDAP server that takes the connection
// and says nothing), until the test ends; each says its call (getpwnam
// alice) on entered as it begins. answering are calls answered at once:
// alice's entry, uid 1000.
func hangingLibc(t *testing.T, answering ...string) (entered <-chan string) {
	calls := make(chan string, 16)
	release := make(chan struct{})
	alice := &user.User{Uid: "1000", Gid: "1000", Username: "alice", HomeDir: "/home/alice"}
	answers := func(call string) bool {
		for _, a := range answering {
			if a == call {
				return true
			}
		}
		calls <- call
		<-release
		return false
	}
	saved := libc
	libc = libcCalls{
		getpwuid: func(uid string) (*user.User, error) {
			answers("getpwuid " + uid)
			return nil, errors.New("released")
		},
		getpwnam: func(name string) (*user.User, error) {
			if answers("getpwnam " + name) {
				return alice, nil
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
	t.Cleanup(func() {
		close(release)
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
// groups, a failed spawn's owners, --worker-users.
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
		{"a failed spawn's owner", nil, func(ctx context.Context) error {
			_, err := lookupUID(ctx, "4000")
			return err
		}, "getpwuid 4000", `getpwuid 4000: ` + nss},
		{"a failed spawn's group", nil, func(ctx context.Context) error {
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
	var ls libcLookups
	release := make(chan struct{})
	calls := 0 // the test's goroutine's alone: call runs in start's
	hangs := func() (any, error) { <-release; return "released", nil }
	first := ls.start("getpwnam alice", hangs)
	again := ls.start("getpwnam alice", func() (any, error) { calls++; return nil, nil })
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
	if first.val != "released" || calls != 0 {
		t.Errorf("getpwnam alice answered %v, its joiner's call run %d times; want the first's answer, the joiner's never run", first.val, calls)
	}
	next := ls.start("getpwnam alice", func() (any, error) { return "asked again", nil })
	<-next.done
	if next == first || next.val != "asked again" {
		t.Errorf("getpwnam alice once its lookup returned: %v; want libc asked again", next.val)
	}
}
