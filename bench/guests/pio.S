/* SPDX-License-Identifier: GPL-2.0 */
/* OUT to a port nobody emulates in the kernel: a round trip to userspace. */
#include "bench.h"

.macro	body
	out	%al, $PORT_LOOP
.endm
#include "loop.inc"
