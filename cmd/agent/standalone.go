package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/ferry-dev/ferry/agent/metrics"
	"github.com/ferry-dev/ferry/agent/pid1"
	"github.com/ferry-dev/ferry/agent/proxy"
	"github.com/ferry-dev/ferry/agent/spawn"
	"github.com/ferry-dev/ferry/agent/standalone"
	"github.com/ferry-dev/ferry/internal/logging"
	"github.com/ferry-dev/ferry/internal/version"
)

func runStandalone(args []string) error {
	fs := flag.NewFlagSet("standalone", flag.ExitOnError)
	file := fs.String("f", "", "AppGroup YAML file to serve (required); relative app roots are resolved against its directory")
	bind := fs.String("bind-address", "0.0.0.0", "address the proxies listen on, each on its AppGroup's listen.port")
	stateDir := fs.String("state-dir", standalone.DefaultStateDir(), "directory for the WSGI loader, worker sockets and the admin socket")
	admin := fs.String("admin-socket", "", "admin Unix socket for status/restart/reload (default STATE-DIR/admin.sock)")
	popts := proxyFlags(fs)
	users := workerUsersFlag(fs)
	restartPoll := fs.Duration("restart-file-poll", time.Second, "how often tmp/restart.txt in each app root is checked; 0 turns it off")
	newLogger := logging.BindFlags(fs)
	operands := parseArgs(fs, args)
	if err := noOperands("standalone", operands); err != nil {
		return err
	}
	if *file == "" {
		fs.Usage()
		return errors.New("-f FILE is required")
	}
	if *admin == "" {
		*admin = *stateDir + "/admin.sock"
	}
	poll := *restartPoll
	if poll == 0 {
		poll = -1
	}
	log := newLogger()
	pid1.Announce(log)
	warnOfRootGroup(log)
	srv, err := standalone.New(standalone.Options{
		File: *file, BindAddress: *bind, AdminSocket: *admin, StateDir: *stateDir, Proxy: popts(),
		RestartFilePoll: poll, Log: log, Metrics: metrics.New(), WorkerUsers: *users,
		Agent: "ferry-agent " + version.Version + " (standalone)",
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			srv.ReloadAndLog()
		}
	}()
	return srv.Run(ctx)
}

// workerUsersFlag binds --worker-users, shared with the cluster mode: a
// list the agent cannot read stops it at its start, not at a spawn; so
// does one whose names' lookups do not answer within workerUsersWait.
func workerUsersFlag(fs *flag.FlagSet) *spawn.WorkerUsers {
	var wu spawn.WorkerUsers
	fs.Func("worker-users", "the users workers may run as, comma-separated: names, uids and uid ranges (10000-19999); "+
		"a worker of any other user (an app's app.user, or nobody for an app that names none) fails to spawn (default: any user but root)",
		func(s string) (err error) {
			ctx, cancel := context.WithTimeoutCause(context.Background(), workerUsersWait,
				fmt.Errorf("no answer within %s, the agent's bound on reading --worker-users at its start", workerUsersWait))
			defer cancel()
			wu, err = spawn.ParseWorkerUsers(ctx, s)
			return err
		})
	return &wu
}

// warnOfRootGroup says, once at the agent's start, that its workers run
// in root's group where it does, not being root (spawn.RootGroupWarning):
// it cannot run them in another, nor refuse them without refusing to run.
func warnOfRootGroup(log logr.Logger) {
	if msg := spawn.RootGroupWarning(); msg != "" {
		log.Info(msg)
	}
}

// workerUsersWait bounds the lookups of --worker-users' names at the
// agent's start, all of them together: getent's, built without cgo, are
// bounded one by one too (10 s each), and end with this context; libc's,
// built with cgo, end with it as well (spawn's libcUntil), their calls
// left to return on their own. Past it, the agent stops with an error
// naming the user, rather than hang. It is spawn's LookupStuckAfter, past
// which a spawn's libc lookup still running is taken for stuck: the same
// 30 s for both.
const workerUsersWait = spawn.LookupStuckAfter

// timeoutFlag binds a proxy timeout, refusing one not above zero at
// parse: the proxy has no "none", and would take it for its default
// (proxy.New), which is not what "0s" reads as. The chart refuses it too.
func timeoutFlag(fs *flag.FlagSet, d *time.Duration, name string, def time.Duration, usage string) {
	*d = def
	fs.Func(name, fmt.Sprintf("%s (default %s)", usage, def), func(s string) error {
		v, err := time.ParseDuration(s)
		switch {
		case err != nil:
			return err
		case v <= 0:
			return fmt.Errorf("%s is not above zero: the proxy has no \"none\"; give a duration, %s by default", s, def)
		}
		*d = v
		return nil
	})
}

// proxyFlags binds the proxy's limits, shared with the cluster mode; the
// options are complete once fs is parsed.
func proxyFlags(fs *flag.FlagSet) func() proxy.Options {
	o := &proxy.Options{}
	timeoutFlag(fs, &o.ReadHeaderTimeout, "read-header-timeout", 10*time.Second,
		"how long a client may take to send a request's headers before its connection is closed")
	timeoutFlag(fs, &o.IdleTimeout, "idle-timeout", 120*time.Second, "how long an idle client keep-alive connection stays open")
	timeoutFlag(fs, &o.SendTimeout, "send-timeout", 60*time.Second,
		"how long a client may take none of a response being written to it before its connection is closed")
	timeoutFlag(fs, &o.RequestBodyTimeout, "request-body-timeout", 60*time.Second,
		"how long a client may go without sending any of a request body (buffered, or streaming to its worker) before it gets 408 and its connection is closed; a streaming body's worker has its connection closed too, freeing its slot (after a worker began its answer, the client's connection is closed without the 408)")
	fs.IntVar(&o.MaxHeaderBytes, "max-header-bytes", 64<<10, "largest request header block accepted (larger gets 431; a request line alone over it, 414)")
	fs.BoolVar(&o.TrustForwardedFor, "trust-forwarded-for", false,
		"behind a trusted load balancer: append the client address to the X-Forwarded-For the client sent, and pass on its X-Forwarded-Proto (http or https), instead of replacing both, and its X-Real-IP, X-Forwarded-Ssl, -Port, -Prefix and -Scheme, which are otherwise dropped")
	fs.StringVar(&o.SpoolDir, "request-buffer-dir", "",
		"where request bodies beyond "+strconv.Itoa(proxy.SpoolMemory>>10)+" KiB are buffered while they arrive, in files without a name, in a directory "+proxy.SpoolDirName+" of the agent's own under this one (default: the state directory)")
	memory := fs.Int64("response-buffer-memory", 256<<20,
		"bytes all the agent's proxies may hold at once of responses read whole before they are written (an AppGroup's proxy.responseBufferLimit); past it, responses are relayed as they are read")
	disk := fs.Int64("request-buffer-disk", 1<<30,
		"bytes all the agent's proxies may hold at once of request bodies buffered in files; past it, the rest of a body streams to its worker as it comes (0: bodies past the first 64 KiB always stream)")
	return func() proxy.Options {
		o.ResponseMemory = proxy.NewBudget(*memory)
		o.RequestDisk = proxy.NewBudget(*disk)
		return *o
	}
}
