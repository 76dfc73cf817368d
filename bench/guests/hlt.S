/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HLT with no in-kernel APIC: both hypervisors return to userspace, which
 * resumes the guest past the HLT at once.
 */
#include "bench.h"

.macro	body
	hlt
.endm
#include "loop.inc"
