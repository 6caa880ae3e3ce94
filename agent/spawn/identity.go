package spawn

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
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
// group, which the API cannot see.
func workerIdentity(name string) (identity, error) {
	if euid := os.Geteuid(); euid != 0 {
		self, err := agentUser(euid)
		if err != nil {
			return identity{}, fmt.Errorf("cannot tell the agent's own user: %w", err)
		}
		return ownIdentity(name, self)
	}
	return rootIdentity(name)
}

// agentUser is the agent's own user, by its effective uid: its passwd
// entry (built without cgo, /etc/passwd's, else getent's: lookupUID) or,
// for a uid with none (a container's runAsUser 65532 in an image whose
// passwd lacks it), the uid itself, named by its number, with HOME /, as
// lookupUser makes a root agent's worker of such a uid. Not
// user.Current, nor user.LookupId, which answers the agent's own uid from
// it (lookupUID): built without cgo, as the agent's binaries are, it
// fails for such a uid unless $USER and $HOME are set, and then takes the
// name from $USER, which says nothing about the uid.
func agentUser(euid int) (*user.User, error) {
	return lookupUser(strconv.Itoa(euid))
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

// rootIdentity is workerIdentity for a root agent.
func rootIdentity(name string) (identity, error) {
	if name == "" {
		name = "nobody"
	}
	u, err := lookupUser(name)
	if errors.As(err, new(unknownUserError)) { // nobody too, the default: app.user is the way out
		return identity{}, fmt.Errorf("%w: create it, or set app.user to one that does", err)
	}
	if err != nil {
		return identity{}, err
	}
	groups, err := u.GroupIds()
	if err != nil {
		groups = nil // a uid with no passwd entry has no groups
	}
	return credential(name, u, groups)
}

// credential is who a root agent runs the worker of the AppGroup user name
// as: u, resolved from name, with its supplementary groups.
func credential(name string, u *user.User, groups []string) (identity, error) {
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if uid == 0 {
		return identity{}, fmt.Errorf("refusing to run workers as %q: it is uid 0", name)
	}
	// Root's group reads, and may write, what root's files grant their
	// group (the agent's state, host paths): a worker is not root in
	// either way, whatever the image's passwd and group files say.
	if gid == 0 {
		return identity{}, fmt.Errorf("refusing to run workers as %q: its group is root (gid 0)", name)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	for _, g := range groups {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			continue
		}
		if n == 0 {
			return identity{}, fmt.Errorf("refusing to run workers as %q: it is in root's group (gid 0)", name)
		}
		cred.Groups = append(cred.Groups, uint32(n))
	}
	return identity{name: u.Username, home: homeDir(u), cred: cred}, nil
}

// lookupUser takes a name or a numeric uid, looked up by lookupName or
// lookupUID, never answered from $USER; a uid with no passwd entry runs
// with gid = uid, as container runtimes do.
func lookupUser(name string) (*user.User, error) {
	return lookupUserBy(lookupUID, lookupName, name)
}

// lookupUserBy is lookupUser with its lookups given (a test's). A uid
// is its bare self only where the lookup says no entry has it: a lookup
// that failed (getent's directory unreachable, slow) is an error, so a
// directory user's workers never run, for as long as it stutters, with
// gid = uid (another group's, maybe), no groups and HOME /.
func lookupUserBy(byUID, byName func(string) (*user.User, error), name string) (*user.User, error) {
	if uid, ok := canonicalUID(name); ok {
		u, err := byUID(uid)
		switch {
		case err == nil:
			return u, nil
		case errors.As(err, new(user.UnknownUserIdError)):
			return &user.User{Uid: uid, Gid: uid, Username: uid, HomeDir: "/"}, nil
		}
		return nil, fmt.Errorf("user %s: %w", uid, err)
	}
	u, err := byName(name)
	if errors.As(err, new(user.UnknownUserError)) {
		return nil, unknownUserError{name}
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	return u, nil
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
