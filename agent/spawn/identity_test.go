package spawn

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
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
			id, err := rootIdentity(t.Context(), systemUsers, name, WorkerUsers{})
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
		id, err := rootIdentity(t.Context(), systemUsers, "0004000000", WorkerUsers{})
		if err != nil {
			t.Fatal(err)
		}
		if id.name != "4000000" || id.cred.Uid != 4000000 || id.cred.Gid != 4000000 || id.home != "/" {
			t.Errorf("identity %+v cred %+v, want uid and gid 4000000", id, id.cred)
		}
	})
	for _, name := range []string{"root", "0", "000"} {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, err := rootIdentity(t.Context(), systemUsers, name, WorkerUsers{}); err == nil || !strings.Contains(err.Error(), "uid 0") {
				t.Errorf("err = %v, want uid 0 refused", err)
			}
		})
	}
}

// TestRootIdentityChecksWorkerUsersBeforeGroups: a root agent looks a
// worker's user up, checks it against --worker-users, and only then its
// groups: a user the list refuses forks no getent initgroups (which may
// hang its 10 s on a directory, for a spawn that fails anyway); one it
// allows gets the directory's groups.
func TestRootIdentityChecksWorkerUsersBeforeGroups(t *testing.T) {
	db := fakePasswdDB(t)
	users := userDB{byUID: db.lookupUID, byName: db.lookupName, groups: db.groupIDs}
	for _, tt := range []struct {
		allowed    string // --worker-users, by uid: no lookup of its own
		wantGroups []uint32
	}{
		{"5000", nil},
		{"1000", []uint32{1000, 2000, 2001}},
	} {
		wu, err := ParseWorkerUsers(t.Context(), tt.allowed)
		if err != nil {
			t.Fatal(err)
		}
		callsFile := filepath.Join(filepath.Dir(db.getent), "calls")
		_ = os.Remove(callsFile)
		id, err := rootIdentity(t.Context(), users, "ldapuser", wu)
		calls, _ := os.ReadFile(callsFile)
		asked := strings.Contains(string(calls), "initgroups")
		switch {
		case tt.wantGroups == nil && (err == nil || !strings.Contains(err.Error(), "only as --worker-users 5000")):
			t.Errorf("ldapuser, --worker-users %s: %+v, %v; want it refused", tt.allowed, id, err)
		case tt.wantGroups == nil && asked:
			t.Errorf("ldapuser, refused by --worker-users %s: getent asked %q; want no initgroups", tt.allowed, calls)
		case tt.wantGroups != nil && (err != nil || !slices.Equal(id.cred.Groups, tt.wantGroups)):
			t.Errorf("ldapuser, --worker-users %s: %+v, %v; want groups %v", tt.allowed, id.cred, err, tt.wantGroups)
		}
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
			id, err := userCredential("app", &tt.u)
			if err == nil {
				id, err = withGroups("app", id, tt.groups)
			}
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

// TestCredentialRefusesAnIDThatIsNone: a worker's user whose own uid or
// gid is (uid_t)-1 or (gid_t)-1, 4294967295, which setuid and setgid take
// for "unchanged" and refuse, or no id of 32 bits (-1 in a passwd file),
// is refused before the spawn, naming the user and the id, wherever its
// entry comes from: the passwd file, getent, a uid with none (its bare
// self), or libc, built with cgo: userCredential, which every path goes
// through, is given here an entry as a cgo build's os/user would give it.
func TestCredentialRefusesAnIDThatIsNone(t *testing.T) {
	db := fakePasswdDB(t)
	users := userDB{byUID: db.lookupUID, byName: db.lookupName, groups: db.groupIDs}
	for _, tt := range []struct{ what, name, want string }{
		{"the file's, gid (gid_t)-1", "nogroup", `refusing to run workers as "nogroup": its gid 4294967295 is (gid_t)-1, no group`},
		{"the file's by uid, gid (gid_t)-1", "1010", `refusing to run workers as "1010": its gid 4294967295 is (gid_t)-1, no group`},
		{"the file's, gid -1", "minusgroup", `refusing to run workers as "minusgroup": its gid -1 is no gid (0 to 4294967294)`},
		{"getent's, gid (gid_t)-1", "ldapnogroup", `refusing to run workers as "ldapnogroup": its gid 4294967295 is (gid_t)-1, no group`},
		{"a bare uid (uid_t)-1", "4294967295", `refusing to run workers as "4294967295": its uid 4294967295 is (uid_t)-1, no user`},
	} {
		id, err := rootIdentity(t.Context(), users, tt.name, WorkerUsers{})
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: %+v, %v; want %q", tt.what, id.cred, err, tt.want)
		}
	}
	given := &user.User{Uid: "1010", Gid: "4294967295", Username: "nogroup", HomeDir: "/"}
	want := `refusing to run workers as "nogroup": its gid 4294967295 is (gid_t)-1, no group`
	if id, err := userCredential("nogroup", given); err == nil || err.Error() != want {
		t.Errorf("an entry given to userCredential (as a cgo build's os/user gives it), gid (gid_t)-1: %+v, %v; want %q", id.cred, err, want)
	}
}

// TestGroupsTheKernelRefusesAreRefused: a root agent's worker whose
// groups, its primary one counted, are more than the kernel's NGROUPS_MAX
// (65536), or of which one is (gid_t)-1, is refused before the spawn with
// one message wherever its groups come from: the group file (no getent,
// or musl's), getent initgroups, or libc built with cgo, whose
// getgrouplist answers are what withGroups is given too. The kernel would
// refuse them with a bare EINVAL.
func TestGroupsTheKernelRefusesAreRefused(t *testing.T) {
	const tooMany = `refusing to run workers as "alice": it is in 65537 groups, more than the kernel's 65536 (NGROUPS_MAX)`
	const minusOne = `refusing to run workers as "alice": one of its groups, 4294967295, is (gid_t)-1, no group`
	const noGID = `refusing to run workers as "alice": one of its groups, -1, is no gid (0 to 4294967294)`
	for _, tt := range []struct {
		what   string
		change func(*testing.T, *passwdDB)
		want   string // "": allowed
	}{
		{"the group file's, NGROUPS_MAX", withGroupFile(maxGroups - 1), ""},
		{"the group file's, more than NGROUPS_MAX", withGroupFile(maxGroups), tooMany},
		{"the group file's, (gid_t)-1", withGroupFileSaying("staff:x:3000:alice\nnone:x:4294967295:alice\n"), minusOne},
		{"the group file's, -1", withGroupFileSaying("staff:x:3000:alice\nx:x:-1:alice\n"), noGID},
		{"getent's, NGROUPS_MAX, each twice", withGetentSaying("echo alice " + strings.Repeat(strings.Join(gidsFrom(100000, maxGroups-1), " ")+" ", 2)), ""},
		{"getent's, NGROUPS_MAX", withInitgroupsOf(maxGroups - 1), ""},
		{"getent's, more than NGROUPS_MAX", withInitgroupsOf(maxGroups), tooMany},
		{"getent's, (gid_t)-1", withGetentSaying("echo 'alice 3000 4294967295'"), minusOne},
	} {
		db := fakePasswdDB(t)
		tt.change(t, &db)
		users := userDB{byUID: db.lookupUID, byName: db.lookupName, groups: db.groupIDs}
		id, err := rootIdentity(t.Context(), users, "alice", WorkerUsers{})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v; want it allowed", tt.what, err)
		case tt.want == "" && len(id.cred.Groups) != maxGroups:
			t.Errorf("%s: %d groups, want %d", tt.what, len(id.cred.Groups), maxGroups)
		case tt.want != "" && (err == nil || err.Error() != tt.want):
			t.Errorf("%s: %v; want %q", tt.what, err, tt.want)
		}
	}
	// A cgo build's groups (u.GroupIds, libc's getgrouplist) go to
	// withGroups too, given here directly: libc's own answer is not asked
	// (os/user refuses more than 2048 groups before withGroups sees them).
	alice, err := userCredential("alice", &user.User{Uid: "1001", Gid: "1001", Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withGroups("alice", alice, append([]string{"1001"}, gidsFrom(100000, maxGroups)...)); err == nil || err.Error() != tooMany {
		t.Errorf("groups given to withGroups (as a cgo build's u.GroupIds gives them), more than NGROUPS_MAX: %v; want %q", err, tooMany)
	}
	// Each group counts once, however often it is given: NGROUPS_MAX
	// groups, each twice, are NGROUPS_MAX.
	most := append([]string{"1001"}, gidsFrom(100000, maxGroups-1)...)
	id, err := withGroups("alice", alice, append(most, most...))
	if err != nil || len(id.cred.Groups) != maxGroups {
		t.Errorf("groups given to withGroups, NGROUPS_MAX of them each twice: %v; want %d groups", err, maxGroups)
	}
}

// TestMaxGroupsIsTheKernels: maxGroups is this kernel's NGROUPS_MAX.
func TestMaxGroupsIsTheKernels(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/ngroups_max")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || n != maxGroups {
		t.Errorf("/proc/sys/kernel/ngroups_max says %q, maxGroups is %d", b, maxGroups)
	}
}

// gidsFrom is n gids from first on.
func gidsFrom(first, n int) []string {
	gids := make([]string, n)
	for i := range gids {
		gids[i] = strconv.Itoa(first + i)
	}
	return gids
}

// withGroupFile makes db's group file list alice (uid 1001, gid 1001) in
// n groups of gids from 100000 on, db's getent not there: alice's groups
// are the file's.
func withGroupFile(n int) func(*testing.T, *passwdDB) {
	var b strings.Builder
	for _, gid := range gidsFrom(100000, n) {
		b.WriteString("g" + gid + ":x:" + gid + ":alice\n")
	}
	return withGroupFileSaying(b.String())
}

// withGroupFileSaying makes db's group file content, db's getent not there.
func withGroupFileSaying(content string) func(*testing.T, *passwdDB) {
	return func(t *testing.T, db *passwdDB) {
		t.Helper()
		withoutGetent(t, db)
		if err := os.WriteFile(db.group, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// withInitgroupsOf makes db's getent answer initgroups for alice with n
// gids from 100000 on.
func withInitgroupsOf(n int) func(*testing.T, *passwdDB) {
	return func(t *testing.T, db *passwdDB) {
		t.Helper()
		answer := filepath.Join(t.TempDir(), "initgroups")
		if err := os.WriteFile(answer, []byte("alice "+strings.Join(gidsFrom(100000, n), " ")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		withGetentSaying("cat "+answer)(t, db)
	}
}

// TestUnknownUserSaysWhatToDo: a user no passwd entry has is named once,
// as missing on this machine, with what to do about it where that is the
// AppGroup's to fix.
func TestUnknownUserSaysWhatToDo(t *testing.T) {
	_, err := rootIdentity(t.Context(), systemUsers, "no-such-user-xyz", WorkerUsers{})
	want := `user "no-such-user-xyz" does not exist on this machine: create it, or set app.user to one that does`
	if err == nil || err.Error() != want {
		t.Errorf("app.user: err = %v,\nwant %s", err, want)
	}
	_, err = ParseWorkerUsers(t.Context(), "10000-19999,no-such-user-xyz")
	want = `worker users: user "no-such-user-xyz" does not exist on this machine`
	if err == nil || err.Error() != want {
		t.Errorf("--worker-users: err = %v,\nwant %s", err, want)
	}
}

// TestOwnIdentity: an agent that is not root runs workers as its own
// user, named by name or uid (leading zeros too) or not at all, with
// that user's home as HOME, or / when it has none, as a root agent's
// workers get; another user is refused, the agent's uid said. An agent
// whose uid has no passwd entry (a container's runAsUser) is that uid,
// named by it, with HOME /.
func TestOwnIdentity(t *testing.T) {
	self := &user.User{Uid: "1000", Gid: "1000", Username: "alice", HomeDir: "/home/alice"}
	homeless := &user.User{Uid: "1000", Gid: "1000", Username: "alice"}
	if _, err := lookupUID(t.Context(), "4000000"); !errors.As(err, new(user.UnknownUserIdError)) {
		t.Fatalf("the test needs uid 4000000 to have no passwd entry: %v", err)
	}
	unlisted, err := agentUser(t.Context(), 4000000)
	if err != nil {
		t.Fatalf("agentUser(t.Context(), 4000000): %v", err)
	}
	for _, tt := range []struct {
		name     string
		self     *user.User
		wantName string
		wantHome string
		wantErr  string
	}{
		{"", self, "alice", "/home/alice", ""},
		{"alice", self, "alice", "/home/alice", ""},
		{"01000", self, "alice", "/home/alice", ""},
		{"", homeless, "alice", "/", ""},
		{"bob", self, "", "", `cannot run workers as "bob": the agent runs as "alice" (uid 1000), not root`},
		{"1001", self, "", "", `cannot run workers as "1001": the agent runs as "alice" (uid 1000), not root`},
		{"", unlisted, "4000000", "/", ""},
		{"4000000", unlisted, "4000000", "/", ""},
		{"004000000", unlisted, "4000000", "/", ""},
		{"app", unlisted, "", "", `cannot run workers as "app": the agent runs as uid 4000000, not root`},
	} {
		id, err := ownIdentity(tt.name, tt.self)
		switch {
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ownIdentity(%q) as %s: err = %v, want %q", tt.name, tt.self.Username, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("ownIdentity(%q) as %s: %v", tt.name, tt.self.Username, err)
		case id.name != tt.wantName || id.home != tt.wantHome || id.cred != nil:
			t.Errorf("ownIdentity(%q) as %s = %+v, want %s, home %s, the agent's own credential", tt.name, tt.self.Username, id, tt.wantName, tt.wantHome)
		}
	}
}

// TestRootGroupWarning: an agent that is not root, whose own group or a
// supplementary one is root's, is told at its start that its workers run
// in root's group too; a root agent (which refuses such workers) and one
// outside root's group are not.
func TestRootGroupWarning(t *testing.T) {
	for _, tt := range []struct {
		euid, egid int
		groups     []int
		warned     bool
	}{
		{1000, 0, nil, true},
		{1000, 0, []int{0}, true},
		{1000, 1000, []int{1000, 0}, true},
		{1000, 1000, []int{1000}, false},
		{0, 0, []int{0}, false},
	} {
		got := rootGroupWarning(tt.euid, tt.egid, tt.groups)
		if tt.warned != (got != "") || tt.warned && !strings.Contains(got, "uid 1000, not root, in root's group (gid 0)") {
			t.Errorf("uid %d gid %d groups %v: %q; want a warning: %t", tt.euid, tt.egid, tt.groups, got, tt.warned)
		}
	}
}

// TestSpawnAsAUidWithNoPasswdEntry: an agent running as a uid no passwd
// entry has (a container's runAsUser 65532 in an image without it) spawns
// workers as itself, for an app that names no user or names that uid,
// with USER and LOGNAME the uid and HOME /, whatever the agent's own
// $USER and $HOME say; an app naming another user, or its $USER, is
// refused, the agent's uid said; --worker-users that lists not its uid
// refuses it, as a root agent's does, and --worker-users $USER names no user.
// Run as root, the test runs itself again as such a uid (setpriv), built
// as the agent is, without cgo (buildWithoutCgo), and with it
// TestSystemGroupIDsAskGetent, which only that build has.
func TestSpawnAsAUidWithNoPasswdEntry(t *testing.T) {
	if uid := os.Getenv("FERRY_TEST_AGENT_UID"); uid != "" {
		spawnAsTheAgentsUID(t, uid)
		return
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test runs itself again as a uid with no passwd entry: run it as root, as make test and CI do")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("this test runs itself again with setpriv, of util-linux, which make test installs (hack/install-deps.sh): %v", err)
	}
	uid := unlistedUID(t)
	bin := buildWithoutCgo(t)
	args := []string{"--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--",
		bin, "-test.run=^(TestSpawnAsAUidWithNoPasswdEntry|TestSystemGroupIDsAskGetent)$", "-test.count=1", "-test.v"}
	if deadline, ok := t.Deadline(); ok {
		// The child times out first, at 9/10 of the time left, so that
		// this test, still running, reports what the child printed (its
		// goroutines: where it hung); given all of it, both would time
		// out together and the child's output be lost.
		args = append(args, "-test.timeout="+(time.Until(deadline)*9/10).String())
	}
	cmd := exec.CommandContext(t.Context(), "setpriv", args...)
	// A HOME and USER that are not the uid's, which the workers must not
	// take: an agent that asked its environment who it is (user.Current
	// does, built without cgo, for a uid with no passwd entry) would.
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "USER=") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "LOGNAME=")
	}), "HOME=/agent-home", "USER=someone", "FERRY_TEST_AGENT_UID="+uid)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestSpawnAsAUidWithNoPasswdEntry") ||
		!strings.Contains(string(out), "--- PASS: TestSystemGroupIDsAskGetent") {
		t.Fatalf("as uid %s: %v\n%s", uid, err, out)
	}
}

// buildWithoutCgo builds this package's tests as the agent's binaries are
// built (make build, the Dockerfile: CGO_ENABLED=0), where go test builds
// them with cgo wherever gcc is: with cgo, os/user asks libc, and
// user.Current fails for a uid with no passwd entry (an agent that took
// it, falling back to the uid on that error, passed); without, it answers
// from $USER and $HOME, and such an agent gives its workers USER=someone
// and HOME=/agent-home. The binary goes to a directory the uid may read
// (the go tool's build directory is root's alone).
func buildWithoutCgo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(testsupport.WorkerDir(t), "spawn.test")
	build := exec.CommandContext(t.Context(), "go", "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building this package's tests without cgo, with the go in PATH (go test puts its own first): %v\n%s", err, out)
	}
	return bin
}

// builtWithoutCgo reports whether this binary was built with CGO_ENABLED=0.
func builtWithoutCgo() bool {
	info, ok := debug.ReadBuildInfo()
	return ok && slices.Contains(info.Settings, debug.BuildSetting{Key: "CGO_ENABLED", Value: "0"})
}

// unlistedUID is a uid with no passwd entry below 65536, which a user
// namespace mapping 65536 uids (a rootless container's) still maps:
// 65532 (the chart's runAsUser) when it has none here, else the first
// of 65500-65533 with none. "None" is the answer of the child's agent,
// built without cgo (lookupuid_purego.go): /etc/passwd, then getent,
// whatever this test was built with; not user.LookupId's, which built
// so reads /etc/passwd alone and would pick a uid only NSS knows (a
// systemd DynamicUser's, 61184-65519), whom the child's agent would find
// and be. A lookup that fails is no answer either.
func unlistedUID(t *testing.T) string {
	t.Helper()
	agents := passwdDB{file: "/etc/passwd", getent: systemGetent(), wait: 10 * time.Second}
	candidates := []int{65532}
	for n := 65500; n <= 65533; n++ {
		candidates = append(candidates, n)
	}
	for _, uid := range candidates {
		_, err := agents.lookupUID(t.Context(), strconv.Itoa(uid))
		if errors.As(err, new(user.UnknownUserIdError)) {
			return strconv.Itoa(uid)
		}
		if err != nil {
			t.Fatalf("looking uid %d up: %v", uid, err)
		}
	}
	t.Fatal("the test needs a uid with no passwd entry, 65532 or one of 65500-65533: every one has an entry here")
	return ""
}

// spawnAsTheAgentsUID is TestSpawnAsAUidWithNoPasswdEntry as uid.
func spawnAsTheAgentsUID(t *testing.T, uid string) {
	if !builtWithoutCgo() {
		t.Fatal("the child must be built as the agent is, without cgo (buildWithoutCgo): with cgo, os/user never reads $USER or $HOME")
	}
	wsgiApp := ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/ok", StartupFile: "passenger_wsgi.py"}
	commandApp := ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd", Command: []string{"python3", "server.py", "$(PORT)"}}
	for _, app := range []ferryv1.AppSpec{wsgiApp, commandApp} {
		for _, name := range []string{"", uid} {
			app.User = name
			p, err := Spawn(t.Context(), testSpec(t, app))
			if err != nil {
				t.Fatalf("%s app, user %q: %v", app.Type, name, err)
			}
			environ, _ := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/environ")
			status, _ := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/status")
			p.Stop(5 * time.Second)
			env := strings.Split(string(environ), "\x00")
			for _, want := range []string{"USER=" + uid, "LOGNAME=" + uid, "HOME=/"} {
				if !slices.Contains(env, want) {
					t.Errorf("%s app, user %q: the worker's environment lacks %s: %q", app.Type, name, want, env)
				}
			}
			if !strings.Contains(string(status), "\nUid:\t"+uid+"\t") {
				t.Errorf("%s app, user %q: the worker does not run as uid %s:\n%s", app.Type, name, uid, status)
			}
		}
	}
	// Another user; and "someone", the agent's $USER, which user.Current
	// would have named the agent.
	for _, other := range []string{"daemon", "someone"} {
		commandApp.User = other
		_, err := Spawn(t.Context(), testSpec(t, commandApp))
		want := `cannot run workers as "` + other + `": the agent runs as uid ` + uid + `, not root`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("an app naming user %q: err = %v, want %q", other, err, want)
		}
	}
	// --worker-users binds an agent that is not root too: its own uid,
	// unlisted, is refused, and runs once listed.
	commandApp.User = uid
	spec := testSpec(t, commandApp)
	spec.Users = mustParseWorkerUsers(t, "4000000")
	refused, err := Spawn(t.Context(), spec)
	if err == nil {
		refused.Stop(5 * time.Second)
	}
	wantRefusal := `cannot run workers as "` + uid + `" (uid ` + uid + `): this agent runs them only as --worker-users 4000000`
	if err == nil || !strings.Contains(err.Error(), wantRefusal) {
		t.Errorf("an app naming uid %s, --worker-users 4000000: err = %v, want %q", uid, err, wantRefusal)
	}
	spec = testSpec(t, commandApp)
	spec.Users = mustParseWorkerUsers(t, "4000000,"+uid)
	p, err := Spawn(t.Context(), spec)
	if err != nil {
		t.Errorf("an app naming uid %s, --worker-users 4000000,%s: %v", uid, uid, err)
	} else {
		p.Stop(5 * time.Second)
	}
	// A name is looked up as a uid is, not answered from $USER
	// (user.Lookup, built without cgo, asks user.Current first).
	wu, err := ParseWorkerUsers(t.Context(), "someone")
	want := `worker users: user "someone" does not exist on this machine`
	if err == nil || err.Error() != want {
		t.Errorf("--worker-users someone, the agent's $USER: %v, err = %v; want %q", wu.ranges, err, want)
	}
}

// mustParseWorkerUsers is ParseWorkerUsers(t.Context(), s), which the test needs.
func mustParseWorkerUsers(t *testing.T, s string) WorkerUsers {
	t.Helper()
	wu, err := ParseWorkerUsers(t.Context(), s)
	if err != nil {
		t.Fatalf("--worker-users %s: %v", s, err)
	}
	return wu
}
