//go:build cgo && !osusergo

package spawn

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGroupIDsAgreeWithLibc: for every user of this machine's
// /etc/passwd, the groups getent initgroups gives (passwdDB.groupIDs, a
// root agent's built without cgo) are those libc's getgrouplist gives
// (u.GroupIds built with cgo, this build's, the agent's groupIDs built
// so), as sets: the two builds run a worker with the same groups. Built
// without cgo, u.GroupIds reads /etc/group alone, which lacks a machine's
// sssd or systemd groups, and is no libc to agree with: that build's
// groupIDs is TestSystemGroupIDsAskGetent's.
func TestGroupIDsAgreeWithLibc(t *testing.T) {
	getent := systemGetent()
	if getent == "" {
		t.Fatal("the test needs getent, of glibc (libc-bin)")
	}
	db := passwdDB{file: "/etc/passwd", group: "/etc/group", getent: getent, wait: 10 * time.Second}
	passwd, err := os.ReadFile(db.file)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(passwd)) {
		u := parseEntry([]byte(strings.TrimSpace(line)))
		if u == nil {
			continue
		}
		got, err := db.groupIDs(t.Context(), u)
		if err != nil {
			t.Errorf("%s: %v", u.Username, err)
			continue
		}
		want, err := u.GroupIds()
		if err != nil {
			t.Errorf("%s: getgrouplist: %v", u.Username, err)
			continue
		}
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			t.Errorf("%s: getent initgroups gives %v; getgrouplist %v", u.Username, got, want)
		}
	}
}
