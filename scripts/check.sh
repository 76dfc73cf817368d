#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: build Kestrel for each supported Debian kernel, boot each
# kernel under QEMU (scripts/emulated-host.sh) with kestrel.ko and the
# selftests in an initramfs, and judge the serial log.  Also checks that DKMS
# can build the module for each kernel, and does the same on a debug kernel
# built from Debian's 6.12 source (scripts/debug-kernel.sh: lockdep, KASAN,
# UBSAN, DEBUG_ATOMIC_SLEEP), and on 6.1 under Bochs for the VMX backend.  Documentation/testing.rst has the
# details; the last line printed is always "N passed, N failed, N skipped".
#
# Every one of these is a result: each TAP "ok"/"not ok" line of each
# selftest (a "# SKIP"/"# TODO" one is skipped, never passed), the userspace
# and selftests builds, each kernel's files (image and headers, fetched and
# unpacked on first use: scripts/kernels.sh), module build, DKMS build,
# insmod and rmmod, each test program that crashed, timed out, exited oddly
# or missed its plan, each suspicious kernel log line after insmod, and a
# boot that never finished.  The exit status is 0 only when nothing failed and at
# least one TAP result was not a skip.
#
# Environment (all optional):
#   KESTREL_KERNELS="v1 v2"   kernels to test (default: scripts/kernels.sh)
#   KESTREL_SKIP_DEPS=1       do not run scripts/deps.sh
#   KESTREL_SKIP_DKMS=1       skip the DKMS builds
#   KESTREL_SKIP_LINT=1       skip scripts/lint.sh (checkpatch, sparse, W=1)
#   KESTREL_SKIP_USER_BUILD=1 do not run `make userspace` and `make selftests`
#   KESTREL_TESTS="a_test b"  run only these selftests
#   KESTREL_TEST_TIMEOUT=300  seconds per selftest program inside the guest
#   KESTREL_BOOT_TIMEOUT=N    seconds per boot, host side (default: derived
#                             from the number of tests, at most 1200)
#   KESTREL_INSMOD_ARGS=...   module parameters
#   KESTREL_DMESG_IGNORE=ERE  kernel log lines to not count as failures
#   KESTREL_VERBOSE=1         also stream each serial console to stdout
#   KESTREL_SKIP_DEBUG=1      skip the debug kernel (build and run)
#   KESTREL_DEBUG_TESTS="a b" its selftests (default: all)
#   KESTREL_DEBUG_SWAP_TEST=1 run memory_test's swapping guest there too
#   KESTREL_DEBUG_TEST_TIMEOUT=600  seconds per selftest there
#   KESTREL_DEBUG_BOOT_TIMEOUT=N    seconds for its whole boot (default:
#                             derived from the number of tests, at most 2400)
#   KESTREL_DEBUG_RUN_TIMEOUT=60    seconds one KESTREL_RUN may take there
#                             (the selftests' watchdog; lib.h has 10)
#   KESTREL_QEMU_THREAD=single  how the stock and debug kernels' emulated
#                             hosts run: single (default) or multi
#                             (scripts/emulated-host.sh)
#   KESTREL_SKIP_MTTCG=1      skip the multi-threaded-TCG lane
#   KESTREL_MTTCG_TESTS="a b" its selftests (default: the list below)
#   KESTREL_SKIP_VMX=1        skip the VMX backend's run under Bochs
#   KESTREL_VMX_KERNEL=ver    its kernel (default: the first of the list)
#   KESTREL_VMX_TESTS="a b"   its selftests (default: the subset below)
#   KESTREL_VMX_BOOT_TIMEOUT=N  seconds for the whole Bochs run
#   KESTREL_VMX_TEST_TIMEOUT=600  seconds per selftest there (Bochs is slow)
#   KESTREL_FUZZ_SECONDS=30   fuzz_test's budget (and KESTREL_FUZZ_SEED to
#                             replay a seed; see Documentation/testing.rst)
#   KESTREL_VMX_FUZZ_SECONDS=15   fuzz_test's budget under Bochs
#   KESTREL_BUILD_DIR, KESTREL_MODULE_SRC, KESTREL_SELFTESTS_DIR,
#   KESTREL_LAUNCHER, KESTREL_GUESTS_DIR: other trees (development of these
#                             scripts; see scripts/mkinitramfs.sh)
set -euo pipefail

root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir"
scripts=$root_dir/scripts
export KESTREL_BUILD_DIR=${KESTREL_BUILD_DIR:-$root_dir/build}
build_dir=$KESTREL_BUILD_DIR
logs=$build_dir/logs
selftests_dir=${KESTREL_SELFTESTS_DIR:-$root_dir/selftests}
export KESTREL_TEST_TIMEOUT=${KESTREL_TEST_TIMEOUT:-300}
# QEMU 7.2's multi-threaded TCG loses guest and host state in SVM world
# switches (Documentation/testing.rst): the lanes run single-threaded,
# and the multi-threaded lane below runs only the tests that need two
# host CPUs truly at once.
export KESTREL_QEMU_THREAD=${KESTREL_QEMU_THREAD:-single}
mkdir -p "$logs"
# Sub-makes get their own job count, not the jobserver of `make check`.
unset MAKEFLAGS MFLAGS MAKELEVEL

passed=0 failed=0 skipped=0 ran=0
kpassed=0 kfailed=0 kskipped=0
summaries=()
start_all=$SECONDS

# result PASS|FAIL|SKIP text...: print one result and count it.
result() {
	local st=$1
	shift
	printf '%-4s %s\n' "$st" "$*"
	case $st in
	PASS) passed=$((passed + 1)) kpassed=$((kpassed + 1)) ;;
	FAIL) failed=$((failed + 1)) kfailed=$((kfailed + 1)) ;;
	SKIP) skipped=$((skipped + 1)) kskipped=$((kskipped + 1)) ;;
	esac
}

finish() {
	local s
	echo
	echo "== summary ($((SECONDS - start_all)) s, logs in ${logs#"$root_dir"/})"
	for s in "${summaries[@]}"; do
		echo "$s"
	done
	if [ $ran -eq 0 ]; then
		result FAIL "no selftest ran (no TAP result that was not skipped)"
	fi
	echo "$passed passed, $failed failed, $skipped skipped"
	if [ $failed -eq 0 ]; then
		exit 0
	fi
	exit 1
}

# step LABEL LOG CMD...: run a build step quietly; one result; log tail on failure.
step() {
	local label=$1 log=$2 t=$SECONDS
	shift 2
	if "$@" > "$log" 2>&1; then
		result PASS "$label ($((SECONDS - t)) s)"
	else
		result FAIL "$label (log: ${log#"$root_dir"/})"
		tail -n 30 "$log" | sed 's/^/    | /'
		return 1
	fi
}

if [ "${KESTREL_SKIP_DEPS:-0}" != 1 ]; then
	if ! "$scripts/deps.sh"; then
		result FAIL "scripts/deps.sh: installing dependencies"
		finish
	fi
fi
if ! kernels=$("$scripts/kernels.sh"); then
	result FAIL "scripts/kernels.sh: resolving kernel versions"
	finish
fi
echo "kernels: ${kernels//$'\n'/ }"

# `make lint` (scripts/lint.sh), one result per check: a finding fails the
# run, and the tests still run.
if [ "${KESTREL_SKIP_LINT:-0}" != 1 ]; then
	step "lint: checkpatch" "$logs/lint-checkpatch.log" "$scripts/lint.sh" checkpatch || true
	for kver in $kernels; do
		step "lint: W=1 $kver" "$logs/lint-w1-$kver.out" "$scripts/lint.sh" w1 "$kver" || true
		step "lint: sparse $kver" "$logs/lint-sparse-$kver.out" \
			"$scripts/lint.sh" sparse "$kver" || true
	done
fi

if [ "${KESTREL_SKIP_USER_BUILD:-0}" != 1 ]; then
	# Separately: the selftests must still run when the launcher breaks.
	step "build: userspace" "$logs/userspace.log" make -j"$(nproc)" userspace || true
	step "build: selftests" "$logs/selftests.log" make -j"$(nproc)" selftests || true
fi

# named_in "LIST" NAME: does the space-separated LIST name NAME?  An
# empty LIST names everything (KESTREL_TESTS and its kin unset).
named_in() {
	[ -z "$1" ] && return 0
	case " $1 " in *" $2 "*) return 0 ;; esac
	return 1
}

# lane_boot_timeout N: seconds for a boot running N selftests on a stock
# kernel, KESTREL_BOOT_TIMEOUT if set.
lane_boot_timeout() {
	local t=$((120 + $1 * (KESTREL_TEST_TIMEOUT + 10)))
	if [ -n "${KESTREL_BOOT_TIMEOUT:-}" ]; then
		t=$KESTREL_BOOT_TIMEOUT
	elif [ $t -gt 1200 ]; then
		t=1200
	fi
	echo "$t"
}

ntests=0
for t in "$selftests_dir"/*_test; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	named_in "${KESTREL_TESTS:-}" "${t##*/}" || continue
	ntests=$((ntests + 1))
done
echo "selftests: $ntests in ${selftests_dir#"$root_dir"/}/"
boot_timeout=$(lane_boot_timeout $ntests)

# The serial log's judge.  Emits "R<TAB>PASS|FAIL|SKIP<TAB>text",
# "L<TAB>log line to show" and, once, "N<TAB>TAP results that ran".
# Keep the markers in sync with the /init in scripts/mkinitramfs.sh.
parse_log() {
	awk -v timeout="$KESTREL_TEST_TIMEOUT" '
	function res(st, text) { printf "R\t%s\t%s\n", st, text }
	function show(text) { printf "L\t%s\n", text }
	function num(s,   n) { n = s; sub(/^.*=/, "", n); return n + 0 }
	function begin_test(name) {
		in_test = 1; tname = name; plan = -1; plan_skip = ""
		nres = 0; nfail = 0; nout = 0
	}
	function end_test(rc, secs,   why, i) {
		why = ""
		if (rc == 137)
			why = "killed after " secs " s (timeout is " timeout " s)"
		else if (rc > 128)
			why = "crashed: signal " (rc - 128)
		else if (rc != 0 && rc != 1 && rc != 4)
			why = "exit status " rc
		else if (plan < 0 && !(rc == 4 && nres == 0))
			why = "no TAP plan (1..N)"
		else if (plan >= 0 && nres != plan)
			why = "plan 1.." plan " but " nres " results"
		else if (rc == 1 && nfail == 0)
			why = "exit status 1 but no failed test"
		if (why != "")
			res("FAIL", tname ": " why)
		else if (rc == 4 && nres == 0)
			res("SKIP", tname ": all skipped" (plan_skip != "" ? " (" plan_skip ")" : ""))
		if (why != "" || nfail > 0) {
			show("--- output of " tname " ---")
			for (i = (nout > 60 ? nout - 59 : 1); i <= nout; i++)
				show(out[i])
		}
		in_test = 0
	}
	function tap(l,   st, rest, n, dir) {
		out[++nout] = l
		if (l ~ /^1\.\.[0-9]+/) {
			plan = l; sub(/^1\.\./, "", plan); sub(/[^0-9].*$/, "", plan); plan += 0
			if (match(l, /#[ \t]*[Ss][Kk][Ii][Pp]/)) {
				plan_skip = substr(l, RSTART + 1); sub(/^[ \t]*[Ss][Kk][Ii][Pp][ \t]*/, "", plan_skip)
			}
			return
		}
		if (l ~ /^Bail out!/) {
			res("FAIL", tname ": " l); nfail++
			return
		}
		if (l !~ /^(not )?ok([ \t]|$)/)
			return
		st = (l ~ /^not /) ? "FAIL" : "PASS"
		rest = l; sub(/^(not )?ok[ \t]*/, "", rest)
		if (match(rest, /#[ \t]*([Ss][Kk][Ii][Pp]|[Tt][Oo][Dd][Oo])/))
			st = "SKIP"
		nres++
		if (st == "FAIL") nfail++
		if (st != "SKIP") ran++
		res(st, tname " " rest)
	}
	function bad(l) {
		if (l !~ /(^|[^A-Za-z_])BUG([^A-Za-z_]|$)|WARNING|Oops|lockdep|possible circular locking|possible recursive locking|inconsistent lock state|DEBUG_LOCKS_WARN_ON|suspicious RCU usage|sleeping function called from invalid context|scheduling while atomic|KASAN|UBSAN|general protection fault|Call Trace|Kernel panic|blocked for more than|rcu.*stall/)
			return 0
		return !(ignore != "" && l ~ ignore)
	}
	function content(l) {
		if (in_dmesg) {
			dm[++ndm] = l
			if (index(l, "kestrel-init: loading kestrel.ko"))
				dstart = ndm
			return
		}
		if (done)
			return
		if (in_test)
			tap(l)
		con[++ncon] = l
	}
	function marker(l,   f, n) {
		n = split(l, f, /[ \t]+/)
		if (f[2] == "KESTREL-INIT") saw_init = 1
		else if (f[2] == "KESTREL-RESULT") {
			if (num(f[4]) == 0) res("PASS", f[3])
			else res("FAIL", f[3] " (" f[4] ")")
			if (f[3] == "insmod" && num(f[4]) != 0) insmod_failed = 1
		} else if (f[2] == "KESTREL-TEST-BEGIN") begin_test(f[3])
		else if (f[2] == "KESTREL-TEST-END") end_test(num(f[4]), num(f[5]))
		else if (f[2] == "KESTREL-DMESG-BEGIN") in_dmesg = 1
		else if (f[2] == "KESTREL-DMESG-END") { in_dmesg = 0; saw_dmesg = 1 }
		else if (f[2] == "KESTREL-DONE") done = 1
		else if (f[2] == "KESTREL-HOST-TIMEOUT") host_timeout = l
		else if (f[2] == "KESTREL-NOTE") show(l)
	}
	BEGIN { ignore = ENVIRON["KESTREL_DMESG_IGNORE"] }
	{
		sub(/\r+$/, "")
		l = $0
		p = index(l, "### KESTREL-")
		if (p > 1) { content(substr(l, 1, p - 1)); l = substr(l, p) }
		if (p > 0) marker(l); else content(l)
	}
	END {
		if (in_test) {
			res("FAIL", tname ": did not finish (the emulated host died or hung)")
			in_test = 0
		}
		if (!saw_init)
			res("FAIL", "boot: /init never started")
		else if (!done)
			res("FAIL", "boot: the run did not finish" (host_timeout != "" ? " (host-side timeout)" : ""))
		# The kernel log proper if we have it; else whatever the console
		# caught (an oops or panic reaches it whatever the log level).
		if (saw_dmesg) {
			if (!dstart) show("note: no kestrel-init line in the kernel log; scanning all of it")
			first = 0
			for (i = dstart + 1; i <= ndm; i++)
				if (bad(dm[i])) {
					res("FAIL", "kernel log: " dm[i])
					if (!first) first = i
				}
			if (insmod_failed && !first) {
				show("--- console and kernel log around the failed insmod ---")
				for (i = (ncon > 10 ? ncon - 9 : 1); i <= ncon; i++)
					show(con[i])
				for (i = dstart + 1; i <= ndm && i <= dstart + 40; i++)
					show(dm[i])
			}
			if (first) {
				show("--- kernel log from the first suspicious line ---")
				for (i = (first > 5 ? first - 5 : 1); i <= ndm && i < first + 80; i++)
					show(dm[i])
			}
		} else {
			# Diagnostics ("# " lines) are test output (boot_test
			# shows its guest logs that way), not this kernel.
			for (i = 1; i <= ncon; i++)
				if (bad(con[i]) && con[i] !~ /^#/)
					res("FAIL", "console: " con[i])
			show("--- last lines of the serial console ---")
			for (i = (ncon > 40 ? ncon - 39 : 1); i <= ncon; i++)
				show(con[i])
		}
		printf "N\t%d\n", ran
	}' "$1"
}

# judge_log LOG LABEL TEST_TIMEOUT: count parse_log's results for LOG,
# each prefixed with LABEL, and show the lines it picked out.
judge_log() {
	local kind a b
	while IFS=$'\t' read -r kind a b; do
		case $kind in
		R) result "$a" "$2 $b" ;;
		L) printf '    | %s\n' "$a" ;;
		N) ran=$((ran + a)) ;;
		esac
	done < <(KESTREL_TEST_TIMEOUT=$3 parse_log "$1")
}

# boot_lane KVER LABEL NTESTS TEST_TIMEOUT BOOT_TIMEOUT: pack KVER's
# initramfs (KESTREL_TESTS and the test timeout as given), boot it under
# QEMU and judge the log.  Results are labelled LABEL.
boot_lane() {
	local kver=$1 label=$2 nt=$3 tt=$4 bt=$5 initramfs log t qrc kind a b
	initramfs=$build_dir/initramfs/$label.gz
	log=$logs/$label-test.log
	KESTREL_TEST_TIMEOUT=$tt step "$label initramfs" "$logs/$label-initramfs.log" \
		"$scripts/mkinitramfs.sh" "$kver" "$initramfs" || return 0
	echo "booting $kver under QEMU ($nt selftests, at most $bt s; log: ${log#"$root_dir"/})"
	t=$SECONDS
	qrc=0
	if [ "${KESTREL_VERBOSE:-0}" = 1 ]; then
		KESTREL_BOOT_TIMEOUT=$bt "$scripts/emulated-host.sh" \
			"$kver" "$initramfs" test "$log" || qrc=$?
	else
		KESTREL_BOOT_TIMEOUT=$bt "$scripts/emulated-host.sh" \
			"$kver" "$initramfs" test "$log" > /dev/null || qrc=$?
	fi
	echo "emulated host finished in $((SECONDS - t)) s (status $qrc)"
	# The emulator itself can die in the host kernel's own boot,
	# before /init and so before kestrel.ko exists (seen: QEMU 7.2's
	# multi-threaded TCG racing the kernel's text patching, an int3
	# Oops in 6.12's early boot).  That is no Kestrel result: boot
	# once more, keep the first log, and say so.
	if ! grep -aq "### KESTREL-INIT" "$log"; then
		mv "$log" "$log.first"
		echo "note: the emulated host died before /init (log: ${log#"$root_dir"/}.first); booting it once more"
		t=$SECONDS
		qrc=0
		KESTREL_BOOT_TIMEOUT=$bt "$scripts/emulated-host.sh" \
			"$kver" "$initramfs" test "$log" > /dev/null || qrc=$?
		echo "emulated host finished in $((SECONDS - t)) s (status $qrc)"
	fi
	judge_log "$log" "$label" "$tt"
}

for kver in $kernels; do
	kpassed=0 kfailed=0 kskipped=0
	echo
	echo "== $kver"
	# The kernel file, stock modules and headers: installed ones, or
	# Debian's packages unpacked under build/ (scripts/kernels.sh; no
	# kernel image is ever installed).
	built=0
	if step "$kver kernel: image and headers" "$logs/$kver-kernel.log" \
		"$scripts/kernels.sh" --fetch "$kver"; then
		sed -n 's/^kernels: [^ ]* \([a-z]*\): /     \1: /p' "$logs/$kver-kernel.log"
		if step "$kver build: kestrel.ko" "$logs/$kver-module.log" \
			"$scripts/build-module.sh" "$kver"; then
			built=1
		fi
		if [ "${KESTREL_SKIP_DKMS:-0}" != 1 ]; then
			step "$kver dkms build" "$logs/$kver-dkms.log" \
				"$scripts/build-module.sh" --dkms "$kver" || true
		fi
	fi
	if [ $built = 1 ]; then
		boot_lane "$kver" "$kver" "$ntests" "$KESTREL_TEST_TIMEOUT" "$boot_timeout"
	fi
	summaries+=("$kver: $kpassed passed, $kfailed failed, $kskipped skipped")
	echo "-- ${summaries[-1]}"
done

# The multi-threaded-TCG lane: the newest stock kernel again, with one
# host thread per emulated CPU, for the tests whose races need two CPUs
# really at once (a SIPI routed while its target resets, faults held
# open against slot changes, concurrent vCPU creation).  Single-threaded
# TCG interleaves its CPUs too coarsely to show them: apic_test's INIT/
# SIPI storm lost a SIPI in 2 of 2 runs multi-threaded before its fix,
# in 0 of 2 single-threaded.  Few exits, so little of QEMU's state loss.
mttcg_tests_default="apic_test race_test vm_test"
mk=$(printf '%s\n' $kernels | sed -n '$p')
if [ "${KESTREL_SKIP_MTTCG:-0}" != 1 ] && [ -n "$mk" ]; then
	kpassed=0 kfailed=0 kskipped=0
	mtests=
	for t in ${KESTREL_MTTCG_TESTS:-$mttcg_tests_default}; do
		[ -x "$selftests_dir/$t" ] || continue
		named_in "${KESTREL_TESTS:-}" "$t" || continue
		mtests="$mtests $t"
	done
	mtests=${mtests# }
	echo
	echo "== $mk, multi-threaded TCG"
	if [ -z "$mtests" ]; then
		echo "no selftest of KESTREL_TESTS runs in this lane"
	elif [ ! -f "$build_dir/$mk/kestrel.ko" ]; then
		result FAIL "$mk-mttcg: no kestrel.ko for $mk"
	else
		nm=$(wc -w <<< "$mtests")
		KESTREL_QEMU_THREAD=multi KESTREL_TESTS=$mtests \
			boot_lane "$mk" "$mk-mttcg" "$nm" "$KESTREL_TEST_TIMEOUT" \
			"$(lane_boot_timeout "$nm")"
	fi
	summaries+=("$mk-mttcg: $kpassed passed, $kfailed failed, $kskipped skipped")
	echo "-- ${summaries[-1]}"
fi

# The debug kernel: Debian's 6.12 source with lockdep, PROVE_RCU,
# DEBUG_ATOMIC_SLEEP, KASAN, UBSAN and full preemption, built here
# (scripts/debug-kernel.sh; reused while its inputs are unchanged) and
# booted like the stock kernels.  Everything runs several times slower on
# it: its own test, boot and KESTREL_RUN-watchdog timeouts.  Which tests
# run: all, or KESTREL_DEBUG_TESTS (then only those KESTREL_TESTS also
# names).  memory_test's guest twice the host's RAM does not fill its
# memory within 600 s on this kernel (swapping to zram under KASAN and
# lockdep in TCG): that one case is skipped there, and counted as skipped
# (KESTREL_DEBUG_SWAP_TEST=1 runs it).
if [ "${KESTREL_SKIP_DEBUG:-0}" != 1 ]; then
	kpassed=0 kfailed=0 kskipped=0
	echo
	echo "== debug kernel (Debian's 6.12 source, lockdep + KASAN + UBSAN)"
	dtests=
	for t in "$selftests_dir"/*_test; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		t=${t##*/}
		named_in "${KESTREL_DEBUG_TESTS:-}" "$t" || continue
		named_in "${KESTREL_TESTS:-}" "$t" || continue
		dtests="$dtests $t"
	done
	dtests=${dtests# }
	dlabel=debug
	if step "debug kernel: build" "$logs/debug-kernel.log" "$scripts/debug-kernel.sh"; then
		dk=$(tail -n 1 "$logs/debug-kernel.log")
		dlabel=$dk
		grep -m1 '^debug-kernel: .* up to date' "$logs/debug-kernel.log" | sed 's/^debug-kernel: /     /' || true
		if [ -z "$dtests" ]; then
			echo "no selftest of KESTREL_TESTS runs on the debug kernel"
		elif step "$dk build: kestrel.ko" "$logs/$dk-module.log" \
			"$scripts/build-module.sh" "$dk"; then
			nd=$(wc -w <<< "$dtests")
			# Measured: about 4 minutes without memory_test, boot_test
			# the longest (Documentation/testing.rst).
			dtt=${KESTREL_DEBUG_TEST_TIMEOUT:-600}
			dbt=${KESTREL_DEBUG_BOOT_TIMEOUT:-$((300 + nd * 120))}
			if [ -z "${KESTREL_DEBUG_BOOT_TIMEOUT:-}" ] && [ $dbt -gt 2400 ]; then
				dbt=2400
			fi
			KESTREL_RUN_TIMEOUT=${KESTREL_DEBUG_RUN_TIMEOUT:-60} \
				KESTREL_NO_SWAP_TEST=$((1 - ${KESTREL_DEBUG_SWAP_TEST:-0})) \
				KESTREL_TESTS=$dtests boot_lane "$dk" "$dk" "$nd" "$dtt" "$dbt"
		fi
	fi
	summaries+=("$dlabel: $kpassed passed, $kfailed failed, $kskipped skipped")
	echo "-- ${summaries[-1]}"
fi

# The VMX backend, under Bochs (QEMU's TCG has no VMX).  One kernel (the
# first, Debian 12's default), two emulated CPUs (the migration test), and
# the selftests that fit the budget: Bochs runs guests tens of times slower
# than QEMU.  Its kestrel.ko is the one built above.  Which tests run where:
# Documentation/testing.rst.
vmx_tests_default="apic_test boot_test cpuid_test dev_test exc_test fuzz_test host_test launcher_test mmio_test msr_test negative_test netlink_test race_test run_test shutdown_test signal_test sregs_test vm_test"
vk=${KESTREL_VMX_KERNEL:-$(printf '%s\n' $kernels | sed -n 1p)}
if [ "${KESTREL_SKIP_VMX:-0}" != 1 ] && [ -n "$vk" ]; then
	kpassed=0 kfailed=0 kskipped=0
	# Only what both lists name.
	vt=
	for t in ${KESTREL_VMX_TESTS:-$vmx_tests_default}; do
		if named_in "${KESTREL_TESTS:-}" "$t"; then vt="$vt $t"; fi
	done
	vtests=${vt# }
	echo
	echo "== $vk, VMX backend under Bochs"
	initramfs=$build_dir/initramfs/$vk-vmx.gz
	log=$logs/$vk-vmx-test.log
	if [ -z "$vtests" ]; then
		echo "no selftest of KESTREL_TESTS runs on VMX"
	elif [ ! -f "$build_dir/$vk/kestrel.ko" ]; then
		result FAIL "$vk vmx: no kestrel.ko for $vk"
	elif KESTREL_TESTS="$vtests" \
	     KESTREL_TEST_TIMEOUT=${KESTREL_VMX_TEST_TIMEOUT:-600} \
	     KESTREL_FUZZ_SECONDS=${KESTREL_VMX_FUZZ_SECONDS:-15} \
	     KESTREL_INSMOD_ARGS="vmx_preemption_timer_us=2000 ${KESTREL_INSMOD_ARGS:-}" \
	     step "$vk vmx initramfs" "$logs/$vk-vmx-initramfs.log" \
		"$scripts/mkinitramfs.sh" "$vk" "$initramfs"; then
		nv=$(wc -w <<< "$vtests")
		vboot=${KESTREL_VMX_BOOT_TIMEOUT:-$((300 + nv * 180))}
		echo "booting $vk under Bochs ($nv selftests, at most $vboot s; log: ${log#"$root_dir"/})"
		t=$SECONDS
		KESTREL_BOOT_TIMEOUT=$vboot "$scripts/bochs-host.sh" \
			"$vk" "$initramfs" test "$log" > /dev/null || true
		echo "Bochs finished in $((SECONDS - t)) s"
		# Bochs exits 1 on the guest's power-off too: the log is the judge.
		judge_log "$log" "$vk vmx:" "${KESTREL_VMX_TEST_TIMEOUT:-600}"
		if grep -aq "kestrel: VMX backend:" "$log"; then
			result PASS "$vk vmx: the VMX backend is the one in use"
			grep -a -m1 -o "kestrel: VMX backend:.*" "$log" | tr -d '\r' |
				sed 's/^/     /'
		else
			result FAIL "$vk vmx: no \"kestrel: VMX backend:\" line in the log"
		fi
	fi
	summaries+=("$vk vmx: $kpassed passed, $kfailed failed, $kskipped skipped")
	echo "-- ${summaries[-1]}"
fi

finish
