/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit: report every general register the test set (RAX first, then
 * RBX RCX RDX RSI RDI RBP R8-R15, each low half then high half), then
 * invert them all so the test can read the results with GET_REGS.
 */
#include "guest.h"

	.code64
	.section .text.start, "ax"
	.globl	start
start:
	call	out64
	.irp	reg, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15
	mov	%\reg, %rax
	call	out64
	.endr

	.irp	reg, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15
	not	%\reg
	.endr
	movabs	$0x600dc0de600dc0de, %rax
	hlt
1:	jmp	1b

/* OUT RAX as two 4-byte values, low half first; clobbers RAX. */
out64:
	out	%eax, $PORT_U32
	shr	$32, %rax
	out	%eax, $PORT_U32
	ret
