package spawn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"sync"
	"syscall"
)

// systemPath is the PATH of a worker that runs as another user than the
// agent: the agent's own PATH may point into directories that user cannot
// read (a pyenv under /root, say).
const systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// identity is who a worker runs as.
type identity struct {
	name, home string
	cred       *syscall.Credential // nil: the agent's own user
}

// uid is the uid the worker runs as.
func (id identity) uid() uint32 {
	if id.cred != nil {
		return id.cred.Uid
	}
	return uint32(os.Geteuid())
}

// workerIdentity resolves the AppGroup's user. A root agent runs workers as
// that user, or as nobody when none is given; a non-root agent can only run
// them as itself. Root (uid 0) is refused even though the API forbids it
// already: a standalone file could still name it. So is a user in root's
// group, which the API cannot see, and one users (--worker-users) does not
// allow. Its lookups end with ctx, the spawn's.
func workerIdentity(ctx context.Context, name string, users WorkerUsers) (identity, error) {
	if euid := os.Geteuid(); euid != 0 {
		self, err := agentUser(ctx, euid)
		if err != nil {
			return identity{}, fmt.Errorf("cannot tell the agent's own user: %w", err)
		}
		id, err := ownIdentity(name, self)
		if err != nil {
			return identity{}, err
		}
		return id, users.check(name, id)
	}
	return rootIdentity(ctx, systemUsers, name, users)
}

// agentUser is the agent's own user, by its effective uid: its passwd
// entry (built without cgo, /etc/passwd's, else getent's: lookupUID) or,
// for a uid with none (a container's runAsUser 65532 in an image whose
// passwd lacks it), the uid itself, named by its number, with HOME /, as
// lookupUserBy makes a root agent's worker of such a uid. Not
// user.Current, nor user.LookupId, which answers the agent's own uid from
// it (lookupUID): built without cgo, as the agent's binaries are, it
// fails for such a uid unless $USER and $HOME are set, and then takes the
// name from $USER, which says nothing about the uid. Once found, its
// entry is remembered (ownUser).
func agentUser(ctx context.Context, euid int) (*user.User, error) {
	return ownUser.lookup(ctx, strconv.Itoa(euid), lookupUID)
}

// RootGroupWarning is what an agent that is not root, running in root's
// group (gid 0, its own or a supplementary one: a pod's runAsGroup 0;
// OpenShift runs containers in it), says once at its start, or "": its
// workers run as it does, in that group too, where a root agent refuses a
// worker's user in it. Not root, it cannot run them in another group, and
// refusing them would be refusing to run at all.
func RootGroupWarning() string {
	groups, _ := os.Getgroups() // none known: its own gid still says
	return rootGroupWarning(os.Geteuid(), os.Getegid(), groups)
}

// rootGroupWarning is RootGroupWarning for an agent of euid, egid and
// supplementary groups.
func rootGroupWarning(euid, egid int, groups []int) string {
	if euid == 0 || egid != 0 && !slices.Contains(groups, 0) {
		return ""
	}
	return fmt.Sprintf("The agent runs as uid %d, not root, in root's group (gid 0): its workers run as it does, in root's group "+
		"too, reading and writing what files grant that group, where a root agent refuses a worker's user in it; not root, "+
		"the agent cannot run them in another group. Give the agent another group (a pod's runAsGroup, and no supplemental "+
		"group 0) where its workers should not have root's group", euid)
}

// ownUser is the agent's own entry, once a lookup has found it: the
// agent's uid does not change while it runs, and an agent that only NSS
// knows (an LDAP user, a DynamicUser) would otherwise fork getent at
// every spawn to be told the same. Only an entry found is kept: a lookup
// that failed (getent failing, or hanging) or found none is asked again at
// the next spawn, so that a directory down, or not yet up, at one spawn
// is heard once it answers. A change to the entry itself (its name, its
// home) is seen when the agent restarts. No other user's entry is kept:
// an AppGroup's user is looked up at each spawn, so that a directory's
// change (a user removed, renumbered, put in a group) holds from the next.
var ownUser entryMemo

// entryMemo keeps the entry of one uid, once found.
type entryMemo struct {
	mu  sync.Mutex
	uid string
	u   *user.User
}

// lookup is uid's entry, remembered or looked up by byUID, and kept when
// found; a uid with none is its bare self (userOfUID), and so is one whose
// getent answers another uid's entry (otherUIDError): the agent's workers
// run as the agent whatever the entry says, where refusing it would fail
// every spawn for no gain. Neither is kept.
func (m *entryMemo) lookup(ctx context.Context, uid string, byUID lookupFunc) (*user.User, error) {
	if u := m.entry(uid); u != nil {
		return u, nil
	}
	u, err := byUID(ctx, uid)
	switch {
	case err == nil:
		m.mu.Lock()
		m.uid, m.u = uid, u
		m.mu.Unlock()
	case errors.As(err, new(otherUIDError)):
		return bareUID(uid), nil
	}
	return userOfUID(uid, u, err)
}

// entry is uid's entry, if kept.
func (m *entryMemo) entry(uid string) *user.User {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.uid != uid {
		return nil
	}
	return m.u
}

// ownIdentity is workerIdentity for an agent that is not root, running
// as self: the AppGroup's user must be self, by name or uid, or unset.
func ownIdentity(name string, self *user.User) (identity, error) {
	if uid, numeric := canonicalUID(name); name != "" && name != self.Username && (!numeric || uid != self.Uid) {
		return identity{}, fmt.Errorf("cannot run workers as %q: the agent runs as %s, not root", name, describeUser(self))
	}
	return identity{name: self.Username, home: homeDir(self)}, nil
}

// describeUser names u and its uid, an AppGroup's user being either:
// "alice" (uid 1000), or uid 65532 for a uid with no passwd entry.
func describeUser(u *user.User) string {
	if u.Username == u.Uid {
		return "uid " + u.Uid
	}
	return fmt.Sprintf("%q (uid %s)", u.Username, u.Uid)
}

// homeDir is the worker's HOME: the user's home directory, or / when it
// has none (a passwd entry whose home field is empty), as for a uid with
// no passwd entry, rather than an empty HOME; the agent's own user too.
func homeDir(u *user.User) string {
	if u.HomeDir == "" {
		return "/"
	}
	return u.HomeDir
}

// userDB is where a root agent looks a worker's user and its groups up:
// the system's (systemUsers), or a test's.
type userDB struct {
	byUID, byName lookupFunc
	groups        func(context.Context, *user.User) ([]string, error)
}

// systemUsers is the agent's build's: lookupuid_cgo.go, lookupuid_purego.go.
var systemUsers = userDB{byUID: lookupUID, byName: lookupName, groups: groupIDs}

// rootIdentity is workerIdentity for a root agent, looking the user up in
// db: the user, checked against users, then its groups, so that a user
// --worker-users refuses has no groups looked up (getent initgroups
// forked, or hanging its 10 s, for a spawn that fails anyway).
func rootIdentity(ctx context.Context, db userDB, given string, users WorkerUsers) (identity, error) {
	name := given
	if name == "" {
		name = "nobody"
	}
	u, err := lookupUserBy(ctx, db.byUID, db.byName, name)
	if errors.As(err, new(unknownUserError)) { // nobody too, the default: app.user is the way out
		return identity{}, fmt.Errorf("%w: create it, or set app.user to one that does", err)
	}
	if err != nil {
		return identity{}, err
	}
	id, err := userCredential(name, u)
	if err != nil {
		return identity{}, err
	}
	if err := users.check(given, id); err != nil {
		return identity{}, err
	}
	groups, err := db.groups(ctx, u)
	if err != nil { // getent failing or past its bound (a directory it reports as no groups is not seen)
		return identity{}, fmt.Errorf("user %q: groups: %w", name, err)
	}
	return withGroups(name, id, groups)
}

// userCredential is who a root agent runs the worker of the AppGroup user
// name as: u, resolved from name, its groups not yet looked up (withGroups).
// A uid or gid the kernel takes for none (kernelID) is refused here, on
// every lookup's path (the passwd file, getent, libc built with cgo), as
// uid 0 and root's group are.
func userCredential(name string, u *user.User) (identity, error) {
	refuse := func(why error) (identity, error) {
		return identity{}, fmt.Errorf("refusing to run workers as %q: %w", name, why)
	}
	uid, err := kernelID(u.Uid, "uid", "user")
	switch {
	case err != nil:
		return refuse(err)
	case uid == 0:
		return refuse(errors.New("it is uid 0"))
	}
	gid, err := kernelID(u.Gid, "gid", "group")
	switch {
	case err != nil:
		return refuse(err)
	case gid == 0:
		// Root's group reads, and may write, what root's files grant their
		// group (the agent's state, host paths): a worker is not root in
		// either way, whatever the image's passwd and group files say.
		return refuse(errors.New("its group is root (gid 0)"))
	}
	cred := &syscall.Credential{Uid: uid, Gid: gid}
	return identity{name: u.Username, home: homeDir(u), cred: cred}, nil
}

// kernelID is value, a passwd entry's uid or gid (what: "uid", "gid"), as
// the kernel takes it, or why it is none (of the kind names): no number
// of 32 bits (-1 in a passwd file), or (uid_t)-1 or (gid_t)-1 (noID),
// which setuid and setgid take for "unchanged" and refuse (EINVAL), an
// error the spawn would have said without naming the user or the id.
func kernelID(value, what, names string) (uint32, error) {
	n, err := strconv.ParseUint(value, 10, 32)
	switch {
	case err != nil:
		return 0, fmt.Errorf("its %s %s is no %s (0 to %d)", what, value, what, uint32(noID-1))
	case n == noID:
		return 0, fmt.Errorf("its %s %s is (%s_t)-1, no %s", what, value, what, names)
	}
	return uint32(n), nil
}

// withGroups is id, of the AppGroup user name, with its supplementary
// groups, its primary one first (groups, from every lookup's path: the
// group file, getent initgroups, libc built with cgo), each once, however
// often a path lists it (counted once, as the kernel keeps them), refused
// where the kernel would refuse them with a bare EINVAL, one of them no
// 32-bit gid (-1 in a group file), (gid_t)-1, or more than NGROUPS_MAX of
// them, and where one is root's.
func withGroups(name string, id identity, groups []string) (identity, error) {
	refuse := func(format string, args ...any) (identity, error) {
		return identity{}, fmt.Errorf("refusing to run workers as %q: "+format, append([]any{name}, args...)...)
	}
	cred := *id.cred
	cred.Groups = nil
	seen := make(map[uint64]bool, len(groups))
	for _, g := range groups {
		n, err := strconv.ParseUint(g, 10, 32)
		switch {
		case err != nil:
			return refuse("one of its groups, %s, is no gid (0 to %d)", g, uint32(noID-1))
		case n == 0:
			return refuse("it is in root's group (gid 0)")
		case n == noID:
			return refuse("one of its groups, %s, is (gid_t)-1, no group", g)
		case seen[n]:
			continue
		}
		seen[n] = true
		cred.Groups = append(cred.Groups, uint32(n))
	}
	if len(cred.Groups) > maxGroups {
		return refuse("it is in %d groups, more than the kernel's %d (NGROUPS_MAX)", len(cred.Groups), maxGroups)
	}
	id.cred = &cred
	return id, nil
}

// lookupFunc looks a user up by uid or by name (lookupUID, lookupName).
type lookupFunc func(context.Context, string) (*user.User, error)

// lookupUserBy takes a name or a numeric uid, looked up by byName or
// byUID (the system's: lookupName, lookupUID, never answered from $USER;
// or a test's); a uid with no passwd entry runs with gid = uid (not
// gid 0, root's group, which container runtimes give such a uid). Its lookups end with ctx. A uid
// is its bare self only where the lookup says no entry has it: a lookup
// that failed (getent failing, or hanging past its bound) is an error.
// A directory that getent could not reach and reports as no entry (glibc's
// getent passwd exits 2 for any unanswered key, as libc's getpwuid
// returns none) cannot be told from a uid no one has: a directory user
// named by uid then runs as its bare self, gid = uid, no groups, HOME /;
// named by name, it is refused as unknown.
func lookupUserBy(ctx context.Context, byUID, byName lookupFunc, name string) (*user.User, error) {
	if uid, ok := canonicalUID(name); ok {
		u, err := byUID(ctx, uid)
		return userOfUID(uid, u, err)
	}
	u, err := byName(ctx, name)
	if errors.As(err, new(user.UnknownUserError)) {
		return nil, unknownUserError{name}
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	return u, nil
}

// userOfUID is what byUID's answer (u, err) for uid makes the user: its
// entry; for no entry (user.UnknownUserIdError), uid itself, with gid =
// uid and HOME /; for a lookup that failed, that error.
func userOfUID(uid string, u *user.User, err error) (*user.User, error) {
	switch {
	case err == nil:
		return u, nil
	case errors.As(err, new(user.UnknownUserIdError)):
		return bareUID(uid), nil
	}
	return nil, fmt.Errorf("user %s: %w", uid, err)
}

// bareUID is a uid with no entry as a user: gid = uid, named by its
// number, HOME /.
func bareUID(uid string) *user.User {
	return &user.User{Uid: uid, Gid: uid, Username: uid, HomeDir: "/"}
}

// unknownUserError: no passwd entry has the name. Its callers say what to
// do (the AppGroup's user, a --worker-users entry).
type unknownUserError struct{ name string }

func (e unknownUserError) Error() string {
	return fmt.Sprintf("user %q does not exist on this machine", e.name)
}

// canonicalUID is name as a uid without leading zeros, when it is one: the
// API takes "01000", and passwd (compared as strings) knows only "1000".
func canonicalUID(name string) (string, bool) {
	n, err := strconv.ParseUint(name, 10, 32)
	if err != nil {
		return "", false
	}
	return strconv.FormatUint(n, 10), true
}

// baseEnv is the environment every worker starts from.
func baseEnv(id identity) []string {
	path := os.Getenv("PATH")
	if id.cred != nil || path == "" {
		path = systemPath
	}
	lang := os.Getenv("LANG")
	if lang == "" {
		lang = "C.UTF-8"
	}
	return []string{
		"PATH=" + path,
		"HOME=" + id.home,
		"LANG=" + lang,
		"USER=" + id.name,
		"LOGNAME=" + id.name,
		"PYTHONUNBUFFERED=1",
	}
}
