package spawn

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestParseWorkerUsers: names (www-data too, which is no range) and uids
// become the uids they are, ranges are inclusive, and what is no user, no
// uid and no range, or takes in root, is refused with the entry named.
func TestParseWorkerUsers(t *testing.T) {
	daemon, err := user.Lookup("daemon")
	if err != nil {
		t.Fatalf("the test needs the daemon user of every Debian system: %v", err)
	}
	d, _ := strconv.ParseUint(daemon.Uid, 10, 32)
	www, err := user.Lookup("www-data")
	if err != nil {
		t.Fatalf("the test needs the www-data user of every Debian system: %v", err)
	}
	w, _ := strconv.ParseUint(www.Uid, 10, 32)
	wu, err := ParseWorkerUsers(t.Context(), " daemon, 10000-10009 ,4000000,www-data")
	if err != nil {
		t.Fatal(err)
	}
	for uid, want := range map[uint32]bool{uint32(d): true, uint32(w): true, 10000: true, 10009: true, 10010: false, 9999: false,
		4000000: true, 4000001: false, 0: false} {
		if got := wu.allows(uid); got != want {
			t.Errorf("%q allows uid %d: %v, want %v", wu, uid, got, want)
		}
	}
	for _, s := range []string{"", " , "} {
		if wu, err := ParseWorkerUsers(t.Context(), s); err != nil || wu.Restricted() || !wu.allows(1) {
			t.Errorf("ParseWorkerUsers(%q) = %v, %v; want no restriction", s, wu, err)
		}
	}
	for s, want := range map[string]string{
		"root":              "uid 0",
		"0":                 "uid 0",
		"0-100":             "uid 0",
		"10-1":              "first is greater than its last",
		"10-":               `user "10-"`,
		"no-such-user-here": `user "no-such-user-here"`,
		"nosuchuserhere":    `user "nosuchuserhere"`,
	} {
		if _, err := ParseWorkerUsers(t.Context(), "daemon,"+s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseWorkerUsers(%q): %v, want an error saying %q", s, err, want)
		}
	}
}

// TestParseWorkerUsersEndsWithItsContext: --worker-users read at the
// agent's start ends with the context its caller gives (cmd/agent's,
// bounded) while a name's lookup hangs, saying the context's cause, rather
// than hold the start for as long as the lookup takes: getent's, killed
// then, not at its own bound. libc's, built with cgo, ends with it too
// (TestLibcLookupsEndWithTheirContext).
func TestParseWorkerUsersEndsWithItsContext(t *testing.T) {
	db := fakePasswdDB(t)
	db.wait = time.Hour // the context ends the lookup, not getent's own bound
	cause := errors.New("no answer within the bound of the agent's start")
	ctx, cancel := context.WithTimeoutCause(t.Context(), 200*time.Millisecond, cause)
	defer cancel()
	wu, err := parseWorkerUsers(ctx, "10000-19999,hangs", userDB{byUID: db.lookupUID, byName: db.lookupName})
	want := `worker users: user "hangs": getent passwd hangs: ` + cause.Error()
	if !errors.Is(err, cause) || err.Error() != want {
		t.Errorf("getent hanging: %v, %v; want %q, wrapping the context's cause", wu.ranges, err, want)
	}
}

// TestParseWorkerUsersStopsAtGetentsOwnBound: built without cgo, as the
// agent is, a name whose getent hangs ends the parse at getent's own bound
// (db.wait: 10 s for the agent), saying so, well before the caller's
// (30 s for the whole list at the agent's start), whose cause it does not
// say.
func TestParseWorkerUsersStopsAtGetentsOwnBound(t *testing.T) {
	db := fakePasswdDB(t)
	db.wait = 100 * time.Millisecond
	cause := errors.New("no answer within the bound of the agent's start")
	ctx, cancel := context.WithTimeoutCause(t.Context(), time.Minute, cause)
	defer cancel()
	wu, err := parseWorkerUsers(ctx, "10000-19999,hangs", userDB{byUID: db.lookupUID, byName: db.lookupName})
	want := `worker users: user "hangs": getent passwd hangs: no answer within 100ms`
	if err == nil || err.Error() != want || errors.Is(err, cause) {
		t.Errorf("--worker-users hangs: %v, %v; want %q", wu.ranges, err, want)
	}
}

// TestParseWorkerUsersTakesAUidAsIs: a uid in --worker-users is that
// uid, whatever a directory says of it: it is not looked up, so that a
// lookup failing (3000), hanging (4000) or answering another uid's entry
// (2000) does not stop the agent at its start over a list that names
// the uid itself.
func TestParseWorkerUsersTakesAUidAsIs(t *testing.T) {
	db := fakePasswdDB(t)
	wu, err := parseWorkerUsers(t.Context(), "3000,4000,2000", userDB{byUID: db.lookupUID, byName: db.lookupName})
	if err != nil || !wu.allows(3000) || !wu.allows(4000) || !wu.allows(2000) || wu.allows(2001) {
		t.Errorf("--worker-users 3000,4000,2000: %v, %v; want those uids alone", wu.ranges, err)
	}
	if asked := getentCalls(t, db); asked != 0 {
		t.Errorf("getent asked %d times, want none", asked)
	}
}

// TestParseWorkerUsersRefusesANumberThatIsNoUid: an entry of digits alone
// that is no uid, past 32 bits or (uid_t)-1, is refused as such, never
// looked up as a name: glibc's getent passwd takes "4294967296" for a
// number and answers root's entry (its low 32 bits).
func TestParseWorkerUsersRefusesANumberThatIsNoUid(t *testing.T) {
	db := fakePasswdDB(t)
	for _, entry := range []string{"4294967296", "4294967295", "99999999999999999999999"} {
		wu, err := parseWorkerUsers(t.Context(), "10000-19999,"+entry, userDB{byUID: db.lookupUID, byName: db.lookupName})
		want := fmt.Sprintf("worker users: %q is no uid (0 to 4294967294)", entry)
		if err == nil || err.Error() != want {
			t.Errorf("--worker-users %s: %v, %v; want %q", entry, wu.ranges, err, want)
		}
	}
	// A range of digits is one, whatever its ends: one past 32 bits, or
	// ending at (uid_t)-1, is refused, not looked up as a name.
	for _, entry := range []string{"1-4294967296", "1-4294967295", "4294967296-4294967297"} {
		wu, err := parseWorkerUsers(t.Context(), entry, userDB{byUID: db.lookupUID, byName: db.lookupName})
		want := fmt.Sprintf("worker users: %q is no range of uids (0 to 4294967294)", entry)
		if err == nil || err.Error() != want {
			t.Errorf("--worker-users %s: %v, %v; want %q", entry, wu.ranges, err, want)
		}
	}
	if asked := getentCalls(t, db); asked != 0 {
		t.Errorf("getent asked %d times, want none", asked)
	}
}

// TestSpawnRefusesAUserOutsideWorkerUsers: with --worker-users set, a
// worker whose user is not in it (here the default, nobody, of an app
// that names none) does not start, and the error says who it would have
// run as and what the agent allows; one in it starts.
func TestSpawnRefusesAUserOutsideWorkerUsers(t *testing.T) {
	app := ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/ok", StartupFile: "passenger_wsgi.py"}
	self := ident(t, "")
	spec := testSpec(t, app)
	spec.Users, _ = ParseWorkerUsers(t.Context(), "4000000-4000009")
	_, err := Spawn(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "cannot run workers as "+strconv.Quote(self.name)) ||
		!strings.Contains(err.Error(), "the user of an app that names none") ||
		!strings.Contains(err.Error(), "only as --worker-users 4000000-4000009") {
		t.Fatalf("spawn as %s outside --worker-users: %v; want it refused, saying so", self.name, err)
	}

	spec.Users, _ = ParseWorkerUsers(t.Context(), "4000000-4000009,"+strconv.FormatUint(uint64(self.uid()), 10))
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatalf("spawn as %s, in --worker-users: %v", self.name, err)
	}
	p.Stop(5 * time.Second)
}

// ident is who a worker of user name runs as under this test's agent.
func ident(t *testing.T, name string) identity {
	id, err := workerIdentity(t.Context(), name, WorkerUsers{})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
