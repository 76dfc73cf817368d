/* SPDX-License-Identifier: GPL-2.0 */
/* Any mode: raise #UD.  The bytes are the same in 16, 32 and 64-bit code. */
#include "guest.h"

	.code32
	.section .text.start, "ax"
	.globl	start
start:
	ud2
	hlt
