/* SPDX-License-Identifier: GPL-2.0 */
/*
 * For the launcher's memory row, run by `kestrel run --mode long`: touch
 * 16 pages of RAM, print "R\n" on COM1 and spin until killed.  Position
 * independent; kbench measures the launcher's RSS while it spins.
 */
#include "bench.h"

#define TOUCH_BASE	0x200000
#define TOUCH_PAGES	16

	.code64
	.section .text.start, "ax"
	.globl	start
start:
	mov	$TOUCH_BASE, %rdi
	mov	$TOUCH_PAGES, %ecx
1:	movb	$1, (%rdi)
	add	$0x1000, %rdi
	dec	%ecx
	jnz	1b
	mov	$COM1_DATA, %dx
	mov	$'R', %al
	out	%al, %dx
	mov	$'\n', %al
	out	%al, %dx
2:	pause
	jmp	2b
	.section .note.GNU-stack, "", @progbits
