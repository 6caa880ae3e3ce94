#!/usr/bin/env bash
# local-down.sh stops what hack/local-up.sh --detach started: the agents
# (which drain and stop their workers), the manager, kube-apiserver and
# etcd. It does nothing if no local Ferry runs.
set -euo pipefail
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.local
if [[ ! -f $dir/pid ]] || ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
	echo "No local Ferry is running."
	rm -f "$dir/pid" "$dir/ready"
	exit 0
fi
pid=$(cat "$dir/pid")
echo "==> Stopping the local Ferry (pid $pid)"
kill -TERM "$pid"
for _ in $(seq 1 360); do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "==> Stopped"
		exit 0
	fi
	sleep 0.5
done
echo "local-down: still running after 3 minutes; killing it" >&2
kill -KILL "$pid" 2>/dev/null || true
