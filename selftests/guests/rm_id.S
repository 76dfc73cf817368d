/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Real mode: the test puts a small id in EBX; store 0xc0de0000|id at
 * GUEST_DATA + 4 * id, OUT it, and HLT.
 */
#include "guest.h"

	.code16
	.section .text.start, "ax"
	.globl	start
start:
	mov	%ebx, %eax
	or	$0xc0de0000, %eax
	mov	%eax, GUEST_DATA(,%ebx,4)
	out	%eax, $PORT_U32
	hlt
1:	jmp	1b
