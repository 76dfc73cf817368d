// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory: which guest-physical ranges are backed by which ranges of
 * the VM owner's memory, and how the host memory manager's changes reach
 * the nested page tables.
 *
 * Guest RAM is the owner's ordinary memory and stays the host's: nothing is
 * pinned.  The arch maps a page into the nested tables on a nested fault
 * (taking only a transient reference), and the MMU notifier registered on
 * the owner's mm removes translations whenever the host unmaps, protects,
 * migrates, swaps out, merges or splits a page.  The notifier and the fault
 * path agree through vm->mmu_seq and vm->mmu_invalidating (see npt.c).
 */
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "kestrel.h"

/* ---- lookup --------------------------------------------------------------- */

/* Caller holds vm->mmu_lock or vm->slots_lock. */
struct kestrel_memslot *kestrel_gpa_to_slot(struct kestrel_vm *vm, u64 gpa)
{
	unsigned int lo = 0, hi = vm->nr_live_slots;

	lockdep_assert(lockdep_is_held(&vm->mmu_lock) ||
		       lockdep_is_held(&vm->slots_lock));

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;
		struct kestrel_memslot *s = &vm->slots[vm->by_gpa[mid]];

		if (gpa < s->gpa)
			hi = mid;
		else if (gpa - s->gpa >= s->size)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

/* Rebuild by_gpa[] from slots[]; caller holds both locks. */
static void kestrel_slots_resort(struct kestrel_vm *vm)
{
	unsigned int i, j, n = 0;

	lockdep_assert_held(&vm->slots_lock);
	lockdep_assert_held(&vm->mmu_lock);
	for (i = 0; i < KESTREL_NR_MEMSLOTS; i++)
		if (vm->slots[i].size)
			vm->by_gpa[n++] = i;
	/* Insertion sort: at most a few hundred slots, changed rarely. */
	for (i = 1; i < n; i++) {
		u16 v = vm->by_gpa[i];

		for (j = i; j > 0 &&
		     vm->slots[vm->by_gpa[j - 1]].gpa > vm->slots[v].gpa; j--)
			vm->by_gpa[j] = vm->by_gpa[j - 1];
		vm->by_gpa[j] = v;
	}
	vm->nr_live_slots = n;
}

u64 kestrel_vm_memory_size(struct kestrel_vm *vm)
{
	u64 total = 0;
	unsigned int i;

	spin_lock(&vm->mmu_lock);
	for (i = 0; i < vm->nr_live_slots; i++)
		total += vm->slots[vm->by_gpa[i]].size;
	spin_unlock(&vm->mmu_lock);
	return total;
}

/*
 * Make every vCPU drop its cached translations before the caller lets the
 * host reuse what they pointed to.  Callable under vm->mmu_lock.
 */
void kestrel_vm_flush_tlbs(struct kestrel_vm *vm)
{
	atomic_inc(&vm->tlb_gen);
	kestrel_vm_kick_all(vm);
}

/* ---- slots from userspace -------------------------------------------------- */

#define KESTREL_MEM_FLAGS	(KESTREL_MEM_LOG_DIRTY_PAGES | KESTREL_MEM_READONLY)

static int kestrel_validate_region(const struct kestrel_memory_region *mr)
{
	u64 end;

	if ((mr->flags & ~KESTREL_MEM_FLAGS) || mr->slot >= KESTREL_NR_MEMSLOTS)
		return -EINVAL;
	if (!PAGE_ALIGNED(mr->guest_phys_addr) ||
	    !PAGE_ALIGNED(mr->memory_size) ||
	    !PAGE_ALIGNED(mr->userspace_addr))
		return -EINVAL;
	if (!mr->memory_size)
		return 0;
	if (mr->memory_size >> PAGE_SHIFT > KESTREL_MEM_MAX_PAGES)
		return -EINVAL;
	if (check_add_overflow(mr->guest_phys_addr, mr->memory_size, &end) ||
	    end > BIT_ULL(KESTREL_GPA_BITS))
		return -EINVAL;
	if (check_add_overflow(mr->userspace_addr, mr->memory_size, &end) ||
	    !access_ok((void __user *)(unsigned long)mr->userspace_addr,
		       mr->memory_size))
		return -EINVAL;
	return 0;
}

static bool kestrel_overlaps(struct kestrel_vm *vm, unsigned int self,
			     u64 gpa, u64 size)
{
	unsigned int i;

	for (i = 0; i < vm->nr_live_slots; i++) {
		struct kestrel_memslot *s = &vm->slots[vm->by_gpa[i]];

		if (vm->by_gpa[i] != self && gpa < s->gpa + s->size &&
		    s->gpa < gpa + size)
			return true;
	}
	return false;
}

/*
 * User-sized (up to 256 MiB, see KESTREL_MEM_MAX_PAGES): may fail, and
 * then it is the caller's ENOMEM, not a warning in the host's log.
 */
static unsigned long *kestrel_alloc_bitmap(u64 size)
{
	return kvzalloc(BITS_TO_LONGS(size >> PAGE_SHIFT) * sizeof(long),
			GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
}

/*
 * A slot change that alters what a nested fault may install, made inside
 * the window the MMU notifier uses, so that a fault that sampled the slot
 * before and installs after sees mmu_seq move and retries.  Translations
 * the change forbids are removed (and flushed) inside the window too:
 * removed before the end, a fault cannot re-install them from what it saw
 * earlier, and the window is never seen open by a fault (it is all under
 * mmu_lock), so the count is only there to keep the one protocol.
 */
static void kestrel_slots_change_begin(struct kestrel_vm *vm)
	__acquires(&vm->mmu_lock)
{
	lockdep_assert_held(&vm->slots_lock);
	spin_lock(&vm->mmu_lock);
	vm->mmu_invalidating++;
}

static void kestrel_slots_change_end(struct kestrel_vm *vm)
	__releases(&vm->mmu_lock)
{
	vm->mmu_seq++;
	vm->mmu_invalidating--;
	spin_unlock(&vm->mmu_lock);
}

/* Remove a range's translations and flush, inside a change's window. */
static void kestrel_slots_zap(struct kestrel_vm *vm, u64 gpa, u64 size)
{
	lockdep_assert_held(&vm->mmu_lock);
	if (kestrel_arch_unmap_range(vm, gpa, size))
		kestrel_vm_flush_tlbs(vm);
}

/*
 * Create, delete, move or re-flag a slot.  Translations of a range that
 * goes away are removed and flushed before the call returns, so userspace
 * may unmap the memory right after; so are writable translations of a
 * slot that becomes read-only or starts logging.  A change that may
 * forbid a write also waits for writes in flight (kestrel_write_guest).
 */
int kestrel_set_memory_region(struct kestrel_vm *vm,
			      const struct kestrel_memory_region *mr)
{
	unsigned long *new_dirty = NULL, *old_dirty = NULL;
	struct kestrel_memslot *slot;
	bool logging = mr->flags & KESTREL_MEM_LOG_DIRTY_PAGES;
	bool forbids_writes;
	int r;

	r = kestrel_validate_region(mr);
	if (r)
		return r;

	mutex_lock(&vm->slots_lock);
	slot = &vm->slots[mr->slot];

	if (!mr->memory_size) {				/* delete */
		if (!slot->size) {
			r = -ENOENT;
			goto out;
		}
		kestrel_slots_change_begin(vm);
		kestrel_slots_zap(vm, slot->gpa, slot->size);
		old_dirty = slot->dirty;
		memset(slot, 0, sizeof(*slot));
		kestrel_slots_resort(vm);
		kestrel_slots_change_end(vm);
		synchronize_srcu(&vm->srcu);
		goto out;
	}

	if (slot->size && (slot->size != mr->memory_size ||
			   slot->hva != mr->userspace_addr)) {
		r = -EEXIST;				/* delete first */
		goto out;
	}
	if (kestrel_overlaps(vm, mr->slot, mr->guest_phys_addr,
			     mr->memory_size)) {
		r = -EEXIST;
		goto out;
	}
	if (logging && !slot->dirty) {
		new_dirty = kestrel_alloc_bitmap(mr->memory_size);
		if (!new_dirty) {
			r = -ENOMEM;
			goto out;
		}
	}

	/*
	 * A move removes the old translations; starting to log or becoming
	 * read-only removes them too, so every page refaults as it must.
	 * Ending either leaves them: what is mapped is only stricter than
	 * now allowed, and refaults when written.  Either way, mmu_seq moves.
	 */
	forbids_writes = slot->size &&
			 (slot->gpa != mr->guest_phys_addr ||
			  (mr->flags & ~slot->flags & KESTREL_MEM_READONLY));
	kestrel_slots_change_begin(vm);
	if (forbids_writes || (slot->size && logging && !slot->dirty))
		kestrel_slots_zap(vm, slot->gpa, slot->size);
	slot->gpa = mr->guest_phys_addr;
	slot->hva = mr->userspace_addr;
	slot->size = mr->memory_size;
	slot->flags = mr->flags;
	if (logging && !slot->dirty) {
		slot->dirty = new_dirty;
		new_dirty = NULL;
	} else if (!logging) {
		old_dirty = slot->dirty;
		slot->dirty = NULL;
	}
	kestrel_slots_resort(vm);
	kestrel_slots_change_end(vm);
	if (forbids_writes)
		synchronize_srcu(&vm->srcu);
out:
	mutex_unlock(&vm->slots_lock);
	kvfree(new_dirty);
	kvfree(old_dirty);
	return r;
}

/*
 * Fetch and clear a slot's dirty bitmap.  For each word: take the bits,
 * write-protect those pages, and flush before copying out.  A guest write
 * that races is either in this round (its page is in the bitmap, and its
 * data reaches userspace after the flush) or faults and is in the next.
 */
int kestrel_get_dirty_log(struct kestrel_vm *vm,
			  const struct kestrel_dirty_log *log)
{
	struct kestrel_memslot *slot;
	unsigned long *snap;
	u64 words, i;
	bool flush = false;
	int r = 0;

	if (log->padding || log->slot >= KESTREL_NR_MEMSLOTS)
		return -EINVAL;

	mutex_lock(&vm->slots_lock);
	slot = &vm->slots[log->slot];
	if (!slot->size) {
		r = -ENOENT;
		goto out;
	}
	if (!slot->dirty) {
		r = -EINVAL;			/* not logging */
		goto out;
	}
	words = DIV_ROUND_UP(slot->size >> PAGE_SHIFT, 64);
	snap = kvcalloc(words, sizeof(u64), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!snap) {
		r = -ENOMEM;
		goto out;
	}

	spin_lock(&vm->mmu_lock);
	for (i = 0; i < BITS_TO_LONGS(slot->size >> PAGE_SHIFT); i++) {
		unsigned long mask = xchg(&slot->dirty[i], 0);

		if (!mask)
			continue;
		snap[i] = mask;
		flush |= kestrel_arch_wrprotect_pages(vm, slot->gpa +
						      i * BITS_PER_LONG * PAGE_SIZE,
						      mask);
	}
	if (flush)
		kestrel_vm_flush_tlbs(vm);
	spin_unlock(&vm->mmu_lock);

	if (copy_to_user(u64_to_user_ptr(log->bitmap), snap,
			 words * sizeof(u64)))
		r = -EFAULT;
	kvfree(snap);
out:
	mutex_unlock(&vm->slots_lock);
	return r;
}

void kestrel_get_vm_stats(struct kestrel_vm *vm, struct kestrel_vm_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->memory_size = kestrel_vm_memory_size(vm);
	spin_lock(&vm->mmu_lock);
	kestrel_arch_mapping_counts(vm, &st->mapped_4k, &st->mapped_2m);
	st->nested_faults = vm->nested_faults;
	st->invalidations = vm->invalidations;
	spin_unlock(&vm->mmu_lock);
}

/*
 * Read guest-physical memory through the owner's mapping.  Runs in the vCPU
 * thread, whose mm is the VM's; the lock is not held across the copy, which
 * may fault and sleep in the host memory manager.
 */
int kestrel_read_guest(struct kestrel_vm *vm, u64 gpa, void *buf, size_t len)
{
	while (len) {
		struct kestrel_memslot *s;
		unsigned long hva;
		size_t chunk;

		spin_lock(&vm->mmu_lock);
		s = kestrel_gpa_to_slot(vm, gpa);
		if (!s) {
			spin_unlock(&vm->mmu_lock);
			return -EFAULT;
		}
		hva = s->hva + (gpa - s->gpa);
		chunk = min_t(u64, len, s->gpa + s->size - gpa);
		spin_unlock(&vm->mmu_lock);

		if (copy_from_user(buf, (void __user *)hva, chunk))
			return -EFAULT;
		buf += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

/*
 * Write guest-physical memory on the guest's behalf (paravirtual clock
 * pages): the same path as kestrel_read_guest(), refusing read-only slots
 * like a guest store would, and logging the pages afterwards so that a
 * racing KESTREL_GET_DIRTY_LOG reports them in this round or the next.
 * The copy runs inside vm->srcu: a slot change that forbids the write
 * (delete, move, READONLY on) returns only once the copy is done, so no
 * write lands in a slot after it became read-only or went away.
 */
static int __kestrel_write_guest(struct kestrel_vm *vm, u64 gpa,
				 const void *buf, size_t len)
{
	while (len) {
		struct kestrel_memslot *s;
		unsigned long hva;
		size_t chunk;
		u64 p;

		spin_lock(&vm->mmu_lock);
		s = kestrel_gpa_to_slot(vm, gpa);
		if (!s || (s->flags & KESTREL_MEM_READONLY)) {
			spin_unlock(&vm->mmu_lock);
			return -EFAULT;
		}
		hva = s->hva + (gpa - s->gpa);
		chunk = min_t(u64, len, s->gpa + s->size - gpa);
		spin_unlock(&vm->mmu_lock);

		if (copy_to_user((void __user *)hva, buf, chunk))
			return -EFAULT;

		spin_lock(&vm->mmu_lock);
		s = kestrel_gpa_to_slot(vm, gpa);
		if (s && s->dirty && s->gpa + s->size >= gpa + chunk)
			for (p = gpa & PAGE_MASK; p < gpa + chunk; p += PAGE_SIZE)
				__set_bit((p - s->gpa) >> PAGE_SHIFT, s->dirty);
		spin_unlock(&vm->mmu_lock);
		buf += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

int kestrel_write_guest(struct kestrel_vm *vm, u64 gpa, const void *buf,
			size_t len)
{
	int idx, r;

	idx = srcu_read_lock(&vm->srcu);
	r = __kestrel_write_guest(vm, gpa, buf, len);
	srcu_read_unlock(&vm->srcu, idx);
	return r;
}

/* ---- the MMU notifier ---------------------------------------------------------- */

static inline struct kestrel_vm *mn_to_vm(struct mmu_notifier *mn)
{
	return container_of(mn, struct kestrel_vm, mmu_notifier);
}

/*
 * Apply fn to the guest-physical parts of every slot that [start, end) of
 * the owner's address space backs.  Caller holds vm->mmu_lock.
 */
static bool kestrel_for_hva_range(struct kestrel_vm *vm, unsigned long start,
				  unsigned long end,
				  bool (*fn)(struct kestrel_vm *, u64, u64, bool),
				  bool arg)
{
	bool ret = false;
	unsigned int i;

	lockdep_assert_held(&vm->mmu_lock);
	for (i = 0; i < vm->nr_live_slots; i++) {
		struct kestrel_memslot *s = &vm->slots[vm->by_gpa[i]];
		unsigned long lo = max(start, s->hva);
		unsigned long hi = min(end, (unsigned long)(s->hva + s->size));

		if (lo >= hi)
			continue;
		lo &= PAGE_MASK;
		hi = PAGE_ALIGN(hi);
		ret |= fn(vm, s->gpa + (lo - s->hva), hi - lo, arg);
	}
	return ret;
}

static bool kestrel_unmap_fn(struct kestrel_vm *vm, u64 gpa, u64 size,
			     bool unused)
{
	return kestrel_arch_unmap_range(vm, gpa, size);
}

static int kestrel_mn_invalidate_start(struct mmu_notifier *mn,
				       const struct mmu_notifier_range *range)
{
	struct kestrel_vm *vm = mn_to_vm(mn);

	/* Spinlock and IPIs only: fine where the caller may not block. */
	spin_lock(&vm->mmu_lock);
	vm->mmu_invalidating++;
	if (kestrel_for_hva_range(vm, range->start, range->end,
				  kestrel_unmap_fn, false)) {
		vm->invalidations++;
		kestrel_vm_flush_tlbs(vm);
	}
	spin_unlock(&vm->mmu_lock);
	return 0;
}

static void kestrel_mn_invalidate_end(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	struct kestrel_vm *vm = mn_to_vm(mn);

	spin_lock(&vm->mmu_lock);
	vm->mmu_seq++;
	vm->mmu_invalidating--;
	spin_unlock(&vm->mmu_lock);
}

static int kestrel_mn_age(struct mmu_notifier *mn, unsigned long start,
			  unsigned long end, bool clear)
{
	struct kestrel_vm *vm = mn_to_vm(mn);
	bool young;

	spin_lock(&vm->mmu_lock);
	young = kestrel_for_hva_range(vm, start, end, kestrel_arch_age_range,
				      clear);
	spin_unlock(&vm->mmu_lock);
	return young;
}

/* Reclaim asks whether the guest used a page: the nested Accessed bits. */
static int kestrel_mn_clear_flush_young(struct mmu_notifier *mn,
					struct mm_struct *mm,
					unsigned long start, unsigned long end)
{
	/* A stale Accessed bit only makes a page look used a while longer. */
	return kestrel_mn_age(mn, start, end, true);
}

static int kestrel_mn_clear_young(struct mmu_notifier *mn,
				  struct mm_struct *mm,
				  unsigned long start, unsigned long end)
{
	return kestrel_mn_age(mn, start, end, true);
}

static int kestrel_mn_test_young(struct mmu_notifier *mn, struct mm_struct *mm,
				 unsigned long address)
{
	return kestrel_mn_age(mn, address, address + 1, false);
}

/* The owner's address space is being torn down: drop every translation. */
static void kestrel_mn_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct kestrel_vm *vm = mn_to_vm(mn);

	spin_lock(&vm->mmu_lock);
	if (kestrel_for_hva_range(vm, 0, ULONG_MAX, kestrel_unmap_fn, false))
		kestrel_vm_flush_tlbs(vm);
	spin_unlock(&vm->mmu_lock);
}

static const struct mmu_notifier_ops kestrel_mmu_notifier_ops = {
	.invalidate_range_start	= kestrel_mn_invalidate_start,
	.invalidate_range_end	= kestrel_mn_invalidate_end,
	.clear_flush_young	= kestrel_mn_clear_flush_young,
	.clear_young		= kestrel_mn_clear_young,
	.test_young		= kestrel_mn_test_young,
	.release		= kestrel_mn_release,
};

/* ---- lifetime -------------------------------------------------------------------- */

/* After kestrel_arch_vm_init(): notifications start at once. */
int kestrel_memslots_init(struct kestrel_vm *vm)
{
	vm->slots = kvcalloc(KESTREL_NR_MEMSLOTS, sizeof(*vm->slots),
			     GFP_KERNEL_ACCOUNT);
	vm->by_gpa = kvcalloc(KESTREL_NR_MEMSLOTS, sizeof(*vm->by_gpa),
			      GFP_KERNEL_ACCOUNT);
	if (!vm->slots || !vm->by_gpa)
		goto err;
	vm->mmu_notifier.ops = &kestrel_mmu_notifier_ops;
	if (mmu_notifier_register(&vm->mmu_notifier, vm->mm))
		goto err;
	return 0;
err:
	kvfree(vm->slots);
	kvfree(vm->by_gpa);
	vm->slots = NULL;
	vm->by_gpa = NULL;
	return -ENOMEM;
}

/* Before kestrel_arch_vm_destroy(): no notifier may run after this. */
void kestrel_memslots_destroy(struct kestrel_vm *vm)
{
	int i;

	if (!vm->slots)
		return;
	mmu_notifier_unregister(&vm->mmu_notifier, vm->mm);
	for (i = 0; i < KESTREL_NR_MEMSLOTS; i++)
		kvfree(vm->slots[i].dirty);
	kvfree(vm->slots);
	kvfree(vm->by_gpa);
	vm->slots = NULL;
}
