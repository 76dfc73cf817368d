#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a stock Debian kernel under the Bochs emulator, whose Intel CPU
# models have VMX with EPT, VPID and unrestricted guest: the emulated host
# for Kestrel's VMX backend (QEMU's TCG emulates no VMX).  The counterpart
# of scripts/emulated-host.sh, with the same arguments and serial protocol:
#
#   scripts/bochs-host.sh KVER INITRAMFS MODE LOGFILE
#
# Bochs has no kernel loader, so the kernel and initramfs go onto a FAT16
# "superfloppy" disk image (dosfstools, mtools) that syslinux boots with the
# same command line QEMU gets.  The serial console is written to LOGFILE.
# MODE (test or demo) goes to /init as kestrel.mode=.  Bochs exits 1 on the
# guest's ACPI power-off as on a failure, so the run is judged by the log
# (like emulated-host.sh's callers do); exits 124 when the host-side
# timeout hit.  Expect about 45 s to /init (the XZ kernel decompresses
# slowly), twice that with two CPUs, plus the tests, which Bochs runs tens
# of times slower than the hardware.
#
# Bochs 2.7 does not exit to the host on interrupts while a guest runs with
# RFLAGS.IF clear: load kestrel.ko with vmx_preemption_timer_us=2000 (the
# initramfs's KESTREL_INSMOD_ARGS) or such guests hold their CPU for good.
#
# Environment:
#   KESTREL_BOOT_TIMEOUT  seconds before Bochs is killed (default 1800)
#   KESTREL_APPEND        extra kernel command line
#   KESTREL_BOCHS_CPUS    emulated CPUs (default 2: the migration test
#                         needs two; 1 halves the boot time)
#   KESTREL_BOCHS_MEM     guest RAM in MiB (default 512)
#   KESTREL_BOCHS_CPU     Bochs CPU model (default corei7_haswell_4770: VMX
#                         with EPT, VPID, unrestricted guest; boots cleanly)
#   KESTREL_BOCHS_NICE    nice level for Bochs (default 10: share the CPUs)
#   KESTREL_BOCHS_KEEP=1  keep the work directory (disk image, bochsrc, the
#                         emulator's own log) and print where it is
#   KESTREL_QEMU_LOCK     the lock serialising emulated hosts on this
#                         machine, shared with emulated-host.sh (default
#                         /tmp/kestrel-qemu.lock, "none" to skip)
set -euo pipefail

if [ $# -ne 4 ]; then
	echo "usage: $0 KVER INITRAMFS test|demo LOGFILE" >&2
	exit 2
fi
kver=$1
initramfs=$2
mode=$3
log=$4
timeout=${KESTREL_BOOT_TIMEOUT:-1800}
cpus=${KESTREL_BOCHS_CPUS:-2}
mem=${KESTREL_BOCHS_MEM:-512}
model=${KESTREL_BOCHS_CPU:-corei7_haswell_4770}
nice_level=${KESTREL_BOCHS_NICE:-10}
lock=${KESTREL_QEMU_LOCK:-/tmp/kestrel-qemu.lock}
# mkfs.vfat lives in /sbin, which a user's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

case $mode in
test | demo) ;;
*)
	echo "bochs-host: mode $mode is not supported (Bochs has no interactive console here)" >&2
	exit 2
	;;
esac
for tool in bochs-bin mkfs.vfat mcopy syslinux; do
	if ! command -v "$tool" >/dev/null; then
		echo "bochs-host: $tool not found (scripts/deps.sh installs bochs, dosfstools, mtools, syslinux)" >&2
		exit 1
	fi
done
if ! kroot=$("$(dirname "$0")/kernels.sh" --root "$kver"); then
	echo "bochs-host: no kernel image for $kver" >&2
	exit 1
fi
kernel=${kroot%/}/boot/vmlinuz-$kver
for f in "$kernel" "$initramfs" /usr/share/bochs/BIOS-bochs-latest \
	 /usr/share/vgabios/vgabios.bin; do
	if [ ! -r "$f" ]; then
		echo "bochs-host: cannot read $f" >&2
		exit 1
	fi
done
mkdir -p "$(dirname "$log")"
log=$(cd "$(dirname "$log")" && pwd)/$(basename "$log")

work=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-bochs.XXXXXX")
cleanup() {
	if [ "${KESTREL_BOCHS_KEEP:-0}" = 1 ]; then
		echo "bochs-host: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# The disk: 16 heads, 63 sectors a track, as many cylinders as the files
# need (at least 65, which FAT16 wants), 2 MiB to spare for FAT and slack.
cyl_bytes=$((16 * 63 * 512))
need=$(($(stat -c %s "$kernel") + $(stat -c %s "$initramfs") + 2 * 1024 * 1024))
cyls=$(((need + cyl_bytes - 1) / cyl_bytes))
[ $cyls -ge 65 ] || cyls=65
if [ $cyls -gt 1024 ]; then
	echo "bochs-host: kernel and initramfs too large for a CHS disk ($need bytes)" >&2
	exit 1
fi
cat > "$work/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0,115200 quiet panic=-1 oops=panic cryptomgr.notests=1 mitigations=off kestrel.mode=$mode ${KESTREL_APPEND:-}
EOF
truncate -s $((cyls * cyl_bytes)) "$work/hd.img"
mkfs.vfat -F 16 -n KESTREL -S 512 -g 16/63 -h 0 "$work/hd.img" >/dev/null
cp "$kernel" "$work/vmlinuz"
cp "$initramfs" "$work/initrd.gz"
(cd "$work" && MTOOLS_SKIP_CHECK=1 mcopy -i hd.img vmlinuz initrd.gz syslinux.cfg ::)
rm -f "$work/vmlinuz" "$work/initrd.gz"
syslinux --install "$work/hd.img"

# MSRs the kernel reads that Bochs lacks: read as 0 (and so does 0x1a0,
# MISC_ENABLE, whose fast-strings bit makes `rep movsb` slow in Bochs).
# Unknown MSRs still #GP (ignore_bad_msrs=0): that catches Kestrel bugs.
for msr in 0x000001a0 0x000000e7 0x000000e8 0x00000179 0x0000017a; do
	echo "$msr 0 00000000 00000000 00000000 00000000 00000000 00000000"
done > "$work/msrs.def"

cat > "$work/bochsrc.txt" <<EOF
display_library: term
config_interface: textconfig
memory: guest=$mem, host=$mem
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
cpu: model=$model, count=$cpus, ips=100000000, reset_on_triple_fault=1, ignore_bad_msrs=0, msrs="msrs.def"
pci: enabled=1, chipset=i440fx
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=disk, path=hd.img, mode=flat, cylinders=$cyls, heads=16, spt=63
boot: disk
clock: sync=none, time0=local
com1: enabled=1, mode=file, dev=serial.log
log: bochs.log
panic: action=fatal
speaker: enabled=0
mouse: enabled=0
EOF
# Debian's Bochs has its debugger built in, and it stops before the first
# instruction: a command file saying "continue" gets past it.
echo c > "$work/dbg.rc"

# Created world-writable and opened read-only (flock needs no more), so
# users and sticky /tmp's protected_regular do not lock each other out.
if [ "$lock" != none ] && { [ -e "$lock" ] || (umask 0 && : >> "$lock"); } 2>/dev/null &&
   { exec 9<"$lock"; } 2>/dev/null; then
	if ! flock -n 9; then
		echo "bochs-host: waiting for another emulated host to finish ($lock)" >&2
		flock 9
	fi
fi

start=$SECONDS
rc=0
# stdin from /dev/null: the debugger and the term display must not read a
# terminal.  The term display's screen output is of no use: discarded.
# Bochs ignores SIGTERM: timeout(1) follows up with SIGKILL.
(cd "$work" && TERM=dumb exec nice -n "$nice_level" timeout -k 5 "$timeout" \
	bochs-bin -q -unlock -f bochsrc.txt -rc dbg.rc </dev/null >bochs.out 2>&1) &
pid=$!
# Our own death ends Bochs too: timeout(1) passes SIGTERM on, which Bochs
# ignores, so its child gets SIGKILL.
stop_bochs() {
	local child
	child=$(pgrep -P "$pid" 2>/dev/null || true)
	kill -TERM "$pid" 2>/dev/null
	[ -z "$child" ] || kill -KILL "$child" 2>/dev/null
	wait "$pid"
	cleanup
	exit 130
}
trap stop_bochs INT TERM HUP
wait $pid || rc=$?
trap - INT TERM HUP

cp "$work/serial.log" "$log" 2>/dev/null || : > "$log"
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	echo "### KESTREL-HOST-TIMEOUT after ${timeout}s" >> "$log"
	echo "bochs-host: killed after ${timeout}s (see $log)" >&2
	exit 124
fi
# A Bochs panic (not the guest's) says why in its own log.
if grep -q '^.*PANIC' "$work/bochs.log" 2>/dev/null; then
	echo "bochs-host: Bochs reported a panic:" >&2
	grep 'PANIC' "$work/bochs.log" | head -n 5 >&2
fi
echo "bochs-host: Bochs ran $((SECONDS - start)) s ($cpus CPU(s), $mem MiB)" >&2
exit 0
