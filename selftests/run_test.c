// SPDX-License-Identifier: GPL-2.0
/*
 * Running guests: port I/O in real, protected and long mode, HLT,
 * guest memory both ways, register state in and out, unbacked memory and
 * memory slot changes.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "lib.h"

DECLARE_GUEST(rm_pio);
DECLARE_GUEST(pm_pio);
DECLARE_GUEST(lm_pio);
DECLARE_GUEST(lm_regs);
DECLARE_GUEST(pm_memslot);

enum rm_pio_stage { STAGE_OUT, STAGE_IN, STAGE_HLT };

/*
 * Walk guests/rm_pio.S up to @stage; earlier stages are checked again so
 * each test starts from a fresh vCPU.
 */
static enum test_result run_rm_pio(enum rm_pio_stage stage)
{
	struct kestrel_regs regs;
	uint64_t count;
	uint32_t val, after_hlt;
	struct vm vm;
	struct vcpu v;

	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_H(vm_load(&vm, GUEST(rm_pio)));
	CHECK_H(vcpu_setup_real(&v));

	/* OUT: 1 byte/imm port, 2 bytes/DX port > 0xff, 4 bytes */
	count = v.run->exit_count;
	CHECK_H(run_expect_out(&v, PORT_U8, 1, &val));
	CHECK_EQ(val, 0x5a);
	CHECK_EQ(v.run->exit_count, count + 1);
	CHECK_H(run_expect_out(&v, PORT_WIDE, 2, &val));
	CHECK_EQ(val, 0xbeef);
	CHECK_EQ(v.run->exit_count, count + 2);
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0xdeadbeef);
	CHECK_EQ(v.run->exit_count, count + 3);
	if (stage == STAGE_OUT)
		return TEST_PASS;

	/* IN completed by us; the guest echoes all of EAX */
	CHECK_H(run_expect_in(&v, PORT_IN, 1, 0xab));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0x112233ab);
	CHECK_H(run_expect_in(&v, PORT_IN, 2, 0xcdef));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0x5566cdef);
	CHECK_H(run_expect_in(&v, PORT_IN, 4, 0x89abcdef));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0x89abcdef);
	if (stage == STAGE_IN)
		return TEST_PASS;

	/* HLT leaves RIP past it, and RUN resumes there. */
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &after_hlt));
	CHECK(after_hlt > GUEST_LOAD && after_hlt < GUEST_LOAD + 0x100);
	CHECK_H(run_expect_hlt(&v));
	CHECK_H(get_regs(&v, &regs));
	CHECK_EQ(regs.rip, after_hlt);
	CHECK_H(run_expect_out(&v, PORT_U8, 1, &val));
	CHECK_EQ(val, 0x77);
	CHECK_H(run_expect_hlt(&v));
	return TEST_PASS;
}

static enum test_result test_real_out(const void *arg)
{
	(void)arg;
	return run_rm_pio(STAGE_OUT);
}

static enum test_result test_real_in(const void *arg)
{
	(void)arg;
	return run_rm_pio(STAGE_IN);
}

static enum test_result test_real_hlt(const void *arg)
{
	(void)arg;
	return run_rm_pio(STAGE_HLT);
}

static enum test_result test_pmode(const void *arg)
{
	struct kestrel_regs regs;
	uint32_t val, after_hlt;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_H(vm_load(&vm, GUEST(pm_pio)));
	CHECK_H(vcpu_setup_pmode(&vm, &v));
	*(uint32_t *)(vm.mem + GUEST_DATA) = 41;

	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0x12345678);
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));		/* CR0 */
	CHECK_EQ(val & (X86_CR0_PE | X86_CR0_PG), X86_CR0_PE);
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 42);
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));		/* ESP */
	CHECK_EQ(val, GUEST_STACK_TOP);
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &after_hlt));
	CHECK_H(run_expect_hlt(&v));
	CHECK_H(get_regs(&v, &regs));
	CHECK_EQ(regs.rip, after_hlt);
	CHECK_EQ(*(uint32_t *)(vm.mem + GUEST_HIGH), 0xa5a5a5a5);
	return TEST_PASS;
}

static uint64_t rol64(uint64_t v, unsigned int n)
{
	return v << n | v >> (64 - n);
}

static enum test_result test_long(const void *arg)
{
	const uint64_t from_test = 0x0f1e2d3c4b5a6978ULL;
	struct kestrel_regs regs;
	struct kestrel_sregs sregs;
	uint32_t after_hlt;
	uint64_t val, want;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_H(vm_load(&vm, GUEST(lm_pio)));
	CHECK_H(vcpu_setup_long(&vm, &v));
	*(uint64_t *)(vm.mem + GUEST_DATA + 8) = from_test;

	want = rol64(0x0123456789abcdefULL * 3 ^ 0xf0e1d2c3b4a59687ULL, 13);
	CHECK_H(run_expect_out64(&v, PORT_U32, &val));
	CHECK_EQ(val, want);
	CHECK_H(run_expect_out64(&v, PORT_U32, &val));
	CHECK_EQ(val, ~from_test);

	/* 4-byte IN zero-extends into RAX, 1-byte IN merges */
	CHECK_H(run_expect_in(&v, PORT_IN, 4, 0x89abcdef));
	CHECK_H(run_expect_out64(&v, PORT_U32, &val));
	CHECK_EQ(val, 0x89abcdefULL);
	CHECK_H(run_expect_in(&v, PORT_IN, 1, 0x5a));
	CHECK_H(run_expect_out64(&v, PORT_U32, &val));
	CHECK_EQ(val, 0x112233445566775aULL);

	CHECK_H(run_expect_out64(&v, PORT_U32, &val));		/* RSP */
	CHECK_EQ(val, GUEST_STACK_TOP);
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &after_hlt));
	CHECK_H(run_expect_hlt(&v));
	CHECK_H(get_regs(&v, &regs));
	CHECK_EQ(regs.rip, after_hlt);

	/* what the guest wrote, seen through our mapping */
	CHECK_EQ(*(uint64_t *)(vm.mem + GUEST_DATA), 0x8877665544332211ULL);
	CHECK_EQ(*(uint64_t *)(vm.mem + GUEST_HIGH), 0x8877665544332211ULL);

	CHECK_H(get_sregs(&v, &sregs));
	CHECK_EQ(sregs.efer & (X86_EFER_LME | X86_EFER_LMA),
		 X86_EFER_LME | X86_EFER_LMA);
	CHECK_EQ(sregs.cs.l, 1);
	CHECK_EQ(sregs.cr3, GUEST_PML4);
	return TEST_PASS;
}

static void fill_regs(struct kestrel_regs *r)
{
	uint64_t *p = (uint64_t *)r;
	int i;

	/* distinct values in both halves of every GPR */
	for (i = 0; i < 16; i++)
		p[i] = 0x0101010101010101ULL * (i + 1) ^ 0x8000000000000000ULL
		       ^ (uint64_t)i << 20;
}

static enum test_result test_regs_roundtrip(const void *arg)
{
	struct kestrel_regs set, got;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	CHECK_H(vcpu_create(&vm, &v, 0));
	fill_regs(&set);
	set.rip = 0x123456789a;
	/* CF PF AF ZF SF DF OF plus the fixed bit 1; not TF or IF */
	set.rflags = 0xcd7;
	CHECK_H(set_regs(&v, &set));
	CHECK_H(get_regs(&v, &got));
	if (memcmp(&set, &got, sizeof(set))) {
		uint64_t *a = (uint64_t *)&set, *b = (uint64_t *)&got;
		size_t i;

		for (i = 0; i < sizeof(set) / 8; i++)
			if (a[i] != b[i])
				diag("field %zu: set 0x%llx got 0x%llx", i,
				     (unsigned long long)a[i],
				     (unsigned long long)b[i]);
		return TEST_FAIL;
	}

	/* RFLAGS bit 1 reads as set even when cleared */
	set.rflags = 0;
	CHECK_H(set_regs(&v, &set));
	CHECK_H(get_regs(&v, &got));
	CHECK_EQ(got.rflags, X86_RFLAGS_FIXED);
	return TEST_PASS;
}

static bool seg_equal(const char *name, const struct kestrel_segment *a,
		      const struct kestrel_segment *b)
{
	if (a->base == b->base && a->limit == b->limit &&
	    a->selector == b->selector && a->type == b->type &&
	    a->present == b->present && a->dpl == b->dpl && a->db == b->db &&
	    a->s == b->s && a->l == b->l && a->g == b->g && a->avl == b->avl &&
	    a->unusable == b->unusable)
		return true;
	diag("%s: set base 0x%llx limit 0x%x sel 0x%x type %u p %u dpl %u db %u s %u l %u g %u avl %u unusable %u",
	     name, (unsigned long long)a->base, a->limit, a->selector, a->type,
	     a->present, a->dpl, a->db, a->s, a->l, a->g, a->avl, a->unusable);
	diag("%s: got base 0x%llx limit 0x%x sel 0x%x type %u p %u dpl %u db %u s %u l %u g %u avl %u unusable %u",
	     name, (unsigned long long)b->base, b->limit, b->selector, b->type,
	     b->present, b->dpl, b->db, b->s, b->l, b->g, b->avl, b->unusable);
	return false;
}

static enum test_result test_sregs_roundtrip(const void *arg)
{
	struct kestrel_sregs set, got;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_H(get_sregs(&v, &set));
	sregs_make_long(&set);
	/* something non-default in every kind of field */
	set.fs.base = 0x00007fff12345000ULL;
	set.gs.base = 0xffff888812340000ULL;
	set.es.avl = 1;
	set.ds.type = 0x1;		/* read-only, accessed */
	set.ds.limit = 0xfffff;
	set.ds.g = 0;
	set.ss.dpl = 0;
	set.gdt.base = 0x12345000;
	set.gdt.limit = 0x3ff;
	set.idt.base = 0xfffff000;
	set.idt.limit = 0xfff;
	set.cr2 = 0x0000deadbeef0000ULL;
	set.cr3 = 0x7000;
	set.cr8 = 5;
	set.efer |= X86_EFER_SCE;
	CHECK_H(set_sregs(&v, &set));
	CHECK_H(get_sregs(&v, &got));

	CHECK(seg_equal("cs", &set.cs, &got.cs));
	CHECK(seg_equal("ds", &set.ds, &got.ds));
	CHECK(seg_equal("es", &set.es, &got.es));
	CHECK(seg_equal("fs", &set.fs, &got.fs));
	CHECK(seg_equal("gs", &set.gs, &got.gs));
	CHECK(seg_equal("ss", &set.ss, &got.ss));
	CHECK(seg_equal("tr", &set.tr, &got.tr));
	CHECK(seg_equal("ldt", &set.ldt, &got.ldt));
	CHECK_EQ(got.gdt.base, set.gdt.base);
	CHECK_EQ(got.gdt.limit, set.gdt.limit);
	CHECK_EQ(got.idt.base, set.idt.base);
	CHECK_EQ(got.idt.limit, set.idt.limit);
	CHECK_EQ(got.cr0, set.cr0);
	CHECK_EQ(got.cr2, set.cr2);
	CHECK_EQ(got.cr3, set.cr3);
	CHECK_EQ(got.cr4, set.cr4);
	CHECK_EQ(got.cr8, set.cr8);
	CHECK_EQ(got.efer, set.efer);
	CHECK_EQ(got.apic_base, set.apic_base);
	return TEST_PASS;
}

/* guests/lm_regs.S reports every GPR, then inverts them. */
static enum test_result test_guest_regs(const void *arg)
{
	struct kestrel_regs set, got;
	uint64_t *in = (uint64_t *)&set, *out = (uint64_t *)&got;
	static const int order[] = {	/* indexes into struct kestrel_regs */
		0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	};
	static const char *const names[] = {
		"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
		"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
	};
	uint64_t val;
	struct vm vm;
	struct vcpu v;
	size_t i;

	(void)arg;
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_H(vm_load(&vm, GUEST(lm_regs)));
	CHECK_H(vcpu_setup_long(&vm, &v));
	CHECK_H(get_regs(&v, &set));
	fill_regs(&set);
	set.rsp = GUEST_STACK_TOP;
	CHECK_H(set_regs(&v, &set));

	for (i = 0; i < ARRAY_SIZE(order); i++) {
		CHECK_H(run_expect_out64(&v, PORT_U32, &val));
		if (val != in[order[i]]) {
			diag("guest saw %s = 0x%llx, set 0x%llx",
			     names[order[i]], (unsigned long long)val,
			     (unsigned long long)in[order[i]]);
			return TEST_FAIL;
		}
	}
	CHECK_H(run_expect_hlt(&v));
	CHECK_H(get_regs(&v, &got));
	CHECK_EQ(got.rax, 0x600dc0de600dc0deULL);
	CHECK_EQ(got.rsp, GUEST_STACK_TOP);
	for (i = 1; i < ARRAY_SIZE(order); i++) {
		int r = order[i];

		if (out[r] != ~in[r]) {
			diag("%s after the guest: 0x%llx, want 0x%llx",
			     names[r], (unsigned long long)out[r],
			     (unsigned long long)~in[r]);
			return TEST_FAIL;
		}
	}
	return TEST_PASS;
}

/* From the power-on state the first fetch is at 0xfffffff0: no slot. */
static enum test_result test_unbacked_fetch(const void *arg)
{
	struct kestrel_run *run;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, 0));
	run = v.run;
	CHECK_H(run_expect_exit(&v, KESTREL_EXIT_INTERNAL_ERROR));
	if (run->internal.suberror != KESTREL_INTERNAL_UNMAPPED_GPA) {
		dump_vcpu(&v);
		CHECK_EQ(run->internal.suberror,
			 KESTREL_INTERNAL_UNMAPPED_GPA);
	}
	CHECK(run->internal.ndata >= 3);
	CHECK_EQ(run->internal.data[0] & ~0xfffULL, 0xfffff000);
	CHECK_EQ(run->internal.data[2], 0xfff0);
	return TEST_PASS;
}

/*
 * guests/pm_memslot.S reads and increments the slot at GUEST_SLOT1_GPA.
 * Deleting the slot must unmap it; adding it back with other memory must
 * show the new memory, never the old.
 */
static enum test_result test_memslot_change(const void *arg)
{
	struct kestrel_regs regs;
	struct kestrel_run *run;
	uint32_t *a, *b, val;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, 0));
	run = v.run;
	CHECK_H(vm_load(&vm, GUEST(pm_memslot)));
	CHECK_H(vcpu_setup_pmode(&vm, &v));
	a = res_map(mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 2 * page_size);
	CHECK(a != MAP_FAILED);
	b = (uint32_t *)((char *)a + page_size);
	a[0] = 0xaaaa0001;
	b[0] = 0xbbbb0002;

	CHECK_H(vm_add_slot(&vm, 1, GUEST_SLOT1_GPA, a, page_size));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0xaaaa0001);
	CHECK_EQ(a[1], 1);

	CHECK_H(vm_add_slot(&vm, 1, 0, NULL, 0));
	/* No RAM there any more: the guest's load is an MMIO exit. */
	CHECK_H(run_expect_exit(&v, KESTREL_EXIT_MMIO));
	CHECK_EQ(run->mmio.phys_addr, GUEST_SLOT1_GPA);
	CHECK_EQ(run->mmio.is_write, 0);
	CHECK_EQ(run->mmio.len, 4);

	CHECK_H(vm_add_slot(&vm, 1, GUEST_SLOT1_GPA, b, page_size));
	/* restart at the faulting read rather than rely on resuming */
	CHECK_H(get_regs(&v, &regs));
	regs.rip = GUEST_LOAD;
	CHECK_H(set_regs(&v, &regs));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0xbbbb0002);
	CHECK_EQ(b[1], 1);
	CHECK_EQ(a[1], 1);
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "real mode: OUT of 1, 2 and 4 bytes", test_real_out, NULL },
	{ "real mode: IN of 1, 2 and 4 bytes completed by userspace",
	  test_real_in, NULL },
	{ "real mode: HLT leaves RIP past it and RUN resumes",
	  test_real_hlt, NULL },
	{ "32-bit protected mode: PIO, memory above 1 MiB, stack, HLT",
	  test_pmode, NULL },
	{ "64-bit long mode: 64-bit values, IN widths, memory, HLT",
	  test_long, NULL },
	{ "SET_REGS/GET_REGS round-trip", test_regs_roundtrip, NULL },
	{ "SET_SREGS/GET_SREGS round-trip", test_sregs_roundtrip, NULL },
	{ "the guest sees the GPRs set and we see the ones it sets",
	  test_guest_regs, NULL },
	{ "a fetch from unbacked memory is UNMAPPED_GPA",
	  test_unbacked_fetch, NULL },
	{ "deleting and re-adding a slot changes what the guest sees",
	  test_memslot_change, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
