// SPDX-License-Identifier: GPL-2.0
/*
 * Races between slot changes and the nested faults and vCPUs that use the
 * slot.
 *
 * A nested fault samples the slot, drops vm->mmu_lock and asks the host
 * memory manager for the page.  userfaultfd on the slot's memory holds it
 * there for as long as the test likes: the handler thread reports the
 * fault, waits until the test has changed the slot (delete, move,
 * READONLY on and off, dirty logging on and off, delete and re-create),
 * and only then supplies the page (UFFDIO_COPY or UFFDIO_ZEROPAGE).  The
 * guest-visible result must be that of the new slot: no store lands in a
 * read-only slot (a KESTREL_EXIT_MMIO exit instead), every page written
 * once logging is on is in the log, a deleted or moved slot gives MMIO
 * exits at its old address, and the host survives.
 *
 * Then vCPUs created and started on one thread while another deletes the
 * slot they read, or fetches its dirty log: every vCPU that runs must get
 * the kick (TLB flush) that goes with it, also one whose fd is brand new.
 *
 * Guests: lm_mem (one operation per RUN) and lm_reader (a copy loop).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib.h"

DECLARE_GUEST(lm_reader);

#define OP_READ		1
#define OP_WRITE	2

#define GPA_HIGH	0x40000000ULL	/* 1 GiB: slot 1 */
#define GPA_MOVED	(GPA_HIGH + (1 << 20))
#define SLOT_PAGES	16
#define SLOT_SIZE	(SLOT_PAGES * 4096ULL)
#define REPEATS		3
#define GATE_TIMEOUT	10		/* s: a fault that never comes */
#define FILL		0x5a5a5a5a5a5a5a5aULL

struct env {
	struct vm vm;
	struct vcpu vcpu;
	uint64_t *mem;			/* slot 1's memory, uffd-registered */
	int uffd;
};

/* ---- the userfaultfd gate --------------------------------------------------- */

struct gate {
	int uffd;
	bool zeropage;			/* resolve with zeros, else FILL */
	uint64_t addr;			/* where the fault was */
	sem_t faulted, release, done;
	bool ok;
};

static bool sem_wait_s(sem_t *s, int secs)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs;
	while (sem_timedwait(s, &ts))
		if (errno != EINTR)
			return false;
	return true;
}

/*
 * Take one missing-page fault, report it, wait for the test's go (or a
 * timeout: never leave the faulting thread stuck), then fill the page.
 * The thread lives on until the test is done with the fault: a thread's
 * exit frees its stack with MADV_DONTNEED, an MMU-notifier invalidation
 * that would make the held fault retry for a reason of its own.
 */
static void *gate_thread(void *p)
{
	struct gate *g = p;
	struct pollfd pfd = { .fd = g->uffd, .events = POLLIN };
	struct uffd_msg msg;
	uint64_t page;

	g->ok = false;
	if (poll(&pfd, 1, GATE_TIMEOUT * 1000) != 1 ||
	    read(g->uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT) {
		sem_post(&g->faulted);
		return NULL;
	}
	g->addr = msg.arg.pagefault.address;
	page = g->addr & ~(uint64_t)(page_size - 1);
	g->ok = true;
	sem_post(&g->faulted);
	sem_wait_s(&g->release, GATE_TIMEOUT);

	if (g->zeropage) {
		struct uffdio_zeropage z = {
			.range = { .start = page, .len = page_size },
		};

		if (ioctl(g->uffd, UFFDIO_ZEROPAGE, &z))
			g->ok = false;
	} else {
		static uint64_t src[512] __attribute__((aligned(4096)));
		struct uffdio_copy c = {
			.dst = page, .src = (uintptr_t)src, .len = page_size,
		};
		int i;

		for (i = 0; i < 512; i++)
			src[i] = FILL;
		if (ioctl(g->uffd, UFFDIO_COPY, &c))
			g->ok = false;
	}
	sem_wait_s(&g->done, 2 * GATE_TIMEOUT);
	return NULL;
}

/* ---- the VM ------------------------------------------------------------------- */

static bool set_slot1(struct env *e, uint64_t gpa, uint64_t size,
		      uint32_t flags)
{
	struct kestrel_memory_region mr = {
		.slot = 1, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (uintptr_t)e->mem,
	};

	if (ioctl(e->vm.fd, KESTREL_SET_MEMORY_REGION, &mr)) {
		diag("SET_MEMORY_REGION gpa 0x%llx size 0x%llx flags %u: %s",
		     (unsigned long long)gpa, (unsigned long long)size, flags,
		     errno_name(errno));
		return false;
	}
	return true;
}

/* lm_mem with 1 GiB pages over 0..8 GiB, slot 1 at GPA_HIGH with @flags. */
static bool env_init(struct env *e, uint32_t flags)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	void *p;

	if (!lm_mem_setup(&e->vm, &e->vcpu))
		return false;

	p = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		diag("mmap: %s", strerror(errno));
		return false;
	}
	e->mem = res_map(p, SLOT_SIZE);
	e->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (e->uffd < 0) {
		diag("userfaultfd: %s", strerror(errno));
		return false;
	}
	res_fd(e->uffd);
	if (ioctl(e->uffd, UFFDIO_API, &api)) {
		diag("UFFDIO_API: %s", strerror(errno));
		return false;
	}
	reg = (struct uffdio_register){
		.range = { .start = (uintptr_t)p, .len = SLOT_SIZE },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(e->uffd, UFFDIO_REGISTER, &reg)) {
		diag("UFFDIO_REGISTER: %s", strerror(errno));
		return false;
	}
	return set_slot1(e, GPA_HIGH, SLOT_SIZE, flags);
}

/* OP_READ and OP_WRITE: lm_mem's count (rcx) is unused. */
static bool guest_set_op(struct env *e, uint64_t op, uint64_t addr,
			 uint64_t val)
{
	return lm_mem_op(&e->vcpu, op, addr, val, 0);
}

static bool g_write(struct env *e, uint64_t gpa, uint64_t val)
{
	return guest_set_op(e, OP_WRITE, gpa, val) && run_expect_hlt(&e->vcpu);
}

static bool g_read(struct env *e, uint64_t gpa, uint64_t *val)
{
	return guest_set_op(e, OP_READ, gpa, 0) &&
	       run_expect_out64(&e->vcpu, PORT_U32, val) &&
	       run_expect_hlt(&e->vcpu);
}

/* A store that must not reach memory: an MMIO exit with its data. */
static bool g_write_mmio(struct env *e, uint64_t gpa, uint64_t val)
{
	struct kestrel_run *run = e->vcpu.run;

	if (!guest_set_op(e, OP_WRITE, gpa, val) ||
	    !run_expect_exit(&e->vcpu, KESTREL_EXIT_MMIO))
		return false;
	if (run->mmio.phys_addr != gpa || !run->mmio.is_write ||
	    run->mmio.len != 8 || *(uint64_t *)run->mmio.data != val) {
		diag("MMIO exit: gpa 0x%llx write %u len %u",
		     (unsigned long long)run->mmio.phys_addr,
		     run->mmio.is_write, run->mmio.len);
		return false;
	}
	return run_expect_hlt(&e->vcpu);
}

static bool g_read_mmio(struct env *e, uint64_t gpa)
{
	struct kestrel_run *run = e->vcpu.run;

	if (!guest_set_op(e, OP_READ, gpa, 0) ||
	    !run_expect_exit(&e->vcpu, KESTREL_EXIT_MMIO))
		return false;
	if (run->mmio.phys_addr != gpa || run->mmio.is_write) {
		diag("MMIO exit: gpa 0x%llx write %u",
		     (unsigned long long)run->mmio.phys_addr,
		     run->mmio.is_write);
		return false;
	}
	return true;
}

static bool get_log(struct env *e, uint64_t *bitmap)
{
	struct kestrel_dirty_log log = { .slot = 1,
					 .bitmap = (uintptr_t)bitmap };

	if (ioctl(e->vm.fd, KESTREL_GET_DIRTY_LOG, &log)) {
		diag("KESTREL_GET_DIRTY_LOG: %s", errno_name(errno));
		return false;
	}
	return true;
}

/* ---- one gated fault ------------------------------------------------------------ */

struct gated_run {
	struct env *e;
	int r, err;
};

static void *run_thread(void *p)
{
	struct gated_run *g = p;
	sigset_t none;

	/* start_thread() blocked every signal: the watchdog needs its own. */
	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	g->r = vcpu_run(&g->e->vcpu);
	g->err = errno;
	return NULL;
}

enum transition {
	T_DELETE, T_MOVE, T_RO_ON, T_RO_OFF, T_LOG_ON, T_LOG_OFF, T_RECREATE_RO,
};

static const char *const transition_names[] = {
	"delete", "move", "READONLY on", "READONLY off", "logging on",
	"logging off", "delete and re-create read-only",
};

static bool do_transition(struct env *e, enum transition t)
{
	switch (t) {
	case T_DELETE:
		return set_slot1(e, GPA_HIGH, 0, 0);
	case T_MOVE:
		return set_slot1(e, GPA_MOVED, SLOT_SIZE, 0);
	case T_RO_ON:
		return set_slot1(e, GPA_HIGH, SLOT_SIZE, KESTREL_MEM_READONLY);
	case T_RO_OFF:
		return set_slot1(e, GPA_HIGH, SLOT_SIZE, 0);
	case T_LOG_ON:
		return set_slot1(e, GPA_HIGH, SLOT_SIZE,
				 KESTREL_MEM_LOG_DIRTY_PAGES);
	case T_LOG_OFF:
		return set_slot1(e, GPA_HIGH, SLOT_SIZE, 0);
	case T_RECREATE_RO:
		return set_slot1(e, GPA_HIGH, 0, 0) &&
		       set_slot1(e, GPA_HIGH, SLOT_SIZE, KESTREL_MEM_READONLY);
	}
	return false;
}

static uint32_t initial_flags(enum transition t)
{
	if (t == T_RO_OFF)
		return KESTREL_MEM_READONLY;
	if (t == T_LOG_OFF)
		return KESTREL_MEM_LOG_DIRTY_PAGES;
	return 0;
}

/*
 * Start the guest's access to @page of slot 1 on another thread, hold its
 * nested fault in the owner's page fault, change the slot, let the fault
 * go, and check what the guest saw.
 */
static enum test_result one_round(enum transition t, int round)
{
	uint64_t gpa, bitmap, v, val = 0x1234000000ULL + round;
	struct kestrel_run *run;
	struct gated_run gr;
	struct gate g = { 0 };
	pthread_t gt, rt;
	bool read = t == T_RO_OFF;	/* a read-only slot is read */
	int page = 3 + round;
	struct env e;

	CHECK_H(env_init(&e, initial_flags(t)));
	run = e.vcpu.run;
	gpa = GPA_HIGH + page * 4096ULL;
	g.uffd = e.uffd;
	/*
	 * A store needs a page of its own: a zero page would be copied on
	 * write inside the fault, an invalidation that makes the fault
	 * retry anyway and hides what this checks.  Reads take both.
	 */
	g.zeropage = read && (round & 1);
	CHECK_OK(sem_init(&g.faulted, 0, 0));
	CHECK_OK(sem_init(&g.release, 0, 0));
	CHECK_OK(sem_init(&g.done, 0, 0));

	CHECK_H(guest_set_op(&e, read ? OP_READ : OP_WRITE, gpa, val));
	gr.e = &e;
	CHECK(start_thread(gate_thread, &g, &gt));
	CHECK(start_thread(run_thread, &gr, &rt));
	if (!sem_wait_s(&g.faulted, GATE_TIMEOUT) || !g.ok) {
		sem_post(&g.release);
		pthread_join(rt, NULL);
		sem_post(&g.done);
		pthread_join(gt, NULL);
		diag("the guest's access never reached userfaultfd");
		return TEST_FAIL;
	}
	if (g.addr != (uintptr_t)e.mem + page * 4096ULL) {
		diag("fault at 0x%llx, want 0x%llx",
		     (unsigned long long)g.addr,
		     (unsigned long long)((uintptr_t)e.mem + page * 4096ULL));
		sem_post(&g.release);
		pthread_join(rt, NULL);
		sem_post(&g.done);
		pthread_join(gt, NULL);
		return TEST_FAIL;
	}
	/* The fault sits in the owner's page fault: change the slot now. */
	if (!do_transition(&e, t)) {
		sem_post(&g.release);
		pthread_join(rt, NULL);
		sem_post(&g.done);
		pthread_join(gt, NULL);
		return TEST_FAIL;
	}
	sem_post(&g.release);
	pthread_join(rt, NULL);
	sem_post(&g.done);
	pthread_join(gt, NULL);
	CHECK(g.ok);
	if (gr.r < 0) {
		diag("KESTREL_RUN: %s", errno_name(gr.err));
		return TEST_FAIL;
	}

	switch (t) {
	case T_DELETE:
	case T_MOVE:
		/* The store met no RAM at the old address: MMIO. */
		CHECK_EQ(run->exit_reason, KESTREL_EXIT_MMIO);
		CHECK_EQ(run->mmio.phys_addr, gpa);
		CHECK_EQ(run->mmio.is_write, 1);
		CHECK_H(run_expect_hlt(&e.vcpu));
		CHECK_EQ(e.mem[page * 512], g.zeropage ? 0 : FILL);
		CHECK_H(g_read_mmio(&e, gpa));
		if (t == T_MOVE) {
			CHECK_H(g_read(&e, GPA_MOVED + page * 4096ULL, &v));
			CHECK_EQ(v, g.zeropage ? 0 : FILL);
		}
		break;
	case T_RO_ON:
	case T_RECREATE_RO:
		/* No store lands in a read-only slot, then or later. */
		CHECK_EQ(run->exit_reason, KESTREL_EXIT_MMIO);
		CHECK_EQ(run->mmio.phys_addr, gpa);
		CHECK_EQ(run->mmio.is_write, 1);
		CHECK_EQ(*(uint64_t *)run->mmio.data, val);
		CHECK_H(run_expect_hlt(&e.vcpu));
		CHECK_EQ(e.mem[page * 512], g.zeropage ? 0 : FILL);
		CHECK_H(g_write_mmio(&e, gpa, val + 1));
		CHECK_EQ(e.mem[page * 512], g.zeropage ? 0 : FILL);
		CHECK_H(g_read(&e, gpa, &v));
		CHECK_EQ(v, g.zeropage ? 0 : FILL);
		break;
	case T_RO_OFF:
		/* The read completes; the slot takes stores now. */
		CHECK_EQ(run->exit_reason, KESTREL_EXIT_IO);
		CHECK_EQ(run->io.port, PORT_U32);
		CHECK_EQ(*(uint32_t *)((uint8_t *)run + run->io.data_offset),
			 (uint32_t)(g.zeropage ? 0 : FILL));
		CHECK_H(run_expect_out(&e.vcpu, PORT_U32, 4, (uint32_t *)&v));
		CHECK_H(run_expect_hlt(&e.vcpu));
		CHECK_H(g_write(&e, gpa, val));
		CHECK_EQ(e.mem[page * 512], val);
		break;
	case T_LOG_ON:
		/* Written after logging began: in the log. */
		CHECK_EQ(run->exit_reason, KESTREL_EXIT_HLT);
		CHECK_EQ(e.mem[page * 512], val);
		CHECK_H(get_log(&e, &bitmap));
		CHECK_EQ(bitmap, 1ULL << page);
		/* And logged again when written again. */
		CHECK_H(g_write(&e, gpa, val + 1));
		CHECK_H(get_log(&e, &bitmap));
		CHECK_EQ(bitmap, 1ULL << page);
		break;
	case T_LOG_OFF:
		/* The store lands; there is no log, and nothing broke. */
		CHECK_EQ(run->exit_reason, KESTREL_EXIT_HLT);
		CHECK_EQ(e.mem[page * 512], val);
		CHECK_ERR(ioctl(e.vm.fd, KESTREL_GET_DIRTY_LOG,
				&(struct kestrel_dirty_log){
					.slot = 1, .bitmap = (uintptr_t)&bitmap }),
			  EINVAL);
		CHECK_H(set_slot1(&e, GPA_HIGH, SLOT_SIZE,
				  KESTREL_MEM_LOG_DIRTY_PAGES));
		CHECK_H(g_write(&e, gpa, val + 1));
		CHECK_H(get_log(&e, &bitmap));
		CHECK_EQ(bitmap, 1ULL << page);
		break;
	}
	sem_destroy(&g.faulted);
	sem_destroy(&g.release);
	sem_destroy(&g.done);
	return TEST_PASS;
}

static enum test_result test_transition(const void *arg)
{
	enum transition t = (enum transition)(uintptr_t)arg;
	int round;

	for (round = 0; round < REPEATS; round++) {
		enum test_result r = one_round(t, round);

		if (r != TEST_PASS) {
			diag("%s, round %d", transition_names[t], round);
			return r;
		}
	}
	return TEST_PASS;
}

/* ---- vCPUs created while slots change ---------------------------------------------- */

#define KICK_VCPUS	6
#define KICK_ROUNDS	8
#define OLD_VAL		0x1111111111111111ULL
#define NEW_VAL		0x2222222222222222ULL
#define REC(vm, i)	((volatile uint64_t *)((vm)->mem + GUEST_DATA + 16 * (i)))

struct kick_env {
	struct vm vm;
	uint64_t *mem;			/* slot 1: one page */
	struct vcpu vcpus[KICK_VCPUS];
	pthread_t runners[KICK_VCPUS];
	int runner_r[KICK_VCPUS], runner_err[KICK_VCPUS];
	atomic_int created;
	bool create_ok;
	bool dirty;			/* the slot logs: fetch, do not delete */
	atomic_bool stop;
};

struct runner_arg {
	struct kick_env *k;
	int i;
};

static struct runner_arg runner_args[KICK_VCPUS];

static void nop_handler(int sig)
{
	(void)sig;
}

static void *runner_thread(void *p)
{
	struct runner_arg *a = p;
	struct kick_env *k = a->k;
	struct vcpu *v = &k->vcpus[a->i];
	sigset_t none;

	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	/* Until the slot goes (an MMIO exit), or the test stops it. */
	do {
		k->runner_r[a->i] = vcpu_run(v);
		k->runner_err[a->i] = errno;
	} while (k->runner_r[a->i] < 0 && k->runner_err[a->i] == EINTR &&
		 !atomic_load(&k->stop));
	return NULL;
}

/* Create each vCPU and start it at once, on its own thread. */
static void *creator_thread(void *p)
{
	struct kick_env *k = p;
	struct kestrel_sregs sr;
	struct kestrel_regs r;
	int i;

	k->create_ok = false;
	for (i = 0; i < KICK_VCPUS; i++) {
		struct vcpu *v = &k->vcpus[i];

		/* The tables are built once: vCPUs run while others start. */
		if (!vcpu_create(&k->vm, v, i) || !get_sregs(v, &sr))
			return NULL;
		sregs_make_long(&sr);
		if (!set_sregs(v, &sr))
			return NULL;
		memset(&r, 0, sizeof(r));
		r.rflags = X86_RFLAGS_FIXED;
		r.rsp = GUEST_STACK_TOP;
		r.rip = GUEST_LOAD;
		if (k->dirty) {
			r.rsi = GUEST_DATA + 16 * i;
			r.rdx = GPA_HIGH + 4096ULL * i;
		} else {
			r.rsi = GPA_HIGH;
			r.rdx = GUEST_DATA + 16 * i;
		}
		if (!set_regs(v, &r))
			return NULL;
		runner_args[i] = (struct runner_arg){ k, i };
		if (!start_thread(runner_thread, &runner_args[i],
				  &k->runners[i]))
			return NULL;
		atomic_store(&k->created, i + 1);
	}
	k->create_ok = true;
	return NULL;
}

static void stop_runners(struct kick_env *k, int n)
{
	int i;

	atomic_store(&k->stop, true);
	for (i = 0; i < n; i++) {
		k->vcpus[i].run->immediate_exit = 1;
		pthread_kill(k->runners[i], SIGUSR1);
	}
	for (i = 0; i < n; i++)
		pthread_join(k->runners[i], NULL);
}

/* What vcpu_setup_long() writes, once, with 1 GiB pages over 0..8 GiB. */
static void kick_tables(struct vm *vm)
{
	uint64_t *gdt = (uint64_t *)(vm->mem + GUEST_GDT);
	uint64_t *pdpt = (uint64_t *)(vm->mem + GUEST_PDPT);
	int i;

	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffULL;		/* 64-bit flat code */
	gdt[2] = 0x00cf93000000ffffULL;		/* flat data */
	build_long_mode_tables(vm);
	for (i = 0; i < 8; i++)
		pdpt[i] = ((uint64_t)i << 30) | 0x83;	/* P, RW, 1 GiB */
}

/*
 * Delete: the vCPUs read slot 1 and copy what they read to their record in
 * slot 0.  Once the delete returns, the memory behind the old slot gets a
 * new value: a vCPU that still reads it, through a translation the kick
 * should have flushed, copies the new value.
 *
 * Dirty log: vCPU i writes page i of slot 1, for ever.  Once a fetch
 * returns, every page is write-protected; a vCPU that keeps writing
 * through a cached writable translation changes its page without
 * logging it.  So a page whose contents change after a fetch must be in
 * the next one.
 */
static enum test_result kick_round(bool dirty, int round)
{
	struct sigaction sa = { .sa_handler = nop_handler };
	struct kestrel_memory_region mr;
	struct kick_env *k = res_alloc(sizeof(*k));
	struct env log_env;
	uint64_t bitmap, before[KICK_VCPUS], after[KICK_VCPUS];
	size_t size = dirty ? KICK_VCPUS * 4096 : 4096;
	volatile uint64_t *counter;
	pthread_t ct;
	int i, j, n;

	memset(k, 0, sizeof(*k));
	k->dirty = dirty;
	CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
	CHECK_H(vm_create(&k->vm, GUEST_MEM_SIZE));
	CHECK_H(vm_load(&k->vm, GUEST(lm_reader)));
	kick_tables(&k->vm);
	k->mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(k->mem != MAP_FAILED);
	res_map(k->mem, size);
	k->mem[0] = OLD_VAL;
	mr = (struct kestrel_memory_region){
		.slot = 1, .guest_phys_addr = GPA_HIGH, .memory_size = size,
		.userspace_addr = (uintptr_t)k->mem,
		.flags = dirty ? KESTREL_MEM_LOG_DIRTY_PAGES : 0,
	};
	CHECK_OK(ioctl(k->vm.fd, KESTREL_SET_MEMORY_REGION, &mr));
	CHECK(start_thread(creator_thread, k, &ct));

	/* Let a varying number of vCPUs start before the change. */
	while (atomic_load(&k->created) < 1 + round % KICK_VCPUS)
		sched_yield();
	/* Wait until the first one runs its loop. */
	counter = dirty ? (volatile uint64_t *)k->mem + 1 : REC(&k->vm, 0) + 1;
	for (i = 0; i < 2000 && !*counter; i++)
		msleep(1);
	if (!*counter) {
		diag("vCPU 0 never ran its loop");
		pthread_join(ct, NULL);
		stop_runners(k, atomic_load(&k->created));
		return TEST_FAIL;
	}

	if (!dirty) {
		mr.memory_size = 0;
		if (ioctl(k->vm.fd, KESTREL_SET_MEMORY_REGION, &mr)) {
			diag("delete: %s", errno_name(errno));
			pthread_join(ct, NULL);
			stop_runners(k, atomic_load(&k->created));
			return TEST_FAIL;
		}
		/* The old memory is the owner's again: give it a new value. */
		__atomic_store_n(&k->mem[0], NEW_VAL, __ATOMIC_SEQ_CST);
		pthread_join(ct, NULL);
		n = atomic_load(&k->created);
		/* Every vCPU ends in an MMIO exit at the deleted address. */
		for (i = 0; i < n; i++)
			pthread_join(k->runners[i], NULL);
		CHECK(k->create_ok);
		for (i = 0; i < n; i++) {
			struct kestrel_run *run = k->vcpus[i].run;

			if (k->runner_r[i] < 0) {
				diag("vCPU %d: KESTREL_RUN %s", i,
				     errno_name(k->runner_err[i]));
				return TEST_FAIL;
			}
			CHECK_EQ(run->exit_reason, KESTREL_EXIT_MMIO);
			CHECK_EQ(run->mmio.phys_addr, GPA_HIGH);
			if (REC(&k->vm, i)[0] == NEW_VAL) {
				diag("vCPU %d read the deleted slot", i);
				return TEST_FAIL;
			}
		}
		return TEST_PASS;
	}

	/* Fetch while vCPUs are still being created, and after. */
	log_env.vm = k->vm;
	for (j = 0; j < 20; j++) {
		if (!get_log(&log_env, &bitmap))
			break;
		for (i = 0; i < KICK_VCPUS; i++)
			before[i] = ((volatile uint64_t *)k->mem)[i * 512 + 1];
		msleep(5);
		/* Changed before this fetch began: written since the last. */
		for (i = 0; i < KICK_VCPUS; i++)
			after[i] = ((volatile uint64_t *)k->mem)[i * 512 + 1];
		if (!get_log(&log_env, &bitmap))
			break;
		for (i = 0; i < KICK_VCPUS; i++)
			if (after[i] != before[i] && !(bitmap & (1ULL << i))) {
				diag("page %d written after a fetch, not logged",
				     i);
				j = -1;
				break;
			}
		if (j < 0)
			break;
	}
	pthread_join(ct, NULL);
	n = atomic_load(&k->created);
	stop_runners(k, n);
	CHECK(k->create_ok);
	CHECK(j == 20);
	for (i = 0; i < n; i++) {
		if (k->runner_r[i] >= 0 || k->runner_err[i] != EINTR) {
			diag("vCPU %d: KESTREL_RUN %d (%s), exit %u", i,
			     k->runner_r[i], errno_name(k->runner_err[i]),
			     k->vcpus[i].run->exit_reason);
			return TEST_FAIL;
		}
	}
	return TEST_PASS;
}

static enum test_result test_kick(const void *arg)
{
	bool dirty = arg != NULL;
	int round;

	for (round = 0; round < KICK_ROUNDS; round++) {
		enum test_result r = kick_round(dirty, round);

		if (r != TEST_PASS) {
			diag("round %d", round);
			return r;
		}
	}
	return TEST_PASS;
}

/*
 * CREATE_VCPU against CREATE_IRQCHIP on a fresh VM: one of them goes
 * first.  CREATE_VCPU must succeed either way (uapi.rst lists no EBUSY for
 * it); CREATE_IRQCHIP succeeds or, once a vCPU is being created, EBUSY.
 */
struct irqchip_race {
	int vm_fd;
	atomic_int go;
	atomic_int started;
	long ret;
	int err;
};

static void *irqchip_race_vcpu(void *arg)
{
	struct irqchip_race *x = arg;

	while (!atomic_load(&x->go))
		;
	atomic_store(&x->started, 1);
	x->ret = ioctl(x->vm_fd, KESTREL_CREATE_VCPU, 0UL);
	x->err = errno;
	return NULL;
}

static enum test_result test_irqchip_race(const void *arg)
{
	int round, ebusy = 0, chip = 0;

	(void)arg;

	for (round = 0; round < 300; round++) {
		struct irqchip_race x = { .vm_fd = create_vm_fd(NULL) };
		pthread_t t;
		volatile int spin;
		long r;
		int err;

		if (x.vm_fd < 0)
			return TEST_FAIL;

		pthread_create(&t, NULL, irqchip_race_vcpu, &x);
		atomic_store(&x.go, 1);
		/* CREATE_IRQCHIP from just before to well into the creation. */
		while (!atomic_load(&x.started))
			;
		for (spin = 0; spin < (round % 30) * 200; spin++)
			;
		r = ioctl(x.vm_fd, KESTREL_CREATE_IRQCHIP, 0UL);
		err = errno;
		pthread_join(t, NULL);
		if (x.ret < 0) {
			diag("round %d: CREATE_VCPU: %s", round,
			     errno_name(x.err));
			return TEST_FAIL;
		}
		if (r < 0 && err != EBUSY) {
			diag("round %d: CREATE_IRQCHIP: %s", round,
			     errno_name(err));
			return TEST_FAIL;
		}
		ebusy += r < 0;
		chip += r == 0;
		res_close((int)x.ret);
		res_close(x.vm_fd);
	}
	diag("CREATE_IRQCHIP: %d first, %d EBUSY", chip, ebusy);
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "CREATE_VCPU racing CREATE_IRQCHIP never fails", test_irqchip_race,
	  NULL },
	{ "fault held open across a slot delete", test_transition,
	  (void *)T_DELETE },
	{ "fault held open across a slot move", test_transition,
	  (void *)T_MOVE },
	{ "fault held open across READONLY on", test_transition,
	  (void *)T_RO_ON },
	{ "fault held open across READONLY off", test_transition,
	  (void *)T_RO_OFF },
	{ "fault held open across dirty logging on", test_transition,
	  (void *)T_LOG_ON },
	{ "fault held open across dirty logging off", test_transition,
	  (void *)T_LOG_OFF },
	{ "fault held open across delete and re-create read-only",
	  test_transition, (void *)T_RECREATE_RO },
	{ "vCPUs created and run while their slot is deleted",
	  test_kick, NULL },
	{ "vCPUs created and run while their slot's log is fetched",
	  test_kick, (void *)1 },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
