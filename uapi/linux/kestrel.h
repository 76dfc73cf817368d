/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Kestrel userspace API.
 *
 * Three kinds of file descriptor, each with its own ioctls:
 *   /dev/kestrel  - system: API version, capabilities, VM creation
 *   VM fd         - guest memory and vCPU creation
 *   vCPU fd       - registers, CPUID, RUN, and an mmap()ed struct kestrel_run
 *
 * Documentation/uapi.rst describes every call and the errno for each misuse.
 * Every reserved or padding field must be zero on input; the kernel rejects
 * anything else with EINVAL so that those fields can gain a meaning later.
 */
#ifndef _UAPI_LINUX_KESTREL_H
#define _UAPI_LINUX_KESTREL_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define KESTREL_API_VERSION	1

#define KESTREL_IO		0xCE

/* ---- /dev/kestrel ------------------------------------------------------ */

#define KESTREL_VM_NAME_LEN	32

struct kestrel_create_vm {
	__u32 flags;				/* none defined: must be 0 */
	__u32 reserved;
	char name[KESTREL_VM_NAME_LEN];		/* NUL-terminated, may be "" */
};

/* Capabilities for KESTREL_CHECK_CAP; the return value is the answer. */
#define KESTREL_CAP_MAX_VCPUS		1	/* vCPUs per VM */
#define KESTREL_CAP_NR_MEMSLOTS		2	/* memory slots per VM */
#define KESTREL_CAP_BACKEND		3	/* KESTREL_BACKEND_* */
#define KESTREL_CAP_IMMEDIATE_EXIT	4	/* 1: kestrel_run.immediate_exit */
#define KESTREL_CAP_MAX_CPUID		5	/* entries in KESTREL_SET_CPUID */
#define KESTREL_CAP_NR_ASIDS		6	/* hardware address-space tags */
#define KESTREL_CAP_IRQCHIP		7	/* 1: KESTREL_CREATE_IRQCHIP, SIGNAL_MSI */
#define KESTREL_CAP_MSR_POLICY		8	/* 1: KESTREL_SET_MSR_POLICY */
#define KESTREL_CAP_TSC_KHZ		9	/* guest TSC rate in kHz; 0: unknown */

#define KESTREL_BACKEND_SVM	1
#define KESTREL_BACKEND_VMX	2

#define KESTREL_GET_API_VERSION		_IO(KESTREL_IO, 0x00)
#define KESTREL_CREATE_VM		_IOW(KESTREL_IO, 0x01, struct kestrel_create_vm)
#define KESTREL_CHECK_CAP		_IO(KESTREL_IO, 0x02)
#define KESTREL_GET_VCPU_MMAP_SIZE	_IO(KESTREL_IO, 0x03)
#define KESTREL_GET_SUPPORTED_CPUID	_IOWR(KESTREL_IO, 0x04, struct kestrel_cpuid)

/* ---- VM fd ----------------------------------------------------------- */

/*
 * Guest-physical [guest_phys_addr, +memory_size) is backed by the caller's
 * [userspace_addr, +memory_size).  memory_size == 0 deletes the slot.
 * All three must be page aligned.  On a slot in use, the same size and
 * userspace_addr with a new guest_phys_addr and/or flags moves it and/or
 * changes its flags; any other change needs a delete first.
 */
#define KESTREL_MEM_LOG_DIRTY_PAGES	(1U << 0)
#define KESTREL_MEM_READONLY		(1U << 1)	/* writes: MMIO exits */

struct kestrel_memory_region {
	__u32 slot;
	__u32 flags;				/* KESTREL_MEM_* */
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
};

#define KESTREL_SET_MEMORY_REGION	_IOW(KESTREL_IO, 0x10, struct kestrel_memory_region)
#define KESTREL_CREATE_VCPU		_IO(KESTREL_IO, 0x11)	/* arg: vCPU id */

/*
 * Fetch and clear a slot's dirty bitmap: bit n set means the guest wrote
 * page n of the slot since the last call (or since logging was enabled).
 * The buffer holds ceil(pages / 64) little-endian 64-bit words.
 */
struct kestrel_dirty_log {
	__u32 slot;
	__u32 padding;				/* must be 0 */
	__u64 bitmap;				/* userspace pointer */
};

/* Memory statistics of a VM, read with KESTREL_GET_VM_STATS. */
struct kestrel_vm_stats {
	__u64 memory_size;		/* bytes in all slots */
	__u64 mapped_4k;		/* 4 KiB nested mappings present */
	__u64 mapped_2m;		/* 2 MiB nested mappings present */
	__u64 nested_faults;		/* nested page faults taken */
	__u64 invalidations;		/* host invalidations that hit the VM */
	__u64 reserved[11];
};

#define KESTREL_GET_DIRTY_LOG		_IOW(KESTREL_IO, 0x12, struct kestrel_dirty_log)
#define KESTREL_GET_VM_STATS		_IOR(KESTREL_IO, 0x13, struct kestrel_vm_stats)

/*
 * An in-kernel local APIC for every vCPU (xAPIC page at the APIC base and
 * x2APIC MSRs, timer, IPIs).  Only before the first vCPU is created;
 * afterwards HLT waits in the kernel for an interrupt instead of exiting.
 * The IOAPIC, PIC and other interrupt sources stay in userspace: they
 * deliver through KESTREL_SIGNAL_MSI.
 */
#define KESTREL_CREATE_IRQCHIP		_IO(KESTREL_IO, 0x14)

/*
 * Deliver an interrupt message as a PCI MSI or an IOAPIC would write it:
 * address 0xfeeXXXXX (destination APIC ID in bits 19:12, bit 3:
 * lowest priority, bit 2: logical destination), data (vector 16-255 in
 * 7:0, delivery mode in 10:8: fixed or lowest priority; trigger bits are
 * accepted and ignored).  Returns how many local APICs took it: 0 when
 * none matched.  -ENXIO without KESTREL_CREATE_IRQCHIP.
 */
struct kestrel_msi {
	__u64 address;
	__u32 data;
	__u32 flags;		/* none defined: must be 0 */
	__u8  reserved[16];	/* must be 0 */
};

#define KESTREL_SIGNAL_MSI		_IOW(KESTREL_IO, 0x15, struct kestrel_msi)

/*
 * What RDMSR/WRMSR of an MSR Kestrel does not implement does: raise #GP
 * in the guest (the default, what hardware does for a missing MSR), or
 * exit to userspace with KESTREL_EXIT_MSR.
 */
#define KESTREL_MSR_POLICY_GP		0
#define KESTREL_MSR_POLICY_EXIT		1
#define KESTREL_SET_MSR_POLICY		_IO(KESTREL_IO, 0x16)	/* arg: policy */

/* ---- vCPU fd --------------------------------------------------------- */

struct kestrel_regs {
	__u64 rax, rbx, rcx, rdx;
	__u64 rsi, rdi, rsp, rbp;
	__u64 r8, r9, r10, r11;
	__u64 r12, r13, r14, r15;
	__u64 rip, rflags;
};

/* A segment register, its hidden part unpacked.  Flags are 0 or 1. */
struct kestrel_segment {
	__u64 base;
	__u32 limit;		/* byte granular: the expanded limit */
	__u16 selector;
	__u8  type;		/* 4 bits */
	__u8  present, dpl, db, s, l, g, avl;
	__u8  unusable;
	__u8  padding;		/* must be 0 */
};

struct kestrel_dtable {
	__u64 base;
	__u16 limit;
	__u16 padding[3];	/* must be 0 */
};

struct kestrel_sregs {
	struct kestrel_segment cs, ds, es, fs, gs, ss;
	struct kestrel_segment tr, ldt;
	struct kestrel_dtable gdt, idt;
	__u64 cr0, cr2, cr3, cr4, cr8;
	__u64 efer;
	__u64 apic_base;
	__u64 reserved[4];	/* must be 0 */
};

#define KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX	(1 << 0)

struct kestrel_cpuid_entry {
	__u32 function;
	__u32 index;		/* subleaf, when SIGNIFICANT_INDEX */
	__u32 flags;
	__u32 eax, ebx, ecx, edx;
	__u32 padding;		/* must be 0 */
};

struct kestrel_cpuid {
	__u32 nent;		/* in: capacity (GET) or count (SET); out: count */
	__u32 padding;		/* must be 0 */
	struct kestrel_cpuid_entry entries[];
};

#define KESTREL_RUN		_IO(KESTREL_IO, 0x20)
#define KESTREL_GET_REGS	_IOR(KESTREL_IO, 0x21, struct kestrel_regs)
#define KESTREL_SET_REGS	_IOW(KESTREL_IO, 0x22, struct kestrel_regs)
#define KESTREL_GET_SREGS	_IOR(KESTREL_IO, 0x23, struct kestrel_sregs)
#define KESTREL_SET_SREGS	_IOW(KESTREL_IO, 0x24, struct kestrel_sregs)
#define KESTREL_SET_CPUID	_IOW(KESTREL_IO, 0x25, struct kestrel_cpuid)
#define KESTREL_GET_CPUID	_IOWR(KESTREL_IO, 0x26, struct kestrel_cpuid)

/*
 * What a vCPU with an in-kernel APIC is doing between instructions:
 * running, halted (HLT), or waiting for a start-up IPI after an INIT (an
 * application processor before the boot CPU wakes it).  Without an
 * irqchip only RUNNABLE exists.
 */
#define KESTREL_MP_STATE_RUNNABLE	0
#define KESTREL_MP_STATE_HALTED		1
#define KESTREL_MP_STATE_WAIT_SIPI	2

struct kestrel_mp_state {
	__u32 state;
	__u32 reserved;		/* must be 0 */
};

#define KESTREL_GET_MP_STATE	_IOR(KESTREL_IO, 0x27, struct kestrel_mp_state)
#define KESTREL_SET_MP_STATE	_IOW(KESTREL_IO, 0x28, struct kestrel_mp_state)

/* ---- the shared run structure (mmap of the vCPU fd, offset 0) --------- */

#define KESTREL_EXIT_UNKNOWN		0
#define KESTREL_EXIT_IO			1	/* port I/O: see run->io */
#define KESTREL_EXIT_HLT		2	/* guest executed HLT */
#define KESTREL_EXIT_SHUTDOWN		3	/* triple fault; vCPU was reset */
#define KESTREL_EXIT_INTERNAL_ERROR	4	/* see run->internal */
#define KESTREL_EXIT_INTR		5	/* signal or immediate_exit: -EINTR */
#define KESTREL_EXIT_FAIL_ENTRY		6	/* hardware refused the state */
#define KESTREL_EXIT_MEMORY_FAULT	7	/* slot memory not accessible: -EFAULT */
#define KESTREL_EXIT_MMIO		8	/* see run->mmio */
#define KESTREL_EXIT_MSR		9	/* unknown MSR: see run->msr */

#define KESTREL_MEMORY_FAULT_WRITE	(1ULL << 0)
#define KESTREL_MEMORY_FAULT_EXEC	(1ULL << 1)

#define KESTREL_EXIT_IO_IN		0
#define KESTREL_EXIT_IO_OUT		1

/* run->internal.suberror */
/* data: raw exit code, info1, info2, rip, int_info */
#define KESTREL_INTERNAL_UNHANDLED_EXIT	1
#define KESTREL_INTERNAL_DECODE		2	/* data: rip, linear rip, bytes 0-7, bytes 8-15 */
#define KESTREL_INTERNAL_UNMAPPED_GPA	3	/* data: gpa, fault code, rip */
#define KESTREL_INTERNAL_EVENT_DELIVERY	4	/* data: raw exit code, int_info, rip */
#define KESTREL_INTERNAL_STATE_LOST	5	/* data: raw exit code; vCPU reset */

#define KESTREL_INTERNAL_NDATA		16

struct kestrel_run {
	/* in */
	__u8 immediate_exit;	/* RUN returns -EINTR before entering */
	__u8 padding1[7];

	/* out */
	__u32 exit_reason;
	__u32 padding2;
	__u64 exit_count;	/* RUN calls that returned so far */

	union {
		/*
		 * KESTREL_EXIT_IO.  Data lives at (char *)run + data_offset,
		 * count * size bytes.  For IN, userspace fills it in and the
		 * next RUN completes the instruction.
		 */
		struct {
			__u8  direction;
			__u8  size;		/* 1, 2 or 4 */
			__u16 port;
			__u32 count;
			__u64 data_offset;
		} io;
		/*
		 * KESTREL_EXIT_MMIO: a guest load or store to guest-physical
		 * memory no slot backs, or a store to a read-only slot.  For
		 * a load, fill data[0..len); the next RUN completes it.  RIP
		 * already points past the instruction.
		 */
		struct {
			__u64 phys_addr;
			__u8  data[8];
			__u32 len;		/* 1, 2, 4 or 8 */
			__u8  is_write;
			__u8  padding[3];
		} mmio;
		/*
		 * KESTREL_EXIT_MSR, under KESTREL_MSR_POLICY_EXIT.  For a
		 * read, fill data; set error to 1 to raise #GP instead.  The
		 * next RUN completes the instruction.
		 */
		struct {
			__u32 index;		/* ECX */
			__u8  is_write;
			__u8  error;		/* in: 1 raises #GP */
			__u8  padding[2];
			__u64 data;		/* EDX:EAX */
		} msr;
		/* KESTREL_EXIT_FAIL_ENTRY */
		struct {
			__u64 hardware_entry_failure_reason;
			__u32 cpu;
			__u32 padding;
		} fail_entry;
		/*
		 * KESTREL_EXIT_MEMORY_FAULT: the owner's memory behind a slot
		 * does not allow the access (unmapped, mprotect()ed).  RUN
		 * returned -1/EFAULT; fix the mapping and RUN again.
		 */
		struct {
			__u64 flags;		/* KESTREL_MEMORY_FAULT_* */
			__u64 gpa;
			__u64 size;
		} memory_fault;
		/* KESTREL_EXIT_INTERNAL_ERROR */
		struct {
			__u32 suberror;
			__u32 ndata;
			__u64 data[KESTREL_INTERNAL_NDATA];
		} internal;
		char padding[256];
	};

	/* Offset of I/O data, beyond the union; the rest of the page. */
	__u8 data[];
};

#endif /* _UAPI_LINUX_KESTREL_H */
