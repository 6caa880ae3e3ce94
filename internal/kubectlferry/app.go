package kubectlferry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/scheme"
	"github.com/ferry-dev/ferry/internal/version"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// DefaultStaleAfter is how old a pool's heartbeat may be before status
// says its figures may be stale: the manager's default --agent-stale-after.
const DefaultStaleAfter = 40 * time.Second

// DefaultPollInterval is how often restart --wait reads the AppGroup.
const DefaultPollInterval = 500 * time.Millisecond

// DefaultHaltGrace is App.HaltGrace's default: a spawn that failed once
// (a port taken in between, a start timeout under load) is retried within
// seconds, one that keeps failing for a minute will not mend itself.
const DefaultHaltGrace = time.Minute

// requestTimeout bounds each request to the API server.
const requestTimeout = 30 * time.Second

const usage = `kubectl ferry shows and rolls Ferry's AppGroups.

Usage:
  kubectl ferry status NAME [--json]
      The passenger-status view of an AppGroup across its nodes.
  kubectl ferry restart NAME [--revision R] [--wait] [--timeout 30m]
      Roll an AppGroup to a new revision: bump its ferry.dev/revision
      annotation. With --wait, follow the rollout until it is done (exit 0)
      or the AppGroup resists the new revision (exit 1, with the reason).
  kubectl ferry version
      Print the plugin's version.

Flags of every command:
`

// App is kubectl-ferry: where it writes, and the clock and poll interval,
// which tests replace.
type App struct {
	// Out receives the command's output; Err errors and usage.
	Out, Err io.Writer
	// Now is the clock for ages and uptimes, and dates output; time.Now
	// when nil.
	Now func() time.Time
	// PollInterval is restart --wait's period; DefaultPollInterval when 0.
	PollInterval time.Duration
	// HaltGrace is how long restart --wait follows a rollout halted by a
	// node that cannot spawn the revision before it gives up: such a halt
	// lifts itself when a retried spawn works. It runs from the first poll
	// that reads the halt until a poll that reads it halted further on
	// (haltClock), also through polls that read a retry under way in
	// between. DefaultHaltGrace when 0.
	HaltGrace time.Duration

	// clock is the clock restart --wait measures elapsed time by, the
	// halt grace's (haltClock) and --timeout's; time.Now when nil. Not
	// Now, which tests pin to date output: tests move this one on past a
	// grace or a deadline rather than wait for either.
	clock func() time.Time

	// poolListEvery is how often, at most, restart --wait lists the pools
	// (readsPools), on the real clock; poolListInterval when 0 or less.
	// Tests set it below PollInterval to list at every poll: the pools
	// they write are read at the next poll, not up to poolListInterval
	// later.
	poolListEvery time.Duration

	// observed, when set, is called with every AppGroup restart --wait
	// has assessed, the pools it read with it, and what it made of them:
	// a test's sync point.
	observed func(*ferryv1.AppGroup, []ferryv1.ProcessPool, rollout)
}

// usageError is a mistake in the command line: exit code 2. cmd is the
// command it was made in, if any.
type usageError struct{ msg, cmd string }

func (e usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp: the user asked for help, which has been printed.
var errHelp = errors.New("help requested")

// connection holds the kubeconfig flags every command takes.
type connection struct {
	kubeconfig, context, namespace, cluster, user string
}

// bind adds the connection flags to fs, with their current values as
// defaults, so that flags given before the command name carry over.
func (c *connection) bind(fs *pflag.FlagSet) {
	fs.StringVarP(&c.namespace, "namespace", "n", c.namespace,
		"the AppGroup's namespace (default: the kubeconfig context's, else \"default\")")
	fs.StringVar(&c.kubeconfig, "kubeconfig", c.kubeconfig, "the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&c.context, "context", c.context, "the kubeconfig context to use (default: the current one)")
	fs.StringVar(&c.cluster, "cluster", c.cluster, "the kubeconfig cluster to use (default: the context's)")
	fs.StringVar(&c.user, "user", c.user, "the kubeconfig user to use (default: the context's)")
}

// clients are what a command talks to the cluster with.
type clients struct {
	c         client.Client
	namespace string
	// host is the API server's URL, for the error that cannot reach it.
	host string
}

// connect loads the kubeconfig as kubectl does and makes a client.
func (c *connection) connect() (*clients, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: c.context}
	overrides.Context.Namespace = c.namespace
	overrides.Context.Cluster = c.cluster
	overrides.Context.AuthInfo = c.user
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-ferry/" + version.Version
	cfg.Timeout = requestTimeout
	cl, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, err
	}
	return &clients{c: cl, namespace: ns, host: cfg.Host}, nil
}

// Run runs kubectl-ferry with args (the command line without the program
// name) and returns the exit code.
func (a *App) Run(ctx context.Context, args []string) int {
	err := a.run(ctx, args)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return ExitOK
	case errors.As(err, &ue):
		help := "kubectl ferry --help"
		if ue.cmd != "" {
			help = "kubectl ferry " + ue.cmd + " --help"
		}
		fmt.Fprintf(a.Err, "error: %s\nRun '%s' for usage.\n", ue.msg, help)
		return ExitUsage
	}
	fmt.Fprintf(a.Err, "error: %s\n", err)
	return ExitFailure
}

func (a *App) run(ctx context.Context, args []string) error {
	var conn connection
	top := newFlagSet("kubectl-ferry")
	conn.bind(top)
	help := top.BoolP("help", "h", false, "print this help")
	// Stop at the command name: its own flags follow it.
	top.SetInterspersed(false)
	if err := top.Parse(args); err != nil {
		return usageError{msg: err.Error()}
	}
	if *help || top.NArg() > 0 && top.Arg(0) == "help" {
		fmt.Fprint(a.Out, usage+top.FlagUsages())
		return errHelp
	}
	if top.NArg() == 0 {
		fmt.Fprint(a.Err, usage+top.FlagUsages())
		return usageError{msg: "a command is required"}
	}
	cmd, rest := top.Arg(0), top.Args()[1:]
	var err error
	switch cmd {
	case "status":
		err = a.status(ctx, &conn, rest)
	case "restart":
		err = a.restart(ctx, &conn, rest)
	case "version":
		fmt.Fprintln(a.Out, "kubectl-ferry", version.Version)
		return nil
	default:
		return usageErrorf("unknown command %q", cmd)
	}
	var ue usageError
	if errors.As(err, &ue) {
		ue.cmd = cmd
		return ue
	}
	return err
}

// newFlagSet is a flag set that leaves printing to Run.
func newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false
	return fs
}

// parseCommand parses a command's flags and its one NAME argument. On -h it
// prints the command's usage and returns errHelp.
func (a *App) parseCommand(fs *pflag.FlagSet, synopsis string, args []string) (string, error) {
	help := fs.BoolP("help", "h", false, "print this help")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			*help = true
		} else {
			return "", usageError{msg: err.Error()}
		}
	}
	if *help {
		fmt.Fprintf(a.Out, "Usage:\n  %s\n\nFlags:\n%s", synopsis, fs.FlagUsages())
		return "", errHelp
	}
	switch fs.NArg() {
	case 0:
		return "", usageErrorf("the AppGroup NAME is required: %s", synopsis)
	case 1:
		return fs.Arg(0), nil
	}
	return "", usageErrorf("one AppGroup NAME is expected, got %q: %s", fs.Args(), synopsis)
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// elapsedNow is the time on App.clock.
func (a *App) elapsedNow() time.Time {
	if a.clock != nil {
		return a.clock()
	}
	return time.Now()
}

// getAppGroup reads one AppGroup, turning the errors a user meets into
// sentences.
func (cl *clients) getAppGroup(ctx context.Context, name string) (*ferryv1.AppGroup, error) {
	ag := &ferryv1.AppGroup{}
	if err := cl.c.Get(ctx, client.ObjectKey{Namespace: cl.namespace, Name: name}, ag); err != nil {
		return nil, cl.explain(err, name)
	}
	return ag, nil
}

// explain rewords the API errors a user is likely to meet.
func (cl *clients) explain(err error, name string) error {
	switch {
	case apierrors.IsNotFound(err):
		return &notFoundError{namespace: cl.namespace, name: name, err: err}
	case meta.IsNoMatchError(err):
		return fmt.Errorf("this cluster does not serve AppGroups (ferry.dev/v1alpha1): is Ferry installed? (%w)", err)
	}
	// client-go's own words for it ("failed to get server groups: Get
	// ...") name neither the kubeconfig nor what to check.
	if cause := unreachable(err); cause != nil {
		return &unreachableError{host: cl.host, err: cause}
	}
	return err
}

// unreachable is why no answer came from the API server at all: no
// connection (refused, no route, no such host), or none in time (a hung
// server: the TLS handshake or the response timed out). Nil for an
// answer, however bad.
func unreachable(err error) error {
	ue := (*url.Error)(nil)
	if !errors.As(err, &ue) {
		return nil
	}
	if op := (*net.OpError)(nil); errors.As(ue.Err, &op) && op.Op == "dial" {
		return op
	}
	if ue.Timeout() {
		return ue.Err
	}
	return nil
}

// explained: explain worded err whole, for the user as it stands.
func explained(err error) bool {
	nf, ur := (*notFoundError)(nil), (*unreachableError)(nil)
	return errors.As(err, &nf) || errors.As(err, &ur)
}

// unreachableError: no connection to the API server could be made.
type unreachableError struct {
	host string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("could not reach the API server at %s: %v. Is the cluster up, and are the kubeconfig "+
		"and its context (--kubeconfig, $KUBECONFIG, --context) the right ones?", e.host, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// notFoundError names the AppGroup that is missing; apierrors.IsNotFound
// still sees the API's error through it.
type notFoundError struct {
	namespace, name string
	err             error
}

func (e *notFoundError) Error() string {
	return fmt.Sprintf("AppGroup %q not found in namespace %q", e.name, e.namespace)
}

func (e *notFoundError) Unwrap() error { return e.err }
