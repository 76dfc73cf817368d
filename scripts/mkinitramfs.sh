#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Pack the emulated host's initramfs: busybox, kestrel.ko, the launcher, the
# selftests, the demo guests and an /init that runs them; with the host's
# own kernel as /boot/bzImage and /boot/guest-initrd.gz, a small busybox
# initramfs for booting that kernel as a Kestrel guest (boot_test).
#
#   scripts/mkinitramfs.sh KVER OUT.gz [SRC[:DEST]...]
#
# Extra SRC files land at DEST (default /SRC's basename).  The stock KVM
# and zram modules of KVER go to /lib/modules/kvm/ (kvm-amd),
# /lib/modules/kvm-intel/ and /lib/modules/zram/
# for the selftests; they come from the tree `scripts/kernels.sh --root KVER`
# names (build/kernels/KVER/, unpacked from Debian's image package and
# fetched on first use, or / for an installed image).  What /init does is
# chosen at boot by kestrel.mode=test|demo|shell on the kernel command line
# (see scripts/emulated-host.sh); its output protocol is described in
# Documentation/testing.rst.
#
# Environment (defaults are the repository's own paths):
#   KESTREL_BUILD_DIR      build/             kestrel.ko is $KESTREL_BUILD_DIR/KVER/kestrel.ko
#   KESTREL_MODULE         (that path)        another kestrel.ko
#   KESTREL_LAUNCHER       userspace/kestrel
#   KESTREL_GUESTS_DIR     userspace/guests   *.bin go to /guests/
#   KESTREL_SELFTESTS_DIR  selftests          executable *_test go to /selftests/
#   KESTREL_TESTS          (all)              only these test names ("none": no tests)
#   KESTREL_TEST_TIMEOUT   300                seconds per test program (and for the demo)
#   KESTREL_INSMOD_ARGS    (none)             module parameters for insmod
#   KESTREL_RUN_TIMEOUT    (lib.h's)          seconds one KESTREL_RUN may take in a selftest
#   KESTREL_FUZZ_SECONDS, KESTREL_FUZZ_SEED, KESTREL_FUZZ_THREADS,
#   KESTREL_FUZZ_VERBOSE   (unset)            fuzz_test's knobs
#   KESTREL_NO_SWAP_TEST   (unset)            1: memory_test skips its swapping guest
#                          (these six are numbers, exported to the tests as they are)
set -eu
# modinfo is in /sbin, which a user's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

root_dir=$(cd "$(dirname "$0")/.." && pwd)

if [ $# -lt 2 ]; then
	echo "usage: $0 KVER OUT.gz [SRC[:DEST]...]" >&2
	exit 2
fi
kver=$1
out=$2
shift 2

build_dir=${KESTREL_BUILD_DIR:-$root_dir/build}
module=${KESTREL_MODULE:-$build_dir/$kver/kestrel.ko}
launcher=${KESTREL_LAUNCHER:-$root_dir/userspace/kestrel}
guests_dir=${KESTREL_GUESTS_DIR:-$root_dir/userspace/guests}
selftests_dir=${KESTREL_SELFTESTS_DIR:-$root_dir/selftests}
test_timeout=${KESTREL_TEST_TIMEOUT:-300}

busybox=$(command -v busybox || true)
if [ -z "$busybox" ]; then
	echo "mkinitramfs: busybox not found (scripts/deps.sh installs busybox-static)" >&2
	exit 1
fi
if [ ! -f "$module" ]; then
	echo "mkinitramfs: $module not found" >&2
	exit 1
fi
# Where KVER's stock modules are: lib/modules/KVER/ under it, with modules.dep.
if ! kroot=$("$root_dir/scripts/kernels.sh" --root "$kver"); then
	echo "mkinitramfs: no stock modules for $kver" >&2
	exit 1
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/sbin" "$stage/usr/bin" "$stage/usr/sbin" \
	"$stage/dev" "$stage/proc" "$stage/sys" "$stage/tmp" "$stage/root" \
	"$stage/etc" "$stage/selftests" "$stage/guests"

is_dynamic() {
	readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

# Static binaries are preferred.  A dynamic one still works: its loader and
# libraries (from ldd) are copied to the same paths inside the initramfs.
add_binary() {
	install -D -m 0755 "$1" "$stage$2"
	if is_dynamic "$1"; then
		echo "mkinitramfs: note: $1 is dynamically linked; copying its libraries" >&2
		ldd "$1" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p' |
		while IFS= read -r lib; do
			[ -e "$stage$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$stage$lib"
		done
	fi
}

# The initramfs has no libc: busybox must be the static build.
if is_dynamic "$busybox"; then
	echo "mkinitramfs: $busybox is dynamically linked; install busybox-static" >&2
	exit 1
fi
install -m 0755 "$busybox" "$stage/bin/busybox"
"$busybox" --list-full | while IFS= read -r applet; do
	[ "$applet" = bin/busybox ] || [ -e "$stage/$applet" ] ||
		ln -s /bin/busybox "$stage/$applet"
done

install -m 0644 "$module" "$stage/kestrel.ko"

if [ -f "$launcher" ]; then
	add_binary "$launcher" /bin/kestrel
else
	echo "mkinitramfs: warning: no launcher at $launcher" >&2
fi

for g in "$guests_dir"/*.bin; do
	[ -f "$g" ] && install -m 0644 "$g" "$stage/guests/"
done

# The emulated host's own kernel, for boot_test's Linux case.
if [ -f "$kroot/boot/vmlinuz-$kver" ]; then
	install -D -m 0644 "$kroot/boot/vmlinuz-$kver" "$stage/boot/bzImage"
fi

# And the initramfs that kernel boots as a Kestrel guest (boot_test, demo).
mkdir -p "$stage/boot"
"$root_dir/scripts/mkguestinitrd.sh" "$stage/boot/guest-initrd.gz"

ntests=0
for t in "$selftests_dir"/*_test; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=${t##*/}
	if [ -n "${KESTREL_TESTS:-}" ]; then
		case " $KESTREL_TESTS " in
		" none ") continue ;;
		*" $name "*) ;;
		*) continue ;;
		esac
	fi
	add_binary "$t" "/selftests/$name"
	ntests=$((ntests + 1))
done

# stock_modules DIR MODULE...: copy stock modules of this kernel and their
# dependencies, uncompressed so that a plain finit_module() takes them, to
# DIR/NAME.ko, and list them in load order (dependencies first) in
# DIR/order.  Tests load them from there.
stock_module() {
	local dir=$1 name=$2 dep file
	case " $(cat "$dir/order" 2>/dev/null | tr '\n' ' ') " in
	*" $name "*) return 0 ;;
	esac
	for dep in $(modinfo -b "$kroot" -k "$kver" -F depends "$name" 2>/dev/null | tr ',' ' '); do
		stock_module "$dir" "$dep"
	done
	if ! file=$(modinfo -b "$kroot" -k "$kver" -n "$name" 2>/dev/null) || [ ! -f "$file" ]; then
		# Built in, or absent: tests find out and say so.
		return 0
	fi
	case $file in
	*.ko.xz) xz -dc "$file" > "$dir/$name.ko" ;;
	*.ko.zst) zstd -qdc "$file" > "$dir/$name.ko" ;;
	*) cp "$file" "$dir/$name.ko" ;;
	esac
	echo "$name" >> "$dir/order"
}

stock_modules() {
	local dir=$stage$1 m
	shift
	mkdir -p "$dir"
	: > "$dir/order"
	for m in "$@"; do
		stock_module "$dir" "$m"
	done
}

# KVM, for the tests of Kestrel and KVM taking turns on the CPU's
# virtualization (host_test, the bench): AMD's and Intel's.
stock_modules /lib/modules/kvm kvm-amd
stock_modules /lib/modules/kvm-intel kvm-intel
# zram, for a swapping host under a large guest (memory_test).
stock_modules /lib/modules/zram zram

for extra in "$@"; do
	src=${extra%%:*}
	dest=${extra#"$src"}
	dest=${dest#:}
	[ -n "$dest" ] || dest=/${src##*/}
	install -D "$src" "$stage$dest"
done

# Without a console node the kernel cannot give /init its stdio; /init
# reopens /dev/console from devtmpfs anyway, for builds done without root.
mknod -m 0600 "$stage/dev/console" c 5 1 2>/dev/null || true

cat > "$stage/etc/kestrel.conf" <<EOF
TEST_TIMEOUT=$test_timeout
INSMOD_ARGS="${KESTREL_INSMOD_ARGS:-}"
EOF
# The tests' own knobs, as their environment (numbers only).
for knob in RUN_TIMEOUT FUZZ_SECONDS FUZZ_SEED FUZZ_THREADS FUZZ_VERBOSE \
	NO_SWAP_TEST; do
	eval "val=\${KESTREL_$knob:-}"
	case $val in
	'') ;;
	*[!0-9xa-fA-F]*)
		echo "mkinitramfs: KESTREL_$knob=$val is not a number" >&2
		exit 1
		;;
	*) echo "export KESTREL_$knob=$val" >> "$stage/etc/kestrel.conf" ;;
	esac
done

cat > "$stage/init" <<'EOF'
#!/bin/sh
# PID 1 of Kestrel's emulated host, generated by scripts/mkinitramfs.sh.
# Everything it prints goes to the serial console, which the host side parses:
# keep the "### KESTREL-" markers in sync with scripts/check.sh.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
# No 2>/dev/null: without a console node there is no /dev/null yet either.
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
. /etc/kestrel.conf

# Only KERN_EMERG reaches the console: kernel lines would otherwise cut test
# output in the middle of a line.  Oopses and panics raise the level
# themselves, and the whole kernel log is printed at the end.
echo 1 > /proc/sys/kernel/printk

mode=test
for arg in $(cat /proc/cmdline); do
	case $arg in
	kestrel.mode=*) mode=${arg#kestrel.mode=} ;;
	esac
done

# Paths the selftests and demos may rely on.
export KESTREL_LAUNCHER=/bin/kestrel KESTREL_GUESTS_DIR=/guests

finish() {
	echo "### KESTREL-DMESG-BEGIN"
	dmesg
	echo "### KESTREL-DMESG-END"
	echo "### KESTREL-DONE"
	sync
	# Give the UART time to drain before the machine goes away.
	sleep 1
	poweroff -f
}

unload() {
	rmmod kestrel
	echo "### KESTREL-RESULT rmmod rc=$?"
}

echo "### KESTREL-INIT mode=$mode kernel=$(uname -r)"
# The dmesg scan on the host starts at this line: boot noise is not ours.
echo "kestrel-init: loading kestrel.ko" > /dev/kmsg
insmod /kestrel.ko $INSMOD_ARGS
rc=$?
echo "### KESTREL-RESULT insmod rc=$rc"
if [ $rc -ne 0 ]; then
	finish
fi

case $mode in
test)
	for t in /selftests/*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name=${t##*/}
		echo "### KESTREL-TEST-BEGIN $name"
		start=$(date +%s)
		# SIGKILL: a hung test must not be able to ignore it.
		(cd /tmp && exec timeout -s KILL "$TEST_TIMEOUT" "$t" </dev/null)
		rc=$?
		echo "### KESTREL-TEST-END $name rc=$rc secs=$(($(date +%s) - start))"
	done
	unload
	;;
demo)
	echo "### KESTREL-DEMO-BEGIN"
	timeout -s KILL "$TEST_TIMEOUT" /bin/kestrel run --flat /guests/hello.bin </dev/null
	rc=$?
	if [ $rc = 0 ] && [ -f /boot/bzImage ]; then
		echo "--- now this machine's own kernel, as a Kestrel guest:"
		timeout -s KILL "$TEST_TIMEOUT" /bin/kestrel run \
			--kernel /boot/bzImage --initrd /boot/guest-initrd.gz \
			--append console=ttyS0 --mem 256M </dev/null
		rc=$?
	fi
	echo "### KESTREL-DEMO-END rc=$rc"
	unload
	;;
shell)
	echo "kestrel.ko is loaded; the machine powers off when this shell exits."
	setsid cttyhack sh
	unload
	;;
*)
	echo "### KESTREL-NOTE unknown kestrel.mode=$mode"
	;;
esac
finish
EOF
chmod 0755 "$stage/init"

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
	gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
echo "mkinitramfs: $out ($ntests selftests)" >&2
