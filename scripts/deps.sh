#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the build, `make check` and `make demo` need on a
# Debian 12 machine.  Idempotent: when all packages are already installed it
# returns in about a second without touching apt.  Uses sudo only when not
# root.  The kernel versions come from scripts/kernels.sh (KESTREL_KERNELS
# overrides them).
#
# Of the test kernels only the headers are installed (that touches nothing
# in /boot).  Their images, for the emulated host, are never installed:
# installing a linux-image package runs update-grub and changes the
# machine's default boot kernel.  scripts/kernels.sh fetches and unpacks
# them under build/kernels/ when they are first needed.
#
#   scripts/deps.sh           install what is missing
#   scripts/deps.sh --update  only apt-get update (for scripts/kernels.sh)
set -eu

here=$(cd "$(dirname "$0")" && pwd)

# Why each one is here:
#  build-essential      gcc/make, and libc6-dev's libc.a for static binaries
#  qemu-system-x86      the emulated host (TCG, -cpu EPYC,+svm)
#  busybox-static       the emulated host's userland (must be static)
#  cpio gzip xz-utils   packing its initramfs (6.12's stock modules are .ko.xz)
#  dkms                 the DKMS packaging check
#  kmod                 insmod on a real host; depmod/modinfo on the unpacked
#                       test kernels (scripts/kernels.sh, mkinitramfs.sh)
#  libnl-*-dev          the launcher and selftests talk generic netlink
#  openssl              lets dkms sign what it builds instead of warning
#  bochs bochs-term     the VMX emulated host (scripts/bochs-host.sh): Bochs
#  bochsbios vgabios    emulates VMX with EPT, QEMU's TCG does not; headless
#                       with the term display, and its BIOS images
#  syslinux syslinux-common mtools dosfstools
#                       its boot disk: a FAT16 image syslinux boots
#  linux-source-6.12    Debian's kernel source (scripts/linux-source.sh): the
#                       debug-kernel lane builds it; the selftests use its
#                       kselftest framework
#  bc bison flex libelf-dev libssl-dev
#                       what building that kernel needs
#  sparse               `make lint`: sparse (C=2) over the module
base="build-essential qemu-system-x86 busybox-static cpio gzip xz-utils dkms kmod
      libnl-3-dev libnl-genl-3-dev openssl
      bochs bochs-term bochsbios vgabios syslinux syslinux-common mtools dosfstools
      linux-source-6.12 bc bison flex libelf-dev libssl-dev sparse"

if [ "$(id -u)" = 0 ]; then
	sudo=
elif command -v sudo >/dev/null; then
	sudo=sudo
else
	sudo=
fi

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'
}

missing() {
	for p in $base $kpkgs; do
		installed "$p" || echo "$p"
	done
}

update=0
case "${1:-}" in
--update) update=1 ;;
"") ;;
*)
	echo "usage: $0 [--update]" >&2
	exit 2
	;;
esac

if [ $update = 0 ]; then
	# Without apt lists (a fresh machine) the kernel lookup cannot work yet.
	kpkgs=$("$here/kernels.sh" --packages 2>/dev/null || true)
	if [ -n "$kpkgs" ] && [ -z "$(missing)" ]; then
		exit 0
	fi
fi

if [ "$(id -u)" != 0 ] && [ -z "$sudo" ]; then
	echo "deps: apt-get needs root; run this as root (there is no sudo here)" >&2
	exit 1
fi

# apt_get ARGS...: apt-get without questions, waiting up to 10 minutes for
# another apt or dpkg run (apt-daily, unattended-upgrades, an admin) instead
# of failing at once.  DPkg::Lock::Timeout covers only dpkg's locks, not
# those of the lists and the download cache, hence the retries on apt's
# (untranslated: LC_ALL=C) lock message.  The environment goes through env:
# sudo would drop DEBIAN_FRONTEND.  A conffile question (from a package
# upgraded on the way) must not stop dpkg either: keep the local file.
apt_get() {
	err=$(mktemp)
	tries=0
	# shellcheck disable=SC2086 # $sudo is empty or one word
	until $sudo env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
		apt-get -o DPkg::Lock::Timeout=600 \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"$@" 2>"$err"; do
		if grep -q 'Could not get lock' "$err" && [ $tries -lt 60 ]; then
			[ $tries != 0 ] || echo "deps: waiting for another apt or dpkg to finish"
			tries=$((tries + 1))
			sleep 10
			continue
		fi
		cat "$err" >&2
		rm -f "$err"
		return 1
	done
	cat "$err" >&2
	rm -f "$err"
}

if [ $update = 1 ]; then
	echo "deps: apt-get update" >&2
	apt_get update -qq
	exit 0
fi

echo "deps: installing packages (apt-get update first)"
apt_get update -qq
# Resolve again: the 6.12 kernel moves and the lists just changed.
kpkgs=$("$here/kernels.sh" --packages)
need=$(missing)
if [ -z "$need" ]; then
	echo "deps: nothing to install"
	exit 0
fi
# shellcheck disable=SC2086 # word splitting of the package list is wanted
apt_get install -y -qq --no-install-recommends $need
echo "deps: installed: $(echo "$need" | tr '\n' ' ')"
