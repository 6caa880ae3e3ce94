package packaging_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoTestRepeatsWhatFailedAtTheEnd: `make test` runs go test through
// hack/go-test.sh, which, when a test fails, says again below everything
// else which test failed and what it said, and exits with go test's
// status. A failing package prints its tests' stderr logs (the manager's,
// hundreds of lines) after its failures; a CI keeping only the tail of a
// run showed those and not the failing test (seen in stop 58's landing
// CI: controllers failed, and no test was named in what was shown).
func TestGoTestRepeatsWhatFailedAtTheEnd(t *testing.T) {
	const noise = "2026-12-07T22:43:46Z\tINFO\tStopping and waiting for caches\n" +
		"\t/root/go/pkg/mod/github.com/go-logr/logr@v1.4.3/logr.go:301\n"
	failing := `package gt

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestQuiet(t *testing.T) {}

func TestWaits(t *testing.T) {
	t.Run("on node-a", func(t *testing.T) {
		t.Errorf("timed out waiting for Ready:\nlast seen: False")
	})
}

// Logs after the failures, as a package's manager writes when TestMain
// stops it.
func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Fprint(os.Stderr, strings.Repeat(` + "`" + noise + "`" + `, 50))
	os.Exit(code)
}
`
	out, err := runGoTest(t, map[string]string{"gt_test.go": failing})
	if exitCode(err) != 1 {
		t.Fatalf("go-test.sh on a failing package: %v, want exit status 1 (go test's)\n%s", err, out)
	}
	summary := afterLast(t, out, "=== go test failed (exit 1); what failed, repeated from above:\n")
	want := "--- FAIL: TestWaits (" // then its time
	if !strings.HasPrefix(summary, want) {
		t.Fatalf("the summary begins %q, want %q", firstLine(summary), want)
	}
	for _, line := range []string{
		"    --- FAIL: TestWaits/on_node-a (",
		"        gt_test.go:14: timed out waiting for Ready:\n            last seen: False\n",
		"FAIL\texample.com/gt\t",
	} {
		if !strings.Contains(summary, line) {
			t.Errorf("the summary lacks %q:\n%s", line, summary)
		}
	}
	for _, line := range []string{"INFO", "logr.go", "TestQuiet"} {
		if strings.Contains(summary, line) {
			t.Errorf("the summary repeats %q, which is not what failed:\n%s", line, summary)
		}
	}

	// A package that does not build: the compiler's line is repeated.
	out, err = runGoTest(t, map[string]string{"gt_test.go": "package gt\n\nfunc f() { undefinedName() }\n"})
	if exitCode(err) != 1 {
		t.Fatalf("go-test.sh on a package that does not build: %v, want exit status 1\n%s", err, out)
	}
	summary = afterLast(t, out, "what failed, repeated from above:\n")
	if !strings.Contains(summary, "gt_test.go:3:12: undefined: undefinedName") {
		t.Errorf("the summary lacks the compiler's line:\n%s", summary)
	}

	// Under -v, a passing package's tests' own lines are not repeated.
	out, err = runGoTest(t, map[string]string{"gt_test.go": failing,
		"quiet/quiet_test.go": "package quiet\n\nimport \"testing\"\n\nfunc TestLogs(t *testing.T) { t.Log(\"a passing package's line\") }\n"}, "-v")
	if exitCode(err) != 1 {
		t.Fatalf("go-test.sh -v on a failing and a passing package: %v, want exit status 1\n%s", err, out)
	}
	summary = afterLast(t, out, "what failed, repeated from above:\n")
	if !strings.Contains(summary, "gt_test.go:14: timed out waiting for Ready:") || strings.Contains(summary, "a passing package's line") {
		t.Errorf("the -v summary should hold the failing test's line and not the passing package's:\n%s", summary)
	}

	// The exit status is go's, whatever it is (a go that exits 3).
	fakeGo := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(fakeGo, []byte("#!/bin/sh\nprintf 'FAIL\\texample.com/gt\\t0.1s\\n'\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "hack", "go-test.sh"), "./...")
	cmd.Env = append(os.Environ(), "GO="+fakeGo)
	if b, err := cmd.CombinedOutput(); exitCode(err) != 3 || !strings.Contains(string(b), "=== go test failed (exit 3)") {
		t.Errorf("go-test.sh with a go exiting 3: %v, want exit status 3 and it said\n%s", err, b)
	}

	// A passing run adds nothing and exits 0.
	out, err = runGoTest(t, map[string]string{"gt_test.go": "package gt\n\nimport \"testing\"\n\nfunc TestQuiet(t *testing.T) {}\n"})
	if err != nil {
		t.Fatalf("go-test.sh on a passing package: %v\n%s", err, out)
	}
	if strings.Contains(out, "what failed") {
		t.Errorf("a passing run says what failed:\n%s", out)
	}
}

// TestGoTestRepeatsHowAPackageEnded: go-test.sh's summary also says how a
// package ended that failed outside a test's own lines: the tests still
// running at a timeout (not the goroutines after them), a panic or a
// runtime fatal error with the first goroutine's stack (whose "created
// by" names the test that started it), a data race report, and, for a
// TestMain that failed before any test or a test binary killed, the
// last lines it printed (seen
// failing before these were picked: each summary held the package's FAIL
// line alone).
func TestGoTestRepeatsHowAPackageEnded(t *testing.T) {
	for _, tt := range []struct {
		name, test string
		args       []string
		// want are in the summary, in this order.
		want []string
	}{
		{name: "a timeout", args: []string{"-timeout=2s"},
			test: `func TestSlow(t *testing.T) { t.Run("inner", func(t *testing.T) { time.Sleep(time.Minute) }) }`,
			want: []string{"panic: test timed out after 2s\n\trunning tests:\n\t\tTestSlow (", "\t\tTestSlow/inner (", "FAIL\texample.com/gt\t"}},
		{name: "a panic outside the test",
			test: `func TestStarts(t *testing.T) { go func() { panic("manager goroutine boom") }(); time.Sleep(time.Minute) }`,
			want: []string{"panic: manager goroutine boom\n", "\ngoroutine ", "created by example.com/gt.TestStarts", "FAIL\texample.com/gt\t"}},
		// A fatal error the runtime raises for certain (concurrent map
		// writes are caught at best effort).
		{name: "a fatal error",
			test: `func TestUnlocks(t *testing.T) {
	go func() {
		var mu sync.Mutex
		mu.Unlock()
	}()
	time.Sleep(time.Minute)
}`,
			want: []string{"fatal error: sync: unlock of unlocked mutex\n", "created by example.com/gt.TestUnlocks", "FAIL\texample.com/gt\t"}},
		{name: "a race after the tests", args: []string{"-race"},
			test: `var n int

func TestQuiet(t *testing.T) { _ = time.Now() }

func TestMain(m *testing.M) {
	code := m.Run()
	done := make(chan bool)
	go func() { n++; done <- true }()
	n++
	<-done
	os.Exit(code)
}`,
			want: []string{"==================\nWARNING: DATA RACE\n", "example.com/gt.TestMain", "==================\nFound 1 data race(s)\n", "FAIL\texample.com/gt\t"}},
		{name: "a test binary killed",
			test: `func TestKilled(t *testing.T) {
	fmt.Println("the manager was at its 3rd pass")
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
}`,
			want: []string{"the manager was at its 3rd pass\n", "signal: killed\n", "FAIL\texample.com/gt\t"}},
		{name: "a TestMain failing before any test",
			test: `func TestQuiet(t *testing.T) { _ = time.Now() }

func TestMain(m *testing.M) {
	fmt.Fprintln(os.Stderr, "testenv: could not start kube-apiserver: exit status 1")
	os.Exit(1)
}`,
			want: []string{"testenv: could not start kube-apiserver: exit status 1\n", "FAIL\texample.com/gt\t"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := "package gt\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"sync\"\n\t\"syscall\"\n\t\"testing\"\n\t\"time\"\n)\n\nvar _, _, _, _, _ = fmt.Sprint, os.Exit, sync.Mutex{}, syscall.Kill, time.Now\n\n" + tt.test + "\n"
			out, err := runGoTest(t, map[string]string{"gt_test.go": src}, tt.args...)
			if exitCode(err) != 1 {
				t.Fatalf("go-test.sh: %v, want exit status 1 (go test's)\n%s", err, out)
			}
			summary := afterLast(t, out, "what failed, repeated from above:\n")
			rest := summary
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("the summary lacks %q after what came before it:\n%s", w, summary)
				}
				rest = rest[i+len(w):]
			}
			if n := strings.Count(summary, "\ngoroutine "); n > 1 {
				t.Errorf("the summary holds %d goroutines' stacks, want the first alone:\n%s", n, summary)
			}
		})
	}
}

// runGoTest runs hack/go-test.sh -count=1 [args] ./... in a module of its
// own holding files, and returns what it printed.
func runGoTest(t *testing.T, files map[string]string, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module example.com/gt\n\ngo 1.26\n"
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(root, "hack", "go-test.sh"), append(append([]string{"-count=1"}, args...), "./...")...)
	cmd.Dir = dir
	// The go on PATH, as `make test`'s; GO unset (the script's default).
	// cgo for -race, as make test's race pass.
	cmd.Env = append(os.Environ(), "GO=", "GOTOOLCHAIN=local", "GOFLAGS=", "CGO_ENABLED=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// exitCode is the exit status of a command that ran and exited (0 for
// none), or -1.
func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	return -1
}

// afterLast is what out has after the last sep, which it must have.
func afterLast(t *testing.T, out, sep string) string {
	t.Helper()
	i := strings.LastIndex(out, sep)
	if i < 0 {
		t.Fatalf("no %q in:\n%s", sep, out)
	}
	return out[i+len(sep):]
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
