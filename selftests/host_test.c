// SPDX-License-Identifier: GPL-2.0
/*
 * Kestrel and its host: the module cannot go while a VM exists, CPUs that
 * go offline and come back are switched on again, a vCPU thread the host
 * moves between CPUs keeps running, and Kestrel and KVM take turns on the
 * CPU's virtualization without either crashing or stealing it.
 *
 * The KVM case loads kvm.ko and kvm-amd.ko (SVM) or kvm-intel.ko (VMX)
 * from $KESTREL_KVM_MODULES; the emulated host's initramfs puts the stock
 * ones in /lib/modules/kvm and /lib/modules/kvm-intel.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib.h"

DECLARE_GUEST(rm_id);

/* KVM's two ioctls we need, without depending on <linux/kvm.h>. */
#define KVM_CREATE_VM	_IO(0xAE, 0x01)

static bool set_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0;
}

static void all_cpus(void)
{
	cpu_set_t set;
	int i;

	CPU_ZERO(&set);
	for (i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/*
 * rm_id OUTs 0xc0de0000 | EBX to PORT_U32 and halts: a guest whose output
 * tells that it ran, and ran with the registers we gave it.
 */
static bool run_id_guest(struct vm *vm, struct vcpu *vcpu, uint32_t id)
{
	struct kestrel_regs regs;
	uint32_t out;

	if (!vcpu_setup_real(vcpu) || !get_regs(vcpu, &regs))
		return false;
	regs.rbx = id;
	if (!set_regs(vcpu, &regs))
		return false;
	(void)vm;
	if (!run_expect_out(vcpu, PORT_U32, 4, &out) || !run_expect_hlt(vcpu))
		return false;
	if (out != (0xc0de0000 | id)) {
		diag("guest reported 0x%x, want 0x%x", out, 0xc0de0000 | id);
		return false;
	}
	return true;
}

static enum test_result test_unload_refused(const void *arg)
{
	struct vm vm;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	/* A VM fd holds the module: delete_module must refuse, not wait. */
	CHECK_ERR(syscall(SYS_delete_module, "kestrel", O_NONBLOCK),
		  EWOULDBLOCK);
	return TEST_PASS;
}

static enum test_result test_migrate(const void *arg)
{
	struct vm vm;
	struct vcpu vcpu;
	int i, ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	(void)arg;
	if (ncpu < 2)
		return test_skip("needs two online CPUs");
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vm_load(&vm, GUEST(rm_id)));
	CHECK_H(vcpu_create(&vm, &vcpu, 0));
	/* The same vCPU, alternately on CPU 0 and 1: new ASIDs each time. */
	for (i = 0; i < 20; i++) {
		CHECK(set_cpu(i % 2));
		if (!run_id_guest(&vm, &vcpu, i)) {
			all_cpus();
			return TEST_FAIL;
		}
	}
	all_cpus();
	return TEST_PASS;
}

#define CPU1_ONLINE "/sys/devices/system/cpu/cpu1/online"

static enum test_result test_hotplug(const void *arg)
{
	struct vm vm;
	struct vcpu vcpu;
	bool ok;

	(void)arg;
	if (access(CPU1_ONLINE, W_OK))
		return test_skip("CPU 1 cannot be hot-unplugged here");
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vm_load(&vm, GUEST(rm_id)));
	CHECK_H(vcpu_create(&vm, &vcpu, 0));

	/* With a VM alive, CPU 1 goes away and comes back... */
	CHECK(write_file(CPU1_ONLINE, "0"));
	ok = run_id_guest(&vm, &vcpu, 0x51);
	CHECK(write_file(CPU1_ONLINE, "1"));
	CHECK(ok);
	/* ...and the hotplug callback switched it on: run there. */
	CHECK(set_cpu(1));
	ok = run_id_guest(&vm, &vcpu, 0x52);
	all_cpus();
	CHECK(ok);
	return TEST_PASS;
}

static bool on_vmx(void)
{
	return check_cap(KESTREL_CAP_BACKEND) == KESTREL_BACKEND_VMX;
}

static const char *kvm_dir(void)
{
	const char *d = getenv("KESTREL_KVM_MODULES");

	if (d)
		return d;
	return on_vmx() ? "/lib/modules/kvm-intel" : "/lib/modules/kvm";
}

static void rmmod(const char *name)
{
	syscall(SYS_delete_module, name, O_NONBLOCK);
}

static const char *kvm_params;

static const char *kvm_params_of(const char *name)
{
	return strcmp(name, "kvm") ? "" : kvm_params;
}

static bool kvm_load(const char *params)
{
	kvm_params = params;
	return load_stock_modules(kvm_dir(), kvm_params_of);
}

static void kvm_unload(void)
{
	rmmod(on_vmx() ? "kvm_intel" : "kvm_amd");
	rmmod("kvm");
}

static enum test_result test_kvm_turns(const void *arg)
{
	struct vm vm;
	struct vcpu vcpu;
	int kvm, kvm_vm, kfd;
	char path[256];

	(void)arg;
	snprintf(path, sizeof(path), "%s/kvm.ko", kvm_dir());
	if (access(path, R_OK))
		return test_skip("no KVM modules in %s", kvm_dir());

	CHECK(kvm_load(""));
	/*
	 * 6.12's KVM switches SVM/VMX on when it loads: Kestrel must say
	 * EBUSY, not take it.  Then reload it the 6.1 way, on only while it
	 * has VMs.
	 */
	kfd = create_vm_fd("turns");
	if (kfd < 0) {
		CHECK_EQ(errno, EBUSY);
		diag("KVM holds the CPU from load (6.12 behaviour): EBUSY as expected");
		kvm_unload();
		CHECK(kvm_load("enable_virt_at_load=0"));
		kfd = create_vm_fd("turns");
	}
	CHECK_OK(kfd);

	/* A Kestrel guest that must survive KVM's attempt below. */
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vm_load(&vm, GUEST(rm_id)));
	CHECK_H(vcpu_create(&vm, &vcpu, 0));
	CHECK_H(run_id_guest(&vm, &vcpu, 1));

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	CHECK_OK(kvm);
	/*
	 * Kestrel has VMs: KVM may not switch SVM/VMX on underneath them.  6.1's
	 * KVM says EBUSY, 6.12's EIO ("enabling virtualization failed").
	 */
	kvm_vm = ioctl(kvm, KVM_CREATE_VM, 0);
	CHECK(kvm_vm < 0);
	CHECK(errno == EBUSY || errno == EIO);
	diag("KVM_CREATE_VM refused: %s", errno_name(errno));
	CHECK_H(run_id_guest(&vm, &vcpu, 2));
	/* The run page's mapping holds the vCPU file, and so the VM. */
	CHECK_OK(res_unmap(vcpu.run, vcpu.run_size));
	CHECK_OK(res_close(vcpu.fd));
	CHECK_OK(res_close(vm.fd));
	CHECK_OK(res_close(kfd));

	/* Kestrel's last VM is gone: KVM's turn. */
	kvm_vm = ioctl(kvm, KVM_CREATE_VM, 0);
	CHECK_OK(kvm_vm);
	CHECK_ERR(create_vm_fd("turns"), EBUSY);
	close(kvm_vm);

	/* KVM's last VM is gone: Kestrel's turn again. */
	kfd = create_vm_fd("turns");
	CHECK_OK(kfd);
	CHECK_OK(res_close(kfd));
	close(kvm);
	kvm_unload();
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "module unload refused while a VM exists", test_unload_refused, NULL },
	{ "vCPU thread moved between host CPUs keeps running", test_migrate, NULL },
	{ "CPU offline/online while a VM exists", test_hotplug, NULL },
	{ "Kestrel and KVM take turns on the CPU's virtualization",
	  test_kvm_turns, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
