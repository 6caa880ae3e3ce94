package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
)

// logger parses args as the agent and the manager do and returns the
// logger, writing to the returned buffer.
func logger(t *testing.T, args ...string) (logr.Logger, *bytes.Buffer) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var buf bytes.Buffer
	build := bindFlags(fs, &buf)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return build(), &buf
}

// TestNothingIsSampledOut: a message logged many times (as "Worker output"
// is, once per line of a chatty app) is written every time, whatever the
// level and encoder; zap's production sampler kept the first 100 a second
// and one in 100 after.
func TestNothingIsSampledOut(t *testing.T) {
	const n = 2000
	for _, args := range [][]string{
		nil,
		{"--zap-encoder=console"},
		{"--zap-log-level=debug"},
		{"--zap-log-level=error"},
		{"--zap-devel"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			log, buf := logger(t, args...)
			for i := range n {
				log.Info("Worker output", "line", fmt.Sprintf("line %d", i))
				log.Error(nil, "Killing worker", "pid", i)
			}
			out := buf.String()
			info, errs := strings.Count(out, "Worker output"), strings.Count(out, "Killing worker")
			wantInfo := n
			if len(args) == 1 && args[0] == "--zap-log-level=error" {
				wantInfo = 0
			}
			if info != wantInfo || errs != n {
				t.Errorf("%d of %d info and %d of %d error entries written", info, wantInfo, errs, n)
			}
			if wantInfo > 0 && !strings.Contains(out, fmt.Sprintf("line %d", n-1)) {
				t.Errorf("the last line is missing")
			}
		})
	}
}

// TestFlagsStillApply: the level, the encoder and the time encoding are
// controller-runtime's flags, read as before.
func TestFlagsStillApply(t *testing.T) {
	log, buf := logger(t)
	log.V(1).Info("debug entry")
	log.Info("info entry", "k", "v")
	var entry map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &entry); err != nil {
		t.Fatalf("default is not one JSON entry at info: %v\n%s", err, buf)
	}
	if entry["msg"] != "info entry" || entry["k"] != "v" || entry["level"] != "info" {
		t.Errorf("entry %v", entry)
	}

	log, buf = logger(t, "--zap-log-level=debug", "--zap-encoder=console", "--zap-time-encoding=epoch")
	log.V(1).Info("debug entry")
	out := buf.String()
	if !strings.Contains(out, "\tDEBUG\tdebug entry") || strings.HasPrefix(out, "{") {
		t.Errorf("--zap-log-level=debug --zap-encoder=console wrote:\n%s", out)
	}
}

// TestStackTracesOnlyForBugs: an error entry (a worker that failed to
// start, a failed reconcile) carries no Go stack trace, in either encoder;
// a DPanic entry (a bug of the program's own) does; --zap-stacktrace-level
// still chooses.
func TestStackTracesOnlyForBugs(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		errorTraced bool
	}{
		{nil, false},
		{[]string{"--zap-encoder=console"}, false},
		{[]string{"--zap-devel"}, false},
		{[]string{"--zap-stacktrace-level=error"}, true},
		{[]string{"--zap-stacktrace-level=error", "--zap-encoder=console"}, true},
		{[]string{"--zap-stacktrace-level=info"}, true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			log, buf := logger(t, tc.args...)
			log.Error(errors.New("exit status 1"), "Worker failed to start")
			if traced := strings.Contains(buf.String(), "testing.tRunner"); traced != tc.errorTraced {
				t.Errorf("error entry with a stack trace: %v, want %v:\n%s", traced, tc.errorTraced, buf)
			}
			if tc.errorTraced {
				return
			}
			buf.Reset()
			zl, ok := log.GetSink().(zapr.Underlier)
			if !ok {
				t.Fatal("the logger is not zapr's")
			}
			func() {
				defer func() { _ = recover() }() // --zap-devel: DPanic panics
				zl.GetUnderlying().DPanic("impossible state")
			}()
			if !strings.Contains(buf.String(), "testing.tRunner") {
				t.Errorf("DPanic entry without a stack trace:\n%s", buf)
			}
		})
	}
}

// TestHelpSaysWhatTheFlagsDo: the time encoding's help names the values it
// takes and the default that applies.
func TestHelpSaysWhatTheFlagsDo(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	BindFlags(fs)
	if u := fs.Lookup("zap-time-encoding").Usage; !strings.Contains(u, "'nanos'") || !strings.Contains(u, "Defaults to 'rfc3339'") {
		t.Errorf("--zap-time-encoding help: %s", u)
	}
	log, buf := logger(t)
	log.Info("entry")
	if !strings.Contains(buf.String(), `"ts":"20`) {
		t.Errorf("the default time encoding is not RFC 3339: %s", buf)
	}
	if err := fs.Parse([]string{"--zap-time-encoding=nanos"}); err != nil {
		t.Errorf("--zap-time-encoding=nanos: %v", err)
	}
}
