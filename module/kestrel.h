/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kestrel core: VM and vCPU objects, their lifetimes and locks.
 *
 * The core is arch-independent.  It owns file descriptors, reference counts,
 * copies from userspace, memory slots and the run loop's host-side duties
 * (signals, rescheduling).  Everything about guest CPU state is behind the
 * kestrel_arch_*() interface, implemented in module/arch/<arch>/, which in
 * turn drives one hardware backend chosen at load (see arch/x86/x86.h).
 *
 * Lock order (outer first):
 *   kestrel_lock (global) -> vm->lock -> vcpu->mutex -> vm->slots_lock
 *   -> vm->mmu_lock (a spinlock: MMU notifiers take it, also where they
 *   may not sleep)
 */
#ifndef KESTREL_H
#define KESTREL_H

#include <linux/types.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mmu_notifier.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/kestrel.h>

#include "arch.h"

#define KESTREL_MAX_VCPUS	64
#define KESTREL_NR_MEMSLOTS	512
#define KESTREL_GPA_BITS	48	/* guest-physical space we map */

#define kestrel_err(fmt, ...)	pr_err("kestrel: " fmt, ##__VA_ARGS__)
#define kestrel_warn(fmt, ...)	pr_warn("kestrel: " fmt, ##__VA_ARGS__)
#define kestrel_info(fmt, ...)	pr_info("kestrel: " fmt, ##__VA_ARGS__)

/*
 * A guest-physical range backed by the VM owner's memory.
 *
 * Locking, per field: (s) vm->slots_lock, (m) vm->mmu_lock.  "s+m":
 * written only with both held, so either is enough to read it.
 *
 * The slot-change rule.  A nested fault samples the slot under mmu_lock,
 * drops the lock to get the page from the host memory manager (which may
 * sleep for as long as the owner likes: userfaultfd), and installs under
 * mmu_lock again.  So every change that alters what a fault may install
 * -- delete, move, READONLY on or off, logging on or off -- is made the
 * way the MMU notifier makes its changes: under mmu_lock, inside
 * mmu_invalidating++ ... mmu_seq++, mmu_invalidating-- (see
 * kestrel_slots_change_begin/end() in memslot.c), with the translations
 * the change forbids removed and flushed inside that window, before
 * mmu_lock is dropped.  And the fault path installs only if mmu_seq is
 * what it sampled together with the slot, no invalidation is in
 * progress, and the slot it finds is the same slot with the same hva,
 * flags and logging state; otherwise the guest simply faults again.
 * Copies made on the guest's behalf (kestrel_write_guest) are SRCU
 * readers of vm->srcu: a change that may forbid a write waits for them.
 * Only the dirty bits change outside that rule: set under mmu_lock by
 * the fault path and kestrel_write_guest, taken under mmu_lock by
 * KESTREL_GET_DIRTY_LOG.
 */
struct kestrel_memslot {
	u64 gpa;		/* s+m: page aligned */
	u64 size;		/* s+m: bytes, page aligned; 0: slot unused */
	unsigned long hva;	/* s+m: userspace address of gpa */
	u32 flags;		/* s+m: KESTREL_MEM_* */
	unsigned long *dirty;	/* s+m: a bit per page, when logging; bits: m */
};

/*
 * A slot's pages, at most: as KVM's KVM_MEM_MAX_NR_PAGES, so that a dirty
 * bitmap (a bit per page) stays far below INT_MAX bytes and bit numbers
 * fit an int.
 */
#define KESTREL_MEM_MAX_PAGES	((1UL << 31) - 1)

struct kestrel_vm {
	struct kref		ref;		/* VM fd and each vCPU hold one */
	u32			id;		/* unique while the VM lives */
	struct mm_struct	*mm;		/* owner's mm, mmgrab()ed */
	pid_t			owner_pid;	/* tgid of the creator */
	char			name[KESTREL_VM_NAME_LEN];
	u64			created_ns;	/* ktime_get_real_ns() */
	struct list_head	node;		/* on kestrel_vms: kestrel_vms_lock */
	u64			list_seq;	/* order on it (netlink.c): same */

	/*
	 * vm->lock serialises vCPU creation.  vcpus[] entries are published
	 * once (smp_store_release) and freed only with the VM, so readers
	 * may use smp_load_acquire() without the lock.  A vCPU is published
	 * before its fd exists, so no thread can run a vCPU that
	 * kestrel_vm_kick_all() does not see.  nr_vcpus: written under
	 * vm->lock (WRITE_ONCE), read under it or with READ_ONCE.
	 * creating_vcpus: vCPUs being built, under vm->lock; while nonzero
	 * the VM's configuration that vCPU construction reads (the irqchip)
	 * may not change.
	 */
	struct mutex		lock;
	struct kestrel_vcpu	*vcpus[KESTREL_MAX_VCPUS];
	unsigned int		nr_vcpus;
	unsigned int		creating_vcpus;

	/*
	 * Memory.  slots_lock serialises slot changes (which may sleep);
	 * mmu_lock guards what the fault path and the MMU notifier share:
	 * slots[] contents, by_gpa[], the nested page tables in arch, and
	 * the invalidation state below.
	 */
	struct mutex		slots_lock;
	spinlock_t		mmu_lock;	/* nests inside slots_lock */
	struct kestrel_memslot	*slots;		/* KESTREL_NR_MEMSLOTS */
	u16			*by_gpa;	/* live slots, sorted by gpa */
	unsigned int		nr_live_slots;
	struct mmu_notifier	mmu_notifier;
	unsigned long		mmu_seq;	/* bumped when one ends */
	long			mmu_invalidating; /* in progress now */
	struct srcu_struct	srcu;		/* kestrel_write_guest's copies */
	u64			nested_faults;
	u64			invalidations;

	/* Bumped when translations are removed; vCPUs compare on entry. */
	atomic_t		tlb_gen;

	struct kestrel_arch_vm	arch;
};

/*
 * Counters of one vCPU.  Only the vCPU thread writes them (WRITE_ONCE); the
 * control plane reads them locklessly and sums over vCPUs, so the run loop
 * pays an increment and nothing else.
 */
struct kestrel_vcpu_stats {
	u64	exits[KESTREL_ARCH_NR_EXITS];	/* by kestrel_arch_exit_names[] */
	u64	injected;			/* events injected into the guest */
	u64	guest_ns;			/* time spent in guest mode */
};

/* vcpu->state, for operators: what the vCPU thread is doing. */
enum {
	KESTREL_VCPU_USERSPACE,		/* not in KESTREL_RUN */
	KESTREL_VCPU_RUNNING,		/* in KESTREL_RUN */
	KESTREL_VCPU_HALTED,		/* in KESTREL_RUN, waiting for an event */
};

/* vcpu->mode: where the vCPU thread is, for remote TLB-flush kicks. */
enum {
	KESTREL_OUTSIDE_GUEST,
	KESTREL_IN_GUEST,
};

struct kestrel_vcpu {
	struct kestrel_vm	*vm;		/* holds a reference */
	unsigned int		id;
	struct kestrel_run	*run;		/* shared page, mmap()ed */

	/* vcpu->mutex serialises every ioctl on this vCPU. */
	struct mutex		mutex;

	/*
	 * A halted vCPU thread sleeps here; interrupt sources (timers, MSIs,
	 * IPIs) wake it through kestrel_vcpu_kick() from any context.
	 */
	wait_queue_head_t	wq;

	/* Written by the vCPU thread only; read locklessly by kickers. */
	int			mode;
	int			cpu;		/* host CPU last run on, or -1 */
	int			state;		/* KESTREL_VCPU_* */
	struct kestrel_vcpu_stats stats;

	/* Arch state: touched only under vcpu->mutex. */
	struct kestrel_arch_vcpu arch;
};

/*
 * Every live VM, for the control plane.  kestrel_vms_lock guards the list;
 * a VM is on it from creation until it is freed.  It nests outside
 * vm->mmu_lock (netlink.c reads slot sizes under it) and outside netlink.c's
 * event lock (VM events are sent under it, in list order).
 */
extern struct list_head kestrel_vms;
extern struct mutex kestrel_vms_lock;

#define kestrel_stat_inc(vcpu, field)					\
	do {								\
		__auto_type __stat = &(vcpu)->stats.field;		\
									\
		WRITE_ONCE(*__stat, *__stat + 1);			\
	} while (0)

/* main.c */
int kestrel_virt_get(void);
void kestrel_virt_put(void);

/* vm.c */
int kestrel_create_vm(struct kestrel_create_vm __user *uarg);
void kestrel_vm_put(struct kestrel_vm *vm);
bool kestrel_vm_owned_by_current(struct kestrel_vm *vm);
void kestrel_vm_kick_all(struct kestrel_vm *vm);

/* vcpu.c */
int kestrel_create_vcpu(struct kestrel_vm *vm, unsigned long id);
void kestrel_vcpus_destroy(struct kestrel_vm *vm);
void kestrel_vcpu_kick(struct kestrel_vcpu *vcpu);

/* memslot.c */
int kestrel_memslots_init(struct kestrel_vm *vm);
void kestrel_memslots_destroy(struct kestrel_vm *vm);
int kestrel_set_memory_region(struct kestrel_vm *vm,
			      const struct kestrel_memory_region *mr);
int kestrel_get_dirty_log(struct kestrel_vm *vm,
			  const struct kestrel_dirty_log *log);
void kestrel_get_vm_stats(struct kestrel_vm *vm, struct kestrel_vm_stats *st);
u64 kestrel_vm_memory_size(struct kestrel_vm *vm);
struct kestrel_memslot *kestrel_gpa_to_slot(struct kestrel_vm *vm, u64 gpa);
int kestrel_read_guest(struct kestrel_vm *vm, u64 gpa, void *buf, size_t len);
int kestrel_write_guest(struct kestrel_vm *vm, u64 gpa, const void *buf,
			size_t len);
void kestrel_vm_flush_tlbs(struct kestrel_vm *vm);

/* netlink.c: the control plane; events are sent from process context. */
int kestrel_nl_init(void);
void kestrel_nl_exit(void);
void kestrel_nl_vm_created(struct kestrel_vm *vm);	/* kestrel_vms_lock held */
void kestrel_nl_vm_destroyed(struct kestrel_vm *vm);	/* kestrel_vms_lock held */
void kestrel_nl_vcpu_shutdown(struct kestrel_vcpu *vcpu);
void kestrel_nl_vcpu_internal_error(struct kestrel_vcpu *vcpu, u32 suberror);

/* Arch interface: implemented once per arch in module/arch/<arch>/. */
int kestrel_arch_init(void);
void kestrel_arch_exit(void);
int kestrel_arch_cpu_enable(void);		/* this CPU, irqs off */
void kestrel_arch_cpu_disable(void);
long kestrel_arch_check_cap(unsigned long cap);
long kestrel_arch_dev_ioctl(unsigned int ioctl, unsigned long arg);
int kestrel_arch_vm_init(struct kestrel_vm *vm);
void kestrel_arch_vm_destroy(struct kestrel_vm *vm);
long kestrel_arch_vm_ioctl(struct kestrel_vm *vm, unsigned int ioctl,
			   unsigned long arg);
/*
 * Nested-table operations on guest-physical ranges, under vm->mmu_lock.
 * Each returns true when translations changed and the caller must flush
 * (kestrel_vm_flush_tlbs) before the host may reuse the pages.
 */
bool kestrel_arch_unmap_range(struct kestrel_vm *vm, u64 gpa, u64 size);
bool kestrel_arch_wrprotect_pages(struct kestrel_vm *vm, u64 gpa, u64 mask);
bool kestrel_arch_age_range(struct kestrel_vm *vm, u64 gpa, u64 size,
			    bool clear);
void kestrel_arch_mapping_counts(struct kestrel_vm *vm, u64 *n4k, u64 *n2m);
int kestrel_arch_vcpu_init(struct kestrel_vcpu *vcpu);
/* Under vm->lock: does the new vCPU still match the VM's setup? */
bool kestrel_arch_vcpu_fits_vm(struct kestrel_vcpu *vcpu);
void kestrel_arch_vcpu_destroy(struct kestrel_vcpu *vcpu);
long kestrel_arch_vcpu_ioctl(struct kestrel_vcpu *vcpu, unsigned int ioctl,
			     unsigned long arg);
void kestrel_arch_vcpu_complete_userspace_exit(struct kestrel_vcpu *vcpu);
/*
 * RUN: run_begin before the first entry, run_end after the last exit
 * (what the arch keeps loaded across entries: x86, the guest's FPU);
 * between them, run_once enters the guest once: 0: go again, 1: exit to
 * userspace, <0: error.
 */
void kestrel_arch_vcpu_run_begin(struct kestrel_vcpu *vcpu);
void kestrel_arch_vcpu_run_end(struct kestrel_vcpu *vcpu);
int kestrel_arch_vcpu_run_once(struct kestrel_vcpu *vcpu);
/*
 * Halt: runnable says whether the vCPU may enter the guest now (false:
 * halted with nothing to wake it); wakeup_pending, safe from any context,
 * whether an event arrived that may end the halt.
 */
bool kestrel_arch_vcpu_runnable(struct kestrel_vcpu *vcpu);
bool kestrel_arch_vcpu_wakeup_pending(struct kestrel_vcpu *vcpu);
/* Names of the exit counters, KESTREL_ARCH_NR_EXITS of them. */
extern const char *const kestrel_arch_exit_names[];
/* Guest memory currently mapped in the nested page tables. */
u64 kestrel_arch_vm_mapped_bytes(struct kestrel_vm *vm);
/* The hardware backend in use, for operators ("svm", "vmx"). */
const char *kestrel_arch_backend_name(void);

#endif /* KESTREL_H */
