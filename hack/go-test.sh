#!/usr/bin/env bash
# go-test.sh runs `go test` with the arguments it is given ($GO, or go) and,
# when that fails, says again at the very end which tests failed and what
# they said: their "--- FAIL" lines and their own lines (name_test.go:N: …,
# with the lines that continue them), what did not build, and the failing
# packages.
#
# A failing package's output holds every log line its tests wrote to
# stderr, the manager's and the agents' among them, hundreds past the
# failure; a CI that keeps only the tail of a run would show those and not
# which test failed. Nothing is filtered out of what go test prints: this
# only adds the summary after it, and exits with go test's status.
set -uo pipefail

log=$(mktemp "${TMPDIR:-/tmp}/ferry-go-test.XXXXXX")
trap 'rm -f "$log"' EXIT

"${GO:-go}" test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [[ $status -ne 0 ]]; then
	echo
	echo "=== go test failed (exit $status); what failed, repeated from above:"
	# A test's own line is indented by spaces (a tab starts a stack trace's
	# file line) and names a file without a directory; the lines that
	# continue it are indented deeper than it. A compiler's or vet's line
	# (file:line:column:) is said for a package that did not build.
	awk '
		/^ *--- FAIL/ || /^FAIL/ || /^panic: / || /^\*\*\* Test killed/ { print; depth = -1; next }
		/^ +[^ \/]+\.go:[0-9]+: / { print; match($0, /^ +/); depth = RLENGTH; next }
		/^[^ \t]+\.go:[0-9]+:[0-9]+: / { print; depth = -1; next }
		depth >= 0 && match($0, /^ +/) && RLENGTH > depth { print; next }
		{ depth = -1 }
	' "$log"
fi
exit "$status"
