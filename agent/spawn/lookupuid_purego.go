//go:build !cgo || osusergo

package spawn

import (
	"context"
	"os/user"
	"time"
)

// systemPasswd is the machine's: /etc/passwd and /etc/group, and getent
// when installed (a node's glibc; a distroless image has none).
var systemPasswd = passwdDB{file: "/etc/passwd", group: "/etc/group", getent: systemGetent(), wait: 10 * time.Second}

// lookupUID is user.LookupId for the agent's binaries, built without cgo
// (CGO_ENABLED=0), where user.LookupId answers the process's own uid
// from user.Current, which, for a uid with no passwd entry, makes a user
// named $USER at home in $HOME when both are set: an agent running as
// such a uid (runAsUser 65532, USER set in its image) gave its workers
// that name and HOME, and took an app.user of that name for its own.
// This reads /etc/passwd, as user.LookupId does built so, for every uid,
// then asks getent, as libc would have been asked built with cgo: an
// agent running as an LDAP user or a systemd DynamicUser, whom only NSS
// knows, is that user, not its bare uid. getent stops with ctx, the
// spawn's, as at its own bound.
func lookupUID(ctx context.Context, uid string) (*user.User, error) {
	return systemPasswd.lookupUID(ctx, uid)
}

// lookupName is user.Lookup for the agent's binaries: built without cgo,
// user.Lookup answers a name that is $USER from user.Current too, which
// for an agent whose uid has no entry is a user of that name and uid, so
// that --worker-users $USER took the agent's uid. This looks the name up
// as lookupUID looks a uid up: /etc/passwd, then getent.
func lookupName(ctx context.Context, name string) (*user.User, error) {
	return systemPasswd.lookupName(ctx, name)
}

// groupIDs is u's groups, its primary group first: getent initgroups',
// as libc's initgroups would give them, where getent is installed, else
// /etc/group's (passwdDB.groupIDs). getent stops with ctx.
func groupIDs(ctx context.Context, u *user.User) ([]string, error) {
	return systemPasswd.groupIDs(ctx, u)
}

// lookupGID is user.LookupGroupId for the agent's binaries: built without
// cgo, user.LookupGroupId reads /etc/group alone, and a failed spawn's
// message showed a directory's group (LDAP's, sssd's) as its number. This
// reads /etc/group, then asks getent group, as libc's getgrgid would have
// asked NSS built with cgo; getent stops with ctx.
func lookupGID(ctx context.Context, gid string) (*user.Group, error) {
	return systemPasswd.lookupGID(ctx, gid)
}
