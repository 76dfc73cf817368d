// SPDX-License-Identifier: GPL-2.0
/*
 * CPUID as the guest sees it: the default table, the Kestrel leaves, and
 * tables set with KESTREL_SET_CPUID.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "lib.h"

DECLARE_GUEST(rm_cpuid);

#define VCPU_ID		5	/* not 0, so the APIC id check means something */
#define ABSENT_LEAF	0x400000f0

struct query {
	uint32_t leaf, subleaf;
};

struct answer {
	uint32_t eax, ebx, ecx, edx;
};

/* Run guests/rm_cpuid.S for @n queries on a fresh real-mode vCPU. */
static bool run_cpuid_guest(struct vm *vm, struct vcpu *v,
			    const struct query *q, int n, struct answer *ans)
{
	uint32_t *list = (uint32_t *)(vm->mem + GUEST_DATA);
	int i;

	for (i = 0; i < n; i++) {
		list[2 * i] = q[i].leaf;
		list[2 * i + 1] = q[i].subleaf;
	}
	list[2 * n] = CPUID_LIST_END;
	if (!vm_load(vm, GUEST(rm_cpuid)) || !vcpu_setup_real(v))
		return false;
	for (i = 0; i < n; i++) {
		if (!run_expect_out(v, PORT_U32, 4, &ans[i].eax) ||
		    !run_expect_out(v, PORT_U32, 4, &ans[i].ebx) ||
		    !run_expect_out(v, PORT_U32, 4, &ans[i].ecx) ||
		    !run_expect_out(v, PORT_U32, 4, &ans[i].edx))
			return false;
	}
	return run_expect_hlt(v);
}

/*
 * The guest must see the table entry (zeros if absent), except that
 * leaf 1 EBX[31:24] is the vCPU id.
 */
static bool answer_matches(struct kestrel_cpuid *table, const struct query *q,
			   const struct answer *a, int vcpu_id)
{
	struct kestrel_cpuid_entry *e = cpuid_find(table, q->leaf, q->subleaf);
	struct answer want = { 0 };

	if (e)
		want = (struct answer){ e->eax, e->ebx, e->ecx, e->edx };
	if (q->leaf == 1)
		want.ebx = (want.ebx & 0x00ffffff) | (uint32_t)vcpu_id << 24;
	if (!memcmp(&want, a, sizeof(want)))
		return true;
	diag("leaf 0x%x/%u: guest saw %08x %08x %08x %08x, want %08x %08x %08x %08x%s",
	     q->leaf, q->subleaf, a->eax, a->ebx, a->ecx, a->edx, want.eax,
	     want.ebx, want.ecx, want.edx, e ? "" : " (absent)");
	return false;
}

static const struct query default_queries[] = {
	{ 0, 0 }, { 1, 0 }, { 6, 0 }, { 7, 0 }, { 0xd, 0 }, { 0xd, 1 },
	{ 0xd, 2 }, { 0x80000000, 0 }, { 0x80000001, 0 },
	{ 0x40000000, 0 }, { 0x40000010, 0 }, { 0x40000100, 0 },
	{ 0x40000101, 0 }, { ABSENT_LEAF, 0 },
};

static enum test_result test_guest_matches_table(const void *arg)
{
	const int n = ARRAY_SIZE(default_queries);
	struct answer ans[ARRAY_SIZE(default_queries)];
	struct kestrel_cpuid *table;
	bool ok = true;
	struct vm vm;
	struct vcpu v;
	int i;

	(void)arg;
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, VCPU_ID));
	CHECK((table = get_vcpu_cpuid(&v)));
	CHECK(!cpuid_find(table, ABSENT_LEAF, 0));
	CHECK_H(run_cpuid_guest(&vm, &v, default_queries, n, ans));
	for (i = 0; i < n; i++)
		ok &= answer_matches(table, &default_queries[i], &ans[i],
				     VCPU_ID);
	return ok ? TEST_PASS : TEST_FAIL;
}

static enum test_result test_guest_kestrel_bits(const void *arg)
{
	static const struct query q[] = {
		{ 1, 0 }, { 0x80000001, 0 }, { 0x40000000, 0 }, { 6, 0 },
		{ 0x40000010, 0 }, { 0x40000100, 0 }, { 0x40000101, 0 },
		{ 0xd, 0 },
	};
	struct answer a[ARRAY_SIZE(q)];
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, VCPU_ID));
	CHECK_H(run_cpuid_guest(&vm, &v, q, ARRAY_SIZE(q), a));
	CHECK(a[0].ecx & (1U << 31));		/* hypervisor */
	CHECK(!(a[0].ecx & (1U << 5)));		/* VMX */
	CHECK_EQ(a[0].ebx >> 24, VCPU_ID);	/* initial APIC id */
	CHECK(!(a[1].ecx & (1U << 2)));		/* SVM */
	CHECK_EQ(a[2].eax, 0x40000010);
	CHECK_EQ(a[2].ebx, 0x7473654b);		/* "Kest" */
	CHECK_EQ(a[2].ecx, 0x566c6572);		/* "relV" */
	CHECK_EQ(a[2].edx, 0x00004d4d);		/* "MM\0\0" */
	/* What the local APIC and timers make true */
	CHECK(a[0].edx & (1U << 9));		/* APIC */
	CHECK(a[0].edx & (1U << 12));		/* MTRR */
	CHECK(a[0].ecx & (1U << 21));		/* x2APIC */
	CHECK(a[0].ecx & (1U << 24));		/* TSC-deadline */
	CHECK(!(a[0].ecx & (1U << 27)));	/* OSXSAVE: CR4 is clear */
	CHECK(!(a[0].edx & (1U << 14)));	/* MCA */
	CHECK(!(a[0].ecx & (1U << 3)));		/* MONITOR */
	CHECK_EQ(a[3].eax, 1U << 2);		/* ARAT only */
	/* Timing leaf: TSC kHz, APIC timer at 1 GHz */
	CHECK_EQ(a[4].eax, check_cap(KESTREL_CAP_TSC_KHZ));
	CHECK_EQ(a[4].ebx, 1000000);
	/* KVM's paravirtual block: clocksource2 and the stable bit only */
	CHECK_EQ(a[5].eax, 0x40000101);
	CHECK_EQ(a[5].ebx, 0x4b4d564b);		/* "KVMK" */
	CHECK_EQ(a[5].ecx, 0x564b4d56);		/* "VMKV" */
	CHECK_EQ(a[5].edx, 0x0000004d);		/* "M\0\0\0" */
	CHECK_EQ(a[6].eax, (1U << 3) | (1U << 24));
	CHECK_EQ(a[6].edx, 0);
	/* XSAVE: x87|SSE|AVX at most; EBX is the size for XCR0 = x87 */
	if (a[0].ecx & (1U << 26)) {
		CHECK(!(a[7].eax & ~7U));
		CHECK_EQ(a[7].edx, 0);
		CHECK_EQ(a[7].ebx, 576);
		CHECK_EQ(a[7].ecx, a[7].eax & 4 ? 832 : 576);
	}
	return TEST_PASS;
}

/*
 * The current table minus any hypervisor leaves past 0x40000000, plus
 * 0x40000001 (index ignored) and 0x40000002 with two significant subleaves.
 */
static struct kestrel_cpuid *custom_table(struct kestrel_cpuid *cur)
{
	struct kestrel_cpuid *c = cpuid_alloc(cur->nent + 3);
	struct kestrel_cpuid_entry *e;
	uint32_t i, n = 0;

	for (i = 0; i < cur->nent; i++) {
		e = &cur->entries[i];
		if (e->function > 0x40000000 && e->function <= 0x400001ff)
			continue;
		c->entries[n] = *e;
		if (e->function == 0x40000000)
			c->entries[n].eax = 0x40000002;	/* highest leaf */
		n++;
	}
	c->entries[n++] = (struct kestrel_cpuid_entry){
		.function = 0x40000001,
		.eax = 0x11111111, .ebx = 0x22222222,
		.ecx = 0x33333333, .edx = 0x44444444,
	};
	c->entries[n++] = (struct kestrel_cpuid_entry){
		.function = 0x40000002, .index = 0,
		.flags = KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX,
		.eax = 0xa0a0a0a0, .ebx = 0xa1a1a1a1,
		.ecx = 0xa2a2a2a2, .edx = 0xa3a3a3a3,
	};
	c->entries[n++] = (struct kestrel_cpuid_entry){
		.function = 0x40000002, .index = 1,
		.flags = KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX,
		.eax = 0xb0b0b0b0, .ebx = 0xb1b1b1b1,
		.ecx = 0xb2b2b2b2, .edx = 0xb3b3b3b3,
	};
	c->nent = n;
	return c;
}

/* @got holds exactly the entries of @set, in any order. */
static bool same_table(struct kestrel_cpuid *set, struct kestrel_cpuid *got)
{
	uint32_t i, j;

	if (set->nent != got->nent) {
		diag("GET_CPUID gave %u entries, SET_CPUID set %u", got->nent,
		     set->nent);
		return false;
	}
	for (i = 0; i < set->nent; i++) {
		struct kestrel_cpuid_entry *s = &set->entries[i];

		for (j = 0; j < got->nent; j++) {
			struct kestrel_cpuid_entry *g = &got->entries[j];

			if (g->function == s->function &&
			    g->index == s->index)
				break;
		}
		if (j == got->nent ||
		    memcmp(s, &got->entries[j], sizeof(*s))) {
			diag("entry 0x%x/%u differs or is missing",
			     s->function, s->index);
			return false;
		}
	}
	return true;
}

static enum test_result test_set_cpuid(const void *arg)
{
	static const struct query q[] = {
		{ 0x40000000, 0 }, { 0x40000001, 0 }, { 0x40000001, 7 },
		{ 0x40000002, 0 }, { 0x40000002, 1 }, { 0x40000002, 2 },
		{ 0, 0 }, { 1, 0 },
	};
	struct answer a[ARRAY_SIZE(q)];
	struct kestrel_cpuid *cur, *set, *got;
	bool ok = true;
	struct vm vm;
	struct vcpu v;
	size_t i;

	(void)arg;
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, VCPU_ID));
	CHECK((cur = get_vcpu_cpuid(&v)));
	set = custom_table(cur);
	CHECK_OK(ioctl(v.fd, KESTREL_SET_CPUID, set));
	CHECK((got = get_vcpu_cpuid(&v)));
	CHECK(same_table(set, got));

	CHECK_H(run_cpuid_guest(&vm, &v, q, ARRAY_SIZE(q), a));
	for (i = 0; i < ARRAY_SIZE(q); i++)
		ok &= answer_matches(set, &q[i], &a[i], VCPU_ID);
	/* spelled out, so a bug in cpuid_find() cannot hide one here */
	CHECK_EQ(a[1].eax, 0x11111111);
	CHECK_EQ(a[2].edx, 0x44444444);
	CHECK_EQ(a[3].ebx, 0xa1a1a1a1);
	CHECK_EQ(a[4].ecx, 0xb2b2b2b2);
	CHECK_EQ(a[5].eax | a[5].ebx | a[5].ecx | a[5].edx, 0);
	return ok ? TEST_PASS : TEST_FAIL;
}

static enum test_result test_per_vcpu_tables(const void *arg)
{
	struct kestrel_cpuid *before, *set, *other, *got;
	struct vcpu v0, v1;
	struct vm vm;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	CHECK_H(vcpu_create(&vm, &v0, 0));
	CHECK_H(vcpu_create(&vm, &v1, 1));
	CHECK((before = get_vcpu_cpuid(&v0)));
	set = custom_table(before);
	CHECK_OK(ioctl(v1.fd, KESTREL_SET_CPUID, set));
	CHECK((got = get_vcpu_cpuid(&v1)));
	CHECK(same_table(set, got));
	/* vCPU 0 keeps its own table */
	CHECK((other = get_vcpu_cpuid(&v0)));
	CHECK(same_table(before, other));
	CHECK(!cpuid_find(other, 0x40000002, 1));
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "guest CPUID equals GET_CPUID (absent leaves read 0)",
	  test_guest_matches_table, NULL },
	{ "guest sees hypervisor bit, no VMX/SVM, KestrelVMM, its APIC id",
	  test_guest_kestrel_bits, NULL },
	{ "SET_CPUID: GET returns it and the guest sees exactly it",
	  test_set_cpuid, NULL },
	{ "each vCPU has its own CPUID table", test_per_vcpu_tables, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
