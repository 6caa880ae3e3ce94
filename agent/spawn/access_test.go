package spawn

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

func TestFirstBlocked(t *testing.T) {
	nobody := worker{name: "nobody", uid: 65534, gid: 65534, groups: []uint32{100}}
	dir := func(p string, mode fs.FileMode, uid, gid uint32) step {
		return step{path: p, mode: fs.ModeDir | mode, uid: uid, gid: gid}
	}
	file := func(p string, mode fs.FileMode, uid, gid uint32) step {
		return step{path: p, mode: mode, uid: uid, gid: gid}
	}
	link := step{path: "/tmp/venv/bin/python", mode: fs.ModeSymlink | 0o777}
	for _, tc := range []struct {
		name    string
		steps   []step
		program bool
		at      int
		want    blockage
	}{
		{"all open", []step{dir("/usr", 0o755, 0, 0), file("/usr/python3", 0o755, 0, 0)}, true, -1, passes},
		{"root's private directory", []step{dir("/root", 0o700, 0, 0), dir("/root/app", 0o755, 0, 0)}, false, 0, noEntry},
		{"readable but not searchable", []step{dir("/srv", 0o744, 0, 0)}, false, 0, noEntry},
		{"the last directory, entered", []step{dir("/srv", 0o755, 0, 0), dir("/srv/app", 0o750, 0, 0)}, false, 1, noEntry},
		{"search only is enough", []step{dir("/srv", 0o711, 0, 0), dir("/srv/app", 0o711, 0, 0)}, false, -1, passes},
		{"owner's bits, not others'", []step{dir("/home/n", 0o077, 65534, 0)}, false, 0, noEntry},
		{"primary group", []step{dir("/srv", 0o750, 0, 65534)}, false, -1, passes},
		{"supplementary group", []step{dir("/srv", 0o750, 0, 100)}, false, -1, passes},
		{"group's bits, not others'", []step{dir("/srv", 0o705, 0, 100)}, false, 0, noEntry},
		{"a link is passed, its target walked", []step{dir("/tmp", 0o1777, 0, 0), link, dir("/root", 0o700, 0, 0), file("/root/python3", 0o755, 0, 0)}, true, 2, noEntry},
		{"a directory for a program", []step{dir("/tmp", 0o1777, 0, 0), dir("/tmp/venv", 0o755, 0, 0)}, true, 1, isDirectory},
		{"a program without x", []step{dir("/opt", 0o755, 0, 0), file("/opt/run", 0o644, 0, 0)}, true, 1, noExec},
		{"a file on the way", []step{file("/opt", 0o755, 0, 0), file("/opt/run", 0o755, 0, 0)}, true, 0, notDir},
		{"missing", []step{dir("/usr", 0o755, 0, 0), {path: "/usr/python3.99", missing: true}}, true, 1, missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, why := firstBlocked(tc.steps, nobody, tc.program)
			if at != tc.at || why != tc.want {
				t.Errorf("firstBlocked = %d, %d; want %d, %d", at, why, tc.at, tc.want)
			}
		})
	}
}

func TestDescribeBlock(t *testing.T) {
	nobody := worker{name: "nobody", uid: 65534, gid: 65534}
	root := step{path: "/root", mode: fs.ModeDir | 0o700, owner: "root", group: "root"}
	for _, tc := range []struct {
		name       string
		steps      []step
		why        blockage
		agentsUser bool
		want       string
	}{
		{"no entry", []step{root}, noEntry, false,
			"the worker's user nobody (uid 65534) cannot reach app.python /root/bin/python: it may not enter /root (drwx------, owner root, group root); " +
				"set app.user to a user who can, move the files where nobody can reach them, or chmod o+x /root"},
		{"no entry, no other user to pick", []step{root}, noEntry, true,
			"the worker's user nobody (uid 65534) cannot reach app.python /root/bin/python: it may not enter /root (drwx------, owner root, group root); " +
				"move the files where nobody can reach them, or chmod o+x /root"},
		{"missing", []step{{path: "/root/bin/python", missing: true}}, missing, false,
			"app.python /root/bin/python does not exist; give the path of one that exists on this machine"},
		{"missing at the end of a link", []step{{path: "/opt/py/bin/python3", missing: true}}, missing, false,
			"app.python /root/bin/python does not exist: /opt/py/bin/python3, on its way, does not; give the path of one that exists on this machine"},
		{"a directory", []step{{path: "/root/bin/python", mode: fs.ModeDir | 0o755}}, isDirectory, false,
			"app.python /root/bin/python is a directory, not a program (a virtualenv's interpreter is its bin/python)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := describeBlock("app.python", "/root/bin/python", tc.steps, 0, tc.why, nobody, tc.agentsUser)
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestWalkPathFollowsLinks: a link's target is walked from the link's
// directory, or from / when absolute.
func TestWalkPathFollowsLinks(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../c", filepath.Join(base, "a/b/up")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "a/b/up/gone"), filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	steps := walkPath(filepath.Join(base, "link"), newOwnerNames(t.Context()))
	var got []string
	for _, s := range steps {
		got = append(got, strings.TrimPrefix(s.path, base))
	}
	want := "/a/b/up /c /c/gone"
	if !strings.HasSuffix(strings.Join(got, " "), want) || !steps[len(steps)-1].missing {
		t.Errorf("walk = %v, want it to end %s, missing", got, want)
	}
}

// TestWalkPathLooksEachOwnerUpOnce: a failed spawn's walks name the
// owners of their steps looking each uid up once, with the spawn's
// context (getent, for a uid no file knows, ends with the spawn), not
// once a step with none.
func TestWalkPathLooksEachOwnerUpOnce(t *testing.T) {
	base := t.TempDir()
	deep := filepath.Join(base, "a", "b", "c", "d")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "the spawn's")
	asked := map[string]int{}
	names := newOwnerNames(ctx)
	names.byUID = func(ctx context.Context, uid string) (*user.User, error) {
		asked[uid]++
		if ctx.Value(key{}) != "the spawn's" {
			t.Errorf("uid %s looked up without the spawn's context", uid)
		}
		return &user.User{Uid: uid, Username: "owner" + uid}, nil
	}
	steps := walkPath(deep, names)
	steps = append(steps, walkPath(deep, names)...)
	for _, s := range steps {
		if want := "owner" + strconv.FormatUint(uint64(s.uid), 10); s.owner != want {
			t.Errorf("%s: owner %q, want %q", s.path, s.owner, want)
		}
	}
	for uid, n := range asked {
		if n != 1 {
			t.Errorf("uid %s looked up %d times in two walks of %d steps, want once", uid, n, len(steps))
		}
	}
}

// privateDir is a directory under a searchable one, mode 0700, of the
// test's user (root): a worker run as nobody cannot enter it.
func privateDir(t *testing.T) (base, private string) {
	t.Helper()
	base = testsupport.WorkerDir(t)
	private = filepath.Join(base, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	return base, private
}

// TestSpawnNamesThePathTheWorkerCannotReach: a root agent's worker runs
// as nobody; where nobody cannot go, the spawn error names the directory,
// the user and the fix, not the interpreter exec names.
func TestSpawnNamesThePathTheWorkerCannotReach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root, to run its worker as nobody (CI runs as root)")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal(err)
	}
	base, private := privateDir(t)
	// An app copied under a directory nobody may not enter.
	appRoot := filepath.Join(private, "app")
	if err := os.CopyFS(appRoot, os.DirFS("testdata/ok")); err != nil {
		t.Fatal(err)
	}
	// A virtualenv whose interpreter links into that directory.
	if err := os.Symlink(python, filepath.Join(private, "python3")); err != nil {
		t.Fatal(err)
	}
	venv := filepath.Join(base, "venv")
	if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(private, "python3"), filepath.Join(venv, "bin/python")); err != nil {
		t.Fatal(err)
	}
	entry := "it may not enter " + private + " (drwx------, owner root, group root)"
	for _, tc := range []struct {
		name string
		app  ferryv1.AppSpec
		want []string
	}{
		{"root", ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: appRoot},
			[]string{"could not start: the worker's user nobody (uid 65534) cannot reach app.root " + appRoot, entry, "set app.user", "chmod o+x " + private}},
		{"command's root", ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: appRoot, Command: []string{"python3", "-m", "http.server", "$(PORT)"}},
			[]string{"cannot reach app.root " + appRoot, entry}},
		{"interpreter", ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/ok", Python: filepath.Join(venv, "bin/python")},
			[]string{"cannot reach app.python " + filepath.Join(venv, "bin/python"), entry}},
		{"virtualenv's directory", ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/ok", Python: venv},
			[]string{"could not start: app.python " + venv + " is a directory, not a program (a virtualenv's interpreter is its bin/python)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Spawn(context.Background(), testSpec(t, tc.app))
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a spawn error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(se.Reason, w) {
					t.Errorf("reason %q\nlacks %q", se.Reason, w)
				}
			}
		})
	}
}

// TestSpawnMissingPython: an absolute app.python that does not exist is
// named as the interpreter that does not exist, as one not on PATH is.
func TestSpawnMissingPython(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/ok", Python: "/nonexistent/ferry/python3.99"})
	_, err := Spawn(context.Background(), spec)
	var se *Error
	want := "could not start: app.python /nonexistent/ferry/python3.99 does not exist; give the path of one that exists on this machine"
	if !errors.As(err, &se) || se.Reason != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}
