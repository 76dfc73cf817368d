// SPDX-License-Identifier: GPL-2.0
/*
 * Memory slots: which guest-physical ranges are backed by which ranges of
 * the VM owner's memory.  The core validates and publishes slots; the arch
 * maps pages into the nested page tables on demand and unmaps them here
 * when a slot goes away.
 */
#include <linux/mm.h>
#include <linux/uaccess.h>

#include "kestrel.h"

/* Caller holds vm->mmu_lock. */
struct kestrel_memslot *kestrel_gpa_to_slot(struct kestrel_vm *vm, u64 gpa)
{
	int i;

	for (i = 0; i < KESTREL_NR_MEMSLOTS; i++) {
		struct kestrel_memslot *s = &vm->slots[i];

		if (s->size && gpa >= s->gpa && gpa - s->gpa < s->size)
			return s;
	}
	return NULL;
}

static int kestrel_validate_region(const struct kestrel_memory_region *mr)
{
	u64 end;

	if (mr->flags || mr->slot >= KESTREL_NR_MEMSLOTS)
		return -EINVAL;
	if (!PAGE_ALIGNED(mr->guest_phys_addr) ||
	    !PAGE_ALIGNED(mr->memory_size) ||
	    !PAGE_ALIGNED(mr->userspace_addr))
		return -EINVAL;
	if (!mr->memory_size)
		return 0;
	if (check_add_overflow(mr->guest_phys_addr, mr->memory_size, &end) ||
	    end > BIT_ULL(KESTREL_GPA_BITS))
		return -EINVAL;
	if (check_add_overflow(mr->userspace_addr, mr->memory_size, &end) ||
	    !access_ok((void __user *)(unsigned long)mr->userspace_addr,
		       mr->memory_size))
		return -EINVAL;
	return 0;
}

int kestrel_set_memory_region(struct kestrel_vm *vm,
			      const struct kestrel_memory_region *mr)
{
	struct kestrel_memslot *slot;
	int i, r;

	r = kestrel_validate_region(mr);
	if (r)
		return r;

	mutex_lock(&vm->mmu_lock);
	slot = &vm->slots[mr->slot];

	if (!mr->memory_size) {
		if (!slot->size) {
			r = -ENOENT;
			goto out;
		}
		/*
		 * Unmap first, then make every vCPU leave the guest so that no
		 * stale translation outlives the pages' release.
		 */
		kestrel_arch_unmap_range(vm, slot->gpa, slot->size);
		slot->size = 0;
		goto out;
	}

	if (slot->size) {
		r = -EEXIST;
		goto out;
	}
	for (i = 0; i < KESTREL_NR_MEMSLOTS; i++) {
		struct kestrel_memslot *s = &vm->slots[i];

		if (s->size && mr->guest_phys_addr < s->gpa + s->size &&
		    s->gpa < mr->guest_phys_addr + mr->memory_size) {
			r = -EEXIST;
			goto out;
		}
	}
	slot->gpa = mr->guest_phys_addr;
	slot->hva = mr->userspace_addr;
	slot->size = mr->memory_size;
out:
	mutex_unlock(&vm->mmu_lock);
	return r;
}

/*
 * Read guest-physical memory through the owner's mapping.  Runs in the vCPU
 * thread, whose mm is the VM's; the slot lock is not held across the copy
 * because the copy may fault and sleep in the host memory manager.
 */
int kestrel_read_guest(struct kestrel_vm *vm, u64 gpa, void *buf, size_t len)
{
	while (len) {
		struct kestrel_memslot *s;
		unsigned long hva;
		size_t chunk;

		mutex_lock(&vm->mmu_lock);
		s = kestrel_gpa_to_slot(vm, gpa);
		if (!s) {
			mutex_unlock(&vm->mmu_lock);
			return -EFAULT;
		}
		hva = s->hva + (gpa - s->gpa);
		chunk = min_t(u64, len, s->gpa + s->size - gpa);
		mutex_unlock(&vm->mmu_lock);

		if (copy_from_user(buf, (void __user *)hva, chunk))
			return -EFAULT;
		buf += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

void kestrel_memslots_destroy(struct kestrel_vm *vm)
{
	int i;

	for (i = 0; i < KESTREL_NR_MEMSLOTS; i++)
		vm->slots[i].size = 0;
}
