package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options configure a benchmark run.
type Options struct {
	// Results is where raw results go (bench/results).
	Results string
	// Agent is the ferry-agent binary.
	Agent string
	// Tools holds the bench binaries: upstream, loadgen.
	Tools string
	// Repo is the repository root (for examples/ and git describe).
	Repo string
	// Runs per configuration; 0: 3 (1 when Smoke).
	Runs int
	// Smoke makes every run short, to check the scripts. Its numbers are
	// marked and are not for publishing.
	Smoke bool
	// Only, when set, keeps the configurations whose ID starts with one
	// of these (restart: ferry-rolling, uwsgi; proxy: direct, ferry,
	// nginx; wsgi: ferry, passenger, ...).
	Only []string
	// Out receives progress lines.
	Out io.Writer
}

// Scenarios lists the scenarios in the order a full run takes them.
var Scenarios = []string{"restart", "proxy", "wsgi", "controlplane"}

// Harness runs scenarios.
type Harness struct {
	opts Options
}

// New checks opts and returns a harness.
func New(opts Options) (*Harness, error) {
	if opts.Results == "" || opts.Agent == "" || opts.Tools == "" || opts.Repo == "" {
		return nil, errors.New("results, agent, tools and repo are required")
	}
	for _, p := range []*string{&opts.Results, &opts.Agent, &opts.Tools, &opts.Repo} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	if opts.Runs <= 0 {
		opts.Runs = 3
		if opts.Smoke {
			opts.Runs = 1
		}
	}
	if opts.Out == nil {
		opts.Out = os.Stderr
	}
	return &Harness{opts: opts}, nil
}

// Run runs the named scenarios (all runnable ones when names is empty),
// writing RESULTS/NAME/scenario.json for each. It goes on after a failed
// scenario and returns every error.
func (h *Harness) Run(ctx context.Context, names []string) error {
	if len(names) == 0 {
		names = Scenarios
	}
	for _, n := range names {
		if !slices.Contains(Scenarios, n) {
			return fmt.Errorf("unknown scenario %q (have: %s)", n, strings.Join(Scenarios, ", "))
		}
	}
	var errs []error
	for _, n := range names {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := h.runScenario(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			h.logf("Scenario %s failed: %v", n, err)
		}
	}
	return errors.Join(errs...)
}

func (h *Harness) runScenario(ctx context.Context, name string) error {
	dir := filepath.Join(h.opts.Results, name)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The app roots live below; workers that run as nobody must reach them.
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			return fmt.Errorf("%s is not world-readable; the workers (nobody) could not read the app", d)
		}
	}
	sr := &ScenarioResult{Scenario: name, Smoke: h.opts.Smoke, Started: time.Now().UTC(), Machine: readMachine(ctx, h.opts.Agent, h.opts.Repo)}
	h.logf("Scenario %s (load %s)", name, sr.Machine.LoadBefore)
	var err error
	switch name {
	case "restart":
		err = h.restartScenario(ctx, dir, sr)
	case "proxy":
		err = h.proxyScenario(ctx, dir, sr)
	case "wsgi":
		err = h.wsgiScenario(ctx, dir, sr)
	case "controlplane":
		err = h.controlPlaneScenario(ctx, dir, sr)
	}
	sr.Finished = time.Now().UTC()
	sr.LoadAfter = loadavg()
	if werr := writeJSON(filepath.Join(dir, ScenarioFile), sr); werr != nil {
		err = errors.Join(err, werr)
	}
	return err
}

func (h *Harness) logf(format string, args ...any) {
	fmt.Fprintf(h.opts.Out, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// keep reports whether configuration id passes the Only filter.
func (h *Harness) keep(id string) bool {
	if len(h.opts.Only) == 0 {
		return true
	}
	for _, o := range h.opts.Only {
		if strings.HasPrefix(id, o) {
			return true
		}
	}
	return false
}

// filter keeps the servers that pass the Only filter.
func (h *Harness) filter(servers []wsgiServer) []wsgiServer {
	var out []wsgiServer
	for _, s := range servers {
		if h.keep(s.id) {
			out = append(out, s)
		}
	}
	return out
}

// exampleApp is the hello WSGI app every WSGI server runs.
func (h *Harness) exampleApp() string {
	return filepath.Join(h.opts.Repo, "examples", "hello-wsgi", "passenger_wsgi.py")
}

// placeholders turns a command or file of a run into its reproducible form:
// the run directory becomes RUN, the ports PORT (or UPSTREAM_PORT), the
// tools directory bench/results/bin, the agent bin/ferry-agent.
type placeholders struct {
	h        *Harness
	runDir   string
	tmpDir   string
	port     int
	upstream int
	// pid is the server's main process, for triggers that signal it.
	pid int
}

func (p placeholders) apply(s string) string {
	if p.tmpDir != "" {
		s = strings.ReplaceAll(s, p.tmpDir, "$STATE")
	}
	if p.runDir != "" {
		s = strings.ReplaceAll(s, p.runDir, "$RUN")
	}
	s = strings.ReplaceAll(s, p.h.opts.Tools+"/", "bench/results/bin/")
	s = strings.ReplaceAll(s, p.h.opts.Agent, "bin/ferry-agent")
	s = strings.ReplaceAll(s, p.h.opts.Repo+"/", "")
	if p.port > 0 {
		s = replacePort(s, p.port, "$PORT")
	}
	if p.upstream > 0 {
		s = replacePort(s, p.upstream, "$UPSTREAM_PORT")
	}
	if p.pid > 0 {
		s = replacePort(s, p.pid, "$SERVER_PID")
	}
	return s
}

func replacePort(s string, port int, name string) string {
	re := regexp.MustCompile(`\b` + strconv.Itoa(port) + `\b`)
	return re.ReplaceAllLiteralString(s, name)
}

// unsafeInShell: r needs quoting in a shell word.
func unsafeInShell(r rune) bool {
	safe := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r)
	return !safe
}

// shellQuote renders argv as a shell command line.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, unsafeInShell) < 0 {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
