#!/usr/bin/env bash
# install-deps.sh installs the Debian packages that the build and the tests
# use, when a command of theirs is missing, or a library package (no command
# to look for) is not installed as dpkg says; it returns at once when none is.
# `make test` and .ci/run call it, so a fresh machine needs nothing by hand.
#
#   make, git   the build
#   awk         make test's summary of what failed (hack/go-test.sh; mawk, Debian's default)
#   gcc         cgo, for the race detector pass of `make test`
#   python3     the WSGI workers
#   flock       serializing runs on a shared machine
#   curl, ip    the local stack and its tests
#   pkill       the test control plane's guard (internal/testenv)
#   jq          tests run the queries the status views point at (standalone, kubectl ferry)
#   setpriv     agent/spawn's TestSpawnAsAUidWithNoPasswdEntry runs itself again as a uid with
#               no passwd entry, cmd/agent's TestAgentInRootsGroupSaysSo runs the agent as a uid
#               in root's group and not (util-linux, as flock: Essential on Debian, but a
#               slimmed image may lack it)
#   libnss-wrapper  agent/spawn's TestLibcLookupsAskNSS points libc's user lookups (getpwnam,
#               getgrouplist), built with cgo, at files of its own; a library, no command: asked
#               of dpkg
set -euo pipefail

declare -A packages=(
	[make]=make [git]=git [gcc]=gcc [python3]=python3 [flock]=util-linux
	[curl]=curl [ip]=iproute2 [pkill]=procps [jq]=jq [setpriv]=util-linux
	[awk]=mawk
)
missing=()
for cmd in "${!packages[@]}"; do
	pkg=${packages[$cmd]}
	# Named once, however many of its commands are missing (flock, setpriv).
	command -v "$cmd" >/dev/null 2>&1 || [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done
# libnss-wrapper, a library, is asked of dpkg; not Debian (no dpkg): no
# package to ask of it, nor apt-get to install one.
if command -v dpkg-query >/dev/null &&
	! dpkg-query -W -f='${Status}' libnss-wrapper 2>/dev/null | grep -q ' installed$'; then
	missing+=(libnss-wrapper)
fi
((${#missing[@]})) || exit 0

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
	# Never a password prompt in the middle of a build.
	if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
		echo "install-deps: missing Debian packages: ${missing[*]}" >&2
		echo "install-deps: not root and no password-less sudo; install them with: apt-get install ${missing[*]}" >&2
		exit 1
	fi
	sudo_cmd=(sudo -n)
fi
echo "Installing missing packages: ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
