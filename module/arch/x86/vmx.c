// SPDX-License-Identifier: GPL-2.0
/*
 * The Intel VMX backend.  It owns the VMXON regions, one VMCS per vCPU,
 * VPIDs, EPT invalidation and the world switch, and reports exits in
 * architectural terms.  Like svm.c it validates nothing: state reaches it
 * through x86.c, already checked.
 *
 * Requirements: EPT (with 2 MiB pages and INVEPT), unrestricted guest (so
 * real mode runs natively, as on SVM), TSC offsetting, and the controls
 * below, all fitted to the capability MSRs (the "true" ones where
 * offered).  VPID, a TPR shadow and EPT A/D bits are used when present.
 *
 * A VMCS is active on at most one CPU.  Every VMCS access, from the run
 * loop or an ioctl, first makes it current on this CPU (vmx_load()); a
 * vCPU whose thread moved is VMCLEARed on its old CPU by IPI before the
 * new CPU loads it, and then needs VMLAUNCH again.  Each CPU keeps a list
 * of the VMCSs active on it, cleared before VMXOFF (hotplug, last VM gone).
 *
 * MSRs: the guest owns FS/GS base, KERNEL_GS_BASE, the SYSENTER MSRs and
 * STAR/LSTAR/CSTAR/SFMASK directly (the set SVM hands over with VMLOAD).
 * The VMCS switches FS/GS base and SYSENTER; the other five are switched
 * by the VM-entry MSR-load / VM-exit MSR-store and MSR-load areas, which
 * keeps host and guest values apart without a window where host code runs
 * on guest syscall entry points.  Everything else is intercepted.
 */
#include <linux/module.h>
#include <linux/idr.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <asm/cpu_entry_area.h>
#include <asm/debugreg.h>
#include <asm/desc.h>
#ifdef KESTREL_HAVE_ASM_GSSEG_H
#include <asm/gsseg.h>
#endif
#include <asm/msr.h>
#include <asm/processor-flags.h>
#include <asm/special_insns.h>
#include <asm/tlbflush.h>

#include "x86.h"
#include "vmx.h"

/* vmx_vmrun.S writes HOST_RSP by number. */
static_assert(VMCS_HOST_RSP == 0x6c14);

/* MSRs the guest owns that the VMCS does not switch (see above). */
static const u32 vmx_switched_msrs[] = {
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE,
};

#define VMX_NR_SWITCHED		ARRAY_SIZE(vmx_switched_msrs)
#define VMX_SW_KGS		4	/* index of MSR_KERNEL_GS_BASE */
#define VMX_HOST_AREA		(PAGE_SIZE / 2)	/* offset in the MSR page */

struct vmx_config {
	u32	revision;
	u32	pin, cpu, cpu2, exit, entry;	/* controls every VMCS starts with */
	u64	ept_cap;
	u64	eptp_flags;		/* memory type and A/D of the EPT pointer */
	unsigned long cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
	unsigned long cr0_mask;		/* CR0 bits the host owns */
	bool	vpid, ept_ad, tpr_shadow;
	bool	invept_single, invvpid_single;
	u32	timer;			/* preemption timer per entry, or 0 */
};

static struct vmx_config vmx_cfg;

/*
 * Bochs 2.7 does not exit on host interrupts while the guest runs with
 * RFLAGS.IF clear, so such a guest would hold its CPU until it enables
 * interrupts.  The preemption timer bounds that: the guest exits at least
 * this often.  Real CPUs need no such thing (0, the default).
 */
static unsigned int vmx_timer_us;
module_param_named(vmx_preemption_timer_us, vmx_timer_us, uint, 0444);
MODULE_PARM_DESC(vmx_preemption_timer_us,
		 "VMX: exit the guest at least every N us (0: off), for CPU emulators that miss host interrupts while the guest has IF=0");

struct vmx_vcpu;

struct vmx_cpu {
	struct vmcs_hdr	*vmxon;		/* this CPU's VMXON region */
	struct list_head loaded;	/* VMCSs active here (irqs off) */
	struct vmx_vcpu	*current_vmcs;	/* the one VMPTRLD made current */
};

struct vmx_vcpu {
	struct kestrel_vcpu *vcpu;
	struct vmcs_hdr	*vmcs;
	u64		vmcs_pa;
	u64		eptp;
	u16		vpid;		/* 0: none */

	/*
	 * Where the VMCS is active (-1: nowhere, cleared).  Written by the
	 * vCPU thread and, when clearing, by that CPU with interrupts off.
	 */
	int		cpu;
	struct list_head loaded_node;	/* on that CPU's vmx_cpu.loaded */
	bool		launched;	/* VMRESUME, not VMLAUNCH */
	int		host_cpu;	/* host fields written for this CPU */
	int		last_run_cpu;	/* TLB: where it last entered */

	/* Per-entry state kept here so the ops need not touch the VMCS. */
	u32		cpu_ctls;	/* primary controls as written */
	u32		tpr_threshold;
	u32		intr_state;	/* guest interruptibility at exit */
	unsigned long	exit_rip;	/* RIP at the last exit */
	u32		inject_info;	/* event for the next entry, or 0 */
	u32		inject_err;
	int		window_prio;	/* -1: no interrupt window wanted */
	unsigned long	cr2;		/* not in the VMCS: switched by hand */
	u8		cr8;		/* without a TPR shadow */
	u64		tsc_offset;
	bool		tsc_offset_dirty;

	u8		*vapic;		/* virtual-APIC page (TPR shadow) */
	struct vmx_msr_entry *guest_msrs;	/* entry load, exit store */
	struct vmx_msr_entry *host_msrs;	/* exit load */
};

static struct vmx_cpu __percpu *vmx_cpus;
static struct page *vmx_msr_bitmap;
static DEFINE_IDA(vmx_vpids);

static inline struct vmx_vcpu *to_vmx(struct kestrel_vcpu *vcpu)
{
	return vcpu->arch.backend;
}

/* ---- VMX instructions ------------------------------------------------------ */

static __always_inline unsigned long vmcs_read(unsigned long field)
{
	unsigned long val;

	asm volatile("vmread %1, %0" : "=r" (val) : "r" (field) : "cc");
	return val;
}

static noinline void vmx_vmwrite_error(unsigned long field, unsigned long val)
{
	pr_err_ratelimited("kestrel: VMWRITE %#lx = %#lx failed (VM-instruction error %lu)\n",
			   field, val, vmcs_read(VMCS_INSN_ERROR));
}

static __always_inline void vmcs_write(unsigned long field, unsigned long val)
{
	asm goto("vmwrite %1, %0\n\t"
		 "jbe %l[fail]"
		 : : "r" (field), "rm" (val) : "cc" : fail);
	return;
fail:
	vmx_vmwrite_error(field, val);
}

static int vmx_on(u64 pa)
{
	asm goto("vmxon %0\n\t"
		 "jbe %l[fail]"
		 : : "m" (pa) : "cc", "memory" : fail);
	return 0;
fail:
	return -EIO;
}

static void vmx_off(void)
{
	asm volatile("vmxoff" : : : "cc", "memory");
}

static void vmcs_clear(u64 pa)
{
	asm goto("vmclear %0\n\t"
		 "jbe %l[fail]"
		 : : "m" (pa) : "cc", "memory" : fail);
	return;
fail:
	pr_err_ratelimited("kestrel: VMCLEAR %#llx failed\n", pa);
}

static void vmcs_load(u64 pa)
{
	asm goto("vmptrld %0\n\t"
		 "jbe %l[fail]"
		 : : "m" (pa) : "cc", "memory" : fail);
	return;
fail:
	pr_err_ratelimited("kestrel: VMPTRLD %#llx failed\n", pa);
}

static void vmx_invept(unsigned long type, u64 eptp)
{
	struct { u64 eptp, reserved; } desc = { eptp, 0 };

	asm goto("invept %0, %1\n\t"
		 "jbe %l[fail]"
		 : : "m" (desc), "r" (type) : "cc", "memory" : fail);
	return;
fail:
	pr_err_ratelimited("kestrel: INVEPT type %lu failed\n", type);
}

static void vmx_invvpid(unsigned long type, u16 vpid)
{
	struct { u64 vpid, gva; } desc = { vpid, 0 };

	asm goto("invvpid %0, %1\n\t"
		 "jbe %l[fail]"
		 : : "m" (desc), "r" (type) : "cc", "memory" : fail);
	return;
fail:
	pr_err_ratelimited("kestrel: INVVPID type %lu failed\n", type);
}

/* Drop the guest-physical translations of @eptp on this CPU. */
static void vmx_flush_ept(u64 eptp)
{
	if (vmx_cfg.invept_single)
		vmx_invept(VMX_INVEPT_SINGLE, eptp);
	else
		vmx_invept(VMX_INVEPT_ALL, 0);
}

static void vmx_flush_vpid(u16 vpid)
{
	if (vmx_cfg.invvpid_single)
		vmx_invvpid(VMX_INVVPID_SINGLE, vpid);
	else
		vmx_invvpid(VMX_INVVPID_ALL, 0);
}

/* ---- load time --------------------------------------------------------------- */

/*
 * Fit a control word to its capability MSR: bits 31:0 are the allowed
 * 0-settings (a set bit must be 1), bits 63:32 the allowed 1-settings.
 * @want is required, @opt taken when offered, and the result must not have
 * any of @deny, which Kestrel would not handle.
 */
static int vmx_fit(u32 msr, u32 want, u32 opt, u32 deny, const char *what,
		   u32 *out)
{
	u64 cap;
	u32 must, may;

	rdmsrl(msr, cap);
	must = cap;
	may = cap >> 32;
	if (want & ~may) {
		kestrel_err("VMX %s controls lack %#x, which Kestrel needs\n",
			    what, want & ~may);
		return -EOPNOTSUPP;
	}
	*out = must | want | (opt & may);
	if (*out & deny) {
		kestrel_err("VMX %s controls force %#x on, which Kestrel cannot handle\n",
			    what, *out & deny);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int vmx_probe_controls(u64 basic)
{
	bool true_ctls = basic & VMX_BASIC_TRUE_CONTROLS;
	u32 cpu_want, cpu_deny, may;
	u64 cap;
	int r;

	r = vmx_fit(true_ctls ? VMX_MSR_TRUE_PINBASED_CTLS : VMX_MSR_PINBASED_CTLS,
		    PIN_EXT_INTR_EXITING | PIN_NMI_EXITING,
		    vmx_timer_us ? PIN_PREEMPTION_TIMER : 0, 0, "pin-based",
		    &vmx_cfg.pin);
	if (r)
		return r;
	if (vmx_cfg.pin & PIN_PREEMPTION_TIMER) {
		u64 ticks;

		rdmsrl(VMX_MSR_MISC, cap);
		ticks = (u64)vmx_timer_us * tsc_khz / 1000;
		ticks >>= VMX_MISC_TIMER_RATE(cap);
		vmx_cfg.timer = clamp_t(u64, ticks, 1, U32_MAX);
	} else if (vmx_timer_us) {
		kestrel_warn("VMX has no preemption timer: vmx_preemption_timer_us ignored\n");
	}

	/* Without a TPR shadow, MOV CR8 must exit to be emulated. */
	rdmsrl(true_ctls ? VMX_MSR_TRUE_PROCBASED_CTLS : VMX_MSR_PROCBASED_CTLS,
	       cap);
	may = cap >> 32;
	if (!(may & CPU_INTR_WINDOW_EXITING)) {
		kestrel_err("VMX has no interrupt-window exiting\n");
		return -EOPNOTSUPP;
	}
	cpu_want = CPU_HLT_EXITING | CPU_MWAIT_EXITING | CPU_RDPMC_EXITING |
		   CPU_MOV_DR_EXITING | CPU_UNCOND_IO_EXITING |
		   CPU_USE_MSR_BITMAPS | CPU_MONITOR_EXITING |
		   CPU_USE_TSC_OFFSETTING | CPU_SECONDARY_CTLS;
	cpu_deny = CPU_INTR_WINDOW_EXITING | CPU_INVLPG_EXITING |
		   CPU_RDTSC_EXITING | CPU_CR3_LOAD_EXITING |
		   CPU_CR3_STORE_EXITING | CPU_NMI_WINDOW_EXITING |
		   CPU_USE_IO_BITMAPS | CPU_MONITOR_TRAP_FLAG | CPU_PAUSE_EXITING;
	if (!(may & CPU_TPR_SHADOW))
		cpu_want |= CPU_CR8_LOAD_EXITING | CPU_CR8_STORE_EXITING;
	else
		cpu_deny |= CPU_CR8_LOAD_EXITING | CPU_CR8_STORE_EXITING;
	r = vmx_fit(true_ctls ? VMX_MSR_TRUE_PROCBASED_CTLS : VMX_MSR_PROCBASED_CTLS,
		    cpu_want, CPU_TPR_SHADOW, cpu_deny,
		    "processor-based", &vmx_cfg.cpu);
	if (r)
		return r;
	vmx_cfg.tpr_shadow = vmx_cfg.cpu & CPU_TPR_SHADOW;

	/* Secondary controls have no must-be-1 bits: deny is implied. */
	r = vmx_fit(VMX_MSR_PROCBASED_CTLS2,
		    CPU2_ENABLE_EPT | CPU2_UNRESTRICTED_GUEST,
		    CPU2_ENABLE_VPID | CPU2_WBINVD_EXITING, 0, "secondary",
		    &vmx_cfg.cpu2);
	if (r) {
		kestrel_err("Kestrel needs EPT and unrestricted guest (Westmere or later)\n");
		return r;
	}

	r = vmx_fit(true_ctls ? VMX_MSR_TRUE_EXIT_CTLS : VMX_MSR_EXIT_CTLS,
		    EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_PAT | EXIT_LOAD_PAT |
		    EXIT_SAVE_EFER | EXIT_LOAD_EFER, 0, EXIT_ACK_INTR_ON_EXIT,
		    "VM-exit", &vmx_cfg.exit);
	if (r)
		return r;

	rdmsrl(true_ctls ? VMX_MSR_TRUE_ENTRY_CTLS : VMX_MSR_ENTRY_CTLS, cap);
	if (!((cap >> 32) & ENTRY_IA32E_MODE)) {
		kestrel_err("VMX cannot enter 64-bit guests\n");
		return -EOPNOTSUPP;
	}
	return vmx_fit(true_ctls ? VMX_MSR_TRUE_ENTRY_CTLS : VMX_MSR_ENTRY_CTLS,
		       ENTRY_LOAD_DEBUG_CTLS | ENTRY_LOAD_PAT | ENTRY_LOAD_EFER,
		       0, ENTRY_IA32E_MODE, "VM-entry", &vmx_cfg.entry);
}

/*
 * EPT entries: read/write/execute permissions, the leaf's memory type
 * from the EPT (WB, guest PAT ignored), and accessed/dirty bits only where
 * the CPU keeps them (vmx_probe_ept() completes it).
 */
static struct kestrel_npt_format vmx_npt_format = {
	.table		= VMX_EPT_READ | VMX_EPT_WRITE | VMX_EPT_EXEC,
	.leaf		= VMX_EPT_READ | VMX_EPT_EXEC | VMX_EPT_IGNORE_PAT |
			  VMX_EPT_MT_WB << VMX_EPT_MT_SHIFT,
	.write		= VMX_EPT_WRITE,
	.huge		= VMX_EPT_LARGE,
	.writable	= VMX_EPT_WRITE,
};

static int vmx_probe_ept(void)
{
	u64 cap;

	rdmsrl(VMX_MSR_EPT_VPID_CAP, cap);
	vmx_cfg.ept_cap = cap;
	if (!(cap & VMX_EPT_CAP_WALK4) || !(cap & VMX_EPT_CAP_2M) ||
	    !(cap & VMX_EPT_CAP_INVEPT) ||
	    !(cap & (VMX_EPT_CAP_INVEPT_SINGLE | VMX_EPT_CAP_INVEPT_ALL)) ||
	    !(cap & (VMX_EPT_CAP_WB | VMX_EPT_CAP_UC))) {
		kestrel_err("EPT lacks what Kestrel needs (4-level walks, 2 MiB pages, INVEPT, WB or UC tables): capabilities %#llx\n",
			    cap);
		return -EOPNOTSUPP;
	}
	vmx_cfg.invept_single = cap & VMX_EPT_CAP_INVEPT_SINGLE;
	vmx_cfg.eptp_flags = (cap & VMX_EPT_CAP_WB ? VMX_EPT_MT_WB : VMX_EPT_MT_UC);
	vmx_cfg.ept_ad = cap & VMX_EPT_CAP_AD;
	if (vmx_cfg.ept_ad) {
		vmx_cfg.eptp_flags |= VMX_EPTP_AD;
		vmx_npt_format.leaf |= VMX_EPT_ACCESSED;
		vmx_npt_format.write |= VMX_EPT_DIRTY;
		vmx_npt_format.accessed = VMX_EPT_ACCESSED;
	}

	/* A VPID is only worth having if its translations can be flushed. */
	if ((vmx_cfg.cpu2 & CPU2_ENABLE_VPID) &&
	    (!(cap & VMX_VPID_CAP_INVVPID) ||
	     !(cap & (VMX_VPID_CAP_INVVPID_SINGLE | VMX_VPID_CAP_INVVPID_ALL))))
		vmx_cfg.cpu2 &= ~CPU2_ENABLE_VPID;
	vmx_cfg.vpid = vmx_cfg.cpu2 & CPU2_ENABLE_VPID;
	vmx_cfg.invvpid_single = cap & VMX_VPID_CAP_INVVPID_SINGLE;
	return 0;
}

static int vmx_probe(void)
{
	u64 fc, basic;
	int r;

	if (!(cpuid_ecx(1) & BIT(5))) {
		kestrel_err("this Intel CPU has no VMX (VT-x)\n");
		return -ENODEV;
	}
	rdmsrl(VMX_MSR_FEATURE_CONTROL, fc);
	if ((fc & VMX_FC_LOCKED) && !(fc & VMX_FC_VMX_OUTSIDE_SMX)) {
		kestrel_err("VMX is disabled by the firmware (IA32_FEATURE_CONTROL locked without VMX outside SMX); enable \"Intel Virtualization Technology\" / VT-x in the firmware setup\n");
		return -EOPNOTSUPP;
	}

	rdmsrl(VMX_MSR_BASIC, basic);
	if (VMX_BASIC_VMCS_SIZE(basic) > PAGE_SIZE ||
	    (basic & VMX_BASIC_32BIT_ADDR) || VMX_BASIC_MEMTYPE(basic) != 6) {
		kestrel_err("unsupported VMX (IA32_VMX_BASIC %#llx)\n", basic);
		return -EOPNOTSUPP;
	}
	vmx_cfg.revision = VMX_BASIC_REVISION(basic);

	r = vmx_probe_controls(basic);
	if (r)
		return r;
	r = vmx_probe_ept();
	if (r)
		return r;

	rdmsrl(VMX_MSR_CR0_FIXED0, vmx_cfg.cr0_fixed0);
	rdmsrl(VMX_MSR_CR0_FIXED1, vmx_cfg.cr0_fixed1);
	rdmsrl(VMX_MSR_CR4_FIXED0, vmx_cfg.cr4_fixed0);
	rdmsrl(VMX_MSR_CR4_FIXED1, vmx_cfg.cr4_fixed1);
	/*
	 * The host owns the CR0 bits VMX fixes (NE; PE and PG are free with
	 * unrestricted guest) and CD/NW: guest RAM is ordinary write-back
	 * host memory, so the guest's cache-disable stays in its shadow.
	 */
	vmx_cfg.cr0_mask = X86_CR0_CD | X86_CR0_NW |
			   (vmx_cfg.cr0_fixed0 & ~(X86_CR0_PE | X86_CR0_PG)) |
			   (~vmx_cfg.cr0_fixed1 & 0xffffffffUL);

	kestrel_info("VMX backend: revision %#x, %s controls, EPT (%s tables, A/D %s, INVEPT %s), unrestricted guest, VPID %s, TPR shadow %s, WBINVD exiting %s, preemption timer %u us\n",
		     vmx_cfg.revision, (basic & VMX_BASIC_TRUE_CONTROLS) ? "true" : "default",
		     (vmx_cfg.eptp_flags & 7) == VMX_EPT_MT_WB ? "WB" : "UC",
		     vmx_cfg.ept_ad ? "yes" : "no (pages always young)",
		     vmx_cfg.invept_single ? "single-context" : "global",
		     !vmx_cfg.vpid ? "no" : vmx_cfg.invvpid_single ?
		     "yes (single-context flush)" : "yes (global flush)",
		     vmx_cfg.tpr_shadow ? "yes" : "no (CR8 exits)",
		     (vmx_cfg.cpu2 & CPU2_WBINVD_EXITING) ? "yes" : "no",
		     vmx_cfg.timer ? vmx_timer_us : 0);
	return 0;
}

static void vmx_msr_bitmap_allow(u8 *bitmap, u32 msr)
{
	u32 base;

	if (msr <= 0x1fff)
		base = 0;
	else if (msr >= 0xc0000000 && msr <= 0xc0001fff)
		base = VMX_MSR_BITMAP_READ_HIGH;
	else
		return;
	msr &= 0x1fff;
	bitmap[base + msr / 8] &= ~BIT(msr % 8);
	bitmap[base + VMX_MSR_BITMAP_WRITE_LOW + msr / 8] &= ~BIT(msr % 8);
}

static void vmx_free_cpus(void)
{
	int cpu;

	for_each_possible_cpu(cpu)
		free_page((unsigned long)per_cpu_ptr(vmx_cpus, cpu)->vmxon);
	free_percpu(vmx_cpus);
}

static int vmx_hardware_setup(void)
{
	u8 *bitmap;
	int cpu, i;

	vmx_cpus = alloc_percpu(struct vmx_cpu);
	if (!vmx_cpus)
		return -ENOMEM;
	for_each_possible_cpu(cpu) {
		struct vmx_cpu *vc = per_cpu_ptr(vmx_cpus, cpu);

		INIT_LIST_HEAD(&vc->loaded);
		vc->vmxon = (void *)get_zeroed_page(GFP_KERNEL);
		if (!vc->vmxon)
			goto err;
		vc->vmxon->revision = vmx_cfg.revision;
	}

	/* Every other MSR is intercepted, both ways. */
	vmx_msr_bitmap = alloc_page(GFP_KERNEL);
	if (!vmx_msr_bitmap)
		goto err;
	bitmap = page_address(vmx_msr_bitmap);
	memset(bitmap, 0xff, PAGE_SIZE);
	for (i = 0; i < KESTREL_NR_GUEST_OWNED_MSRS; i++)
		vmx_msr_bitmap_allow(bitmap, kestrel_guest_owned_msrs[i]);
	return 0;
err:
	vmx_free_cpus();
	return -ENOMEM;
}

static void vmx_hardware_unsetup(void)
{
	__free_page(vmx_msr_bitmap);
	vmx_free_cpus();
}

static unsigned int vmx_nr_asids(void)
{
	return vmx_cfg.vpid ? 0xffff : 1;
}

/* ---- per-CPU enable and the VMCSs active on a CPU ----------------------------- */

/* On sv->cpu, interrupts off: write the VMCS back and forget it here. */
static void vmx_clear_local(struct vmx_vcpu *sv)
{
	struct vmx_cpu *vc = this_cpu_ptr(vmx_cpus);

	lockdep_assert_irqs_disabled();
	lockdep_assert(READ_ONCE(sv->cpu) == smp_processor_id());
	vmcs_clear(sv->vmcs_pa);
	list_del(&sv->loaded_node);
	if (vc->current_vmcs == sv)
		vc->current_vmcs = NULL;
	sv->launched = false;
	/* Pairs with smp_load_acquire() in vmx_load(). */
	smp_store_release(&sv->cpu, -1);
}

static void vmx_clear_ipi(void *info)
{
	struct vmx_vcpu *sv = info;

	/* cpu_disable may have cleared it already. */
	if (READ_ONCE(sv->cpu) == smp_processor_id())
		vmx_clear_local(sv);
}

/* Clear the VMCS wherever it is active.  Preemption disabled. */
static void vmx_clear_anywhere(struct vmx_vcpu *sv)
{
	/* Pairs with the release in vmx_clear_local(). */
	int old = smp_load_acquire(&sv->cpu);

	lockdep_assert_preemption_disabled();
	if (old == smp_processor_id()) {
		local_irq_disable();
		vmx_clear_local(sv);
		local_irq_enable();
	} else if (old >= 0) {
		/* An offline CPU cleared its VMCSs on the way down. */
		smp_call_function_single(old, vmx_clear_ipi, sv, 1);
	}
}

/*
 * Make the vCPU's VMCS current on this CPU.  Preemption disabled,
 * interrupts on (the IPI needs them).  A VMCS moving between CPUs must be
 * VMCLEARed where it was active first: that writes its cached state back
 * to memory and resets its launch state, so it is VMLAUNCHed next.
 */
static void vmx_load(struct vmx_vcpu *sv)
{
	struct vmx_cpu *vc = this_cpu_ptr(vmx_cpus);
	int cpu = smp_processor_id();
	unsigned long flags;

	lockdep_assert_preemption_disabled();
	lockdep_assert_irqs_enabled();
	/* Pairs with the release in vmx_clear_local(). */
	if (smp_load_acquire(&sv->cpu) != cpu) {
		vmx_clear_anywhere(sv);
		local_irq_save(flags);
		vmcs_clear(sv->vmcs_pa);
		list_add(&sv->loaded_node, &vc->loaded);
		sv->launched = false;
		WRITE_ONCE(sv->cpu, cpu);
		local_irq_restore(flags);
	}
	local_irq_save(flags);
	if (vc->current_vmcs != sv) {
		vmcs_load(sv->vmcs_pa);
		vc->current_vmcs = sv;
	}
	local_irq_restore(flags);
}

/* For the ops: the VMCS current here until vmx_put(). */
static struct vmx_vcpu *vmx_get(struct kestrel_vcpu *vcpu)
{
	struct vmx_vcpu *sv = to_vmx(vcpu);

	preempt_disable();
	vmx_load(sv);
	return sv;
}

static void vmx_put(void)
{
	preempt_enable();
}

static int vmx_cpu_enable(void)
{
	struct vmx_cpu *vc = this_cpu_ptr(vmx_cpus);
	unsigned long cr0 = read_cr0();
	u64 fc;

	/* Someone else is in VMX operation here: theirs, not ours to take. */
	if (__read_cr4() & X86_CR4_VMXE)
		return -EBUSY;
	rdmsrl(VMX_MSR_FEATURE_CONTROL, fc);
	if (!(fc & VMX_FC_LOCKED))
		wrmsrl(VMX_MSR_FEATURE_CONTROL,
		       fc | VMX_FC_LOCKED | VMX_FC_VMX_OUTSIDE_SMX);
	else if (!(fc & VMX_FC_VMX_OUTSIDE_SMX))
		return -EOPNOTSUPP;
	if ((cr0 & vmx_cfg.cr0_fixed0) != vmx_cfg.cr0_fixed0 ||
	    (cr0 & ~vmx_cfg.cr0_fixed1))
		return -EIO;

	cr4_set_bits_irqsoff(X86_CR4_VMXE);
	if (vmx_on(virt_to_phys(vc->vmxon))) {
		cr4_clear_bits_irqsoff(X86_CR4_VMXE);
		return -EIO;
	}
	vc->current_vmcs = NULL;
	/* Translations a previous VMX user left behind are not ours. */
	if (vmx_cfg.ept_cap & VMX_EPT_CAP_INVEPT_ALL)
		vmx_invept(VMX_INVEPT_ALL, 0);
	return 0;
}

static void vmx_cpu_disable(void)
{
	struct vmx_cpu *vc = this_cpu_ptr(vmx_cpus);
	struct vmx_vcpu *sv, *tmp;

	list_for_each_entry_safe(sv, tmp, &vc->loaded, loaded_node)
		vmx_clear_local(sv);
	vmx_off();
	cr4_clear_bits_irqsoff(X86_CR4_VMXE);
}

/* ---- guest state accessors (VMCS current) --------------------------------------- */

static unsigned long vmx_read_cr0(void)
{
	return (vmcs_read(VMCS_GUEST_CR0) & ~vmx_cfg.cr0_mask) |
	       (vmcs_read(VMCS_CR0_SHADOW) & vmx_cfg.cr0_mask);
}

static void vmx_write_cr0(unsigned long val)
{
	unsigned long hw = (val & ~(X86_CR0_CD | X86_CR0_NW)) |
			   (vmx_cfg.cr0_fixed0 & ~(X86_CR0_PE | X86_CR0_PG));

	vmcs_write(VMCS_CR0_SHADOW, val);
	vmcs_write(VMCS_GUEST_CR0, hw & vmx_cfg.cr0_fixed1);
}

/* The guest sees its own CR4 (all bits are host-owned); VMXE is hidden. */
static void vmx_write_cr4(unsigned long val)
{
	vmcs_write(VMCS_CR4_SHADOW, val);
	vmcs_write(VMCS_GUEST_CR4, val | vmx_cfg.cr4_fixed0);
}

/* EFER.LMA and the "IA-32e mode guest" entry control go together. */
static void vmx_write_efer(u64 val)
{
	u32 entry = vmcs_read(VMCS_ENTRY_CTLS);

	vmcs_write(VMCS_GUEST_EFER, val);
	if (val & EFER_LMA)
		entry |= ENTRY_IA32E_MODE;
	else
		entry &= ~ENTRY_IA32E_MODE;
	vmcs_write(VMCS_ENTRY_CTLS, entry);
}

/*
 * With EPT, VM entry takes the PAE page-directory pointers of a 32-bit PAE
 * guest from the VMCS, so state set from outside (ioctls, emulated CR
 * writes) must load them as MOV CR3 would.
 */
static void vmx_load_pdptrs(struct kestrel_vcpu *vcpu)
{
	u64 pdpte[4] = { 0 };
	int i;

	if (!(vmx_read_cr0() & X86_CR0_PG) ||
	    !(vmcs_read(VMCS_CR4_SHADOW) & X86_CR4_PAE) ||
	    (vmcs_read(VMCS_GUEST_EFER) & EFER_LMA))
		return;
	if (kestrel_read_guest(vcpu->vm, vmcs_read(VMCS_GUEST_CR3) & 0xffffffe0UL,
			       pdpte, sizeof(pdpte)))
		memset(pdpte, 0, sizeof(pdpte));
	for (i = 0; i < 4; i++)
		vmcs_write(VMCS_GUEST_PDPTE0 + 2 * i, pdpte[i]);
}

static u32 vmx_seg_ar(const struct kestrel_segment *s)
{
	if (s->unusable || !s->present)
		return VMX_AR_UNUSABLE;
	return s->type | s->s << 4 | s->dpl << VMX_SEG_AR_DPL_SHIFT |
	       s->present << 7 | s->avl << 12 | s->l << 13 | s->db << 14 |
	       s->g << 15;
}

static void vmx_write_seg(int vs, const struct kestrel_segment *s)
{
	vmcs_write(VMCS_GUEST_ES_SEL + 2 * vs, s->selector);
	vmcs_write(VMCS_GUEST_ES_BASE + 2 * vs, s->base);
	vmcs_write(VMCS_GUEST_ES_LIMIT + 2 * vs, s->limit);
	vmcs_write(VMCS_GUEST_ES_AR + 2 * vs, vmx_seg_ar(s));
}

static void vmx_read_seg(int vs, struct kestrel_segment *s)
{
	u32 ar = vmcs_read(VMCS_GUEST_ES_AR + 2 * vs);

	memset(s, 0, sizeof(*s));
	s->selector = vmcs_read(VMCS_GUEST_ES_SEL + 2 * vs);
	s->base = vmcs_read(VMCS_GUEST_ES_BASE + 2 * vs);
	s->limit = vmcs_read(VMCS_GUEST_ES_LIMIT + 2 * vs);
	s->type = ar & VMX_SEG_AR_TYPE;
	s->s = !!(ar & VMX_AR_S);
	s->dpl = (ar >> VMX_SEG_AR_DPL_SHIFT) & 3;
	s->present = !!(ar & VMX_AR_P);
	s->avl = !!(ar & VMX_AR_AVL);
	s->l = !!(ar & VMX_AR_L);
	s->db = !!(ar & VMX_AR_DB);
	s->g = !!(ar & VMX_AR_G);
	/* As on SVM: unusable and not present are one thing to userspace. */
	if (ar & VMX_AR_UNUSABLE)
		s->present = 0;
	s->unusable = !s->present;
}

/* enum kestrel_seg -> VMCS order (TR and LDTR are swapped). */
static const u8 vmx_seg_index[] = {
	[KSEG_ES] = VMX_ES, [KSEG_CS] = VMX_CS, [KSEG_SS] = VMX_SS,
	[KSEG_DS] = VMX_DS, [KSEG_FS] = VMX_FS, [KSEG_GS] = VMX_GS,
	[KSEG_TR] = VMX_TR, [KSEG_LDTR] = VMX_LDTR,
};

static u8 vmx_get_cr8(struct vmx_vcpu *sv)
{
	if (vmx_cfg.tpr_shadow)
		return READ_ONCE(sv->vapic[VMX_VAPIC_TPR]) >> 4;
	return sv->cr8;
}

/* ---- vCPU ------------------------------------------------------------------------ */

/* Controls and host fields that stay as they are for the VMCS's life. */
static void vmx_setup_vmcs(struct vmx_vcpu *sv)
{
	u32 cpu2 = vmx_cfg.cpu2;

	if (!sv->vpid)
		cpu2 &= ~CPU2_ENABLE_VPID;
	sv->cpu_ctls = vmx_cfg.cpu;
	vmcs_write(VMCS_LINK_PTR, ~0UL);
	vmcs_write(VMCS_PIN_CTLS, vmx_cfg.pin);
	vmcs_write(VMCS_CPU_CTLS, sv->cpu_ctls);
	vmcs_write(VMCS_CPU_CTLS2, cpu2);
	vmcs_write(VMCS_EXIT_CTLS, vmx_cfg.exit);
	vmcs_write(VMCS_ENTRY_CTLS, vmx_cfg.entry);
	/*
	 * A machine check while the guest runs belongs to the host.  #DB and
	 * #AC exit and are reflected (vmx_reflect()): a guest whose delivery
	 * of either raises it again would otherwise hold the CPU, deaf to
	 * interrupts, for ever (CVE-2015-5307, CVE-2015-8104).
	 */
	vmcs_write(VMCS_EXCEPTION_BITMAP, BIT(X86_TRAP_MC) | BIT(X86_TRAP_DB) |
		   BIT(X86_TRAP_AC));
	vmcs_write(VMCS_PF_ERROR_MASK, 0);
	vmcs_write(VMCS_PF_ERROR_MATCH, 0);
	vmcs_write(VMCS_CR3_TARGET_COUNT, 0);
	vmcs_write(VMCS_MSR_BITMAP, page_to_phys(vmx_msr_bitmap));
	vmcs_write(VMCS_ENTRY_MSR_LOAD_ADDR, virt_to_phys(sv->guest_msrs));
	vmcs_write(VMCS_EXIT_MSR_STORE_ADDR, virt_to_phys(sv->guest_msrs));
	vmcs_write(VMCS_EXIT_MSR_LOAD_ADDR, virt_to_phys(sv->host_msrs));
	vmcs_write(VMCS_ENTRY_MSR_LOAD_COUNT, VMX_NR_SWITCHED);
	vmcs_write(VMCS_EXIT_MSR_STORE_COUNT, VMX_NR_SWITCHED);
	vmcs_write(VMCS_EXIT_MSR_LOAD_COUNT, VMX_NR_SWITCHED);
	if (vmx_cfg.tpr_shadow) {
		vmcs_write(VMCS_VIRTUAL_APIC_ADDR, virt_to_phys(sv->vapic));
		vmcs_write(VMCS_TPR_THRESHOLD, 0);
	}
	vmcs_write(VMCS_TSC_OFFSET, 0);
	/* Not saved at exits: every entry starts the full period. */
	if (vmx_cfg.timer)
		vmcs_write(VMCS_PREEMPTION_TIMER, vmx_cfg.timer);
	vmcs_write(VMCS_EPT_POINTER, sv->eptp);
	if (sv->vpid)
		vmcs_write(VMCS_VPID, sv->vpid);
	vmcs_write(VMCS_CR0_MASK, vmx_cfg.cr0_mask);
	/* Every CR4 bit is the host's: a guest write that changes one exits. */
	vmcs_write(VMCS_CR4_MASK, ~0UL);

	/* Host state that is the same on every CPU and at every exit. */
	vmcs_write(VMCS_HOST_CS_SEL, __KERNEL_CS);
	vmcs_write(VMCS_HOST_SS_SEL, __KERNEL_DS);
	vmcs_write(VMCS_HOST_DS_SEL, 0);
	vmcs_write(VMCS_HOST_ES_SEL, 0);
	vmcs_write(VMCS_HOST_FS_SEL, 0);
	vmcs_write(VMCS_HOST_GS_SEL, 0);
	vmcs_write(VMCS_HOST_TR_SEL, GDT_ENTRY_TSS * 8);
	vmcs_write(VMCS_HOST_RIP, (unsigned long)__kestrel_vmx_exit);

	vmcs_write(VMCS_GUEST_DEBUGCTL, 0);
	vmcs_write(VMCS_GUEST_DR7, 0x400);	/* guest breakpoints are virtual */
	vmcs_write(VMCS_GUEST_ACTIVITY, 0);
	vmcs_write(VMCS_GUEST_PENDING_DBG, 0);
}

static int vmx_vcpu_create(struct kestrel_vcpu *vcpu)
{
	struct kestrel_vm *vm = vcpu->vm;
	struct vmx_vcpu *sv;
	void *msrs;
	int i, vpid;

	if (vm->arch.npt_levels == 5 && !(vmx_cfg.ept_cap & VMX_EPT_CAP_WALK5)) {
		kestrel_err("the host uses 5-level paging and EPT has no 5-level walks\n");
		return -EOPNOTSUPP;
	}
	sv = kzalloc(sizeof(*sv), GFP_KERNEL_ACCOUNT);
	if (!sv)
		return -ENOMEM;
	sv->vmcs = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	msrs = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (vmx_cfg.tpr_shadow)
		sv->vapic = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!sv->vmcs || !msrs || (vmx_cfg.tpr_shadow && !sv->vapic)) {
		free_page((unsigned long)sv->vmcs);
		free_page((unsigned long)msrs);
		free_page((unsigned long)sv->vapic);
		kfree(sv);
		return -ENOMEM;
	}
	sv->vcpu = vcpu;
	sv->vmcs->revision = vmx_cfg.revision;
	sv->vmcs_pa = virt_to_phys(sv->vmcs);
	sv->guest_msrs = msrs;
	sv->host_msrs = msrs + VMX_HOST_AREA;
	for (i = 0; i < VMX_NR_SWITCHED; i++) {
		sv->guest_msrs[i].index = vmx_switched_msrs[i];
		sv->host_msrs[i].index = vmx_switched_msrs[i];
	}
	sv->eptp = kestrel_npt_root_pa(vm) | vmx_cfg.eptp_flags |
		   (u64)(vm->arch.npt_levels - 1) << VMX_EPTP_WALK_SHIFT;
	if (vmx_cfg.vpid) {
		/* Out of VPIDs: run untagged, flushed at every entry. */
		vpid = ida_alloc_range(&vmx_vpids, 1, 0xffff, GFP_KERNEL);
		sv->vpid = vpid > 0 ? vpid : 0;
	}
	sv->cpu = -1;
	sv->host_cpu = -1;
	sv->last_run_cpu = -1;
	sv->window_prio = -1;
	INIT_LIST_HEAD(&sv->loaded_node);
	vcpu->arch.backend = sv;

	vmx_get(vcpu);
	vmx_setup_vmcs(sv);
	vmx_put();
	return 0;
}

static void vmx_vcpu_free(struct kestrel_vcpu *vcpu)
{
	struct vmx_vcpu *sv = to_vmx(vcpu);

	preempt_disable();
	vmx_clear_anywhere(sv);
	preempt_enable();
	if (sv->vpid)
		ida_free(&vmx_vpids, sv->vpid);
	free_page((unsigned long)sv->vapic);
	free_page((unsigned long)sv->guest_msrs);
	free_page((unsigned long)sv->vmcs);
	kfree(sv);
}

static void vmx_set_reset_seg(int vs, u16 sel, u64 base, u32 limit, u32 ar)
{
	vmcs_write(VMCS_GUEST_ES_SEL + 2 * vs, sel);
	vmcs_write(VMCS_GUEST_ES_BASE + 2 * vs, base);
	vmcs_write(VMCS_GUEST_ES_LIMIT + 2 * vs, limit);
	vmcs_write(VMCS_GUEST_ES_AR + 2 * vs, ar);
}

/* The state after RESET (Intel SDM vol. 3A, 10.1.1, table 10-1). */
static void vmx_vcpu_reset(struct kestrel_vcpu *vcpu)
{
	struct vmx_vcpu *sv = vmx_get(vcpu);
	int i;

	vmx_set_reset_seg(VMX_CS, 0xf000, 0xffff0000, 0xffff, 0x9b);
	for (i = VMX_ES; i <= VMX_GS; i++)
		if (i != VMX_CS)
			vmx_set_reset_seg(i, 0, 0, 0xffff, 0x93);
	vmx_set_reset_seg(VMX_LDTR, 0, 0, 0xffff, 0x82);
	vmx_set_reset_seg(VMX_TR, 0, 0, 0xffff, 0x8b);
	vmcs_write(VMCS_GUEST_GDTR_BASE, 0);
	vmcs_write(VMCS_GUEST_GDTR_LIMIT, 0xffff);
	vmcs_write(VMCS_GUEST_IDTR_BASE, 0);
	vmcs_write(VMCS_GUEST_IDTR_LIMIT, 0xffff);
	vmx_write_cr0(X86_CR0_ET | X86_CR0_CD | X86_CR0_NW);
	vmcs_write(VMCS_GUEST_CR3, 0);
	vmx_write_cr4(0);
	vmx_write_efer(0);
	vmcs_write(VMCS_GUEST_PAT, 0x0007040600070406ULL);
	vmcs_write(VMCS_GUEST_SYSENTER_CS, 0);
	vmcs_write(VMCS_GUEST_SYSENTER_ESP, 0);
	vmcs_write(VMCS_GUEST_SYSENTER_EIP, 0);
	for (i = 0; i < 4; i++)
		vmcs_write(VMCS_GUEST_PDPTE0 + 2 * i, 0);
	vmcs_write(VMCS_GUEST_PENDING_DBG, 0);
	vmx_put();

	for (i = 0; i < VMX_NR_SWITCHED; i++)
		sv->guest_msrs[i].value = 0;
	sv->intr_state = 0;
	sv->exit_rip = ~0UL;
	sv->inject_info = 0;
	sv->window_prio = -1;
	sv->cr2 = 0;
	sv->cr8 = 0;
	if (sv->vapic)
		WRITE_ONCE(sv->vapic[VMX_VAPIC_TPR], 0);
}

static void vmx_get_sregs(struct kestrel_vcpu *vcpu, struct kestrel_sregs *r)
{
	struct vmx_vcpu *sv = vmx_get(vcpu);

	vmx_read_seg(VMX_CS, &r->cs);
	vmx_read_seg(VMX_DS, &r->ds);
	vmx_read_seg(VMX_ES, &r->es);
	vmx_read_seg(VMX_FS, &r->fs);
	vmx_read_seg(VMX_GS, &r->gs);
	vmx_read_seg(VMX_SS, &r->ss);
	vmx_read_seg(VMX_TR, &r->tr);
	vmx_read_seg(VMX_LDTR, &r->ldt);
	r->gdt.base = vmcs_read(VMCS_GUEST_GDTR_BASE);
	r->gdt.limit = vmcs_read(VMCS_GUEST_GDTR_LIMIT);
	r->idt.base = vmcs_read(VMCS_GUEST_IDTR_BASE);
	r->idt.limit = vmcs_read(VMCS_GUEST_IDTR_LIMIT);
	r->cr0 = vmx_read_cr0();
	r->cr2 = sv->cr2;
	r->cr3 = vmcs_read(VMCS_GUEST_CR3);
	r->cr4 = vmcs_read(VMCS_CR4_SHADOW);
	r->cr8 = vmx_get_cr8(sv);
	r->efer = vmcs_read(VMCS_GUEST_EFER);
	vmx_put();
}

static void vmx_set_cr8(struct kestrel_vcpu *vcpu, u64 val)
{
	struct vmx_vcpu *sv = to_vmx(vcpu);

	if (vmx_cfg.tpr_shadow)
		WRITE_ONCE(sv->vapic[VMX_VAPIC_TPR], (val & 0xf) << 4);
	else
		sv->cr8 = val & 0xf;
}

static void vmx_set_sregs(struct kestrel_vcpu *vcpu,
			  const struct kestrel_sregs *r)
{
	struct vmx_vcpu *sv = vmx_get(vcpu);

	vmx_write_seg(VMX_CS, &r->cs);
	vmx_write_seg(VMX_DS, &r->ds);
	vmx_write_seg(VMX_ES, &r->es);
	vmx_write_seg(VMX_FS, &r->fs);
	vmx_write_seg(VMX_GS, &r->gs);
	vmx_write_seg(VMX_SS, &r->ss);
	vmx_write_seg(VMX_TR, &r->tr);
	vmx_write_seg(VMX_LDTR, &r->ldt);
	vmcs_write(VMCS_GUEST_GDTR_BASE, r->gdt.base);
	vmcs_write(VMCS_GUEST_GDTR_LIMIT, r->gdt.limit);
	vmcs_write(VMCS_GUEST_IDTR_BASE, r->idt.base);
	vmcs_write(VMCS_GUEST_IDTR_LIMIT, r->idt.limit);
	vmx_write_cr0(r->cr0);
	vmcs_write(VMCS_GUEST_CR3, r->cr3);
	vmx_write_cr4(r->cr4);
	vmx_write_efer(r->efer);
	vmx_load_pdptrs(vcpu);
	sv->cr2 = r->cr2;
	vmx_put();
	vmx_set_cr8(vcpu, r->cr8);
}

static u64 vmx_get_cr(struct kestrel_vcpu *vcpu, int cr)
{
	u64 val = 0;

	if (cr == 2)
		return to_vmx(vcpu)->cr2;
	if (cr == 8)
		return vmx_get_cr8(to_vmx(vcpu));
	vmx_get(vcpu);
	switch (cr) {
	case 0:
		val = vmx_read_cr0();
		break;
	case 3:
		val = vmcs_read(VMCS_GUEST_CR3);
		break;
	case 4:
		val = vmcs_read(VMCS_CR4_SHADOW);
		break;
	}
	vmx_put();
	return val;
}

static void vmx_set_cr4(struct kestrel_vcpu *vcpu, u64 val)
{
	vmx_get(vcpu);
	vmx_write_cr4(val);
	vmx_load_pdptrs(vcpu);
	vmx_put();
}

static u64 vmx_get_efer(struct kestrel_vcpu *vcpu)
{
	u64 val;

	vmx_get(vcpu);
	val = vmcs_read(VMCS_GUEST_EFER);
	vmx_put();
	return val;
}

static void vmx_set_efer(struct kestrel_vcpu *vcpu, u64 val)
{
	vmx_get(vcpu);
	vmx_write_efer(val);
	vmx_put();
}

static u64 vmx_get_pat(struct kestrel_vcpu *vcpu)
{
	u64 val;

	vmx_get(vcpu);
	val = vmcs_read(VMCS_GUEST_PAT);
	vmx_put();
	return val;
}

static void vmx_set_pat(struct kestrel_vcpu *vcpu, u64 val)
{
	vmx_get(vcpu);
	vmcs_write(VMCS_GUEST_PAT, val);
	vmx_put();
}

static void vmx_get_seg(struct kestrel_vcpu *vcpu, int seg,
			struct kestrel_segment *out)
{
	vmx_get(vcpu);
	vmx_read_seg(vmx_seg_index[seg], out);
	vmx_put();
}

/*
 * EPT entries.  Guest RAM is the owner's ordinary write-back memory, so
 * leaves are WB and ignore the guest's PAT, as the host's own mapping does.
 * Without EPT A/D bits nothing records use: entries count as always young.
 */
static void vmx_set_cr2(struct kestrel_vcpu *vcpu, u64 val)
{
	to_vmx(vcpu)->cr2 = val;
}

static void vmx_set_tsc_offset(struct kestrel_vcpu *vcpu, u64 offset)
{
	struct vmx_vcpu *sv = to_vmx(vcpu);

	sv->tsc_offset = offset;
	sv->tsc_offset_dirty = true;
}

/* ---- interrupts ------------------------------------------------------------------ */

/*
 * The shadow of STI or MOV SS covers one instruction: once x86.c has
 * completed that instruction itself (RIP moved on), it is over.
 */
static bool vmx_in_shadow(struct kestrel_vcpu *vcpu, struct vmx_vcpu *sv)
{
	return (sv->intr_state & (VMX_INTR_STI | VMX_INTR_MOV_SS)) &&
	       sv->exit_rip == vcpu->arch.rip;
}

static bool vmx_interrupt_allowed(struct kestrel_vcpu *vcpu)
{
	struct vmx_vcpu *sv = to_vmx(vcpu);

	return (vcpu->arch.rflags & X86_EFLAGS_IF) && !vmx_in_shadow(vcpu, sv) &&
	       !(sv->inject_info & VMX_INTR_INFO_VALID);
}

static void vmx_inject_irq(struct kestrel_vcpu *vcpu, u8 vector)
{
	struct vmx_vcpu *sv = to_vmx(vcpu);

	sv->inject_info = vector | VMX_INTR_INFO_VALID |
			  VMX_INTR_TYPE_EXT << VMX_INTR_INFO_TYPE_SHIFT;
	sv->inject_err = 0;
}

static void vmx_set_irq_window(struct kestrel_vcpu *vcpu, int prio)
{
	to_vmx(vcpu)->window_prio = prio;
}

/*
 * The window for an interrupt of class @prio: held back by the TPR, a
 * TPR-below-threshold exit fires when the guest lowers CR8 under it;
 * otherwise interrupt-window exiting fires as soon as RFLAGS.IF is set and
 * no shadow is in effect.  The threshold must not exceed the TPR at entry.
 * Without a TPR shadow, CR8 writes exit anyway and are re-evaluated.
 */
static void vmx_update_irq_window(struct vmx_vcpu *sv)
{
	u32 ctls = sv->cpu_ctls & ~CPU_INTR_WINDOW_EXITING;
	u32 threshold = 0;
	int prio = sv->window_prio;

	if (prio >= 0) {
		if (vmx_get_cr8(sv) < prio)
			ctls |= CPU_INTR_WINDOW_EXITING;
		else
			threshold = prio;
	}
	if (ctls != sv->cpu_ctls) {
		sv->cpu_ctls = ctls;
		vmcs_write(VMCS_CPU_CTLS, ctls);
	}
	if (vmx_cfg.tpr_shadow && threshold != sv->tpr_threshold) {
		sv->tpr_threshold = threshold;
		vmcs_write(VMCS_TPR_THRESHOLD, threshold);
	}
}

/* Exceptions that push an error code in protected mode. */
static bool vmx_has_error_code(u8 vector)
{
	switch (vector) {
	case X86_TRAP_DF: case X86_TRAP_TS: case X86_TRAP_NP:
	case X86_TRAP_SS: case X86_TRAP_GP: case X86_TRAP_PF:
	case X86_TRAP_AC: case X86_TRAP_CP:
		return true;
	}
	return false;
}

static void vmx_cancel_exception(struct kestrel_vcpu *vcpu)
{
	struct vmx_vcpu *sv = to_vmx(vcpu);
	u32 type = (sv->inject_info & VMX_INTR_INFO_TYPE_MASK) >>
		   VMX_INTR_INFO_TYPE_SHIFT;

	if ((sv->inject_info & VMX_INTR_INFO_VALID) &&
	    type == VMX_INTR_TYPE_HW_EXCEPTION)
		sv->inject_info = 0;
}

/* Queue x86.c's pending exception unless an interrupted event goes first. */
static void vmx_inject_exception(struct kestrel_vcpu *vcpu, struct vmx_vcpu *sv)
{
	struct kestrel_x86_event *e = &vcpu->arch.exception;

	if ((sv->inject_info & VMX_INTR_INFO_VALID) || !e->pending)
		return;
	sv->inject_info = e->vector | VMX_INTR_INFO_VALID |
			  VMX_INTR_TYPE_HW_EXCEPTION << VMX_INTR_INFO_TYPE_SHIFT;
	sv->inject_err = 0;
	/* VM entry insists: an error code exactly where hardware pushes one. */
	if (vmx_has_error_code(e->vector) && (vmx_read_cr0() & X86_CR0_PE)) {
		sv->inject_info |= VMX_INTR_INFO_ERROR;
		sv->inject_err = e->has_error ? e->error : 0;
	}
	e->pending = false;
}

/*
 * An exit during event delivery (an EPT violation on the IDT, say) loses
 * the event unless it is injected again.  Software interrupts and
 * exceptions are not: RIP still points at the instruction, which re-runs.
 */
static void vmx_complete_event(struct vmx_vcpu *sv, u32 idt_info)
{
	u32 type = (idt_info & VMX_INTR_INFO_TYPE_MASK) >> VMX_INTR_INFO_TYPE_SHIFT;

	sv->inject_info = 0;
	if (!(idt_info & VMX_INTR_INFO_VALID))
		return;
	if (type == VMX_INTR_TYPE_SOFT_INTR || type == VMX_INTR_TYPE_SOFT_EXCEPTION ||
	    type == VMX_INTR_TYPE_PRIV_SOFT_EXC)
		return;
	sv->inject_info = idt_info & (VMX_INTR_INFO_VECTOR | VMX_INTR_INFO_TYPE_MASK |
				      VMX_INTR_INFO_ERROR | VMX_INTR_INFO_VALID);
	if (idt_info & VMX_INTR_INFO_ERROR)
		sv->inject_err = vmcs_read(VMCS_IDT_VECTORING_ERROR);
}

/* ---- exits ------------------------------------------------------------------------- */

#define CR0_KNOWN	(X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS | \
			 X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_AM | \
			 X86_CR0_NW | X86_CR0_CD | X86_CR0_PG)

/*
 * MOV to CR0 that changed a host-owned bit (NE, CD, NW).  The new value
 * takes effect here, including entering or leaving long mode, which the
 * CPU would have done itself had the write not exited; x86.c then steps
 * over the instruction (X86_EXIT_SKIP).
 */
static enum kestrel_x86_exit_reason vmx_emulate_cr0(struct kestrel_vcpu *vcpu,
						    unsigned long val)
{
	unsigned long old = vmx_read_cr0();
	u64 efer = vmcs_read(VMCS_GUEST_EFER);
	struct kestrel_segment cs;

	if (kestrel_x86_guest_mode_bits(vcpu) != 64)
		val = (u32)val;
	val |= X86_CR0_ET;
	if ((val & ~CR0_KNOWN) || ((val & X86_CR0_PG) && !(val & X86_CR0_PE)) ||
	    ((val & X86_CR0_NW) && !(val & X86_CR0_CD)))
		return X86_EXIT_GP;
	if (!(old & X86_CR0_PG) && (val & X86_CR0_PG) && (efer & EFER_LME)) {
		vmx_read_seg(VMX_CS, &cs);
		if (!(vmcs_read(VMCS_CR4_SHADOW) & X86_CR4_PAE) || cs.l)
			return X86_EXIT_GP;
		vmx_write_efer(efer | EFER_LMA);
	} else if ((old & X86_CR0_PG) && !(val & X86_CR0_PG) && (efer & EFER_LMA)) {
		vmx_write_efer(efer & ~EFER_LMA);
	}
	vmx_write_cr0(val);
	if ((old ^ val) & (X86_CR0_PG | X86_CR0_CD | X86_CR0_NW))
		vmx_load_pdptrs(vcpu);
	if ((old ^ val) & (X86_CR0_PG | X86_CR0_PE | X86_CR0_WP))
		vcpu->arch.tlb_flush_pending = true;
	return X86_EXIT_SKIP;
}

static enum kestrel_x86_exit_reason vmx_cr_access(struct kestrel_vcpu *vcpu,
						  struct vmx_vcpu *sv, u64 qual)
{
	unsigned long *gpr = &vcpu->arch.regs[VMX_CR_QUAL_GPR(qual)];
	int cr = VMX_CR_QUAL_CR(qual), type = VMX_CR_QUAL_TYPE(qual);

	if (type == VMX_CR_TYPE_MOV_TO && cr == 4)
		return X86_EXIT_CR_WRITE;
	if (type == VMX_CR_TYPE_MOV_TO && cr == 0)
		return vmx_emulate_cr0(vcpu, *gpr);
	/* CR8 exits only without a TPR shadow: emulate it here. */
	if (cr == 8 && type == VMX_CR_TYPE_MOV_TO) {
		if (*gpr & ~0xfUL)
			return X86_EXIT_GP;
		sv->cr8 = *gpr;
		return X86_EXIT_SKIP;
	}
	if (cr == 8 && type == VMX_CR_TYPE_MOV_FROM) {
		*gpr = sv->cr8;
		return X86_EXIT_SKIP;
	}
	return X86_EXIT_UNHANDLED;
}

/*
 * A #DB or #AC exit: x86.c injects it again.  Struck while delivering
 * another exception, it replaces it (benign pairs go serially; a fault
 * re-raises the first when its instruction runs again).  Struck while
 * delivering an interrupt or NMI, that event goes in again and the fault,
 * which its delivery raises again, is dropped.
 */
static enum kestrel_x86_exit_reason vmx_reflect(struct vmx_vcpu *sv,
						enum kestrel_x86_exit_reason r)
{
	u32 type = (sv->inject_info & VMX_INTR_INFO_TYPE_MASK) >>
		   VMX_INTR_INFO_TYPE_SHIFT;

	if (!(sv->inject_info & VMX_INTR_INFO_VALID))
		return r;
	if (type != VMX_INTR_TYPE_HW_EXCEPTION)
		return X86_EXIT_NONE;
	sv->inject_info = 0;
	return r;
}

/* Exit qualification of a #DB: B0-B3, BD and BS where DR6 has them. */
#define VMX_DB_QUAL_DR6		(DR_TRAP_BITS | KESTREL_DR6_BD | DR_STEP)

static void vmx_describe_exit(struct kestrel_vcpu *vcpu, struct vmx_vcpu *sv,
			      u32 reason, u32 intr_info, u32 idt_info,
			      struct kestrel_x86_exit *e)
{
	u64 qual = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u8 len = vmcs_read(VMCS_EXIT_INSN_LEN);

	memset(e, 0, sizeof(*e));
	e->code = reason;
	e->info1 = qual;
	e->info2 = intr_info;
	e->int_info = idt_info;
	if (reason & VMX_EXIT_FAILED_ENTRY) {
		e->reason = X86_EXIT_ENTRY_FAILED;
		return;
	}

	switch (reason & 0xffff) {
	case VMX_EXIT_EXCEPTION_NMI:
		if ((intr_info & VMX_INTR_INFO_VECTOR) == X86_TRAP_MC) {
			/* A machine check hit while in the guest: the host's. */
			asm volatile("int $0x12");
			e->reason = X86_EXIT_NONE;
		} else if (((intr_info & VMX_INTR_INFO_TYPE_MASK) >>
			    VMX_INTR_INFO_TYPE_SHIFT) == VMX_INTR_TYPE_NMI) {
			e->reason = X86_EXIT_NONE;	/* vmx_run() passed it on */
		} else if ((intr_info & VMX_INTR_INFO_VECTOR) == X86_TRAP_DB) {
			/*
			 * ICEBP (INT1) exits before it completes; as a trap,
			 * its #DB is delivered past it.
			 */
			if (((intr_info & VMX_INTR_INFO_TYPE_MASK) >>
			     VMX_INTR_INFO_TYPE_SHIFT) == VMX_INTR_TYPE_PRIV_SOFT_EXC)
				vcpu->arch.rip += len;
			e->exc.dr6 = qual & VMX_DB_QUAL_DR6;
			e->reason = vmx_reflect(sv, X86_EXIT_EXC_DB);
		} else if ((intr_info & VMX_INTR_INFO_VECTOR) == X86_TRAP_AC) {
			e->exc.error = vmcs_read(VMCS_EXIT_INTR_ERROR);
			e->reason = vmx_reflect(sv, X86_EXIT_EXC_AC);
		} else {
			e->reason = X86_EXIT_UNHANDLED;
		}
		break;
	case VMX_EXIT_EXT_INTR:
		e->reason = X86_EXIT_NONE;	/* the host took it on local_irq_enable */
		break;
	case VMX_EXIT_PREEMPTION_TIMER:
		e->reason = X86_EXIT_NONE;	/* see vmx_timer_us */
		break;
	case VMX_EXIT_TRIPLE_FAULT:
		e->reason = X86_EXIT_SHUTDOWN;
		break;
	case VMX_EXIT_INTR_WINDOW:
	case VMX_EXIT_TPR_BELOW_THRESHOLD:
		e->reason = X86_EXIT_IRQ_WINDOW;
		break;
	case VMX_EXIT_CPUID:
		e->reason = X86_EXIT_CPUID;
		e->insn_len = len;
		break;
	case VMX_EXIT_HLT:
		e->reason = X86_EXIT_HLT;
		e->insn_len = len;
		break;
	case VMX_EXIT_INVD:
	case VMX_EXIT_WBINVD:
		e->reason = X86_EXIT_SKIP;	/* coherent memory: no-ops */
		e->insn_len = len;
		break;
	case VMX_EXIT_RDPMC:
		e->reason = X86_EXIT_GP;	/* no PMU */
		break;
	case VMX_EXIT_GETSEC:
	case VMX_EXIT_RSM:
	case VMX_EXIT_VMCALL ... VMX_EXIT_VMXON:
	case VMX_EXIT_MWAIT:
	case VMX_EXIT_MONITOR:
	case VMX_EXIT_INVEPT:
	case VMX_EXIT_RDTSCP:
	case VMX_EXIT_INVVPID:
	case VMX_EXIT_INVPCID:
	case VMX_EXIT_VMFUNC:
	case VMX_EXIT_XSAVES:
	case VMX_EXIT_XRSTORS:
		/* Nested VMX, MONITOR/MWAIT, SMX...: not offered. */
		e->reason = X86_EXIT_UD;
		break;
	case VMX_EXIT_XSETBV:
		e->reason = X86_EXIT_XSETBV;
		e->insn_len = len;
		break;
	case VMX_EXIT_CR_ACCESS:
		e->reason = vmx_cr_access(vcpu, sv, qual);
		e->cr.cr = VMX_CR_QUAL_CR(qual);
		e->insn_len = len;
		break;
	case VMX_EXIT_DR_ACCESS:
		e->reason = X86_EXIT_DR_ACCESS;
		e->insn_len = len;
		break;
	case VMX_EXIT_IO:
		e->reason = X86_EXIT_IO;
		e->insn_len = len;
		e->io.port = VMX_IO_QUAL_PORT(qual);
		e->io.size = VMX_IO_QUAL_SIZE(qual);
		e->io.in = qual & VMX_IO_QUAL_IN;
		e->io.string = qual & VMX_IO_QUAL_STRING;
		e->io.rep = qual & VMX_IO_QUAL_REP;
		/* As SVM's IOIO: RIP moves on here, x86.c does not step. */
		if (!e->io.string) {
			vcpu->arch.rip += len;
			if (kestrel_x86_guest_mode_bits(vcpu) != 64)
				vcpu->arch.rip &= 0xffffffffUL;
		}
		break;
	case VMX_EXIT_RDMSR:
		e->reason = X86_EXIT_RDMSR;
		e->insn_len = len;
		break;
	case VMX_EXIT_WRMSR:
		e->reason = X86_EXIT_WRMSR;
		e->insn_len = len;
		break;
	case VMX_EXIT_EPT_VIOLATION:
		e->reason = X86_EXIT_NPF;
		e->npf.gpa = vmcs_read(VMCS_GUEST_PHYS_ADDR);
		e->npf.error = (qual & VMX_EPT_QUAL_PRESENT ? BIT(0) : 0) |
			       (qual & VMX_EPT_QUAL_WRITE ? BIT(1) : 0) |
			       (qual & VMX_EPT_QUAL_FETCH ? BIT(4) : 0);
		e->npf.walk = (qual & VMX_EPT_QUAL_LINEAR_VALID) &&
			      !(qual & VMX_EPT_QUAL_TRANSLATED);
		e->info2 = e->npf.gpa;
		break;
	case VMX_EXIT_EPT_MISCONFIG:
		/* Kestrel wrote a bad EPT entry: an internal error. */
		e->reason = X86_EXIT_UNHANDLED;
		e->info2 = vmcs_read(VMCS_GUEST_PHYS_ADDR);
		break;
	default:
		e->reason = X86_EXIT_UNHANDLED;
		break;
	}
}

/* ---- the world switch --------------------------------------------------------------- */

/* Host state that differs per CPU; written when the VMCS lands on a CPU. */
static void vmx_set_host_cpu_state(struct vmx_vcpu *sv, int cpu)
{
	struct desc_ptr gdt, idt;
	u64 v;
	int i;

	native_store_gdt(&gdt);
	store_idt(&idt);
	vmcs_write(VMCS_HOST_GDTR_BASE, gdt.address);
	vmcs_write(VMCS_HOST_IDTR_BASE, idt.address);
	vmcs_write(VMCS_HOST_TR_BASE,
		   (unsigned long)&get_cpu_entry_area(cpu)->tss.x86_tss);
	rdmsrl(MSR_GS_BASE, v);
	vmcs_write(VMCS_HOST_GS_BASE, v);
	rdmsrl(MSR_IA32_SYSENTER_CS, v);
	vmcs_write(VMCS_HOST_SYSENTER_CS, v);
	rdmsrl(MSR_IA32_SYSENTER_ESP, v);
	vmcs_write(VMCS_HOST_SYSENTER_ESP, v);
	rdmsrl(MSR_IA32_SYSENTER_EIP, v);
	vmcs_write(VMCS_HOST_SYSENTER_EIP, v);
	rdmsrl(MSR_EFER, v);
	vmcs_write(VMCS_HOST_EFER, v);
	rdmsrl(MSR_IA32_CR_PAT, v);
	vmcs_write(VMCS_HOST_PAT, v);
	vmcs_write(VMCS_HOST_CR0, read_cr0());
	for (i = 0; i < VMX_NR_SWITCHED; i++)
		if (i != VMX_SW_KGS)
			rdmsrl(vmx_switched_msrs[i], sv->host_msrs[i].value);
	sv->host_cpu = cpu;
}

/* Host state a VM exit does not restore, or restores differently. */
struct vmx_host_segs {
	u16	ds, es, fs, gs, ldt;
	unsigned long fs_base, debugctl;
};

static void vmx_save_host(struct vmx_vcpu *sv, struct vmx_host_segs *h)
{
	savesegment(ds, h->ds);
	savesegment(es, h->es);
	savesegment(fs, h->fs);
	savesegment(gs, h->gs);
	asm volatile("sldt %0" : "=r" (h->ldt));
	rdmsrl(MSR_FS_BASE, h->fs_base);
	vmcs_write(VMCS_HOST_FS_BASE, h->fs_base);
	/* The user's GS base while in the kernel; the exit loads it back. */
	rdmsrl(MSR_KERNEL_GS_BASE, sv->host_msrs[VMX_SW_KGS].value);
	h->debugctl = get_debugctlmsr();
}

/*
 * After a VM exit: null data selectors, no LDT, DR7 and DEBUGCTL cleared,
 * GDT limit 0xffff and TR limit 0x67.  Put back what the host relies on.
 */
static void vmx_restore_host(struct vmx_vcpu *sv, struct vmx_host_segs *h,
			     int cpu)
{
	load_fixmap_gdt(cpu);
	if (h->ldt)
		asm volatile("lldt %0" : : "r" (h->ldt));
	if (h->ds)
		loadsegment(ds, h->ds);
	if (h->es)
		loadsegment(es, h->es);
	if (h->fs) {
		loadsegment(fs, h->fs);
		wrmsrl(MSR_FS_BASE, h->fs_base);
	}
	if (h->gs) {
		load_gs_index(h->gs);
		wrmsrl(MSR_KERNEL_GS_BASE, sv->host_msrs[VMX_SW_KGS].value);
	}
	/* The I/O bitmap lies past 0x67: reload TR before it is needed. */
	invalidate_tss_limit();
	if (h->debugctl)
		update_debugctlmsr(h->debugctl);
	if (hw_breakpoint_active())
		hw_breakpoint_restore();
}

/* x86.h: preemption disabled, interrupts on (vmx_load() may IPI). */
static void vmx_prepare_run(struct kestrel_vcpu *vcpu)
{
	vmx_load(to_vmx(vcpu));
}

/* Nothing instrumentable runs while the host thinks it's a guest. */
static noinstr int vmx_enter_exit(unsigned long *regs, bool launched)
{
	int r;

	kestrel_guest_state_enter_irqoff();
	r = __kestrel_vmx_vmrun(regs, launched);
	kestrel_guest_state_exit_irqoff();
	return r;
}

/* x86.h: preemption and interrupts off, vcpu->mode IN_GUEST. */
static void vmx_run(struct kestrel_vcpu *vcpu, struct kestrel_x86_exit *exit,
		    bool vm_flush)
{
	struct vmx_vcpu *sv = to_vmx(vcpu);
	struct kestrel_arch_vcpu *a = &vcpu->arch;
	struct vmx_host_segs hs;
	u32 reason = 0, intr_info = 0, idt_info, intr_state;
	int cpu = smp_processor_id(), r;

	lockdep_assert_irqs_disabled();
	if (sv->host_cpu != cpu)
		vmx_set_host_cpu_state(sv, cpu);
	vmcs_write(VMCS_HOST_CR3, __read_cr3());
	vmcs_write(VMCS_HOST_CR4, __read_cr4());

	intr_state = sv->intr_state;
	if (!vmx_in_shadow(vcpu, sv))
		intr_state &= ~(VMX_INTR_STI | VMX_INTR_MOV_SS);
	vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, intr_state);
	/* VM entry wants single-step pending while a shadow holds it off. */
	vmcs_write(VMCS_GUEST_PENDING_DBG,
		   (intr_state & (VMX_INTR_STI | VMX_INTR_MOV_SS)) &&
		   (a->rflags & X86_EFLAGS_TF) ? VMX_PENDING_DBG_BS : 0);
	vmcs_write(VMCS_GUEST_RIP, a->rip);
	vmcs_write(VMCS_GUEST_RSP, a->regs[KREG_RSP]);
	vmcs_write(VMCS_GUEST_RFLAGS, a->rflags);
	vmx_inject_exception(vcpu, sv);
	vmcs_write(VMCS_ENTRY_INTR_INFO, sv->inject_info);
	if (sv->inject_info & VMX_INTR_INFO_ERROR)
		vmcs_write(VMCS_ENTRY_EXCEPTION_ERROR, sv->inject_err);
	vmx_update_irq_window(sv);
	if (sv->tsc_offset_dirty) {
		vmcs_write(VMCS_TSC_OFFSET, sv->tsc_offset);
		sv->tsc_offset_dirty = false;
	}

	/*
	 * Guest-physical translations are tagged by the EPT pointer on each
	 * CPU: flush when the VM's tables lost entries, and when arriving on
	 * a CPU that may hold stale ones from an earlier visit (or an earlier
	 * VM whose root page this one reuses).  INVEPT also covers the
	 * VPID-tagged combined translations; the guest's own flush needs only
	 * INVVPID (without a VPID every entry flushes them anyway).
	 */
	if (sv->last_run_cpu != cpu || vm_flush)
		vmx_flush_ept(sv->eptp);
	else if (a->tlb_flush_pending && sv->vpid)
		vmx_flush_vpid(sv->vpid);
	sv->last_run_cpu = cpu;

	vmx_save_host(sv, &hs);
	if (native_read_cr2() != sv->cr2)
		native_write_cr2(sv->cr2);
	r = vmx_enter_exit(a->regs, sv->launched);
	sv->cr2 = native_read_cr2();
	vmx_restore_host(sv, &hs, cpu);
	if (!r) {
		reason = vmcs_read(VMCS_EXIT_REASON);
		if (!(reason & VMX_EXIT_FAILED_ENTRY))
			sv->launched = true;
		if ((reason & 0xffff) == VMX_EXIT_EXCEPTION_NMI) {
			intr_info = vmcs_read(VMCS_EXIT_INTR_INFO);
			/* The NMI was the host's: hand it to the host now. */
			if (((intr_info & VMX_INTR_INFO_TYPE_MASK) >>
			     VMX_INTR_INFO_TYPE_SHIFT) == VMX_INTR_TYPE_NMI)
				asm volatile("int $2");
		}
	}

	if (r) {
		memset(exit, 0, sizeof(*exit));
		exit->reason = X86_EXIT_ENTRY_FAILED;
		exit->code = vmcs_read(VMCS_INSN_ERROR);
		pr_err_ratelimited("kestrel: VM%s failed: VM-instruction error %llu\n",
				   sv->launched ? "RESUME" : "LAUNCH", exit->code);
		return;
	}
	if (reason & VMX_EXIT_FAILED_ENTRY) {
		/* Nothing ran: the guest state and the pending event stand. */
		vmx_describe_exit(vcpu, sv, reason, 0, 0, exit);
		pr_info_ratelimited("kestrel: VM entry failed, exit reason %#x qualification %#lx\n",
				    reason, vmcs_read(VMCS_EXIT_QUALIFICATION));
		return;
	}
	a->rip = vmcs_read(VMCS_GUEST_RIP);
	a->regs[KREG_RSP] = vmcs_read(VMCS_GUEST_RSP);
	a->rflags = vmcs_read(VMCS_GUEST_RFLAGS);
	sv->exit_rip = a->rip;
	sv->intr_state = vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);
	idt_info = vmcs_read(VMCS_IDT_VECTORING_INFO);
	vmx_complete_event(sv, idt_info);
	vmx_describe_exit(vcpu, sv, reason, intr_info, idt_info, exit);
}

const struct kestrel_backend_ops kestrel_vmx_ops = {
	.name			= "vmx",
	.backend_id		= KESTREL_BACKEND_VMX,
	.probe			= vmx_probe,
	.hardware_setup		= vmx_hardware_setup,
	.hardware_unsetup	= vmx_hardware_unsetup,
	.nr_asids		= vmx_nr_asids,
	.cpu_enable		= vmx_cpu_enable,
	.cpu_disable		= vmx_cpu_disable,
	.vcpu_create		= vmx_vcpu_create,
	.vcpu_free		= vmx_vcpu_free,
	.vcpu_reset		= vmx_vcpu_reset,
	.get_sregs		= vmx_get_sregs,
	.set_sregs		= vmx_set_sregs,
	.get_cr			= vmx_get_cr,
	.set_cr4		= vmx_set_cr4,
	.get_efer		= vmx_get_efer,
	.set_efer		= vmx_set_efer,
	.get_pat		= vmx_get_pat,
	.set_pat		= vmx_set_pat,
	.get_seg		= vmx_get_seg,
	.set_cr2		= vmx_set_cr2,
	.set_cr8		= vmx_set_cr8,
	.set_tsc_offset		= vmx_set_tsc_offset,
	.interrupt_allowed	= vmx_interrupt_allowed,
	.inject_irq		= vmx_inject_irq,
	.set_irq_window		= vmx_set_irq_window,
	.cancel_exception	= vmx_cancel_exception,
	.npt_format		= &vmx_npt_format,
	.prepare_run		= vmx_prepare_run,
	.run			= vmx_run,
};
