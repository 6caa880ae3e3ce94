// Package logging builds the logger of ferry-agent and ferry-manager from
// controller-runtime's --zap-* flags, with two differences from
// controller-runtime's zap.New: nothing is ever sampled out, and stack
// traces are only for the program's own bugs.
//
// controller-runtime's production mode (the default, without --zap-devel)
// wraps the logger in zap's sampler: past 100 entries a second with the
// same message, only one in 100 is written. Every line a worker writes is
// logged with the message "Worker output", so a chatty app would have the
// agent drop most of its output, and with it another worker's traceback;
// every kill, failed request and reconcile error would be dropped the same
// way. An operator reading the log after an incident needs all of them.
//
// controller-runtime also adds a Go stack trace to every error (every
// warning with --zap-devel). Most errors Ferry logs are the app's (a worker
// that failed to start, a request that failed in a worker) or the cluster's,
// where the agent's call stack is noise. Stack traces are written for
// DPanic and Panic entries only, unless --zap-stacktrace-level says
// otherwise.
package logging

import (
	"flag"
	"io"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// BindFlags binds controller-runtime's --zap-* flags (--zap-log-level,
// --zap-encoder, --zap-devel, --zap-stacktrace-level, --zap-time-encoding)
// to fs. The returned function builds the logger once fs is parsed.
func BindFlags(fs *flag.FlagSet) func() logr.Logger {
	return bindFlags(fs, nil)
}

// bindFlags is BindFlags for a logger writing to w (nil: stderr).
func bindFlags(fs *flag.FlagSet, w io.Writer) func() logr.Logger {
	o := &crzap.Options{}
	o.BindFlags(fs)
	fs.Lookup("zap-devel").Usage = "Development Mode defaults (encoder=console, logLevel=debug). " +
		"Production Mode defaults (encoder=json, logLevel=info)"
	fs.Lookup("zap-stacktrace-level").Usage = "Zap Level at and above which stacktraces are captured " +
		"(one of 'info', 'error', 'panic'); by default only for the program's own bugs (DPanic and Panic)"
	// controller-runtime's says 'nano' for nanos and a default of epoch.
	fs.Lookup("zap-time-encoding").Usage = "Zap time encoding (one of 'epoch', 'millis', 'nanos', 'iso8601', " +
		"'rfc3339' or 'rfc3339nano'). Defaults to 'rfc3339'."
	return func() logr.Logger { return zapr.NewLogger(newRaw(*o, w)) }
}

// newRaw builds the logger o describes, writing to w (nil: stderr),
// unsampled, with stack traces from DPanic up unless o sets a level.
//
// controller-runtime applies the caller's ZapOpts to its core before it
// wraps the core in the sampler: the last of them sees the core as built
// (the encoder, the destination and the level of the flags) and keeps it,
// and the logger's core is then set back to it. The logger's own options
// (the stack trace level, the error output, development mode) are not part
// of the core and stay.
func newRaw(o crzap.Options, w io.Writer) *zap.Logger {
	if w != nil {
		o.DestWriter = w
	}
	if o.StacktraceLevel == nil {
		o.StacktraceLevel = zapcore.DPanicLevel
	}
	var unsampled zapcore.Core
	o.ZapOpts = append(append([]zap.Option(nil), o.ZapOpts...), zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		unsampled = c
		return c
	}))
	l := crzap.NewRaw(crzap.UseFlagOptions(&o))
	return l.WithOptions(zap.WrapCore(func(zapcore.Core) zapcore.Core { return unsampled }))
}
