/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit long mode: every MOV form Kestrel decodes for MMIO, against the
 * unbacked address in RSI; then the loaded registers go out on PORT_U32.
 */
#include "guest.h"

	.code64
	.section .text.start, "ax"
	.globl	start
start:
	mov	$0x11223344, %eax
	mov	%eax, (%rsi)			/* 89: store 4 */
	movb	$0x5a, 1(%rsi)			/* C6: store imm8 */
	movabs	$0x0102030405060708, %rbx
	mov	%rbx, 8(%rsi)			/* REX.W 89: store 8 */
	movw	$0xbeef, 16(%rsi)		/* 66 C7: store imm16 */
	movq	$-2, 24(%rsi)			/* REX.W C7: imm32, sign-extended */
	mov	%bh, 32(%rsi)			/* 88 with BH: store 1 */
	mov	40(%rsi), %ecx			/* 8B: load 4, zero-extends */
	movzbl	48(%rsi), %edx			/* 0F B6: load 1, zero-extend */
	movswq	56(%rsi), %r8			/* REX.WR 0F BF: load 2, sign-extend */
	mov	64(%rsi), %r9			/* REX.WR 8B: load 8 */
	mov	72(%rsi), %ah			/* 8A with AH: load 1 into 15:8 */
	mov	%rax, %r10
	mov	%rcx, %rax
	call	out64
	mov	%rdx, %rax
	call	out64
	mov	%r8, %rax
	call	out64
	mov	%r9, %rax
	call	out64
	mov	%r10, %rax
	call	out64
	hlt
1:	jmp	1b

out64:
	out	%eax, $PORT_U32
	shr	$32, %rax
	out	%eax, $PORT_U32
	ret
