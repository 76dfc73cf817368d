/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit long mode: string moves with MMIO on one side, and instructions
 * that must fault.  RBX picks the case; RSI, RDI, RCX, RAX and RFLAGS.DF
 * come from the test, which reads the registers back at the HLT.  #UD and
 * #PF land in handlers that put the vector in R10, the error code in R8
 * and CR2 in R9, then halt.
 */
#include "guest.h"

#define IDT	(GUEST_DATA + 0xc00)

.macro GATE vec, handler
	lea	\handler(%rip), %r11
	mov	$(IDT + \vec * 16), %r12
	mov	%r11w, (%r12)
	movw	$GUEST_SEL_CODE, 2(%r12)
	movw	$0x8e00, 4(%r12)
	shr	$16, %r11
	mov	%r11w, 6(%r12)
	shr	$16, %r11
	mov	%r11d, 8(%r12)
	movl	$0, 12(%r12)
.endm

.macro CASE n, label
	cmp	$\n, %rbx
	je	\label
.endm

	.code64
	.section .text.start, "ax"
	.globl	start
start:
	GATE	6, ud_handler
	GATE	14, pf_handler
	sub	$16, %rsp
	movw	$(15 * 16 - 1), (%rsp)
	movq	$IDT, 2(%rsp)
	lidt	(%rsp)
	add	$16, %rsp
	xor	%r10, %r10

	CASE	0, c_movsb
	CASE	1, c_movsl
	CASE	2, c_movsq
	CASE	3, c_stosw
	CASE	4, c_movsb1
	CASE	5, c_fs_movsb
	CASE	6, c_a32_movsb
	CASE	7, c_lock_mov
	CASE	8, c_lock_cmp
	CASE	9, c_imul
	CASE	10, c_bt_far
	CASE	11, c_movsl_split
	CASE	12, c_lodsw
	hlt

c_movsb:	rep movsb
	hlt
c_movsl:	rep movsl
	hlt
c_movsq:	rep movsq
	hlt
c_stosw:	rep stosw
	hlt
c_movsb1:	movsb
	hlt
c_fs_movsb:	rep movsb %fs:(%rsi), %es:(%rdi)
	hlt
c_a32_movsb:	addr32 rep movsb
	hlt
c_lock_mov:	.byte 0xf0		/* LOCK MOV: #UD */
	mov	%eax, (%rdi)
	hlt
c_lock_cmp:	.byte 0xf0		/* LOCK CMP: #UD */
	cmp	%eax, (%rdi)
	hlt
c_imul:	imul	(%rdi), %ecx	/* not emulated: a DECODE exit */
	hlt
c_bt_far:	bt	%rcx, (%rdi)	/* bit offset outside the operand */
	hlt
c_movsl_split:	rep movsl
	hlt
c_lodsw:	rep lodsw
	hlt

ud_handler:
	mov	$6, %r10
	hlt
pf_handler:
	pop	%r8
	mov	%cr2, %r9
	mov	$14, %r10
	hlt
