/* SPDX-License-Identifier: GPL-2.0 */
/* Real mode: OUT and IN of each size, then HLT twice. */
#include "guest.h"

	.code16
	.section .text.start, "ax"
	.globl	start
start:
	/* OUT of each size, immediate-port and DX-port forms */
	mov	$0x5a, %al
	out	%al, $PORT_U8
	mov	$0xbeef, %ax
	mov	$PORT_WIDE, %dx
	out	%ax, %dx
	mov	$0xdeadbeef, %eax
	out	%eax, $PORT_U32

	/* IN of each size, echoed; a narrow IN must keep the rest of EAX */
	mov	$0x11223344, %eax
	in	$PORT_IN, %al
	out	%eax, $PORT_U32
	mov	$0x55667788, %eax
	mov	$PORT_IN, %dx
	in	%dx, %ax
	out	%eax, $PORT_U32
	in	$PORT_IN, %eax
	out	%eax, $PORT_U32

	/* Tell the test where HLT leaves RIP; RUN again resumes there. */
	mov	$after_hlt, %eax
	out	%eax, $PORT_U32
	hlt
after_hlt:
	mov	$0x77, %al
	out	%al, $PORT_U8
	hlt
1:	jmp	1b
