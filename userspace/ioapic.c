// SPDX-License-Identifier: GPL-2.0
/*
 * The PC machine's IOAPIC, an 82093AA as a guest sees it: 24 pins,
 * version 0x11, at IOAPIC_BASE (MMIO exits).  A pin's rising edge becomes
 * one interrupt message, sent to the in-kernel local APICs with
 * KESTREL_SIGNAL_MSI; the redirection entry gives the destination, the
 * vector and the delivery mode, exactly as an MSI address and data would.
 *
 * Every pin is delivered as an edge.  A level-triggered entry is sent
 * once per rising edge as well, and its Remote IRR stays 0: the kernel's
 * local APIC does not tell userspace when the guest EOIs a vector, so
 * there is no moment to re-deliver a level that stays asserted.  Only
 * unmasking an asserted level-triggered pin sends it again.  The
 * machine's devices (COM1 on pin 4) are ISA devices, which are edge.
 *
 * Device threads (the vCPU threads' port handlers, the input thread)
 * call ioapic_set_irq(), and any vCPU thread may take an MMIO exit here;
 * the lock serializes them all.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>

#include "launcher.h"

#define IOAPIC_VERSION		0x11
#define IOREGSEL		0x00
#define IOWIN			0x10

#define REG_ID			0x00
#define REG_VERSION		0x01
#define REG_ARB			0x02
#define REG_REDTBL		0x10

/* Redirection entry bits */
#define RTE_VECTOR		0xffULL
#define RTE_DELMODE(v)		((uint32_t)((v) >> 8) & 7)
#define RTE_LOGICAL		(1ULL << 11)
#define RTE_DELIVS		(1ULL << 12)
#define RTE_POLARITY		(1ULL << 13)
#define RTE_REMOTE_IRR		(1ULL << 14)
#define RTE_LEVEL		(1ULL << 15)
#define RTE_MASKED		(1ULL << 16)
#define RTE_DEST(v)		((uint32_t)((v) >> 56))
/* What the guest may write: all but delivery status and Remote IRR */
#define RTE_WRITABLE		(~(RTE_DELIVS | RTE_REMOTE_IRR) & \
				 (0xff00000000000000ULL | 0x1ffffULL))

static struct {
	pthread_mutex_t lock;
	uint32_t id;
	uint8_t sel;
	uint64_t rte[IOAPIC_PINS];
	bool level[IOAPIC_PINS];	/* the pin's input as the device drives it */
	bool warned;
} ioapic = { .lock = PTHREAD_MUTEX_INITIALIZER };

void ioapic_init(uint32_t id)
{
	int i;

	ioapic.id = id;
	for (i = 0; i < IOAPIC_PINS; i++)
		ioapic.rte[i] = RTE_MASKED;	/* as after reset */
}

/* Send pin @pin's message; with the lock held. */
static void ioapic_deliver(int pin)
{
	uint64_t rte = ioapic.rte[pin];
	uint64_t addr = LAPIC_BASE | (uint64_t)RTE_DEST(rte) << 12 |
			(rte & RTE_LOGICAL ? 4 : 0);
	uint32_t data = (rte & RTE_VECTOR) | RTE_DELMODE(rte) << 8;
	int r = signal_msi(addr, data);

	if (verbose)
		err("IOAPIC pin %d: vector 0x%02x mode %u dest 0x%x%s: %s",
		    pin, data & 0xff, RTE_DELMODE(rte), RTE_DEST(rte),
		    rte & RTE_LOGICAL ? " logical" : "",
		    r < 0 ? strerror(errno) : r ? "delivered" : "no APIC took it");
	if (r < 0 && !ioapic.warned) {
		ioapic.warned = true;
		err("cannot deliver interrupts (IOAPIC pin %d): KESTREL_SIGNAL_MSI: %s",
		    pin, strerror(errno));
	}
}

void ioapic_set_irq(int pin, bool level)
{
	if (pin < 0 || pin >= IOAPIC_PINS)
		return;
	pthread_mutex_lock(&ioapic.lock);
	/* active-low pins see the inverted line */
	if (ioapic.rte[pin] & RTE_POLARITY)
		level = !level;
	if (level && !ioapic.level[pin] && !(ioapic.rte[pin] & RTE_MASKED))
		ioapic_deliver(pin);
	ioapic.level[pin] = level;
	pthread_mutex_unlock(&ioapic.lock);
}

static uint32_t ioapic_read(uint8_t reg)
{
	int pin;

	switch (reg) {
	case REG_ID:
		return ioapic.id << 24;
	case REG_VERSION:
		return (IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION;
	case REG_ARB:
		return ioapic.id << 24;
	}
	if (reg < REG_REDTBL || reg >= REG_REDTBL + 2 * IOAPIC_PINS)
		return 0xffffffff;
	pin = (reg - REG_REDTBL) / 2;
	return ioapic.rte[pin] >> (reg & 1 ? 32 : 0);
}

static void ioapic_write(uint8_t reg, uint32_t val)
{
	uint64_t old, rte;
	int pin;

	if (reg == REG_ID) {
		/* 8 bits, as on later IOAPICs: the MADT's ID is --cpus */
		ioapic.id = val >> 24;
		return;
	}
	if (reg < REG_REDTBL || reg >= REG_REDTBL + 2 * IOAPIC_PINS)
		return;				/* version, arbitration: RO */
	pin = (reg - REG_REDTBL) / 2;
	old = ioapic.rte[pin];
	if (reg & 1)
		rte = (old & 0xffffffffULL) | (uint64_t)val << 32;
	else
		rte = (old & ~0xffffffffULL) | val;
	ioapic.rte[pin] = (rte & RTE_WRITABLE) | (old & ~RTE_WRITABLE);
	/* the polarity changed: what the pin sees changed with it */
	if ((old ^ rte) & RTE_POLARITY)
		ioapic.level[pin] = !ioapic.level[pin];
	/* an asserted level-triggered pin fires again when unmasked */
	if ((old & RTE_MASKED) && !(rte & RTE_MASKED) && (rte & RTE_LEVEL) &&
	    ioapic.level[pin])
		ioapic_deliver(pin);
}

bool ioapic_mmio(uint64_t gpa, bool is_write, uint8_t *data, uint32_t len)
{
	uint64_t off = gpa - IOAPIC_BASE;
	uint32_t v = 0;

	if (gpa < IOAPIC_BASE || off >= IOAPIC_SIZE)
		return false;
	pthread_mutex_lock(&ioapic.lock);
	if (is_write) {
		memcpy(&v, data, len < 4 ? len : 4);
		if (off == IOREGSEL)
			ioapic.sel = v;
		else if (off == IOWIN && len == 4)
			ioapic_write(ioapic.sel, v);
		else if (verbose)
			err("IOAPIC: %u-byte store to offset 0x%llx ignored",
			    len, (unsigned long long)off);
	} else {
		if (off == IOREGSEL)
			v = ioapic.sel;
		else if (off == IOWIN)
			v = ioapic_read(ioapic.sel);
		memset(data, 0, len);
		memcpy(data, &v, len < 4 ? len : 4);
	}
	pthread_mutex_unlock(&ioapic.lock);
	return true;
}
