// SPDX-License-Identifier: GPL-2.0
/*
 * x86 common code: the arch interface the core calls, validation of state
 * coming from userspace, and the handling of exits in architectural terms.
 * Backends (svm.c) report exits; this file decides what they mean.
 */
#include <linux/module.h>
#include <linux/sched/clock.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/apicdef.h>
#include <asm/debugreg.h>
#include <asm/fpu/api.h>
#include <asm/msr-index.h>
#include <asm/processor-flags.h>

#include "x86.h"
#include "lapic.h"
#include "emulate.h"

const struct kestrel_backend_ops *kestrel_backend;

#define KESTREL_X86_CALL(op)						\
	DEFINE_STATIC_CALL_NULL(kestrel_x86_##op,			\
				*(typeof_member(struct kestrel_backend_ops, op))NULL)
#include "x86_calls.h"

/*
 * Module load, once the backend is chosen: each call site made direct.
 * One line per op of x86_calls.h (an op left out would stay NULL).
 */
static void kestrel_x86_bind_calls(const struct kestrel_backend_ops *ops)
{
	static_call_update(kestrel_x86_vcpu_reset, ops->vcpu_reset);
	static_call_update(kestrel_x86_get_sregs, ops->get_sregs);
	static_call_update(kestrel_x86_set_sregs, ops->set_sregs);
	static_call_update(kestrel_x86_get_cr, ops->get_cr);
	static_call_update(kestrel_x86_set_cr4, ops->set_cr4);
	static_call_update(kestrel_x86_get_efer, ops->get_efer);
	static_call_update(kestrel_x86_set_efer, ops->set_efer);
	static_call_update(kestrel_x86_get_pat, ops->get_pat);
	static_call_update(kestrel_x86_set_pat, ops->set_pat);
	static_call_update(kestrel_x86_get_seg, ops->get_seg);
	static_call_update(kestrel_x86_set_cr2, ops->set_cr2);
	static_call_update(kestrel_x86_set_cr8, ops->set_cr8);
	static_call_update(kestrel_x86_set_tsc_offset, ops->set_tsc_offset);
	static_call_update(kestrel_x86_interrupt_allowed, ops->interrupt_allowed);
	static_call_update(kestrel_x86_inject_irq, ops->inject_irq);
	static_call_update(kestrel_x86_set_irq_window, ops->set_irq_window);
	static_call_update(kestrel_x86_cancel_exception, ops->cancel_exception);
	static_call_update(kestrel_x86_prepare_run, ops->prepare_run);
	static_call_update(kestrel_x86_run, ops->run);
}

const u32 kestrel_guest_owned_msrs[KESTREL_NR_GUEST_OWNED_MSRS] = {
	MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE,
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK,
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
};

const char *const kestrel_arch_exit_names[KESTREL_ARCH_NR_EXITS] = {
	[X86_EXIT_NONE]			= "interrupt",
	[X86_EXIT_CPUID]		= "cpuid",
	[X86_EXIT_HLT]			= "hlt",
	[X86_EXIT_IO]			= "io",
	[X86_EXIT_RDMSR]		= "rdmsr",
	[X86_EXIT_WRMSR]		= "wrmsr",
	[X86_EXIT_CR_WRITE]		= "cr_write",
	[X86_EXIT_DR_ACCESS]		= "dr_access",
	[X86_EXIT_NPF]			= "npf",
	[X86_EXIT_SHUTDOWN]		= "shutdown",
	[X86_EXIT_UD]			= "ud",
	[X86_EXIT_GP]			= "gp",
	[X86_EXIT_SKIP]			= "nop_insn",
	[X86_EXIT_ENTRY_FAILED]		= "entry_failed",
	[X86_EXIT_EVENT_DELIVERY]	= "event_delivery",
	[X86_EXIT_IRQ_WINDOW]		= "irq_window",
	[X86_EXIT_XSETBV]		= "xsetbv",
	[X86_EXIT_EXC_DB]		= "exc_db",
	[X86_EXIT_EXC_AC]		= "exc_ac",
	[X86_EXIT_STATE_LOST]		= "state_lost",
	[X86_EXIT_UNHANDLED]		= "unhandled",
};

/* ---- load time --------------------------------------------------------- */

int kestrel_arch_init(void)
{
	int r;

	r = kestrel_lapic_selfcheck();
	if (r)
		return r;
	r = kestrel_cpuid_init();
	if (r)
		return r;

	if (boot_cpu_data.x86_vendor == X86_VENDOR_AMD ||
	    boot_cpu_data.x86_vendor == X86_VENDOR_HYGON) {
		kestrel_backend = &kestrel_svm_ops;
	} else if (boot_cpu_data.x86_vendor == X86_VENDOR_INTEL ||
		   boot_cpu_data.x86_vendor == X86_VENDOR_ZHAOXIN ||
		   boot_cpu_data.x86_vendor == X86_VENDOR_CENTAUR) {
		kestrel_backend = &kestrel_vmx_ops;
	} else {
		kestrel_err("no supported virtualization extension on this CPU vendor\n");
		return -ENODEV;
	}

	r = kestrel_backend->probe();
	if (r)
		return r;
	kestrel_x86_bind_calls(kestrel_backend);
	r = kestrel_backend->hardware_setup();
	if (r)
		return r;
	kestrel_npt_setup();
	return 0;
}

const char *kestrel_arch_backend_name(void)
{
	return kestrel_backend->name;
}

void kestrel_arch_exit(void)
{
	kestrel_backend->hardware_unsetup();
	kestrel_cpuid_exit();
}

int kestrel_arch_cpu_enable(void)
{
	lockdep_assert_irqs_disabled();
	return kestrel_backend->cpu_enable();
}

void kestrel_arch_cpu_disable(void)
{
	lockdep_assert_irqs_disabled();
	kestrel_backend->cpu_disable();
}

long kestrel_arch_check_cap(unsigned long cap)
{
	switch (cap) {
	case KESTREL_CAP_BACKEND:
		return kestrel_backend->backend_id;
	case KESTREL_CAP_MAX_CPUID:
		return KESTREL_MAX_CPUID;
	case KESTREL_CAP_NR_ASIDS:
		return kestrel_backend->nr_asids();
	case KESTREL_CAP_IRQCHIP:
	case KESTREL_CAP_MSR_POLICY:
		return 1;
	case KESTREL_CAP_TSC_KHZ:
		return tsc_khz;
	default:
		return 0;
	}
}

long kestrel_arch_dev_ioctl(unsigned int ioctl, unsigned long arg)
{
	switch (ioctl) {
	case KESTREL_GET_SUPPORTED_CPUID:
		return kestrel_cpuid_get_supported((void __user *)arg);
	default:
		return -ENOTTY;
	}
}

/* ---- VM ------------------------------------------------------------------ */

int kestrel_arch_vm_init(struct kestrel_vm *vm)
{
	return kestrel_npt_init(vm);
}

void kestrel_arch_vm_destroy(struct kestrel_vm *vm)
{
	kestrel_npt_destroy(vm);
}

static int kestrel_x86_create_irqchip(struct kestrel_vm *vm)
{
	int r = 0;

	mutex_lock(&vm->lock);
	if (vm->arch.irqchip)
		r = -EEXIST;
	else if (vm->nr_vcpus || vm->creating_vcpus)
		r = -EBUSY;	/* vCPUs would have no APIC */
	else
		WRITE_ONCE(vm->arch.irqchip, true);
	mutex_unlock(&vm->lock);
	return r;
}

static int kestrel_x86_set_msr_policy(struct kestrel_vm *vm,
				      unsigned long policy)
{
	if (policy != KESTREL_MSR_POLICY_GP && policy != KESTREL_MSR_POLICY_EXIT)
		return -EINVAL;
	WRITE_ONCE(vm->arch.msr_policy, policy);
	return 0;
}

long kestrel_arch_vm_ioctl(struct kestrel_vm *vm, unsigned int ioctl,
			   unsigned long arg)
{
	switch (ioctl) {
	case KESTREL_CREATE_IRQCHIP:
		return arg ? -EINVAL : kestrel_x86_create_irqchip(vm);
	case KESTREL_SIGNAL_MSI: {
		struct kestrel_msi msi;

		if (copy_from_user(&msi, (void __user *)arg, sizeof(msi)))
			return -EFAULT;
		return kestrel_lapic_deliver_msi(vm, &msi);
	}
	case KESTREL_SET_MSR_POLICY:
		return kestrel_x86_set_msr_policy(vm, arg);
	default:
		return -ENOTTY;
	}
}

/* ---- vCPU ---------------------------------------------------------------- */

static void kestrel_x86_reset(struct kestrel_vcpu *vcpu)
{
	struct kestrel_arch_vcpu *a = &vcpu->arch;

	memset(a->regs, 0, sizeof(a->regs));
	/* EDX at RESET: family/model/stepping, as CPUID leaf 1 EAX. */
	a->regs[KREG_RDX] = boot_cpu_data.x86 << 8 | boot_cpu_data.x86_model << 4;
	a->rip = 0xfff0;
	a->rflags = X86_EFLAGS_FIXED;
	memset(a->db, 0, sizeof(a->db));
	a->dr6 = 0xffff0ff0;
	a->dr7 = 0x400;
	a->exception.pending = false;
	a->pio_in_size = 0;
	kestrel_emulate_cancel(vcpu);
	/* Other vCPUs' senders read it (lapic.c). */
	WRITE_ONCE(a->apic_base, 0xfee00000 | MSR_IA32_APICBASE_ENABLE |
		   (vcpu->id == 0 ? MSR_IA32_APICBASE_BSP : 0));

	kestrel_fpu_reset(vcpu);

	a->mp_state = KESTREL_MP_STATE_RUNNABLE;

	kestrel_call(vcpu_reset)(vcpu);
	kestrel_msr_reset(vcpu);
	kestrel_lapic_reset(vcpu);
}

int kestrel_arch_vcpu_init(struct kestrel_vcpu *vcpu)
{
	struct kestrel_arch_vcpu *a = &vcpu->arch;
	int r;

	a->cpuid = kcalloc(KESTREL_MAX_CPUID, sizeof(*a->cpuid),
			   GFP_KERNEL_ACCOUNT);
	if (!a->cpuid || kestrel_fpu_vcpu_init(vcpu)) {
		r = -ENOMEM;
		goto err;
	}
	kestrel_cpuid_default(vcpu);

	r = kestrel_backend->vcpu_create(vcpu);
	if (r)
		goto err;
	if (READ_ONCE(vcpu->vm->arch.irqchip)) {
		r = kestrel_lapic_create(vcpu);
		if (r) {
			kestrel_backend->vcpu_free(vcpu);
			goto err;
		}
	}
	kestrel_x86_reset(vcpu);
	return 0;
err:
	kestrel_fpu_vcpu_free(vcpu);
	kfree(a->cpuid);
	return r;
}

/* A racing KESTREL_CREATE_IRQCHIP must not leave a vCPU without APIC. */
bool kestrel_arch_vcpu_fits_vm(struct kestrel_vcpu *vcpu)
{
	lockdep_assert_held(&vcpu->vm->lock);
	return vcpu->vm->arch.irqchip == !!vcpu->arch.lapic;
}

void kestrel_arch_vcpu_destroy(struct kestrel_vcpu *vcpu)
{
	kestrel_lapic_free(vcpu);
	kestrel_backend->vcpu_free(vcpu);
	kestrel_npt_cache_free(&vcpu->arch.npt_cache);
	kestrel_fpu_vcpu_free(vcpu);
	kfree(vcpu->arch.cpuid);
}

void kestrel_x86_queue_exception(struct kestrel_vcpu *vcpu, u8 vector,
				 bool has_error, u32 error)
{
	struct kestrel_x86_event *e = &vcpu->arch.exception;

	kestrel_stat_inc(vcpu, injected);
	e->pending = true;
	e->vector = vector;
	/* Real mode pushes no error code, and SVM refuses to inject one. */
	e->has_error = has_error &&
		       (kestrel_call(get_cr)(vcpu, 0) & X86_CR0_PE);
	e->error = error;
}

/*
 * #DB for the guest: its cause bits go to the virtual DR6, where the
 * guest's handler reads them.  B0-B3, BD, BS and BT stay set until the
 * guest clears them, as on hardware.
 */
void kestrel_x86_queue_db(struct kestrel_vcpu *vcpu, u64 cause)
{
	vcpu->arch.dr6 |= cause & (DR_TRAP_BITS | DR_STEP | KESTREL_DR6_BD |
				   KESTREL_DR6_BT);
	kestrel_x86_queue_exception(vcpu, X86_TRAP_DB, false, 0);
}

/* 16, 32 or 64: the default operand/address size of the guest code. */
int kestrel_x86_guest_mode_bits(struct kestrel_vcpu *vcpu)
{
	struct kestrel_segment cs;

	if (!(kestrel_call(get_cr)(vcpu, 0) & X86_CR0_PE) ||
	    (vcpu->arch.rflags & X86_EFLAGS_VM))
		return 16;
	kestrel_call(get_seg)(vcpu, KSEG_CS, &cs);
	if ((kestrel_call(get_efer)(vcpu) & EFER_LMA) && cs.l)
		return 64;
	return cs.db ? 32 : 16;
}

/* ---- registers from userspace ---------------------------------------------- */

#define RFLAGS_RESERVED	(~0x3f7fd7ULL)	/* 63:22, 15, 5, 3, and bit 1 */

/*
 * New registers from userspace void the exception the old ones had
 * pending or in delivery: it belongs to an instruction that is no longer
 * there, and may not even be deliverable in the new mode (an error code
 * in real mode).  An interrupt or NMI in delivery stays: the local APIC
 * has already accepted it, and it is valid in any state.
 */
static void kestrel_x86_void_exception(struct kestrel_vcpu *vcpu)
{
	vcpu->arch.exception.pending = false;
	kestrel_call(cancel_exception)(vcpu);
}

static void kestrel_get_regs(struct kestrel_vcpu *vcpu, struct kestrel_regs *r)
{
	unsigned long *g = vcpu->arch.regs;

	r->rax = g[KREG_RAX]; r->rbx = g[KREG_RBX];
	r->rcx = g[KREG_RCX]; r->rdx = g[KREG_RDX];
	r->rsi = g[KREG_RSI]; r->rdi = g[KREG_RDI];
	r->rsp = g[KREG_RSP]; r->rbp = g[KREG_RBP];
	r->r8 = g[KREG_R8];   r->r9 = g[KREG_R9];
	r->r10 = g[KREG_R10]; r->r11 = g[KREG_R11];
	r->r12 = g[KREG_R12]; r->r13 = g[KREG_R13];
	r->r14 = g[KREG_R14]; r->r15 = g[KREG_R15];
	r->rip = vcpu->arch.rip;
	r->rflags = vcpu->arch.rflags;
}

static int kestrel_set_regs(struct kestrel_vcpu *vcpu,
			    const struct kestrel_regs *r)
{
	unsigned long *g = vcpu->arch.regs;

	if ((r->rflags & RFLAGS_RESERVED) & ~X86_EFLAGS_FIXED)
		return -EINVAL;

	g[KREG_RAX] = r->rax; g[KREG_RBX] = r->rbx;
	g[KREG_RCX] = r->rcx; g[KREG_RDX] = r->rdx;
	g[KREG_RSI] = r->rsi; g[KREG_RDI] = r->rdi;
	g[KREG_RSP] = r->rsp; g[KREG_RBP] = r->rbp;
	g[KREG_R8] = r->r8;   g[KREG_R9] = r->r9;
	g[KREG_R10] = r->r10; g[KREG_R11] = r->r11;
	g[KREG_R12] = r->r12; g[KREG_R13] = r->r13;
	g[KREG_R14] = r->r14; g[KREG_R15] = r->r15;
	vcpu->arch.rip = r->rip;
	vcpu->arch.rflags = r->rflags | X86_EFLAGS_FIXED;
	/* New state from userspace: any completion half-done is void. */
	vcpu->arch.pio_in_size = 0;
	kestrel_emulate_cancel(vcpu);
	vcpu->arch.msr_exit.pending = false;
	kestrel_x86_void_exception(vcpu);
	return 0;
}

/* CR4 bits Kestrel lets a guest have. */
static u64 kestrel_cr4_allowed(void)
{
	u64 ok = X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE |
		 X86_CR4_PSE | X86_CR4_PAE | X86_CR4_MCE | X86_CR4_PGE |
		 X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;

	if (kestrel_host_has_fsgsbase)
		ok |= X86_CR4_FSGSBASE;
	if (kestrel_host_has_smep)
		ok |= X86_CR4_SMEP;
	if (kestrel_host_has_smap)
		ok |= X86_CR4_SMAP;
	/* fpu.c switches XCR0 and the XSAVE state where the host has XSAVE. */
	if (kestrel_fpu_supported_xcr0())
		ok |= X86_CR4_OSXSAVE;
	return ok;
}

static u64 kestrel_efer_allowed(void)
{
	return EFER_SCE | EFER_LME | EFER_LMA |
	       (kestrel_host_has_nx ? EFER_NX : 0);
}

/*
 * EFER.LME with neither paging nor PAE is legal, but of no use (paging
 * can only be turned on from it after PAE, the order the APM's long-mode
 * sequence gives), and QEMU's emulated SVM cannot leave a guest in it:
 * its #VMEXIT restores the host's CR0 while the guest's EFER and CR4 are
 * still loaded, declines to "enter long mode" without PAE, and resumes
 * the host with paging off (a wedged CPU).  So Kestrel never lets a vCPU
 * be in it: SET_SREGS refuses it, the guest's WRMSR and MOV to CR4 that
 * would reach it raise #GP.
 */
static bool kestrel_lme_ok(u64 efer, u64 cr0, u64 cr4)
{
	return !(efer & EFER_LME) || (cr0 & X86_CR0_PG) || (cr4 & X86_CR4_PAE);
}

#define CR0_RESERVED	(~(u64)(X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | \
				X86_CR0_TS | X86_CR0_ET | X86_CR0_NE | \
				X86_CR0_WP | X86_CR0_AM | X86_CR0_NW | \
				X86_CR0_CD | X86_CR0_PG))

static bool kestrel_seg_valid(const struct kestrel_segment *s)
{
	return s->type <= 15 && s->dpl <= 3 && s->present <= 1 &&
	       s->db <= 1 && s->s <= 1 && s->l <= 1 && s->g <= 1 &&
	       s->avl <= 1 && s->unusable <= 1 && !s->padding;
}

static int kestrel_validate_sregs(const struct kestrel_sregs *s)
{
	const struct kestrel_segment *segs[] = {
		&s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss, &s->tr, &s->ldt,
	};
	bool lma = s->efer & EFER_LMA;
	int i;

	for (i = 0; i < ARRAY_SIZE(segs); i++)
		if (!kestrel_seg_valid(segs[i]))
			return -EINVAL;
	if (s->gdt.padding[0] | s->gdt.padding[1] | s->gdt.padding[2] |
	    s->idt.padding[0] | s->idt.padding[1] | s->idt.padding[2])
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(s->reserved); i++)
		if (s->reserved[i])
			return -EINVAL;

	if (s->cr0 & CR0_RESERVED)
		return -EINVAL;
	if ((s->cr0 & X86_CR0_PG) && !(s->cr0 & X86_CR0_PE))
		return -EINVAL;
	if ((s->cr0 & X86_CR0_NW) && !(s->cr0 & X86_CR0_CD))
		return -EINVAL;
	if (s->cr4 & ~kestrel_cr4_allowed())
		return -EINVAL;
	if (s->cr3 >> kestrel_host_phys_bits)
		return -EINVAL;
	if (s->cr8 > 15)
		return -EINVAL;

	if (s->efer & ~kestrel_efer_allowed())
		return -EINVAL;
	if (lma != ((s->efer & EFER_LME) && (s->cr0 & X86_CR0_PG)))
		return -EINVAL;
	if (lma && !(s->cr4 & X86_CR4_PAE))
		return -EINVAL;
	if (!kestrel_lme_ok(s->efer, s->cr0, s->cr4))
		return -EINVAL;
	if (lma && s->cs.l && s->cs.db)
		return -EINVAL;

	/* APIC base: bits 7:0, 9 and those above the address width. */
	if (s->apic_base & (0xffULL | BIT_ULL(9) |
			    ~GENMASK_ULL(kestrel_host_phys_bits - 1, 0)))
		return -EINVAL;
	/*
	 * x2APIC mode (EXTD) is a mode of an enabled APIC: EXTD without EN
	 * is the one invalid combination (SDM vol. 3, 11.12.5).  The
	 * transitions a guest's WRMSR must follow do not apply: this restores
	 * a state, it does not switch modes.
	 */
	if ((s->apic_base & X2APIC_ENABLE) &&
	    !(s->apic_base & MSR_IA32_APICBASE_ENABLE))
		return -EINVAL;
	return 0;
}

static void kestrel_get_sregs(struct kestrel_vcpu *vcpu,
			      struct kestrel_sregs *s)
{
	memset(s, 0, sizeof(*s));
	kestrel_call(get_sregs)(vcpu, s);
	s->apic_base = vcpu->arch.apic_base;
}

static int kestrel_set_sregs(struct kestrel_vcpu *vcpu,
			     const struct kestrel_sregs *s)
{
	int r = kestrel_validate_sregs(s);

	if (r)
		return r;
	kestrel_call(set_sregs)(vcpu, s);
	WRITE_ONCE(vcpu->arch.apic_base, s->apic_base);
	vcpu->arch.tlb_flush_pending = true;
	kestrel_x86_void_exception(vcpu);
	return 0;
}

static int kestrel_get_mp_state(struct kestrel_vcpu *vcpu, void __user *uarg)
{
	struct kestrel_mp_state mp = { .state = vcpu->arch.mp_state };

	return copy_to_user(uarg, &mp, sizeof(mp)) ? -EFAULT : 0;
}

static int kestrel_set_mp_state(struct kestrel_vcpu *vcpu, void __user *uarg)
{
	struct kestrel_mp_state mp;

	if (copy_from_user(&mp, uarg, sizeof(mp)))
		return -EFAULT;
	if (mp.reserved || mp.state > KESTREL_MP_STATE_WAIT_SIPI)
		return -EINVAL;
	/* Only an in-kernel APIC can end a halt or deliver a SIPI. */
	if (mp.state != KESTREL_MP_STATE_RUNNABLE && !vcpu->arch.lapic)
		return -EINVAL;
	vcpu->arch.mp_state = mp.state;
	return 0;
}

long kestrel_arch_vcpu_ioctl(struct kestrel_vcpu *vcpu, unsigned int ioctl,
			     unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (ioctl) {
	case KESTREL_GET_REGS: {
		struct kestrel_regs regs;

		kestrel_get_regs(vcpu, &regs);
		return copy_to_user(uarg, &regs, sizeof(regs)) ? -EFAULT : 0;
	}
	case KESTREL_SET_REGS: {
		struct kestrel_regs regs;

		if (copy_from_user(&regs, uarg, sizeof(regs)))
			return -EFAULT;
		return kestrel_set_regs(vcpu, &regs);
	}
	case KESTREL_GET_SREGS: {
		struct kestrel_sregs sregs;

		kestrel_get_sregs(vcpu, &sregs);
		return copy_to_user(uarg, &sregs, sizeof(sregs)) ? -EFAULT : 0;
	}
	case KESTREL_SET_SREGS: {
		struct kestrel_sregs sregs;

		if (copy_from_user(&sregs, uarg, sizeof(sregs)))
			return -EFAULT;
		return kestrel_set_sregs(vcpu, &sregs);
	}
	case KESTREL_SET_CPUID:
		return kestrel_cpuid_set(vcpu, uarg);
	case KESTREL_GET_CPUID:
		return kestrel_cpuid_get(vcpu, uarg);
	case KESTREL_GET_MP_STATE:
		return kestrel_get_mp_state(vcpu, uarg);
	case KESTREL_SET_MP_STATE:
		return kestrel_set_mp_state(vcpu, uarg);
	default:
		return -ENOTTY;
	}
}

/* ---- guest memory and instructions ------------------------------------------ */

/*
 * The translation of @gva whatever the access rights: for reading code the
 * CPU has just run.  On a permission fault the walk still found the page.
 */
static int kestrel_gva_to_gpa(struct kestrel_vcpu *vcpu, u64 gva, u64 *gpa)
{
	u32 err;
	int r = kestrel_gva_translate(vcpu, gva, 0, gpa, &err);

	if (r == -EFAULT && (err & (X86_PF_PROT | X86_PF_RSVD)) == X86_PF_PROT)
		return 0;
	return r;
}

/* ---- exits ------------------------------------------------------------------ */

/* An internal-error exit with @ndata words of detail; returns 1 (exit). */
int kestrel_x86_internal_error(struct kestrel_vcpu *vcpu, u32 suberror,
			       int ndata, const u64 *data)
{
	struct kestrel_run *run = vcpu->run;
	int i;

	run->exit_reason = KESTREL_EXIT_INTERNAL_ERROR;
	run->internal.suberror = suberror;
	run->internal.ndata = ndata;
	for (i = 0; i < ndata; i++)
		run->internal.data[i] = data[i];
	return 1;
}

static int kestrel_unhandled(struct kestrel_vcpu *vcpu,
			     const struct kestrel_x86_exit *e, u32 suberror)
{
	u64 data[] = { e->code, e->info1, e->info2, vcpu->arch.rip,
		       e->int_info };

	return kestrel_x86_internal_error(vcpu, suberror, ARRAY_SIZE(data), data);
}

static int kestrel_decode_current(struct kestrel_vcpu *vcpu,
				  struct kestrel_insn *insn, int *exit)
{
	return kestrel_decode_at_rip(vcpu, insn, false, exit);
}

static void kestrel_skip(struct kestrel_vcpu *vcpu, int len, int mode_bits)
{
	vcpu->arch.rip += len;
	if (mode_bits != 64)
		vcpu->arch.rip &= 0xffffffffULL;
	/*
	 * A completed instruction ends the interrupt shadow (the backends see
	 * RIP move) and, with RFLAGS.TF, traps: the CPU did not run this
	 * instruction, so its single-step #DB is ours to raise.
	 */
	if (vcpu->arch.rflags & X86_EFLAGS_TF)
		kestrel_x86_queue_db(vcpu, DR_STEP);
}

/* Step over the exiting instruction, decoding it when we must. */
static int kestrel_skip_insn(struct kestrel_vcpu *vcpu,
			     const struct kestrel_x86_exit *e)
{
	struct kestrel_insn insn;
	int exit;

	if (e->insn_len) {
		kestrel_skip(vcpu, e->insn_len,
			     kestrel_x86_guest_mode_bits(vcpu));
		return 0;
	}
	if (kestrel_decode_current(vcpu, &insn, &exit))
		return exit;
	kestrel_skip(vcpu, insn.len, kestrel_x86_guest_mode_bits(vcpu));
	return 0;
}

static int kestrel_handle_io(struct kestrel_vcpu *vcpu,
			     const struct kestrel_x86_exit *e)
{
	struct kestrel_run *run = vcpu->run;

	/* String I/O needs segment and paging emulation: not yet. */
	if (e->io.string)
		return kestrel_unhandled(vcpu, e, KESTREL_INTERNAL_UNHANDLED_EXIT);

	run->exit_reason = KESTREL_EXIT_IO;
	run->io.direction = e->io.in ? KESTREL_EXIT_IO_IN : KESTREL_EXIT_IO_OUT;
	run->io.size = e->io.size;
	run->io.port = e->io.port;
	run->io.count = 1;
	run->io.data_offset = offsetof(struct kestrel_run, data);
	if (e->io.in) {
		memset(run->data, 0, 4);
		vcpu->arch.pio_in_size = e->io.size;
	} else {
		u32 v = vcpu->arch.regs[KREG_RAX];

		memcpy(run->data, &v, e->io.size);
	}
	/* The backend has set RIP to the next instruction (IOIO gives it). */
	return 1;
}

/* An IN or MMIO-load exit left data in the run page: put it in place. */
static void kestrel_complete_msr_exit(struct kestrel_vcpu *vcpu);

void kestrel_arch_vcpu_complete_userspace_exit(struct kestrel_vcpu *vcpu)
{
	unsigned long *rax = &vcpu->arch.regs[KREG_RAX];
	u32 v = 0;

	kestrel_emulate_complete_userspace(vcpu);
	if (vcpu->arch.msr_exit.pending)
		kestrel_complete_msr_exit(vcpu);

	switch (vcpu->arch.pio_in_size) {
	case 1:
		memcpy(&v, vcpu->run->data, 1);
		*rax = (*rax & ~0xffUL) | v;
		break;
	case 2:
		memcpy(&v, vcpu->run->data, 2);
		*rax = (*rax & ~0xffffUL) | v;
		break;
	case 4:
		memcpy(&v, vcpu->run->data, 4);
		*rax = v;	/* 32-bit results zero-extend */
		break;
	}
	vcpu->arch.pio_in_size = 0;
}

static bool kestrel_pat_valid(u64 pat)
{
	int i;

	for (i = 0; i < 8; i++) {
		u8 t = pat >> (i * 8);

		if (t == 2 || t == 3 || t > 7)
			return false;
	}
	return true;
}

/* 0: done; -1: #GP; -ENOENT: an MSR Kestrel does not implement. */
static int kestrel_rdmsr(struct kestrel_vcpu *vcpu, u32 msr, u64 *val)
{
	int r = kestrel_lapic_rdmsr(vcpu, msr, val);

	if (r != -ENODEV)
		return r;
	switch (msr) {
	case MSR_EFER:
		*val = kestrel_call(get_efer)(vcpu);
		return 0;
	case MSR_IA32_CR_PAT:
		*val = kestrel_call(get_pat)(vcpu);
		return 0;
	case MSR_IA32_APICBASE:
		*val = vcpu->arch.apic_base;
		return 0;
	default:
		return kestrel_msr_get(vcpu, msr, val);
	}
}

static int kestrel_wrmsr(struct kestrel_vcpu *vcpu, u32 msr, u64 val)
{
	int r = kestrel_lapic_wrmsr(vcpu, msr, val);
	u64 old, cr0;

	if (r != -ENODEV)
		return r;
	switch (msr) {
	case MSR_EFER:
		old = kestrel_call(get_efer)(vcpu);
		if (val & ~kestrel_efer_allowed())
			return -1;
		/* LME may not change while paging is on; LMA is read-only. */
		cr0 = kestrel_call(get_cr)(vcpu, 0);
		if (((val ^ old) & EFER_LME) && (cr0 & X86_CR0_PG))
			return -1;
		/* PAE before LME while paging is off: see kestrel_lme_ok(). */
		if (!kestrel_lme_ok(val, cr0, kestrel_call(get_cr)(vcpu, 4)))
			return -1;
		kestrel_call(set_efer)(vcpu, (val & ~EFER_LMA) | (old & EFER_LMA));
		return 0;
	case MSR_IA32_CR_PAT:
		if (!kestrel_pat_valid(val))
			return -1;
		kestrel_call(set_pat)(vcpu, val);
		return 0;
	default:
		return kestrel_msr_set(vcpu, msr, val);
	}
}

/* The length of the exiting instruction (decoded if the CPU did not say). */
static int kestrel_insn_len(struct kestrel_vcpu *vcpu,
			    const struct kestrel_x86_exit *e, int *exit)
{
	struct kestrel_insn insn;

	if (e->insn_len)
		return e->insn_len;
	if (kestrel_decode_current(vcpu, &insn, exit))
		return -1;
	return insn.len;
}

/*
 * An MSR Kestrel does not implement, under KESTREL_MSR_POLICY_EXIT:
 * userspace answers, and the next RUN completes the instruction.  RIP
 * stays on it until then, so that a #GP userspace asks for is raised at
 * the instruction.
 */
static int kestrel_msr_exit(struct kestrel_vcpu *vcpu,
			    const struct kestrel_x86_exit *e, u32 msr,
			    bool write, u64 val)
{
	struct kestrel_run *run = vcpu->run;
	int exit, len = kestrel_insn_len(vcpu, e, &exit);

	if (len < 0)
		return exit;
	run->exit_reason = KESTREL_EXIT_MSR;
	memset(&run->msr, 0, sizeof(run->msr));
	run->msr.index = msr;
	run->msr.is_write = write;
	run->msr.data = write ? val : 0;
	vcpu->arch.msr_exit.pending = true;
	vcpu->arch.msr_exit.write = write;
	vcpu->arch.msr_exit.len = len;
	return 1;
}

/* The next RUN after KESTREL_EXIT_MSR: userspace's answer. */
static void kestrel_complete_msr_exit(struct kestrel_vcpu *vcpu)
{
	struct kestrel_run *run = vcpu->run;
	unsigned long *g = vcpu->arch.regs;

	vcpu->arch.msr_exit.pending = false;
	/* Any nonzero error is a refusal: raise #GP at the instruction. */
	if (READ_ONCE(run->msr.error)) {
		kestrel_x86_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return;
	}
	/* Our own record says read or write, not the shared page. */
	if (!vcpu->arch.msr_exit.write) {
		u64 data = READ_ONCE(run->msr.data);

		g[KREG_RAX] = (u32)data;
		g[KREG_RDX] = data >> 32;
	}
	kestrel_skip(vcpu, vcpu->arch.msr_exit.len,
		     kestrel_x86_guest_mode_bits(vcpu));
}

static int kestrel_handle_msr(struct kestrel_vcpu *vcpu,
			      const struct kestrel_x86_exit *e, bool write)
{
	unsigned long *g = vcpu->arch.regs;
	u32 msr = g[KREG_RCX];
	u64 val = 0;
	int r;

	if (write) {
		val = (u32)g[KREG_RAX] | (u64)(u32)g[KREG_RDX] << 32;
		r = kestrel_wrmsr(vcpu, msr, val);
	} else {
		r = kestrel_rdmsr(vcpu, msr, &val);
		if (!r) {
			g[KREG_RAX] = (u32)val;
			g[KREG_RDX] = val >> 32;
		}
	}
	if (r == -ENOENT &&
	    READ_ONCE(vcpu->vm->arch.msr_policy) == KESTREL_MSR_POLICY_EXIT)
		return kestrel_msr_exit(vcpu, e, msr, write, val);
	if (r) {
		kestrel_x86_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 0;
	}
	return kestrel_skip_insn(vcpu, e);
}

/* XSETBV: fpu.c validates and keeps the guest's XCR0. */
static int kestrel_handle_xsetbv(struct kestrel_vcpu *vcpu,
				 const struct kestrel_x86_exit *e)
{
	unsigned long *g = vcpu->arch.regs;
	int v = kestrel_fpu_xsetbv(vcpu, g[KREG_RCX],
				   (u32)g[KREG_RAX] | (u64)(u32)g[KREG_RDX] << 32);

	if (v >= 0) {
		kestrel_x86_queue_exception(vcpu, v, v == X86_TRAP_GP, 0);
		return 0;
	}
	return kestrel_skip_insn(vcpu, e);
}

/* The GPR a MOV CR/DR names in ModRM.rm (REX.B extends it). */
static unsigned long *kestrel_modrm_gpr(struct kestrel_vcpu *vcpu,
					const struct kestrel_insn *insn)
{
	return &vcpu->arch.regs[(insn->modrm & 7) | ((insn->rex & 1) << 3)];
}

/*
 * MOV to CR4, always intercepted to filter its bits, and MOV to CR8, which
 * the backend intercepts only while it waits for the TPR to drop.
 */
static int kestrel_handle_cr_write(struct kestrel_vcpu *vcpu,
				   const struct kestrel_x86_exit *e)
{
	struct kestrel_insn insn;
	int exit, mode = kestrel_x86_guest_mode_bits(vcpu);
	u64 val;

	if (e->cr.cr != 4 && e->cr.cr != 8)
		return kestrel_unhandled(vcpu, e, KESTREL_INTERNAL_UNHANDLED_EXIT);
	if (kestrel_decode_current(vcpu, &insn, &exit))
		return exit;
	if (insn.map != 1 || insn.opcode != 0x22)
		return kestrel_unhandled(vcpu, e, KESTREL_INTERNAL_UNHANDLED_EXIT);

	val = *kestrel_modrm_gpr(vcpu, &insn);
	if (mode != 64)
		val = (u32)val;
	if (e->cr.cr == 8) {
		if (val >> 4) {
			kestrel_x86_queue_exception(vcpu, X86_TRAP_GP, true, 0);
			return 0;
		}
		kestrel_call(set_cr8)(vcpu, val);
		kestrel_skip(vcpu, insn.len, mode);
		return 0;
	}
	if ((val & ~kestrel_cr4_allowed()) ||
	    ((kestrel_call(get_efer)(vcpu) & EFER_LMA) && !(val & X86_CR4_PAE)) ||
	    !kestrel_lme_ok(kestrel_call(get_efer)(vcpu), kestrel_call(get_cr)(vcpu, 0), val)) {
		kestrel_x86_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 0;
	}
	kestrel_call(set_cr4)(vcpu, val);
	/* The architectural TLB flush of a CR4 write, which we now owe. */
	vcpu->arch.tlb_flush_pending = true;
	kestrel_skip(vcpu, insn.len, mode);
	return 0;
}

/*
 * MOV to/from DRn.  The real debug registers hold the host's breakpoints,
 * so the guest gets virtual ones: values are kept, breakpoints never fire.
 */
static int kestrel_handle_dr(struct kestrel_vcpu *vcpu,
			     const struct kestrel_x86_exit *e)
{
	struct kestrel_arch_vcpu *a = &vcpu->arch;
	struct kestrel_insn insn;
	int exit, dr, mode = kestrel_x86_guest_mode_bits(vcpu);
	unsigned long *gpr, *reg;
	bool write;

	if (kestrel_decode_current(vcpu, &insn, &exit))
		return exit;
	if (insn.map != 1 || (insn.opcode != 0x21 && insn.opcode != 0x23))
		return kestrel_unhandled(vcpu, e, KESTREL_INTERNAL_UNHANDLED_EXIT);
	write = insn.opcode == 0x23;
	dr = (insn.modrm >> 3) & 7;
	gpr = kestrel_modrm_gpr(vcpu, &insn);

	if (dr == 4 || dr == 5) {
		if (kestrel_call(get_cr)(vcpu, 4) & X86_CR4_DE) {
			kestrel_x86_queue_exception(vcpu, X86_TRAP_UD, false, 0);
			return 0;
		}
		dr += 2;
	}
	reg = dr < 4 ? &a->db[dr] : dr == 6 ? &a->dr6 : &a->dr7;
	if (write) {
		unsigned long v = mode == 64 ? *gpr : (u32)*gpr;

		if (dr >= 6 && (v >> 32)) {
			kestrel_x86_queue_exception(vcpu, X86_TRAP_GP, true, 0);
			return 0;
		}
		if (dr == 6)
			v = (v & 0xf00f) | 0xffff0ff0;
		else if (dr == 7)
			v = (v & ~0xd800UL) | 0x400;
		*reg = v;
	} else {
		*gpr = *reg;
	}
	kestrel_skip(vcpu, insn.len, mode);
	return 0;
}

static int kestrel_handle_npf(struct kestrel_vcpu *vcpu,
			      const struct kestrel_x86_exit *e)
{
	struct kestrel_run *run = vcpu->run;
	u64 data[3];
	int r = kestrel_npt_fault(vcpu, e->npf.gpa, e->npf.error);

	if (r == -EFAULT) {
		/* The owner's mapping refuses the access: userspace's call. */
		run->exit_reason = KESTREL_EXIT_MEMORY_FAULT;
		run->memory_fault.gpa = e->npf.gpa & PAGE_MASK;
		run->memory_fault.size = PAGE_SIZE;
		run->memory_fault.flags =
			(e->npf.error & BIT(1) ? KESTREL_MEMORY_FAULT_WRITE : 0) |
			(e->npf.error & BIT(4) ? KESTREL_MEMORY_FAULT_EXEC : 0);
		return -EFAULT;
	}
	if (r != -ENOENT && r != -EROFS)
		return r;
	/*
	 * Not RAM: a data access is MMIO; code or page tables cannot be, and
	 * neither can what delivering an event touches (IDT, stack): the
	 * instruction at RIP is not the one that made that access.
	 */
	if (!(e->npf.error & BIT(4)) && !e->npf.walk) {
		if (e->int_info & BIT(31))
			return kestrel_unhandled(vcpu, e,
						 KESTREL_INTERNAL_EVENT_DELIVERY);
		return kestrel_emulate_mmio(vcpu, e->npf.gpa);
	}
	data[0] = e->npf.gpa;
	data[1] = e->npf.error;
	data[2] = vcpu->arch.rip;
	return kestrel_x86_internal_error(vcpu, KESTREL_INTERNAL_UNMAPPED_GPA, 3,
				      data);
}

/*
 * STI's shadow covers the HLT of the idle idiom "STI; HLT", so on hardware
 * an interrupt that became deliverable at the STI wakes the HLT and returns
 * past it.  Some emulated CPUs (QEMU's TCG) neither report that shadow on
 * an asynchronous exit nor honour it for virtual interrupts, so an exit
 * lands between the two with no shadow in sight; injecting there would run
 * the handler first and then halt with nothing left to wake the guest.  So
 * an interrupt injected after an asynchronous exit at a HLT right after an
 * STI completes the HLT first, which is what hardware does.  (Synchronous
 * exits leave RIP where Kestrel put it, never between the two.)
 */
void kestrel_x86_before_inject(struct kestrel_vcpu *vcpu)
{
	int mode;
	struct kestrel_segment cs;
	u64 la, gpa;
	u8 b[2];

	if (!vcpu->arch.async_exit)
		return;
	vcpu->arch.async_exit = false;
	mode = kestrel_x86_guest_mode_bits(vcpu);

	kestrel_call(get_seg)(vcpu, KSEG_CS, &cs);
	la = vcpu->arch.rip - 1 + (mode == 64 ? 0 : cs.base);
	if (mode != 64)
		la &= 0xffffffffULL;
	if ((la & ~PAGE_MASK) == PAGE_SIZE - 1 ||
	    kestrel_gva_to_gpa(vcpu, la, &gpa) ||
	    kestrel_read_guest(vcpu->vm, gpa, b, 2))
		return;
	if (b[0] == 0xfb && b[1] == 0xf4)
		kestrel_skip(vcpu, 1, mode);
}

static int kestrel_handle_exit(struct kestrel_vcpu *vcpu,
			       const struct kestrel_x86_exit *e)
{
	struct kestrel_run *run = vcpu->run;
	int r;

	switch (e->reason) {
	case X86_EXIT_NONE:
		return 0;
	case X86_EXIT_CPUID:
		r = kestrel_skip_insn(vcpu, e);
		if (!r)
			kestrel_cpuid_emulate(vcpu);
		return r;
	case X86_EXIT_HLT:
		r = kestrel_skip_insn(vcpu, e);
		if (r)
			return r;
		/* With an in-kernel APIC, the wake-up comes from the kernel. */
		if (vcpu->arch.lapic) {
			vcpu->arch.mp_state = KESTREL_MP_STATE_HALTED;
			return 0;
		}
		run->exit_reason = KESTREL_EXIT_HLT;
		return 1;
	case X86_EXIT_IRQ_WINDOW:
		return 0;	/* kestrel_lapic_prepare_entry() injects */
	case X86_EXIT_IO:
		return kestrel_handle_io(vcpu, e);
	case X86_EXIT_RDMSR:
		return kestrel_handle_msr(vcpu, e, false);
	case X86_EXIT_WRMSR:
		return kestrel_handle_msr(vcpu, e, true);
	case X86_EXIT_XSETBV:
		return kestrel_handle_xsetbv(vcpu, e);
	case X86_EXIT_CR_WRITE:
		return kestrel_handle_cr_write(vcpu, e);
	case X86_EXIT_DR_ACCESS:
		return kestrel_handle_dr(vcpu, e);
	case X86_EXIT_NPF:
		return kestrel_handle_npf(vcpu, e);
	case X86_EXIT_SHUTDOWN:
		kestrel_x86_reset(vcpu);
		run->exit_reason = KESTREL_EXIT_SHUTDOWN;
		return 1;
	case X86_EXIT_UD:
		kestrel_x86_queue_exception(vcpu, X86_TRAP_UD, false, 0);
		return 0;
	case X86_EXIT_GP:
		kestrel_x86_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 0;
	case X86_EXIT_SKIP:
		return kestrel_skip_insn(vcpu, e);
	case X86_EXIT_EXC_DB:
		kestrel_x86_queue_db(vcpu, e->exc.dr6);
		return 0;
	case X86_EXIT_EXC_AC:
		kestrel_x86_queue_exception(vcpu, X86_TRAP_AC, true, e->exc.error);
		return 0;
	case X86_EXIT_ENTRY_FAILED:
		run->exit_reason = KESTREL_EXIT_FAIL_ENTRY;
		run->fail_entry.hardware_entry_failure_reason = e->code;
		run->fail_entry.cpu = vcpu->cpu;
		return 1;
	case X86_EXIT_EVENT_DELIVERY:
		return kestrel_unhandled(vcpu, e, KESTREL_INTERNAL_EVENT_DELIVERY);
	case X86_EXIT_STATE_LOST:
		/* Whatever the save area held is not the guest's: scrub it. */
		kestrel_x86_reset(vcpu);
		return kestrel_x86_internal_error(vcpu, KESTREL_INTERNAL_STATE_LOST,
						  1, &e->code);
	case X86_EXIT_UNHANDLED:
	default:
		return kestrel_unhandled(vcpu, e, KESTREL_INTERNAL_UNHANDLED_EXIT);
	}
}

/* ---- interrupts and halt ------------------------------------------------------ */

/*
 * INIT: the power-on state, except that a processor other than the boot
 * one then waits for a start-up IPI instead of running.
 */
void kestrel_x86_init_event(struct kestrel_vcpu *vcpu)
{
	kestrel_x86_reset(vcpu);
	if (!(vcpu->arch.apic_base & MSR_IA32_APICBASE_BSP))
		vcpu->arch.mp_state = KESTREL_MP_STATE_WAIT_SIPI;
}

/* SIPI: real mode at vector * 4 KiB, as the start-up protocol says. */
void kestrel_x86_sipi(struct kestrel_vcpu *vcpu, u8 vector)
{
	struct kestrel_sregs s;

	kestrel_call(get_sregs)(vcpu, &s);
	s.cs.selector = vector << 8;
	s.cs.base = (u64)vector << 12;
	kestrel_call(set_sregs)(vcpu, &s);
	vcpu->arch.rip = 0;
	vcpu->arch.mp_state = KESTREL_MP_STATE_RUNNABLE;
}

bool kestrel_arch_vcpu_runnable(struct kestrel_vcpu *vcpu)
{
	struct kestrel_arch_vcpu *a = &vcpu->arch;

	/* INIT and SIPI first: they change what "halted" means. */
	kestrel_lapic_take_events(vcpu);
	switch (a->mp_state) {
	case KESTREL_MP_STATE_RUNNABLE:
		return true;
	case KESTREL_MP_STATE_HALTED:
		if (!kestrel_lapic_can_wake(vcpu))
			return false;
		a->mp_state = KESTREL_MP_STATE_RUNNABLE;
		return true;
	default:
		return false;		/* waiting for SIPI */
	}
}

bool kestrel_arch_vcpu_wakeup_pending(struct kestrel_vcpu *vcpu)
{
	return kestrel_lapic_has_new_irq(vcpu);
}

/*
 * The guest-entry handshake, for both backends.  With interrupts off,
 * publish IN_GUEST, then look for an interrupt that arrived since the
 * injection decision: a kick that read OUTSIDE_GUEST sent no IPI, so it
 * is ours to see now, and the entry is abandoned (an exit with no reason,
 * the next round injects it).  Then the VM's TLB generation, read after
 * the mode so that kestrel_vm_kick_all() either sees us in the guest or
 * we see its new generation.  Preemption is off for this one entry only.
 *
 * The host counts the time from guest_timing_enter_irqoff() to
 * guest_timing_exit_irqoff() as guest time; interrupts are opened between
 * the exit and the latter so that the tick which ended the guest is
 * counted so too, as KVM does.
 */
static void kestrel_x86_enter_guest(struct kestrel_vcpu *vcpu,
				    struct kestrel_x86_exit *exit)
{
	struct kestrel_arch_vcpu *a = &vcpu->arch;
	int gen;

	preempt_disable();
	static_call_cond(kestrel_x86_prepare_run)(vcpu);

	local_irq_disable();
	vcpu->cpu = smp_processor_id();
	WRITE_ONCE(vcpu->mode, KESTREL_IN_GUEST);
	/* Pairs with kestrel_vm_kick_all(): mode before tlb_gen. */
	smp_mb();
	if (kestrel_lapic_has_new_irq(vcpu)) {
		WRITE_ONCE(vcpu->mode, KESTREL_OUTSIDE_GUEST);
		local_irq_enable();
		preempt_enable();
		memset(exit, 0, sizeof(*exit));
		exit->reason = X86_EXIT_NONE;
		return;
	}
	kestrel_fpu_enter_irqoff(vcpu);
	gen = atomic_read(&vcpu->vm->tlb_gen);
	kestrel_guest_timing_enter_irqoff();
	kestrel_call(run)(vcpu, exit, gen != a->tlb_gen);
	/* The backend's run contract (x86.h). */
	lockdep_assert_irqs_disabled();
	kestrel_fpu_exit_irqoff(vcpu);
	a->tlb_gen = gen;
	a->tlb_flush_pending = false;
	WRITE_ONCE(vcpu->mode, KESTREL_OUTSIDE_GUEST);
	local_irq_enable();
	local_irq_disable();
	kestrel_guest_timing_exit_irqoff();
	local_irq_enable();
	preempt_enable();
}

void kestrel_arch_vcpu_run_begin(struct kestrel_vcpu *vcpu)
{
	kestrel_fpu_run_begin(vcpu);
}

void kestrel_arch_vcpu_run_end(struct kestrel_vcpu *vcpu)
{
	kestrel_fpu_run_end(vcpu);
}

int kestrel_arch_vcpu_run_once(struct kestrel_vcpu *vcpu)
{
	struct kestrel_x86_exit exit;
	u64 t0;
	int r;

	/* An instruction whose MMIO read userspace has completed. */
	r = kestrel_emulate_resume(vcpu);
	if (r)
		return r;

	kestrel_lapic_prepare_entry(vcpu);

	t0 = local_clock();
	lockdep_assert_irqs_enabled();
	kestrel_x86_enter_guest(vcpu, &exit);
	WRITE_ONCE(vcpu->stats.guest_ns,
		   vcpu->stats.guest_ns + local_clock() - t0);

	kestrel_stat_inc(vcpu, exits[exit.reason]);
	vcpu->arch.async_exit = exit.reason == X86_EXIT_NONE ||
				exit.reason == X86_EXIT_IRQ_WINDOW;
	return kestrel_handle_exit(vcpu, &exit);
}
