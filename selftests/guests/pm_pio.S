/* SPDX-License-Identifier: GPL-2.0 */
/* 32-bit protected mode, flat segments, no paging. */
#include "guest.h"

	.code32
	.section .text.start, "ax"
	.globl	start
start:
	mov	$0x12345678, %eax
	out	%eax, $PORT_U32
	mov	%cr0, %eax
	out	%eax, $PORT_U32

	/* Flat 4 GiB segments reach past 1 MiB, which real mode cannot. */
	movl	$0xa5a5a5a5, GUEST_HIGH
	/* Read what the test left, through a call to exercise the stack. */
	mov	GUEST_DATA, %eax
	call	add_one
	out	%eax, $PORT_U32
	mov	%esp, %eax
	out	%eax, $PORT_U32

	mov	$after_hlt, %eax
	out	%eax, $PORT_U32
	hlt
after_hlt:
	jmp	after_hlt

add_one:
	push	%ebx
	mov	$1, %ebx
	add	%ebx, %eax
	pop	%ebx
	ret
