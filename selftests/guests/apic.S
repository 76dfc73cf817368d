/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit long mode: the local APIC tests' guest (apic_test.c).
 *
 * At start it fills a 256-entry IDT (interrupt gates) and loads it.  Then
 * it runs scripts: the test writes a list of operations at APIC_OPS and
 * RUNs; the guest executes them in order with IF clear between them and
 * reports the end with an OUT to APIC_PORT_DONE, then waits for the next
 * script at the same place.  An HLT is never used to talk to the test,
 * since with an in-kernel APIC it does not exit.
 *
 * Every interrupt or NMI bumps a per-vector counter, appends (vector,
 * TSC, interrupted RIP, R8) to a log and, for vectors >= 32, signals EOI
 * the way APIC_EOI_MODE says.  An exception is expected only where an
 * operation armed APIC_FIXUP (RDMSR/WRMSR): it resumes there and records
 * 0x100 | vector in the operation's fault field.  Any other exception is
 * reported with two OUTs to APIC_PORT_FAULT (vector, RIP) and ends the
 * guest.
 *
 * apic_test.c holds the same numbers (keep them in step).
 */
#include "guest.h"

#define APIC_MBOX	GUEST_DATA
#define APIC_MAGIC	(APIC_MBOX + 0x00)	/* guest writes 'APIC' */
#define APIC_EOI_MODE	(APIC_MBOX + 0x08)	/* 0 none, 1 xAPIC, 2 x2APIC */
#define APIC_CUR	(APIC_MBOX + 0x10)	/* index of the running op */
#define APIC_FIXUP	(APIC_MBOX + 0x18)	/* resume RIP for a fault */
#define APIC_LASTFAULT	(APIC_MBOX + 0x20)
#define APIC_LOG_N	(APIC_MBOX + 0x28)
#define APIC_HLT_RIP	(APIC_MBOX + 0x30)	/* RIP past op_sti_hlt's HLT */
#define APIC_OPS	(APIC_MBOX + 0x100)	/* 32 bytes each */
#define APIC_IDT	0x10000
#define APIC_COUNTS	0x12000			/* u32 per vector */
#define APIC_LOG	0x13000			/* 32 bytes per entry */
#define APIC_LOG_MAX	64

#define APIC_PORT_DONE	0xe0
#define APIC_PORT_MARK	0xe1
#define APIC_PORT_FAULT	0xe2

/* op layout: u32 code, u32 fault, u64 a0, u64 a1, u64 result */
#define OP_CODE		0
#define OP_FAULT	4
#define OP_A0		8
#define OP_A1		16
#define OP_RES		24
#define NR_OPS		21	/* entries in optab */

	.code64
	.section .text.start, "ax"
	.globl	start
start:
	cli
	/* IDT: gate i -> stubs + 16 * i, selector 8, present interrupt gate */
	lea	stubs(%rip), %rax
	mov	$APIC_IDT, %rdi
	xor	%ecx, %ecx
1:	mov	%rax, %rdx
	and	$0xffff, %edx
	mov	%rax, %rsi
	shr	$16, %rsi
	and	$0xffff, %esi
	shl	$48, %rsi
	or	%rsi, %rdx
	movabs	$0x00008e0000080000, %rsi
	or	%rsi, %rdx
	mov	%rdx, (%rdi)
	mov	%rax, %rdx
	shr	$32, %rdx
	mov	%rdx, 8(%rdi)
	add	$16, %rax
	add	$16, %rdi
	inc	%ecx
	cmp	$256, %ecx
	jb	1b
	lidt	idtr(%rip)
	lea	sti_hlt_resume(%rip), %rax
	mov	%rax, APIC_HLT_RIP
	movq	$0x43495041, APIC_MAGIC

script:
	cli
	mov	$APIC_OPS, %rbp
	movq	$0, APIC_CUR
next:
	mov	OP_CODE(%rbp), %eax
	cmp	$NR_OPS, %eax
	jae	bad_op
	mov	OP_A0(%rbp), %rdi
	mov	OP_A1(%rbp), %rsi
	jmp	*optab(, %rax, 8)

op_next:
	add	$32, %rbp
	incq	APIC_CUR
	jmp	next

op_end:
	mov	$1, %eax
	out	%eax, $APIC_PORT_DONE
	jmp	script

bad_op:
	mov	$0xffff, %eax
	out	%eax, $APIC_PORT_FAULT
	mov	%ebp, %eax
	out	%eax, $APIC_PORT_FAULT
2:	hlt
	jmp	2b

/* ---- operations (a0 in RDI, a1 in RSI) ---- */

op_rd32:
	mov	(%rdi), %eax
	mov	%rax, OP_RES(%rbp)
	jmp	op_next

op_wr32:
	mov	%esi, (%rdi)
	jmp	op_next

op_rd64:
	mov	(%rdi), %rax
	mov	%rax, OP_RES(%rbp)
	jmp	op_next

op_wr64:
	mov	%rsi, (%rdi)
	jmp	op_next

op_rdmsr:
	movq	$0, APIC_LASTFAULT
	lea	1f(%rip), %rax
	mov	%rax, APIC_FIXUP
	mov	%edi, %ecx
	xor	%eax, %eax
	xor	%edx, %edx
	rdmsr
1:	movq	$0, APIC_FIXUP
	shl	$32, %rdx
	mov	%eax, %eax
	or	%rdx, %rax
	mov	%rax, OP_RES(%rbp)
	mov	APIC_LASTFAULT, %rax
	mov	%eax, OP_FAULT(%rbp)
	jmp	op_next

/* a0: MSR, a1: value */
op_wrmsr:
	mov	%rsi, %rax
wrmsr_rax:
	movq	$0, APIC_LASTFAULT
	lea	1f(%rip), %rdx
	mov	%rdx, APIC_FIXUP
	mov	%edi, %ecx
	mov	%rax, %rdx
	shr	$32, %rdx
	wrmsr
1:	movq	$0, APIC_FIXUP
	mov	APIC_LASTFAULT, %rax
	mov	%eax, OP_FAULT(%rbp)
	jmp	op_next

op_sti_hlt:
	sti
	hlt
sti_hlt_resume:
	cli
	jmp	op_next

/*
 * IF=1 for a few instructions.  STI's shadow covers the first INC, so an
 * interrupt pending at the STI must see R8 = 1 in its log entry.
 */
op_window:
	xor	%r8d, %r8d
	sti
	.rept	8
	inc	%r8
	.endr
	cli
	jmp	op_next

/* a0: TSC ticks to spin; IF as the name says */
op_sleep_if1:
	sti
op_sleep_if0:
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	lea	(%rax, %rdi), %r9
1:	pause
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	cmp	%r9, %rax
	jb	1b
	cli
	jmp	op_next

/* a0: vector, a1: count.  STI; HLT until the vector's counter reaches it. */
op_hlt_until:
1:	mov	APIC_COUNTS(, %rdi, 4), %eax
	cmp	%esi, %eax
	jae	2f
	sti
	hlt
	cli
	jmp	1b
2:	jmp	op_next

op_rdtsc:
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, OP_RES(%rbp)
	jmp	op_next

/* IA32_TSC_DEADLINE = a1 if nonzero, else TSC + a0; result: the value */
op_tscdl:
	mov	%rsi, %rax
	test	%rax, %rax
	jnz	1f
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	add	%rdi, %rax
1:	mov	%rax, OP_RES(%rbp)
	mov	$0x6e0, %edi
	jmp	wrmsr_rax

/* result: the vector a0's counter */
op_count:
	mov	APIC_COUNTS(, %rdi, 4), %eax
	mov	%rax, OP_RES(%rbp)
	jmp	op_next

/* CLI; HLT: only an NMI (or the test moving RIP) gets past it */
op_cli_hlt:
	cli
	hlt
	jmp	op_next

/* an exit to userspace and back, IF clear: OUT a0 to APIC_PORT_MARK */
op_mark:
	mov	%edi, %eax
	out	%eax, $APIC_PORT_MARK
	jmp	op_next

/*
 * a0: vector | count << 16 | (1 << 32 for IF=1), a1: TSC ticks.  Spin
 * until the counter reaches count (result 1) or the time is up (0).
 */
op_wait:
	movzbl	%dil, %r10d
	mov	%rdi, %r11
	shr	$16, %r11
	and	$0xffff, %r11d
	bt	$32, %rdi
	jnc	1f
	sti
1:	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	lea	(%rax, %rsi), %r9
2:	mov	APIC_COUNTS(, %r10, 4), %eax
	cmp	%r11d, %eax
	jae	3f
	pause
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	cmp	%r9, %rax
	jb	2b
	cli
	movq	$0, OP_RES(%rbp)
	jmp	op_next
3:	cli
	movq	$1, OP_RES(%rbp)
	jmp	op_next

op_wrcr8:
	mov	%rdi, %cr8
	jmp	op_next

op_rdcr8:
	mov	%cr8, %rax
	mov	%rax, OP_RES(%rbp)
	jmp	op_next

op_seteoi:
	mov	%rdi, APIC_EOI_MODE
	jmp	op_next

/* ---- interrupts and exceptions ---- */

/* 16 bytes per vector: an error code (real or 0), the vector, common */
	.balign	16
stubs:
	.set	vec, 0
	.rept	256
	.balign	16
	.if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || \
	    (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$vec
	jmp	common
	.set	vec, vec + 1
	.endr

/* stack: 8 saved registers, vector, error code, RIP, CS, RFLAGS, RSP, SS */
common:
	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r9
	push	%r10
	push	%r11
	mov	64(%rsp), %rsi
	cmp	$32, %rsi
	jae	irq
	cmp	$2, %rsi
	je	irq
	/* an exception: only where an operation expects one */
	mov	APIC_FIXUP, %rax
	test	%rax, %rax
	jz	fatal
	movq	$0, APIC_FIXUP
	mov	%rax, 80(%rsp)
	mov	%rsi, %rax
	or	$0x100, %rax
	mov	%rax, APIC_LASTFAULT
	incl	APIC_COUNTS(, %rsi, 4)
	jmp	out

irq:
	incl	APIC_COUNTS(, %rsi, 4)
	mov	APIC_LOG_N, %rdi
	cmp	$APIC_LOG_MAX, %rdi
	jae	1f
	incq	APIC_LOG_N
	shl	$5, %rdi
	add	$APIC_LOG, %rdi
	mov	%rsi, (%rdi)
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, 8(%rdi)
	mov	80(%rsp), %rax
	mov	%rax, 16(%rdi)
	mov	%r8, 24(%rdi)
1:	cmp	$32, %rsi
	jb	out			/* NMI: no EOI */
	mov	APIC_EOI_MODE, %rax
	cmp	$1, %rax
	je	eoi_xapic
	cmp	$2, %rax
	je	eoi_x2apic
	jmp	out
eoi_xapic:
	mov	$0xfee000b0, %eax
	xor	%ecx, %ecx
	mov	%ecx, (%rax)
	jmp	out
eoi_x2apic:
	mov	$0x80b, %ecx
	xor	%eax, %eax
	xor	%edx, %edx
	wrmsr
out:
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	add	$16, %rsp
	iretq

fatal:
	mov	%esi, %eax
	out	%eax, $APIC_PORT_FAULT
	mov	80(%rsp), %rax
	out	%eax, $APIC_PORT_FAULT
3:	hlt
	jmp	3b

	.section .rodata
	.balign	8
idtr:
	.word	256 * 16 - 1
	.quad	APIC_IDT

	.balign	8
optab:
	.quad	op_end, op_rd32, op_wr32, op_rd64, op_wr64	/* 0-4 */
	.quad	op_rdmsr, op_wrmsr, op_sti_hlt, op_window	/* 5-8 */
	.quad	op_sleep_if0, op_sleep_if1, op_hlt_until	/* 9-11 */
	.quad	op_rdtsc, op_tscdl, op_count, op_cli_hlt	/* 12-15 */
	.quad	op_mark, op_wait, op_wrcr8, op_rdcr8		/* 16-19 */
	.quad	op_seteoi					/* 20 */
