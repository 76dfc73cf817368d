// SPDX-License-Identifier: GPL-2.0
/*
 * Triple faults: an exception with an empty IDT escalates to #GP, #DF and
 * shutdown.  KESTREL_EXIT_SHUTDOWN comes back and the vCPU is reset.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "lib.h"

DECLARE_GUEST(int3);
DECLARE_GUEST(ud2);
DECLARE_GUEST(rm_id);

enum mode { REAL, PMODE, LONG };

static bool setup(struct vm *vm, struct vcpu *v, enum mode mode,
		  struct guest_image img)
{
	struct kestrel_sregs s;

	if (!vm_create(vm, GUEST_MEM_SIZE) || !vcpu_create(vm, v, 0) ||
	    !vm_load(vm, img))
		return false;
	switch (mode) {
	case REAL:
		if (!vcpu_setup_real(v))
			return false;
		break;
	case PMODE:
		if (!vcpu_setup_pmode(vm, v))
			return false;
		break;
	case LONG:
		if (!vcpu_setup_long(vm, v))
			return false;
		break;
	}
	/*
	 * A wrongly delivered real-mode interrupt would jump to 0000:0000
	 * through the zeroed IVT: make that a visible HLT.
	 */
	vm->mem[0] = 0xf4;
	if (!get_sregs(v, &s))
		return false;
	s.idt.base = 0;
	s.idt.limit = 0;
	return set_sregs(v, &s);
}

static bool expect_reset_state(struct vcpu *v)
{
	struct kestrel_regs r;
	struct kestrel_sregs s;

	if (!get_regs(v, &r) || !get_sregs(v, &s))
		return false;
	if (r.rip != 0xfff0 || r.rflags != X86_RFLAGS_FIXED ||
	    s.cs.selector != 0xf000 || s.cs.base != 0xffff0000 ||
	    (s.cr0 & (X86_CR0_PE | X86_CR0_PG)) || s.cr4 || s.efer) {
		diag("not the power-on state:");
		dump_vcpu(v);
		return false;
	}
	return true;
}

static enum test_result triple_fault(enum mode mode, struct guest_image img)
{
	struct kestrel_regs r;
	struct vm vm;
	struct vcpu v;

	CHECK_H(setup(&vm, &v, mode, img));
	CHECK_OK(vcpu_run(&v));
	/*
	 * The SDM and QEMU raise #GP for a vector past the real-mode IDT
	 * limit, but some AMD parts deliver through the IVT regardless:
	 * that lands on the HLT at 0000:0000.  A CPU property, not ours.
	 */
	if (mode == REAL && v.run->exit_reason == KESTREL_EXIT_HLT &&
	    get_regs(&v, &r) && r.rip == 1)
		return test_skip("this CPU ignores the real-mode IDT limit");
	if (v.run->exit_reason != KESTREL_EXIT_SHUTDOWN) {
		diag("exit %s, want SHUTDOWN",
		     exit_reason_name(v.run->exit_reason));
		dump_vcpu(&v);
		return TEST_FAIL;
	}
	CHECK_H(expect_reset_state(&v));
	return TEST_PASS;
}

static enum test_result test_real_int3(const void *arg)
{
	(void)arg;
	return triple_fault(REAL, GUEST(int3));
}

static enum test_result test_pmode_ud2(const void *arg)
{
	(void)arg;
	return triple_fault(PMODE, GUEST(ud2));
}

static enum test_result test_long_ud2(const void *arg)
{
	(void)arg;
	return triple_fault(LONG, GUEST(ud2));
}

static enum test_result test_usable_after_shutdown(const void *arg)
{
	struct vm vm;
	struct vcpu v;
	uint32_t val;

	(void)arg;
	CHECK_H(setup(&vm, &v, LONG, GUEST(ud2)));
	CHECK_H(run_expect_exit(&v, KESTREL_EXIT_SHUTDOWN));

	/* Same vCPU, new guest, real mode again */
	CHECK_H(vm_load(&vm, GUEST(rm_id)));
	CHECK_H(vcpu_setup_real(&v));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0xc0de0000);
	CHECK_H(run_expect_hlt(&v));
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "real mode INT3 with a zero-limit IDT shuts down, vCPU reset",
	  test_real_int3, NULL },
	{ "protected mode UD2 with a zero-limit IDT shuts down, vCPU reset",
	  test_pmode_ud2, NULL },
	{ "long mode UD2 with a zero-limit IDT shuts down, vCPU reset",
	  test_long_ud2, NULL },
	{ "the vCPU runs a new guest after a shutdown",
	  test_usable_after_shutdown, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
