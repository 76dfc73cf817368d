#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: Kestrel against KVM in one boot of the emulated host.
#
# Builds kestrel.ko for one Debian kernel (6.1 by default), the launcher and
# bench/kbench; packs them with scripts/mkinitramfs.sh (kbench rides in as
# the only "selftest", and the stock KVM modules are packed anyway); boots
# the kernel once, as scripts/emulated-host.sh does but with single-threaded
# TCG (see qemu_boot); and pulls kbench's table and raw CSV out of the
# serial log.  Not part of `make check` or CI.
#
#   bench/run.sh
#
# Environment (all optional):
#   KESTREL_BENCH_KERNEL=6.12  which kernel: 6.1, 6.12 or a full version
#   KESTREL_BENCH_RUNS=11      runs per operation and hypervisor (median)
#   KESTREL_BENCH_OPS=a,b      only these operations (`bench/kbench --list`)
#   KESTREL_BENCH_ONLY=kvm     run one hypervisor alone (kestrel or kvm)
#   KESTREL_BENCH_VERBOSE=1    print each run as it starts
#   KESTREL_BENCH_DIR=DIR      output (default build/bench)
#   KESTREL_SKIP_DEPS=1        do not run scripts/deps.sh
#   KESTREL_VERBOSE=1          stream the serial console
#
# Output: DIR/results/KVER/{table.txt,raw.csv,serial-N.log}.
#
# Should the emulated host wedge anyway, its console goes quiet: it is
# stopped and booted again for the operations it had not finished, up to 4
# boots.  Each operation's runs, Kestrel's and KVM's, still all come from
# one boot.
set -euo pipefail

root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir"
scripts=$root_dir/scripts
out=${KESTREL_BENCH_DIR:-$root_dir/build/bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)
want=${KESTREL_BENCH_KERNEL:-6.1}
runs=${KESTREL_BENCH_RUNS:-11}
ops=${KESTREL_BENCH_OPS:-}
start=$SECONDS
# Sub-makes get their own job count, not the jobserver of `make bench`.
unset MAKEFLAGS MFLAGS MAKELEVEL

die() {
	echo "bench: $*" >&2
	exit 1
}

# step LOG CMD...: quiet unless it fails.
step() {
	local log=$1
	shift
	if ! "$@" > "$log" 2>&1; then
		tail -n 30 "$log" | sed 's/^/    | /' >&2
		die "failed: $* (log: ${log#"$root_dir"/})"
	fi
}

if [ "${KESTREL_SKIP_DEPS:-0}" != 1 ]; then
	"$scripts/deps.sh" || die "scripts/deps.sh failed"
fi

# "6.1" must not pick 6.12: match the version or "<want>." as a prefix.
kver=
for k in $("$scripts/kernels.sh"); do
	case $k in
	"$want" | "$want".*) kver=$k; break ;;
	esac
done
[ -n "$kver" ] || kver=$want
# The kernel file: unpacked by scripts/kernels.sh --root, or installed.
kroot=$("$scripts/kernels.sh" --root "$kver" 2> /dev/null) || kroot=/
vmlinuz=${kroot%/}/boot/vmlinuz-$kver
[ -r "$vmlinuz" ] || die "no kernel image for '$want' ($vmlinuz; scripts/kernels.sh)"

res=$out/results/$kver
rm -rf "$res"
mkdir -p "$res"
echo "bench: kernel $kver, $runs runs per operation; output in ${res#"$root_dir"/}"

# The module goes to $out/KVER/kestrel.ko, apart from `make check`'s build/.
export KESTREL_BUILD_DIR=$out
step "$res/module.log" "$scripts/build-module.sh" "$kver"
step "$res/userspace.log" make -C userspace
step "$res/kbench.log" make -C bench

# kbench is the initramfs's only selftest: /init runs it once, as root, with
# kestrel.ko loaded, and prints its output between the test markers.
stage=$out/stage-$kver
rm -rf "$stage"
mkdir -p "$stage"
cp bench/kbench "$stage/kbench_test"
initramfs=$out/initramfs-$kver.gz
unset KESTREL_TESTS
step "$res/initramfs.log" env KESTREL_SELFTESTS_DIR="$stage" \
	KESTREL_TEST_TIMEOUT=840 "$scripts/mkinitramfs.sh" "$kver" "$initramfs"

# The operations, in table order.
all_ops=$(bench/kbench --list-ids)
if [ -n "$ops" ]; then
	all_ops=$(echo "$all_ops" | grep -Fx -f <(echo "$ops" | tr ',' '\n') || true)
	[ -n "$all_ops" ] || die "no such operation in '$ops' (bench/kbench --list-ids)"
fi
remaining=$(echo $all_ops)

# wait_for_qemu: one emulated host at a time on this machine.  The lock
# below serialises us with scripts/emulated-host.sh; a QEMU started by
# other means holds no lock, hence the poll.
wait_for_qemu() {
	if pgrep qemu-system > /dev/null; then
		echo "bench: waiting for the running QEMU to finish"
		while pgrep qemu-system > /dev/null; do
			sleep 10
		done
	fi
}

# qemu_boot LOG APPEND: scripts/emulated-host.sh's machine and lock, but
# with single-threaded TCG.  With a thread per vCPU (the default) the
# emulated host wedged within 4k-200k guest exits in most runs, with KVM
# alone as with Kestrel (every CPU stuck, soft lockups); single-threaded
# it did not.  emulated-host.sh has no knob for the accelerator yet.
qemu_boot() {
	local log=$1 append=$2 lock=${KESTREL_QEMU_LOCK:-/tmp/kestrel-qemu.lock}
	local qemu=(qemu-system-x86_64 -accel tcg,thread=single -cpu EPYC,+svm
		    -smp 2 -m 1G -display none -vga none -nic none -no-reboot
		    -kernel "$vmlinuz" -initrd "$initramfs"
		    -serial "file:$log" -monitor none
		    -append "console=ttyS0 quiet panic=-1 kestrel.mode=test $append")

	if [ "$lock" != none ]; then
		exec 9>>"$lock"
		flock 9
	fi
	wait_for_qemu
	: > "$log"
	timeout -k 10 900 "${qemu[@]}" < /dev/null 2> "$res/qemu.err" &
	echo $! > "$res/qemu.pid"
	wait $!
}

# boot N LOG: one emulated host running kbench on $remaining.  A host that
# prints nothing for $silence s has wedged: stop it, keep what it finished,
# and boot again.
silence=90
boot() {
	local n=$1 log=$2 append pid last size quiet=0 rc=0

	append="kbench.runs=$runs kbench.ops=$(echo $remaining | tr ' ' ',')"
	[ "${KESTREL_BENCH_VERBOSE:-0}" != 1 ] || append="$append kbench.verbose=1"
	[ -z "${KESTREL_BENCH_ONLY:-}" ] || append="$append kbench.only=$KESTREL_BENCH_ONLY"
	echo "bench: boot $n: $(echo $remaining | wc -w) operations (log: ${log#"$root_dir"/})"
	: > "$log"
	qemu_boot "$log" "$append" &
	pid=$!
	# kbench's progress lines (or the whole console), as they come.
	if [ "${KESTREL_VERBOSE:-0}" = 1 ]; then
		tail -n +1 -F "$log" 2> /dev/null &
	else
		tail -n +1 -F "$log" 2> /dev/null > >(sed -u -n 's/\r$//; s/^kbench:/    kbench:/p') &
	fi
	tailer=$!
	last=-1
	while kill -0 $pid 2> /dev/null; do
		sleep 5
		size=$(stat -c %s "$log")
		if [ "$size" != "$last" ]; then
			last=$size quiet=0
			continue
		fi
		quiet=$((quiet + 5))
		# Before kbench starts, the lock may be what we wait on.
		if [ $quiet -ge $silence ] && grep -q KBENCH-CSV-BEGIN "$log"; then
			echo "bench: no output for $silence s: the emulated host wedged; stopping it"
			echo "### KBENCH-WEDGED" >> "$log"
			kill -TERM "$(cat "$res/qemu.pid")" 2> /dev/null || true
			break
		fi
	done
	wait $pid || rc=$?
	sleep 1
	kill $tailer 2> /dev/null || true
	tailer=
	grep -v "TCG doesn't support requested feature" "$res/qemu.err" >&2 || true
	echo "bench: boot $n ended (status $rc)"
}

trap '[ -z "${tailer:-}" ] || kill $tailer 2> /dev/null || true' EXIT
: > "$res/rows"
: > "$res/csv"
: > "$res/head"
head_done=0
for n in 1 2 3 4; do
	log=$res/serial-$n.log
	boot $n "$log"
	clean=$(mktemp)
	tr -d '\r' < "$log" > "$clean"
	if [ $head_done = 0 ] && grep -q '^### KBENCH-HEAD ' "$clean"; then
		sed -n 's/^### KBENCH-HEAD //p' "$clean" > "$res/head"
		head_done=1
	fi
	# The rows (and the CSV lines) of the operations this boot finished.
	done_ops=$(sed -n 's/^### KBENCH-ROW \([^ ]*\) .*/\1/p' "$clean")
	for id in $done_ops; do
		sed -n "s/^### KBENCH-ROW $id //p" "$clean" | sed "s/^/$id	/" >> "$res/rows"
		grep "^$id,\(Kestrel\|KVM\)," "$clean" | sed "s/^/$n,/" >> "$res/csv" || true
		remaining=$(echo " $remaining " | sed "s/ $id / /; s/^ *//; s/ *$//")
	done
	# The kernel log /init prints at the end: anything alarming after insmod.
	awk '
		/### KESTREL-DMESG-BEGIN/ { on = 1; next }
		/### KESTREL-DMESG-END/ { on = 0 }
		on && /kestrel-init: loading kestrel.ko/ { seen = 1 }
		on && seen && /BUG|WARNING|Oops|general protection|Call Trace|Kernel panic/' \
		"$clean" >> "$res/dmesg-alerts.txt"
	# A wedge leaves its soft-lockup reports on the console.
	grep -E 'soft lockup|rcu.*stall|Call Trace' "$clean" | head -n 3 >> "$res/wedges.txt" || true
	rm -f "$clean"
	[ -n "$remaining" ] || break
done

# table.txt: the header, then one row per operation in table order.
{
	cat "$res/head"
	for id in $all_ops; do
		row=$(awk -F '\t' -v id="$id" '$1 == id { print $2; exit }' "$res/rows")
		if [ -n "$row" ]; then
			echo "$row"
		else
			printf '%-46s | %s\n' "$id" "not measured: the emulated host wedged $n times"
		fi
	done
} > "$res/table.txt"
{
	echo "# kbench raw results, bench/run.sh: kernel $kver"
	echo "# boot: which boot of the emulated host measured the line; value: the table's figure (ns per iteration, or KiB); alt: the other clock (host CLOCK_MONOTONIC or guest TSC)"
	echo "boot,op,hypervisor,run,iterations,unit,value,alt,note"
	cat "$res/csv"
} > "$res/raw.csv"
nrows=$(wc -l < "$res/rows")
rm -f "$res/rows" "$res/csv" "$res/head" "$res/qemu.pid"

echo
[ "$nrows" -gt 0 ] || die "no results (see ${res#"$root_dir"/}/serial-*.log)"
cat "$res/table.txt"
echo
if [ -s "$res/dmesg-alerts.txt" ]; then
	echo "bench: the kernel log has alarming lines (${res#"$root_dir"/}/dmesg-alerts.txt):"
	head -n 5 "$res/dmesg-alerts.txt" | sed 's/^/    | /'
fi
if [ $n -gt 1 ]; then
	echo "bench: the emulated host wedged and was booted $n times (${res#"$root_dir"/}/wedges.txt)"
fi
echo "bench: raw numbers in ${res#"$root_dir"/}/raw.csv; whole run $((SECONDS - start)) s"
