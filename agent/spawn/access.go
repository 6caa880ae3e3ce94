package spawn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// A worker that cannot be started gets from exec only "fork/exec
// /usr/bin/python3: permission denied", naming the interpreter even when
// it is the app's root that the worker's user cannot enter (exec enters
// the working directory after it has taken the worker's user, and reports
// any failure as the program's). startError walks, as the agent, the paths
// the worker needed, and says which one stopped it and why.

// step is one name met walking a path: its mode and owner. A link's
// target is walked after it.
type step struct {
	path         string
	missing      bool // it does not exist
	mode         fs.FileMode
	uid, gid     uint32
	owner, group string // the names of uid and gid, for the message
}

// worker is whom the permissions are checked for.
type worker struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// blockage is what stops the worker at a step of a walk.
type blockage int

const (
	passes      blockage = iota
	missing              // the step does not exist
	notDir               // a step before the last is a file
	noEntry              // a directory the worker may not enter (x)
	noExec               // the last step, a file, the worker may not execute
	isDirectory          // the last step is a directory, where a program was wanted
)

// firstBlocked is the first step of steps, a walk to a program (program) or
// to a directory to enter, that the worker cannot pass, and why; passes
// when it can pass them all.
func firstBlocked(steps []step, w worker, program bool) (int, blockage) {
	for i, s := range steps {
		last := i == len(steps)-1
		switch {
		case s.missing:
			return i, missing
		case s.mode&fs.ModeSymlink != 0: // its target follows it
		case s.mode.IsDir() && last && program:
			return i, isDirectory
		case s.mode.IsDir() && !w.may(s, 0o1):
			return i, noEntry
		case s.mode.IsDir():
		case !last:
			return i, notDir
		case program && !w.may(s, 0o1):
			return i, noExec
		}
	}
	return -1, passes
}

// class is the permission class of s that applies to w: owner (6),
// group (3) or others (0), as the shift of its bits in the mode.
func (w worker) class(s step) uint {
	switch {
	case s.uid == w.uid:
		return 6
	case s.gid == w.gid || slices.Contains(w.groups, s.gid):
		return 3
	}
	return 0
}

// may reports whether w has bit (4 read, 1 execute) on s.
func (w worker) may(s step, bit fs.FileMode) bool {
	return s.mode.Perm()>>w.class(s)&bit != 0
}

// chmodFor is the chmod that grants w the execute bit on s.
func (w worker) chmodFor(s step) string {
	who := map[uint]string{6: "u", 3: "g", 0: "o"}[w.class(s)]
	return "chmod " + who + "+x " + s.path
}

// describeBlock words why w cannot use what (its label: "app.root", say)
// at path, blocked at steps[i]; "" when why is passes.
func describeBlock(what, path string, steps []step, i int, why blockage, w worker, agentsUser bool) string {
	if why == passes {
		return ""
	}
	s := steps[i]
	subject := what + " " + path
	user := fmt.Sprintf("%s (uid %d)", w.name, w.uid)
	fix := "set app.user to a user who can, move the files where " + w.name + " can reach them, or " + w.chmodFor(s)
	if agentsUser {
		fix = "move the files where " + w.name + " can reach them, or " + w.chmodFor(s)
	}
	switch why {
	case missing:
		if s.path != path && !strings.HasPrefix(path, s.path+"/") { // a link led there
			return fmt.Sprintf("%s does not exist: %s, on its way, does not; %s", subject, s.path, missingFix)
		}
		return subject + " does not exist; " + missingFix
	case notDir:
		return fmt.Sprintf("%s: %s is not a directory", subject, s.path)
	case isDirectory:
		return subject + " is a directory, not a program (a virtualenv's interpreter is its bin/python)"
	case noEntry:
		return fmt.Sprintf("the worker's user %s cannot reach %s: it may not enter %s (%s, owner %s, group %s); %s",
			user, subject, s.path, s.mode, s.owner, s.group, fix)
	default: // noExec
		return fmt.Sprintf("the worker's user %s may not execute %s: %s is %s, owner %s, group %s; %s",
			user, subject, s.path, s.mode, s.owner, s.group, fix)
	}
}

// missingFix is what to do about a program or root that does not exist.
const missingFix = "give the path of one that exists on this machine"

// maxLinks bounds the links walkPath follows, as the kernel's 40.
const maxLinks = 40

// walkPath lstats each name of path, an absolute path, following links
// as the kernel would; it stops at the first name that does not exist.
// names names the steps' owners and groups.
func walkPath(path string, names *ownerNames) []step {
	var steps []step
	rest := strings.Split(path, "/")
	cur, links := "/", 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		p := filepath.Join(cur, name)
		fi, err := os.Lstat(p)
		if err != nil {
			return append(steps, step{path: p, missing: errors.Is(err, fs.ErrNotExist)})
		}
		steps = append(steps, statStep(p, fi, names))
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = p
			continue
		}
		target, err := os.Readlink(p)
		if links++; err != nil || links > maxLinks {
			return steps
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return steps
}

func statStep(path string, fi fs.FileInfo, names *ownerNames) step {
	s := step{path: path, mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.uid, s.gid = st.Uid, st.Gid
	}
	s.owner, s.group = names.user(s.uid), names.group(s.gid)
	return s
}

// ownerNames names the owners and groups of a failed spawn's walks, each
// uid and gid looked up once (a path's steps are mostly root's), users
// and groups with the spawn's ctx: getent, which an id no file knows is
// asked of, ends with the spawn, not 10 s after it, as libc's lookups do
// built with cgo.
type ownerNames struct {
	ctx    context.Context
	byUID  lookupFunc // lookupUID; not user.LookupId: the agent's own uid would be named by $USER
	users  map[uint32]string
	groups map[uint32]string
}

// newOwnerNames is an ownerNames looking users up with ctx.
func newOwnerNames(ctx context.Context) *ownerNames {
	return &ownerNames{ctx: ctx, byUID: lookupUID, users: map[uint32]string{}, groups: map[uint32]string{}}
}

// user is uid's name, or uid itself when it has none or the lookup fails.
func (n *ownerNames) user(uid uint32) string {
	if name, ok := n.users[uid]; ok {
		return name
	}
	name := strconv.FormatUint(uint64(uid), 10)
	if u, err := n.byUID(n.ctx, name); err == nil {
		name = u.Username
	}
	n.users[uid] = name
	return name
}

// group is gid's name, or gid itself when it has none or the lookup
// fails (lookupGID, getent's or libc's built with cgo, ends with the
// spawn too).
func (n *ownerNames) group(gid uint32) string {
	if name, ok := n.groups[gid]; ok {
		return name
	}
	name := strconv.FormatUint(uint64(gid), 10)
	if g, err := lookupGID(n.ctx, name); err == nil {
		name = g.Name
	}
	n.groups[gid] = name
	return name
}

// startError words why cmd, built for spec to run as ident, could not
// start (err): which path the worker's user could not reach, a program
// that does not exist or is a directory; else err as exec said it. The
// owners it names are looked up with ctx, the spawn's.
func startError(ctx context.Context, spec Spec, cmd *exec.Cmd, ident identity, err error) string {
	if !errors.Is(err, fs.ErrPermission) && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return err.Error()
	}
	w, agentsUser := workerOf(ident)
	names := newOwnerNames(ctx)
	if filepath.IsAbs(cmd.Dir) {
		steps := walkPath(cmd.Dir, names)
		i, why := firstBlocked(steps, w, false)
		if msg := describeBlock("app.root", cmd.Dir, steps, i, why, w, agentsUser); msg != "" {
			return msg
		}
	}
	if !filepath.IsAbs(cmd.Path) {
		return err.Error()
	}
	steps := walkPath(cmd.Path, names)
	i, why := firstBlocked(steps, w, true)
	if msg := describeBlock(programLabel(spec.App), cmd.Path, steps, i, why, w, agentsUser); msg != "" {
		return msg
	}
	return err.Error()
}

// programLabel names where the program a worker runs was given.
func programLabel(app ferryv1.AppSpec) string {
	switch {
	case app.Type == ferryv1.AppTypeWSGI && app.Python != "":
		return "app.python"
	case app.Type == ferryv1.AppTypeWSGI:
		return "the interpreter (app.python unset)"
	}
	return "app.command[0]"
}

// workerOf is whom a worker run as ident runs as, with its groups, and
// whether that is the agent's own user. The name is the one the spawn
// resolved (workerIdentity), not looked up again.
func workerOf(ident identity) (worker, bool) {
	if c := ident.cred; c != nil {
		return worker{name: ident.name, uid: c.Uid, gid: c.Gid, groups: c.Groups}, false
	}
	w := worker{name: ident.name, uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		w.groups = append(w.groups, uint32(g))
	}
	return w, true
}
