/* SPDX-License-Identifier: GPL-2.0 */
/* Bench guests: one flat image linked at BG_LOAD, .text.start first. */
#include "bench.h"

OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)
ENTRY(start)

SECTIONS
{
	. = BG_LOAD;
	.text : {
		*(.text.start)
		*(.text .text.*)
		*(.rodata .rodata.*)
		*(.data .data.*)
	}
	/DISCARD/ : { *(.note*) *(.comment) *(.eh_frame*) }
}
