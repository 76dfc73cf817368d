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

#include "x86.h"

bool kestrel_host_has_nx, kestrel_host_has_fsgsbase,
     kestrel_host_has_smep, kestrel_host_has_smap;
unsigned int kestrel_host_phys_bits;

static struct kestrel_cpuid_entry *supported;
static int nr_supported;

/* Leaf 1 EDX: FPU VME DE PSE TSC MSR PAE MCE CX8 SEP PGE CMOV PAT PSE36
 * CLFSH MMX FXSR SSE SSE2.  Not: APIC, MTRR, MCA, HTT, ACPI, TM, PBE. */
#define LEAF1_EDX	0x078ba9ffU
/* Leaf 1 ECX: SSE3 PCLMULQDQ SSSE3 CX16 SSE4.1 SSE4.2 MOVBE POPCNT AES
 * RDRAND.  Not: MONITOR, VMX, SMX, PCID, x2APIC, TSC-deadline, XSAVE,
 * OSXSAVE, AVX, F16C, FMA (the last five need XSAVE state switching). */
#define LEAF1_ECX	0x42d82203U
/* Leaf 7.0 EBX: FSGSBASE BMI1 SMEP BMI2 ERMS RDSEED ADX SMAP CLFLUSHOPT SHA */
#define LEAF7_EBX	0x209c0389U
/* 0x80000001 ECX: LAHF/SAHF, ABM, SSE4A, MisAlignSSE, 3DNowPrefetch. */
#define EXT1_ECX	0x000001e1U
/* 0x80000001 EDX: leaf-1 mirrors, SYSCALL, NX, MMXEXT, 1G pages, LM,
 * 3DNow!.  Not: RDTSCP (TSC_AUX not virtualized), FFXSR. */
#define EXT1_EDX	((LEAF1_EDX & 0x0183f3ffU) | 0xe4500800U)

#define SIG_EBX		0x7473654b	/* "Kest" */
#define SIG_ECX		0x566c6572	/* "relV" */
#define SIG_EDX		0x00004d4d	/* "MM\0\0" */

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
	u32 a, b, c, d, max, ext_max, fn;

	kestrel_host_has_nx = boot_cpu_has(X86_FEATURE_NX);
	kestrel_host_has_fsgsbase = boot_cpu_has(X86_FEATURE_FSGSBASE);
	kestrel_host_has_smep = boot_cpu_has(X86_FEATURE_SMEP);
	kestrel_host_has_smap = boot_cpu_has(X86_FEATURE_SMAP);
	kestrel_host_phys_bits = boot_cpu_data.x86_phys_bits;

	supported = kcalloc(KESTREL_MAX_CPUID, sizeof(*supported), GFP_KERNEL);
	if (!supported)
		return -ENOMEM;

	cpuid(0, &max, &b, &c, &d);
	max = min(max, 7U);
	add(0, 0, 0, max, b, c, d);

	cpuid(1, &a, &b, &c, &d);
	/* One logical processor per package; APIC id filled per vCPU. */
	add(1, 0, 0, a, (b & 0xffff) | (1 << 16),
	    (c & LEAF1_ECX) | BIT(31), d & LEAF1_EDX);

	if (max >= 7) {
		cpuid_count(7, 0, &a, &b, &c, &d);
		add(7, 0, KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX, 0,
		    b & LEAF7_EBX, 0, 0);
	}

	add(0x40000000, 0, 0, 0x40000000, SIG_EBX, SIG_ECX, SIG_EDX);

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

/* The guest executed CPUID (RIP already past it): answer from the table. */
void kestrel_cpuid_emulate(struct kestrel_vcpu *vcpu)
{
	unsigned long *g = vcpu->arch.regs;
	const struct kestrel_cpuid_entry *e;

	e = kestrel_cpuid_find(vcpu, g[KREG_RAX], g[KREG_RCX]);
	/* Absent leaves read as zeros, as on AMD. */
	g[KREG_RAX] = e ? e->eax : 0;
	g[KREG_RBX] = e ? e->ebx : 0;
	g[KREG_RCX] = e ? e->ecx : 0;
	g[KREG_RDX] = e ? e->edx : 0;
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
