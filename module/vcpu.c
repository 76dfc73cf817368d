// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU objects, the vCPU file descriptor and the run loop.
 *
 * A vCPU is the host thread calling KESTREL_RUN: the host scheduler runs
 * it, and the loop below gives the host its due on every trip (signals,
 * need_resched).  A vCPU object lives until its VM is freed, so the VM can
 * walk vcpus[] without locks; closing a vCPU fd drops its VM reference.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/wait.h>
/* smp_send_reschedule() traces the IPI on newer kernels. */
#include <trace/events/ipi.h>
#include <linux/uaccess.h>

#include "kestrel.h"

/*
 * A halted vCPU sleeps on its wait queue until an interrupt source kicks
 * it or a signal arrives: the host scheduler runs something else.
 */
static void kestrel_vcpu_block(struct kestrel_vcpu *vcpu)
{
	WRITE_ONCE(vcpu->state, KESTREL_VCPU_HALTED);
	wait_event_interruptible(vcpu->wq,
				 kestrel_arch_vcpu_wakeup_pending(vcpu));
	WRITE_ONCE(vcpu->state, KESTREL_VCPU_RUNNING);
}

/*
 * Make @vcpu notice a new event: wake it if it sleeps, and force it out
 * of guest mode if it runs there (the exit is the point).  Callable from
 * any context, hard interrupts included, so the IPI is the bare
 * reschedule vector rather than a function call.  The vCPU thread checks
 * for events after publishing KESTREL_IN_GUEST (kestrel_x86_enter_guest),
 * so a kick that reads OUTSIDE_GUEST needs no IPI.
 */
void kestrel_vcpu_kick(struct kestrel_vcpu *vcpu)
{
	int cpu;

	wake_up_interruptible(&vcpu->wq);
	/* The caller's event before the mode read; pairs with the vCPU. */
	smp_mb();
	if (READ_ONCE(vcpu->mode) != KESTREL_IN_GUEST)
		return;
	cpu = READ_ONCE(vcpu->cpu);
	if (cpu >= 0 && cpu != raw_smp_processor_id())
		smp_send_reschedule(cpu);
}

static int kestrel_vcpu_run(struct kestrel_vcpu *vcpu)
{
	struct kestrel_run *run = vcpu->run;
	int r;

	run->exit_reason = KESTREL_EXIT_UNKNOWN;
	kestrel_arch_vcpu_complete_userspace_exit(vcpu);

	if (READ_ONCE(run->immediate_exit)) {
		r = -EINTR;
		goto out_intr;
	}

	kestrel_arch_vcpu_run_begin(vcpu);
	do {
		if (signal_pending(current)) {
			r = -EINTR;
			break;
		}
		cond_resched();

		if (!kestrel_arch_vcpu_runnable(vcpu)) {
			kestrel_vcpu_block(vcpu);
			r = 0;
			continue;
		}
		r = kestrel_arch_vcpu_run_once(vcpu);
	} while (!r);
	kestrel_arch_vcpu_run_end(vcpu);
	if (r == -EINTR)
		goto out_intr;
	if (r < 0)
		return r;

	/* Exits an operator wants to hear about, whatever the arch. */
	if (run->exit_reason == KESTREL_EXIT_SHUTDOWN)
		kestrel_nl_vcpu_shutdown(vcpu);
	else if (run->exit_reason == KESTREL_EXIT_INTERNAL_ERROR)
		kestrel_nl_vcpu_internal_error(vcpu, run->internal.suberror);
	return 0;

out_intr:
	run->exit_reason = KESTREL_EXIT_INTR;
	return r;
}

static long kestrel_vcpu_ioctl(struct file *filp, unsigned int ioctl,
			       unsigned long arg)
{
	struct kestrel_vcpu *vcpu = filp->private_data;
	long r;

	if (!kestrel_vm_owned_by_current(vcpu->vm))
		return -EIO;

	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	switch (ioctl) {
	case KESTREL_RUN:
		WRITE_ONCE(vcpu->state, KESTREL_VCPU_RUNNING);
		r = arg ? -EINVAL : kestrel_vcpu_run(vcpu);
		WRITE_ONCE(vcpu->state, KESTREL_VCPU_USERSPACE);
		vcpu->run->exit_count++;
		break;
	default:
		r = kestrel_arch_vcpu_ioctl(vcpu, ioctl, arg);
		break;
	}
	mutex_unlock(&vcpu->mutex);
	return r;
}

static vm_fault_t kestrel_vcpu_fault(struct vm_fault *vmf)
{
	struct kestrel_vcpu *vcpu = vmf->vma->vm_file->private_data;
	struct page *page;

	if (vmf->pgoff != 0)
		return VM_FAULT_SIGBUS;
	page = virt_to_page(vcpu->run);
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct kestrel_vcpu_vm_ops = {
	.fault = kestrel_vcpu_fault,
};

static int kestrel_vcpu_mmap(struct file *filp, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff != 0 || vma->vm_end - vma->vm_start > PAGE_SIZE)
		return -EINVAL;
#ifdef KESTREL_HAVE_VM_FLAGS_SET
	vm_flags_set(vma, VM_DONTEXPAND);
#else
	vma->vm_flags |= VM_DONTEXPAND;
#endif
	vma->vm_ops = &kestrel_vcpu_vm_ops;
	return 0;
}

static int kestrel_vcpu_release(struct inode *inode, struct file *filp)
{
	struct kestrel_vcpu *vcpu = filp->private_data;

	kestrel_vm_put(vcpu->vm);
	return 0;
}

static const struct file_operations kestrel_vcpu_fops = {
	.owner		= THIS_MODULE,
	.release	= kestrel_vcpu_release,
	.unlocked_ioctl	= kestrel_vcpu_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= kestrel_vcpu_mmap,
	.llseek		= noop_llseek,
};

static void kestrel_vcpu_free(struct kestrel_vcpu *vcpu)
{
	kestrel_arch_vcpu_destroy(vcpu);
	free_page((unsigned long)vcpu->run);
	kfree(vcpu);
}

/*
 * The KVM order: everything that can fail first (the fd number, the file),
 * then publish the vCPU in vm->vcpus[], and only then give userspace the
 * fd.  A vCPU that any thread can run is always one kestrel_vm_kick_all()
 * sees; nothing can fail once it is published.
 */
static int kestrel_create_vcpu_counted(struct kestrel_vm *vm, unsigned long id)
{
	struct kestrel_vcpu *vcpu;
	struct file *file;
	int r, fd;

	vcpu = kzalloc(sizeof(*vcpu), GFP_KERNEL_ACCOUNT);
	if (!vcpu)
		return -ENOMEM;
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->cpu = -1;
	vcpu->mode = KESTREL_OUTSIDE_GUEST;
	mutex_init(&vcpu->mutex);
	init_waitqueue_head(&vcpu->wq);
	vcpu->run = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vcpu->run) {
		kfree(vcpu);
		return -ENOMEM;
	}

	r = kestrel_arch_vcpu_init(vcpu);
	if (r) {
		free_page((unsigned long)vcpu->run);
		kfree(vcpu);
		return r;
	}

	mutex_lock(&vm->lock);
	if (vm->vcpus[id]) {
		r = -EEXIST;
		goto err_unlock;
	}
	/* creating_vcpus kept CREATE_IRQCHIP out while it was built. */
	if (WARN_ON_ONCE(!kestrel_arch_vcpu_fits_vm(vcpu))) {
		r = -EBUSY;
		goto err_unlock;
	}
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		r = fd;
		goto err_unlock;
	}
	/* The file's reference, dropped by its release. */
	kref_get(&vm->ref);
	file = anon_inode_getfile("kestrel-vcpu", &kestrel_vcpu_fops, vcpu,
				  O_RDWR);
	if (IS_ERR(file)) {
		r = PTR_ERR(file);
		put_unused_fd(fd);
		kestrel_vm_put(vm);	/* not the last: the caller's VM fd */
		goto err_unlock;
	}
	WRITE_ONCE(vm->nr_vcpus, vm->nr_vcpus + 1);
	/* The vCPU, whole, before it can be seen (lock-free readers acquire). */
	smp_store_release(&vm->vcpus[id], vcpu);
	mutex_unlock(&vm->lock);
	/* Published: now userspace may reach it. */
	fd_install(fd, file);
	return fd;

err_unlock:
	mutex_unlock(&vm->lock);
	kestrel_vcpu_free(vcpu);
	return r;
}

int kestrel_create_vcpu(struct kestrel_vm *vm, unsigned long id)
{
	int r;

	if (id >= KESTREL_MAX_VCPUS)
		return -EINVAL;

	/*
	 * As KVM counts created_vcpus first: from here on CREATE_IRQCHIP
	 * fails with EBUSY, so the vCPU built below matches the VM it joins.
	 */
	mutex_lock(&vm->lock);
	vm->creating_vcpus++;
	mutex_unlock(&vm->lock);
	r = kestrel_create_vcpu_counted(vm, id);
	mutex_lock(&vm->lock);
	vm->creating_vcpus--;
	mutex_unlock(&vm->lock);
	return r;
}

/* Called when the VM is freed: no fd, no thread can reach a vCPU now. */
void kestrel_vcpus_destroy(struct kestrel_vm *vm)
{
	unsigned int i;

	for (i = 0; i < KESTREL_MAX_VCPUS; i++) {
		if (vm->vcpus[i])
			kestrel_vcpu_free(vm->vcpus[i]);
		vm->vcpus[i] = NULL;
	}
}
