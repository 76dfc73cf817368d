/* SPDX-License-Identifier: GPL-2.0 */
/* Any mode: raise #BP with INT3. */
#include "guest.h"

	.code16
	.section .text.start, "ax"
	.globl	start
start:
	int3
	hlt
