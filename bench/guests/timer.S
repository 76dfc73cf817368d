/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HLT woken by the guest's own APIC timer: arm a one-shot x2APIC timer of
 * R11 ticks, STI; HLT, and the interrupt handler EOIs and returns.  Needs
 * an in-kernel local APIC (KVM: KVM_CREATE_IRQCHIP); each iteration is
 * the timer period plus WRMSR, HLT, wake-up, injection and EOI.
 */
#include "bench.h"

#define MSR_APIC_BASE	0x1b
#define X2APIC_EOI	0x80b
#define X2APIC_SVR	0x80f
#define X2APIC_LVTT	0x832
#define X2APIC_TMICT	0x838
#define X2APIC_TDCR	0x83e
#define TIMER_VECTOR	0x40

#define GUEST_SETUP
	.code64
	.section .text.start, "ax"
	.globl	start
start:
	/* IDT gate TIMER_VECTOR: 64-bit interrupt gate to timer_isr */
	mov	$timer_isr, %eax
	mov	$(BG_IDT + TIMER_VECTOR * 16), %edi
	mov	%ax, (%rdi)
	movw	$BG_SEL_CODE, 2(%rdi)
	movw	$0x8e00, 4(%rdi)
	shr	$16, %eax
	mov	%ax, 6(%rdi)
	movq	$0, 8(%rdi)
	lidt	idt_desc

	/* x2APIC mode, software enabled, timer one-shot at divide-by-1 */
	mov	$MSR_APIC_BASE, %ecx
	rdmsr
	or	$0xc00, %eax
	wrmsr
	xor	%edx, %edx
	mov	$X2APIC_SVR, %ecx
	mov	$0x1ff, %eax
	wrmsr
	mov	$X2APIC_TDCR, %ecx
	mov	$0xb, %eax
	wrmsr
	mov	$X2APIC_LVTT, %ecx
	mov	$TIMER_VECTOR, %eax
	wrmsr

/* STI's shadow covers HLT: an early interrupt still wakes the HLT. */
.macro	body
	mov	$X2APIC_TMICT, %ecx
	mov	%r11d, %eax
	xor	%edx, %edx
	wrmsr
	sti
	hlt
	cli
.endm
#include "loop.inc"

	.text
timer_isr:
	push	%rax
	push	%rcx
	push	%rdx
	mov	$X2APIC_EOI, %ecx
	xor	%eax, %eax
	xor	%edx, %edx
	wrmsr
	pop	%rdx
	pop	%rcx
	pop	%rax
	iretq

	.balign	8
idt_desc:
	.word	256 * 16 - 1
	.quad	BG_IDT
