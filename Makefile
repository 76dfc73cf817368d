# SPDX-License-Identifier: GPL-2.0
#
# Kestrel top-level Makefile.  The module itself is built by Kbuild (see ./Kbuild);
# this file drives Kbuild, the userspace parts and the test/demo flows.
#
#   make                 module + launcher + selftests, against KDIR
#   make module          kestrel.ko only
#   make install         install kestrel.ko (modules_install) and the launcher
#   make check           the test suite: both Debian kernels under QEMU (see README)
#   make lint            checkpatch --strict, sparse and W=1 over the module (scripts/lint.sh)
#   make demo            boot a demo guest (directly, or inside the emulated host)
#   make bench           Kestrel against KVM in the emulated host (bench/README.md)

KDIR    ?= /lib/modules/$(shell uname -r)/build
PREFIX  ?= /usr/local
DESTDIR ?=

all: module userspace selftests

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

userspace:
	$(MAKE) -C userspace

selftests:
	$(MAKE) -C selftests

install: module userspace
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install
	install -D -m 0755 userspace/kestrel $(DESTDIR)$(PREFIX)/bin/kestrel
	install -D -m 0644 uapi/linux/kestrel.h $(DESTDIR)$(PREFIX)/include/linux/kestrel.h
	install -D -m 0644 uapi/linux/kestrel_netlink.h $(DESTDIR)$(PREFIX)/include/linux/kestrel_netlink.h

check:
	scripts/check.sh

lint:
	scripts/lint.sh

demo:
	scripts/demo.sh

bench:
	bench/run.sh

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	$(MAKE) -C userspace clean
	$(MAKE) -C selftests clean
	rm -rf build

.PHONY: all module userspace selftests install check lint demo bench clean
