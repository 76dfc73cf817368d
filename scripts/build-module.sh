#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Build kestrel.ko for one kernel, or check that DKMS can build it.
#
#   scripts/build-module.sh KVER         -> build/KVER/kestrel.ko
#   scripts/build-module.sh --dkms KVER  dkms add + build in a throwaway tree
#   scripts/build-module.sh --out DIR KVER [VAR=VALUE...]
#                                        -> DIR/kestrel.ko, with these make
#                                        variables (scripts/lint.sh: W=1,
#                                        C=2 CHECK=sparse)
#
# Each kernel gets its own output directory, so objects built for one kernel
# never meet another's.  build/KVER/ mirrors the module sources as symlinks
# (fresh each run, so deleted files disappear) and holds the real objects:
# rebuilds stay incremental and nothing is written into the source tree.
#
# The headers are those `scripts/kernels.sh --kdir KVER` names: installed
# ones, or the package unpacked under build/headers/ (dkms then gets
# --kernelsourcedir).
#
# The DKMS check copies the sources into a temporary --sourcetree and uses
# a temporary --dkmstree, so /usr/src and /var/lib/dkms are never touched;
# it is cleaned up (dkms remove --all, rm -rf) even when the build fails.
#
# Environment:
#   KESTREL_MODULE_SRC  the module's source tree: Kbuild, dkms.conf and the
#                       sources (default: the repository)
#   KESTREL_BUILD_DIR   default: build/ in the repository
# Build output goes to stdout; callers redirect it to a log.
set -eu

root_dir=$(cd "$(dirname "$0")/.." && pwd)
src=$(cd "${KESTREL_MODULE_SRC:-$root_dir}" && pwd)
build_dir=${KESTREL_BUILD_DIR:-$root_dir/build}
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)

dkms=0 out=
if [ "${1:-}" = --dkms ]; then
	dkms=1
	shift
elif [ "${1:-}" = --out ] && [ $# -ge 2 ]; then
	out=$2
	shift 2
fi
if [ $# -lt 1 ] || { [ $# -gt 1 ] && [ -z "$out" ]; }; then
	echo "usage: $0 [--dkms] KVER | --out DIR KVER [VAR=VALUE...]" >&2
	exit 2
fi
kver=$1
shift
# The installed headers (/lib/modules/KVER/build), or the linux-headers
# package unpacked under build/headers/ where installing it would pull in
# a kernel image (scripts/kernels.sh).
if ! kdir=$("$root_dir/scripts/kernels.sh" --kdir "$kver"); then
	echo "build-module: no headers for $kver (scripts/deps.sh, scripts/kernels.sh)" >&2
	exit 1
fi

# The module's source files, relative to $src: everything except the other
# parts of the repository and anything an in-tree build left behind.
module_sources() {
	(cd "$src" && find . \
		\( -name .git -o -name generated -o -name .tmp_versions \
		   -o -path ./build -o -path ./userspace -o -path ./selftests \
		   -o -path ./Documentation -o -path ./bench -o -path ./.ci \) -prune \
		-o -type f \
		! \( -name '*.o' -o -name '*.ko' -o -name '*.mod' -o -name '*.mod.c' \
		     -o -name '.*.cmd' -o -name '.*.d' -o -name '*.a' -o -name '*.dwo' \
		     -o -name modules.order -o -name Module.symvers -o -name '.tmp_*' \) \
		-print | sed 's|^\./||' | LC_ALL=C sort)
}

if [ $dkms = 0 ]; then
	out=${out:-$build_dir/$kver}
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	# Links whose file went away, then links for every current file.  A
	# link into another tree (another checkout, another KESTREL_MODULE_SRC
	# built here before) is pointed at this one, and then every object
	# goes: make judges by times, and the other tree's may be newer.
	find "$out" -xtype l -delete
	moved=$(module_sources | while IFS= read -r f; do
		[ "$(readlink "$out/$f" 2>/dev/null)" = "$src/$f" ] && continue
		[ -L "$out/$f" ] && echo "$f"
		mkdir -p "$(dirname "$out/$f")"
		ln -sfn "$src/$f" "$out/$f"
	done)
	if [ -n "$moved" ]; then
		echo "build-module: sources now from $src: a full rebuild"
		find "$out" -type f \( -name '*.o' -o -name '*.ko' -o -name '.*.cmd' \
			-o -name '*.mod' -o -name '*.mod.c' \) -delete
	fi
	# A make that is not ours (we run under `make check`) must not lend us
	# its jobserver or flags.
	unset MAKEFLAGS MFLAGS MAKELEVEL
	make -C "$kdir" M="$out" -j"$(nproc)" "$@" modules
	test -f "$out/kestrel.ko"
	exit 0
fi

conf=$src/dkms.conf
name=$(sed -n 's/^PACKAGE_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$conf")
version=$(sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$conf")
if [ -z "$name" ] || [ -z "$version" ]; then
	echo "build-module: cannot read PACKAGE_NAME/PACKAGE_VERSION from $conf" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-dkms.XXXXXX")
trees="--sourcetree $tmp/src --dkmstree $tmp/dkms"
# Headers that are not installed: tell dkms where they are.
ksrc=
[ "$kdir" = "/lib/modules/$kver/build" ] || ksrc="--kernelsourcedir $kdir"
cleanup() {
	# shellcheck disable=SC2086
	dkms remove $trees -m "$name" -v "$version" --all >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/src/$name-$version" "$tmp/dkms"
module_sources | (cd "$src" && cpio -pdm --quiet "$tmp/src/$name-$version")

# dkms signs what it builds; keep its generated key out of /var/lib/dkms.
# Its guess at sign-file's path misses the 6.12 kbuild: name it.
export mok_signing_key="$tmp/mok.key" mok_certificate="$tmp/mok.pub"
if [ -x "$kdir/scripts/sign-file" ]; then
	export sign_file="$kdir/scripts/sign-file"
fi
unset MAKEFLAGS MFLAGS MAKELEVEL
rc=0
# shellcheck disable=SC2086
dkms add $trees -m "$name" -v "$version" &&
	dkms build $trees $ksrc -m "$name" -v "$version" -k "$kver" || rc=$?
if [ $rc -ne 0 ]; then
	log=$tmp/dkms/$name/$version/build/make.log
	if [ -f "$log" ]; then
		echo "--- $log"
		cat "$log"
	fi
	exit $rc
fi
ko=$(find "$tmp/dkms/$name/$version/$kver" -name "$name.ko*" | sed -n 1p)
if [ -z "$ko" ]; then
	echo "build-module: dkms built no $name.ko for $kver" >&2
	exit 1
fi
echo "build-module: dkms built $(basename "$ko") for $kver"
