/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A Multiboot v1 test kernel for boot_test (ELF32, linked at 1 MiB by
 * multiboot.lds).  It checks EAX, then writes to COM1, polling its LSR:
 *
 *   multiboot ok: <cmdline>
 *   mem_upper=<KiB> mmap=<bytes> mods=<count>
 *
 * and then does what the command line's first word says:
 *   rtc     print "rtc <status B> <year> <month>\n" (CMOS, hex), exit 0x21
 *   reset   pulse the i8042 reset line (command 0xfe to port 0x64)
 *   other   leave through the debug exit port with 0x21 (status 0x43)
 * A bad EAX prints "bad magic" and exits with 0x11 (status 0x23).
 * Built with -DAOUT_KLUDGE, the header also carries the load addresses.
 */
#define MB_MAGIC	0x1badb002
#ifdef AOUT_KLUDGE
#define MB_FLAGS	0x00010003	/* page align, memory info, a.out */
#else
#define MB_FLAGS	0x00000003
#endif
#define COM1		0x3f8
#define DEBUG_EXIT	0xf4

	.code32
	.section .multiboot, "a"
	.balign	4
mb_header:
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)
#ifdef AOUT_KLUDGE
	.long	mb_header		/* header_addr */
	.long	__image_start		/* load_addr */
	.long	__data_end		/* load_end_addr */
	.long	__bss_end		/* bss_end_addr */
	.long	_start			/* entry_addr */
#endif

	.text
	.globl	_start
_start:
	mov	$stack_top, %esp
	cmp	$0x2badb002, %eax
	jne	bad_magic
	mov	%ebx, %ebp			/* the info structure */

	mov	$s_ok, %esi
	call	puts
	testl	$(1 << 2), (%ebp)		/* cmdline present? */
	jz	1f
	mov	16(%ebp), %esi
	call	puts
1:	mov	$s_mem, %esi
	call	puts
	mov	8(%ebp), %eax
	call	putdec
	mov	$s_mmap, %esi
	call	puts
	xor	%eax, %eax
	testl	$(1 << 6), (%ebp)
	jz	2f
	mov	44(%ebp), %eax
2:	call	putdec
	mov	$s_mods, %esi
	call	puts
	xor	%eax, %eax
	testl	$(1 << 3), (%ebp)
	jz	3f
	mov	20(%ebp), %eax
3:	call	putdec
	mov	$'\n', %al
	call	putc

	/* the command line's first word picks the ending */
	testl	$(1 << 2), (%ebp)
	jz	exit_ok
	mov	16(%ebp), %esi
	cmpw	$0x7472, (%esi)			/* "rt" */
	jne	1f
	cmpb	$'c', 2(%esi)
	je	rtc
1:
	cmpl	$0x65736572, (%esi)		/* "rese" */
	jne	exit_ok
	cmpb	$'t', 4(%esi)
	jne	exit_ok
	mov	$0xfe, %al
	out	%al, $0x64
	jmp	hang

rtc:
	mov	$s_rtc, %esi
	call	puts
	mov	$0x0b, %al			/* status B */
	call	cmos_hex
	mov	$0x09, %al			/* year */
	call	cmos_hex
	mov	$0x08, %al			/* month */
	call	cmos_hex
	mov	$'\n', %al
	call	putc
exit_ok:
	mov	$0x21, %al
	out	%al, $DEBUG_EXIT
hang:
	hlt
	jmp	hang

bad_magic:
	mov	$s_bad, %esi
	call	puts
	mov	$0x11, %al
	out	%al, $DEBUG_EXIT
	jmp	hang

/* " " then CMOS register %al in two hex digits */
cmos_hex:
	push	%eax
	mov	$' ', %al
	call	putc
	pop	%eax
	out	%al, $0x70
	in	$0x71, %al
	push	%eax
	shr	$4, %al
	call	puthex
	pop	%eax
	and	$0xf, %al
puthex:
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	putc
	add	$('a' - '0' - 10), %al
	/* fall through */
/* %al to COM1 once the transmitter is empty */
putc:
	push	%edx
	push	%eax
	mov	$(COM1 + 5), %dx
1:	in	%dx, %al
	test	$0x20, %al
	jz	1b
	pop	%eax
	mov	$COM1, %dx
	out	%al, %dx
	pop	%edx
	ret

/* the NUL-terminated string at %esi */
puts:
	lodsb
	test	%al, %al
	jz	1f
	call	putc
	jmp	puts
1:	ret

/* %eax in decimal */
putdec:
	mov	$10, %ecx
	xor	%ebx, %ebx			/* digits pushed */
1:	xor	%edx, %edx
	div	%ecx
	push	%edx
	inc	%ebx
	test	%eax, %eax
	jnz	1b
2:	pop	%eax
	add	$'0', %al
	call	putc
	dec	%ebx
	jnz	2b
	ret

	.section .rodata
s_ok:	.asciz	"multiboot ok: "
s_mem:	.asciz	"\nmem_upper="
s_mmap:	.asciz	" mmap="
s_mods:	.asciz	" mods="
s_rtc:	.asciz	"rtc"
s_bad:	.asciz	"bad magic\n"

	.bss
	.balign	16
	.skip	4096
stack_top:

	.section .note.GNU-stack, "", @progbits
