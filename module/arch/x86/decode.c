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
		return -ENODATA;
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
			return -ENODATA;
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
		return -ENODATA;
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
 * for MMIO: the ALU forms with a ModRM operand (00-3B: ADD OR ADC SBB AND
 * SUB XOR CMP), group 1 with immediates (80, 81, 83), TEST (84, 85), XCHG
 * (86, 87), MOV (88-8B, C6, C7, A0-A3), MOVS/STOS/LODS (A4, A5, AA-AD),
 * group 3 TEST/NOT/NEG (F6, F7 /0 /2 /3) and INC/DEC (FE, FF /0 /1).
 * Two-byte (0F xx): WRMSR 30, RDTSC 31, RDMSR 32, RDPMC 33, CPUID A2,
 * INVD 08, WBINVD 09, MOV CR/DR 20-23, and for MMIO MOVZX B6/B7, MOVSX
 * BE/BF, BT/BTS/BTR/BTC A3/AB/B3/BB and BA /4-7.  0F 01 group 7 with a
 * register ModRM: VMRUN D8, VMMCALL D9, VMLOAD DA, VMSAVE DB, STGI DC,
 * CLGI DD, SKINIT DE, INVLPGA DF, MONITOR C8, MWAIT C9, XSETBV D1, RDTSCP
 * F9.
 *
 * Returns -ENODATA when the bytes ran out before the instruction did (the
 * caller may have stopped fetching at an unmapped page), -EINVAL for an
 * encoding this decoder does not know.
 */
int kestrel_decode(const u8 *b, int avail, int mode_bits,
		   struct kestrel_insn *insn)
{
	int i = 0, n, ad_bits, op_bits, reg, imm_size = 0;

	*insn = (struct kestrel_insn){ 0 };

	/* Legacy prefixes, at most 14 before the opcode. */
	for (; i < avail && i < 14; i++) {
		switch (b[i]) {
		case 0x66:
			insn->opsize = true;
			continue;
		case 0x67:
			insn->adsize = true;
			continue;
		case 0xf3:
			insn->rep = true;
			continue;
		case 0xf2:
			insn->repne = true;
			continue;
		case 0xf0:
			insn->lock = true;
			continue;
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
		return -ENODATA;

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
			goto done;
		case 0xe4 ... 0xe7:		/* IN/OUT imm8 */
			i++;
			goto done;
		case 0xa0 ... 0xa3:		/* MOV AL/eAX <-> moffs */
			i += ad_bits / 8;
			insn->mem = true;	/* operand register: eAX */
			goto byte_form;
		case 0xa4: case 0xa5:		/* MOVS */
		case 0xaa ... 0xad:		/* STOS, LODS */
			insn->mem = true;	/* operands: rSI, rDI, eAX */
			goto byte_form;
		case 0x00 ... 0x3f:		/* ALU with ModRM: xx0-xx3 */
			if ((insn->opcode & 7) > 3)
				return -EINVAL;
			break;
		case 0x84 ... 0x8b:		/* TEST, XCHG, MOV */
			break;
		case 0x80: case 0x83:		/* group 1, imm8 */
			imm_size = 1;
			break;
		case 0x81:			/* group 1, imm16/32 */
		case 0xc7:			/* MOV imm16/32 */
			imm_size = min(insn->op_bytes, (u8)4);
			break;
		case 0xc6:			/* MOV imm8 */
			imm_size = 1;
			break;
		case 0xf6: case 0xf7:		/* group 3 */
		case 0xfe: case 0xff:		/* group 4/5 */
			break;
		default:
			return -EINVAL;
		}
		n = modrm_len(b, i, avail, ad_bits, insn);
		if (n < 0)
			return n;
		i += n;
		reg = (insn->modrm >> 3) & 7;
		switch (insn->opcode) {
		case 0xc6: case 0xc7:
			if (reg)
				return -EINVAL;	/* /0 only */
			break;
		case 0xf6: case 0xf7:
			/* TEST imm (/0), NOT (/2), NEG (/3); not MUL/DIV. */
			if (reg == 0)
				imm_size = insn->opcode == 0xf6 ? 1 :
					   min(insn->op_bytes, (u8)4);
			else if (reg != 2 && reg != 3)
				return -EINVAL;
			break;
		case 0xfe: case 0xff:
			if (reg > 1)
				return -EINVAL;	/* INC, DEC only */
			break;
		}
		if (imm_size) {
			n = imm(b, i, avail, imm_size, &insn->imm);
			if (n < 0)
				return n;
			i += n;
		}
		/* 83 is the odd one: a byte immediate on a full operand. */
		if (insn->opcode == 0x83)
			goto done;
		goto byte_form;
	}

	if (++i >= avail)
		return -ENODATA;
	insn->map = 1;
	insn->opcode = b[i++];
	switch (insn->opcode) {
	case 0x08: case 0x09:			/* INVD, WBINVD */
	case 0x30 ... 0x33:			/* WRMSR RDTSC RDMSR RDPMC */
	case 0xa2:				/* CPUID */
		goto done;
	case 0x20 ... 0x23:			/* MOV CR/DR: always a register */
		if (i >= avail)
			return -ENODATA;
		insn->modrm = b[i++];
		insn->has_modrm = true;
		goto done;
	case 0xb6: case 0xb7:			/* MOVZX */
	case 0xbe: case 0xbf:			/* MOVSX */
	case 0xa3: case 0xab:			/* BT, BTS */
	case 0xb3: case 0xbb:			/* BTR, BTC */
		n = modrm_len(b, i, avail, ad_bits, insn);
		if (n < 0)
			return n;
		i += n;
		goto done;
	case 0xba:				/* group 8: BT* imm8 */
		n = modrm_len(b, i, avail, ad_bits, insn);
		if (n < 0)
			return n;
		i += n;
		if (((insn->modrm >> 3) & 7) < 4)
			return -EINVAL;
		n = imm(b, i, avail, 1, &insn->imm);
		if (n < 0)
			return n;
		i += n;
		goto done;
	case 0x01:				/* group 7 */
		if (i >= avail)
			return -ENODATA;
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

byte_form:
	/* In these one-byte opcodes, bit 0 clear selects the byte form. */
	if (!(insn->opcode & 1))
		insn->op_bytes = 1;
done:
	if (i > 15)
		return -EINVAL;
	if (i > avail)
		return -ENODATA;
	insn->len = i;
	return 0;
}
