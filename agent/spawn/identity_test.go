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

// TestCredentialRefusesTheRootGroup: a worker never runs as root, nor in
// root's group, which reads and writes what root's files grant their
// group. An image's passwd may put a user there (primary or
// supplementary): such a user is refused, as uid 0 is.
func TestCredentialRefusesTheRootGroup(t *testing.T) {
	for _, tt := range []struct {
		name   string
		u      user.User
		groups []string
		want   string // "" for allowed
	}{
		{"primary group root", user.User{Uid: "1001", Gid: "0", Username: "app"}, []string{"0"}, `refusing to run workers as "app": its group is root (gid 0)`},
		{"supplementary group root", user.User{Uid: "1001", Gid: "1001", Username: "app"}, []string{"1001", "0"}, `refusing to run workers as "app": it is in root's group (gid 0)`},
		{"groups of its own", user.User{Uid: "1001", Gid: "1001", Username: "app"}, []string{"1001", "33"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, err := credential("app", &tt.u, tt.groups)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("err = %v, want allowed", err)
			case tt.want == "" && (id.cred.Gid != 1001 || !slices.Equal(id.cred.Groups, []uint32{1001, 33})):
				t.Errorf("cred %+v, want gid 1001 and groups 1001, 33", id.cred)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestUnknownUserSaysWhatToDo: a user no passwd entry has is named once,
// as missing on this machine, with what to do about it where that is the
// AppGroup's to fix.
func TestUnknownUserSaysWhatToDo(t *testing.T) {
	_, err := rootIdentity("no-such-user-xyz")
	want := `user "no-such-user-xyz" does not exist on this machine: create it, or set app.user to one that does`
	if err == nil || err.Error() != want {
		t.Errorf("app.user: err = %v,\nwant %s", err, want)
	}
	_, err = ParseWorkerUsers("10000-19999,no-such-user-xyz")
	want = `worker users: user "no-such-user-xyz" does not exist on this machine`
	if err == nil || err.Error() != want {
		t.Errorf("--worker-users: err = %v,\nwant %s", err, want)
	}
}

// TestOwnIdentity: an agent that is not root runs workers as its own
// user, named by name or uid (leading zeros too) or not at all, with
// that user's home as HOME, or / when it has none, as a root agent's
// workers get; another user is refused.
func TestOwnIdentity(t *testing.T) {
	self := &user.User{Uid: "1000", Gid: "1000", Username: "alice", HomeDir: "/home/alice"}
	homeless := &user.User{Uid: "1000", Gid: "1000", Username: "alice"}
	for _, tt := range []struct {
		name     string
		self     *user.User
		wantHome string
		wantErr  string
	}{
		{"", self, "/home/alice", ""},
		{"alice", self, "/home/alice", ""},
		{"01000", self, "/home/alice", ""},
		{"", homeless, "/", ""},
		{"bob", self, "", `cannot run workers as "bob": the agent runs as "alice", not root`},
		{"1001", self, "", `cannot run workers as "1001": the agent runs as "alice", not root`},
	} {
		id, err := ownIdentity(tt.name, tt.self)
		switch {
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ownIdentity(%q): err = %v, want %q", tt.name, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("ownIdentity(%q): %v", tt.name, err)
		case id.name != "alice" || id.home != tt.wantHome || id.cred != nil:
			t.Errorf("ownIdentity(%q) = %+v, want alice, home %s, the agent's own credential", tt.name, id, tt.wantHome)
		}
	}
}
