// SPDX-License-Identifier: GPL-2.0
/*
 * kestrel - run a flat binary or a kernel in a Kestrel virtual machine.
 *
 *   kestrel run --flat FILE [--mode real|long] [--mem SIZE] [--load ADDR]
 *               [--name NAME]
 *   kestrel run --kernel FILE [--initrd FILE] [--append CMDLINE]
 *               [--mem SIZE] [--cpus N] [--name NAME]  (boot.c, devices.c)
 *   kestrel ps | stats | events     (control.c: every VM on the host)
 *
 * RAM at guest-physical 0 and a minimal COM1: bytes written to its data
 * port go to stdout.  See usage() for the exact machine state.  Each vCPU
 * is a thread of its own running the RUN loop; vCPU 0 is the main thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/kestrel.h>

#include "control.h"
#include "launcher.h"

#ifndef KESTREL_VERSION
#define KESTREL_VERSION		"0.1.0"
#endif

#define KESTREL_DEV		"/dev/kestrel"

#define PAGE_SIZE		4096ULL
#define DEFAULT_MEM		(16ULL << 20)
#define MIN_MEM			(1ULL << 20)
#define MAX_MEM			(1ULL << 40)

/*
 * --cpus: the MADT, with one 8-byte entry per CPU before the DSDT at
 * 0xe1000, has room for hundreds; 64 keeps the APIC and IOAPIC IDs
 * (0..N) in xAPIC range and matches what the module offers today.
 */
#define MAX_CPUS		64

/* Kicks a vCPU thread out of KESTREL_RUN; its handler does nothing. */
#define SIG_KICK		SIGUSR1

/* Real mode: CS = DS = ES = FS = GS = SS = 0 */
#define REAL_DEFAULT_LOAD	0x7c00		/* where a BIOS puts a boot sector */
#define REAL_STACK_TOP		0xfff0		/* top of the 64 KiB segment */

/* Long mode: the launcher's GDT and page tables, then the stack */
#define LONG_DEFAULT_LOAD	0x100000
#define LM_GDT			0x1000
#define LM_PML4			0x2000
#define LM_PDPT			0x3000
#define LM_PD			0x4000
#define LM_RESERVED_END		0x5000
#define LM_STACK_TOP		0x80000
#define LM_SEL_CODE		0x08
#define LM_SEL_DATA		0x10

#define X86_CR0_PE		(1ULL << 0)
#define X86_CR0_MP		(1ULL << 1)
#define X86_CR0_ET		(1ULL << 4)
#define X86_CR0_NE		(1ULL << 5)
#define X86_CR0_WP		(1ULL << 16)
#define X86_CR0_PG		(1ULL << 31)
#define X86_CR4_PAE		(1ULL << 5)
#define X86_EFER_LME		(1ULL << 8)
#define X86_EFER_LMA		(1ULL << 10)

enum mode { MODE_REAL, MODE_LONG };

struct options {
	const char *file;		/* --flat or --kernel */
	bool kernel;			/* --kernel: boot.c loads it */
	const char *initrd;
	const char *append;
	const char *name;		/* --name, else from the file name */
	enum mode mode;
	uint64_t mem;
	uint64_t load;
	bool load_set;
	unsigned int cpus;		/* --cpus, 1 without it */
	bool cpus_set;
	bool verbose;
};

struct vcpu {
	unsigned int id;
	int fd;
	struct kestrel_run *run;
	pthread_t thread;
	bool started;			/* thread runs its loop (end_lock) */
};

struct vm {
	int sys, fd;
	uint8_t *mem;
	uint64_t mem_size;
	long run_size;
	bool pc;			/* --kernel: the PC machine */
	unsigned int nr_vcpus;
	struct vcpu *vcpus;
};


static const char *prog = "kestrel";
bool verbose;

/*
 * Set by SIGINT/SIGTERM, which only vCPU 0's thread (the main thread)
 * takes; the handler also kicks that vCPU out of RUN, and its loop then
 * ends the VM.
 */
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t stop_by_key;	/* Ctrl-A x, not a signal */
static struct kestrel_run *volatile kick_run;

/*
 * How the VM ended.  The first vCPU (or device, or signal) to end it sets
 * the status under end_lock and kicks every vCPU thread; "ended" is also
 * read without the lock, by vCPU loops and the console.
 */
static pthread_mutex_t end_lock = PTHREAD_MUTEX_INITIALIZER;
static bool ended;
static int end_status;
static struct vm *the_vm;

/* The VM fd for KESTREL_SIGNAL_MSI from any thread; -1 before it exists */
static int msi_fd = -1;

/* When the launcher started, for the time to the guest's userspace */
static struct timespec start_time;

/*
 * Launcher messages and guest console bytes come from several threads:
 * holding stdout's lock (recursive) across the flush and the message
 * keeps a message from landing inside console output that is still
 * buffered, and several lines of one report together.
 */
void output_lock(void)
{
	flockfile(stdout);
	flockfile(stderr);
}

void output_unlock(void)
{
	funlockfile(stderr);
	funlockfile(stdout);
}

void err(const char *fmt, ...)
{
	va_list ap;

	output_lock();
	fflush(stdout);		/* keep guest output before our messages */
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	output_unlock();
}

bool machine_ended(void)
{
	return __atomic_load_n(&ended, __ATOMIC_ACQUIRE);
}

/*
 * A vCPU sleeping in HLT or wait-for-SIPI inside RUN only comes back for
 * a signal; one running or about to call RUN sees immediate_exit.  So
 * both, for every vCPU (the caller's own included: it is not in RUN).
 */
static void kick_all(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (v->started && !pthread_equal(v->thread, pthread_self()))
			pthread_kill(v->thread, SIG_KICK);
	}
}

bool machine_end(int status)
{
	bool first;

	pthread_mutex_lock(&end_lock);
	first = !ended;
	if (first) {
		end_status = status;
		__atomic_store_n(&ended, true, __ATOMIC_RELEASE);
		if (the_vm)
			kick_all(the_vm);
	}
	pthread_mutex_unlock(&end_lock);
	return first;
}

int signal_msi(uint64_t address, uint32_t data)
{
	struct kestrel_msi msi;

	if (msi_fd < 0) {
		errno = ENXIO;
		return -1;
	}
	memset(&msi, 0, sizeof(msi));
	msi.address = address;
	msi.data = data;
	return ioctl(msi_fd, KESTREL_SIGNAL_MSI, &msi);
}

/* ---- the time to the guest's userspace --------------------------------- */

/*
 * Linux 6.1 and 6.12 print "Run /init as init process" (KERN_INFO) just
 * before they exec init: the first console byte after that line is the
 * first one userspace can have written.  With "quiet" the line is not
 * printed, and nothing is measured.
 */
#define INIT_LINE_START		"Run "
#define INIT_LINE_END		" as init process"

static struct {
	char line[256];
	size_t len;
	bool seen_init_line, done;
} watch;

static double seconds_since_start(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start_time.tv_sec) +
	       (now.tv_nsec - start_time.tv_nsec) / 1e9;
}

static void watch_console(uint8_t c)
{
	if (watch.seen_init_line) {
		watch.done = true;
		err("time to guest userspace: %.3f s (first console byte after the kernel's \"Run ... as init process\")",
		    seconds_since_start());
		return;
	}
	if (c != '\n') {
		if (watch.len < sizeof(watch.line) - 1)
			watch.line[watch.len++] = c;
		return;
	}
	watch.line[watch.len] = '\0';
	watch.len = 0;
	if (strstr(watch.line, INIT_LINE_START) &&
	    strstr(watch.line, INIT_LINE_END))
		watch.seen_init_line = true;
}

/*
 * With dev_lock held (devices.c), so bytes leave in the order the vCPUs
 * wrote them.  Nothing is printed once the VM has ended: the message
 * saying why stays the last line.
 */
void console_out(uint8_t c)
{
	if (machine_ended())
		return;
	output_lock();
	if (!watch.done)
		watch_console(c);
	fputc(c, stdout);
	output_unlock();
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: kestrel run --flat FILE [--mode real|long] [--mem SIZE] [--load ADDR]\n"
"                   [--name NAME] [-v]\n"
"       kestrel run --kernel FILE [--initrd FILE] [--append CMDLINE]\n"
"                   [--mem SIZE] [--cpus N] [--name NAME] [-v]\n"
"%s"
"       kestrel --version | --help\n"
"\n"
"Run a flat binary or a kernel in a Kestrel virtual machine (" KESTREL_DEV "):\n"
"one vCPU (--kernel: N), RAM from guest-physical address 0, and a COM1 port.\n"
"\n"
"Options for run:\n"
"  --flat FILE    the image: raw machine code, copied unchanged to ADDR\n"
"  --mode MODE    real (default): 16-bit real mode; CS = DS = ES = FS = GS =\n"
"                 SS = 0, IP = ADDR, SP = 0xfff0.  ADDR must be below\n"
"                 0x10000; the image and the stack share the first 64 KiB.\n"
"                 long: 64-bit mode with paging; the first 1 GiB is identity\n"
"                 mapped with 2 MiB pages; CS = 0x08 (64-bit code), DS = ES =\n"
"                 FS = GS = SS = 0x10 (flat data), RIP = ADDR, RSP = 0x80000.\n"
"                 The launcher's GDT and page tables occupy 0x1000-0x4fff.\n"
"  --mem SIZE     guest RAM (default 16M): bytes or a number with a K, M or G\n"
"                 suffix; a multiple of 4K, from 1M to 1024G\n"
"  --load ADDR    guest-physical load address, decimal or 0x hex (default\n"
"                 0x7c00 in real mode, 0x100000 in long mode)\n"
"  --kernel FILE  boot a kernel instead: a Multiboot v1 kernel (ELF32 or\n"
"                 a.out kludge), entered in 32-bit protected mode with\n"
"                 EAX = 0x2badb002 and EBX = the info structure, or a Linux\n"
"                 bzImage (boot protocol 2.12+, 64-bit), entered at its\n"
"                 64-bit entry point with RSI = boot_params.  The machine\n"
"                 then also has the PC devices listed below.\n"
"  --initrd FILE  the initial ramdisk (Linux) or the one module (Multiboot)\n"
"  --append LINE  the kernel command line (default: empty)\n"
"  --cpus N       vCPUs for --kernel, 1 (default) to %d and the module's\n"
"                 limit; vCPU 0 boots, the others wait for INIT and SIPI,\n"
"                 and the ACPI MADT lists N local APICs (IDs 0 to N-1)\n"
"  --name NAME    the VM's name for kestrel ps and events: up to 31 of\n"
"                 [A-Za-z0-9._-] (default: the image's file name)\n"
"  -v, --verbose  report unhandled port I/O and how the guest ended\n"
"\n"
"%s"
"\n"
"Guest port I/O:\n"
"  OUT to 0x3f8 (COM1 data)   the byte goes to standard output\n"
"  IN from 0x3fd (COM1 LSR)   0x60: the transmitter is always ready\n"
"  any other IN               all ones\n"
"  any other OUT              ignored (shown on stderr with -v)\n"
"With --kernel the machine is a small PC with ACPI tables (hardware-reduced,\n"
"at 0xe0000), the in-kernel local APIC when the module has one, an IOAPIC at\n"
"0xfec00000 and no 8259.  COM1 is a 16550A (0x3f8-0x3ff) interrupting on\n"
"IRQ 4; standard input is its input (a terminal is put in raw mode: Ctrl-A x\n"
"quits).  The launcher prints on stderr the time to a Linux guest's first\n"
"userspace output.  There are also:\n"
"  0xf4 (debug exit)          OUT of V ends the launcher with status\n"
"                             (V << 1) | 1, like QEMU's isa-debug-exit\n"
"  0x80 (POST code)           ignored\n"
"  0x70, 0x71 (CMOS/RTC)      the current UTC time, BCD, 24-hour\n"
"  0x60, 0x64 (i8042)         no keyboard; command 0xfe (reset) ends the\n"
"                             launcher with status 0 ('guest reset')\n"
"  0xcf8-0xcff (PCI)          an empty bus: config data reads all ones\n"
"  0x20-0x21, 0xa0-0xa1       no PIC: reads 0xff\n"
"  0x600, 0x601, 0x602        ACPI sleep control, status, reset: power off\n"
"                             and reset end the launcher with status 0\n"
"\n"
"Exit status: 0 the guest executed HLT (without an in-kernel APIC), powered\n"
"off or reset; 1 a launcher or host error;\n"
"2 the guest triple-faulted; 3 Kestrel could not run the guest (internal\n"
"error, failed entry); 130 or 143 stopped by SIGINT or SIGTERM.\n",
		control_usage, MAX_CPUS, control_help);
}

/* ---- argument parsing ------------------------------------------------ */

/* "16M", "512k", "1G", "1048576": a byte count, no overflow */
static bool parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	switch (*end) {
	case 'k': case 'K':
		shift = 10;
		end++;
		break;
	case 'm': case 'M':
		shift = 20;
		end++;
		break;
	case 'g': case 'G':
		shift = 30;
		end++;
		break;
	}
	if (*end)
		return false;
	if (shift && v > (ULLONG_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

static bool parse_addr(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

/* A plain decimal number */
static bool parse_count(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* What KESTREL_CREATE_VM accepts, and not empty. */
static bool name_valid(const char *s)
{
	size_t n = strlen(s), i;

	if (!n || n >= KESTREL_VM_NAME_LEN)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

static int parse_run_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "flat", required_argument, NULL, 'f' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "mode", required_argument, NULL, 'm' },
		{ "mem", required_argument, NULL, 's' },
		{ "load", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool mode_set = false;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->mode = MODE_REAL;
	o->mem = DEFAULT_MEM;
	o->cpus = 1;
	opterr = 0;		/* our own messages */
	optind = 1;
	while ((c = getopt_long(argc, argv, ":vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
		case 'k':
			if (o->file) {
				err("--flat and --kernel: give one image");
				return -1;
			}
			o->file = optarg;
			o->kernel = c == 'k';
			break;
		case 'i':
			o->initrd = optarg;
			break;
		case 'a':
			o->append = optarg;
			break;
		case 'm':
			mode_set = true;
			if (!strcmp(optarg, "real")) {
				o->mode = MODE_REAL;
			} else if (!strcmp(optarg, "long")) {
				o->mode = MODE_LONG;
			} else {
				err("--mode: '%s' is not 'real' or 'long'",
				    optarg);
				return -1;
			}
			break;
		case 's':
			if (!parse_size(optarg, &o->mem)) {
				err("--mem: bad size '%s' (try 16M, 512K, 1G)",
				    optarg);
				return -1;
			}
			break;
		case 'l':
			if (!parse_addr(optarg, &o->load)) {
				err("--load: bad address '%s' (try 0x7c00)",
				    optarg);
				return -1;
			}
			o->load_set = true;
			break;
		case 'n':
			if (!name_valid(optarg)) {
				err("--name: '%s' is not 1 to %d of [A-Za-z0-9._-]",
				    optarg, KESTREL_VM_NAME_LEN - 1);
				return -1;
			}
			o->name = optarg;
			break;
		case 'c':
			if (!parse_count(optarg, &v) || v < 1 || v > MAX_CPUS) {
				err("--cpus: '%s' is not a number of vCPUs from 1 to %d",
				    optarg, MAX_CPUS);
				return -1;
			}
			o->cpus = v;
			o->cpus_set = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			err("option '%s' needs an argument", argv[optind - 1]);
			return -1;
		default:
			err("unknown option '%s'", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		err("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (!o->file) {
		err("run: --flat FILE or --kernel FILE is required");
		return -1;
	}
	if (!o->kernel && (o->initrd || o->append)) {
		err("--initrd and --append go with --kernel, not --flat");
		return -1;
	}
	if (!o->kernel && o->cpus_set) {
		err("--cpus goes with --kernel: a --flat guest runs on one vCPU (nothing would start the others)");
		return -1;
	}
	if (o->kernel && (o->load_set || mode_set)) {
		err("--mode and --load go with --flat: a kernel says where it goes");
		return -1;
	}
	if (o->mem % PAGE_SIZE || o->mem < MIN_MEM || o->mem > MAX_MEM) {
		err("--mem: %llu bytes is not a multiple of 4K from 1M to 1024G",
		    (unsigned long long)o->mem);
		return -1;
	}
	if (!o->load_set)
		o->load = o->mode == MODE_REAL ? REAL_DEFAULT_LOAD :
						 LONG_DEFAULT_LOAD;
	if (o->mode == MODE_REAL && o->load >= 0x10000) {
		err("--load: 0x%llx: real mode starts at CS:IP = 0000:ADDR, so ADDR must be below 0x10000",
		    (unsigned long long)o->load);
		return -1;
	}
	return 0;
}

/* ---- the VM ---------------------------------------------------------- */

static int open_dev(void)
{
	int fd = open(KESTREL_DEV, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOENT:
		err("%s does not exist: is the kestrel module loaded? (modprobe kestrel)",
		    KESTREL_DEV);
		break;
	case ENODEV:
	case ENXIO:
		err("%s: no device behind the node: the kestrel module is not loaded",
		    KESTREL_DEV);
		break;
	case EACCES:
	case EPERM:
		err("%s: permission denied: run as root or get access to the device",
		    KESTREL_DEV);
		break;
	default:
		err("cannot open %s: %s", KESTREL_DEV, strerror(errno));
		break;
	}
	return -1;
}

/* The VM name: the image's file name, limited to [A-Za-z0-9._-] */
static void vm_name(const char *file, char *name, size_t size)
{
	const char *base = strrchr(file, '/');
	size_t i;

	base = base ? base + 1 : file;
	for (i = 0; i + 1 < size && base[i]; i++) {
		char c = base[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			c = '_';
		name[i] = c;
	}
	name[i] = '\0';
}

#define CPUID_EXT_POWER		0x80000007
#define CPUID_INVARIANT_TSC	(1U << 8)	/* EDX */
#define MAX_CPUID_ENTRIES	256		/* what KESTREL_SET_CPUID takes */

/*
 * Linux on an AMD CPU takes the TSCs of several CPUs for unsynchronized,
 * and says so ("Marking TSC unstable"), unless CPUID promises an invariant
 * TSC.  A Kestrel guest's TSC is the host's plus one offset for the whole
 * VM, the same on every vCPU, and every CPU Kestrel runs on (SVM with
 * nested paging: AMD family 10h on; VMX with EPT) has a constant-rate,
 * non-stop TSC, even where an emulator's CPU model does not say so.  So
 * promise it, in each vCPU's table (the kernel's, with the vCPU's APIC
 * ID).  One vCPU keeps the default table: nothing to synchronize there.
 */
static int set_invariant_tsc(struct vcpu *v)
{
	struct kestrel_cpuid *c;
	struct kestrel_cpuid_entry *e = NULL;
	uint32_t i, ext_max = 0;
	int ret = -1;

	c = calloc(1, sizeof(*c) + MAX_CPUID_ENTRIES * sizeof(c->entries[0]));
	if (!c) {
		err("out of memory");
		return -1;
	}
	c->nent = MAX_CPUID_ENTRIES - 1;	/* room for one more */
	if (ioctl(v->fd, KESTREL_GET_CPUID, c)) {
		err("KESTREL_GET_CPUID (vCPU %u): %s", v->id, strerror(errno));
		goto out;
	}
	for (i = 0; i < c->nent; i++) {
		if (c->entries[i].function == 0x80000000)
			ext_max = c->entries[i].eax;
		if (c->entries[i].function == CPUID_EXT_POWER)
			e = &c->entries[i];
	}
	ret = 0;
	if (ext_max < CPUID_EXT_POWER)
		goto out;		/* a leaf the guest never reads */
	if (!e) {
		e = &c->entries[c->nent++];
		memset(e, 0, sizeof(*e));
		e->function = CPUID_EXT_POWER;
	}
	e->edx |= CPUID_INVARIANT_TSC;
	if (ioctl(v->fd, KESTREL_SET_CPUID, c)) {
		err("KESTREL_SET_CPUID (vCPU %u): %s", v->id, strerror(errno));
		ret = -1;
	}
out:
	free(c);
	return ret;
}

/*
 * vCPU @id, its run structure mapped.  Application processors (id >= 1)
 * wait for INIT and SIPI, as firmware leaves them: the guest's boot CPU
 * starts them when it brings up SMP.
 */
static int create_vcpu(struct vm *vm, unsigned int id, unsigned int n)
{
	struct vcpu *v = &vm->vcpus[id];
	struct kestrel_mp_state mp = { .state = KESTREL_MP_STATE_WAIT_SIPI };

	v->id = id;
	v->fd = ioctl(vm->fd, KESTREL_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		err("KESTREL_CREATE_VCPU %u: %s", id, strerror(errno));
		return -1;
	}
	v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->fd, 0);
	if (v->run == MAP_FAILED) {
		err("cannot map vCPU %u's run structure: %s", id,
		    strerror(errno));
		return -1;
	}
	/* counted only once it can be kicked (machine_end) */
	vm->nr_vcpus = id + 1;
	if (id && ioctl(v->fd, KESTREL_SET_MP_STATE, &mp)) {
		err("KESTREL_SET_MP_STATE (vCPU %u, wait for SIPI): %s", id,
		    strerror(errno));
		return -1;
	}
	return n > 1 ? set_invariant_tsc(v) : 0;
}

/*
 * More vCPUs than the module allows per VM fail with EINVAL only at the
 * first one too many; say so up front instead.
 */
static int check_cpus(const struct vm *vm, const struct options *o)
{
	long max = ioctl(vm->sys, KESTREL_CHECK_CAP, KESTREL_CAP_MAX_VCPUS);

	if (max < 0) {
		err("KESTREL_CHECK_CAP(MAX_VCPUS): %s", strerror(errno));
		return -1;
	}
	if (o->cpus > max) {
		err("--cpus %u: the kestrel module allows at most %ld vCPUs per VM",
		    o->cpus, max);
		return -1;
	}
	return 0;
}

static int create_vm(struct vm *vm, const struct options *o)
{
	struct kestrel_create_vm cvm;
	struct kestrel_memory_region region;
	unsigned int i;
	long version;

	vm->sys = open_dev();
	if (vm->sys < 0)
		return -1;
	version = ioctl(vm->sys, KESTREL_GET_API_VERSION, 0UL);
	if (version != KESTREL_API_VERSION) {
		if (version < 0)
			err("KESTREL_GET_API_VERSION: %s", strerror(errno));
		else
			err("the kestrel module speaks API version %ld, this launcher version %d: rebuild one of them",
			    version, KESTREL_API_VERSION);
		return -1;
	}
	if (check_cpus(vm, o))
		return -1;

	memset(&cvm, 0, sizeof(cvm));
	if (o->name)
		snprintf(cvm.name, sizeof(cvm.name), "%s", o->name);
	else
		vm_name(o->file, cvm.name, sizeof(cvm.name));
	vm->fd = ioctl(vm->sys, KESTREL_CREATE_VM, &cvm);
	if (vm->fd < 0) {
		if (errno == EBUSY)
			err("cannot create a VM: another hypervisor (kvm_amd or kvm_intel with VMs running, VirtualBox, ...) holds the CPU's virtualization; stop it and retry (dmesg says more)");
		else
			err("cannot create a VM: %s (dmesg may say more)",
			    strerror(errno));
		return -1;
	}

	vm->mem_size = o->mem;
	vm->mem = mmap(NULL, o->mem, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED) {
		err("cannot allocate %llu bytes of guest memory: %s",
		    (unsigned long long)o->mem, strerror(errno));
		return -1;
	}
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = o->mem;
	region.userspace_addr = (uintptr_t)vm->mem;
	if (ioctl(vm->fd, KESTREL_SET_MEMORY_REGION, &region)) {
		err("cannot give the VM its memory: KESTREL_SET_MEMORY_REGION: %s",
		    strerror(errno));
		return -1;
	}

	/*
	 * The PC machine's local APICs are the kernel's; they must come
	 * before the vCPUs.  Their CPUID bits, each vCPU's APIC ID, and the
	 * TSC rate Linux needs (kvmclock) are in the kernel's default CPUID
	 * table.
	 */
	if (o->kernel) {
		if (ioctl(vm->fd, KESTREL_CREATE_IRQCHIP, 0UL)) {
			err("KESTREL_CREATE_IRQCHIP: %s", strerror(errno));
			return -1;
		}
		msi_fd = vm->fd;
	}

	vm->run_size = ioctl(vm->sys, KESTREL_GET_VCPU_MMAP_SIZE, 0UL);
	if (vm->run_size < (long)sizeof(struct kestrel_run)) {
		err("KESTREL_GET_VCPU_MMAP_SIZE: %s",
		    vm->run_size < 0 ? strerror(errno) : "too small");
		return -1;
	}
	vm->vcpus = calloc(o->cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		err("out of memory");
		return -1;
	}
	for (i = 0; i < o->cpus; i++)
		if (create_vcpu(vm, i, o->cpus))
			return -1;
	return 0;
}

static int load_image(struct vm *vm, const struct options *o)
{
	struct stat st;
	uint64_t size, done = 0;
	int fd;

	fd = open(o->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err("%s: %s", o->file, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st)) {
		err("%s: %s", o->file, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err("%s: not a regular file", o->file);
		goto fail;
	}
	size = st.st_size;
	if (!size) {
		err("%s: empty file", o->file);
		goto fail;
	}
	if (o->load >= vm->mem_size || size > vm->mem_size - o->load) {
		err("%s: %llu bytes at 0x%llx do not fit in %llu bytes of guest memory (see --mem, --load)",
		    o->file, (unsigned long long)size,
		    (unsigned long long)o->load,
		    (unsigned long long)vm->mem_size);
		goto fail;
	}
	if (o->mode == MODE_LONG && o->load < LM_RESERVED_END &&
	    o->load + size > LM_GDT) {
		err("%s: at 0x%llx the image would overwrite the launcher's GDT and page tables at 0x%x-0x%x (see --load)",
		    o->file, (unsigned long long)o->load, LM_GDT,
		    LM_RESERVED_END - 1);
		goto fail;
	}
	while (done < size) {
		ssize_t n = read(fd, vm->mem + o->load + done, size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err("%s: read: %s", o->file,
			    n ? strerror(errno) : "file shrank");
			goto fail;
		}
		done += n;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

static void segment(struct kestrel_segment *s, uint16_t sel, uint8_t type,
		    uint32_t limit, bool big)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->type = type;
	s->limit = limit;
	s->present = 1;
	s->s = 1;
	s->db = big;
	s->g = big;
}

/* GDT, and page tables identity-mapping the first 1 GiB in 2 MiB pages */
static void build_long_mode(struct vm *vm)
{
	uint64_t *gdt = (uint64_t *)(vm->mem + LM_GDT);
	uint64_t *pml4 = (uint64_t *)(vm->mem + LM_PML4);
	uint64_t *pdpt = (uint64_t *)(vm->mem + LM_PDPT);
	uint64_t *pd = (uint64_t *)(vm->mem + LM_PD);
	int i;

	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffULL;	/* 64-bit code, DPL 0 */
	gdt[2] = 0x00cf93000000ffffULL;	/* flat data */
	pml4[0] = LM_PDPT | 0x3;	/* present, writable */
	pdpt[0] = LM_PD | 0x3;
	for (i = 0; i < 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;	/* + PS */
}

/* The boot CPU's entry state: only vCPU 0 gets one. */
static int setup_vcpu(struct vm *vm, const struct options *o)
{
	int fd = vm->vcpus[0].fd;
	struct kestrel_sregs s;
	struct kestrel_regs r;

	if (ioctl(fd, KESTREL_GET_SREGS, &s)) {
		err("KESTREL_GET_SREGS: %s", strerror(errno));
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rip = o->load;
	if (o->kernel) {
		struct boot_args a = {
			.kernel = o->file,
			.initrd = o->initrd,
			.cmdline = o->append ? o->append : "",
			.ncpus = o->cpus,
		};

		if (boot_kernel(vm->mem, vm->mem_size, &a, &r, &s))
			return -1;
	} else if (o->mode == MODE_REAL) {
		segment(&s.cs, 0, 0xb, 0xffff, false);
		segment(&s.ds, 0, 0x3, 0xffff, false);
		r.rsp = REAL_STACK_TOP;
	} else {
		build_long_mode(vm);
		segment(&s.cs, LM_SEL_CODE, 0xb, 0xffffffff, true);
		s.cs.l = 1;
		s.cs.db = 0;
		segment(&s.ds, LM_SEL_DATA, 0x3, 0xffffffff, true);
		memset(&s.gdt, 0, sizeof(s.gdt));
		s.gdt.base = LM_GDT;
		s.gdt.limit = 3 * 8 - 1;
		s.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE |
			X86_CR0_WP | X86_CR0_PG;
		s.cr3 = LM_PML4;
		s.cr4 = X86_CR4_PAE;
		s.efer = X86_EFER_LME | X86_EFER_LMA;
		r.rsp = LM_STACK_TOP;
		s.es = s.fs = s.gs = s.ss = s.ds;
	}
	if (ioctl(fd, KESTREL_SET_SREGS, &s)) {
		err("KESTREL_SET_SREGS: %s", strerror(errno));
		return -1;
	}
	if (ioctl(fd, KESTREL_SET_REGS, &r)) {
		err("KESTREL_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- running --------------------------------------------------------- */

static void stop_handler(int sig)
{
	stop_signal = sig;
	if (kick_run)
		kick_run->immediate_exit = 1;
}

/* Only interrupts the system call: machine_end() set immediate_exit. */
static void kick_handler(int sig)
{
	(void)sig;
}

static int install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stop_handler;	/* no SA_RESTART: RUN returns EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
		err("sigaction: %s", strerror(errno));
		return -1;
	}
	sa.sa_handler = kick_handler;
	if (sigaction(SIG_KICK, &sa, NULL)) {
		err("sigaction: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* From @v's own thread: another would wait for its RUN to return. */
static void dump_state(const struct vcpu *v)
{
	struct kestrel_regs r;
	struct kestrel_sregs s;

	if (!ioctl(v->fd, KESTREL_GET_REGS, &r)) {
		fprintf(stderr, "  rip %016llx rflags %016llx rsp %016llx\n",
			(unsigned long long)r.rip,
			(unsigned long long)r.rflags,
			(unsigned long long)r.rsp);
		fprintf(stderr, "  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n",
			(unsigned long long)r.rax, (unsigned long long)r.rbx,
			(unsigned long long)r.rcx, (unsigned long long)r.rdx);
	}
	if (!ioctl(v->fd, KESTREL_GET_SREGS, &s))
		fprintf(stderr, "  cs %04x base %llx l %u db %u  cr0 %llx cr3 %llx cr4 %llx efer %llx\n",
			s.cs.selector, (unsigned long long)s.cs.base, s.cs.l,
			s.cs.db, (unsigned long long)s.cr0,
			(unsigned long long)s.cr3, (unsigned long long)s.cr4,
			(unsigned long long)s.efer);
}

static const char *suberror_name(uint32_t sub)
{
	switch (sub) {
	case KESTREL_INTERNAL_UNHANDLED_EXIT:
		return "unhandled exit (data: exit code, info1, info2, rip, event info)";
	case KESTREL_INTERNAL_DECODE:
		return "instruction decode (data: rip, linear rip, bytes 0-7, bytes 8-15)";
	case KESTREL_INTERNAL_UNMAPPED_GPA:
		return "access to unbacked guest memory (data: gpa, fault code, rip)";
	case KESTREL_INTERNAL_EVENT_DELIVERY:
		return "event delivery (data: exit code, event info, rip)";
	case KESTREL_INTERNAL_STATE_LOST:
		return "the CPU lost the guest's state, vCPU reset (data: exit code)";
	}
	return "unknown";
}

/*
 * Hand each port access to devices.c.  True when the VM has ended (a
 * device ended it, or something else did meanwhile).
 */
static bool handle_io(struct vm *vm, struct vcpu *v)
{
	struct kestrel_run *run = v->run;
	uint8_t *data, size = run->io.size;
	uint32_t i, val, n = run->io.count * size;
	int status;

	if (run->io.data_offset > (uint64_t)vm->run_size ||
	    n > vm->run_size - run->io.data_offset ||
	    (size != 1 && size != 2 && size != 4)) {
		if (machine_end(3))
			err("I/O data at offset %llu (%u bytes of size %u) is outside the run page",
			    (unsigned long long)run->io.data_offset, n, size);
		return true;
	}
	data = (uint8_t *)run + run->io.data_offset;

	for (i = 0; i < run->io.count; i++) {
		val = 0;
		if (run->io.direction == KESTREL_EXIT_IO_OUT) {
			memcpy(&val, data + i * size, size);
			if (pio_access(run->io.port, size, true, &val, &status))
				return true;
		} else {
			if (pio_access(run->io.port, size, false, &val, &status))
				return true;
			memcpy(data + i * size, &val, size);
		}
	}
	return false;
}

/*
 * The IOAPIC (PC machine) is the one MMIO device.  Elsewhere, like an
 * empty bus, loads read all ones and stores vanish.
 */
static void handle_mmio(struct vm *vm, struct vcpu *v)
{
	struct kestrel_run *run = v->run;

	if (vm->pc && run->mmio.len <= sizeof(run->mmio.data) &&
	    ioapic_mmio(run->mmio.phys_addr, run->mmio.is_write,
			run->mmio.data, run->mmio.len))
		return;

	if (verbose)
		err("MMIO %s 0x%llx size %u%s", run->mmio.is_write ? "store to" :
		    "load from", (unsigned long long)run->mmio.phys_addr,
		    run->mmio.len, run->mmio.is_write ? " ignored" :
		    ": returning all ones");
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
}

/* " (vCPU 1)" when there are several to tell apart */
static const char *which(const struct vm *vm, const struct vcpu *v)
{
	static __thread char buf[24];

	if (vm->nr_vcpus == 1)
		return "";
	snprintf(buf, sizeof(buf), " (vCPU %u)", v->id);
	return buf;
}

/*
 * One exit that ends the VM: report it, unless something else ended the
 * VM first (then its report stands alone).
 */
static void exit_error(struct vm *vm, struct vcpu *v, int status)
{
	struct kestrel_run *run = v->run;
	unsigned int i;

	if (!machine_end(status))
		return;
	output_lock();
	switch (run->exit_reason) {
	case KESTREL_EXIT_SHUTDOWN:
		err("guest triple-faulted (shutdown)%s", which(vm, v));
		break;
	case KESTREL_EXIT_INTERNAL_ERROR:
		err("Kestrel could not run the guest%s: internal error %u: %s",
		    which(vm, v), run->internal.suberror,
		    suberror_name(run->internal.suberror));
		for (i = 0; i < run->internal.ndata &&
			    i < KESTREL_INTERNAL_NDATA; i++)
			fprintf(stderr, "  data[%u] = 0x%llx\n", i,
				(unsigned long long)run->internal.data[i]);
		dump_state(v);
		break;
	case KESTREL_EXIT_FAIL_ENTRY:
		err("the CPU refused to enter the guest%s: hardware reason 0x%llx on CPU %u",
		    which(vm, v), (unsigned long long)
		    run->fail_entry.hardware_entry_failure_reason,
		    run->fail_entry.cpu);
		dump_state(v);
		break;
	default:
		err("unexpected exit reason %u%s", run->exit_reason,
		    which(vm, v));
		dump_state(v);
		break;
	}
	output_unlock();
}

/*
 * The RUN loop of vCPU @v, on its own thread (vCPU 0: the main thread).
 * It returns once the VM has ended, whoever ended it.
 */
static void vcpu_loop(struct vm *vm, struct vcpu *v)
{
	struct kestrel_run *run = v->run;

	for (;;) {
		if (machine_ended())
			return;
		if (stop_signal) {
			if (machine_end(128 + stop_signal)) {
				if (stop_by_key)
					err("stopped by Ctrl-A x");
				else
					err("stopped by %s",
					    strsignal(stop_signal));
			}
			return;
		}
		if (ioctl(v->fd, KESTREL_RUN, 0UL) < 0) {
			if (errno == EINTR)
				continue;	/* a kick or stop_signal */
			if (errno == EFAULT &&
			    run->exit_reason == KESTREL_EXIT_MEMORY_FAULT) {
				if (machine_end(3))
					err("guest memory at 0x%llx is not accessible to the launcher%s",
					    (unsigned long long)
					    run->memory_fault.gpa, which(vm, v));
				return;
			}
			if (machine_end(1))
				err("KESTREL_RUN%s: %s", which(vm, v),
				    strerror(errno));
			return;
		}
		/* a device may not act on a VM that is over */
		if (machine_ended())
			return;
		switch (run->exit_reason) {
		case KESTREL_EXIT_IO:
			if (handle_io(vm, v))
				return;
			break;
		case KESTREL_EXIT_MMIO:
			handle_mmio(vm, v);
			break;
		case KESTREL_EXIT_HLT:
			if (machine_end(0) && verbose)
				err("guest halted after %llu exits",
				    (unsigned long long)run->exit_count);
			return;
		case KESTREL_EXIT_SHUTDOWN:
			exit_error(vm, v, 2);
			return;
		case KESTREL_EXIT_INTR:
			break;
		case KESTREL_EXIT_INTERNAL_ERROR:
		case KESTREL_EXIT_FAIL_ENTRY:
		default:
			exit_error(vm, v, 3);
			return;
		}
	}
}

static void *ap_thread(void *arg)
{
	struct vcpu *v = arg;

	vcpu_loop(the_vm, v);
	return NULL;
}

/*
 * A thread for each application processor.  They keep SIGINT and SIGTERM
 * blocked, so those reach the main thread (vCPU 0), and take SIG_KICK.
 */
static int start_aps(struct vm *vm)
{
	sigset_t stop, old;
	unsigned int i;
	int r = 0;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	/* with end_lock: a machine_end() meanwhile kicks what has started */
	pthread_mutex_lock(&end_lock);
	for (i = 1; i < vm->nr_vcpus && !r; i++) {
		r = pthread_create(&vm->vcpus[i].thread, NULL, ap_thread,
				   &vm->vcpus[i]);
		vm->vcpus[i].started = !r;
	}
	pthread_mutex_unlock(&end_lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		if (machine_end(1))
			err("cannot start a thread for vCPU %u: %s", i - 1,
			    strerror(r));
		return -1;
	}
	return 0;
}

/*
 * Every AP thread has been kicked by machine_end(); wait for each.  A
 * kick can only be lost if the thread was between its check of "ended"
 * and RUN without immediate_exit set, which machine_end() rules out, but
 * kicking again while waiting costs nothing.
 */
static void join_aps(struct vm *vm)
{
	struct timespec t;
	unsigned int i, tries;

	for (i = 1; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (!v->started)
			continue;
		for (tries = 0; ; tries++) {
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += 100 * 1000000;
			if (t.tv_nsec >= 1000000000) {
				t.tv_sec++;
				t.tv_nsec -= 1000000000;
			}
			if (!pthread_timedjoin_np(v->thread, NULL, &t))
				break;
			if (tries == 50) {
				err("vCPU %u does not stop; leaving it to exit()",
				    v->id);
				break;
			}
			pthread_kill(v->thread, SIG_KICK);
		}
		v->started = false;
	}
}

static int run_vm(struct vm *vm)
{
	vm->vcpus[0].thread = pthread_self();
	vm->vcpus[0].started = true;
	kick_run = vm->vcpus[0].run;
	if (!start_aps(vm))
		vcpu_loop(vm, &vm->vcpus[0]);
	join_aps(vm);
	return end_status;
}

/* ---- guest input: stdin to COM1 ---------------------------------------- */

#define CTRL_A			0x01

static struct termios saved_tio;
static bool tio_saved;
static pthread_t vcpu_thread;

static void restore_terminal(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		tio_saved = false;
	}
}

/*
 * Keys go to the guest as they are typed, Ctrl-C included; output
 * processing stays on, so the launcher's own messages still start at
 * the left margin.  Restored at exit, whatever the path (atexit), and
 * SIGINT and SIGTERM end the run loop rather than the process.
 */
static void raw_terminal(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio))
		return;
	tio_saved = true;
	atexit(restore_terminal);
	t = saved_tio;
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR |
		       ICRNL | IXON);
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag = (t.c_cflag & ~(CSIZE | PARENB)) | CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	tcsetattr(STDIN_FILENO, TCSANOW, &t);
}

/*
 * Read stdin and queue it for COM1 (uart_receive() waits while the
 * guest's FIFO is full).  On a terminal, Ctrl-A x stops the launcher, as
 * SIGINT would, and Ctrl-A Ctrl-A sends one Ctrl-A.  End of input just
 * ends the thread: the guest keeps running.
 */
static void *input_thread(void *arg)
{
	bool tty = arg != NULL, escape = false;
	uint8_t in[64], out[2 * sizeof(in)];
	ssize_t n, i;
	size_t m;

	for (;;) {
		n = read(STDIN_FILENO, in, sizeof(in));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		for (i = 0, m = 0; i < n; i++) {
			if (tty && escape) {
				escape = false;
				if (in[i] == 'x') {
					stop_by_key = 1;
					pthread_kill(vcpu_thread, SIGINT);
					return NULL;
				}
				if (in[i] != CTRL_A)
					out[m++] = CTRL_A;
			} else if (tty && in[i] == CTRL_A) {
				escape = true;
				continue;
			}
			out[m++] = in[i];
		}
		uart_receive(out, m);
	}
}

static int start_input(void)
{
	sigset_t stop, old;
	pthread_t t;
	int r;

	/* SIGINT and SIGTERM must reach vCPU 0's thread, to end RUN */
	vcpu_thread = pthread_self();
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIG_KICK);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	r = pthread_create(&t, NULL, input_thread,
			   isatty(STDIN_FILENO) ? (void *)1 : NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		err("cannot start the input thread: %s", strerror(r));
		return -1;
	}
	pthread_detach(t);
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	struct options o;
	struct vm vm;
	int ret;

	if (parse_run_options(argc, argv, &o))
		goto usage;
	verbose = o.verbose;
	memset(&vm, 0, sizeof(vm));
	devices_init(o.kernel ? MACHINE_PC : MACHINE_FLAT);
	/* a kernel's console should reach a pipe line by line, not in 4K lumps */
	if (o.kernel)
		setvbuf(stdout, NULL, _IOLBF, 0);
	if (o.kernel)
		ioapic_init(IOAPIC_ID(o.cpus));
	vm.pc = o.kernel;
	if (install_signals() || create_vm(&vm, &o) ||
	    (!o.kernel && load_image(&vm, &o)) || setup_vcpu(&vm, &o))
		return 1;
	if (o.kernel) {
		if (start_input())
			return 1;
		raw_terminal();
	}
	the_vm = &vm;
	ret = run_vm(&vm);
	restore_terminal();
	fflush(stdout);
	if (o.kernel && verbose && !watch.done)
		err("time to guest userspace: not measured (no \"Run ... as init process\" line and output after it; booted with quiet?)");
	return ret;
usage:
	fprintf(stderr, "Try '%s --help'.\n", prog);
	return 1;
}

int main(int argc, char **argv)
{
	clock_gettime(CLOCK_MONOTONIC, &start_time);
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("kestrel %s (Kestrel API %d)\n", KESTREL_VERSION,
		       KESTREL_API_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ps"))
		return cmd_ps(argc - 1, argv + 1);
	if (!strcmp(argv[1], "stats"))
		return cmd_stats(argc - 1, argv + 1);
	if (!strcmp(argv[1], "events"))
		return cmd_events(argc - 1, argv + 1);
	err("unknown command or option '%s'", argv[1]);
	fprintf(stderr, "Try '%s --help'.\n", prog);
	return 1;
}
