# go-test-failures.awk picks out of go test's output what failed, for
# hack/go-test.sh to say again at its end. Plain awk (Debian's mawk).
#
#   --- FAIL lines, and a test's own lines: indented by spaces (a tab
#     starts a stack trace's file line), naming a file without a
#     directory (name_test.go:N: …), with the lines indented deeper that
#     continue them;
#   a compiler's or vet's line (file:line:column: …);
#   a panic or a runtime fatal error, with its first goroutine's stack
#     (for a panic outside any test, the "created by" line names the test
#     that started it); for a timeout, the tests still running instead
#     (the tab-indented list after it), not the thousands of goroutines;
#   a data race report whole (a race in TestMain
#     or in a goroutine that outlived its test names no test), and how
#     the test binary ended (signal, exit status);
#   each failing package's FAIL line, and, for a package that failed
#     with nothing else picked from its output (TestMain failing before
#     any test, writing only to stderr, or a test binary killed), the
#     last lines it printed.
#
# Under -v a failing package's passing tests' own lines are picked too.

# What is picked is held until its package's result line: printed with
# its FAIL line, dropped with an ok line (under -v, a passing package's
# test lines). A compiler's line is printed at once: it may come amid
# another package's output, before its own package's result.
function pick(line) { held = held line "\n"; picked++ }
# note holds a line that says how the test binary ended (a signal, an
# exit status): said, but not what failed, so the package's last lines
# are still shown with it.
function note(line) { held = held line "\n" }

BEGIN { depth = -1; tail = 5 }

{
	# The last lines of the package's output, for a failure that said
	# nothing else.
	last[NR % tail] = $0
}

inRace {
	pick($0)
	if ($0 ~ /^==================$/ && NR > raceStart) inRace = 0
	next
}
inTimeout {
	if ($0 ~ /^\t/) { pick($0); next }
	inTimeout = 0
}
inPanic && ($0 ~ /^(ok|FAIL)/) { inPanic = 0 }
inPanic {
	if ($0 ~ /^goroutine [0-9]+ \[/) sawGoroutine = 1
	if ($0 == "" && sawGoroutine) { inPanic = 0; next }
	pick($0)
	next
}

/^panic: test timed out/ { pick($0); inTimeout = 1; depth = -1; next }
/^panic: / || /^fatal error: / { pick($0); inPanic = 1; sawGoroutine = 0; depth = -1; next }
/^WARNING: DATA RACE/ { pick("=================="); pick($0); inRace = 1; raceStart = NR; depth = -1; next }
/^ *--- FAIL/ || /^Found [0-9]+ data race/ { pick($0); depth = -1; next }
/^signal: / || /^exit status [0-9]+$/ || /^\*\*\* Test killed/ { note($0); depth = -1; next }
/^ +[^ \/]+\.go:[0-9]+: / { pick($0); match($0, /^ +/); depth = RLENGTH; next }
/^[^ \t]+\.go:[0-9]+:[0-9]+: / { print; depth = -1; next }
depth >= 0 && match($0, /^ +/) && RLENGTH > depth { pick($0); next }
{ depth = -1 }

/^FAIL\t/ {
	if (picked) {
		printf "%s", held
	} else {
		for (i = NR - tail + 1; i < NR; i++) if (i > lastResult && (i % tail) in last) print last[i % tail]
	}
	print
}
/^(ok|FAIL|\?) *\t/ { picked = 0; held = ""; lastResult = NR }
