/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest-physical layout and the port protocol shared by the selftest guests
 * (assembled with cpp) and the C tests.  Plain #defines only: this file is
 * included from .S, C and the guest linker script.
 */
#ifndef SELFTESTS_GUEST_H
#define SELFTESTS_GUEST_H

#define GUEST_MEM_SIZE	0x200000	/* 2 MiB of RAM at GPA 0, slot 0 */
#define GUEST_LOAD	0x1000		/* every guest image is linked here */
#define GUEST_LOAD_MAX	0x7000		/* room for the image */
#define GUEST_DATA	0x8000		/* a page the guest and the test share */
#define GUEST_GDT	0x9000		/* GDT built by the test (pm, lm) */
#define GUEST_PML4	0xa000		/* long-mode page tables built by */
#define GUEST_PDPT	0xb000		/* the test: 1 GiB identity map */
#define GUEST_PD	0xc000		/* in 2 MiB pages */
#define GUEST_STACK_TOP	0xf000		/* SS:SP/RSP, below 64 KiB for real mode */
#define GUEST_HIGH	0x1ff000	/* last page of RAM, above 1 MiB */

/* GDT selectors for the flat segments the test installs */
#define GUEST_SEL_CODE	0x08
#define GUEST_SEL_DATA	0x10

/* A second memory slot used by the memslot tests, past the end of RAM. */
#define GUEST_SLOT1_GPA	0x400000

/* Ports the guests use to talk to the test */
#define PORT_U8		0x10		/* 1-byte values */
#define PORT_U16	0x12		/* 2-byte values */
#define PORT_U32	0x14		/* 4-byte values, 64-bit ones as lo, hi */
#define PORT_IN		0x20		/* IN: the test supplies the value */
#define PORT_WIDE	0xcafe		/* a port above 0xff, reached through DX */

/* End marker of the CPUID query list at GUEST_DATA */
#define CPUID_LIST_END	0xffffffff

#endif
