// SPDX-License-Identifier: GPL-2.0
/*
 * MSRs, the TSC, kvmclock and the guest's XSAVE/AVX state, driven through
 * guests/lm_msr.S: the test lists operations at GUEST_DATA, the guest runs
 * them in long mode and reports each result (and any #GP/#UD it took).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cpuid.h>
#include <sched.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "lib.h"
#include "guests/lm_msr.h"

DECLARE_GUEST(lm_msr);

#define GP	13
#define UD	6

struct msr_op {
	uint32_t op, ecx;
	uint64_t val;
};

struct msr_res {
	uint32_t vector;	/* exception raised: 0, UD or GP */
	uint64_t a, b;
};

#define RDMSR(m)	{ MSR_OP_RDMSR, (m), 0 }
#define WRMSR(m, v)	{ MSR_OP_WRMSR, (m), (v) }
#define RDTSC()		{ MSR_OP_RDTSC, 0, 0 }
#define XSETBV(x, v)	{ MSR_OP_XSETBV, (x), (v) }
#define XGETBV()	{ MSR_OP_XGETBV, 0, 0 }
#define CR4_OR(v)	{ MSR_OP_CR4_OR, 0, (v) }
#define CPUID(l, s)	{ MSR_OP_CPUID, (s), (l) }
#define OP_IN()		{ MSR_OP_IN, 0, 0 }
#define RDPID()		{ MSR_OP_RDPID, 0, 0 }
#define RDTSCP()	{ MSR_OP_RDTSCP, 0, 0 }
#define CPUID_LOOP(n)	{ MSR_OP_CPUID_LOOP, 0, (n) }

#define CR4_OSFXSR	(1ULL << 9)
#define CR4_OSXMMEXCPT	(1ULL << 10)
#define CR4_OSXSAVE	(1ULL << 18)

/* Host SSE/AVX registers checked around every RUN when set (AVX test). */
static bool check_host_ymm;
static uint8_t host_ymm_in[512] __attribute__((aligned(32)));
static uint8_t host_ymm_out[512] __attribute__((aligned(32)));
static bool host_ymm_bad;

/*
 * KESTREL_RUN with the host's YMM0-15 holding a pattern across the
 * system call: the kernel must hand them back as they were, whatever the
 * guest loaded meanwhile.
 */
static long run_with_host_ymm(int fd)
{
	long ret;

	asm volatile(
		".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
		"vmovdqu 32*\\n(%[in]), %%ymm\\n\n\t"
		".endr\n\t"
		"syscall\n\t"
		".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
		"vmovdqu %%ymm\\n, 32*\\n(%[out])\n\t"
		".endr\n\t"
		"vzeroupper"
		: "=a" (ret)
		: "0" ((long)SYS_ioctl), "D" ((long)fd), "S" ((long)KESTREL_RUN),
		  "d" (0L), [in] "r" (host_ymm_in), [out] "r" (host_ymm_out)
		: "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3",
		  "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
		  "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	if (memcmp(host_ymm_in, host_ymm_out, sizeof(host_ymm_in)))
		host_ymm_bad = true;
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return ret;
}

static int run(struct vcpu *v)
{
	return check_host_ymm ? run_with_host_ymm(v->fd) : vcpu_run(v);
}

/* One RUN that must be a 4-byte OUT to PORT_U32. */
static bool next_out(struct vcpu *v, uint32_t *val)
{
	struct kestrel_run *r = v->run;

	if (run(v) < 0) {
		diag("RUN: %s", strerror(errno));
		return false;
	}
	if (r->exit_reason != KESTREL_EXIT_IO ||
	    r->io.direction != KESTREL_EXIT_IO_OUT ||
	    r->io.port != PORT_U32 || r->io.size != 4) {
		diag("expected OUT to 0x%x, got exit %s", PORT_U32,
		     exit_reason_name(r->exit_reason));
		dump_vcpu(v);
		return false;
	}
	memcpy(val, (uint8_t *)r + r->io.data_offset, 4);
	return true;
}

static bool next_out64(struct vcpu *v, uint64_t *val)
{
	uint32_t lo, hi;

	if (!next_out(v, &lo) || !next_out(v, &hi))
		return false;
	*val = (uint64_t)hi << 32 | lo;
	return true;
}

/* The result of the guest's next operation. */
static bool next_result(struct vcpu *v, struct msr_res *res)
{
	return next_out(v, &res->vector) && next_out64(v, &res->a) &&
	       next_out64(v, &res->b);
}

/* A long-mode vCPU on a fresh VM, with @ops queued for the guest. */
static bool setup(struct vm *vm, struct vcpu *v, const struct msr_op *ops,
		  int n)
{
	if (!vm_create(vm, GUEST_MEM_SIZE) || !vcpu_create(vm, v, 0))
		return false;
	memcpy(vm->mem + MSR_OPS, ops, n * sizeof(*ops));
	memset(vm->mem + MSR_OPS + n * sizeof(*ops), 0, sizeof(*ops));
	return vm_load(vm, GUEST(lm_msr)) && vcpu_setup_long(vm, v);
}

/* Run @n ops whose results need no exit in between; results in @res. */
static bool run_ops(struct vm *vm, struct vcpu *v, const struct msr_op *ops,
		    int n, struct msr_res *res)
{
	int i;

	if (!setup(vm, v, ops, n))
		return false;
	for (i = 0; i < n; i++)
		if (!next_result(v, &res[i])) {
			diag("at operation %d", i);
			return false;
		}
	return run_expect_hlt(v);
}

#define CHECK_VEC(res, want)						\
	do {								\
		if ((res).vector != (want)) {				\
			diag("%s:%d: %s: vector %u, want %u", __FILE__,	\
			     __LINE__, #res, (res).vector, (want));	\
			return TEST_FAIL;				\
		}							\
	} while (0)

static uint64_t tsc_hz(void)
{
	long khz = check_cap(KESTREL_CAP_TSC_KHZ);

	return khz > 0 ? (uint64_t)khz * 1000 : 1000000000ULL;
}

static enum test_result test_tsc(const void *arg)
{
	const uint64_t big = 1ULL << 40, minute = 60 * tsc_hz();
	static const struct msr_op ops[] = {
		RDTSC(), RDMSR(0x10), RDTSC(), WRMSR(0x10, 1ULL << 40),
		RDTSC(), RDMSR(0x10), RDMSR(0x3b),
	};
	struct msr_res r[ARRAY_SIZE(ops)];
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(run_ops(&vm, &v, ops, ARRAY_SIZE(ops), r));
	diag("guest TSC at start: %llu (%.3f s)", (unsigned long long)r[0].a,
	     (double)r[0].a / tsc_hz());
	CHECK(r[0].a > 0 && r[0].a < minute);
	CHECK(r[1].a >= r[0].a);
	CHECK(r[2].a >= r[1].a);
	CHECK_VEC(r[3], 0);
	CHECK(r[4].a >= big && r[4].a < big + minute);
	CHECK(r[5].a >= r[4].a);
	CHECK_VEC(r[6], GP);		/* TSC_ADJUST is not offered */
	return TEST_PASS;
}

static enum test_result test_mtrr(const void *arg)
{
	static const struct msr_op ops[] = {
		RDMSR(0xfe), RDMSR(0x2ff), RDMSR(0x250), RDMSR(0x26f),
		RDMSR(0x200), WRMSR(0x2ff, 0x806), RDMSR(0x2ff),
		WRMSR(0x2ff, 0x802), WRMSR(0x2ff, 0x1806),
		WRMSR(0x259, 0x0001040506000600ULL), RDMSR(0x259),
		WRMSR(0x268, 0x0700000000000000ULL),
		WRMSR(0x200, 0x80000000), WRMSR(0x201, 0xff80000800ULL),
		RDMSR(0x201), WRMSR(0x201, 0x801),
		WRMSR(0x201, (1ULL << 60) | 0x800), WRMSR(0x200, 0x80000003),
		WRMSR(0xfe, 0), RDMSR(0x210),
	};
	struct msr_res r[ARRAY_SIZE(ops)];
	struct vm vm;
	struct vcpu v;
	int i;

	(void)arg;
	CHECK_H(run_ops(&vm, &v, ops, ARRAY_SIZE(ops), r));
	for (i = 0; i <= 4; i++)
		CHECK_VEC(r[i], 0);
	CHECK_EQ(r[0].a, 0x508);		/* 8 variable, fixed, WC */
	CHECK_EQ(r[1].a, 0xc06);		/* enabled, fixed on, WB */
	CHECK_EQ(r[2].a, 0x0606060606060606ULL);
	CHECK_EQ(r[3].a, 0x0606060606060606ULL);
	CHECK_EQ(r[4].a, 0);
	CHECK_VEC(r[5], 0);
	CHECK_EQ(r[6].a, 0x806);
	CHECK_VEC(r[7], GP);			/* type 2 */
	CHECK_VEC(r[8], GP);			/* reserved bit 12 */
	CHECK_VEC(r[9], 0);
	CHECK_EQ(r[10].a, 0x0001040506000600ULL);
	CHECK_VEC(r[11], GP);			/* type 7 */
	CHECK_VEC(r[12], 0);
	CHECK_VEC(r[13], 0);
	CHECK_EQ(r[14].a, 0xff80000800ULL);
	CHECK_VEC(r[15], GP);			/* mask bit 0 */
	CHECK_VEC(r[16], GP);			/* above MAXPHYADDR */
	CHECK_VEC(r[17], GP);			/* base type 3 */
	CHECK_VEC(r[18], GP);			/* MTRRcap is read-only */
	CHECK_VEC(r[19], GP);			/* no 9th variable range */
	return TEST_PASS;
}

static enum test_result test_boot_msrs(const void *arg)
{
	static const struct msr_op ops[] = {
		RDMSR(0xc0010015), WRMSR(0xc0010015, 1ULL << 24),
		WRMSR(0xc0010015, 0),			/* HWCR */
		RDMSR(0xc0010010), WRMSR(0xc0010010, 0),
		WRMSR(0xc0010010, 1ULL << 18),		/* SYSCFG */
		RDMSR(0xc0011029), WRMSR(0xc0011029, 2),
		WRMSR(0xc0011029, 1),			/* DE_CFG */
		RDMSR(0xc001001f), WRMSR(0xc001001f, 1ULL << 46),
		RDMSR(0xc001001f), WRMSR(0xc001001f, 1),	/* NB_CFG */
		RDMSR(0x8b),				/* PATCH_LEVEL */
		RDMSR(0x1a0), WRMSR(0x1a0, 0x1800),
		WRMSR(0x1a0, 0x1800 | (1ULL << 22)),	/* MISC_ENABLE */
		RDMSR(0xc0011020), RDMSR(0xc0010000), RDMSR(0x48),
		RDMSR(0x179), RDMSR(0xc0010140),
	};
	struct msr_res r[ARRAY_SIZE(ops)];
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(run_ops(&vm, &v, ops, ARRAY_SIZE(ops), r));
	CHECK_VEC(r[0], 0);
	CHECK(r[0].a & (1ULL << 24));		/* TscFreqSel */
	CHECK_VEC(r[1], 0);
	CHECK_VEC(r[2], GP);
	CHECK_VEC(r[3], 0);
	CHECK_EQ(r[3].a, 0);
	CHECK_VEC(r[4], 0);
	CHECK_VEC(r[5], GP);
	CHECK_EQ(r[6].a, 2);			/* LFENCE serializing */
	CHECK_VEC(r[7], 0);
	CHECK_VEC(r[8], GP);
	CHECK_EQ(r[9].a, 0);
	CHECK_VEC(r[10], 0);
	CHECK_EQ(r[11].a, 1ULL << 46);
	CHECK_VEC(r[12], GP);
	CHECK_VEC(r[13], 0);
	CHECK_VEC(r[14], 0);
	CHECK_EQ(r[14].a, 0x1801);
	CHECK_VEC(r[15], 0);
	CHECK_VEC(r[16], GP);
	/* LS_CFG, PERF_CTL0, SPEC_CTRL, MCG_CAP, OSVW: not offered */
	CHECK_VEC(r[17], GP);
	CHECK_VEC(r[18], GP);
	CHECK_VEC(r[19], GP);
	CHECK_VEC(r[20], GP);
	CHECK_VEC(r[21], GP);
	return TEST_PASS;
}

/* MSRs VMLOAD/VMSAVE carry: the guest owns them, across exits too. */
static enum test_result test_passthrough(const void *arg)
{
	static const struct { uint32_t msr; uint64_t val; } m[] = {
		{ 0xc0000081, 0x0023001000000000ULL },	/* STAR */
		{ 0xc0000082, 0xffffffff81000000ULL },	/* LSTAR */
		{ 0xc0000083, 0xffffffff81000100ULL },	/* CSTAR */
		{ 0xc0000084, 0x47700 },		/* SFMASK */
		{ 0xc0000102, 0xffff888000001000ULL },	/* KERNEL_GS_BASE */
		{ 0xc0000100, 0x00007f0000001000ULL },	/* FS_BASE */
		{ 0xc0000101, 0xffff888000002000ULL },	/* GS_BASE */
		{ 0x174, 0x10 },			/* SYSENTER_CS */
		{ 0x175, 0x12345678 },			/* SYSENTER_ESP */
		{ 0x176, 0x87654321 },			/* SYSENTER_EIP */
	};
	const int n = ARRAY_SIZE(m);
	struct msr_op ops[2 * ARRAY_SIZE(m) + 1];
	struct msr_res res;
	struct vm vm;
	struct vcpu v;
	int i;

	(void)arg;
	for (i = 0; i < n; i++) {
		ops[i] = (struct msr_op)WRMSR(m[i].msr, m[i].val);
		ops[n + 1 + i] = (struct msr_op)RDMSR(m[i].msr);
	}
	ops[n] = (struct msr_op)OP_IN();
	CHECK_H(setup(&vm, &v, ops, ARRAY_SIZE(ops)));
	for (i = 0; i < n; i++) {
		CHECK_H(next_result(&v, &res));
		CHECK_VEC(res, 0);
	}
	CHECK_H(run_expect_in(&v, PORT_IN, 4, 0x1234));
	CHECK_H(next_result(&v, &res));
	CHECK_EQ(res.a, 0x1234);
	for (i = 0; i < n; i++) {
		CHECK_H(next_result(&v, &res));
		CHECK_VEC(res, 0);
		if (res.a != m[i].val) {
			diag("MSR 0x%x: read 0x%llx, wrote 0x%llx", m[i].msr,
			     (unsigned long long)res.a,
			     (unsigned long long)m[i].val);
			return TEST_FAIL;
		}
	}
	CHECK_H(run_expect_hlt(&v));
	return TEST_PASS;
}

#define MSR_TSC_AUX	0xc0000103

static void host_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	asm volatile("cpuid" : "=a" (r[0]), "=b" (r[1]), "=c" (r[2]), "=d" (r[3])
		     : "a" (leaf), "c" (sub));
}

/* The host's TSC_AUX on this CPU, by RDPID or RDTSCP; false: neither. */
static bool host_tsc_aux(bool rdpid, bool rdtscp, uint32_t *aux)
{
	uint64_t v;
	uint32_t lo, hi, c;

	if (rdpid) {
		asm volatile(".byte 0xf3, 0x0f, 0xc7, 0xf8" : "=a" (v));
		*aux = v;
		return true;
	}
	if (rdtscp) {
		asm volatile("rdtscp" : "=a" (lo), "=d" (hi), "=c" (c));
		*aux = c;
		return true;
	}
	return false;
}

/*
 * TSC_AUX is the guest's: WRMSR/RDMSR keep its value, and RDPID, which
 * SVM cannot intercept, reads it, not the host's.  RDTSCP is not offered
 * (#UD), or where an emulated CPU ignores the intercept reads the
 * guest's.  The host's value on the CPU that ran the guest is unchanged.
 */
static enum test_result test_tsc_aux(const void *arg)
{
	static const struct msr_op ops[] = {
		RDMSR(MSR_TSC_AUX), WRMSR(MSR_TSC_AUX, 0x1234),
		RDMSR(MSR_TSC_AUX), RDPID(), RDTSCP(), OP_IN(), RDPID(),
		RDMSR(MSR_TSC_AUX), WRMSR(MSR_TSC_AUX, 1ULL << 32),
		RDMSR(MSR_TSC_AUX),
	};
	struct msr_res r[ARRAY_SIZE(ops)];
	uint32_t c[4], before = 0, after = 0;
	bool h_rdpid, h_rdtscp, have;
	struct vcpu v;
	struct vm vm;
	cpu_set_t set;
	int i;

	(void)arg;
	host_cpuid(7, 0, c);
	h_rdpid = c[2] & (1U << 22);
	host_cpuid(0x80000001, 0, c);
	h_rdtscp = c[3] & (1U << 27);
	diag("host: RDPID %d RDTSCP %d", h_rdpid, h_rdtscp);
	/* One CPU: the guest's TSC_AUX would be left on this one. */
	CPU_ZERO(&set);
	CPU_SET(sched_getcpu(), &set);
	CHECK_OK(sched_setaffinity(0, sizeof(set), &set));
	have = host_tsc_aux(h_rdpid, h_rdtscp, &before);

	CHECK_H(setup(&vm, &v, ops, ARRAY_SIZE(ops)));
	for (i = 0; i < 5; i++)
		CHECK_H(next_result(&v, &r[i]));
	CHECK_H(run_expect_in(&v, PORT_IN, 4, 0));
	for (i = 5; i < (int)ARRAY_SIZE(ops); i++)
		CHECK_H(next_result(&v, &r[i]));
	CHECK_H(run_expect_hlt(&v));
	if (have) {
		host_tsc_aux(h_rdpid, h_rdtscp, &after);
		diag("host TSC_AUX 0x%x before, 0x%x after", before, after);
	}
	CPU_ZERO(&set);
	for (i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);

	diag("guest RDPID: vector %u, 0x%llx", r[3].vector,
	     (unsigned long long)r[3].a);
	CHECK_VEC(r[0], 0);
	CHECK_EQ(r[0].a, 0);		/* 0 at RESET */
	CHECK_VEC(r[1], 0);
	CHECK_VEC(r[2], 0);
	CHECK_EQ(r[2].a, 0x1234);
	/* RDPID: the guest's value, or #UD where the CPU has none or VMX. */
	if (r[3].vector == 0)
		CHECK_EQ(r[3].a, 0x1234);
	else
		CHECK_VEC(r[3], UD);
	if (h_rdpid && check_cap(KESTREL_CAP_BACKEND) == KESTREL_BACKEND_SVM)
		CHECK_VEC(r[3], 0);	/* SVM cannot stop it */
	/*
	 * RDTSCP: not offered, and intercepted to raise #UD; QEMU's emulated
	 * SVM ignores that intercept, and then it must read the guest's.
	 */
	diag("guest RDTSCP: vector %u, TSC_AUX 0x%llx", r[4].vector,
	     (unsigned long long)r[4].a);
	if (r[4].vector == 0)
		CHECK_EQ(r[4].a, 0x1234);
	else
		CHECK_VEC(r[4], UD);
	/* After an exit to userspace, and back: still the guest's. */
	CHECK_VEC(r[6], r[3].vector);
	if (r[6].vector == 0)
		CHECK_EQ(r[6].a, 0x1234);
	CHECK_EQ(r[7].a, 0x1234);
	CHECK_VEC(r[8], GP);		/* bits 63:32 are reserved */
	CHECK_EQ(r[9].a, 0x1234);
	CHECK_EQ(after, before);
	return TEST_PASS;
}

static enum test_result test_unknown_gp(const void *arg)
{
	static const struct msr_op ops[] = {
		RDMSR(0x12345678), WRMSR(0x12345678, 1), RDMSR(0xc0010000),
		WRMSR(0x4b564d02, 1), RDMSR(0x4b564d00),
	};
	struct msr_res r[ARRAY_SIZE(ops)];
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(run_ops(&vm, &v, ops, ARRAY_SIZE(ops), r));
	CHECK_VEC(r[0], GP);
	CHECK_VEC(r[1], GP);
	CHECK_VEC(r[2], GP);
	CHECK_VEC(r[3], GP);		/* a KVM MSR not offered */
	CHECK_VEC(r[4], 0);		/* the wall clock MSR is */
	return TEST_PASS;
}

static bool expect_msr_exit(struct vcpu *v, uint32_t index, bool write,
			    uint64_t data)
{
	struct kestrel_run *r = v->run;

	if (vcpu_run(v) < 0 || r->exit_reason != KESTREL_EXIT_MSR) {
		diag("expected an MSR exit, got %s",
		     exit_reason_name(r->exit_reason));
		return false;
	}
	if (r->msr.index != index || r->msr.is_write != write ||
	    (write && r->msr.data != data)) {
		diag("MSR exit: index 0x%x write %u data 0x%llx", r->msr.index,
		     r->msr.is_write, (unsigned long long)r->msr.data);
		return false;
	}
	return true;
}

static enum test_result test_policy_exit(const void *arg)
{
	static const struct msr_op ops[] = {
		RDMSR(0x12345678), WRMSR(0x12345678, 0xfeedfacecafef00dULL),
		RDMSR(0xc0010000), WRMSR(0xc0010000, 5), RDMSR(0xfe),
	};
	struct kestrel_run *r;
	struct msr_res res;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(setup(&vm, &v, ops, ARRAY_SIZE(ops)));
	CHECK_ERR(ioctl(vm.fd, KESTREL_SET_MSR_POLICY, 2), EINVAL);
	CHECK_OK(ioctl(vm.fd, KESTREL_SET_MSR_POLICY, KESTREL_MSR_POLICY_EXIT));
	r = v.run;

	/* A read userspace answers */
	CHECK_H(expect_msr_exit(&v, 0x12345678, false, 0));
	r->msr.data = 0x1122334455667788ULL;
	r->msr.error = 0;
	CHECK_H(next_result(&v, &res));
	CHECK_VEC(res, 0);
	CHECK_EQ(res.a, 0x1122334455667788ULL);

	/* A write userspace refuses */
	CHECK_H(expect_msr_exit(&v, 0x12345678, true, 0xfeedfacecafef00dULL));
	r->msr.error = 1;
	CHECK_H(next_result(&v, &res));
	CHECK_VEC(res, GP);

	/* A read userspace refuses, a write it takes */
	CHECK_H(expect_msr_exit(&v, 0xc0010000, false, 0));
	r->msr.error = 1;
	CHECK_H(next_result(&v, &res));
	CHECK_VEC(res, GP);
	CHECK_H(expect_msr_exit(&v, 0xc0010000, true, 5));
	r->msr.error = 0;
	CHECK_H(next_result(&v, &res));
	CHECK_VEC(res, 0);

	/* MSRs Kestrel emulates never reach userspace. */
	CHECK_H(next_result(&v, &res));
	CHECK_VEC(res, 0);
	CHECK_EQ(res.a, 0x508);
	CHECK_H(run_expect_hlt(&v));
	return TEST_PASS;
}

struct pvti {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t mul;
	int8_t shift;
	uint8_t flags, pad[2];
} __attribute__((packed));

struct wall {
	uint32_t version, sec, nsec;
} __attribute__((packed));

static enum test_result test_kvmclock(const void *arg)
{
	static const struct msr_op ops[] = {
		CPUID(0x40000000, 0), CPUID(0x40000010, 0),
		CPUID(0x40000100, 0), CPUID(0x40000101, 0),
		WRMSR(0x4b564d01, MSR_PVTI | 1), WRMSR(0x4b564d00, MSR_WALL),
		RDTSC(), RDMSR(0x4b564d01),
		WRMSR(0x4b564d01, 0x7f00000001ULL),	/* no memory there */
		WRMSR(0x4b564d01, MSR_PVTI | 3),	/* misaligned */
		WRMSR(0x4b564d00, 0xfffffffff000ULL),
	};
	struct msr_res r[ARRAY_SIZE(ops)];
	long khz = check_cap(KESTREL_CAP_TSC_KHZ);
	struct pvti p;
	struct wall w;
	struct timespec now;
	double pv_khz, wall_s;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	if (khz <= 0)
		return test_skip("KESTREL_CAP_TSC_KHZ is %ld", khz);
	CHECK_H(run_ops(&vm, &v, ops, ARRAY_SIZE(ops), r));
	clock_gettime(CLOCK_REALTIME, &now);
	CHECK_EQ(r[0].a >> 32, 0x7473654b);		/* "Kest" */
	CHECK_EQ((uint32_t)r[0].a, 0x40000010);
	CHECK_EQ((uint32_t)r[1].a, khz);
	CHECK_EQ(r[1].a >> 32, 1000000);		/* APIC timer: 1 GHz */
	CHECK_EQ(r[2].a >> 32, 0x4b4d564b);		/* "KVMK" */
	CHECK_EQ(r[2].b, 0x0000004d564b4d56ULL);	/* "VMKV", "M" */
	CHECK_EQ((uint32_t)r[3].a, (1U << 3) | (1U << 24));
	CHECK_VEC(r[4], 0);
	CHECK_VEC(r[5], 0);
	CHECK_EQ(r[7].a, MSR_PVTI | 1);
	CHECK_VEC(r[8], 0);
	CHECK_VEC(r[9], GP);
	CHECK_VEC(r[10], 0);

	memcpy(&p, vm.mem + MSR_PVTI, sizeof(p));
	memcpy(&w, vm.mem + MSR_WALL, sizeof(w));
	pv_khz = 1e6 * 4294967296.0 / p.mul;
	pv_khz = p.shift < 0 ? pv_khz * (1 << -p.shift) : pv_khz / (1 << p.shift);
	wall_s = w.sec + w.nsec / 1e9 + (double)p.system_time / 1e9;
	diag("pvclock: version %u mul %u shift %d flags 0x%x -> %.0f kHz (host %ld); system_time %llu ns; tsc %llu",
	     p.version, p.mul, p.shift, p.flags, pv_khz, khz,
	     (unsigned long long)p.system_time,
	     (unsigned long long)p.tsc_timestamp);
	CHECK(p.version && !(p.version & 1));
	CHECK(p.mul >= 1U << 31);
	CHECK(pv_khz > khz * 0.99 && pv_khz < khz * 1.01);
	CHECK(p.tsc_timestamp > 0 && p.tsc_timestamp <= r[6].a);
	CHECK(p.system_time < 60 * 1000000000ULL);
	CHECK(!(p.flags & ~1));
	CHECK(w.version && !(w.version & 1));
	/* Wall clock at VM time 0, plus VM time: about now. */
	CHECK(wall_s > now.tv_sec - 10 && wall_s < now.tv_sec + 10);
	return TEST_PASS;
}

static bool host_has_avx(void)
{
	unsigned int a, b, c, d;
	uint32_t lo, hi;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1U << 28)) ||
	    !(c & (1U << 27)))
		return false;
	asm volatile("xgetbv" : "=a" (lo), "=d" (hi) : "c" (0));
	return (lo & 6) == 6;
}

/* Is "avx" among the emulated host's CPU flags? For the log. */
static void diag_cpuinfo(void)
{
	char line[4096];
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5)) {
			diag("host /proc/cpuinfo: avx %s, avx2 %s, xsave %s",
			     strstr(line, " avx ") ? "yes" : "no",
			     strstr(line, " avx2 ") ? "yes" : "no",
			     strstr(line, " xsave ") ? "yes" : "no");
			break;
		}
	fclose(f);
}

static enum test_result test_avx(const void *arg)
{
	static const struct msr_op ops[] = {
		CPUID(1, 0), XSETBV(0, 7), CR4_OR(CR4_OSFXSR | CR4_OSXMMEXCPT |
						  CR4_OSXSAVE),
		CPUID(1, 0), CPUID(0xd, 0), XSETBV(0, 7), XGETBV(),
		CPUID(0xd, 0), XSETBV(0, 0), XSETBV(0, 5), XSETBV(0, 0xb),
		XSETBV(1, 7),
		{ MSR_OP_YMM_LOAD, 0, 0 }, OP_IN(), OP_IN(),
		{ MSR_OP_YMM_STORE, 0, 0 },
	};
	struct msr_res r[ARRAY_SIZE(ops)];
	struct kestrel_cpuid *sup;
	struct kestrel_cpuid_entry *e;
	struct vm vm;
	struct vcpu v;
	uint8_t *in;
	unsigned int i;

	(void)arg;
	diag_cpuinfo();
	CHECK((sup = get_supported_cpuid()));
	e = cpuid_find(sup, 1, 0);
	CHECK(e);
	if (!(e->ecx & (1U << 28)) || !host_has_avx())
		return test_skip("no AVX offered (host without AVX/XSAVE)");
	CHECK(e->ecx & (1U << 26));		/* XSAVE */
	CHECK(!(e->ecx & (1U << 27)));		/* OSXSAVE: from CR4 */
	CHECK((e = cpuid_find(sup, 0xd, 0)));
	CHECK_EQ(e->eax, 7);
	CHECK_EQ(e->ecx, 832);

	CHECK_H(setup(&vm, &v, ops, ARRAY_SIZE(ops)));
	in = vm.mem + MSR_YMM_IN;
	for (i = 0; i < 512; i++) {
		in[i] = i * 7 + 1;
		host_ymm_in[i] = 0xa5 ^ (i * 13);
	}
	for (i = 0; i < 12; i++)
		CHECK_H(next_result(&v, &r[i]));
	CHECK(!(r[0].b & (1U << 27)));		/* OSXSAVE clear */
	CHECK_VEC(r[1], UD);			/* before CR4.OSXSAVE */
	CHECK_VEC(r[2], 0);
	CHECK(r[2].a & CR4_OSXSAVE);
	CHECK(r[3].b & (1U << 27));		/* OSXSAVE set */
	CHECK_EQ(r[4].a >> 32, 576);		/* EBX: size for XCR0 = 1 */
	CHECK_VEC(r[5], 0);
	CHECK_EQ(r[6].a, 7);
	CHECK_EQ(r[7].a >> 32, 832);
	CHECK_VEC(r[8], GP);			/* no x87 */
	CHECK_VEC(r[9], GP);			/* AVX without SSE */
	CHECK_VEC(r[10], GP);			/* a state not offered */
	CHECK_VEC(r[11], GP);			/* XCR1 */

	/* From here on the host's own YMM registers are checked too. */
	check_host_ymm = true;
	host_ymm_bad = false;
	CHECK_H(next_result(&v, &r[12]));
	CHECK_VEC(r[12], 0);
	for (i = 0; i < 2; i++) {
		if (run_with_host_ymm(v.fd) < 0 ||
		    v.run->exit_reason != KESTREL_EXIT_IO ||
		    v.run->io.direction != KESTREL_EXIT_IO_IN) {
			check_host_ymm = false;
			diag("expected IN, got %s",
			     exit_reason_name(v.run->exit_reason));
			return TEST_FAIL;
		}
		memset((uint8_t *)v.run + v.run->io.data_offset, 0x42, 4);
		CHECK_H(next_result(&v, &r[13 + i]));
	}
	CHECK_H(next_result(&v, &r[15]));
	check_host_ymm = false;
	CHECK(!host_ymm_bad);
	CHECK_VEC(r[15], 0);
	if (memcmp(vm.mem + MSR_YMM_OUT, in, 512)) {
		for (i = 0; i < 512 && vm.mem[MSR_YMM_OUT + i] == in[i]; i++)
			;
		diag("guest YMM%u byte %u differs after exits", i / 32, i % 32);
		return TEST_FAIL;
	}
	CHECK_H(run_expect_hlt(&v));
	return TEST_PASS;
}

/*
 * A thread on the vCPU's CPU that keeps a YMM pattern of its own loaded
 * for a while, over and over, and checks it: the scheduler switches
 * between it and the vCPU thread in the middle of RUN.
 */
struct ymm_rival {
	pthread_t thread;
	int cpu;
	volatile bool stop;
	unsigned long rounds, bad;
};

static void *ymm_rival_fn(void *arg)
{
	static uint8_t in[512] __attribute__((aligned(32)));
	static uint8_t out[512] __attribute__((aligned(32)));
	struct ymm_rival *r = arg;
	cpu_set_t set;
	unsigned int i;

	CPU_ZERO(&set);
	CPU_SET(r->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	for (i = 0; i < sizeof(in); i++)
		in[i] = 0x3c ^ (i * 29);
	while (!r->stop) {
		asm volatile(
			".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
			"vmovdqu 32*\\n(%[in]), %%ymm\\n\n\t"
			".endr\n\t"
			"mov $200000, %%ecx\n"
			"1:\tdec %%ecx\n\t"
			"jnz 1b\n\t"
			".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
			"vmovdqu %%ymm\\n, 32*\\n(%[out])\n\t"
			".endr\n\t"
			"vzeroupper"
			: : [in] "r" (in), [out] "r" (out)
			: "rcx", "memory", "xmm0", "xmm1", "xmm2", "xmm3",
			  "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
			  "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
		if (memcmp(in, out, sizeof(in)))
			r->bad++;
		r->rounds++;
	}
	return NULL;
}

/* This thread's involuntary context switches so far, or -1. */
static long involuntary_switches(void)
{
	char line[256];
	FILE *f = fopen("/proc/thread-self/status", "r");
	long n = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "nonvoluntary_ctxt_switches: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/*
 * The guest's YMM registers live in the CPU across exits the kernel
 * handles, and the vCPU thread stays preemptible meanwhile: thousands of
 * CPUID exits in each RUN, then the guest's YMM registers stored before
 * the RUN ends, with another thread using its own YMM state on the same
 * CPU.  Neither may see the other's values.
 */
static enum test_result test_avx_preempted(const void *arg)
{
	static const struct msr_op ops[] = {
		CR4_OR(CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE),
		XSETBV(0, 7), { MSR_OP_YMM_LOAD, 0, 0 },
		CPUID_LOOP(10000), CPUID_LOOP(10000), CPUID_LOOP(10000),
		CPUID_LOOP(10000), { MSR_OP_YMM_STORE, 0, 0 },
	};
	struct msr_res r[ARRAY_SIZE(ops)];
	struct ymm_rival rival = { .cpu = sched_getcpu() };
	struct kestrel_cpuid *sup;
	struct kestrel_cpuid_entry *e;
	long sw0, sw1;
	cpu_set_t set;
	struct vm vm;
	struct vcpu v;
	uint8_t *in;
	unsigned int i, ymm_lost = 0;
	bool started;

	(void)arg;
	CHECK((sup = get_supported_cpuid()));
	e = cpuid_find(sup, 1, 0);
	CHECK(e);
	if (!(e->ecx & (1U << 28)) || !host_has_avx())
		return test_skip("no AVX offered (host without AVX/XSAVE)");

	CHECK_H(setup(&vm, &v, ops, ARRAY_SIZE(ops)));
	in = vm.mem + MSR_YMM_IN;
	for (i = 0; i < 512; i++)
		in[i] = i * 11 + 3;
	for (i = 0; i < 3; i++) {
		CHECK_H(next_result(&v, &r[i]));
		CHECK_VEC(r[i], 0);
	}

	CPU_ZERO(&set);
	CPU_SET(rival.cpu, &set);
	CHECK_OK(sched_setaffinity(0, sizeof(set), &set));
	sw0 = involuntary_switches();
	started = start_thread(ymm_rival_fn, &rival, &rival.thread);
	for (i = 3; started && i < 7; i++) {
		if (!next_result(&v, &r[i]))
			break;
		if (memcmp(vm.mem + MSR_YMM_OUT, in, 512))
			ymm_lost++;
	}
	rival.stop = true;
	if (started)
		pthread_join(rival.thread, NULL);
	sw1 = involuntary_switches();
	CPU_ZERO(&set);
	for (i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
	CHECK(started);
	for (i = 3; i < 7; i++)
		CHECK_VEC(r[i], 0);

	diag("vCPU thread preempted %ld times; the other thread ran %lu rounds",
	     sw1 - sw0, rival.rounds);
	CHECK(sw0 >= 0 && sw1 > sw0);
	CHECK(rival.rounds > 0);
	CHECK_EQ(rival.bad, 0);
	/* Stored by the guest after its CPUIDs, in the same RUN. */
	CHECK_EQ(ymm_lost, 0);
	CHECK_H(next_result(&v, &r[7]));
	CHECK_VEC(r[7], 0);
	if (memcmp(vm.mem + MSR_YMM_OUT, in, 512)) {
		for (i = 0; i < 512 && vm.mem[MSR_YMM_OUT + i] == in[i]; i++)
			;
		diag("guest YMM%u byte %u differs after preemption", i / 32,
		     i % 32);
		return TEST_FAIL;
	}
	CHECK_H(run_expect_hlt(&v));
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "TSC_AUX is the guest's: RDMSR, RDPID; RDTSCP #UD; host's intact",
	  test_tsc_aux, NULL },
	{ "TSC starts near 0, is monotonic and writable", test_tsc, NULL },
	{ "MTRRs: defaults, stored values, type and reserved-bit checks",
	  test_mtrr, NULL },
	{ "MSRs Linux reads at boot: sane values, filtered writes",
	  test_boot_msrs, NULL },
	{ "VMLOAD/VMSAVE MSRs keep the guest's values across exits",
	  test_passthrough, NULL },
	{ "unknown MSRs raise #GP by default", test_unknown_gp, NULL },
	{ "KESTREL_MSR_POLICY_EXIT: reads, writes, #GP from userspace",
	  test_policy_exit, NULL },
	{ "kvmclock: CPUID leaves, time page and wall clock", test_kvmclock,
	  NULL },
	{ "XSAVE/AVX: XSETBV checks, YMM kept across exits, host intact",
	  test_avx, NULL },
	{ "YMM kept across in-kernel exits with the vCPU thread preempted",
	  test_avx_preempted, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
