/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Emulation of guest instructions that touch MMIO, and the guest-linear
 * accesses emulation makes (instruction fetch, the RAM side of MOVS).
 */
#ifndef KESTREL_EMULATE_H
#define KESTREL_EMULATE_H

#include <asm/trap_pf.h>

#include "x86.h"

/*
 * Translate @gva as the guest's paging does for an access @acc, made of
 * X86_PF_WRITE, X86_PF_USER and X86_PF_INSTR.  0: *gpa is the address.
 * -EFAULT: the guest's tables refuse the access, *pferr is the #PF error
 * code.  -EIO: a table entry lies outside guest RAM, at *gpa.
 */
int kestrel_gva_translate(struct kestrel_vcpu *vcpu, u64 gva, u32 acc,
			  u64 *gpa, u32 *pferr);

/*
 * Decode the instruction at RIP.  0: decoded.  Otherwise the vCPU exits
 * with a DECODE internal error (*exit = 1): the instruction cannot be
 * fetched or decoded, or with want_mem has no memory operand.
 */
int kestrel_decode_at_rip(struct kestrel_vcpu *vcpu, struct kestrel_insn *insn,
			  bool want_mem, int *exit);

/* A nested page fault on @gpa, which no writable slot backs: emulate. */
int kestrel_emulate_mmio(struct kestrel_vcpu *vcpu, u64 gpa);

/* RUN was called again: take the data of an MMIO read from the run page. */
void kestrel_emulate_complete_userspace(struct kestrel_vcpu *vcpu);

int __kestrel_emulate_resume(struct kestrel_vcpu *vcpu);

/*
 * Before entering the guest: finish an instruction whose MMIO read has
 * completed.  0: enter the guest; 1: exit to userspace; <0: error.
 */
static inline int kestrel_emulate_resume(struct kestrel_vcpu *vcpu)
{
	if (vcpu->arch.emul.state != KESTREL_EMUL_READ_DONE)
		return 0;
	return __kestrel_emulate_resume(vcpu);
}

/* New registers from userspace, or a reset: drop a half-done instruction. */
static inline void kestrel_emulate_cancel(struct kestrel_vcpu *vcpu)
{
	vcpu->arch.emul.state = KESTREL_EMUL_NONE;
}

#endif
