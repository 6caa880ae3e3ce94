#!/usr/bin/env bash
# local-up.sh brings up a working local Ferry: a real kube-apiserver and
# etcd (built once from Go modules, cached), two simulated nodes (Node
# objects, agents bound to 127.0.0.2 and 127.0.0.3), the manager, and the
# sample AppGroup, then prints what to try.
#
#   hack/local-up.sh            foreground; Ctrl-C tears everything down
#   hack/local-up.sh --detach   returns once the sample is Ready;
#                               hack/local-down.sh stops it
# Either way it writes .local/kubeconfig, and .local/env once Ready.
#
# Running it while a local Ferry is up only prints how to reach it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dir=$root/.local
detach=false
for arg in "$@"; do
	case $arg in
	--detach | -d) detach=true ;;
	-h | --help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "local-up: unknown argument $arg" >&2; exit 2 ;;
	esac
done

running() { [[ -f $dir/pid ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

if running; then
	echo "A local Ferry is already running (pid $(cat "$dir/pid")). Reach it with:"
	echo "  source $dir/env && kubectl get appgroups"
	echo "Stop it with: make local-down"
	exit 0
fi

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then export PATH=/usr/local/go/bin:$PATH; fi
echo "==> Building Ferry and the test control plane (cached after the first run)"
make -s build control-plane
go build -o bin/ferry-local ./hack/localstack
mkdir -p "$dir/logs"
rm -f "$dir/ready"

if ! $detach; then
	exec bin/ferry-local --dir "$dir" --bin bin --repo "$root"
fi

setsid bin/ferry-local --dir "$dir" --bin bin --repo "$root" --detached >"$dir/logs/local-up.log" 2>&1 </dev/null &
pid=$!
echo "==> Starting in the background (log: $dir/logs/local-up.log)"
for _ in $(seq 1 600); do
	if [[ -f $dir/ready ]]; then
		sed -n '/^Ferry is up/,$p' "$dir/logs/local-up.log"
		exit 0
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "local-up failed; the end of its log:" >&2
		tail -n 40 "$dir/logs/local-up.log" >&2
		exit 1
	fi
	sleep 0.5
done
echo "local-up: not Ready after 5 minutes; see $dir/logs/" >&2
exit 1
