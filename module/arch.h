/* SPDX-License-Identifier: GPL-2.0 */
/* Select the arch's per-VM and per-vCPU state for the core's objects. */
#ifndef KESTREL_ARCH_H
#define KESTREL_ARCH_H

#ifdef CONFIG_X86_64
#include "arch/x86/x86_types.h"
#else
#error "Kestrel supports x86-64 only"
#endif

#endif
