//go:build cgo && !osusergo

package spawn

import (
	"context"
	"os/user"
)

// lookupUID is user.LookupId: built with cgo, os/user asks libc (and so
// NSS: LDAP, systemd's dynamic users), whose answer for the agent's own
// uid is its entry or none, never one made from $USER and $HOME. ctx is
// not heeded: a call into libc cannot be stopped, NSS's own timeouts
// bound it.
func lookupUID(_ context.Context, uid string) (*user.User, error) { return user.LookupId(uid) }

// lookupName is user.Lookup: built with cgo, its user.Current is libc's
// too, never one made from $USER.
func lookupName(_ context.Context, name string) (*user.User, error) { return user.Lookup(name) }

// groupIDs is u.GroupIds: built with cgo, libc's getgrouplist, through
// NSS, the groups libc's initgroups gives a process of u; those
// passwdDB.groupIDs asks getent initgroups for, built without.
func groupIDs(_ context.Context, u *user.User) ([]string, error) { return u.GroupIds() }
