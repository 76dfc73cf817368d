// SPDX-License-Identifier: GPL-2.0
/*
 * VM and vCPU lifetimes: many VMs, many vCPUs, fds closed in different
 * orders, every memory slot, concurrent vCPUs.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "lib.h"

DECLARE_GUEST(rm_id);

static enum test_result test_vms_sequential(const void *arg)
{
	struct kestrel_regs regs;
	int i;

	(void)arg;
	for (i = 0; i < 64; i++) {
		int vm = create_vm_fd("seq");
		int vcpu;

		if (vm < 0) {
			diag("VM %d: KESTREL_CREATE_VM: %s", i,
			     errno_name(errno));
			return TEST_FAIL;
		}
		vcpu = create_vcpu_fd(vm, 0);
		if (vcpu < 0) {
			diag("VM %d: KESTREL_CREATE_VCPU: %s", i,
			     errno_name(errno));
			return TEST_FAIL;
		}
		CHECK_OK(ioctl(vcpu, KESTREL_GET_REGS, &regs));
		/* alternate which fd goes first */
		if (i & 1) {
			CHECK_OK(res_close(vcpu));
			CHECK_OK(res_close(vm));
		} else {
			CHECK_OK(res_close(vm));
			CHECK_OK(res_close(vcpu));
		}
	}
	return TEST_PASS;
}

#define NR_ALIVE	16

static enum test_result test_vms_alive(const void *arg)
{
	int vm[NR_ALIVE], vcpu[NR_ALIVE], i;
	struct kestrel_regs regs;
	uint8_t *mem;

	(void)arg;
	mem = res_map(mmap(NULL, NR_ALIVE * page_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
		      NR_ALIVE * page_size);
	CHECK(mem != MAP_FAILED);
	for (i = 0; i < NR_ALIVE; i++) {
		struct kestrel_memory_region r = {
			.slot = 0,
			.memory_size = page_size,
			.userspace_addr = (uintptr_t)(mem + i * page_size),
		};

		vm[i] = create_vm_fd("alive");
		CHECK_OK(vm[i]);
		CHECK_OK(ioctl(vm[i], KESTREL_SET_MEMORY_REGION, &r));
		/* vCPU ids are per VM: every VM gets a vCPU 0 */
		vcpu[i] = create_vcpu_fd(vm[i], 0);
		CHECK_OK(vcpu[i]);
	}
	for (i = 0; i < NR_ALIVE; i++)
		CHECK_OK(ioctl(vcpu[i], KESTREL_GET_REGS, &regs));

	/* Even VMs, then every vCPU, then the odd VMs. */
	for (i = 0; i < NR_ALIVE; i += 2)
		CHECK_OK(res_close(vm[i]));
	for (i = 0; i < NR_ALIVE; i++)
		CHECK_OK(ioctl(vcpu[i], KESTREL_GET_REGS, &regs));
	for (i = NR_ALIVE - 1; i >= 0; i--)
		CHECK_OK(res_close(vcpu[i]));
	for (i = 1; i < NR_ALIVE; i += 2)
		CHECK_OK(res_close(vm[i]));
	return TEST_PASS;
}

static enum test_result test_max_vcpus(const void *arg)
{
	long max = check_cap(KESTREL_CAP_MAX_VCPUS);
	struct kestrel_regs regs;
	struct vcpu *v;
	struct vm vm;
	long i;

	(void)arg;
	CHECK(max >= 1 && max <= 4096);
	v = res_alloc(max * sizeof(*v));
	CHECK_H(vm_create(&vm, 0));
	for (i = 0; i < max; i++)
		CHECK_H(vcpu_create(&vm, &v[i], i));
	for (i = 0; i < max; i++) {
		CHECK_H(get_regs(&v[i], &regs));
		CHECK_EQ(regs.rip, 0xfff0);
	}
	/* The vCPUs keep their VM alive. */
	CHECK_OK(res_close(vm.fd));
	for (i = 0; i < max; i++)
		CHECK_H(get_regs(&v[i], &regs));
	for (i = max - 1; i >= 0; i -= 2)
		CHECK_OK(res_close(v[i].fd));
	for (i = max - 2; i >= 0; i -= 2)
		CHECK_OK(res_close(v[i].fd));
	diag("%ld vCPUs", max);
	return TEST_PASS;
}

static enum test_result test_vcpu_outlives_vm(const void *arg)
{
	struct vm vm;
	struct vcpu v;
	uint32_t val;

	(void)arg;
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_H(vm_load(&vm, GUEST(rm_id)));
	CHECK_H(vcpu_setup_real(&v));
	CHECK_OK(res_close(vm.fd));

	/* The VM (and its memory slot) must still work for the vCPU. */
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	CHECK_EQ(val, 0xc0de0000);
	CHECK_H(run_expect_hlt(&v));
	CHECK_EQ(*(uint32_t *)(vm.mem + GUEST_DATA), 0xc0de0000);
	return TEST_PASS;
}

static enum test_result test_run_page_outlives_fd(const void *arg)
{
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_OK(res_close(v.fd));
	CHECK_OK(res_close(vm.fd));
	/* The mapping holds the vCPU: no SIGBUS, the page keeps its data. */
	v.run->immediate_exit = 1;
	CHECK_EQ(v.run->immediate_exit, 1);
	CHECK_EQ(v.run->exit_count, 0);
	return TEST_PASS;
}

static enum test_result test_all_memslots(const void *arg)
{
	long nr = check_cap(KESTREL_CAP_NR_MEMSLOTS);
	struct vm vm;
	uint8_t *mem;
	long i;

	(void)arg;
	CHECK(nr >= 1 && nr <= 4096);
	CHECK_H(vm_create(&vm, 0));
	mem = res_map(mmap(NULL, nr * page_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
		      nr * page_size);
	CHECK(mem != MAP_FAILED);
	/* One page per slot, 2 MiB apart, the last slot first */
	for (i = nr - 1; i >= 0; i--)
		CHECK_H(vm_add_slot(&vm, i, i * 0x200000ULL,
				    mem + i * page_size, page_size));
	for (i = 0; i < nr; i++)
		CHECK_H(vm_add_slot(&vm, i, 0, NULL, 0));
	/* Slots are reusable once deleted, at a new place. */
	CHECK_H(vm_add_slot(&vm, 0, 0x100000, mem, page_size));
	CHECK_H(vm_add_slot(&vm, nr - 1, 0, mem + page_size, page_size));
	diag("%ld slots", nr);
	return TEST_PASS;
}

static enum test_result test_cloexec(const void *arg)
{
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create(&vm, 0));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK(fcntl(vm.fd, F_GETFD) & FD_CLOEXEC);
	CHECK(fcntl(v.fd, F_GETFD) & FD_CLOEXEC);
	return TEST_PASS;
}

static enum test_result test_vm_names(const void *arg)
{
	static const char *const names[] = {
		"", "a", "Az09._-", "0123456789012345678901234567890",
	};
	size_t i;

	(void)arg;
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		int fd = create_vm_fd(names[i]);

		if (fd < 0) {
			diag("name \"%s\": %s", names[i], errno_name(errno));
			return TEST_FAIL;
		}
		CHECK_OK(res_close(fd));
	}
	return TEST_PASS;
}

#define NR_THREADS	4

struct runner {
	struct vcpu *vcpu;
	bool ok;
};

static void *run_id_guest(void *p)
{
	struct runner *r = p;
	uint32_t val;

	r->ok = run_expect_out(r->vcpu, PORT_U32, 4, &val) &&
		run_expect_hlt(r->vcpu);
	if (r->ok && val != (0xc0de0000 | r->vcpu->id)) {
		diag("vCPU %d: OUT 0x%x", r->vcpu->id, val);
		r->ok = false;
	}
	return NULL;
}

static enum test_result test_concurrent_vcpus(const void *arg)
{
	struct vcpu v[NR_THREADS];
	struct runner r[NR_THREADS];
	pthread_t t[NR_THREADS];
	struct kestrel_regs regs;
	struct vm vm;
	int i, err;

	(void)arg;
	if (check_cap(KESTREL_CAP_MAX_VCPUS) < NR_THREADS)
		return test_skip("fewer than %d vCPUs", NR_THREADS);
	CHECK_H(vm_create(&vm, GUEST_MEM_SIZE));
	CHECK_H(vm_load(&vm, GUEST(rm_id)));
	for (i = 0; i < NR_THREADS; i++) {
		CHECK_H(vcpu_create(&vm, &v[i], i));
		CHECK_H(vcpu_setup_real(&v[i]));
		CHECK_H(get_regs(&v[i], &regs));
		regs.rbx = i;
		CHECK_H(set_regs(&v[i], &regs));
	}
	/* Each vCPU runs in its own thread, as the API intends. */
	for (i = 0; i < NR_THREADS; i++) {
		r[i] = (struct runner){ .vcpu = &v[i] };
		err = pthread_create(&t[i], NULL, run_id_guest, &r[i]);
		if (err) {
			diag("pthread_create: %s", strerror(err));
			while (i--)
				pthread_join(t[i], NULL);
			return TEST_FAIL;
		}
	}
	for (i = 0; i < NR_THREADS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < NR_THREADS; i++) {
		CHECK(r[i].ok);
		CHECK_EQ(((uint32_t *)(vm.mem + GUEST_DATA))[i],
			 0xc0de0000 | i);
	}
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "64 VMs created and destroyed in turn", test_vms_sequential, NULL },
	{ "16 VMs alive at once, closed in mixed order", test_vms_alive, NULL },
	{ "CAP_MAX_VCPUS vCPUs in one VM, outliving the VM fd",
	  test_max_vcpus, NULL },
	{ "a vCPU runs its guest after the VM fd is closed",
	  test_vcpu_outlives_vm, NULL },
	{ "the run page stays mapped after its fds close",
	  test_run_page_outlives_fd, NULL },
	{ "every memory slot can be filled, deleted and reused",
	  test_all_memslots, NULL },
	{ "VM and vCPU fds are close-on-exec", test_cloexec, NULL },
	{ "VM names of allowed characters are accepted", test_vm_names, NULL },
	{ "vCPUs run concurrently in their own threads",
	  test_concurrent_vcpus, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
