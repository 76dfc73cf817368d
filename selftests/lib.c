// SPDX-License-Identifier: GPL-2.0
/*
 * Shared selftest library: TAP output, resource tracking, VM helpers.
 *
 * The TAP lines come from the kernel's own kselftest.h (Debian's
 * linux-source, found by the Makefile: KSFT_DIR); lib.h's API is this
 * project's and stays as it was.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "lib.h"
#include "kselftest.h"

int sys_fd = -1;
long page_size;

/* ---- TAP ------------------------------------------------------------- */

static char skip_reason[256];
static int sel_argc;
static char **sel_argv;

void diag(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ksft_print_msg("%s\n", buf);
}

enum test_result test_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(skip_reason, sizeof(skip_reason), fmt, ap);
	va_end(ap);
	return TEST_SKIP;
}

/* "1..0 # SKIP why" and exit 4 */
static void __attribute__((noreturn, format(printf, 1, 2)))
skip_all(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ksft_exit_skip("%s\n", buf);
}

/* "Bail out! why", the totals, and exit 1 */
static void __attribute__((noreturn, format(printf, 1, 2)))
bail_out(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ksft_exit_fail_msg("%s\n", buf);
}

static const struct {
	int err;
	const char *name;
} errno_names[] = {
	{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { EINTR, "EINTR" },
	{ EIO, "EIO" }, { ENXIO, "ENXIO" }, { E2BIG, "E2BIG" },
	{ EBADF, "EBADF" }, { EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" },
	{ EACCES, "EACCES" }, { EFAULT, "EFAULT" }, { EBUSY, "EBUSY" },
	{ EEXIST, "EEXIST" }, { ENODEV, "ENODEV" }, { EINVAL, "EINVAL" },
	{ EMFILE, "EMFILE" }, { ENOTTY, "ENOTTY" }, { ENOSPC, "ENOSPC" },
	{ ERANGE, "ERANGE" }, { ENOSYS, "ENOSYS" }, { EOPNOTSUPP, "EOPNOTSUPP" },
	{ ETIMEDOUT, "ETIMEDOUT" }, { EOVERFLOW, "EOVERFLOW" },
};

const char *errno_name(int err)
{
	static __thread char buf[32];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(errno_names); i++)
		if (errno_names[i].err == err)
			return errno_names[i].name;
	snprintf(buf, sizeof(buf), "errno %d", err);
	return buf;
}

const char *exit_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[KESTREL_EXIT_UNKNOWN] = "UNKNOWN",
		[KESTREL_EXIT_IO] = "IO",
		[KESTREL_EXIT_HLT] = "HLT",
		[KESTREL_EXIT_SHUTDOWN] = "SHUTDOWN",
		[KESTREL_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KESTREL_EXIT_INTR] = "INTR",
		[KESTREL_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
		[KESTREL_EXIT_MEMORY_FAULT] = "MEMORY_FAULT",
		[KESTREL_EXIT_MMIO] = "MMIO",
	};

	if (reason < ARRAY_SIZE(names) && names[reason])
		return names[reason];
	return "(invalid)";
}

bool expect_errno(long ret, int err, int want, const char *expr,
		  const char *file, int line)
{
	if (ret != -1) {
		diag("%s:%d: %s returned %ld, want -1 with %s",
		     file, line, expr, ret, errno_name(want));
		return false;
	}
	if (err != want) {
		diag("%s:%d: %s failed with %s (%s), want %s",
		     file, line, expr, errno_name(err), strerror(err),
		     errno_name(want));
		return false;
	}
	return true;
}

/* ---- resources ------------------------------------------------------- */

struct res {
	int fd;			/* -1 for a mapping */
	void *p;
	size_t len;
	bool heap;
};

static struct res *res_list;
static size_t res_nr, res_cap;

static void res_add(struct res r)
{
	if (res_nr == res_cap) {
		res_cap = res_cap ? 2 * res_cap : 64;
		res_list = realloc(res_list, res_cap * sizeof(*res_list));
		if (!res_list)
			bail_out("out of memory");
	}
	res_list[res_nr++] = r;
}

int res_fd(int fd)
{
	if (fd >= 0)
		res_add((struct res){ .fd = fd });
	return fd;
}

int res_close(int fd)
{
	size_t i;

	for (i = 0; i < res_nr; i++) {
		if (res_list[i].fd == fd && !res_list[i].p) {
			res_list[i] = res_list[--res_nr];
			break;
		}
	}
	return close(fd);
}

void *res_map(void *p, size_t len)
{
	if (p != MAP_FAILED)
		res_add((struct res){ .fd = -1, .p = p, .len = len });
	return p;
}

int res_unmap(void *p, size_t len)
{
	size_t i;

	for (i = 0; i < res_nr; i++) {
		if (res_list[i].p == p && !res_list[i].heap) {
			res_list[i] = res_list[--res_nr];
			break;
		}
	}
	return munmap(p, len);
}

void *res_alloc(size_t len)
{
	void *p = calloc(1, len ? len : 1);

	if (!p)
		bail_out("out of memory");
	res_add((struct res){ .fd = -1, .p = p, .heap = true });
	return p;
}

/* File descriptors first (newest first), so VMs die before their RAM. */
static void res_release_all(void)
{
	size_t i;

	for (i = res_nr; i-- > 0;)
		if (!res_list[i].p)
			close(res_list[i].fd);
	for (i = res_nr; i-- > 0;) {
		if (!res_list[i].p)
			continue;
		if (res_list[i].heap)
			free(res_list[i].p);
		else
			munmap(res_list[i].p, res_list[i].len);
	}
	res_nr = 0;
}

/* ---- the RUN watchdog ------------------------------------------------ */

/*
 * A per-thread POSIX timer sends wd_signo to the thread in KESTREL_RUN,
 * so a guest that never exits turns into EINTR instead of a hang.
 */
static int wd_signo;
static __thread timer_t wd_timer;
static __thread bool wd_ready;
static __thread volatile sig_atomic_t wd_fired;

static void wd_handler(int sig)
{
	(void)sig;
	wd_fired = 1;
}

/*
 * RUN_TIMEOUT, or $KESTREL_RUN_TIMEOUT seconds where the host kernel is
 * much slower (the debug kernel's lane in scripts/check.sh).
 */
static int run_timeout(void)
{
	const char *v = getenv("KESTREL_RUN_TIMEOUT");
	int t = v ? atoi(v) : 0;

	return t > 0 ? t : RUN_TIMEOUT;
}

static void wd_arm(void)
{
	struct itimerspec its = { .it_value.tv_sec = run_timeout() };

	if (!wd_ready) {
		struct sigevent sev;

		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = wd_signo;
		sev._sigev_un._tid = gettid();
		if (timer_create(CLOCK_MONOTONIC, &sev, &wd_timer))
			bail_out("timer_create: %s", strerror(errno));
		wd_ready = true;
	}
	wd_fired = 0;
	timer_settime(wd_timer, 0, &its, NULL);
}

static void wd_disarm(void)
{
	struct itimerspec its = { 0 };

	timer_settime(wd_timer, 0, &its, NULL);
}

/* ---- init and the runner --------------------------------------------- */

void test_init(int argc, char **argv)
{
	struct kestrel_create_vm cvm;
	struct sigaction sa;
	int fd;

	/* Optional arguments: the numbers of the cases to run. */
	sel_argc = argc - 1;
	sel_argv = argv + 1;
	page_size = sysconf(_SC_PAGESIZE);

	/*
	 * "TAP version 13", and line buffering, which keeps diagnostics in
	 * order with forked children.
	 */
	ksft_print_header();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wd_handler;	/* no SA_RESTART: RUN must see it */
	sigemptyset(&sa.sa_mask);
	wd_signo = SIGRTMIN + 1;
	if (sigaction(wd_signo, &sa, NULL))
		bail_out("sigaction: %s", strerror(errno));

	sys_fd = open(KESTREL_DEV, O_RDWR | O_CLOEXEC);
	if (sys_fd < 0) {
		int err = errno;

		if (err == ENOENT || err == ENODEV || err == ENXIO)
			skip_all("%s: %s: is the kestrel module loaded?",
				 KESTREL_DEV, strerror(err));
		if (err == EACCES || err == EPERM)
			skip_all("%s: %s: run as root", KESTREL_DEV,
				 strerror(err));
		bail_out("open %s: %s", KESTREL_DEV, strerror(err));
	}

	/* Every program needs VMs; find out now if another hypervisor won. */
	memset(&cvm, 0, sizeof(cvm));
	fd = ioctl(sys_fd, KESTREL_CREATE_VM, &cvm);
	if (fd < 0) {
		if (errno == EBUSY)
			skip_all("KESTREL_CREATE_VM: EBUSY: another hypervisor holds the CPU's virtualization (see dmesg)");
		bail_out("KESTREL_CREATE_VM: %s (%s)", errno_name(errno),
			 strerror(errno));
	}
	close(fd);
}

static bool selected(int nr)
{
	int i;

	if (!sel_argc)
		return true;
	for (i = 0; i < sel_argc; i++)
		if (atoi(sel_argv[i]) == nr)
			return true;
	return false;
}

/*
 * One TAP line per case, "ok N - name" as this suite always printed (the
 * name as kselftest's test_name, so "# SKIP why" follows it), then the
 * kselftest totals.  Exit status: 1 if any failed, 4 if all skipped.
 */
int test_run_all(const struct test_case *cases, int n)
{
	char name[256];
	int i;

	ksft_set_plan(n);
	for (i = 0; i < n; i++) {
		enum test_result r;

		skip_reason[0] = '\0';
		if (selected(i + 1))
			r = cases[i].fn(cases[i].arg);
		else
			r = test_skip("not selected");
		res_release_all();
		snprintf(name, sizeof(name), "- %s", cases[i].name);
		switch (r) {
		case TEST_PASS:
			ksft_test_result_code(KSFT_PASS, name, NULL);
			break;
		case TEST_SKIP:
			ksft_test_result_code(KSFT_SKIP, name, "%s",
					      skip_reason);
			break;
		default:
			ksft_test_result_code(KSFT_FAIL, name, NULL);
			break;
		}
	}
	ksft_print_cnts();
	if (ksft_get_fail_cnt())
		return KSFT_FAIL;
	if (n && ksft_get_xskip_cnt() == n)
		return KSFT_SKIP;
	return KSFT_PASS;
}

/* ---- VMs and vCPUs --------------------------------------------------- */

long check_cap(unsigned long cap)
{
	return ioctl(sys_fd, KESTREL_CHECK_CAP, cap);
}

int create_vm_fd(const char *name)
{
	struct kestrel_create_vm cvm;

	memset(&cvm, 0, sizeof(cvm));
	if (name)
		snprintf(cvm.name, sizeof(cvm.name), "%s", name);
	return res_fd(ioctl(sys_fd, KESTREL_CREATE_VM, &cvm));
}

int create_vcpu_fd(int vm_fd, unsigned long id)
{
	return res_fd(ioctl(vm_fd, KESTREL_CREATE_VCPU, id));
}

bool vm_add_slot(struct vm *vm, uint32_t slot, uint64_t gpa, void *host,
		 uint64_t size)
{
	struct kestrel_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	if (ioctl(vm->fd, KESTREL_SET_MEMORY_REGION, &r)) {
		diag("KESTREL_SET_MEMORY_REGION slot %u gpa 0x%llx size 0x%llx: %s",
		     slot, (unsigned long long)gpa, (unsigned long long)size,
		     errno_name(errno));
		return false;
	}
	return true;
}

bool vm_create(struct vm *vm, size_t mem_size)
{
	return vm_create_named(vm, "selftest", mem_size);
}

bool vm_create_named(struct vm *vm, const char *name, size_t mem_size)
{
	memset(vm, 0, sizeof(*vm));
	vm->fd = create_vm_fd(name);
	if (vm->fd < 0) {
		diag("KESTREL_CREATE_VM \"%s\": %s (%s)", name,
		     errno_name(errno), strerror(errno));
		return false;
	}
	if (!mem_size)
		return true;
	vm->mem = res_map(mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			       -1, 0), mem_size);
	if (vm->mem == MAP_FAILED) {
		diag("mmap guest memory: %s", strerror(errno));
		return false;
	}
	vm->mem_size = mem_size;
	return vm_add_slot(vm, 0, 0, vm->mem, mem_size);
}

bool vcpu_create(struct vm *vm, struct vcpu *vcpu, int id)
{
	long size;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->id = id;
	vcpu->fd = create_vcpu_fd(vm->fd, id);
	if (vcpu->fd < 0) {
		diag("KESTREL_CREATE_VCPU %d: %s (%s)", id, errno_name(errno),
		     strerror(errno));
		return false;
	}
	size = ioctl(sys_fd, KESTREL_GET_VCPU_MMAP_SIZE, 0UL);
	if (size <= 0) {
		diag("KESTREL_GET_VCPU_MMAP_SIZE: %ld (%s)", size,
		     errno_name(errno));
		return false;
	}
	vcpu->run_size = size;
	vcpu->run = res_map(mmap(NULL, size, PROT_READ | PROT_WRITE,
				 MAP_SHARED, vcpu->fd, 0), size);
	if (vcpu->run == MAP_FAILED) {
		diag("mmap vCPU %d: %s", id, strerror(errno));
		vcpu->run = NULL;
		return false;
	}
	return true;
}

bool vm_load(struct vm *vm, struct guest_image img)
{
	size_t len = img.end - img.start;

	if (len > GUEST_LOAD_MAX || GUEST_LOAD + len > vm->mem_size) {
		diag("guest %s: %zu bytes do not fit", img.name, len);
		return false;
	}
	memcpy(vm->mem + GUEST_LOAD, img.start, len);
	return true;
}

bool get_regs(struct vcpu *vcpu, struct kestrel_regs *regs)
{
	if (ioctl(vcpu->fd, KESTREL_GET_REGS, regs)) {
		diag("KESTREL_GET_REGS: %s", errno_name(errno));
		return false;
	}
	return true;
}

bool set_regs(struct vcpu *vcpu, const struct kestrel_regs *regs)
{
	if (ioctl(vcpu->fd, KESTREL_SET_REGS, regs)) {
		diag("KESTREL_SET_REGS: %s", errno_name(errno));
		return false;
	}
	return true;
}

bool get_sregs(struct vcpu *vcpu, struct kestrel_sregs *sregs)
{
	if (ioctl(vcpu->fd, KESTREL_GET_SREGS, sregs)) {
		diag("KESTREL_GET_SREGS: %s", errno_name(errno));
		return false;
	}
	return true;
}

bool set_sregs(struct vcpu *vcpu, const struct kestrel_sregs *sregs)
{
	if (ioctl(vcpu->fd, KESTREL_SET_SREGS, sregs)) {
		diag("KESTREL_SET_SREGS: %s", errno_name(errno));
		return false;
	}
	return true;
}

static bool set_entry_regs(struct vcpu *vcpu)
{
	struct kestrel_regs regs;

	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_LOAD;
	regs.rsp = GUEST_STACK_TOP;
	regs.rflags = X86_RFLAGS_FIXED;
	return set_regs(vcpu, &regs);
}

static void seg_set(struct kestrel_segment *s, uint16_t sel, uint8_t type,
		    uint32_t limit, bool big)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->type = type;
	s->limit = limit;
	s->present = 1;
	s->s = 1;
	s->db = big;
	s->g = big;
}

bool vcpu_setup_real(struct vcpu *vcpu)
{
	struct kestrel_sregs s;

	if (!get_sregs(vcpu, &s))
		return false;
	/* CS:IP = 0000:GUEST_LOAD, all segments based at 0 */
	seg_set(&s.cs, 0, 0xb, 0xffff, false);
	seg_set(&s.ds, 0, 0x3, 0xffff, false);
	s.es = s.fs = s.gs = s.ss = s.ds;
	return set_sregs(vcpu, &s) && set_entry_regs(vcpu);
}

void sregs_make_pmode(struct kestrel_sregs *s)
{
	seg_set(&s->cs, GUEST_SEL_CODE, 0xb, 0xffffffff, true);
	seg_set(&s->ds, GUEST_SEL_DATA, 0x3, 0xffffffff, true);
	s->es = s->fs = s->gs = s->ss = s->ds;
	memset(&s->gdt, 0, sizeof(s->gdt));
	s->gdt.base = GUEST_GDT;
	s->gdt.limit = 3 * 8 - 1;
	s->cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE;
	s->cr4 = 0;
	s->efer = 0;
}

void sregs_make_long(struct kestrel_sregs *s)
{
	sregs_make_pmode(s);
	s->cs.l = 1;
	s->cs.db = 0;
	s->cr0 |= X86_CR0_WP | X86_CR0_PG;
	s->cr3 = GUEST_PML4;
	s->cr4 = X86_CR4_PAE;
	s->efer = X86_EFER_LME | X86_EFER_LMA;
}

/* null, flat code (32- or 64-bit), flat data: matches sregs_make_*() */
static void write_gdt(struct vm *vm, bool long_mode)
{
	uint64_t *gdt = (uint64_t *)(vm->mem + GUEST_GDT);

	gdt[0] = 0;
	gdt[1] = long_mode ? 0x00af9b000000ffffULL : 0x00cf9b000000ffffULL;
	gdt[2] = 0x00cf93000000ffffULL;
}

void build_long_mode_tables(struct vm *vm)
{
	uint64_t *pml4 = (uint64_t *)(vm->mem + GUEST_PML4);
	uint64_t *pdpt = (uint64_t *)(vm->mem + GUEST_PDPT);
	uint64_t *pd = (uint64_t *)(vm->mem + GUEST_PD);
	int i;

	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = GUEST_PDPT | 0x3;		/* present, writable */
	pdpt[0] = GUEST_PD | 0x3;
	for (i = 0; i < 512; i++)		/* 2 MiB pages: PS */
		pd[i] = ((uint64_t)i << 21) | 0x83;
}

bool vcpu_setup_pmode(struct vm *vm, struct vcpu *vcpu)
{
	struct kestrel_sregs s;

	if (!get_sregs(vcpu, &s))
		return false;
	write_gdt(vm, false);
	sregs_make_pmode(&s);
	return set_sregs(vcpu, &s) && set_entry_regs(vcpu);
}

bool vcpu_setup_long(struct vm *vm, struct vcpu *vcpu)
{
	struct kestrel_sregs s;

	if (!get_sregs(vcpu, &s))
		return false;
	write_gdt(vm, true);
	build_long_mode_tables(vm);
	sregs_make_long(&s);
	return set_sregs(vcpu, &s) && set_entry_regs(vcpu);
}

DECLARE_GUEST(lm_mem);

bool lm_mem_setup(struct vm *vm, struct vcpu *vcpu)
{
	uint64_t *pdpt;
	int i;

	if (!vm_create(vm, GUEST_MEM_SIZE) || !vm_load(vm, GUEST(lm_mem)) ||
	    !vcpu_create(vm, vcpu, 0) || !vcpu_setup_long(vm, vcpu))
		return false;
	pdpt = (uint64_t *)(vm->mem + GUEST_PDPT);
	for (i = 0; i < 8; i++)
		pdpt[i] = ((uint64_t)i << 30) | 0x83;	/* P, RW, 1 GiB */
	return true;
}

bool lm_mem_op(struct vcpu *vcpu, uint64_t op, uint64_t addr, uint64_t val,
	       uint64_t count)
{
	struct kestrel_regs r;

	if (!get_regs(vcpu, &r))
		return false;
	r.rip = GUEST_LOAD;
	r.rdi = op;
	r.rsi = addr;
	r.rdx = val;
	r.rcx = count;
	return set_regs(vcpu, &r);
}

/* ---- running --------------------------------------------------------- */

int vcpu_run(struct vcpu *vcpu)
{
	int r, err;

	wd_arm();
	r = ioctl(vcpu->fd, KESTREL_RUN, 0UL);
	err = errno;
	wd_disarm();
	if (r < 0 && err == EINTR && wd_fired) {
		wd_fired = 0;
		diag("KESTREL_RUN did not return within %d s", run_timeout());
		dump_vcpu(vcpu);
		errno = ETIMEDOUT;
		return -1;
	}
	wd_fired = 0;
	errno = err;
	return r;
}

void dump_vcpu(struct vcpu *vcpu)
{
	struct kestrel_run *run = vcpu->run;
	struct kestrel_regs r;
	struct kestrel_sregs s;
	uint32_t i;

	if (run) {
		diag("vCPU %d: exit_reason %u (%s), exit_count %llu",
		     vcpu->id, run->exit_reason,
		     exit_reason_name(run->exit_reason),
		     (unsigned long long)run->exit_count);
		switch (run->exit_reason) {
		case KESTREL_EXIT_IO:
			diag("  io: %s port 0x%x size %u count %u data_offset 0x%llx",
			     run->io.direction == KESTREL_EXIT_IO_OUT ?
			     "OUT" : "IN", run->io.port, run->io.size,
			     run->io.count,
			     (unsigned long long)run->io.data_offset);
			if (run->io.data_offset + 4 <= vcpu->run_size) {
				uint32_t v;

				memcpy(&v, (char *)run + run->io.data_offset,
				       4);
				diag("  io data (4 bytes): 0x%08x", v);
			}
			break;
		case KESTREL_EXIT_INTERNAL_ERROR:
			diag("  internal: suberror %u ndata %u",
			     run->internal.suberror, run->internal.ndata);
			for (i = 0; i < run->internal.ndata &&
				    i < KESTREL_INTERNAL_NDATA; i++)
				diag("  data[%u] = 0x%llx", i,
				     (unsigned long long)run->internal.data[i]);
			break;
		case KESTREL_EXIT_MMIO:
			diag("  mmio: 0x%llx len %u write %u",
			     (unsigned long long)run->mmio.phys_addr,
			     run->mmio.len, run->mmio.is_write);
			break;
		case KESTREL_EXIT_MEMORY_FAULT:
			diag("  memory_fault: 0x%llx size %llu flags 0x%llx",
			     (unsigned long long)run->memory_fault.gpa,
			     (unsigned long long)run->memory_fault.size,
			     (unsigned long long)run->memory_fault.flags);
			break;
		case KESTREL_EXIT_FAIL_ENTRY:
			diag("  fail_entry: reason 0x%llx cpu %u",
			     (unsigned long long)
			     run->fail_entry.hardware_entry_failure_reason,
			     run->fail_entry.cpu);
			break;
		}
	}
	if (ioctl(vcpu->fd, KESTREL_GET_REGS, &r) == 0) {
		diag("  rip 0x%llx rflags 0x%llx rsp 0x%llx",
		     (unsigned long long)r.rip, (unsigned long long)r.rflags,
		     (unsigned long long)r.rsp);
		diag("  rax 0x%llx rbx 0x%llx rcx 0x%llx rdx 0x%llx",
		     (unsigned long long)r.rax, (unsigned long long)r.rbx,
		     (unsigned long long)r.rcx, (unsigned long long)r.rdx);
	}
	if (ioctl(vcpu->fd, KESTREL_GET_SREGS, &s) == 0)
		diag("  cs 0x%x base 0x%llx l %u db %u cr0 0x%llx cr4 0x%llx efer 0x%llx",
		     s.cs.selector, (unsigned long long)s.cs.base, s.cs.l,
		     s.cs.db, (unsigned long long)s.cr0,
		     (unsigned long long)s.cr4, (unsigned long long)s.efer);
}

bool run_expect_exit(struct vcpu *vcpu, uint32_t reason)
{
	if (vcpu_run(vcpu)) {
		if (errno != ETIMEDOUT)
			diag("KESTREL_RUN: %s (%s), want exit %s",
			     errno_name(errno), strerror(errno),
			     exit_reason_name(reason));
		return false;
	}
	if (vcpu->run->exit_reason != reason) {
		diag("exit %s, want %s",
		     exit_reason_name(vcpu->run->exit_reason),
		     exit_reason_name(reason));
		dump_vcpu(vcpu);
		return false;
	}
	return true;
}

/* Check an IO exit's shape; return where its data lives. */
static void *check_io(struct vcpu *vcpu, uint8_t dir, uint16_t port,
		      uint8_t size)
{
	struct kestrel_run *run = vcpu->run;
	uint64_t off;

	if (!run_expect_exit(vcpu, KESTREL_EXIT_IO))
		return NULL;
	if (run->io.direction != dir || run->io.port != port ||
	    run->io.size != size || run->io.count != 1) {
		diag("want %s port 0x%x size %u count 1",
		     dir == KESTREL_EXIT_IO_OUT ? "OUT" : "IN", port, size);
		dump_vcpu(vcpu);
		return NULL;
	}
	off = run->io.data_offset;
	/* The data lives in the rest of the page, past the fixed part. */
	if (off < offsetof(struct kestrel_run, data) ||
	    off + size > vcpu->run_size) {
		diag("io.data_offset 0x%llx outside [0x%zx, 0x%zx)",
		     (unsigned long long)off,
		     offsetof(struct kestrel_run, data), vcpu->run_size);
		return NULL;
	}
	return (char *)run + off;
}

bool run_expect_out(struct vcpu *vcpu, uint16_t port, uint8_t size,
		    uint32_t *val)
{
	void *data = check_io(vcpu, KESTREL_EXIT_IO_OUT, port, size);
	uint32_t v = 0;

	if (!data)
		return false;
	memcpy(&v, data, size);		/* x86: little endian */
	*val = v;
	return true;
}

bool run_expect_out64(struct vcpu *vcpu, uint16_t port, uint64_t *val)
{
	uint32_t lo, hi;

	if (!run_expect_out(vcpu, port, 4, &lo) ||
	    !run_expect_out(vcpu, port, 4, &hi))
		return false;
	*val = (uint64_t)hi << 32 | lo;
	return true;
}

bool run_expect_in(struct vcpu *vcpu, uint16_t port, uint8_t size,
		   uint32_t val)
{
	void *data = check_io(vcpu, KESTREL_EXIT_IO_IN, port, size);

	if (!data)
		return false;
	memcpy(data, &val, size);
	return true;
}

bool run_expect_hlt(struct vcpu *vcpu)
{
	return run_expect_exit(vcpu, KESTREL_EXIT_HLT);
}

/* ---- CPUID ----------------------------------------------------------- */

struct kestrel_cpuid *cpuid_alloc(uint32_t nent)
{
	struct kestrel_cpuid *c;

	c = res_alloc(sizeof(*c) + nent * sizeof(c->entries[0]));
	c->nent = nent;
	return c;
}

struct kestrel_cpuid_entry *cpuid_find(struct kestrel_cpuid *c,
				       uint32_t function, uint32_t index)
{
	uint32_t i;

	for (i = 0; i < c->nent; i++) {
		struct kestrel_cpuid_entry *e = &c->entries[i];

		if (e->function != function)
			continue;
		if ((e->flags & KESTREL_CPUID_FLAG_SIGNIFICANT_INDEX) &&
		    e->index != index)
			continue;
		return e;
	}
	return NULL;
}

/* GET a table from @fd with @cmd, growing it once on E2BIG. */
static struct kestrel_cpuid *get_cpuid_table(int fd, unsigned long cmd,
					     const char *what)
{
	long cap = check_cap(KESTREL_CAP_MAX_CPUID);
	uint32_t nent = cap > 0 ? cap : 256;
	struct kestrel_cpuid *c;

	c = cpuid_alloc(nent);
	if (!ioctl(fd, cmd, c))
		return c;
	if (errno == E2BIG && c->nent > nent) {
		nent = c->nent;
		c = cpuid_alloc(nent);
		if (!ioctl(fd, cmd, c))
			return c;
	}
	diag("%s: %s (%s)", what, errno_name(errno), strerror(errno));
	return NULL;
}

struct kestrel_cpuid *get_supported_cpuid(void)
{
	return get_cpuid_table(sys_fd, KESTREL_GET_SUPPORTED_CPUID,
			       "KESTREL_GET_SUPPORTED_CPUID");
}

struct kestrel_cpuid *get_vcpu_cpuid(struct vcpu *vcpu)
{
	return get_cpuid_table(vcpu->fd, KESTREL_GET_CPUID,
			       "KESTREL_GET_CPUID");
}

/* ---- misc ------------------------------------------------------------ */

bool start_thread(void *(*fn)(void *), void *arg, pthread_t *thread)
{
	sigset_t all, old;
	int err;

	/* The new thread inherits the mask: block everything around it. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		diag("pthread_create: %s", strerror(err));
		return false;
	}
	return true;
}

void msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

bool write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok;
}

bool load_stock_modules(const char *dir,
			const char *(*params_of)(const char *name))
{
	char path[256], name[64];
	bool ok = true;
	FILE *order;

	snprintf(path, sizeof(path), "%s/order", dir);
	order = fopen(path, "re");
	if (!order) {
		diag("no %s: %s", path, strerror(errno));
		return false;
	}
	while (ok && fscanf(order, "%63s", name) == 1) {
		const char *params = params_of ? params_of(name) : "";
		int fd;

		snprintf(path, sizeof(path), "%s/%s.ko", dir, name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || (syscall(SYS_finit_module, fd, params, 0) &&
			       errno != EEXIST)) {
			diag("loading %s: %s", path, strerror(errno));
			ok = false;
		}
		if (fd >= 0)
			close(fd);
	}
	fclose(order);
	return ok;
}
