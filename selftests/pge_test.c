// SPDX-License-Identifier: GPL-2.0
/*
 * Two long-mode vCPUs toggling CR4.PGE as fast as they can, at once, for
 * a bounded number of toggles, then a clean exit through port I/O.  At
 * every exit to userspace, whatever its kind, no register the owner can
 * read holds a host kernel address or the host's CR3; at every OUT the
 * state is the guest's own (RIP in its code, its CR3, long mode).
 *
 * This is the pattern that once showed the emulated host's own state in
 * a vCPU's registers: QEMU's multi-threaded TCG, not Kestrel (the VMCB
 * held the guest's state up to VMRUN and the host's after #VMEXIT, RIP
 * the instruction after VMRUN).  Kestrel now detects that and reports
 * KESTREL_INTERNAL_STATE_LOST with the vCPU reset; see the second test.
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

/* How one vCPU's run ended. */
enum end {
	END_FAILED,		/* anything else: setup, RUN error, odd exit */
	END_CLEAN,		/* OUTs counted up to 0, then HLT */
	END_LEAK,		/* the owner saw a host value */
	END_LOST,		/* INTERNAL_ERROR STATE_LOST: the CPU's fault */
	END_SHUTDOWN,		/* triple fault */
	NR_ENDS
};

static const char *const end_names[NR_ENDS] = {
	[END_FAILED]	= "FAILED",
	[END_CLEAN]	= "clean",
	[END_LEAK]	= "SAW HOST STATE",
	[END_LOST]	= "lost its state (CPU)",
	[END_SHUTDOWN]	= "triple-faulted",
};

struct worker {
	struct vcpu v;
	enum end end;
	unsigned int outs;
};

static bool host_like(uint64_t v)
{
	return v >= KERNEL_HALF;
}

/*
 * Whatever the exit, GET_REGS and GET_SREGS show no host kernel address
 * and no CR3 but the guest's (or 0 after a reset).
 */
static bool no_host_state(struct worker *w)
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
	if ((s.cr3 != GUEST_PML4 && s.cr3 != 0) || host_like(s.cr2) ||
	    host_like(s.gdt.base) || host_like(s.idt.base) ||
	    host_like(s.fs.base) || host_like(s.gs.base) ||
	    host_like(s.tr.base)) {
		diag("vCPU %d: CR3 0x%llx CR2 0x%llx GDT 0x%llx IDT 0x%llx GS base 0x%llx",
		     w->v.id, (unsigned long long)s.cr3,
		     (unsigned long long)s.cr2, (unsigned long long)s.gdt.base,
		     (unsigned long long)s.idt.base,
		     (unsigned long long)s.gs.base);
		return false;
	}
	return true;
}

/* At an OUT or the final HLT: the guest's own long-mode state. */
static bool guest_shape(struct worker *w, size_t image)
{
	struct kestrel_regs r;
	struct kestrel_sregs s;

	if (!get_regs(&w->v, &r) || !get_sregs(&w->v, &s))
		return false;
	if (r.rip < GUEST_LOAD || r.rip >= GUEST_LOAD + image) {
		diag("vCPU %d: RIP 0x%llx outside the guest's code", w->v.id,
		     (unsigned long long)r.rip);
		return false;
	}
	if (s.cr3 != GUEST_PML4 || s.efer != (X86_EFER_LME | X86_EFER_LMA) ||
	    !(s.cr0 & X86_CR0_PG) || s.cs.selector != GUEST_SEL_CODE) {
		diag("vCPU %d: CR3 0x%llx EFER 0x%llx CR0 0x%llx CS 0x%x",
		     w->v.id, (unsigned long long)s.cr3,
		     (unsigned long long)s.efer, (unsigned long long)s.cr0,
		     s.cs.selector);
		return false;
	}
	return true;
}

static void *worker_fn(void *p)
{
	struct worker *w = p;
	struct kestrel_run *run = w->v.run;
	size_t image = lm_pge_end - lm_pge_start;
	uint32_t val;

	for (;;) {
		if (vcpu_run(&w->v)) {
			diag("vCPU %d: KESTREL_RUN: %s", w->v.id,
			     errno_name(errno));
			return NULL;
		}
		if (!no_host_state(w)) {
			w->end = END_LEAK;
			return NULL;
		}
		switch (run->exit_reason) {
		case KESTREL_EXIT_IO:
			if (run->io.port != PORT_U32 || run->io.size != 4)
				break;
			memcpy(&val, (char *)run + run->io.data_offset, 4);
			w->outs++;
			if (!guest_shape(w, image))
				return NULL;
			if (val)
				continue;
			if (!run_expect_hlt(&w->v) || !no_host_state(w) ||
			    !guest_shape(w, image))
				return NULL;
			w->end = END_CLEAN;
			return NULL;
		case KESTREL_EXIT_INTERNAL_ERROR:
			if (run->internal.suberror != KESTREL_INTERNAL_STATE_LOST)
				break;
			w->end = END_LOST;
			return NULL;
		case KESTREL_EXIT_SHUTDOWN:
			w->end = END_SHUTDOWN;
			return NULL;
		default:
			break;
		}
		diag("vCPU %d: unexpected exit %s", w->v.id,
		     exit_reason_name(run->exit_reason));
		dump_vcpu(&w->v);
		return NULL;
	}
}

/* vCPU runs by how they ended, over all rounds. */
static int tally[NR_ENDS];

static bool one_round(int round)
{
	struct worker w[2];
	struct kestrel_regs r;
	pthread_t th[2];
	struct vm vm;
	int i;

	if (!vm_create(&vm, 128 << 20))
		return false;
	*(uint32_t *)(vm.mem + GUEST_DATA) = NR_TOGGLES;
	if (!vm_load(&vm, GUEST(lm_pge)))
		return false;
	for (i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		if (!vcpu_create(&vm, &w[i].v, i) ||
		    !vcpu_setup_long(&vm, &w[i].v) || !get_regs(&w[i].v, &r))
			return false;
		r.rsp = GUEST_STACK_TOP - i * 0x800;
		if (!set_regs(&w[i].v, &r))
			return false;
	}
	for (i = 0; i < 2; i++)
		if (!start_thread(worker_fn, &w[i], &th[i]))
			return false;
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		tally[w[i].end]++;
		diag("round %d: vCPU %d %s after %u OUTs", round, i,
		     end_names[w[i].end], w[i].outs);
	}
	return true;
}

static bool rounds_ran;

static void run_rounds(void)
{
	int i;

	if (rounds_ran)
		return;
	rounds_ran = true;
	for (i = 0; i < NR_ROUNDS; i++)
		if (!one_round(i))
			tally[END_FAILED]++;
}

/* What Kestrel owes the owner whatever the CPU does. */
static enum test_result test_pge_no_host_state(const void *arg)
{
	(void)arg;
	run_rounds();
	CHECK_EQ(tally[END_LEAK], 0);
	CHECK_EQ(tally[END_FAILED], 0);
	return TEST_PASS;
}

/*
 * What a correct CPU gives: every round clean.  QEMU's multi-threaded
 * TCG sometimes ends a VMRUN with the host's state as the guest's (which
 * Kestrel reports as STATE_LOST) or runs the guest without its nested
 * paging (a triple fault); Documentation/design.rst.  Only when this
 * run has shown the first, which no real CPU does, are triple faults put
 * down to the CPU and the test skipped rather than failed.
 */
static enum test_result test_pge_clean(const void *arg)
{
	(void)arg;
	run_rounds();
	if (tally[END_LOST])
		return test_skip("the CPU lost guest state %d times and triple-faulted %d in %d vCPU runs (an emulator defect, Documentation/design.rst)",
				 tally[END_LOST], tally[END_SHUTDOWN], 2 * NR_ROUNDS);
	CHECK_EQ(tally[END_SHUTDOWN], 0);
	CHECK_EQ(tally[END_CLEAN], 2 * NR_ROUNDS);
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "2 vCPUs toggling CR4.PGE: the owner never sees host state",
	  test_pge_no_host_state, NULL },
	{ "2 vCPUs toggling CR4.PGE: every run ends with its OUTs and HLT",
	  test_pge_clean, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
