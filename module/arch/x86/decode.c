// SPDX-License-Identifier: GPL-2.0
/*
 * A small x86 instruction decoder: prefixes, REX, opcode maps, ModRM/SIB,
 * displacement and immediate sizes, operand size.  Without NRIP-save and
 * decode assists Kestrel must find the length and operands of an
 * intercepted instruction itself, and the operands of a guest access to
 * MMIO.  It knows only the instructions that can cause the exits Kestrel
 * handles, and refuses everything else: the caller reports the bytes to
 * userspace instead of stepping over something it does not understand.
 */
#include <linux/errno.h>

#include "x86.h"

/* ModRM, SIB and displacement: how many bytes from b[i] on. */
static int modrm_len(const u8 *b, int i, int avail, int ad_bits,
		     struct kestrel_insn *insn)
{
	int start = i, mod, rm;

	if (i >= avail)
		return -EINVAL;
	insn->modrm = b[i++];
	insn->has_modrm = true;
	mod = insn->modrm >> 6;
	rm = insn->modrm & 7;
	insn->mem = mod != 3;
	if (mod == 3)
		return i - start;

	if (ad_bits == 16) {
		if (mod == 1)
			i += 1;
		else if (mod == 2 || (mod == 0 && rm == 6))
			i += 2;
		return i - start;
	}
	if (rm == 4) {				/* SIB */
		if (i >= avail)
			return -EINVAL;
		if (mod == 0 && (b[i] & 7) == 5)
			i += 4;			/* no base: disp32 */
		i++;
	}
	if (mod == 1)
		i += 1;
	else if (mod == 2 || (mod == 0 && rm == 5))
		i += 4;				/* 64-bit: RIP-relative */
	return i - start;
}

static int imm(const u8 *b, int i, int avail, int size, s64 *val)
{
	if (i + size > avail)
		return -EINVAL;
	switch (size) {
	case 1:
		*val = (s8)b[i];
		break;
	case 2:
		*val = (s16)(b[i] | b[i + 1] << 8);
		break;
	default:
		*val = (s32)(b[i] | b[i + 1] << 8 | b[i + 2] << 16 |
			     (u32)b[i + 3] << 24);
		break;
	}
	return size;
}

/*
 * One-byte opcodes: HLT (F4), IN/OUT (E4-E7, EC-EF), INS/OUTS (6C-6F) and,
 * for MMIO, MOV r/m,r (88, 89), MOV r,r/m (8A, 8B), MOV r/m,imm (C6, C7),
 * MOV AL/eAX,moffs and back (A0-A3).
 * Two-byte (0F xx): WRMSR 30, RDTSC 31, RDMSR 32, RDPMC 33, CPUID A2,
 * INVD 08, WBINVD 09, MOV CR/DR 20-23, and for MMIO MOVZX B6/B7, MOVSX
 * BE/BF.  0F 01 group 7 with a register ModRM: VMRUN D8, VMMCALL D9,
 * VMLOAD DA, VMSAVE DB, STGI DC, CLGI DD, SKINIT DE, INVLPGA DF, MONITOR
 * C8, MWAIT C9, XSETBV D1, RDTSCP F9.
 */
int kestrel_decode(const u8 *b, int avail, int mode_bits,
		   struct kestrel_insn *insn)
{
	int i = 0, n, ad_bits, op_bits;

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

	if (mode_bits == 64)
		ad_bits = insn->adsize ? 32 : 64;
	else
		ad_bits = (mode_bits == 16) ^ insn->adsize ? 16 : 32;
	if (insn->rex & 8)
		op_bits = 64;
	else if (mode_bits == 16)
		op_bits = insn->opsize ? 32 : 16;
	else
		op_bits = insn->opsize ? 16 : 32;
	insn->op_bytes = op_bits / 8;

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
		case 0xa0 ... 0xa3:		/* MOV AL/eAX <-> moffs */
			i += ad_bits / 8;
			insn->mem = true;	/* operand register: eAX */
			if (!(insn->opcode & 1))
				insn->op_bytes = 1;
			break;
		case 0x88 ... 0x8b:		/* MOV */
		case 0xc6: case 0xc7:		/* MOV imm */
			n = modrm_len(b, i, avail, ad_bits, insn);
			if (n < 0)
				return n;
			i += n;
			if ((insn->opcode & 0xfe) == 0xc6) {
				if ((insn->modrm >> 3) & 7)
					return -EINVAL;	/* /0 only */
				n = imm(b, i, avail, insn->opcode == 0xc6 ? 1 :
					min(insn->op_bytes, (u8)4), &insn->imm);
				if (n < 0)
					return n;
				i += n;
			}
			if (!(insn->opcode & 1))
				insn->op_bytes = 1;
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
	case 0xb6: case 0xb7:			/* MOVZX */
	case 0xbe: case 0xbf:			/* MOVSX */
		n = modrm_len(b, i, avail, ad_bits, insn);
		if (n < 0)
			return n;
		i += n;
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
