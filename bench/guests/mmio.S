/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A 4-byte store to guest-physical memory no slot backs: decoded by the
 * hypervisor and handed to userspace as an MMIO exit.
 */
#include "bench.h"

.macro	body
	movl	%eax, (%r10)
.endm
#include "loop.inc"
