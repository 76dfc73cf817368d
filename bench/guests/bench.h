/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest-physical layout and port protocol shared by the bench guests
 * (assembled with cpp) and kbench.c.  Every measuring guest runs in 64-bit
 * long mode, set up identically by kbench on Kestrel and on KVM.
 *
 * Inputs, in registers set by the host:
 *   R8   timed iterations (>= 1)
 *   R9   warm-up iterations run first, untimed
 *   R10  base address (touch, mmio guests)
 *   R11  stride (touch guest); which vCPU (IPI guest: 0 measures, 1 answers)
 * Output: an OUT to PORT_MARK just before and just after the timed loop
 * (the host reads its clock at each), the TSC cycles of the timed loop,
 * OUT to PORT_RESULT as two 4-byte values (low half first), then an OUT
 * to PORT_DONE (not HLT: with an in-kernel APIC, HLT never comes back).
 */
#ifndef BENCH_GUEST_H
#define BENCH_GUEST_H

#define BG_GDT		0x1000		/* null, 64-bit code, flat data */
#define BG_PML4		0x2000		/* page tables: the first 1 GiB */
#define BG_PDPT		0x3000		/* identity mapped in 2 MiB pages */
#define BG_PD		0x4000
#define BG_IDT		0x5000		/* 256 gates, for the timer guest */
#define BG_IPI_FLAGS	0x6000		/* the IPI guest's two flags */
#define BG_LOAD		0x10000		/* every guest is linked here */
#define BG_LOAD_MAX	0x10000		/* room for the image */
#define BG_STACK_TOP	0x80000
#define BG_STACK_AP	0x70000		/* the second vCPU's */
#define BG_RAM_SIZE	0x200000	/* slot 0: 2 MiB at GPA 0 */

#define BG_SEL_CODE	0x08
#define BG_SEL_DATA	0x10

/* Regions first touched by the nested-page-fault guests (slots 1, 2). */
#define BG_TOUCH4K_GPA	0x01000000	/* 16 MiB */
#define BG_TOUCH2M_GPA	0x04000000	/* 64 MiB, 2 MiB aligned */
/* No slot backs this: accesses are MMIO. Inside the guest's 1 GiB map. */
#define BG_MMIO_GPA	0x3fe00000

#define PORT_LOOP	0xe0		/* the PIO loop's OUTs */
#define PORT_RESULT	0xe4		/* results, 4 bytes each */
#define PORT_MARK	0xe8		/* host clock reads around the timed loop */
#define PORT_DONE	0xec		/* the guest has finished */

#define COM1_DATA	0x3f8

#ifdef __ASSEMBLER__
/* RAX = TSC; clobbers RDX.  LFENCE: earlier instructions finish first. */
.macro	tsc_read
	lfence
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
.endm
#endif

#endif
