// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded, structure-aware ioctl fuzzer for /dev/kestrel, on the kernel's
 * kselftest_harness.h.  Three tests share the time budget:
 *
 *   fuzz.ioctls   one thread: every ioctl of uapi/linux/kestrel.h on the
 *                 system, VM and vCPU fds, with valid-ish structures whose
 *                 fields are mutated to boundary and random values, bad,
 *                 unmapped, read-only and straddling pointers, huge sizes,
 *                 fds closed and run pages unmapped between calls, calls
 *                 from a forked child (EIO), and random ioctl numbers;
 *   fuzz.guest    guests made of random bytes in real, protected and long
 *                 mode, entered with random and mutated REGS/SREGS, and
 *                 every exit answered as a VMM would (IN, MMIO, MSR data);
 *   fuzz.threads  the ioctls test in several threads on the same fds.
 *
 * Every RUN is bounded by a per-thread timer that signals the thread (so
 * RUN returns EINTR); a monitor fails the test when a RUN outlives it by
 * far.  A test fails on an errno Documentation/uapi.rst does not give for
 * that ioctl (or the general rules: EFAULT, ENOTTY, EBADF), on a signal
 * (the harness reports it), or on a hung RUN; scripts/check.sh judges the
 * kernel log.
 *
 *   KESTREL_FUZZ_SECONDS=30   the whole budget, split over the three tests
 *   KESTREL_FUZZ_SEED=N       reproduce a run (the seed is printed first)
 *   KESTREL_FUZZ_THREADS=3    threads of fuzz.threads
 *   KESTREL_FUZZ_VERBOSE=1    print every operation before doing it
 *
 * A seed replays the same sequence of operations in fuzz.ioctls and
 * fuzz.guest; fuzz.threads replays each thread's sequence, not their
 * interleaving.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "lib.h"
#include "kselftest_harness.h"

#define F_VMS		3
#define F_VCPUS		6
#define F_MEM		(4UL << 20)	/* guest RAM shared by every VM */
#define RUN_WD_MS	200		/* the RUN watchdog */
#define RUN_HUNG_S	10		/* RUN still there this long: hung */
#define MAX_THREADS	8
#define MAX_REPORTS	20

static uint64_t fuzz_seed;
static unsigned int opt_seconds = 30;
static unsigned int opt_threads = 3;
static bool opt_verbose;
static long run_size;

/* ---- randomness ------------------------------------------------------- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool one_in(struct rng *r, unsigned int n)
{
	return below(r, n) == 0;
}

/* A value a careless kernel mishandles: boundaries more often than not. */
static uint64_t rnd_val(struct rng *r)
{
	static const uint64_t edge[] = {
		0, 1, 2, 3, 7, 15, 16, 63, 64, 255, 256, 511, 512, 4095, 4096,
		4097, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000,
		0xfffff000, 0xffffffff, 0x100000000ULL, 0xfee00000,
		1ULL << 31, 1ULL << 40, 1ULL << 46, 1ULL << 47, 1ULL << 48,
		(1ULL << 48) - 4096, (1ULL << 52) - 1, 1ULL << 63,
		0x7fffffffffffffffULL, 0x8000000000000000ULL,
		0xffff800000000000ULL, 0xffffffff80000000ULL,
		0xfffffffffffff000ULL, ~0ULL, ~0ULL - 1,
	};
	uint64_t v;

	switch (below(r, 6)) {
	case 0:
	case 1:
		return edge[below(r, ARRAY_SIZE(edge))];
	case 2:
		v = edge[below(r, ARRAY_SIZE(edge))];
		return v + below(r, 3) - 1;
	case 3:
		return below(r, 1024);
	case 4:
		return rnd(r) & ~0xfffULL;
	default:
		return rnd(r);
	}
}

static void rnd_fill(struct rng *r, void *p, size_t len)
{
	uint8_t *b = p;

	while (len >= 8) {
		uint64_t v = rnd(r);

		memcpy(b, &v, 8);
		b += 8;
		len -= 8;
	}
	while (len--)
		*b++ = rnd(r);
}

/* Flip, set or clear a few bits or bytes of a structure. */
static void mutate(struct rng *r, void *p, size_t len)
{
	uint8_t *b = p;
	unsigned int n = 1 + below(r, 4), i;

	for (i = 0; i < n && len; i++) {
		size_t at = below(r, len);

		switch (below(r, 4)) {
		case 0:
			b[at] ^= 1 << below(r, 8);
			break;
		case 1:
			b[at] = rnd(r);
			break;
		case 2:
			b[at] = one_in(r, 2) ? 0 : 0xff;
			break;
		default:
			if (at + 8 <= len) {
				uint64_t v = rnd_val(r);

				memcpy(b + at, &v, 8);
			}
			break;
		}
	}
}

/* ---- what the fuzzer plays with ---------------------------------------- */

struct fvcpu {
	pthread_mutex_t lock;		/* the run page: run, and using it */
	int fd;
	struct kestrel_run *run;
	/*
	 * Blind RUNs (without the lock) in flight, and started: a RUN under
	 * the lock judges exit_reason only if none was in flight when it
	 * began and none started until it read the reason, since the
	 * kernel resets it to UNKNOWN when a RUN starts.
	 */
	atomic_int blind_inflight;
	atomic_uint blind_seq;
};

struct pool {
	pthread_mutex_t lock;		/* the fd numbers below */
	int sys_fd;
	int vm[F_VMS];
	struct fvcpu vcpu[F_VCPUS];
	uint8_t *mem;			/* F_MEM of guest RAM, read-write */
	uint8_t *ro;			/* a read-only page */
	uint8_t *hole;			/* an unmapped page */
	uint8_t *none;			/* a PROT_NONE page */
	uint8_t *edge;			/* rw page followed by the hole */
	atomic_int failures;
	atomic_long ops;
	atomic_long runs;
	atomic_long errs[134];		/* how often each errno came back */
};

struct worker {
	struct pool *p;
	struct rng r;
	int id;
	time_t deadline;
	timer_t timer;
	bool timer_ok;
	/* The monitor reads these: when the current RUN started, 0 when none */
	_Atomic long run_since_ms;
	const char *op;
	pid_t tid;
	/*
	 * Buffers the kernel writes into, each F_TAIL bytes followed by a
	 * PROT_NONE page: a buffer handed out ends at that page, so a kernel
	 * write past what the caller sized shows as EFAULT, never as a
	 * corrupted heap or stack.  tail: an ioctl's own output buffer;
	 * mis: pick_ptr()'s misaligned copies.
	 */
	uint8_t *tail;
	uint8_t *mis;
};

#define F_TAIL		(64UL << 10)

/* F_TAIL read-write bytes and a PROT_NONE guard page after them. */
static uint8_t *map_guarded(void)
{
	uint8_t *b = mmap(NULL, F_TAIL + 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (b == MAP_FAILED)
		return NULL;
	if (mprotect(b + F_TAIL, 4096, PROT_NONE)) {
		munmap(b, F_TAIL + 4096);
		return NULL;
	}
	return b;
}

static void unmap_guarded(struct worker *w)
{
	if (w->tail)
		munmap(w->tail, F_TAIL + 4096);
	if (w->mis)
		munmap(w->mis, F_TAIL + 4096);
	w->tail = NULL;
	w->mis = NULL;
}

/* @len zeroed bytes of w->tail that end at its guard page, or NULL. */
static void *tail_buf(struct worker *w, size_t len)
{
	uint8_t *b;

	if (!w->tail || len > F_TAIL)
		return NULL;
	b = w->tail + F_TAIL - len;
	memset(b, 0, len);
	return b;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wd_handler(int sig)
{
	(void)sig;
}

static __thread struct worker *cur_worker;

/* A signal nobody sent on purpose: say in which operation, then die of it. */
static void crash_handler(int sig)
{
	char buf[160];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "# FAIL (seed %" PRIu64 "): signal %d in thread %d, operation %s\n",
		     fuzz_seed, sig, cur_worker ? cur_worker->id : -1,
		     cur_worker && cur_worker->op ? cur_worker->op : "(none)");
	if (write(STDOUT_FILENO, buf, n) < 0)
		n = 0;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_crashes(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = crash_handler;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

static void report(struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(struct worker *w, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (atomic_fetch_add(&w->p->failures, 1) >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ksft_print_msg("FAIL (seed %" PRIu64 ", thread %d): %s\n",
		       fuzz_seed, w->id, buf);
}

#define E(x)	(1ULL << (x))
/* The general rules of Documentation/uapi.rst, for every ioctl. */
#define E_ANY	(E(EFAULT) | E(ENOTTY) | E(EBADF))

/*
 * Judge one ioctl's result against the errnos documented for it.  @allow
 * is in addition to E_ANY.
 */
static void judge(struct worker *w, const char *what, long ret, int err,
		  uint64_t allow)
{
	atomic_fetch_add(&w->p->ops, 1);
	if (ret >= 0)
		return;
	if (err > 0 && err < (int)ARRAY_SIZE(w->p->errs))
		atomic_fetch_add(&w->p->errs[err], 1);
	if (err > 0 && err < 64 && ((allow | E_ANY) & E(err)))
		return;
	report(w, "%s: %s (%s), not documented for it", what,
	       errno_name(err), strerror(err));
}

static void note(struct worker *w, const char *what)
{
	w->op = what;
	if (opt_verbose)
		ksft_print_msg("t%d %s\n", w->id, what);
}

/* With KESTREL_FUZZ_VERBOSE, what the last operation passed */
static void detail(struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void detail(struct worker *w, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!opt_verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ksft_print_msg("t%d   %s\n", w->id, buf);
}

static void detail_sregs(struct worker *w, int fd,
			 const struct kestrel_sregs *s)
{
	detail(w, "fd %d cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx apic_base %#llx cs sel %#x base %#llx limit %#x type %u s %u p %u l %u db %u g %u",
	       fd, (unsigned long long)s->cr0, (unsigned long long)s->cr3,
	       (unsigned long long)s->cr4, (unsigned long long)s->efer,
	       (unsigned long long)s->apic_base, s->cs.selector,
	       (unsigned long long)s->cs.base, s->cs.limit, s->cs.type,
	       s->cs.s, s->cs.present, s->cs.l, s->cs.db, s->cs.g);
	detail(w, "  ss type %u p %u db %u dpl %u tr type %u p %u ldt p %u gdt %#llx/%#x idt %#llx/%#x",
	       s->ss.type, s->ss.present, s->ss.db, s->ss.dpl, s->tr.type,
	       s->tr.present, s->ldt.present,
	       (unsigned long long)s->gdt.base, s->gdt.limit,
	       (unsigned long long)s->idt.base, s->idt.limit);
}

/*
 * An fd the operation targets: mostly one of @kind's, sometimes another
 * kind's or a bogus number (ENOTTY, EBADF).
 */
enum fd_kind { FD_SYS, FD_VM, FD_VCPU };

static int pick_fd(struct worker *w, enum fd_kind kind, int *slot)
{
	struct pool *p = w->p;
	int fd = -1, i;

	*slot = -1;
	if (one_in(&w->r, 40)) {
		static const int junk[] = { -1, 0, 2, 1000, 0x7fffffff };

		return junk[below(&w->r, ARRAY_SIZE(junk))];
	}
	if (one_in(&w->r, 25))
		kind = below(&w->r, 3);
	pthread_mutex_lock(&p->lock);
	switch (kind) {
	case FD_SYS:
		fd = p->sys_fd;
		break;
	case FD_VM:
		i = below(&w->r, F_VMS);
		fd = p->vm[i];
		*slot = i;
		break;
	case FD_VCPU:
		i = below(&w->r, F_VCPUS);
		fd = p->vcpu[i].fd;
		*slot = i;
		break;
	}
	pthread_mutex_unlock(&p->lock);
	return fd;
}

/*
 * A pointer for an argument of @len bytes: usually @good, else NULL, a
 * kernel address, an unmapped, PROT_NONE or read-only page, or the last
 * bytes of a page before the hole so that the structure straddles it.
 */
static void *pick_ptr(struct worker *w, void *good, size_t len)
{
	struct pool *p = w->p;

	if (!one_in(&w->r, 6))
		return good;
	switch (below(&w->r, 8)) {
	case 0:
		return NULL;
	case 1:
		return (void *)0xffff888000000000ULL;
	case 2:
		return p->hole;
	case 3:
		return p->none;
	case 4:
		/* read-only noise: fine for input, EFAULT for output */
		return p->ro;
	case 5:
		if (len > 1 && len <= 4096) {
			size_t keep = 1 + below(&w->r, len - 1);

			memcpy(p->edge + 4096 - keep, good, keep);
			return p->edge + 4096 - keep;
		}
		return p->hole;
	case 6:
		return (void *)(uintptr_t)rnd_val(&w->r);
	default: {
		/*
		 * Misaligned: a copy at an odd address of w->mis, ending one or
		 * two bytes before its guard page.  Not good + 1, which would
		 * let an output ioctl write a byte past the caller's buffer.
		 */
		size_t off;

		if (!w->mis || len + 2 > F_TAIL)
			return p->hole;
		off = F_TAIL - len - 1;
		if (!(off & 1))
			off--;
		memcpy(w->mis + off, good, len);
		return w->mis + off;
	}
	}
}

/* ---- the RUN watchdog -------------------------------------------------- */

static void wd_setup(struct worker *w)
{
	struct sigevent sev;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGUSR1;
	sev._sigev_un._tid = gettid();
	w->timer_ok = !timer_create(CLOCK_MONOTONIC, &sev, &w->timer);
}

static long fuzz_run(struct worker *w, int fd, unsigned long arg)
{
	/* First after RUN_WD_MS, then every 50 ms until RUN gives up. */
	struct itimerspec its = {
		.it_value.tv_nsec = RUN_WD_MS * 1000000L,
		.it_interval.tv_nsec = 50 * 1000000L,
	};
	struct itimerspec off = { 0 };
	long r;
	int err;

	if (w->timer_ok)
		timer_settime(w->timer, 0, &its, NULL);
	w->run_since_ms = now_ms();
	r = ioctl(fd, KESTREL_RUN, arg);
	err = errno;
	w->run_since_ms = 0;
	if (w->timer_ok)
		timer_settime(w->timer, 0, &off, NULL);
	atomic_fetch_add(&w->p->runs, 1);
	errno = err;
	return r;
}

/* ---- pool management -------------------------------------------------- */

static void close_vcpu(struct pool *p, int i)
{
	struct fvcpu *v = &p->vcpu[i];
	int fd;

	pthread_mutex_lock(&v->lock);
	if (v->run)
		munmap(v->run, run_size);
	v->run = NULL;
	pthread_mutex_unlock(&v->lock);
	pthread_mutex_lock(&p->lock);
	fd = v->fd;
	v->fd = -1;
	pthread_mutex_unlock(&p->lock);
	if (fd >= 0)
		close(fd);
}

static void close_vm(struct pool *p, int i)
{
	int fd;

	pthread_mutex_lock(&p->lock);
	fd = p->vm[i];
	p->vm[i] = -1;
	pthread_mutex_unlock(&p->lock);
	if (fd >= 0)
		close(fd);
}

static void add_vm(struct worker *w, int fd)
{
	struct pool *p = w->p;
	int i = below(&w->r, F_VMS), old;

	pthread_mutex_lock(&p->lock);
	old = p->vm[i];
	p->vm[i] = fd;
	pthread_mutex_unlock(&p->lock);
	if (old >= 0)
		close(old);
}

static void add_vcpu(struct worker *w, int fd)
{
	struct pool *p = w->p;
	int i = below(&w->r, F_VCPUS);
	struct fvcpu *v = &p->vcpu[i];
	void *run;

	close_vcpu(p, i);
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (run == MAP_FAILED) {
		report(w, "mmap of a new vCPU's run page: %s",
		       errno_name(errno));
		run = NULL;
	}
	pthread_mutex_lock(&v->lock);
	v->run = run;
	pthread_mutex_unlock(&v->lock);
	pthread_mutex_lock(&p->lock);
	v->fd = fd;
	pthread_mutex_unlock(&p->lock);
}

static int new_vm(struct worker *w)
{
	struct kestrel_create_vm c;
	int fd;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "fuzz%d", w->id);
	fd = ioctl(w->p->sys_fd, KESTREL_CREATE_VM, &c);
	judge(w, "CREATE_VM (valid)", fd, errno,
	      E(EBUSY) | E(ENOMEM) | E(EMFILE));
	return fd;
}

/* A slot of the shared RAM, in a VM: slot 0 at GPA 0 most of the time. */
static void add_ram(struct worker *w, int vm)
{
	struct kestrel_memory_region m = {
		.slot = 0,
		.memory_size = F_MEM,
		.userspace_addr = (uintptr_t)w->p->mem,
	};
	long r = ioctl(vm, KESTREL_SET_MEMORY_REGION, &m);

	judge(w, "SET_MEMORY_REGION (RAM)", r, errno,
	      E(EEXIST) | E(EINVAL) | E(ENOMEM));
}

/* ---- the operations ------------------------------------------------------ */

static void op_sys(struct worker *w)
{
	struct rng *r = &w->r;
	int slot, fd = pick_fd(w, FD_SYS, &slot);
	long ret;

	switch (below(r, 6)) {
	case 0:
		note(w, "GET_API_VERSION");
		ret = ioctl(fd, KESTREL_GET_API_VERSION,
			    one_in(r, 2) ? 0UL : rnd_val(r));
		judge(w, "GET_API_VERSION", ret, errno, E(EINVAL));
		if (ret >= 0 && ret != KESTREL_API_VERSION)
			report(w, "GET_API_VERSION returned %ld", ret);
		break;
	case 1:
		note(w, "CHECK_CAP");
		ret = ioctl(fd, KESTREL_CHECK_CAP,
			    one_in(r, 2) ? below(r, 12) : rnd_val(r));
		judge(w, "CHECK_CAP", ret, errno, 0);
		break;
	case 2:
		note(w, "GET_VCPU_MMAP_SIZE");
		ret = ioctl(fd, KESTREL_GET_VCPU_MMAP_SIZE,
			    one_in(r, 3) ? rnd_val(r) : 0UL);
		judge(w, "GET_VCPU_MMAP_SIZE", ret, errno, E(EINVAL));
		break;
	case 3: {
		uint32_t cap = one_in(r, 2) ? below(r, 300) : rnd_val(r);
		size_t n = cap < 300 ? cap : 300;
		struct kestrel_cpuid *c;

		note(w, "GET_SUPPORTED_CPUID");
		c = tail_buf(w, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			break;
		c->nent = cap;
		if (one_in(r, 8))
			c->padding = rnd(r);
		ret = ioctl(fd, KESTREL_GET_SUPPORTED_CPUID,
			    pick_ptr(w, c, sizeof(*c)));
		judge(w, "GET_SUPPORTED_CPUID", ret, errno,
		      E(E2BIG) | E(EINVAL) | E(ENOMEM));
		break;
	}
	default: {
		struct kestrel_create_vm c;

		note(w, "CREATE_VM");
		memset(&c, 0, sizeof(c));
		snprintf(c.name, sizeof(c.name), "f%d-%u", w->id,
			 (unsigned int)below(r, 100));
		if (one_in(r, 4))
			mutate(r, &c, sizeof(c));
		ret = ioctl(fd, KESTREL_CREATE_VM, pick_ptr(w, &c, sizeof(c)));
		judge(w, "CREATE_VM", ret, errno,
		      E(EINVAL) | E(EBUSY) | E(ENOMEM) | E(EMFILE));
		if (ret >= 0) {
			if (one_in(r, 3))
				add_ram(w, ret);
			add_vm(w, ret);
		}
		break;
	}
	}
}

static uint64_t rnd_gpa(struct rng *r)
{
	static const uint64_t base[] = {
		0, 0x100000, 0x400000, 0xfee00000, 0xffe00000, 0x100000000ULL,
		(1ULL << 48) - F_MEM, 1ULL << 47, 1ULL << 48,
	};

	if (one_in(r, 5))
		return rnd_val(r);
	return base[below(r, ARRAY_SIZE(base))] + (below(r, 16) << 12);
}

static void op_memslot(struct worker *w, int fd)
{
	struct rng *r = &w->r;
	struct pool *p = w->p;
	struct kestrel_memory_region m;
	long ret;

	note(w, "SET_MEMORY_REGION");
	memset(&m, 0, sizeof(m));
	m.slot = one_in(r, 8) ? rnd_val(r) : below(r, 6);
	m.guest_phys_addr = rnd_gpa(r);
	switch (below(r, 6)) {
	case 0:
		m.memory_size = 0;		/* delete */
		break;
	case 1:
		m.memory_size = rnd_val(r);
		break;
	default:
		m.memory_size = (1 + below(r, F_MEM >> 12)) << 12;
		break;
	}
	switch (below(r, 8)) {
	case 0:
		m.userspace_addr = (uintptr_t)p->ro;
		break;
	case 1:
		m.userspace_addr = (uintptr_t)p->hole;
		break;
	case 2:
		m.userspace_addr = rnd_val(r);
		break;
	default:
		m.userspace_addr = (uintptr_t)p->mem +
			(below(r, F_MEM >> 12) << 12);
		break;
	}
	if (one_in(r, 3))
		m.flags = below(r, 4);
	else if (one_in(r, 10))
		m.flags = rnd(r);
	detail(w, "fd %d slot %u flags %#x gpa %#llx size %#llx ua %#llx",
	       fd, m.slot, m.flags, (unsigned long long)m.guest_phys_addr,
	       (unsigned long long)m.memory_size,
	       (unsigned long long)m.userspace_addr);
	ret = ioctl(fd, KESTREL_SET_MEMORY_REGION,
		    pick_ptr(w, &m, sizeof(m)));
	judge(w, "SET_MEMORY_REGION", ret, errno,
	      E(EINVAL) | E(EEXIST) | E(ENOENT) | E(ENOMEM));
	/* A flags-only change of a slot that exists: RAM's, most often. */
	if (one_in(r, 4)) {
		note(w, "SET_MEMORY_REGION (flags)");
		m.slot = 0;
		m.guest_phys_addr = 0;
		m.memory_size = F_MEM;
		m.userspace_addr = (uintptr_t)p->mem;
		m.flags = below(r, 4);
		ret = ioctl(fd, KESTREL_SET_MEMORY_REGION, &m);
		judge(w, "SET_MEMORY_REGION (flags)", ret, errno,
		      E(EINVAL) | E(EEXIST) | E(ENOENT) | E(ENOMEM));
	}
}

static void op_vm(struct worker *w)
{
	struct rng *r = &w->r;
	int slot, fd = pick_fd(w, FD_VM, &slot);
	long ret;

	switch (below(r, 10)) {
	case 0:
	case 1:
		op_memslot(w, fd);
		break;
	case 2: {
		unsigned long id = one_in(r, 3) ? rnd_val(r) : below(r, 70);

		note(w, "CREATE_VCPU");
		ret = ioctl(fd, KESTREL_CREATE_VCPU, id);
		detail(w, "vm fd %d id %lu -> %ld", fd, id, ret);
		judge(w, "CREATE_VCPU", ret, errno,
		      E(EINVAL) | E(EEXIST) | E(ENOMEM) | E(EMFILE));
		if (ret >= 0)
			add_vcpu(w, ret);
		break;
	}
	case 3: {
		struct kestrel_dirty_log d = { .slot = below(r, 6) };
		size_t words = 1 + below(r, (F_MEM >> 12) / 64 + 2);
		/* Often smaller than the slot's bitmap: the kernel must then
		 * fault on the guard page (EFAULT), not write past. */
		uint64_t *bm = tail_buf(w, words * 8);

		note(w, "GET_DIRTY_LOG");
		if (!bm)
			break;
		if (one_in(r, 8))
			d.slot = rnd_val(r);
		if (one_in(r, 10))
			d.padding = rnd(r);
		d.bitmap = (uintptr_t)pick_ptr(w, bm, words * 8);
		ret = ioctl(fd, KESTREL_GET_DIRTY_LOG,
			    pick_ptr(w, &d, sizeof(d)));
		judge(w, "GET_DIRTY_LOG", ret, errno,
		      E(ENOENT) | E(EINVAL) | E(ENOMEM));
		break;
	}
	case 4: {
		struct kestrel_vm_stats s;

		note(w, "GET_VM_STATS");
		ret = ioctl(fd, KESTREL_GET_VM_STATS,
			    pick_ptr(w, &s, sizeof(s)));
		judge(w, "GET_VM_STATS", ret, errno, 0);
		break;
	}
	case 5:
		note(w, "CREATE_IRQCHIP");
		detail(w, "fd %d", fd);
		ret = ioctl(fd, KESTREL_CREATE_IRQCHIP,
			    one_in(r, 4) ? rnd_val(r) : 0UL);
		judge(w, "CREATE_IRQCHIP", ret, errno,
		      E(EEXIST) | E(EBUSY) | E(EINVAL) | E(ENOMEM));
		break;
	case 6: {
		struct kestrel_msi m;

		note(w, "SIGNAL_MSI");
		memset(&m, 0, sizeof(m));
		m.address = 0xfee00000 | (below(r, 4) == 0 ? 0xff000 :
					  below(r, 8) << 12) | (below(r, 4) << 2);
		m.data = (16 + below(r, 240)) | (below(r, 2) << 8);
		if (one_in(r, 3))
			mutate(r, &m, sizeof(m));
		ret = ioctl(fd, KESTREL_SIGNAL_MSI, pick_ptr(w, &m, sizeof(m)));
		judge(w, "SIGNAL_MSI", ret, errno, E(ENXIO) | E(EINVAL));
		break;
	}
	case 7:
		note(w, "SET_MSR_POLICY");
		ret = ioctl(fd, KESTREL_SET_MSR_POLICY,
			    one_in(r, 3) ? rnd_val(r) : below(r, 2));
		judge(w, "SET_MSR_POLICY", ret, errno, E(EINVAL));
		break;
	case 8:
		note(w, "VM: add RAM");
		add_ram(w, fd);
		break;
	default: {
		/* An unknown or misdirected number of our ioctl type. */
		unsigned long cmd = _IOC(below(r, 4), KESTREL_IO,
					 below(r, 0x40), below(r, 512));
		char buf[512];

		note(w, "VM: random ioctl");
		rnd_fill(r, buf, sizeof(buf));
		ret = ioctl(fd, cmd, pick_ptr(w, buf, sizeof(buf)));
		/* Real numbers with a made-up size or direction: anything
		 * documented for some ioctl. */
		judge(w, "random ioctl", ret, errno,
		      E(EINVAL) | E(EEXIST) | E(ENOENT) | E(ENOMEM) |
		      E(EBUSY) | E(ENXIO) | E(E2BIG) | E(EINTR));
		break;
	}
	}
}

static void mutate_sregs(struct rng *r, struct kestrel_sregs *s)
{
	static const int crbits[] = { 0, 1, 2, 3, 4, 5, 16, 18, 29, 30, 31 };
	struct kestrel_segment *seg[] = { &s->cs, &s->ds, &s->es, &s->fs,
					  &s->gs, &s->ss, &s->tr, &s->ldt };
	unsigned int n = 1 + below(r, 3);

	while (n--) {
		switch (below(r, 9)) {
		case 0:
			s->cr0 ^= 1ULL << crbits[below(r, ARRAY_SIZE(crbits))];
			break;
		case 1:
			s->cr4 ^= 1ULL << below(r, 24);
			break;
		case 2:
			s->efer ^= 1ULL << (one_in(r, 2) ? below(r, 16) : 8 + 2 * below(r, 2));
			break;
		case 3:
			s->cr3 = one_in(r, 2) ? rnd_val(r) : below(r, 512) << 12;
			break;
		case 4:
			s->cr8 = one_in(r, 2) ? below(r, 20) : rnd_val(r);
			break;
		case 5:
			s->apic_base = one_in(r, 2) ?
				0xfee00000 | (below(r, 16) << 8) : rnd_val(r);
			break;
		case 6:
			mutate(r, seg[below(r, ARRAY_SIZE(seg))],
			       sizeof(struct kestrel_segment));
			break;
		case 7:
			mutate(r, one_in(r, 2) ? &s->gdt : &s->idt,
			       sizeof(struct kestrel_dtable));
			break;
		default:
			mutate(r, s, sizeof(*s));
			break;
		}
	}
}

static void op_vcpu_run(struct worker *w, int slot, int fd)
{
	struct rng *r = &w->r;
	struct fvcpu *v = slot >= 0 ? &w->p->vcpu[slot] : NULL;
	unsigned long arg = one_in(r, 20) ? rnd_val(r) : 0;
	unsigned int seq = 0;
	uint64_t count = 0;
	bool alone = false;
	long ret;
	int err;

	note(w, "RUN");
	detail(w, "fd %d arg %#lx", fd, arg);
	if (opt_verbose) {
		struct kestrel_sregs s;
		struct kestrel_regs g;
		struct kestrel_mp_state mp;

		if (!ioctl(fd, KESTREL_GET_SREGS, &s))
			detail_sregs(w, fd, &s);
		if (!ioctl(fd, KESTREL_GET_REGS, &g))
			detail(w, "rip %#llx rflags %#llx rsp %#llx",
			       (unsigned long long)g.rip,
			       (unsigned long long)g.rflags,
			       (unsigned long long)g.rsp);
		if (!ioctl(fd, KESTREL_GET_MP_STATE, &mp))
			detail(w, "mp_state %u", mp.state);
	}
	if (!v || one_in(r, 4)) {
		/* Blind: without the run page, racing its munmap. */
		if (v) {
			atomic_fetch_add(&v->blind_inflight, 1);
			atomic_fetch_add(&v->blind_seq, 1);
		}
		ret = fuzz_run(w, fd, arg);
		err = errno;
		if (v)
			atomic_fetch_sub(&v->blind_inflight, 1);
		judge(w, "RUN", ret, err, E(EINTR) | E(EINVAL));
		return;
	}
	pthread_mutex_lock(&v->lock);
	seq = atomic_load(&v->blind_seq);
	alone = atomic_load(&v->blind_inflight) == 0;
	if (v->run) {
		if (one_in(r, 10))
			v->run->immediate_exit = 1;
		if (one_in(r, 10))
			rnd_fill(r, v->run, sizeof(*v->run));
		count = v->run->exit_count;
	}
	ret = fuzz_run(w, fd, arg);
	err = errno;
	judge(w, "RUN", ret, err, E(EINTR) | E(EINVAL));
	if (v->run) {
		uint32_t reason = v->run->exit_reason;

		alone = alone && atomic_load(&v->blind_seq) == seq;
		/*
		 * And the page is the one this RUN wrote: every RUN that
		 * returns bumps exit_count by one.  Not so when the fd number
		 * picked was closed and reused by another thread meanwhile.
		 */
		alone = alone && v->run->exit_count == count + 1;
		/* Another thread may have closed this slot's vCPU and put a
		 * new one (a new run page) there since fd was picked. */
		pthread_mutex_lock(&w->p->lock);
		alone = alone && v->fd == fd;
		pthread_mutex_unlock(&w->p->lock);
		v->run->immediate_exit = 0;
		if (ret == 0 && alone && (reason == KESTREL_EXIT_UNKNOWN ||
				 reason > KESTREL_EXIT_MSR))
			report(w, "RUN returned 0 with exit_reason %u", reason);
		/* Whatever the exit wanted, answer it with noise. */
		if (one_in(r, 2))
			rnd_fill(r, (char *)v->run + sizeof(*v->run),
				 run_size - sizeof(*v->run));
		if (reason == KESTREL_EXIT_MMIO || reason == KESTREL_EXIT_MSR)
			mutate(r, v->run, sizeof(*v->run));
	}
	pthread_mutex_unlock(&v->lock);
}

static void op_vcpu(struct worker *w)
{
	struct rng *r = &w->r;
	int slot, fd = pick_fd(w, FD_VCPU, &slot);
	long ret;

	switch (below(r, 12)) {
	case 0:
	case 1:
		op_vcpu_run(w, slot, fd);
		break;
	case 2: {
		struct kestrel_regs g;

		note(w, "GET_REGS");
		ret = ioctl(fd, KESTREL_GET_REGS, pick_ptr(w, &g, sizeof(g)));
		judge(w, "GET_REGS", ret, errno, 0);
		break;
	}
	case 3: {
		struct kestrel_regs g;

		note(w, "SET_REGS");
		if (ioctl(fd, KESTREL_GET_REGS, &g))
			rnd_fill(r, &g, sizeof(g));
		if (one_in(r, 2))
			g.rflags = one_in(r, 2) ? rnd_val(r) :
				(2 | (rnd(r) & 0x3f7fd5));
		g.rip = one_in(r, 2) ? GUEST_LOAD + below(r, 0x100) : rnd_val(r);
		mutate(r, &g, sizeof(g));
		detail(w, "fd %d rip %#llx rflags %#llx", fd,
		       (unsigned long long)g.rip, (unsigned long long)g.rflags);
		ret = ioctl(fd, KESTREL_SET_REGS, pick_ptr(w, &g, sizeof(g)));
		judge(w, "SET_REGS", ret, errno, E(EINVAL));
		break;
	}
	case 4: {
		struct kestrel_sregs s;

		note(w, "GET_SREGS");
		ret = ioctl(fd, KESTREL_GET_SREGS, pick_ptr(w, &s, sizeof(s)));
		judge(w, "GET_SREGS", ret, errno, 0);
		break;
	}
	case 5:
	case 6: {
		struct kestrel_sregs s;

		note(w, "SET_SREGS");
		if (ioctl(fd, KESTREL_GET_SREGS, &s))
			memset(&s, 0, sizeof(s));
		switch (below(r, 4)) {
		case 0:
			sregs_make_pmode(&s);
			break;
		case 1:
			sregs_make_long(&s);
			break;
		default:
			break;
		}
		mutate_sregs(r, &s);
		detail_sregs(w, fd, &s);
		ret = ioctl(fd, KESTREL_SET_SREGS, pick_ptr(w, &s, sizeof(s)));
		detail(w, "-> %ld %s", ret, ret ? errno_name(errno) : "");
		judge(w, "SET_SREGS", ret, errno, E(EINVAL));
		break;
	}
	case 7: {
		uint32_t nent = one_in(r, 3) ? rnd_val(r) : below(r, 64);
		size_t n = nent < 300 ? nent : 300;
		struct kestrel_cpuid *c;
		uint32_t i;

		note(w, "SET_CPUID");
		c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			break;
		for (i = 0; i < n; i++) {
			struct kestrel_cpuid_entry *e = &c->entries[i];

			e->function = one_in(r, 2) ? below(r, 0x20) :
				0x80000000 + below(r, 0x20);
			if (one_in(r, 4))
				e->function = rnd_val(r);
			e->index = below(r, 4);
			e->flags = below(r, 2);
			e->eax = rnd(r);
			e->ebx = rnd(r);
			e->ecx = rnd(r);
			e->edx = rnd(r);
			if (one_in(r, 30))
				mutate(r, e, sizeof(*e));
		}
		c->nent = nent;
		ret = ioctl(fd, KESTREL_SET_CPUID,
			    pick_ptr(w, c, sizeof(*c) + n * sizeof(c->entries[0])));
		judge(w, "SET_CPUID", ret, errno,
		      E(E2BIG) | E(EINVAL) | E(ENOMEM));
		free(c);
		break;
	}
	case 8: {
		uint32_t nent = one_in(r, 3) ? rnd_val(r) : below(r, 300);
		size_t n = nent < 300 ? nent : 300;
		struct kestrel_cpuid *c;

		note(w, "GET_CPUID");
		c = tail_buf(w, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			break;
		c->nent = nent;
		ret = ioctl(fd, KESTREL_GET_CPUID, pick_ptr(w, c, sizeof(*c)));
		judge(w, "GET_CPUID", ret, errno,
		      E(E2BIG) | E(EINVAL) | E(ENOMEM));
		break;
	}
	case 9: {
		struct kestrel_mp_state m = { .state = below(r, 4) };

		if (one_in(r, 5))
			mutate(r, &m, sizeof(m));
		if (one_in(r, 2)) {
			note(w, "SET_MP_STATE");
			detail(w, "fd %d state %u reserved %u", fd, m.state,
			       m.reserved);
			ret = ioctl(fd, KESTREL_SET_MP_STATE,
				    pick_ptr(w, &m, sizeof(m)));
			judge(w, "SET_MP_STATE", ret, errno, E(EINVAL));
		} else {
			note(w, "GET_MP_STATE");
			ret = ioctl(fd, KESTREL_GET_MP_STATE,
				    pick_ptr(w, &m, sizeof(m)));
			judge(w, "GET_MP_STATE", ret, errno, 0);
		}
		break;
	}
	case 10: {
		/* mmap of the run page: bad lengths and offsets, and again */
		size_t len = one_in(r, 2) ? (size_t)run_size :
			(size_t)below(r, 4) * 4096;
		off_t off = one_in(r, 3) ? below(r, 4) * 4096 : 0;
		void *m;

		note(w, "mmap run page");
		m = mmap(NULL, len, one_in(r, 4) ? PROT_READ :
			 PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
		if (m != MAP_FAILED) {
			if (len > (size_t)run_size || off)
				report(w, "mmap of %zu bytes at offset %ld of a vCPU fd succeeded",
				       len, (long)off);
			munmap(m, len);
		}
		if (slot >= 0 && one_in(r, 4)) {
			struct fvcpu *v = &w->p->vcpu[slot];

			note(w, "munmap run page");
			pthread_mutex_lock(&v->lock);
			if (v->run)
				munmap(v->run, run_size);
			v->run = NULL;
			pthread_mutex_unlock(&v->lock);
		}
		break;
	}
	default: {
		unsigned long cmd = _IOC(below(r, 4), KESTREL_IO,
					 0x20 + below(r, 0x10), below(r, 1024));
		char buf[1024];

		note(w, "vCPU: random ioctl");
		rnd_fill(r, buf, sizeof(buf));
		ret = ioctl(fd, cmd, pick_ptr(w, buf, sizeof(buf)));
		judge(w, "vCPU random ioctl", ret, errno,
		      E(EINVAL) | E(E2BIG) | E(ENOMEM) | E(EINTR));
		break;
	}
	}
}

/* Fill guest RAM with noise, some of it instructions a VMM must handle. */
static void scribble_ram(struct worker *w)
{
	static const uint8_t ops[][4] = {
		{ 0xf4 }, { 0xe6, 0x10 }, { 0xe4, 0x20 }, { 0x0f, 0xa2 },
		{ 0x0f, 0x30 }, { 0x0f, 0x32 }, { 0xcc }, { 0x0f, 0x0b },
		{ 0xfb }, { 0xfa }, { 0x0f, 0x01, 0xd9 }, { 0x0f, 0x01, 0xc1 },
		{ 0x0f, 0x22, 0xc0 }, { 0x0f, 0x22, 0xe0 }, { 0xcf },
		{ 0x0f, 0x01, 0xf9 }, { 0xf3, 0x6c }, { 0x0f, 0x09 },
	};
	struct rng *r = &w->r;
	uint8_t *code = w->p->mem + GUEST_LOAD;
	size_t len = 64 + below(r, 1024), i;

	note(w, "scribble guest RAM");
	rnd_fill(r, code, len);
	for (i = 0; i < len / 16; i++) {
		size_t at = below(r, len - 4);

		memcpy(code + at, ops[below(r, ARRAY_SIZE(ops))], 3);
	}
	if (one_in(r, 4))
		rnd_fill(r, w->p->mem + below(r, F_MEM - 4096), 4096);
}

static void op_close(struct worker *w)
{
	struct rng *r = &w->r;

	if (one_in(r, 2)) {
		note(w, "close a vCPU");
		close_vcpu(w->p, below(r, F_VCPUS));
	} else {
		note(w, "close a VM");
		close_vm(w->p, below(r, F_VMS));
	}
}

/* VM and vCPU ioctls from another process: EIO, whatever they are. */
static void op_fork(struct worker *w)
{
	struct rng *r = &w->r;
	int slot, fd = pick_fd(w, one_in(r, 2) ? FD_VM : FD_VCPU, &slot);
	unsigned long cmd = one_in(r, 2) ? KESTREL_RUN : KESTREL_GET_REGS;
	struct kestrel_regs g;
	int status;
	pid_t pid;

	if (fd < 0 || one_in(r, 2))
		return;
	note(w, "ioctl from a forked child");
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		long ret = ioctl(fd, cmd, cmd == KESTREL_RUN ? NULL : &g);

		_exit(ret < 0 && (errno == EIO || errno == ENOTTY ||
				  errno == EBADF) ? 0 : 100 + (ret < 0 ? errno : 0));
	}
	if (pid < 0)
		return;
	if (waitpid(pid, &status, 0) == pid &&
	    (!WIFEXITED(status) || WEXITSTATUS(status)))
		report(w, "ioctl 0x%lx on an inherited fd in a child: status 0x%x (100 + errno, or 100 for success)",
		       cmd, status);
}

static void fuzz_step(struct worker *w)
{
	struct rng *r = &w->r;

	switch (below(r, 40)) {
	case 0 ... 3:
		op_sys(w);
		break;
	case 4 ... 15:
		op_vm(w);
		break;
	case 16 ... 34:
		op_vcpu(w);
		break;
	case 35:
	case 36:
		scribble_ram(w);
		break;
	case 37:
	case 38:
		op_close(w);
		break;
	default:
		op_fork(w);
		break;
	}
}

/* ---- setup shared by the tests ---------------------------------------- */

static uint8_t *map_page(int prot)
{
	void *p = mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static bool pool_init(struct pool *p)
{
	uint8_t *two;
	int i;

	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	for (i = 0; i < F_VMS; i++)
		p->vm[i] = -1;
	for (i = 0; i < F_VCPUS; i++) {
		pthread_mutex_init(&p->vcpu[i].lock, NULL);
		p->vcpu[i].fd = -1;
	}
	p->sys_fd = open(KESTREL_DEV, O_RDWR | O_CLOEXEC);
	if (p->sys_fd < 0)
		return false;
	sys_fd = p->sys_fd;		/* lib.c's helpers */
	p->mem = mmap(NULL, F_MEM, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	p->ro = map_page(PROT_READ | PROT_WRITE);
	p->none = map_page(PROT_NONE);
	two = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->mem == MAP_FAILED || !p->ro || !p->none || two == MAP_FAILED)
		return false;
	memset(p->ro, 0x5a, 4096);
	mprotect(p->ro, 4096, PROT_READ);
	p->edge = two;
	p->hole = two + 4096;
	munmap(p->hole, 4096);
	return true;
}

static void pool_fini(struct pool *p)
{
	int i;

	for (i = 0; i < F_VCPUS; i++)
		close_vcpu(p, i);
	for (i = 0; i < F_VMS; i++)
		close_vm(p, i);
	close(p->sys_fd);
}

static void print_stats(struct pool *p)
{
	char buf[512];
	size_t n = 0;
	unsigned int e;

	for (e = 1; e < ARRAY_SIZE(p->errs) && n < sizeof(buf) - 40; e++)
		if (p->errs[e])
			n += snprintf(buf + n, sizeof(buf) - n, " %s:%ld",
				      errno_name(e), (long)p->errs[e]);
	ksft_print_msg("%ld ioctls, %ld RUNs; errnos:%s\n", (long)p->ops,
		       (long)p->runs, n ? buf : " none");
}

/* Fails the test when a RUN outlives its watchdog by RUN_HUNG_S. */
struct monitor {
	struct worker *w;
	int n;
	atomic_bool stop;
	atomic_bool hung;
};

/* Where a stuck thread is, in the kernel (root only) */
static void dump_task(pid_t tid)
{
	static const char *const files[] = { "stat", "wchan", "stack" };
	char path[64], line[256];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%d/%s", tid,
			 files[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			ksft_print_msg("%s: %s%s", files[i], line,
				       strchr(line, '\n') ? "" : "\n");
		fclose(f);
	}
}

static void *monitor_fn(void *arg)
{
	struct monitor *m = arg;

	while (!m->stop) {
		int i;

		for (i = 0; i < m->n; i++) {
			long since = m->w[i].run_since_ms;

			if (since && now_ms() - since > RUN_HUNG_S * 1000) {
				ksft_print_msg("FAIL (seed %" PRIu64 "): thread %d: RUN did not return %d s after its watchdog; giving up\n",
					       fuzz_seed, i, RUN_HUNG_S);
				dump_task(m->w[i].tid);
				m->hung = true;
				fflush(stdout);
				/* The harness sees the signal: a failure. */
				kill(getpid(), SIGKILL);
			}
		}
		usleep(100 * 1000);
	}
	return NULL;
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	cur_worker = w;
	w->tid = gettid();
	wd_setup(w);
	while (time(NULL) < w->deadline)
		fuzz_step(w);
	if (w->timer_ok)
		timer_delete(w->timer);
	return NULL;
}

static uint64_t test_seed(const char *name, int thread)
{
	uint64_t h = fuzz_seed ^ 0xcbf29ce484222325ULL;

	while (*name)
		h = (h ^ (uint8_t)*name++) * 0x100000001b3ULL;
	return h + thread * 0x9e3779b97f4a7c15ULL;
}

/* Run @n workers for @secs seconds; returns the number of failures. */
static int fuzz_workers(struct pool *p, const char *name, int n,
			unsigned int secs, void (*prepare)(struct worker *))
{
	struct worker w[MAX_THREADS];
	pthread_t th[MAX_THREADS], mon;
	struct sigaction sa;
	struct monitor m;
	sigset_t set;
	int i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wd_handler;		/* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	/* Only the workers take the watchdog's signal. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	memset(w, 0, sizeof(w));
	for (i = 0; i < n; i++) {
		w[i].p = p;
		w[i].id = i;
		w[i].tail = map_guarded();
		w[i].mis = map_guarded();
		w[i].r.s = test_seed(name, i);
		w[i].deadline = time(NULL) + secs;
		if (prepare)
			prepare(&w[i]);
	}
	memset(&m, 0, sizeof(m));
	m.w = w;
	m.n = n;
	pthread_create(&mon, NULL, monitor_fn, &m);
	for (i = 0; i < n; i++)
		pthread_create(&th[i], NULL, worker_fn, &w[i]);
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	m.stop = true;
	pthread_join(mon, NULL);
	for (i = 0; i < n; i++)
		unmap_guarded(&w[i]);
	print_stats(p);
	return p->failures;
}

/* ---- random guests ------------------------------------------------------ */

static void write_gdt(uint8_t *mem, bool long_mode)
{
	uint64_t *gdt = (uint64_t *)(mem + GUEST_GDT);

	gdt[0] = 0;
	gdt[1] = long_mode ? 0x00af9b000000ffffULL : 0x00cf9b000000ffffULL;
	gdt[2] = 0x00cf93000000ffffULL;
}

/* One random guest on a fresh vCPU, run until it stops or 20 exits. */
static void guest_round(struct worker *w, int vm_fd, int vcpu_fd,
			struct kestrel_run *run)
{
	struct rng *r = &w->r;
	struct pool *p = w->p;
	struct kestrel_sregs s;
	struct kestrel_regs g;
	struct vm vm = { .fd = vm_fd, .mem = p->mem, .mem_size = F_MEM };
	unsigned int mode = below(r, 3), i;
	long ret;

	scribble_ram(w);
	note(w, "guest: set up");
	if (ioctl(vcpu_fd, KESTREL_GET_SREGS, &s)) {
		report(w, "GET_SREGS on a new vCPU: %s", errno_name(errno));
		return;
	}
	if (mode == 1) {
		write_gdt(p->mem, false);
		sregs_make_pmode(&s);
	} else if (mode == 2) {
		write_gdt(p->mem, true);
		build_long_mode_tables(&vm);
		sregs_make_long(&s);
	} else {
		memset(&s.cs, 0, sizeof(s.cs));
		s.cs.type = 0xb;
		s.cs.limit = 0xffff;
		s.cs.present = s.cs.s = 1;
		s.ds = s.cs;
		s.ds.type = 3;
		s.es = s.fs = s.gs = s.ss = s.ds;
	}
	if (one_in(r, 3))
		mutate_sregs(r, &s);
	detail_sregs(w, vcpu_fd, &s);
	ret = ioctl(vcpu_fd, KESTREL_SET_SREGS, &s);
	detail(w, "-> %ld %s", ret, ret ? errno_name(errno) : "");
	judge(w, "SET_SREGS (guest)", ret, errno, E(EINVAL));

	rnd_fill(r, &g, sizeof(g));
	g.rip = GUEST_LOAD + below(r, 64);
	g.rsp = GUEST_STACK_TOP - 8 * below(r, 16);
	g.rflags = 2 | (one_in(r, 2) ? 0x200 : 0) | (one_in(r, 8) ? 0x100 : 0) |
		(one_in(r, 8) ? 0x40000 : 0);
	if (one_in(r, 6))
		g.rflags = rnd_val(r);
	detail(w, "rip %#llx rflags %#llx mode %u", (unsigned long long)g.rip,
	       (unsigned long long)g.rflags, mode);
	ret = ioctl(vcpu_fd, KESTREL_SET_REGS, &g);
	judge(w, "SET_REGS (guest)", ret, errno, E(EINVAL));
	if (one_in(r, 4)) {
		ret = ioctl(vm_fd, KESTREL_SET_MSR_POLICY, 1UL);
		judge(w, "SET_MSR_POLICY (guest)", ret, errno, E(EINVAL));
	}

	for (i = 0; i < 20; i++) {
		note(w, "guest: RUN");
		ret = fuzz_run(w, vcpu_fd, 0);
		judge(w, "RUN (guest)", ret, errno, E(EINTR));
		if (ret < 0)
			return;		/* the watchdog, or memory */
		switch (run->exit_reason) {
		case KESTREL_EXIT_IO:
			if (run->io.data_offset < sizeof(*run) ||
			    run->io.data_offset > (uint64_t)run_size ||
			    (uint64_t)run->io.count * run->io.size >
			    run_size - run->io.data_offset) {
				report(w, "IO exit: data_offset 0x%llx count %u size %u outside the run page",
				       (unsigned long long)run->io.data_offset,
				       run->io.count, run->io.size);
				return;
			}
			rnd_fill(r, (char *)run + run->io.data_offset,
				 run->io.count * run->io.size);
			break;
		case KESTREL_EXIT_MMIO:
			if (run->mmio.len > 8 || !run->mmio.len) {
				report(w, "MMIO exit of %u bytes", run->mmio.len);
				return;
			}
			rnd_fill(r, run->mmio.data, sizeof(run->mmio.data));
			break;
		case KESTREL_EXIT_MSR:
			run->msr.data = rnd_val(r);
			run->msr.error = one_in(r, 2);
			break;
		case KESTREL_EXIT_HLT:
		case KESTREL_EXIT_SHUTDOWN:
		case KESTREL_EXIT_INTERNAL_ERROR:
		case KESTREL_EXIT_FAIL_ENTRY:
			/* Again, or with new noise: the API allows both. */
			if (one_in(r, 2))
				return;
			scribble_ram(w);
			break;
		default:
			report(w, "RUN returned 0 with exit_reason %u",
			       run->exit_reason);
			return;
		}
	}
}

static void guest_loop(struct worker *w)
{
	struct rng *r = &w->r;

	wd_setup(w);
	while (time(NULL) < w->deadline) {
		int vm = new_vm(w), vcpu, n = 0;
		struct kestrel_run *run;

		if (vm < 0)
			return;
		add_ram(w, vm);
		if (one_in(r, 2)) {
			long ret = ioctl(vm, KESTREL_CREATE_IRQCHIP, 0UL);

			judge(w, "CREATE_IRQCHIP (guest)", ret, errno,
			      E(EEXIST) | E(EBUSY) | E(ENOMEM));
		}
		if (one_in(r, 3)) {
			/* A read-only and a logged slot above RAM */
			struct kestrel_memory_region m = {
				.slot = 1, .guest_phys_addr = F_MEM,
				.memory_size = 1 << 20,
				.userspace_addr = (uintptr_t)w->p->mem,
				.flags = 1 + below(r, 2),
			};
			long ret = ioctl(vm, KESTREL_SET_MEMORY_REGION, &m);

			judge(w, "SET_MEMORY_REGION (guest)", ret, errno, 0);
		}
		vcpu = ioctl(vm, KESTREL_CREATE_VCPU, 0UL);
		judge(w, "CREATE_VCPU (guest)", vcpu, errno, E(ENOMEM));
		if (vcpu < 0) {
			close(vm);
			return;
		}
		run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   vcpu, 0);
		if (run == MAP_FAILED) {
			report(w, "mmap run page: %s", errno_name(errno));
			close(vcpu);
			close(vm);
			return;
		}
		while (n++ < 8 && time(NULL) < w->deadline)
			guest_round(w, vm, vcpu, run);
		munmap(run, run_size);
		if (one_in(r, 2)) {
			close(vm);
			close(vcpu);
		} else {
			close(vcpu);
			close(vm);
		}
	}
	if (w->timer_ok)
		timer_delete(w->timer);
}

static void *guest_fn(void *arg)
{
	struct worker *w = arg;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	cur_worker = w;
	w->tid = gettid();
	guest_loop(w);
	return NULL;
}

/* ---- the tests ------------------------------------------------------------ */

FIXTURE(fuzz) {
	struct pool p;
};

FIXTURE_SETUP(fuzz)
{
	if (!pool_init(&self->p))
		SKIP(return, "%s or memory: %s", KESTREL_DEV, strerror(errno));
	catch_crashes();
	run_size = ioctl(self->p.sys_fd, KESTREL_GET_VCPU_MMAP_SIZE, 0UL);
	ASSERT_LT(0, run_size);
}

FIXTURE_TEARDOWN(fuzz)
{
	if (self->p.sys_fd > 0)
		pool_fini(&self->p);
}

/* Budget shares, in tenths of KESTREL_FUZZ_SECONDS */
#define SHARE_IOCTLS	4
#define SHARE_GUEST	3
#define SHARE_THREADS	3

static unsigned int share(unsigned int tenths)
{
	unsigned int s = opt_seconds * tenths / 10;

	return s ? s : 1;
}

/* Some VMs and vCPUs to start from, RAM in each */
static void prepare_pool(struct worker *w)
{
	int i;

	if (w->id)
		return;
	for (i = 0; i < F_VMS; i++) {
		int vm = new_vm(w), j;

		if (vm < 0)
			return;
		add_ram(w, vm);
		w->p->vm[i] = vm;
		for (j = 0; j < 2; j++) {
			int fd = ioctl(vm, KESTREL_CREATE_VCPU, (unsigned long)j);

			if (fd >= 0)
				add_vcpu(w, fd);
		}
	}
}

TEST_F_TIMEOUT(fuzz, ioctls, 30)
{
	ksft_print_msg("fuzz.ioctls: %u s, seed %" PRIu64 "\n",
		       share(SHARE_IOCTLS), fuzz_seed);
	ASSERT_EQ(0, fuzz_workers(&self->p, "ioctls", 1, share(SHARE_IOCTLS),
				  prepare_pool));
}

TEST_F_TIMEOUT(fuzz, guest, 30)
{
	struct worker w;
	struct monitor m;
	pthread_t th, mon;
	struct sigaction sa;
	sigset_t set;

	ksft_print_msg("fuzz.guest: %u s, seed %" PRIu64 "\n",
		       share(SHARE_GUEST), fuzz_seed);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wd_handler;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&w, 0, sizeof(w));
	w.p = &self->p;
	w.tail = map_guarded();
	w.mis = map_guarded();
	w.r.s = test_seed("guest", 0);
	w.deadline = time(NULL) + share(SHARE_GUEST);
	memset(&m, 0, sizeof(m));
	m.w = &w;
	m.n = 1;
	pthread_create(&mon, NULL, monitor_fn, &m);
	pthread_create(&th, NULL, guest_fn, &w);
	pthread_join(th, NULL);
	m.stop = true;
	pthread_join(mon, NULL);
	unmap_guarded(&w);
	print_stats(&self->p);
	ASSERT_EQ(0, self->p.failures);
}

TEST_F_TIMEOUT(fuzz, threads, 30)
{
	ksft_print_msg("fuzz.threads: %u threads, %u s, seed %" PRIu64 "\n",
		       opt_threads, share(SHARE_THREADS), fuzz_seed);
	ASSERT_EQ(0, fuzz_workers(&self->p, "threads", opt_threads,
				  share(SHARE_THREADS), prepare_pool));
}

static unsigned long env_ul(const char *name, unsigned long def)
{
	const char *s = getenv(name);

	return s && *s ? strtoul(s, NULL, 0) : def;
}

int main(int argc, char **argv)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	fuzz_seed = env_ul("KESTREL_FUZZ_SEED",
			   (uint64_t)ts.tv_sec * 1000003 + ts.tv_nsec / 1000);
	opt_seconds = env_ul("KESTREL_FUZZ_SECONDS", opt_seconds);
	opt_threads = env_ul("KESTREL_FUZZ_THREADS", opt_threads);
	if (opt_threads < 1)
		opt_threads = 1;
	if (opt_threads > MAX_THREADS)
		opt_threads = MAX_THREADS;
	opt_verbose = env_ul("KESTREL_FUZZ_VERBOSE", 0);

	/*
	 * The seed first, right after the TAP header, so that even a crashed
	 * host's log has it; the harness must not print the header again.
	 */
	ksft_print_header();
	setenv("KSFT_TAP_LEVEL", "1", 0);
	printf("# seed: %" PRIu64 "\n", fuzz_seed);
	printf("# KESTREL_FUZZ_SECONDS=%u KESTREL_FUZZ_THREADS=%u (reproduce: KESTREL_FUZZ_SEED=%" PRIu64 ")\n",
	       opt_seconds, opt_threads, fuzz_seed);

	if (access(KESTREL_DEV, R_OK | W_OK))
		ksft_exit_skip("%s: %s: is the kestrel module loaded (and are we root)?\n",
			       KESTREL_DEV, strerror(errno));

	/* Each test's harness timeout: its share of the budget, and room. */
	_fuzz_ioctls_object->timeout = share(SHARE_IOCTLS) + RUN_HUNG_S + 30;
	_fuzz_guest_object->timeout = share(SHARE_GUEST) + RUN_HUNG_S + 30;
	_fuzz_threads_object->timeout = share(SHARE_THREADS) + RUN_HUNG_S + 30;
	return test_harness_run(argc, argv);
}
