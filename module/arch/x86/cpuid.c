// SPDX-License-Identifier: GPL-2.0
/*
 * CPUID as guests see it.  The supported table is the host's CPUID passed
 * through an allow-list: a feature reaches a guest only when Kestrel
 * virtualizes what it implies (state switched, MSRs handled, control bits
 * accepted).  Userspace may replace a vCPU's table; the hardware filters in
 * x86.c do not depend on it, so a lying table cannot unlock anything.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/processor.h>
#include <asm/fpu/types.h>
#include <asm/msr-index.h>
#include <asm/tsc.h>

#include "x86.h"

bool kestrel_host_has_nx, kestrel_host_has_fsgsbase;
bool kestrel_host_has_smep, kestrel_host_has_smap;
unsigned int kestrel_host_phys_bits;

static struct kestrel_cpuid_entry *supported;
static int nr_supported;

/* Leaf 1 EDX: FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE CMOV
 * PAT PSE36 CLFSH MMX FXSR SSE SSE2.  Not: MCA, HTT, ACPI, TM, PBE.  The
 * APIC bit follows APIC_BASE.EN at run time (kestrel_cpuid_emulate).
 */
#define LEAF1_EDX	0x078bbbffU
#define LEAF1_EDX_APIC	BIT(9)
/* Emulated in software (lapic.c, msr.c): offered whatever the host has. */
#define LEAF1_EDX_SOFT	(LEAF1_EDX_APIC | BIT(12))
#define LEAF1_ECX_SOFT	(BIT(21) | BIT(24))
/* Leaf 1 ECX: SSE3 PCLMULQDQ SSSE3 CX16 SSE4.1 SSE4.2 x2APIC MOVBE POPCNT
 * TSC-deadline AES RDRAND (x2APIC, TSC-deadline: lapic.c).  Not: MONITOR,
 * VMX, SMX, PCID.  The XSAVE family (LEAF1_ECX_AVX) needs fpu.c's XCR0;
 * OSXSAVE mirrors the guest's CR4 at run time.
 */
#define LEAF1_ECX	0x43f82203U
#define LEAF1_ECX_OSXSAVE	BIT(27)
/* FMA, XSAVE, AVX, F16C: only with YMM state in the guest's XCR0. */
#define LEAF1_ECX_AVX	(BIT(12) | BIT(26) | BIT(28) | BIT(29))
#define LEAF1_ECX_XSAVE	BIT(26)
/* Leaf 6 EAX: ARAT (the emulated APIC timer never stops). */
#define LEAF6_EAX	BIT(2)
/* Leaf 7.0 EBX: FSGSBASE BMI1 SMEP BMI2 ERMS RDSEED ADX SMAP CLFLUSHOPT SHA */
#define LEAF7_EBX	0x209c0389U
#define LEAF7_EBX_AVX2	BIT(5)
/* Leaf 0xD.1 EAX: XSAVEOPT XSAVEC XGETBV1.  Not XSAVES: IA32_XSS. */
#define LEAFD1_EAX	0x7U
/* 0x80000001 ECX: LAHF/SAHF, ABM, SSE4A, MisAlignSSE, 3DNowPrefetch. */
#define EXT1_ECX	0x000001e1U
/* 0x80000001 EDX: leaf-1 mirrors, SYSCALL, NX, MMXEXT, 1G pages, LM,
 * 3DNow!.  Not: RDTSCP (TSC_AUX not virtualized), FFXSR.
 */
#define EXT1_EDX	((LEAF1_EDX & 0x0183f3ffU) | 0xe4500800U)

#define SIG_EBX		0x7473654b	/* "Kest" */
#define SIG_ECX		0x566c6572	/* "relV" */
#define SIG_EDX		0x00004d4d	/* "MM\0\0" */
#define KESTREL_MAX_LEAF	0x40000010	/* timing: TSC and APIC kHz */
/* KVM's paravirtual block, one 0x100 step up (Linux scans for it). */
#define KVM_BASE	0x40000100
#define KVM_SIG_EBX	0x4b4d564b	/* "KVMK" */
#define KVM_SIG_ECX	0x564b4d56	/* "VMKV" */
#define KVM_SIG_EDX	0x0000004d	/* "M\0\0\0" */

static void add(u32 fn, u32 idx, u32 flags, u32 a, u32 b, u32 c, u32 d)
{
	struct kestrel_cpuid_entry *e = &supported[nr_supported++];

	e->function = fn;
	e->index = idx;
	e->flags = flags;
	e->eax = a;
	e->ebx = b;
	e->ecx = c;
	e->edx = d;
}

int kestrel_cpuid_init(void)
{
	u32 a, b, c, d, max, ext_max, fn, ecx_ok = LEAF1_ECX, ebx7_ok = LEAF7_EBX;
	u64 xcr0;

	kestrel_fpu_setup();
	xcr0 = kestrel_fpu_supported_xcr0();
	if (xcr0 & XFEATURE_MASK_YMM) {
		ecx_ok |= LEAF1_ECX_AVX;
		ebx7_ok |= LEAF7_EBX_AVX2;
	} else if (xcr0) {
		ecx_ok |= LEAF1_ECX_XSAVE;
	}

	kestrel_host_has_nx = boot_cpu_has(X86_FEATURE_NX);
	kestrel_host_has_fsgsbase = boot_cpu_has(X86_FEATURE_FSGSBASE);
	kestrel_host_has_smep = boot_cpu_has(X86_FEATURE_SMEP);
	kestrel_host_has_smap = boot_cpu_has(X86_FEATURE_SMAP);
	kestrel_host_phys_bits = boot_cpu_data.x86_phys_bits;

	supported = kcalloc(KESTREL_MAX_CPUID, sizeof(*supported), GFP_KERNEL);
	if (!supported)
		return -ENOMEM;

	cpuid(0, &max, &b, &c, &d);
	max = min(max, xcr0 ? 0xdU : 7U);
	add(0, 0, 0, max, b, c, d);

	cpuid(1, &a, &b, &c, &d);
	/* One logical processor per package; APIC id filled per vCPU. */
	add(1, 0, 0, a, (b & 0xffff) | (1 << 16),
	    (c & ecx_ok) | LEAF1_ECX_SOFT | BIT(31),
	    (d & LEAF1_EDX) | LEAF1_EDX_SOFT);

	if (max >= 6)
		add(6, 0, 0, LEAF6_EAX, 0, 0, 0);

	if (max >= 7) {
		cpuid_count(7, 0, &a, &b, &c, &d);
		add(7, 0, KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX, 0,
		    b & ebx7_ok, 0, 0);
	}

	if (max >= 0xd) {
		/* Sizes for XCR0 = x87 (reset); EBX follows XCR0 at run time. */
		add(0xd, 0, KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX, (u32)xcr0,
		    kestrel_fpu_xstate_size(XFEATURE_MASK_FP),
		    kestrel_fpu_xstate_size(xcr0), 0);
		cpuid_count(0xd, 1, &a, &b, &c, &d);
		add(0xd, 1, KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX,
		    a & LEAFD1_EAX, kestrel_fpu_xstate_size(XFEATURE_MASK_FP),
		    0, 0);
		if (xcr0 & XFEATURE_MASK_YMM) {
			cpuid_count(0xd, 2, &a, &b, &c, &d);
			add(0xd, 2, KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX,
			    a, b, 0, 0);
		}
	}

	add(0x40000000, 0, 0, KESTREL_MAX_LEAF, SIG_EBX, SIG_ECX, SIG_EDX);
	/* EAX: TSC kHz (the host's: no scaling); EBX: APIC timer kHz. */
	add(0x40000010, 0, 0, tsc_khz, KESTREL_APIC_BUS_KHZ, 0, 0);
	add(KVM_BASE, 0, 0, KVM_BASE + 1, KVM_SIG_EBX, KVM_SIG_ECX,
	    KVM_SIG_EDX);
	add(KVM_BASE + 1, 0, 0, KESTREL_KVM_FEATURE_CLOCKSOURCE2 |
	    KESTREL_KVM_FEATURE_STABLE_BIT, 0, 0, 0);

	cpuid(0x80000000, &ext_max, &b, &c, &d);
	ext_max = min(ext_max, 0x80000008U);
	add(0x80000000, 0, 0, ext_max, b, c, d);
	for (fn = 0x80000001; fn <= ext_max; fn++) {
		cpuid(fn, &a, &b, &c, &d);
		switch (fn) {
		case 0x80000001:
			add(fn, 0, 0, a, b, c & EXT1_ECX, d & EXT1_EDX);
			break;
		case 0x80000002 ... 0x80000006:	/* brand, caches */
			add(fn, 0, 0, a, b, c, d);
			break;
		case 0x80000008:
			/* Address sizes only; guest-physical is capped. */
			a = (a & 0xff00) | min(a & 0xff, (u32)KESTREL_GPA_BITS);
			add(fn, 0, 0, a, 0, 0, 0);
			break;
		}
	}
	return 0;
}

void kestrel_cpuid_exit(void)
{
	kfree(supported);
}

void kestrel_cpuid_default(struct kestrel_vcpu *vcpu)
{
	int i;

	memcpy(vcpu->arch.cpuid, supported, nr_supported * sizeof(*supported));
	vcpu->arch.nr_cpuid = nr_supported;
	for (i = 0; i < nr_supported; i++)
		if (vcpu->arch.cpuid[i].function == 1)
			vcpu->arch.cpuid[i].ebx |= vcpu->id << 24;
}

static const struct kestrel_cpuid_entry *
kestrel_cpuid_find(struct kestrel_vcpu *vcpu, u32 fn, u32 idx)
{
	int i;

	for (i = 0; i < vcpu->arch.nr_cpuid; i++) {
		const struct kestrel_cpuid_entry *e = &vcpu->arch.cpuid[i];

		if (e->function == fn &&
		    (!(e->flags & KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX) ||
		     e->index == idx))
			return e;
	}
	return NULL;
}

/*
 * The guest executed CPUID (RIP already past it): answer from the table,
 * with the bits hardware computes from the vCPU's state: OSXSAVE from
 * CR4, APIC from APIC_BASE.EN, and XSAVE sizes from XCR0.
 */
void kestrel_cpuid_emulate(struct kestrel_vcpu *vcpu)
{
	unsigned long *g = vcpu->arch.regs;
	const struct kestrel_cpuid_entry *e;
	u32 fn = g[KREG_RAX], idx = g[KREG_RCX];
	u32 a = 0, b = 0, c = 0, d = 0;

	e = kestrel_cpuid_find(vcpu, fn, idx);
	/* Absent leaves read as zeros, as on AMD. */
	if (e) {
		a = e->eax;
		b = e->ebx;
		c = e->ecx;
		d = e->edx;
	}
	if (e && fn == 1) {
		c &= ~LEAF1_ECX_OSXSAVE;
		if ((c & LEAF1_ECX_XSAVE) &&
		    (kestrel_call(get_cr)(vcpu, 4) & X86_CR4_OSXSAVE))
			c |= LEAF1_ECX_OSXSAVE;
		if (!(vcpu->arch.apic_base & MSR_IA32_APICBASE_ENABLE))
			d &= ~LEAF1_EDX_APIC;
	}
	if (e && fn == 0xd && (idx == 0 || idx == 1) &&
	    kestrel_fpu_supported_xcr0())
		b = kestrel_fpu_xstate_size(vcpu->arch.xcr0);
	g[KREG_RAX] = a;
	g[KREG_RBX] = b;
	g[KREG_RCX] = c;
	g[KREG_RDX] = d;
}

/* MAXPHYADDR as the guest's CPUID reports it (36 without leaf 0x80000008). */
unsigned int kestrel_cpuid_guest_phys_bits(struct kestrel_vcpu *vcpu)
{
	const struct kestrel_cpuid_entry *e;
	unsigned int bits = 36;

	e = kestrel_cpuid_find(vcpu, 0x80000000, 0);
	if (e && e->eax >= 0x80000008) {
		e = kestrel_cpuid_find(vcpu, 0x80000008, 0);
		if (e)
			bits = e->eax & 0xff;
	}
	/* A table from userspace may say anything: keep it architectural. */
	return clamp(bits, 32U, 52U);
}

/* Copy a table out: E2BIG, with the count needed, when it does not fit. */
static long kestrel_cpuid_copy_out(struct kestrel_cpuid __user *uarg,
				   const struct kestrel_cpuid_entry *tab,
				   u32 n)
{
	struct kestrel_cpuid hdr;

	if (copy_from_user(&hdr, uarg, sizeof(hdr)))
		return -EFAULT;
	if (hdr.padding)
		return -EINVAL;
	if (hdr.nent < n) {
		hdr.nent = n;
		return copy_to_user(uarg, &hdr, sizeof(hdr)) ? -EFAULT : -E2BIG;
	}
	hdr.nent = n;
	if (copy_to_user(uarg->entries, tab, n * sizeof(*tab)) ||
	    copy_to_user(uarg, &hdr, sizeof(hdr)))
		return -EFAULT;
	return 0;
}

long kestrel_cpuid_get_supported(struct kestrel_cpuid __user *uarg)
{
	return kestrel_cpuid_copy_out(uarg, supported, nr_supported);
}

long kestrel_cpuid_get(struct kestrel_vcpu *vcpu,
		       struct kestrel_cpuid __user *uarg)
{
	return kestrel_cpuid_copy_out(uarg, vcpu->arch.cpuid,
				      vcpu->arch.nr_cpuid);
}

long kestrel_cpuid_set(struct kestrel_vcpu *vcpu,
		       struct kestrel_cpuid __user *uarg)
{
	struct kestrel_cpuid_entry *tab;
	struct kestrel_cpuid hdr;
	u32 i, j;
	long r = 0;

	if (copy_from_user(&hdr, uarg, sizeof(hdr)))
		return -EFAULT;
	if (hdr.padding)
		return -EINVAL;
	if (hdr.nent > KESTREL_MAX_CPUID)
		return -E2BIG;

	tab = kcalloc(max(hdr.nent, 1U), sizeof(*tab), GFP_KERNEL_ACCOUNT);
	if (!tab)
		return -ENOMEM;
	if (copy_from_user(tab, uarg->entries, hdr.nent * sizeof(*tab))) {
		r = -EFAULT;
		goto out;
	}
	for (i = 0; i < hdr.nent; i++) {
		if ((tab[i].flags & ~KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX) ||
		    tab[i].padding) {
			r = -EINVAL;
			goto out;
		}
		if (!(tab[i].flags & KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX))
			tab[i].index = 0;
		for (j = 0; j < i; j++)
			if (tab[j].function == tab[i].function &&
			    tab[j].index == tab[i].index) {
				r = -EINVAL;
				goto out;
			}
	}
	memcpy(vcpu->arch.cpuid, tab, hdr.nent * sizeof(*tab));
	vcpu->arch.nr_cpuid = hdr.nent;
out:
	kfree(tab);
	return r;
}
