/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Intel VMX hardware layouts and encodings (Intel SDM vol. 3C, chapters
 * 24-28 and appendices A-C).  Only the VMX backend includes this file.
 */
#ifndef KESTREL_VMX_H
#define KESTREL_VMX_H

#include <linux/build_bug.h>
#include <linux/types.h>

/* Capability and control MSRs (appendix A). */
#define VMX_MSR_FEATURE_CONTROL		0x0000003a
#define VMX_MSR_BASIC			0x00000480
#define VMX_MSR_PINBASED_CTLS		0x00000481
#define VMX_MSR_PROCBASED_CTLS		0x00000482
#define VMX_MSR_EXIT_CTLS		0x00000483
#define VMX_MSR_ENTRY_CTLS		0x00000484
#define VMX_MSR_MISC			0x00000485
#define VMX_MSR_CR0_FIXED0		0x00000486
#define VMX_MSR_CR0_FIXED1		0x00000487
#define VMX_MSR_CR4_FIXED0		0x00000488
#define VMX_MSR_CR4_FIXED1		0x00000489
#define VMX_MSR_PROCBASED_CTLS2		0x0000048b
#define VMX_MSR_EPT_VPID_CAP		0x0000048c
#define VMX_MSR_TRUE_PINBASED_CTLS	0x0000048d
#define VMX_MSR_TRUE_PROCBASED_CTLS	0x0000048e
#define VMX_MSR_TRUE_EXIT_CTLS		0x0000048f
#define VMX_MSR_TRUE_ENTRY_CTLS		0x00000490

/* IA32_FEATURE_CONTROL */
#define VMX_FC_LOCKED			BIT_ULL(0)
#define VMX_FC_VMX_OUTSIDE_SMX		BIT_ULL(2)

/* IA32_VMX_BASIC */
#define VMX_BASIC_REVISION(b)		((u32)(b) & 0x7fffffff)
#define VMX_BASIC_VMCS_SIZE(b)		(((b) >> 32) & 0x1fff)
#define VMX_BASIC_32BIT_ADDR		BIT_ULL(48)
#define VMX_BASIC_MEMTYPE(b)		(((b) >> 50) & 0xf)
#define VMX_BASIC_TRUE_CONTROLS		BIT_ULL(55)

/* IA32_VMX_MISC: the preemption timer counts once per 2^rate TSC ticks */
#define VMX_MISC_TIMER_RATE(m)		((m) & 0x1f)

/* IA32_VMX_EPT_VPID_CAP */
#define VMX_EPT_CAP_WALK4		BIT_ULL(6)
#define VMX_EPT_CAP_WALK5		BIT_ULL(7)
#define VMX_EPT_CAP_UC			BIT_ULL(8)
#define VMX_EPT_CAP_WB			BIT_ULL(14)
#define VMX_EPT_CAP_2M			BIT_ULL(16)
#define VMX_EPT_CAP_INVEPT		BIT_ULL(20)
#define VMX_EPT_CAP_AD			BIT_ULL(21)
#define VMX_EPT_CAP_INVEPT_SINGLE	BIT_ULL(25)
#define VMX_EPT_CAP_INVEPT_ALL		BIT_ULL(26)
#define VMX_VPID_CAP_INVVPID		BIT_ULL(32)
#define VMX_VPID_CAP_INVVPID_SINGLE	BIT_ULL(41)
#define VMX_VPID_CAP_INVVPID_ALL	BIT_ULL(42)

/* INVEPT / INVVPID types */
#define VMX_INVEPT_SINGLE		1
#define VMX_INVEPT_ALL			2
#define VMX_INVVPID_SINGLE		1
#define VMX_INVVPID_ALL			2

/* Pin-based VM-execution controls */
#define PIN_EXT_INTR_EXITING		BIT(0)
#define PIN_NMI_EXITING			BIT(3)
#define PIN_PREEMPTION_TIMER		BIT(6)

/* Primary processor-based VM-execution controls */
#define CPU_INTR_WINDOW_EXITING		BIT(2)
#define CPU_USE_TSC_OFFSETTING		BIT(3)
#define CPU_HLT_EXITING			BIT(7)
#define CPU_INVLPG_EXITING		BIT(9)
#define CPU_MWAIT_EXITING		BIT(10)
#define CPU_RDPMC_EXITING		BIT(11)
#define CPU_RDTSC_EXITING		BIT(12)
#define CPU_CR3_LOAD_EXITING		BIT(15)
#define CPU_CR3_STORE_EXITING		BIT(16)
#define CPU_CR8_LOAD_EXITING		BIT(19)
#define CPU_CR8_STORE_EXITING		BIT(20)
#define CPU_TPR_SHADOW			BIT(21)
#define CPU_NMI_WINDOW_EXITING		BIT(22)
#define CPU_MOV_DR_EXITING		BIT(23)
#define CPU_UNCOND_IO_EXITING		BIT(24)
#define CPU_USE_IO_BITMAPS		BIT(25)
#define CPU_MONITOR_TRAP_FLAG		BIT(27)
#define CPU_USE_MSR_BITMAPS		BIT(28)
#define CPU_MONITOR_EXITING		BIT(29)
#define CPU_PAUSE_EXITING		BIT(30)
#define CPU_SECONDARY_CTLS		BIT(31)

/* Secondary processor-based VM-execution controls */
#define CPU2_ENABLE_EPT			BIT(1)
#define CPU2_ENABLE_RDTSCP		BIT(3)
#define CPU2_ENABLE_VPID		BIT(5)
#define CPU2_WBINVD_EXITING		BIT(6)
#define CPU2_UNRESTRICTED_GUEST		BIT(7)
#define CPU2_ENABLE_INVPCID		BIT(12)
#define CPU2_ENABLE_XSAVES		BIT(20)

/* VM-exit controls */
#define EXIT_SAVE_DEBUG_CTLS		BIT(2)
#define EXIT_HOST_ADDR_SPACE_SIZE	BIT(9)
#define EXIT_ACK_INTR_ON_EXIT		BIT(15)
#define EXIT_SAVE_PAT			BIT(18)
#define EXIT_LOAD_PAT			BIT(19)
#define EXIT_SAVE_EFER			BIT(20)
#define EXIT_LOAD_EFER			BIT(21)

/* VM-entry controls */
#define ENTRY_LOAD_DEBUG_CTLS		BIT(2)
#define ENTRY_IA32E_MODE		BIT(9)
#define ENTRY_LOAD_PAT			BIT(14)
#define ENTRY_LOAD_EFER			BIT(15)

/* VMCS field encodings (appendix B). */
enum vmcs_field {
	/* 16-bit */
	VMCS_VPID			= 0x0000,
	VMCS_GUEST_ES_SEL		= 0x0800,	/* + 2 * vmx_seg */
	VMCS_HOST_ES_SEL		= 0x0c00,
	VMCS_HOST_CS_SEL		= 0x0c02,
	VMCS_HOST_SS_SEL		= 0x0c04,
	VMCS_HOST_DS_SEL		= 0x0c06,
	VMCS_HOST_FS_SEL		= 0x0c08,
	VMCS_HOST_GS_SEL		= 0x0c0a,
	VMCS_HOST_TR_SEL		= 0x0c0c,
	/* 64-bit */
	VMCS_MSR_BITMAP			= 0x2004,
	VMCS_EXIT_MSR_STORE_ADDR	= 0x2006,
	VMCS_EXIT_MSR_LOAD_ADDR		= 0x2008,
	VMCS_ENTRY_MSR_LOAD_ADDR	= 0x200a,
	VMCS_TSC_OFFSET			= 0x2010,
	VMCS_VIRTUAL_APIC_ADDR		= 0x2012,
	VMCS_EPT_POINTER		= 0x201a,
	VMCS_GUEST_PHYS_ADDR		= 0x2400,
	VMCS_LINK_PTR			= 0x2800,
	VMCS_GUEST_DEBUGCTL		= 0x2802,
	VMCS_GUEST_PAT			= 0x2804,
	VMCS_GUEST_EFER			= 0x2806,
	VMCS_GUEST_PDPTE0		= 0x280a,	/* + 2 * n */
	VMCS_HOST_PAT			= 0x2c00,
	VMCS_HOST_EFER			= 0x2c02,
	/* 32-bit */
	VMCS_PIN_CTLS			= 0x4000,
	VMCS_CPU_CTLS			= 0x4002,
	VMCS_EXCEPTION_BITMAP		= 0x4004,
	VMCS_PF_ERROR_MASK		= 0x4006,
	VMCS_PF_ERROR_MATCH		= 0x4008,
	VMCS_CR3_TARGET_COUNT		= 0x400a,
	VMCS_EXIT_CTLS			= 0x400c,
	VMCS_EXIT_MSR_STORE_COUNT	= 0x400e,
	VMCS_EXIT_MSR_LOAD_COUNT	= 0x4010,
	VMCS_ENTRY_CTLS			= 0x4012,
	VMCS_ENTRY_MSR_LOAD_COUNT	= 0x4014,
	VMCS_ENTRY_INTR_INFO		= 0x4016,
	VMCS_ENTRY_EXCEPTION_ERROR	= 0x4018,
	VMCS_ENTRY_INSN_LEN		= 0x401a,
	VMCS_TPR_THRESHOLD		= 0x401c,
	VMCS_CPU_CTLS2			= 0x401e,
	VMCS_INSN_ERROR			= 0x4400,
	VMCS_EXIT_REASON		= 0x4402,
	VMCS_EXIT_INTR_INFO		= 0x4404,
	VMCS_EXIT_INTR_ERROR		= 0x4406,
	VMCS_IDT_VECTORING_INFO		= 0x4408,
	VMCS_IDT_VECTORING_ERROR	= 0x440a,
	VMCS_EXIT_INSN_LEN		= 0x440c,
	VMCS_GUEST_ES_LIMIT		= 0x4800,	/* + 2 * vmx_seg */
	VMCS_GUEST_GDTR_LIMIT		= 0x4810,
	VMCS_GUEST_IDTR_LIMIT		= 0x4812,
	VMCS_GUEST_ES_AR		= 0x4814,	/* + 2 * vmx_seg */
	VMCS_GUEST_INTERRUPTIBILITY	= 0x4824,
	VMCS_GUEST_ACTIVITY		= 0x4826,
	VMCS_GUEST_SYSENTER_CS		= 0x482a,
	VMCS_PREEMPTION_TIMER		= 0x482e,
	VMCS_HOST_SYSENTER_CS		= 0x4c00,
	/* natural width */
	VMCS_CR0_MASK			= 0x6000,
	VMCS_CR4_MASK			= 0x6002,
	VMCS_CR0_SHADOW			= 0x6004,
	VMCS_CR4_SHADOW			= 0x6006,
	VMCS_EXIT_QUALIFICATION		= 0x6400,
	VMCS_GUEST_LINEAR_ADDR		= 0x640a,
	VMCS_GUEST_CR0			= 0x6800,
	VMCS_GUEST_CR3			= 0x6802,
	VMCS_GUEST_CR4			= 0x6804,
	VMCS_GUEST_ES_BASE		= 0x6806,	/* + 2 * vmx_seg */
	VMCS_GUEST_GDTR_BASE		= 0x6816,
	VMCS_GUEST_IDTR_BASE		= 0x6818,
	VMCS_GUEST_DR7			= 0x681a,
	VMCS_GUEST_RSP			= 0x681c,
	VMCS_GUEST_RIP			= 0x681e,
	VMCS_GUEST_RFLAGS		= 0x6820,
	VMCS_GUEST_PENDING_DBG		= 0x6822,
	VMCS_GUEST_SYSENTER_ESP		= 0x6824,
	VMCS_GUEST_SYSENTER_EIP		= 0x6826,
	VMCS_HOST_CR0			= 0x6c00,
	VMCS_HOST_CR3			= 0x6c02,
	VMCS_HOST_CR4			= 0x6c04,
	VMCS_HOST_FS_BASE		= 0x6c06,
	VMCS_HOST_GS_BASE		= 0x6c08,
	VMCS_HOST_TR_BASE		= 0x6c0a,
	VMCS_HOST_GDTR_BASE		= 0x6c0c,
	VMCS_HOST_IDTR_BASE		= 0x6c0e,
	VMCS_HOST_SYSENTER_ESP		= 0x6c10,
	VMCS_HOST_SYSENTER_EIP		= 0x6c12,
	VMCS_HOST_RSP			= 0x6c14,
	VMCS_HOST_RIP			= 0x6c16,
};

/* Guest segment registers in VMCS field order (not enum kestrel_seg's). */
enum vmx_seg {
	VMX_ES, VMX_CS, VMX_SS, VMX_DS, VMX_FS, VMX_GS, VMX_LDTR, VMX_TR,
};

/* Segment access rights: the descriptor's bits 15:8 and 23:20, and unusable. */
#define VMX_SEG_AR_TYPE		0xfU
#define VMX_AR_S			BIT(4)
#define VMX_SEG_AR_DPL_SHIFT		5
#define VMX_AR_P			BIT(7)
#define VMX_AR_AVL			BIT(12)
#define VMX_AR_L			BIT(13)
#define VMX_AR_DB			BIT(14)
#define VMX_AR_G			BIT(15)
#define VMX_AR_UNUSABLE			BIT(16)

/* Guest interruptibility state */
#define VMX_INTR_STI			BIT(0)
#define VMX_INTR_MOV_SS			BIT(1)
#define VMX_PENDING_DBG_BS		BIT(14)

/* VM-entry/exit interruption information and IDT-vectoring information */
#define VMX_INTR_INFO_VECTOR		0xffU
#define VMX_INTR_INFO_TYPE_SHIFT	8
#define VMX_INTR_INFO_TYPE_MASK		(7U << VMX_INTR_INFO_TYPE_SHIFT)
#define VMX_INTR_INFO_ERROR		BIT(11)
#define VMX_INTR_INFO_VALID		BIT(31)
#define VMX_INTR_TYPE_EXT		0
#define VMX_INTR_TYPE_NMI		2
#define VMX_INTR_TYPE_HW_EXCEPTION	3
#define VMX_INTR_TYPE_SOFT_INTR		4
#define VMX_INTR_TYPE_PRIV_SOFT_EXC	5
#define VMX_INTR_TYPE_SOFT_EXCEPTION	6

/* Basic exit reasons (appendix C); bit 31 of the field: entry failed. */
#define VMX_EXIT_FAILED_ENTRY		BIT(31)
#define VMX_EXIT_EXCEPTION_NMI		0
#define VMX_EXIT_EXT_INTR		1
#define VMX_EXIT_TRIPLE_FAULT		2
#define VMX_EXIT_INIT			3
#define VMX_EXIT_SIPI			4
#define VMX_EXIT_IO_SMI			5
#define VMX_EXIT_OTHER_SMI		6
#define VMX_EXIT_INTR_WINDOW		7
#define VMX_EXIT_NMI_WINDOW		8
#define VMX_EXIT_TASK_SWITCH		9
#define VMX_EXIT_CPUID			10
#define VMX_EXIT_GETSEC			11
#define VMX_EXIT_HLT			12
#define VMX_EXIT_INVD			13
#define VMX_EXIT_INVLPG			14
#define VMX_EXIT_RDPMC			15
#define VMX_EXIT_RDTSC			16
#define VMX_EXIT_RSM			17
#define VMX_EXIT_VMCALL			18
#define VMX_EXIT_VMCLEAR		19
#define VMX_EXIT_VMXON			27
#define VMX_EXIT_CR_ACCESS		28
#define VMX_EXIT_DR_ACCESS		29
#define VMX_EXIT_IO			30
#define VMX_EXIT_RDMSR			31
#define VMX_EXIT_WRMSR			32
#define VMX_EXIT_INVALID_STATE		33
#define VMX_EXIT_MSR_LOAD_FAIL		34
#define VMX_EXIT_MWAIT			36
#define VMX_EXIT_MTF			37
#define VMX_EXIT_MONITOR		39
#define VMX_EXIT_PAUSE			40
#define VMX_EXIT_MCE_DURING_ENTRY	41
#define VMX_EXIT_TPR_BELOW_THRESHOLD	43
#define VMX_EXIT_EPT_VIOLATION		48
#define VMX_EXIT_EPT_MISCONFIG		49
#define VMX_EXIT_INVEPT			50
#define VMX_EXIT_RDTSCP			51
#define VMX_EXIT_PREEMPTION_TIMER	52
#define VMX_EXIT_INVVPID		53
#define VMX_EXIT_WBINVD			54
#define VMX_EXIT_XSETBV			55
#define VMX_EXIT_INVPCID		58
#define VMX_EXIT_VMFUNC			59
#define VMX_EXIT_XSAVES			63
#define VMX_EXIT_XRSTORS		64

/* Exit qualification: control-register accesses */
#define VMX_CR_QUAL_CR(q)		((q) & 0xf)
#define VMX_CR_QUAL_TYPE(q)		(((q) >> 4) & 3)
#define VMX_CR_QUAL_GPR(q)		(((q) >> 8) & 0xf)
#define VMX_CR_TYPE_MOV_TO		0
#define VMX_CR_TYPE_MOV_FROM		1

/* Exit qualification: I/O instructions */
#define VMX_IO_QUAL_SIZE(q)		(((q) & 7) + 1)
#define VMX_IO_QUAL_IN			BIT(3)
#define VMX_IO_QUAL_STRING		BIT(4)
#define VMX_IO_QUAL_REP			BIT(5)
#define VMX_IO_QUAL_PORT(q)		(((q) >> 16) & 0xffff)

/* Exit qualification: EPT violations */
#define VMX_EPT_QUAL_WRITE		BIT(1)
#define VMX_EPT_QUAL_FETCH		BIT(2)
#define VMX_EPT_QUAL_PRESENT		(7U << 3)	/* R, W or X allowed */
#define VMX_EPT_QUAL_LINEAR_VALID	BIT(7)
#define VMX_EPT_QUAL_TRANSLATED		BIT(8)

/* EPT paging-structure entries and the EPT pointer (28.3.2) */
#define VMX_EPT_READ			BIT_ULL(0)
#define VMX_EPT_WRITE			BIT_ULL(1)
#define VMX_EPT_EXEC			BIT_ULL(2)
#define VMX_EPT_MT_SHIFT		3
#define VMX_EPT_MT_WB			6ULL
#define VMX_EPT_MT_UC			0ULL
#define VMX_EPT_IGNORE_PAT		BIT_ULL(6)
#define VMX_EPT_LARGE			BIT_ULL(7)
#define VMX_EPT_ACCESSED		BIT_ULL(8)
#define VMX_EPT_DIRTY			BIT_ULL(9)
#define VMX_EPTP_WALK_SHIFT		3
#define VMX_EPTP_AD			BIT_ULL(6)

/* The first words of a VMCS or VMXON region; the rest is the CPU's. */
struct vmcs_hdr {
	u32 revision;
	u32 abort;
} __packed;
static_assert(sizeof(struct vmcs_hdr) == 8);

/* One entry of an MSR load/store area (24.7.2, 24.8.2). */
struct vmx_msr_entry {
	u32 index;
	u32 reserved;
	u64 value;
} __packed __aligned(16);
static_assert(sizeof(struct vmx_msr_entry) == 16);
static_assert(offsetof(struct vmx_msr_entry, value) == 8);

/* The MSR bitmap: read low, read high, write low, write high (24.6.9). */
#define VMX_MSR_BITMAP_READ_LOW		0x000
#define VMX_MSR_BITMAP_READ_HIGH	0x400
#define VMX_MSR_BITMAP_WRITE_LOW	0x800
#define VMX_MSR_BITMAP_WRITE_HIGH	0xc00

/* The virtual-APIC page's TPR (VTPR) */
#define VMX_VAPIC_TPR			0x80

/* vmx_vmrun.S: 0 after a VM exit, 1 when VMLAUNCH/VMRESUME failed. */
int __kestrel_vmx_vmrun(unsigned long *regs, unsigned long launched);
extern const char __kestrel_vmx_exit[];

#endif
