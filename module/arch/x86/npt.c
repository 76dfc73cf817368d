// SPDX-License-Identifier: GPL-2.0
/*
 * Nested page tables (guest-physical -> host-physical), built on demand
 * from the owner's current mapping and torn down by the MMU notifier.
 *
 * A nested fault looks up the slot, asks the host memory manager for the
 * page (get_user_pages_fast: a transient reference, no pin), and installs a
 * leaf under vm->mmu_lock unless an invalidation or a slot change ran
 * meanwhile, in which case the guest simply faults again (the rule is next
 * to struct kestrel_memslot).  The reference is dropped right
 * after: the entry stays valid only because the notifier removes it before
 * the host frees or moves the page.
 *
 * Where the host maps a 2 MiB-aligned guest range with one huge page (THP
 * or hugetlbfs), the guest gets one 2 MiB entry.  Slots that log dirty
 * pages are mapped at 4 KiB, read-only until written.
 *
 * Entries are built from the backend's format bits (NPT and EPT differ),
 * copied here once at load; an entry is present iff nonzero, holds its
 * address in bits 51:12, and bit 7 marks a large leaf, in both formats.
 */
#include <linux/highmem.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/slab.h>

#include "x86.h"

#define NPT_ADDR_MASK	GENMASK_ULL(51, 12)
#define NPT_LARGE	BIT_ULL(7)
#define NPT_ENTRIES	512

static struct kestrel_npt_format npt_fmt __ro_after_init;

/* Module load, after the backend's hardware_setup. */
void kestrel_npt_setup(void)
{
	npt_fmt = *kestrel_backend->npt_format;
}

static inline u64 npt_table_entry(phys_addr_t table)
{
	return table | npt_fmt.table;
}

static inline u64 npt_leaf_entry(phys_addr_t page, bool writable, bool huge)
{
	return page | npt_fmt.leaf | (writable ? npt_fmt.write : 0) |
	       (huge ? npt_fmt.huge : 0);
}

static inline bool npt_writable(u64 entry)
{
	return entry & npt_fmt.writable;
}

/* Used since last made old; always, where the format has no such bit. */
static inline bool npt_young(u64 entry)
{
	return !npt_fmt.accessed || (entry & npt_fmt.accessed);
}

static inline int npt_index(u64 gpa, int level)
{
	return (gpa >> (12 + 9 * (level - 1))) & (NPT_ENTRIES - 1);
}

static inline u64 npt_level_size(int level)
{
	return 1ULL << (12 + 9 * (level - 1));
}

static inline u64 *npt_child(u64 entry)
{
	return __va(entry & NPT_ADDR_MASK);
}

static inline bool npt_is_leaf(u64 entry, int level)
{
	return level == 1 || (entry & NPT_LARGE);
}

int kestrel_npt_init(struct kestrel_vm *vm)
{
	vm->arch.npt_levels = pgtable_l5_enabled() ? 5 : 4;
	vm->arch.npt_root = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vm->arch.npt_root)
		return -ENOMEM;
	vm->arch.npt_pages = 1;
	return 0;
}

phys_addr_t kestrel_npt_root_pa(struct kestrel_vm *vm)
{
	return __pa(vm->arch.npt_root);
}

void kestrel_arch_mapping_counts(struct kestrel_vm *vm, u64 *n4k, u64 *n2m)
{
	lockdep_assert_held(&vm->mmu_lock);
	*n4k = vm->arch.mapped_4k;
	*n2m = vm->arch.mapped_2m;
}

u64 kestrel_arch_vm_mapped_bytes(struct kestrel_vm *vm)
{
	return READ_ONCE(vm->arch.mapped_4k) * SZ_4K +
	       READ_ONCE(vm->arch.mapped_2m) * SZ_2M;
}

/* ---- table pages: allocated outside vm->mmu_lock ------------------------ */

static int npt_cache_topup(struct kestrel_npt_cache *c)
{
	while (c->nr < KESTREL_NPT_CACHE) {
		void *p = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);

		if (!p)
			return -ENOMEM;
		c->pages[c->nr++] = p;
	}
	return 0;
}

void kestrel_npt_cache_free(struct kestrel_npt_cache *c)
{
	while (c->nr)
		free_page((unsigned long)c->pages[--c->nr]);
}

/*
 * The entry for gpa at `level`, creating tables above it from the cache.
 * Stops early (returning the large leaf above) if one is in the way.
 */
static u64 *npt_walk(struct kestrel_vm *vm, u64 gpa, int level,
		     struct kestrel_npt_cache *cache, int *found)
{
	u64 *table = vm->arch.npt_root;
	int l;

	lockdep_assert_held(&vm->mmu_lock);
	for (l = vm->arch.npt_levels; l > level; l--) {
		u64 *e = &table[npt_index(gpa, l)];

		if (*e && (*e & NPT_LARGE)) {
			*found = l;
			return e;
		}
		if (!*e) {
			void *child;

			if (!cache || !cache->nr)
				return NULL;
			child = cache->pages[--cache->nr];
			vm->arch.npt_pages++;
			WRITE_ONCE(*e, npt_table_entry(__pa(child)));
		}
		table = npt_child(*e);
	}
	*found = level;
	return &table[npt_index(gpa, level)];
}

static void npt_account(struct kestrel_vm *vm, int level, int delta)
{
	if (level == 1)
		vm->arch.mapped_4k += delta;
	else
		vm->arch.mapped_2m += delta;
}

/* ---- the host side: what backs an address, and at what size -------------- */

/*
 * The size of the host mapping of hva: 2 for a PMD (or larger) leaf, else 1.
 * Interrupts are off so the tables cannot be freed under the walk (the
 * same protection GUP-fast relies on); the caller's mmu_seq check tells
 * whether what we saw was still current when the entry went in.
 */
static int host_mapping_level(struct mm_struct *mm, unsigned long hva)
{
	unsigned long flags;
	int level = 1;
	pgd_t pgd;
	p4d_t p4d;
	pud_t pud;
	pmd_t pmd;

	local_irq_save(flags);
	pgd = READ_ONCE(*pgd_offset(mm, hva));
	if (pgd_none(pgd))
		goto out;
	p4d = READ_ONCE(*p4d_offset(&pgd, hva));
	if (p4d_none(p4d) || !p4d_present(p4d))
		goto out;
	pud = READ_ONCE(*pud_offset(&p4d, hva));
	if (pud_none(pud) || !pud_present(pud))
		goto out;
	if (pud_leaf(pud)) {
		level = 2;		/* 1 GiB on the host: 2 MiB is enough */
		goto out;
	}
	pmd = READ_ONCE(*pmd_offset(&pud, hva));
	if (pmd_present(pmd) && pmd_leaf(pmd))
		level = 2;
out:
	local_irq_restore(flags);
	return level;
}

/*
 * Get the page behind hva for an access.  A read still tries for a
 * writable page first, so that the common read-then-write pattern does
 * not fault twice; a page that is not writable without a fault (the zero
 * page, a KSM page, copy-on-write) is mapped read-only until written.
 */
static int npt_get_page(unsigned long hva, bool write, bool may_write,
			struct page **page, bool *writable)
{
	int r;

	if (!may_write) {
		*writable = false;
		r = get_user_pages_fast(hva, 1, 0, page);
		return r == 1 ? 0 : r < 0 ? r : -EFAULT;
	}
	*writable = true;
	if (get_user_page_fast_only(hva, FOLL_WRITE, page))
		return 0;
	if (write) {
		r = get_user_pages_fast(hva, 1, FOLL_WRITE, page);
	} else {
		r = get_user_pages_fast(hva, 1, FOLL_WRITE, page);
		if (r != 1) {
			*writable = false;
			r = get_user_pages_fast(hva, 1, 0, page);
		}
	}
	if (r == 1)
		return 0;
	return r < 0 ? r : -EFAULT;
}

/* ---- faults ------------------------------------------------------------- */

/* x86 #PF-style error code bits in the nested fault's exit info. */
#define NPF_PRESENT	BIT_ULL(0)
#define NPF_WRITE	BIT_ULL(1)

/*
 * A 2 MiB entry fits when the slot covers the whole aligned range, guest
 * and host addresses agree modulo 2 MiB, and nothing finer is mapped
 * there already.  Caller holds vm->mmu_lock.
 */
static bool npt_can_map_large(struct kestrel_vm *vm, struct kestrel_memslot *s,
			      u64 gpa, unsigned long hva)
{
	u64 base = gpa & ~(SZ_2M - 1);

	lockdep_assert_held(&vm->mmu_lock);
	if (s->dirty || base < s->gpa || base + SZ_2M > s->gpa + s->size)
		return false;
	if ((gpa ^ hva) & (SZ_2M - 1))
		return false;
	return host_mapping_level(vm->mm, hva) >= 2;
}

/*
 * A table of 4 KiB entries where a 2 MiB entry should go: only free it if
 * it is empty (every entry invalidated, as when the host collapsed the
 * range into a huge page), after making sure no vCPU still caches it.
 */
static bool npt_reclaim_empty_table(struct kestrel_vm *vm, u64 *pde)
{
	u64 *table = npt_child(*pde);
	int i;

	lockdep_assert_held(&vm->mmu_lock);
	for (i = 0; i < NPT_ENTRIES; i++)
		if (table[i])
			return false;
	WRITE_ONCE(*pde, 0);
	kestrel_vm_flush_tlbs(vm);
	free_page((unsigned long)table);
	vm->arch.npt_pages--;
	return true;
}

/*
 * What the fault saw of its slot before it dropped vm->mmu_lock.  Caller
 * holds vm->mmu_lock.  The fault installs only if mmu_seq has not moved
 * (every slot change moves it) and the slot is still the same, with the
 * same address, flags and logging state: a stale sample must never
 * install a writable entry in a read-only slot, an unlogged writable
 * entry in a logged one, or write a bitmap that is gone.
 */
static bool npt_slot_unchanged(struct kestrel_vm *vm, unsigned long seq,
			       u64 gpa, const struct kestrel_memslot *seen,
			       unsigned long hva, u32 flags, bool logging)
{
	struct kestrel_memslot *slot;

	lockdep_assert_held(&vm->mmu_lock);
	if (vm->mmu_invalidating || vm->mmu_seq != seq)
		return false;
	slot = kestrel_gpa_to_slot(vm, gpa);
	return slot == seen &&
	       slot->hva + (gpa & PAGE_MASK) - slot->gpa == hva &&
	       slot->flags == flags && !!slot->dirty == logging;
}

/*
 * Returns 0 (mapped, or raced with an invalidation or a slot change: the
 * guest faults again), -ENOENT (no slot: not RAM), -EROFS (a write to a read-only
 * slot), -EFAULT (the owner's memory refuses the access), or another error.
 */
int kestrel_npt_fault(struct kestrel_vcpu *vcpu, u64 gpa, u64 error)
{
	struct kestrel_vm *vm = vcpu->vm;
	struct kestrel_npt_cache *cache = &vcpu->arch.npt_cache;
	bool write = error & NPF_WRITE, writable, logging, readonly;
	struct kestrel_memslot *slot, *seen;
	unsigned long hva, seq;
	struct page *page;
	phys_addr_t pa;
	int level, found, r;
	u64 *e, entry;
	u32 flags;

	r = npt_cache_topup(cache);
	if (r)
		return r;

	/* The slot and mmu_seq together: every slot change moves mmu_seq. */
	spin_lock(&vm->mmu_lock);
	seq = vm->mmu_seq;
	seen = kestrel_gpa_to_slot(vm, gpa);
	hva = seen ? seen->hva + (gpa & PAGE_MASK) - seen->gpa : 0;
	flags = seen ? seen->flags : 0;
	logging = seen && seen->dirty;
	spin_unlock(&vm->mmu_lock);
	smp_rmb();		/* seq before the host page tables */
	readonly = flags & KESTREL_MEM_READONLY;
	if (!seen)
		return -ENOENT;
	if (write && readonly)
		return -EROFS;

	r = npt_get_page(hva, write, !readonly, &page, &writable);
	if (r)
		return r;
	/* A logged page is writable only once it is marked dirty. */
	if (logging && !write)
		writable = false;

	spin_lock(&vm->mmu_lock);
	vm->nested_faults++;
	if (!npt_slot_unchanged(vm, seq, gpa, seen, hva, flags, logging))
		goto out;			/* host or slot changed: retry */
	slot = seen;

	level = 1;
	pa = page_to_phys(page);
	if (npt_can_map_large(vm, slot, gpa, hva)) {
		/* The huge page's base: this subpage minus its offset. */
		u64 off = (gpa & (SZ_2M - 1)) & PAGE_MASK;

		if (!((pa - off) & (SZ_2M - 1))) {
			level = 2;
			pa -= off;
		}
	}

	e = npt_walk(vm, gpa, level, cache, &found);
	if (!e) {
		r = -ENOMEM;
		goto out;
	}
	if (found != level) {
		/* A 2 MiB entry is there: it maps this page already. */
		if (!write || npt_writable(*e))
			goto out;
		level = found;		/* upgrade it in place below */
		pa = *e & NPT_ADDR_MASK & ~(SZ_2M - 1);
	}
	if (level == 2 && *e && !(*e & NPT_LARGE)) {
		if (!npt_reclaim_empty_table(vm, e)) {
			/* Still 4 KiB entries under it: map 4 KiB. */
			level = 1;
			pa = page_to_phys(page);
			e = npt_walk(vm, gpa, 1, cache, &found);
			if (!e || found != 1) {
				r = e ? 0 : -ENOMEM;
				goto out;
			}
		}
	}

	entry = npt_leaf_entry(pa, writable, level == 2);
	if (*e == entry)
		goto out;			/* another vCPU was first */
	if (!*e)
		npt_account(vm, level, 1);
	/* Present -> more permissive needs no flush: stale is only stricter. */
	WRITE_ONCE(*e, entry);
	if (write && logging)
		__set_bit((gpa - slot->gpa) >> PAGE_SHIFT, slot->dirty);
out:
	spin_unlock(&vm->mmu_lock);
	put_page(page);
	return r;
}

/* ---- range operations, under vm->mmu_lock ---------------------------------- */

/*
 * Visit every present leaf overlapping [start, end).  fn returns the new
 * value of the entry; a leaf only partly in the range is visited whole
 * (removing a whole 2 MiB entry is always safe: it refaults).
 */
static bool npt_visit(struct kestrel_vm *vm, u64 *table, int level, u64 base,
		      u64 start, u64 end,
		      u64 (*fn)(struct kestrel_vm *, u64, int, void *),
		      void *arg)
{
	u64 size = npt_level_size(level);
	bool changed = false;
	int i;

	for (i = npt_index(max(start, base), level); i < NPT_ENTRIES; i++) {
		u64 addr = base + i * size, old, new;

		if (addr >= end)
			break;
		old = table[i];
		if (!old)
			continue;
		if (!npt_is_leaf(old, level)) {
			changed |= npt_visit(vm, npt_child(old), level - 1, addr,
					     start, end, fn, arg);
			continue;
		}
		new = fn(vm, old, level, arg);
		if (new != old) {
			WRITE_ONCE(table[i], new);
			if (!new)
				npt_account(vm, level, -1);
			changed = true;
		}
	}
	return changed;
}

static bool npt_range(struct kestrel_vm *vm, u64 gpa, u64 size,
		      u64 (*fn)(struct kestrel_vm *, u64, int, void *),
		      void *arg)
{
	int top = vm->arch.npt_levels;

	return npt_visit(vm, vm->arch.npt_root, top, 0, gpa, gpa + size,
			 fn, arg);
}

static u64 npt_zap_fn(struct kestrel_vm *vm, u64 entry, int level, void *arg)
{
	return 0;
}

bool kestrel_arch_unmap_range(struct kestrel_vm *vm, u64 gpa, u64 size)
{
	lockdep_assert_held(&vm->mmu_lock);
	return npt_range(vm, gpa, size, npt_zap_fn, NULL);
}

static u64 npt_wrprotect_fn(struct kestrel_vm *vm, u64 entry, int level,
			    void *arg)
{
	if (!npt_writable(entry))
		return entry;
	if (level > 1)
		return 0;		/* logged slots map 4 KiB: drop it */
	return npt_leaf_entry(entry & NPT_ADDR_MASK, false, false);
}

/* Write-protect the pages of gpa + n * 4 KiB for each bit n of mask. */
bool kestrel_arch_wrprotect_pages(struct kestrel_vm *vm, u64 gpa, u64 mask)
{
	bool changed = false;

	lockdep_assert_held(&vm->mmu_lock);
	while (mask) {
		int n = __ffs64(mask);

		changed |= npt_range(vm, gpa + (u64)n * PAGE_SIZE, PAGE_SIZE,
				     npt_wrprotect_fn, NULL);
		mask &= mask - 1;
	}
	return changed;
}

struct npt_age_arg {
	bool clear;
	bool young;
};

static u64 npt_age_fn(struct kestrel_vm *vm, u64 entry, int level, void *p)
{
	struct npt_age_arg *a = p;

	if (npt_young(entry)) {
		a->young = true;
		if (a->clear)
			return entry & ~npt_fmt.accessed;
	}
	return entry;
}

/*
 * Report (and optionally clear) the Accessed bits of a range, so that the
 * host's reclaim sees pages the guest uses.  Clearing needs no flush: a
 * stale Accessed bit only makes a page look used a little longer.
 */
bool kestrel_arch_age_range(struct kestrel_vm *vm, u64 gpa, u64 size,
			    bool clear)
{
	struct npt_age_arg a = { .clear = clear };

	lockdep_assert_held(&vm->mmu_lock);
	npt_range(vm, gpa, size, npt_age_fn, &a);
	return a.young;
}

static void npt_free_level(u64 *table, int level)
{
	int i;

	for (i = 0; level > 1 && i < NPT_ENTRIES; i++)
		if (table[i] && !(table[i] & NPT_LARGE))
			npt_free_level(npt_child(table[i]), level - 1);
	free_page((unsigned long)table);
}

/* The VM is dead: no vCPU can run, its ASIDs are retired, nothing pinned. */
void kestrel_npt_destroy(struct kestrel_vm *vm)
{
	if (vm->arch.npt_root)
		npt_free_level(vm->arch.npt_root, vm->arch.npt_levels);
	vm->arch.npt_root = NULL;
}
