// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel local APIC (KESTREL_CREATE_IRQCHIP, KESTREL_SIGNAL_MSI):
 * the ioctls' errors, the xAPIC page and the x2APIC MSRs, the timer in
 * one-shot, periodic and TSC-deadline modes, self-IPIs, priorities (TPR,
 * PPR, ISR, EOI), IF and the STI shadow, MSIs from userspace threads
 * and HLT blocking in the kernel.
 *
 * guests/apic.S is a 64-bit guest with an IDT whose handlers count and log
 * every interrupt; it runs "scripts" of operations (APIC register and MSR
 * accesses, STI; HLT, timed waits) that the test writes into its memory,
 * and reports the end of each with an OUT.  Timing checks are lower bounds
 * only: the emulated host is slow, so nothing may be required to be fast.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "lib.h"

DECLARE_GUEST(apic);

/* ---- guests/apic.S's layout (keep in step with it) -------------------- */

#define APIC_MBOX	GUEST_DATA
#define APIC_MAGIC	(APIC_MBOX + 0x00)
#define APIC_EOI_MODE	(APIC_MBOX + 0x08)
#define APIC_CUR	(APIC_MBOX + 0x10)
#define APIC_LOG_N	(APIC_MBOX + 0x28)
#define APIC_HLT_RIP	(APIC_MBOX + 0x30)
#define APIC_OPS	(APIC_MBOX + 0x100)
#define APIC_MAX_OPS	((0x1000 - 0x100) / 32 - 1)
#define APIC_IDT	0x10000
#define APIC_PD3	0x11000		/* page directory for 3-4 GiB (test) */
#define APIC_COUNTS	0x12000
#define APIC_LOG	0x13000
#define APIC_LOG_MAX	64
#define APIC_MAGIC_VAL	0x43495041

#define APIC_PORT_DONE	0xe0
#define APIC_PORT_MARK	0xe1
#define APIC_PORT_FAULT	0xe2

enum {
	OP_END, OP_RD32, OP_WR32, OP_RD64, OP_WR64,
	OP_RDMSR, OP_WRMSR, OP_STI_HLT, OP_WINDOW,
	OP_SLEEP_IF0, OP_SLEEP_IF1, OP_HLT_UNTIL,
	OP_RDTSC, OP_TSCDL, OP_COUNT, OP_CLI_HLT,
	OP_MARK, OP_WAIT, OP_WRCR8, OP_RDCR8,
	OP_SETEOI,
};

#define EOI_NONE	0
#define EOI_XAPIC	1
#define EOI_X2APIC	2

#define FAULT_GP	(0x100 | 13)	/* op fault field after a #GP */

struct apic_op {
	uint32_t code;
	uint32_t fault;
	uint64_t a0, a1, res;
};

struct log_entry {
	uint64_t vec, tsc, rip, r8;
};

/* ---- the architecture ------------------------------------------------- */

#define APIC_DEFAULT_BASE	0xfee00000ULL
#define MSR_APICBASE		0x1b
#define MSR_TSC_DEADLINE	0x6e0
#define APICBASE_BSP		(1ULL << 8)
#define APICBASE_EXTD		(1ULL << 10)
#define APICBASE_EN		(1ULL << 11)

/* xAPIC register offsets; the x2APIC MSR is 0x800 + (offset >> 4) */
#define R_ID		0x020
#define R_VER		0x030
#define R_TPR		0x080
#define R_PPR		0x0a0
#define R_EOI		0x0b0
#define R_LDR		0x0d0
#define R_DFR		0x0e0
#define R_SVR		0x0f0
#define R_ISR		0x100
#define R_IRR		0x200
#define R_ESR		0x280
#define R_ICR		0x300
#define R_ICR2		0x310
#define R_LVTT		0x320
#define R_TMICT		0x380
#define R_TMCCT		0x390
#define R_TDCR		0x3e0
#define X2(reg)		(0x800 + ((reg) >> 4))
#define MSR_SELF_IPI	0x83f

#define SVR_ENABLE	0x100
#define LVT_MASKED	(1U << 16)
#define LVTT_PERIODIC	(1U << 17)
#define LVTT_DEADLINE	(2U << 17)
#define ICR_SELF	(1U << 18)	/* destination shorthand: self */
#define ICR_BUSY	(1U << 12)
#define TDCR_DIV1	0xb
#define TDCR_DIV16	0x3

#define MSI_DM_LOWEST	(1U << 8)
#define MSI_DM_NMI	(4U << 8)	/* not modelled: EINVAL */
#define MSI_LOGICAL	(1U << 2)

/* ---- one VM, one vCPU running guests/apic.S ---------------------------- */

struct mmio_rec {
	uint64_t addr;
	uint32_t len;
	bool write;
	uint64_t data;
};

struct avm {
	struct vm vm;
	struct vcpu v;
	int id;
	struct apic_op *ops;
	int nops;
	unsigned int runs;		/* RUN calls of the last script */
	bool mmio_ok;			/* answer MMIO exits with mmio_val */
	uint32_t mmio_val;
	unsigned int nr_mmio;
	struct mmio_rec mmio[8];
	bool hlt_ok;			/* HLT exits allowed (no irqchip) */
	unsigned int nr_hlt;
	bool x2;			/* s_rd()/s_wr() through x2APIC MSRs */
	bool reg_op[APIC_MAX_OPS];	/* ops from s_rd()/s_wr(): no #GP */
};

static long tsc_khz;			/* 0: unknown */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* TSC ticks in @ms (a guess when the rate is unknown: only for waits) */
static uint64_t tsc_ms(double ms)
{
	return (uint64_t)((tsc_khz ? tsc_khz : 3000000) * ms);
}

static uint32_t *counts(struct avm *t)
{
	return (uint32_t *)(t->vm.mem + APIC_COUNTS);
}

static struct log_entry *glog(struct avm *t)
{
	return (struct log_entry *)(t->vm.mem + APIC_LOG);
}

static uint64_t log_n(struct avm *t)
{
	return *(uint64_t *)(t->vm.mem + APIC_LOG_N);
}

/* A 1 GiB page directory for 3-4 GiB so the guest reaches 0xfee00000. */
static void map_apic_page(struct vm *vm)
{
	uint64_t *pdpt = (uint64_t *)(vm->mem + GUEST_PDPT);
	uint64_t *pd = (uint64_t *)(vm->mem + APIC_PD3);
	int i;

	for (i = 0; i < 512; i++)	/* 2 MiB, PS, PCD, PWT, RW, P */
		pd[i] = ((3ULL << 30) + ((uint64_t)i << 21)) | 0x9b;
	pdpt[3] = APIC_PD3 | 0x3;
}

static void s_begin(struct avm *t)
{
	t->nops = 0;
	t->ops[0].code = OP_END;
}

static int s_op(struct avm *t, uint32_t code, uint64_t a0, uint64_t a1)
{
	int i = t->nops++;

	if (i >= APIC_MAX_OPS) {
		diag("script too long");
		abort();
	}
	t->ops[i] = (struct apic_op){ .code = code, .a0 = a0, .a1 = a1,
				      .res = 0x5a5a5a5a5a5a5a5aULL,
				      .fault = 0x5a5a };
	t->ops[i + 1].code = OP_END;
	t->reg_op[i] = false;
	return i;
}

/* An APIC register through the page, or its MSR in x2APIC mode */
static int s_rd(struct avm *t, uint32_t reg)
{
	int i = t->x2 ? s_op(t, OP_RDMSR, X2(reg), 0) :
			s_op(t, OP_RD32, APIC_DEFAULT_BASE + reg, 0);

	t->reg_op[i] = true;
	return i;
}

static int s_wr(struct avm *t, uint32_t reg, uint32_t val)
{
	int i = t->x2 ? s_op(t, OP_WRMSR, X2(reg), val) :
			s_op(t, OP_WR32, APIC_DEFAULT_BASE + reg, val);

	t->reg_op[i] = true;
	return i;
}

static int s_rdmsr(struct avm *t, uint32_t msr)
{
	return s_op(t, OP_RDMSR, msr, 0);
}

static int s_wrmsr(struct avm *t, uint32_t msr, uint64_t val)
{
	return s_op(t, OP_WRMSR, msr, val);
}

static int s_count(struct avm *t, uint8_t vec)
{
	return s_op(t, OP_COUNT, vec, 0);
}

static uint64_t res(struct avm *t, int i)
{
	return t->ops[i].res;
}

static uint32_t fault(struct avm *t, int i)
{
	return t->ops[i].fault;
}

static uint32_t io_data(struct vcpu *v)
{
	uint32_t val = 0;

	memcpy(&val, (char *)v->run + v->run->io.data_offset, 4);
	return val;
}

/* x2APIC register accesses of a finished script must not have #GP'd */
static bool s_reg_faults(struct avm *t)
{
	int i;

	for (i = 0; i < t->nops; i++) {
		if (t->reg_op[i] && t->ops[i].fault &&
		    (t->ops[i].code == OP_RDMSR ||
		     t->ops[i].code == OP_WRMSR)) {
			diag("op %d: %s of MSR 0x%llx raised #GP", i,
			     t->ops[i].code == OP_RDMSR ? "read" : "write",
			     (unsigned long long)t->ops[i].a0);
			return false;
		}
	}
	return true;
}

/*
 * Run the script to its end.  MMIO exits are answered when t->mmio_ok,
 * HLT exits allowed when t->hlt_ok; anything else fails with a dump.
 */
static bool s_run(struct avm *t)
{
	struct kestrel_run *run = t->v.run;
	uint64_t cur = 0;

	t->runs = 0;
	for (;;) {
		int r = vcpu_run(&t->v);

		t->runs++;
		cur = *(uint64_t *)(t->vm.mem + APIC_CUR);
		if (r) {
			if (errno != ETIMEDOUT)
				diag("KESTREL_RUN: %s (%s)", errno_name(errno),
				     strerror(errno));
			goto stopped;
		}
		switch (run->exit_reason) {
		case KESTREL_EXIT_IO:
			if (run->io.direction != KESTREL_EXIT_IO_OUT)
				break;
			if (run->io.port == APIC_PORT_DONE)
				return s_reg_faults(t);
			if (run->io.port == APIC_PORT_MARK)
				continue;
			if (run->io.port == APIC_PORT_FAULT) {
				uint32_t vec = io_data(&t->v), rip = 0;

				if (!vcpu_run(&t->v) &&
				    run->exit_reason == KESTREL_EXIT_IO)
					rip = io_data(&t->v);
				diag("guest took unexpected exception/vector %u at rip 0x%x",
				     vec, rip);
				goto stopped;
			}
			break;
		case KESTREL_EXIT_MMIO:
			if (!t->mmio_ok) {
				diag("MMIO exit at 0x%llx (%s, %u bytes): not handled in the kernel",
				     (unsigned long long)run->mmio.phys_addr,
				     run->mmio.is_write ? "write" : "read",
				     run->mmio.len);
				goto stopped;
			}
			if (t->nr_mmio < ARRAY_SIZE(t->mmio)) {
				struct mmio_rec *m = &t->mmio[t->nr_mmio];

				m->addr = run->mmio.phys_addr;
				m->len = run->mmio.len;
				m->write = run->mmio.is_write;
				m->data = 0;
				if (m->write)
					memcpy(&m->data, run->mmio.data,
					       m->len <= 8 ? m->len : 8);
			}
			t->nr_mmio++;
			if (!run->mmio.is_write)
				memcpy(run->mmio.data, &t->mmio_val,
				       run->mmio.len < 4 ? run->mmio.len : 4);
			continue;
		case KESTREL_EXIT_HLT:
			if (t->hlt_ok) {
				t->nr_hlt++;
				continue;
			}
			diag("HLT exited to userspace although the VM has an in-kernel APIC");
			goto stopped;
		}
		diag("unexpected exit %s", exit_reason_name(run->exit_reason));
		goto stopped;
	}
stopped:
	if (cur < (uint64_t)t->nops)
		diag("script stopped in op %llu (code %u a0 0x%llx a1 0x%llx)",
		     (unsigned long long)cur, t->ops[cur].code,
		     (unsigned long long)t->ops[cur].a0,
		     (unsigned long long)t->ops[cur].a1);
	dump_vcpu(&t->v);
	return false;
}

/*
 * A VM (with an in-kernel APIC if @irqchip) and vCPU @id running
 * guests/apic.S in long mode, its IDT set up.
 */
static bool avm_setup(struct avm *t, bool irqchip, int id)
{
	memset(t, 0, sizeof(*t));
	t->id = id;
	if (!vm_create(&t->vm, GUEST_MEM_SIZE))
		return false;
	if (irqchip && ioctl(t->vm.fd, KESTREL_CREATE_IRQCHIP, 0UL)) {
		diag("KESTREL_CREATE_IRQCHIP: %s (%s)", errno_name(errno),
		     strerror(errno));
		return false;
	}
	if (!vcpu_create(&t->vm, &t->v, id) || !vm_load(&t->vm, GUEST(apic)) ||
	    !vcpu_setup_long(&t->vm, &t->v))
		return false;
	map_apic_page(&t->vm);
	t->ops = (struct apic_op *)(t->vm.mem + APIC_OPS);
	s_begin(t);
	if (!s_run(t))
		return false;
	if (*(uint32_t *)(t->vm.mem + APIC_MAGIC) != APIC_MAGIC_VAL) {
		diag("guest did not initialize");
		return false;
	}
	return true;
}

static uint64_t apic_base_of(int id);

/*
 * With an in-kernel APIC in xAPIC mode, or in x2APIC mode (@x2: then
 * s_rd()/s_wr() use the MSRs and the handlers EOI through MSR 0x80b),
 * software-enabled if @enable.
 */
static bool avm_setup_mode(struct avm *t, int id, bool x2, bool enable)
{
	int i;

	if (!avm_setup(t, true, id))
		return false;
	s_begin(t);
	if (x2) {
		i = s_wrmsr(t, MSR_APICBASE, apic_base_of(id) | APICBASE_EXTD);
		t->reg_op[i] = true;
		t->x2 = true;
	}
	s_op(t, OP_SETEOI, x2 ? EOI_X2APIC : EOI_XAPIC, 0);
	if (enable)
		s_wr(t, R_SVR, SVR_ENABLE | 0xff);
	return s_run(t);
}

/* The setup plus: APIC software-enabled, handlers EOI through the page. */
static bool avm_setup_enabled(struct avm *t, int id)
{
	return avm_setup_mode(t, id, false, true);
}

/* A vCPU id other than 0 where the VM allows it, so ID checks can fail. */
static int other_id(void)
{
	return check_cap(KESTREL_CAP_MAX_VCPUS) >= 2 ? 1 : 0;
}

static uint64_t apic_base_of(int id)
{
	return APIC_DEFAULT_BASE | APICBASE_EN | (id == 0 ? APICBASE_BSP : 0);
}

/* The @nth (from 1) log entry for @vec, or NULL */
static struct log_entry *log_find(struct avm *t, uint8_t vec, int nth)
{
	uint64_t i, n = log_n(t);

	for (i = 0; i < n && i < APIC_LOG_MAX; i++)
		if (glog(t)[i].vec == vec && --nth == 0)
			return &glog(t)[i];
	return NULL;
}

static void dump_log(struct avm *t)
{
	uint64_t i, n = log_n(t);

	for (i = 0; i < n && i < APIC_LOG_MAX; i++)
		diag("  log[%llu]: vector 0x%llx rip 0x%llx r8 %llu tsc %llu",
		     (unsigned long long)i,
		     (unsigned long long)glog(t)[i].vec,
		     (unsigned long long)glog(t)[i].rip,
		     (unsigned long long)glog(t)[i].r8,
		     (unsigned long long)glog(t)[i].tsc);
}

/* The APIC timer's input rate: CPUID 0x40000010 EBX, else 1 GHz */
static uint64_t apic_timer_khz(struct avm *t)
{
	struct kestrel_cpuid *c = get_vcpu_cpuid(&t->v);
	struct kestrel_cpuid_entry *e;

	e = c ? cpuid_find(c, 0x40000010, 0) : NULL;
	if (e && e->ebx)
		return e->ebx;
	diag("no CPUID 0x40000010 EBX: assuming a 1 GHz APIC timer");
	return 1000000;
}

/* ---- things done from other threads after a delay ---------------------- */

enum { ACT_SIGNAL, ACT_MSI };

struct delayed {
	unsigned int ms;
	int kind;
	pthread_t target;		/* ACT_SIGNAL */
	int vm_fd;			/* ACT_MSI */
	struct kestrel_msi msi;
	int ret, err;
	uint64_t when_ns;		/* when it was done */
	pthread_t thread;
	bool started;
};

static void *delayed_fn(void *p)
{
	struct delayed *d = p;

	msleep(d->ms);
	d->when_ns = now_ns();
	if (d->kind == ACT_SIGNAL) {
		d->ret = pthread_kill(d->target, SIGUSR1);
	} else {
		d->ret = ioctl(d->vm_fd, KESTREL_SIGNAL_MSI, &d->msi);
		d->err = errno;
	}
	return NULL;
}

static struct kestrel_msi msi_make(uint8_t dest, uint32_t data, bool logical)
{
	struct kestrel_msi m;

	memset(&m, 0, sizeof(m));
	m.address = APIC_DEFAULT_BASE | (uint64_t)dest << 12 |
		    (logical ? MSI_LOGICAL : 0);
	m.data = data;
	return m;
}

static bool delay_signal(struct delayed *d, unsigned int ms)
{
	memset(d, 0, sizeof(*d));
	d->ms = ms;
	d->kind = ACT_SIGNAL;
	d->target = pthread_self();
	d->started = start_thread(delayed_fn, d, &d->thread);
	return d->started;
}

static bool delay_msi(struct delayed *d, unsigned int ms, int vm_fd,
		      struct kestrel_msi msi)
{
	memset(d, 0, sizeof(*d));
	d->ms = ms;
	d->kind = ACT_MSI;
	d->vm_fd = vm_fd;
	d->msi = msi;
	d->started = start_thread(delayed_fn, d, &d->thread);
	return d->started;
}

static void delay_join(struct delayed *d)
{
	if (d->started)
		pthread_join(d->thread, NULL);
	d->started = false;
}

static int signal_msi(int vm_fd, struct kestrel_msi m)
{
	return ioctl(vm_fd, KESTREL_SIGNAL_MSI, &m);
}

static void sigusr1_handler(int sig)
{
	(void)sig;
}

/* One RUN that must end in -1/EINTR with exit reason INTR */
static bool run_expect_eintr(struct avm *t)
{
	int r = vcpu_run(&t->v);

	if (r == 0) {
		diag("RUN returned exit %s instead of blocking until the signal",
		     exit_reason_name(t->v.run->exit_reason));
		dump_vcpu(&t->v);
		return false;
	}
	if (errno != EINTR) {
		if (errno != ETIMEDOUT)
			diag("RUN: %s, want EINTR", errno_name(errno));
		return false;
	}
	if (t->v.run->exit_reason != KESTREL_EXIT_INTR) {
		diag("exit_reason %s after EINTR, want INTR",
		     exit_reason_name(t->v.run->exit_reason));
		return false;
	}
	return true;
}

/* ---- 1: the ioctls ----------------------------------------------------- */

static enum test_result test_create_irqchip(const void *arg)
{
	struct vm vm, vm2;
	struct vcpu v, v2;

	(void)arg;
	CHECK_EQ(check_cap(KESTREL_CAP_IRQCHIP), 1);
	CHECK_H(vm_create(&vm, 0));
	CHECK_ERR(ioctl(vm.fd, KESTREL_CREATE_IRQCHIP, 1UL), EINVAL);
	/* the EINVAL created nothing: the first real call succeeds */
	CHECK_EQ(ioctl(vm.fd, KESTREL_CREATE_IRQCHIP, 0UL), 0);
	CHECK_ERR(ioctl(vm.fd, KESTREL_CREATE_IRQCHIP, 0UL), EEXIST);
	CHECK_H(vcpu_create(&vm, &v, 0));

	CHECK_H(vm_create(&vm2, 0));
	CHECK_H(vcpu_create(&vm2, &v2, 0));
	CHECK_ERR(ioctl(vm2.fd, KESTREL_CREATE_IRQCHIP, 0UL), EBUSY);
	return TEST_PASS;
}

static enum test_result test_msi_errors(const void *arg)
{
	struct kestrel_msi m;
	struct vm vm;
	struct vcpu v;
	struct avm t;

	(void)arg;
	/* no irqchip: nobody to deliver to */
	CHECK_H(vm_create(&vm, 0));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_ERR(signal_msi(vm.fd, msi_make(0, 0x50, false)), ENXIO);

	CHECK_H(avm_setup_mode(&t, 0, true, true));
	m = msi_make(0, 0x50, false);
	m.flags = 1;
	CHECK_ERR(signal_msi(t.vm.fd, m), EINVAL);
	m = msi_make(0, 0x50, false);
	m.reserved[0] = 1;
	CHECK_ERR(signal_msi(t.vm.fd, m), EINVAL);
	m = msi_make(0, 0x50, false);
	m.reserved[15] = 0x80;
	CHECK_ERR(signal_msi(t.vm.fd, m), EINVAL);
	m = msi_make(0, 0x50, false);
	m.address = 0xfed00000;
	CHECK_ERR(signal_msi(t.vm.fd, m), EINVAL);
	m.address = 0xfef00000;
	CHECK_ERR(signal_msi(t.vm.fd, m), EINVAL);
	m.address = 0x1fee00000ULL;
	CHECK_ERR(signal_msi(t.vm.fd, m), EINVAL);
	m.address = APIC_DEFAULT_BASE | 0x10;	/* bit 4: no such field */
	CHECK_ERR(signal_msi(t.vm.fd, m), EINVAL);
	/* documented: NMI (not modelled) and the other modes, vector < 16 */
	CHECK_ERR(signal_msi(t.vm.fd, msi_make(0, MSI_DM_NMI | 0x50, false)),
		  EINVAL);
	CHECK_ERR(signal_msi(t.vm.fd, msi_make(0, 7U << 8 | 0x50, false)),
		  EINVAL);
	CHECK_ERR(signal_msi(t.vm.fd, msi_make(0, 0x0f, false)), EINVAL);
	CHECK_ERR(signal_msi(t.vm.fd, msi_make(0, 1U << 16 | 0x50, false)),
		  EINVAL);
	CHECK_ERR(ioctl(t.vm.fd, KESTREL_SIGNAL_MSI, NULL), EFAULT);
	/* a valid message for an APIC id nobody has: taken by none */
	CHECK_EQ(signal_msi(t.vm.fd, msi_make(7, 0x51, false)), 0);
	s_begin(&t);
	s_op(&t, OP_WINDOW, 0, 0);
	CHECK_H(s_run(&t));
	/* none of that reached the guest */
	CHECK_EQ(counts(&t)[0x50], 0);
	CHECK_EQ(counts(&t)[0x51], 0);
	CHECK_EQ(log_n(&t), 0);
	return TEST_PASS;
}

/* ---- 2: registers ------------------------------------------------------ */

static enum test_result test_xapic_regs(const void *arg)
{
	int id = other_id(), i_base, i_id, i_ver, i_svr0, i_lvt0, i_tpr0,
	    i_tpr1, i_tpr2, i_svr1, i_x2, i_ccr, i_ppr, i_ldr;
	uint64_t base = apic_base_of(id), ver;
	struct avm t;

	(void)arg;
	CHECK_H(avm_setup(&t, true, id));
	s_begin(&t);
	i_base = s_rdmsr(&t, MSR_APICBASE);
	i_id = s_rd(&t, R_ID);
	i_ver = s_rd(&t, R_VER);
	i_svr0 = s_rd(&t, R_SVR);
	i_lvt0 = s_rd(&t, R_LVTT);
	i_tpr0 = s_rd(&t, R_TPR);
	s_wr(&t, R_TPR, 0x35);
	i_tpr1 = s_rd(&t, R_TPR);
	s_wr(&t, R_TPR, 0);
	i_tpr2 = s_rd(&t, R_TPR);
	s_wr(&t, R_SVR, SVR_ENABLE | 0xff);
	i_svr1 = s_rd(&t, R_SVR);
	i_ccr = s_rd(&t, R_TMCCT);
	i_ppr = s_rd(&t, R_PPR);
	i_ldr = s_rd(&t, R_LDR);
	i_x2 = s_rdmsr(&t, X2(R_ID));	/* x2APIC MSRs: not in xAPIC mode */
	CHECK_H(s_run(&t));

	diag("vCPU %d: APIC base 0x%llx ID 0x%llx version 0x%llx SVR 0x%llx",
	     id, (unsigned long long)res(&t, i_base),
	     (unsigned long long)res(&t, i_id),
	     (unsigned long long)res(&t, i_ver),
	     (unsigned long long)res(&t, i_svr0));
	CHECK_EQ(fault(&t, i_base), 0);
	CHECK_EQ(res(&t, i_base), base);
	CHECK_EQ(res(&t, i_id), (uint64_t)id << 24);
	ver = res(&t, i_ver);
	CHECK((ver & 0xff) >= 0x10 && (ver & 0xff) <= 0x15);
	CHECK(((ver >> 16) & 0xff) >= 5);		/* max LVT entry */
	/* reset: software-disabled, spurious vector 0xff, LVTs masked */
	CHECK_EQ(res(&t, i_svr0), 0xff);
	CHECK_EQ(res(&t, i_lvt0), LVT_MASKED);
	CHECK_EQ(res(&t, i_tpr0), 0);
	CHECK_EQ(res(&t, i_tpr1), 0x35);
	CHECK_EQ(res(&t, i_tpr2), 0);
	CHECK_EQ(res(&t, i_svr1), SVR_ENABLE | 0xff);
	CHECK_EQ(res(&t, i_ccr), 0);
	CHECK_EQ(res(&t, i_ppr), 0);
	CHECK_EQ(res(&t, i_ldr), 0);
	CHECK_EQ(fault(&t, i_x2), FAULT_GP);
	return TEST_PASS;
}

static enum test_result test_soft_disable(const void *arg)
{
	int i_a, i_b, i_c;
	struct avm t;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, false));
	s_begin(&t);
	s_wr(&t, R_SVR, 0xff);			/* software-disabled */
	s_wr(&t, R_LVTT, 0x40);			/* unmask: ignored */
	i_a = s_rd(&t, R_LVTT);
	s_wr(&t, R_SVR, SVR_ENABLE | 0xff);
	s_wr(&t, R_LVTT, 0x40);
	i_b = s_rd(&t, R_LVTT);
	s_wr(&t, R_SVR, 0xff);			/* disabling masks every LVT */
	i_c = s_rd(&t, R_LVTT);
	CHECK_H(s_run(&t));
	CHECK_EQ(res(&t, i_a), LVT_MASKED | 0x40);
	CHECK_EQ(res(&t, i_b), 0x40);
	CHECK_EQ(res(&t, i_c), LVT_MASKED | 0x40);
	return TEST_PASS;
}

static enum test_result test_esr(const void *arg)
{
	int i_e0, i_e1, i_e2, i_n;
	struct avm t;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_wr(&t, R_ESR, 0);
	i_e0 = s_rd(&t, R_ESR);
	s_wr(&t, R_ICR, ICR_SELF | 0x03);	/* vectors 0-15 are illegal */
	s_op(&t, OP_WINDOW, 0, 0);
	i_n = s_count(&t, 0x03);
	s_wr(&t, R_ESR, 0);			/* latch the errors */
	i_e1 = s_rd(&t, R_ESR);
	s_wr(&t, R_ESR, 0);
	i_e2 = s_rd(&t, R_ESR);
	CHECK_H(s_run(&t));
	diag("ESR after an illegal vector: 0x%llx",
	     (unsigned long long)res(&t, i_e1));
	CHECK_EQ(res(&t, i_e0), 0);
	CHECK_EQ(res(&t, i_n), 0);
	/* send (bit 5) or receive (bit 6) illegal vector */
	CHECK(res(&t, i_e1) & 0x60);
	CHECK_EQ(res(&t, i_e1) & ~0xe0ULL, 0);
	CHECK_EQ(res(&t, i_e2), 0);
	return TEST_PASS;
}

static enum test_result test_cpuid_timer_leaf(const void *arg)
{
	struct kestrel_cpuid_entry *e, *max;
	struct kestrel_cpuid *c;
	struct avm t;

	(void)arg;
	CHECK_H(avm_setup(&t, true, 0));
	c = get_vcpu_cpuid(&t.v);
	CHECK(c);
	e = cpuid_find(c, 1, 0);
	if (e)
		diag("leaf 1: EDX.APIC %u ECX.x2APIC %u ECX.TSC-deadline %u",
		     (e->edx >> 9) & 1, (e->ecx >> 21) & 1, (e->ecx >> 24) & 1);
	max = cpuid_find(c, 0x40000000, 0);
	e = cpuid_find(c, 0x40000010, 0);
	if (e)
		diag("leaf 0x40000010: EAX (TSC kHz) %u EBX (APIC kHz) %u; CAP_TSC_KHZ %ld",
		     e->eax, e->ebx, tsc_khz);
	CHECK(max);
	CHECK(max->eax >= 0x40000010);	/* else guests never look */
	CHECK(e);
	CHECK_EQ(e->ebx, 1000000);
	return TEST_PASS;
}

/* ---- 3-5: the timer ---------------------------------------------------- */

static enum test_result test_timer_oneshot(const void *arg)
{
	static const struct {
		uint32_t tdcr, div, ms;
		uint8_t vec;
	} rounds[] = {
		{ TDCR_DIV1, 1, 5, 0x40 },
		{ TDCR_DIV16, 16, 4, 0x41 },
	};
	int i_c1, i_c2, i_c3, i_n0;
	struct log_entry *l;
	uint64_t khz, init, t0, t1;
	struct avm t;
	size_t r;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	khz = apic_timer_khz(&t);

	/*
	 * Counting down, masked, divide by 128 from 0xffffffff: minutes
	 * long, so however slow the host the reads see it run.  Writing 0
	 * to the initial count stops it.
	 */
	s_begin(&t);
	s_wr(&t, R_TDCR, 0xa);
	s_wr(&t, R_LVTT, LVT_MASKED | 0x40);
	s_wr(&t, R_TMICT, 0xffffffff);
	i_c1 = s_rd(&t, R_TMCCT);
	s_op(&t, OP_SLEEP_IF0, tsc_ms(1), 0);
	i_c2 = s_rd(&t, R_TMCCT);
	s_wr(&t, R_TMICT, 0);
	i_c3 = s_rd(&t, R_TMCCT);
	i_n0 = s_count(&t, 0x40);
	CHECK_H(s_run(&t));
	diag("current count %llu, then %llu, after stopping %llu",
	     (unsigned long long)res(&t, i_c1),
	     (unsigned long long)res(&t, i_c2),
	     (unsigned long long)res(&t, i_c3));
	CHECK(res(&t, i_c1) > 0 && res(&t, i_c1) <= 0xffffffff);
	CHECK(res(&t, i_c2) < res(&t, i_c1));
	CHECK_EQ(res(&t, i_c3), 0);
	CHECK_EQ(res(&t, i_n0), 0);

	for (r = 0; r < ARRAY_SIZE(rounds); r++) {
		int i_dcr, i_t0, i_cz, i_n1, i_n2, i_ict;
		uint8_t vec = rounds[r].vec;
		double ms = rounds[r].ms;

		init = khz * rounds[r].ms / rounds[r].div;
		s_begin(&t);
		s_wr(&t, R_TDCR, rounds[r].tdcr);
		i_dcr = s_rd(&t, R_TDCR);
		s_wr(&t, R_LVTT, vec);			/* one-shot */
		i_t0 = s_op(&t, OP_RDTSC, 0, 0);
		s_wr(&t, R_TMICT, init);
		s_op(&t, OP_STI_HLT, 0, 0);
		i_cz = s_rd(&t, R_TMCCT);
		i_n1 = s_count(&t, vec);
		s_op(&t, OP_SLEEP_IF1, tsc_ms(3 * ms), 0);
		i_n2 = s_count(&t, vec);
		i_ict = s_rd(&t, R_TMICT);
		t0 = now_ns();
		CHECK_H(s_run(&t));
		t1 = now_ns();

		diag("divide by %u, %llu counts: %.2f ms on the host",
		     rounds[r].div, (unsigned long long)init,
		     (t1 - t0) / 1e6);
		CHECK_EQ(res(&t, i_dcr) & 0xb, rounds[r].tdcr);
		CHECK_EQ(res(&t, i_cz), 0);		/* expired */
		CHECK_EQ(res(&t, i_n1), 1);
		CHECK_EQ(res(&t, i_n2), 1);		/* one-shot: once */
		CHECK_EQ(res(&t, i_ict), init);
		l = log_find(&t, vec, 1);
		CHECK(l);
		/* the HLT executed (STI shadow) and the interrupt woke it */
		CHECK_EQ(l->rip, *(uint64_t *)(t.vm.mem + APIC_HLT_RIP));
		CHECK(t1 - t0 >= (uint64_t)(ms * 0.99e6));
		if (tsc_khz) {
			uint64_t dt = l->tsc - res(&t, i_t0);

			diag("interrupt %.3f ms after the initial count",
			     (double)dt / tsc_khz);
			CHECK(dt >= tsc_ms(ms * 0.99));
		}
	}
	return TEST_PASS;
}

static enum test_result test_timer_periodic(const void *arg)
{
	const unsigned int n = 5, vec = 0x42;
	const double ms = 2;
	int i_t0, i_cur, i_m, i_a, i_b, i_lvt;
	struct log_entry *l;
	uint64_t khz, init;
	struct avm t;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	khz = apic_timer_khz(&t);
	init = (uint64_t)(khz * ms);
	s_begin(&t);
	s_wr(&t, R_TDCR, TDCR_DIV1);
	i_t0 = s_op(&t, OP_RDTSC, 0, 0);
	s_wr(&t, R_LVTT, LVTT_PERIODIC | vec);
	s_wr(&t, R_TMICT, init);
	s_op(&t, OP_HLT_UNTIL, vec, n);
	i_cur = s_rd(&t, R_TMCCT);
	i_m = s_count(&t, vec);
	s_wr(&t, R_LVTT, LVT_MASKED | LVTT_PERIODIC | vec);
	s_op(&t, OP_SLEEP_IF1, tsc_ms(2 * ms), 0);	/* one may be pending */
	i_a = s_count(&t, vec);
	s_op(&t, OP_SLEEP_IF1, tsc_ms(6 * ms), 0);
	i_b = s_count(&t, vec);
	i_lvt = s_rd(&t, R_LVTT);
	s_wr(&t, R_TMICT, 0);
	CHECK_H(s_run(&t));

	diag("%llu interrupts by the mask, %llu after it, %llu later; current count %llu of %llu",
	     (unsigned long long)res(&t, i_m), (unsigned long long)res(&t, i_a),
	     (unsigned long long)res(&t, i_b),
	     (unsigned long long)res(&t, i_cur), (unsigned long long)init);
	CHECK(res(&t, i_m) >= n);
	/* periodic: the count reloads instead of stopping at 0 */
	CHECK(res(&t, i_cur) > 0 && res(&t, i_cur) <= init);
	CHECK(res(&t, i_a) <= res(&t, i_m) + 1);
	CHECK_EQ(res(&t, i_b), res(&t, i_a));
	CHECK_EQ(res(&t, i_lvt), LVT_MASKED | LVTT_PERIODIC | vec);
	l = log_find(&t, vec, n);
	CHECK(l);
	if (tsc_khz) {
		uint64_t dt = l->tsc - res(&t, i_t0);

		diag("interrupt %u came %.3f ms after the start", n,
		     (double)dt / tsc_khz);
		/* each interrupt needs its own expiry: n periods at least */
		CHECK(dt >= tsc_ms(n * ms * 0.99));
	}
	return TEST_PASS;
}

static enum test_result test_tsc_deadline(const void *arg)
{
	const uint8_t vec = 0x44;
	const double ms = 3;
	int i_lvt, i_d0, i_dl, i_n1, i_d1, i_arm, i_dis, i_d2, i_n2, i_past,
	    i_w, i_n3;
	struct log_entry *l;
	struct avm t;

	if (!tsc_khz)
		return test_skip("KESTREL_CAP_TSC_KHZ is 0");
	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_wr(&t, R_LVTT, LVTT_DEADLINE | vec);
	i_lvt = s_rd(&t, R_LVTT);
	i_d0 = s_rdmsr(&t, MSR_TSC_DEADLINE);
	i_dl = s_op(&t, OP_TSCDL, tsc_ms(ms), 0);
	s_op(&t, OP_STI_HLT, 0, 0);
	i_n1 = s_count(&t, vec);
	i_d1 = s_rdmsr(&t, MSR_TSC_DEADLINE);	/* 0 once it fired */
	i_arm = s_op(&t, OP_TSCDL, tsc_ms(ms), 0);
	i_dis = s_wrmsr(&t, MSR_TSC_DEADLINE, 0);
	i_d2 = s_rdmsr(&t, MSR_TSC_DEADLINE);
	s_op(&t, OP_SLEEP_IF1, tsc_ms(4 * ms), 0);
	i_n2 = s_count(&t, vec);
	i_past = s_op(&t, OP_TSCDL, 0, 1);	/* long past: fires at once */
	i_w = s_op(&t, OP_WAIT, vec | 2ULL << 16 | 1ULL << 32, tsc_ms(2000));
	i_n3 = s_count(&t, vec);
	CHECK_H(s_run(&t));

	CHECK_EQ(res(&t, i_lvt), LVTT_DEADLINE | vec);
	CHECK_EQ(fault(&t, i_d0), 0);
	CHECK_EQ(res(&t, i_d0), 0);
	CHECK_EQ(fault(&t, i_dl), 0);
	CHECK_EQ(res(&t, i_n1), 1);
	l = log_find(&t, vec, 1);
	CHECK(l);
	diag("deadline %llu, handler's TSC %llu (%+.3f ms)",
	     (unsigned long long)res(&t, i_dl), (unsigned long long)l->tsc,
	     ((double)l->tsc - (double)res(&t, i_dl)) / tsc_khz);
	CHECK(l->tsc >= res(&t, i_dl));
	CHECK_EQ(fault(&t, i_d1), 0);
	CHECK_EQ(res(&t, i_d1), 0);
	CHECK_EQ(fault(&t, i_arm), 0);
	CHECK_EQ(fault(&t, i_dis), 0);
	CHECK_EQ(res(&t, i_d2), 0);
	CHECK_EQ(res(&t, i_n2), 1);		/* disarmed by writing 0 */
	CHECK_EQ(fault(&t, i_past), 0);
	CHECK_EQ(res(&t, i_w), 1);
	CHECK_EQ(res(&t, i_n3), 2);
	return TEST_PASS;
}

/*
 * Deadlines decades or centuries away, up to 2^64 - 1: converting them to
 * host time must neither trap (a 64-bit quotient overflow when the TSC
 * runs below 1 GHz) nor wrap (ktime overflow between 1 and 2 GHz, which
 * fires at once).  None may fire within the test; the value reads back;
 * a near deadline afterwards still fires.
 */
static enum test_result test_tsc_deadline_far(const void *arg)
{
	static const uint64_t far[] = {
		~0ULL, 1ULL << 63, (1ULL << 63) - 1, 1ULL << 62, ~0ULL - 1,
		0xfffffffffffff000ULL, 1ULL << 60,
	};
	const uint8_t vec = 0x45;
	int i_w[ARRAY_SIZE(far)], i_r[ARRAY_SIZE(far)], i_n0, i_dl, i_n1;
	unsigned int i;
	struct avm t;

	if (!tsc_khz)
		return test_skip("KESTREL_CAP_TSC_KHZ is 0");
	diag("TSC at %llu kHz", (unsigned long long)tsc_khz);
	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_wr(&t, R_LVTT, LVTT_DEADLINE | vec);
	for (i = 0; i < ARRAY_SIZE(far); i++) {
		i_w[i] = s_op(&t, OP_TSCDL, 0, far[i]);
		s_op(&t, OP_SLEEP_IF1, tsc_ms(2), 0);
		i_r[i] = s_rdmsr(&t, MSR_TSC_DEADLINE);
	}
	i_n0 = s_count(&t, vec);
	i_dl = s_op(&t, OP_TSCDL, tsc_ms(2), 0);
	s_op(&t, OP_STI_HLT, 0, 0);
	i_n1 = s_count(&t, vec);
	CHECK_H(s_run(&t));

	for (i = 0; i < ARRAY_SIZE(far); i++) {
		CHECK_EQ(fault(&t, i_w[i]), 0);
		CHECK_EQ(res(&t, i_r[i]), far[i]);	/* still armed */
	}
	CHECK_EQ(res(&t, i_n0), 0);
	CHECK_EQ(fault(&t, i_dl), 0);
	CHECK_EQ(res(&t, i_n1), 1);
	return TEST_PASS;
}

/* ---- 6: x2APIC --------------------------------------------------------- */

static enum test_result test_x2apic_regs(const void *arg)
{
	int id = other_id(), i_en, i_base, i_id, i_ver, i_ldr, i_tpr,
	    i_svr, i_g[6];
	uint64_t base = apic_base_of(id);
	struct avm t;
	int k;

	(void)arg;
	CHECK_H(avm_setup_mode(&t, id, false, false));
	s_begin(&t);
	i_en = s_wrmsr(&t, MSR_APICBASE, base | APICBASE_EXTD);
	s_wrmsr(&t, X2(R_SVR), SVR_ENABLE | 0xff);
	i_base = s_rdmsr(&t, MSR_APICBASE);
	i_id = s_rdmsr(&t, X2(R_ID));
	i_ver = s_rdmsr(&t, X2(R_VER));
	i_ldr = s_rdmsr(&t, X2(R_LDR));
	s_wrmsr(&t, X2(R_TPR), 0x20);
	i_tpr = s_rdmsr(&t, X2(R_TPR));
	s_wrmsr(&t, X2(R_TPR), 0);
	i_svr = s_rdmsr(&t, X2(R_SVR));
	i_g[0] = s_wrmsr(&t, X2(R_VER), 0);	/* read-only */
	i_g[1] = s_rdmsr(&t, X2(R_EOI));	/* write-only */
	i_g[2] = s_rdmsr(&t, MSR_SELF_IPI);	/* write-only */
	i_g[3] = s_rdmsr(&t, X2(R_DFR));	/* no DFR in x2APIC mode */
	i_g[4] = s_rdmsr(&t, X2(R_ICR2));	/* ICR is one 64-bit MSR */
	i_g[5] = s_wrmsr(&t, X2(R_EOI), 1);	/* EOI takes only 0 */
	CHECK_H(s_run(&t));

	CHECK_EQ(fault(&t, i_en), 0);
	CHECK_EQ(res(&t, i_base), base | APICBASE_EXTD);
	CHECK_EQ(fault(&t, i_id), 0);
	CHECK_EQ(res(&t, i_id), id);
	CHECK((res(&t, i_ver) & 0xff) >= 0x10 && (res(&t, i_ver) & 0xff) <= 0x15);
	CHECK(((res(&t, i_ver) >> 16) & 0xff) >= 5);
	CHECK_EQ(res(&t, i_ldr), (uint64_t)(id >> 4) << 16 | 1U << (id & 15));
	CHECK_EQ(res(&t, i_tpr), 0x20);
	CHECK_EQ(res(&t, i_svr), SVR_ENABLE | 0xff);
	for (k = 0; k < 6; k++) {
		if (fault(&t, i_g[k]) != FAULT_GP)
			diag("MSR 0x%llx %s: no #GP",
			     (unsigned long long)t.ops[i_g[k]].a0,
			     t.ops[i_g[k]].code == OP_RDMSR ? "read" : "write");
		CHECK_EQ(fault(&t, i_g[k]), FAULT_GP);
	}
	return TEST_PASS;
}

static enum test_result test_x2apic_transitions(const void *arg)
{
	int id = other_id(), i_en, i_mm, i_g1, i_b1, i_g2, i_off, i_g4, i_mm2,
	    i_g5, i_on, i_id;
	uint64_t base = apic_base_of(id);
	struct avm t;

	(void)arg;
	CHECK_H(avm_setup_mode(&t, id, false, false));
	t.mmio_ok = true;
	t.mmio_val = 0x12345678;
	s_begin(&t);
	i_en = s_wrmsr(&t, MSR_APICBASE, base | APICBASE_EXTD);
	i_mm = s_rd(&t, R_VER);			/* the page is userspace's */
	s_wr(&t, R_TPR, 0x77);
	i_g1 = s_wrmsr(&t, MSR_APICBASE, base);	/* x2APIC -> xAPIC */
	i_b1 = s_rdmsr(&t, MSR_APICBASE);
	i_g2 = s_wrmsr(&t, MSR_APICBASE,	/* EXTD without EN */
		       (base & ~APICBASE_EN) | APICBASE_EXTD);
	i_off = s_wrmsr(&t, MSR_APICBASE, base & ~APICBASE_EN);
	i_g4 = s_rdmsr(&t, X2(R_ID));		/* disabled: no MSRs */
	i_mm2 = s_rd(&t, R_ID);			/* nor the page */
	i_g5 = s_wrmsr(&t, MSR_APICBASE,	/* disabled -> x2APIC */
		       base | APICBASE_EXTD);
	i_on = s_wrmsr(&t, MSR_APICBASE, base);	/* disabled -> xAPIC */
	i_id = s_rd(&t, R_ID);
	CHECK_H(s_run(&t));

	diag("%u MMIO exits", t.nr_mmio);
	CHECK_EQ(fault(&t, i_en), 0);
	CHECK(t.nr_mmio >= 2);
	CHECK_EQ(t.mmio[0].addr, APIC_DEFAULT_BASE + R_VER);
	CHECK_EQ(t.mmio[0].write, false);
	CHECK_EQ(t.mmio[0].len, 4);
	CHECK_EQ(res(&t, i_mm), 0x12345678);
	CHECK_EQ(t.mmio[1].addr, APIC_DEFAULT_BASE + R_TPR);
	CHECK_EQ(t.mmio[1].write, true);
	CHECK_EQ(t.mmio[1].data, 0x77);
	CHECK_EQ(fault(&t, i_g1), FAULT_GP);		/* x2APIC -> xAPIC */
	CHECK_EQ(res(&t, i_b1), base | APICBASE_EXTD);
	CHECK_EQ(fault(&t, i_g2), FAULT_GP);		/* EXTD without EN */
	CHECK_EQ(fault(&t, i_off), 0);			/* x2APIC -> disabled */
	CHECK_EQ(fault(&t, i_g4), FAULT_GP);
	CHECK(t.nr_mmio >= 3);
	CHECK_EQ(t.mmio[2].addr, APIC_DEFAULT_BASE + R_ID);
	CHECK_EQ(res(&t, i_mm2), 0x12345678);
	CHECK_EQ(fault(&t, i_g5), FAULT_GP);		/* disabled -> x2APIC */
	CHECK_EQ(fault(&t, i_on), 0);			/* disabled -> xAPIC */
	CHECK_EQ(t.nr_mmio, 3);
	CHECK_EQ(res(&t, i_id), (uint64_t)id << 24);
	return TEST_PASS;
}

static enum test_result test_x2apic_ipi(const void *arg)
{
	static const uint8_t order[] = { 0x61, 0x62, 0x63, 0x51 };
	int id = other_id(), i_en, i_w[4], i_n[4], i_isr, i_isr2, i_irr;
	uint64_t base = apic_base_of(id);
	struct avm t;
	int k;

	(void)arg;
	CHECK_H(avm_setup_mode(&t, id, true, true));
	s_begin(&t);
	i_en = s_rdmsr(&t, MSR_APICBASE);
	i_w[0] = s_wrmsr(&t, MSR_SELF_IPI, 0x61);
	s_op(&t, OP_WINDOW, 0, 0);
	i_n[0] = s_count(&t, 0x61);
	i_isr = s_rdmsr(&t, X2(R_ISR + 0x30));	/* EOI by MSR cleared it */
	i_w[1] = s_wrmsr(&t, X2(R_ICR), ICR_SELF | 0x62);
	s_op(&t, OP_WINDOW, 0, 0);
	i_n[1] = s_count(&t, 0x62);
	/* physical destination = our own x2APIC id, in ICR bits 63:32 */
	i_w[2] = s_wrmsr(&t, X2(R_ICR), (uint64_t)id << 32 | 0x63);
	s_op(&t, OP_WINDOW, 0, 0);
	i_n[2] = s_count(&t, 0x63);
	/* lower class than all above: blocked if an EOI was lost */
	i_w[3] = s_wrmsr(&t, MSR_SELF_IPI, 0x51);
	s_op(&t, OP_WINDOW, 0, 0);
	i_n[3] = s_count(&t, 0x51);
	i_isr2 = s_rdmsr(&t, X2(R_ISR + 0x20));
	i_irr = s_rdmsr(&t, X2(R_IRR + 0x30));
	CHECK_H(s_run(&t));

	CHECK_EQ(res(&t, i_en), base | APICBASE_EXTD);
	for (k = 0; k < 4; k++) {
		if (res(&t, i_n[k]) != 1) {
			diag("vector 0x%x: %llu interrupts, want 1", order[k],
			     (unsigned long long)res(&t, i_n[k]));
			dump_log(&t);
		}
		CHECK_EQ(fault(&t, i_w[k]), 0);
		CHECK_EQ(res(&t, i_n[k]), 1);
	}
	CHECK_EQ(fault(&t, i_isr), 0);
	CHECK_EQ(res(&t, i_isr), 0);
	CHECK_EQ(res(&t, i_isr2), 0);
	CHECK_EQ(res(&t, i_irr), 0);
	CHECK_EQ(log_n(&t), 4);
	for (k = 0; k < 4; k++)
		CHECK_EQ(glog(&t)[k].vec, order[k]);
	return TEST_PASS;
}

/* ---- 7: self-IPIs and priorities in xAPIC mode ------------------------- */

static enum test_result test_ipi_order(const void *arg)
{
	int i_irr2, i_irr3, i_ppr, i_n50, i_n60, i_irr2b, i_irr3b, i_isr2,
	    i_isr3, i_icr;
	struct avm t;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_wr(&t, R_ICR, ICR_SELF | 0x50);	/* IF=0: both stay pending */
	s_wr(&t, R_ICR, ICR_SELF | 0x60);
	i_icr = s_rd(&t, R_ICR);
	i_irr2 = s_rd(&t, R_IRR + 0x20);	/* vectors 0x40-0x5f */
	i_irr3 = s_rd(&t, R_IRR + 0x30);	/* vectors 0x60-0x7f */
	i_ppr = s_rd(&t, R_PPR);
	s_op(&t, OP_WINDOW, 0, 0);
	i_n50 = s_count(&t, 0x50);
	i_n60 = s_count(&t, 0x60);
	i_irr2b = s_rd(&t, R_IRR + 0x20);
	i_irr3b = s_rd(&t, R_IRR + 0x30);
	i_isr2 = s_rd(&t, R_ISR + 0x20);
	i_isr3 = s_rd(&t, R_ISR + 0x30);
	CHECK_H(s_run(&t));

	CHECK_EQ(res(&t, i_icr) & ~(uint64_t)ICR_BUSY, ICR_SELF | 0x60);
	CHECK_EQ(res(&t, i_irr2), 1U << (0x50 - 0x40));
	CHECK_EQ(res(&t, i_irr3), 1U << (0x60 - 0x60));
	CHECK_EQ(res(&t, i_ppr), 0);
	if (log_n(&t) != 2 || glog(&t)[0].vec != 0x60)
		dump_log(&t);
	CHECK_EQ(res(&t, i_n50), 1);
	CHECK_EQ(res(&t, i_n60), 1);
	CHECK_EQ(log_n(&t), 2);
	CHECK_EQ(glog(&t)[0].vec, 0x60);	/* highest first */
	CHECK_EQ(glog(&t)[1].vec, 0x50);
	CHECK_EQ(res(&t, i_irr2b), 0);
	CHECK_EQ(res(&t, i_irr3b), 0);
	CHECK_EQ(res(&t, i_isr2), 0);
	CHECK_EQ(res(&t, i_isr3), 0);
	return TEST_PASS;
}

static enum test_result test_tpr(const void *arg)
{
	int i_ppr, i_n55a, i_irr, i_n65, i_ppr2, i_n55b;
	struct avm t;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_wr(&t, R_TPR, 0x50);
	i_ppr = s_rd(&t, R_PPR);
	s_wr(&t, R_ICR, ICR_SELF | 0x55);	/* class 5 <= TPR class 5 */
	s_op(&t, OP_WINDOW, 0, 0);
	i_n55a = s_count(&t, 0x55);
	i_irr = s_rd(&t, R_IRR + 0x20);
	s_wr(&t, R_ICR, ICR_SELF | 0x65);	/* class 6 gets through */
	s_op(&t, OP_WINDOW, 0, 0);
	i_n65 = s_count(&t, 0x65);
	s_wr(&t, R_TPR, 0x40);
	i_ppr2 = s_rd(&t, R_PPR);
	s_op(&t, OP_WINDOW, 0, 0);
	i_n55b = s_count(&t, 0x55);
	s_wr(&t, R_TPR, 0);
	CHECK_H(s_run(&t));

	CHECK_EQ(res(&t, i_ppr), 0x50);
	CHECK_EQ(res(&t, i_n55a), 0);
	CHECK_EQ(res(&t, i_irr), 1U << (0x55 - 0x40));
	CHECK_EQ(res(&t, i_n65), 1);
	CHECK_EQ(res(&t, i_ppr2), 0x40);
	CHECK_EQ(res(&t, i_n55b), 1);
	return TEST_PASS;
}

static enum test_result test_isr_eoi(const void *arg)
{
	int i_a60, i_a50, i_isr3, i_ppr, i_a70, i_isr3b, i_isr3c, i_b50,
	    i_isr3d, i_c50, i_isr2;
	struct avm t;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_op(&t, OP_SETEOI, EOI_NONE, 0);	/* the script EOIs */
	s_wr(&t, R_ICR, ICR_SELF | 0x60);
	s_op(&t, OP_WINDOW, 0, 0);
	i_a60 = s_count(&t, 0x60);
	s_wr(&t, R_ICR, ICR_SELF | 0x50);	/* below 0x60 in service */
	s_op(&t, OP_WINDOW, 0, 0);
	i_a50 = s_count(&t, 0x50);
	i_isr3 = s_rd(&t, R_ISR + 0x30);
	i_ppr = s_rd(&t, R_PPR);
	s_wr(&t, R_ICR, ICR_SELF | 0x70);	/* above: nests */
	s_op(&t, OP_WINDOW, 0, 0);
	i_a70 = s_count(&t, 0x70);
	i_isr3b = s_rd(&t, R_ISR + 0x30);
	s_wr(&t, R_EOI, 0);			/* ends 0x70, the highest */
	i_isr3c = s_rd(&t, R_ISR + 0x30);
	s_op(&t, OP_WINDOW, 0, 0);
	i_b50 = s_count(&t, 0x50);
	s_wr(&t, R_EOI, 0);			/* ends 0x60 */
	i_isr3d = s_rd(&t, R_ISR + 0x30);
	s_op(&t, OP_WINDOW, 0, 0);
	i_c50 = s_count(&t, 0x50);
	s_wr(&t, R_EOI, 0);			/* ends 0x50 */
	i_isr2 = s_rd(&t, R_ISR + 0x20);
	CHECK_H(s_run(&t));

	CHECK_EQ(res(&t, i_a60), 1);
	CHECK_EQ(res(&t, i_a50), 0);
	CHECK_EQ(res(&t, i_isr3), 1U << 0);
	CHECK_EQ(res(&t, i_ppr), 0x60);
	CHECK_EQ(res(&t, i_a70), 1);
	CHECK_EQ(res(&t, i_isr3b), 1U << 0 | 1U << (0x70 - 0x60));
	CHECK_EQ(res(&t, i_isr3c), 1U << 0);
	CHECK_EQ(res(&t, i_b50), 0);
	CHECK_EQ(res(&t, i_isr3d), 0);
	CHECK_EQ(res(&t, i_c50), 1);
	CHECK_EQ(res(&t, i_isr2), 0);
	CHECK_EQ(log_n(&t), 3);
	CHECK_EQ(glog(&t)[0].vec, 0x60);
	CHECK_EQ(glog(&t)[1].vec, 0x70);
	CHECK_EQ(glog(&t)[2].vec, 0x50);
	return TEST_PASS;
}

static enum test_result test_cr8(const void *arg)
{
	int i_tpr, i_cr8, i_n1, i_n2, i_cr8b;
	struct avm t;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_op(&t, OP_WRCR8, 5, 0);
	i_tpr = s_rd(&t, R_TPR);
	s_wr(&t, R_TPR, 0x70);
	i_cr8 = s_op(&t, OP_RDCR8, 0, 0);
	s_wr(&t, R_TPR, 0);
	s_op(&t, OP_WRCR8, 6, 0);
	s_wr(&t, R_ICR, ICR_SELF | 0x66);	/* class 6 <= CR8 */
	s_op(&t, OP_WINDOW, 0, 0);
	i_n1 = s_count(&t, 0x66);
	/*
	 * Lowered through the register, not MOV CR8: QEMU's TCG aborts
	 * (BQL assertion in helper_write_crN) when a nested guest writes
	 * CR8 while a V_IRQ is pending, and one is for 0x66 now.
	 */
	s_wr(&t, R_TPR, 0);
	s_op(&t, OP_WINDOW, 0, 0);
	i_n2 = s_count(&t, 0x66);
	i_cr8b = s_op(&t, OP_RDCR8, 0, 0);
	CHECK_H(s_run(&t));

	CHECK_EQ(res(&t, i_tpr), 0x50);
	CHECK_EQ(res(&t, i_cr8), 7);
	CHECK_EQ(res(&t, i_n1), 0);
	CHECK_EQ(res(&t, i_n2), 1);
	CHECK_EQ(res(&t, i_cr8b), 0);
	return TEST_PASS;
}

/* ---- 8: IF and the interrupt shadow ----------------------------------- */

static enum test_result test_if_shadow(const void *arg)
{
	int i_n0, i_n1, i_n2, i_m;
	struct log_entry *l;
	struct avm t;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_wr(&t, R_ICR, ICR_SELF | 0x58);
	s_op(&t, OP_SLEEP_IF0, tsc_ms(2), 0);
	i_n0 = s_count(&t, 0x58);
	s_op(&t, OP_MARK, 0, 0);		/* an exit and entry, IF=0 */
	i_n1 = s_count(&t, 0x58);
	s_op(&t, OP_WINDOW, 0, 0);
	i_n2 = s_count(&t, 0x58);
	/* STI; HLT with the interrupt already pending: HLT still runs */
	s_wr(&t, R_ICR, ICR_SELF | 0x59);
	s_op(&t, OP_STI_HLT, 0, 0);
	i_m = s_count(&t, 0x59);
	CHECK_H(s_run(&t));

	CHECK_EQ(t.runs, 2);			/* the MARK, then the end */
	CHECK_EQ(res(&t, i_n0), 0);
	CHECK_EQ(res(&t, i_n1), 0);
	CHECK_EQ(res(&t, i_n2), 1);
	l = log_find(&t, 0x58, 1);
	CHECK(l);
	/* STI's shadow: exactly the one instruction after it ran first */
	if (l->r8 != 1)
		diag("interrupt taken after %llu instructions past STI, want 1",
		     (unsigned long long)l->r8);
	CHECK_EQ(l->r8, 1);
	CHECK_EQ(res(&t, i_m), 1);
	l = log_find(&t, 0x59, 1);
	CHECK(l);
	CHECK_EQ(l->rip, *(uint64_t *)(t.vm.mem + APIC_HLT_RIP));
	return TEST_PASS;
}

/* ---- 9: MSIs from userspace -------------------------------------------- */

static enum test_result test_msi_wakes_hlt(const void *arg)
{
	uint64_t t0, t1, exits;
	struct delayed d;
	struct avm t;
	bool ok;
	int i_n;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_op(&t, OP_STI_HLT, 0, 0);
	i_n = s_count(&t, 0x50);
	exits = t.v.run->exit_count;
	CHECK_H(delay_msi(&d, 300, t.vm.fd, msi_make(0, 0x50, false)));
	t0 = now_ns();
	ok = s_run(&t);
	t1 = now_ns();
	delay_join(&d);
	CHECK(ok);

	diag("RUN took %.1f ms, the MSI was sent after %.1f ms",
	     (t1 - t0) / 1e6, (d.when_ns - t0) / 1e6);
	if (d.ret < 0)
		diag("KESTREL_SIGNAL_MSI: %s", errno_name(d.err));
	CHECK_EQ(d.ret, 1);
	/* one RUN, returning only after the MSI: it waited in the kernel */
	CHECK_EQ(t.runs, 1);
	CHECK_EQ(t.v.run->exit_count, exits + 1);
	CHECK(t1 >= d.when_ns);
	CHECK_EQ(res(&t, i_n), 1);
	CHECK_EQ(log_n(&t), 1);
	CHECK_EQ(glog(&t)[0].vec, 0x50);
	return TEST_PASS;
}

static enum test_result test_msi_running(const void *arg)
{
	struct delayed d;
	struct avm t;
	int i_w, i_n;
	bool ok;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	i_w = s_op(&t, OP_WAIT, 0x51 | 1ULL << 16 | 1ULL << 32,
		   tsc_ms(5000));
	i_n = s_count(&t, 0x51);
	CHECK_H(delay_msi(&d, 200, t.vm.fd, msi_make(0, 0x51, false)));
	ok = s_run(&t);
	delay_join(&d);
	CHECK(ok);
	CHECK_EQ(d.ret, 1);
	CHECK_EQ(res(&t, i_w), 1);		/* arrived while spinning */
	CHECK_EQ(res(&t, i_n), 1);
	return TEST_PASS;
}

static enum test_result test_msi_destinations(const void *arg)
{
	int i_ldr, i_n54, i_n55, i_n56, i_n57;
	struct avm t;

	(void)arg;
	CHECK_H(avm_setup_enabled(&t, 0));
	s_begin(&t);
	s_wr(&t, R_DFR, 0xffffffff);		/* flat model */
	s_wr(&t, R_LDR, 0x01000000);		/* logical id bit 0 */
	i_ldr = s_rd(&t, R_LDR);
	CHECK_H(s_run(&t));
	CHECK_EQ(res(&t, i_ldr), 0x01000000);

	CHECK_EQ(signal_msi(t.vm.fd, msi_make(0x01, 0x54, true)), 1);
	CHECK_EQ(signal_msi(t.vm.fd, msi_make(0x02, 0x55, true)), 0);
	CHECK_EQ(signal_msi(t.vm.fd, msi_make(0xff, 0x56, false)), 1);
	CHECK_EQ(signal_msi(t.vm.fd,
			    msi_make(0x01, MSI_DM_LOWEST | 0x57, true)), 1);
	s_begin(&t);
	s_op(&t, OP_WINDOW, 0, 0);
	i_n54 = s_count(&t, 0x54);
	i_n55 = s_count(&t, 0x55);
	i_n56 = s_count(&t, 0x56);
	i_n57 = s_count(&t, 0x57);
	CHECK_H(s_run(&t));
	CHECK_EQ(res(&t, i_n54), 1);
	CHECK_EQ(res(&t, i_n55), 0);
	CHECK_EQ(res(&t, i_n56), 1);		/* physical broadcast */
	CHECK_EQ(res(&t, i_n57), 1);
	return TEST_PASS;
}

/* ---- 10: HLT ----------------------------------------------------------- */

static enum test_result test_hlt_no_irqchip(const void *arg)
{
	int i_mm, i_g;
	struct avm t;

	struct kestrel_mp_state mp = { .state = KESTREL_MP_STATE_HALTED };

	(void)arg;
	CHECK_H(avm_setup(&t, false, 0));
	/* Only an in-kernel APIC can end a halt or deliver a SIPI. */
	CHECK_ERR(ioctl(t.v.fd, KESTREL_SET_MP_STATE, &mp), EINVAL);
	mp.state = KESTREL_MP_STATE_WAIT_SIPI;
	CHECK_ERR(ioctl(t.v.fd, KESTREL_SET_MP_STATE, &mp), EINVAL);
	CHECK_ERR(ioctl(t.v.fd, KESTREL_SET_MP_STATE, NULL), EFAULT);
	CHECK_ERR(ioctl(t.v.fd, KESTREL_GET_MP_STATE, NULL), EFAULT);
	mp.state = KESTREL_MP_STATE_RUNNABLE;
	CHECK_OK(ioctl(t.v.fd, KESTREL_SET_MP_STATE, &mp));
	t.hlt_ok = true;
	t.mmio_ok = true;
	t.mmio_val = 0xabcd;
	s_begin(&t);
	s_op(&t, OP_CLI_HLT, 0, 0);
	i_mm = s_rd(&t, R_VER);			/* no APIC: userspace's */
	i_g = s_rdmsr(&t, X2(R_ID));
	CHECK_H(s_run(&t));
	CHECK_EQ(t.nr_hlt, 1);
	CHECK_EQ(t.runs, 3);			/* HLT, MMIO, the end */
	CHECK_EQ(t.nr_mmio, 1);
	CHECK_EQ(t.mmio[0].addr, APIC_DEFAULT_BASE + R_VER);
	CHECK_EQ(res(&t, i_mm), 0xabcd);
	CHECK_EQ(fault(&t, i_g), FAULT_GP);
	return TEST_PASS;
}

static enum test_result test_hlt_if0(const void *arg)
{
	struct kestrel_regs r1, r2;
	struct delayed dm, ds;
	uint64_t t0, t1;
	struct avm t;
	bool ok;
	int i_n;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_op(&t, OP_CLI_HLT, 0, 0);
	i_n = s_count(&t, 0x52);

	/* a fixed interrupt must not wake it (IF=0); the signal must */
	CHECK_H(delay_msi(&dm, 200, t.vm.fd, msi_make(0, 0x52, false)));
	if (!delay_signal(&ds, 500)) {
		delay_join(&dm);
		return TEST_FAIL;
	}
	t0 = now_ns();
	ok = run_expect_eintr(&t);
	t1 = now_ns();
	delay_join(&dm);
	delay_join(&ds);
	diag("RUN returned after %.1f ms", (t1 - t0) / 1e6);
	CHECK(ok);
	CHECK_EQ(dm.ret, 1);
	CHECK(t1 >= ds.when_ns);
	CHECK_H(get_regs(&t.v, &r1));
	CHECK_EQ(r1.rflags & (1ULL << 9), 0);

	/* still halted after EINTR, the interrupt still pending and masked */
	CHECK_H(delay_signal(&ds, 300));
	ok = run_expect_eintr(&t);
	delay_join(&ds);
	CHECK(ok);
	CHECK_H(get_regs(&t.v, &r2));
	CHECK_EQ(r2.rip, r1.rip);
	CHECK_EQ(counts(&t)[0x52], 0);
	CHECK_EQ(t.ops[i_n].res, 0x5a5a5a5a5a5a5a5aULL);	/* not reached */
	return TEST_PASS;
}

static enum test_result test_hlt_if1_signal(const void *arg)
{
	struct delayed ds, dm;
	uint64_t t0, t1;
	struct avm t;
	bool ok;
	int i_n;

	CHECK_H(avm_setup_mode(&t, 0, arg != NULL, true));
	s_begin(&t);
	s_op(&t, OP_STI_HLT, 0, 0);
	i_n = s_count(&t, 0x53);

	CHECK_H(delay_signal(&ds, 200));
	ok = run_expect_eintr(&t);
	delay_join(&ds);
	CHECK(ok);

	CHECK_H(delay_msi(&dm, 300, t.vm.fd, msi_make(0, 0x53, false)));
	t0 = now_ns();
	ok = s_run(&t);
	t1 = now_ns();
	delay_join(&dm);
	CHECK(ok);
	diag("second RUN took %.1f ms", (t1 - t0) / 1e6);
	CHECK_EQ(dm.ret, 1);
	CHECK_EQ(t.runs, 1);
	CHECK(t1 >= dm.when_ns);		/* stayed halted until the MSI */
	/* One MSI, one delivery: a second one says where it struck. */
	if (res(&t, i_n) != 1)
		dump_log(&t);
	CHECK_EQ(res(&t, i_n), 1);
	return TEST_PASS;
}

static const int x2apic_mode = 1;

/* A test through the xAPIC page, then the same through x2APIC MSRs */
#define BOTH(name, fn)						\
	{ name, fn, NULL },					\
	{ name " [x2APIC]", fn, &x2apic_mode }

/* ---- INIT and start-up IPIs ---------------------------------------------- */

#define AP_STUB		0x20000		/* SIPI vector 0x20 */
#define AP_PORT		0xe5

struct ap_run {
	struct vcpu v;
	int ret;
	volatile uint64_t t_exit;	/* 0 while its RUN has not returned */
};

static void *ap_thread(void *p)
{
	struct ap_run *ap = p;

	ap->ret = vcpu_run(&ap->v);
	ap->t_exit = now_ns();
	return NULL;
}

/* The boot CPU in x2APIC mode, and vCPU 1 with @stub at AP_STUB. */
static bool ap_vm_setup(struct avm *t, struct vcpu *ap, const uint8_t *stub,
			size_t len)
{
	if (!avm_setup_mode(t, 0, true, true))
		return false;
	memcpy(t->vm.mem + AP_STUB, stub, len);
	return vcpu_create(&t->vm, ap, 1);
}

/*
 * The boot CPU (vCPU 0, x2APIC) wakes an application processor parked in
 * wait-for-SIPI with INIT, INIT de-assert and SIPI, the way firmware and
 * Linux do: the AP's RUN sleeps until then, and the AP starts in real mode
 * at the SIPI's vector.
 */
static enum test_result test_init_sipi(const void *arg)
{
	/* mov $0x5a, %al; out %al, $AP_PORT; jmp . */
	static const uint8_t stub[] = { 0xb0, 0x5a, 0xe6, AP_PORT, 0xeb, 0xfe };
	struct kestrel_mp_state mp = { 0 };
	struct kestrel_sregs sr;
	struct avm t_sipi_vm;
	struct ap_run ap;
	uint64_t t_ipi;
	pthread_t th;
	uint8_t val;

	(void)arg;
	if (check_cap(KESTREL_CAP_MAX_VCPUS) < 2)
		return test_skip("one vCPU per VM");
	memset(&ap, 0, sizeof(ap));
	CHECK_H(ap_vm_setup(&t_sipi_vm, &ap.v, stub, sizeof(stub)));

	/* A new vCPU runs; parking it is the VMM's (firmware's) call. */
	CHECK_EQ(ioctl(ap.v.fd, KESTREL_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.state, KESTREL_MP_STATE_RUNNABLE);
	mp.state = KESTREL_MP_STATE_WAIT_SIPI;
	CHECK_EQ(ioctl(ap.v.fd, KESTREL_SET_MP_STATE, &mp), 0);
	mp.state = 7;
	CHECK_ERR(ioctl(ap.v.fd, KESTREL_SET_MP_STATE, &mp), EINVAL);
	mp.state = KESTREL_MP_STATE_RUNNABLE;
	mp.reserved = 1;
	CHECK_ERR(ioctl(ap.v.fd, KESTREL_SET_MP_STATE, &mp), EINVAL);

	CHECK_EQ(pthread_create(&th, NULL, ap_thread, &ap), 0);
	usleep(300 * 1000);
	if (ap.t_exit) {
		pthread_join(th, NULL);
		diag("the parked AP's RUN returned: exit %s",
		     exit_reason_name(ap.v.run->exit_reason));
		return TEST_FAIL;
	}

	s_begin(&t_sipi_vm);
	/* INIT assert, INIT de-assert (ignored), SIPI: physical, APIC 1 */
	s_wrmsr(&t_sipi_vm, X2(R_ICR), 1ULL << 32 | 0x4500);
	s_wrmsr(&t_sipi_vm, X2(R_ICR), 1ULL << 32 | 0x8500);
	s_wrmsr(&t_sipi_vm, X2(R_ICR), 1ULL << 32 | 0x0600 | AP_STUB >> 12);
	t_ipi = now_ns();
	CHECK_H(s_run(&t_sipi_vm));
	pthread_join(th, NULL);

	CHECK_EQ(ap.ret, 0);
	CHECK(ap.t_exit >= t_ipi);
	CHECK_EQ(ap.v.run->exit_reason, KESTREL_EXIT_IO);
	CHECK_EQ(ap.v.run->io.port, AP_PORT);
	val = *((uint8_t *)ap.v.run + ap.v.run->io.data_offset);
	CHECK_EQ(val, 0x5a);
	CHECK(get_sregs(&ap.v, &sr));
	CHECK_EQ(sr.cs.selector, AP_STUB >> 4);
	CHECK_EQ(sr.cs.base, AP_STUB);
	CHECK_EQ(sr.cr0 & 1, 0);		/* real mode */
	CHECK_EQ(sr.apic_base & APICBASE_BSP, 0);
	CHECK_EQ(ioctl(ap.v.fd, KESTREL_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.state, KESTREL_MP_STATE_RUNNABLE);
	return TEST_PASS;
}

/*
 * INIT then SIPI, back to back, the way Linux starts a CPU when it skips
 * the 10 ms INIT delay (every CPU of this century): the AP's thread takes
 * the INIT and resets its APIC while the SIPI is being sent to that APIC's
 * ID.  The ID must never read as anything but the AP's own, or the SIPI
 * finds no APIC and the AP never starts.  Many rounds, so that some land
 * in the reset.
 */
#define STORM_ROUNDS	300

struct storm_ap {
	struct vcpu v;
	volatile int started;		/* rounds in which the AP started */
	volatile int stop;
	int bad;			/* 0, or the first odd exit's reason */
};

static void *storm_ap_thread(void *p)
{
	struct storm_ap *ap = p;
	struct kestrel_run *run = ap->v.run;

	while (!ap->stop) {
		if (vcpu_run(&ap->v)) {
			if (errno != EINTR && !ap->bad)
				ap->bad = -errno;
			continue;
		}
		if (run->exit_reason != KESTREL_EXIT_IO ||
		    run->io.port != AP_PORT) {
			if (!ap->bad)
				ap->bad = (int)run->exit_reason;
			break;
		}
		__atomic_add_fetch(&ap->started, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static enum test_result test_init_sipi_storm(const void *arg)
{
	/* mov $0x5a, %al; out %al, $AP_PORT; cli; hlt; jmp .-3 */
	static const uint8_t stub[] = { 0xb0, 0x5a, 0xe6, AP_PORT,
					0xfa, 0xf4, 0xeb, 0xfd };
	struct kestrel_mp_state mp = { .state = KESTREL_MP_STATE_WAIT_SIPI };
	struct avm t_storm;
	struct storm_ap ap;
	enum test_result ret = TEST_PASS;
	pthread_t th;
	int i;

	(void)arg;
	if (check_cap(KESTREL_CAP_MAX_VCPUS) < 2)
		return test_skip("one vCPU per VM");
	memset(&ap, 0, sizeof(ap));
	CHECK_H(ap_vm_setup(&t_storm, &ap.v, stub, sizeof(stub)));
	CHECK_EQ(ioctl(ap.v.fd, KESTREL_SET_MP_STATE, &mp), 0);
	CHECK_EQ(pthread_create(&th, NULL, storm_ap_thread, &ap), 0);

	for (i = 0; i < STORM_ROUNDS && ret == TEST_PASS; i++) {
		uint64_t t0;

		s_begin(&t_storm);
		/* INIT assert, then at once SIPI: physical, APIC 1 */
		s_wrmsr(&t_storm, X2(R_ICR), 1ULL << 32 | 0x4500);
		s_wrmsr(&t_storm, X2(R_ICR), 1ULL << 32 | 0x0600 | AP_STUB >> 12);
		if (!s_run(&t_storm)) {
			ret = TEST_FAIL;
			break;
		}
		t0 = now_ns();
		while (__atomic_load_n(&ap.started, __ATOMIC_ACQUIRE) <= i &&
		       !ap.bad && now_ns() - t0 < 5000000000ULL)
			usleep(50);
		if (ap.bad) {
			diag("round %d: the AP's RUN ended with %d", i, ap.bad);
			ret = TEST_FAIL;
		} else if (ap.started <= i) {
			diag("round %d of %d: INIT then SIPI, the AP never started (SIPI lost)",
			     i + 1, STORM_ROUNDS);
			ret = TEST_FAIL;
		}
	}
	ap.stop = 1;
	ap.v.run->immediate_exit = 1;	/* if it is not in RUN yet */
	pthread_kill(th, SIGUSR1);
	pthread_join(th, NULL);
	if (ret == TEST_PASS)
		CHECK_EQ(ap.started, STORM_ROUNDS);
	return ret;
}

static const struct test_case cases[] = {
	{ "CREATE_IRQCHIP: EINVAL arg, once, EEXIST again, EBUSY after a vCPU",
	  test_create_irqchip, NULL },
	{ "SIGNAL_MSI: ENXIO without irqchip, EINVAL fields, 0 for an absent APIC",
	  test_msi_errors, NULL },
	{ "CPUID 0x40000010 EBX: the 1 GHz APIC timer rate",
	  test_cpuid_timer_leaf, NULL },
	{ "xAPIC page: base MSR, ID, version, reset SVR/LVT, TPR, PPR",
	  test_xapic_regs, NULL },
	{ "x2APIC: EXTD, ID/version/LDR/TPR/SVR MSRs, #GP on bad accesses",
	  test_x2apic_regs, NULL },
	{ "x2APIC: xAPIC page goes to userspace, illegal base transitions #GP",
	  test_x2apic_transitions, NULL },
	{ "x2APIC: self-IPI via SELF_IPI and ICR, EOI via MSR",
	  test_x2apic_ipi, NULL },
	BOTH("software-disabled APIC keeps every LVT masked",
	     test_soft_disable),
	BOTH("ESR latches a send of an illegal vector, which is not delivered",
	     test_esr),
	BOTH("timer one-shot: divide 1 and 16, counts down, fires once, wakes HLT",
	     test_timer_oneshot),
	BOTH("timer periodic: reloads, no faster than its period, mask stops it",
	     test_timer_periodic),
	BOTH("TSC-deadline: fires after the deadline, clears, 0 disarms, past fires",
	     test_tsc_deadline),
	BOTH("TSC-deadline: far deadlines up to 2^64-1 neither trap nor fire",
	     test_tsc_deadline_far),
	BOTH("self-IPI: IRR, highest vector first, IRR/ISR clear after",
	     test_ipi_order),
	BOTH("TPR holds an interrupt of its class until lowered; PPR",
	     test_tpr),
	BOTH("ISR blocks lower classes, nests higher, EOI ends the highest",
	     test_isr_eoi),
	BOTH("CR8 and the TPR register are one: both ways, and CR8 masks",
	     test_cr8),
	BOTH("IF=0 holds an interrupt across exits; STI shadow; STI;HLT",
	     test_if_shadow),
	BOTH("MSI from another thread wakes STI;HLT blocked in the kernel",
	     test_msi_wakes_hlt),
	BOTH("MSI from another thread reaches a spinning vCPU",
	     test_msi_running),
	{ "MSI: logical flat, lowest priority, physical broadcast",
	  test_msi_destinations, NULL },
	{ "without irqchip: HLT exits, APIC page is MMIO, x2APIC MSRs #GP, MP states EINVAL",
	  test_hlt_no_irqchip, NULL },
	BOTH("CLI;HLT: blocks in the kernel, signal gives EINTR, a fixed IRQ does not wake it",
	     test_hlt_if0),
	BOTH("STI;HLT: signal gives EINTR, next RUN stays halted until an MSI",
	     test_hlt_if1_signal),
	{ "INIT, SIPI: a parked AP sleeps, then starts in real mode at the vector",
	  test_init_sipi, NULL },
	{ "INIT then SIPI at once, 300 times: the AP starts every time",
	  test_init_sipi_storm, NULL },
};

int main(int argc, char **argv)
{
	struct sigaction sa;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sigusr1_handler;	/* no SA_RESTART: RUN sees it */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	tsc_khz = check_cap(KESTREL_CAP_TSC_KHZ);
	if (tsc_khz < 0)
		tsc_khz = 0;
	return test_run_all(cases, ARRAY_SIZE(cases));
}
