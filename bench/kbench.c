// SPDX-License-Identifier: GPL-2.0
/*
 * kbench: Kestrel against KVM, the same guest code on each, in one boot.
 *
 * Every operation runs the identical guest through a thin backend (create
 * VM, add memory, create vCPU, set registers, run, decode the exit), once
 * on /dev/kestrel and once on /dev/kvm, alternating, several times; the
 * table gives medians with their spread and the Kestrel/KVM ratio, and the
 * raw per-run numbers go out as CSV.  Absolute times under an emulator
 * mean little; the ratio of two runs in the same boot is the figure.
 *
 * Kestrel and KVM take turns on the CPU's virtualization: each switches
 * SVM on with its first VM and off with its last, so every fd (and run
 * page mapping) of one is gone before the other creates a VM.  On 6.12,
 * kvm.ko must be loaded with enable_virt_at_load=0 for that; kbench loads
 * KVM itself (see kvm_load()) when /dev/kvm is missing.
 *
 * Guest loops are timed by the guest: RDTSC around N exits, the cycles
 * reported through port I/O at the end.  KVM offsets the guest's TSC by a
 * constant and Kestrel not at all; neither scales it (this CPU has no TSC
 * scaling), so a difference of two reads ticks at the host's rate on both.
 * The host also reads CLOCK_MONOTONIC
 * at two marker OUTs around the same loop; the CSV keeps both, and a row
 * where they disagree by more than 5% is flagged (KVM re-bases the guest
 * TSC at each KVM_RUN if the host marks its TSC unstable).  Host-driven
 * operations (VM and vCPU creation, the launcher) use CLOCK_MONOTONIC.
 *
 * Usage: kbench [--runs N] [--ops LIST] [--csv FILE] [--only kestrel|kvm]
 *               [--list] [--list-ids]
 * Options also come from the kernel command line (kbench.runs=N,
 * kbench.ops=a,b, kbench.only=kvm, kbench.verbose=1, kbench.pin=1) so that
 * bench/run.sh can pass them into the emulated host, whose /init runs
 * kbench without arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/kestrel.h>
#include <linux/kvm.h>

#include "bench.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX_RUNS	31
#define RUN_TIMEOUT	60	/* seconds one guest run may take */
#define MAX_FAILURES	3	/* failed runs before a cell gives up */

#define X86_CR0_PE	(1ULL << 0)
#define X86_CR0_MP	(1ULL << 1)
#define X86_CR0_ET	(1ULL << 4)
#define X86_CR0_NE	(1ULL << 5)
#define X86_CR0_WP	(1ULL << 16)
#define X86_CR0_PG	(1ULL << 31)
#define X86_CR4_PAE	(1ULL << 5)
#define X86_EFER_LME	(1ULL << 8)
#define X86_EFER_LMA	(1ULL << 10)

/* Both APIs describe registers and segments with the same layout. */
_Static_assert(sizeof(struct kvm_regs) == sizeof(struct kestrel_regs),
	       "kvm_regs and kestrel_regs differ");
_Static_assert(sizeof(struct kvm_segment) == sizeof(struct kestrel_segment),
	       "kvm_segment and kestrel_segment differ");
_Static_assert(sizeof(struct kvm_dtable) == sizeof(struct kestrel_dtable),
	       "kvm_dtable and kestrel_dtable differ");

/* ---- the guests, built in (guests/blob.S) ---------------------------- */

struct image {
	const char *name;
	const uint8_t *start;
	const uint8_t *end;
};

#define DECLARE_GUEST(n)						\
	extern const uint8_t guest_##n##_start[], guest_##n##_end[]
#define IMAGE(n)	((struct image){ #n, guest_##n##_start, guest_##n##_end })

DECLARE_GUEST(cpuid);
DECLARE_GUEST(pio);
DECLARE_GUEST(hlt);
DECLARE_GUEST(mmio);
DECLARE_GUEST(touch);
DECLARE_GUEST(timer);
DECLARE_GUEST(ready);
DECLARE_GUEST(ipi);

/* ---- errors ------------------------------------------------------------ */

/* Why the last operation failed or does not apply; shown in the table. */
static char why[160];

static int __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return -1;
}

/* Not an error: this hypervisor cannot do this (yet).  why says so. */
#define NOT_APPLICABLE	1

static int __attribute__((format(printf, 1, 2)))
not_applicable(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return NOT_APPLICABLE;
}

/* ---- time ------------------------------------------------------------- */

static double tsc_hz;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("lfence; rdtsc" : "=a" (lo), "=d" (hi));
	return (uint64_t)hi << 32 | lo;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[MAX_RUNS];

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/*
 * The guests report TSC cycles, which tick at the host's rate on both (no
 * TSC scaling on this CPU), so one calibration serves both.
 */
static void calibrate_tsc(void)
{
	double hz[5];
	int i;

	for (i = 0; i < 5; i++) {
		struct timespec d = { 0, 50 * 1000 * 1000 };
		uint64_t t0 = now_ns(), c0 = rdtsc(), t1, c1;

		nanosleep(&d, NULL);
		c1 = rdtsc();
		t1 = now_ns();
		hz[i] = (double)(c1 - c0) * 1e9 / (double)(t1 - t0);
	}
	tsc_hz = median(hz, 5);
}

/* ---- the backends ----------------------------------------------------- */

enum { HV_KESTREL, HV_KVM, NR_HV };

enum exit_kind { BX_IO, BX_MMIO, BX_HLT, BX_INTR, BX_UNSUPPORTED, BX_OTHER };

/* One exit, in the same terms for both hypervisors. */
struct bexit {
	enum exit_kind kind;
	bool write;		/* OUT, or an MMIO store */
	uint16_t port;
	uint8_t size;
	uint64_t gpa;
	uint8_t *data;		/* in the run page: IN/MMIO-load data goes here */
};

struct hv;

struct bvm {
	struct hv *hv;
	int fd;
};

struct bvcpu {
	struct bvm *vm;
	int fd;
	void *run;
	size_t run_size;
};

struct hv {
	const char *name;
	const char *dev;
	int sys_fd;		/* -1: not available, unavail says why */
	char unavail[160];
	long run_size;
	int (*vm_create)(struct hv *hv);
	int (*set_mem)(struct bvm *vm, uint32_t slot, uint64_t gpa,
		       uint64_t size, void *host);
	int (*irqchip)(struct bvm *vm);
	int (*vcpu_create)(struct bvm *vm, int id);
	int (*vcpu_init)(struct bvcpu *vcpu);
	int (*get_sregs)(struct bvcpu *vcpu, struct kestrel_sregs *s);
	int (*set_sregs)(struct bvcpu *vcpu, const struct kestrel_sregs *s);
	int (*set_regs)(struct bvcpu *vcpu, const struct kestrel_regs *r);
	/* A vCPU other than the first runs at once, without INIT/SIPI. */
	int (*set_runnable)(struct bvcpu *vcpu);
	int (*run)(struct bvcpu *vcpu, struct bexit *x);
	/* What the nested page tables hold, for the CSV; may be NULL. */
	void (*mappings)(struct bvm *vm, char *buf, size_t len);
};

/* Kestrel: /dev/kestrel, uapi/linux/kestrel.h */

static int kestrel_vm_create(struct hv *hv)
{
	struct kestrel_create_vm cvm;

	memset(&cvm, 0, sizeof(cvm));
	strcpy(cvm.name, "kbench");
	return ioctl(hv->sys_fd, KESTREL_CREATE_VM, &cvm);
}

static int kestrel_set_mem(struct bvm *vm, uint32_t slot, uint64_t gpa,
			   uint64_t size, void *host)
{
	struct kestrel_memory_region r = {
		.slot = slot, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	return ioctl(vm->fd, KESTREL_SET_MEMORY_REGION, &r);
}

/* The in-kernel local APIC the timer guest needs, before any vCPU. */
static int kestrel_irqchip(struct bvm *vm)
{
	return ioctl(vm->fd, KESTREL_CREATE_IRQCHIP, 0UL);
}

static int kestrel_vcpu_create(struct bvm *vm, int id)
{
	return ioctl(vm->fd, KESTREL_CREATE_VCPU, (unsigned long)id);
}

/* A new Kestrel vCPU already has the supported CPUID table. */
static int kestrel_vcpu_init(struct bvcpu *vcpu)
{
	(void)vcpu;
	return 0;
}

static int kestrel_get_sregs(struct bvcpu *vcpu, struct kestrel_sregs *s)
{
	return ioctl(vcpu->fd, KESTREL_GET_SREGS, s);
}

static int kestrel_set_sregs(struct bvcpu *vcpu, const struct kestrel_sregs *s)
{
	return ioctl(vcpu->fd, KESTREL_SET_SREGS, s);
}

static int kestrel_set_regs(struct bvcpu *vcpu, const struct kestrel_regs *r)
{
	return ioctl(vcpu->fd, KESTREL_SET_REGS, r);
}

static int kestrel_set_runnable(struct bvcpu *vcpu)
{
	struct kestrel_mp_state mp = { .state = KESTREL_MP_STATE_RUNNABLE };

	return ioctl(vcpu->fd, KESTREL_SET_MP_STATE, &mp);
}

static int kestrel_run(struct bvcpu *vcpu, struct bexit *x)
{
	struct kestrel_run *run = vcpu->run;

	if (ioctl(vcpu->fd, KESTREL_RUN, 0UL) < 0) {
		if (errno == EINTR) {
			x->kind = BX_INTR;
			return 0;
		}
		return fail("KESTREL_RUN: %s", strerror(errno));
	}
	switch (run->exit_reason) {
	case KESTREL_EXIT_IO:
		x->kind = BX_IO;
		x->write = run->io.direction == KESTREL_EXIT_IO_OUT;
		x->port = run->io.port;
		x->size = run->io.size;
		x->data = (uint8_t *)run + run->io.data_offset;
		return 0;
	case KESTREL_EXIT_MMIO:
		x->kind = BX_MMIO;
		x->write = run->mmio.is_write;
		x->gpa = run->mmio.phys_addr;
		x->size = run->mmio.len;
		x->data = run->mmio.data;
		return 0;
	case KESTREL_EXIT_HLT:
		x->kind = BX_HLT;
		return 0;
	case KESTREL_EXIT_INTERNAL_ERROR:
		/* What a module without MMIO exits says for unbacked memory */
		if (run->internal.suberror == KESTREL_INTERNAL_UNMAPPED_GPA) {
			x->kind = BX_UNSUPPORTED;
			not_applicable("no MMIO exits");
			return 0;
		}
		x->kind = BX_OTHER;
		fail("internal error %u (data 0x%llx 0x%llx)",
		     run->internal.suberror,
		     (unsigned long long)run->internal.data[0],
		     (unsigned long long)run->internal.data[1]);
		return 0;
	default:
		x->kind = BX_OTHER;
		fail("exit reason %u", run->exit_reason);
		return 0;
	}
}

/* So the 2 MiB row can show it really got 2 MiB mappings. */
static void kestrel_mappings(struct bvm *vm, char *buf, size_t len)
{
	struct kestrel_vm_stats st;

	memset(&st, 0, sizeof(st));
	if (!ioctl(vm->fd, KESTREL_GET_VM_STATS, &st))
		snprintf(buf, len, "mapped 4K %llu 2M %llu",
			 (unsigned long long)st.mapped_4k,
			 (unsigned long long)st.mapped_2m);
}

/* KVM: /dev/kvm, <linux/kvm.h> */

static struct kvm_cpuid2 *kvm_cpuid;	/* KVM_GET_SUPPORTED_CPUID, once */

static int kvm_vm_create(struct hv *hv)
{
	return ioctl(hv->sys_fd, KVM_CREATE_VM, 0UL);
}

static int kvm_set_mem(struct bvm *vm, uint32_t slot, uint64_t gpa,
		       uint64_t size, void *host)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r);
}

/* Local APICs (and PIC, IOAPIC) in the kernel: HLT then sleeps there. */
static int kvm_irqchip(struct bvm *vm)
{
	return ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0UL);
}

static int kvm_vcpu_create(struct bvm *vm, int id)
{
	return ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)id);
}

/*
 * The supported table, as Kestrel gives every new vCPU.  KVM also needs it
 * to accept long mode: EFER.LME is refused without CPUID's LM bit.
 */
static int kvm_vcpu_init(struct bvcpu *vcpu)
{
	return ioctl(vcpu->fd, KVM_SET_CPUID2, kvm_cpuid);
}

static int kvm_get_sregs(struct bvcpu *vcpu, struct kestrel_sregs *s)
{
	struct kvm_sregs k;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &k))
		return -1;
	memset(s, 0, sizeof(*s));
	memcpy(&s->cs, &k.cs, sizeof(s->cs));
	memcpy(&s->ds, &k.ds, sizeof(s->ds));
	memcpy(&s->es, &k.es, sizeof(s->es));
	memcpy(&s->fs, &k.fs, sizeof(s->fs));
	memcpy(&s->gs, &k.gs, sizeof(s->gs));
	memcpy(&s->ss, &k.ss, sizeof(s->ss));
	memcpy(&s->tr, &k.tr, sizeof(s->tr));
	memcpy(&s->ldt, &k.ldt, sizeof(s->ldt));
	memcpy(&s->gdt, &k.gdt, sizeof(s->gdt));
	memcpy(&s->idt, &k.idt, sizeof(s->idt));
	s->cr0 = k.cr0;
	s->cr2 = k.cr2;
	s->cr3 = k.cr3;
	s->cr4 = k.cr4;
	s->cr8 = k.cr8;
	s->efer = k.efer;
	s->apic_base = k.apic_base;
	return 0;
}

static int kvm_set_sregs(struct bvcpu *vcpu, const struct kestrel_sregs *s)
{
	struct kvm_sregs k;

	memset(&k, 0, sizeof(k));
	memcpy(&k.cs, &s->cs, sizeof(k.cs));
	memcpy(&k.ds, &s->ds, sizeof(k.ds));
	memcpy(&k.es, &s->es, sizeof(k.es));
	memcpy(&k.fs, &s->fs, sizeof(k.fs));
	memcpy(&k.gs, &s->gs, sizeof(k.gs));
	memcpy(&k.ss, &s->ss, sizeof(k.ss));
	memcpy(&k.tr, &s->tr, sizeof(k.tr));
	memcpy(&k.ldt, &s->ldt, sizeof(k.ldt));
	memcpy(&k.gdt, &s->gdt, sizeof(k.gdt));
	memcpy(&k.idt, &s->idt, sizeof(k.idt));
	k.cr0 = s->cr0;
	k.cr2 = s->cr2;
	k.cr3 = s->cr3;
	k.cr4 = s->cr4;
	k.cr8 = s->cr8;
	k.efer = s->efer;
	k.apic_base = s->apic_base;
	return ioctl(vcpu->fd, KVM_SET_SREGS, &k);
}

static int kvm_set_regs(struct bvcpu *vcpu, const struct kestrel_regs *r)
{
	struct kvm_regs k;

	memcpy(&k, r, sizeof(k));
	return ioctl(vcpu->fd, KVM_SET_REGS, &k);
}

static int kvm_set_runnable(struct bvcpu *vcpu)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };

	return ioctl(vcpu->fd, KVM_SET_MP_STATE, &mp);
}

static int kvm_run(struct bvcpu *vcpu, struct bexit *x)
{
	struct kvm_run *run = vcpu->run;

	if (ioctl(vcpu->fd, KVM_RUN, 0UL) < 0) {
		if (errno == EINTR) {
			x->kind = BX_INTR;
			return 0;
		}
		return fail("KVM_RUN: %s", strerror(errno));
	}
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		x->kind = BX_IO;
		x->write = run->io.direction == KVM_EXIT_IO_OUT;
		x->port = run->io.port;
		x->size = run->io.size;
		x->data = (uint8_t *)run + run->io.data_offset;
		return 0;
	case KVM_EXIT_MMIO:
		x->kind = BX_MMIO;
		x->write = run->mmio.is_write;
		x->gpa = run->mmio.phys_addr;
		x->size = run->mmio.len;
		x->data = run->mmio.data;
		return 0;
	case KVM_EXIT_HLT:
		x->kind = BX_HLT;
		return 0;
	case KVM_EXIT_INTERNAL_ERROR:
		x->kind = BX_OTHER;
		fail("KVM internal error %u", run->internal.suberror);
		return 0;
	case KVM_EXIT_FAIL_ENTRY:
		x->kind = BX_OTHER;
		fail("KVM entry failed: 0x%llx", (unsigned long long)
		     run->fail_entry.hardware_entry_failure_reason);
		return 0;
	default:
		x->kind = BX_OTHER;
		fail("KVM exit reason %u", run->exit_reason);
		return 0;
	}
}

static struct hv hvs[NR_HV] = {
	[HV_KESTREL] = {
		.name = "Kestrel", .dev = "/dev/kestrel", .sys_fd = -1,
		.vm_create = kestrel_vm_create, .set_mem = kestrel_set_mem,
		.irqchip = kestrel_irqchip, .vcpu_create = kestrel_vcpu_create,
		.vcpu_init = kestrel_vcpu_init,
		.get_sregs = kestrel_get_sregs, .set_sregs = kestrel_set_sregs,
		.set_regs = kestrel_set_regs,
		.set_runnable = kestrel_set_runnable, .run = kestrel_run,
		.mappings = kestrel_mappings,
	},
	[HV_KVM] = {
		.name = "KVM", .dev = "/dev/kvm", .sys_fd = -1,
		.vm_create = kvm_vm_create, .set_mem = kvm_set_mem,
		.irqchip = kvm_irqchip, .vcpu_create = kvm_vcpu_create,
		.vcpu_init = kvm_vcpu_init,
		.get_sregs = kvm_get_sregs, .set_sregs = kvm_set_sregs,
		.set_regs = kvm_set_regs,
		.set_runnable = kvm_set_runnable, .run = kvm_run,
	},
};

/* ---- shared VM plumbing ------------------------------------------------- */

static int vm_open(struct hv *hv, struct bvm *vm)
{
	vm->hv = hv;
	vm->fd = hv->vm_create(hv);
	if (vm->fd < 0)
		return fail("%s: create VM: %s", hv->name, strerror(errno));
	return 0;
}

static void vm_close(struct bvm *vm)
{
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
}

static int vcpu_open(struct bvm *vm, struct bvcpu *vcpu, int id)
{
	struct hv *hv = vm->hv;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->fd = hv->vcpu_create(vm, id);
	if (vcpu->fd < 0)
		return fail("%s: create vCPU: %s", hv->name, strerror(errno));
	vcpu->run_size = hv->run_size;
	vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		return fail("%s: mmap vCPU: %s", hv->name, strerror(errno));
	}
	if (hv->vcpu_init(vcpu))
		return fail("%s: vCPU init: %s", hv->name, strerror(errno));
	return 0;
}

/* The run page's mapping holds the vCPU (and so the VM): unmap it too. */
static void vcpu_close(struct bvcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	vcpu->run = NULL;
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->fd = -1;
}

/* A guest's RAM, an optional extra region, one vCPU in long mode. */
struct guest {
	struct bvm vm;
	struct bvcpu vcpu;
	struct bvcpu ap;	/* a second vCPU (ap_regs), else unused */
	uint8_t *ram;
	uint8_t *extra;
	size_t extra_len;
	bool irqchip;		/* an in-kernel APIC */
	const struct kestrel_regs *ap_regs;
};

static void build_long_mode(uint8_t *ram)
{
	uint64_t *gdt = (uint64_t *)(ram + BG_GDT);
	uint64_t *pml4 = (uint64_t *)(ram + BG_PML4);
	uint64_t *pdpt = (uint64_t *)(ram + BG_PDPT);
	uint64_t *pd = (uint64_t *)(ram + BG_PD);
	int i;

	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffULL;	/* 64-bit code */
	gdt[2] = 0x00cf93000000ffffULL;	/* flat data */
	pml4[0] = BG_PDPT | 0x3;
	pdpt[0] = BG_PD | 0x3;
	for (i = 0; i < 512; i++)	/* 1 GiB in 2 MiB pages */
		pd[i] = ((uint64_t)i << 21) | 0x83;
}

static void segment(struct kestrel_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->type = type;
	s->limit = 0xffffffff;
	s->present = 1;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

static void guest_destroy(struct guest *g)
{
	vcpu_close(&g->ap);
	vcpu_close(&g->vcpu);
	vm_close(&g->vm);
	if (g->ram)
		munmap(g->ram, BG_RAM_SIZE);
	g->ram = NULL;
}

/*
 * Load @img at BG_LOAD into fresh RAM and set one vCPU up in 64-bit mode
 * with RIP = BG_LOAD and the inputs @in (R8-R11).  @extra, if any, is a
 * second slot the caller has mapped.
 */
static int guest_create(struct hv *hv, struct guest *g, struct image img,
			const struct kestrel_regs *in, uint64_t extra_gpa)
{
	size_t len = img.end - img.start;
	struct kestrel_sregs s;
	struct kestrel_regs r;

	g->vm.fd = -1;
	g->vcpu.fd = -1;
	g->ap.fd = -1;
	if (len > BG_LOAD_MAX)
		return fail("guest %s too big", img.name);
	g->ram = mmap(NULL, BG_RAM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->ram == MAP_FAILED) {
		g->ram = NULL;
		return fail("mmap: %s", strerror(errno));
	}
	memcpy(g->ram + BG_LOAD, img.start, len);
	build_long_mode(g->ram);

	if (vm_open(hv, &g->vm))
		return -1;
	if (hv->set_mem(&g->vm, 0, 0, BG_RAM_SIZE, g->ram))
		return fail("%s: memory slot 0: %s", hv->name, strerror(errno));
	if (g->extra &&
	    hv->set_mem(&g->vm, 1, extra_gpa, g->extra_len, g->extra))
		return fail("%s: memory slot 1: %s", hv->name, strerror(errno));
	if (g->irqchip) {
		int r = hv->irqchip(&g->vm);

		if (r)
			return r == NOT_APPLICABLE ? r :
			       fail("%s: irqchip: %s", hv->name, strerror(errno));
	}
	if (vcpu_open(&g->vm, &g->vcpu, 0))
		return -1;

	if (hv->get_sregs(&g->vcpu, &s))
		return fail("%s: get sregs: %s", hv->name, strerror(errno));
	segment(&s.cs, BG_SEL_CODE, 0xb);
	s.cs.l = 1;
	s.cs.db = 0;
	segment(&s.ds, BG_SEL_DATA, 0x3);
	s.es = s.fs = s.gs = s.ss = s.ds;
	memset(&s.gdt, 0, sizeof(s.gdt));
	s.gdt.base = BG_GDT;
	s.gdt.limit = 3 * 8 - 1;
	s.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE |
		X86_CR0_WP | X86_CR0_PG;
	s.cr3 = BG_PML4;
	s.cr4 = X86_CR4_PAE;
	s.efer = X86_EFER_LME | X86_EFER_LMA;
	if (hv->set_sregs(&g->vcpu, &s))
		return fail("%s: set sregs: %s", hv->name, strerror(errno));

	r = *in;
	r.rip = BG_LOAD;
	r.rsp = BG_STACK_TOP;
	r.rflags = 0x2;
	if (hv->set_regs(&g->vcpu, &r))
		return fail("%s: set regs: %s", hv->name, strerror(errno));
	if (!g->ap_regs)
		return 0;

	/* The second vCPU: the same state, its own stack and inputs. */
	if (vcpu_open(&g->vm, &g->ap, 1))
		return -1;
	if (hv->set_sregs(&g->ap, &s))
		return fail("%s: set sregs (vCPU 1): %s", hv->name,
			    strerror(errno));
	r = *g->ap_regs;
	r.rip = BG_LOAD;
	r.rsp = BG_STACK_AP;
	r.rflags = 0x2;
	if (hv->set_regs(&g->ap, &r) || hv->set_runnable(&g->ap))
		return fail("%s: vCPU 1 state: %s", hv->name, strerror(errno));
	return 0;
}

/* ---- running a guest: the loop both hypervisors share ----------------- */

static volatile sig_atomic_t alarm_fired;

static void alarm_handler(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

struct result {
	uint64_t cycles;	/* reported by the guest */
	uint64_t host_ns;	/* between the two PORT_MARK exits */
};

/*
 * Run until the guest reports its two result words and says it is done.
 * Every other exit is answered the way a minimal VMM would and the guest
 * resumed.
 */
static int guest_run(struct guest *g, struct result *res, int timeout)
{
	struct hv *hv = g->vm.hv;
	uint32_t words[2];
	uint64_t marks[2];
	int nw = 0, nm = 0, r = 0;
	struct bexit x;

	alarm_fired = 0;
	alarm(timeout);
	for (;;) {
		if (hv->run(&g->vcpu, &x)) {
			r = -1;
			break;
		}
		if (x.kind == BX_IO && x.port == PORT_MARK) {
			if (nm < 2)
				marks[nm++] = now_ns();
			continue;
		}
		if (x.kind == BX_IO && x.port == PORT_RESULT && x.write) {
			if (nw < 2)
				memcpy(&words[nw++], x.data, 4);
			continue;
		}
		if (x.kind == BX_IO && x.port == PORT_DONE)
			break;
		if (x.kind == BX_IO || x.kind == BX_MMIO) {
			if (!x.write)
				memset(x.data, 0xff, x.size);
			continue;
		}
		if (x.kind == BX_HLT)
			continue;
		if (x.kind == BX_INTR) {
			if (!alarm_fired)
				continue;
			r = fail("%s: guest not done after %d s", hv->name,
				 timeout);
			break;
		}
		if (x.kind == BX_UNSUPPORTED) {
			r = NOT_APPLICABLE;
			break;
		}
		r = fail("%s: %s", hv->name, why);
		break;
	}
	alarm(0);
	if (r)
		return r;
	if (nm != 2 || nw != 2)
		return fail("%s: guest gave %d markers and %d results, want 2 and 2",
			    hv->name, nm, nw);
	res->cycles = words[0] | (uint64_t)words[1] << 32;
	res->host_ns = marks[1] - marks[0];
	return 0;
}

/* ---- operations ---------------------------------------------------------- */

/* What one run of one operation measured. */
struct sample {
	double value;		/* the figure the table uses */
	double alt;		/* the other clock, or -1 */
	char note[64];
};

struct op;
typedef int (*op_fn)(struct hv *hv, const struct op *op, struct sample *s);

struct op {
	const char *id;		/* CSV key, --ops name */
	const char *title;
	const char *unit;	/* of value: "ns" (per iteration) or "KiB" */
	op_fn fn;
	int iters;
	int warmup;
	struct image (*img)(void);
	uint64_t arg_base;
	uint64_t arg_stride;
	/* A hypervisor that cannot do this yet: the reason, else NULL. */
	const char *na[NR_HV];
	bool irqchip;		/* the guest needs an in-kernel APIC */
	int timeout;		/* seconds per guest run, if not RUN_TIMEOUT */
	/* Ratio target (Kestrel/KVM), 0 for none. */
	double target;
	bool kestrel_only;
	bool cold;		/* op_touch: host memory not populated */
};

static double cycles_to_ns(uint64_t c)
{
	return (double)c * 1e9 / tsc_hz;
}

/* A sample from a guest loop of op->iters iterations: guest TSC first. */
static void loop_sample(const struct op *op, const struct result *res,
			struct sample *s)
{
	double diff;

	s->value = cycles_to_ns(res->cycles) / op->iters;
	s->alt = (double)res->host_ns / op->iters;
	/*
	 * The host's span also holds a marker exit and entry, some 100 us
	 * here and more when the emulator stalls: allow 500 us for them.
	 */
	diff = (s->alt - s->value) * op->iters;
	if (diff < 0)
		diff = -diff;
	if (diff > 0.05 * s->value * op->iters + 500000)
		snprintf(s->note, sizeof(s->note),
			 "CLOCK-MISMATCH: host clock %.0f ns", s->alt);
}

/* An exit loop guest with no memory beyond its RAM. */
static int op_exit_loop(struct hv *hv, const struct op *op, struct sample *s)
{
	struct kestrel_regs in = {
		.r8 = op->iters, .r9 = op->warmup,
		.r10 = op->arg_base, .r11 = op->arg_stride,
	};
	struct guest g = { .irqchip = op->irqchip };
	struct result res;
	int r;

	r = guest_create(hv, &g, op->img(), &in, 0);
	if (!r)
		r = guest_run(&g, &res, op->timeout ?: RUN_TIMEOUT);
	guest_destroy(&g);
	if (!r)
		loop_sample(op, &res, s);
	return r;
}

/*
 * The second vCPU's thread: run it until told to stop (a signal ends the
 * RUN it is in).  Exits it takes to userspace are answered like the
 * first's; any other ends it with why set.
 */
struct ap_thread {
	struct guest *g;
	pthread_t thread;
	volatile bool stop, done;
	int r;
	char why[160];
};

static void ap_kick_handler(int sig)
{
	(void)sig;
}

static void *ap_fn(void *arg)
{
	struct ap_thread *t = arg;
	struct hv *hv = t->g->vm.hv;
	struct bexit x;

	while (!t->stop) {
		if (hv->run(&t->g->ap, &x)) {
			t->r = -1;
			break;
		}
		if (x.kind == BX_IO || x.kind == BX_MMIO) {
			if (!x.write)
				memset(x.data, 0xff, x.size);
			continue;
		}
		if (x.kind == BX_INTR || x.kind == BX_HLT)
			continue;
		t->r = x.kind == BX_UNSUPPORTED ? NOT_APPLICABLE :
		       fail("%s: vCPU 1: %s", hv->name, why);
		break;
	}
	if (t->r)
		snprintf(t->why, sizeof(t->why), "%s", why);
	t->done = true;
	return NULL;
}

static int ap_start(struct ap_thread *t)
{
	struct sigaction sa = { .sa_handler = ap_kick_handler };
	sigset_t block, old;
	int err;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	/* The alarm is the first vCPU's: the new thread blocks it. */
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	err = pthread_create(&t->thread, NULL, ap_fn, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err ? fail("pthread_create: %s", strerror(err)) : 0;
}

/* Stop the second vCPU: kick it out of RUN until its thread notices. */
static int ap_stop(struct ap_thread *t)
{
	t->stop = true;
	while (!t->done) {
		pthread_kill(t->thread, SIGUSR1);
		usleep(1000);
	}
	pthread_join(t->thread, NULL);
	if (t->r)
		snprintf(why, sizeof(why), "%s", t->why);
	return t->r;
}

/* Two vCPUs, the loop on the first, the second answering its IPIs. */
static int op_ipi(struct hv *hv, const struct op *op, struct sample *s)
{
	struct kestrel_regs in = { .r8 = op->iters, .r9 = op->warmup };
	struct kestrel_regs ap_in = { .r11 = 1 };
	struct guest g = { .irqchip = true, .ap_regs = &ap_in };
	struct ap_thread t = { .g = &g };
	struct result res;
	int r, r2;

	r = guest_create(hv, &g, op->img(), &in, 0);
	if (!r)
		r = ap_start(&t);
	if (!r) {
		r = guest_run(&g, &res, op->timeout ?: RUN_TIMEOUT);
		r2 = ap_stop(&t);
		if (!r)
			r = r2;
	}
	guest_destroy(&g);
	if (!r)
		loop_sample(op, &res, s);
	return r;
}

/* How much of the mapping at @p the host backs with huge pages, in KiB. */
static long anon_huge_kib(void *p)
{
	unsigned long start = (uintptr_t)p, lo, hi;
	char line[256];
	long kib = -1;
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* Only a mapping's header line starts "lo-hi " in hex. */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = lo <= start && start < hi;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

/*
 * The host memory behind the first-touch regions, populated once and kept
 * for every run of both hypervisors: allocating (and freeing) 128 MiB of
 * huge pages per run set the emulated host's compaction going, which
 * slowed whichever runs it overlapped.
 */
struct touch_mem {
	uint8_t *raw, *p;	/* the mapping, and its 2 MiB-aligned part */
	size_t len;
	long huge_kib;		/* AnonHugePages of the region */
};

static struct touch_mem touch_4k, touch_2m;

/* A region 2 MiB aligned: KVM maps a huge page only if GPA and HVA agree. */
static int touch_mem_map(struct touch_mem *m, size_t len, bool huge)
{
	size_t align = 2 << 20;

	m->raw = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->raw == MAP_FAILED) {
		m->raw = NULL;
		return fail("mmap %zu: %s", len, strerror(errno));
	}
	m->p = (uint8_t *)(((uintptr_t)m->raw + align - 1) & ~(align - 1));
	m->len = len;
	madvise(m->p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return 0;
}

static void touch_mem_unmap(struct touch_mem *m)
{
	if (m->raw)
		munmap(m->raw, m->len + (2 << 20));
	memset(m, 0, sizeof(*m));
}

/* The warm regions: populated once, kept for every run of both. */
static int touch_mem_get(struct touch_mem *m, size_t len, bool huge)
{
	if (m->p)
		return m->len >= len ? 0 : fail("touch region too small");
	if (touch_mem_map(m, len, huge))
		return -1;
	memset(m->p, 0x5a, len);
	m->huge_kib = huge ? anon_huge_kib(m->p) : 0;
	return 0;
}

/*
 * First touch of op->iters pages op->arg_stride apart.  Warm (the default):
 * the host memory is populated beforehand (4 KiB pages, or huge pages for
 * a 2 MiB stride), so the guest times the hypervisor's nested fault path,
 * not the host's page allocator.  Cold (op->cold): a fresh mapping per
 * run that nobody touched, so each nested fault also takes the host's own
 * page fault (allocation and zeroing), as a new guest's memory does.
 */
static int op_touch(struct hv *hv, const struct op *op, struct sample *s)
{
	struct kestrel_regs in = {
		.r8 = op->iters, .r9 = 0,
		.r10 = op->arg_base, .r11 = op->arg_stride,
	};
	size_t len = op->iters * op->arg_stride;
	bool huge = op->arg_stride >= (2 << 20);
	struct touch_mem cold = { 0 };
	struct touch_mem *m = op->cold ? &cold : huge ? &touch_2m : &touch_4k;
	struct guest g = { 0 };
	struct result res;
	char maps[64] = "";
	int r;

	if (op->cold ? touch_mem_map(m, len, huge) : touch_mem_get(m, len, huge))
		return -1;
	g.extra = m->p;
	g.extra_len = len;
	r = guest_create(hv, &g, op->img(), &in, op->arg_base);
	if (!r)
		r = guest_run(&g, &res, op->timeout ?: RUN_TIMEOUT);
	if (!r && hv->mappings)
		hv->mappings(&g.vm, maps, sizeof(maps));
	guest_destroy(&g);
	if (op->cold && huge)
		m->huge_kib = anon_huge_kib(m->p);
	if (op->cold)
		touch_mem_unmap(m);
	if (r)
		return r;
	loop_sample(op, &res, s);
	if (!s->note[0])
		snprintf(s->note, sizeof(s->note), "%s", maps);
	if (huge && m->huge_kib * 1024 < (long)len)
		snprintf(s->note, sizeof(s->note),
			 "host THP covered %ld of %zu KiB", m->huge_kib,
			 len >> 10);
	return 0;
}

/* Which half of a VM's life a vm_first/vm_steady row shows (arg_base). */
#define VM_CREATE	0
#define VM_DESTROY	1

/*
 * op->iters VMs made and dropped one after the other: create (the ioctl)
 * and destroy (the last close) timed apart.
 */
static int vm_cycle(struct hv *hv, const struct op *op, struct sample *s)
{
	uint64_t create = 0, destroy = 0, t0, t1;
	struct bvm vm;
	int i;

	for (i = 0; i < op->iters; i++) {
		t0 = now_ns();
		if (vm_open(hv, &vm))
			return -1;
		t1 = now_ns();
		vm_close(&vm);
		destroy += now_ns() - t1;
		create += t1 - t0;
	}
	s->value = (double)(op->arg_base == VM_DESTROY ? destroy : create) /
		   op->iters;
	s->alt = -1;
	return 0;
}

/*
 * With no other VM: create switches virtualization on on every CPU and
 * destroy switches it off, as both do with their first and last VM.
 */
static int op_vm_first(struct hv *hv, const struct op *op, struct sample *s)
{
	return vm_cycle(hv, op, s);
}

/* While another VM keeps virtualization switched on. */
static int op_vm_steady(struct hv *hv, const struct op *op, struct sample *s)
{
	struct bvm hold;
	int r;

	if (vm_open(hv, &hold))
		return -1;
	r = vm_cycle(hv, op, s);
	vm_close(&hold);
	return r;
}

/* The create ioctl alone, op->iters vCPUs in one VM. */
static int op_vcpu_create(struct hv *hv, const struct op *op, struct sample *s)
{
	int fds[64], i, n = 0, r = 0;
	uint64_t total = 0, t0;
	struct bvm vm;

	if (op->iters > (int)ARRAY_SIZE(fds))
		return fail("too many vCPUs");
	if (vm_open(hv, &vm))
		return -1;
	for (i = 0; i < op->iters; i++) {
		t0 = now_ns();
		fds[n] = hv->vcpu_create(&vm, i);
		total += now_ns() - t0;
		if (fds[n] < 0) {
			r = fail("%s: create vCPU %d: %s", hv->name, i,
				 strerror(errno));
			break;
		}
		n++;
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	vm_close(&vm);
	s->value = (double)total / op->iters;
	s->alt = -1;
	return r;
}

/* ---- the launcher rows (Kestrel only) ----------------------------------- */

static const char *launcher_path = "/bin/kestrel";
static const char *ready_path = "/tmp/kbench-ready.bin";

static int write_ready_guest(void)
{
	struct image img = IMAGE(ready);
	size_t len = img.end - img.start;
	int fd = open(ready_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		      0644);

	if (fd < 0)
		return fail("%s: %s", ready_path, strerror(errno));
	if (write(fd, img.start, len) != (ssize_t)len) {
		close(fd);
		return fail("%s: short write", ready_path);
	}
	close(fd);
	return 0;
}

struct launch {
	double startup_ns;	/* fork to the guest's first output byte */
	long rss_kib;		/* Rss of all mappings */
	long guest_rss_kib;	/* Rss of the guest RAM mapping */
	long vm_rss_kib, anon_kib, file_kib, pte_kib;	/* from status */
};

/* Pull "Key:   N kB" out of /proc/PID/status. */
static long status_kib(const char *status, const char *key)
{
	const char *p = strstr(status, key);
	long v = -1;

	if (p)
		sscanf(p + strlen(key), ": %ld", &v);
	return v;
}

/*
 * Rss of every mapping and of the one whose size is @size_kib (the guest's
 * RAM), from /proc/PID/smaps: exact, unlike VmRSS, whose per-thread
 * counters are folded in lazily.
 */
static int smaps_rss_kib(pid_t pid, long size_kib, long *total, long *guest)
{
	char path[64], line[256];
	long v;
	bool match = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	*total = 0;
	*guest = -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Size: %ld kB", &v) == 1) {
			match = v == size_kib && *guest < 0;
		} else if (sscanf(line, "Rss: %ld kB", &v) == 1) {
			*total += v;
			if (match)
				*guest = v;
			match = false;
		}
	}
	fclose(f);
	return *guest < 0 ? -1 : 0;
}

/*
 * Start `kestrel run` on a guest that touches 16 pages, prints "R\n" and
 * spins.  Its stdout is a pty, so the launcher's stdio flushes each line
 * and the first byte marks start-up done; the RSS is read while it spins.
 */
static int launch_once(long mem_mib, struct launch *l)
{
	char mem[32], path[64], status[4096], *slave;
	int master, st, n;
	uint64_t t0;
	struct pollfd pfd;
	bool ready = false;
	pid_t pid;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) || unlockpt(master) ||
	    !(slave = ptsname(master)))
		return fail("pty: %s", strerror(errno));
	snprintf(mem, sizeof(mem), "%ldM", mem_mib);

	t0 = now_ns();
	pid = fork();
	if (pid < 0) {
		close(master);
		return fail("fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int fd = open(slave, O_RDWR | O_NOCTTY);
		int null = open("/dev/null", O_RDWR);
		cpu_set_t set;

		/* Off kbench's CPU: the spinning guest must not slow us. */
		CPU_ZERO(&set);
		CPU_SET(0, &set);
		sched_setaffinity(0, sizeof(set), &set);
		if (fd < 0 || null < 0)
			_exit(126);
		dup2(null, 0);
		dup2(fd, 1);
		execl(launcher_path, "kestrel", "run", "--mode", "long",
		      "--flat", ready_path, "--mem", mem, (char *)NULL);
		_exit(127);
	}

	pfd.fd = master;
	pfd.events = POLLIN;
	while (!ready) {
		char buf[64];

		if (poll(&pfd, 1, RUN_TIMEOUT * 1000) <= 0)
			break;
		n = read(master, buf, sizeof(buf));
		if (n <= 0)
			break;
		ready = memchr(buf, 'R', n) != NULL;
	}
	l->startup_ns = now_ns() - t0;

	if (ready) {
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		fd = open(path, O_RDONLY);
		n = fd < 0 ? -1 : read(fd, status, sizeof(status) - 1);
		if (fd >= 0)
			close(fd);
		status[n > 0 ? n : 0] = '\0';
		l->vm_rss_kib = status_kib(status, "VmRSS");
		l->anon_kib = status_kib(status, "RssAnon");
		l->file_kib = status_kib(status, "RssFile");
		l->pte_kib = status_kib(status, "VmPTE");
		if (smaps_rss_kib(pid, mem_mib * 1024, &l->rss_kib,
				  &l->guest_rss_kib))
			l->rss_kib = -1;
	}
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	close(master);
	if (!ready)
		return fail("launcher gave no output (status 0x%x)", st);
	if (l->rss_kib < 0)
		return fail("cannot read the launcher's RSS");
	return 0;
}

static int op_startup(struct hv *hv, const struct op *op, struct sample *s)
{
	struct launch l;

	(void)hv;
	if (launch_once(op->arg_base, &l))
		return -1;
	s->value = l.startup_ns;
	s->alt = -1;
	return 0;
}

/*
 * Boot the emulated host's own kernel (scripts/mkinitramfs.sh packs it and
 * the busybox guest initramfs) and take the launcher's own figure: the time
 * from its start to the guest's first userspace output.  The guest powers
 * off by itself; the host's clock for the whole run is the other figure.
 */
static int op_linux_boot(struct hv *hv, const struct op *op, struct sample *s)
{
	static const char *const linux_path = "/boot/bzImage";
	static const char *const initrd_path = "/boot/guest-initrd.gz";
	char out[16384], *p;
	int fds[2], st, null, n, len = 0;
	uint64_t t0;
	double secs;
	pid_t pid;

	(void)hv;
	(void)op;
	if (access(linux_path, R_OK) || access(initrd_path, R_OK))
		return not_applicable("no %s or %s", linux_path, initrd_path);
	if (pipe(fds))
		return fail("pipe: %s", strerror(errno));
	t0 = now_ns();
	pid = fork();
	if (pid < 0)
		return fail("fork: %s", strerror(errno));
	if (pid == 0) {
		null = open("/dev/null", O_RDWR);
		if (null < 0)
			_exit(126);
		dup2(null, 0);
		dup2(null, 1);
		dup2(fds[1], 2);
		execl(launcher_path, "kestrel", "run", "--kernel", linux_path,
		      "--initrd", initrd_path, "--append", "console=ttyS0",
		      "--mem", "256M", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	alarm_fired = 0;
	alarm(4 * RUN_TIMEOUT);
	while (len < (int)sizeof(out) - 1 &&
	       (n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += n;
	alarm(0);
	out[len] = '\0';
	close(fds[0]);
	if (alarm_fired)
		kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return fail("the Linux guest did not power off (status 0x%x)", st);
	p = strstr(out, "time to guest userspace: ");
	if (!p || sscanf(p, "time to guest userspace: %lf s", &secs) != 1)
		return fail("the launcher printed no time to userspace");
	s->value = secs * 1e9;
	s->alt = now_ns() - t0;
	return 0;
}

static int op_rss(struct hv *hv, const struct op *op, struct sample *s)
{
	struct launch l;

	(void)hv;
	if (launch_once(op->arg_base, &l))
		return -1;
	s->value = l.rss_kib - l.guest_rss_kib;
	s->alt = -1;
	snprintf(s->note, sizeof(s->note),
		 "rss %ld guest %ld; VmRSS %ld anon %ld file %ld pte %ld",
		 l.rss_kib, l.guest_rss_kib, l.vm_rss_kib, l.anon_kib,
		 l.file_kib, l.pte_kib);
	return 0;
}

/* ---- the table of operations ------------------------------------------- */

static struct image img_cpuid(void) { return IMAGE(cpuid); }
static struct image img_pio(void) { return IMAGE(pio); }
static struct image img_hlt(void) { return IMAGE(hlt); }
static struct image img_mmio(void) { return IMAGE(mmio); }
static struct image img_touch(void) { return IMAGE(touch); }
static struct image img_timer(void) { return IMAGE(timer); }
static struct image img_ipi(void) { return IMAGE(ipi); }

/*
 * A row that cannot be measured yet keeps its reason in .na (per
 * hypervisor) or has no .fn; filling it in later is a guest in guests/
 * and a function here.
 */
static const struct op ops[] = {
	{ .id = "cpuid", .title = "CPUID exit, handled in the kernel",
	  .unit = "ns", .fn = op_exit_loop, .iters = 2000, .warmup = 50,
	  .img = img_cpuid, .target = 0.8 },
	{ .id = "pio", .title = "port I/O exit to userspace and back",
	  .unit = "ns", .fn = op_exit_loop, .iters = 2000, .warmup = 50,
	  .img = img_pio, .target = 0.8 },
	{ .id = "mmio", .title = "MMIO exit to userspace and back",
	  .unit = "ns", .fn = op_exit_loop, .iters = 2000, .warmup = 50,
	  .img = img_mmio, .arg_base = BG_MMIO_GPA,
	  .target = 0.8 },
	{ .id = "hlt", .title = "HLT exit to userspace and back (no APIC)",
	  .unit = "ns", .fn = op_exit_loop, .iters = 2000, .warmup = 50,
	  .img = img_hlt },
	/* 1000 ticks of KVM's 1 GHz APIC bus: a 1 us one-shot timer. */
	{ .id = "hlt_timer", .title = "HLT woken by the guest's APIC timer, 1 us",
	  .unit = "ns", .fn = op_exit_loop, .iters = 500, .warmup = 20,
	  .img = img_timer, .arg_stride = 1000, .irqchip = true,
	  .timeout = 8 },
	{ .id = "ipi", .title = "IPI round trip between two halted vCPUs",
	  .unit = "ns", .fn = op_ipi, .iters = 500, .warmup = 20,
	  .img = img_ipi, .timeout = 20 },
	{ .id = "npf_4k", .title = "nested page fault, warm host memory, per 4 KiB",
	  .unit = "ns", .fn = op_touch, .iters = 1024, .img = img_touch,
	  .arg_base = BG_TOUCH4K_GPA, .arg_stride = 4096 },
	{ .id = "npf_2m", .title = "nested page fault, warm host memory, per 2 MiB",
	  .unit = "ns", .fn = op_touch, .iters = 64, .img = img_touch,
	  .arg_base = BG_TOUCH2M_GPA, .arg_stride = 2 << 20 },
	{ .id = "npf_4k_cold",
	  .title = "nested page fault, cold host memory, per 4 KiB",
	  .unit = "ns", .fn = op_touch, .iters = 1024, .img = img_touch,
	  .arg_base = BG_TOUCH4K_GPA, .arg_stride = 4096, .cold = true },
	{ .id = "npf_2m_cold",
	  .title = "nested page fault, cold host memory, per 2 MiB",
	  .unit = "ns", .fn = op_touch, .iters = 16, .img = img_touch,
	  .arg_base = BG_TOUCH2M_GPA, .arg_stride = 2 << 20, .cold = true },
	{ .id = "vm_create_on", .title = "VM create (switches SVM on)",
	  .unit = "ns", .fn = op_vm_first, .iters = 20, .arg_base = VM_CREATE },
	{ .id = "vm_destroy_off", .title = "VM destroy (switches SVM off)",
	  .unit = "ns", .fn = op_vm_first, .iters = 20, .arg_base = VM_DESTROY },
	{ .id = "vm_create", .title = "VM create (another VM alive)",
	  .unit = "ns", .fn = op_vm_steady, .iters = 20, .arg_base = VM_CREATE },
	{ .id = "vm_destroy", .title = "VM destroy (another VM alive)",
	  .unit = "ns", .fn = op_vm_steady, .iters = 20,
	  .arg_base = VM_DESTROY },
	{ .id = "vcpu_create", .title = "vCPU create", .unit = "ns",
	  .fn = op_vcpu_create, .iters = 16 },
	{ .id = "linux_boot", .title = "Linux boot to first userspace output",
	  .unit = "ns", .fn = op_linux_boot, .iters = 1,
	  .na = { NULL, "no KVM VMM in initramfs" } },
	{ .id = "startup_128m",
	  .title = "launcher start-up to guest output, 128 MiB", .unit = "ns",
	  .fn = op_startup, .iters = 1, .arg_base = 128, .kestrel_only = true },
	{ .id = "startup_1g",
	  .title = "launcher start-up to guest output, 1 GiB", .unit = "ns",
	  .fn = op_startup, .iters = 1, .arg_base = 1024, .kestrel_only = true },
	{ .id = "rss_128m",
	  .title = "launcher RSS beyond guest RAM, 128 MiB guest", .unit = "KiB",
	  .fn = op_rss, .iters = 1, .arg_base = 128, .kestrel_only = true },
	{ .id = "rss_1g",
	  .title = "launcher RSS beyond guest RAM, 1 GiB guest", .unit = "KiB",
	  .fn = op_rss, .iters = 1, .arg_base = 1024, .kestrel_only = true },
};

#define NR_OPS	ARRAY_SIZE(ops)

/* ---- results ----------------------------------------------------------- */

struct cell {
	int n;
	double v[MAX_RUNS];	/* the runs that worked, in order */
	double by_run[MAX_RUNS];	/* the same by run number, 0: none */
	char na[160];		/* n/a, or the error that made it give up */
	int failed;		/* failed runs */
	int mismatch;		/* runs whose two clocks disagreed */
};

static struct cell cells[NR_OPS][NR_HV];
static int nr_runs = 11;
static bool verbose;
static bool pin;		/* keep kbench on the last CPU */
static char only_hv[16];	/* "Kestrel" or "KVM": the other sits out */
static char only_ops[256];
static const char *csv_path;
static FILE *csv;
static char kernel[65];

static void csv_line(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void print_row(unsigned int o, const char *prefix);

/* Raw numbers go to stdout between markers and, if asked, to a file. */
static void csv_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (csv) {
		va_start(ap, fmt);
		vfprintf(csv, fmt, ap);
		va_end(ap);
	}
}

static bool op_selected(const struct op *op)
{
	char list[260], *tok, *save;

	if (!only_ops[0])
		return true;
	snprintf(list, sizeof(list), "%s", only_ops);
	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		if (!strcmp(tok, op->id))
			return true;
	return false;
}

/* One run of one op on one hypervisor; run < 0 is a warm-up, not kept. */
static void measure(unsigned int o, int h, int run)
{
	const struct op *op = &ops[o];
	struct cell *c = &cells[o][h];
	struct sample s;
	int r;

	if (c->na[0])
		return;
	memset(&s, 0, sizeof(s));
	why[0] = '\0';
	if (verbose)
		printf("kbench: %s on %s, run %d\n", op->id, hvs[h].name, run);
	r = op->fn(&hvs[h], op, &s);
	if (r == NOT_APPLICABLE) {
		snprintf(c->na, sizeof(c->na), "n/a (%s)", why);
		return;
	}
	if (r) {
		/*
		 * One run going wrong (a guest that never woke up, say) is
		 * noted and the others still count; repeated failures end
		 * the cell.
		 */
		printf("kbench: %s on %s: %s\n", op->id, hvs[h].name, why);
		csv_line("%s,%s,%d,%d,%s,,,FAILED: %s\n", op->id, hvs[h].name,
			 run, op->iters, op->unit, why);
		if (++c->failed >= MAX_FAILURES)
			snprintf(c->na, sizeof(c->na), "error: %s", why);
		return;
	}
	if (run < 0)
		return;
	c->v[c->n++] = s.value;
	c->by_run[run] = s.value;
	if (!strncmp(s.note, "CLOCK-MISMATCH", 14))
		c->mismatch++;
	if (s.alt >= 0)
		csv_line("%s,%s,%d,%d,%s,%.1f,%.1f,%s\n", op->id, hvs[h].name,
			 run, op->iters, op->unit, s.value, s.alt, s.note);
	else
		csv_line("%s,%s,%d,%d,%s,%.1f,,%s\n", op->id, hvs[h].name,
			 run, op->iters, op->unit, s.value, s.note);
}

static void run_all(void)
{
	char prefix[64];
	unsigned int o;
	int run, h, i;

	csv_line("# kbench raw results: kernel %s, TSC %.0f Hz\n", kernel,
		 tsc_hz);
	csv_line("# value: the table's figure (ns per iteration, or KiB); alt: the other clock (host CLOCK_MONOTONIC or guest TSC)\n");
	csv_line("op,hypervisor,run,iterations,unit,value,alt,note\n");
	for (o = 0; o < NR_OPS; o++) {
		const struct op *op = &ops[o];
		uint64_t t0 = now_ns();

		if (!op_selected(op))
			continue;
		for (h = 0; h < NR_HV; h++) {
			struct cell *c = &cells[o][h];

			if (op->kestrel_only && h != HV_KESTREL)
				snprintf(c->na, sizeof(c->na), "n/a (no launcher)");
			else if (op->na[h])
				snprintf(c->na, sizeof(c->na), "n/a (%s)", op->na[h]);
			else if (hvs[h].sys_fd < 0)
				snprintf(c->na, sizeof(c->na), "n/a (%s)",
					 hvs[h].unavail);
		}
		/* Alternate who goes first: slow drifts hit both alike. */
		for (run = -1; op->fn && run < nr_runs; run++)
			for (i = 0; i < NR_HV; i++) {
				h = (run & 1) ? NR_HV - 1 - i : i;
				measure(o, h, run);
			}
		/*
		 * Each row as soon as it is known: if the emulated host
		 * wedges later, run.sh keeps it and boots again for the rest.
		 */
		snprintf(prefix, sizeof(prefix), "### KBENCH-ROW %s ", op->id);
		print_row(o, prefix);
		printf("kbench: %s done (%.1f s)\n", op->id,
		       (now_ns() - t0) / 1e9);
		fflush(stdout);
	}
}

static void fmt_value(char *buf, size_t len, double v, const char *unit)
{
	if (!strcmp(unit, "KiB"))
		snprintf(buf, len, "%.0f KiB", v);
	else if (v >= 1e6)
		snprintf(buf, len, "%.2f ms", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, len, "%.2f us", v / 1e3);
	else
		snprintf(buf, len, "%.0f ns", v);
}

/* "median [min-max]" or the cell's n/a text */
static void fmt_cell(char *buf, size_t len, const struct cell *c,
		     const char *unit)
{
	char m[32], lo[32], hi[32];
	double mn = c->v[0], mx = c->v[0];
	int i;

	if (!c->n) {
		snprintf(buf, len, "%s", c->na[0] ? c->na : "n/a");
		return;
	}
	for (i = 1; i < c->n; i++) {
		if (c->v[i] < mn)
			mn = c->v[i];
		if (c->v[i] > mx)
			mx = c->v[i];
	}
	fmt_value(m, sizeof(m), median(c->v, c->n), unit);
	fmt_value(lo, sizeof(lo), mn, unit);
	fmt_value(hi, sizeof(hi), mx, unit);
	snprintf(buf, len, "%s [%s - %s]", m, lo, hi);
}

/*
 * The median of Kestrel/KVM over runs with the same number: the two of a
 * pair ran back to back, so a slow spell of the machine (another process
 * taking the emulator's CPU) tends to hit both or neither.
 */
static double paired_ratio(const struct cell *k, const struct cell *v,
			   int *pairs)
{
	double r[MAX_RUNS];
	int i, n = 0;

	for (i = 0; i < nr_runs; i++)
		if (k->by_run[i] > 0 && v->by_run[i] > 0)
			r[n++] = k->by_run[i] / v->by_run[i];
	*pairs = n;
	return n ? median(r, n) : 0;
}

/* Fewer pairs than this and a ratio would compare unlike with unlike. */
static int min_pairs(void)
{
	return (nr_runs + 1) / 2;
}

static void print_head(const char *prefix)
{
	printf("%sKestrel vs KVM on %s: median [min - max] of %d runs, same boot; ratio: median of Kestrel/KVM over back-to-back pairs; TSC %.2f GHz\n",
	       prefix, kernel, nr_runs, tsc_hz / 1e9);
	printf("%s%-46s | %-36s | %-36s | %-5s | %s\n", prefix, "operation",
	       "Kestrel", "KVM", "ratio", "iterations");
}

static void print_row(unsigned int o, const char *prefix)
{
	const struct op *op = &ops[o];
	const struct cell *k = &cells[o][HV_KESTREL];
	const struct cell *v = &cells[o][HV_KVM];
	char kc[192], vc[192], ratio[16] = "-", iters[32] = "-";
	char notes[160] = "";

	fmt_cell(kc, sizeof(kc), k, op->unit);
	fmt_cell(vc, sizeof(vc), v, op->unit);
	if (k->n && v->n) {
		int pairs;
		double r = paired_ratio(k, v, &pairs);

		if (pairs < min_pairs()) {
			snprintf(ratio, sizeof(ratio), "n/a");
			snprintf(notes, sizeof(notes),
				 "  (ratio n/a: %d of %d runs paired)", pairs,
				 nr_runs);
		} else {
			snprintf(ratio, sizeof(ratio),
				 r < 0.1 ? "%.3f" : "%.2f", r);
			if (op->target > 0)
				snprintf(notes, sizeof(notes),
					 "  target <= %.2f: %s", op->target,
					 r <= op->target ? "met" : "MISSED");
		}
	}
	if (op->fn)
		snprintf(iters, sizeof(iters), "%d x %d", op->iters, nr_runs);
	if (k->failed || v->failed)
		snprintf(notes + strlen(notes), sizeof(notes) - strlen(notes),
			 "  (failed runs: Kestrel %d, KVM %d: CSV)", k->failed,
			 v->failed);
	if (k->mismatch || v->mismatch)
		snprintf(notes + strlen(notes), sizeof(notes) - strlen(notes),
			 "  (TSC and host clock disagree: CSV)");
	printf("%s%-46s | %-36s | %-36s | %-5s | %s%s\n", prefix, op->title,
	       kc, vc, ratio, iters, notes);
}

static void print_table(void)
{
	unsigned int o;

	print_head("");
	for (o = 0; o < NR_OPS; o++)
		if (op_selected(&ops[o]))
			print_row(o, "");
}

/* ---- setup ------------------------------------------------------------- */

static const char *kvm_dir = "/lib/modules/kvm";

static bool file_contains(const char *path, const char *needle)
{
	struct stat st;
	bool found = false;
	void *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (!fstat(fd, &st) && st.st_size > 0) {
		p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p != MAP_FAILED) {
			found = memmem(p, st.st_size, needle,
				       strlen(needle)) != NULL;
			munmap(p, st.st_size);
		}
	}
	close(fd);
	return found;
}

static int insmod(const char *name, const char *params)
{
	char path[256];
	int fd, r;

	snprintf(path, sizeof(path), "%s/%s.ko", kvm_dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("%s: %s", path, strerror(errno));
	r = syscall(SYS_finit_module, fd, params, 0);
	if (r && errno == EEXIST)
		r = 0;
	if (r)
		fail("insmod %s %s: %s", path, params, strerror(errno));
	close(fd);
	return r;
}

/*
 * The stock modules, as the emulated host's initramfs ships them.  6.12's
 * kvm.ko switches SVM on at load, which would lock Kestrel out (EBUSY);
 * enable_virt_at_load=0 makes it behave like 6.1: on only while it has VMs.
 */
static int kvm_load(void)
{
	char path[256];
	const char *params = "";

	if (!access("/dev/kvm", F_OK))
		return 0;
	snprintf(path, sizeof(path), "%s/kvm.ko", kvm_dir);
	if (file_contains(path, "enable_virt_at_load"))
		params = "enable_virt_at_load=0";
	if (insmod("irqbypass", "") || insmod("ccp", "") ||
	    insmod("kvm", params) || insmod("kvm-amd", ""))
		return -1;
	printf("kbench: loaded KVM from %s (kvm.ko %s)\n", kvm_dir,
	       params[0] ? params : "without parameters");
	return 0;
}

static void hv_open(struct hv *hv)
{
	int fd = open(hv->dev, O_RDWR | O_CLOEXEC);
	long size;

	if (fd < 0) {
		snprintf(hv->unavail, sizeof(hv->unavail), "%s: %s", hv->dev,
			 strerror(errno));
		return;
	}
	if (hv == &hvs[HV_KVM]) {
		size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0UL);
	} else {
		size = ioctl(fd, KESTREL_GET_VCPU_MMAP_SIZE, 0UL);
	}
	if (size <= 0) {
		snprintf(hv->unavail, sizeof(hv->unavail),
			 "%s: no vCPU mmap size", hv->dev);
		close(fd);
		return;
	}
	hv->run_size = size;
	hv->sys_fd = fd;
}

static int kvm_get_cpuid(void)
{
	int n = 64;

	for (;;) {
		kvm_cpuid = calloc(1, sizeof(*kvm_cpuid) +
				   n * sizeof(kvm_cpuid->entries[0]));
		if (!kvm_cpuid)
			return fail("out of memory");
		kvm_cpuid->nent = n;
		if (!ioctl(hvs[HV_KVM].sys_fd, KVM_GET_SUPPORTED_CPUID,
			   kvm_cpuid))
			return 0;
		free(kvm_cpuid);
		if (errno != E2BIG || n > 4096)
			return fail("KVM_GET_SUPPORTED_CPUID: %s",
				    strerror(errno));
		n *= 2;
	}
}

/* Each must be able to create a VM with the other loaded but idle. */
static void check_turns(void)
{
	int h;

	for (h = 0; h < NR_HV; h++) {
		struct hv *hv = &hvs[h];
		int fd;

		if (hv->sys_fd < 0)
			continue;
		fd = hv->vm_create(hv);
		if (fd < 0) {
			snprintf(hv->unavail, sizeof(hv->unavail),
				 "cannot create a VM: %s", strerror(errno));
			close(hv->sys_fd);
			hv->sys_fd = -1;
			continue;
		}
		close(fd);
	}
}

/* kbench.runs=N kbench.ops=a,b on the kernel command line */
static void cmdline_options(void)
{
	char buf[4096], *tok, *save;
	int fd = open("/proc/cmdline", O_RDONLY), n;

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (tok = strtok_r(buf, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		if (!strncmp(tok, "kbench.runs=", 12))
			nr_runs = atoi(tok + 12);
		else if (!strncmp(tok, "kbench.only=", 12))
			snprintf(only_hv, sizeof(only_hv), "%s", tok + 12);
		else if (!strcmp(tok, "kbench.pin=1"))
			pin = true;
		else if (!strcmp(tok, "kbench.verbose=1"))
			verbose = true;
		else if (!strncmp(tok, "kbench.ops=", 11))
			snprintf(only_ops, sizeof(only_ops), "%s", tok + 11);
	}
}

static void usage(FILE *f)
{
	unsigned int o;

	fprintf(f,
"Usage: kbench [--runs N] [--ops ID,ID...] [--csv FILE] [--kvm-modules DIR]\n"
"              [--launcher PATH] [--only kestrel|kvm] [--list]\n"
"Runs the same guests on Kestrel (/dev/kestrel) and KVM (/dev/kvm) and\n"
"prints medians, spreads and ratios.  Loads KVM from DIR (default\n"
"/lib/modules/kvm) if /dev/kvm is missing.  Operations:\n");
	for (o = 0; o < NR_OPS; o++)
		fprintf(f, "  %-14s %s\n", ops[o].id, ops[o].title);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "ops", required_argument, NULL, 'o' },
		{ "csv", required_argument, NULL, 'c' },
		{ "kvm-modules", required_argument, NULL, 'k' },
		{ "launcher", required_argument, NULL, 'l' },
		{ "only", required_argument, NULL, 'O' },
		{ "list", no_argument, NULL, 'L' },
		{ "list-ids", no_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa;
	const char *env;
	cpu_set_t set;
	int c, ncpu;
	uint64_t t0 = now_ns();

	setvbuf(stdout, NULL, _IOLBF, 0);
	cmdline_options();
	env = getenv("KESTREL_LAUNCHER");
	if (env)
		launcher_path = env;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			nr_runs = atoi(optarg);
			break;
		case 'o':
			snprintf(only_ops, sizeof(only_ops), "%s", optarg);
			break;
		case 'c':
			csv_path = optarg;
			break;
		case 'k':
			kvm_dir = optarg;
			break;
		case 'l':
			launcher_path = optarg;
			break;
		case 'O':
			snprintf(only_hv, sizeof(only_hv), "%s", optarg);
			break;
		case 'I':
			for (c = 0; c < (int)NR_OPS; c++)
				printf("%s\n", ops[c].id);
			return 0;
		case 'L':
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (nr_runs < 1 || nr_runs > MAX_RUNS) {
		fprintf(stderr, "kbench: --runs must be 1 to %d\n", MAX_RUNS);
		return 2;
	}
	if (csv_path && !(csv = fopen(csv_path, "w"))) {
		fprintf(stderr, "kbench: %s: %s\n", csv_path, strerror(errno));
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = alarm_handler;	/* no SA_RESTART: RUN must see it */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);

	/*
	 * Optionally one CPU for the vCPU thread: no migrations, no new
	 * ASIDs.  Off by default: the emulated host wedged more often so.
	 */
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (pin && ncpu > 1) {
		CPU_ZERO(&set);
		CPU_SET(ncpu - 1, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	{
		FILE *f = fopen("/proc/sys/kernel/osrelease", "r");

		if (f && fgets(kernel, sizeof(kernel), f))
			kernel[strcspn(kernel, "\n")] = '\0';
		if (f)
			fclose(f);
	}

	/*
	 * Kernel warnings (a soft lockup's backtrace, say) reach the console:
	 * a hypervisor that wedges the host must at least say where.
	 */
	{
		int fd = open("/proc/sys/kernel/printk", O_WRONLY);

		if (fd >= 0) {
			if (write(fd, "5", 1) != 1)
				perror("kbench: console log level");
			close(fd);
		}
	}
	if (kvm_load())
		printf("kbench: %s\n", why);
	for (c = 0; c < NR_HV; c++) {
		if (only_hv[0] && strcasecmp(only_hv, hvs[c].name))
			snprintf(hvs[c].unavail, sizeof(hvs[c].unavail),
				 "left out (--only)");
		else
			hv_open(&hvs[c]);
	}
	if (hvs[HV_KVM].sys_fd >= 0 && kvm_get_cpuid()) {
		snprintf(hvs[HV_KVM].unavail, sizeof(hvs[HV_KVM].unavail),
			 "%s", why);
		close(hvs[HV_KVM].sys_fd);
		hvs[HV_KVM].sys_fd = -1;
	}
	check_turns();
	if (write_ready_guest())
		printf("kbench: %s\n", why);
	calibrate_tsc();

	print_head("### KBENCH-HEAD ");
	printf("### KBENCH-CSV-BEGIN\n");
	run_all();
	printf("### KBENCH-CSV-END\n");
	printf("### KBENCH-TABLE-BEGIN\n");
	print_table();
	printf("### KBENCH-TABLE-END\n");
	printf("kbench: finished in %.0f s\n", (now_ns() - t0) / 1e9);
	if (csv)
		fclose(csv);
	unlink(ready_path);
	return hvs[HV_KESTREL].sys_fd < 0 ? 1 : 0;
}
