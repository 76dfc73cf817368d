// SPDX-License-Identifier: GPL-2.0
/*
 * A small x86 instruction decoder: prefixes, opcode maps, ModRM/SIB,
 * displacement and immediate sizes.  Without NRIP-save (and on VMX for
 * operands) Kestrel must find the length and operands of an intercepted
 * instruction itself.  It decodes the instructions that can cause the
 * exits Kestrel handles and refuses everything else: the caller reports
 * the bytes to userspace instead of stepping over something unknown.
 */
#include <linux/errno.h>

#include "x86.h"

/*
 * One-byte opcodes we accept: HLT (F4), IN/OUT (E4-E7, EC-EF), INS/OUTS
 * (6C-6F).  Two-byte (0F xx): WRMSR 30, RDTSC 31, RDMSR 32, RDPMC 33,
 * CPUID A2, INVD 08, WBINVD 09, MOV CR/DR 20-23 (ModRM).  0F 01 group 7
 * with a register ModRM: VMRUN D8, VMMCALL D9, VMLOAD DA, VMSAVE DB,
 * STGI DC, CLGI DD, SKINIT DE, INVLPGA DF, MONITOR C8, MWAIT C9,
 * XSETBV D1, RDTSCP F9.
 */
int kestrel_decode(const u8 *b, int avail, int mode_bits,
		   struct kestrel_insn *insn)
{
	int i = 0;

	*insn = (struct kestrel_insn){ 0 };

	/* Legacy prefixes, at most 14 before the opcode. */
	for (; i < avail && i < 14; i++) {
		switch (b[i]) {
		case 0x66: insn->opsize = true; continue;
		case 0x67: insn->adsize = true; continue;
		case 0xf3: insn->rep = true; continue;
		case 0xf2: insn->repne = true; continue;
		case 0xf0: insn->lock = true; continue;
		case 0x26: case 0x2e: case 0x36: case 0x3e:
		case 0x64: case 0x65:
			continue;
		}
		break;
	}
	/* REX only counts immediately before the opcode, in 64-bit mode. */
	if (mode_bits == 64 && i < avail && (b[i] & 0xf0) == 0x40)
		insn->rex = b[i++];
	if (i >= avail)
		return -EINVAL;

	if (b[i] != 0x0f) {
		insn->opcode = b[i++];
		switch (insn->opcode) {
		case 0xf4:			/* HLT */
		case 0x6c ... 0x6f:		/* INS/OUTS */
		case 0xec ... 0xef:		/* IN/OUT DX */
			break;
		case 0xe4 ... 0xe7:		/* IN/OUT imm8 */
			i++;
			break;
		default:
			return -EINVAL;
		}
		goto done;
	}

	if (++i >= avail)
		return -EINVAL;
	insn->map = 1;
	insn->opcode = b[i++];
	switch (insn->opcode) {
	case 0x08: case 0x09:			/* INVD, WBINVD */
	case 0x30 ... 0x33:			/* WRMSR RDTSC RDMSR RDPMC */
	case 0xa2:				/* CPUID */
		goto done;
	case 0x20 ... 0x23:			/* MOV CR/DR: always a register */
		if (i >= avail)
			return -EINVAL;
		insn->modrm = b[i++];
		insn->has_modrm = true;
		goto done;
	case 0x01:				/* group 7 */
		if (i >= avail)
			return -EINVAL;
		insn->map = 2;
		insn->modrm = b[i++];
		insn->has_modrm = true;
		insn->opcode = insn->modrm;
		switch (insn->modrm) {
		case 0xc8: case 0xc9: case 0xd1:
		case 0xd8 ... 0xdf: case 0xf9:
			goto done;
		}
		return -EINVAL;
	default:
		return -EINVAL;
	}
done:
	if (i > 15 || i > avail)
		return -EINVAL;
	insn->len = i;
	return 0;
}
