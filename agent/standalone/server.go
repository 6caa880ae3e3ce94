package standalone

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/appfile"
	"github.com/ferry-dev/ferry/agent/metrics"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	"github.com/ferry-dev/ferry/agent/spawn"
	"github.com/ferry-dev/ferry/agent/wsgi"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// Options configure a standalone agent.
type Options struct {
	// File holds the AppGroups to serve.
	File string
	// BindAddress is the address the proxies listen on ("" = all).
	BindAddress string
	// AdminSocket is the path of the admin Unix socket.
	AdminSocket string
	// StateDir holds the WSGI loader and the workers' sockets.
	StateDir string
	// Proxy holds the proxies' timeouts and limits.
	Proxy proxy.Options
	// RestartFilePoll is how often tmp/restart.txt is checked; negative
	// turns the check off. Default 1s.
	RestartFilePoll time.Duration
	// WorkerUsers is who workers may run as (--worker-users); the zero
	// value: anyone but root.
	WorkerUsers spawn.WorkerUsers
	// Log is the agent's logger.
	Log logr.Logger
	// Metrics, if set, receives the pools' and proxies' metrics.
	Metrics *metrics.Metrics
	// Agent describes the agent in `status` (name and version).
	Agent string
}

// Server is a running standalone agent.
type Server struct {
	opts   Options
	log    logr.Logger
	loader string
	runDir string
	// made are the directories this run created (each the outermost that
	// did not exist): an agent that fails to start removes them.
	made []string

	mu   sync.Mutex
	apps map[string]*app
	// reloading makes reloads (SIGHUP, the admin socket) one at a time:
	// each compares the file with what runs.
	reloading sync.Mutex
	// reloadFailed is the last reload's failure, until one succeeds
	// (under mu): status shows it, as the log alone is easy to miss.
	reloadFailed *ReloadFailure
	// names are, per AppGroup name, the revisions it had (under mu). They
	// outlive a reload and the AppGroup's removal from the file: a
	// restart's generated name stands for that restart alone.
	names map[string]*revisionNames
}

// revisionNames are the revisions an AppGroup had in the agent's life,
// and how far a restart without --revision counted from each revision of
// the file (base): a reload that changes the file's revision and changes
// it back continues from the last restart of that revision, not from +1,
// and a name a --revision took is skipped, not refused as the one running.
type revisionNames struct {
	had      map[string]bool
	restarts map[string]int // by base
}

// namesLocked are the revisions AppGroup name had (under mu).
func (s *Server) namesLocked(name string) *revisionNames {
	n, ok := s.names[name]
	if !ok {
		n = &revisionNames{had: map[string]bool{}, restarts: map[string]int{}}
		s.names[name] = n
	}
	return n
}

// next is the name of base's next restart: base+N, N counting up from the
// last one and skipping any name the AppGroup had.
func (n *revisionNames) next(base string) string {
	for {
		n.restarts[base]++
		if r := base + "+" + strconv.Itoa(n.restarts[base]); !n.had[r] {
			return r
		}
	}
}

// app is one AppGroup being served.
type app struct {
	ag       ferryv1.AppGroup
	base     string // the revision computed from the file
	revision string // the revision the pool runs (base, or a restart's)
	pool     *pool.Pool
	proxy    *proxy.Server
	ln       net.Listener // proxy's: a move closes it at once
	addr     string
	restartF fileStamp
	// untrack ends the pool's metrics (nil without metrics).
	untrack func()
	// drains counts the proxies a move left draining: stop waits for
	// them before it closes the pool they still send to.
	drains sync.WaitGroup
	// conds are the pool's conditions as last seen, kept as they change
	// (watchConditions), not only when status is asked for.
	conds conditions
	quit  chan struct{} // closed by stop: watchConditions ends
}

// conditions keeps a pool's conditions as meta.SetStatusCondition keeps
// an object's: a condition's LastTransitionTime is when its status last
// changed, not when it was last read.
type conditions struct {
	mu    sync.Mutex
	conds []metav1.Condition
}

// observe takes p's status and merges its conditions, under c.mu: two
// observations cannot merge an older snapshot after a newer one. It
// returns the status and a copy of the conditions.
func (c *conditions) observe(p *pool.Pool) (pool.Status, []metav1.Condition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, now := p.Status(), time.Now()
	for _, cond := range st.Conditions(now) {
		cond.LastTransitionTime = metav1.Time{Time: now}
		meta.SetStatusCondition(&c.conds, cond) // keeps the time while the status stays
	}
	return st, slices.Clone(c.conds)
}

// watchConditions observes a's conditions at every change of its pool,
// so that a condition's transition time is when its pool changed: one
// that turned and turned back between two status calls shows when it
// turned back, not when status was next asked for.
func (a *app) watchConditions() {
	for {
		changed := a.pool.Changed()
		a.conds.observe(a.pool)
		select {
		case <-changed:
		case <-a.quit:
			return
		}
	}
}

type fileStamp struct {
	mtime time.Time
	size  int64
	ok    bool
}

// New prepares the state directory and installs the WSGI loader.
func New(opts Options) (*Server, error) {
	if opts.RestartFilePoll == 0 {
		opts.RestartFilePoll = time.Second
	}
	runDir := filepath.Join(opts.StateDir, "w")
	spoolParent := cmp.Or(opts.Proxy.SpoolDir, opts.StateDir)
	s := &Server{opts: opts, log: opts.Log, runDir: runDir, apps: map[string]*app{}, names: map[string]*revisionNames{},
		made: notYet(opts.StateDir, runDir, filepath.Join(opts.StateDir, "loader"), spoolParent,
			filepath.Join(spoolParent, proxy.SpoolDirName))}
	fail := func(err error) (*Server, error) {
		s.removeMade()
		return nil, err
	}
	// Workers run as other users: they must traverse these directories.
	for _, d := range []string{opts.StateDir, runDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(err)
		}
		if err := ownDir(d); err != nil {
			return fail(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return fail(err)
		}
	}
	if err := s.opts.Proxy.UseSpoolDir(opts.StateDir); err != nil {
		return fail(err)
	}
	loader, err := wsgi.Install(filepath.Join(opts.StateDir, "loader"))
	if err != nil {
		return fail(fmt.Errorf("installing the WSGI loader: %w", err))
	}
	s.loader = loader
	return s, nil
}

// ownDir refuses a state directory that is a symbolic link or that
// another user owns. The proxy finds the workers' sockets by path there:
// whoever can change what the path names (another user who made
// /tmp/ferry-<uid> first, as a directory or as a link they can later point
// elsewhere) could put their own socket where the agent connects, and take
// the app's requests.
func ownDir(d string) error {
	fi, err := os.Lstat(d)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("state directory %s is a symbolic link: give the directory it names (--state-dir), so that no one who can change the link can move the workers' sockets", d)
	case !fi.IsDir():
		return fmt.Errorf("state directory %s is not a directory", d)
	case ok && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("state directory %s belongs to uid %d, not to this agent's user (uid %d): another user may have made it first; remove it, or choose another --state-dir",
			d, st.Uid, os.Geteuid())
	}
	return nil
}

// notYet lists, of paths, the outermost directory of each that does not
// exist (itself or an ancestor): what creating it creates.
func notYet(paths ...string) []string {
	var out []string
	for _, p := range paths {
		top := ""
		for d := filepath.Clean(p); ; d = filepath.Dir(d) {
			if _, err := os.Lstat(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
				break
			}
			top = d
			if filepath.Dir(d) == d {
				break
			}
		}
		if top != "" && !slices.Contains(out, top) {
			out = append(out, top)
		}
	}
	return out
}

// removeMade removes the directories this run created, for an agent that
// fails to start: a refused start leaves no state directory behind. Not
// one that holds the admin socket while another agent answers on it: that
// agent, started at the same moment on the same directory, uses it.
func (s *Server) removeMade() {
	other := false
	if c, err := net.DialTimeout("unix", s.opts.AdminSocket, time.Second); err == nil {
		_ = c.Close()
		other = true
	}
	for _, d := range s.made {
		if rel, err := filepath.Rel(d, s.opts.AdminSocket); other && err == nil && filepath.IsLocal(rel) {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			s.log.Error(err, "Could not remove a directory made for this run", "dir", d)
		}
	}
	s.made = nil
}

// Run loads the file, serves every AppGroup in it and the admin socket,
// and blocks until ctx is done; then it drains and stops everything.
func (s *Server) Run(ctx context.Context) error {
	groups, err := appfile.Load(s.opts.File)
	if err != nil {
		s.removeMade()
		return err
	}
	s.made = append(s.made, notYet(filepath.Dir(s.opts.AdminSocket))...)
	admin, err := listenAdmin(s.opts.AdminSocket)
	if err != nil {
		s.removeMade()
		return err
	}
	for _, ag := range groups {
		if err := s.start(ag); err != nil {
			s.shutdown()
			_ = admin.Close()
			s.removeMade()
			return err
		}
	}
	s.made = nil // started: what it made is its state directory
	adminSrv := s.adminServer()
	go func() { _ = adminSrv.Serve(admin) }()
	s.log.Info("Serving", "file", s.opts.File, "appgroups", len(groups), "adminSocket", s.opts.AdminSocket)
	if s.opts.RestartFilePoll > 0 {
		go s.watchRestartFiles(ctx)
	}
	<-ctx.Done()
	s.log.Info("Shutting down: draining requests and stopping workers")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = adminSrv.Shutdown(shutdownCtx)
	// Shutdown closed the listener (removing the socket) unless Serve had
	// not begun; closing again only makes sure before the workers stop.
	_ = admin.Close()
	s.shutdown()
	return nil
}

// start serves one AppGroup: it binds its port first, so a port in use
// is an error before any worker is spawned.
func (s *Server) start(ag ferryv1.AppGroup) error {
	l, err := s.listen(ag)
	if err != nil {
		return err
	}
	return s.startOn(ag, l)
}

// addrOf is where ag is served.
func (s *Server) addrOf(ag ferryv1.AppGroup) string {
	return net.JoinHostPort(s.opts.BindAddress, strconv.Itoa(int(ag.Spec.Listen.Port)))
}

// listen opens ag's port.
func (s *Server) listen(ag ferryv1.AppGroup) (net.Listener, error) {
	l, err := net.Listen("tcp", s.addrOf(ag))
	if err != nil {
		return nil, fmt.Errorf("AppGroup %q: listen.port: %w", ag.Name, err)
	}
	return l, nil
}

// startOn serves ag on l, its port opened; it closes l on failure.
func (s *Server) startOn(ag ferryv1.AppGroup, l net.Listener) error {
	base, err := contract.TargetRevision(&ag)
	if err != nil {
		_ = l.Close()
		return fmt.Errorf("AppGroup %q: %w", ag.Name, err)
	}
	log := s.log.WithValues("appgroup", ag.Name)
	p := pool.New(pool.Config{Name: ag.Name, Revision: base, Template: ag.Spec.AppTemplate}, pool.Options{
		RunDir: s.runDir, LoaderPath: s.loader, Log: log, NewTransport: proxy.NewWorkerTransport,
		Observer: observer(s.opts.Metrics), WorkerUsers: s.opts.WorkerUsers,
		ResistEarlyCrashes: true, // no manager returns the machine to what worked
	})
	var untrack func()
	if s.opts.Metrics != nil {
		untrack = s.opts.Metrics.Track(ag.Name, p.Status)
	}
	srv := proxy.New(p, s.proxyOptions(ag))
	a := &app{ag: ag, base: base, revision: base, pool: p, proxy: srv, ln: l,
		addr: s.shownAddr(ag), restartF: stampOf(restartFile(ag)), untrack: untrack, quit: make(chan struct{})}
	go func() { _ = srv.Serve(l) }() // srv, not a.proxy: a move replaces that
	go a.watchConditions()
	s.mu.Lock()
	s.apps[ag.Name] = a
	s.namesLocked(ag.Name).had[base] = true
	s.mu.Unlock()
	log.Info("Serving AppGroup", "listen", a.addr, "revision", base, "root", ag.Spec.App.Root)
	return nil
}

// proxyOptions are the options of ag's proxy.
func (s *Server) proxyOptions(ag ferryv1.AppGroup) proxy.Options {
	popts := s.opts.Proxy
	popts.Name, popts.Log = ag.Name, s.log.WithValues("appgroup", ag.Name)
	if s.opts.Metrics != nil {
		popts.Observer = s.opts.Metrics.Requests(ag.Name)
	}
	return popts
}

// shownAddr is where status says ag is served.
func (s *Server) shownAddr(ag ferryv1.AppGroup) string {
	if s.opts.BindAddress == "" {
		return "*:" + strconv.Itoa(int(ag.Spec.Listen.Port))
	}
	return s.addrOf(ag)
}

func observer(m *metrics.Metrics) pool.Observer {
	if m == nil {
		return nil
	}
	return m
}

// drainTimeout bounds the drain of the proxy of ag's port moved from, which
// its workers serve on meanwhile.
func drainTimeout(ag ferryv1.AppGroup) time.Duration {
	if d := ag.Spec.Pool.ShutdownTimeout; d != nil {
		return 2*d.Duration + 10*time.Second
	}
	return 2 * time.Minute
}

// stopTimeout bounds the stop of ag's app as a whole, as its Pool defaults
// shutdownTimeout.
func stopTimeout(ag ferryv1.AppGroup) time.Duration {
	if d := ag.Spec.Pool.ShutdownTimeout; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return time.Minute
}

// stop drains one AppGroup's proxy, and those a move left draining, and
// then stops its workers, all within one shutdownTimeout (the SIGKILL and
// reap of workers still running at its end aside): the drain's wait for
// requests and the workers' stop share it, so that a request stuck in a
// worker holds the stop no longer (before, the drain alone could take
// twice the timeout, and the workers' stop one more).
func (s *Server) stop(a *app) {
	s.mu.Lock()
	srv, timeout := a.proxy, stopTimeout(a.ag)
	s.mu.Unlock()
	close(a.quit)
	a.pool.Stopping() // no roll through the drain
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = srv.Shutdown(ctx)
	drained := make(chan struct{})
	go func() { a.drains.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	a.pool.Close(ctx)
	if a.untrack != nil {
		// Its series go with it, unless another app serves under the
		// name now (Track keeps them for that one).
		a.untrack()
	}
	s.log.Info("Stopped AppGroup", "appgroup", a.ag.Name)
}

func (s *Server) shutdown() {
	s.mu.Lock()
	apps := make([]*app, 0, len(s.apps))
	for _, a := range s.apps {
		apps = append(apps, a)
	}
	s.apps = map[string]*app{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.stop(a)
		}()
	}
	wg.Wait()
}

// ErrNotFound: no AppGroup of that name is served.
var ErrNotFound = errors.New("no such AppGroup")

var revisionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// Restart rolls an AppGroup to revision, or to a new revision of the same
// code when revision is empty, and returns the revision.
func (s *Server) Restart(name, revision string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[name]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	names := s.namesLocked(name)
	if revision == "" {
		revision = names.next(a.base)
	} else if !revisionPattern.MatchString(revision) {
		return "", fmt.Errorf("revision %q: use 1 to 128 characters from [A-Za-z0-9._+-], starting with a letter or digit", revision)
	}
	if revision == a.revision {
		// The target, whether it runs or is resisted: asking again would
		// change nothing.
		if st := a.pool.Status(); st.Resisting != nil && st.Resisting.Revision == revision {
			return "", fmt.Errorf("AppGroup %q resists revision %q, which %s: fix the app and restart without --revision, or name a new one",
				name, revision, contract.FailedHow(st.Resisting.Reason, ""))
		}
		return "", fmt.Errorf("AppGroup %q already runs revision %q: restart without --revision, or name a new one", name, revision)
	}
	a.revision = revision
	names.had[revision] = true
	a.pool.Update(pool.Config{Name: name, Revision: revision, Template: a.ag.Spec.AppTemplate})
	s.log.Info("Requested restart", "appgroup", name, "revision", revision)
	return revision, nil
}

// Reload re-reads the file: new AppGroups start, removed ones stop, a
// changed app rolls, other changes apply at once. An invalid file changes
// nothing.
func (s *Server) Reload() error {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	err := s.reload()
	s.mu.Lock()
	s.reloadFailed = nil
	if err != nil {
		s.reloadFailed = &ReloadFailure{Time: metav1.Now(), Error: err.Error()}
		var partial *PartialReloadError
		if errors.As(err, &partial) {
			f := s.reloadFailed
			f.Applied, f.NotApplied, f.NotStarted, f.Removed = partial.Applied, partial.NotApplied, partial.notStarted, partial.Removed
		}
	}
	s.mu.Unlock()
	return err
}

// ReloadAndLog reloads as Reload does, for SIGHUP: no one reads its
// error, so the log says how it went (logReload).
func (s *Server) ReloadAndLog() {
	logReload(s.log, s.opts.File, s.Reload())
}

// PartialReloadLogged is the message of the log entry of a SIGHUP reload
// that failed in part (logReload): one constant for the line and the
// tests that read it, so a new wording is made in one place.
const PartialReloadLogged = "Reload failed in part; the AppGroups it names keep their previous configuration (new ones do not start), the rest of the file was applied"

// logReload logs the outcome of a reload of file. One that failed in part
// names its AppGroups in fields (applied, notApplied, of these notStarted,
// the new ones, and removed), and its error is the problems alone: the
// PartialReloadError's own text, which puts the names before the problems
// for the people who read `ferry-agent reload` and status, would give
// every list twice in one entry.
func logReload(log logr.Logger, file string, err error) {
	var partial *PartialReloadError
	switch {
	case errors.As(err, &partial):
		// The rest of the file was applied: "still serving the previous
		// configuration" is true only of what the error names.
		log.Error(partial.Err, PartialReloadLogged,
			"notApplied", partial.NotApplied, "notStarted", partial.notStarted, "applied", partial.Applied,
			"removed", partial.Removed)
	case err != nil:
		log.Error(err, "Reload failed; still serving the previous configuration")
	default:
		log.Info("Reloaded", "file", file)
	}
}

func (s *Server) reload() error {
	groups, err := appfile.Load(s.opts.File)
	if err != nil {
		return err
	}
	s.mu.Lock()
	current := make(map[string]*app, len(s.apps))
	for name, a := range s.apps {
		current[name] = a
	}
	s.mu.Unlock()

	var errs []error
	var partial PartialReloadError
	seen := map[string]bool{}
	for _, ag := range groups {
		seen[ag.Name] = true
		changed, err := s.reloadOne(current[ag.Name], ag)
		switch {
		case err != nil:
			errs = append(errs, err)
			partial.NotApplied = append(partial.NotApplied, ag.Name)
			if current[ag.Name] == nil {
				partial.notStarted = append(partial.notStarted, ag.Name)
			}
		case changed:
			partial.Applied = append(partial.Applied, ag.Name)
		}
	}
	for name, a := range current {
		if !seen[name] {
			s.remove(a)
			partial.Removed = append(partial.Removed, name)
		}
	}
	err = appfile.Problems(s.opts.File, errs)
	if err == nil || len(partial.Applied)+len(partial.Removed) == 0 {
		// All of the file was applied, or none of it: an AppGroup it
		// leaves as it is was applied no more than one it fails.
		return err
	}
	slices.Sort(partial.Removed)
	partial.Err = err
	return &partial
}

// reloadOne serves ag, which a serves now (nil: a new AppGroup), and says
// whether that changed anything. On an error nothing of ag is applied: a
// new one does not start, and one that runs keeps its previous
// configuration.
func (s *Server) reloadOne(a *app, ag ferryv1.AppGroup) (changed bool, err error) {
	switch {
	case a == nil:
		if err := s.start(ag); err != nil {
			return false, err
		}
		return true, nil
	case a.ag.Spec.Listen.Port != ag.Spec.Listen.Port:
		// A new port is no revision: the pool and its processes stay,
		// as a cluster's agent moves a pool, and only the proxy moves.
		// The new port opens first: while it cannot, the AppGroup
		// serves on where it is, and once it does, the old one drains
		// with no gap between.
		if _, err := contract.TargetRevision(&ag); err != nil {
			return false, fmt.Errorf("AppGroup %q: %w", ag.Name, err)
		}
		l, err := s.listen(ag)
		if err != nil {
			return false, fmt.Errorf("%w; still serving on %s", err, a.addr)
		}
		return s.move(a, ag, l)
	default:
		return s.update(a, ag)
	}
}

// PartialReloadError is Reload's error when the file was applied but for
// the AppGroups its problems name (a taken port, a bad revision): those
// keep their previous configuration (or, new ones, do not start), and the
// rest of the file was applied. Any other error of Reload changed nothing.
type PartialReloadError struct {
	// Applied are the file's AppGroups the reload changed (started, moved
	// or updated), not those it left as they were; NotApplied those the
	// error names; Removed those the file no longer has, stopped. Applied
	// and Removed are not both empty: a reload that changed nothing
	// returns Err.
	Applied, NotApplied, Removed []string
	// Err lists the problems, as an error of a reload that changed
	// nothing would.
	Err error
	// notStarted are those of NotApplied that are new: they have no
	// previous configuration to keep.
	notStarted []string
}

// Error says what the reload applied and what keeps its previous
// configuration, then the problems: the problems alone (`ferry-agent
// reload`'s error, status's reloadFailed) read as a reload that changed
// nothing, which an invalid file's is.
func (e *PartialReloadError) Error() string {
	var said []string
	if len(e.Applied) > 0 {
		said = append(said, "applied "+strings.Join(e.Applied, ", "))
	}
	if len(e.Removed) > 0 {
		said = append(said, "removed "+strings.Join(e.Removed, ", "))
	}
	var kept []string
	for _, name := range e.NotApplied {
		if !slices.Contains(e.notStarted, name) {
			kept = append(kept, name)
		}
	}
	switch len(kept) {
	case 0:
	case 1:
		said = append(said, kept[0]+" keeps its previous configuration")
	default:
		said = append(said, strings.Join(kept, ", ")+" keep their previous configuration")
	}
	if len(e.notStarted) > 0 {
		said = append(said, "did not start (new): "+strings.Join(e.notStarted, ", "))
	}
	return "reload applied in part: " + strings.Join(said, "; ") + ":\n  " +
		strings.ReplaceAll(e.Err.Error(), "\n", "\n  ")
}

func (e *PartialReloadError) Unwrap() error { return e.Err }

func (s *Server) remove(a *app) {
	s.mu.Lock()
	delete(s.apps, a.ag.Name)
	s.mu.Unlock()
	s.stop(a)
}

// update applies ag to a, and says whether ag changed anything.
func (s *Server) update(a *app, ag ferryv1.AppGroup) (changed bool, err error) {
	base, err := contract.TargetRevision(&ag)
	if err != nil {
		return false, fmt.Errorf("AppGroup %q: %w", ag.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if equality.Semantic.DeepEqual(a.ag.Spec, ag.Spec) && base == a.base {
		return false, nil
	}
	if restartFile(ag) != restartFile(a.ag) {
		// Another root: its restart file, as it is now, is no touch.
		a.restartF = stampOf(restartFile(ag))
	}
	a.ag = ag
	if base != a.base {
		a.base, a.revision = base, base
		s.namesLocked(ag.Name).had[base] = true
		s.log.Info("Reloaded AppGroup with a new revision", "appgroup", ag.Name, "revision", base)
	} else {
		s.log.Info("Reloaded AppGroup settings", "appgroup", ag.Name)
	}
	a.pool.Update(pool.Config{Name: ag.Name, Revision: a.revision, Template: ag.Spec.AppTemplate})
	return true, nil
}

// move serves a on l, ag's new port, with the pool it has, then applies
// the rest of ag as update does; the old port drains in the background.
func (s *Server) move(a *app, ag ferryv1.AppGroup, l net.Listener) (bool, error) {
	srv := proxy.New(a.pool, s.proxyOptions(ag))
	go func() { _ = srv.Serve(l) }()
	addr := s.shownAddr(ag)
	s.mu.Lock()
	old, oldLn := a.proxy, a.ln
	a.proxy, a.ln, a.addr = srv, l, addr
	s.mu.Unlock()
	// The old port closes now, not when the drain below gets to run: a
	// reload right after this one may move back to it.
	_ = oldLn.Close()
	s.log.Info("Moved AppGroup to a new port; the old one drains", "appgroup", ag.Name, "listen", addr)
	a.drains.Add(1)
	go func() {
		defer a.drains.Done()
		ctx, cancel := context.WithTimeout(context.Background(), drainTimeout(ag))
		defer cancel()
		_ = old.Shutdown(ctx)
	}()
	return s.update(a, ag)
}

// AppStatus is one AppGroup in the admin API's status.
type AppStatus struct {
	Name       string             `json:"name"`
	Root       string             `json:"root"`
	Listen     string             `json:"listen"`
	Pool       pool.Status        `json:"pool"`
	Conditions []metav1.Condition `json:"conditions"`
}

// StatusResponse is GET /v1/status.
type StatusResponse struct {
	Agent string      `json:"agent"`
	Apps  []AppStatus `json:"apps"`
	// ReloadFailed is the last reload's failure (SIGHUP, ferry-agent
	// reload), until a reload succeeds.
	ReloadFailed *ReloadFailure `json:"reloadFailed,omitempty"`
}

// ReloadFailure is when a reload failed, and why. A reload that failed
// in part (a PartialReloadError) names the AppGroups as its log line
// does, for clients of the admin API (ferry-agent status --json,
// scripts) to read without parsing Error, which says the same in words;
// one that names none changed nothing.
type ReloadFailure struct {
	Time  metav1.Time `json:"time"`
	Error string      `json:"error"`
	// Applied are the AppGroups the reload started, moved or changed.
	Applied []string `json:"applied,omitempty"`
	// NotApplied are those its problems name: each keeps its previous
	// configuration, or, new in the file, did not start (NotStarted).
	NotApplied []string `json:"notApplied,omitempty"`
	// NotStarted are those of NotApplied new in the file: the agent does
	// not serve them.
	NotStarted []string `json:"notStarted,omitempty"`
	// Removed are those the file no longer has, stopped.
	Removed []string `json:"removed,omitempty"`
}

// Status returns every AppGroup's status, by name.
func (s *Server) Status() StatusResponse {
	// What a reload changes (ag, addr) is read under s.mu.
	type shown struct {
		name, root, addr string
		app              *app
	}
	s.mu.Lock()
	apps := make([]shown, 0, len(s.apps))
	for _, a := range s.apps {
		apps = append(apps, shown{a.ag.Name, a.ag.Spec.App.Root, a.addr, a})
	}
	failed := s.reloadFailed
	s.mu.Unlock()
	slices.SortFunc(apps, func(a, b shown) int { return strings.Compare(a.name, b.name) })
	out := StatusResponse{Agent: s.opts.Agent, Apps: []AppStatus{}, ReloadFailed: failed}
	for _, a := range apps {
		st, conds := a.app.conds.observe(a.app.pool)
		out.Apps = append(out.Apps, AppStatus{Name: a.name, Root: a.root, Listen: a.addr, Pool: st,
			Conditions: conds})
	}
	return out
}

func restartFile(ag ferryv1.AppGroup) string {
	if ag.Spec.App.Root == "" {
		return ""
	}
	return filepath.Join(ag.Spec.App.Root, "tmp", "restart.txt")
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mtime: st.ModTime(), size: st.Size(), ok: true}
}

// watchRestartFiles restarts an AppGroup when its tmp/restart.txt appears
// or its modification time changes (touch), as Passenger does.
func (s *Server) watchRestartFiles(ctx context.Context) {
	t := time.NewTicker(s.opts.RestartFilePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		var due []string
		for name, a := range s.apps {
			st := stampOf(restartFile(a.ag))
			if st.ok && st != a.restartF {
				due = append(due, name)
			}
			a.restartF = st
		}
		s.mu.Unlock()
		for _, name := range due {
			if rev, err := s.Restart(name, ""); err == nil {
				s.log.Info("Restart requested by tmp/restart.txt", "appgroup", name, "revision", rev)
			}
		}
	}
}
