#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the build, `make check` and `make demo` need on a
# Debian 12 machine.  Idempotent: when all packages are already installed it
# returns in about a second without touching apt.  Uses sudo only when not
# root.  The kernel versions come from scripts/kernels.sh (KESTREL_KERNELS
# overrides them).
set -eu

here=$(cd "$(dirname "$0")" && pwd)

# Why each one is here:
#  build-essential      gcc/make, and libc6-dev's libc.a for static binaries
#  qemu-system-x86      the emulated host (TCG, -cpu EPYC,+svm)
#  busybox-static       the emulated host's userland (must be static)
#  cpio gzip xz-utils   packing its initramfs (6.12's stock modules are .ko.xz)
#  dkms                 the DKMS packaging check
#  kmod                 insmod/modprobe/modinfo on a real host
#  libnl-*-dev          the launcher and selftests talk generic netlink
#  openssl              lets dkms sign what it builds instead of warning
base="build-essential qemu-system-x86 busybox-static cpio gzip xz-utils dkms kmod
      libnl-3-dev libnl-genl-3-dev openssl"

if [ "$(id -u)" = 0 ]; then
	sudo=
else
	sudo=sudo
fi

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'
}

missing() {
	for p in $base $kpkgs; do
		installed "$p" || echo "$p"
	done
}

# Without apt lists (a fresh machine) the kernel lookup cannot work yet.
kpkgs=$("$here/kernels.sh" --packages 2>/dev/null || true)
if [ -n "$kpkgs" ] && [ -z "$(missing)" ]; then
	exit 0
fi

echo "deps: installing packages (apt-get update first)"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Resolve again: the 6.12 kernel moves and the lists just changed.
kpkgs=$("$here/kernels.sh" --packages)
need=$(missing)
# shellcheck disable=SC2086 # word splitting of the package list is wanted
$sudo apt-get install -y -qq --no-install-recommends $need
echo "deps: installed: $(echo "$need" | tr '\n' ' ')"
