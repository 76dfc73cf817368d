/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit long mode: the read-modify-write forms Kestrel emulates on MMIO.
 * Each instruction runs twice, first on RAM at RDI (the CPU's own result),
 * then on MMIO at RSI (Kestrel's), from the same registers and RFLAGS
 * taken from the block at RBX: RCX, memory, RFLAGS, RDX.  After each run
 * RFLAGS, RCX and the two RAM words go out on PORT_U32 (the test compares
 * the MMIO run's write with the RAM run's memory).  The order of the
 * cases is the table's in mmio_test.c.
 */
#include "guest.h"

.macro T insn:vararg
	mov	%rdi, %rbp
	call	setup
	\insn
	call	report
	mov	%rsi, %rbp
	call	setup
	\insn
	call	report
.endm

	.code64
	.section .text.start, "ax"
	.globl	start
start:
	T add	%rcx, (%rbp)
	T add	%ecx, (%rbp)
	T add	%cl, (%rbp)
	T adc	%cx, (%rbp)
	T sbb	%ecx, (%rbp)
	T sub	%rcx, (%rbp)
	T and	%ecx, (%rbp)
	T or	%cl, (%rbp)
	T xor	%rcx, (%rbp)
	T cmp	%ecx, (%rbp)
	T add	(%rbp), %ecx
	T sub	(%rbp), %cl
	T cmp	(%rbp), %rcx
	T adc	(%rbp), %ch
	T addl	$0x7fffffff, (%rbp)
	T orb	$0x81, (%rbp)
	T subq	$-3, (%rbp)
	T cmpw	$0x1234, (%rbp)
	T sbbl	$1, (%rbp)
	T andq	$0x7ffff0f0, (%rbp)
	T xorw	$-1, (%rbp)
	T test	%ecx, (%rbp)
	T test	%cl, (%rbp)
	T testl	$0x80000001, (%rbp)
	T testb	$0x80, (%rbp)
	T xchg	%rcx, (%rbp)
	T xchg	%cl, (%rbp)
	T incl	(%rbp)
	T decb	(%rbp)
	T incq	(%rbp)
	T decw	(%rbp)
	T notl	(%rbp)
	T negq	(%rbp)
	T negb	(%rbp)
	T bt	%edx, (%rbp)
	T bts	%rdx, (%rbp)
	T btr	%dx, (%rbp)
	T btc	%edx, (%rbp)
	T btl	$35, (%rbp)
	T btsq	$63, (%rbp)
	T btrw	$3, (%rbp)
	T btcl	$31, (%rbp)
	T lock addl %ecx, (%rbp)
	T lock btsl $7, (%rbp)
	T lock incb (%rbp)
	T lock xchg %ecx, (%rbp)
	T lock negw (%rbp)
	T lock sbbq %rcx, 8(%rbp)
	T mov	(%rbp), %ecx
	T movsbq (%rbp), %rcx
	T mov	%rcx, (%rbp)
	hlt
1:	jmp	1b

/* RCX, RDX, the RAM operand (8 bytes at RDI, and at RDI + 8), RFLAGS. */
setup:
	mov	0(%rbx), %rcx
	mov	24(%rbx), %rdx
	mov	8(%rbx), %rax
	mov	%rax, (%rdi)
	mov	%rax, 8(%rdi)
	push	16(%rbx)
	popf
	ret

report:
	pushf
	pop	%rax
	out	%eax, $PORT_U32
	mov	%rcx, %rax
	call	out64
	mov	(%rdi), %rax
	call	out64
	mov	8(%rdi), %rax
	call	out64
	ret

out64:
	out	%eax, $PORT_U32
	shr	$32, %rax
	out	%eax, $PORT_U32
	ret
