/* SPDX-License-Identifier: GPL-2.0 */
/*
 * x86 common code and the hardware backend interface.
 *
 * A backend (svm.c; vmx.c later) implements struct kestrel_backend_ops and
 * touches only hardware state: the VMCB/VMCS, VMRUN/VMLAUNCH, per-CPU
 * enable, TLB tags.  It reports each exit as a struct kestrel_x86_exit in
 * architectural terms; x86.c interprets exits (CPUID, I/O, MSRs, control
 * and debug registers, nested page faults), validates state coming from
 * userspace, and decodes instructions where the hardware does not tell.
 */
#ifndef KESTREL_X86_H
#define KESTREL_X86_H

#include <linux/static_call.h>
#include <asm/trapnr.h>

#include "kestrel.h"

/*
 * The local APIC timer's input clock, as the guest sees it (CPUID
 * 0x40000010 EBX): 1 GHz, so a count is a nanosecond times the divider.
 */
#define KESTREL_APIC_BUS_KHZ	1000000

/*
 * Host accounting and RCU around the hardware entry, as KVM does, where
 * the kernel has the helpers: x86.c brackets the entry with the timing
 * pair; each backend brackets the instruction that enters the guest with
 * the state pair, in noinstr code, interrupts off.
 */
#ifdef KESTREL_HAVE_GUEST_STATE_ENTER
#include <linux/kvm_host.h>
#define kestrel_guest_timing_enter_irqoff()	guest_timing_enter_irqoff()
#define kestrel_guest_timing_exit_irqoff()	guest_timing_exit_irqoff()
#define kestrel_guest_state_enter_irqoff()	guest_state_enter_irqoff()
#define kestrel_guest_state_exit_irqoff()	guest_state_exit_irqoff()
#else
static __always_inline void kestrel_guest_timing_enter_irqoff(void) { }
static __always_inline void kestrel_guest_timing_exit_irqoff(void) { }
static __always_inline void kestrel_guest_state_enter_irqoff(void) { }
static __always_inline void kestrel_guest_state_exit_irqoff(void) { }
#endif

struct kestrel_x86_exit {
	enum kestrel_x86_exit_reason reason;
	/* Raw hardware words, for internal-error reports. */
	u64	code, info1, info2, int_info;
	/* Length of the exiting instruction; 0: unknown, decode it. */
	u8	insn_len;
	union {
		struct {
			u16  port;
			u8   size;
			bool in, string, rep;
		} io;
		struct {
			u64  gpa;
			u64  error;	/* x86 #PF-style error code */
			bool walk;	/* while walking the guest's tables */
		} npf;
		struct {
			u8   cr;
		} cr;
		struct {
			u32  error;	/* #AC: error code */
			u64  dr6;	/* #DB: B0-B3, BD, BS, BT as DR6 */
		} exc;
	};
};

/*
 * A nested page-table entry as bits (npt.c builds every entry from these):
 * a table entry is its child's address | table; a leaf is the page's
 * address | leaf, | write if writable, | huge for 2 MiB.  writable tests
 * an entry's write permission; accessed is the bit the CPU sets on use
 * (0: the format has none, and every entry counts as young).
 */
struct kestrel_npt_format {
	u64	table, leaf, write, huge;
	u64	writable, accessed;
};

/* Segment register indexes for get_seg/set_seg. */
enum kestrel_seg {
	KSEG_ES, KSEG_CS, KSEG_SS, KSEG_DS, KSEG_FS, KSEG_GS, KSEG_TR, KSEG_LDTR,
};

/*
 * What the callers guarantee, and lockdep checks: cpu_enable and
 * cpu_disable run on the CPU concerned with interrupts off; run as it
 * says below.  Every other op is called from process context, where it may
 * be preempted (a backend that needs a CPU, as VMX does for its VMCS,
 * disables preemption itself).
 */
struct kestrel_backend_ops {
	const char *name;
	u32	backend_id;			/* KESTREL_BACKEND_* */

	/* Load time: is the hardware usable?  Explains itself on failure. */
	int	(*probe)(void);
	int	(*hardware_setup)(void);	/* global tables */
	void	(*hardware_unsetup)(void);
	unsigned int (*nr_asids)(void);

	/* This CPU, with interrupts off.  -EBUSY: another hypervisor. */
	int	(*cpu_enable)(void);
	void	(*cpu_disable)(void);

	int	(*vcpu_create)(struct kestrel_vcpu *vcpu);
	void	(*vcpu_free)(struct kestrel_vcpu *vcpu);
	/* Power-on state: what the CPU holds after RESET. */
	void	(*vcpu_reset)(struct kestrel_vcpu *vcpu);

	/* Special registers; set_sregs gets state x86.c has validated. */
	void	(*get_sregs)(struct kestrel_vcpu *vcpu, struct kestrel_sregs *s);
	void	(*set_sregs)(struct kestrel_vcpu *vcpu,
			     const struct kestrel_sregs *s);
	u64	(*get_cr)(struct kestrel_vcpu *vcpu, int cr);
	void	(*set_cr4)(struct kestrel_vcpu *vcpu, u64 val);
	u64	(*get_efer)(struct kestrel_vcpu *vcpu);
	void	(*set_efer)(struct kestrel_vcpu *vcpu, u64 val);
	u64	(*get_pat)(struct kestrel_vcpu *vcpu);
	void	(*set_pat)(struct kestrel_vcpu *vcpu, u64 val);
	void	(*get_seg)(struct kestrel_vcpu *vcpu, int seg,
			   struct kestrel_segment *out);

	/*
	 * Nested page-table entry format (NPT and EPT differ), final once
	 * hardware_setup returned: npt.c copies it at load.
	 */
	const struct kestrel_npt_format *npt_format;

	/* CR2 for a #PF being injected; CR8 (TPR) as the local APIC sets it. */
	void	(*set_cr2)(struct kestrel_vcpu *vcpu, u64 val);
	void	(*set_cr8)(struct kestrel_vcpu *vcpu, u64 val);
	/* Guest TSC = host TSC + offset. */
	void	(*set_tsc_offset)(struct kestrel_vcpu *vcpu, u64 offset);

	/*
	 * External interrupts.  interrupt_allowed: RFLAGS.IF set, no
	 * interrupt shadow, and no event already being injected.
	 * inject_irq delivers @vector on the next entry.  set_irq_window asks
	 * for an X86_EXIT_IRQ_WINDOW exit as soon as the guest could take an
	 * interrupt of priority class @prio (above its TPR, IF set, no
	 * shadow); -1 cancels the request.
	 */
	bool	(*interrupt_allowed)(struct kestrel_vcpu *vcpu);
	void	(*inject_irq)(struct kestrel_vcpu *vcpu, u8 vector);
	void	(*set_irq_window)(struct kestrel_vcpu *vcpu, int prio);
	/*
	 * Forget an exception the last exit cut short, which the next entry
	 * would deliver again; an interrupt or NMI cut short stays.
	 */
	void	(*cancel_exception)(struct kestrel_vcpu *vcpu);

	/*
	 * The entry, in two halves around x86.c's handshake, both on the
	 * vCPU's thread with preemption disabled (by x86.c, for one entry:
	 * the thread is preemptible between entries), so neither may sleep.
	 *
	 * prepare_run (optional), interrupts on: what needs them (VMX: make
	 * the VMCS current here, which may IPI the CPU that had it).  The
	 * entry may still be abandoned after it.
	 *
	 * run, interrupts off and vcpu->mode KESTREL_IN_GUEST, the cancel
	 * check passed: load the registers in vcpu->arch, deliver a pending
	 * exception, flush what the guest may have cached (@vm_flush: the
	 * VM's nested tables lost entries since this vCPU last ran;
	 * vcpu->arch.tlb_flush_pending: the guest's own TLB), enter once,
	 * hand the host what was its own (an NMI, a machine check) and
	 * describe the exit.  Returns with interrupts still off.
	 */
	void	(*prepare_run)(struct kestrel_vcpu *vcpu);
	void	(*run)(struct kestrel_vcpu *vcpu, struct kestrel_x86_exit *exit,
		       bool vm_flush);
};

/*
 * The ops on the exit path (x86_calls.h), bound once at load by
 * kestrel_x86_bind_calls(): kestrel_call(op)(...) is a static call, a
 * direct call the kernel patches in where the architecture has them, no
 * retpoline (<linux/static_call.h>, 5.10+, falls back to an indirect call
 * by itself elsewhere).  prepare_run may be NULL: static_call_cond().
 */
#define KESTREL_X86_CALL(op)						\
	DECLARE_STATIC_CALL(kestrel_x86_##op,				\
			    *(typeof_member(struct kestrel_backend_ops, op))NULL)
#include "x86_calls.h"
#define kestrel_call(op)	static_call(kestrel_x86_##op)

/*
 * MSRs the guest owns outright on every backend (no intercept): SVM
 * switches them with VMLOAD/VMSAVE, VMX with the VMCS and its MSR areas.
 */
#define KESTREL_NR_GUEST_OWNED_MSRS	10
extern const u32 kestrel_guest_owned_msrs[KESTREL_NR_GUEST_OWNED_MSRS];

extern const struct kestrel_backend_ops *kestrel_backend;
extern const struct kestrel_backend_ops kestrel_svm_ops;
extern const struct kestrel_backend_ops kestrel_vmx_ops;

/* x86.c */
void kestrel_x86_queue_exception(struct kestrel_vcpu *vcpu, u8 vector,
				 bool has_error, u32 error);
/* DR6 bits not named alike in every kernel's debugreg.h. */
#define KESTREL_DR6_BD	BIT(13)
#define KESTREL_DR6_BT	BIT(15)
void kestrel_x86_queue_db(struct kestrel_vcpu *vcpu, u64 cause);
int kestrel_x86_guest_mode_bits(struct kestrel_vcpu *vcpu);
int kestrel_x86_internal_error(struct kestrel_vcpu *vcpu, u32 suberror,
			       int ndata, const u64 *data);
void kestrel_x86_before_inject(struct kestrel_vcpu *vcpu);
void kestrel_x86_init_event(struct kestrel_vcpu *vcpu);
void kestrel_x86_sipi(struct kestrel_vcpu *vcpu, u8 vector);

/* cpuid.c */
int kestrel_cpuid_init(void);
void kestrel_cpuid_exit(void);
void kestrel_cpuid_default(struct kestrel_vcpu *vcpu);
long kestrel_cpuid_get_supported(struct kestrel_cpuid __user *uarg);
long kestrel_cpuid_set(struct kestrel_vcpu *vcpu,
		       struct kestrel_cpuid __user *uarg);
long kestrel_cpuid_get(struct kestrel_vcpu *vcpu,
		       struct kestrel_cpuid __user *uarg);
void kestrel_cpuid_emulate(struct kestrel_vcpu *vcpu);
extern bool kestrel_host_has_nx, kestrel_host_has_fsgsbase,
	    kestrel_host_has_smep, kestrel_host_has_smap;
extern unsigned int kestrel_host_phys_bits;
unsigned int kestrel_cpuid_guest_phys_bits(struct kestrel_vcpu *vcpu);

/*
 * msr.c: emulated MSRs.  get/set return 0 (done), -1 (#GP) or -ENOENT
 * (not emulated: the VM's MSR policy decides).
 */
int kestrel_msr_get(struct kestrel_vcpu *vcpu, u32 msr, u64 *val);
int kestrel_msr_set(struct kestrel_vcpu *vcpu, u32 msr, u64 val);
void kestrel_msr_reset(struct kestrel_vcpu *vcpu);
/* Host TSC + the vCPU's offset; any context. */
u64 kestrel_x86_guest_tsc(struct kestrel_vcpu *vcpu);

/* pvclock.c: kvmclock (KVM's paravirtual clock ABI). */
#define KESTREL_MSR_KVM_WALL_CLOCK	0x4b564d00
#define KESTREL_MSR_KVM_SYSTEM_TIME	0x4b564d01
#define KESTREL_KVM_FEATURE_CLOCKSOURCE2	BIT(3)
#define KESTREL_KVM_FEATURE_STABLE_BIT	BIT(24)
void kestrel_pvclock_reset(struct kestrel_vcpu *vcpu);
void kestrel_pvclock_update(struct kestrel_vcpu *vcpu);
int kestrel_pvclock_set_system_time(struct kestrel_vcpu *vcpu, u64 val);
int kestrel_pvclock_set_wall_clock(struct kestrel_vcpu *vcpu, u64 val);

/* fpu.c: the guest's x87/SSE/AVX state and XCR0. */
void kestrel_fpu_setup(void);
u64 kestrel_fpu_supported_xcr0(void);
unsigned int kestrel_fpu_xstate_size(u64 xcr0);
int kestrel_fpu_vcpu_init(struct kestrel_vcpu *vcpu);
void kestrel_fpu_vcpu_free(struct kestrel_vcpu *vcpu);
void kestrel_fpu_reset(struct kestrel_vcpu *vcpu);
void kestrel_fpu_run_begin(struct kestrel_vcpu *vcpu);
void kestrel_fpu_run_end(struct kestrel_vcpu *vcpu);
void kestrel_fpu_enter_irqoff(struct kestrel_vcpu *vcpu);
void kestrel_fpu_exit_irqoff(struct kestrel_vcpu *vcpu);
/* -1: done; else the exception vector to raise. */
int kestrel_fpu_xsetbv(struct kestrel_vcpu *vcpu, u32 index, u64 val);

/* npt.c */
void kestrel_npt_setup(void);
int kestrel_npt_init(struct kestrel_vm *vm);
void kestrel_npt_destroy(struct kestrel_vm *vm);
int kestrel_npt_fault(struct kestrel_vcpu *vcpu, u64 gpa, u64 error);
phys_addr_t kestrel_npt_root_pa(struct kestrel_vm *vm);
void kestrel_npt_cache_free(struct kestrel_npt_cache *c);

/* decode.c: just enough x86 decoding to step over and read operands. */
struct kestrel_insn {
	u8	len;
	u8	opcode;		/* last opcode byte */
	u8	map;		/* 0: one-byte, 1: 0F xx, 2: 0F 01 group */
	u8	modrm;
	bool	has_modrm;
	bool	mem;		/* ModRM names memory */
	u8	rex;
	u8	op_bytes;	/* operand size: 1, 2, 4 or 8 */
	s64	imm;		/* sign-extended immediate */
	bool	opsize, adsize, rep, repne, lock;
};

int kestrel_decode(const u8 *bytes, int avail, int mode_bits,
		   struct kestrel_insn *insn);

#endif
