// SPDX-License-Identifier: GPL-2.0
/*
 * The errno contract of Documentation/uapi.rst: every misuse gets its
 * documented errno, and a rejected call changes nothing.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "lib.h"

DECLARE_GUEST(rm_id);

#define GPA_LIMIT	(1ULL << 48)

/* A fresh VM with one vCPU; no guest memory unless asked. */
static bool vm_vcpu(struct vm *vm, struct vcpu *v, size_t mem)
{
	return vm_create(vm, mem) && vcpu_create(vm, v, 0);
}

/* ---- ENOTTY ---------------------------------------------------------- */

struct bad_ioctl {
	unsigned long cmd;
	const char *name;
};

#define IOCTL(c)	{ c, #c }

/*
 * Every @cmds[i] on @fd must give ENOTTY.  The argument points at a big
 * enough zeroed buffer, so EFAULT or EINVAL cannot be the answer.
 */
static enum test_result expect_enotty(int fd, const struct bad_ioctl *cmds,
				      size_t n)
{
	uint8_t *buf = res_alloc(64 * 1024);
	bool ok = true;
	size_t i;

	for (i = 0; i < n; i++) {
		struct kestrel_cpuid *c = (struct kestrel_cpuid *)buf;
		long r;

		memset(buf, 0, 64 * 1024);
		c->nent = 256;
		r = ioctl(fd, cmds[i].cmd, buf);
		if (r >= 0 || errno != ENOTTY) {
			diag("%s (0x%lx): %ld %s, want ENOTTY", cmds[i].name,
			     cmds[i].cmd, r, r < 0 ? errno_name(errno) : "");
			ok = false;
		}
	}
	return ok ? TEST_PASS : TEST_FAIL;
}

static const struct bad_ioctl unknown_cmds[] = {
	IOCTL(_IO(KESTREL_IO, 0x7f)),
	IOCTL(_IOWR(KESTREL_IO, 0xff, struct kestrel_regs)),
	IOCTL(_IO(0xAE, 0x01)),		/* KVM's type */
	/* known numbers with the wrong size or direction */
	IOCTL(_IOW(KESTREL_IO, 0x01, uint64_t)),
	IOCTL(_IO(KESTREL_IO, 0x04)),
	IOCTL(_IOW(KESTREL_IO, 0x10, uint32_t)),
	IOCTL(_IOR(KESTREL_IO, 0x21, struct kestrel_sregs)),
	IOCTL(_IOW(KESTREL_IO, 0x22, struct kestrel_sregs)),
	IOCTL(_IOWR(KESTREL_IO, 0x20, uint32_t)),
};

static const struct bad_ioctl system_cmds[] = {
	IOCTL(KESTREL_GET_API_VERSION),
	IOCTL(KESTREL_CREATE_VM),
	IOCTL(KESTREL_CHECK_CAP),
	IOCTL(KESTREL_GET_VCPU_MMAP_SIZE),
	IOCTL(KESTREL_GET_SUPPORTED_CPUID),
};

static const struct bad_ioctl vm_cmds[] = {
	IOCTL(KESTREL_SET_MEMORY_REGION),
	IOCTL(KESTREL_CREATE_VCPU),
};

static const struct bad_ioctl vcpu_cmds[] = {
	IOCTL(KESTREL_RUN),
	IOCTL(KESTREL_GET_REGS),
	IOCTL(KESTREL_SET_REGS),
	IOCTL(KESTREL_GET_SREGS),
	IOCTL(KESTREL_SET_SREGS),
	IOCTL(KESTREL_SET_CPUID),
	IOCTL(KESTREL_GET_CPUID),
};

static enum test_result test_unknown_system(const void *arg)
{
	(void)arg;
	return expect_enotty(sys_fd, unknown_cmds, ARRAY_SIZE(unknown_cmds));
}

static enum test_result test_unknown_vm(const void *arg)
{
	struct vm vm;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	return expect_enotty(vm.fd, unknown_cmds, ARRAY_SIZE(unknown_cmds));
}

static enum test_result test_unknown_vcpu(const void *arg)
{
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, 0));
	return expect_enotty(v.fd, unknown_cmds, ARRAY_SIZE(unknown_cmds));
}

static enum test_result test_vcpu_cmds_elsewhere(const void *arg)
{
	struct vm vm;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	if (expect_enotty(vm.fd, vcpu_cmds, ARRAY_SIZE(vcpu_cmds)) != TEST_PASS)
		return TEST_FAIL;
	return expect_enotty(sys_fd, vcpu_cmds, ARRAY_SIZE(vcpu_cmds));
}

static enum test_result test_vm_cmds_elsewhere(const void *arg)
{
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, 0));
	if (expect_enotty(sys_fd, vm_cmds, ARRAY_SIZE(vm_cmds)) != TEST_PASS)
		return TEST_FAIL;
	return expect_enotty(v.fd, vm_cmds, ARRAY_SIZE(vm_cmds));
}

static enum test_result test_system_cmds_elsewhere(const void *arg)
{
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, 0));
	if (expect_enotty(vm.fd, system_cmds, ARRAY_SIZE(system_cmds)) !=
	    TEST_PASS)
		return TEST_FAIL;
	return expect_enotty(v.fd, system_cmds, ARRAY_SIZE(system_cmds));
}

/* ---- system fd ------------------------------------------------------- */

static enum test_result test_api_version_arg(const void *arg)
{
	(void)arg;
	CHECK_ERR(ioctl(sys_fd, KESTREL_GET_API_VERSION, 1UL), EINVAL);
	CHECK_ERR(ioctl(sys_fd, KESTREL_GET_API_VERSION, 1UL << 32), EINVAL);
	return TEST_PASS;
}

static enum test_result test_mmap_size_arg(const void *arg)
{
	(void)arg;
	CHECK_ERR(ioctl(sys_fd, KESTREL_GET_VCPU_MMAP_SIZE, 1UL), EINVAL);
	return TEST_PASS;
}

static int create_vm_raw(struct kestrel_create_vm *c)
{
	return res_fd(ioctl(sys_fd, KESTREL_CREATE_VM, c));
}

static enum test_result test_create_vm_flags(const void *arg)
{
	struct kestrel_create_vm c;

	(void)arg;
	memset(&c, 0, sizeof(c));
	c.flags = 1;
	CHECK_ERR(create_vm_raw(&c), EINVAL);
	c.flags = 0x80000000;
	CHECK_ERR(create_vm_raw(&c), EINVAL);
	c.flags = 0;
	c.reserved = 1;
	CHECK_ERR(create_vm_raw(&c), EINVAL);
	return TEST_PASS;
}

static enum test_result test_create_vm_name(const void *arg)
{
	static const char *const bad[] = {
		"has space", "a/b", "tab\t", "newline\n", "\xff", "caf\xc3\xa9",
		"semi;colon", "star*",
	};
	struct kestrel_create_vm c;
	size_t i;

	(void)arg;
	/* 32 bytes without a NUL */
	memset(&c, 0, sizeof(c));
	memset(c.name, 'a', sizeof(c.name));
	CHECK_ERR(create_vm_raw(&c), EINVAL);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&c, 0, sizeof(c));
		strcpy(c.name, bad[i]);
		if (create_vm_raw(&c) >= 0 || errno != EINVAL) {
			diag("name \"%s\": %s, want EINVAL", bad[i],
			     errno_name(errno));
			return TEST_FAIL;
		}
	}
	return TEST_PASS;
}

/* ---- memory regions -------------------------------------------------- */

struct region_env {
	struct vm vm;
	uint8_t *mem;		/* 4 pages of anonymous memory */
};

static bool region_env(struct region_env *e)
{
	if (!vm_create(&e->vm, 0))
		return false;
	e->mem = res_map(mmap(NULL, 4 * page_size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
			 4 * page_size);
	if (e->mem == MAP_FAILED) {
		diag("mmap: %s", strerror(errno));
		return false;
	}
	return true;
}

static long set_region(struct region_env *e, uint32_t slot, uint32_t flags,
		       uint64_t gpa, uint64_t size, uint64_t uaddr)
{
	struct kestrel_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = uaddr,
	};

	return ioctl(e->vm.fd, KESTREL_SET_MEMORY_REGION, &r);
}

#define UA(e, off)	((uint64_t)(uintptr_t)((e)->mem + (off)))

static enum test_result test_region_flags(const void *arg)
{
	struct region_env e;

	(void)arg;
	CHECK_H(region_env(&e));
	/* bits 0 and 1 are LOG_DIRTY_PAGES and READONLY; the rest undefined */
	CHECK_ERR(set_region(&e, 0, 4, 0, page_size, UA(&e, 0)), EINVAL);
	CHECK_ERR(set_region(&e, 0, 0x80000000, 0, page_size, UA(&e, 0)),
		  EINVAL);
	/* nothing was created: the slot is still free */
	CHECK_OK(set_region(&e, 0, 0, 0, page_size, UA(&e, 0)));
	return TEST_PASS;
}

static enum test_result test_region_slot_range(const void *arg)
{
	long nr = check_cap(KESTREL_CAP_NR_MEMSLOTS);
	struct region_env e;

	(void)arg;
	CHECK(nr >= 1);
	CHECK_H(region_env(&e));
	CHECK_ERR(set_region(&e, nr, 0, 0, page_size, UA(&e, 0)), EINVAL);
	CHECK_ERR(set_region(&e, 0xffffffff, 0, 0, page_size, UA(&e, 0)),
		  EINVAL);
	CHECK_OK(set_region(&e, nr - 1, 0, 0, page_size, UA(&e, 0)));
	return TEST_PASS;
}

static enum test_result test_region_alignment(const void *arg)
{
	struct region_env e;

	(void)arg;
	CHECK_H(region_env(&e));
	CHECK_ERR(set_region(&e, 0, 0, 0x800, page_size, UA(&e, 0)), EINVAL);
	CHECK_ERR(set_region(&e, 0, 0, 0, page_size + 0x800, UA(&e, 0)),
		  EINVAL);
	CHECK_ERR(set_region(&e, 0, 0, 0, 1, UA(&e, 0)), EINVAL);
	CHECK_ERR(set_region(&e, 0, 0, 0, page_size, UA(&e, 0x10)), EINVAL);
	CHECK_OK(set_region(&e, 0, 0, 0, page_size, UA(&e, 0)));
	return TEST_PASS;
}

static enum test_result test_region_gpa_range(const void *arg)
{
	struct region_env e;
	uint64_t two = 2 * page_size;

	(void)arg;
	CHECK_H(region_env(&e));
	/* wraps */
	CHECK_ERR(set_region(&e, 0, 0, -(uint64_t)page_size, two, UA(&e, 0)),
		  EINVAL);
	/* passes 2^48, or starts there */
	CHECK_ERR(set_region(&e, 0, 0, GPA_LIMIT - page_size, two, UA(&e, 0)),
		  EINVAL);
	CHECK_ERR(set_region(&e, 0, 0, GPA_LIMIT, page_size, UA(&e, 0)),
		  EINVAL);
	CHECK_ERR(set_region(&e, 0, 0, 1ULL << 63, page_size, UA(&e, 0)),
		  EINVAL);
	/* ending exactly at 2^48 does not pass it */
	CHECK_OK(set_region(&e, 0, 0, GPA_LIMIT - page_size, page_size,
			    UA(&e, 0)));
	return TEST_PASS;
}

static enum test_result test_region_user_range(const void *arg)
{
	struct region_env e;

	(void)arg;
	CHECK_H(region_env(&e));
	/* kernel addresses: direct map, vmalloc, the top page */
	CHECK_ERR(set_region(&e, 0, 0, 0, page_size, 0xffff888000000000ULL),
		  EINVAL);
	CHECK_ERR(set_region(&e, 0, 0, 0, page_size, 0xffffc90000000000ULL),
		  EINVAL);
	CHECK_ERR(set_region(&e, 0, 0, 0, page_size, -(uint64_t)page_size),
		  EINVAL);
	/* non-canonical */
	CHECK_ERR(set_region(&e, 0, 0, 0, page_size, 0x8000000000000000ULL),
		  EINVAL);
	/* user range that wraps */
	CHECK_ERR(set_region(&e, 0, 0, 0, 2 * page_size,
			     -(uint64_t)page_size), EINVAL);
	CHECK_OK(set_region(&e, 0, 0, 0, page_size, UA(&e, 0)));
	return TEST_PASS;
}

/*
 * Slots hold at most 2^31 - 1 pages (as KVM's KVM_MEM_MAX_NR_PAGES), so a
 * dirty bitmap never nears INT_MAX bytes; larger is EINVAL, logging or
 * not.  Nothing is mapped up front: the user range only has to be user
 * addresses.
 */
static enum test_result test_region_size_cap(const void *arg)
{
	const uint64_t max = ((1ULL << 31) - 1) * 4096, uaddr = 1ULL << 44;
	const uint32_t log = KESTREL_MEM_LOG_DIRTY_PAGES;
	struct region_env e;
	long r;

	(void)arg;
	if (page_size != 4096)
		return test_skip("page size %ld", page_size);
	CHECK_H(region_env(&e));
	/* 2^46 bytes: a 2 GiB bitmap, which once made kvmalloc WARN */
	CHECK_ERR(set_region(&e, 0, log, 0, 1ULL << 46, uaddr), EINVAL);
	CHECK_ERR(set_region(&e, 0, 0, 0, 1ULL << 46, uaddr), EINVAL);
	/* one page over the cap */
	CHECK_ERR(set_region(&e, 0, log, 0, max + 4096, uaddr), EINVAL);
	CHECK_ERR(set_region(&e, 0, 0, 0, max + 4096, uaddr), EINVAL);
	CHECK_ERR(set_region(&e, 0, KESTREL_MEM_READONLY, 1ULL << 40,
			     max + 4096, uaddr), EINVAL);
	/* nothing was created by any of them */
	CHECK_ERR(set_region(&e, 0, 0, 0, 0, 0), ENOENT);
	/* at the cap: fine without logging... */
	CHECK_OK(set_region(&e, 0, 0, 0, max, uaddr));
	CHECK_OK(set_region(&e, 0, 0, 0, 0, 0));
	/*
	 * ...and with it, a 256 MiB bitmap: made, or ENOMEM on a small
	 * host, never a kernel warning (the run's kernel log is checked).
	 */
	r = set_region(&e, 0, log, 0, max, uaddr);
	if (r) {
		CHECK_EQ(errno, ENOMEM);
		CHECK_ERR(set_region(&e, 0, 0, 0, 0, 0), ENOENT);
	} else {
		CHECK_OK(set_region(&e, 0, 0, 0, 0, 0));
	}
	return TEST_PASS;
}

static enum test_result test_region_overlap(const void *arg)
{
	struct region_env e;
	uint64_t p = page_size;

	(void)arg;
	CHECK_H(region_env(&e));
	/* slot 0 covers GPA [4p, 6p) */
	CHECK_OK(set_region(&e, 0, 0, 4 * p, 2 * p, UA(&e, 0)));
	CHECK_ERR(set_region(&e, 1, 0, 3 * p, 2 * p, UA(&e, 2 * p)), EEXIST);
	CHECK_ERR(set_region(&e, 1, 0, 5 * p, 2 * p, UA(&e, 2 * p)), EEXIST);
	CHECK_ERR(set_region(&e, 1, 0, 5 * p, p, UA(&e, 2 * p)), EEXIST);
	CHECK_ERR(set_region(&e, 1, 0, 2 * p, 8 * p, UA(&e, 0)), EEXIST);
	/* adjacent on both sides is fine */
	CHECK_OK(set_region(&e, 1, 0, 3 * p, p, UA(&e, 2 * p)));
	CHECK_OK(set_region(&e, 2, 0, 6 * p, p, UA(&e, 3 * p)));
	return TEST_PASS;
}

static enum test_result test_region_live_slot(const void *arg)
{
	struct region_env e;
	uint64_t p = page_size;

	(void)arg;
	CHECK_H(region_env(&e));
	CHECK_OK(set_region(&e, 0, 0, 0, p, UA(&e, 0)));
	/* new backing memory or a resize need a delete first */
	CHECK_ERR(set_region(&e, 0, 0, 16 * p, p, UA(&e, p)), EEXIST);
	CHECK_ERR(set_region(&e, 0, 0, 0, 2 * p, UA(&e, 0)), EEXIST);
	/* a move onto another slot's range */
	CHECK_OK(set_region(&e, 1, 0, 8 * p, p, UA(&e, p)));
	CHECK_ERR(set_region(&e, 0, 0, 8 * p, p, UA(&e, 0)), EEXIST);
	CHECK_OK(set_region(&e, 0, 0, 0, 0, 0));
	CHECK_OK(set_region(&e, 0, 0, 16 * p, p, UA(&e, 2 * p)));
	return TEST_PASS;
}

static enum test_result test_region_delete_empty(const void *arg)
{
	struct region_env e;

	(void)arg;
	CHECK_H(region_env(&e));
	CHECK_ERR(set_region(&e, 0, 0, 0, 0, 0), ENOENT);
	CHECK_ERR(set_region(&e, 3, 0, 0, 0, UA(&e, 0)), ENOENT);
	CHECK_OK(set_region(&e, 3, 0, 0, page_size, UA(&e, 0)));
	CHECK_OK(set_region(&e, 3, 0, 0, 0, 0));
	CHECK_ERR(set_region(&e, 3, 0, 0, 0, 0), ENOENT);
	return TEST_PASS;
}

/* ---- vCPUs ----------------------------------------------------------- */

static enum test_result test_vcpu_id_range(const void *arg)
{
	long max = check_cap(KESTREL_CAP_MAX_VCPUS);
	struct vm vm;

	(void)arg;
	CHECK(max >= 1);
	CHECK_H(vm_create(&vm, 0));
	CHECK_ERR(create_vcpu_fd(vm.fd, max), EINVAL);
	CHECK_ERR(create_vcpu_fd(vm.fd, 1UL << 32), EINVAL);
	CHECK_ERR(create_vcpu_fd(vm.fd, ~0UL), EINVAL);
	CHECK_OK(create_vcpu_fd(vm.fd, max - 1));
	return TEST_PASS;
}

static enum test_result test_vcpu_duplicate(const void *arg)
{
	struct vm vm;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	CHECK_OK(create_vcpu_fd(vm.fd, 0));
	CHECK_ERR(create_vcpu_fd(vm.fd, 0), EEXIST);
	CHECK_OK(create_vcpu_fd(vm.fd, 1));
	CHECK_ERR(create_vcpu_fd(vm.fd, 1), EEXIST);
	return TEST_PASS;
}

static enum test_result test_regs_rflags(const void *arg)
{
	static const int bits[] = { 3, 5, 15, 22, 31, 32, 63 };
	struct kestrel_regs base, bad, after;
	struct vm vm;
	struct vcpu v;
	size_t i;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, 0));
	CHECK_H(get_regs(&v, &base));
	base.rax = 0x1111;
	base.rflags = X86_RFLAGS_FIXED | 1;
	CHECK_H(set_regs(&v, &base));
	for (i = 0; i < ARRAY_SIZE(bits); i++) {
		bad = base;
		bad.rflags |= 1ULL << bits[i];
		bad.rax = 0x2222;
		if (ioctl(v.fd, KESTREL_SET_REGS, &bad) != -1 ||
		    errno != EINVAL) {
			diag("RFLAGS bit %d: %s, want EINVAL", bits[i],
			     errno_name(errno));
			return TEST_FAIL;
		}
		/* nothing of the rejected call applied */
		CHECK_H(get_regs(&v, &after));
		CHECK(!memcmp(&base, &after, sizeof(base)));
	}
	return TEST_PASS;
}

/* ---- SET_SREGS: one field changed from a valid state ----------------- */

enum sregs_base { REAL, LONG };
enum sregs_op { SET, OR, CLEAR };

struct sregs_case {
	const char *name;
	enum sregs_base base;
	size_t off, size;
	enum sregs_op op;
	uint64_t val;
	int err;		/* 0: must be accepted */
};

#define F(field)	offsetof(struct kestrel_sregs, field),		\
			sizeof(((struct kestrel_sregs *)0)->field)

static const struct sregs_case sregs_cases[] = {
	/* valid states the others are built from, and other valid ones */
	{ "SET_SREGS accepts the power-on state", REAL, F(cr0), OR, 0, 0 },
	{ "SET_SREGS accepts a long-mode state", LONG, F(cr0), OR, 0, 0 },
	{ "SET_SREGS: EFER.LME without paging or PAE", REAL, F(efer), SET,
	  X86_EFER_LME, EINVAL },
	{ "SET_SREGS accepts EFER.SCE", REAL, F(efer), SET, X86_EFER_SCE, 0 },
	{ "SET_SREGS accepts CR8 15", REAL, F(cr8), SET, 15, 0 },
	{ "SET_SREGS accepts every always-virtualized CR4 bit", REAL, F(cr4),
	  SET, 0x7ff, 0 },

	{ "SET_SREGS: CR0.PG without PE", REAL, F(cr0), OR, X86_CR0_PG,
	  EINVAL },
	{ "SET_SREGS: CR0.NW without CD", REAL, F(cr0), SET,
	  X86_CR0_NW | X86_CR0_ET, EINVAL },
	{ "SET_SREGS: CR0 reserved bit 6", REAL, F(cr0), OR, 1ULL << 6,
	  EINVAL },
	{ "SET_SREGS: CR0 reserved bit 32", REAL, F(cr0), OR, 1ULL << 32,
	  EINVAL },
	{ "SET_SREGS: CR0 reserved bit 63", LONG, F(cr0), OR, 1ULL << 63,
	  EINVAL },
	{ "SET_SREGS: CR4.VMXE", REAL, F(cr4), OR, 1ULL << 13, EINVAL },
	{ "SET_SREGS: CR4.SMXE", REAL, F(cr4), OR, 1ULL << 14, EINVAL },
	{ "SET_SREGS: CR4.CET", REAL, F(cr4), OR, 1ULL << 23, EINVAL },
	{ "SET_SREGS: CR4.PCIDE", LONG, F(cr4), OR, 1ULL << 17, EINVAL },
	{ "SET_SREGS: CR4.LA57", REAL, F(cr4), OR, 1ULL << 12, EINVAL },
	{ "SET_SREGS: CR4.PKE", LONG, F(cr4), OR, 1ULL << 22, EINVAL },
	{ "SET_SREGS: CR4 bit 63", REAL, F(cr4), OR, 1ULL << 63, EINVAL },
	{ "SET_SREGS: CR3 above the physical address width", LONG, F(cr3),
	  OR, 1ULL << 62, EINVAL },
	{ "SET_SREGS: CR8 16", REAL, F(cr8), SET, 16, EINVAL },
	{ "SET_SREGS: CR8 2^32", REAL, F(cr8), SET, 1ULL << 32, EINVAL },
	{ "SET_SREGS: EFER.SVME", REAL, F(efer), OR, 1ULL << 12, EINVAL },
	{ "SET_SREGS: EFER bit 1", REAL, F(efer), OR, 1ULL << 1, EINVAL },
	{ "SET_SREGS: EFER bit 63", LONG, F(efer), OR, 1ULL << 63, EINVAL },
	{ "SET_SREGS: EFER.LMA without LME or paging", REAL, F(efer), SET,
	  X86_EFER_LMA, EINVAL },
	{ "SET_SREGS: EFER.LMA with LME but no paging", REAL, F(efer), SET,
	  X86_EFER_LME | X86_EFER_LMA, EINVAL },
	{ "SET_SREGS: EFER.LME and paging without LMA", LONG, F(efer), CLEAR,
	  X86_EFER_LMA, EINVAL },
	{ "SET_SREGS: EFER.LMA without LME", LONG, F(efer), CLEAR,
	  X86_EFER_LME, EINVAL },
	{ "SET_SREGS: EFER.LMA without CR0.PG", LONG, F(cr0), CLEAR,
	  X86_CR0_PG, EINVAL },
	{ "SET_SREGS: EFER.LMA without CR4.PAE", LONG, F(cr4), CLEAR,
	  X86_CR4_PAE, EINVAL },
	{ "SET_SREGS: long mode CS with L and DB", LONG, F(cs.db), SET, 1,
	  EINVAL },
	{ "SET_SREGS: segment present 2", REAL, F(ds.present), SET, 2,
	  EINVAL },
	{ "SET_SREGS: segment db 2", REAL, F(es.db), SET, 2, EINVAL },
	{ "SET_SREGS: segment s 2", REAL, F(fs.s), SET, 2, EINVAL },
	{ "SET_SREGS: segment l 2", REAL, F(gs.l), SET, 2, EINVAL },
	{ "SET_SREGS: segment g 2", REAL, F(ss.g), SET, 2, EINVAL },
	{ "SET_SREGS: segment avl 2", REAL, F(cs.avl), SET, 2, EINVAL },
	{ "SET_SREGS: segment unusable 2", REAL, F(ldt.unusable), SET, 2,
	  EINVAL },
	{ "SET_SREGS: segment type 16", REAL, F(ds.type), SET, 16, EINVAL },
	{ "SET_SREGS: segment dpl 4", REAL, F(ss.dpl), SET, 4, EINVAL },
	{ "SET_SREGS: segment padding", REAL, F(tr.padding), SET, 1,
	  EINVAL },
	{ "SET_SREGS: GDT padding", REAL, F(gdt.padding[0]), SET, 1,
	  EINVAL },
	{ "SET_SREGS: IDT padding", REAL, F(idt.padding[2]), SET, 0x8000,
	  EINVAL },
	{ "SET_SREGS: APIC base reserved bit 0", REAL, F(apic_base), OR, 1,
	  EINVAL },
	{ "SET_SREGS: APIC base reserved bit 9", REAL, F(apic_base), OR,
	  1ULL << 9, EINVAL },
	{ "SET_SREGS: APIC base x2APIC (EXTD) without enable", REAL,
	  F(apic_base), SET, 0xfee00000ULL | 1ULL << 10, EINVAL },
	{ "SET_SREGS: APIC base x2APIC, BSP, without enable", REAL,
	  F(apic_base), SET, 0xfee00000ULL | 1ULL << 10 | 1ULL << 8, EINVAL },
	{ "SET_SREGS accepts APIC base x2APIC with enable", REAL,
	  F(apic_base), SET, 0xfee00000ULL | 3ULL << 10, 0 },
	{ "SET_SREGS accepts a disabled APIC", REAL, F(apic_base), SET,
	  0xfee00000ULL, 0 },
	{ "SET_SREGS: reserved[0]", REAL, F(reserved[0]), SET, 1, EINVAL },
	{ "SET_SREGS: reserved[3]", LONG, F(reserved[3]), SET, 1ULL << 63,
	  EINVAL },
};

static void apply(struct kestrel_sregs *s, const struct sregs_case *c)
{
	uint8_t *p = (uint8_t *)s + c->off;
	uint64_t v = 0;

	memcpy(&v, p, c->size);			/* little endian */
	switch (c->op) {
	case SET:
		v = c->val;
		break;
	case OR:
		v |= c->val;
		break;
	case CLEAR:
		v &= ~c->val;
		break;
	}
	memcpy(p, &v, c->size);
}

static enum test_result test_sregs(const void *arg)
{
	const struct sregs_case *c = arg;
	struct kestrel_sregs base, before, bad, after;
	struct vm vm;
	struct vcpu v;

	CHECK_H(vm_vcpu(&vm, &v, 0));
	CHECK_H(get_sregs(&v, &base));
	if (c->base == LONG)
		sregs_make_long(&base);
	if (!set_sregs(&v, &base)) {
		diag("the %s baseline is rejected",
		     c->base == LONG ? "long-mode" : "power-on");
		return TEST_FAIL;
	}
	CHECK_H(get_sregs(&v, &before));
	bad = base;
	apply(&bad, c);
	if (!c->err) {
		CHECK_OK(ioctl(v.fd, KESTREL_SET_SREGS, &bad));
		return TEST_PASS;
	}
	CHECK_ERR(ioctl(v.fd, KESTREL_SET_SREGS, &bad), c->err);
	/* the rejected state must not have been applied, even partly */
	CHECK_H(get_sregs(&v, &after));
	CHECK(!memcmp(&before, &after, sizeof(before)));
	return TEST_PASS;
}

/* ---- CPUID ----------------------------------------------------------- */

/* @n distinct, valid entries */
static struct kestrel_cpuid *distinct_table(uint32_t n)
{
	struct kestrel_cpuid *c = cpuid_alloc(n);
	uint32_t i;

	for (i = 0; i < n; i++) {
		c->entries[i].function = 0x40000100 + i;
		c->entries[i].eax = i;
	}
	return c;
}

/* SET_CPUID of @c must fail with @err and leave the table alone. */
static bool set_cpuid_fails(struct vcpu *v, struct kestrel_cpuid *c, int err,
			    const char *what)
{
	struct kestrel_cpuid *before, *after;
	long r;

	before = get_vcpu_cpuid(v);
	if (!before)
		return false;
	r = ioctl(v->fd, KESTREL_SET_CPUID, c);
	if (r != -1 || errno != err) {
		diag("%s: %ld %s, want %s", what, r,
		     r ? errno_name(errno) : "", errno_name(err));
		return false;
	}
	after = get_vcpu_cpuid(v);
	if (!after)
		return false;
	if (before->nent != after->nent ||
	    memcmp(before->entries, after->entries,
		   before->nent * sizeof(before->entries[0]))) {
		diag("%s: the failed SET_CPUID changed the table", what);
		return false;
	}
	return true;
}

static enum test_result test_set_cpuid_e2big(const void *arg)
{
	long max = check_cap(KESTREL_CAP_MAX_CPUID);
	struct kestrel_cpuid *c;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK(max >= 1 && max <= 65536);
	CHECK_H(vm_vcpu(&vm, &v, 0));
	c = distinct_table(max + 1);
	CHECK_H(set_cpuid_fails(&v, c, E2BIG, "nent = CAP_MAX_CPUID + 1"));
	c->nent = 0xffffffff;
	CHECK_H(set_cpuid_fails(&v, c, E2BIG, "nent = 2^32 - 1"));
	/* exactly the maximum is fine */
	c->nent = max;
	CHECK_OK(ioctl(v.fd, KESTREL_SET_CPUID, c));
	return TEST_PASS;
}

static enum test_result test_set_cpuid_einval(const void *arg)
{
	struct kestrel_cpuid *c;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, 0));

	c = distinct_table(4);
	c->entries[2].flags = 2;
	CHECK_H(set_cpuid_fails(&v, c, EINVAL, "entry flags 2"));
	c = distinct_table(4);
	c->entries[3].flags = 1U << 31;
	CHECK_H(set_cpuid_fails(&v, c, EINVAL, "entry flags bit 31"));
	c = distinct_table(4);
	c->entries[1].padding = 1;
	CHECK_H(set_cpuid_fails(&v, c, EINVAL, "entry padding"));
	c = distinct_table(4);
	c->padding = 1;
	CHECK_H(set_cpuid_fails(&v, c, EINVAL, "header padding"));

	c = distinct_table(4);
	c->entries[3].function = c->entries[0].function;
	CHECK_H(set_cpuid_fails(&v, c, EINVAL, "duplicate function"));
	c = distinct_table(4);
	c->entries[0].function = c->entries[1].function = 7;
	c->entries[0].flags = c->entries[1].flags =
		KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX;
	c->entries[0].index = c->entries[1].index = 1;
	CHECK_H(set_cpuid_fails(&v, c, EINVAL, "duplicate function/index"));
	/* different subleaves of one function are fine */
	c->entries[1].index = 2;
	CHECK_OK(ioctl(v.fd, KESTREL_SET_CPUID, c));
	return TEST_PASS;
}

static enum test_result test_get_cpuid_e2big(const void *arg)
{
	struct kestrel_cpuid *full, *c;
	uint32_t small[] = { 0, 1 };
	struct vm vm;
	struct vcpu v;
	size_t i;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, 0));
	CHECK((full = get_vcpu_cpuid(&v)));
	CHECK(full->nent >= 2);
	for (i = 0; i < ARRAY_SIZE(small); i++) {
		c = cpuid_alloc(full->nent);
		c->nent = small[i];
		CHECK_ERR(ioctl(v.fd, KESTREL_GET_CPUID, c), E2BIG);
		CHECK_EQ(c->nent, full->nent);
	}
	c = cpuid_alloc(full->nent);
	c->nent = full->nent - 1;
	CHECK_ERR(ioctl(v.fd, KESTREL_GET_CPUID, c), E2BIG);
	CHECK_EQ(c->nent, full->nent);
	/* exactly enough works, and bigger reports the count */
	CHECK_OK(ioctl(v.fd, KESTREL_GET_CPUID, c));
	CHECK_EQ(c->nent, full->nent);
	c = cpuid_alloc(full->nent + 10);
	CHECK_OK(ioctl(v.fd, KESTREL_GET_CPUID, c));
	CHECK_EQ(c->nent, full->nent);
	return TEST_PASS;
}

static enum test_result test_get_supported_e2big(const void *arg)
{
	struct kestrel_cpuid *full, *c;

	(void)arg;
	CHECK((full = get_supported_cpuid()));
	CHECK(full->nent >= 2);
	c = cpuid_alloc(full->nent);
	c->nent = 1;
	CHECK_ERR(ioctl(sys_fd, KESTREL_GET_SUPPORTED_CPUID, c), E2BIG);
	CHECK_EQ(c->nent, full->nent);
	c->nent = 0;
	CHECK_ERR(ioctl(sys_fd, KESTREL_GET_SUPPORTED_CPUID, c), E2BIG);
	CHECK_EQ(c->nent, full->nent);
	CHECK_OK(ioctl(sys_fd, KESTREL_GET_SUPPORTED_CPUID, c));
	CHECK_EQ(c->nent, full->nent);
	return TEST_PASS;
}

/* ---- mmap and RUN ---------------------------------------------------- */

static enum test_result test_mmap_bad(const void *arg)
{
	struct vm vm;
	struct vcpu v;
	void *p;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, 0));
	p = res_map(mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, v.fd, 0), 2 * page_size);
	CHECK_ERR(p == MAP_FAILED ? -1 : 0, EINVAL);
	p = res_map(mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 v.fd, page_size), page_size);
	CHECK_ERR(p == MAP_FAILED ? -1 : 0, EINVAL);
	return TEST_PASS;
}

static enum test_result test_run_arg(const void *arg)
{
	struct kestrel_regs before, after;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, GUEST_MEM_SIZE));
	CHECK_H(vm_load(&vm, GUEST(rm_id)));
	CHECK_H(vcpu_setup_real(&v));
	CHECK_H(get_regs(&v, &before));
	CHECK_ERR(ioctl(v.fd, KESTREL_RUN, 1UL), EINVAL);
	CHECK_ERR(ioctl(v.fd, KESTREL_RUN, 1UL << 32), EINVAL);
	/* the guest did not run */
	CHECK_H(get_regs(&v, &after));
	CHECK(!memcmp(&before, &after, sizeof(before)));
	CHECK_EQ(*(uint32_t *)(vm.mem + GUEST_DATA), 0);
	return TEST_PASS;
}

/* ---- another process ------------------------------------------------- */

static int child_checks(struct vm *vm, struct vcpu *v)
{
	struct kestrel_memory_region r = {
		.slot = 1, .guest_phys_addr = GUEST_SLOT1_GPA,
		.memory_size = page_size,
		.userspace_addr = (uintptr_t)vm->mem,
	};
	struct kestrel_cpuid *c = cpuid_alloc(256);
	struct kestrel_regs regs;
	struct kestrel_sregs sregs;
	int fails = 0;

#define CHILD_EIO(expr)							\
	do {								\
		long __r = (long)(expr);				\
									\
		if (!expect_errno(__r, errno, EIO, #expr,		\
				  __FILE__, __LINE__))			\
			fails++;					\
	} while (0)

	CHILD_EIO(ioctl(vm->fd, KESTREL_CREATE_VCPU, 1UL));
	CHILD_EIO(ioctl(vm->fd, KESTREL_SET_MEMORY_REGION, &r));
	CHILD_EIO(ioctl(v->fd, KESTREL_RUN, 0UL));
	CHILD_EIO(ioctl(v->fd, KESTREL_GET_REGS, &regs));
	memset(&regs, 0, sizeof(regs));
	regs.rflags = X86_RFLAGS_FIXED;
	CHILD_EIO(ioctl(v->fd, KESTREL_SET_REGS, &regs));
	CHILD_EIO(ioctl(v->fd, KESTREL_GET_SREGS, &sregs));
	CHILD_EIO(ioctl(v->fd, KESTREL_GET_CPUID, c));
#undef CHILD_EIO
	/* The system fd is not tied to an mm. */
	if (ioctl(sys_fd, KESTREL_GET_API_VERSION, 0UL) !=
	    KESTREL_API_VERSION) {
		diag("child: GET_API_VERSION failed: %s", errno_name(errno));
		fails++;
	}
	return fails;
}

static enum test_result test_fork_eio(const void *arg)
{
	struct vm vm;
	struct vcpu v;
	uint32_t val;
	int status;
	pid_t pid;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, GUEST_MEM_SIZE));
	CHECK_H(vm_load(&vm, GUEST(rm_id)));
	CHECK_H(vcpu_setup_real(&v));
	fflush(stdout);
	pid = fork();
	CHECK_OK(pid);
	if (pid == 0) {
		int fails = child_checks(&vm, &v);

		fflush(stdout);
		_exit(fails ? 1 : 0);
	}
	CHECK_OK(waitpid(pid, &status, 0));
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	/* The child's calls and exit left the VM intact for its owner. */
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0xc0de0000);
	CHECK_H(run_expect_hlt(&v));
	return TEST_PASS;
}

/* ---- EFAULT ---------------------------------------------------------- */

static enum test_result test_efault(const void *arg)
{
	void *none, *ptrs[2];
	struct vm vm;
	struct vcpu v;
	size_t i;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, 0));
	none = res_map(mmap(NULL, page_size, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), page_size);
	CHECK(none != MAP_FAILED);
	ptrs[0] = NULL;
	ptrs[1] = none;
	for (i = 0; i < ARRAY_SIZE(ptrs); i++) {
		void *p = ptrs[i];

		diag("pointer %p", p);
		CHECK_ERR(res_fd(ioctl(sys_fd, KESTREL_CREATE_VM, p)), EFAULT);
		CHECK_ERR(ioctl(sys_fd, KESTREL_GET_SUPPORTED_CPUID, p),
			  EFAULT);
		CHECK_ERR(ioctl(vm.fd, KESTREL_SET_MEMORY_REGION, p), EFAULT);
		CHECK_ERR(ioctl(v.fd, KESTREL_GET_REGS, p), EFAULT);
		CHECK_ERR(ioctl(v.fd, KESTREL_SET_REGS, p), EFAULT);
		CHECK_ERR(ioctl(v.fd, KESTREL_GET_SREGS, p), EFAULT);
		CHECK_ERR(ioctl(v.fd, KESTREL_SET_SREGS, p), EFAULT);
		CHECK_ERR(ioctl(v.fd, KESTREL_SET_CPUID, p), EFAULT);
		CHECK_ERR(ioctl(v.fd, KESTREL_GET_CPUID, p), EFAULT);
	}
	return TEST_PASS;
}

static enum test_result test_efault_readonly(const void *arg)
{
	struct vm vm;
	struct vcpu v;
	void *ro;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, 0));
	ro = res_map(mmap(NULL, page_size, PROT_READ,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), page_size);
	CHECK(ro != MAP_FAILED);
	CHECK_ERR(ioctl(v.fd, KESTREL_GET_REGS, ro), EFAULT);
	CHECK_ERR(ioctl(v.fd, KESTREL_GET_SREGS, ro), EFAULT);
	/* input may come from read-only memory (zeros are valid regs) */
	CHECK_OK(ioctl(v.fd, KESTREL_SET_REGS, ro));
	return TEST_PASS;
}

/*
 * A CPUID table whose header is readable but whose entries run into an
 * inaccessible page: EFAULT, and the old table stays.
 */
static enum test_result test_efault_cpuid_entries(const void *arg)
{
	const size_t esz = sizeof(struct kestrel_cpuid_entry);
	struct kestrel_cpuid *c, *before, *after;
	struct vm vm;
	struct vcpu v;
	uint8_t *two;

	(void)arg;
	CHECK_H(vm_vcpu(&vm, &v, 0));
	two = res_map(mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 2 * page_size);
	CHECK(two != MAP_FAILED);
	CHECK_OK(mprotect(two + page_size, page_size, PROT_NONE));
	/* header and one entry in the good page, the second one not */
	c = (struct kestrel_cpuid *)(two + page_size - sizeof(*c) - esz);
	memset(c, 0, sizeof(*c) + esz);
	c->nent = 2;
	c->entries[0].function = 0x40000100;

	CHECK((before = get_vcpu_cpuid(&v)));
	CHECK_ERR(ioctl(v.fd, KESTREL_SET_CPUID, c), EFAULT);
	CHECK((after = get_vcpu_cpuid(&v)));
	CHECK_EQ(after->nent, before->nent);
	CHECK(!memcmp(after->entries, before->entries, before->nent * esz));

	/* GET with room claimed for the whole table, but only one entry */
	c->nent = before->nent;
	CHECK_ERR(ioctl(v.fd, KESTREL_GET_CPUID, c), EFAULT);
	c->nent = before->nent;
	CHECK_ERR(ioctl(sys_fd, KESTREL_GET_SUPPORTED_CPUID, c), EFAULT);
	return TEST_PASS;
}

/* ---- the list -------------------------------------------------------- */

static const struct test_case fixed_cases[] = {
	{ "unknown ioctls on the system fd: ENOTTY", test_unknown_system, NULL },
	{ "unknown ioctls on a VM fd: ENOTTY", test_unknown_vm, NULL },
	{ "unknown ioctls on a vCPU fd: ENOTTY", test_unknown_vcpu, NULL },
	{ "vCPU ioctls on VM and system fds: ENOTTY",
	  test_vcpu_cmds_elsewhere, NULL },
	{ "VM ioctls on system and vCPU fds: ENOTTY", test_vm_cmds_elsewhere, NULL },
	{ "system ioctls on VM and vCPU fds: ENOTTY",
	  test_system_cmds_elsewhere, NULL },
	{ "GET_API_VERSION with arg != 0: EINVAL", test_api_version_arg, NULL },
	{ "GET_VCPU_MMAP_SIZE with arg != 0: EINVAL", test_mmap_size_arg, NULL },
	{ "CREATE_VM with flags or reserved: EINVAL", test_create_vm_flags, NULL },
	{ "CREATE_VM with a bad name: EINVAL", test_create_vm_name, NULL },
	{ "SET_MEMORY_REGION with flags: EINVAL", test_region_flags, NULL },
	{ "SET_MEMORY_REGION over 2^31 - 1 pages: EINVAL",
	  test_region_size_cap, NULL },
	{ "SET_MEMORY_REGION slot out of range: EINVAL",
	  test_region_slot_range, NULL },
	{ "SET_MEMORY_REGION unaligned gpa/size/uaddr: EINVAL",
	  test_region_alignment, NULL },
	{ "SET_MEMORY_REGION guest range wrapping or past 2^48: EINVAL",
	  test_region_gpa_range, NULL },
	{ "SET_MEMORY_REGION kernel or wrapping user range: EINVAL",
	  test_region_user_range, NULL },
	{ "SET_MEMORY_REGION overlapping another slot: EEXIST",
	  test_region_overlap, NULL },
	{ "SET_MEMORY_REGION resizing, rebacking or moving onto a slot: EEXIST",
	  test_region_live_slot, NULL },
	{ "SET_MEMORY_REGION deleting an empty slot: ENOENT",
	  test_region_delete_empty, NULL },
	{ "CREATE_VCPU id out of range: EINVAL", test_vcpu_id_range, NULL },
	{ "CREATE_VCPU duplicate id: EEXIST", test_vcpu_duplicate, NULL },
	{ "SET_REGS with reserved RFLAGS bits: EINVAL, nothing applied",
	  test_regs_rflags, NULL },
	{ "SET_CPUID nent over CAP_MAX_CPUID: E2BIG", test_set_cpuid_e2big, NULL },
	{ "SET_CPUID bad flags, padding, duplicates: EINVAL",
	  test_set_cpuid_einval, NULL },
	{ "GET_CPUID too small: E2BIG with nent updated",
	  test_get_cpuid_e2big, NULL },
	{ "GET_SUPPORTED_CPUID too small: E2BIG with nent updated",
	  test_get_supported_e2big, NULL },
	{ "mmap of a vCPU over a page or at an offset: EINVAL",
	  test_mmap_bad, NULL },
	{ "RUN with arg != 0: EINVAL, guest not run", test_run_arg, NULL },
	{ "VM and vCPU ioctls from a forked child: EIO", test_fork_eio, NULL },
	{ "NULL and unmapped argument pointers: EFAULT", test_efault, NULL },
	{ "GET_REGS/GET_SREGS into read-only memory: EFAULT",
	  test_efault_readonly, NULL },
	{ "CPUID entries running into an unmapped page: EFAULT",
	  test_efault_cpuid_entries, NULL },
};

int main(int argc, char **argv)
{
	size_t nf = ARRAY_SIZE(fixed_cases), ns = ARRAY_SIZE(sregs_cases), i;
	struct test_case *cases;

	test_init(argc, argv);
	cases = calloc(nf + ns, sizeof(*cases));
	if (!cases)
		return 1;
	memcpy(cases, fixed_cases, sizeof(fixed_cases));
	for (i = 0; i < ns; i++)
		cases[nf + i] = (struct test_case){
			sregs_cases[i].name, test_sregs, &sregs_cases[i],
		};
	return test_run_all(cases, nf + ns);
}
