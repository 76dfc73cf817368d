// SPDX-License-Identifier: GPL-2.0
/*
 * New state from userspace (SET_REGS, SET_SREGS) voids an exception the
 * old state had pending: it belongs to an instruction the owner has just
 * replaced, and delivered under the new state it is wrong, or impossible
 * (an error code in real mode makes SVM refuse VMRUN).  And the states
 * emulated CPUs are known to mishandle.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "lib.h"
#include "guests/lm_msr.h"

DECLARE_GUEST(lm_msr);
DECLARE_GUEST(pm_pio);

/* mov $0x5a, %al; out %al, $PORT_U8; hlt: the same bytes in every mode. */
#define STUB_GPA	0x7800
static const uint8_t stub[] = { 0xb0, 0x5a, 0xe6, PORT_U8, 0xf4 };

#define UNKNOWN_MSR	0x12345678

/*
 * A long-mode vCPU left with a #GP pending: an RDMSR that userspace
 * refuses (MSR policy EXIT, msr.error set), completed by a RUN that
 * immediate_exit ends before the next entry delivers the #GP.
 */
static bool pending_gp(struct vm *vm, struct vcpu *v)
{
	struct { uint32_t op, ecx; uint64_t val; } ops[2] = {
		{ MSR_OP_RDMSR, UNKNOWN_MSR, 0 },
	};
	int r;

	if (!vm_create(vm, GUEST_MEM_SIZE) || !vcpu_create(vm, v, 0))
		return false;
	memcpy(vm->mem + MSR_OPS, ops, sizeof(ops));
	memcpy(vm->mem + STUB_GPA, stub, sizeof(stub));
	if (!vm_load(vm, GUEST(lm_msr)) || !vcpu_setup_long(vm, v))
		return false;
	if (ioctl(vm->fd, KESTREL_SET_MSR_POLICY, KESTREL_MSR_POLICY_EXIT)) {
		diag("SET_MSR_POLICY: %s", strerror(errno));
		return false;
	}
	if (!run_expect_exit(v, KESTREL_EXIT_MSR))
		return false;
	if (v->run->msr.index != UNKNOWN_MSR) {
		diag("MSR exit for 0x%x", v->run->msr.index);
		return false;
	}
	v->run->msr.error = 1;
	v->run->immediate_exit = 1;
	r = ioctl(v->fd, KESTREL_RUN, 0UL);
	v->run->immediate_exit = 0;
	if (r != -1 || errno != EINTR) {
		diag("RUN with immediate_exit: %d (%s)", r, errno_name(errno));
		return false;
	}
	return true;
}

/* The stub runs, and nothing else: no #GP delivered on the way. */
static bool expect_stub(struct vcpu *v)
{
	uint32_t val;

	if (!run_expect_out(v, PORT_U8, 1, &val))
		return false;
	if (val != 0x5a) {
		diag("OUT 0x%x, want 0x5a", val);
		return false;
	}
	return run_expect_hlt(v);
}

static enum test_result test_set_regs_voids(const void *arg)
{
	struct kestrel_regs regs;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(pending_gp(&vm, &v));
	CHECK_H(get_regs(&v, &regs));
	regs.rip = STUB_GPA;
	CHECK_H(set_regs(&v, &regs));
	CHECK_H(expect_stub(&v));
	return TEST_PASS;
}

static enum test_result test_set_sregs_voids(const void *arg)
{
	struct kestrel_sregs s;
	struct kestrel_regs regs;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(pending_gp(&vm, &v));
	/* Real mode, CS:IP = 0:STUB_GPA: a #GP(0) has no place there. */
	CHECK_H(get_sregs(&v, &s));
	s.cs.selector = 0;
	s.cs.base = 0;
	s.cs.limit = 0xffff;
	s.cs.type = 0xb;
	s.cs.l = s.cs.db = s.cs.g = 0;
	s.ds.selector = 0;
	s.ds.base = 0;
	s.ds.limit = 0xffff;
	s.ds.db = s.ds.g = 0;
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.cr0 = X86_CR0_ET;
	s.cr4 = 0;
	s.efer = 0;
	s.idt.base = 0;
	s.idt.limit = 0x3ff;
	CHECK_H(set_sregs(&v, &s));
	CHECK_H(get_regs(&v, &regs));
	regs.rip = STUB_GPA;
	regs.rflags = X86_RFLAGS_FIXED;
	CHECK_H(set_regs(&v, &regs));
	CHECK_H(expect_stub(&v));
	return TEST_PASS;
}

/*
 * EFER.LME with CR0.PE and not PG: long mode enabled, not active.  With
 * CR4.PAE (the APM's order: PAE, then LME, then PG) pm_pio runs to its
 * HLT as in plain protected mode, CS.L or not (it means nothing before
 * LMA).  Without PAE, SET_SREGS refuses it (uapi.rst: QEMU's emulated
 * SVM wedges the host CPU on the first exit from that state).
 */
static enum test_result lme_nopg(bool pae, bool cs_l)
{
	struct kestrel_sregs s;
	struct vm vm;
	struct vcpu v;
	uint32_t val;
	int i;

	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE) && vcpu_create(&vm, &v, 0));
	CHECK_H(vm_load(&vm, GUEST(pm_pio)) && vcpu_setup_pmode(&vm, &v));
	CHECK_H(get_sregs(&v, &s));
	s.efer = X86_EFER_LME;
	s.cr4 = pae ? X86_CR4_PAE : 0;
	if (cs_l)
		s.cs.l = 1;
	if (!pae) {
		CHECK_ERR(ioctl(v.fd, KESTREL_SET_SREGS, &s), EINVAL);
		return TEST_PASS;
	}
	CHECK_OK(ioctl(v.fd, KESTREL_SET_SREGS, &s));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0x12345678);
	for (i = 0; i < 4; i++)
		CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_H(run_expect_hlt(&v));
	CHECK_H(get_sregs(&v, &s));
	CHECK_EQ(s.efer, X86_EFER_LME);
	return TEST_PASS;
}

static enum test_result test_lme_nopg(const void *arg)
{
	(void)arg;
	return lme_nopg(true, false);
}

static enum test_result test_lme_nopg_csl(const void *arg)
{
	(void)arg;
	return lme_nopg(true, true);
}

static enum test_result test_lme_nopae(const void *arg)
{
	(void)arg;
	return lme_nopg(false, false);
}

/*
 * Real mode, the guest's own way to LME without PAE or paging: a WRMSR
 * of EFER.LME (@via_cr4 false), or, after PAE and LME, a MOV to CR4
 * clearing PAE.  Either must raise #GP (IVT[13] reports 0x0d).
 */
static const uint8_t lme_wrmsr[] = {
	0x66, 0xb9, 0x80, 0x00, 0x00, 0xc0,	/* mov $0xc0000080, %ecx */
	0x66, 0xb8, 0x00, 0x01, 0x00, 0x00,	/* mov $0x100, %eax */
	0x66, 0x31, 0xd2,			/* xor %edx, %edx */
	0x0f, 0x30,				/* wrmsr */
	0xb0, 0x00, 0xe6, PORT_U8, 0xf4,	/* OUT 0; hlt */
};
static const uint8_t lme_cr4[] = {
	0x0f, 0x20, 0xe0,			/* mov %cr4, %eax */
	0x66, 0x83, 0xc8, 0x20,			/* or $PAE, %eax */
	0x0f, 0x22, 0xe0,			/* mov %eax, %cr4 */
	0x66, 0xb9, 0x80, 0x00, 0x00, 0xc0,	/* mov $0xc0000080, %ecx */
	0x66, 0xb8, 0x00, 0x01, 0x00, 0x00,	/* mov $0x100, %eax */
	0x66, 0x31, 0xd2,			/* xor %edx, %edx */
	0x0f, 0x30,				/* wrmsr */
	0xb0, 0x01, 0xe6, PORT_U8,		/* OUT 1: LME accepted */
	0x66, 0x31, 0xc0,			/* xor %eax, %eax */
	0x0f, 0x22, 0xe0,			/* mov %eax, %cr4 */
	0xb0, 0x00, 0xe6, PORT_U8, 0xf4,	/* OUT 0; hlt */
};
static const uint8_t gp_handler[] = {
	0xb0, 0x0d, 0xe6, PORT_U8, 0xf4,	/* OUT 0x0d; hlt */
};

static enum test_result guest_lme(bool via_cr4)
{
	struct kestrel_regs regs;
	struct vm vm;
	struct vcpu v;
	uint32_t val;
	uint16_t ivt13[2] = { 0x7880, 0 };

	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE) && vcpu_create(&vm, &v, 0));
	CHECK_H(vm_load(&vm, GUEST(pm_pio)) && vcpu_setup_real(&v));
	if (via_cr4)
		memcpy(vm.mem + STUB_GPA, lme_cr4, sizeof(lme_cr4));
	else
		memcpy(vm.mem + STUB_GPA, lme_wrmsr, sizeof(lme_wrmsr));
	memcpy(vm.mem + 0x7880, gp_handler, sizeof(gp_handler));
	memcpy(vm.mem + 13 * 4, ivt13, sizeof(ivt13));
	CHECK_H(get_regs(&v, &regs));
	regs.rip = STUB_GPA;
	CHECK_H(set_regs(&v, &regs));
	if (via_cr4) {
		CHECK_H(run_expect_out(&v, PORT_U8, 1, &val));
		CHECK_EQ(val, 1);
	}
	CHECK_H(run_expect_out(&v, PORT_U8, 1, &val));
	CHECK_EQ(val, 0x0d);
	CHECK_H(run_expect_hlt(&v));
	return TEST_PASS;
}

static enum test_result test_guest_lme_wrmsr(const void *arg)
{
	(void)arg;
	return guest_lme(false);
}

static enum test_result test_guest_lme_cr4(const void *arg)
{
	(void)arg;
	return guest_lme(true);
}

static const struct test_case cases[] = {
	{ "guest WRMSR of EFER.LME without PAE or paging: #GP",
	  test_guest_lme_wrmsr, NULL },
	{ "guest MOV to CR4 clearing PAE under LME, no paging: #GP",
	  test_guest_lme_cr4, NULL },
	{ "EFER.LME, CR4.PAE, CR0.PE, no paging: protected mode runs cleanly",
	  test_lme_nopg, NULL },
	{ "EFER.LME, CR4.PAE, CR0.PE, no paging, CS.L: runs as protected mode",
	  test_lme_nopg_csl, NULL },
	{ "SET_SREGS: EFER.LME with neither paging nor PAE: EINVAL",
	  test_lme_nopae, NULL },
	{ "SET_REGS voids a pending exception", test_set_regs_voids, NULL },
	{ "SET_SREGS to real mode voids a pending #GP(0)",
	  test_set_sregs_voids, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
