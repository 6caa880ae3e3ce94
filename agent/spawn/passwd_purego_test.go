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
// it runs in go test with CGO_ENABLED=0 and, under make test (built with
// cgo where gcc is), in TestSpawnAsAUidWithNoPasswdEntry's child, which
// is built without.
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
