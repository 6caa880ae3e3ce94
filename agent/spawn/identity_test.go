package spawn

import (
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestRootIdentity resolves users as a root agent does, whatever the test
// runs as: a name and its uid, with or without leading zeros (the API
// takes "01"), give the same passwd entry, groups included.
func TestRootIdentity(t *testing.T) {
	daemon, err := user.Lookup("daemon")
	if err != nil {
		t.Fatalf("the test needs the daemon user of every Debian system: %v", err)
	}
	uid, _ := strconv.ParseUint(daemon.Uid, 10, 32)
	gid, _ := strconv.ParseUint(daemon.Gid, 10, 32)
	for _, name := range []string{"daemon", daemon.Uid, "00" + daemon.Uid} {
		t.Run(name, func(t *testing.T) {
			id, err := rootIdentity(name)
			if err != nil {
				t.Fatal(err)
			}
			if id.name != "daemon" || id.home != daemon.HomeDir || id.cred == nil ||
				uint64(id.cred.Uid) != uid || uint64(id.cred.Gid) != gid || !slices.Contains(id.cred.Groups, uint32(gid)) {
				t.Errorf("identity %+v cred %+v, want daemon's passwd entry", id, id.cred)
			}
		})
	}

	t.Run("a uid with no passwd entry", func(t *testing.T) {
		id, err := rootIdentity("0004000000")
		if err != nil {
			t.Fatal(err)
		}
		if id.name != "4000000" || id.cred.Uid != 4000000 || id.cred.Gid != 4000000 || id.home != "/" {
			t.Errorf("identity %+v cred %+v, want uid and gid 4000000", id, id.cred)
		}
	})
	for _, name := range []string{"root", "0", "000"} {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, err := rootIdentity(name); err == nil || !strings.Contains(err.Error(), "uid 0") {
				t.Errorf("err = %v, want uid 0 refused", err)
			}
		})
	}
}
