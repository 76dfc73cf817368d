// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's FPU: x87 and SSE always, AVX where the host has it.
 *
 * Guest state lives in the registers only while the guest runs, between
 * kernel_fpu_begin() and kernel_fpu_end() (which save and later restore
 * the thread's own state).  With XSAVE the guest gets its own XCR0, limited
 * to x87|SSE|YMM: XCR0 is not switched by VMRUN, so it is loaded right
 * before each entry and the host's put back right after.  XSAVE and XRSTOR
 * run under the host's XCR0, a superset of the guest's, for x87, SSE and
 * what the guest enabled: SSE registers are live whatever XCR0 says, and
 * an image component the current XCR0 lacks would fault XRSTOR.  Hosts
 * without XSAVE keep the FXSAVE image and never offer CR4.OSXSAVE.
 */
#include <linux/slab.h>
#include <linux/log2.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>
#include <asm/fpu/xcr.h>
#include <asm/msr.h>

#include "x86.h"

#define XSAVE_HDR_OFFSET	512	/* after the legacy FXSAVE area */
#define XSAVE_HDR_SIZE		64

static bool fpu_xsave;			/* host has XSAVE and runs with it */
static u64 host_xcr0;			/* constant once the host booted */
static u64 host_xss;			/* IA32_XSS, 0 where no XSAVES */
static u64 guest_xcr0_ok;		/* XCR0 bits a guest may set */
static unsigned int ymm_offset, ymm_size;
static unsigned int fpu_alloc;		/* image allocation, a power of 2 */

/* The standard-format XSAVE size for @xcr0 (x87, SSE, YMM only). */
unsigned int kestrel_fpu_xstate_size(u64 xcr0)
{
	if (xcr0 & XFEATURE_MASK_YMM)
		return ymm_offset + ymm_size;
	return XSAVE_HDR_OFFSET + XSAVE_HDR_SIZE;
}

u64 kestrel_fpu_supported_xcr0(void)
{
	return guest_xcr0_ok;
}

/* Module load: what the host runs with. */
void kestrel_fpu_setup(void)
{
	u32 eax, ebx, ecx, edx;
	unsigned int size = sizeof(struct fxregs_state);

	fpu_xsave = boot_cpu_has(X86_FEATURE_XSAVE) &&
		    boot_cpu_has(X86_FEATURE_OSXSAVE);
	guest_xcr0_ok = 0;
	if (fpu_xsave) {
		host_xcr0 = xgetbv(XCR_XFEATURE_ENABLED_MASK);
		if (boot_cpu_has(X86_FEATURE_XSAVES))
			rdmsrl(MSR_IA32_XSS, host_xss);
		guest_xcr0_ok = host_xcr0 & XFEATURE_MASK_FPSSE;
		cpuid_count(0xd, 2, &eax, &ebx, &ecx, &edx);
		/* AVX needs SSE state, and a sane YMM slot after the header. */
		if ((host_xcr0 & XFEATURE_MASK_YMM) &&
		    boot_cpu_has(X86_FEATURE_AVX) &&
		    guest_xcr0_ok == XFEATURE_MASK_FPSSE &&
		    ebx >= XSAVE_HDR_OFFSET + XSAVE_HDR_SIZE && eax == 256) {
			ymm_offset = ebx;
			ymm_size = eax;
			guest_xcr0_ok |= XFEATURE_MASK_YMM;
		}
		if (!(guest_xcr0_ok & XFEATURE_MASK_FP))
			fpu_xsave = false;	/* cannot happen; be safe */
		size = kestrel_fpu_xstate_size(guest_xcr0_ok);
	}
	if (!fpu_xsave)
		guest_xcr0_ok = 0;
	/* kmalloc aligns power-of-2 sizes naturally: XSAVE wants 64. */
	fpu_alloc = roundup_pow_of_two(size);
}

int kestrel_fpu_vcpu_init(struct kestrel_vcpu *vcpu)
{
	vcpu->arch.guest_fpu = kzalloc(fpu_alloc, GFP_KERNEL_ACCOUNT);
	return vcpu->arch.guest_fpu ? 0 : -ENOMEM;
}

void kestrel_fpu_vcpu_free(struct kestrel_vcpu *vcpu)
{
	kfree(vcpu->arch.guest_fpu);
	vcpu->arch.guest_fpu = NULL;
}

/* Power-on state: FCW 0x37f, MXCSR 0x1f80, XCR0 x87 only. */
void kestrel_fpu_reset(struct kestrel_vcpu *vcpu)
{
	struct fxregs_state *fx = vcpu->arch.guest_fpu;

	memset(fx, 0, fpu_alloc);
	fx->cwd = 0x37f;
	fx->mxcsr = 0x1f80;
	/* XSTATE_BV: take x87 and SSE from the image; XCOMP_BV stays 0. */
	if (fpu_xsave)
		*(u64 *)((u8 *)fx + XSAVE_HDR_OFFSET) = XFEATURE_MASK_FPSSE;
	vcpu->arch.xcr0 = XFEATURE_MASK_FP;
}

/* x87 always, AVX only with SSE, nothing Kestrel does not switch. */
static bool xcr0_valid(u64 val)
{
	return !(val & ~guest_xcr0_ok) && (val & XFEATURE_MASK_FP) &&
	       (!(val & XFEATURE_MASK_YMM) || (val & XFEATURE_MASK_SSE));
}

/* What XSAVE/XRSTOR move: x87 and SSE always, and what XCR0 enables. */
static u32 xsave_mask(struct kestrel_vcpu *vcpu)
{
	return (u32)vcpu->arch.xcr0 | XFEATURE_MASK_FPSSE;
}

/*
 * Before entry: the guest's state into the registers.  The image is only
 * ever written by XSAVE/FXSAVE and kestrel_fpu_reset(), so XRSTOR cannot
 * fault on it.  Preemption stays off until kestrel_fpu_put().
 */
void kestrel_fpu_load(struct kestrel_vcpu *vcpu)
{
	void *img = vcpu->arch.guest_fpu;

	kernel_fpu_begin();
	if (!fpu_xsave) {
		asm volatile("fxrstorq (%0)" : : "r" (img) : "memory");
		return;
	}
	/*
	 * The guest cannot be kept from executing XSAVES/XRSTORS, which use
	 * IA32_XSS: zero it so no host supervisor state is reachable.
	 */
	if (host_xss)
		wrmsrl(MSR_IA32_XSS, 0);
	asm volatile("xrstor64 (%0)"
		     : : "r" (img), "a" (xsave_mask(vcpu)), "d" (0)
		     : "memory");
	if (vcpu->arch.xcr0 != host_xcr0)
		xsetbv(XCR_XFEATURE_ENABLED_MASK, vcpu->arch.xcr0);
}

/* After the exit: save the guest's state, give the host back its own. */
void kestrel_fpu_put(struct kestrel_vcpu *vcpu)
{
	void *img = vcpu->arch.guest_fpu;

	if (!fpu_xsave) {
		asm volatile("fxsaveq (%0)" : : "r" (img) : "memory");
	} else {
		/*
		 * An XSETBV that did not exit (QEMU's emulated SVM has no
		 * such intercept) must not be undone by the next entry: keep
		 * what the guest set if it is a value it could have set.
		 */
		u64 cur = xgetbv(XCR_XFEATURE_ENABLED_MASK);

		if (unlikely(cur != vcpu->arch.xcr0) && xcr0_valid(cur))
			vcpu->arch.xcr0 = cur;
		/* Whatever the guest left there, the host gets its own. */
		if (cur != host_xcr0)
			xsetbv(XCR_XFEATURE_ENABLED_MASK, host_xcr0);
		asm volatile("xsave64 (%0)"
			     : : "r" (img), "a" (xsave_mask(vcpu)), "d" (0)
			     : "memory");
		if (host_xss)
			wrmsrl(MSR_IA32_XSS, host_xss);
	}
	kernel_fpu_end();
}

/* The guest's CPL as the CPU sees it. */
static int kestrel_guest_cpl(struct kestrel_vcpu *vcpu)
{
	struct kestrel_segment ss;

	if (!(kestrel_backend->get_cr(vcpu, 0) & X86_CR0_PE))
		return 0;
	if (vcpu->arch.rflags & X86_EFLAGS_VM)
		return 3;
	kestrel_backend->get_seg(vcpu, KSEG_SS, &ss);
	return ss.dpl;
}

/*
 * XSETBV (intercepted: XCR0 belongs to the host while Kestrel runs).
 * Returns -1 when the instruction completed, else the vector to raise:
 * #UD without CR4.OSXSAVE; #GP(0) outside CPL 0, for an XCR other than
 * XCR0, without x87, for AVX without SSE, or for any bit not offered.
 */
int kestrel_fpu_xsetbv(struct kestrel_vcpu *vcpu, u32 index, u64 val)
{
	if (!fpu_xsave || !(kestrel_backend->get_cr(vcpu, 4) & X86_CR4_OSXSAVE))
		return X86_TRAP_UD;
	if (kestrel_guest_cpl(vcpu) != 0 || index != 0 || !xcr0_valid(val))
		return X86_TRAP_GP;
	vcpu->arch.xcr0 = val;
	return -1;
}
