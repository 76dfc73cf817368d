/* SPDX-License-Identifier: GPL-2.0 */
/* Real mode: count in EAX forever, so the test can see progress. */
#include "guest.h"

	.code16
	.section .text.start, "ax"
	.globl	start
start:
1:	inc	%eax
	jmp	1b
