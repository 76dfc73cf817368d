// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's FPU: x87 and SSE always, AVX where the host has it.
 *
 * Where the host kernel lends its guest-FPU API (KESTREL_HAVE_FPU_GUEST:
 * CONFIG_KVM, 5.16+), the guest's state is an fpstate of the host's own
 * kind, swapped in as the vCPU thread's FPU state once per RUN ioctl and
 * out before it returns: exits handled in the kernel cost no XSAVE or
 * XRSTOR at all.  The thread stays preemptible: a context switch saves the
 * registers into the guest's fpstate like any task's, a kernel_fpu_begin()
 * between two entries does the same, and the entry reloads them
 * (switch_fpu_return()) when TIF_NEED_FPU_LOAD says they are gone.
 * Elsewhere the state is an image of our own, loaded between
 * kernel_fpu_begin() and kernel_fpu_end() around each entry.
 *
 * The guest gets its own XCR0, limited to x87|SSE|YMM.  VMRUN does not
 * switch XCR0, so the guest's goes in with interrupts off right before the
 * entry and the host's comes back right after: every XSAVE and XRSTOR of
 * the guest's state runs under the host's XCR0, a superset of the guest's.
 * IA32_XSS is zero while the guest runs (it cannot be kept from XSAVES).
 * Hosts without XSAVE keep FXSAVE state and never offer CR4.OSXSAVE.
 */
#include <linux/slab.h>
#include <linux/log2.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>
#include <asm/fpu/xcr.h>
#include <asm/msr.h>

#include "x86.h"

/* A build that checks the fallback compiles defines KESTREL_NO_FPU_GUEST. */
#if defined(KESTREL_HAVE_FPU_GUEST) && !defined(KESTREL_NO_FPU_GUEST)
#define FPU_GUEST	1
#else
#define FPU_GUEST	0
#endif

#define XSAVE_HDR_OFFSET	512	/* after the legacy FXSAVE area */
#define XSAVE_HDR_SIZE		64

static bool fpu_xsave;			/* host has XSAVE and runs with it */
static u64 host_xcr0;			/* constant once the host booted */
static u64 host_xss;			/* IA32_XSS, 0 where no XSAVES */
static u64 guest_xcr0_ok;		/* XCR0 bits a guest may set */
static unsigned int ymm_offset, ymm_size;
static unsigned int fpu_alloc;		/* image allocation, a power of 2 */

static void fpu_setup_mode(void);

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
	fpu_setup_mode();
}

/* Power-on state: FCW 0x37f, MXCSR 0x1f80, x87 and SSE in XSTATE_BV. */
static void fpu_reset_image(void *img, size_t size)
{
	struct fxregs_state *fx = img;

	memset(img, 0, size);
	fx->cwd = 0x37f;
	fx->mxcsr = 0x1f80;
	/* XSTATE_BV: take x87 and SSE from the image; XCOMP_BV stays 0. */
	if (fpu_xsave)
		*(u64 *)((u8 *)img + XSAVE_HDR_OFFSET) = XFEATURE_MASK_FPSSE;
}

/* x87 always, AVX only with SSE, nothing Kestrel does not switch. */
static bool xcr0_valid(u64 val)
{
	return !(val & ~guest_xcr0_ok) && (val & XFEATURE_MASK_FP) &&
	       (!(val & XFEATURE_MASK_YMM) || (val & XFEATURE_MASK_SSE));
}

#if FPU_GUEST

/*
 * The power-on state in the standard (uABI) format, which the host
 * converts to its own, maybe compacted, one; big enough for any uABI.
 */
static u8 fpu_reset_uabi[4096] __aligned(64) __ro_after_init;

static void fpu_setup_mode(void)
{
	fpu_reset_image(fpu_reset_uabi, sizeof(fpu_reset_uabi));
}

static struct fpu_guest *guest_fpu(struct kestrel_vcpu *vcpu)
{
	return vcpu->arch.guest_fpu;
}

int kestrel_fpu_vcpu_init(struct kestrel_vcpu *vcpu)
{
	struct fpu_guest *g = kzalloc(sizeof(*g), GFP_KERNEL_ACCOUNT);

	if (!g)
		return -ENOMEM;
	if (!fpu_alloc_guest_fpstate(g)) {
		kfree(g);
		return -ENOMEM;
	}
	vcpu->arch.guest_fpu = g;
	return 0;
}

void kestrel_fpu_vcpu_free(struct kestrel_vcpu *vcpu)
{
	struct fpu_guest *g = guest_fpu(vcpu);

	if (g) {
		fpu_free_guest_fpstate(g);
		kfree(g);
	}
	vcpu->arch.guest_fpu = NULL;
}

/*
 * A RESET during RUN (a shutdown, an INIT) finds the state in the thread:
 * out, reset in memory, back in.  Interrupts are on (the swap takes the
 * host's fpregs lock, which disables bottom halves).
 */
static void fpu_reset_state(struct kestrel_vcpu *vcpu)
{
	struct fpu_guest *g = guest_fpu(vcpu);
	bool in_use = vcpu->arch.fpu_in_use;
	u32 pkru = 0;

	if (in_use)
		fpu_swap_kvm_fpstate(g, false);
	/* Cannot fail: x87 and SSE only, a valid MXCSR. */
	WARN_ON_ONCE(fpu_copy_uabi_to_guest_fpstate(g, fpu_reset_uabi,
						    XFEATURE_MASK_FPSSE, &pkru));
	if (in_use)
		fpu_swap_kvm_fpstate(g, true);
}

/* RUN, before the first entry and after the last exit (x86.c). */
void kestrel_fpu_run_begin(struct kestrel_vcpu *vcpu)
{
	fpu_swap_kvm_fpstate(guest_fpu(vcpu), true);
	vcpu->arch.fpu_in_use = true;
}

void kestrel_fpu_run_end(struct kestrel_vcpu *vcpu)
{
	fpu_swap_kvm_fpstate(guest_fpu(vcpu), false);
	vcpu->arch.fpu_in_use = false;
}

/* The registers went to the guest's fpstate since the last entry? */
static void fpu_load_regs(struct kestrel_vcpu *vcpu)
{
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
}

static void fpu_save_regs(struct kestrel_vcpu *vcpu)
{
}

#else /* !FPU_GUEST: an image of our own, loaded around each entry */

static void fpu_setup_mode(void)
{
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

static void fpu_reset_state(struct kestrel_vcpu *vcpu)
{
	fpu_reset_image(vcpu->arch.guest_fpu, fpu_alloc);
}

void kestrel_fpu_run_begin(struct kestrel_vcpu *vcpu)
{
}

void kestrel_fpu_run_end(struct kestrel_vcpu *vcpu)
{
}

/* What XSAVE/XRSTOR move: x87 and SSE always, and what XCR0 enables. */
static u32 xsave_mask(struct kestrel_vcpu *vcpu)
{
	return (u32)vcpu->arch.xcr0 | XFEATURE_MASK_FPSSE;
}

/*
 * kernel_fpu_begin() saves the thread's own state; the image is only ever
 * written by XSAVE/FXSAVE and fpu_reset_image(), so XRSTOR cannot fault
 * on it.
 */
static void fpu_load_regs(struct kestrel_vcpu *vcpu)
{
	void *img = vcpu->arch.guest_fpu;

	kernel_fpu_begin();
	if (!fpu_xsave)
		asm volatile("fxrstorq (%0)" : : "r" (img) : "memory");
	else
		asm volatile("xrstor64 (%0)"
			     : : "r" (img), "a" (xsave_mask(vcpu)), "d" (0)
			     : "memory");
}

/* After the host's XCR0 is back: the image, then the thread's state. */
static void fpu_save_regs(struct kestrel_vcpu *vcpu)
{
	void *img = vcpu->arch.guest_fpu;

	if (!fpu_xsave)
		asm volatile("fxsaveq (%0)" : : "r" (img) : "memory");
	else
		asm volatile("xsave64 (%0)"
			     : : "r" (img), "a" (xsave_mask(vcpu)), "d" (0)
			     : "memory");
	kernel_fpu_end();
}

#endif /* FPU_GUEST */

/* Power-on state: FCW 0x37f, MXCSR 0x1f80, XCR0 x87 only. */
void kestrel_fpu_reset(struct kestrel_vcpu *vcpu)
{
	fpu_reset_state(vcpu);
	vcpu->arch.xcr0 = XFEATURE_MASK_FP;
}

/*
 * Right before the entry, interrupts off (x86.c): the guest's registers,
 * then its XCR0, and no IA32_XSS (the guest cannot be kept from executing
 * XSAVES/XRSTORS: no host supervisor state may be reachable).
 */
void kestrel_fpu_enter_irqoff(struct kestrel_vcpu *vcpu)
{
	lockdep_assert_irqs_disabled();
	fpu_load_regs(vcpu);
	if (!fpu_xsave)
		return;
	if (host_xss)
		wrmsrl(MSR_IA32_XSS, 0);
	if (vcpu->arch.xcr0 != host_xcr0)
		xsetbv(XCR_XFEATURE_ENABLED_MASK, vcpu->arch.xcr0);
}

/* Right after the exit, interrupts still off: the host's XCR0 and XSS. */
void kestrel_fpu_exit_irqoff(struct kestrel_vcpu *vcpu)
{
	lockdep_assert_irqs_disabled();
	if (fpu_xsave) {
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
		if (host_xss)
			wrmsrl(MSR_IA32_XSS, host_xss);
	}
	fpu_save_regs(vcpu);
}

/* The guest's CPL as the CPU sees it. */
static int kestrel_guest_cpl(struct kestrel_vcpu *vcpu)
{
	struct kestrel_segment ss;

	if (!(kestrel_call(get_cr)(vcpu, 0) & X86_CR0_PE))
		return 0;
	if (vcpu->arch.rflags & X86_EFLAGS_VM)
		return 3;
	kestrel_call(get_seg)(vcpu, KSEG_SS, &ss);
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
	if (!fpu_xsave || !(kestrel_call(get_cr)(vcpu, 4) & X86_CR4_OSXSAVE))
		return X86_TRAP_UD;
	if (kestrel_guest_cpl(vcpu) != 0 || index != 0 || !xcr0_valid(val))
		return X86_TRAP_GP;
	vcpu->arch.xcr0 = val;
	return -1;
}
