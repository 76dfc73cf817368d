/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Long-mode demo guest: the same greeting from 64-bit code, then halt.
 *
 * RIP-relative, so it runs at any --load address the launcher's identity
 * map covers:  kestrel run --mode long --flat hello64.bin
 */
#define COM1_DATA	0x3f8
#define COM1_LSR	0x3fd
#define LSR_THRE	0x20

	.code64
	.text
	.globl	_start
_start:
	lea	msg(%rip), %rsi
	cld

next:
	lodsb
	test	%al, %al
	jz	done
	mov	%al, %bl
	mov	$COM1_LSR, %dx
wait:
	in	%dx, %al
	test	$LSR_THRE, %al
	jz	wait
	mov	$COM1_DATA, %dx
	mov	%bl, %al
	out	%al, %dx
	jmp	next

done:
	hlt
	jmp	done

msg:
	.asciz	"Hello from a Kestrel guest!\n"

	.section .note.GNU-stack, "", @progbits
