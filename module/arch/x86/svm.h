/* SPDX-License-Identifier: GPL-2.0 */
/*
 * AMD SVM hardware layouts (AMD64 APM vol. 2, appendix B and chapter 15).
 * Only the backend includes this file.
 */
#ifndef KESTREL_SVM_H
#define KESTREL_SVM_H

#include <linux/build_bug.h>
#include <linux/types.h>

struct vmcb_seg_k {
	u16 selector;
	u16 attrib;		/* type:4 s:1 dpl:2 p:1 avl:1 l:1 db:1 g:1 */
	u32 limit;
	u64 base;
} __packed;

struct vmcb_control_k {
	u32 intercept_cr;	/* reads 15:0, writes 31:16 */
	u32 intercept_dr;	/* reads 15:0, writes 31:16 */
	u32 intercept_exceptions;
	u32 intercept_misc1;
	u32 intercept_misc2;
	u32 intercept_misc3;
	u8  reserved_1[0x3c - 0x18];
	u16 pause_filter_thresh;
	u16 pause_filter_count;
	u64 iopm_base_pa;
	u64 msrpm_base_pa;
	u64 tsc_offset;
	u32 asid;
	u8  tlb_ctl;
	u8  reserved_2[3];
	u32 int_ctl;
	u32 int_vector;
	u32 int_state;
	u8  reserved_3[4];
	u64 exit_code;
	u64 exit_info_1;
	u64 exit_info_2;
	u64 exit_int_info;	/* error code in 63:32 */
	u64 nested_ctl;
	u64 avic_vapic_bar;
	u64 ghcb_gpa;
	u64 event_inj;		/* error code in 63:32 */
	u64 nested_cr3;
	u64 virt_ext;
	u32 clean;
	u32 reserved_5;
	u64 next_rip;
	u8  insn_len;
	u8  insn_bytes[15];
	u8  reserved_6[0x400 - 0xe0];
} __packed;

struct vmcb_save_k {
	struct vmcb_seg_k es, cs, ss, ds, fs, gs;
	struct vmcb_seg_k gdtr, ldtr, idtr, tr;
	u8  reserved_1[0xcb - 0xa0];
	u8  cpl;
	u32 reserved_2;
	u64 efer;
	u8  reserved_3[0x148 - 0xd8];
	u64 cr4;
	u64 cr3;
	u64 cr0;
	u64 dr7;
	u64 dr6;
	u64 rflags;
	u64 rip;
	u8  reserved_4[0x1d8 - 0x180];
	u64 rsp;
	u64 s_cet, ssp, isst_addr;
	u64 rax;
	u64 star, lstar, cstar, sfmask;
	u64 kernel_gs_base;
	u64 sysenter_cs, sysenter_esp, sysenter_eip;
	u64 cr2;
	u8  reserved_5[0x268 - 0x248];
	u64 g_pat;
	u64 dbgctl;
	u64 br_from, br_to, last_excp_from, last_excp_to;
	u8  reserved_6[0xc00 - 0x298];
} __packed;

struct vmcb_k {
	struct vmcb_control_k control;
	struct vmcb_save_k save;
} __packed;

static_assert(sizeof(struct vmcb_control_k) == 0x400);
static_assert(offsetof(struct vmcb_control_k, iopm_base_pa) == 0x40);
static_assert(offsetof(struct vmcb_control_k, asid) == 0x58);
static_assert(offsetof(struct vmcb_control_k, int_ctl) == 0x60);
static_assert(offsetof(struct vmcb_control_k, exit_code) == 0x70);
static_assert(offsetof(struct vmcb_control_k, exit_int_info) == 0x88);
static_assert(offsetof(struct vmcb_control_k, nested_ctl) == 0x90);
static_assert(offsetof(struct vmcb_control_k, event_inj) == 0xa8);
static_assert(offsetof(struct vmcb_control_k, nested_cr3) == 0xb0);
static_assert(offsetof(struct vmcb_control_k, clean) == 0xc0);
static_assert(offsetof(struct vmcb_control_k, next_rip) == 0xc8);
static_assert(offsetof(struct vmcb_save_k, cpl) == 0xcb);
static_assert(offsetof(struct vmcb_save_k, efer) == 0xd0);
static_assert(offsetof(struct vmcb_save_k, cr4) == 0x148);
static_assert(offsetof(struct vmcb_save_k, rip) == 0x178);
static_assert(offsetof(struct vmcb_save_k, rsp) == 0x1d8);
static_assert(offsetof(struct vmcb_save_k, rax) == 0x1f8);
static_assert(offsetof(struct vmcb_save_k, cr2) == 0x240);
static_assert(offsetof(struct vmcb_save_k, g_pat) == 0x268);
static_assert(sizeof(struct vmcb_k) == 4096);

/* intercept_misc1 */
#define SVM_INTERCEPT_INTR		BIT(0)
#define SVM_INTERCEPT_NMI		BIT(1)
#define SVM_INTERCEPT_SMI		BIT(2)
#define SVM_INTERCEPT_INIT		BIT(3)
#define SVM_INTERCEPT_VINTR		BIT(4)
#define SVM_INTERCEPT_RDPMC		BIT(15)
#define SVM_INTERCEPT_CPUID		BIT(18)
#define SVM_INTERCEPT_RSM		BIT(19)
#define SVM_INTERCEPT_INVD		BIT(22)
#define SVM_INTERCEPT_HLT		BIT(24)
#define SVM_INTERCEPT_INVLPGA		BIT(26)
#define SVM_INTERCEPT_IOIO_PROT		BIT(27)
#define SVM_INTERCEPT_MSR_PROT		BIT(28)
#define SVM_INTERCEPT_FERR_FREEZE	BIT(30)
#define SVM_INTERCEPT_SHUTDOWN		BIT(31)
/* intercept_misc2 */
#define SVM_INTERCEPT_VMRUN		BIT(0)
#define SVM_INTERCEPT_VMMCALL		BIT(1)
#define SVM_INTERCEPT_VMLOAD		BIT(2)
#define SVM_INTERCEPT_VMSAVE		BIT(3)
#define SVM_INTERCEPT_STGI		BIT(4)
#define SVM_INTERCEPT_CLGI		BIT(5)
#define SVM_INTERCEPT_SKINIT		BIT(6)
#define SVM_INTERCEPT_RDTSCP		BIT(7)
#define SVM_INTERCEPT_WBINVD		BIT(9)
#define SVM_INTERCEPT_MONITOR		BIT(10)
#define SVM_INTERCEPT_MWAIT		BIT(11)
#define SVM_INTERCEPT_MWAIT_COND	BIT(12)
#define SVM_INTERCEPT_XSETBV		BIT(13)
#define SVM_INTERCEPT_RDPRU		BIT(14)
/* intercept_misc3 */
#define SVM_INTERCEPT_INVLPGB		BIT(0)
#define SVM_INTERCEPT_INVLPGB_ILLEGAL	BIT(1)
#define SVM_INTERCEPT_INVPCID		BIT(2)
#define SVM_INTERCEPT_MCOMMIT		BIT(3)
#define SVM_INTERCEPT_TLBSYNC		BIT(4)

#define SVM_INTERCEPT_CR4_WRITE		BIT(16 + 4)
#define SVM_INTERCEPT_CR8_WRITE		BIT(16 + 8)

#define SVM_NESTED_CTL_NP_ENABLE	BIT(0)
#define SVM_INT_CTL_V_TPR_MASK		0xfU
#define SVM_INT_CTL_V_IRQ		BIT(8)
#define SVM_INT_CTL_V_INTR_PRIO_SHIFT	16
#define SVM_INT_CTL_V_INTR_PRIO_MASK	(0xfU << SVM_INT_CTL_V_INTR_PRIO_SHIFT)
#define SVM_INT_CTL_V_IGN_TPR		BIT(20)
#define SVM_INT_CTL_V_INTR_MASKING	BIT(24)
#define SVM_INT_STATE_SHADOW		BIT(0)
#define SVM_TLB_CONTROL_FLUSH_ALL_ASID	1

/* EVENTINJ / EXITINTINFO */
#define SVM_EVTINJ_VALID		BIT(31)
#define SVM_EVTINJ_VALID_ERR		BIT(11)
#define SVM_EVTINJ_TYPE_SHIFT		8
#define SVM_EVTINJ_TYPE_MASK		(7 << SVM_EVTINJ_TYPE_SHIFT)
#define SVM_EVTINJ_TYPE_INTR		0
#define SVM_EVTINJ_TYPE_NMI		2
#define SVM_EVTINJ_TYPE_EXEPT		3
#define SVM_EVTINJ_TYPE_SOFT		4

/* IOIO exit_info_1 */
#define SVM_IOIO_TYPE_IN		BIT(0)
#define SVM_IOIO_STR			BIT(2)
#define SVM_IOIO_REP			BIT(3)
#define SVM_IOIO_SIZE_SHIFT		4
#define SVM_IOIO_SIZE_MASK		(7 << SVM_IOIO_SIZE_SHIFT)

/* Exit codes */
#define SVM_EXIT_READ_CR0		0x000
#define SVM_EXIT_WRITE_CR0		0x010
#define SVM_EXIT_READ_DR0		0x020
#define SVM_EXIT_WRITE_DR7		0x037
#define SVM_EXIT_EXCP_BASE		0x040
#define SVM_EXIT_INTR			0x060
#define SVM_EXIT_NMI			0x061
#define SVM_EXIT_SMI			0x062
#define SVM_EXIT_INIT			0x063
#define SVM_EXIT_VINTR			0x064
#define SVM_EXIT_RDPMC			0x06f
#define SVM_EXIT_CPUID			0x072
#define SVM_EXIT_RSM			0x073
#define SVM_EXIT_INVD			0x076
#define SVM_EXIT_HLT			0x078
#define SVM_EXIT_INVLPGA		0x07a
#define SVM_EXIT_IOIO			0x07b
#define SVM_EXIT_MSR			0x07c
#define SVM_EXIT_FERR_FREEZE		0x07e
#define SVM_EXIT_SHUTDOWN		0x07f
#define SVM_EXIT_VMRUN			0x080
#define SVM_EXIT_VMMCALL		0x081
#define SVM_EXIT_VMLOAD			0x082
#define SVM_EXIT_VMSAVE			0x083
#define SVM_EXIT_STGI			0x084
#define SVM_EXIT_CLGI			0x085
#define SVM_EXIT_SKINIT			0x086
#define SVM_EXIT_RDTSCP			0x087
#define SVM_EXIT_WBINVD			0x089
#define SVM_EXIT_MONITOR		0x08a
#define SVM_EXIT_MWAIT			0x08b
#define SVM_EXIT_MWAIT_COND		0x08c
#define SVM_EXIT_XSETBV			0x08d
#define SVM_EXIT_RDPRU			0x08e
#define SVM_EXIT_INVLPGB		0x0a0
#define SVM_EXIT_INVLPGB_ILLEGAL	0x0a1
#define SVM_EXIT_INVPCID		0x0a2
#define SVM_EXIT_MCOMMIT		0x0a3
#define SVM_EXIT_TLBSYNC		0x0a4
#define SVM_EXIT_NPF			0x400
#define SVM_EXIT_INVALID		((u64)-1)

/* MSRs and CPUID bits the backend needs. */
#define SVM_MSR_VM_CR			0xc0010114
#define SVM_MSR_VM_HSAVE_PA		0xc0010117
#define SVM_VM_CR_SVMDIS		BIT(4)
#define SVM_CPUID_NPT			BIT(0)		/* 0x8000000A EDX */
#define SVM_CPUID_NRIPS			BIT(3)

/* Permission-map sizes: IOPM 12 KiB, MSRPM 8 KiB (APM 15.10, 15.11). */
#define SVM_IOPM_ORDER			2
#define SVM_MSRPM_ORDER			1

/* svm_vmrun.S */
void __kestrel_svm_vmrun(unsigned long vmcb_pa, unsigned long host_save_pa,
			 unsigned long *regs);
extern const char __kestrel_svm_vmexit[];	/* the host's RIP after VMRUN */

#endif
