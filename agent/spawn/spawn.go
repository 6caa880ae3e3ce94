package spawn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"

	"github.com/ferry-dev/ferry/agent/wsgi"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/freeport"
)

// Spec is everything needed to start one worker.
type Spec struct {
	// App is the AppGroup's app block, as of Revision.
	App ferryv1.AppSpec
	// Revision is the revision the worker is spawned for.
	Revision string
	// StartTimeout bounds the time until ready; past it the worker is killed
	// and the spawn fails.
	StartTimeout time.Duration
	// RunDir holds per-worker socket directories. Keep it short: a Unix
	// socket path may not exceed 107 bytes.
	RunDir string
	// LoaderPath is the installed WSGI loader (wsgi.Install).
	LoaderPath string
	// Log receives the worker's output lines and lifecycle messages.
	Log logr.Logger
	// Users is who the agent lets workers run as (--worker-users); the
	// zero value: anyone but root.
	Users WorkerUsers
	// OutputRate bounds the worker's output lines logged to Log; the zero
	// value: DefaultOutputRate.
	OutputRate OutputRate
	// EnvFrom reads the app's env valueFrom at each spawn (cluster mode);
	// nil: a valueFrom fails the spawn.
	EnvFrom EnvSource
	// EnvMemory, if set, keeps what EnvFrom read for Revision, and gives
	// it when the API server does not answer (one per pool); it also has
	// the app's env names the agent ignores logged once per Revision, not
	// at every spawn.
	EnvMemory *EnvMemory
}

// Error is a failed spawn.
type Error struct {
	// Reason is one line: "exited with status 1 before it was ready", "not
	// ready within startTimeout (90s)", "could not start: ...".
	Reason string
	// Output is the last lines the process wrote; for WSGI the traceback.
	Output string

	// lostPort is the port of a Command worker that exited before it was
	// ready and found held by another socket then: Spawn tries another.
	lostPort int
	// envUnread: an env valueFrom could not be read (EnvUnreadError).
	envUnread bool
}

// NotTheRevisions reports whether the spawn failed for no fault of the
// app's revision, so that its caller should not count it as a deployment
// error but back off and try again: its port taken (PortTaken), or an env
// valueFrom that could not be read (the API server away, or the agent not
// allowed to read it: EnvUnreadError).
func (e *Error) NotTheRevisions() bool { return e.PortTaken() || e.envUnread }

// PortTaken reports whether the spawn failed because another socket took
// its Command worker's port before the worker bound it, on each of
// Spawn's tries: no fault of the app's revision (something on the machine
// holds ports of 127.0.0.1), so its caller should not count it as a
// deployment error, but back off and try again.
func (e *Error) PortTaken() bool { return e.lostPort != 0 }

func (e *Error) Error() string {
	if e.Output == "" {
		return e.Reason
	}
	return e.Reason + ":\n" + e.Output
}

// Process is a running worker.
type Process struct {
	// PID is the worker's process id (and process group id).
	PID int
	// Revision is the revision it was spawned for.
	Revision string
	// Network and Address are where it serves HTTP: "unix" and a socket
	// path for WSGI, "tcp" and 127.0.0.1:PORT for Command.
	Network, Address string
	// StartedAt is when it was started.
	StartedAt time.Time

	done      chan struct{}
	exitErr   error // set before exited
	output    *tail
	sockDir   string
	port      int          // a Command worker's, held until cleanup
	uid       int          // the user it runs as
	childEnds []*os.File   // write ends of the pipes, closed once the child has them
	outputs   []outputPipe // read ends of stdout and stderr
	exited    atomic.Bool
	// sent holds the signals the agent sent the process while it still
	// ran, bit 1<<sig (Sent).
	sent atomic.Uint64
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited. Its ExitStatus is known
// from then (Done is closed a moment later, once what the process held is
// cleaned up): a reader that saw Exited never reads "" for the status.
func (p *Process) Exited() bool { return p.exited.Load() }

// ExitStatus describes how the process ended ("exit status 1", "signal:
// killed"); empty while it runs.
func (p *Process) ExitStatus() string {
	if !p.Exited() {
		return ""
	}
	if p.exitErr == nil {
		return "exit status 0"
	}
	return p.exitErr.Error()
}

// ExitsWithin reports whether the process has exited, or exits within
// d, and once it has, returns only when its exit is known (ExitStatus).
// A process that dies closes its connections a moment before it is a
// zombie, and the agent's reaper may see the zombie long after on a
// loaded machine: waiting d for the reaper alone, a death read as a
// close. So the zombie itself is looked for, at a growing interval, and
// once seen the reaper is waited for, however long it takes.
func (p *Process) ExitsWithin(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		if p.Exited() || p.zombie() {
			<-p.done
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		select {
		case <-p.done:
			return true
		case <-time.After(min(delay, left)):
		}
	}
}

// zombie reports whether the process has exited and waits to be reaped.
// false once it is reaped (the reaper set Exited first).
func (p *Process) zombie() bool {
	exited, seen := p.peekExit()
	return seen && exited
}

// DescribeExit words how the process ended: "exited with status 3", "was
// killed by a signal (segmentation fault)".
func (p *Process) DescribeExit() string { return describeExit(p.ExitStatus()) }

// Output returns the last lines the process wrote.
func (p *Process) Output() string { return p.output.String() }

// Signal sends sig to the worker's process group, and records whether the
// process still ran as it did (Sent).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.exited.Load() {
		return nil
	}
	if p.running() {
		p.sent.Or(1 << sig) // before the signal: an exit it causes is seen after
	}
	err := syscall.Kill(-p.PID, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Sent reports whether the agent sent the process sig (Signal, Stop, Kill)
// while it still ran: an exit after it may be its answer, one that came
// before cannot be. The kernel's word is taken, not the reaper's, which
// may see an exit late on a loaded machine: a process that exited a moment
// before the signal was sent, not yet reaped, was not sent it. A death
// under way as the signal goes out (the process exiting of its own, not
// yet a zombie: tearing down a large process takes a while) is taken as
// the signal's answer. Read it once Exited says the process exited (or once
// ExitStatus is not ""): from then it no longer changes.
func (p *Process) Sent(sig syscall.Signal) bool { return p.sent.Load()&(1<<sig) != 0 }

// running reports whether the process has not exited, as the kernel says:
// neither a zombie waiting for the reaper nor reaped.
func (p *Process) running() bool {
	exited, seen := p.peekExit()
	return seen && !exited
}

// peekExit asks the kernel whether the process has exited, without
// reaping it (waitid with WNOWAIT leaves that to the reaper, run): seen is
// false once the reaper has reaped it, when the kernel no longer knows it.
func (p *Process) peekExit() (exited, seen bool) {
	var info unix.Siginfo
	err := error(unix.EINTR)
	for errors.Is(err, unix.EINTR) {
		err = unix.Waitid(unix.P_PID, p.PID, &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
	}
	return info.Signo == int32(syscall.SIGCHLD), err == nil
}

// Stop sends SIGTERM to the process group, waits up to timeout for the
// worker to exit, then sends SIGKILL and waits for the exit. It reports
// whether SIGKILL was needed: whether the process still ran when the
// timeout passed (one that had exited just before, its reaper late, did
// not need it, though its group is sent it). It returns at once if the
// process has exited.
// Once the worker has exited, nothing it started runs on: its group is
// killed as it exits (run), and so is what it started outside the group.
func (p *Process) Stop(timeout time.Duration) (killed bool) {
	strays := p.strays()
	defer killStrays(strays)
	_ = p.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return false
	case <-t.C:
	}
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
	return p.Sent(syscall.SIGKILL)
}

// Kill sends SIGKILL to the process group at once, as Stop does once its
// timeout has passed, and waits for the exit: for a worker that would not
// stop on SIGTERM (stuck in a request).
func (p *Process) Kill() {
	strays := p.strays()
	defer killStrays(strays)
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// strays are the running worker's descendants outside its process group:
// a child in a session of its own (as dumb-init starts its child) gets no
// signal sent to the group. They are looked up before the worker exits,
// since its orphans are then the init process's children, and no longer
// tell whose they were. A worker that exits on its own (a crash) takes its
// group with it, but not these.
//
// Each is held by a handle (a pidfd) taken while its start time still
// says it is the process found, so the kill cannot reach a later process
// given its pid.
func (p *Process) strays() []stray {
	if p.exited.Load() {
		return nil
	}
	procs, err := processes()
	if err != nil {
		return nil
	}
	var strays []stray
	for _, q := range procs {
		if q.pgrp == p.PID || !workersProcess(procs, q, p.PID) {
			continue
		}
		h, err := os.FindProcess(q.pid) // a pidfd on Linux 5.3 and later
		if err != nil {
			continue
		}
		if now, ok := readStat(q.pid); !ok || now.start != q.start {
			_ = h.Release()
			continue
		}
		strays = append(strays, stray{q, h})
	}
	return strays
}

// stray is a process found by strays, and its handle.
type stray struct {
	process
	handle *os.Process
}

// killStrays sends SIGKILL to those of strays still running, and releases
// their handles. The worker has exited: they had their SIGTERM from it, if
// it passed them one, as dumb-init does. The start time is checked again
// for a kernel without pidfds, where the handle is the bare pid.
func killStrays(strays []stray) {
	for _, q := range strays {
		if now, ok := readStat(q.pid); ok && now.start == q.start {
			_ = q.handle.Kill()
		}
		_ = q.handle.Release()
	}
}

// portSpawns bounds the spawns of a Command worker whose port another
// socket took each time before it bound it.
const portSpawns = 3

// Spawn starts a worker and returns once it is ready. On failure the
// process is gone and the error is an *Error. A Command worker that exits
// before it is ready, its port held by another socket then (an outgoing
// connection given it, another program's listener), is spawned again on
// another port, up to portSpawns times: that is no fault of its app, and
// its caller, which counts spawn errors against the revision, sees only
// the last. The log says why it was spawned again. The app's env
// valueFrom is read once, before the first try (EnvFrom).
func Spawn(ctx context.Context, spec Spec) (*Process, error) {
	src := spec.EnvFrom
	if src != nil && spec.EnvMemory != nil {
		src = spec.EnvMemory.source(spec.Revision, src, spec.Log)
	}
	env, err := resolveEnv(ctx, spec.App.Env, src)
	if err != nil {
		var unread *EnvUnreadError
		return nil, &Error{Reason: "could not start: " + err.Error(), envUnread: errors.As(err, &unread)}
	}
	spec.App.Env = env
	for n := 1; ; n++ {
		proc, err := spawnOnce(ctx, spec)
		var se *Error
		if err == nil || !errors.As(err, &se) || se.lostPort == 0 {
			return proc, err
		}
		se.Reason += portLostNote(se.lostPort, n, portSpawns)
		if n == portSpawns || ctx.Err() != nil {
			return nil, se
		}
		spec.Log.Info("Worker's port was taken by another socket before it bound it; spawning it again on another port",
			"revision", spec.Revision, "port", se.lostPort, "reason", se.Reason, "output", contract.LastLines(se.Output, 1))
	}
}

// portLostNote says, of the nth of most spawns of a worker, that its port
// was taken, and what comes of it.
func portLostNote(port, n, most int) string {
	note := fmt.Sprintf("; its port %d was taken by another socket before it bound it", port)
	if n < most {
		return note + "; Ferry gives it another port"
	}
	return note + fmt.Sprintf(", as were the ports of its %d spawns before: see what holds ports of 127.0.0.1 (ss -tanp)", most-1)
}

// spawnOnce is one try of Spawn.
func spawnOnce(ctx context.Context, spec Spec) (*Process, error) {
	ident, err := checkSpawn(ctx, spec)
	if err != nil {
		return nil, &Error{Reason: "could not start: " + err.Error()}
	}
	cmd, proc, ready, err := prepare(spec, ident)
	if err != nil {
		return nil, &Error{Reason: "could not start: " + err.Error()}
	}
	log := spec.Log.WithValues("revision", spec.Revision)
	started := make(chan error, 1)
	go run(cmd, proc, started, log, outputRate(spec))
	if err := <-started; err != nil {
		proc.cleanup()
		if ready != nil {
			_ = ready.Close()
		}
		return nil, &Error{Reason: "could not start: " + startError(ctx, spec, cmd, ident, err)}
	}
	log.V(1).Info("Started worker", "pid", proc.PID, "argv", cmd.Args)

	timeout := spec.StartTimeout
	if timeout <= 0 {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if ready != nil {
		if err = waitLoaderReady(ctx, proc, ready); err == nil {
			err = proc.sealSockDir()
		}
		if err == nil {
			err = waitWSGIReady(ctx, proc, spec.App.ReadinessPath)
		}
	} else {
		err = waitCommandReady(ctx, proc, spec.App.ReadinessPath)
	}
	if err != nil {
		exited := proc.Exited() // of its own, before the Stop
		proc.Stop(2 * time.Second)
		lost := lostPort(proc, ready == nil && exited)
		reason := failReason(err, spec.App, proc, ready != nil, timeout, lost != 0)
		return nil, &Error{Reason: reason, Output: proc.spawnOutput(err), lostPort: lost}
	}
	return proc, nil
}

// outputRate is spec's OutputRate, or the default.
func outputRate(spec Spec) OutputRate {
	if spec.OutputRate == (OutputRate{}) {
		return DefaultOutputRate
	}
	return spec.OutputRate
}

// failReason words err, the failure of a spawn that waited up to timeout
// for proc, a WSGI worker or a Command one. portLost: Spawn says that the
// worker's port was taken (portLostNote), so the probe's own note that it
// was is left out.
func failReason(err error, app ferryv1.AppSpec, proc *Process, wsgi bool, timeout time.Duration, portLost bool) string {
	var pt *portTakenError
	if portLost && errors.As(err, &pt) {
		err = pt.err
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		if wsgi {
			return err.Error()
		}
		return err.Error() + foregroundNote(proc)
	}
	reason := fmt.Sprintf("not ready within startTimeout (%s)", timeout)
	var ur *unreadyError
	if errors.As(err, &ur) && ur.seen != "" {
		reason += ": " + ur.seen
	}
	if errors.As(err, &pt) {
		reason += pt.note()
	}
	if wsgi && ur == nil { // else loaded, its readiness path failing
		reason += stillLoading(app, timeout)
	}
	return reason
}

// lostPort is the port of a Command worker that exited of its own before
// it was ready (exitedCommand), when another socket holds it now (the
// worker's own are closed: it and its group are gone); 0 otherwise. A
// port on which a socket of the worker's user listens is not lost: that
// is the worker's own doing (a command that daemonizes, a child outside
// its process group serving $PORT), the revision's fault, which a retry
// on another port would only repeat (and the pool would retry for ever,
// PortTaken). What took a port from a worker that did not bind it in time
// is a socket of another's: a client connection's local port, another
// program's listener.
func lostPort(proc *Process, exitedCommand bool) int {
	if !exitedCommand {
		return 0
	}
	if taken, err := freeport.InUse("127.0.0.1", proc.port); err != nil || !taken {
		return 0
	}
	if listenedByUser(proc.port, proc.uid) {
		return 0
	}
	return proc.port
}

// stillLoading says, of a WSGI worker whose loader had not reported ready
// within timeout, that its app was still loading, and what to do.
func stillLoading(app ferryv1.AppSpec, timeout time.Duration) string {
	startup := app.StartupFile
	if startup == "" {
		startup = "passenger_wsgi.py"
	}
	return fmt.Sprintf(": the app was still loading (importing %s); if it needs longer, raise pool.startTimeout (now %s)",
		startup, timeout)
}

// foregroundNote says, of a Command worker that exited with status 0
// before it was ready, that its command must not daemonize.
func foregroundNote(proc *Process) string {
	if !proc.Exited() || proc.ExitStatus() != "exit status 0" {
		return ""
	}
	return "; the command must stay in the foreground, serving, not fork into the background (daemonize) and exit: " +
		"Ferry watches the process it started, and kills what it leaves behind"
}

// run starts cmd on a locked OS thread and waits for it there: Pdeathsig
// fires when the forking thread exits and no_new_privs is per thread (see
// the package doc). The thread is never unlocked, so it exits with this
// goroutine, after the worker has exited.
func run(cmd *exec.Cmd, proc *Process, started chan<- error, log logr.Logger, rate OutputRate) {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		proc.closeChildEnds()
		for _, out := range proc.outputs {
			_ = out.r.Close()
		}
		started <- fmt.Errorf("setting no_new_privs: %w", err)
		return
	}
	if err := cmd.Start(); err != nil {
		proc.closeChildEnds()
		for _, out := range proc.outputs {
			_ = out.r.Close()
		}
		started <- err
		return
	}
	// The child holds its copies of the pipes' write ends now.
	proc.closeChildEnds()
	proc.PID = cmd.Process.Pid
	outLog := newOutputLog(rate, log, proc.PID)
	for _, out := range proc.outputs {
		go proc.output.copyLines(out.r, out.stream, outLog)
	}
	go func() {
		<-proc.output.closed
		outLog.close()
	}()
	started <- nil
	// What the worker left in its group (children that ignored SIGTERM, or
	// that a crashed worker left behind) must not outlive it. The group is
	// killed while the worker is a zombie, not yet reaped, so that its pid,
	// the group's id, cannot have gone to another process.
	var info unix.Siginfo
	err := error(unix.EINTR)
	for errors.Is(err, unix.EINTR) {
		err = unix.Waitid(unix.P_PID, proc.PID, &info, unix.WEXITED|unix.WNOWAIT, nil)
	}
	if err == nil { // else the worker may still run: Wait says how it ends
		_ = syscall.Kill(-proc.PID, syscall.SIGKILL)
	}
	err = cmd.Wait()
	proc.exitErr = err
	proc.exited.Store(true)
	proc.cleanup()
	close(proc.done)
	log.V(1).Info("Worker exited", "pid", proc.PID, "status", proc.ExitStatus())
}

type outputPipe struct {
	r      *os.File
	stream string
}

func (p *Process) closeChildEnds() {
	for _, f := range p.childEnds {
		_ = f.Close()
	}
	p.childEnds = nil
}

// cleanup removes what the worker was given: its socket directory, its
// port. It runs once: when the process exited, or when it never started.
func (p *Process) cleanup() {
	if p.sockDir != "" {
		_ = os.RemoveAll(p.sockDir)
	}
	if p.port != 0 {
		releasePort(p.port) // p.port stays: waitCommandReady reads it
	}
}

// spawnOutput is what a failed spawn reports: the loader's traceback when
// it sent one, else the process's last output lines. A traceback that is
// only the loader's error line (no frames of the app's: a LoadError, a
// FileNotFoundError from opening the file) is left out: the reason says
// it already, and its output would say it a second time.
func (p *Process) spawnOutput(err error) string {
	var le *loaderError
	if errors.As(err, &le) && le.traceback != "" {
		if le.tracebackIsSummary() {
			return ""
		}
		return strings.TrimRight(le.traceback, "\n")
	}
	// Give the output readers a moment to drain what the process wrote
	// just before it exited.
	p.output.waitClosed(200 * time.Millisecond)
	return p.output.String()
}

// loaderError is the WSGI loader's own report of a failed import.
type loaderError struct {
	summary, traceback string
}

func (e *loaderError) Error() string { return "the app failed to load: " + e.summary }

// tracebackIsSummary reports whether the traceback is one line that says
// no more than the summary: "LoadError: <summary>" or the summary itself.
func (e *loaderError) tracebackIsSummary() bool {
	tb := strings.TrimSpace(e.traceback)
	return !strings.Contains(tb, "\n") && (tb == e.summary || strings.HasSuffix(tb, ": "+e.summary))
}

func waitLoaderReady(ctx context.Context, proc *Process, ready *os.File) error {
	msgc := make(chan error, 1)
	go func() {
		defer ready.Close()
		msg, err := wsgi.ReadMessage(ready)
		switch {
		case err != nil:
			msgc <- err
		case msg.Error != "":
			msgc <- &loaderError{summary: msg.Error, traceback: msg.Traceback}
		case !msg.Ready:
			msgc <- errors.New("the loader sent no ready message")
		default:
			msgc <- nil
		}
	}()
	select {
	case err := <-msgc:
		if err == nil {
			return nil
		}
		var le *loaderError
		if errors.As(err, &le) {
			return err
		}
		// The pipe closed without a message: the process is exiting.
		select {
		case <-proc.done:
			return exitError(proc)
		case <-time.After(2 * time.Second):
			return fmt.Errorf("the loader closed its ready pipe without a message: %w", err)
		}
	case <-proc.done:
		// The loader writes its error and exits at once: the exit may win
		// the race, but the message is in the pipe, and the pipe is at EOF
		// now. Prefer the loader's own account.
		select {
		case err := <-msgc:
			var le *loaderError
			if errors.As(err, &le) {
				return err
			}
		case <-time.After(time.Second):
		}
		return exitError(proc)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func exitError(proc *Process) error {
	return fmt.Errorf("%s before it was ready", describeExit(proc.ExitStatus()))
}

// describeExit words an exit status as Go's os/exec gives it ("exit
// status 1", "signal: killed", "signal: segmentation fault (core
// dumped)"): a signal by its name (SIGKILL, SIGSEGV) as well as Go's
// text, and SIGKILL with who sends it, since nothing else says.
func describeExit(status string) string {
	if code, ok := strings.CutPrefix(status, "exit status "); ok {
		return "exited with status " + code
	}
	text, ok := strings.CutPrefix(status, "signal: ")
	if !ok {
		return "exited (" + status + ")"
	}
	text, core := strings.CutSuffix(text, " (core dumped)")
	name := signalName(text)
	if name == "SIGKILL" {
		return "was killed (SIGKILL: by the kernel's out-of-memory killer, or by someone; see dmesg)"
	}
	if name != "" {
		text = name + ": " + text
	}
	if core {
		text += ", core dumped"
	}
	return "was killed by a signal (" + text + ")"
}

// signalName is the name (SIGSEGV) of the signal Go words as text
// ("segmentation fault"); "" for none.
func signalName(text string) string {
	for sig := syscall.Signal(1); sig < 65; sig++ {
		if sig.String() == text {
			return unix.SignalName(sig)
		}
	}
	return ""
}

// waitCommandReady polls the Command app at its address until it
// answers (pollReady). An answer counts only when the socket that listens
// on the port is the worker's (listener.go), or /proc cannot tell; the
// error of a spawn that fails after another process answered in its place
// says so (portTaken).
func waitCommandReady(ctx context.Context, proc *Process, path string) error {
	taken := false // another process answered on the worker's port
	err := pollReady(ctx, proc, path, readyPoll{
		client: probeClient(&http.Transport{DisableKeepAlives: true, Proxy: nil}),
		host:   proc.Address,
		theWorkers: func() bool {
			if listenerOwner(proc.PID, proc.uid, proc.port) == ownerOther {
				// Keep polling rather than fail now: the worker, which
				// could not bind, is expected to exit, and its exit status
				// and output make the better error; one that does not exit
				// runs out startTimeout.
				taken = true
				return false
			}
			return !proc.exited.Load() // an exited worker's port is no one's: the answer was another's
		},
		seen: func(last sighting) string {
			return last.describe(proc.Address, path, proc.port, insteadOf(proc, last))
		},
	})
	if err == nil {
		return nil
	}
	return portTaken(err, taken, proc.Address)
}

// readyPoll is what a readiness poll of one kind of worker brings to
// pollReady.
type readyPoll struct {
	client     *http.Client
	host       string                     // the address (and Host) the probe asks
	theWorkers func() bool                // a ready answer was the worker's; false polls on
	seen       func(last sighting) string // what the last probe found, for an unreadyError
}

// pollReady probes the worker proc (probe, over p's client and host) until
// it answers path below 500 and p.theWorkers agrees: quickly at first
// (apps often start in milliseconds), backing off to 100ms. A worker that
// exits meanwhile is an exit before it was ready (exitError); past ctx's
// deadline the error is an unreadyError saying what the last probe found.
func pollReady(ctx context.Context, proc *Process, path string, p readyPoll) error {
	delay := 5 * time.Millisecond
	var last sighting
	for {
		s := probe(ctx, p.client, p.host, path)
		if ctx.Err() == nil && s.saysMoreThan(last) { // else the deadline cut the probe short: the one before says more
			last = s
		}
		if s.ready() && p.theWorkers() {
			return nil
		}
		select {
		case <-proc.done:
			return exitError(proc)
		case <-ctx.Done():
			return &unreadyError{err: ctx.Err(), seen: p.seen(last)}
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// portTaken adds to a failed spawn's error that its port was another
// process's, when the probe found one there.
func portTaken(err error, taken bool, addr string) error {
	if !taken {
		return err
	}
	return &portTakenError{err: err, addr: addr}
}

// portTakenError: the spawn failed (err), and the probe found another
// process answering on the worker's port.
type portTakenError struct {
	err  error
	addr string
}

func (e *portTakenError) Error() string { return e.err.Error() + e.note() }
func (e *portTakenError) Unwrap() error { return e.err }

func (e *portTakenError) note() string {
	return "; its port " + e.addr + " was taken by a process outside the worker, which answered in its place"
}

// probeTimeout bounds one readiness probe.
const probeTimeout = time.Second

// probeClient is the client of a readiness probe over t. It follows no
// redirect: a 3xx is an answer below 500, so the worker is ready (an app
// that redirects every plain-HTTP request to https, Django's
// SECURE_SSL_REDIRECT, answers its readiness path 301); following it would
// ask another address, the https one, which the worker does not serve.
func probeClient(t *http.Transport) *http.Client {
	return &http.Client{
		Timeout:   probeTimeout,
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// sighting is what one readiness probe found at the worker's address.
type sighting struct {
	refused bool  // nothing accepted the connection
	status  int   // the status of the answer to the readiness path; 0: none
	err     error // the probe failed otherwise (no answer within its timeout)
}

// ready: the probe found the app serving.
func (s sighting) ready() bool {
	return !s.refused && s.err == nil && s.status < 500
}

// stalled: the probe could not even connect within probeTimeout, where a
// loopback connection is accepted or refused at once: on a loaded machine,
// a stall of the agent's, which says nothing of the worker.
func (s sighting) stalled() bool {
	var op *net.OpError
	return errors.As(s.err, &op) && op.Op == "dial" && op.Timeout()
}

// saysMoreThan reports whether s, the latest probe's sighting, should
// stand for what the probes found rather than last, the one before: not
// when s stalled and last found something (refused, or an answer), which
// the message can then word (where the app listens instead, say).
func (s sighting) saysMoreThan(last sighting) bool {
	return !s.stalled() || !last.refused && last.status == 0
}

// insteadOf is where the worker proc listens instead of its address,
// when the last probe found nothing there (listensInstead); "" when it
// found something, or /proc cannot tell.
func insteadOf(proc *Process, last sighting) string {
	if !last.refused {
		return ""
	}
	return listensInstead(workerListens(proc.PID, proc.port), proc.port)
}

// describe words what the last probe found, for a worker that was not
// ready in time, so that the reader sees what was waited for: "" when
// there was no probe, or it found the app serving (another process's, as
// portTakenError then says). instead is where the app listens instead,
// when nothing accepted connections ("": not known); port is 0 for a
// WSGI worker's socket, which the loader, not the app, listens on.
func (s sighting) describe(addr, path string, port int, instead string) string {
	switch {
	case s.refused && instead != "":
		return fmt.Sprintf("nothing accepted connections on %s: %s", addr, instead)
	case s.refused && port == 0:
		return fmt.Sprintf("nothing accepted connections on %s", addr)
	case s.refused:
		return fmt.Sprintf("nothing accepted connections on %s (the app must listen on $PORT, %d)", addr, port)
	case s.err != nil && path == "":
		return fmt.Sprintf("connecting to %s failed (%v)", addr, s.err)
	case s.err != nil:
		var ne net.Error
		if errors.As(s.err, &ne) && ne.Timeout() {
			return fmt.Sprintf("GET %s on %s got no answer within %s", path, addr, probeTimeout)
		}
		return fmt.Sprintf("GET %s on %s failed (%v)", path, addr, s.err)
	case s.status >= 500:
		return fmt.Sprintf("GET %s on %s answered %d %s until then (readiness takes a status below 500)",
			path, addr, s.status, http.StatusText(s.status))
	}
	return ""
}

// probe connects to the worker's address, and when the app has a
// readiness path, GETs it there.
func probe(ctx context.Context, client *http.Client, addr, path string) sighting {
	if path == "" {
		c, err := (&net.Dialer{Timeout: probeTimeout}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return sighting{refused: errors.Is(err, syscall.ECONNREFUSED), err: err}
		}
		_ = c.Close()
		return sighting{}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return sighting{err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return sighting{refused: errors.Is(err, syscall.ECONNREFUSED), err: err}
	}
	_ = resp.Body.Close()
	return sighting{status: resp.StatusCode}
}

// unreadyError: a Command worker was not ready in time (err), and what
// the last probe found there (seen).
type unreadyError struct {
	err  error
	seen string
}

func (e *unreadyError) Error() string {
	if e.seen == "" {
		return e.err.Error()
	}
	return e.err.Error() + ": " + e.seen
}

func (e *unreadyError) Unwrap() error { return e.err }

var sockSeq atomic.Uint64

// makeSockDir creates a new directory for a worker's socket in run, mode
// 0700, and never one that exists: the worker's loader unlinks whatever
// socket is at its path before it binds its own, so a directory shared
// with another agent (two standalone agents given one --state-dir, or an
// agent restarted next to its predecessor's leftovers) would hand that
// agent's requests to this worker. The name is short (a socket's path may
// not exceed 107 bytes): the agent's pid and its next number, a name taken
// anyway being skipped.
func makeSockDir(run string) (string, error) {
	if err := os.MkdirAll(run, 0o755); err != nil {
		return "", err
	}
	pid := strconv.FormatInt(int64(os.Getpid()), 36)
	for {
		dir := filepath.Join(run, pid+"."+strconv.FormatUint(sockSeq.Add(1), 36))
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
}

// sealSockDir takes a WSGI worker's socket directory back from it once its
// loader listens. The agent connects to the socket at its path, as root,
// which may connect to any socket: a worker still able to change the
// directory could put a link to another socket in its socket's place (the
// standalone agent's admin socket, another app's worker's) and have its
// clients answered from there. The socket found there once the directory
// is the agent's must then be the worker's own: a socket, not a link, of
// the worker's user. A worker of the agent's own user gains nothing.
//
// The chown leaves the mode, and any ACL, as the worker set them while it
// owned the directory: it could have opened it to itself (0777, or an
// entry naming its user) and replace the socket after the check. The mode
// is set again once the worker can no longer change it, and 0700 also
// sets an ACL's mask to nothing, which voids its named entries.
func (p *Process) sealSockDir() error {
	if p.uid == os.Geteuid() {
		return nil
	}
	if err := os.Chown(p.sockDir, os.Geteuid(), os.Getegid()); err != nil {
		return fmt.Errorf("taking back the socket directory: %w", err)
	}
	if err := os.Chmod(p.sockDir, 0o700); err != nil {
		return fmt.Errorf("taking back the socket directory: %w", err)
	}
	fi, err := os.Lstat(p.Address)
	if err != nil {
		return fmt.Errorf("the worker's socket: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); fi.Mode().Type() != fs.ModeSocket || !ok || int(st.Uid) != p.uid {
		return fmt.Errorf("%s is not the worker's own socket: its app replaced it", p.Address)
	}
	return nil
}

// prepare builds the command for spec, run as ident (checkSpawn's), without
// starting it. For WSGI it also returns the read end of the loader's ready
// pipe.
func prepare(spec Spec, ident identity) (_ *exec.Cmd, _ *Process, _ *os.File, err error) {
	proc := &Process{Revision: spec.Revision, StartedAt: time.Now(), done: make(chan struct{}), uid: int(ident.uid())}
	var l launch
	// Whatever fails below, nothing opened or created here may leak: a
	// spawn that keeps failing is retried for as long as it fails.
	defer func() {
		if err == nil {
			return
		}
		l.closePipe()
		proc.closeChildEnds()
		for _, out := range proc.outputs {
			_ = out.r.Close()
		}
		proc.cleanup()
	}()
	if l, err = appLaunch(spec, proc, ident); err != nil {
		return nil, nil, nil, err
	}
	own, ignored := appEnv(spec.App, l)
	if len(ignored) > 0 && spec.EnvMemory.sayIgnored(spec.Revision) {
		spec.Log.Info("The app's env sets variables the agent sets for its workers; the agent's values are used, the app's ignored",
			"revision", spec.Revision, "ignored", strings.Join(ignored, " "))
	}
	env := append(append(baseEnv(ident), l.env...), own...)
	if len(l.argv) == 0 {
		return nil, nil, nil, errors.New("empty command")
	}
	path, err := lookPath(l.argv[0], envValue(env, "PATH"), spec.App.Root)
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := &exec.Cmd{Path: path, Args: l.argv, Dir: spec.App.Root, Env: env}
	if l.readyW != nil {
		cmd.ExtraFiles = []*os.File{l.readyW} // fd 3 == wsgi.ReadyFD
		proc.childEnds = append(proc.childEnds, l.readyW)
		l.readyW = nil // closed with the other child ends from now on
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: ident.cred,
	}
	if err := attachOutput(cmd, proc); err != nil {
		return nil, nil, nil, err
	}
	return cmd, proc, l.ready, nil
}

// checkSpawn checks that spec may be spawned (its user, which
// --worker-users allows; its root) and returns who its worker runs as;
// its user's lookups end with ctx.
func checkSpawn(ctx context.Context, spec Spec) (identity, error) {
	ident, err := workerIdentity(ctx, spec.App.User, spec.Users)
	if err != nil {
		return identity{}, err
	}
	if err := checkRoot(spec.App.Root); err != nil {
		return identity{}, err
	}
	if spec.App.Type == ferryv1.AppTypeWSGI {
		return ident, checkStartupFile(spec.App.Root, spec.App.StartupFile)
	}
	return ident, nil
}

// launch is how an app type runs: its command line, its environment
// beyond the base one and the app's own, the port of a Command app, and
// the pipe a WSGI loader says it is ready on (ready, the agent's end;
// readyW, the child's).
type launch struct {
	argv          []string
	env           []string
	port          int
	ready, readyW *os.File
}

// closePipe closes the ends of the ready pipe still held.
func (l launch) closePipe() {
	for _, f := range []*os.File{l.ready, l.readyW} {
		if f != nil {
			_ = f.Close()
		}
	}
}

// appLaunch sets proc up for spec's app type (where it serves) and
// returns how to run it.
func appLaunch(spec Spec, proc *Process, ident identity) (launch, error) {
	switch spec.App.Type {
	case ferryv1.AppTypeWSGI:
		return wsgiLaunch(spec, proc, ident)
	case ferryv1.AppTypeCommand:
		return commandLaunch(spec, proc)
	}
	return launch{}, fmt.Errorf("unknown app type %q", spec.App.Type)
}

// wsgiLaunch runs the WSGI loader on a socket in a directory of proc's
// own, which the worker's user owns.
func wsgiLaunch(spec Spec, proc *Process, ident identity) (launch, error) {
	var err error
	if proc.sockDir, err = makeSockDir(spec.RunDir); err != nil {
		return launch{}, err
	}
	if ident.cred != nil {
		if err := os.Chown(proc.sockDir, int(ident.cred.Uid), int(ident.cred.Gid)); err != nil {
			return launch{}, err
		}
	}
	proc.Network, proc.Address = "unix", filepath.Join(proc.sockDir, "s")
	opts := wsgi.Options{
		Python: spec.App.Python, Root: spec.App.Root, StartupFile: spec.App.StartupFile,
		Socket: proc.Address, Revision: spec.Revision,
	}
	l := launch{argv: opts.Argv(spec.LoaderPath), env: opts.Env()}
	if l.ready, l.readyW, err = os.Pipe(); err != nil {
		return launch{}, err
	}
	return l, nil
}

// commandLaunch runs the app's command on a free local port, $(PORT) in
// its arguments replaced by it.
func commandLaunch(spec Spec, proc *Process) (launch, error) {
	port, err := pickPort()
	if err != nil {
		return launch{}, err
	}
	proc.port = port
	proc.Network, proc.Address = "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l := launch{port: port, env: []string{"FERRY_REVISION=" + spec.Revision}}
	for _, a := range spec.App.Command {
		l.argv = append(l.argv, strings.ReplaceAll(a, "$(PORT)", strconv.Itoa(port)))
	}
	return l, nil
}

// appEnv is the app's environment as its template gives it, then PORT, a
// Command app's port. The variables l sets (the WSGI loader's FERRY_*,
// FERRY_REVISION) and PORT are the agent's: the app's own value of one,
// which the API and a standalone file refuse but a pool written before
// they did may hold, is left out (ignored names it), since the last value
// of a name is the one the worker gets and the loader would listen
// elsewhere than where the agent waits.
func appEnv(app ferryv1.AppSpec, l launch) (env, ignored []string) {
	agents := map[string]bool{}
	for _, kv := range l.env {
		name, _, _ := strings.Cut(kv, "=")
		agents[name] = true
	}
	if l.port != 0 {
		agents["PORT"] = true
	}
	for _, e := range app.Env {
		if agents[e.Name] {
			ignored = append(ignored, e.Name)
			continue
		}
		env = append(env, e.Name+"="+e.Value)
	}
	if l.port != 0 {
		env = append(env, "PORT="+strconv.Itoa(l.port))
	}
	return env, ignored
}

// attachOutput gives the command pipes of our own for its stdout and
// stderr, kept in proc, rather than io.Writers: exec would otherwise copy
// the output in goroutines that Wait waits for, and a worker's orphaned
// child holding stdout open would keep Wait from returning.
func attachOutput(cmd *exec.Cmd, proc *Process) error {
	proc.output = newTail(64, 4096)
	for _, stream := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		if stream == "stdout" {
			cmd.Stdout = w
		} else {
			cmd.Stderr = w
		}
		proc.childEnds = append(proc.childEnds, w)
		proc.outputs = append(proc.outputs, outputPipe{r, stream})
	}
	return nil
}

// checkRoot says so when the app's root is not a directory: exec would
// report a missing working directory as a missing interpreter ("fork/exec
// /usr/bin/python3: no such file or directory"), which sends the reader
// to the wrong place.
func checkRoot(root string) error {
	if root == "" {
		return nil
	}
	st, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("app.root %s does not exist", root)
	case err != nil:
		return fmt.Errorf("app.root: %w", err)
	case !st.IsDir():
		return fmt.Errorf("app.root %s is not a directory", root)
	}
	return nil
}

// checkStartupFile says so when a WSGI app's startupFile is not a file in
// its root: the loader would only fail to open it, and its traceback
// (FileNotFoundError with a path) names neither the field nor the root.
// Given a module name, as gunicorn takes it ("mysite.wsgi:application"),
// it names the file meant, if that is there. An error other than its
// absence (the agent may not search the root) is the loader's to report,
// as the worker's user may: the loader checks again, for a file removed
// after this check.
func checkStartupFile(root, startup string) error {
	if startup == "" {
		startup = wsgi.DefaultStartupFile
	}
	st, err := os.Stat(filepath.Join(root, startup))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		msg := fmt.Sprintf("app.startupFile %s: no such file in app.root %s", startup, root)
		if meant := moduleFile(startup); meant != "" {
			if st, err := os.Stat(filepath.Join(root, meant)); err == nil && !st.IsDir() {
				msg += "; startupFile is a path, not a module name: did you mean " + meant + "?"
			}
		}
		return errors.New(msg)
	case err == nil && st.IsDir():
		return fmt.Errorf("app.startupFile %s: a directory in app.root %s, not a file", startup, root)
	}
	return nil
}

// moduleFile is the file a module name, as gunicorn takes it
// ("mysite.wsgi:application"), stands for: "mysite/wsgi.py"; "" when
// startup is no module name. The loader's _module_file, for ASCII names.
func moduleFile(startup string) string {
	module, _, _ := strings.Cut(startup, ":")
	parts := strings.Split(module, ".")
	for _, p := range parts {
		if !isIdentifier(p) {
			return ""
		}
	}
	return strings.Join(parts, "/") + ".py"
}

// isIdentifier reports whether s is an ASCII Python identifier.
func isIdentifier(s string) bool {
	for i, c := range s {
		letter := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		digit := '0' <= c && c <= '9'
		if !letter && (i == 0 || !digit) {
			return false
		}
	}
	return s != ""
}

// heldPorts are the loopback ports given to this agent's Command workers
// that have not exited. The kernel counts a port as taken only once the
// worker binds it, which takes it a while after freePort asked: without
// this, two workers spawned at once could be given the same port, and
// the one that failed to bind it could pass its readiness probe on the
// other, which may be another app's.
var heldPorts = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// portTries bounds freePort's draws; each is at random from thousands of
// ports, so a second draw is rare and a tenth never happens.
const portTries = 64

// freePort picks a free loopback port outside the kernel's ephemeral
// range (freeport.Spare), so that no outgoing connection from 127.0.0.1
// takes it while the worker boots, and that no worker of this agent
// holds; it holds it until releasePort. Another process could still bind
// it before the worker does; the worker then fails to start and the
// spawn is reported (and retried) like any other spawn error.
func freePort() (int, error) {
	for range portTries {
		port, err := freeport.Spare("127.0.0.1")
		if err != nil {
			return 0, err
		}
		heldPorts.Lock()
		held := heldPorts.m[port]
		if !held {
			heldPorts.m[port] = true
		}
		heldPorts.Unlock()
		if !held {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port in %d tries", portTries)
}

// pickPort is freePort; a test gives a worker a port another process holds.
var pickPort = freePort

// releasePort gives back a port freePort held (cleanup, once per worker).
func releasePort(port int) {
	heldPorts.Lock()
	delete(heldPorts.m, port)
	heldPorts.Unlock()
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// lookPath resolves name the way the worker's exec would, against the
// worker's PATH rather than the agent's. Names with a slash are taken
// relative to the working directory dir.
func lookPath(name, path, dir string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) && dir != "" {
			return filepath.Join(dir, name), nil
		}
		return name, nil
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in the worker's PATH (%s)", name, path)
}
