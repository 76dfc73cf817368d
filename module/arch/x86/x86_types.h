/* SPDX-License-Identifier: GPL-2.0 */
/*
 * x86 state embedded in the core's VM and vCPU objects.  All of it is
 * guarded by the lock the core names for the containing object: per-vCPU
 * state by vcpu->mutex, the nested page table by vm->mmu_lock.
 */
#ifndef KESTREL_X86_TYPES_H
#define KESTREL_X86_TYPES_H

#include <linux/types.h>
#include <linux/kestrel.h>

#define KESTREL_MAX_CPUID	256

/* Exits as x86.c sees them; also the index of the per-vCPU exit counters. */
enum kestrel_x86_exit_reason {
	X86_EXIT_NONE,		/* nothing to do (interrupt, NMI): re-enter */
	X86_EXIT_CPUID,
	X86_EXIT_HLT,
	X86_EXIT_IO,
	X86_EXIT_RDMSR,
	X86_EXIT_WRMSR,
	X86_EXIT_CR_WRITE,	/* cr: which register */
	X86_EXIT_DR_ACCESS,
	X86_EXIT_NPF,		/* nested page fault */
	X86_EXIT_SHUTDOWN,
	X86_EXIT_UD,		/* inject #UD (instructions we do not offer) */
	X86_EXIT_GP,		/* inject #GP(0) */
	X86_EXIT_SKIP,		/* treat the instruction as a no-op */
	X86_EXIT_ENTRY_FAILED,
	X86_EXIT_EVENT_DELIVERY,
	X86_EXIT_IRQ_WINDOW,	/* the guest can take the pending interrupt */
	X86_EXIT_XSETBV,
	X86_EXIT_EXC_DB,	/* reflect #DB; exc.dr6: its cause bits */
	X86_EXIT_EXC_AC,	/* reflect #AC; exc.error: its error code */
	X86_EXIT_STATE_LOST,	/* the CPU returned no guest state (svm.c) */
	X86_EXIT_UNHANDLED,
	X86_EXIT_NR
};

#define KESTREL_ARCH_NR_EXITS	X86_EXIT_NR

enum kestrel_reg {
	KREG_RAX, KREG_RCX, KREG_RDX, KREG_RBX,
	KREG_RSP, KREG_RBP, KREG_RSI, KREG_RDI,
	KREG_R8, KREG_R9, KREG_R10, KREG_R11,
	KREG_R12, KREG_R13, KREG_R14, KREG_R15,
	KREG_NR
};

struct kestrel_arch_vm {
	/*
	 * irqchip is set once, under vm->lock, before any vCPU exists;
	 * msr_policy at any time, without a lock (one WRITE_ONCE).  vCPU
	 * threads read both without locks.
	 */
	bool		irqchip;	/* KESTREL_CREATE_IRQCHIP done */
	u8		msr_policy;	/* KESTREL_MSR_POLICY_* */

	/*
	 * Host TSC at the VM's time zero: set once, by cmpxchg, when its
	 * first vCPU is created; read without locks.  Every vCPU's TSC
	 * starts on this timeline, and kvmclock counts from it.
	 */
	u64		tsc_base;

	/* Nested page table (vm->mmu_lock). */
	u64		*npt_root;	/* top-level table, kernel VA */
	int		npt_levels;	/* 4 or 5, as the host pages */
	u64		npt_pages;	/* table pages allocated */
	u64		mapped_4k;	/* 4 KiB leaf entries present */
	u64		mapped_2m;	/* 2 MiB leaf entries present */
};

/* Table pages allocated before vm->mmu_lock, used under it. */
#define KESTREL_NPT_CACHE	5
struct kestrel_npt_cache {
	int	nr;
	void	*pages[KESTREL_NPT_CACHE];
};

/*
 * An instruction touching MMIO, between its exits: the MMIO read went to
 * userspace and its data is awaited (READ_WAIT) or has arrived
 * (READ_DONE); the next entry finishes the instruction.  Its bytes are
 * kept and decoded again then, so nothing else about it need be stored.
 */
enum {
	KESTREL_EMUL_NONE,
	KESTREL_EMUL_READ_WAIT,
	KESTREL_EMUL_READ_DONE,
};

struct kestrel_emul {
	u8	state;		/* KESTREL_EMUL_* */
	u8	mode;		/* 16, 32, 64: guest code size at decode */
	u8	nbytes;		/* instruction bytes in insn[] */
	u8	size;		/* bytes of the MMIO read */
	u8	insn[15];
	bool	dst_mmio;	/* MOVS: the destination is MMIO too */
	u64	gpa;		/* MMIO address read (and written back) */
	u64	dst_gpa;	/* MOVS: destination, RAM or MMIO */
	u64	data;		/* what the read returned */
};

/* An exception the next entry must deliver. */
struct kestrel_x86_event {
	bool	pending;
	bool	has_error;
	u8	vector;
	u32	error;
};

struct kestrel_arch_vcpu {
	/*
	 * Canonical general registers between exits.  The backend moves the
	 * ones its hardware keeps elsewhere (SVM: RAX, RSP in the VMCB) in
	 * and out around each entry.
	 */
	unsigned long	regs[KREG_NR];
	unsigned long	rip;
	unsigned long	rflags;

	/* Virtual debug registers: guests may not touch the real ones. */
	unsigned long	db[4];
	unsigned long	dr6, dr7;

	struct kestrel_x86_event exception;

	/* MSR value; vCPU thread writes (WRITE_ONCE), IPI senders read */
	u64		apic_base;
	struct kestrel_lapic *lapic;	/* NULL: the VM has no irqchip */
	u8		mp_state;	/* KESTREL_MP_STATE_* */
	bool		async_exit;	/* last exit: interrupt or window */

	/* The guest's own TLB must go (emulated CR4 write): new tag. */
	bool		tlb_flush_pending;

	/* Port-I/O IN waiting for userspace's data (size in bytes, 0: none). */
	u8		pio_in_size;

	/* An instruction on MMIO emulated across exits (emulate.c). */
	struct kestrel_emul	emul;

	/* Seen by the TLB logic of the backend. */
	int		tlb_gen;
	struct kestrel_npt_cache npt_cache;

	/*
	 * The guest's x87/SSE/AVX state (fpu.c): the host's struct
	 * fpu_guest, or where the kernel has none for us an XSAVE image (an
	 * FXSAVE one where the host has no XSAVE); fpu_in_use while it is
	 * the thread's FPU state (RUN); the guest's XCR0.
	 */
	void		*guest_fpu;
	bool		fpu_in_use;
	u64		xcr0;

	/* MSRs Kestrel emulates (msr.c, pvclock.c). */
	struct kestrel_msrs {
		s64	tsc_offset;	/* guest TSC = host TSC + this */
		u64	mtrr_deftype;
		u64	mtrr_fixed[11];	/* 64K_00000, 16K_80000/A0000, 4K_C0000.. */
		u64	mtrr_var[16];	/* PHYSBASE0, PHYSMASK0, ... */
		u64	misc_enable;
		u64	nb_cfg;
		u32	tsc_aux;	/* IA32_TSC_AUX (RDPID) */
		u64	kvm_system_time;	/* MSR values as written */
		u64	kvm_wall_clock;
		u32	pvclock_version;	/* last published, even */
		u32	wall_clock_version;
	} msrs;

	/* An MSR access userspace completes (KESTREL_EXIT_MSR). */
	struct {
		bool	pending;
		bool	write;
		u8	len;		/* of the RDMSR/WRMSR, to step over */
	} msr_exit;

	int		nr_cpuid;
	struct kestrel_cpuid_entry *cpuid;	/* KESTREL_MAX_CPUID entries */

	void		*backend;	/* backend's per-vCPU state */
};

#endif
