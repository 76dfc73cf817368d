/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wrap a flat guest image into kbench: guest_NAME_start[] .. _end[].
 * Built with -DNAME=foo -DFILE="guests/foo.bin".
 */
#define __CAT3(a, b, c)	a##b##c
#define CAT3(a, b, c)	__CAT3(a, b, c)

	.section .rodata.guest, "a"
	.balign	16
	.globl	CAT3(guest_, NAME, _start)
	.globl	CAT3(guest_, NAME, _end)
CAT3(guest_, NAME, _start):
	.incbin	FILE
CAT3(guest_, NAME, _end):
	.section .note.GNU-stack, "", @progbits
