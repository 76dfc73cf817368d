#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Which Debian kernels Kestrel is tested against, and where their files are.
#
#   scripts/kernels.sh                print the kernel versions, one per line
#   scripts/kernels.sh --packages     print the Debian packages scripts/deps.sh
#                                     installs for them (never an image)
#   scripts/kernels.sh --root KVER    print the directory holding
#                                     boot/vmlinuz-KVER and lib/modules/KVER/
#                                     (stock modules, with modules.dep)
#   scripts/kernels.sh --kdir KVER    print KVER's headers directory, to build
#                                     modules against (make -C, dkms)
#   scripts/kernels.sh --fetch [KVER...]  make sure both are at hand for these
#                                     kernels (default: all), saying where
#
# Besides Debian's kernels, --root, --kdir and --fetch know the debug kernel
# that scripts/debug-kernel.sh builds from Debian's 6.12 source: its KVER
# is that build's release (scripts/debug-kernel.sh --release), its root
# build/debug-kernel/root/ (laid out like an unpacked image) and its
# headers directory the build's object tree.  It is never fetched: a KVER
# that is not built there is looked for among Debian's packages as usual.
#
# --root, --kdir and --fetch download and unpack what is missing; once it is
# unpacked they answer at once.
#
# Debian 12's own 6.1 kernel is whatever linux-image-amd64 depends on; the
# 6.12 kernel is the newest linux-headers-6.12.*+deb12-amd64 in the apt lists.
# Both move as the archive moves, hence the lookup.  KESTREL_KERNELS="v1 v2"
# overrides the lookup (then nothing is asked of apt).  Without apt lists
# (fresh machine before apt-get update) we fall back to what is installed.
#
# No kernel image is ever installed: installing a linux-image package runs
# update-grub and changes the machine's default boot kernel.  The emulated
# host needs only the kernel file and the stock modules, so the image
# package (linux-image-KVER, or linux-image-KVER-unsigned) is fetched with
# `apt-get download` into build/debs/ and unpacked with `dpkg-deb -x` into
# build/kernels/KVER/, then `depmod -b` makes its modules.dep (the package
# ships none).  An image already installed (/boot/vmlinuz-KVER and its
# /lib/modules/KVER/kernel/) is used as it is: the root is then /.
#
# Headers: linux-headers-KVER is installed by scripts/deps.sh when it does
# not depend on an image package (6.1).  The 6.12 headers in bookworm do
# (linux-image-KVER | linux-image-KVER-unsigned), so for those deps.sh
# installs only the headers' other dependencies (the -common headers,
# linux-kbuild, gcc) and the linux-headers-KVER package itself is unpacked
# into build/headers/KVER/ the same way; its links into linux-kbuild are
# pointed at the installed one.  Installed headers (/lib/modules/KVER/build)
# are used when present.
set -eu
# depmod is in /sbin, which a user's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

here=$(cd "$(dirname "$0")" && pwd)
root_dir=$(dirname "$here")
kernels_dir=$root_dir/build/kernels
headers_dir=$root_dir/build/headers
debs_dir=$root_dir/build/debs
debug_root=${KESTREL_DEBUG_KERNEL_DIR:-$root_dir/build/debug-kernel}/root

newest() {
	sort -V | tail -n 1
}

installed_kernels() {
	for d in /lib/modules/*/build "$headers_dir"/*/usr/src/linux-headers-*; do
		[ -e "$d" ] || continue
		case $d in
		/lib/*) basename "$(dirname "$d")" ;;
		*) basename "${d%/usr/src/*}" ;;
		esac
	done
}

kernel_61() {
	v=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\(6\.1\.[^ ]*-amd64\)$/\1/p' | newest)
	if [ -z "$v" ]; then
		v=$(installed_kernels | grep -E '^6\.1\.[0-9]+-[0-9]+-amd64$' | newest)
	fi
	echo "$v"
}

kernel_612() {
	v=$(apt-cache search --names-only '^linux-headers-6\.12\.[0-9.]+\+deb12-amd64$' 2>/dev/null |
		sed -n 's/^linux-headers-\([^ ]*\) .*/\1/p' | newest)
	if [ -z "$v" ]; then
		v=$(installed_kernels | grep -E '^6\.12\.[0-9.]+\+deb12-amd64$' | newest)
	fi
	echo "$v"
}

# header_packages KVER: what deps.sh installs for KVER's headers: the
# headers package itself, or, when that would pull in a kernel image, its
# other dependencies (the headers package is then unpacked, see above).
header_packages() {
	deps=$(apt-cache depends "linux-headers-$1" 2>/dev/null |
		sed -n 's/^ *|\{0,1\}Depends: \([^<][^ ]*\)$/\1/p')
	if echo "$deps" | grep -q '^linux-image-'; then
		echo "$deps" | grep -v '^linux-image-'
	else
		# Also when the lists do not know it yet: deps.sh updates them
		# and asks again.
		echo "linux-headers-$1"
	fi
}

# have_image ROOT KVER: ROOT has KVER's kernel file, modules and modules.dep
# (which a removed, not purged, image leaves behind).
have_image() {
	[ -r "$1/boot/vmlinuz-$2" ] && [ -d "$1/lib/modules/$2/kernel" ] &&
		[ -f "$1/lib/modules/$2/modules.dep" ]
}

# have_headers DIR: DIR is a headers tree one can build modules against:
# its Makefile, the files it includes, and kbuild's scripts.
have_headers() {
	[ -f "$1/Makefile" ] && [ -d "$1/scripts/" ] || return 1
	# shellcheck disable=SC2013 # one path per line, no spaces
	for f in $(sed -n 's/^include \(\/[^ ]*\)$/\1/p' "$1/Makefile"); do
		[ -f "$f" ] || return 1
	done
}

# The first of these packages that the apt lists know: one that has a
# Filename in the archive, not a package dpkg merely remembers.
known_package() {
	for p in "$@"; do
		if apt-cache show --no-all-versions "$p" 2>/dev/null | grep -q '^Filename:'; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# is_whole image|headers TREE KVER: the unpacked TREE has what KVER needs.
is_whole() {
	case $1 in
	image) have_image "$2" "$3" ;;
	headers) have_headers "$2/usr/src/linux-headers-$3" ;;
	esac
}

# fix_image TREE KVER: make modules.dep for the unpacked image.
fix_image() {
	# Debian after 12 ships the modules in /usr/lib/modules.
	if [ ! -e "$1/lib" ] && [ -d "$1/usr/lib/modules" ]; then
		ln -s usr/lib "$1/lib"
	fi
	depmod -b "$1" "$2" || return 1
	have_image "$1" "$2" || {
		echo "kernels: no boot/vmlinuz-$2 or lib/modules/$2 in the package" >&2
		return 1
	}
}

# fix_headers TREE KVER: the package's relative links (scripts and tools,
# into /usr/lib/linux-kbuild-*) would dangle in TREE: point them at the same
# place on this machine, where deps.sh installed linux-kbuild.  The Makefile
# includes the -common headers by absolute path: deps.sh installed those too.
fix_headers() {
	find "$1" -type l | while IFS= read -r l; do
		[ -e "$l" ] && continue
		t=$(readlink "$l")
		case $t in /*) continue ;; esac
		rel=${l#"$1"}
		ln -sfn "$(realpath -m "$(dirname "$rel")/$t")" "$l"
	done
	have_headers "$1/usr/src/linux-headers-$2" || {
		echo "kernels: linux-headers-$2 needs its linux-kbuild and -common" \
			"packages installed (scripts/deps.sh)" >&2
		return 1
	}
}

# download PACKAGE...: download the first PACKAGE the apt lists know into
# build/debs/ and print the file's path.  Missing or stale lists (a fresh
# machine, or the archive moved on and the file is gone) are updated once.
download() {
	updated=0
	while :; do
		if pkg=$(known_package "$@"); then
			echo "kernels: downloading $pkg (not installing it) into ${debs_dir#"$root_dir"/}/" >&2
			dl=$(mktemp -d "$debs_dir/.tmp.XXXXXX") || return 1
			# As root, apt hands the download to its _apt user, who
			# cannot write here, and warns: stay root.
			sandbox=
			[ "$(id -u)" != 0 ] || sandbox="-o APT::Sandbox::User=root"
			# shellcheck disable=SC2086 # $sandbox is empty or two words
			if (cd "$dl" && LC_ALL=C apt-get -q $sandbox download "$pkg" >&2); then
				deb=$(ls "$dl"/*.deb) && mv "$deb" "$debs_dir/" && rmdir "$dl" || return 1
				echo "$debs_dir/${deb##*/}"
				return 0
			fi
			rm -rf "$dl"
		fi
		if [ $updated = 1 ]; then
			echo "kernels: cannot download any of: $*" >&2
			return 1
		fi
		echo "kernels: $1 not found in the apt lists or the archive; updating the lists" >&2
		"$here/deps.sh" --update >&2 || return 1
		updated=1
	done
}

# fetch image|headers DEST KVER PACKAGE...: download the first PACKAGE the
# apt lists know (unless build/debs/ has one), unpack it, fix it up and
# rename it to DEST.  DEST appears whole, under a lock, so parallel runs
# neither race nor see half a tree.  Called as `fetch ... || ...`, where
# set -e is off: every step checks itself.
fetch() {
	kind=$1 dest=$2 k=$3
	shift 3
	mkdir -p "$(dirname "$dest")" "$debs_dir" || return 1
	exec 8>>"$debs_dir/.lock" || return 1
	flock 8 || return 1
	if is_whole "$kind" "$dest" "$k"; then
		# Another run just unpacked it.
		exec 8>&-
		return 0
	fi
	rm -rf "$dest" "$dest".tmp.* "$debs_dir/.tmp".*

	deb=
	for p in "$@"; do
		# shellcheck disable=SC2012 # Debian package file names are tame
		deb=$(ls "$debs_dir/${p}_"*.deb 2>/dev/null | sort -V | tail -n 1)
		[ -z "$deb" ] || break
	done
	if [ -z "$deb" ]; then
		deb=$(download "$@") || return 1
	fi

	echo "kernels: unpacking ${deb#"$root_dir"/} into ${dest#"$root_dir"/}/" >&2
	tmp=$(mktemp -d "$dest.tmp.XXXXXX") || return 1
	if ! dpkg-deb -x "$deb" "$tmp"; then
		# A damaged download: drop it, so that the next run fetches anew.
		rm -rf "$tmp" "$deb"
		return 1
	fi
	if ! "fix_$kind" "$tmp" "$k"; then
		rm -rf "$tmp"
		return 1
	fi
	mv "$tmp" "$dest" || return 1
	exec 8>&-
}

# image_root KVER: print the root of KVER's image, fetching it if needed.
image_root() {
	if have_image "$debug_root" "$1"; then
		echo "$debug_root"
	elif have_image "$kernels_dir/$1" "$1"; then
		echo "$kernels_dir/$1"
	elif have_image "" "$1"; then
		echo /
	elif fetch image "$kernels_dir/$1" "$1" \
		"linux-image-$1" "linux-image-$1-unsigned"; then
		echo "$kernels_dir/$1"
	else
		echo "kernels: cannot get the kernel image of $1" >&2
		return 1
	fi
}

# kdir KVER: print KVER's headers directory, fetching it if needed.
kdir() {
	d=$headers_dir/$1/usr/src/linux-headers-$1
	if have_image "$debug_root" "$1" &&
		have_headers "$debug_root/lib/modules/$1/build"; then
		realpath "$debug_root/lib/modules/$1/build"
	elif have_headers "/lib/modules/$1/build"; then
		echo "/lib/modules/$1/build"
	elif have_headers "$d"; then
		echo "$d"
	elif fetch headers "$headers_dir/$1" "$1" "linux-headers-$1"; then
		echo "$d"
	else
		echo "kernels: cannot get the headers of $1" >&2
		return 1
	fi
}

resolve() {
	if [ -n "${KESTREL_KERNELS:-}" ]; then
		kernels=$KESTREL_KERNELS
		return
	fi
	k1=$(kernel_61)
	k2=$(kernel_612)
	if [ -z "$k1" ] || [ -z "$k2" ]; then
		echo "kernels.sh: cannot resolve the 6.1/6.12 kernels (run apt-get update?)" >&2
		exit 1
	fi
	kernels="$k1 $k2"
}

# Paths under the checkout are shown relative to it.
show() {
	case $1 in
	"$debug_root"/* | "${debug_root%/root}"/*) echo "${1#"$root_dir"/} (built here)" ;;
	"$root_dir"/*) echo "${1#"$root_dir"/} (unpacked, not installed)" ;;
	*) echo "$1 (installed)" ;;
	esac
}

case "${1:-}" in
--packages)
	resolve
	for k in $kernels; do
		header_packages "$k"
	done
	;;
--root | --kdir)
	if [ $# -ne 2 ]; then
		echo "usage: $0 $1 KVER" >&2
		exit 2
	fi
	if [ "$1" = --root ]; then
		image_root "$2"
	else
		kdir "$2"
	fi
	;;
--fetch)
	shift
	if [ $# -eq 0 ]; then
		resolve
		# shellcheck disable=SC2086 # one word per kernel
		set -- $kernels
	fi
	for k in "$@"; do
		r=$(image_root "$k")
		d=$(kdir "$k")
		echo "kernels: $k image: $(show "${r%/}/boot/vmlinuz-$k")"
		echo "kernels: $k headers: $(show "$d")"
	done
	;;
"")
	resolve
	for k in $kernels; do
		echo "$k"
	done
	;;
*)
	echo "usage: $0 [--packages | --root KVER | --kdir KVER | --fetch [KVER...]]" >&2
	exit 2
	;;
esac
