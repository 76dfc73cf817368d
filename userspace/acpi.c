// SPDX-License-Identifier: GPL-2.0
/*
 * The ACPI tables of the PC machine, built in guest RAM at ACPI_BASE
 * (the BIOS area the e820 table reserves): RSDP, XSDT, FADT, MADT and a
 * DSDT.  Field offsets follow the ACPI 6.x specification, chapter 5.
 *
 * The machine is "hardware-reduced" (FADT flag HW_REDUCED_ACPI): no PM
 * timer, no PM1 event/control blocks, no GPEs, no SCI is ever raised and
 * there is no 8259 PIC.  Power-off goes through the sleep control
 * register, reboot through the reset register (both ports in
 * devices.c).  Interrupts reach the CPUs through the one IOAPIC
 * (ioapic.c).  Documentation/launcher.rst lists the tables and explains
 * the AML bytes.
 */
#include <string.h>

#include "launcher.h"

/* Where each table goes, all inside [ACPI_BASE, ACPI_END) */
#define RSDP_ADDR		ACPI_BASE		/* 16-byte aligned */
#define XSDT_ADDR		(ACPI_BASE + 0x040)
#define FADT_ADDR		(ACPI_BASE + 0x100)
#define MADT_ADDR		(ACPI_BASE + 0x300)
#define DSDT_ADDR		(ACPI_BASE + 0x1000)	/* MADT may grow */

#define HDR_LEN			36
#define FADT_LEN		276	/* revision 6 */

#define FADT_WBINVD		(1U << 0)
#define FADT_PWR_BUTTON		(1U << 4)	/* no fixed power button */
#define FADT_SLP_BUTTON		(1U << 5)	/* no fixed sleep button */
#define FADT_RESET_REG_SUP	(1U << 10)
#define FADT_HW_REDUCED_ACPI	(1U << 20)

#define BOOT_ARCH_VGA_NOT_PRESENT	(1U << 2)

#define GAS_SYSTEM_IO		1
#define GAS_ACCESS_BYTE		1

#define MADT_LAPIC		0
#define MADT_IOAPIC		1
#define MADT_ISO		2
#define MADT_LAPIC_NMI		4

/* The byte that makes @len bytes at @p sum to zero */
static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return -sum;
}

/* The common header; the length and checksum are set by table_done(). */
static void table_header(uint8_t *t, const char *sig, uint8_t rev)
{
	memcpy(t, sig, 4);
	t[8] = rev;
	memcpy(t + 10, "KESTRL", 6);		/* OEM ID */
	memcpy(t + 16, "KESTREL ", 8);		/* OEM table ID */
	put32(t + 24, 1);			/* OEM revision */
	memcpy(t + 28, "KSTL", 4);		/* creator ID */
	put32(t + 32, 1);			/* creator revision */
}

static void table_done(uint8_t *t, uint32_t len)
{
	put32(t + 4, len);
	t[9] = 0;
	t[9] = checksum(t, len);
}

/* A Generic Address Structure: an 8-bit register in I/O space */
static void gas_io8(uint8_t *g, uint16_t port)
{
	g[0] = GAS_SYSTEM_IO;
	g[1] = 8;				/* bit width */
	g[2] = 0;				/* bit offset */
	g[3] = GAS_ACCESS_BYTE;
	put64(g + 4, port);
}

static void build_fadt(uint8_t *t)
{
	table_header(t, "FACP", 6);
	put16(t + 46, ACPI_SCI_IRQ);		/* SCI_INT: never raised */
	t[108] = 0x32;				/* CENTURY: CMOS register */
	put16(t + 109, BOOT_ARCH_VGA_NOT_PRESENT); /* no 8042, no legacy devs */
	put32(t + 112, FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON |
		       FADT_RESET_REG_SUP | FADT_HW_REDUCED_ACPI);
	gas_io8(t + 116, ACPI_RESET_PORT);	/* RESET_REG */
	t[128] = ACPI_RESET_VALUE;
	t[131] = 0;				/* FADT minor version */
	put64(t + 140, DSDT_ADDR);		/* X_DSDT (DSDT stays 0) */
	gas_io8(t + 244, ACPI_SLEEP_CTL_PORT);	/* SLEEP_CONTROL_REG */
	gas_io8(t + 256, ACPI_SLEEP_STS_PORT);	/* SLEEP_STATUS_REG */
	memcpy(t + 268, "KESTREL\0", 8);	/* hypervisor vendor identity */
	table_done(t, FADT_LEN);
}

static uint32_t build_madt(uint8_t *t, unsigned int ncpus)
{
	uint8_t *e = t + 44;
	unsigned int i;

	table_header(t, "APIC", 5);
	put32(t + 36, LAPIC_BASE);
	put32(t + 40, 0);			/* flags: no PCAT_COMPAT */
	for (i = 0; i < ncpus; i++) {
		e[0] = MADT_LAPIC;
		e[1] = 8;
		e[2] = i;			/* ACPI processor UID */
		e[3] = i;			/* APIC ID */
		put32(e + 4, 1);		/* enabled */
		e += 8;
	}
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = IOAPIC_ID(ncpus);
	e[3] = 0;
	put32(e + 4, IOAPIC_BASE);
	put32(e + 8, 0);			/* GSI base */
	e += 12;
	/* ISA convention: IRQ 0 (the timer) on pin 2, the rest 1:1 */
	e[0] = MADT_ISO;
	e[1] = 10;
	e[2] = 0;				/* bus: ISA */
	e[3] = 0;				/* source IRQ */
	put32(e + 4, 2);			/* GSI */
	put16(e + 8, 0);			/* conforming polarity, trigger */
	e += 10;
	/* LINT1 of every processor is NMI, as firmware usually says */
	e[0] = MADT_LAPIC_NMI;
	e[1] = 6;
	e[2] = 0xff;				/* all processors */
	put16(e + 3, 0);
	e[5] = 1;				/* LINT1 */
	e += 6;
	table_done(t, e - t);
	return e - t;
}

/* ---- AML, assembled by hand (ACPI 6.x chapter 20) -------------------- */

/*
 * PkgLength: the length of the package including the PkgLength bytes
 * themselves.  One byte up to 63; otherwise the low nibble goes in the
 * lead byte (bits 7:6 = count of following bytes) and the rest follows.
 */
static size_t aml_pkg(uint8_t *out, uint8_t op, const char *name,
		      const uint8_t *body, size_t n)
{
	size_t head = name ? 4 : 0, len = head + n, i = 0;

	out[i++] = op;
	if (len + 1 <= 63) {
		out[i++] = len + 1;
	} else {
		len += 2;			/* two PkgLength bytes */
		out[i++] = 0x40 | (len & 0xf);
		out[i++] = len >> 4;
	}
	if (name) {
		memcpy(out + i, name, 4);
		i += 4;
	}
	memcpy(out + i, body, n);
	return i + n;
}

/* Name(NAME, Buffer(){bytes}) for a _CRS resource template */
static size_t aml_name_buffer(uint8_t *out, const char *name,
			      const uint8_t *bytes, size_t n)
{
	uint8_t body[64];
	size_t i = 0;

	out[i++] = 0x08;			/* NameOp */
	memcpy(out + i, name, 4);
	i += 4;
	body[0] = 0x0a;				/* BytePrefix: buffer size */
	body[1] = n;
	memcpy(body + 2, bytes, n);
	return i + aml_pkg(out + i, 0x11, NULL, body, n + 2);	/* BufferOp */
}

/*
 * Device(NAME) { Name(_HID, EisaId(...)) Name(_UID, 1) Name(_CRS, ...) }
 * @eisa is the compressed EISA ID as AML stores it (a DWordConst).
 */
static size_t aml_isa_device(uint8_t *out, const char *name, uint32_t eisa,
			     const uint8_t *crs, size_t crs_len)
{
	uint8_t body[128];
	size_t n = 0;

	body[n++] = 0x08;			/* Name(_HID, DWordConst) */
	memcpy(body + n, "_HID", 4);
	n += 4;
	body[n++] = 0x0c;
	put32(body + n, eisa);
	n += 4;
	body[n++] = 0x08;			/* Name(_UID, One) */
	memcpy(body + n, "_UID", 4);
	n += 4;
	body[n++] = 0x01;
	n += aml_name_buffer(body + n, "_CRS", crs, crs_len);
	out[0] = 0x5b;				/* ExtOpPrefix */
	return 1 + aml_pkg(out + 1, 0x82, name, body, n);	/* DeviceOp */
}

/*
 * Name(_S5, Package(){5, 0, 0, 0}): SLP_TYPa = 5 is what the guest
 * writes to the sleep control register (SLP_TYP, bits 4:2) to power off.
 *   08 5F 53 35 5F   NameOp "_S5_"
 *   12 07 04         PackageOp, PkgLength 7, NumElements 4
 *   0A 05 00 00 00   BytePrefix 5, Zero, Zero, Zero
 */
static const uint8_t aml_s5[] = {
	0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00,
	0x00,
};

/* IO(Decode16, 0x3f8, 0x3f8, 0, 8) IRQNoFlags(){4} EndTag */
static const uint8_t crs_com1[] = {
	0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08,
	0x22, 1 << UART_IRQ, 0x00,
	0x79, 0x00,
};

/* IO(Decode16, 0x70, 0x70, 1, 2) EndTag: a CMOS clock that never
 * interrupts, so no IRQ is claimed for it */
static const uint8_t crs_rtc[] = {
	0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02,
	0x79, 0x00,
};

#define EISA_PNP0501		0x0105d041	/* "PNP0501": 16550 UART */
#define EISA_PNP0B00		0x000bd041	/* "PNP0B00": AT RTC */

static uint32_t build_dsdt(uint8_t *t)
{
	uint8_t sb[256];
	size_t n = HDR_LEN, sbn = 0;

	table_header(t, "DSDT", 2);
	memcpy(t + n, aml_s5, sizeof(aml_s5));
	n += sizeof(aml_s5);
	/* Scope(\_SB) { COM1, RTC } so the guest finds them and IRQ 4 */
	sbn += aml_isa_device(sb + sbn, "COM1", EISA_PNP0501, crs_com1,
			      sizeof(crs_com1));
	sbn += aml_isa_device(sb + sbn, "RTC_", EISA_PNP0B00, crs_rtc,
			      sizeof(crs_rtc));
	n += aml_pkg(t + n, 0x10, "_SB_", sb, sbn);	/* ScopeOp */
	table_done(t, n);
	return n;
}

uint64_t acpi_build(uint8_t *mem, uint64_t size, unsigned int ncpus)
{
	uint8_t *rsdp = mem + RSDP_ADDR, *xsdt = mem + XSDT_ADDR;

	if (size < ACPI_END)
		return 0;
	memset(mem + ACPI_BASE, 0, ACPI_END - ACPI_BASE);

	build_fadt(mem + FADT_ADDR);
	build_madt(mem + MADT_ADDR, ncpus);
	build_dsdt(mem + DSDT_ADDR);

	table_header(xsdt, "XSDT", 1);
	put64(xsdt + HDR_LEN, FADT_ADDR);
	put64(xsdt + HDR_LEN + 8, MADT_ADDR);
	table_done(xsdt, HDR_LEN + 2 * 8);

	/* RSDP 2.0: no RSDT, the XSDT only */
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "KESTRL", 6);
	rsdp[15] = 2;				/* revision */
	put32(rsdp + 16, 0);			/* RsdtAddress */
	put32(rsdp + 20, 36);			/* length */
	put64(rsdp + 24, XSDT_ADDR);
	rsdp[8] = checksum(rsdp, 20);
	rsdp[32] = checksum(rsdp, 36);
	return RSDP_ADDR;
}
