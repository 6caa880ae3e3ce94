//go:build !cgo || osusergo

package spawn

import (
	"os/user"
	"slices"
	"testing"
)

// TestSystemGroupIDsAskGetent: the agent's groupIDs, built as its binaries
// are (without cgo), asks the system's getent initgroups (systemPasswd),
// here a fake one's directory groups, which /etc/group lacks. Built so,
// it runs in go test with CGO_ENABLED=0, as make test's pass built without
// cgo runs this package (NOCGO_PKGS), and in TestSpawnAsAUidWithNoPasswdEntry's
// child, built without cgo whatever its parent's build, as a uid with no
// passwd entry.
func TestSystemGroupIDsAskGetent(t *testing.T) {
	saved := systemPasswd
	t.Cleanup(func() { systemPasswd = saved })
	systemPasswd = fakePasswdDB(t)
	ldapuser := &user.User{Uid: "1000", Gid: "1000", Username: "ldapuser", HomeDir: "/home/ldapuser"}
	got, err := groupIDs(t.Context(), ldapuser)
	if want := []string{"1000", "2000", "1000", "2001"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("groupIDs(ldapuser) = %v, %v; want getent initgroups' %v", got, err, want)
	}
}

// TestSystemLookupGIDAsksGetent: the agent's lookupGID, built as its
// binaries are (without cgo), names a directory's group through the
// system's getent group (systemPasswd), here a fake one's, which the group
// file lacks, where user.LookupGroupId read /etc/group alone and a failed
// spawn's message showed such a group as its number.
func TestSystemLookupGIDAsksGetent(t *testing.T) {
	saved := systemPasswd
	t.Cleanup(func() { systemPasswd = saved })
	systemPasswd = fakePasswdDB(t)
	if g, err := lookupGID(t.Context(), "2000"); err != nil || g.Name != "ldapgroup" {
		t.Errorf("lookupGID(2000) = %+v, %v; want getent group's ldapgroup", g, err)
	}
}
