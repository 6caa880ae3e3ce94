#!/usr/bin/env bash
# build-control-plane.sh builds the real kube-apiserver and etcd that Ferry's
# tests and `make local-up` run against, from Go modules (no downloads of
# release tarballs: this machine reaches only the Go module proxy).
#
#   kube-apiserver  k8s.io/kubernetes v1.36.3 (hack/control-plane/go.mod)
#   etcd            go.etcd.io/etcd/server/v3 v3.6.8 (hack/control-plane/etcd)
#
# The binaries land in $BIN (default: bin/) and in a cache outside the clone,
# $FERRY_CACHE (default: ~/.cache/ferry), keyed by version, so a fresh clone
# on the same machine copies them instead of building (about 5 minutes on 2
# cores). Nothing is done when $BIN already holds the right versions.
set -euo pipefail

K8S_VERSION=1.36.3
ETCD_VERSION=3.6.8

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BIN:-$root/bin}
cache_root=${FERRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry}
key="kube-apiserver-v${K8S_VERSION}_etcd-v${ETCD_VERSION}"
cache="$cache_root/control-plane/$key"
stamp="$bin/.control-plane"

# Stamp the version the way Kubernetes' own build does, so clients that check
# the server's version see v${K8S_VERSION}.
version_pkg=k8s.io/component-base/version
minor=${K8S_VERSION#*.}
k8s_ldflags="-s -w -X $version_pkg.gitVersion=v${K8S_VERSION} -X $version_pkg.gitMajor=${K8S_VERSION%%.*}"
k8s_ldflags+=" -X $version_pkg.gitMinor=${minor%%.*} -X $version_pkg.gitTreeState=clean"

have() { [[ -x "$1/kube-apiserver" && -x "$1/etcd" ]]; }

mkdir -p "$bin" "$cache_root"
# Two builds at once (make -j, two clones) would race on the cache.
exec 9>"$cache_root/.control-plane.lock"
if ! flock -n 9; then
  echo "Waiting for another build of the control plane to finish ($cache_root/.control-plane.lock)..." >&2
  flock 9
fi

# Tests drive the machine's kubectl. A machine without one gets kubectl
# v${K8S_VERSION} built from the same module (and cached the same way).
ensure_kubectl() {
	if PATH="${PATH//$bin:/}" command -v kubectl >/dev/null 2>&1 || [[ -x "$bin/kubectl" ]]; then
		return
	fi
	local cached="$cache_root/control-plane/kubectl-v${K8S_VERSION}/kubectl"
	if [[ ! -x "$cached" ]]; then
		echo "No kubectl on this machine: building kubectl v${K8S_VERSION} from Go modules..." >&2
		mkdir -p "$(dirname "$cached")"
		(cd "$root/hack/control-plane" && go build -trimpath -ldflags "$k8s_ldflags" -o "$cached.tmp" k8s.io/kubernetes/cmd/kubectl)
		mv "$cached.tmp" "$cached"
	fi
	cp "$cached" "$bin/kubectl"
}
ensure_kubectl

if have "$bin" && [[ "$(cat "$stamp" 2>/dev/null)" == "$key" ]]; then
	exit 0
fi

if ! have "$cache"; then
	echo "Building kube-apiserver v${K8S_VERSION} and etcd v${ETCD_VERSION} from Go modules (once per machine, ~5 min)..." >&2
	tmp=$(mktemp -d "$cache_root/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	(
		cd "$root/hack/control-plane"
		go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" ./etcd
		go build -trimpath -ldflags "$k8s_ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
	)
	# The output is read whole before it is matched: `etcd --version | grep -q`
	# fails now and then under pipefail, when grep has matched the first line
	# and exited before etcd writes the next (SIGPIPE, exit 141).
	etcd_version=$("$tmp/etcd" --version)
	apiserver_version=$("$tmp/kube-apiserver" --version)
	if [[ $etcd_version != *"etcd Version: ${ETCD_VERSION}"$'\n'* || $apiserver_version != *"v${K8S_VERSION}" ]]; then
		echo "The control plane built is not the version asked for: $etcd_version / $apiserver_version" >&2
		exit 1
	fi
	mkdir -p "$(dirname "$cache")"
	rm -rf "$cache"
	mv "$tmp" "$cache"
	trap - EXIT
fi

cp "$cache/kube-apiserver" "$cache/etcd" "$bin/"
echo "$key" >"$stamp"
echo "Control plane ready in $bin: kube-apiserver v${K8S_VERSION}, etcd v${ETCD_VERSION}" >&2
