/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Real mode: run CPUID for each (leaf, subleaf) pair of u32s listed at
 * GUEST_DATA, up to a CPUID_LIST_END leaf, and OUT EAX, EBX, ECX, EDX.
 * SI walks the list: CPUID overwrites EAX-EDX.
 */
#include "guest.h"

	.code16
	.section .text.start, "ax"
	.globl	start
start:
	mov	$GUEST_DATA, %si
1:	mov	(%si), %eax
	cmp	$CPUID_LIST_END, %eax
	je	2f
	mov	4(%si), %ecx
	cpuid
	out	%eax, $PORT_U32
	mov	%ebx, %eax
	out	%eax, $PORT_U32
	mov	%ecx, %eax
	out	%eax, $PORT_U32
	mov	%edx, %eax
	out	%eax, $PORT_U32
	add	$8, %si
	jmp	1b
2:	hlt
3:	jmp	3b
