package spawn

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LookupStuckAfter is how long a lookup in the system's user databases
// (NSS) runs before the agent takes it for one that may never return (a
// directory that hangs): the bound on reading --worker-users at its start
// (cmd/agent's workerUsersWait) and, built with cgo, on joining a libc
// lookup still running (libcLookups.start).
const LookupStuckAfter = 30 * time.Second

// WorkerUsers is who the agent lets workers run as (--worker-users): the
// users named, by name or uid, and ranges of uids ("10000-19999"). Names
// are resolved to uids when the list is parsed, so that a worker's user,
// named either way, is checked by its uid. The zero value lets workers
// run as any user but root, as the agent does without the flag: an
// AppGroup's author may name any other user of the node's agent, which a
// cluster whose namespaces are not equally trusted narrows with this.
type WorkerUsers struct {
	ranges [][2]uint32 // inclusive
	text   string      // as given, for errors
}

// ParseWorkerUsers reads a comma-separated list of user names, uids and
// uid ranges; "" allows any user but root. Root (uid 0) may be in no
// entry: the agent never runs workers as root. Its lookups end with ctx,
// the caller's (the agent's start, bounded): a directory that hangs ends
// the parse with ctx's cause rather than hold the agent's start (getent
// killed then; libc's call, built with cgo, left to return on its own:
// libcUntil).
func ParseWorkerUsers(ctx context.Context, s string) (WorkerUsers, error) {
	return parseWorkerUsers(ctx, s, systemUsers)
}

// parseWorkerUsers is ParseWorkerUsers looking names up in db (a test's).
func parseWorkerUsers(ctx context.Context, s string, db userDB) (WorkerUsers, error) {
	var wu WorkerUsers
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		r, err := uidRange(ctx, entry, db)
		if err != nil {
			return WorkerUsers{}, err
		}
		if r[0] == 0 {
			return WorkerUsers{}, fmt.Errorf("worker users: %q takes in root (uid 0), whom workers never run as", entry)
		}
		wu.ranges = append(wu.ranges, r)
	}
	if len(wu.ranges) > 0 {
		wu.text = s
	}
	return wu, nil
}

// uidRange is entry's uids: a range "first-last" of uids, a uid, or a
// user's name (looked up in db until ctx ends). A uid is taken as it is,
// as a range's are, not looked up: its entry's uid is itself, and the
// lookup could only fail, or hang, stopping the agent at its start over
// a directory it does not need. Digits that are no uid (past 32 bits, or
// (uid_t)-1) are refused, not looked up as a name: glibc's getent passwd
// takes them for a number and answers its low 32 bits' entry, root's for
// 4294967296.
func uidRange(ctx context.Context, entry string, db userDB) ([2]uint32, error) {
	if allDigits(entry) {
		uid, err := strconv.ParseUint(entry, 10, 32)
		if err != nil || uid == noID {
			return [2]uint32{}, fmt.Errorf("worker users: %q is no uid (0 to %d)", entry, uint32(noID-1))
		}
		return [2]uint32{uint32(uid), uint32(uid)}, nil
	}
	// Digits on both sides of a "-" are a range, whatever their size; a
	// name such as www-data is looked up.
	if first, last, ok := strings.Cut(entry, "-"); ok && allDigits(first) && allDigits(last) {
		a, errA := strconv.ParseUint(first, 10, 32)
		b, errB := strconv.ParseUint(last, 10, 32)
		switch {
		case errA != nil || errB != nil || b == noID:
			return [2]uint32{}, fmt.Errorf("worker users: %q is no range of uids (0 to %d)", entry, uint32(noID-1))
		case a > b:
			return [2]uint32{}, fmt.Errorf("worker users: %q is no range of uids: its first is greater than its last", entry)
		}
		return [2]uint32{uint32(a), uint32(b)}, nil
	}
	u, err := lookupUserBy(ctx, db.byUID, db.byName, entry)
	if err != nil {
		return [2]uint32{}, fmt.Errorf("worker users: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return [2]uint32{}, fmt.Errorf("worker users: user %q has uid %q", entry, u.Uid)
	}
	return [2]uint32{uint32(uid), uint32(uid)}, nil
}

// allDigits: s is a decimal number, of any size, and nothing else.
func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// Restricted: the list narrows who workers may run as.
func (wu WorkerUsers) Restricted() bool { return len(wu.ranges) > 0 }

// String is the list as given; "" when it restricts nothing.
func (wu WorkerUsers) String() string { return wu.text }

// allows reports whether a worker may run as uid.
func (wu WorkerUsers) allows(uid uint32) bool {
	return !wu.Restricted() || slices.ContainsFunc(wu.ranges, func(r [2]uint32) bool { return r[0] <= uid && uid <= r[1] })
}

// check refuses ident, the worker's resolved user (given: as the
// AppGroup named it, "" for none), unless the list allows its uid.
func (wu WorkerUsers) check(given string, ident identity) error {
	uid := ident.uid()
	if wu.allows(uid) {
		return nil
	}
	what := fmt.Sprintf("%q (uid %d)", ident.name, uid)
	if given == "" {
		what += ", the user of an app that names none"
	}
	return fmt.Errorf("cannot run workers as %s: this agent runs them only as --worker-users %s", what, wu.text)
}
