// SPDX-License-Identifier: GPL-2.0
/*
 * MSRs Kestrel emulates beyond the few x86.c keeps with the backend
 * (EFER, PAT) and the local APIC's: the TSC, MTRRs, and the model-specific
 * registers a Linux guest reads at boot without a fault handler.  Each
 * answers like a quiet machine: values a guest may read, and only the
 * writes that change nothing real.  Everything else is "unknown" and goes
 * by the VM's MSR policy (#GP, or an exit to userspace).
 *
 * All state is per vCPU, in vcpu->arch.msrs, under vcpu->mutex; the TSC
 * offset is also read locklessly by kestrel_x86_guest_tsc() (local APIC
 * timers), hence the READ_ONCE/WRITE_ONCE.
 */
#include <asm/msr-index.h>
#include <asm/tsc.h>

#include "x86.h"

/* Not in every kernel's msr-index.h, or under other names. */
#define KMSR_MTRRCAP		0x000000fe
#define KMSR_MTRR_DEFTYPE	0x000002ff
#define KMSR_MTRR_VAR_BASE	0x00000200
#define KMSR_MTRR_FIX_64K	0x00000250
#define KMSR_MTRR_FIX_16K_80000	0x00000258
#define KMSR_MTRR_FIX_16K_A0000	0x00000259
#define KMSR_MTRR_FIX_4K_C0000	0x00000268	/* ... 0x26f */
#define KMSR_PATCH_LEVEL	0x0000008b	/* Intel: BIOS_SIGN_ID */
#define KMSR_MISC_ENABLE	0x000001a0
#define KMSR_AMD_SYSCFG		0xc0010010
#define KMSR_AMD_HWCR		0xc0010015
#define KMSR_AMD_NB_CFG		0xc001001f
#define KMSR_AMD_DE_CFG		0xc0011029

#define MTRR_NR_VAR		8
#define MTRRCAP_FIX		BIT_ULL(8)
#define MTRRCAP_WC		BIT_ULL(10)
#define MTRR_DEF_FE		BIT_ULL(10)
#define MTRR_DEF_E		BIT_ULL(11)
#define MTRR_MASK_VALID		BIT_ULL(11)
#define MTRR_TYPE_WB		6

#define HWCR_TSC_FREQ_SEL	BIT_ULL(24)	/* TSC counts at P0 */
/* Writes that only flip these are accepted and change nothing. */
#define HWCR_IGNORED		(BIT_ULL(3) | BIT_ULL(6) | BIT_ULL(8))
#define NB_CFG_CF8_EXT		BIT_ULL(46)	/* extended config via 0xCF8 */
#define DE_CFG_LFENCE_SERIAL	BIT_ULL(1)
#define MISC_ENABLE_FAST_STRING	BIT_ULL(0)
#define MISC_ENABLE_BTS_UNAVAIL	BIT_ULL(11)
#define MISC_ENABLE_PEBS_UNAVAIL BIT_ULL(12)

/* UC, WC, WT, WP, WB: the MTRR memory types (2, 3 and 7+ are reserved). */
static bool mtrr_type_ok(u8 t)
{
	return t == 0 || t == 1 || t == 4 || t == 5 || t == 6;
}

static bool mtrr_fixed_ok(u64 v)
{
	int i;

	for (i = 0; i < 8; i++)
		if (!mtrr_type_ok(v >> (i * 8)))
			return false;
	return true;
}

/* Index into msrs.mtrr_fixed[] for a fixed-range MTRR, or -1. */
static int mtrr_fixed_index(u32 msr)
{
	switch (msr) {
	case KMSR_MTRR_FIX_64K:
		return 0;
	case KMSR_MTRR_FIX_16K_80000:
		return 1;
	case KMSR_MTRR_FIX_16K_A0000:
		return 2;
	case KMSR_MTRR_FIX_4K_C0000 ... KMSR_MTRR_FIX_4K_C0000 + 7:
		return 3 + msr - KMSR_MTRR_FIX_4K_C0000;
	}
	return -1;
}

/* Physical-address bits above what the guest's CPUID reports. */
static u64 guest_pa_reserved(struct kestrel_vcpu *vcpu)
{
	return ~GENMASK_ULL(kestrel_cpuid_guest_phys_bits(vcpu) - 1, 0);
}

static void kestrel_set_tsc_offset(struct kestrel_vcpu *vcpu, s64 offset)
{
	WRITE_ONCE(vcpu->arch.msrs.tsc_offset, offset);
	kestrel_call(set_tsc_offset)(vcpu, offset);
}

/*
 * Power-on values, as firmware would leave them for an OS: MTRRs on with
 * everything write-back (memory types are the host's business under
 * nested paging; these are only what the guest reads back), and the TSC
 * on the VM's timeline, which starts near 0 with the VM's first vCPU.
 */
void kestrel_msr_reset(struct kestrel_vcpu *vcpu)
{
	struct kestrel_msrs *m = &vcpu->arch.msrs;
	struct kestrel_vm *vm = vcpu->vm;
	u64 base = READ_ONCE(vm->arch.tsc_base);
	int i;

	if (!base) {
		cmpxchg64(&vm->arch.tsc_base, 0, rdtsc());
		base = READ_ONCE(vm->arch.tsc_base);
	}
	kestrel_set_tsc_offset(vcpu, -(s64)base);

	m->mtrr_deftype = MTRR_DEF_E | MTRR_DEF_FE | MTRR_TYPE_WB;
	for (i = 0; i < ARRAY_SIZE(m->mtrr_fixed); i++)
		m->mtrr_fixed[i] = 0x0606060606060606ULL;
	memset(m->mtrr_var, 0, sizeof(m->mtrr_var));
	m->misc_enable = MISC_ENABLE_FAST_STRING | MISC_ENABLE_BTS_UNAVAIL |
			 MISC_ENABLE_PEBS_UNAVAIL;
	m->nb_cfg = 0;
	m->tsc_aux = 0;
	kestrel_pvclock_reset(vcpu);
	vcpu->arch.msr_exit.pending = false;
}

/* The TSC as the guest reads it; any context (local APIC timers). */
u64 kestrel_x86_guest_tsc(struct kestrel_vcpu *vcpu)
{
	return rdtsc() + READ_ONCE(vcpu->arch.msrs.tsc_offset);
}

/* 0: done; -1: #GP; -ENOENT: not an MSR Kestrel emulates. */
int kestrel_msr_get(struct kestrel_vcpu *vcpu, u32 msr, u64 *val)
{
	struct kestrel_msrs *m = &vcpu->arch.msrs;
	int i;

	switch (msr) {
	case MSR_IA32_TSC:
		*val = kestrel_x86_guest_tsc(vcpu);
		return 0;
	case KMSR_MTRRCAP:
		*val = MTRR_NR_VAR | MTRRCAP_FIX | MTRRCAP_WC;
		return 0;
	case KMSR_MTRR_DEFTYPE:
		*val = m->mtrr_deftype;
		return 0;
	case KMSR_MTRR_VAR_BASE ... KMSR_MTRR_VAR_BASE + 2 * MTRR_NR_VAR - 1:
		*val = m->mtrr_var[msr - KMSR_MTRR_VAR_BASE];
		return 0;
	case KMSR_MTRR_FIX_64K:
	case KMSR_MTRR_FIX_16K_80000:
	case KMSR_MTRR_FIX_16K_A0000:
	case KMSR_MTRR_FIX_4K_C0000 ... KMSR_MTRR_FIX_4K_C0000 + 7:
		i = mtrr_fixed_index(msr);
		*val = m->mtrr_fixed[i];
		return 0;
	case KMSR_MISC_ENABLE:
		*val = m->misc_enable;
		return 0;
	case KMSR_PATCH_LEVEL:
		*val = 0;		/* no microcode revision to report */
		return 0;
	case KMSR_AMD_HWCR:
		*val = HWCR_TSC_FREQ_SEL;
		return 0;
	case KMSR_AMD_SYSCFG:
		*val = 0;		/* no SME, no TOM2 tricks, MTRR fix bits clear */
		return 0;
	case KMSR_AMD_NB_CFG:
		*val = m->nb_cfg;
		return 0;
	case KMSR_AMD_DE_CFG:
		*val = DE_CFG_LFENCE_SERIAL;
		return 0;
	case KESTREL_MSR_KVM_SYSTEM_TIME:
		*val = m->kvm_system_time;
		return 0;
	case KESTREL_MSR_KVM_WALL_CLOCK:
		*val = m->kvm_wall_clock;
		return 0;
	case MSR_TSC_AUX:
		*val = m->tsc_aux;
		return 0;
	}
	return -ENOENT;
}

int kestrel_msr_set(struct kestrel_vcpu *vcpu, u32 msr, u64 val)
{
	struct kestrel_msrs *m = &vcpu->arch.msrs;
	u64 rsvd;
	int i;

	switch (msr) {
	case MSR_IA32_TSC:
		kestrel_set_tsc_offset(vcpu, val - rdtsc());
		/* kvmclock pairs TSC values with times: tell it. */
		kestrel_pvclock_update(vcpu);
		return 0;
	case KMSR_MTRRCAP:
		return -1;		/* read-only */
	case KMSR_MTRR_DEFTYPE:
		if ((val & ~(MTRR_DEF_E | MTRR_DEF_FE | 0xffULL)) ||
		    !mtrr_type_ok(val))
			return -1;
		m->mtrr_deftype = val;
		return 0;
	case KMSR_MTRR_VAR_BASE ... KMSR_MTRR_VAR_BASE + 2 * MTRR_NR_VAR - 1:
		if (!(msr & 1) && !mtrr_type_ok(val))
			return -1;
		rsvd = guest_pa_reserved(vcpu);
		if (msr & 1)		/* PHYSMASK: 10:0 reserved, 11 valid */
			rsvd |= GENMASK_ULL(10, 0);
		else			/* PHYSBASE: 7:0 type, 11:8 reserved */
			rsvd |= GENMASK_ULL(11, 8);
		if (val & rsvd)
			return -1;
		m->mtrr_var[msr - KMSR_MTRR_VAR_BASE] = val;
		return 0;
	case KMSR_MTRR_FIX_64K:
	case KMSR_MTRR_FIX_16K_80000:
	case KMSR_MTRR_FIX_16K_A0000:
	case KMSR_MTRR_FIX_4K_C0000 ... KMSR_MTRR_FIX_4K_C0000 + 7:
		if (!mtrr_fixed_ok(val))
			return -1;
		i = mtrr_fixed_index(msr);
		m->mtrr_fixed[i] = val;
		return 0;
	case KMSR_MISC_ENABLE:
		/* Only fast strings may change; the rest is read-only. */
		if ((val ^ m->misc_enable) & ~MISC_ENABLE_FAST_STRING)
			return -1;
		m->misc_enable = val;
		return 0;
	case KMSR_PATCH_LEVEL:
		return 0;		/* Intel's "write 0, then read": no effect */
	case KMSR_AMD_HWCR:
		if ((val ^ HWCR_TSC_FREQ_SEL) & ~HWCR_IGNORED)
			return -1;
		return 0;
	case KMSR_AMD_SYSCFG:
		return val ? -1 : 0;
	case KMSR_AMD_NB_CFG:
		/* A guest PCI driver may turn on extended 0xCF8 accesses. */
		if (val & ~NB_CFG_CF8_EXT)
			return -1;
		m->nb_cfg = val;
		return 0;
	case KMSR_AMD_DE_CFG:
		/* Linux sets LFENCE-serializing, which is already on. */
		return (val & ~DE_CFG_LFENCE_SERIAL) ? -1 : 0;
	case KESTREL_MSR_KVM_SYSTEM_TIME:
		return kestrel_pvclock_set_system_time(vcpu, val);
	case KESTREL_MSR_KVM_WALL_CLOCK:
		return kestrel_pvclock_set_wall_clock(vcpu, val);
	case MSR_TSC_AUX:
		/*
		 * The guest's own: what RDPID returns where the backend lets
		 * it run (svm.c loads it around VMRUN).  Bits 63:32 reserved.
		 */
		if (val >> 32)
			return -1;
		m->tsc_aux = val;
		return 0;
	}
	return -ENOENT;
}
