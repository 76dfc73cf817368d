/* SPDX-License-Identifier: GPL-2.0 */
/*
 * First touch: a store every R11 bytes from R10, R8 times.  Each store
 * takes one nested page fault (the host has already populated the memory,
 * so only the hypervisor's fault path is timed).  No warm-up: a page is
 * touched for the first time only once.
 */
#include "bench.h"

.macro	body
	movb	$1, (%r10)
	add	%r11, %r10
.endm
#include "loop.inc"
