#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# `make lint`: the kernel's own static checks over Kestrel's kernel code.
#
#   scripts/lint.sh                   all of the checks below, every kernel
#   scripts/lint.sh checkpatch        checkpatch.pl --strict over every file
#                                     in module/ and uapi/
#   scripts/lint.sh w1 KVER           a W=1 build of the module for KVER
#   scripts/lint.sh sparse KVER       sparse (C=2 CHECK=sparse) over the
#                                     module for KVER
#   scripts/lint.sh fallback KVER     a W=1 build with probed features
#                                     off (the newest kernel only, in all)
#
# Each check prints one line, "PASS lint: ..." or "FAIL lint: ...", with
# its findings indented below a failure; the exit status is 1 when any
# check found anything (or could not run: no skip is a pass), else 0.
#
# checkpatch.pl and its spelling list come from Debian's linux-source
# package (scripts/linux-source.sh unpacks it), run with --no-tree.  The
# UAPI headers are shown to it at the path they have in a kernel tree,
# include/uapi/linux/, so that it applies the kernel's rules for UAPI
# headers (which, for one, cannot use BIT()) rather than those for kernel
# code.  No checkpatch message type is ignored.
#
# The builds go to build/lint-KVER/ (scripts/build-module.sh --out), never
# disturbing build/KVER/.  W=1 rebuilds every object, so every warning is
# seen each time; sparse then runs on every source (C=2) over the same
# objects.  Warnings located in a kernel header are the kernel's, not
# ours: only those located in our files count (any, in any file of ours),
# and the number of the others is said.  A build that fails is a finding.
#
# Environment: KESTREL_BUILD_DIR (default: build/ in the repository).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root_dir=$(dirname "$here")
build_dir=${KESTREL_BUILD_DIR:-$root_dir/build}
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)
# A make that is not ours (we run under `make lint`) must not lend us its
# jobserver or flags.
unset MAKEFLAGS MFLAGS MAKELEVEL

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-lint.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# report LABEL FINDINGS-FILE [NOTE]: one line; the findings below a failure.
report() {
	n=$(grep -c . "$2" || true)
	if [ "$n" -eq 0 ]; then
		echo "PASS lint: $1${3:+ ($3)}"
		return 0
	fi
	echo "FAIL lint: $1 ($n finding$([ "$n" = 1 ] || echo s)${3:+; $3})"
	sed 's/^/    /' "$2"
	return 1
}

# The files checkpatch reads: every file under module/ and uapi/ but what
# a build leaves behind (an in-tree `make module`).
lint_files() {
	(cd "$root_dir" && find module uapi \
		\( -name generated -o -name .tmp_versions \) -prune -o -type f \
		! \( -name '*.o' -o -name '*.ko' -o -name '*.mod' -o -name '*.mod.c' \
		     -o -name '.*.cmd' -o -name '.*.d' -o -name '*.a' -o -name '*.dwo' \
		     -o -name modules.order -o -name Module.symvers -o -name '.tmp_*' \) \
		-print | LC_ALL=C sort)
}

checkpatch() {
	label=checkpatch
	if ! src=$("$here/linux-source.sh" 2>"$tmp/err"); then
		cat "$tmp/err" > "$tmp/findings"
		report "$label (no checkpatch.pl)" "$tmp/findings"
		return
	fi
	cp=$src/scripts/checkpatch.pl
	export KESTREL_LINT_CP="$tmp/cp"
	# A tree of links: module/ as it is, uapi/ as include/uapi/.
	mkdir -p "$tmp/tree/include"
	ln -s "$root_dir/module" "$tmp/tree/module"
	ln -s "$root_dir/uapi" "$tmp/tree/include/uapi"
	lint_files | sed 's|^uapi/|include/uapi/|' > "$tmp/files"
	nfiles=$(grep -c . "$tmp/files")
	# Two files per run, as many runs as CPUs: it is perl, and slow.
	# Each run writes its own file, so that lines never interleave.
	# checkpatch exits 1 on any message; the messages are the judge.
	mkdir "$tmp/cp"
	# shellcheck disable=SC2016 # $0, $$ and $@ are the inner shell's
	(cd "$tmp/tree" && xargs -n 2 -P "$(nproc)" sh -c \
		'"$0" --strict --no-tree --quiet --terse --no-summary --show-types \
		--color=never -f "$@" > "$KESTREL_LINT_CP/$$" 2>&1; exit 0' "$cp" \
		< "$tmp/files") || echo "checkpatch.pl did not run" > "$tmp/cp/failed"
	cat "$tmp/cp"/* | sed 's|^include/uapi/|uapi/|' |
		LC_ALL=C sort -t: -k1,1 -k2,2n > "$tmp/findings"
	report "$label" "$tmp/findings" "$nfiles files"
}

# build KVER LOG VAR=VALUE...: build the module for KVER into build/lint-KVER.
build() {
	k=$1 log=$2
	shift 2
	"$here/build-module.sh" --out "$build_dir/lint-$k" "$k" "$@" > "$log" 2>&1
}

# ours LOG: the warnings and errors of LOG located in our files (as the
# build sees them, under build/lint-KVER/, or as they are in the tree),
# and modpost's; the count of the others goes to $tmp/noise.
ours() {
	o=$build_dir/lint-$k
	# The paths as EREs: a Debian kernel version has a "+" in it.
	eo=$(printf '%s\n' "$o" | sed 's/[][\\.*^$+?(){}|]/\\&/g')
	er=$(printf '%s\n' "$root_dir" | sed 's/[][\\.*^$+?(){}|]/\\&/g')
	re="^(($eo|$er)/)?(module|uapi)/[^:]*:[0-9]+(:[0-9]+)?: "
	grep -E "^[^ ]*:[0-9]+(:[0-9]+)?: (warning|error|fatal error):|^(WARNING|ERROR): modpost:" "$1" \
		> "$tmp/all" || true
	grep -E "$re|^(WARNING|ERROR): modpost:" "$tmp/all" |
		sed "s|^$o/||; s|^$root_dir/||" || true
	grep -vcE "$re|^(WARNING|ERROR): modpost:" "$tmp/all" > "$tmp/noise" || true
}

noise_note() {
	n=$(cat "$tmp/noise")
	[ "$n" -eq 0 ] || echo "$n kernel-header warnings not ours"
}

w1() {
	k=$1 label="W=1 $1"
	log=$build_dir/logs/lint-w1-$k.log
	mkdir -p "$build_dir/logs"
	# Every object anew: a warning is printed only when its file compiles.
	[ ! -d "$build_dir/lint-$k" ] ||
		find "$build_dir/lint-$k" -name '*.o' ! -type l -delete
	if ! build "$k" "$log" W=1; then
		{ ours "$log"; echo "the W=1 build failed (log: ${log#"$root_dir"/})"; } \
			> "$tmp/findings"
	else
		ours "$log" > "$tmp/findings"
	fi
	report "$label" "$tmp/findings" "$(noise_note)"
}

sparse() {
	k=$1 label="sparse $1"
	log=$build_dir/logs/lint-sparse-$k.log
	mkdir -p "$build_dir/logs"
	if ! command -v sparse > /dev/null; then
		echo "sparse is not installed (scripts/deps.sh)" > "$tmp/findings"
		report "$label" "$tmp/findings"
		return
	fi
	# The objects first (quietly, with the same flags, so that C=2 then
	# compiles nothing and the log holds sparse alone), then sparse over
	# every source.
	if ! build "$k" "$log" W=1 || ! build "$k" "$log" W=1 C=2 CHECK=sparse; then
		{ ours "$log"; echo "the sparse build failed (log: ${log#"$root_dir"/})"; } \
			> "$tmp/findings"
	else
		ours "$log" > "$tmp/findings"
		# No CHECK line: sparse did not run at all, which is no pass.
		grep -q '^  CHECK ' "$log" ||
			echo "sparse checked no file (log: ${log#"$root_dir"/})" >> "$tmp/findings"
	fi
	report "$label" "$tmp/findings" "$(noise_note)"
}

# The code kernels without a probed feature get, built anyway: W=1 with
# the feature turned off (today: the guest-FPU API, KESTREL_NO_FPU_GUEST).
fallback() {
	k=$1 label="W=1 $1 fallbacks"
	log=$build_dir/logs/lint-fallback-$k.log
	o=$build_dir/lint-fallback-$k
	mkdir -p "$build_dir/logs"
	[ ! -d "$o" ] || find "$o" -name '*.o' ! -type l -delete
	if ! "$here/build-module.sh" --out "$o" "$k" W=1 \
		KCFLAGS=-DKESTREL_NO_FPU_GUEST > "$log" 2>&1; then
		echo "the fallback build failed (log: ${log#"$root_dir"/})" > "$tmp/findings"
	else
		grep -E ": (warning|error):" "$log" |
			grep -E "(^|/)(module|uapi)/" > "$tmp/findings" || true
	fi
	report "$label" "$tmp/findings"
}

case "${1:-}" in
checkpatch)
	checkpatch
	;;
w1 | sparse | fallback)
	if [ $# -ne 2 ]; then
		echo "usage: $0 $1 KVER" >&2
		exit 2
	fi
	"$1" "$2"
	;;
"")
	kernels=$("$here/kernels.sh")
	rc=0
	checkpatch || rc=1
	for k in $kernels; do
		w1 "$k" || rc=1
		sparse "$k" || rc=1
	done
	fallback "$k" || rc=1
	exit $rc
	;;
*)
	echo "usage: $0 [checkpatch | w1 KVER | sparse KVER | fallback KVER]" >&2
	exit 2
	;;
esac
