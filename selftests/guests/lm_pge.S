/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit, any number of vCPUs at once: toggle CR4.PGE (each write exits,
 * and flushes the TLB) GUEST_DATA times, reporting every 256 toggles as
 * an OUT of the count to PORT_U32, then OUT 0 and HLT.  Each vCPU has its
 * own RSP (the test's); nothing else is shared.
 */
#include "guest.h"

#define CR4_PGE	0x80

	.code64
	.section .text.start, "ax"
	.globl	start
start:
	mov	GUEST_DATA, %ecx
	xor	%ebx, %ebx
1:	mov	%cr4, %rax
	xor	$CR4_PGE, %rax
	mov	%rax, %cr4
	inc	%ebx
	test	$0xff, %bl
	jnz	2f
	mov	%ebx, %eax
	out	%eax, $PORT_U32
2:	cmp	%ecx, %ebx
	jb	1b
	/* Leave PGE as it was: an even number of toggles. */
	mov	%cr4, %rax
	and	$~CR4_PGE, %rax
	mov	%rax, %cr4
	xor	%eax, %eax
	out	%eax, $PORT_U32
	hlt
	jmp	.
