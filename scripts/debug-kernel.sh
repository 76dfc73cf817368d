#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The debug kernel: Debian's own 6.12 source (scripts/linux-source.sh) built
# with lockdep, PROVE_RCU, DEBUG_ATOMIC_SLEEP, KASAN, UBSAN and full
# preemption, and as little else as the emulated host and the selftests
# need (scripts/debug-kernel.config).  check.sh boots it like the stock
# kernels; Documentation/testing.rst says why and what it costs.
#
#   scripts/debug-kernel.sh             build it, or reuse the last build when
#                                       nothing it is made from changed; the
#                                       last line printed is its release
#   scripts/debug-kernel.sh --release   print the release of the last build
#                                       (exit 1 when there is none)
#   scripts/debug-kernel.sh --config    only write the .config (to look at)
#
# The source tree is never written to: objects go to build/debug-kernel/obj/
# (make O=), which is also the tree modules are built against.  The result
# is laid out like an unpacked Debian image (scripts/kernels.sh --root):
# build/debug-kernel/root/boot/vmlinuz-KREL and lib/modules/KREL/ with
# modules.dep and the build link, so kernels.sh, build-module.sh,
# mkinitramfs.sh and emulated-host.sh take KREL like any other kernel.
# KREL is what the build says (make kernelrelease): the source's version
# with the fragment's LOCALVERSION, -kestrel-debug.
#
# The configuration is `make allnoconfig` with the fragment merged on top
# (scripts/kconfig/merge_config.sh); a fragment value that did not make it
# into the final .config (a dependency missing) is an error.  A stamp
# (build/debug-kernel/stamp) holds a digest of what the build is made of:
# the fragment, this script, the source package's version and the compiler.
# When it matches and the image is there, nothing is rebuilt.
#
# Environment:
#   KESTREL_DEBUG_KERNEL_DIR  where it all goes (default build/debug-kernel;
#                             scripts/kernels.sh looks there too)
#   KESTREL_DEBUG_JOBS        make -j (default: nproc)
# Build output goes to stdout; callers redirect it to a log.
set -eu
PATH=$PATH:/usr/sbin:/sbin

here=$(cd "$(dirname "$0")" && pwd)
root_dir=$(dirname "$here")
dir=${KESTREL_DEBUG_KERNEL_DIR:-$root_dir/build/debug-kernel}
fragment=$here/debug-kernel.config
jobs=${KESTREL_DEBUG_JOBS:-$(nproc)}

release() {
	krel=$(cat "$dir/release" 2>/dev/null) || return 1
	[ -n "$krel" ] && [ -r "$dir/root/boot/vmlinuz-$krel" ] &&
		[ -f "$dir/root/lib/modules/$krel/modules.dep" ] || return 1
	echo "$krel"
}

case "${1:-}" in
--release)
	if ! release; then
		echo "debug-kernel: not built yet (scripts/debug-kernel.sh)" >&2
		exit 1
	fi
	exit 0
	;;
--config | "") ;;
*)
	echo "usage: $0 [--release | --config]" >&2
	exit 2
	;;
esac

src=$("$here/linux-source.sh")
obj=$dir/obj
mkdir -p "$obj"
unset MAKEFLAGS MFLAGS MAKELEVEL
kmake() {
	make -C "$src" O="$obj" ARCH=x86_64 "$@"
}

# What the build is made of.
digest=$({
	cat "$fragment" "$0" "$src/.kestrel-unpacked"
	${CC:-gcc} --version | sed -n 1p
} | sha256sum | cut -d' ' -f1)
if [ -z "${1:-}" ] && [ "$(cat "$dir/stamp" 2>/dev/null)" = "$digest" ] &&
	krel=$(release); then
	echo "debug-kernel: $krel is up to date (${dir#"$root_dir"/}/root)"
	echo "$krel"
	exit 0
fi
rm -f "$dir/stamp"

# allnoconfig, then the fragment, then olddefconfig for what the fragment
# selects.  Kbuild rebuilds only what a changed option touches, so writing
# the same .config again costs nothing.
kmake -s allnoconfig
(cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -m -O "$obj" \
	"$obj/.config" "$fragment") > "$dir/merge.log" 2>&1 || {
	cat "$dir/merge.log"
	exit 1
}
kmake -s olddefconfig
bad=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)
		sym=${line%%=*} want=${line#*=}
		;;
	"# CONFIG_"*" is not set")
		sym=${line#"# "} sym=${sym%" is not set"} want=n
		;;
	*) continue ;;
	esac
	got=$(sed -n "s/^$sym=//p" "$obj/.config")
	[ -n "$got" ] || got=n
	if [ "$got" != "$want" ]; then
		echo "debug-kernel: $sym=$want asked for, but the .config has $sym=$got" >&2
		bad=1
	fi
done < "$fragment"
if [ $bad = 1 ]; then
	echo "debug-kernel: a fragment option lost to Kconfig (see above, and ${dir#"$root_dir"/}/merge.log)" >&2
	exit 1
fi
[ "${1:-}" != --config ] || { echo "debug-kernel: ${obj#"$root_dir"/}/.config"; exit 0; }

echo "debug-kernel: building in ${obj#"$root_dir"/} (make -j$jobs)"
kmake -j"$jobs" bzImage modules
# Only now: the release comes from the configuration the build synced.
krel=$(kmake -s kernelrelease)
lv=$(sed -n 's/^CONFIG_LOCALVERSION="\(.*\)"$/\1/p' "$fragment")
case $krel in
*"$lv") ;;
*)
	echo "debug-kernel: release $krel lacks the fragment's LOCALVERSION" >&2
	exit 1
	;;
esac

# Install into a fresh root, then swap it in: a failed install leaves no
# half tree for kernels.sh to find.
tmp=$dir/root.tmp
rm -rf "$tmp"
mkdir -p "$tmp/boot"
kmake -s INSTALL_MOD_PATH="$tmp" DEPMOD=depmod modules_install
cp "$obj/arch/x86/boot/bzImage" "$tmp/boot/vmlinuz-$krel"
cp "$obj/System.map" "$tmp/boot/System.map-$krel"
cp "$obj/.config" "$tmp/boot/config-$krel"
test -f "$tmp/lib/modules/$krel/modules.dep"
rm -rf "$dir/root"
mv "$tmp" "$dir/root"
echo "$krel" > "$dir/release"
echo "$digest" > "$dir/stamp"
echo "debug-kernel: $krel installed in ${dir#"$root_dir"/}/root"
echo "$krel"
