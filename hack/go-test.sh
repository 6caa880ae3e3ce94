#!/usr/bin/env bash
# go-test.sh runs `go test` with the arguments it is given ($GO, or go) and,
# when that fails, says again at the very end what failed, as
# go-test-failures.awk picks it: the failing tests and their own lines,
# what did not build, how a package ended that failed otherwise (a
# timeout's running tests, a panic, a data race, a TestMain's last lines),
# and the failing packages.
#
# A failing package's output holds every log line its tests wrote to
# stderr, the manager's and the agents' among them, hundreds past the
# failure; a CI that keeps only the tail of a run would show those and not
# which test failed. Nothing is filtered out of what go test prints: this
# only adds the summary after it, and exits with go test's status.
set -uo pipefail

log=$(mktemp "${TMPDIR:-/tmp}/ferry-go-test.XXXXXX") || exec "${GO:-go}" test "$@"
trap 'rm -f "$log"' EXIT

"${GO:-go}" test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [[ $status -ne 0 ]]; then
	echo
	echo "=== go test failed (exit $status); what failed, repeated from above:"
	awk -f "$(dirname "${BASH_SOURCE[0]}")/go-test-failures.awk" "$log"
fi
exit "$status"
