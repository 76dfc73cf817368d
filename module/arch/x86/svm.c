// SPDX-License-Identifier: GPL-2.0
/*
 * The AMD SVM backend.  It owns the VMCB, the per-CPU host save areas,
 * ASIDs and the world switch, and reports exits in architectural terms.
 * It validates nothing: state reaches it through x86.c, already checked.
 *
 * Works without NRIP-save and decode assists (older parts, and QEMU's
 * emulated SVM): x86.c decodes when exit->insn_len is 0.
 */
#include <linux/module.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <asm/debugreg.h>
#include <asm/msr.h>
#include <asm/processor-flags.h>

#include "x86.h"
#include "svm.h"

struct svm_cpu {
	struct page	*hsave;		/* VM_HSAVE_PA: VMRUN's host area */
	struct page	*host_save;	/* VMSAVE/VMLOAD of host state */
	u32		next_asid;
	u64		asid_gen;
};

struct svm_vcpu {
	struct vmcb_k	*vmcb;
	unsigned long	vmcb_pa;
	u32		asid;
	u64		asid_gen;
	int		cpu;		/* where asid is valid; -1: nowhere */
};

static struct svm_cpu __percpu *svm_cpus;
static struct page *iopm_pages, *msrpm_pages;
static u32 svm_max_asid;		/* highest usable ASID */
static bool svm_has_nrips;
static bool svm_has_tsc_aux;		/* RDTSCP or RDPID: TSC_AUX exists */

static inline struct svm_vcpu *to_svm(struct kestrel_vcpu *vcpu)
{
	return vcpu->arch.backend;
}

/* ---- load time ------------------------------------------------------------ */

static int svm_probe(void)
{
	u32 eax, ebx, ecx, edx;
	u64 vm_cr;

	if (cpuid_eax(0x80000000) < 0x8000000a ||
	    !(cpuid_ecx(0x80000001) & BIT(2))) {
		kestrel_err("this AMD CPU has no SVM (AMD-V)\n");
		return -ENODEV;
	}
	rdmsrl(SVM_MSR_VM_CR, vm_cr);
	if (vm_cr & SVM_VM_CR_SVMDIS) {
		kestrel_err("SVM is disabled by the firmware (VM_CR.SVMDIS); enable \"SVM Mode\" / AMD-V in the firmware setup\n");
		return -EOPNOTSUPP;
	}
	cpuid(0x8000000a, &eax, &ebx, &ecx, &edx);
	if (!(edx & SVM_CPUID_NPT)) {
		kestrel_err("SVM without nested paging is not supported\n");
		return -EOPNOTSUPP;
	}
	if (ebx < 2) {
		kestrel_err("SVM reports no usable ASIDs\n");
		return -EOPNOTSUPP;
	}
	svm_max_asid = ebx - 1;
	svm_has_nrips = edx & SVM_CPUID_NRIPS;
	svm_has_tsc_aux = boot_cpu_has(X86_FEATURE_RDTSCP) ||
			  boot_cpu_has(X86_FEATURE_RDPID);
	kestrel_info("SVM backend: revision %u, %u ASIDs, nested paging, NRIP-save %s, decode assists %s\n",
		     eax & 0xff, ebx, svm_has_nrips ? "yes" : "no (decoding)",
		     edx & BIT(7) ? "yes" : "no");
	return 0;
}

static void svm_free_cpus(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct svm_cpu *sd = per_cpu_ptr(svm_cpus, cpu);

		if (sd->hsave)
			__free_page(sd->hsave);
		if (sd->host_save)
			__free_page(sd->host_save);
	}
	free_percpu(svm_cpus);
}

static void svm_msrpm_allow(u8 *msrpm, u32 msr)
{
	u32 base, bit;

	if (msr <= 0x1fff)
		base = 0;
	else if (msr >= 0xc0000000 && msr <= 0xc0001fff)
		base = 0x800;
	else if (msr >= 0xc0010000 && msr <= 0xc0011fff)
		base = 0x1000;
	else
		return;
	bit = (msr & 0x1fff) * 2;
	/* Two bits per MSR: read intercept, then write intercept. */
	msrpm[base + bit / 8] &= ~(3 << (bit % 8));
}

static int svm_hardware_setup(void)
{
	u8 *msrpm;
	int cpu, i;

	svm_cpus = alloc_percpu(struct svm_cpu);
	if (!svm_cpus)
		return -ENOMEM;
	for_each_possible_cpu(cpu) {
		struct svm_cpu *sd = per_cpu_ptr(svm_cpus, cpu);

		sd->hsave = alloc_page(GFP_KERNEL | __GFP_ZERO);
		sd->host_save = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!sd->hsave || !sd->host_save)
			goto err;
	}

	/* Every port and every other MSR is intercepted. */
	iopm_pages = alloc_pages(GFP_KERNEL, SVM_IOPM_ORDER);
	msrpm_pages = alloc_pages(GFP_KERNEL, SVM_MSRPM_ORDER);
	if (!iopm_pages || !msrpm_pages)
		goto err;
	memset(page_address(iopm_pages), 0xff, PAGE_SIZE << SVM_IOPM_ORDER);
	msrpm = page_address(msrpm_pages);
	memset(msrpm, 0xff, PAGE_SIZE << SVM_MSRPM_ORDER);
	/* VMLOAD/VMSAVE switch these: the guest may own them directly. */
	for (i = 0; i < KESTREL_NR_GUEST_OWNED_MSRS; i++)
		svm_msrpm_allow(msrpm, kestrel_guest_owned_msrs[i]);
	return 0;
err:
	if (iopm_pages)
		__free_pages(iopm_pages, SVM_IOPM_ORDER);
	if (msrpm_pages)
		__free_pages(msrpm_pages, SVM_MSRPM_ORDER);
	iopm_pages = NULL;
	msrpm_pages = NULL;
	svm_free_cpus();
	return -ENOMEM;
}

static void svm_hardware_unsetup(void)
{
	__free_pages(iopm_pages, SVM_IOPM_ORDER);
	__free_pages(msrpm_pages, SVM_MSRPM_ORDER);
	svm_free_cpus();
}

static unsigned int svm_nr_asids(void)
{
	return svm_max_asid + 1;
}

/* ---- per-CPU enable ------------------------------------------------------- */

static int svm_cpu_enable(void)
{
	struct svm_cpu *sd = this_cpu_ptr(svm_cpus);
	u64 efer;

	rdmsrl(MSR_EFER, efer);
	/* Someone else switched SVM on: theirs, not ours to take. */
	if (efer & EFER_SVME)
		return -EBUSY;
	wrmsrl(SVM_MSR_VM_HSAVE_PA, page_to_phys(sd->hsave));
	wrmsrl(MSR_EFER, efer | EFER_SVME);
	/* Start a new ASID generation: the first VMRUN flushes the TLB. */
	sd->asid_gen++;
	sd->next_asid = svm_max_asid + 1;
	return 0;
}

static void svm_cpu_disable(void)
{
	u64 efer;

	rdmsrl(MSR_EFER, efer);
	wrmsrl(MSR_EFER, efer & ~EFER_SVME);
	wrmsrl(SVM_MSR_VM_HSAVE_PA, 0);
}

/* ---- vCPU ------------------------------------------------------------------ */

static void svm_init_controls(struct kestrel_vcpu *vcpu)
{
	struct vmcb_control_k *c = &to_svm(vcpu)->vmcb->control;

	memset(c, 0, sizeof(*c));
	c->intercept_cr = SVM_INTERCEPT_CR4_WRITE;
	c->intercept_dr = 0x00ff00ff;			/* DR0-7, both ways */
	/*
	 * #DB and #AC exit and are reflected (svm_reflect()): a guest whose
	 * delivery of either raises it again (a misaligned CPL3 stack with
	 * CR0.AM and EFLAGS.AC, or a breakpoint on its own stack) would
	 * otherwise hold the CPU in microcode, deaf to interrupts, for ever
	 * (CVE-2015-5307, CVE-2015-8104).
	 */
	c->intercept_exceptions = BIT(X86_TRAP_MC) | BIT(X86_TRAP_DB) |
				  BIT(X86_TRAP_AC);
	c->intercept_misc1 = SVM_INTERCEPT_INTR | SVM_INTERCEPT_NMI |
			     SVM_INTERCEPT_SMI | SVM_INTERCEPT_RDPMC |
			     SVM_INTERCEPT_CPUID | SVM_INTERCEPT_RSM |
			     SVM_INTERCEPT_INVD | SVM_INTERCEPT_HLT |
			     SVM_INTERCEPT_INVLPGA | SVM_INTERCEPT_IOIO_PROT |
			     SVM_INTERCEPT_MSR_PROT | SVM_INTERCEPT_SHUTDOWN;
	c->intercept_misc2 = SVM_INTERCEPT_VMRUN | SVM_INTERCEPT_VMMCALL |
			     SVM_INTERCEPT_VMLOAD | SVM_INTERCEPT_VMSAVE |
			     SVM_INTERCEPT_STGI | SVM_INTERCEPT_CLGI |
			     SVM_INTERCEPT_SKINIT | SVM_INTERCEPT_RDTSCP |
			     SVM_INTERCEPT_WBINVD | SVM_INTERCEPT_MONITOR |
			     SVM_INTERCEPT_MWAIT | SVM_INTERCEPT_MWAIT_COND |
			     SVM_INTERCEPT_XSETBV | SVM_INTERCEPT_RDPRU;
	c->intercept_misc3 = SVM_INTERCEPT_INVLPGB |
			     SVM_INTERCEPT_INVLPGB_ILLEGAL |
			     SVM_INTERCEPT_MCOMMIT | SVM_INTERCEPT_TLBSYNC;
	c->iopm_base_pa = page_to_phys(iopm_pages);
	c->msrpm_base_pa = page_to_phys(msrpm_pages);
	c->int_ctl = SVM_INT_CTL_V_INTR_MASKING;
	c->nested_ctl = SVM_NESTED_CTL_NP_ENABLE;
	c->nested_cr3 = kestrel_npt_root_pa(vcpu->vm);
}

static int svm_vcpu_create(struct kestrel_vcpu *vcpu)
{
	struct svm_vcpu *sv;
	struct page *page;

	sv = kzalloc(sizeof(*sv), GFP_KERNEL_ACCOUNT);
	if (!sv)
		return -ENOMEM;
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page) {
		kfree(sv);
		return -ENOMEM;
	}
	sv->vmcb = page_address(page);
	sv->vmcb_pa = page_to_phys(page);
	sv->cpu = -1;
	vcpu->arch.backend = sv;
	svm_init_controls(vcpu);
	return 0;
}

static void svm_vcpu_free(struct kestrel_vcpu *vcpu)
{
	struct svm_vcpu *sv = to_svm(vcpu);

	free_page((unsigned long)sv->vmcb);
	kfree(sv);
}

static void svm_set_vmcb_seg(struct vmcb_seg_k *v, u16 sel, u64 base,
			     u32 limit, u16 attrib)
{
	v->selector = sel;
	v->base = base;
	v->limit = limit;
	v->attrib = attrib;
}

/* The state after RESET (AMD64 APM vol. 2, 14.1.3). */
static void svm_vcpu_reset(struct kestrel_vcpu *vcpu)
{
	struct svm_vcpu *sv = to_svm(vcpu);
	struct vmcb_save_k *s = &sv->vmcb->save;

	memset(s, 0, sizeof(*s));
	svm_set_vmcb_seg(&s->cs, 0xf000, 0xffff0000, 0xffff, 0x9b);
	svm_set_vmcb_seg(&s->ds, 0, 0, 0xffff, 0x93);
	s->es = s->ds;
	s->ss = s->ds;
	s->fs = s->ds;
	s->gs = s->ds;
	svm_set_vmcb_seg(&s->gdtr, 0, 0, 0xffff, 0);
	s->idtr = s->gdtr;
	svm_set_vmcb_seg(&s->ldtr, 0, 0, 0xffff, 0x82);
	svm_set_vmcb_seg(&s->tr, 0, 0, 0xffff, 0x8b);
	s->cr0 = X86_CR0_ET | X86_CR0_CD | X86_CR0_NW;
	s->efer = EFER_SVME;	/* VMRUN requires it; guests never see it */
	s->dr6 = 0xffff0ff0;
	s->dr7 = 0x400;
	s->g_pat = 0x0007040600070406ULL;

	sv->vmcb->control.int_ctl &= ~0xffU;	/* V_TPR (CR8) */
	sv->vmcb->control.event_inj = 0;
	sv->vmcb->control.int_state = 0;
}

static void svm_seg_to_user(const struct vmcb_seg_k *v,
			    struct kestrel_segment *s)
{
	u16 a = v->attrib;

	s->selector = v->selector;
	s->base = v->base;
	s->limit = v->limit;
	s->type = a & 0xf;
	s->s = (a >> 4) & 1;
	s->dpl = (a >> 5) & 3;
	s->present = (a >> 7) & 1;
	s->avl = (a >> 8) & 1;
	s->l = (a >> 9) & 1;
	s->db = (a >> 10) & 1;
	s->g = (a >> 11) & 1;
	s->unusable = !s->present;
	s->padding = 0;
}

static void svm_seg_from_user(struct vmcb_seg_k *v,
			      const struct kestrel_segment *s)
{
	v->selector = s->selector;
	v->base = s->base;
	v->limit = s->limit;
	v->attrib = s->unusable ? 0 :
		    s->type | s->s << 4 | s->dpl << 5 | s->present << 7 |
		    s->avl << 8 | s->l << 9 | s->db << 10 | s->g << 11;
}

static void svm_get_sregs(struct kestrel_vcpu *vcpu, struct kestrel_sregs *r)
{
	struct vmcb_k *vmcb = to_svm(vcpu)->vmcb;
	struct vmcb_save_k *s = &vmcb->save;

	svm_seg_to_user(&s->cs, &r->cs);
	svm_seg_to_user(&s->ds, &r->ds);
	svm_seg_to_user(&s->es, &r->es);
	svm_seg_to_user(&s->fs, &r->fs);
	svm_seg_to_user(&s->gs, &r->gs);
	svm_seg_to_user(&s->ss, &r->ss);
	svm_seg_to_user(&s->tr, &r->tr);
	svm_seg_to_user(&s->ldtr, &r->ldt);
	r->gdt.base = s->gdtr.base;
	r->gdt.limit = s->gdtr.limit;
	r->idt.base = s->idtr.base;
	r->idt.limit = s->idtr.limit;
	r->cr0 = s->cr0;
	r->cr2 = s->cr2;
	r->cr3 = s->cr3;
	r->cr4 = s->cr4;
	r->cr8 = vmcb->control.int_ctl & 0xf;
	r->efer = s->efer & ~EFER_SVME;
}

static void svm_set_sregs(struct kestrel_vcpu *vcpu,
			  const struct kestrel_sregs *r)
{
	struct vmcb_k *vmcb = to_svm(vcpu)->vmcb;
	struct vmcb_save_k *s = &vmcb->save;

	svm_seg_from_user(&s->cs, &r->cs);
	svm_seg_from_user(&s->ds, &r->ds);
	svm_seg_from_user(&s->es, &r->es);
	svm_seg_from_user(&s->fs, &r->fs);
	svm_seg_from_user(&s->gs, &r->gs);
	svm_seg_from_user(&s->ss, &r->ss);
	svm_seg_from_user(&s->tr, &r->tr);
	svm_seg_from_user(&s->ldtr, &r->ldt);
	svm_set_vmcb_seg(&s->gdtr, 0, r->gdt.base, r->gdt.limit, 0);
	svm_set_vmcb_seg(&s->idtr, 0, r->idt.base, r->idt.limit, 0);
	/* The CPL is the SS DPL (0 in real mode). */
	s->cpl = (r->cr0 & X86_CR0_PE) ? r->ss.dpl : 0;
	s->cr0 = r->cr0;
	s->cr2 = r->cr2;
	s->cr3 = r->cr3;
	s->cr4 = r->cr4;
	vmcb->control.int_ctl = (vmcb->control.int_ctl & ~0xfU) | r->cr8;
	s->efer = r->efer | EFER_SVME;
}

static u64 svm_get_cr(struct kestrel_vcpu *vcpu, int cr)
{
	struct vmcb_k *vmcb = to_svm(vcpu)->vmcb;

	switch (cr) {
	case 0: return vmcb->save.cr0;
	case 2: return vmcb->save.cr2;
	case 3: return vmcb->save.cr3;
	case 4: return vmcb->save.cr4;
	case 8: return vmcb->control.int_ctl & 0xf;
	}
	return 0;
}

static void svm_set_cr4(struct kestrel_vcpu *vcpu, u64 val)
{
	to_svm(vcpu)->vmcb->save.cr4 = val;
}

static u64 svm_get_efer(struct kestrel_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->save.efer & ~EFER_SVME;
}

static void svm_set_efer(struct kestrel_vcpu *vcpu, u64 val)
{
	to_svm(vcpu)->vmcb->save.efer = val | EFER_SVME;
}

static u64 svm_get_pat(struct kestrel_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->save.g_pat;
}

static void svm_set_pat(struct kestrel_vcpu *vcpu, u64 val)
{
	to_svm(vcpu)->vmcb->save.g_pat = val;
}

static void svm_get_seg(struct kestrel_vcpu *vcpu, int seg,
			struct kestrel_segment *out)
{
	struct vmcb_save_k *s = &to_svm(vcpu)->vmcb->save;
	const struct vmcb_seg_k *v[] = {
		[KSEG_ES] = &s->es, [KSEG_CS] = &s->cs, [KSEG_SS] = &s->ss,
		[KSEG_DS] = &s->ds, [KSEG_FS] = &s->fs, [KSEG_GS] = &s->gs,
		[KSEG_TR] = &s->tr, [KSEG_LDTR] = &s->ldtr,
	};

	svm_seg_to_user(v[seg], out);
}

/* NPT entries: ordinary x86 page-table format, user bit required. */
/* NPT entries are x86 page-table entries, user pages to the walk. */
static const struct kestrel_npt_format svm_npt_format = {
	.table		= _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED,
	.leaf		= _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED,
	.write		= _PAGE_RW | _PAGE_DIRTY,
	.huge		= _PAGE_PSE,
	.writable	= _PAGE_RW,
	.accessed	= _PAGE_ACCESSED,
};

static void svm_set_cr2(struct kestrel_vcpu *vcpu, u64 val)
{
	to_svm(vcpu)->vmcb->save.cr2 = val;
}

/* With V_INTR_MASKING, the guest's CR8 is V_TPR: MOV CR8 never exits. */
static void svm_set_cr8(struct kestrel_vcpu *vcpu, u64 val)
{
	struct vmcb_control_k *c = &to_svm(vcpu)->vmcb->control;

	c->int_ctl = (c->int_ctl & ~SVM_INT_CTL_V_TPR_MASK) | (val & 0xf);
}

/* Guest TSC = host TSC + offset: RDTSC runs unintercepted with it. */
static void svm_set_tsc_offset(struct kestrel_vcpu *vcpu, u64 offset)
{
	to_svm(vcpu)->vmcb->control.tsc_offset = offset;
}

/* ---- interrupts -------------------------------------------------------------- */

/*
 * The shadow of STI or MOV SS covers one instruction: once x86.c has
 * completed that instruction itself (RIP moved on), it is over.
 */
static bool svm_in_shadow(struct kestrel_vcpu *vcpu, struct vmcb_k *vmcb)
{
	return (vmcb->control.int_state & SVM_INT_STATE_SHADOW) &&
	       vmcb->save.rip == vcpu->arch.rip;
}

static bool svm_interrupt_allowed(struct kestrel_vcpu *vcpu)
{
	struct vmcb_k *vmcb = to_svm(vcpu)->vmcb;

	return (vcpu->arch.rflags & X86_EFLAGS_IF) &&
	       !svm_in_shadow(vcpu, vmcb) &&
	       !(vmcb->control.event_inj & SVM_EVTINJ_VALID);
}

static void svm_inject_irq(struct kestrel_vcpu *vcpu, u8 vector)
{
	to_svm(vcpu)->vmcb->control.event_inj = vector | SVM_EVTINJ_VALID |
		(SVM_EVTINJ_TYPE_INTR << SVM_EVTINJ_TYPE_SHIFT);
}

static void svm_cancel_exception(struct kestrel_vcpu *vcpu)
{
	struct vmcb_control_k *c = &to_svm(vcpu)->vmcb->control;
	u32 type = (c->event_inj & SVM_EVTINJ_TYPE_MASK) >> SVM_EVTINJ_TYPE_SHIFT;

	if ((c->event_inj & SVM_EVTINJ_VALID) && type == SVM_EVTINJ_TYPE_EXEPT)
		c->event_inj = 0;
}

/*
 * The window is a virtual interrupt (V_IRQ) of the pending interrupt's
 * priority, with its VINTR intercepted: the CPU exits exactly when the
 * guest would take it, which covers RFLAGS.IF, the interrupt shadow and
 * V_TPR (a guest lowering CR8 below the class) in one mechanism.
 */
static void svm_set_irq_window(struct kestrel_vcpu *vcpu, int prio)
{
	struct vmcb_control_k *c = &to_svm(vcpu)->vmcb->control;

	c->int_ctl &= ~(SVM_INT_CTL_V_IRQ | SVM_INT_CTL_V_INTR_PRIO_MASK |
			SVM_INT_CTL_V_IGN_TPR);
	if (prio < 0) {
		c->intercept_misc1 &= ~SVM_INTERCEPT_VINTR;
		c->intercept_cr &= ~SVM_INTERCEPT_CR8_WRITE;
		return;
	}
	c->int_ctl |= SVM_INT_CTL_V_IRQ |
		      (prio & 0xf) << SVM_INT_CTL_V_INTR_PRIO_SHIFT;
	c->intercept_misc1 |= SVM_INTERCEPT_VINTR;
	/*
	 * CR8 writes exit while the window is open: the APIC's TPR then
	 * changes with the exit, and QEMU's emulated SVM, which asserts when
	 * a guest's CR8 write meets a pending virtual interrupt, never sees
	 * one.
	 */
	c->intercept_cr |= SVM_INTERCEPT_CR8_WRITE;
}

/* ---- the world switch ------------------------------------------------------- */

/*
 * A fresh ASID makes the guest's old translations unreachable, which is
 * how we flush without FlushByASID.  When a CPU runs out, a new generation
 * starts with a full flush, and every vCPU picks again.
 */
static void svm_new_asid(struct svm_vcpu *sv, struct svm_cpu *sd, int cpu)
{
	if (sd->next_asid > svm_max_asid) {
		sd->asid_gen++;
		sd->next_asid = 1;
		sv->vmcb->control.tlb_ctl = SVM_TLB_CONTROL_FLUSH_ALL_ASID;
	}
	sv->asid = sd->next_asid++;
	sv->asid_gen = sd->asid_gen;
	sv->cpu = cpu;
	sv->vmcb->control.asid = sv->asid;
}

static void svm_inject(struct kestrel_vcpu *vcpu, struct vmcb_control_k *c)
{
	struct kestrel_x86_event *e = &vcpu->arch.exception;

	/* An event cut short by the last exit goes first. */
	if ((c->event_inj & SVM_EVTINJ_VALID) || !e->pending)
		return;
	c->event_inj = e->vector | SVM_EVTINJ_VALID |
		       (SVM_EVTINJ_TYPE_EXEPT << SVM_EVTINJ_TYPE_SHIFT);
	if (e->has_error)
		c->event_inj |= SVM_EVTINJ_VALID_ERR | (u64)e->error << 32;
	e->pending = false;
}

/*
 * An exit during event delivery (a nested page fault on the IDT, say)
 * loses the event unless it is injected again.  Software interrupts and
 * INT3/INTO are not: RIP still points at the instruction, which re-runs.
 */
static void svm_complete_event(struct vmcb_control_k *c)
{
	u32 info = c->exit_int_info;
	u32 type = (info & SVM_EVTINJ_TYPE_MASK) >> SVM_EVTINJ_TYPE_SHIFT;
	u8 vector = info & 0xff;

	c->event_inj = 0;
	if (!(info & SVM_EVTINJ_VALID))
		return;
	if (type == SVM_EVTINJ_TYPE_SOFT ||
	    (type == SVM_EVTINJ_TYPE_EXEPT && (vector == 3 || vector == 4)))
		return;
	c->event_inj = c->exit_int_info;
}

/*
 * A #DB or #AC exit: x86.c injects it again.  If it struck while another
 * exception was being delivered, it replaces that one (both are benign:
 * the SDM handles such pairs serially, and a fault re-raises the first
 * when its instruction runs again).  If it struck while an interrupt or
 * NMI was being delivered, that event goes in again and the fault, which
 * its delivery will raise again, is dropped.
 */
static enum kestrel_x86_exit_reason svm_reflect(struct vmcb_control_k *c,
						enum kestrel_x86_exit_reason r)
{
	u32 type = (c->event_inj & SVM_EVTINJ_TYPE_MASK) >> SVM_EVTINJ_TYPE_SHIFT;

	if (!(c->event_inj & SVM_EVTINJ_VALID))
		return r;
	if (type != SVM_EVTINJ_TYPE_EXEPT)
		return X86_EXIT_NONE;
	c->event_inj = 0;
	return r;
}

static void svm_describe_exit(struct kestrel_vcpu *vcpu, struct vmcb_k *vmcb,
			      struct kestrel_x86_exit *e)
{
	struct vmcb_control_k *c = &vmcb->control;
	u64 code = c->exit_code;

	e->code = code;
	e->info1 = c->exit_info_1;
	e->info2 = c->exit_info_2;
	e->int_info = c->exit_int_info;
	e->insn_len = 0;
	if (svm_has_nrips && c->next_rip > vmcb->save.rip &&
	    c->next_rip - vmcb->save.rip <= 15)
		e->insn_len = c->next_rip - vmcb->save.rip;

	switch (code) {
	case SVM_EXIT_INTR:
	case SVM_EXIT_NMI:
	case SVM_EXIT_SMI:
		e->reason = X86_EXIT_NONE;	/* the host took it on STGI */
		break;
	case SVM_EXIT_EXCP_BASE + X86_TRAP_MC:
		/* A machine check hit while in the guest: the host's. */
		asm volatile("int $0x12");
		e->reason = X86_EXIT_NONE;
		break;
	case SVM_EXIT_EXCP_BASE + X86_TRAP_DB:
		/*
		 * The VMCB's DR6 took the cause (a guest's TF; its own
		 * breakpoints are virtual and never armed).  The guest's DR6 is
		 * x86.c's: clear this one for the next #DB.
		 */
		e->exc.dr6 = vmcb->save.dr6;
		vmcb->save.dr6 = DR6_RESERVED;
		e->reason = svm_reflect(c, X86_EXIT_EXC_DB);
		break;
	case SVM_EXIT_EXCP_BASE + X86_TRAP_AC:
		e->exc.error = e->info1;
		e->reason = svm_reflect(c, X86_EXIT_EXC_AC);
		break;
	case SVM_EXIT_CPUID:
		e->reason = X86_EXIT_CPUID;
		break;
	case SVM_EXIT_VINTR:
		e->reason = X86_EXIT_IRQ_WINDOW;
		break;
	case SVM_EXIT_HLT:
		e->reason = X86_EXIT_HLT;
		break;
	case SVM_EXIT_IOIO:
		e->reason = X86_EXIT_IO;
		e->io.port = e->info1 >> 16;
		e->io.in = e->info1 & SVM_IOIO_TYPE_IN;
		e->io.string = e->info1 & SVM_IOIO_STR;
		e->io.rep = e->info1 & SVM_IOIO_REP;
		e->io.size = (e->info1 & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT;
		/* IOIO always reports the next RIP, NRIP-save or not. */
		if (!e->io.string)
			vcpu->arch.rip = e->info2;
		break;
	case SVM_EXIT_MSR:
		e->reason = e->info1 ? X86_EXIT_WRMSR : X86_EXIT_RDMSR;
		break;
	case SVM_EXIT_WRITE_CR0 + 4:
	case SVM_EXIT_WRITE_CR0 + 8:
		e->reason = X86_EXIT_CR_WRITE;
		e->cr.cr = code - SVM_EXIT_WRITE_CR0;
		break;
	case SVM_EXIT_READ_DR0 ... SVM_EXIT_WRITE_DR7:
		e->reason = X86_EXIT_DR_ACCESS;
		break;
	case SVM_EXIT_NPF:
		e->reason = X86_EXIT_NPF;
		e->npf.gpa = e->info2;
		e->npf.error = e->info1;
		e->npf.walk = e->info1 & BIT_ULL(33);
		break;
	case SVM_EXIT_SHUTDOWN:
		e->reason = X86_EXIT_SHUTDOWN;
		break;
	case SVM_EXIT_XSETBV:
		e->reason = X86_EXIT_XSETBV;	/* guest XCR0: fpu.c */
		break;
	case SVM_EXIT_RSM:
	case SVM_EXIT_INVLPGA:
	case SVM_EXIT_VMRUN ... SVM_EXIT_RDTSCP:
	case SVM_EXIT_MONITOR ... SVM_EXIT_MWAIT_COND:
	case SVM_EXIT_RDPRU:
	case SVM_EXIT_INVLPGB ... SVM_EXIT_TLBSYNC:
		/* Nested SVM, MONITOR/MWAIT, RDTSCP...: not offered. */
		e->reason = X86_EXIT_UD;
		break;
	case SVM_EXIT_RDPMC:
		e->reason = X86_EXIT_GP;	/* no PMU */
		break;
	case SVM_EXIT_INVD:
	case SVM_EXIT_WBINVD:
		e->reason = X86_EXIT_SKIP;	/* coherent memory: no-ops */
		break;
	case SVM_EXIT_INVALID:
		e->reason = X86_EXIT_ENTRY_FAILED;
		break;
	default:
		e->reason = X86_EXIT_UNHANDLED;
		break;
	}
}

/*
 * Did #VMEXIT save the host's own state, as VMRUN had saved it, as the
 * guest's?  No CPU should; QEMU's multi-threaded TCG sometimes does
 * (Documentation/design.rst), and the owner must never read host
 * addresses through GET_REGS, nor the guest run on in host state.  Only a
 * guest that already knew the host's CR3 and this RIP could look the same,
 * and all it gets is its own reset.
 */
static bool svm_state_lost(const struct vmcb_k *vmcb)
{
	return vmcb->save.rip == (unsigned long)__kestrel_svm_vmexit &&
	       vmcb->save.cr3 == __read_cr3();
}

/* GIF clear: nothing instrumentable runs while the host thinks it's a guest. */
static noinstr void svm_enter_exit(unsigned long vmcb_pa,
				   unsigned long host_save_pa,
				   unsigned long *regs)
{
	kestrel_guest_state_enter_irqoff();
	__kestrel_svm_vmrun(vmcb_pa, host_save_pa, regs);
	kestrel_guest_state_exit_irqoff();
}

/* x86.h: preemption and interrupts off, vcpu->mode IN_GUEST. */
static void svm_run(struct kestrel_vcpu *vcpu, struct kestrel_x86_exit *exit,
		    bool vm_flush)
{
	struct svm_vcpu *sv = to_svm(vcpu);
	struct vmcb_k *vmcb = sv->vmcb;
	struct kestrel_arch_vcpu *a = &vcpu->arch;
	struct svm_cpu *sd = this_cpu_ptr(svm_cpus);
	int cpu = smp_processor_id();
	u64 host_tsc_aux = 0;

	lockdep_assert_irqs_disabled();
	if (!svm_in_shadow(vcpu, vmcb))
		vmcb->control.int_state &= ~SVM_INT_STATE_SHADOW;
	vmcb->save.rax = a->regs[KREG_RAX];
	vmcb->save.rsp = a->regs[KREG_RSP];
	vmcb->save.rip = a->rip;
	vmcb->save.rflags = a->rflags;
	vmcb->save.dr7 = 0x400;		/* guest breakpoints are virtual */
	svm_inject(vcpu, &vmcb->control);

	/*
	 * A new ASID is a clean TLB for this VM on this CPU: on arrival from
	 * elsewhere, after the CPU's ASIDs wrapped, when the VM's tables lost
	 * entries, and for the guest's own flush.
	 */
	if (sv->cpu != cpu || sv->asid_gen != sd->asid_gen || vm_flush ||
	    a->tlb_flush_pending)
		svm_new_asid(sv, sd, cpu);

	asm volatile("clgi" ::: "memory");
	/*
	 * RDPID cannot be intercepted: the guest's TSC_AUX must be in the
	 * MSR while it runs.  The host's goes back before STGI, so nothing
	 * in the host (an NMI, an interrupt, preemption, the return to user
	 * space with its vDSO getcpu) ever sees the guest's: two WRMSRs per
	 * entry, and none when both agree.
	 */
	if (svm_has_tsc_aux) {
		rdmsrl(MSR_TSC_AUX, host_tsc_aux);
		if (host_tsc_aux != a->msrs.tsc_aux)
			wrmsrl(MSR_TSC_AUX, a->msrs.tsc_aux);
	}
	svm_enter_exit(sv->vmcb_pa, page_to_phys(sd->host_save), a->regs);
	if (svm_has_tsc_aux && host_tsc_aux != a->msrs.tsc_aux)
		wrmsrl(MSR_TSC_AUX, host_tsc_aux);
	/* #VMEXIT clears DR7: put the host's breakpoints back. */
	if (hw_breakpoint_active())
		hw_breakpoint_restore();
	asm volatile("stgi" ::: "memory");

	vmcb->control.tlb_ctl = 0;
	a->regs[KREG_RAX] = vmcb->save.rax;
	a->regs[KREG_RSP] = vmcb->save.rsp;
	a->rip = vmcb->save.rip;
	a->rflags = vmcb->save.rflags;
	svm_complete_event(&vmcb->control);
	svm_describe_exit(vcpu, vmcb, exit);
	if (unlikely(svm_state_lost(vmcb)))
		exit->reason = X86_EXIT_STATE_LOST;
}

const struct kestrel_backend_ops kestrel_svm_ops = {
	.name			= "svm",
	.backend_id		= KESTREL_BACKEND_SVM,
	.probe			= svm_probe,
	.hardware_setup		= svm_hardware_setup,
	.hardware_unsetup	= svm_hardware_unsetup,
	.nr_asids		= svm_nr_asids,
	.cpu_enable		= svm_cpu_enable,
	.cpu_disable		= svm_cpu_disable,
	.vcpu_create		= svm_vcpu_create,
	.vcpu_free		= svm_vcpu_free,
	.vcpu_reset		= svm_vcpu_reset,
	.get_sregs		= svm_get_sregs,
	.set_sregs		= svm_set_sregs,
	.get_cr			= svm_get_cr,
	.set_cr4		= svm_set_cr4,
	.get_efer		= svm_get_efer,
	.set_efer		= svm_set_efer,
	.get_pat		= svm_get_pat,
	.set_pat		= svm_set_pat,
	.get_seg		= svm_get_seg,
	.set_cr2		= svm_set_cr2,
	.set_cr8		= svm_set_cr8,
	.set_tsc_offset		= svm_set_tsc_offset,
	.interrupt_allowed	= svm_interrupt_allowed,
	.inject_irq		= svm_inject_irq,
	.set_irq_window		= svm_set_irq_window,
	.cancel_exception	= svm_cancel_exception,
	.npt_format		= &svm_npt_format,
	.run			= svm_run,
};
