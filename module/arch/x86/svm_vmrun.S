/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The world switch for SVM.
 *
 * VMRUN saves and restores only part of the host state (RIP, RSP, RAX,
 * control registers, EFER, segments, GDTR/IDTR).  The rest - FS/GS/TR/LDTR
 * hidden state, KERNEL_GS_BASE, STAR/LSTAR/CSTAR/SFMASK, SYSENTER MSRs -
 * moves with VMSAVE/VMLOAD, so the host's copy is saved around the guest's.
 * Between the two VMLOADs GS points at the guest's base: the caller has
 * cleared GIF, so neither interrupts nor NMIs can run host code there.
 */
#include <linux/linkage.h>
#include <linux/objtool.h>
#include <asm/asm.h>
#include <asm/nospec-branch.h>

/* Offsets into unsigned long regs[], in enum kestrel_reg order. */
#define R_RAX	(0 * 8)
#define R_RCX	(1 * 8)
#define R_RDX	(2 * 8)
#define R_RBX	(3 * 8)
#define R_RSP	(4 * 8)
#define R_RBP	(5 * 8)
#define R_RSI	(6 * 8)
#define R_RDI	(7 * 8)
#define R_R8	(8 * 8)
#define R_R9	(9 * 8)
#define R_R10	(10 * 8)
#define R_R11	(11 * 8)
#define R_R12	(12 * 8)
#define R_R13	(13 * 8)
#define R_R14	(14 * 8)
#define R_R15	(15 * 8)

	.section .noinstr.text, "ax"

/*
 * void __kestrel_svm_vmrun(unsigned long vmcb_pa, unsigned long host_save_pa,
 *			    unsigned long *regs)
 *
 * Interrupts off and GIF clear; returns the same way.  RAX and RSP of the guest are in the VMCB;
 * the other general registers move between regs[] and the CPU here.
 */
SYM_FUNC_START(__kestrel_svm_vmrun)
	push	%rbp
	push	%r15
	push	%r14
	push	%r13
	push	%r12
	push	%rbx
	push	%rdx			/* regs:		16(%rsp) */
	push	%rsi			/* host save area:	 8(%rsp) */
	push	%rdi			/* VMCB:		 0(%rsp) */

	mov	%rsi, %rax
	vmsave	%rax
	mov	%rdi, %rax
	vmload	%rax

	mov	%rdx, %rax
	mov	R_RCX(%rax), %rcx
	mov	R_RDX(%rax), %rdx
	mov	R_RBX(%rax), %rbx
	mov	R_RBP(%rax), %rbp
	mov	R_RSI(%rax), %rsi
	mov	R_RDI(%rax), %rdi
	mov	R_R8(%rax), %r8
	mov	R_R9(%rax), %r9
	mov	R_R10(%rax), %r10
	mov	R_R11(%rax), %r11
	mov	R_R12(%rax), %r12
	mov	R_R13(%rax), %r13
	mov	R_R14(%rax), %r14
	mov	R_R15(%rax), %r15

	/*
	 * With V_INTR_MASKING the host's IF at VMRUN gates physical
	 * interrupts in the guest: set it, or an interrupt (a signal's kick,
	 * the tick) could not make the guest exit.  GIF is still clear, so
	 * nothing is delivered to the host here.
	 */
	mov	(%rsp), %rax
	sti
	vmrun	%rax
	/* VMRUN saves this RIP as the host's: svm.c knows it. */
SYM_INNER_LABEL(__kestrel_svm_vmexit, SYM_L_GLOBAL)
	ANNOTATE_NOENDBR		/* compared against, never a branch target */
	cli

	/* #VMEXIT restored RSP and RAX (= VMCB address). */
	vmsave	%rax
	mov	16(%rsp), %rax
	mov	%rcx, R_RCX(%rax)
	mov	%rdx, R_RDX(%rax)
	mov	%rbx, R_RBX(%rax)
	mov	%rbp, R_RBP(%rax)
	mov	%rsi, R_RSI(%rax)
	mov	%rdi, R_RDI(%rax)
	mov	%r8, R_R8(%rax)
	mov	%r9, R_R9(%rax)
	mov	%r10, R_R10(%rax)
	mov	%r11, R_R11(%rax)
	mov	%r12, R_R12(%rax)
	mov	%r13, R_R13(%rax)
	mov	%r14, R_R14(%rax)
	mov	%r15, R_R15(%rax)
	mov	8(%rsp), %rax
	vmload	%rax

	/* The guest may have trained the return stack buffer: refill it. */
	FILL_RETURN_BUFFER %rax, RSB_CLEAR_LOOPS, X86_FEATURE_RSB_VMEXIT

	/* Leave no guest value in a register the compiler may spill. */
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%esi, %esi
	xor	%edi, %edi
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d

	add	$24, %rsp
	pop	%rbx
	pop	%r12
	pop	%r13
	pop	%r14
	pop	%r15
	pop	%rbp
	RET
SYM_FUNC_END(__kestrel_svm_vmrun)
