/* SPDX-License-Identifier: GPL-2.0 */
/* The operation list guests/lm_msr.S runs, shared with msr_test.c. */
#ifndef SELFTESTS_LM_MSR_H
#define SELFTESTS_LM_MSR_H

#define MSR_OPS		GUEST_DATA		/* 16-byte ops, up to 64 */
#define MSR_PVTI	(GUEST_DATA + 0x400)	/* kvmclock pages */
#define MSR_WALL	(GUEST_DATA + 0x480)
#define MSR_YMM_IN	(GUEST_DATA + 0x800)	/* 16 x 32 bytes each */
#define MSR_YMM_OUT	(GUEST_DATA + 0xa00)
#define MSR_IDT		(GUEST_DATA + 0xe00)	/* 32 gates, to GUEST_GDT */

#define MSR_OP_END		0
#define MSR_OP_RDMSR		1	/* ecx; a = EDX:EAX */
#define MSR_OP_WRMSR		2	/* ecx, value */
#define MSR_OP_RDTSC		3	/* a = EDX:EAX */
#define MSR_OP_XSETBV		4	/* ecx, value */
#define MSR_OP_XGETBV		5	/* ecx; a = EDX:EAX */
#define MSR_OP_CR4_OR		6	/* value; a = CR4 after */
#define MSR_OP_CPUID		7	/* value: leaf, ecx: subleaf; a = EBX:EAX, b = EDX:ECX */
#define MSR_OP_YMM_LOAD		8	/* YMM0-15 from MSR_YMM_IN */
#define MSR_OP_YMM_STORE	9	/* YMM0-15 to MSR_YMM_OUT */
#define MSR_OP_IN		10	/* a = IN from PORT_IN */
#define MSR_OP_RDPID		11	/* a = RDPID's result */
#define MSR_OP_RDTSCP		12	/* a = ECX (TSC_AUX), b = EDX:EAX */
#define MSR_OP_CPUID_LOOP	13	/* CPUID leaf 0 value times, YMM_STORE */

#endif
