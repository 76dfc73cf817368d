/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The world switch for VMX.
 *
 * VM entry loads the guest's RIP, RSP, RFLAGS and control/segment state
 * from the VMCS; the general registers are ours to move.  A VM exit loads
 * the host's RSP and RIP from the VMCS, so HOST_RSP is written here, where
 * the stack is known, and HOST_RIP points at __kestrel_vmx_exit (written
 * once per VMCS by vmx.c).  Every other register arrives holding the guest's
 * value, and RFLAGS is 0x2: the caller keeps interrupts off throughout.
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/nospec-branch.h>
#include <asm/unwind_hints.h>

/* Offsets into unsigned long regs[], in enum kestrel_reg order. */
#define R_RAX	(0 * 8)
#define R_RCX	(1 * 8)
#define R_RDX	(2 * 8)
#define R_RBX	(3 * 8)
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

/* VMCS_HOST_RSP in vmx.h (vmx.c asserts that they agree). */
#define HOST_RSP_FIELD	0x6c14

	.section .noinstr.text, "ax"

/*
 * int __kestrel_vmx_vmrun(unsigned long *regs, unsigned long launched)
 *
 * The vCPU's VMCS is current on this CPU and interrupts are off.  Guest
 * RSP is in the VMCS; the other general registers move between regs[] and
 * the CPU here.  Returns 0 after a VM exit, 1 if VMLAUNCH/VMRESUME failed
 * (VMCS_INSN_ERROR says why).
 */
SYM_FUNC_START(__kestrel_vmx_vmrun)
	push	%rbp
	push	%r15
	push	%r14
	push	%r13
	push	%r12
	push	%rbx
	push	%rdi			/* regs: 0(%rsp) at the VM exit */

	mov	$HOST_RSP_FIELD, %eax
	vmwrite	%rsp, %rax
	jbe	.Lfail_early

	/* ZF from this test survives the loads below: MOV sets no flags. */
	test	%rsi, %rsi
	mov	%rdi, %rax
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
	mov	R_RAX(%rax), %rax

	UNWIND_HINT_SAVE
	jnz	.Lresume
	vmlaunch
	jmp	.Lfail
.Lresume:
	vmresume
	jmp	.Lfail

SYM_INNER_LABEL(__kestrel_vmx_exit, SYM_L_GLOBAL)
	UNWIND_HINT_RESTORE
	ENDBR
	/* RSP is HOST_RSP again: regs is at 0(%rsp). */
	push	%rax
	mov	8(%rsp), %rax
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
	popq	R_RAX(%rax)

	/* The guest may have trained the return stack buffer: refill it. */
	FILL_RETURN_BUFFER %rcx, RSB_CLEAR_LOOPS, X86_FEATURE_RSB_VMEXIT

	xor	%eax, %eax
	jmp	.Lout

.Lfail:
	/* No VM exit happened: the general registers hold guest values. */
	mov	$1, %eax
	jmp	.Lout
.Lfail_early:
	mov	$1, %eax

.Lout:
	/* Leave no guest value in a register the compiler may spill. */
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%esi, %esi
	xor	%edi, %edi
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d

	add	$8, %rsp
	pop	%rbx
	pop	%r12
	pop	%r13
	pop	%r14
	pop	%r15
	pop	%rbp
	RET
SYM_FUNC_END(__kestrel_vmx_vmrun)
