/* SPDX-License-Identifier: GPL-2.0 */
/* What guests/pm_exc.S does and reports, shared with exc_test.c. */
#ifndef SELFTESTS_PM_EXC_H
#define SELFTESTS_PM_EXC_H

#define EXC_MODE	GUEST_DATA		/* u32: EXC_MODE_* */
#define EXC_N		(GUEST_DATA + 0x4)	/* u32: events to cause */
#define EXC_AC		(GUEST_DATA + 0x10)	/* u32: #AC the handler saw */
#define EXC_ERR		(GUEST_DATA + 0x14)	/* u32: OR of their error codes */
#define EXC_DB		(GUEST_DATA + 0x18)	/* u32: #DB the handler saw */
#define EXC_DR6		(GUEST_DATA + 0x1c)	/* u32: OR of DR6 in the handler */
#define EXC_DR6_LAST	(GUEST_DATA + 0x20)	/* u32: DR6 after the handler cleared it */
#define EXC_IDT		(GUEST_DATA + 0x800)	/* 32 gates */

/*
 * AC_HANDLED: CR0.AM, CPL3 with EFLAGS.AC, EXC_N misaligned loads, each
 * caught by a CPL3 #AC handler that steps over it; then OUT EXC_AC.
 * AC_ENDLESS: the same with a misaligned CPL3 stack, then a push: every
 * delivery of #AC raises #AC again, for ever (CVE-2015-5307).  Reaching
 * the OUT after the push means the CPU checks no alignment.
 * DB_HANDLED: single-step EXC_N NOPs, a CPUID (which exits), and the
 * POPF that clears TF, at CPL0; the #DB handler counts, ORs DR6 into
 * EXC_DR6 and clears DR6; then OUT EXC_DB, OUT EXC_DR6.
 * DB_ENDLESS: TF set over "1: jmp 1b": one #DB per instruction, for ever.
 * DB_ABSENT: TF set, and no #DB gate: #DB, #NP, #DF, triple fault.
 */
#define EXC_MODE_AC_HANDLED	1
#define EXC_MODE_AC_ENDLESS	2
#define EXC_MODE_DB_HANDLED	3
#define EXC_MODE_DB_ENDLESS	4
#define EXC_MODE_DB_ABSENT	5

/*
 * #DB in DB_HANDLED: one per NOP and per LOOP, then MOV, CPUID, PUSHF,
 * AND and the POPF that clears TF (TF was set when it began).
 */
#define EXC_DB_EXPECTED(n)	(2 * (n) + 5)

#endif
