#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Which Debian kernels Kestrel is tested against.
#
#   scripts/kernels.sh             print the kernel versions, one per line
#   scripts/kernels.sh --packages  print the Debian packages they need
#
# Debian 12's own 6.1 kernel is whatever linux-image-amd64 depends on; the
# 6.12 kernel is the newest linux-headers-6.12.*+deb12-amd64 in the apt lists.
# Both move as the archive moves, hence the lookup.  KESTREL_KERNELS="v1 v2"
# overrides the lookup (then nothing is asked of apt).  Without apt lists
# (fresh machine before apt-get update) we fall back to what is installed.
set -eu

newest() {
	sort -V | tail -n 1
}

installed_kernels() {
	for d in /lib/modules/*/build; do
		[ -e "$d" ] && basename "$(dirname "$d")"
	done
}

kernel_61() {
	v=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\(6\.1\.[^ ]*-amd64\)$/\1/p' | newest)
	if [ -z "$v" ]; then
		v=$(installed_kernels | grep -E '^6\.1\.[0-9]+-[0-9]+-amd64$' | newest)
	fi
	echo "$v"
}

kernel_612() {
	v=$(apt-cache search --names-only '^linux-headers-6\.12\.[0-9.]+\+deb12-amd64$' 2>/dev/null |
		sed -n 's/^linux-headers-\([^ ]*\) .*/\1/p' | newest)
	if [ -z "$v" ]; then
		v=$(installed_kernels | grep -E '^6\.12\.[0-9.]+\+deb12-amd64$' | newest)
	fi
	echo "$v"
}

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'
}

# 6.1 ships a signed linux-image-<ver>; the 6.12 builds in bookworm only
# come as linux-image-<ver>-unsigned.  Either provides /boot/vmlinuz-<ver>.
image_package() {
	for p in "linux-image-$1" "linux-image-$1-unsigned"; do
		if installed "$p"; then
			echo "$p"
			return
		fi
	done
	if apt-cache show "linux-image-$1" >/dev/null 2>&1; then
		echo "linux-image-$1"
	else
		echo "linux-image-$1-unsigned"
	fi
}

if [ -n "${KESTREL_KERNELS:-}" ]; then
	kernels=$KESTREL_KERNELS
else
	k1=$(kernel_61)
	k2=$(kernel_612)
	if [ -z "$k1" ] || [ -z "$k2" ]; then
		echo "kernels.sh: cannot resolve the 6.1/6.12 kernels (run apt-get update?)" >&2
		exit 1
	fi
	kernels="$k1 $k2"
fi

case "${1:-}" in
--packages)
	for k in $kernels; do
		image_package "$k"
		echo "linux-headers-$k"
	done
	;;
"")
	for k in $kernels; do
		echo "$k"
	done
	;;
*)
	echo "usage: $0 [--packages]" >&2
	exit 2
	;;
esac
