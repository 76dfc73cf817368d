// SPDX-License-Identifier: GPL-2.0
/*
 * kestrel - run a flat binary or a kernel in a Kestrel virtual machine.
 *
 *   kestrel run --flat FILE [--mode real|long] [--mem SIZE] [--load ADDR]
 *               [--name NAME]
 *   kestrel run --kernel FILE [--initrd FILE] [--append CMDLINE]
 *               [--mem SIZE] [--name NAME]     (boot.c, devices.c)
 *   kestrel ps | stats | events     (control.c: every VM on the host)
 *
 * One vCPU, RAM at guest-physical 0, and a minimal COM1: bytes written to
 * its data port go to stdout.  See usage() for the exact machine state.
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
	bool verbose;
};

struct vm {
	int sys, fd, vcpu;
	uint8_t *mem;
	uint64_t mem_size;
	struct kestrel_run *run;
	long run_size;
};


static const char *prog = "kestrel";
bool verbose;

/* Set by SIGINT/SIGTERM; the handler also kicks the vCPU out of RUN. */
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t stop_by_key;	/* Ctrl-A x, not a signal */
static struct kestrel_run *volatile kick_run;

/* The VM fd for KESTREL_SIGNAL_MSI from any thread; -1 before it exists */
static int msi_fd = -1;

/* When the launcher started, for the time to the guest's userspace */
static struct timespec start_time;

void err(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);		/* keep guest output before our messages */
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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
		fflush(stdout);		/* the line before, then ours */
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

void console_out(uint8_t c)
{
	if (!watch.done)
		watch_console(c);
	fputc(c, stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: kestrel run --flat FILE [--mode real|long] [--mem SIZE] [--load ADDR]\n"
"                   [--name NAME] [-v]\n"
"       kestrel run --kernel FILE [--initrd FILE] [--append CMDLINE]\n"
"                   [--mem SIZE] [--name NAME] [-v]\n"
"%s"
"       kestrel --version | --help\n"
"\n"
"Run a flat binary in a Kestrel virtual machine (" KESTREL_DEV "): one vCPU,\n"
"RAM from guest-physical address 0, and a minimal COM1 serial port.\n"
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
		control_usage, control_help);
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
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool mode_set = false;
	int c;

	memset(o, 0, sizeof(*o));
	o->mode = MODE_REAL;
	o->mem = DEFAULT_MEM;
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

static int create_vm(struct vm *vm, const struct options *o)
{
	struct kestrel_create_vm cvm;
	struct kestrel_memory_region region;
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
	 * The PC machine's local APIC is the kernel's; it must come before
	 * the vCPU.  Its CPUID bits, and the TSC rate Linux needs (kvmclock),
	 * are in the kernel's default CPUID table.
	 */
	if (o->kernel) {
		if (ioctl(vm->fd, KESTREL_CREATE_IRQCHIP, 0UL)) {
			err("KESTREL_CREATE_IRQCHIP: %s", strerror(errno));
			return -1;
		}
		msi_fd = vm->fd;
	}

	vm->vcpu = ioctl(vm->fd, KESTREL_CREATE_VCPU, 0UL);
	if (vm->vcpu < 0) {
		err("KESTREL_CREATE_VCPU: %s", strerror(errno));
		return -1;
	}
	vm->run_size = ioctl(vm->sys, KESTREL_GET_VCPU_MMAP_SIZE, 0UL);
	if (vm->run_size < (long)sizeof(struct kestrel_run)) {
		err("KESTREL_GET_VCPU_MMAP_SIZE: %s",
		    vm->run_size < 0 ? strerror(errno) : "too small");
		return -1;
	}
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu, 0);
	if (vm->run == MAP_FAILED) {
		err("cannot map the vCPU's run structure: %s",
		    strerror(errno));
		return -1;
	}
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

static int setup_vcpu(struct vm *vm, const struct options *o)
{
	struct kestrel_sregs s;
	struct kestrel_regs r;

	if (ioctl(vm->vcpu, KESTREL_GET_SREGS, &s)) {
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
			.ncpus = 1,
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
	if (ioctl(vm->vcpu, KESTREL_SET_SREGS, &s)) {
		err("KESTREL_SET_SREGS: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm->vcpu, KESTREL_SET_REGS, &r)) {
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

static int install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stop_handler;	/* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
		err("sigaction: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void dump_state(struct vm *vm)
{
	struct kestrel_regs r;
	struct kestrel_sregs s;

	if (!ioctl(vm->vcpu, KESTREL_GET_REGS, &r)) {
		fprintf(stderr, "  rip %016llx rflags %016llx rsp %016llx\n",
			(unsigned long long)r.rip,
			(unsigned long long)r.rflags,
			(unsigned long long)r.rsp);
		fprintf(stderr, "  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n",
			(unsigned long long)r.rax, (unsigned long long)r.rbx,
			(unsigned long long)r.rcx, (unsigned long long)r.rdx);
	}
	if (!ioctl(vm->vcpu, KESTREL_GET_SREGS, &s))
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
	}
	return "unknown";
}

/*
 * Hand each port access to devices.c.  True when a device ended the
 * guest (debug exit, reset), with the launcher's exit status in *status.
 */
static bool handle_io(struct vm *vm, int *status)
{
	struct kestrel_run *run = vm->run;
	uint8_t *data, size = run->io.size;
	uint32_t i, v, n = run->io.count * size;

	if (run->io.data_offset > (uint64_t)vm->run_size ||
	    n > vm->run_size - run->io.data_offset ||
	    (size != 1 && size != 2 && size != 4)) {
		err("I/O data at offset %llu (%u bytes of size %u) is outside the run page",
		    (unsigned long long)run->io.data_offset, n, size);
		exit(3);
	}
	data = (uint8_t *)run + run->io.data_offset;

	for (i = 0; i < run->io.count; i++) {
		v = 0;
		if (run->io.direction == KESTREL_EXIT_IO_OUT) {
			memcpy(&v, data + i * size, size);
			if (pio_access(run->io.port, size, true, &v, status))
				return true;
		} else {
			pio_access(run->io.port, size, false, &v, status);
			memcpy(data + i * size, &v, size);
		}
	}
	return false;
}

/*
 * The IOAPIC (PC machine) is the one MMIO device.  Elsewhere, like an
 * empty bus, loads read all ones and stores vanish.
 */
static void handle_mmio(struct vm *vm, bool pc)
{
	struct kestrel_run *run = vm->run;

	if (pc && run->mmio.len <= sizeof(run->mmio.data) &&
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

static int run_vm(struct vm *vm, bool pc)
{
	struct kestrel_run *run = vm->run;
	unsigned int i;
	int status;

	kick_run = run;
	for (;;) {
		if (stop_signal)
			break;
		if (ioctl(vm->vcpu, KESTREL_RUN, 0UL) < 0) {
			if (errno == EINTR)
				continue;	/* stop_signal says why */
			if (errno == EFAULT &&
			    run->exit_reason == KESTREL_EXIT_MEMORY_FAULT) {
				err("guest memory at 0x%llx is not accessible to the launcher",
				    (unsigned long long)run->memory_fault.gpa);
				return 3;
			}
			err("KESTREL_RUN: %s", strerror(errno));
			return 1;
		}
		switch (run->exit_reason) {
		case KESTREL_EXIT_IO:
			if (handle_io(vm, &status)) {
				fflush(stdout);
				return status;
			}
			break;
		case KESTREL_EXIT_MMIO:
			handle_mmio(vm, pc);
			break;
		case KESTREL_EXIT_HLT:
			fflush(stdout);
			if (verbose)
				err("guest halted after %llu exits",
				    (unsigned long long)run->exit_count);
			return 0;
		case KESTREL_EXIT_SHUTDOWN:
			err("guest triple-faulted (shutdown)");
			return 2;
		case KESTREL_EXIT_INTERNAL_ERROR:
			err("Kestrel could not run the guest: internal error %u: %s",
			    run->internal.suberror,
			    suberror_name(run->internal.suberror));
			for (i = 0; i < run->internal.ndata &&
				    i < KESTREL_INTERNAL_NDATA; i++)
				fprintf(stderr, "  data[%u] = 0x%llx\n", i,
					(unsigned long long)
					run->internal.data[i]);
			dump_state(vm);
			return 3;
		case KESTREL_EXIT_FAIL_ENTRY:
			err("the CPU refused to enter the guest: hardware reason 0x%llx on CPU %u",
			    (unsigned long long)
			    run->fail_entry.hardware_entry_failure_reason,
			    run->fail_entry.cpu);
			dump_state(vm);
			return 3;
		case KESTREL_EXIT_INTR:
			break;
		default:
			err("unexpected exit reason %u", run->exit_reason);
			dump_state(vm);
			return 3;
		}
	}
	if (stop_by_key)
		err("stopped by Ctrl-A x");
	else
		err("stopped by %s", strsignal(stop_signal));
	return 128 + stop_signal;
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

	/* SIGINT and SIGTERM must reach the vCPU thread, to end RUN */
	vcpu_thread = pthread_self();
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
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
		ioapic_init(IOAPIC_ID(1));
	if (install_signals() || create_vm(&vm, &o) ||
	    (!o.kernel && load_image(&vm, &o)) || setup_vcpu(&vm, &o))
		return 1;
	if (o.kernel) {
		if (start_input())
			return 1;
		raw_terminal();
	}
	ret = run_vm(&vm, o.kernel);
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
