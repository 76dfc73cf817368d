/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit: run the operations listed at GUEST_DATA (struct msr_op in
 * msr_test.c: u32 op, u32 ecx, u64 value) until MSR_OP_END, and report each
 * as five 4-byte OUTs to PORT_U32: the exception it raised (0, or the
 * vector of #UD/#GP, which the guest's own IDT catches and steps over),
 * then two 64-bit results, low half first.
 */
#include "guest.h"
#include "lm_msr.h"

	.code64
	.section .text.start, "ax"
	.globl	start
start:
	mov	$gp_handler, %rax
	mov	$(MSR_IDT + 13 * 16), %rdi
	call	set_gate
	mov	$ud_handler, %rax
	mov	$(MSR_IDT + 6 * 16), %rdi
	call	set_gate
	lidt	idtr
	mov	$MSR_OPS, %rsi

next:
	xor	%r15d, %r15d		/* vector raised */
	xor	%r12d, %r12d		/* results */
	xor	%r13d, %r13d
	mov	(%rsi), %eax
	mov	4(%rsi), %ecx
	mov	8(%rsi), %rbx
	cmp	$MSR_OP_END, %eax
	je	done
	cmp	$MSR_OP_RDMSR, %eax
	je	op_rdmsr
	cmp	$MSR_OP_WRMSR, %eax
	je	op_wrmsr
	cmp	$MSR_OP_RDTSC, %eax
	je	op_rdtsc
	cmp	$MSR_OP_XSETBV, %eax
	je	op_xsetbv
	cmp	$MSR_OP_XGETBV, %eax
	je	op_xgetbv
	cmp	$MSR_OP_CR4_OR, %eax
	je	op_cr4_or
	cmp	$MSR_OP_CPUID, %eax
	je	op_cpuid
	cmp	$MSR_OP_YMM_LOAD, %eax
	je	op_ymm_load
	cmp	$MSR_OP_YMM_STORE, %eax
	je	op_ymm_store
	cmp	$MSR_OP_IN, %eax
	je	op_in
	cmp	$MSR_OP_RDPID, %eax
	je	op_rdpid
	cmp	$MSR_OP_RDTSCP, %eax
	je	op_rdtscp
	cmp	$MSR_OP_CPUID_LOOP, %eax
	je	op_cpuid_loop
	jmp	report

op_rdmsr:
	mov	$2, %r14d
	rdmsr
	jmp	edx_eax

op_wrmsr:
	mov	%rbx, %rax
	mov	%rbx, %rdx
	shr	$32, %rdx
	mov	$2, %r14d
	wrmsr
	jmp	report

op_rdtsc:
	rdtsc
	jmp	edx_eax

op_xsetbv:
	mov	%rbx, %rax
	mov	%rbx, %rdx
	shr	$32, %rdx
	mov	$3, %r14d
	xsetbv
	jmp	report

op_xgetbv:
	mov	$3, %r14d
	xgetbv
	jmp	edx_eax

op_cr4_or:
	mov	%cr4, %rax
	or	%rbx, %rax
	mov	$3, %r14d
	mov	%rax, %cr4
	mov	%cr4, %r12
	jmp	report

op_cpuid:
	mov	%rbx, %rax
	cpuid
	mov	%eax, %r12d
	shl	$32, %rbx
	or	%rbx, %r12
	mov	%ecx, %r13d
	shl	$32, %rdx
	or	%rdx, %r13
	jmp	report

op_ymm_load:
	.irp	n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	vmovdqu	MSR_YMM_IN + 32 * \n, %ymm\n
	.endr
	jmp	report

op_ymm_store:
	.irp	n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	vmovdqu	%ymm\n, MSR_YMM_OUT + 32 * \n
	.endr
	jmp	report

/*
 * Exits the kernel handles, one after the other, and the YMM registers
 * as they are after them, before any exit to userspace.
 */
op_cpuid_loop:
	mov	%rbx, %rdi
1:	xor	%eax, %eax
	xor	%ecx, %ecx
	cpuid
	dec	%rdi
	jnz	1b
	jmp	op_ymm_store

op_in:
	in	$PORT_IN, %eax
	mov	%eax, %r12d
	jmp	report

op_rdpid:
	mov	$4, %r14d
	xor	%eax, %eax
	.byte	0xf3, 0x0f, 0xc7, 0xf8	/* rdpid %rax */
	mov	%rax, %r12
	jmp	report

op_rdtscp:
	mov	$3, %r14d
	xor	%ecx, %ecx
	rdtscp
	mov	%ecx, %r12d
	mov	%eax, %r13d
	shl	$32, %rdx
	or	%rdx, %r13
	jmp	report

edx_eax:
	mov	%eax, %r12d
	shl	$32, %rdx
	or	%rdx, %r12

report:
	mov	%r15d, %eax
	out	%eax, $PORT_U32
	mov	%r12, %rax
	call	out64
	mov	%r13, %rax
	call	out64
	add	$16, %rsi
	jmp	next

done:
	hlt
	jmp	done

/* OUT RAX as two 4-byte values, low half first; clobbers RAX. */
out64:
	out	%eax, $PORT_U32
	shr	$32, %rax
	out	%eax, $PORT_U32
	ret

/* An interrupt gate at %rdi to the handler at %rax (below 4 GiB). */
set_gate:
	mov	%ax, (%rdi)
	movw	$GUEST_SEL_CODE, 2(%rdi)
	movw	$0x8e00, 4(%rdi)
	shr	$16, %rax
	mov	%ax, 6(%rdi)
	movq	$0, 8(%rdi)
	ret

/* #GP(error code) and #UD: note the vector, step over R14 bytes. */
gp_handler:
	add	$8, %rsp
	add	%r14, (%rsp)
	mov	$13, %r15d
	iretq

ud_handler:
	add	%r14, (%rsp)
	mov	$6, %r15d
	iretq

	.balign	8
idtr:
	.word	32 * 16 - 1
	.quad	MSR_IDT
