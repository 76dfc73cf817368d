#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a stock Debian kernel under QEMU's TCG emulator with an SVM-capable
# CPU: the "emulated host" Kestrel is loaded into when this machine cannot
# load modules or has no usable VT hardware.  The kernel file comes from
# `scripts/kernels.sh --root KVER`: build/kernels/KVER/boot/vmlinuz-KVER,
# unpacked from Debian's image package (fetched on first use, never
# installed), or an already installed /boot/vmlinuz-KVER.
#
#   scripts/emulated-host.sh KVER INITRAMFS MODE LOGFILE
#
# MODE (test, demo or shell) goes to the initramfs's /init as kestrel.mode=.
# The serial console is written to LOGFILE and, when stdout is a terminal or
# KESTREL_VERBOSE=1, to stdout as well.  Mode shell is interactive (QEMU's
# mux: Ctrl-A x quits).  Exits with QEMU's status: 0 after the guest powered
# off (or panicked: panic=-1 reboots and -no-reboot turns that into an
# exit, so judge the run by the log), 124 when the host-side timeout hit.
#
# Environment:
#   KESTREL_BOOT_TIMEOUT  seconds before QEMU is killed (default 900)
#   KESTREL_APPEND        extra kernel command line
#   KESTREL_QEMU_LOCK     lock file serialising emulated hosts on this machine
#                         (default /tmp/kestrel-qemu.lock, "none" to skip):
#                         two TCG guests on 2 cores make each other time out
#   KESTREL_QEMU_THREAD   "multi" (default: one host thread per emulated CPU)
#                         or "single" (QEMU's -accel tcg,thread=single)
set -euo pipefail

if [ $# -ne 4 ]; then
	echo "usage: $0 KVER INITRAMFS test|demo|shell LOGFILE" >&2
	exit 2
fi
kver=$1
initramfs=$2
mode=$3
log=$4
timeout=${KESTREL_BOOT_TIMEOUT:-900}
lock=${KESTREL_QEMU_LOCK:-/tmp/kestrel-qemu.lock}
if ! kroot=$("$(dirname "$0")/kernels.sh" --root "$kver"); then
	echo "emulated-host: no kernel image for $kver" >&2
	exit 1
fi
kernel=${kroot%/}/boot/vmlinuz-$kver

for f in "$kernel" "$initramfs"; do
	if [ ! -r "$f" ]; then
		echo "emulated-host: cannot read $f" >&2
		exit 1
	fi
done
mkdir -p "$(dirname "$log")"

# Created world-writable and opened read-only (flock needs no more), so
# users and sticky /tmp's protected_regular do not lock each other out.
if [ "$lock" != none ] && { [ -e "$lock" ] || (umask 0 && : >> "$lock"); } 2>/dev/null &&
   { exec 9<"$lock"; } 2>/dev/null; then
	if ! flock -n 9; then
		echo "emulated-host: waiting for another emulated host to finish ($lock)" >&2
		flock 9
	fi
fi

thread=${KESTREL_QEMU_THREAD:-multi}
case $thread in
single | multi) ;;
*)
	echo "emulated-host: KESTREL_QEMU_THREAD must be single or multi, not '$thread'" >&2
	exit 2
	;;
esac

# shellcheck disable=SC2054 # the commas are QEMU's
qemu=(qemu-system-x86_64 -accel "tcg,thread=$thread" -cpu EPYC,+svm -smp 2 -m 1G
      -display none -vga none -nic none -no-reboot
      -kernel "$kernel" -initrd "$initramfs"
      -append "console=ttyS0 quiet panic=-1 kestrel.mode=$mode ${KESTREL_APPEND:-}")

if [ "$mode" = shell ]; then
	qemu+=(-chardev "stdio,id=con,mux=on,signal=off,logfile=$log" -serial chardev:con -mon chardev=con)
elif [ -t 1 ] || [ "${KESTREL_VERBOSE:-0}" = 1 ]; then
	qemu+=(-chardev "stdio,id=con,logfile=$log" -serial chardev:con -monitor none)
else
	qemu+=(-serial "file:$log" -monitor none)
fi

# QEMU's own complaints, less the expected list of CPUID bits TCG lacks.
errs=$(mktemp)
trap 'rm -f "$errs"' EXIT
if [ "$mode" = shell ]; then
	# --foreground: QEMU must stay in the terminal's process group to read it.
	timeout --foreground -k 10 "$timeout" "${qemu[@]}" <&0 2>"$errs" &
else
	# No stdin: QEMU must not put a terminal into raw mode behind our back.
	timeout -k 10 "$timeout" "${qemu[@]}" </dev/null 2>"$errs" &
fi
pid=$!
# timeout(1) may run in its own process group: pass on our death to QEMU,
# or a killed caller would leave it spinning.
trap 'kill -TERM $pid 2>/dev/null; wait $pid; rm -f "$errs"; exit 130' INT TERM HUP
rc=0
wait $pid || rc=$?
trap - INT TERM HUP
grep -v "TCG doesn't support requested feature" "$errs" >&2 || true
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	echo "### KESTREL-HOST-TIMEOUT after ${timeout}s" >> "$log"
	echo "emulated-host: killed after ${timeout}s (see $log)" >&2
fi
exit $rc
