/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internals shared by the launcher's parts: kestrel.c (options, the VM,
 * the vCPU threads and their run loops), boot.c (kernel loaders), acpi.c
 * (tables), devices.c (port I/O) and ioapic.c.
 */
#ifndef KESTREL_LAUNCHER_H
#define KESTREL_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kestrel.h>

void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool verbose;
/* Hold both around several lines that belong together (recursive). */
void output_lock(void);
void output_unlock(void);

/* ---- boot.c ---------------------------------------------------------- */

struct boot_args {
	const char *kernel;
	const char *initrd;	/* NULL: none */
	const char *cmdline;	/* never NULL */
	unsigned int ncpus;	/* for the ACPI tables (MADT): 1..64 */
};

/*
 * Load @a->kernel (Multiboot v1 ELF or Linux bzImage) into the guest's
 * @size bytes of RAM at @mem, with the ACPI tables (acpi.c), and fill in
 * the entry state.  @s comes in
 * from KESTREL_GET_SREGS.  -1 after a message on failure.
 */
int boot_kernel(uint8_t *mem, uint64_t size, const struct boot_args *a,
		struct kestrel_regs *r, struct kestrel_sregs *s);

/*
 * The PC machine's fixed addresses.  ACPI_BASE..BIOS end (1 MiB) is
 * reserved in the e820 table: the ACPI tables live there.
 */
#define ACPI_BASE		0xe0000
#define ACPI_END		0xe2000
#define LAPIC_BASE		0xfee00000U
#define IOAPIC_BASE		0xfec00000U
#define IOAPIC_SIZE		0x1000
#define IOAPIC_PINS		24
#define IOAPIC_ID(ncpus)	(ncpus)		/* after the local APIC IDs */
#define UART_IRQ		4		/* COM1, IOAPIC pin 4 */
#define ACPI_SCI_IRQ		9		/* named in the FADT, never raised */
#define ACPI_SLEEP_CTL_PORT	0x600
#define ACPI_SLEEP_STS_PORT	0x601
#define ACPI_RESET_PORT		0x602
#define ACPI_RESET_VALUE	0x01

/* ---- acpi.c ---------------------------------------------------------- */

/* Build the tables for @ncpus vCPUs; returns the RSDP's address. */
uint64_t acpi_build(uint8_t *mem, uint64_t size, unsigned int ncpus);

/* ---- ioapic.c -------------------------------------------------------- */

void ioapic_init(uint32_t id);
/* A device drives pin @pin's line; a rising edge sends the interrupt. */
void ioapic_set_irq(int pin, bool level);
/* An MMIO exit; false when @gpa is not the IOAPIC's. */
bool ioapic_mmio(uint64_t gpa, bool is_write, uint8_t *data, uint32_t len);

/* ---- kestrel.c ------------------------------------------------------- */

/*
 * KESTREL_SIGNAL_MSI on the VM: the number of local APICs that took the
 * message, or -1 with errno (ENXIO: the VM has no in-kernel APIC).
 * Safe from any thread.
 */
int signal_msi(uint64_t address, uint32_t data);
/* A byte of the guest's serial console, on its way to stdout. */
void console_out(uint8_t c);
/*
 * End the VM with exit status @status and kick every vCPU thread out of
 * RUN.  Only the first call counts: true for it, so that only the cause
 * that won gets reported.  Any thread, not a signal handler.
 */
bool machine_end(int status);
bool machine_ended(void);

/* ---- devices.c ------------------------------------------------------- */

enum machine { MACHINE_FLAT, MACHINE_PC };

void devices_init(enum machine m);
/*
 * Guest input for COM1: queue @len bytes, waiting while the UART's
 * receive FIFO is full.  Called by the input thread.
 */
void uart_receive(const uint8_t *buf, size_t len);

/*
 * One port access of @size bytes; for IN, *@val receives the value.
 * Returns true when the VM has ended: this access ended it (the guest
 * asked the launcher to end, with the exit status in *@status, already
 * given to machine_end()), or something else had.
 */
bool pio_access(uint16_t port, uint8_t size, bool is_out, uint32_t *val,
		int *status);

/* ---- little-endian fields of boot and firmware structures ------------ */

static inline uint16_t get16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static inline uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static inline uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

static inline void put64(uint8_t *p, uint64_t v)
{
	put32(p, v);
	put32(p + 4, v >> 32);
}

#endif
