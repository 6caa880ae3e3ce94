package spawn

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// TestSpawnSlowImportSaysToRaiseStartTimeout: a WSGI app still importing
// at startTimeout is said to be, with the knob and its value.
func TestSpawnSlowImportSaysToRaiseStartTimeout(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/hang", StartupFile: "passenger_wsgi.py"})
	spec.StartTimeout = time.Second
	_, err := Spawn(context.Background(), spec)
	var se *Error
	want := "not ready within startTimeout (1s): the app was still loading (importing passenger_wsgi.py); " +
		"if it needs longer, raise pool.startTimeout (now 1s)"
	if !errors.As(err, &se) || se.Reason != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

// TestSpawnDaemonizingCommandSaysStayInTheForeground: a command that
// exits 0 before it is ready (having forked its server away) is told to
// stay in the foreground.
func TestSpawnDaemonizingCommandSaysStayInTheForeground(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"sh", "-c", "sleep 60 & exit 0"}})
	_, err := Spawn(context.Background(), spec)
	var se *Error
	if !errors.As(err, &se) || !strings.HasPrefix(se.Reason, "exited with status 0 before it was ready; the command must stay in the foreground") {
		t.Fatalf("err = %v, want exit status 0 and to stay in the foreground", err)
	}
}

// TestSpawnNotCallableApplication: the loader names the type of an
// application that is not callable, with its article.
func TestSpawnNotCallableApplication(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/notcallable"})
	_, err := Spawn(context.Background(), spec)
	var se *Error
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "passenger_wsgi.py: 'application' is not callable (it is an int)") {
		t.Fatalf("err = %v, want it to say the application is an int", err)
	}
}

// TestSpawnLoadErrorIsSaidOnce: the loader's error line with no frames of
// the app's behind it (a LoadError: its traceback is that line alone) is
// the reason, not the output as well. One with frames keeps its traceback
// (TestSpawnWSGIImportErrorCarriesTraceback).
func TestSpawnLoadErrorIsSaidOnce(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/notcallable"})
	_, err := Spawn(context.Background(), spec)
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *Error", err)
	}
	const said = "'application' is not callable"
	if n := strings.Count(err.Error(), said); n != 1 || se.Output != "" {
		t.Fatalf("err says %q %d times, output %q; want once, in the reason, and no output:\n%v", said, n, se.Output, err)
	}
}

// TestDescribeExit: a signal is named (SIGKILL, SIGSEGV), not only worded
// as Go words it, and SIGKILL says who sends it. Each wording is read back
// by the manager: a young death of it (contract.YoungDeathReason, as
// agent/pool writes one) is one (contract.DiedAfterReadyIn), and its exit
// before it was ready (exitError) is not.
func TestDescribeExit(t *testing.T) {
	for status, want := range map[string]string{
		"exit status 3":  "exited with status 3",
		"exit status 0":  "exited with status 0",
		"signal: killed": "was killed (SIGKILL: by the kernel's out-of-memory killer, or by someone; see dmesg)",
		"signal: segmentation fault (core dumped)":    "was killed by a signal (SIGSEGV: segmentation fault, core dumped)",
		"signal: segmentation fault":                  "was killed by a signal (SIGSEGV: segmentation fault)",
		"signal: terminated":                          "was killed by a signal (SIGTERM: terminated)",
		"signal: aborted":                             "was killed by a signal (SIGABRT: aborted)",
		"signal: signal 40":                           "was killed by a signal (signal 40)",
		"wait: no child processes":                    "exited (wait: no child processes)",
		"stop signal: trace/breakpoint trap (trap 1)": "exited (stop signal: trace/breakpoint trap (trap 1))",
	} {
		got := describeExit(status)
		if got != want {
			t.Errorf("describeExit(%q) = %q, want %q", status, got, want)
		}
		if young := contract.YoungDeathReason(got, 1200*time.Millisecond); !contract.DiedAfterReadyIn(young) {
			t.Errorf("contract.DiedAfterReadyIn(%q) = false, want true", young)
		}
		if before := got + " before it was ready"; contract.DiedAfterReadyIn(before) {
			t.Errorf("contract.DiedAfterReadyIn(%q) = true, want false", before)
		}
	}
}

// TestDescribeExitOfEverySignalReadsAsAYoungDeath: every signal a worker
// can die of, as Go words it, with a core dumped or not, is worded so
// that a young death of it (contract.YoungDeathReason, as agent/pool
// writes one) is read as one, its exit whole (contract.WithoutLifetime
// keeps it and drops the lifetime): a signal's text with parentheses of
// its own, or more than one level of them, would not be.
func TestDescribeExitOfEverySignalReadsAsAYoungDeath(t *testing.T) {
	for sig := syscall.Signal(1); sig < 65; sig++ {
		for _, core := range []string{"", " (core dumped)"} {
			exit := describeExit("signal: " + sig.String() + core)
			young := contract.YoungDeathReason(exit, 1200*time.Millisecond) + ", while handling a request"
			if !contract.DiedAfterReadyIn(young) {
				t.Errorf("signal %d%s: contract.DiedAfterReadyIn(%q) = false, want true", sig, core, young)
			}
			if got, want := contract.WithoutLifetime(young), exit+" soon "+contract.DiedAfterReady; got != want {
				t.Errorf("signal %d%s: contract.WithoutLifetime(%q) = %q, want %q", sig, core, young, got, want)
			}
		}
	}
}

// TestSpawnKilledCommandNamesSIGKILL: a Command worker SIGKILLed before it
// was ready (as the out-of-memory killer does) is said to be, by name.
func TestSpawnKilledCommandNamesSIGKILL(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"sh", "-c", "kill -KILL $$"}})
	_, err := Spawn(context.Background(), spec)
	var se *Error
	want := "was killed (SIGKILL: by the kernel's out-of-memory killer, or by someone; see dmesg) before it was ready"
	if !errors.As(err, &se) || se.Reason != want {
		t.Fatalf("err = %v, want reason %q", err, want)
	}
}
