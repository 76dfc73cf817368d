/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internals shared by the launcher's parts: kestrel.c (options, the VM
 * and the run loop), boot.c (kernel loaders) and devices.c (port I/O).
 */
#ifndef KESTREL_LAUNCHER_H
#define KESTREL_LAUNCHER_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kestrel.h>

void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool verbose;

/* ---- boot.c ---------------------------------------------------------- */

struct boot_args {
	const char *kernel;
	const char *initrd;	/* NULL: none */
	const char *cmdline;	/* never NULL */
};

/*
 * Load @a->kernel (Multiboot v1 ELF or Linux bzImage) into the guest's
 * @size bytes of RAM at @mem and fill in the entry state.  @s comes in
 * from KESTREL_GET_SREGS.  -1 after a message on failure.
 */
int boot_kernel(uint8_t *mem, uint64_t size, const struct boot_args *a,
		struct kestrel_regs *r, struct kestrel_sregs *s);

/* ---- devices.c ------------------------------------------------------- */

enum machine { MACHINE_FLAT, MACHINE_PC };

void devices_init(enum machine m);

/*
 * One port access of @size bytes; for IN, *@val receives the value.
 * Returns true when the guest asked the launcher to end, with the exit
 * status in *@status.
 */
bool pio_access(uint16_t port, uint8_t size, bool is_out, uint32_t *val,
		int *status);

#endif
