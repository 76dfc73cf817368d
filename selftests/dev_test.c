// SPDX-License-Identifier: GPL-2.0
/*
 * The system fd: open/close, API version, capabilities, mmap size, the
 * supported CPUID table; and a new vCPU's power-on state and run page.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "lib.h"

static enum test_result test_open_close(const void *arg)
{
	int a, b;

	(void)arg;
	/* Two opens give two independent, working fds. */
	a = res_fd(open(KESTREL_DEV, O_RDWR | O_CLOEXEC));
	CHECK_OK(a);
	b = res_fd(open(KESTREL_DEV, O_RDWR | O_CLOEXEC));
	CHECK_OK(b);
	CHECK(a != b);
	CHECK_EQ(ioctl(a, KESTREL_GET_API_VERSION, 0UL), KESTREL_API_VERSION);
	CHECK_OK(res_close(a));
	CHECK_EQ(ioctl(b, KESTREL_GET_API_VERSION, 0UL), KESTREL_API_VERSION);
	CHECK_OK(res_close(b));
	return TEST_PASS;
}

static enum test_result test_api_version(const void *arg)
{
	(void)arg;
	CHECK_EQ(ioctl(sys_fd, KESTREL_GET_API_VERSION, 0UL), 1);
	return TEST_PASS;
}

static enum test_result test_caps(const void *arg)
{
	long vcpus = check_cap(KESTREL_CAP_MAX_VCPUS);
	long slots = check_cap(KESTREL_CAP_NR_MEMSLOTS);
	long backend = check_cap(KESTREL_CAP_BACKEND);
	long imm = check_cap(KESTREL_CAP_IMMEDIATE_EXIT);
	long ncpuid = check_cap(KESTREL_CAP_MAX_CPUID);
	long asids = check_cap(KESTREL_CAP_NR_ASIDS);
	long irqchip = check_cap(KESTREL_CAP_IRQCHIP);
	long msr_policy = check_cap(KESTREL_CAP_MSR_POLICY);
	long tsc_khz = check_cap(KESTREL_CAP_TSC_KHZ);

	(void)arg;
	diag("MAX_VCPUS %ld NR_MEMSLOTS %ld BACKEND %ld IMMEDIATE_EXIT %ld MAX_CPUID %ld NR_ASIDS %ld IRQCHIP %ld MSR_POLICY %ld TSC_KHZ %ld",
	     vcpus, slots, backend, imm, ncpuid, asids, irqchip, msr_policy,
	     tsc_khz);
	CHECK_EQ(irqchip, 1);
	CHECK_EQ(msr_policy, 1);
	/* Some hundred MHz to some GHz: a rate, not a flag. */
	CHECK(tsc_khz >= 100000 && tsc_khz <= 10000000);
	CHECK(vcpus >= 1 && vcpus <= 4096);
	CHECK(slots >= 1 && slots <= 4096);
	CHECK(backend == KESTREL_BACKEND_SVM || backend == KESTREL_BACKEND_VMX);
	CHECK_EQ(imm, 1);
	/* test_supported_cpuid checks it covers the supported table */
	CHECK(ncpuid >= 1 && ncpuid <= 65536);
	CHECK(asids >= 1);
	return TEST_PASS;
}

static enum test_result test_unknown_caps(const void *arg)
{
	static const unsigned long caps[] = {
		0, KESTREL_CAP_TSC_KHZ + 1, 0x100, 0x7fffffff, 0xffffffffUL,
		1UL << 32 | KESTREL_CAP_MAX_VCPUS, ~0UL,
	};
	size_t i;

	(void)arg;
	for (i = 0; i < ARRAY_SIZE(caps); i++) {
		long r = check_cap(caps[i]);

		if (r != 0) {
			diag("CHECK_CAP(0x%lx) = %ld (%s), want 0", caps[i],
			     r, r < 0 ? errno_name(errno) : "-");
			return TEST_FAIL;
		}
	}
	return TEST_PASS;
}

static enum test_result test_mmap_size(const void *arg)
{
	(void)arg;
	CHECK_EQ(ioctl(sys_fd, KESTREL_GET_VCPU_MMAP_SIZE, 0UL), page_size);
	/* the fixed part of the run structure fits with room for data */
	CHECK(sizeof(struct kestrel_run) < (size_t)page_size);
	return TEST_PASS;
}

/* Every property Documentation/uapi.rst promises for the default table */
static enum test_result test_supported_cpuid(const void *arg)
{
	struct kestrel_cpuid *c = get_supported_cpuid();
	struct kestrel_cpuid_entry *e;
	long max = check_cap(KESTREL_CAP_MAX_CPUID);
	uint32_t i, j;

	(void)arg;
	CHECK(c);
	diag("%u supported entries", c->nent);
	CHECK(c->nent >= 3 && c->nent <= max);
	CHECK_EQ(c->padding, 0);
	for (i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		CHECK_EQ(e->flags & ~KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX, 0);
		CHECK_EQ(e->padding, 0);
		for (j = 0; j < i; j++) {
			struct kestrel_cpuid_entry *o = &c->entries[j];

			if (o->function == e->function &&
			    o->index == e->index) {
				diag("duplicate entry 0x%x/%u", e->function,
				     e->index);
				return TEST_FAIL;
			}
		}
	}

	CHECK((e = cpuid_find(c, 0, 0)));
	CHECK(e->eax >= 1);
	CHECK((e = cpuid_find(c, 1, 0)));
	CHECK(e->ecx & (1U << 31));		/* hypervisor */
	CHECK(!(e->ecx & (1U << 5)));		/* VMX */
	CHECK(!(e->ecx & (1U << 3)));		/* MONITOR */
	CHECK(!(e->ecx & (1U << 17)));		/* PCID */
	/* Emulated by Kestrel: always offered (cpuid_test has XSAVE/AVX). */
	CHECK(e->ecx & (1U << 21));		/* x2APIC */
	CHECK(e->ecx & (1U << 24));		/* TSC-deadline */
	CHECK(e->edx & (1U << 9));		/* APIC */
	CHECK(!(e->ecx & (1U << 27)));		/* OSXSAVE: follows CR4 */

	e = cpuid_find(c, 0x80000001, 0);
	if (e) {
		CHECK(!(e->ecx & (1U << 2)));	/* SVM */
		CHECK(!(e->edx & (1U << 27)));	/* RDTSCP */
	}

	CHECK((e = cpuid_find(c, 0x40000000, 0)));
	CHECK(e->eax >= 0x40000000 && e->eax <= 0x400000ff);
	CHECK_EQ(e->ebx, 0x7473654b);		/* "Kest" */
	CHECK_EQ(e->ecx, 0x566c6572);		/* "relV" */
	CHECK_EQ(e->edx, 0x00004d4d);		/* "MM\0\0" */
	return TEST_PASS;
}

/* The basic leaves come from the host: the vendor must match. */
static enum test_result test_supported_vendor(const void *arg)
{
	struct kestrel_cpuid *c = get_supported_cpuid();
	struct kestrel_cpuid_entry *e;
	uint32_t a, b, cc, d;

	(void)arg;
	CHECK(c);
	CHECK((e = cpuid_find(c, 0, 0)));
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(cc), "=d"(d)
			 : "a"(0), "c"(0));
	CHECK_EQ(e->ebx, b);
	CHECK_EQ(e->edx, d);
	CHECK_EQ(e->ecx, cc);
	return TEST_PASS;
}

static enum test_result test_vcpu_reset_state(const void *arg)
{
	struct kestrel_regs r;
	struct kestrel_sregs s;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_H(get_regs(&v, &r));
	CHECK_H(get_sregs(&v, &s));
	CHECK_EQ(r.rip, 0xfff0);
	CHECK_EQ(r.rflags, X86_RFLAGS_FIXED);
	CHECK_EQ(s.cs.selector, 0xf000);
	CHECK_EQ(s.cs.base, 0xffff0000);
	CHECK_EQ(s.cs.limit, 0xffff);
	CHECK_EQ(s.cr0 & (X86_CR0_PE | X86_CR0_PG), 0);
	CHECK_EQ(s.cr4, 0);
	CHECK_EQ(s.efer, 0);
	CHECK_EQ(s.ds.base, 0);
	CHECK_EQ(s.ss.base, 0);
	CHECK(s.cr8 <= 15);
	CHECK_EQ(s.reserved[0] | s.reserved[1] | s.reserved[2] |
		 s.reserved[3], 0);
	return TEST_PASS;
}

static enum test_result test_run_page(const void *arg)
{
	struct kestrel_run *second;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_EQ(v.run_size, page_size);
	CHECK_EQ(v.run->immediate_exit, 0);
	CHECK_EQ(v.run->exit_count, 0);

	/* Two mappings of one vCPU share the page. */
	second = res_map(mmap(NULL, v.run_size, PROT_READ | PROT_WRITE,
			      MAP_SHARED, v.fd, 0), v.run_size);
	CHECK(second != MAP_FAILED);
	CHECK(second != v.run);
	v.run->immediate_exit = 1;
	CHECK_EQ(second->immediate_exit, 1);
	second->immediate_exit = 0;
	CHECK_EQ(v.run->immediate_exit, 0);

	/* The whole page is usable (I/O data lives past the union). */
	((volatile uint8_t *)v.run)[v.run_size - 1] = 0xa5;
	CHECK_EQ(((volatile uint8_t *)second)[v.run_size - 1], 0xa5);
	return TEST_PASS;
}

static enum test_result test_vcpu_cpuid_default(const void *arg)
{
	struct kestrel_cpuid *sup, *c;
	struct vm vm;
	struct vcpu v;
	uint32_t i;

	(void)arg;
	CHECK((sup = get_supported_cpuid()));
	CHECK_H(vm_create(&vm, 0));
	CHECK_H(vcpu_create(&vm, &v, 3));
	CHECK((c = get_vcpu_cpuid(&v)));
	/* "A new vCPU starts with the supported table." */
	CHECK_EQ(c->nent, sup->nent);
	for (i = 0; i < sup->nent; i++) {
		struct kestrel_cpuid_entry *s = &sup->entries[i], *e;
		uint32_t mask = 0xffffffff;

		e = cpuid_find(c, s->function, s->index);
		if (!e) {
			diag("leaf 0x%x/%u missing", s->function, s->index);
			return TEST_FAIL;
		}
		/* leaf 1 EBX[31:24] may carry the vCPU id already */
		if (s->function == 1)
			mask = 0x00ffffff;
		if (e->eax != s->eax || (e->ebx & mask) != (s->ebx & mask) ||
		    e->ecx != s->ecx || e->edx != s->edx ||
		    e->flags != s->flags) {
			diag("leaf 0x%x/%u: %08x %08x %08x %08x, supported %08x %08x %08x %08x",
			     s->function, s->index, e->eax, e->ebx, e->ecx,
			     e->edx, s->eax, s->ebx, s->ecx, s->edx);
			return TEST_FAIL;
		}
	}
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "open and close /dev/kestrel twice", test_open_close, NULL },
	{ "GET_API_VERSION is 1", test_api_version, NULL },
	{ "CHECK_CAP values are sane", test_caps, NULL },
	{ "CHECK_CAP of unknown capabilities is 0", test_unknown_caps, NULL },
	{ "GET_VCPU_MMAP_SIZE is the page size", test_mmap_size, NULL },
	{ "supported CPUID hides SVM/VMX, offers the APIC, has Kestrel leaves",
	  test_supported_cpuid, NULL },
	{ "supported CPUID vendor is the host's", test_supported_vendor, NULL },
	{ "a new vCPU is in the x86 power-on state", test_vcpu_reset_state, NULL },
	{ "the run page is shared, zeroed and a page long", test_run_page, NULL },
	{ "a new vCPU's CPUID is the supported table",
	  test_vcpu_cpuid_default, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
