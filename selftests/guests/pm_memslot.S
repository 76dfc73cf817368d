/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 32-bit: read the first u32 of the second memory slot, increment the
 * second one, OUT the value read, and loop.  The read is the first
 * instruction so that an unbacked slot faults at RIP == GUEST_LOAD.
 */
#include "guest.h"

	.code32
	.section .text.start, "ax"
	.globl	start
start:
	mov	GUEST_SLOT1_GPA, %eax
	incl	GUEST_SLOT1_GPA + 4
	out	%eax, $PORT_U32
	jmp	start
