#!/usr/bin/env bash
# bench/run.sh [scenario...]: Ferry's benchmarks against the peers.
#
# Installs the peers from Debian packages (idempotent, quiet), builds the
# bench tools, runs the scenarios (all of them by default), writes raw
# results under bench/results/ (git-ignored), draws the plots into
# docs/benchmarks/ and rewrites docs/benchmarks.md from every result on disk.
# `make bench` runs this after `make build`; `make bench BENCH=restart` runs
# one scenario. Scenarios: restart proxy wsgi controlplane.
#
# Environment:
#   FERRY_AGENT   the agent binary (default: bin/ferry-agent, built by make build)
#   BENCH_RUNS    runs per configuration (default 3; smoke runs: 1)
#   BENCH_SMOKE   1: short runs for checking the scripts (numbers not for publishing)
#   BENCH_NO_DOC  1: do not rewrite docs/benchmarks.md and the plots
#   BENCH_NO_INSTALL 1: skip apt-get (the packages must be there)
#   BENCH_MANAGER_ARGS extra manager flags for the controlplane scenario,
#                 space-separated (--pprof-bind-address=127.0.0.1:6060 to
#                 read where its CPU goes while it runs)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
RESULTS=$ROOT/bench/results
TOOLS=$RESULTS/bin
FERRY_AGENT=${FERRY_AGENT:-$ROOT/bin/ferry-agent}

log() { printf '==> %s\n' "$*" >&2; }

# Debian packages: peers, nginx for the proxy scenario, matplotlib for the
# plots. wrk is optional. Nothing is installed when every package is there.
install_packages() {
	local want=(passenger gunicorn uwsgi uwsgi-plugin-python3 nginx-light python3-matplotlib)
	local optional=(wrk)
	local missing=() p
	for p in "${want[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	local opt_missing=()
	for p in "${optional[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || opt_missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ] && [ ${#opt_missing[@]} -eq 0 ]; then
		return
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "bench/run.sh: missing Debian packages (${missing[*]} ${opt_missing[*]}); run as root or install them" >&2
		[ ${#missing[@]} -eq 0 ] && return
		exit 1
	fi
	log "Installing ${missing[*]} ${opt_missing[*]}"
	# Installing nginx or uwsgi must not start their system services: a
	# policy-rc.d that refuses, if the machine has none (removed after).
	local policy=/usr/sbin/policy-rc.d made_policy=0
	if [ ! -e $policy ]; then
		printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && made_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" "${opt_missing[@]}" >"$RESULTS/apt.log" 2>&1; then
		apt-get update -qq >>"$RESULTS/apt.log" 2>&1 || true
		if [ ${#missing[@]} -gt 0 ]; then
			apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$RESULTS/apt.log" 2>&1 ||
				{ [ $made_policy = 1 ] && rm -f $policy; echo "bench/run.sh: apt-get failed; see $RESULTS/apt.log" >&2; exit 1; }
		fi
		[ ${#opt_missing[@]} -gt 0 ] && { apt-get install -y -qq --no-install-recommends "${opt_missing[@]}" >>"$RESULTS/apt.log" 2>&1 || log "optional ${opt_missing[*]} not installed"; }
	fi
	[ $made_policy = 1 ] && rm -f $policy
	return 0
}

mkdir -p "$RESULTS" "$TOOLS"
[ "${BENCH_NO_INSTALL:-0}" = 1 ] || install_packages

if [ ! -x "$FERRY_AGENT" ]; then
	echo "bench/run.sh: $FERRY_AGENT not found; run 'make build' (or 'make bench')" >&2
	exit 1
fi

log "Building the bench tools into $TOOLS"
CGO_ENABLED=0 go build -trimpath -o "$TOOLS/" ./bench/cmd/ferrybench ./bench/cmd/upstream ./bench/cmd/loadgen

args=(--results "$RESULTS" --agent "$FERRY_AGENT" --tools "$TOOLS" --repo "$ROOT")
[ -n "${BENCH_RUNS:-}" ] && args+=(--runs "$BENCH_RUNS")
[ "${BENCH_SMOKE:-0}" = 1 ] && args+=(--smoke)

status=0
"$TOOLS/ferrybench" run "${args[@]}" "$@" || status=$?

if [ "${BENCH_NO_DOC:-0}" != 1 ]; then
	log "Drawing the plots"
	/usr/bin/python3 bench/plot.py --results "$RESULTS" --out docs/benchmarks
	log "Rewriting docs/benchmarks.md"
	"$TOOLS/ferrybench" doc --results "$RESULTS" --out docs/benchmarks.md --plots docs/benchmarks
fi
exit $status
