/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit long mode: copy a qword for ever, for race_test's remote-kick
 * checks.  Each round loads [RSI], stores it to [RDX] and counts the
 * round in [RDX + 8]; it only stops on an exit (MMIO once RSI's slot is
 * gone, or a kick).
 */
#include "guest.h"

	.code64
	.section .text.start, "ax"
	.globl	start
start:
1:	mov	(%rsi), %rax
	mov	%rax, (%rdx)
	incq	8(%rdx)
	jmp	1b
