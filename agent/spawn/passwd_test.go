package spawn

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFindUID: lookupUID's reading of a passwd file, built without cgo,
// finds a uid's entry as os/user does: the name of its gecos field before
// a comma, a line trimmed of blanks; it skips NIS entries (+ or -),
// comments, lines of fewer than seven fields or with a uid or gid that is
// no number, and reads past a line longer than its buffer; it says
// user.UnknownUserIdError for a uid with none.
func TestFindUID(t *testing.T) {
	long := strings.Repeat("x", 70<<10)
	passwd := `root:x:0:0:root:/root:/bin/bash
# a comment
+nis:x:1500:1500::/:/bin/sh
-nis2:x:1501:1501::/:/bin/sh
short:x:1502
#old:x:1000:1000:Old:/home/old:/bin/sh
#1000:x:1000:1000:Old:/home/old:/bin/sh
alice:x:1000:1001:Alice Liddell,Room 1,,:/home/alice:/bin/bash
homeless:x:1003:1003:::/bin/sh

   
	bob:x:1004:1004:Bob:/home/bob:/bin/sh  
six:x:1005:1005::/home/six
badgid:x:1006:staff::/home/badgid:/bin/sh
#` + long + `
longgecos:x:1007:1007:` + long + `:/home/longgecos:/bin/sh
after:x:1008:1008::/home/after:/bin/sh
last:x:1009:1009::/home/last:/bin/sh`
	for _, tt := range []struct {
		uid  string
		want *user.User // nil: no entry
	}{
		{"0", &user.User{Uid: "0", Gid: "0", Username: "root", Name: "root", HomeDir: "/root"}},
		{"1000", &user.User{Uid: "1000", Gid: "1001", Username: "alice", Name: "Alice Liddell", HomeDir: "/home/alice"}},
		{"1003", &user.User{Uid: "1003", Gid: "1003", Username: "homeless"}},
		{"1004", &user.User{Uid: "1004", Gid: "1004", Username: "bob", Name: "Bob", HomeDir: "/home/bob"}},
		{"1005", nil}, // six fields
		{"1006", nil}, // gid staff
		{"1007", &user.User{Uid: "1007", Gid: "1007", Username: "longgecos", Name: long, HomeDir: "/home/longgecos"}},
		{"1008", &user.User{Uid: "1008", Gid: "1008", Username: "after", HomeDir: "/home/after"}},
		{"1009", &user.User{Uid: "1009", Gid: "1009", Username: "last", HomeDir: "/home/last"}}, // no newline at the end
		{"1500", nil},
		{"1501", nil},
		{"1502", nil},
		{"65532", nil},
	} {
		got, err := findUID(strings.NewReader(passwd), tt.uid)
		switch {
		case tt.want == nil && !errors.As(err, new(user.UnknownUserIdError)):
			t.Errorf("uid %s: %s, %v; want user.UnknownUserIdError", tt.uid, brief(got), err)
		case tt.want != nil && (err != nil || got == nil || *got != *tt.want):
			t.Errorf("uid %s: %s, %v; want %s", tt.uid, brief(got), err, brief(tt.want))
		}
	}
}

// fakeGetent is a getent passwd that knows, through the system's user
// databases as it were, what fakePasswd lacks: ldapuser (uid 1000),
// ldapnogroup (uid 1011, of gid 4294967295, (gid_t)-1), and for uid 1001,
// which the file has, another entry, not to be taken. For uid 2000 it
// answers uid 2001's entry, for bob robert's (a directory that answers
// for an alias, or a getent that errs), for Bob bob's (one matching names
// regardless of case), for 3000 it fails, for 4000 and hangs it hangs;
// for anything else it exits 2, getent's "not found". Its initgroups, as
// glibc's, answers a name followed by the gids of the groups that list it
// (ldapuser's its primary too), the name alone for one none lists; for
// liar another name's, for badgid a group by name, for down it fails, for
// slow it hangs. Its group answers ldapgroup for gid 2000, which fakeGroup
// lacks, another gid's group (2101's) for 2100, fails for 3100, and exits
// 2 for any other gid. Whatever it is asked, it refuses an option, in
// glibc's words (-5: "invalid option -- '5'"). It writes each question on
// a line of calls, by it, and the pid of its hang to the fifo started,
// when there is one.
const fakeGetent = `#!/bin/sh
echo "$*" >> "${0%/*}/calls"
case "$2" in
--*) echo "getent: unrecognized option '$2'" >&2; exit 1 ;;
-*) echo "getent: invalid option -- '$(printf %.1s "${2#-}")'" >&2; exit 1 ;;
esac
if [ "$1" = initgroups ]; then
	case "$2" in
	ldapuser) echo 'ldapuser              2000 1000 2001' ;;
	liar) echo 'ldapuser              2000' ;;
	badgid) echo 'badgid                2000 staff' ;;
	down) echo 'getent: cannot reach the directory' >&2; exit 1 ;;
	slow) exec sleep 60 ;;
	*) printf '%-21s\n' "$2" ;;
	esac
	exit 0
fi
if [ "$1" = group ]; then
	case "$2" in
	2000) echo 'ldapgroup:*:2000:ldapuser' ;;
	2100) echo 'othergroup:*:2101:' ;;
	3100) echo 'getent: cannot reach the directory' >&2; exit 1 ;;
	*) exit 2 ;;
	esac
	exit 0
fi
[ "$1" = passwd ] || exit 1
case "$2" in
1000|ldapuser) echo 'ldapuser:*:1000:1000:LDAP User,,,:/home/ldapuser:/bin/bash' ;;
1001|alice) echo 'ldapalice:*:1001:1001::/home/ldapalice:/bin/bash' ;;
1011|ldapnogroup) echo 'ldapnogroup:*:1011:4294967295::/:/bin/sh' ;;
2000) echo 'liar:*:2001:2001::/home/liar:/bin/sh' ;;
bob) echo 'robert:*:1002:1002::/home/robert:/bin/sh' ;;
Bob) echo 'bob:*:1003:1003::/home/bob:/bin/sh' ;;
3000) echo 'getent: cannot reach the directory' >&2; exit 1 ;;
4000|hangs) [ -p "${0%/*}/started" ] && echo $$ > "${0%/*}/started"; exec sleep 60 ;;
*) exit 2 ;;
esac
`

const fakePasswd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001:Alice:/home/alice:/bin/sh\n" +
	"nogroup:x:1010:4294967295::/:/bin/sh\nminusgroup:x:1012:-1::/:/bin/sh\n"

// fakeGroup is a group file listing ferry-made-up-user, whom no group of
// this machine's lists, in gid 3000 alone: among others, not as a name
// another begins or ends with, not in a comment or a NIS line, and in
// its own primary group 1234 again.
const fakeGroup = `root:x:0:
# staff:x:3001:ferry-made-up-user
+ferry-made-up-user:x:3002:ferry-made-up-user
staff:x:3000:alice,ferry-made-up-user,bob
others:x:3003:ferry-made-up-user2,xferry-made-up-user
own:x:1234:ferry-made-up-user
`

// fakePasswdDB is a passwdDB of fakePasswd, fakeGroup and fakeGetent, in dir.
func fakePasswdDB(t *testing.T) passwdDB {
	t.Helper()
	dir := t.TempDir()
	db := passwdDB{file: filepath.Join(dir, "passwd"), group: filepath.Join(dir, "group"), getent: filepath.Join(dir, "getent"), wait: 2 * time.Second}
	if err := os.WriteFile(db.file, []byte(fakePasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db.group, []byte(fakeGroup), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db.getent, []byte(fakeGetent), 0o755); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestPasswdDBLookupGID: lookupGID built without cgo, which names a
// failed spawn's owners, takes a gid's group from the group file, else
// from getent group, as libc's getgrgid asks NSS built with cgo (a
// directory's group, which the file lacks, is named, not shown as its
// number); neither knowing it, no getent, or a gid getent would take for
// an option (never asked of it, as a user's name is not) is
// user.UnknownGroupIdError; getent failing, or answering another gid's
// group, is no name.
func TestPasswdDBLookupGID(t *testing.T) {
	for _, tt := range []struct {
		what    string
		change  func(*passwdDB) // nil: fakePasswdDB as it is
		gid     string
		want    string // the group's name; none: an error
		unknown bool   // the error is user.UnknownGroupIdError
	}{
		{what: "in the file", gid: "3000", want: "staff"},
		{what: "in getent only", gid: "2000", want: "ldapgroup"},
		{what: "with no file", change: func(db *passwdDB) { db.group += ".none" }, gid: "2000", want: "ldapgroup"},
		{what: "in neither", gid: "5000", unknown: true},
		{what: "with no getent", change: func(db *passwdDB) { db.getent += ".none" }, gid: "2000", unknown: true},
		{what: "in a comment line alone", gid: "3001", unknown: true},
		{what: "in a NIS line alone", gid: "3002", unknown: true},
		{what: "whose getent answers another gid", gid: "2100", unknown: true},
		{what: "whose getent fails", gid: "3100"},
		{what: "that getent would take for an option", gid: "-5", unknown: true},
	} {
		t.Run(tt.what, func(t *testing.T) {
			db := fakePasswdDB(t)
			if tt.change != nil {
				tt.change(&db)
			}
			g, err := db.lookupGID(t.Context(), tt.gid)
			var unknown user.UnknownGroupIdError
			switch {
			case tt.want != "" && (err != nil || g.Name != tt.want || g.Gid != tt.gid):
				t.Errorf("gid %s: %+v, %v; want %s", tt.gid, g, err, tt.want)
			case tt.want == "" && (err == nil || errors.As(err, &unknown) != tt.unknown):
				t.Errorf("gid %s: %+v, %v; want an error, unknown gid: %t", tt.gid, g, err, tt.unknown)
			}
		})
	}
}

// TestPasswdDBLookupUID: lookupUID built without cgo takes a uid's entry
// from the passwd file, else from getent (the system's user databases
// through NSS: an agent running as an LDAP user is that user); no entry
// in either, or no getent, is user.UnknownUserIdError; getent failing or
// hanging is an error, and so is getent answering another uid's entry,
// naming both, as another name's is (a uid whose workers would otherwise
// run as its bare self, gid = uid, no groups).
func TestPasswdDBLookupUID(t *testing.T) {
	ldapuser := &user.User{Uid: "1000", Gid: "1000", Username: "ldapuser", Name: "LDAP User", HomeDir: "/home/ldapuser"}
	alice := &user.User{Uid: "1001", Gid: "1001", Username: "alice", Name: "Alice", HomeDir: "/home/alice"}
	for _, tt := range []struct {
		what    string
		change  func(*passwdDB) // nil: fakePasswdDB as it is
		uid     string
		want    *user.User // nil: an error
		unknown bool       // the error is user.UnknownUserIdError
		wantErr string     // the error, where it is said
	}{
		{what: "in the file", uid: "1001", want: alice},
		{what: "in getent only", uid: "1000", want: ldapuser},
		{what: "with no file", change: func(db *passwdDB) { db.file += ".none" }, uid: "1000", want: ldapuser},
		{what: "in neither", uid: "65532", unknown: true},
		{what: "with no getent", change: func(db *passwdDB) { db.getent += ".none" }, uid: "1000", unknown: true},
		{what: "whose getent answers another uid", uid: "2000", wantErr: "getent passwd 2000 answered uid 2001's entry"},
		{what: "whose getent fails", uid: "3000"},
		{what: "whose getent hangs", change: func(db *passwdDB) { db.wait = 100 * time.Millisecond }, uid: "4000"},
	} {
		db := fakePasswdDB(t)
		if tt.change != nil {
			tt.change(&db)
		}
		got, err := db.lookupUID(t.Context(), tt.uid)
		unknown := errors.As(err, new(user.UnknownUserIdError))
		switch {
		case tt.want != nil && (err != nil || got == nil || *got != *tt.want):
			t.Errorf("uid %s %s: %s, %v; want %s", tt.uid, tt.what, brief(got), err, brief(tt.want))
		case tt.want == nil && (err == nil || unknown != tt.unknown):
			t.Errorf("uid %s %s: %s, %v; want an error, user.UnknownUserIdError: %t", tt.uid, tt.what, brief(got), err, tt.unknown)
		case tt.wantErr != "" && err.Error() != tt.wantErr:
			t.Errorf("uid %s %s: %v; want %q", tt.uid, tt.what, err, tt.wantErr)
		}
	}
}

// TestPasswdDBLookupEndsWithItsContext: a lookup whose caller (a spawn)
// ends while getent hangs ends then, with the caller's error, getent
// killed, rather than wait out getent's own bound (db.wait, 10 s for the
// agent) and answer that the directory did not.
func TestPasswdDBLookupEndsWithItsContext(t *testing.T) {
	db := fakePasswdDB(t)
	db.wait = 10 * time.Second
	started := filepath.Join(filepath.Dir(db.getent), "started")
	if err := syscall.Mkfifo(started, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // a reader still waiting for getent, when it never ran, is let go
		if f, err := os.OpenFile(started, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			_ = f.Close()
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type process struct {
		pid   int
		start string // its start time, which another process given the pid after it has not
	}
	hanging := make(chan process, 1)
	go func() {
		pid, _ := os.ReadFile(started) // getent hangs from here on
		n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
		start := startTime(n)
		cancel()
		hanging <- process{n, start}
	}()
	u, err := db.lookupUID(ctx, "4000")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a lookup cancelled while getent hangs: %s, %v; want the caller's context.Canceled", brief(u), err)
	}
	p := <-hanging
	if p.pid <= 0 || p.start == "" {
		t.Fatalf("getent's pid %d, started at %q: the fake did not say it hung", p.pid, p.start)
	}
	if startTime(p.pid) == p.start {
		t.Errorf("getent (pid %d) outlives the lookup cancelled", p.pid)
	}
}

// startTime is when process pid started (/proc/<pid>/stat's 22nd field,
// in clock ticks since boot), or "" when there is none: a pid reused
// since has another, where kill(pid, 0) would take it for the same.
func startTime(pid int) string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := strings.LastIndex(string(stat), ") ") // past the command, which may hold blanks and parentheses
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(stat)[i+2:]) // from the 3rd field, the state
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// TestOwnEntryKeptOnceFound: the agent's own entry, once a lookup has
// found it (here getent's, an LDAP user's), is kept (entryMemo), getent
// asked once, not at each spawn; a uid that getent says no entry has, or
// whose lookup fails, is asked again each time, so that a directory not
// yet up is heard once it is; another uid is not answered from the one kept.
func TestOwnEntryKeptOnceFound(t *testing.T) {
	db := fakePasswdDB(t)
	for _, tt := range []struct {
		uid      string
		wantName string // "": an error
		asked    int    // how often getent is asked in three lookups
	}{
		{"1000", "ldapuser", 1},
		{"65532", "65532", 3},
		{"3000", "", 3},
	} {
		var m entryMemo
		before := getentCalls(t, db)
		for range 3 {
			u, err := m.lookup(t.Context(), tt.uid, db.lookupUID)
			switch {
			case tt.wantName == "" && err == nil:
				t.Errorf("uid %s: %s, want getent's error", tt.uid, brief(u))
			case tt.wantName != "" && (err != nil || u.Username != tt.wantName):
				t.Errorf("uid %s: %s, %v; want %s", tt.uid, brief(u), err, tt.wantName)
			}
		}
		if asked := getentCalls(t, db) - before; asked != tt.asked {
			t.Errorf("uid %s: getent asked %d times in three lookups, want %d", tt.uid, asked, tt.asked)
		}
		if u, err := m.lookup(t.Context(), "1001", db.lookupUID); err != nil || u.Username != "alice" {
			t.Errorf("uid 1001 after uid %s: %s, %v; want alice, not the entry kept", tt.uid, brief(u), err)
		}
	}
}

// TestOwnUIDAnsweredWithAnotherIsItsBareSelf: an agent that is not root
// and whose own uid getent answers with another uid's entry (2000, uid
// 2001's) is its bare uid, HOME /, as for a uid with no entry: its workers
// run as the agent whatever the entry says, and refusing the entry would
// fail every spawn for no gain (a root agent's worker of that uid is still
// refused: TestPasswdDBLookupUID).
func TestOwnUIDAnsweredWithAnotherIsItsBareSelf(t *testing.T) {
	db := fakePasswdDB(t)
	var m entryMemo
	u, err := m.lookup(t.Context(), "2000", db.lookupUID)
	if err != nil || u.Uid != "2000" || u.Username != "2000" || u.HomeDir != "/" {
		t.Errorf("the agent's own uid 2000, answered with uid 2001's entry: %s, %v; want uid 2000 itself, HOME /", brief(u), err)
	}
}

// getentCalls is how many questions db's fake getent has been asked.
func getentCalls(t *testing.T, db passwdDB) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(db.getent), "calls"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestPasswdDBLookupName: lookupName built without cgo, as lookupUID,
// takes a name's entry from the passwd file, else from getent, and says
// user.UnknownUserError for a name in neither, never asking getent about
// a name that would be an option to it. An entry getent answers under
// another name (bob's as robert's, Bob's as bob's: robert's workers would
// run for an AppGroup naming bob) is refused, the error naming it.
func TestPasswdDBLookupName(t *testing.T) {
	ldapuser := &user.User{Uid: "1000", Gid: "1000", Username: "ldapuser", Name: "LDAP User", HomeDir: "/home/ldapuser"}
	alice := &user.User{Uid: "1001", Gid: "1001", Username: "alice", Name: "Alice", HomeDir: "/home/alice"}
	for _, tt := range []struct {
		what    string
		change  func(*passwdDB) // nil: fakePasswdDB as it is
		name    string
		want    *user.User // nil: wantErr, or else user.UnknownUserError
		wantErr string
	}{
		{what: "in the file", name: "alice", want: alice},
		{what: "in getent only", name: "ldapuser", want: ldapuser},
		{what: "in neither", name: "someone"},
		{what: "whose getent answers another name", name: "bob", wantErr: "getent passwd bob answered robert's entry: name it robert"},
		{what: "whose getent answers it in another case", name: "Bob", wantErr: "getent passwd Bob answered bob's entry: name it bob"},
		{what: "with no getent", change: func(db *passwdDB) { db.getent += ".none" }, name: "ldapuser"},
		{what: "that getent would take for an option", name: "--help"},
	} {
		db := fakePasswdDB(t)
		if tt.change != nil {
			tt.change(&db)
		}
		got, err := db.lookupName(t.Context(), tt.name)
		switch {
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("%q %s: %s, %v; want %q", tt.name, tt.what, brief(got), err, tt.wantErr)
		case tt.wantErr != "":
		case tt.want == nil && !errors.As(err, new(user.UnknownUserError)):
			t.Errorf("%q %s: %s, %v; want user.UnknownUserError", tt.name, tt.what, brief(got), err)
		case tt.want != nil && (err != nil || got == nil || *got != *tt.want):
			t.Errorf("%q %s: %s, %v; want %s", tt.name, tt.what, brief(got), err, brief(tt.want))
		}
	}
}

// TestPasswdDBGroupIDs: a root agent's worker, built without cgo, gets
// the groups getent initgroups answers for its user, after its primary
// group, as libc's initgroups gives them (getgrouplist, os/user's answer
// built with cgo): a user only the directory knows gets the directory's
// groups, which the group file, all it had before, lacks. Another name's
// answer, a gid that is no number, getent failing or hanging, is an
// error; with no getent, or musl's, the group file's groups (fileGroups,
// the file a test gives, not libc's getgrouplist, u.GroupIds built with
// cgo): the primary group alone where there is no file, an error where
// it cannot be read.
func TestPasswdDBGroupIDs(t *testing.T) {
	ldapuser := &user.User{Uid: "1000", Gid: "1000", Username: "ldapuser", HomeDir: "/home/ldapuser"}
	alice := &user.User{Uid: "1001", Gid: "1001", Username: "alice", HomeDir: "/home/alice"}
	named := func(name string) *user.User { return &user.User{Uid: "1002", Gid: "1002", Username: name} }
	madeUp := &user.User{Uid: "1234", Gid: "1234", Username: "ferry-made-up-user"} // in no group of this machine's
	for _, tt := range []struct {
		what   string
		change func(*testing.T, *passwdDB) // nil: fakePasswdDB as it is
		u      *user.User
		want   []string // nil: an error
	}{
		{what: "in the directory's groups", u: ldapuser, want: []string{"1000", "2000", "1000", "2001"}}, // its primary again, as getent lists it (withGroups counts it once)
		{what: "in no group", u: alice, want: []string{"1001"}},
		{what: "whose getent answers another name", u: named("liar")},
		{what: "whose getent answers a group by name", u: named("badgid")},
		{what: "whose getent fails", u: named("down")},
		{what: "whose getent hangs", change: func(_ *testing.T, db *passwdDB) { db.wait = 100 * time.Millisecond }, u: named("slow")},
		{what: "that getent would take for an option", u: named("-x"), want: []string{"1002"}},
		{what: "with no getent", change: withoutGetent, u: madeUp, want: []string{"1234", "3000", "1234"}}, // its primary again, as the file lists it
		{what: "whose getent knows no initgroups (musl's)", change: withMuslGetent, u: madeUp, want: []string{"1234", "3000", "1234"}},
		{what: "whose getent says another database is unknown", change: withGetentSaying("echo 'Unknown database: passwd' >&2; exit 1"), u: madeUp},
		{what: "whose getent initgroups exits 2, as glibc's never does", change: withGetentSaying("exit 2"), u: madeUp},
		{what: "with no getent nor group file", change: func(t *testing.T, db *passwdDB) {
			withoutGetent(t, db)
			db.group += ".none"
		}, u: madeUp, want: []string{"1234"}},
		{what: "with no getent and a group file it cannot read", change: func(t *testing.T, db *passwdDB) {
			withoutGetent(t, db)
			db.group = t.TempDir() // a directory: reading it fails
		}, u: madeUp},
	} {
		db := fakePasswdDB(t)
		if tt.change != nil {
			tt.change(t, &db)
		}
		got, err := db.groupIDs(t.Context(), tt.u)
		switch {
		case tt.want == nil && err == nil:
			t.Errorf("%s %s: %v; want an error", tt.u.Username, tt.what, got)
		case tt.want != nil && (err != nil || !slices.Equal(got, tt.want)):
			t.Errorf("%s %s: %v, %v; want %v", tt.u.Username, tt.what, got, err, tt.want)
		}
	}
}

// fakeMuslGetent is getent as musl (Alpine) has it, derived from NetBSD's:
// it knows no initgroups database, and says so as NetBSD's does.
const fakeMuslGetent = `#!/bin/sh
echo "$*" >> "${0%/*}/calls"
[ "$1" = passwd ] && exit 2
echo "Unknown database: $1" >&2
echo "Usage: getent database [key ...]" >&2
exit 1
`

// withoutGetent makes db's getent a command that is not there.
func withoutGetent(_ *testing.T, db *passwdDB) { db.getent += ".none" }

// withGetentSaying makes db's getent a script that runs body for every
// question.
func withGetentSaying(body string) func(*testing.T, *passwdDB) {
	return func(t *testing.T, db *passwdDB) {
		t.Helper()
		if err := os.WriteFile(db.getent, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// withMuslGetent makes db's getent fakeMuslGetent.
func withMuslGetent(t *testing.T, db *passwdDB) {
	t.Helper()
	if err := os.WriteFile(db.getent, []byte(fakeMuslGetent), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestParseInitgroups: getent initgroups' answer is one line, the name
// asked, blanks and all (an AD user's "john smith"), then the gids after
// a blank, NGROUPS_MAX of them too; an answer for a name the asked one
// only begins, or of a second line, is refused. Groups the kernel
// refuses are refused after, as every path's are
// (TestGroupsTheKernelRefusesAreRefused).
func TestParseInitgroups(t *testing.T) {
	john := &user.User{Uid: "5000", Gid: "5000", Username: "john smith"}
	ldapuser := &user.User{Uid: "1000", Gid: "1000", Username: "ldapuser"}
	mostGIDs := gidsFrom(100000, maxGroups-1) // with the primary group, NGROUPS_MAX
	for _, tt := range []struct {
		what string
		u    *user.User
		out  string
		want []string // nil: an error
	}{
		{"a name with a blank", john, "john smith            2000 2001\n", []string{"5000", "2000", "2001"}},
		{"a name with a blank, in no group", john, "john smith           \n", []string{"5000"}},
		{"a tab after the name", ldapuser, "ldapuser\t2000\n", []string{"1000", "2000"}},
		{"a longer name", john, "john smithers 2000\n", nil},
		{"another name", john, "john 2000\n", nil},
		{"a second line", ldapuser, "ldapuser 2000\n2001\n", nil},
		{"NGROUPS_MAX groups", ldapuser, "ldapuser " + strings.Join(mostGIDs, " ") + "\n", append([]string{"1000"}, mostGIDs...)},
	} {
		got, err := parseInitgroups([]byte(tt.out), tt.u)
		switch {
		case tt.want == nil && err == nil:
			t.Errorf("%s: %d groups %v; want an error", tt.what, len(got), got[:min(len(got), 4)])
		case tt.want != nil && (err != nil || !slices.Equal(got, tt.want)):
			t.Errorf("%s: %d groups %v, %v; want %d, %v", tt.what, len(got), got[:min(len(got), 4)], err, len(tt.want), tt.want[:min(len(tt.want), 4)])
		}
	}
}

// TestParseInitgroupsCutsAnAnswerOnARune: an answer refused is quoted
// up to 200 bytes, cut where a character begins: a name of multi-byte
// characters (é, two bytes, from the second byte on) is not cut inside
// one, which %q would quote as a byte (\xc3), no character.
func TestParseInitgroupsCutsAnAnswerOnARune(t *testing.T) {
	name := "x" + strings.Repeat("é", 150) // the 200th byte is the first of an é
	_, err := parseInitgroups([]byte(name+" 2000\n2001\n"), &user.User{Uid: "5000", Gid: "5000", Username: name})
	want := "getent initgroups " + name + ": answered " + strconv.Quote("x"+strings.Repeat("é", 99)+"...") + ": more than one line, not its groups"
	if err == nil || err.Error() != want {
		t.Errorf("a second line after a long name of é:\n%v\nwant\n%s", err, want)
	}
}

// brief is u for a test's message, its Name cut short.
func brief(u *user.User) string {
	if u == nil {
		return "no user"
	}
	name := u.Name
	if len(name) > 20 {
		name = name[:20] + "..."
	}
	return "{" + strings.Join([]string{u.Username, u.Uid, u.Gid, name, u.HomeDir}, " ") + "}"
}

// TestLookupUserBy: a uid is its bare self (gid = uid, HOME /) only where
// the lookup says no entry has it; a lookup that failed (getent failing,
// or past its bound) fails the spawn rather than run a directory user's
// workers as another gid with no groups.
func TestLookupUserBy(t *testing.T) {
	ldap := &user.User{Uid: "5000", Gid: "100", Username: "ldapuser", HomeDir: "/home/ldapuser"}
	stutter := errors.New("getent passwd 5000: no answer within 10s")
	for _, tt := range []struct {
		name    string
		uidErr  error
		nameErr error
		want    *user.User
		wantErr string
	}{
		{name: "5000", want: ldap},
		{name: "5000", uidErr: user.UnknownUserIdError(5000), want: &user.User{Uid: "5000", Gid: "5000", Username: "5000", HomeDir: "/"}},
		{name: "5000", uidErr: stutter, wantErr: "user 5000: getent passwd 5000: no answer within 10s"},
		{name: "ldapuser", want: ldap},
		{name: "ldapuser", nameErr: user.UnknownUserError("ldapuser"), wantErr: `user "ldapuser" does not exist on this machine`},
		{name: "ldapuser", nameErr: stutter, wantErr: `user "ldapuser": getent passwd 5000: no answer within 10s`},
	} {
		byUID := func(context.Context, string) (*user.User, error) {
			if tt.uidErr != nil {
				return nil, tt.uidErr
			}
			return ldap, nil
		}
		byName := func(context.Context, string) (*user.User, error) {
			if tt.nameErr != nil {
				return nil, tt.nameErr
			}
			return ldap, nil
		}
		got, err := lookupUserBy(t.Context(), byUID, byName, tt.name)
		switch {
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("%s (%v, %v): err = %v, want %q", tt.name, tt.uidErr, tt.nameErr, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || *got != *tt.want):
			t.Errorf("%s (%v): %+v, %v; want %+v", tt.name, tt.uidErr, got, err, *tt.want)
		}
	}
}

// TestSystemGetentIgnoresThePATH: the getent a root agent runs for a user
// no file knows is the system's (systemPath), not one first on the
// agent's PATH, which may be a directory another user can write.
func TestSystemGetentIgnoresThePATH(t *testing.T) {
	dir := t.TempDir()
	planted := filepath.Join(dir, "getent")
	if err := os.WriteFile(planted, []byte("#!/bin/sh\necho 'root:x:0:0::/root:/bin/sh'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	got := systemGetent()
	if got == planted {
		t.Fatalf("systemGetent() = %s, the one planted first on the PATH", got)
	}
	if got != "" && !slices.Contains(filepath.SplitList(systemPath), filepath.Dir(got)) {
		t.Errorf("systemGetent() = %s, not in the system's directories %s", got, systemPath)
	}
}

// findUID is uid's entry in r, a passwd file, as lookupUID reads it
// built without cgo, or user.UnknownUserIdError: the tests' way into
// findEntry.
func findUID(r io.Reader, uid string) (*user.User, error) {
	return orUnknownUID(uid)(findEntry(r, passwdUID, uid))
}
