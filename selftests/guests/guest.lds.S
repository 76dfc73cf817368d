/* SPDX-License-Identifier: GPL-2.0 */
/* Selftest guests: one flat image linked at GUEST_LOAD, .text.start first. */
#include "guest.h"

OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)
ENTRY(start)

SECTIONS
{
	. = GUEST_LOAD;
	.text : {
		*(.text.start)
		*(.text .text.*)
		*(.rodata .rodata.*)
		*(.data .data.*)
		*(.bss .bss.*)
	}
	/DISCARD/ : { *(.note*) *(.comment) *(.eh_frame*) }
}
