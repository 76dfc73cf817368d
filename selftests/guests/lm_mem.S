/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit long mode: a memory worker the test drives through registers,
 * one operation per RUN (the test resets RIP to start each time).
 *   RDI = 1  read the qword at [RSI]; OUT it to PORT_U32 (low, high)
 *   RDI = 2  write RDX to [RSI]
 *   RDI = 3  fill:   for i < RCX: qword [RSI + i * 4096] = RDX + i
 *   RDI = 4  verify: the same; OUT the first bad index, or 0xffffffff
 *   RDI = 5  for ever: qword [RSI + (n % RCX) * 4096] = n, n++
 * Then HLT.
 */
#include "guest.h"

	.code64
	.section .text.start, "ax"
	.globl	start
start:
	cmp	$1, %rdi
	je	op_read
	cmp	$2, %rdi
	je	op_write
	cmp	$3, %rdi
	je	op_fill
	cmp	$4, %rdi
	je	op_verify
	cmp	$5, %rdi
	je	op_spin
	hlt
	jmp	start

op_read:
	mov	(%rsi), %rax
	out	%eax, $PORT_U32
	shr	$32, %rax
	out	%eax, $PORT_U32
	hlt
	jmp	start

op_write:
	mov	%rdx, (%rsi)
	hlt
	jmp	start

op_fill:
	xor	%r8, %r8
1:	cmp	%rcx, %r8
	jae	2f
	lea	(%rdx, %r8), %rax
	mov	%rax, (%rsi)
	add	$4096, %rsi
	inc	%r8
	jmp	1b
2:	hlt
	jmp	start

op_verify:
	xor	%r8, %r8
1:	cmp	%rcx, %r8
	jae	3f
	lea	(%rdx, %r8), %rax
	cmp	%rax, (%rsi)
	jne	2f
	add	$4096, %rsi
	inc	%r8
	jmp	1b
2:	mov	%r8, %rax
	out	%eax, $PORT_U32
	hlt
	jmp	start
3:	mov	$0xffffffff, %eax
	out	%eax, $PORT_U32
	hlt
	jmp	start

op_spin:
	xor	%r8, %r8
1:	xor	%r9, %r9
2:	mov	%r9, %rax
	shl	$12, %rax
	mov	%r8, (%rsi, %rax)
	inc	%r8
	inc	%r9
	cmp	%rcx, %r9
	jb	2b
	jmp	1b
