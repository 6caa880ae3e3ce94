//go:build cgo && !osusergo

package spawn

import (
	"context"
	"fmt"
	"os/user"
	"sync"
	"time"
)

// libcCalls are os/user's lookups into libc, built with cgo: the
// system's (libc), or a test's that hangs as a directory that does not
// answer would.
type libcCalls struct {
	getpwuid     func(uid string) (*user.User, error)
	getpwnam     func(name string) (*user.User, error)
	getgrouplist func(u *user.User) ([]string, error)
	getgrgid     func(gid string) (*user.Group, error)
}

// libc is the system's: os/user's.
var libc = libcCalls{getpwuid: user.LookupId, getpwnam: user.Lookup, getgrouplist: (*user.User).GroupIds, getgrgid: user.LookupGroupId}

// lookupUID is user.LookupId: built with cgo, os/user asks libc (and so
// NSS: LDAP, systemd's dynamic users), whose answer for the agent's own
// uid is its entry or none, never one made from $USER and $HOME. It ends
// with ctx, as getent does built without cgo (libcUntil).
func lookupUID(ctx context.Context, uid string) (*user.User, error) {
	return libcUntil(ctx, "getpwuid "+uid, libc.getpwuid, uid)
}

// lookupName is user.Lookup: built with cgo, its user.Current is libc's
// too, never one made from $USER. It ends with ctx.
func lookupName(ctx context.Context, name string) (*user.User, error) {
	return libcUntil(ctx, "getpwnam "+name, libc.getpwnam, name)
}

// groupIDs is u.GroupIds: built with cgo, libc's getgrouplist, through
// NSS, the groups libc's initgroups gives a process of u; those
// passwdDB.groupIDs asks getent initgroups for, built without. It ends
// with ctx. Its primary group is in what it asks, not only its name: a
// lookup of alice in another primary group joins none of this one.
func groupIDs(ctx context.Context, u *user.User) ([]string, error) {
	return libcUntilAsking(ctx, "getgrouplist "+u.Username, u.Gid, libc.getgrouplist, u)
}

// lookupGID is user.LookupGroupId: built with cgo, libc's getgrgid. It
// ends with ctx.
func lookupGID(ctx context.Context, gid string) (*user.Group, error) {
	return libcUntil(ctx, "getgrgid "+gid, libc.getgrgid, gid)
}

// libcUntil is call(arg), a lookup into libc, or, once ctx ends first, an
// error saying that the system's user databases did not answer, wrapping
// ctx's cause, as getent's lookup says it built without cgo. what names
// the call in its errors (getpwnam alice) and is its key in running;
// libcUntilAsking adds to the key what the name leaves out. A ctx already
// ended asks libc nothing: the call could not be waited on, only left
// running. A call into libc cannot be stopped: it is left running in its
// goroutine (and thread) to return into nothing, and a lookup of the same
// key meanwhile waits on it rather than start another (libcLookups), so
// that a directory that hangs while spawns are tried again and again
// leaves one call a key, not one a spawn, for each LookupStuckAfter it
// hangs. call is taken here, in the caller's goroutine, not read from
// libc in the one left running.
func libcUntil[A, T any](ctx context.Context, what string, call func(A) (T, error), arg A) (T, error) {
	return libcUntilAsking(ctx, what, "", call, arg)
}

// libcUntilAsking is libcUntil of a call that asks more than its errors
// name: more, which its key holds after what (getgrouplist alice 1000), so
// that it joins only a lookup asking the same.
func libcUntilAsking[A, T any](ctx context.Context, what, more string, call func(A) (T, error), arg A) (T, error) {
	var none T
	key := what
	if more != "" {
		key += " " + more
	}
	if ctx.Err() != nil {
		return none, didNotAnswer(ctx, what)
	}
	l := running.start(key, func() (any, error) { return call(arg) })
	select {
	case <-l.done:
		return answerOf[T](l)
	case <-ctx.Done():
	}
	select {
	case <-l.done: // answered as ctx ended: its answer, not a directory's silence
		return answerOf[T](l)
	default:
		return none, didNotAnswer(ctx, what)
	}
}

// didNotAnswer is libcUntil's error for a lookup (what) whose ctx ended
// before libc answered it, wrapping ctx's cause.
func didNotAnswer(ctx context.Context, what string) error {
	return fmt.Errorf("%s: the system's user databases (NSS) did not answer: %w", what, context.Cause(ctx))
}

// running is the agent's libc lookups still running.
var running = newLibcLookups(time.Now)

// libcLookups are the libc lookups running, by key (a call and what it
// asks: getpwnam alice).
type libcLookups struct {
	mu      sync.Mutex
	pending map[string]*libcLookup
	now     func() time.Time // when a lookup starts: time.Now, or a test's clock
}

// newLibcLookups is a set of libc lookups, none running, that reads now
// for when each starts.
func newLibcLookups(now func() time.Time) *libcLookups {
	return &libcLookups{pending: map[string]*libcLookup{}, now: now}
}

// libcLookup is one libc lookup; done is closed once val and err are set.
type libcLookup struct {
	done    chan struct{}
	started time.Time // when libc was asked: joined until LookupStuckAfter past it
	val     any
	err     error
}

// answerOf is l's answer, as T (libcUntil's), once done.
func answerOf[T any](l *libcLookup) (T, error) {
	v, _ := l.val.(T) // a nil T stored in val, or none: T's zero value
	return v, l.err
}

// start is key's lookup still running, begun less than LookupStuckAfter
// ago, or a new one of call, started in a goroutine of its own, which
// takes the key's place: the lookups waiting on a directory that hangs are
// one a key each LookupStuckAfter, however many callers gave up on them.
// One running longer is taken for stuck, a call that will never return (an
// old nss_ldap, or nslcd without a timelimit, waiting on a directory
// forever): joined for good, the key would fail every spawn until the
// agent's restart, however soon its directory came back. A lookup done is
// forgotten before its callers are told, so that the next caller asks libc
// again rather than take an old answer; one replaced, as stuck, leaves its
// successor's place alone when it returns at last.
func (ls *libcLookups) start(key string, call func() (any, error)) *libcLookup {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	now := ls.now()
	if l, ok := ls.pending[key]; ok && now.Sub(l.started) < LookupStuckAfter {
		return l
	}
	l := &libcLookup{done: make(chan struct{}), started: now}
	ls.pending[key] = l
	go func() {
		l.val, l.err = call()
		ls.mu.Lock()
		if ls.pending[key] == l {
			delete(ls.pending, key)
		}
		ls.mu.Unlock()
		close(l.done)
	}()
	return l
}
