package spawn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Fields of a passwd entry (name:password:uid:gid:gecos:home:shell).
const (
	passwdName = 0
	passwdUID  = 2
)

// passwdDB is where the agent's binaries, built without cgo, look users
// up (lookupUID): a passwd file, then getent for what it lacks. getent
// asks the system's user databases through libc (NSS: LDAP, sssd,
// systemd's dynamic users), as os/user built with cgo does; the agent's
// binaries cannot, and os/user built so knows only /etc/passwd but for
// the process's own uid, which it makes a user of from $USER and $HOME.
// A test builds its own, with a passwd file and a getent of its own.
type passwdDB struct {
	file   string        // the passwd file; none is a file of no entries
	group  string        // the group file, read where getent cannot answer initgroups (fileGroups)
	getent string        // the getent command; none (not found) is no databases beyond the file
	wait   time.Duration // how long getent may take to answer
}

// lookupUID is uid's entry, or user.UnknownUserIdError. ctx is the
// caller's (a spawn's): getent stops with it, as at db.wait.
func (db passwdDB) lookupUID(ctx context.Context, uid string) (*user.User, error) {
	return orUnknownUID(uid)(db.lookup(ctx, passwdUID, uid))
}

// lookupName is name's entry, or user.UnknownUserError.
func (db passwdDB) lookupName(ctx context.Context, name string) (*user.User, error) {
	u, err := db.lookup(ctx, passwdName, name)
	if u == nil && err == nil {
		err = user.UnknownUserError(name)
	}
	return u, err
}

// lookup is the entry whose field is value, from the file, else from
// getent, or nil.
func (db passwdDB) lookup(ctx context.Context, field int, value string) (*user.User, error) {
	if u, err := db.fromFile(field, value); u != nil || err != nil {
		return u, err
	}
	return db.fromGetent(ctx, field, value)
}

// fromFile is the entry of db's passwd file whose field is value, or nil,
// nil too where there is no file (an image without one), where getent may
// still know.
func (db passwdDB) fromFile(field int, value string) (*user.User, error) {
	return readFile(db.file, nil, func(r io.Reader) (*user.User, error) { return findEntry(r, field, value) })
}

// readFile is read's answer for the file at path, or none, the caller's
// answer for no file, where there is none. fromFile, groupFromFile and
// fileGroups read through it alike.
func readFile[T any](path string, none T, read func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return none, nil
	}
	if err != nil {
		var zero T
		return zero, err
	}
	defer func() { _ = f.Close() }()
	return read(f)
}

// fromGetent is the entry getent passwd answers for value, read with the
// file's parser, which also checks that its field is value (getent passwd
// takes a number for a uid). An entry of another name than asked (a
// directory matching names regardless of case, Bob's for bob) is an error
// naming it: that user's workers do not run for an AppGroup naming
// another, and its author is told the name to give. An entry of another
// uid than asked is an error naming both, not "no such entry", which
// would run the uid as its bare self (gid = uid, no groups) on a
// directory's answer that it has an entry. Its exit status 2 is "no such
// entry".
func (db passwdDB) fromGetent(ctx context.Context, field int, value string) (*user.User, error) {
	out, found, err := db.askGetent(ctx, "passwd", value)
	if !found || err != nil {
		return nil, err
	}
	u, err := findEntry(bytes.NewReader(out), field, value)
	if u != nil || err != nil {
		return u, err
	}
	other, _ := firstEntry(bytes.NewReader(out), func(*user.User) bool { return true })
	switch {
	case other == nil:
		return nil, nil
	case field == passwdName:
		return nil, fmt.Errorf("getent passwd %s answered %s's entry: name it %s", value, other.Username, other.Username)
	}
	return nil, otherUIDError{asked: value, answered: other.Uid}
}

// otherUIDError: getent passwd, asked for uid asked, answered the entry
// of uid answered. A root agent refuses such a worker's user; the agent's
// own uid is its bare self (entryMemo.lookup).
type otherUIDError struct{ asked, answered string }

func (e otherUIDError) Error() string {
	return fmt.Sprintf("getent passwd %s answered uid %s's entry", e.asked, e.answered)
}

// errUnknownDatabase: getent knows no such database (musl's knows no
// initgroups), which it says exiting 1 with "Unknown database: " and the
// database's name (glibc's and NetBSD's wording: saysUnknownDatabase).
var errUnknownDatabase = errors.New("getent knows no such database")

// askGetent is what db's getent answers for key in database, or found
// false where it has no entry: no getent is installed (no databases
// beyond the files), key begins with "-" (never an option to getent; no
// entry has such a name or id: NIS's), or getent says so (runGetent).
// fromGetent and groupFromGetent ask through it alike.
func (db passwdDB) askGetent(ctx context.Context, database, key string) (out []byte, found bool, err error) {
	path, err := exec.LookPath(db.getent)
	if err != nil || strings.HasPrefix(key, "-") {
		return nil, false, nil
	}
	return db.runGetent(ctx, path, database, key)
}

// runGetent is what getent (path) answers for key in database, or found
// false for its exit status 2, "no such entry". It stops getent at
// db.wait, a directory that does not answer, and at the end of ctx, the
// caller's: a spawn cancelled, or past its time, does not wait on getent
// for the rest of db.wait.
func (db passwdDB) runGetent(ctx context.Context, path, database, key string) (out []byte, found bool, err error) {
	bounded, cancel := context.WithTimeout(ctx, db.wait)
	defer cancel()
	cmd := exec.CommandContext(bounded, path, database, key)
	cmd.WaitDelay = time.Second // a child of getent that holds its output open does not hold the spawn
	out, err = cmd.Output()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 2:
		return nil, false, nil
	case ctx.Err() != nil: // the caller's end, not getent's bound
		return nil, false, fmt.Errorf("getent %s %s: %w", database, key, context.Cause(ctx))
	case bounded.Err() != nil:
		return nil, false, fmt.Errorf("getent %s %s: no answer within %s", database, key, db.wait)
	case errors.As(err, &exit) && exit.ExitCode() == 1 && saysUnknownDatabase(exit.Stderr, database):
		return nil, false, fmt.Errorf("getent %s %s: %w", database, key, errUnknownDatabase)
	case errors.As(err, &exit):
		return nil, false, fmt.Errorf("getent %s %s: %w: %s", database, key, err, bytes.TrimSpace(exit.Stderr))
	case err != nil:
		return nil, false, fmt.Errorf("getent %s %s: %w", database, key, err)
	}
	return out, true, nil
}

// saysUnknownDatabase: stderr, getent's, says database is unknown, on a
// line saying "nknown database" (musl's "Unknown database: initgroups")
// that names it: one naming another database (a wrapper's getent asking
// passwd itself, say) is getent failing, not its missing database, which
// the caller would take for "read the group file instead".
func saysUnknownDatabase(stderr []byte, database string) bool {
	for line := range bytes.Lines(stderr) {
		if bytes.Contains(line, []byte("nknown database")) && bytes.Contains(line, []byte(database)) {
			return true
		}
	}
	return false
}

// groupIDs is u's groups, its primary group first, as libc's initgroups
// gives a process of u (a root agent's worker): where db has a getent
// that knows initgroups (glibc's), what getent initgroups answers, the
// groups of every database NSS asks (the group file, LDAP, sssd,
// systemd's), as getgrouplist answers os/user built with cgo
// (lookupuid_cgo.go); else the group file's, as os/user reads it built
// without cgo (fileGroups): where no getent is installed, or one without
// initgroups (musl's, Alpine's, derived from NetBSD's, says "Unknown
// database"). A user only getent knows is in no group of the file, and
// its workers ran without the directory's groups it is in. getent
// initgroups exiting 2, "no such entry", which glibc's never does for
// it, is an error, not the primary group alone: a getent that says so
// has not answered.
func (db passwdDB) groupIDs(ctx context.Context, u *user.User) ([]string, error) {
	path, err := exec.LookPath(db.getent)
	if err != nil {
		return db.fileGroups(u)
	}
	if strings.HasPrefix(u.Username, "-") { // never an option to getent; no entry has such a name (NIS)
		return []string{u.Gid}, nil
	}
	out, found, err := db.runGetent(ctx, path, "initgroups", u.Username)
	switch {
	case errors.Is(err, errUnknownDatabase):
		return db.fileGroups(u)
	case err != nil:
		return nil, err
	case !found: // "no such entry", which glibc's initgroups never says: not "the primary group alone"
		return nil, fmt.Errorf("getent initgroups %s: exit status 2, which getent initgroups never gives: no answer, not its groups", u.Username)
	}
	return parseInitgroups(out, u)
}

// lookupGID is gid's group, from the group file, else from getent group
// (a directory's, LDAP's or sssd's, which the file lacks), as libc's
// getgrgid asks NSS built with cgo, or user.UnknownGroupIdError. It names
// the owners a failed spawn's message gives (ownerNames.group), which
// show a gid it cannot name as its number. getent stops with ctx.
func (db passwdDB) lookupGID(ctx context.Context, gid string) (*user.Group, error) {
	if g, err := db.groupFromFile(gid); g != nil || err != nil {
		return g, err
	}
	g, err := db.groupFromGetent(ctx, gid)
	if g == nil && err == nil {
		err = user.UnknownGroupIdError(gid)
	}
	return g, err
}

// groupFromFile is gid's group in db's group file, or nil, nil too where
// there is no file (an image without one), where getent may still know.
func (db passwdDB) groupFromFile(gid string) (*user.Group, error) {
	return readFile(db.group, nil, func(r io.Reader) (*user.Group, error) { return findGroup(r, gid) })
}

// groupFromGetent is the group getent group answers for gid, or nil: no
// getent, its exit status 2, no such group (askGetent), or an answer for
// another gid.
func (db passwdDB) groupFromGetent(ctx context.Context, gid string) (*user.Group, error) {
	out, found, err := db.askGetent(ctx, "group", gid)
	if !found || err != nil {
		return nil, err
	}
	return findGroup(bytes.NewReader(out), gid)
}

// findGroup is the group of r, a group file, whose gid is gid, or nil.
func findGroup(r io.Reader, gid string) (*user.Group, error) {
	var found *user.Group
	err := eachGroup(r, func(f []string) bool {
		if f[2] == gid {
			found = &user.Group{Gid: gid, Name: f[0]}
		}
		return found == nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// eachGroup calls each with the four fields of each group of r, a group
// file (name:password:gid:members), until it returns false. It reads r as
// os/user's listGroupsFromReader does: a line is trimmed of blanks; an
// empty one, a comment (#), a NIS one (+ or -), one of other than four
// fields or of no name is no group. findGroup and groupsListing read
// alike through it, so a line one skips the other skips too.
func eachGroup(r io.Reader, each func(fields []string) (more bool)) error {
	rd := bufio.NewReader(r)
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if f := groupFields(bytes.TrimSpace(line)); f != nil && !each(f) {
			return nil
		}
		if err != nil {
			return nil
		}
	}
}

// groupFields is line's four fields, a group file's, or nil where it is
// no group (eachGroup).
func groupFields(line []byte) []string {
	if len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-' {
		return nil
	}
	f := strings.Split(string(line), ":")
	if len(f) != 4 || f[0] == "" {
		return nil
	}
	return f
}

// fileGroups is u's groups from db's group file, its primary group
// first, as os/user reads /etc/group built without cgo, the agent's
// build, but from db.group: built with cgo (go test's), u.GroupIds is
// libc's getgrouplist, and a test could not tell the file's groups from
// the primary group alone. No group file (an image without one) is the
// primary group alone; any other failure to read it is an error, never
// fewer groups than the user has.
func (db passwdDB) fileGroups(u *user.User) ([]string, error) {
	return readFile(db.group, []string{u.Gid}, func(r io.Reader) ([]string, error) {
		groups, err := groupsListing(r, u)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", db.group, err)
		}
		return groups, nil
	})
}

// groupsListing is u's primary group, then the gid of each group of r, a
// group file (name:password:gid:members), whose comma-separated members
// name u, as often as they do (withGroups counts each once). It reads r
// as eachGroup does, and a group whose gid is no number lists no one, as
// in os/user's listGroupsFromReader.
func groupsListing(r io.Reader, u *user.User) ([]string, error) {
	groups := []string{u.Gid}
	err := eachGroup(r, func(f []string) bool {
		if gid, ok := groupListing(f, u.Username); ok {
			groups = append(groups, gid)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return groups, nil
}

// groupListing is the gid of a group's fields (eachGroup) if its members
// name name and the gid is a number (groupsListing).
func groupListing(f []string, name string) (string, bool) {
	if !slices.Contains(strings.Split(f[3], ","), name) {
		return "", false
	}
	if _, err := strconv.Atoi(f[2]); err != nil {
		return "", false
	}
	return f[2], true
}

// maxGroups is the kernel's NGROUPS_MAX (/proc/sys/kernel/ngroups_max), the most groups setgroups takes
// (withGroups).
const maxGroups = 65536

// noID is (uid_t)-1 and (gid_t)-1, which setuid, setgid and setgroups
// take for "unchanged", never a user or group to run as.
const noID = math.MaxUint32

// parseInitgroups is u's groups from out, getent initgroups' answer for
// u's name: one line, the name (which may hold blanks: an AD user's "john
// smith"), then, after blanks, the gids of the groups that list it, which
// follow u's primary group (withGroups counts each once). An answer for another name, of
// more than one line, or with a field that is no gid is an error, never
// groups to run with. Groups the kernel refuses, (gid_t)-1 or more than
// NGROUPS_MAX of them, are refused where every path's groups are
// (withGroups).
func parseInitgroups(out []byte, u *user.User) ([]string, error) {
	fail := func(why string) ([]string, error) {
		return nil, fmt.Errorf("getent initgroups %s: answered %q: %s", u.Username, shortened(bytes.TrimSpace(out), 200), why)
	}
	line, rest, _ := strings.Cut(strings.TrimRight(string(out), "\n"), "\n")
	if strings.TrimSpace(rest) != "" {
		return fail("more than one line, not its groups")
	}
	gids, ok := strings.CutPrefix(line, u.Username)
	if !ok || gids != "" && gids[0] != ' ' && gids[0] != '\t' {
		return fail("not its groups")
	}
	groups := []string{u.Gid}
	for _, gid := range strings.Fields(gids) {
		if _, err := strconv.ParseUint(gid, 10, 32); err != nil {
			return fail(fmt.Sprintf("%q is no gid", gid))
		}
		groups = append(groups, gid)
	}
	return groups, nil
}

// shortened is text cut to at most limit bytes, and "..." after, where it
// is longer (tens of thousands of gids, say): cut where a character
// begins, not inside a name's multi-byte one, which %q would quote as
// stray bytes.
func shortened(text []byte, limit int) []byte {
	if len(text) <= limit {
		return text
	}
	n := limit
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return append(text[:n:n], "..."...)
}

// orUnknownUID makes no entry for uid (nil, nil) user.UnknownUserIdError,
// what os/user says, which lookupUID's callers may look for.
func orUnknownUID(uid string) func(*user.User, error) (*user.User, error) {
	return func(u *user.User, err error) (*user.User, error) {
		if u == nil && err == nil {
			n, _ := strconv.Atoi(uid)
			err = user.UnknownUserIdError(n)
		}
		return u, err
	}
}

// findEntry is the entry of r, a passwd file, whose field is value, or
// nil. It reads r as os/user does built without cgo (findUserId), so
// that the agent's binaries see the entries glibc would: a line is
// trimmed of blanks; an empty one, a comment (#), one of fewer than seven
// fields, or one whose uid or gid is not a number is no entry; nor is a
// NIS one, whose name begins with + or -, which glibc skips too.
func findEntry(r io.Reader, field int, value string) (*user.User, error) {
	return firstEntry(r, func(u *user.User) bool { return passwdField(u, field) == value })
}

// firstEntry is the first entry of r, read as findEntry reads it, that
// match takes, or nil.
func firstEntry(r io.Reader, match func(*user.User) bool) (*user.User, error) {
	rd := bufio.NewReader(r)
	for {
		line, err := readPasswdLine(rd)
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if u := parseEntry(line); u != nil && match(u) {
			return u, nil
		}
	}
}

// readPasswdLine is rd's next line, trimmed, read only as far as its
// first seven fields: the rest of a line longer than rd's buffer (a gecos
// field of 70 KiB) is skipped, as os/user does, rather than taken for an
// error that ends the search, as bufio.Scanner's ErrTooLong would be.
func readPasswdLine(rd *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, more, err := rd.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if !more {
			return bytes.TrimSpace(line), nil
		}
		if bytes.Count(line, []byte{':'}) >= 6 {
			return bytes.TrimSpace(line), skipRestOfLine(rd)
		}
	}
}

// skipRestOfLine reads rd past the end of the line it is in; reaching the
// end of rd there is no error: the line read so far is the file's last.
func skipRestOfLine(rd *bufio.Reader) error {
	for more := true; more; {
		var err error
		if _, more, err = rd.ReadLine(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	return nil
}

// parseEntry is line's entry, or nil when it is none (findEntry). The
// user's Name is its gecos field up to the first comma, as os/user takes it.
func parseEntry(line []byte) *user.User {
	if len(line) == 0 || line[0] == '#' {
		return nil
	}
	f := strings.SplitN(string(line), ":", 7)
	if len(f) < 7 || f[0] == "" || f[0][0] == '+' || f[0][0] == '-' {
		return nil
	}
	if _, err := strconv.Atoi(f[2]); err != nil {
		return nil
	}
	if _, err := strconv.Atoi(f[3]); err != nil {
		return nil
	}
	name, _, _ := strings.Cut(f[4], ",")
	return &user.User{Uid: f[2], Gid: f[3], Username: f[0], Name: name, HomeDir: f[5]}
}

// passwdField is u's field, one of those findEntry looks for.
func passwdField(u *user.User, field int) string {
	if field == passwdName {
		return u.Username
	}
	return u.Uid
}

// systemGetent is getent from the system's directories (systemPath), or
// "" (none): never from the agent's own PATH, where a root agent's may
// hold a directory another user can write, and any AppGroup naming a
// user no file knows runs it.
func systemGetent() string {
	for _, dir := range filepath.SplitList(systemPath) {
		if p, err := exec.LookPath(filepath.Join(dir, "getent")); err == nil {
			return p
		}
	}
	return ""
}
