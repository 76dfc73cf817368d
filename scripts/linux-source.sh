#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Debian's own kernel source, unpacked once under build/: the debug-kernel
# lane builds it, and the selftests take the kernel's kselftest framework
# (tools/testing/selftests/kselftest.h, kselftest_harness.h, lib.mk) from it
# rather than carrying a copy.
#
#   scripts/linux-source.sh     print the tree's path, unpacking it first
#                               when it is not there yet (about 15 s)
#
# The package is linux-source-6.12 (scripts/deps.sh installs it); it puts one
# tarball in /usr/src.  KESTREL_BUILD_DIR moves build/.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build_dir=${KESTREL_BUILD_DIR:-$(dirname "$here")/build}
series=6.12
tarball=/usr/src/linux-source-$series.tar.xz
dest=$build_dir/linux-source
tree=$dest/linux-source-$series

if [ ! -f "$tree/.kestrel-unpacked" ]; then
	if [ ! -f "$tarball" ]; then
		echo "linux-source: $tarball is missing; scripts/deps.sh installs linux-source-$series" >&2
		exit 1
	fi
	echo "linux-source: unpacking $tarball into ${dest#"$(pwd)"/}" >&2
	rm -rf "$dest"
	mkdir -p "$dest"
	tar -C "$dest" -xJf "$tarball"
	dpkg-query -W -f='${Version}\n' "linux-source-$series" \
		> "$tree/.kestrel-unpacked" 2>/dev/null || echo unknown > "$tree/.kestrel-unpacked"
fi
echo "$tree"
