// SPDX-License-Identifier: GPL-2.0
/*
 * Two long-mode vCPUs toggling CR4.PGE as fast as they can, at once, for
 * a bounded number of toggles, then a clean exit through port I/O.  At
 * every exit to userspace, the registers the owner can read must be the
 * guest's: RIP inside the guest's code, CR3 the test's tables, EFER long
 * mode, and no register holding a host kernel address.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "lib.h"

DECLARE_GUEST(lm_pge);

#define NR_TOGGLES	32768
#define NR_ROUNDS	8
#define KERNEL_HALF	0xffff800000000000ULL

struct worker {
	struct vm *vm;
	struct vcpu v;
	uint64_t rsp;
	bool ok;
	unsigned int outs;
};

static bool host_like(uint64_t v)
{
	return v >= KERNEL_HALF;
}

/* Everything GET_REGS and GET_SREGS show must be the guest's own. */
static bool check_state(struct worker *w, size_t image)
{
	struct kestrel_regs r;
	struct kestrel_sregs s;
	const uint64_t *g;
	unsigned int i;

	if (!get_regs(&w->v, &r) || !get_sregs(&w->v, &s))
		return false;
	g = (const uint64_t *)&r;
	for (i = 0; i < sizeof(r) / 8; i++)
		if (host_like(g[i])) {
			diag("vCPU %d: register %u holds 0x%llx", w->v.id, i,
			     (unsigned long long)g[i]);
			return false;
		}
	if (r.rip < GUEST_LOAD || r.rip >= GUEST_LOAD + image) {
		diag("vCPU %d: RIP 0x%llx outside the guest's code", w->v.id,
		     (unsigned long long)r.rip);
		return false;
	}
	if (s.cr3 != GUEST_PML4 || s.efer != (X86_EFER_LME | X86_EFER_LMA) ||
	    !(s.cr0 & X86_CR0_PG) || host_like(s.cr2) ||
	    host_like(s.gdt.base) || host_like(s.idt.base) ||
	    host_like(s.fs.base) || host_like(s.gs.base) ||
	    host_like(s.tr.base) || s.cs.selector != GUEST_SEL_CODE) {
		diag("vCPU %d: CR3 0x%llx EFER 0x%llx CR0 0x%llx CR2 0x%llx CS 0x%x GS base 0x%llx",
		     w->v.id, (unsigned long long)s.cr3,
		     (unsigned long long)s.efer, (unsigned long long)s.cr0,
		     (unsigned long long)s.cr2, s.cs.selector,
		     (unsigned long long)s.gs.base);
		return false;
	}
	return true;
}

static void *worker_fn(void *p)
{
	struct worker *w = p;
	size_t image = lm_pge_end - lm_pge_start;
	uint32_t val = 1;

	w->ok = false;
	while (val) {
		if (!run_expect_out(&w->v, PORT_U32, 4, &val)) {
			dump_vcpu(&w->v);
			return NULL;
		}
		w->outs++;
		if (!check_state(w, image))
			return NULL;
	}
	if (!run_expect_hlt(&w->v) || !check_state(w, image))
		return NULL;
	w->ok = true;
	return NULL;
}

static bool one_round(int round)
{
	struct worker w[2];
	struct kestrel_regs r;
	pthread_t t[2];
	struct vm vm;
	int i;

	if (!vm_create(&vm, 128 << 20))
		return false;
	*(uint32_t *)(vm.mem + GUEST_DATA) = NR_TOGGLES;
	if (!vm_load(&vm, GUEST(lm_pge)))
		return false;
	for (i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].vm = &vm;
		if (!vcpu_create(&vm, &w[i].v, i) ||
		    !vcpu_setup_long(&vm, &w[i].v) || !get_regs(&w[i].v, &r))
			return false;
		r.rsp = GUEST_STACK_TOP - i * 0x800;
		if (!set_regs(&w[i].v, &r))
			return false;
	}
	for (i = 0; i < 2; i++)
		if (!start_thread(worker_fn, &w[i], &t[i]))
			return false;
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	diag("round %d: vCPU 0 %s after %u OUTs, vCPU 1 %s after %u", round,
	     w[0].ok ? "clean" : "FAILED", w[0].outs,
	     w[1].ok ? "clean" : "FAILED", w[1].outs);
	return w[0].ok && w[1].ok;
}

static enum test_result test_pge_smp(const void *arg)
{
	int i, bad = 0;

	(void)arg;
	for (i = 0; i < NR_ROUNDS; i++)
		if (!one_round(i))
			bad++;
	CHECK_EQ(bad, 0);
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "2 vCPUs toggling CR4.PGE: clean exits, guest state only",
	  test_pge_smp, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
