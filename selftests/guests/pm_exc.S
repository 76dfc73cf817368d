/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 32-bit protected mode: raise #AC and #DB, handled or endless (see
 * pm_exc.h).  The guest installs its own GDT with CPL3 segments; the #AC
 * gate leads to CPL3 code, so delivery uses the current (CPL3) stack.
 */
#include "guest.h"
#include "pm_exc.h"

#define KCS	0x08
#define KDS	0x10
#define UCS	0x1b
#define UDS	0x23
#define TF	0x100
#define AC	0x40000
#define IOPL3	0x3000
#define CR0_AM	0x40000

	.code32
	.section .text.start, "ax"
	.globl	start
start:
	lgdt	gdtr
	ljmp	$KCS, $1f
1:	mov	$KDS, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$GUEST_STACK_TOP, %esp
	mov	$ac_handler, %eax
	mov	$UCS, %edx
	mov	$17, %ecx
	call	set_gate
	cmpl	$EXC_MODE_DB_ABSENT, EXC_MODE
	je	2f
	mov	$db_handler, %eax
	mov	$KCS, %edx
	mov	$1, %ecx
	call	set_gate
2:	lidt	idtr
	mov	EXC_MODE, %eax
	cmp	$EXC_MODE_AC_HANDLED, %eax
	je	ac_handled
	cmp	$EXC_MODE_AC_ENDLESS, %eax
	je	ac_endless
	cmp	$EXC_MODE_DB_HANDLED, %eax
	je	db_handled
	cmp	$EXC_MODE_DB_ENDLESS, %eax
	je	db_endless
	cmp	$EXC_MODE_DB_ABSENT, %eax
	je	db_endless
	ud2

/* EAX: handler, EDX: selector, ECX: vector.  Interrupt gate, DPL 3. */
set_gate:
	lea	EXC_IDT(, %ecx, 8), %edi
	mov	%ax, (%edi)
	mov	%dx, 2(%edi)
	movw	$0xee00, 4(%edi)
	shr	$16, %eax
	mov	%ax, 6(%edi)
	ret

/* To CPL3 at EBX with ESP = ECX, EFLAGS.AC and IOPL 3, CR0.AM set. */
to_user:
	mov	%cr0, %eax
	or	$CR0_AM, %eax
	mov	%eax, %cr0
	push	$UDS
	push	%ecx
	push	$(AC | IOPL3 | 2)
	push	$UCS
	push	%ebx
	iret

ac_handled:
	mov	$ac_user, %ebx
	mov	$GUEST_STACK_TOP, %ecx
	jmp	to_user
ac_user:
	mov	$UDS, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	EXC_N, %ecx
	mov	$(GUEST_DATA + 0x40), %ebx
3:	movl	1(%ebx), %eax		/* 3 bytes: 8b 43 01 */
	loop	3b
	mov	EXC_AC, %eax
	out	%eax, $PORT_U32
	jmp	.

ac_endless:
	mov	$ac_endless_user, %ebx
	mov	$(GUEST_STACK_TOP - 0x101), %ecx
	jmp	to_user
ac_endless_user:
	mov	$UDS, %ax
	mov	%ax, %ds
	mov	%ax, %es
	push	%eax			/* misaligned: #AC, for ever */
	pop	%eax
	mov	EXC_AC, %eax
	out	%eax, $PORT_U32
	jmp	.

/* CPL3, same stack: error code, EIP, CS, EFLAGS. */
ac_handler:
	push	%eax
	incl	EXC_AC
	mov	4(%esp), %eax
	orl	%eax, EXC_ERR
	pop	%eax
	add	$4, %esp
	addl	$3, (%esp)
	iret

db_handled:
	mov	EXC_N, %ecx
	pushf
	orl	$TF, (%esp)
	popf
4:	nop
	loop	4b
	mov	$0, %eax
	cpuid
	pushf
	andl	$~TF, (%esp)
	popf
	mov	EXC_DB, %eax
	out	%eax, $PORT_U32
	mov	EXC_DR6, %eax
	out	%eax, $PORT_U32
	mov	EXC_DR6_LAST, %eax
	out	%eax, $PORT_U32
	jmp	.

db_endless:
	pushf
	orl	$TF, (%esp)
	popf
5:	jmp	5b

/* CPL0: EIP, CS, EFLAGS. */
db_handler:
	push	%eax
	incl	EXC_DB
	mov	%dr6, %eax
	orl	%eax, EXC_DR6
	xor	%eax, %eax
	mov	%eax, %dr6
	mov	%dr6, %eax
	mov	%eax, EXC_DR6_LAST
	pop	%eax
	iret

	.balign	8
gdt:
	.quad	0
	.quad	0x00cf9b000000ffff	/* KCS */
	.quad	0x00cf93000000ffff	/* KDS */
	.quad	0x00cffb000000ffff	/* UCS */
	.quad	0x00cff3000000ffff	/* UDS */
gdt_end:
gdtr:
	.word	gdt_end - gdt - 1
	.long	gdt
idtr:
	.word	32 * 8 - 1
	.long	EXC_IDT
