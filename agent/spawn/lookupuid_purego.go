//go:build !cgo || osusergo

package spawn

import (
	"os"
	"os/user"
)

// lookupUID is user.LookupId for the agent's binaries, built without cgo
// (CGO_ENABLED=0), where user.LookupId answers the process's own uid
// from user.Current, which, for a uid with no passwd entry, makes a user
// named $USER at home in $HOME when both are set: an agent running as
// such a uid (runAsUser 65532, USER set in its image) gave its workers
// that name and HOME, and took an app.user of that name for its own.
// This reads /etc/passwd, as user.LookupId does built so, for every uid.
func lookupUID(uid string) (*user.User, error) {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return findUID(f, uid)
}
