/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wrap a flat guest image into the test binary:
 *   NAME_start[] .. NAME_end[]  (see DECLARE_GUEST() in lib.h)
 * Built with -DNAME=foo -DFILE="guests/foo.bin".
 */
#define __CAT(a, b)	a##b
#define CAT(a, b)	__CAT(a, b)

	.section .rodata.guest, "a"
	.balign	16
	.globl	CAT(NAME, _start)
	.globl	CAT(NAME, _end)
CAT(NAME, _start):
	.incbin	FILE
CAT(NAME, _end):
	.section .note.GNU-stack, "", @progbits
