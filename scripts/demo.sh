#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: run the hello guest under Kestrel.
#
# On a host that can take the module (root, SVM or VMX, module loading on,
# headers for the running kernel, KVM not holding the hardware) kestrel.ko
# is loaded here and the launcher runs directly.  Anywhere else, or when
# insmod fails here, the same thing happens inside the emulated host:
# Debian's 6.1 kernel under QEMU TCG with an SVM CPU (emulated-host.sh),
# from its image package unpacked under build/kernels/, not installed.
#
# Environment: KESTREL_SKIP_DEPS=1, KESTREL_SKIP_USER_BUILD=1,
# KESTREL_EMULATED=1 (use the emulated host even where direct would work),
# and the path overrides of scripts/mkinitramfs.sh.
set -euo pipefail

root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir"
scripts=$root_dir/scripts
export KESTREL_BUILD_DIR=${KESTREL_BUILD_DIR:-$root_dir/build}
build_dir=$KESTREL_BUILD_DIR
logs=$build_dir/logs
launcher=${KESTREL_LAUNCHER:-$root_dir/userspace/kestrel}
guest=${KESTREL_GUESTS_DIR:-$root_dir/userspace/guests}/hello.bin
mkdir -p "$logs"
unset MAKEFLAGS MFLAGS MAKELEVEL

# quiet LOG CMD...: run a build step, show its log only when it fails.
quiet() {
	local log=$1
	shift
	if ! "$@" > "$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "demo: failed: $* (log: $log)" >&2
		exit 1
	fi
}

# Why this host cannot run Kestrel directly; empty when it can.
direct_blocker() {
	local kver
	kver=$(uname -r)
	if [ "${KESTREL_EMULATED:-0}" = 1 ]; then
		echo "KESTREL_EMULATED=1"
	elif [ "$(id -u)" != 0 ]; then
		echo "not running as root"
	elif ! grep -qw -e svm -e vmx /proc/cpuinfo; then
		echo "the CPU shows no SVM or VMX"
	elif [ ! -e /proc/modules ] ||
	     [ "$(cat /proc/sys/kernel/modules_disabled 2>/dev/null || echo 0)" != 0 ]; then
		echo "this kernel cannot load modules"
	elif [ ! -f "/lib/modules/$kver/build/Makefile" ]; then
		echo "no headers for the running kernel $kver (linux-headers-$kver)"
	elif kvm_holds_vt; then
		echo "KVM holds SVM/VMX (rmmod kvm_amd or kvm_intel to run directly)"
	fi
}

# KVM owns the hardware while it is in use (its VMs and open /dev/kvm fds
# raise kvm_amd's or kvm_intel's use count) and, from 6.12 on, from load
# time unless kvm.enable_virt_at_load=0.  Merely loaded, it takes turns.
kvm_holds_vt() {
	grep -qE '^kvm_(amd|intel) [0-9]+ [1-9]' /proc/modules && return 0
	grep -qE '^kvm_(amd|intel) ' /proc/modules &&
		[ "$(cat /sys/module/kvm/parameters/enable_virt_at_load 2>/dev/null)" = Y ]
}

if [ "${KESTREL_SKIP_DEPS:-0}" != 1 ]; then
	"$scripts/deps.sh"
fi
if [ "${KESTREL_SKIP_USER_BUILD:-0}" != 1 ]; then
	echo "demo: building the launcher and guests"
	quiet "$logs/demo-userspace.log" make -j"$(nproc)" userspace
fi

why=$(direct_blocker)
if [ -z "$why" ]; then
	kver=$(uname -r)
	echo "demo: building kestrel.ko for $kver"
	quiet "$logs/$kver-module.log" "$scripts/build-module.sh" "$kver"
	loaded=0
	if grep -q '^kestrel ' /proc/modules; then
		echo "demo: kestrel is already loaded; using it"
	elif insmod "$build_dir/$kver/kestrel.ko"; then
		loaded=1
		trap 'rmmod kestrel' EXIT
	else
		why="insmod failed here (see dmesg)"
	fi
	if [ -z "$why" ]; then
		echo "demo: running $guest on this host"
		"$launcher" run --flat "$guest"
		linux=/boot/vmlinuz-$kver
		if [ -r "$linux" ]; then
			"$scripts/mkguestinitrd.sh" "$build_dir/guest-initrd.gz"
			echo "demo: booting $linux as a Kestrel guest"
			"$launcher" run --kernel "$linux" \
				--initrd "$build_dir/guest-initrd.gz" \
				--append console=ttyS0 --mem 256M
		fi
		exit
	fi
	[ $loaded = 0 ] || rmmod kestrel
	trap - EXIT
fi

kver=$("$scripts/kernels.sh" | sed -n 1p)
echo "demo: cannot run directly ($why); using the emulated host: Debian $kver under QEMU TCG with an SVM CPU"
# Debian's image package, downloaded and unpacked under build/kernels/ on
# first use (installing it would change this machine's default boot kernel),
# and the headers to build against.  The download's progress shows.
if ! "$scripts/kernels.sh" --fetch "$kver" > "$logs/$kver-kernel.log"; then
	echo "demo: failed: scripts/kernels.sh --fetch $kver" >&2
	exit 1
fi
sed -n 's/^kernels: [^ ]* \([a-z]*\): /demo: \1: /p' "$logs/$kver-kernel.log"
quiet "$logs/$kver-module.log" "$scripts/build-module.sh" "$kver"
initramfs=$build_dir/initramfs/$kver-demo.gz
KESTREL_TESTS=none quiet "$logs/demo-initramfs.log" "$scripts/mkinitramfs.sh" "$kver" "$initramfs"
log=$logs/demo.log
echo "demo: booting (about 40 s; serial log: ${log#"$root_dir"/})"
echo "----- guest output -----"
# Stream only what the launcher prints, as it prints it.
KESTREL_VERBOSE=1 KESTREL_BOOT_TIMEOUT=${KESTREL_BOOT_TIMEOUT:-600} \
	"$scripts/emulated-host.sh" "$kver" "$initramfs" demo "$log" |
	awk '{
		sub(/\r+$/, "")
		if (!on && index($0, "### KESTREL-DEMO-BEGIN")) { on = 1; next }
		if (on && (p = index($0, "### KESTREL-DEMO-END"))) {
			if (p > 1) print substr($0, 1, p - 1)
			on = 0
		}
		if (on) { print; fflush() }
	}' || true
echo "------------------------"
rc=$(sed -n 's/.*### KESTREL-DEMO-END rc=\([0-9]*\).*/\1/p' "$log")
if [ "$rc" = 0 ]; then
	echo "demo: both guests ran under Kestrel in the emulated host: the demo guest to its halt, Linux to its power-off"
	exit 0
fi
if grep -q 'KESTREL-RESULT insmod rc=[1-9]' "$log"; then
	echo "demo: insmod kestrel.ko failed in the emulated host" >&2
else
	echo "demo: the launcher failed (status ${rc:-unknown})" >&2
fi
{
	echo "demo: emulated host console:"
	sed -n '/### KESTREL-INIT/,/### KESTREL-DMESG-BEGIN/p' "$log" | tail -n 20
	echo "demo: kernel log since insmod:"
	sed -n '/kestrel-init: loading/,/### KESTREL-DMESG-END/p' "$log" | tail -n 40
} | tr -d '\r' >&2
exit 1
