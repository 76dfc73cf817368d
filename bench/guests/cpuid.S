/* SPDX-License-Identifier: GPL-2.0 */
/* CPUID leaf 1: an exit both hypervisors handle in the kernel. */
#include "bench.h"

.macro	body
	mov	$1, %eax
	xor	%ecx, %ecx
	cpuid
.endm
#include "loop.inc"
