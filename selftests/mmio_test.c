// SPDX-License-Identifier: GPL-2.0
/*
 * MMIO emulation: the read-modify-write forms (ALU, TEST, XCHG, INC/DEC,
 * NOT/NEG, BT*) against the CPU's own results on RAM, the exit sequence of
 * each (address, size, direction, data), string moves between RAM and
 * MMIO, #PF from the RAM side of a MOVS, and hostile cases: LOCK where it
 * is illegal, instructions Kestrel does not emulate, a garbage length from
 * userspace, registers reset between the read and the write.
 *
 * Guest page tables: the first GiB in 2 MiB pages, GiB 3 (MMIO_BASE) and
 * a read-only alias of GiB 0 at GiB 4 in 1 GiB pages, and at 2 MiB a
 * 4 KiB-page alias of low RAM whose page 3 is not present.
 */
#include <stdio.h>
#include <sys/ioctl.h>

#include "lib.h"

DECLARE_GUEST(lm_mmio_alu);
DECLARE_GUEST(lm_mmio_str);

#define MMIO_BASE	0xfe000000ULL	/* no slot there */
#define RO_ALIAS	0x100000000ULL	/* GiB 4: GiB 0, read-only */
#define PT_ALIAS	0x200000ULL	/* 4 KiB pages onto GPA 0 */
#define PT_HOLE		(PT_ALIAS + 3 * 4096)	/* not present */
#define GUEST_PT	0x10000		/* the 4 KiB page table */
#define RAM_SRC		(GUEST_DATA + 0x800)
#define RAM_DST		(GUEST_DATA + 0x900)

#define RFLAGS_CF	0x001ULL
#define RFLAGS_PF	0x004ULL
#define RFLAGS_AF	0x010ULL
#define RFLAGS_ZF	0x040ULL
#define RFLAGS_SF	0x080ULL
#define RFLAGS_DF	0x400ULL
#define RFLAGS_OF	0x800ULL
#define RFLAGS_STATUS	(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | \
			 RFLAGS_SF | RFLAGS_OF)

struct env {
	struct vm vm;
	struct vcpu vcpu;
};

static bool env_init(struct env *e, struct guest_image img)
{
	uint64_t *pdpt, *pd, *pt;
	int i;

	if (!vm_create(&e->vm, GUEST_MEM_SIZE) || !vm_load(&e->vm, img) ||
	    !vcpu_create(&e->vm, &e->vcpu, 0) ||
	    !vcpu_setup_long(&e->vm, &e->vcpu))
		return false;
	pdpt = (uint64_t *)(e->vm.mem + GUEST_PDPT);
	pd = (uint64_t *)(e->vm.mem + GUEST_PD);
	pt = (uint64_t *)(e->vm.mem + GUEST_PT);
	pdpt[3] = 0xc0000000ULL | 0x83;		/* P, RW, 1 GiB */
	pdpt[4] = 0x81;				/* P, read-only, 1 GiB */
	pd[1] = GUEST_PT | 0x3;
	for (i = 0; i < 512; i++)
		pt[i] = ((uint64_t)i << 12) | 0x3;
	pt[3] = 0;
	return true;
}

static bool set_gprs(struct env *e, uint64_t rbx, uint64_t rsi, uint64_t rdi,
		     uint64_t rcx, uint64_t rax, uint64_t rflags)
{
	struct kestrel_regs r;

	if (!get_regs(&e->vcpu, &r))
		return false;
	r.rip = GUEST_LOAD;
	r.rbx = rbx;
	r.rsi = rsi;
	r.rdi = rdi;
	r.rcx = rcx;
	r.rax = rax;
	r.rflags = rflags | X86_RFLAGS_FIXED;
	r.r8 = r.r9 = r.r10 = 0;
	return set_regs(&e->vcpu, &r);
}

/* Run once; expect an MMIO access and, for a load, supply @data. */
static bool expect_mmio(struct env *e, uint64_t gpa, uint32_t len, bool write,
			uint64_t *data)
{
	struct kestrel_run *run = e->vcpu.run;
	uint64_t got = 0;

	if (vcpu_run(&e->vcpu) < 0 || run->exit_reason != KESTREL_EXIT_MMIO) {
		diag("want an MMIO %s of %u at 0x%llx", write ? "write" : "read",
		     len, (unsigned long long)gpa);
		dump_vcpu(&e->vcpu);
		return false;
	}
	memcpy(&got, run->mmio.data, run->mmio.len <= 8 ? run->mmio.len : 8);
	if (run->mmio.phys_addr != gpa || run->mmio.len != len ||
	    run->mmio.is_write != write) {
		diag("MMIO at 0x%llx len %u write %u; want 0x%llx len %u write %u",
		     (unsigned long long)run->mmio.phys_addr, run->mmio.len,
		     run->mmio.is_write, (unsigned long long)gpa, len, write);
		return false;
	}
	if (write)
		*data = got;
	else
		memcpy(run->mmio.data, data, len);
	return true;
}

static uint64_t mask_of(int size)
{
	return size == 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

/* ---- read-modify-write forms against the CPU ----------------------------- */

struct alu_case {
	const char *name;
	uint8_t size;		/* bytes of the memory operand */
	bool read, write;	/* the MMIO exits it makes */
	uint8_t off;		/* displacement of the operand */
};

/* In the order of guests/lm_mmio_alu.S. */
static const struct alu_case alu_cases[] = {
	{ "add r64", 8, 1, 1, 0 }, { "add r32", 4, 1, 1, 0 }, { "add r8", 1, 1, 1, 0 },
	{ "adc r16", 2, 1, 1, 0 }, { "sbb r32", 4, 1, 1, 0 }, { "sub r64", 8, 1, 1, 0 },
	{ "and r32", 4, 1, 1, 0 }, { "or r8", 1, 1, 1, 0 }, { "xor r64", 8, 1, 1, 0 },
	{ "cmp m32,r", 4, 1, 0, 0 }, { "add r32,m", 4, 1, 0, 0 },
	{ "sub r8,m", 1, 1, 0, 0 }, { "cmp r64,m", 8, 1, 0, 0 },
	{ "adc ch,m", 1, 1, 0, 0 },
	{ "add imm32", 4, 1, 1, 0 }, { "or imm8", 1, 1, 1, 0 },
	{ "sub imm8 sx64", 8, 1, 1, 0 }, { "cmp imm16", 2, 1, 0, 0 },
	{ "sbb imm8 sx32", 4, 1, 1, 0 }, { "and imm32 sx64", 8, 1, 1, 0 },
	{ "xor imm8 sx16", 2, 1, 1, 0 },
	{ "test r32", 4, 1, 0, 0 }, { "test r8", 1, 1, 0, 0 },
	{ "test imm32", 4, 1, 0, 0 }, { "test imm8", 1, 1, 0, 0 },
	{ "xchg r64", 8, 1, 1, 0 }, { "xchg r8", 1, 1, 1, 0 },
	{ "inc m32", 4, 1, 1, 0 }, { "dec m8", 1, 1, 1, 0 }, { "inc m64", 8, 1, 1, 0 },
	{ "dec m16", 2, 1, 1, 0 }, { "not m32", 4, 1, 1, 0 }, { "neg m64", 8, 1, 1, 0 },
	{ "neg m8", 1, 1, 1, 0 },
	{ "bt r32", 4, 1, 0, 0 }, { "bts r64", 8, 1, 1, 0 }, { "btr r16", 2, 1, 1, 0 },
	{ "btc r32", 4, 1, 1, 0 }, { "bt imm 35", 4, 1, 0, 0 },
	{ "bts imm 63", 8, 1, 1, 0 }, { "btr imm 3", 2, 1, 1, 0 },
	{ "btc imm 31", 4, 1, 1, 0 },
	{ "lock add", 4, 1, 1, 0 }, { "lock bts imm", 4, 1, 1, 0 },
	{ "lock inc m8", 1, 1, 1, 0 }, { "lock xchg", 4, 1, 1, 0 },
	{ "lock neg m16", 2, 1, 1, 0 }, { "lock sbb disp8", 8, 1, 1, 8 },
	{ "mov load", 4, 1, 0, 0 }, { "movsx load", 1, 1, 0, 0 },
	{ "mov store", 8, 0, 1, 0 },
};

struct alu_vals {
	uint64_t rcx, mem, rflags, rdx;
};

static const struct alu_vals alu_vals[] = {
	{ 0x0123456789abcdefULL, 0xfedcba9876543210ULL, 0, 5 },
	{ 0x7f7f7f7f7f7f7f7fULL, 0x0101010101010101ULL, RFLAGS_STATUS, 15 },
	{ 0x8000000080008080ULL, 0x8000000080008080ULL, RFLAGS_CF, 0 },
	{ 0xffffffffffffffffULL, 0x0000000000000001ULL, RFLAGS_CF | RFLAGS_ZF, 1 },
	{ 0, 0, RFLAGS_OF | RFLAGS_SF, 7 },
};

struct alu_out {
	uint32_t rflags;
	uint64_t rcx, mem[2];
};

static bool alu_report(struct env *e, struct alu_out *o)
{
	return run_expect_out(&e->vcpu, PORT_U32, 4, &o->rflags) &&
	       run_expect_out64(&e->vcpu, PORT_U32, &o->rcx) &&
	       run_expect_out64(&e->vcpu, PORT_U32, &o->mem[0]) &&
	       run_expect_out64(&e->vcpu, PORT_U32, &o->mem[1]);
}

static bool alu_one(struct env *e, const struct alu_case *c,
		    const struct alu_vals *v)
{
	uint64_t *blk = (uint64_t *)(e->vm.mem + GUEST_DATA);
	uint64_t m = mask_of(c->size), data, wrote = 0;
	struct alu_out ram, mmio;

	blk[0] = v->rcx;
	blk[1] = v->mem;
	blk[2] = v->rflags | X86_RFLAGS_FIXED;
	blk[3] = v->rdx;
	if (!alu_report(e, &ram))
		return false;
	if (c->read) {
		data = v->mem & m;
		if (!expect_mmio(e, MMIO_BASE + c->off, c->size, false, &data))
			return false;
	}
	if (c->write &&
	    !expect_mmio(e, MMIO_BASE + c->off, c->size, true, &wrote))
		return false;
	if (!alu_report(e, &mmio))
		return false;
	if (mmio.rflags != ram.rflags || mmio.rcx != ram.rcx ||
	    (c->write && wrote != (ram.mem[c->off / 8] & m))) {
		diag("%s: RAM: rflags 0x%x rcx 0x%llx mem 0x%llx; MMIO: rflags 0x%x rcx 0x%llx wrote 0x%llx",
		     c->name, ram.rflags, (unsigned long long)ram.rcx,
		     (unsigned long long)(ram.mem[c->off / 8] & m), mmio.rflags,
		     (unsigned long long)mmio.rcx, (unsigned long long)wrote);
		return false;
	}
	return true;
}

static enum test_result test_alu(const void *arg)
{
	unsigned int i, j;
	struct env e;

	(void)arg;
	CHECK_H(env_init(&e, GUEST(lm_mmio_alu)));
	for (i = 0; i < ARRAY_SIZE(alu_vals); i++) {
		CHECK_H(set_gprs(&e, GUEST_DATA, MMIO_BASE, GUEST_DATA + 0x100,
				 0, 0, 0));
		for (j = 0; j < ARRAY_SIZE(alu_cases); j++) {
			if (!alu_one(&e, &alu_cases[j], &alu_vals[i])) {
				diag("value set %u, case %u (%s)", i, j,
				     alu_cases[j].name);
				return TEST_FAIL;
			}
		}
		CHECK_H(run_expect_hlt(&e.vcpu));
	}
	return TEST_PASS;
}

/*
 * The read phase leaves RIP on the instruction; the write exit comes after
 * it retired.  SET_REGS between the two drops the half-done instruction,
 * which then runs again from the start.  A length userspace scribbles in
 * the run page is ignored.
 */
static enum test_result test_rmw_phases(const void *arg)
{
	uint64_t *blk, data, wrote;
	struct kestrel_regs r0, r1, r2;
	struct alu_out o;
	struct env e;

	(void)arg;
	CHECK_H(env_init(&e, GUEST(lm_mmio_alu)));
	blk = (uint64_t *)(e.vm.mem + GUEST_DATA);
	blk[0] = 5;
	blk[1] = 0;
	blk[2] = X86_RFLAGS_FIXED;
	blk[3] = 0;
	CHECK_H(set_gprs(&e, GUEST_DATA, MMIO_BASE, GUEST_DATA + 0x100, 0, 0, 0));
	CHECK_H(alu_report(&e, &o));			/* add on RAM */

	data = 0x100;
	CHECK_H(expect_mmio(&e, MMIO_BASE, 8, false, &data));
	CHECK_H(get_regs(&e.vcpu, &r0));
	CHECK_EQ(r0.rcx, 5);
	/* New registers: the read is forgotten and the ADD runs again. */
	CHECK_H(set_regs(&e.vcpu, &r0));
	data = 0x200;
	CHECK_H(expect_mmio(&e, MMIO_BASE, 8, false, &data));
	CHECK_H(get_regs(&e.vcpu, &r1));
	CHECK_EQ(r1.rip, r0.rip);
	/* Garbage where the kernel keeps its own length. */
	e.vcpu.run->mmio.len = 0xffffffff;
	e.vcpu.run->mmio.is_write = 1;
	CHECK_H(expect_mmio(&e, MMIO_BASE, 8, true, &wrote));
	CHECK_EQ(wrote, 0x205);
	CHECK_H(get_regs(&e.vcpu, &r2));
	CHECK_EQ(r2.rip, r0.rip + 4);			/* 48 01 4d 00 */
	CHECK_H(alu_report(&e, &o));
	CHECK_EQ(o.rcx, 5);
	return TEST_PASS;
}

/* ---- string moves ------------------------------------------------------------ */

enum {
	S_MOVSB, S_MOVSL, S_MOVSQ, S_STOSW, S_MOVSB1, S_FS_MOVSB, S_A32_MOVSB,
	S_LOCK_MOV, S_LOCK_CMP, S_IMUL, S_BT_FAR, S_MOVSL_SPLIT, S_LODSW,
};

static bool run_hlt_regs(struct env *e, struct kestrel_regs *r)
{
	return run_expect_hlt(&e->vcpu) && get_regs(&e->vcpu, r);
}

static enum test_result test_rep_movs_to_mmio(const void *arg)
{
	uint8_t *src;
	struct kestrel_regs r;
	uint64_t wrote;
	struct env e;
	int i;

	(void)arg;
	CHECK_H(env_init(&e, GUEST(lm_mmio_str)));
	src = e.vm.mem + RAM_SRC;
	for (i = 0; i < 16; i++)
		src[i] = 0xa0 + i;
	/* Source through the 4 KiB-page alias: the walk's last level. */
	CHECK_H(set_gprs(&e, S_MOVSB, PT_ALIAS + RAM_SRC, MMIO_BASE, 5, 0, 0));
	for (i = 0; i < 5; i++) {
		CHECK_H(expect_mmio(&e, MMIO_BASE + i, 1, true, &wrote));
		CHECK_EQ(wrote, 0xa0 + i);
	}
	CHECK_H(run_hlt_regs(&e, &r));
	CHECK_EQ(r.rcx, 0);
	CHECK_EQ(r.rsi, PT_ALIAS + RAM_SRC + 5);
	CHECK_EQ(r.rdi, MMIO_BASE + 5);
	CHECK_EQ(r.rflags & 0x10000, 0);		/* RF clear when done */

	/* DF set: backwards, 8 bytes at a time. */
	CHECK_H(set_gprs(&e, S_MOVSQ, RAM_SRC + 8, MMIO_BASE + 8, 2, 0,
			 RFLAGS_DF));
	CHECK_H(expect_mmio(&e, MMIO_BASE + 8, 8, true, &wrote));
	CHECK_EQ(wrote, 0xafaeadacabaaa9a8ULL);
	CHECK_H(expect_mmio(&e, MMIO_BASE, 8, true, &wrote));
	CHECK_EQ(wrote, 0xa7a6a5a4a3a2a1a0ULL);
	CHECK_H(run_hlt_regs(&e, &r));
	CHECK_EQ(r.rcx, 0);
	CHECK_EQ(r.rsi, RAM_SRC - 8);
	CHECK_EQ(r.rdi, MMIO_BASE - 8);

	/* REP STOSW from AX. */
	CHECK_H(set_gprs(&e, S_STOSW, 0, MMIO_BASE + 0x10, 3, 0x1234beef, 0));
	for (i = 0; i < 3; i++) {
		CHECK_H(expect_mmio(&e, MMIO_BASE + 0x10 + 2 * i, 2, true, &wrote));
		CHECK_EQ(wrote, 0xbeef);
	}
	CHECK_H(run_hlt_regs(&e, &r));
	CHECK_EQ(r.rdi, MMIO_BASE + 0x16);

	/* An FS override moves the source by FS's base. */
	{
		struct kestrel_sregs s;

		CHECK_H(get_sregs(&e.vcpu, &s));
		s.fs.base = 0x100;
		CHECK_H(set_sregs(&e.vcpu, &s));
	}
	CHECK_H(set_gprs(&e, S_FS_MOVSB, RAM_SRC - 0x100 + 3, MMIO_BASE, 2, 0, 0));
	CHECK_H(expect_mmio(&e, MMIO_BASE, 1, true, &wrote));
	CHECK_EQ(wrote, 0xa3);
	CHECK_H(expect_mmio(&e, MMIO_BASE + 1, 1, true, &wrote));
	CHECK_EQ(wrote, 0xa4);
	CHECK_H(run_hlt_regs(&e, &r));
	CHECK_EQ(r.rsi, RAM_SRC - 0x100 + 5);

	/*
	 * 32-bit addressing: ESI, EDI, ECX, whatever is above them; the
	 * registers end as the CPU leaves them on RAM.
	 */
	CHECK_H(set_gprs(&e, S_A32_MOVSB, 0xdead00000000ULL | RAM_SRC,
			 0xbeef00000000ULL | MMIO_BASE,
			 0xffff000000000002ULL, 0, 0));
	CHECK_H(expect_mmio(&e, MMIO_BASE, 1, true, &wrote));
	CHECK_H(expect_mmio(&e, MMIO_BASE + 1, 1, true, &wrote));
	CHECK_EQ(wrote, 0xa1);
	CHECK_H(run_hlt_regs(&e, &r));
	{
		struct kestrel_regs n;

		/* The same on RAM, natively. */
		CHECK_H(set_gprs(&e, S_A32_MOVSB, 0xdead00000000ULL | RAM_SRC,
				 0xbeef00000000ULL | RAM_DST,
				 0xffff000000000002ULL, 0, 0));
		CHECK_H(run_hlt_regs(&e, &n));
		CHECK_EQ(r.rcx, n.rcx);
		CHECK_EQ(r.rsi, n.rsi);
		CHECK_EQ(r.rdi - MMIO_BASE, n.rdi - RAM_DST);
	}
	return TEST_PASS;
}

static enum test_result test_rep_movs_from_mmio(const void *arg)
{
	uint32_t *dst;
	struct kestrel_regs r;
	uint64_t v;
	struct env e;
	int i;

	(void)arg;
	CHECK_H(env_init(&e, GUEST(lm_mmio_str)));
	dst = (uint32_t *)(e.vm.mem + RAM_DST);
	memset(dst, 0, 16);
	CHECK_H(set_gprs(&e, S_MOVSL, MMIO_BASE + 0x40, PT_ALIAS + RAM_DST, 3,
			 0, 0));
	for (i = 0; i < 3; i++) {
		v = 0x11110000 + i;
		CHECK_H(expect_mmio(&e, MMIO_BASE + 0x40 + 4 * i, 4, false, &v));
		if (i == 1) {
			/* Mid-REP: one element done, RIP still on the MOVS. */
			CHECK_H(get_regs(&e.vcpu, &r));
			CHECK_EQ(r.rcx, 2);
			CHECK_EQ(r.rsi, MMIO_BASE + 0x44);
		}
	}
	CHECK_H(run_hlt_regs(&e, &r));
	CHECK_EQ(dst[0], 0x11110000);
	CHECK_EQ(dst[1], 0x11110001);
	CHECK_EQ(dst[2], 0x11110002);
	CHECK_EQ(dst[3], 0);
	CHECK_EQ(r.rcx, 0);
	CHECK_EQ(r.rsi, MMIO_BASE + 0x4c);
	CHECK_EQ(r.rdi, PT_ALIAS + RAM_DST + 12);

	/* One MOVSB, no REP: RCX untouched. */
	CHECK_H(set_gprs(&e, S_MOVSB1, MMIO_BASE + 7, RAM_DST, 0x55, 0, 0));
	v = 0x77;
	CHECK_H(expect_mmio(&e, MMIO_BASE + 7, 1, false, &v));
	CHECK_H(run_hlt_regs(&e, &r));
	CHECK_EQ(((uint8_t *)dst)[0], 0x77);
	CHECK_EQ(r.rcx, 0x55);
	CHECK_EQ(r.rsi, MMIO_BASE + 8);

	/* REP LODSW: the last element stays in AX. */
	CHECK_H(set_gprs(&e, S_LODSW, MMIO_BASE, 0, 2, 0xffffffff, 0));
	v = 0x1111;
	CHECK_H(expect_mmio(&e, MMIO_BASE, 2, false, &v));
	v = 0x2222;
	CHECK_H(expect_mmio(&e, MMIO_BASE + 2, 2, false, &v));
	CHECK_H(run_hlt_regs(&e, &r));
	CHECK_EQ(r.rax, 0xffff2222);
	return TEST_PASS;
}

/* The RAM side of a MOVS refused by the guest's paging: #PF, nothing else. */
static enum test_result test_movs_page_fault(const void *arg)
{
	struct kestrel_regs r;
	struct env e;
	uint64_t v;

	(void)arg;
	CHECK_H(env_init(&e, GUEST(lm_mmio_str)));
	/* Destination not present: W, no P. */
	CHECK_H(set_gprs(&e, S_MOVSL, MMIO_BASE, PT_HOLE + 0x10, 4, 0, 0));
	CHECK_H(run_hlt_regs(&e, &r));
	CHECK_EQ(r.r10, 14);
	CHECK_EQ(r.r8, 0x2);
	CHECK_EQ(r.r9, PT_HOLE + 0x10);
	CHECK_EQ(r.rcx, 4);
	CHECK_EQ(r.rsi, MMIO_BASE);

	/* Destination read-only, CR0.WP set: P | W. */
	CHECK_H(set_gprs(&e, S_MOVSL, MMIO_BASE, RO_ALIAS + RAM_DST, 4, 0, 0));
	CHECK_H(run_hlt_regs(&e, &r));
	CHECK_EQ(r.r10, 14);
	CHECK_EQ(r.r8, 0x3);
	CHECK_EQ(r.r9, RO_ALIAS + RAM_DST);

	/* After one good element, the second lands in the hole. */
	CHECK_H(set_gprs(&e, S_MOVSL, MMIO_BASE, PT_HOLE - 4, 4, 0, 0));
	v = 0x12345678;
	CHECK_H(expect_mmio(&e, MMIO_BASE, 4, false, &v));
	CHECK_H(run_hlt_regs(&e, &r));
	CHECK_EQ(r.r10, 14);
	CHECK_EQ(r.r9, PT_HOLE);
	CHECK_EQ(r.rcx, 3);
	CHECK_EQ(*(uint32_t *)(e.vm.mem + 3 * 4096 - 4), 0x12345678);
	return TEST_PASS;
}

/* ---- hostile ------------------------------------------------------------------- */

static enum test_result test_lock_ud(const void *arg)
{
	struct kestrel_regs r;
	struct env e;
	int c;

	(void)arg;
	CHECK_H(env_init(&e, GUEST(lm_mmio_str)));
	for (c = S_LOCK_MOV; c <= S_LOCK_CMP; c++) {
		CHECK_H(set_gprs(&e, c, 0, MMIO_BASE, 0, 0, 0));
		CHECK_H(run_hlt_regs(&e, &r));
		CHECK_EQ(r.r10, 6);
	}
	return TEST_PASS;
}

/* Not emulated: a DECODE error with the bytes, as often as asked. */
static enum test_result test_not_emulated(const void *arg)
{
	static const struct { int c; uint64_t rcx, rdi; uint64_t bytes; } t[] = {
		{ S_IMUL, 0, MMIO_BASE, 0x0faf0f },		/* 0F AF 0F */
		{ S_BT_FAR, 64, MMIO_BASE, 0x0fa30f48 },	/* 48 0F A3 0F */
		/* An element that straddles two pages. */
		{ S_MOVSL_SPLIT, 1, MMIO_BASE + 4094, 0xa5f3 },
	};
	struct kestrel_run *run;
	unsigned int i, k;
	struct env e;

	(void)arg;
	CHECK_H(env_init(&e, GUEST(lm_mmio_str)));
	run = e.vcpu.run;
	for (i = 0; i < ARRAY_SIZE(t); i++) {
		CHECK_H(set_gprs(&e, t[i].c, RAM_SRC, t[i].rdi, t[i].rcx, 0, 0));
		for (k = 0; k < 2; k++) {
			CHECK_OK(vcpu_run(&e.vcpu));
			if (run->exit_reason == KESTREL_EXIT_MMIO &&
			    t[i].c == S_MOVSL_SPLIT)
				break;	/* the CPU split it itself: fine too */
			CHECK_EQ(run->exit_reason, KESTREL_EXIT_INTERNAL_ERROR);
			CHECK_EQ(run->internal.suberror, KESTREL_INTERNAL_DECODE);
			CHECK_EQ(run->internal.data[2] &
				 ((1ULL << (8 * ((64 - __builtin_clzll(t[i].bytes) + 7) / 8))) - 1),
				 t[i].bytes);
		}
	}
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "RMW forms on MMIO: same flags, registers and memory as on RAM", test_alu, NULL },
	{ "RMW phases: RIP, SET_REGS between read and write, garbage length", test_rmw_phases, NULL },
	{ "REP MOVS/STOS from RAM to MMIO: DF, FS override, 32-bit addressing", test_rep_movs_to_mmio, NULL },
	{ "REP MOVS/LODS from MMIO to RAM, one element per exit", test_rep_movs_from_mmio, NULL },
	{ "MOVS with the RAM side unmapped or read-only: #PF, CR2, error code", test_movs_page_fault, NULL },
	{ "LOCK on MOV and CMP to MMIO: #UD", test_lock_ud, NULL },
	{ "instructions not emulated on MMIO: DECODE exits, repeatable", test_not_emulated, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
