/* SPDX-License-Identifier: GPL-2.0 */
/* 64-bit long mode: 64-bit arithmetic, PIO, memory both ways, HLT. */
#include "guest.h"

	.code64
	.section .text.start, "ax"
	.globl	start
start:
	/* Only correct in 64-bit mode: REX.W prefixes mean "dec" elsewhere. */
	movabs	$0x0123456789abcdef, %rax
	imul	$3, %rax, %rax
	movabs	$0xf0e1d2c3b4a59687, %rcx
	xor	%rcx, %rax
	rol	$13, %rax
	call	out64

	/* Memory written by the guest, checked by the test */
	movabs	$0x8877665544332211, %rax
	mov	%rax, GUEST_DATA
	mov	%rax, GUEST_HIGH

	/* Memory written by the test */
	mov	GUEST_DATA + 8, %rax
	not	%rax
	call	out64

	/* A 4-byte IN zero-extends into RAX, a 1-byte IN merges. */
	mov	$-1, %rax
	in	$PORT_IN, %eax
	call	out64
	movabs	$0x1122334455667788, %rax
	in	$PORT_IN, %al
	call	out64

	/* RSP is back at the top after the calls */
	mov	%rsp, %rax
	call	out64

	mov	$after_hlt, %eax
	out	%eax, $PORT_U32
	hlt
after_hlt:
	jmp	after_hlt

/* OUT RAX as two 4-byte values, low half first; clobbers RAX. */
out64:
	out	%eax, $PORT_U32
	shr	$32, %rax
	out	%eax, $PORT_U32
	ret
