/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Real-mode demo guest: print a greeting on COM1, polling its line status
 * register like a real driver, then halt.
 *
 * Position independent (no relocations), so it runs at any --load address
 * below 64 KiB with CS = 0:  kestrel run --flat hello.bin
 */
#define COM1_DATA	0x3f8
#define COM1_LSR	0x3fd
#define LSR_THRE	0x20

	.code16
	.text
	.globl	_start
_start:
	/* Find the message relative to where we were loaded. */
	call	1f
1:	pop	%si
	add	$(msg - 1b), %si
	push	%cs
	pop	%ds
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
