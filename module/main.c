// SPDX-License-Identifier: GPL-2.0
/*
 * Kestrel: /dev/kestrel, module lifetime, and switching the CPUs'
 * virtualization on and off.
 *
 * Virtualization is on only while at least one VM exists, as with KVM, so
 * that kvm_amd/kvm_intel and Kestrel can take turns on one host.  A CPU that
 * comes online while VMs exist is switched on by the hotplug callback.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/reboot.h>
#include <linux/slab.h>

#include "kestrel.h"

/*
 * kestrel_lock guards virt_users and the per-CPU virt_on flags against VM
 * creation/destruction; CPU hotplug is excluded by cpus_read_lock().
 */
static DEFINE_MUTEX(kestrel_lock);
static unsigned int virt_users;
static DEFINE_PER_CPU(bool, virt_on);
static atomic_t virt_enable_failed;
static atomic_t virt_failed_cpu;
static enum cpuhp_state kestrel_cpuhp_state;

static void virt_cpu_on(void *unused)
{
	int r;

	if (this_cpu_read(virt_on))
		return;
	r = kestrel_arch_cpu_enable();
	if (r) {
		atomic_set(&virt_enable_failed, r);
		atomic_set(&virt_failed_cpu, smp_processor_id());
		return;
	}
	this_cpu_write(virt_on, true);
}

static void virt_cpu_off(void *unused)
{
	if (!this_cpu_read(virt_on))
		return;
	kestrel_arch_cpu_disable();
	this_cpu_write(virt_on, false);
}

/* Take a reference on "virtualization is on everywhere". */
int kestrel_virt_get(void)
{
	int r = 0;

	mutex_lock(&kestrel_lock);
	cpus_read_lock();
	if (virt_users == 0) {
		atomic_set(&virt_enable_failed, 0);
		on_each_cpu(virt_cpu_on, NULL, 1);
		r = atomic_read(&virt_enable_failed);
		if (r)
			on_each_cpu(virt_cpu_off, NULL, 1);
	}
	if (r == -EBUSY)
		pr_err_ratelimited("kestrel: CPU %d: hardware virtualization is already in use by another hypervisor (kvm_amd/kvm_intel with VMs, KVM on 6.12+ which takes it at load, VirtualBox); stop its VMs, load kvm with enable_virt_at_load=0, or unload it, and retry\n",
				   atomic_read(&virt_failed_cpu));
	if (!r)
		virt_users++;
	cpus_read_unlock();
	mutex_unlock(&kestrel_lock);
	return r;
}

void kestrel_virt_put(void)
{
	mutex_lock(&kestrel_lock);
	cpus_read_lock();
	if (!WARN_ON(virt_users == 0) && --virt_users == 0)
		on_each_cpu(virt_cpu_off, NULL, 1);
	cpus_read_unlock();
	mutex_unlock(&kestrel_lock);
}

/*
 * Hotplug callbacks run on the CPU concerned with the hotplug lock held for
 * writing, so virt_users cannot change under them.
 */
static int kestrel_cpu_online(unsigned int cpu)
{
	int r = 0;

	if (READ_ONCE(virt_users)) {
		atomic_set(&virt_enable_failed, 0);
		local_irq_disable();
		virt_cpu_on(NULL);
		local_irq_enable();
		r = atomic_read(&virt_enable_failed);
	}
	return r;
}

static int kestrel_cpu_offline(unsigned int cpu)
{
	local_irq_disable();
	virt_cpu_off(NULL);
	local_irq_enable();
	return 0;
}

/* A reboot must not leave EFER.SVME or VMXON behind for firmware/kexec. */
static int kestrel_reboot(struct notifier_block *nb, unsigned long code,
			  void *unused)
{
	on_each_cpu(virt_cpu_off, NULL, 1);
	return NOTIFY_OK;
}

static struct notifier_block kestrel_reboot_nb = {
	.notifier_call = kestrel_reboot,
};

static long kestrel_dev_ioctl(struct file *filp, unsigned int ioctl,
			      unsigned long arg)
{
	switch (ioctl) {
	case KESTREL_GET_API_VERSION:
		return arg ? -EINVAL : KESTREL_API_VERSION;
	case KESTREL_CREATE_VM:
		return kestrel_create_vm((void __user *)arg);
	case KESTREL_CHECK_CAP:
		switch (arg) {
		case KESTREL_CAP_MAX_VCPUS:
			return KESTREL_MAX_VCPUS;
		case KESTREL_CAP_NR_MEMSLOTS:
			return KESTREL_NR_MEMSLOTS;
		case KESTREL_CAP_IMMEDIATE_EXIT:
			return 1;
		default:
			return kestrel_arch_check_cap(arg);
		}
	case KESTREL_GET_VCPU_MMAP_SIZE:
		return arg ? -EINVAL : PAGE_SIZE;
	default:
		return kestrel_arch_dev_ioctl(ioctl, arg);
	}
}

static const struct file_operations kestrel_dev_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= kestrel_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice kestrel_dev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "kestrel",
	.fops	= &kestrel_dev_fops,
	.mode	= 0660,
};

static int __init kestrel_init(void)
{
	int r;

	r = kestrel_arch_init();
	if (r)
		return r;

	r = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, "kestrel:online",
				      kestrel_cpu_online, kestrel_cpu_offline);
	if (r < 0)
		goto err_arch;
	kestrel_cpuhp_state = r;

	register_reboot_notifier(&kestrel_reboot_nb);

	/* Before the device: VMs report to the family from their creation. */
	r = kestrel_nl_init();
	if (r)
		goto err_cpuhp;
	r = misc_register(&kestrel_dev);
	if (r)
		goto err_nl;
	return 0;

err_nl:
	kestrel_nl_exit();
err_cpuhp:
	unregister_reboot_notifier(&kestrel_reboot_nb);
	cpuhp_remove_state_nocalls(kestrel_cpuhp_state);
err_arch:
	kestrel_arch_exit();
	return r;
}

static void __exit kestrel_exit(void)
{
	/* VM files pin the module: no VM, so virtualization is off. */
	misc_deregister(&kestrel_dev);
	kestrel_nl_exit();
	unregister_reboot_notifier(&kestrel_reboot_nb);
	cpuhp_remove_state_nocalls(kestrel_cpuhp_state);
	kestrel_arch_exit();
}

module_init(kestrel_init);
module_exit(kestrel_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Kestrel: a hypervisor for the Linux you already run");
MODULE_VERSION("0.1.0");
