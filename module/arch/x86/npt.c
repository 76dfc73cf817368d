// SPDX-License-Identifier: GPL-2.0
/*
 * Nested page tables (guest-physical -> host-physical), built on demand.
 *
 * A guest page is mapped on its first nested page fault: the slot gives the
 * owner's address, pin_user_pages_fast() gives the page, and a leaf entry
 * is installed.  The page stays pinned while it is mapped and is released
 * when its slot goes or the VM dies.  (MMU-notifier-driven invalidation,
 * which lets the host reclaim mapped pages, replaces this pinning later.)
 *
 * Entries are built by the backend (NPT and EPT formats differ); an entry
 * is present iff nonzero, and holds its address in bits 51:12 in both.
 * Everything here runs under vm->mmu_lock.
 */
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/io.h>
#include <linux/slab.h>

#include "x86.h"

#define NPT_ADDR_MASK	GENMASK_ULL(51, 12)
#define NPT_ENTRIES	512

static inline int npt_index(u64 gpa, int level)
{
	return (gpa >> (12 + 9 * (level - 1))) & (NPT_ENTRIES - 1);
}

static inline u64 *npt_child(u64 entry)
{
	return __va(entry & NPT_ADDR_MASK);
}

int kestrel_npt_init(struct kestrel_vm *vm)
{
	vm->arch.npt_levels = pgtable_l5_enabled() ? 5 : 4;
	vm->arch.npt_root = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vm->arch.npt_root)
		return -ENOMEM;
	vm->arch.npt_pages = 1;
	atomic_set(&vm->arch.tlb_gen, 0);
	return 0;
}

phys_addr_t kestrel_npt_root_pa(struct kestrel_vm *vm)
{
	return __pa(vm->arch.npt_root);
}

/* The leaf entry for gpa; allocates tables on the way when asked. */
static u64 *npt_leaf(struct kestrel_vm *vm, u64 gpa, bool alloc)
{
	u64 *table = vm->arch.npt_root;
	int level;

	for (level = vm->arch.npt_levels; level > 1; level--) {
		u64 *e = &table[npt_index(gpa, level)];

		if (!*e) {
			u64 *child;

			if (!alloc)
				return NULL;
			child = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
			if (!child)
				return NULL;
			vm->arch.npt_pages++;
			WRITE_ONCE(*e, kestrel_backend->npt_table_entry(__pa(child)));
		}
		table = npt_child(*e);
	}
	return &table[npt_index(gpa, 1)];
}

int kestrel_npt_fault(struct kestrel_vcpu *vcpu, u64 gpa, u64 error)
{
	struct kestrel_vm *vm = vcpu->vm;
	struct kestrel_memslot *slot;
	unsigned long hva;
	struct page *page;
	u64 *leaf;
	int r;

	mutex_lock(&vm->mmu_lock);
	slot = kestrel_gpa_to_slot(vm, gpa);
	hva = slot ? slot->hva + (gpa & PAGE_MASK) - slot->gpa : 0;
	mutex_unlock(&vm->mmu_lock);
	if (!slot)
		return -ENOENT;

	/*
	 * Always pin writable: a read-only pin of a page the owner later
	 * writes would let copy-on-write split guest and owner views.
	 */
	r = pin_user_pages_fast(hva, 1, FOLL_WRITE | FOLL_LONGTERM, &page);
	if (r != 1)
		return r < 0 ? r : -EFAULT;

	mutex_lock(&vm->mmu_lock);
	/* The slot may have gone or changed while we slept. */
	slot = kestrel_gpa_to_slot(vm, gpa);
	if (!slot || slot->hva + (gpa & PAGE_MASK) - slot->gpa != hva) {
		r = 0;			/* retry the access: it faults again */
		goto unpin;
	}
	leaf = npt_leaf(vm, gpa, true);
	if (!leaf) {
		r = -ENOMEM;
		goto unpin;
	}
	if (*leaf) {			/* another vCPU mapped it first */
		r = 0;
		goto unpin;
	}
	WRITE_ONCE(*leaf, kestrel_backend->npt_leaf_entry(page_to_phys(page),
							  true));
	vm->arch.mapped_4k++;
	mutex_unlock(&vm->mmu_lock);
	return 0;

unpin:
	mutex_unlock(&vm->mmu_lock);
	unpin_user_pages_dirty_lock(&page, 1, true);
	return r;
}

/* Make vCPUs drop cached translations, then release the pages. */
static void npt_flush_and_release(struct kestrel_vm *vm, struct page **pages,
				  int n)
{
	if (!n)
		return;
	atomic_inc(&vm->arch.tlb_gen);
	kestrel_vm_kick_all(vm);
	unpin_user_pages_dirty_lock(pages, n, true);
}

/* Caller holds vm->mmu_lock. */
void kestrel_npt_unmap(struct kestrel_vm *vm, u64 gpa, u64 size)
{
	struct page *batch[64];
	u64 end = gpa + size;
	int n = 0;

	while (gpa < end) {
		u64 *leaf = npt_leaf(vm, gpa, false);

		if (!leaf) {
			/* No table here: skip to the next 2 MiB boundary. */
			gpa = (gpa | (SZ_2M - 1)) + 1;
			continue;
		}
		if (*leaf) {
			batch[n++] = pfn_to_page((*leaf & NPT_ADDR_MASK) >> PAGE_SHIFT);
			WRITE_ONCE(*leaf, 0);
			vm->arch.mapped_4k--;
			if (n == ARRAY_SIZE(batch)) {
				npt_flush_and_release(vm, batch, n);
				n = 0;
			}
		}
		gpa += PAGE_SIZE;
	}
	npt_flush_and_release(vm, batch, n);
}

static void npt_free_level(u64 *table, int level)
{
	int i;

	for (i = 0; i < NPT_ENTRIES; i++) {
		struct page *page;

		if (!table[i])
			continue;
		if (level > 1) {
			npt_free_level(npt_child(table[i]), level - 1);
			continue;
		}
		page = pfn_to_page((table[i] & NPT_ADDR_MASK) >> PAGE_SHIFT);
		unpin_user_pages_dirty_lock(&page, 1, true);
	}
	free_page((unsigned long)table);
}

/* The VM is dead: no vCPU can run, and its ASIDs are retired. */
void kestrel_npt_destroy(struct kestrel_vm *vm)
{
	if (vm->arch.npt_root)
		npt_free_level(vm->arch.npt_root, vm->arch.npt_levels);
	vm->arch.npt_root = NULL;
}
