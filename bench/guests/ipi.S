/* SPDX-License-Identifier: GPL-2.0 */
/*
 * IPI round trip between two vCPUs, each with an in-kernel x2APIC: the
 * measuring vCPU (R11 = 0) sends PING_VECTOR to APIC ID 1 and halts until
 * the other vCPU's handler has sent PONG_VECTOR back and its own handler
 * has seen it.  The answering vCPU (R11 = 1) only halts, its handler does
 * the work.  Each iteration: two ICR writes, two deliveries to a halted
 * vCPU (a wake-up each), two EOIs.
 */
#include "bench.h"

#define MSR_APIC_BASE	0x1b
#define X2APIC_EOI	0x80b
#define X2APIC_SVR	0x80f
#define X2APIC_ICR	0x830
#define PONG_VECTOR	0x40		/* to the measuring vCPU */
#define PING_VECTOR	0x41		/* to the answering one */
#define AP_READY	BG_IPI_FLAGS	/* the answering vCPU takes IPIs */
#define PONG		(BG_IPI_FLAGS + 8)

#define GUEST_SETUP
	.code64
	.section .text.start, "ax"
	.globl	start
start:
	mov	$pong_isr, %eax
	mov	$(BG_IDT + PONG_VECTOR * 16), %edi
	call	set_gate
	mov	$ping_isr, %eax
	mov	$(BG_IDT + PING_VECTOR * 16), %edi
	call	set_gate
	lidt	idt_desc

	/* x2APIC mode, software enabled */
	mov	$MSR_APIC_BASE, %ecx
	rdmsr
	or	$0xc00, %eax
	wrmsr
	mov	$X2APIC_SVR, %ecx
	mov	$0x1ff, %eax
	xor	%edx, %edx
	wrmsr

	test	%r11, %r11
	jnz	answer
5:	pause
	cmpq	$0, AP_READY
	je	5b

/* STI's shadow covers HLT: a PONG that came early still wakes it. */
.macro	body
	movq	$0, PONG
	mov	$X2APIC_ICR, %ecx
	mov	$PING_VECTOR, %eax	/* fixed, physical, edge */
	mov	$1, %edx		/* x2APIC destination: APIC ID 1 */
	wrmsr
6:	cmpq	$0, PONG
	jne	7f
	sti
	hlt
	cli
	jmp	6b
7:
.endm
#include "loop.inc"

	.text
answer:
	movq	$1, AP_READY
8:	sti
	hlt
	cli
	jmp	8b

/* On the answering vCPU: PONG back to APIC ID 0. */
ping_isr:
	push	%rax
	push	%rcx
	push	%rdx
	mov	$X2APIC_ICR, %ecx
	mov	$PONG_VECTOR, %eax
	xor	%edx, %edx
	wrmsr
	jmp	eoi

/* On the measuring vCPU. */
pong_isr:
	push	%rax
	push	%rcx
	push	%rdx
	movq	$1, PONG
eoi:
	mov	$X2APIC_EOI, %ecx
	xor	%eax, %eax
	xor	%edx, %edx
	wrmsr
	pop	%rdx
	pop	%rcx
	pop	%rax
	iretq

/* A 64-bit interrupt gate at %rdi to the handler at %rax (below 4 GiB). */
set_gate:
	mov	%ax, (%rdi)
	movw	$BG_SEL_CODE, 2(%rdi)
	movw	$0x8e00, 4(%rdi)
	shr	$16, %eax
	mov	%ax, 6(%rdi)
	movq	$0, 8(%rdi)
	ret

	.balign	8
idt_desc:
	.word	256 * 16 - 1
	.quad	BG_IDT
