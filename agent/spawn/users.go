package spawn

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

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
// entry: the agent never runs workers as root.
func ParseWorkerUsers(s string) (WorkerUsers, error) {
	var wu WorkerUsers
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		r, err := uidRange(entry)
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
// user's name (looked up).
func uidRange(entry string) ([2]uint32, error) {
	if first, last, ok := strings.Cut(entry, "-"); ok { // or a name such as www-data
		a, errA := strconv.ParseUint(first, 10, 32)
		b, errB := strconv.ParseUint(last, 10, 32)
		switch {
		case errA == nil && errB == nil && a <= b:
			return [2]uint32{uint32(a), uint32(b)}, nil
		case errA == nil && errB == nil:
			return [2]uint32{}, fmt.Errorf("worker users: %q is no range of uids: its first is greater than its last", entry)
		}
	}
	u, err := lookupUser(context.Background(), entry) // at the agent's start, bounded by getent's wait
	if err != nil {
		return [2]uint32{}, fmt.Errorf("worker users: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return [2]uint32{}, fmt.Errorf("worker users: user %q has uid %q", entry, u.Uid)
	}
	return [2]uint32{uint32(uid), uint32(uid)}, nil
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
