#!/bin/sh
# Install the Debian 12 packages that building and testing walguard need.
# Safe to run again: it installs only what is missing and prints nothing
# when everything is already there.
set -eu

packages="
build-essential pkg-config meson ninja-build
libsodium-dev libuv1-dev libinih-dev libusrsctp-dev
libcmocka-dev libjansson-dev
clang libclang-rt-14-dev
postgresql-15 postgresql-client-15
iproute2 iptables procps psmisc util-linux tcpdump socat curl python3
"

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: run as root (it calls apt-get)" >&2
	exit 1
fi

missing=""
for package in $packages; do
	status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
	case "$status" in
	"install ok installed") ;;
	*) missing="$missing $package" ;;
	esac
done

[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # the list is meant to split into words
apt-get install -y -qq --no-install-recommends $missing >/dev/null
