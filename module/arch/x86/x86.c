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
#include <asm/fpu/api.h>
#include <asm/msr-index.h>
#include <asm/processor-flags.h>

#include "x86.h"
#include "lapic.h"

const struct kestrel_backend_ops *kestrel_backend;

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
	[X86_EXIT_UNHANDLED]		= "unhandled",
};

/* ---- load time --------------------------------------------------------- */

int kestrel_arch_init(void)
{
	int r;

	r = kestrel_cpuid_init();
	if (r)
		return r;

	if (boot_cpu_data.x86_vendor == X86_VENDOR_AMD ||
	    boot_cpu_data.x86_vendor == X86_VENDOR_HYGON) {
		kestrel_backend = &kestrel_svm_ops;
	} else if (boot_cpu_data.x86_vendor == X86_VENDOR_INTEL) {
		kestrel_err("Intel VT-x is not supported yet (the VMX backend is planned)\n");
		return -ENODEV;
	} else {
		kestrel_err("no supported virtualization extension on this CPU vendor\n");
		return -ENODEV;
	}

	r = kestrel_backend->probe();
	if (r)
		return r;
	r = kestrel_backend->hardware_setup();
	if (r)
		return r;
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
	return kestrel_backend->cpu_enable();
}

void kestrel_arch_cpu_disable(void)
{
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
	else if (vm->nr_vcpus)
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
	struct fxregs_state *fx = a->fxsave;

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
	a->mmio_in.len = 0;
	a->apic_base = 0xfee00000 | MSR_IA32_APICBASE_ENABLE |
		       (vcpu->id == 0 ? MSR_IA32_APICBASE_BSP : 0);

	memset(fx, 0, sizeof(*fx));
	fx->cwd = 0x37f;
	fx->mxcsr = 0x1f80;

	a->halted = false;

	kestrel_backend->vcpu_reset(vcpu);
	kestrel_lapic_reset(vcpu);
}

int kestrel_arch_vcpu_init(struct kestrel_vcpu *vcpu)
{
	struct kestrel_arch_vcpu *a = &vcpu->arch;
	int r;

	a->cpuid = kcalloc(KESTREL_MAX_CPUID, sizeof(*a->cpuid),
			   GFP_KERNEL_ACCOUNT);
	/* FXSAVE needs 16-byte alignment: kmalloc of 512 gives that. */
	a->fxsave = kzalloc(sizeof(struct fxregs_state), GFP_KERNEL_ACCOUNT);
	if (!a->cpuid || !a->fxsave) {
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
	kfree(a->fxsave);
	kfree(a->cpuid);
	return r;
}

/* A racing KESTREL_CREATE_IRQCHIP must not leave a vCPU without APIC. */
bool kestrel_arch_vcpu_fits_vm(struct kestrel_vcpu *vcpu)
{
	return vcpu->vm->arch.irqchip == !!vcpu->arch.lapic;
}

void kestrel_arch_vcpu_destroy(struct kestrel_vcpu *vcpu)
{
	kestrel_lapic_free(vcpu);
	kestrel_backend->vcpu_free(vcpu);
	kestrel_npt_cache_free(&vcpu->arch.npt_cache);
	kfree(vcpu->arch.fxsave);
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
		       (kestrel_backend->get_cr(vcpu, 0) & X86_CR0_PE);
	e->error = error;
}

/* The TSC as the guest reads it. */
u64 kestrel_x86_guest_tsc(struct kestrel_vcpu *vcpu)
{
	return rdtsc();		/* no TSC offset yet */
}

/* 16, 32 or 64: the default operand/address size of the guest code. */
int kestrel_x86_guest_mode_bits(struct kestrel_vcpu *vcpu)
{
	struct kestrel_segment cs;

	if (!(kestrel_backend->get_cr(vcpu, 0) & X86_CR0_PE) ||
	    (vcpu->arch.rflags & X86_EFLAGS_VM))
		return 16;
	kestrel_backend->get_seg(vcpu, KSEG_CS, &cs);
	if ((kestrel_backend->get_efer(vcpu) & EFER_LMA) && cs.l)
		return 64;
	return cs.db ? 32 : 16;
}

/* ---- registers from userspace ---------------------------------------------- */

#define RFLAGS_RESERVED	(~0x3f7fd7ULL)	/* 63:22, 15, 5, 3, and bit 1 */

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
	vcpu->arch.mmio_in.len = 0;
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
	return ok;
}

static u64 kestrel_efer_allowed(void)
{
	return EFER_SCE | EFER_LME | EFER_LMA |
	       (kestrel_host_has_nx ? EFER_NX : 0);
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
	if (lma && s->cs.l && s->cs.db)
		return -EINVAL;

	/* APIC base: bits 7:0, 9 and those above the address width. */
	if (s->apic_base & (0xffULL | BIT_ULL(9) |
			    ~GENMASK_ULL(kestrel_host_phys_bits - 1, 0)))
		return -EINVAL;
	return 0;
}

static void kestrel_get_sregs(struct kestrel_vcpu *vcpu,
			      struct kestrel_sregs *s)
{
	memset(s, 0, sizeof(*s));
	kestrel_backend->get_sregs(vcpu, s);
	s->apic_base = vcpu->arch.apic_base;
}

static int kestrel_set_sregs(struct kestrel_vcpu *vcpu,
			     const struct kestrel_sregs *s)
{
	int r = kestrel_validate_sregs(s);

	if (r)
		return r;
	kestrel_backend->set_sregs(vcpu, s);
	vcpu->arch.apic_base = s->apic_base;
	vcpu->arch.tlb_flush_pending = true;
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
	default:
		return -ENOTTY;
	}
}

/* ---- guest memory and instructions ------------------------------------------ */

#define PTE_P		BIT_ULL(0)
#define PTE_PS		BIT_ULL(7)

static int kestrel_read_pte(struct kestrel_vcpu *vcpu, u64 gpa, int size,
			    u64 *pte)
{
	u32 v32;

	*pte = 0;
	if (size == 4) {
		if (kestrel_read_guest(vcpu->vm, gpa, &v32, 4))
			return -EFAULT;
		*pte = v32;
		return 0;
	}
	return kestrel_read_guest(vcpu->vm, gpa, pte, 8);
}

/*
 * Translate a guest-linear address as the guest's paging does.  Used only
 * to fetch an instruction the CPU has just executed, so permission bits do
 * not matter: a missing translation means the guest changed its tables
 * under us, and the caller reports that rather than guessing.
 */
static int kestrel_gva_to_gpa(struct kestrel_vcpu *vcpu, u64 gva, u64 *gpa)
{
	const struct kestrel_backend_ops *ops = kestrel_backend;
	u64 cr0 = ops->get_cr(vcpu, 0), cr4, table, pte, pmask;
	int level, shift, size, bits;

	if (!(cr0 & X86_CR0_PG)) {
		*gpa = gva & 0xffffffffULL;
		return 0;
	}
	cr4 = ops->get_cr(vcpu, 4);
	table = ops->get_cr(vcpu, 3);
	pmask = GENMASK_ULL(51, 12);

	if (ops->get_efer(vcpu) & EFER_LMA) {
		level = 4;
		size = 8;
		bits = 9;
		table &= pmask;
	} else if (cr4 & X86_CR4_PAE) {
		/* PDPT: four 8-byte entries at CR3[31:5]. */
		if (kestrel_read_pte(vcpu, (table & 0xffffffe0ULL) +
				     ((gva >> 30) & 3) * 8, 8, &pte))
			return -EFAULT;
		if (!(pte & PTE_P))
			return -EFAULT;
		table = pte & pmask;
		level = 2;
		size = 8;
		bits = 9;
	} else {
		level = 2;
		size = 4;
		bits = 10;
		table &= 0xfffff000ULL;
		pmask = 0xfffff000ULL;
	}

	for (; level >= 1; level--) {
		shift = 12 + (level - 1) * bits;
		if (kestrel_read_pte(vcpu, table +
				     ((gva >> shift) & ((1 << bits) - 1)) * size,
				     size, &pte))
			return -EFAULT;
		if (!(pte & PTE_P))
			return -EFAULT;
		if (level > 1 && (pte & PTE_PS)) {
			u64 base;

			if (size == 4) {
				if (!(cr4 & X86_CR4_PSE))
					goto table;
				/* 4 MiB page; PSE-36 puts PA[39:32] in 20:13. */
				base = (pte & 0xffc00000ULL) |
				       ((pte & 0x1fe000ULL) << 19);
			} else {
				base = pte & pmask & ~((1ULL << shift) - 1);
			}
			*gpa = base | (gva & ((1ULL << shift) - 1));
			return 0;
		}
table:
		table = pte & pmask;
	}
	*gpa = table | (gva & 0xfff);
	return 0;
}

/* Fetch up to 15 bytes at CS:RIP; returns the count, or -EFAULT. */
static int kestrel_fetch_insn(struct kestrel_vcpu *vcpu, u8 *buf,
			      int mode_bits, u64 *linear)
{
	struct kestrel_segment cs;
	u64 la, gpa;
	int got = 0;

	kestrel_backend->get_seg(vcpu, KSEG_CS, &cs);
	la = vcpu->arch.rip + (mode_bits == 64 ? 0 : cs.base);
	if (mode_bits != 64)
		la &= 0xffffffffULL;
	*linear = la;

	while (got < 15) {
		int chunk = min_t(int, 15 - got, PAGE_SIZE - (la & ~PAGE_MASK));

		if (kestrel_gva_to_gpa(vcpu, la, &gpa) ||
		    kestrel_read_guest(vcpu->vm, gpa, buf + got, chunk))
			break;
		got += chunk;
		la += chunk;
	}
	return got ? got : -EFAULT;
}

/* ---- exits ------------------------------------------------------------------ */

static int kestrel_internal_error(struct kestrel_vcpu *vcpu, u32 suberror,
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

	return kestrel_internal_error(vcpu, suberror, ARRAY_SIZE(data), data);
}

/*
 * Decode the instruction at RIP when the hardware did not give its length
 * (no NRIP-save) or its operands.  When it cannot be decoded, or is not one
 * the caller can handle (want_mem: a ModRM memory operand), the vCPU exits
 * to userspace with the bytes.
 */
static int kestrel_decode_at_rip(struct kestrel_vcpu *vcpu,
				 struct kestrel_insn *insn, bool want_mem,
				 int *exit)
{
	u8 bytes[16] = { 0 };
	u64 linear, data[4];
	int mode = kestrel_x86_guest_mode_bits(vcpu);
	int n = kestrel_fetch_insn(vcpu, bytes, mode, &linear);

	if (n > 0 && kestrel_decode(bytes, n, mode, insn) == 0 &&
	    (!want_mem || insn->mem))
		return 0;

	data[0] = vcpu->arch.rip;
	data[1] = linear;
	memcpy(&data[2], bytes, 16);
	*exit = kestrel_internal_error(vcpu, KESTREL_INTERNAL_DECODE, 4, data);
	return -1;
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
	/* A completed instruction ends single-step and the interrupt shadow. */
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

/* Write the data of a completed MMIO load into its register. */
static void kestrel_complete_mmio_in(struct kestrel_vcpu *vcpu)
{
	struct kestrel_arch_vcpu *a = &vcpu->arch;
	unsigned long *reg = &a->regs[a->mmio_in.reg];
	u64 v = 0;

	memcpy(&v, vcpu->run->mmio.data, a->mmio_in.len);
	if (a->mmio_in.sign)
		v = a->mmio_in.len == 1 ? (u64)(s8)v : (u64)(s16)v;
	switch (a->mmio_in.dst_bytes) {
	case 1:
		if (a->mmio_in.high_byte)
			*reg = (*reg & ~0xff00UL) | (v & 0xff) << 8;
		else
			*reg = (*reg & ~0xffUL) | (v & 0xff);
		break;
	case 2:
		*reg = (*reg & ~0xffffUL) | (v & 0xffff);
		break;
	case 4:
		*reg = (u32)v;		/* 32-bit results zero-extend */
		break;
	default:
		*reg = v;
		break;
	}
	a->mmio_in.len = 0;
}

/* An IN or MMIO-load exit left data in the run page: put it in place. */
void kestrel_arch_vcpu_complete_userspace_exit(struct kestrel_vcpu *vcpu)
{
	unsigned long *rax = &vcpu->arch.regs[KREG_RAX];
	u32 v = 0;

	if (vcpu->arch.mmio_in.len)
		kestrel_complete_mmio_in(vcpu);

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

/* 0: done; -1: #GP. */
static int kestrel_rdmsr(struct kestrel_vcpu *vcpu, u32 msr, u64 *val)
{
	int r = kestrel_lapic_rdmsr(vcpu, msr, val);

	if (r != -ENODEV)
		return r;
	switch (msr) {
	case MSR_EFER:
		*val = kestrel_backend->get_efer(vcpu);
		return 0;
	case MSR_IA32_CR_PAT:
		*val = kestrel_backend->get_pat(vcpu);
		return 0;
	case MSR_IA32_TSC:
		*val = kestrel_x86_guest_tsc(vcpu);
		return 0;
	case MSR_IA32_APICBASE:
		*val = vcpu->arch.apic_base;
		return 0;
	default:
		return -1;
	}
}

static int kestrel_wrmsr(struct kestrel_vcpu *vcpu, u32 msr, u64 val)
{
	const struct kestrel_backend_ops *ops = kestrel_backend;
	int r = kestrel_lapic_wrmsr(vcpu, msr, val);
	u64 old;

	if (r != -ENODEV)
		return r;
	switch (msr) {
	case MSR_EFER:
		old = ops->get_efer(vcpu);
		if (val & ~kestrel_efer_allowed())
			return -1;
		/* LME may not change while paging is on; LMA is read-only. */
		if (((val ^ old) & EFER_LME) && (ops->get_cr(vcpu, 0) & X86_CR0_PG))
			return -1;
		ops->set_efer(vcpu, (val & ~EFER_LMA) | (old & EFER_LMA));
		return 0;
	case MSR_IA32_CR_PAT:
		if (!kestrel_pat_valid(val))
			return -1;
		ops->set_pat(vcpu, val);
		return 0;
	default:
		return -1;
	}
}

static int kestrel_handle_msr(struct kestrel_vcpu *vcpu,
			      const struct kestrel_x86_exit *e, bool write)
{
	unsigned long *g = vcpu->arch.regs;
	u32 msr = g[KREG_RCX];
	u64 val;
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
	if (r) {
		kestrel_x86_queue_exception(vcpu, X86_TRAP_GP, true, 0);
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
	const struct kestrel_backend_ops *ops = kestrel_backend;
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
		ops->set_cr8(vcpu, val);
		kestrel_skip(vcpu, insn.len, mode);
		return 0;
	}
	if ((val & ~kestrel_cr4_allowed()) ||
	    ((ops->get_efer(vcpu) & EFER_LMA) && !(val & X86_CR4_PAE))) {
		kestrel_x86_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 0;
	}
	ops->set_cr4(vcpu, val);
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
		if (kestrel_backend->get_cr(vcpu, 4) & X86_CR4_DE) {
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

/*
 * A load or store the guest made to memory no slot backs (or a store to a
 * read-only slot): decode the MOV, hand the access to userspace, and step
 * over the instruction.  A load completes on the next RUN.
 */
static int kestrel_handle_mmio(struct kestrel_vcpu *vcpu, u64 gpa)
{
	struct kestrel_arch_vcpu *a = &vcpu->arch;
	struct kestrel_run *run = vcpu->run;
	struct kestrel_insn insn;
	int exit, mode = kestrel_x86_guest_mode_bits(vcpu);
	int reg, len;
	bool write, high = false;
	u64 val = 0;

	if (kestrel_decode_at_rip(vcpu, &insn, true, &exit))
		return exit;
	/* moffs forms have no ModRM: their register is always AL/eAX. */
	reg = insn.has_modrm ? ((insn.modrm >> 3) & 7) | ((insn.rex & 4) << 1) : 0;
	/* Byte registers 4-7 without REX are AH, CH, DH, BH. */
	if (insn.op_bytes == 1 && !insn.rex && reg >= 4) {
		high = true;
		reg -= 4;
	}
	len = insn.op_bytes;
	write = false;
	if (insn.map == 0) {
		switch (insn.opcode) {
		case 0x88: case 0x89:		/* MOV r/m, r */
		case 0xa2: case 0xa3:		/* MOV moffs, AL/eAX */
			write = true;
			val = a->regs[reg] >> (high ? 8 : 0);
			break;
		case 0xc6: case 0xc7:		/* MOV r/m, imm */
			write = true;
			val = insn.imm;
			break;
		}
	} else if (insn.map == 1 && insn.opcode >= 0xb6) {
		len = insn.opcode & 1 ? 2 : 1;	/* MOVZX/MOVSX source */
		high = false;
	}

	run->exit_reason = KESTREL_EXIT_MMIO;
	run->mmio.phys_addr = gpa;
	run->mmio.len = len;
	run->mmio.is_write = write;
	memset(run->mmio.data, 0, sizeof(run->mmio.data));
	if (write) {
		memcpy(run->mmio.data, &val, len);
	} else {
		a->mmio_in.len = len;
		a->mmio_in.dst_bytes = insn.op_bytes;
		a->mmio_in.reg = reg;
		a->mmio_in.high_byte = high;
		a->mmio_in.sign = insn.map == 1 && insn.opcode >= 0xbe;
	}
	kestrel_skip(vcpu, insn.len, mode);
	return 1;
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
	/* Not RAM: a data access is MMIO; code or page tables cannot be. */
	if (!(e->npf.error & BIT(4)) && !e->npf.walk)
		return kestrel_handle_mmio(vcpu, e->npf.gpa);
	data[0] = e->npf.gpa;
	data[1] = e->npf.error;
	data[2] = vcpu->arch.rip;
	return kestrel_internal_error(vcpu, KESTREL_INTERNAL_UNMAPPED_GPA, 3,
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

	kestrel_backend->get_seg(vcpu, KSEG_CS, &cs);
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
			vcpu->arch.halted = true;
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
	case X86_EXIT_ENTRY_FAILED:
		run->exit_reason = KESTREL_EXIT_FAIL_ENTRY;
		run->fail_entry.hardware_entry_failure_reason = e->code;
		run->fail_entry.cpu = vcpu->cpu;
		return 1;
	case X86_EXIT_EVENT_DELIVERY:
		return kestrel_unhandled(vcpu, e, KESTREL_INTERNAL_EVENT_DELIVERY);
	case X86_EXIT_UNHANDLED:
	default:
		return kestrel_unhandled(vcpu, e, KESTREL_INTERNAL_UNHANDLED_EXIT);
	}
}

/* ---- interrupts and halt ------------------------------------------------------ */

bool kestrel_arch_vcpu_runnable(struct kestrel_vcpu *vcpu)
{
	if (!vcpu->arch.halted)
		return true;
	if (!kestrel_lapic_can_wake(vcpu))
		return false;
	vcpu->arch.halted = false;
	return true;
}

bool kestrel_arch_vcpu_wakeup_pending(struct kestrel_vcpu *vcpu)
{
	return kestrel_lapic_has_new_irq(vcpu);
}

/* Interrupts off, vcpu->mode is IN_GUEST: did one arrive since? */
bool kestrel_x86_cancel_entry(struct kestrel_vcpu *vcpu)
{
	return kestrel_lapic_has_new_irq(vcpu);
}

int kestrel_arch_vcpu_run_once(struct kestrel_vcpu *vcpu)
{
	struct kestrel_x86_exit exit;
	struct fxregs_state *fx = vcpu->arch.fxsave;
	u64 t0;

	kestrel_lapic_prepare_entry(vcpu);

	/*
	 * The guest's x87/SSE state lives in the registers only while it
	 * runs; kernel_fpu_begin() saves the thread's own state first.  XSAVE
	 * features beyond SSE are hidden from guests (and CR4.OSXSAVE is
	 * refused), so FXSAVE covers everything a guest can change.
	 */
	kernel_fpu_begin();
	asm volatile("fxrstorq %0" : : "m" (*fx));
	t0 = local_clock();
	kestrel_backend->run(vcpu, &exit);
	WRITE_ONCE(vcpu->stats.guest_ns,
		   vcpu->stats.guest_ns + local_clock() - t0);
	asm volatile("fxsaveq %0" : "=m" (*fx));
	kernel_fpu_end();

	kestrel_stat_inc(vcpu, exits[exit.reason]);
	vcpu->arch.async_exit = exit.reason == X86_EXIT_NONE ||
				exit.reason == X86_EXIT_IRQ_WINDOW;
	return kestrel_handle_exit(vcpu, &exit);
}
