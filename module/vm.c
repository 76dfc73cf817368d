// SPDX-License-Identifier: GPL-2.0
/*
 * VM objects and the VM file descriptor.
 *
 * A VM lives as long as its fd or any of its vCPUs.  It belongs to the mm
 * that created it: guest RAM is that process's memory, so ioctls from any
 * other mm are refused.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/uaccess.h>

#include <linux/idr.h>

#include "kestrel.h"

LIST_HEAD(kestrel_vms);
/* Guards kestrel_vms; kestrel.h says what it nests outside of. */
DEFINE_MUTEX(kestrel_vms_lock);
static DEFINE_IDA(kestrel_vm_ida);

bool kestrel_vm_owned_by_current(struct kestrel_vm *vm)
{
	return current->mm == vm->mm;
}

static void kestrel_vm_free(struct kref *ref)
{
	struct kestrel_vm *vm = container_of(ref, struct kestrel_vm, ref);

	mutex_lock(&kestrel_vms_lock);
	list_del(&vm->node);
	kestrel_nl_vm_destroyed(vm);	/* before its id can be reused */
	mutex_unlock(&kestrel_vms_lock);
	ida_free(&kestrel_vm_ida, vm->id);

	/* First the notifier (it kicks vCPUs), then what it touches. */
	kestrel_memslots_destroy(vm);
	/* Every vCPU fd is closed: each held a reference. */
	kestrel_vcpus_destroy(vm);
	kestrel_arch_vm_destroy(vm);
	cleanup_srcu_struct(&vm->srcu);
	mmdrop(vm->mm);
	kfree(vm);
	kestrel_virt_put();
}

void kestrel_vm_put(struct kestrel_vm *vm)
{
	kref_put(&vm->ref, kestrel_vm_free);
}

static void kestrel_kick_nop(void *unused)
{
}

/*
 * Make every vCPU that is in guest mode leave it and see vm->arch state
 * bumped before this call (a TLB generation).  The IPI forces an exit; by
 * the time smp_call_function_single() returns, the vCPU has left the guest.
 */
void kestrel_vm_kick_all(struct kestrel_vm *vm)
{
	unsigned int i;

	/* Order the caller's update before reading vcpu->mode. */
	smp_mb();
	for (i = 0; i < KESTREL_MAX_VCPUS; i++) {
		/* Published once, freed only with the VM: no lock needed. */
		struct kestrel_vcpu *vcpu = smp_load_acquire(&vm->vcpus[i]);
		int cpu;

		if (!vcpu || READ_ONCE(vcpu->mode) != KESTREL_IN_GUEST)
			continue;
		cpu = READ_ONCE(vcpu->cpu);
		if (cpu >= 0 && cpu != raw_smp_processor_id())
			smp_call_function_single(cpu, kestrel_kick_nop, NULL, 1);
	}
}

static long kestrel_vm_ioctl(struct file *filp, unsigned int ioctl,
			     unsigned long arg)
{
	struct kestrel_vm *vm = filp->private_data;
	void __user *uarg = (void __user *)arg;

	if (!kestrel_vm_owned_by_current(vm))
		return -EIO;

	switch (ioctl) {
	case KESTREL_SET_MEMORY_REGION: {
		struct kestrel_memory_region mr;

		if (copy_from_user(&mr, uarg, sizeof(mr)))
			return -EFAULT;
		return kestrel_set_memory_region(vm, &mr);
	}
	case KESTREL_CREATE_VCPU:
		return kestrel_create_vcpu(vm, arg);
	case KESTREL_GET_DIRTY_LOG: {
		struct kestrel_dirty_log log;

		if (copy_from_user(&log, uarg, sizeof(log)))
			return -EFAULT;
		return kestrel_get_dirty_log(vm, &log);
	}
	case KESTREL_GET_VM_STATS: {
		struct kestrel_vm_stats st;

		kestrel_get_vm_stats(vm, &st);
		return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
	}
	default:
		return kestrel_arch_vm_ioctl(vm, ioctl, arg);
	}
}

static int kestrel_vm_release(struct inode *inode, struct file *filp)
{
	kestrel_vm_put(filp->private_data);
	return 0;
}

static const struct file_operations kestrel_vm_fops = {
	.owner		= THIS_MODULE,
	.release	= kestrel_vm_release,
	.unlocked_ioctl	= kestrel_vm_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

/* Names are for operators' tools: keep them to a safe character set. */
static bool kestrel_name_valid(const char *name)
{
	size_t i;

	for (i = 0; i < KESTREL_VM_NAME_LEN; i++) {
		char c = name[i];

		if (c == '\0')
			return true;
		/* ASCII only: the kernel's isalnum() takes Latin-1 letters. */
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-')
			return false;
	}
	return false;	/* not terminated */
}

int kestrel_create_vm(struct kestrel_create_vm __user *uarg)
{
	struct kestrel_create_vm args;
	struct kestrel_vm *vm;
	int r, fd;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.reserved || !kestrel_name_valid(args.name))
		return -EINVAL;
	if (!current->mm)
		return -EINVAL;

	r = kestrel_virt_get();
	if (r)
		return r;

	vm = kzalloc(sizeof(*vm), GFP_KERNEL_ACCOUNT);
	if (!vm) {
		r = -ENOMEM;
		goto err_virt;
	}
	kref_init(&vm->ref);
	mutex_init(&vm->lock);
	mutex_init(&vm->slots_lock);
	spin_lock_init(&vm->mmu_lock);
	atomic_set(&vm->tlb_gen, 0);
	memcpy(vm->name, args.name, sizeof(vm->name));
	vm->owner_pid = task_tgid_nr(current);
	vm->created_ns = ktime_get_real_ns();
	mmgrab(current->mm);
	vm->mm = current->mm;

	r = init_srcu_struct(&vm->srcu);
	if (r)
		goto err_free;
	r = ida_alloc(&kestrel_vm_ida, GFP_KERNEL);
	if (r < 0)
		goto err_srcu;
	vm->id = r;

	r = kestrel_arch_vm_init(vm);
	if (r)
		goto err_id;
	r = kestrel_memslots_init(vm);
	if (r)
		goto err_arch;

	/*
	 * Listed before the fd exists: once it does, another thread may
	 * close it, and kestrel_vm_free() unlinks the VM.
	 */
	mutex_lock(&kestrel_vms_lock);
	list_add_tail(&vm->node, &kestrel_vms);
	kestrel_nl_vm_created(vm);
	mutex_unlock(&kestrel_vms_lock);

	fd = anon_inode_getfd("kestrel-vm", &kestrel_vm_fops, vm,
			      O_RDWR | O_CLOEXEC);
	if (fd < 0)
		kestrel_vm_put(vm);	/* unlinks, reports and frees it */
	return fd;

err_arch:
	kestrel_memslots_destroy(vm);
	kestrel_arch_vm_destroy(vm);
err_id:
	ida_free(&kestrel_vm_ida, vm->id);
err_srcu:
	cleanup_srcu_struct(&vm->srcu);
err_free:
	mmdrop(vm->mm);
	kfree(vm);
err_virt:
	kestrel_virt_put();
	return r;
}
