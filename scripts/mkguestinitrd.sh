#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The initramfs a Linux guest boots under Kestrel (boot_test, the demo):
# busybox, and an /init that prints what boot_test checks between markers,
# then powers the guest off (ACPI S5: the launcher exits 0).
#
#   scripts/mkguestinitrd.sh OUT.gz
set -euo pipefail

out=${1:?usage: mkguestinitrd.sh OUT.gz}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "mkguestinitrd: no busybox (busybox-static)" >&2; exit 1; }
gstage=$(mktemp -d)
trap 'rm -rf "$gstage"' EXIT

mkdir -p "$gstage/bin" "$gstage/sbin" "$gstage/usr/bin" "$gstage/usr/sbin" \
	"$gstage/dev" "$gstage/proc" "$gstage/sys" "$gstage/tmp"
install -m 0755 "$busybox" "$gstage/bin/busybox"
"$busybox" --list-full | while IFS= read -r applet; do
	[ "$applet" = bin/busybox ] || [ -e "$gstage/$applet" ] ||
		ln -s /bin/busybox "$gstage/$applet"
done
mknod -m 0600 "$gstage/dev/console" c 5 1 2>/dev/null || true
cat > "$gstage/init" <<'EOF'
#!/bin/sh
# PID 1 of the Linux guest of boot_test and the demo (scripts/mkguestinitrd.sh).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# LOC: one count per CPU ("N" with one CPU, "N M" with two)
loc() {
	awk '$1 == "LOC:" { s = $2
		for (i = 3; i <= NF && $i ~ /^[0-9]+$/; i++) s = s " " $i
		print s }' /proc/interrupts
}
echo "### GUEST-USERSPACE-BEGIN"
echo "Hello from Linux $(uname -r), a Kestrel guest; powering off."
echo "guest-uname: $(uname -r)"
echo "guest-clockevent: $(cat /sys/devices/system/clockevents/clockevent0/current_device)"
echo "guest-clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
echo "guest-cpus: $(nproc)"
echo "guest-loc-before: $(loc)"
sleep 1
echo "guest-loc-after: $(loc)"
echo "guest-serial-irq: $(awk '/IO-APIC +4-edge/ { print $2, $NF }' /proc/interrupts)"
echo "### GUEST-USERSPACE-END"
poweroff -f
EOF
chmod 0755 "$gstage/init"
mkdir -p "$(dirname "$out")"
(cd "$gstage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
	gzip -9 > "$out.tmp"
mv "$out.tmp" "$out"
