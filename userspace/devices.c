// SPDX-License-Identifier: GPL-2.0
/*
 * The launcher's port I/O devices: a table of port ranges, each with IN
 * and OUT handlers, looked up by pio_access().  The run loop knows nothing
 * about any device; a device knows nothing about the run loop.
 *
 * MACHINE_FLAT (--flat) has only COM1, as it always had; MACHINE_PC
 * (--kernel) adds what a PC kernel pokes at early: debug exit, POST code,
 * CMOS/RTC, i8042, an empty PCI bus, the absent 8259 PICs and the ACPI
 * sleep and reset registers; COM1 then interrupts through the IOAPIC.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "launcher.h"

static enum machine machine;

struct pio_dev {
	const char *name;
	uint16_t base, len;
	/* @off is port - base; IN returns the value, OUT may end the guest */
	uint32_t (*in)(uint16_t off, uint8_t size);
	bool (*out)(uint16_t off, uint8_t size, uint32_t val, int *status);
};

/* ---- 8250 UART (COM1) ------------------------------------------------- */

#define UART_IER_RDI	0x01		/* receive data available */
#define UART_IER_THRI	0x02		/* transmitter holding register empty */
#define UART_IIR_NONE	0x01
#define UART_IIR_THRI	0x02
#define UART_IIR_RDI	0x04
#define UART_IIR_FIFO	0xc0		/* FIFOs enabled: a 16550A */
#define UART_FCR_FIFO	0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_LCR_DLAB	0x80
#define UART_MCR_OUT2	0x08		/* gates the IRQ line on PC boards */
#define UART_MCR_LOOP	0x10
#define UART_LSR_DR	0x01
#define UART_LSR_IDLE	0x60		/* THRE | TEMT: always ready */
#define UART_FIFO_SIZE	16

/*
 * A 16550A.  Transmitting is instant (the byte goes to stdout), so the
 * holding register is always empty; reading IIR while it reports THRE
 * clears that condition until the next THR write or until IER enables
 * THRI again, as on the real part.  Received bytes come from the input
 * thread through uart_receive() into a 16-byte FIFO (1 byte without
 * FIFOs); the input thread waits while it is full.  The interrupt output
 * goes to IOAPIC pin 4 through MCR OUT2, and a rising edge interrupts.
 *
 * dev_lock protects every device here: each vCPU thread's port accesses
 * and the input thread take it, so one access at a time, in full.
 */
static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t uart_room = PTHREAD_COND_INITIALIZER;

static struct {
	uint8_t ier, lcr, mcr, fcr, scr, dll, dlm;
	bool thre;			/* THRE interrupt condition */
	bool irq;			/* the line as last driven */
	uint8_t rx[UART_FIFO_SIZE];
	unsigned int rx_head, rx_len;
} uart = { .dll = 1 };			/* 115200 baud */

static unsigned int uart_rx_capacity(void)
{
	return uart.fcr & UART_FCR_FIFO ? UART_FIFO_SIZE : 1;
}

/* The highest-priority pending interrupt, as IIR bits 3:0 */
static uint8_t uart_iir_id(void)
{
	if ((uart.ier & UART_IER_RDI) && uart.rx_len)
		return UART_IIR_RDI;
	if ((uart.ier & UART_IER_THRI) && uart.thre)
		return UART_IIR_THRI;
	return UART_IIR_NONE;
}

/* Drive the IRQ line after any change; with dev_lock held. */
static void uart_update_irq(void)
{
	bool irq = machine == MACHINE_PC && uart_iir_id() != UART_IIR_NONE &&
		   (uart.mcr & (UART_MCR_OUT2 | UART_MCR_LOOP)) == UART_MCR_OUT2;

	if (irq != uart.irq) {
		uart.irq = irq;
		ioapic_set_irq(UART_IRQ, irq);
	}
}

void uart_receive(const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&dev_lock);
	while (len) {
		if (uart.rx_len >= uart_rx_capacity()) {
			pthread_cond_wait(&uart_room, &dev_lock);
			continue;
		}
		uart.rx[(uart.rx_head + uart.rx_len++) % UART_FIFO_SIZE] = *buf++;
		len--;
		uart_update_irq();
	}
	pthread_mutex_unlock(&dev_lock);
}

static uint8_t uart_read_rbr(void)
{
	uint8_t c;

	if (!uart.rx_len)
		return 0;
	c = uart.rx[uart.rx_head];
	uart.rx_head = (uart.rx_head + 1) % UART_FIFO_SIZE;
	uart.rx_len--;
	pthread_cond_signal(&uart_room);
	return c;
}

static uint32_t uart_in(uint16_t off, uint8_t size)
{
	uint8_t v, id;

	(void)size;
	switch (off) {
	case 0:
		if (uart.lcr & UART_LCR_DLAB)
			return uart.dll;
		v = uart_read_rbr();
		uart_update_irq();
		return v;
	case 1:
		return uart.lcr & UART_LCR_DLAB ? uart.dlm : uart.ier;
	case 2:
		id = uart_iir_id();
		if (id == UART_IIR_THRI) {
			uart.thre = false;	/* reading it acknowledges it */
			uart_update_irq();
		}
		return id | (uart.fcr & UART_FCR_FIFO ? UART_IIR_FIFO : 0);
	case 3:
		return uart.lcr;
	case 4:
		return uart.mcr;
	case 5:
		return UART_LSR_IDLE | (uart.rx_len ? UART_LSR_DR : 0);
	case 6:
		/* loopback wires DTR, RTS, OUT1, OUT2 to DSR, CTS, RI, DCD */
		if (uart.mcr & UART_MCR_LOOP)
			return (uart.mcr & 0x01) << 5 | (uart.mcr & 0x02) << 3 |
			       (uart.mcr & 0x0c) << 4;
		return 0xb0;		/* DCD, DSR, CTS: a cable is there */
	default:
		return uart.scr;
	}
}

static bool uart_out(uint16_t off, uint8_t size, uint32_t val, int *status)
{
	(void)size;
	(void)status;
	val &= 0xff;
	switch (off) {
	case 0:
		if (uart.lcr & UART_LCR_DLAB) {
			uart.dll = val;
			break;
		}
		if (!(uart.mcr & UART_MCR_LOOP))
			console_out(val);
		uart.thre = true;	/* sent at once: empty again */
		break;
	case 1:
		if (uart.lcr & UART_LCR_DLAB) {
			uart.dlm = val;
			break;
		}
		/* enabling THRI while the THR is empty interrupts */
		if ((val & UART_IER_THRI) && !(uart.ier & UART_IER_THRI))
			uart.thre = true;
		uart.ier = val & 0x0f;
		break;
	case 2:
		if ((val ^ uart.fcr) & UART_FCR_FIFO || val & UART_FCR_CLEAR_RX) {
			uart.rx_len = 0;
			pthread_cond_signal(&uart_room);
		}
		uart.fcr = val & ~0x06;	/* the clear bits self-clear */
		break;
	case 3:
		uart.lcr = val;
		break;
	case 4:
		uart.mcr = val & 0x1f;
		break;
	case 7:
		uart.scr = val;
		break;
	}
	uart_update_irq();
	return false;
}

/* ---- isa-debug-exit, POST code ---------------------------------------- */

/* Like QEMU's isa-debug-exit,iobase=0xf4,iosize=4 */
static bool debug_exit_out(uint16_t off, uint8_t size, uint32_t val,
			   int *status)
{
	(void)off;
	if (size == 1)
		val &= 0xff;
	else if (size == 2)
		val &= 0xffff;
	fflush(stdout);
	if (verbose)
		err("guest wrote 0x%x to the debug exit port", val);
	*status = ((val << 1) | 1) & 0xff;
	return true;
}

static bool ignore_out(uint16_t off, uint8_t size, uint32_t val, int *status)
{
	(void)off;
	(void)size;
	(void)val;
	(void)status;
	return false;
}

static uint32_t ones_in(uint16_t off, uint8_t size)
{
	(void)off;
	(void)size;
	return 0xffffffff;
}

/* ---- CMOS / RTC ------------------------------------------------------- */

static struct {
	uint8_t index;
	uint8_t ram[128];
} cmos;

static uint8_t bcd(int v)
{
	return (v / 10) << 4 | v % 10;
}

static uint32_t cmos_in(uint16_t off, uint8_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	(void)size;
	if (off == 0)
		return 0xff;
	gmtime_r(&now, &tm);
	switch (cmos.index) {
	case 0x00: return bcd(tm.tm_sec);
	case 0x02: return bcd(tm.tm_min);
	case 0x04: return bcd(tm.tm_hour);
	case 0x06: return bcd(tm.tm_wday + 1);
	case 0x07: return bcd(tm.tm_mday);
	case 0x08: return bcd(tm.tm_mon + 1);
	case 0x09: return bcd(tm.tm_year % 100);
	case 0x32: return bcd(19 + tm.tm_year / 100);
	case 0x0a: return 0x26;		/* 32 kHz base, 1 kHz; no update now */
	case 0x0b: return 0x02;		/* 24-hour, BCD, no interrupts */
	case 0x0c: return 0x00;		/* no interrupt flags */
	case 0x0d: return 0x80;		/* battery good */
	}
	return cmos.ram[cmos.index];
}

static bool cmos_out(uint16_t off, uint8_t size, uint32_t val, int *status)
{
	(void)size;
	(void)status;
	if (off == 0)
		cmos.index = val & 0x7f;	/* bit 7 masks NMIs */
	else if (cmos.index > 0x0d)		/* the clock is read-only */
		cmos.ram[cmos.index] = val;
	return false;
}

/* ---- i8042 ------------------------------------------------------------ */

#define I8042_STR_OBF		0x01
#define I8042_STR_SYS		0x04
#define I8042_CMD_RCTR		0x20
#define I8042_CMD_WCTR		0x60
#define I8042_CMD_SELFTEST	0xaa
#define I8042_CMD_WOUT		0xd1
#define I8042_CMD_RESET		0xfe

/* A controller with no keyboard or mouse, so its probe finds nothing. */
static struct {
	uint8_t ctr, out, pending;
	bool obf;
} kbc = { .ctr = 0x30 };		/* both ports disabled */

static bool kbc_reset(int *status)
{
	fflush(stdout);
	err("guest reset");
	*status = 0;
	return true;
}

static uint32_t kbc_in(uint16_t off, uint8_t size)
{
	(void)size;
	if (off == 4)
		return I8042_STR_SYS | (kbc.obf ? I8042_STR_OBF : 0);
	kbc.obf = false;
	return kbc.out;
}

static bool kbc_out(uint16_t off, uint8_t size, uint32_t val, int *status)
{
	(void)size;
	val &= 0xff;
	if (off == 0) {
		if (kbc.pending == I8042_CMD_WCTR)
			kbc.ctr = val;
		else if (kbc.pending == I8042_CMD_WOUT && !(val & 1))
			return kbc_reset(status);	/* bit 0 is CPU reset */
		kbc.pending = 0;	/* else a byte for an absent device */
		return false;
	}
	kbc.pending = 0;
	switch (val) {
	case I8042_CMD_RCTR:
		kbc.out = kbc.ctr;
		kbc.obf = true;
		break;
	case I8042_CMD_SELFTEST:
		kbc.out = 0x55;
		kbc.obf = true;
		break;
	case I8042_CMD_WCTR:
	case I8042_CMD_WOUT:
		kbc.pending = val;
		break;
	case I8042_CMD_RESET:
		return kbc_reset(status);
	}
	return false;
}

/* ---- PCI configuration mechanism #1, with no devices ----------------- */

static uint32_t pci_addr;

static uint32_t pci_in(uint16_t off, uint8_t size)
{
	/* the address latch reads back, as on real chipsets */
	if (off == 0 && size == 4)
		return pci_addr;
	return 0xffffffff;
}

static bool pci_out(uint16_t off, uint8_t size, uint32_t val, int *status)
{
	(void)status;
	if (off == 0 && size == 4)
		pci_addr = val;
	return false;
}

/* ---- the 8259 PICs: absent ------------------------------------------- */

/*
 * There is no PIC: the IOAPIC is the only interrupt controller.  Its mask
 * registers read all ones whatever was written, so Linux's probe_8259A
 * (which writes 0xfb to 0x21 and reads it back) picks the NULL legacy
 * PIC.  A table entry rather than the default, to say so (and to keep
 * -v quiet about them).
 */
static uint32_t no_pic_in(uint16_t off, uint8_t size)
{
	(void)off;
	(void)size;
	return 0xff;
}

/* ---- ACPI sleep control/status and reset registers -------------------- */

#define SLP_TYP(v)	(((v) >> 2) & 7)
#define SLP_EN		0x20
#define SLP_TYP_S5	5		/* the DSDT's _S5 package */

static uint32_t acpi_pm_in(uint16_t off, uint8_t size)
{
	(void)off;
	(void)size;
	return 0;			/* never sleeping, so WAK_STS is 0 */
}

static bool acpi_pm_out(uint16_t off, uint8_t size, uint32_t val, int *status)
{
	(void)size;
	val &= 0xff;
	switch (off + ACPI_SLEEP_CTL_PORT) {
	case ACPI_SLEEP_CTL_PORT:
		if (!(val & SLP_EN))
			break;
		if (SLP_TYP(val) == SLP_TYP_S5) {
			fflush(stdout);
			err("guest powered off");
			*status = 0;
			return true;
		}
		if (verbose)
			err("guest asked for sleep type %u: not supported, ignored",
			    SLP_TYP(val));
		break;
	case ACPI_RESET_PORT:
		if (val == ACPI_RESET_VALUE)
			return kbc_reset(status);
		break;
	}
	return false;
}

/* ---- dispatch --------------------------------------------------------- */

static const struct pio_dev uart_dev = {
	"com1", 0x3f8, 8, uart_in, uart_out,
};

static const struct pio_dev pc_devs[] = {
	{ "i8042", 0x60, 5, kbc_in, kbc_out },
	{ "cmos", 0x70, 2, cmos_in, cmos_out },
	{ "post", 0x80, 1, ones_in, ignore_out },
	{ "debug-exit", 0xf4, 4, ones_in, debug_exit_out },
	{ "pci", 0xcf8, 8, pci_in, pci_out },
	{ "pic1", 0x20, 2, no_pic_in, ignore_out },
	{ "pic2", 0xa0, 2, no_pic_in, ignore_out },
	{ "acpi-pm", ACPI_SLEEP_CTL_PORT, 3, acpi_pm_in, acpi_pm_out },
};

void devices_init(enum machine m)
{
	machine = m;
}

static bool in_range(const struct pio_dev *d, uint16_t port)
{
	return port >= d->base && port - d->base < d->len;
}

static const struct pio_dev *find_dev(uint16_t port)
{
	size_t i;

	if (in_range(&uart_dev, port))
		return &uart_dev;
	if (machine != MACHINE_PC)
		return NULL;
	for (i = 0; i < sizeof(pc_devs) / sizeof(pc_devs[0]); i++)
		if (in_range(&pc_devs[i], port))
			return &pc_devs[i];
	return NULL;
}

static bool pio_access_locked(uint16_t port, uint8_t size, bool is_out,
			      uint32_t *val, int *status)
{
	const struct pio_dev *d = find_dev(port);

	/* i8042 is two ports five apart: 0x61-0x63 are not its */
	if (d && !strcmp(d->name, "i8042") && port != 0x60 && port != 0x64)
		d = NULL;
	if (!d) {
		if (is_out) {
			if (verbose)
				err("OUT port 0x%04x size %u value 0x%x: ignored",
				    port, size, *val);
			return false;
		}
		if (verbose)
			err("IN port 0x%04x size %u: returning all ones",
			    port, size);
		*val = 0xffffffff;
		return false;
	}
	if (is_out)
		return d->out(port - d->base, size, *val, status);
	*val = d->in(port - d->base, size);
	return false;
}

/*
 * A device that ends the guest ends the VM before dev_lock is dropped,
 * so no other vCPU's access lands after it (no console output after
 * "guest powered off", no second power-off).
 */
bool pio_access(uint16_t port, uint8_t size, bool is_out, uint32_t *val,
		int *status)
{
	bool ret = true;

	pthread_mutex_lock(&dev_lock);
	if (!machine_ended()) {
		ret = pio_access_locked(port, size, is_out, val, status);
		if (ret)
			machine_end(*status);
	}
	pthread_mutex_unlock(&dev_lock);
	return ret;
}
