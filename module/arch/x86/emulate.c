// SPDX-License-Identifier: GPL-2.0
/*
 * Emulation of the guest instructions that touch MMIO.
 *
 * Without decode assists the hardware says only which guest-physical
 * address faulted, so the instruction is fetched through the guest's page
 * tables, decoded (decode.c) and carried out here: the MOV family, the
 * read-modify-write forms Linux uses on device memory (ALU ops, TEST,
 * XCHG, INC/DEC, NOT/NEG, BT*), and the string moves of memcpy_toio() and
 * memcpy_fromio().  Each MMIO access goes to the in-kernel local APIC or
 * to userspace as a KESTREL_EXIT_MMIO.  A read that goes to userspace
 * leaves the instruction undone (RIP on it); the next RUN supplies the
 * data and the instruction finishes, with its write, if any, as one more
 * exit.  Arithmetic flags come from running the operation on the host
 * with the guest's operands, so they are exactly what the CPU computes.
 *
 * Faults the guest's own paging raises during emulation are injected as
 * #PF; anything not understood goes to userspace as a DECODE error.
 */
#include <linux/kernel.h>
#include <linux/irqflags.h>
#include <linux/uaccess.h>
#include <asm/msr-index.h>
#include <asm/processor-flags.h>
#include <asm/trap_pf.h>

#include "x86.h"
#include "lapic.h"
#include "emulate.h"

#define STATUS_FLAGS	(X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | \
			 X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_OF)

/* What an emulation step asks of its caller, besides errors (<0). */
#define EMUL_DONE	0	/* enter the guest */
#define EMUL_EXIT	1	/* exit to userspace: the run page is filled */
static_assert(EMUL_EXIT == 1);	/* kestrel_x86_internal_error()'s exit */
#define EMUL_INJECTED	2	/* an exception is queued: enter the guest */

/* ---- guest paging -------------------------------------------------------- */

#define GPTE_P		BIT_ULL(0)
#define GPTE_RW		BIT_ULL(1)
#define GPTE_US		BIT_ULL(2)
#define GPTE_PS		BIT_ULL(7)
#define GPTE_NX		BIT_ULL(63)

static int read_gpte(struct kestrel_vcpu *vcpu, u64 gpa, int size, u64 *pte)
{
	u32 v32;

	*pte = 0;
	if (size == 4) {
		if (kestrel_read_guest(vcpu->vm, gpa, &v32, 4))
			return -EFAULT;
		*pte = v32;
		return 0;
	}
	return kestrel_read_guest(vcpu->vm, gpa, pte, 8);
}

/*
 * The walk follows the guest's tables as they are in memory; Accessed and
 * Dirty bits are not set (the accesses made here are few: the instruction
 * the CPU just fetched itself, and the RAM side of string moves).
 */
int kestrel_gva_translate(struct kestrel_vcpu *vcpu, u64 gva, u32 acc,
			  u64 *gpa, u32 *pferr)
{
	u64 cr0 = kestrel_call(get_cr)(vcpu, 0), cr4, efer, table, pte, pmask, ea;
	bool user = acc & X86_PF_USER, write = acc & X86_PF_WRITE;
	bool fetch = acc & X86_PF_INSTR, rw = true, us = true, nx = false;
	bool nxe, prot = false, rsvd = false;
	int level, shift, size, bits;

	if (!(cr0 & X86_CR0_PG)) {
		*gpa = gva & 0xffffffffULL;
		return 0;
	}
	cr4 = kestrel_call(get_cr)(vcpu, 4);
	efer = kestrel_call(get_efer)(vcpu);
	table = kestrel_call(get_cr)(vcpu, 3);
	pmask = GENMASK_ULL(51, 12);
	nxe = (efer & EFER_NX) && (cr4 & X86_CR4_PAE);

	if (efer & EFER_LMA) {
		level = 4;
		size = 8;
		bits = 9;
		table &= pmask;
	} else if (cr4 & X86_CR4_PAE) {
		/* PDPT: four 8-byte entries at CR3[31:5], no permission bits. */
		ea = (table & 0xffffffe0ULL) + ((gva >> 30) & 3) * 8;
		if (read_gpte(vcpu, ea, 8, &pte)) {
			*gpa = ea;
			return -EIO;
		}
		if (!(pte & GPTE_P))
			goto fault;
		table = pte & pmask;
		level = 2;
		size = 8;
		bits = 9;
	} else {
		level = 2;
		size = 4;
		bits = 10;
		table &= 0xfffff000ULL;
		pmask = 0xfffff000ULL;
	}

	for (; level >= 1; level--) {
		shift = 12 + (level - 1) * bits;
		ea = table + ((gva >> shift) & ((1 << bits) - 1)) * size;
		if (read_gpte(vcpu, ea, size, &pte)) {
			*gpa = ea;
			return -EIO;
		}
		if (!(pte & GPTE_P))
			goto fault;
		rw &= !!(pte & GPTE_RW);
		us &= !!(pte & GPTE_US);
		if (nxe)
			nx |= !!(pte & GPTE_NX);
		if (level == 1 || !(pte & GPTE_PS)) {
			table = pte & pmask;
			continue;
		}
		/* A large page: 2 MiB/1 GiB, or 4 MiB with 32-bit paging. */
		if (level == 4) {
			rsvd = true;
			goto fault;
		}
		if (size == 4) {
			if (!(cr4 & X86_CR4_PSE)) {
				table = pte & pmask;
				continue;
			}
			/* PSE-36 puts PA[39:32] in bits 20:13. */
			*gpa = (pte & 0xffc00000ULL) | ((pte & 0x1fe000ULL) << 19);
		} else {
			*gpa = pte & pmask & ~((1ULL << shift) - 1);
		}
		*gpa |= gva & ((1ULL << shift) - 1);
		goto check;
	}
	*gpa = table | (gva & 0xfff);
check:
	prot = true;
	if (user && !us)
		goto fault;
	if (write && !rw && (user || (cr0 & X86_CR0_WP)))
		goto fault;
	if (fetch && nx)
		goto fault;
	if (fetch && !user && us && (cr4 & X86_CR4_SMEP))
		goto fault;
	if (!fetch && !user && us && (cr4 & X86_CR4_SMAP) &&
	    !(vcpu->arch.rflags & X86_EFLAGS_AC))
		goto fault;
	return 0;

fault:
	*pferr = acc & (X86_PF_WRITE | X86_PF_USER);
	/* I/D is reported only where the CPU can refuse a fetch. */
	if (fetch && (nxe || (cr4 & X86_CR4_SMEP)))
		*pferr |= X86_PF_INSTR;
	if (prot || rsvd)
		*pferr |= X86_PF_PROT;
	if (rsvd)
		*pferr |= X86_PF_RSVD;
	return -EFAULT;
}

static bool emul_user(struct kestrel_vcpu *vcpu)
{
	struct kestrel_segment ss;

	if (vcpu->arch.rflags & X86_EFLAGS_VM)
		return true;
	kestrel_call(get_seg)(vcpu, KSEG_SS, &ss);
	return ss.dpl == 3;
}

static void emul_inject_pf(struct kestrel_vcpu *vcpu, u64 la, u32 error)
{
	kestrel_call(set_cr2)(vcpu, la);
	kestrel_x86_queue_exception(vcpu, X86_TRAP_PF, true, error);
}

/* ---- exits --------------------------------------------------------------- */

/* kestrel_x86_internal_error() fills the run page and returns 1: EMUL_EXIT. */
static int emul_internal_error(struct kestrel_vcpu *vcpu, u32 suberror,
			       int ndata, const u64 *data)
{
	return kestrel_x86_internal_error(vcpu, suberror, ndata, data);
}

static u64 emul_linear_rip(struct kestrel_vcpu *vcpu, int mode)
{
	struct kestrel_segment cs;

	if (mode == 64)
		return vcpu->arch.rip;
	kestrel_call(get_seg)(vcpu, KSEG_CS, &cs);
	return (vcpu->arch.rip + cs.base) & 0xffffffffULL;
}

/* Data: RIP, linear RIP, instruction bytes 0-7 and 8-15. */
static int emul_decode_error(struct kestrel_vcpu *vcpu, int mode,
			     const u8 *bytes, int n)
{
	u64 data[4] = { vcpu->arch.rip, emul_linear_rip(vcpu, mode) };

	memcpy(&data[2], bytes, min(n, 16));
	return emul_internal_error(vcpu, KESTREL_INTERNAL_DECODE, 4, data);
}

/* An instruction decoded but not emulated: the bytes go to userspace. */
static int emul_refuse(struct kestrel_vcpu *vcpu)
{
	struct kestrel_emul *em = &vcpu->arch.emul;

	em->state = KESTREL_EMUL_NONE;
	return emul_decode_error(vcpu, em->mode, em->insn, em->nbytes);
}

static void emul_mmio_exit(struct kestrel_vcpu *vcpu, u64 gpa, int size,
			   bool write, u64 val)
{
	struct kestrel_run *run = vcpu->run;

	run->exit_reason = KESTREL_EXIT_MMIO;
	run->mmio.phys_addr = gpa;
	run->mmio.len = size;
	run->mmio.is_write = write;
	memset(run->mmio.padding, 0, sizeof(run->mmio.padding));
	memset(run->mmio.data, 0, sizeof(run->mmio.data));
	if (write)
		memcpy(run->mmio.data, &val, size);
}

/* The owner's memory behind a slot refused a store: userspace's call. */
static int emul_memory_fault(struct kestrel_vcpu *vcpu, u64 gpa)
{
	struct kestrel_run *run = vcpu->run;

	run->exit_reason = KESTREL_EXIT_MEMORY_FAULT;
	run->memory_fault.gpa = gpa & PAGE_MASK;
	run->memory_fault.size = PAGE_SIZE;
	run->memory_fault.flags = KESTREL_MEMORY_FAULT_WRITE;
	return -EFAULT;
}

/* ---- guest-physical accesses --------------------------------------------- */

/*
 * The slot memory behind [gpa, +len), if one slot backs all of it (and,
 * for a store, is writable).  0 when there is none: the access is MMIO.
 */
static unsigned long emul_slot_hva(struct kestrel_vm *vm, u64 gpa, int len,
				   bool write)
{
	struct kestrel_memslot *s;
	unsigned long hva = 0;

	spin_lock(&vm->mmu_lock);
	s = kestrel_gpa_to_slot(vm, gpa);
	if (s && gpa + len <= s->gpa + s->size &&
	    !(write && (s->flags & KESTREL_MEM_READONLY)))
		hva = s->hva + (gpa - s->gpa);
	spin_unlock(&vm->mmu_lock);
	return hva;
}

/*
 * Load @size bytes at @gpa: from the local APIC, from a slot (read-only
 * slots are read like RAM), or else from userspace.  EMUL_EXIT when the
 * read went to userspace; the instruction waits for the next RUN.
 */
static int emul_load(struct kestrel_vcpu *vcpu, u64 gpa, int size, u64 *val)
{
	struct kestrel_emul *em = &vcpu->arch.emul;
	unsigned long hva;

	*val = 0;
	if (!kestrel_lapic_mmio(vcpu, gpa, size, false, val))
		return EMUL_DONE;
	hva = emul_slot_hva(vcpu->vm, gpa, size, false);
	if (hva && !copy_from_user(val, (void __user *)hva, size))
		return EMUL_DONE;

	emul_mmio_exit(vcpu, gpa, size, false, 0);
	em->state = KESTREL_EMUL_READ_WAIT;
	em->gpa = gpa;
	em->size = size;
	return EMUL_EXIT;
}

/* Store @size bytes at @gpa: to the local APIC, RAM, or userspace. */
static int emul_store(struct kestrel_vcpu *vcpu, u64 gpa, int size, u64 val)
{
	struct kestrel_vm *vm = vcpu->vm;
	struct kestrel_memslot *s;
	unsigned long hva;

	if (!kestrel_lapic_mmio(vcpu, gpa, size, true, &val))
		return EMUL_DONE;
	hva = emul_slot_hva(vm, gpa, size, true);
	if (!hva) {
		emul_mmio_exit(vcpu, gpa, size, true, val);
		return EMUL_EXIT;
	}
	if (copy_to_user((void __user *)hva, &val, size))
		return emul_memory_fault(vcpu, gpa);
	/*
	 * Log the page after the data is there, as a guest write through the
	 * nested tables would be: a log fetched in between shows it next time.
	 */
	spin_lock(&vm->mmu_lock);
	s = kestrel_gpa_to_slot(vm, gpa);
	if (s && s->dirty)
		set_bit((gpa - s->gpa) >> PAGE_SHIFT, s->dirty);
	spin_unlock(&vm->mmu_lock);
	return EMUL_DONE;
}

/* ---- fetch and decode ---------------------------------------------------- */

/* Where fetching stopped because the guest's tables refused a page. */
struct emul_fetch_fault {
	bool	pf;
	u32	error;
	u64	la;
};

/*
 * Fetch up to 15 bytes at CS:RIP; returns how many.  Fetching stops at a
 * page the guest's tables refuse (@f: the #PF to raise if the instruction
 * needs bytes from it) or that is not guest RAM.
 */
static int kestrel_fetch_insn(struct kestrel_vcpu *vcpu, u8 *buf, int mode,
			      struct emul_fetch_fault *f)
{
	u32 acc = X86_PF_INSTR | (emul_user(vcpu) ? X86_PF_USER : 0);
	u64 la = emul_linear_rip(vcpu, mode), gpa;
	int got = 0;

	f->pf = false;
	while (got < 15) {
		int chunk = min_t(int, 15 - got, PAGE_SIZE - (la & ~PAGE_MASK));
		int r = kestrel_gva_translate(vcpu, la, acc, &gpa, &f->error);

		if (r == -EFAULT) {
			f->pf = true;
			f->la = la;
			break;
		}
		if (r || kestrel_read_guest(vcpu->vm, gpa, buf + got, chunk))
			break;
		got += chunk;
		la += chunk;
		if (mode != 64)
			la &= 0xffffffffULL;
	}
	return got;
}

/*
 * With @inject, an instruction that runs into a page the guest's tables
 * now refuse raises #PF (*exit 0).  Without, that is a DECODE error too:
 * the callers outside MMIO emulation take 0 for "instruction done".
 */
static int emul_fetch_decode(struct kestrel_vcpu *vcpu, int mode,
			     struct kestrel_insn *insn, u8 *bytes,
			     bool want_mem, bool inject, int *exit)
{
	struct emul_fetch_fault f;
	int n, r;

	memset(bytes, 0, 16);
	n = kestrel_fetch_insn(vcpu, bytes, mode, &f);
	r = n > 0 ? kestrel_decode(bytes, n, mode, insn) : -ENODATA;
	if (!r && (!want_mem || insn->mem))
		return 0;
	/* The instruction runs into a page the guest has unmapped since. */
	if (r == -ENODATA && f.pf && inject) {
		emul_inject_pf(vcpu, f.la, f.error);
		*exit = 0;
		return -1;
	}
	*exit = emul_decode_error(vcpu, mode, bytes, 16);
	return -1;
}

int kestrel_decode_at_rip(struct kestrel_vcpu *vcpu, struct kestrel_insn *insn,
			  bool want_mem, int *exit)
{
	u8 bytes[16];

	return emul_fetch_decode(vcpu, kestrel_x86_guest_mode_bits(vcpu),
				 insn, bytes, want_mem, false, exit);
}

/* ---- operations ---------------------------------------------------------- */

/* ALU_ADD..ALU_CMP are the ModRM.reg values of group 1. */
enum {
	ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP,
	ALU_TEST, ALU_INC, ALU_DEC, ALU_NOT, ALU_NEG,
	ALU_BT, ALU_BTS, ALU_BTR, ALU_BTC,
};

/*
 * Run one operation on the host, between the guest's status flags loaded
 * with POPF and read back with PUSHF.  The host's other flags (IF, DF, AC)
 * are kept as they are.  The kernel is built without a red zone, so the
 * pushes cannot clobber locals.
 */
#define EMUL_ASM(insn, dv, sv, fl)					\
	asm("push %[f]\n\tpopf\n\t" insn "\n\tpushf\n\tpop %[f]"	\
	    : [dst] "+r" (dv), [f] "+r" (fl) : [src] "r" (sv) : "cc")

/* insn on the low bytes of *dp (zero-extended back) and sv, flags in *flp. */
#define EMUL_SIZED(type, insn, dp, sv, flp)				\
	do {								\
		u64 *__p = (dp);					\
		unsigned long *__f = (flp);				\
		type __d = *__p, __s = (sv);				\
									\
		EMUL_ASM(insn, __d, __s, *__f);				\
		*__p = __d;						\
	} while (0)

/*
 * The mnemonic op (a bare token: add, bts, ...) with n operands, 2 (op
 * src, dst) or 1 (op dst), in the operand size.
 */
#define EMUL_FORM_2	" %[src], %[dst]"
#define EMUL_FORM_1	" %[dst]"

/* Operand sizes 2, 4, 8 (BT* has no byte form). */
#define EMUL_OP_W(op, n, size, dp, sv, flp)				\
	do {								\
		int __wsz = (size);					\
		u64 *__wdp = (dp), __wsv = (sv);			\
		unsigned long *__wfp = (flp);				\
									\
		if (__wsz == 2)						\
			EMUL_SIZED(u16, #op EMUL_FORM_##n, __wdp, __wsv, __wfp); \
		else if (__wsz == 4)					\
			EMUL_SIZED(u32, #op EMUL_FORM_##n, __wdp, __wsv, __wfp); \
		else							\
			EMUL_SIZED(u64, #op EMUL_FORM_##n, __wdp, __wsv, __wfp); \
	} while (0)

#define EMUL_OP(op, n, size, dp, sv, flp)				\
	do {								\
		int __bsz = (size);					\
		u64 *__bdp = (dp), __bsv = (sv);			\
		unsigned long *__bfp = (flp);				\
									\
		if (__bsz == 1)						\
			EMUL_SIZED(u8, #op EMUL_FORM_##n, __bdp, __bsv, __bfp); \
		else							\
			EMUL_OP_W(op, n, __bsz, __bdp, __bsv, __bfp);	\
	} while (0)

/* *dst = *dst op src; returns the guest's RFLAGS with the new status flags. */
static unsigned long emul_alu(int alu, int size, u64 *dst, u64 src,
			      unsigned long rflags)
{
	unsigned long fl = (native_save_fl() & ~STATUS_FLAGS) |
			   (rflags & STATUS_FLAGS);
	u64 d = *dst;

	switch (alu) {
	case ALU_ADD:
		EMUL_OP(add, 2, size, &d, src, &fl);
		break;
	case ALU_OR:
		EMUL_OP(or, 2, size, &d, src, &fl);
		break;
	case ALU_ADC:
		EMUL_OP(adc, 2, size, &d, src, &fl);
		break;
	case ALU_SBB:
		EMUL_OP(sbb, 2, size, &d, src, &fl);
		break;
	case ALU_AND:
		EMUL_OP(and, 2, size, &d, src, &fl);
		break;
	case ALU_SUB:
		EMUL_OP(sub, 2, size, &d, src, &fl);
		break;
	case ALU_XOR:
		EMUL_OP(xor, 2, size, &d, src, &fl);
		break;
	case ALU_CMP:
		EMUL_OP(cmp, 2, size, &d, src, &fl);
		break;
	case ALU_TEST:
		EMUL_OP(test, 2, size, &d, src, &fl);
		break;
	case ALU_INC:
		EMUL_OP(inc, 1, size, &d, src, &fl);
		break;
	case ALU_DEC:
		EMUL_OP(dec, 1, size, &d, src, &fl);
		break;
	case ALU_NOT:
		EMUL_OP(not, 1, size, &d, src, &fl);
		break;
	case ALU_NEG:
		EMUL_OP(neg, 1, size, &d, src, &fl);
		break;
	case ALU_BT:
		EMUL_OP_W(bt, 2, size, &d, src, &fl);
		break;
	case ALU_BTS:
		EMUL_OP_W(bts, 2, size, &d, src, &fl);
		break;
	case ALU_BTR:
		EMUL_OP_W(btr, 2, size, &d, src, &fl);
		break;
	case ALU_BTC:
		EMUL_OP_W(btc, 2, size, &d, src, &fl);
		break;
	}
	*dst = d;
	return (rflags & ~STATUS_FLAGS) | (fl & STATUS_FLAGS);
}

enum {
	EK_LOAD,	/* MOV, MOVZX, MOVSX into a register */
	EK_STORE,	/* MOV from a register or an immediate */
	EK_ALU,		/* ALU, TEST, INC/DEC, NOT/NEG */
	EK_XCHG,
	EK_BT,		/* BT, BTS, BTR, BTC */
	EK_MOVS,
	EK_STOS,
	EK_LODS,
};

/* What a decoded instruction does with its memory operand. */
struct emul_op {
	u8	kind;		/* EK_* */
	u8	alu;		/* ALU_* for EK_ALU and EK_BT */
	u8	size;		/* bytes of the memory operand */
	u8	reg;		/* KREG_* of the register operand */
	u8	reg_bytes;	/* its width */
	bool	high;		/* AH, CH, DH, BH */
	bool	read, write;	/* the memory operand is read / written */
	bool	reg_dst;	/* EK_ALU: the register is the destination */
	bool	has_imm;	/* the source is the immediate */
	bool	sign;		/* MOVSX */
	bool	lockable;	/* LOCK is allowed */
};

/* 0; -EPERM: a LOCK prefix where it raises #UD; -EINVAL: not emulated. */
static int emul_classify(const struct kestrel_insn *in, struct emul_op *op)
{
	int ext = (in->modrm >> 3) & 7;
	int reg = in->has_modrm ? ext | ((in->rex & 4) << 1) : KREG_RAX;

	*op = (struct emul_op){
		.size = in->op_bytes,
		.reg_bytes = in->op_bytes,
	};
	if (in->map == 0) {
		switch (in->opcode) {
		case 0x00 ... 0x3b:	/* decode.c took only xx0-xx3 */
			op->kind = EK_ALU;
			op->alu = in->opcode >> 3;
			op->reg_dst = in->opcode & 2;
			op->read = true;
			op->write = !op->reg_dst && op->alu != ALU_CMP;
			op->lockable = op->write;
			break;
		case 0x80: case 0x81: case 0x83:
			op->kind = EK_ALU;
			op->alu = ext;
			op->has_imm = true;
			op->read = true;
			op->write = ext != ALU_CMP;
			op->lockable = op->write;
			break;
		case 0x84: case 0x85:
			op->kind = EK_ALU;
			op->alu = ALU_TEST;
			op->read = true;
			break;
		case 0x86: case 0x87:	/* locked even without the prefix */
			op->kind = EK_XCHG;
			op->read = true;
			op->write = true;
			op->lockable = true;
			break;
		case 0x88: case 0x89: case 0xa2: case 0xa3:
			op->kind = EK_STORE;
			op->write = true;
			break;
		case 0xc6: case 0xc7:
			op->kind = EK_STORE;
			op->write = true;
			op->has_imm = true;
			break;
		case 0x8a: case 0x8b: case 0xa0: case 0xa1:
			op->kind = EK_LOAD;
			op->read = true;
			break;
		case 0xf6: case 0xf7:	/* decode.c took /0, /2, /3 */
			op->kind = EK_ALU;
			op->read = true;
			if (ext == 0) {
				op->alu = ALU_TEST;
				op->has_imm = true;
			} else {
				op->alu = ext == 2 ? ALU_NOT : ALU_NEG;
				op->write = true;
				op->lockable = true;
			}
			break;
		case 0xfe: case 0xff:	/* decode.c took /0, /1 */
			op->kind = EK_ALU;
			op->alu = ext ? ALU_DEC : ALU_INC;
			op->read = true;
			op->write = true;
			op->lockable = true;
			break;
		case 0xa4: case 0xa5:
			op->kind = EK_MOVS;
			break;
		case 0xaa: case 0xab:
			op->kind = EK_STOS;
			break;
		case 0xac: case 0xad:
			op->kind = EK_LODS;
			break;
		default:
			return -EINVAL;
		}
	} else if (in->map == 1) {
		switch (in->opcode) {
		case 0xb6: case 0xb7: case 0xbe: case 0xbf:
			op->kind = EK_LOAD;
			op->read = true;
			op->size = in->opcode & 1 ? 2 : 1;
			op->sign = in->opcode >= 0xbe;
			break;
		case 0xa3: case 0xab: case 0xb3: case 0xbb:
			op->kind = EK_BT;
			op->alu = ALU_BT + ((in->opcode >> 3) & 3);
			op->read = true;
			op->write = op->alu != ALU_BT;
			op->lockable = op->write;
			break;
		case 0xba:		/* decode.c took /4-/7 */
			op->kind = EK_BT;
			op->alu = ALU_BT + ext - 4;
			op->has_imm = true;
			op->read = true;
			op->write = op->alu != ALU_BT;
			op->lockable = op->write;
			break;
		default:
			return -EINVAL;
		}
	} else {
		return -EINVAL;
	}

	/* Byte registers 4-7 without REX are AH, CH, DH, BH. */
	if (op->reg_bytes == 1 && !in->rex && reg >= 4 && reg < 8) {
		op->high = true;
		reg -= 4;
	}
	op->reg = reg;
	if (in->lock && !op->lockable)
		return -EPERM;
	return 0;
}

static u64 size_mask(int size)
{
	return size == 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

static u64 reg_read(struct kestrel_vcpu *vcpu, int reg, bool high, int size)
{
	return (vcpu->arch.regs[reg] >> (high ? 8 : 0)) & size_mask(size);
}

static void reg_write(struct kestrel_vcpu *vcpu, int reg, bool high, int size,
		      u64 v)
{
	unsigned long *r = &vcpu->arch.regs[reg];

	switch (size) {
	case 1:
		if (high)
			*r = (*r & ~0xff00UL) | (v & 0xff) << 8;
		else
			*r = (*r & ~0xffUL) | (v & 0xff);
		break;
	case 2:
		*r = (*r & ~0xffffUL) | (v & 0xffff);
		break;
	case 4:
		*r = (u32)v;		/* 32-bit results zero-extend */
		break;
	default:
		*r = v;
		break;
	}
}

/* The instruction is done: step over it. */
static void emul_retire(struct kestrel_vcpu *vcpu, int len, int mode)
{
	vcpu->arch.rip += len;
	if (mode != 64)
		vcpu->arch.rip &= 0xffffffffULL;
	vcpu->arch.rflags &= ~X86_EFLAGS_RF;
}

/* BT* with a register offset: the bit, if it lies in the operand. */
static int emul_bt_offset(struct kestrel_vcpu *vcpu,
			  const struct kestrel_insn *in,
			  const struct emul_op *op, u64 *bit)
{
	s64 off;

	if (op->has_imm) {
		/* An immediate offset is taken modulo the operand size. */
		*bit = (u64)in->imm & (op->size * 8 - 1);
		return 0;
	}
	/*
	 * A register offset may address bits beyond the operand, anywhere
	 * around it in memory; only offsets within it are emulated.
	 */
	off = reg_read(vcpu, op->reg, false, op->size);
	off = op->size == 2 ? (s16)off : op->size == 4 ? (s32)off : off;
	if (off < 0 || off >= op->size * 8)
		return -EINVAL;
	*bit = off;
	return 0;
}

/*
 * The memory operand's value is known (@mval, when it is read): compute,
 * update registers and flags, retire the instruction, and store the
 * result.  A store that goes to userspace is an exit after the
 * instruction: userspace sees RIP past it.
 */
static int emul_finish(struct kestrel_vcpu *vcpu, const struct kestrel_insn *in,
		       const struct emul_op *op, int mode, u64 gpa, u64 mval)
{
	struct kestrel_arch_vcpu *a = &vcpu->arch;
	u64 d, src, out = 0;

	switch (op->kind) {
	case EK_LOAD:
		if (op->sign)
			mval = op->size == 1 ? (u64)(s8)mval : (u64)(s16)mval;
		reg_write(vcpu, op->reg, op->high, op->reg_bytes, mval);
		break;
	case EK_STORE:
		out = op->has_imm ? (u64)in->imm :
		      reg_read(vcpu, op->reg, op->high, op->size);
		break;
	case EK_XCHG:
		out = reg_read(vcpu, op->reg, op->high, op->size);
		reg_write(vcpu, op->reg, op->high, op->size, mval);
		break;
	case EK_ALU:
		src = op->has_imm ? (u64)in->imm :
		      reg_read(vcpu, op->reg, op->high, op->size);
		d = mval;
		if (op->reg_dst) {
			d = src;
			src = mval;
		}
		a->rflags = emul_alu(op->alu, op->size, &d, src, a->rflags);
		if (op->reg_dst && op->alu != ALU_CMP)
			reg_write(vcpu, op->reg, op->high, op->size, d);
		out = d;
		break;
	case EK_BT:
		if (emul_bt_offset(vcpu, in, op, &src))
			return emul_refuse(vcpu);
		d = mval;
		a->rflags = emul_alu(op->alu, op->size, &d, src, a->rflags);
		out = d;
		break;
	}
	emul_retire(vcpu, in->len, mode);
	if (!op->write)
		return EMUL_DONE;
	return emul_store(vcpu, gpa, op->size, out & size_mask(op->size));
}

/* ---- string moves -------------------------------------------------------- */

static int emul_ad_bits(const struct kestrel_insn *in, int mode)
{
	if (mode == 64)
		return in->adsize ? 32 : 64;
	return (mode == 16) ^ in->adsize ? 16 : 32;
}

/* rSI, rDI, rCX as the address size sees them, and their update. */
static u64 str_reg(struct kestrel_vcpu *vcpu, int reg, int ad_bits)
{
	return vcpu->arch.regs[reg] & size_mask(ad_bits / 8);
}

static void str_reg_add(struct kestrel_vcpu *vcpu, int reg, int ad_bits,
			long delta)
{
	reg_write(vcpu, reg, false, ad_bits / 8, vcpu->arch.regs[reg] + delta);
}

/* The segment a prefix names for the source of MOVS/LODS (DS if none). */
static int emul_src_seg(const u8 *b, int n)
{
	int i, seg = KSEG_DS;

	for (i = 0; i < n; i++) {
		switch (b[i]) {
		case 0x26:
			seg = KSEG_ES;
			break;
		case 0x2e:
			seg = KSEG_CS;
			break;
		case 0x36:
			seg = KSEG_SS;
			break;
		case 0x3e:
			seg = KSEG_DS;
			break;
		case 0x64:
			seg = KSEG_FS;
			break;
		case 0x65:
			seg = KSEG_GS;
			break;
		case 0x66: case 0x67: case 0xf0: case 0xf2: case 0xf3:
			break;
		default:
			return seg;
		}
	}
	return seg;
}

/*
 * The guest-physical address of @seg:@off for a data access of @size
 * bytes.  EMUL_INJECTED when the guest's paging refuses it (#PF, or #GP
 * for a non-canonical address).  Segment limits are not checked.
 */
static int emul_translate(struct kestrel_vcpu *vcpu, int seg, u64 off,
			  int mode, int size, bool write, u64 *gpa)
{
	struct kestrel_segment s;
	u64 la = off, data[3];
	u32 acc, err;
	int r;

	if (mode != 64 || seg == KSEG_FS || seg == KSEG_GS) {
		kestrel_call(get_seg)(vcpu, seg, &s);
		la += s.base;
	}
	if (mode != 64) {
		la &= 0xffffffffULL;
	} else if ((u64)(((s64)la << 16) >> 16) != la) {
		kestrel_x86_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return EMUL_INJECTED;
	}
	/* One element that straddles two pages: not emulated. */
	if ((la & ~PAGE_MASK) + size > PAGE_SIZE)
		return emul_refuse(vcpu);

	acc = (write ? X86_PF_WRITE : 0) | (emul_user(vcpu) ? X86_PF_USER : 0);
	r = kestrel_gva_translate(vcpu, la, acc, gpa, &err);
	if (r == -EFAULT) {
		emul_inject_pf(vcpu, la, err);
		return EMUL_INJECTED;
	}
	if (r) {
		/* The guest's tables lie outside its RAM. */
		data[0] = *gpa;
		data[1] = acc;
		data[2] = vcpu->arch.rip;
		vcpu->arch.emul.state = KESTREL_EMUL_NONE;
		return emul_internal_error(vcpu, KESTREL_INTERNAL_UNMAPPED_GPA,
					   3, data);
	}
	return EMUL_DONE;
}

/*
 * One element has been read (@val): store it, advance rSI/rDI/rCX, and
 * retire the instruction when the count is done.  Otherwise RIP stays on
 * it with RF set, as after an interrupted REP, and the guest runs the next
 * element natively or faults again.
 */
static int emul_string_put(struct kestrel_vcpu *vcpu,
			   const struct kestrel_insn *in,
			   const struct emul_op *op, int mode, u64 val)
{
	struct kestrel_arch_vcpu *a = &vcpu->arch;
	int ad_bits = emul_ad_bits(in, mode), r = EMUL_DONE;
	long delta = a->rflags & X86_EFLAGS_DF ? -op->size : op->size;

	if (op->kind == EK_LODS)
		reg_write(vcpu, KREG_RAX, false, op->size, val);
	else
		r = emul_store(vcpu, a->emul.dst_gpa, op->size, val);
	if (r < 0)
		return r;

	if (op->kind != EK_STOS)
		str_reg_add(vcpu, KREG_RSI, ad_bits, delta);
	if (op->kind != EK_LODS)
		str_reg_add(vcpu, KREG_RDI, ad_bits, delta);
	if (in->rep || in->repne) {
		str_reg_add(vcpu, KREG_RCX, ad_bits, -1);
		if (str_reg(vcpu, KREG_RCX, ad_bits)) {
			a->rflags |= X86_EFLAGS_RF;
			return r;
		}
	}
	emul_retire(vcpu, in->len, mode);
	return r;
}

/* MOVS, STOS, LODS with MMIO on one side (or both): one element. */
static int emul_string(struct kestrel_vcpu *vcpu, const struct kestrel_insn *in,
		       const struct emul_op *op, int mode)
{
	struct kestrel_emul *em = &vcpu->arch.emul;
	int ad_bits = emul_ad_bits(in, mode), r;
	u64 src_gpa = 0, val;

	/* REPNE is REP for these.  A zero count does nothing. */
	if ((in->rep || in->repne) && !str_reg(vcpu, KREG_RCX, ad_bits)) {
		emul_retire(vcpu, in->len, mode);
		return EMUL_DONE;
	}
	/* Both addresses first: a refused store must not follow a read. */
	if (op->kind != EK_STOS) {
		r = emul_translate(vcpu, emul_src_seg(em->insn, em->nbytes),
				   str_reg(vcpu, KREG_RSI, ad_bits), mode,
				   op->size, false, &src_gpa);
		if (r)
			return r;
	}
	if (op->kind != EK_LODS) {
		r = emul_translate(vcpu, KSEG_ES, str_reg(vcpu, KREG_RDI, ad_bits),
				   mode, op->size, true, &em->dst_gpa);
		if (r)
			return r;
	}
	if (op->kind == EK_STOS) {
		val = reg_read(vcpu, KREG_RAX, false, op->size);
	} else {
		r = emul_load(vcpu, src_gpa, op->size, &val);
		if (r)
			return r;
	}
	return emul_string_put(vcpu, in, op, mode, val);
}

/* ---- entry points -------------------------------------------------------- */

static int emul_start(struct kestrel_vcpu *vcpu, const struct kestrel_insn *in,
		      const struct emul_op *op, int mode, u64 gpa)
{
	u64 val = 0, bit;
	int r;

	if (op->kind >= EK_MOVS)
		return emul_string(vcpu, in, op, mode);
	if (op->kind == EK_BT && emul_bt_offset(vcpu, in, op, &bit))
		return emul_refuse(vcpu);
	if (op->read) {
		r = emul_load(vcpu, gpa, op->size, &val);
		if (r)
			return r;
	}
	return emul_finish(vcpu, in, op, mode, gpa, val);
}

/*
 * The access at @gpa is the instruction's memory operand (the ModRM or
 * moffs operand, or a string element), as the hardware reported it.
 */
int kestrel_emulate_mmio(struct kestrel_vcpu *vcpu, u64 gpa)
{
	struct kestrel_emul *em = &vcpu->arch.emul;
	int exit, r, mode = kestrel_x86_guest_mode_bits(vcpu);
	struct kestrel_insn in;
	struct emul_op op;
	u8 bytes[16];

	em->state = KESTREL_EMUL_NONE;
	if (emul_fetch_decode(vcpu, mode, &in, bytes, true, true, &exit))
		return exit;
	em->mode = mode;
	em->nbytes = in.len;
	memcpy(em->insn, bytes, in.len);

	r = emul_classify(&in, &op);
	if (r == -EPERM) {
		kestrel_x86_queue_exception(vcpu, X86_TRAP_UD, false, 0);
		return 0;
	}
	if (r)
		return emul_refuse(vcpu);
	r = emul_start(vcpu, &in, &op, mode, gpa);
	return r == EMUL_INJECTED ? 0 : r;
}

void kestrel_emulate_complete_userspace(struct kestrel_vcpu *vcpu)
{
	struct kestrel_emul *em = &vcpu->arch.emul;

	if (em->state != KESTREL_EMUL_READ_WAIT)
		return;
	/* The length is the kernel's own: run->mmio.len is not trusted. */
	em->data = 0;
	memcpy(&em->data, vcpu->run->mmio.data, em->size);
	em->state = KESTREL_EMUL_READ_DONE;
}

int __kestrel_emulate_resume(struct kestrel_vcpu *vcpu)
{
	struct kestrel_emul *em = &vcpu->arch.emul;
	struct kestrel_insn in;
	struct emul_op op;
	int r;

	em->state = KESTREL_EMUL_NONE;
	/* The same bytes decoded the same way before the read. */
	if (kestrel_decode(em->insn, em->nbytes, em->mode, &in) ||
	    emul_classify(&in, &op))
		return emul_refuse(vcpu);
	if (op.kind >= EK_MOVS)
		r = emul_string_put(vcpu, &in, &op, em->mode, em->data);
	else
		r = emul_finish(vcpu, &in, &op, em->mode, em->gpa, em->data);
	return r == EMUL_INJECTED ? 0 : r;
}
