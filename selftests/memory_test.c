// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory on the host's memory manager: lazy mapping, coherence with
 * the owner's mapping when the host changes it (remap, MADV_DONTNEED,
 * mprotect, munmap), 2 MiB nested entries for THP and hugetlbfs, slot
 * moves and many slots, dirty logging (exact, and under a concurrently
 * writing guest), release of every page at teardown and at process kill,
 * and a guest larger than the host's RAM while the host swaps to zram.
 *
 * Guests run lm_mem (guests/lm_mem.S), one operation per RUN, with the
 * first 8 GiB of guest-physical space identity-mapped with 1 GiB pages.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib.h"

DECLARE_GUEST(lm_mmio);

#define OP_READ		1
#define OP_WRITE	2
#define OP_FILL		3
#define OP_VERIFY	4
#define OP_SPIN		5

#define GPA_HIGH	0x40000000ULL	/* 1 GiB: where test slots go */
#define SZ_2M		(2ULL << 20)

struct env {
	struct vm vm;
	struct vcpu vcpu;
};

/* Slot 0: the guest's code and tables; 1 GiB pages map 0..8 GiB. */
static bool env_init(struct env *e)
{
	return lm_mem_setup(&e->vm, &e->vcpu);
}

/* Point lm_mem at an operation; the caller runs it. */
static bool guest_set_op(struct env *e, uint64_t op, uint64_t addr,
			 uint64_t val, uint64_t count)
{
	return lm_mem_op(&e->vcpu, op, addr, val, count);
}

static int guest_op(struct env *e, uint64_t op, uint64_t addr, uint64_t val,
		    uint64_t count)
{
	if (!guest_set_op(e, op, addr, val, count))
		return -1;
	return vcpu_run(&e->vcpu);
}

static bool g_write(struct env *e, uint64_t gpa, uint64_t val)
{
	if (guest_op(e, OP_WRITE, gpa, val, 0) < 0) {
		diag("guest write 0x%llx: %s", (unsigned long long)gpa,
		     errno_name(errno));
		dump_vcpu(&e->vcpu);
		return false;
	}
	return e->vcpu.run->exit_reason == KESTREL_EXIT_HLT ||
	       (dump_vcpu(&e->vcpu), false);
}

static bool g_read(struct env *e, uint64_t gpa, uint64_t *val)
{
	return guest_set_op(e, OP_READ, gpa, 0, 0) &&
	       run_expect_out64(&e->vcpu, PORT_U32, val) &&
	       run_expect_hlt(&e->vcpu);
}

/* Fill or verify n pages at gpa with base + i, in chunks per RUN. */
static bool g_pages(struct env *e, uint64_t op, uint64_t gpa, uint64_t base,
		    uint64_t n)
{
	const uint64_t chunk = 8192;		/* 32 MiB per RUN */
	uint64_t i;
	uint32_t out;

	for (i = 0; i < n; i += chunk) {
		uint64_t c = n - i < chunk ? n - i : chunk;

		if (op == OP_FILL) {
			if (guest_op(e, OP_FILL, gpa + i * 4096, base + i, c) < 0 ||
			    e->vcpu.run->exit_reason != KESTREL_EXIT_HLT) {
				diag("fill at page %llu failed", (unsigned long long)i);
				dump_vcpu(&e->vcpu);
				return false;
			}
			continue;
		}
		if (!guest_set_op(e, OP_VERIFY, gpa + i * 4096, base + i, c) ||
		    !run_expect_out(&e->vcpu, PORT_U32, 4, &out) ||
		    !run_expect_hlt(&e->vcpu))
			return false;
		if (out != 0xffffffff) {
			diag("page %llu holds the wrong value",
			     (unsigned long long)(i + out));
			return false;
		}
	}
	return true;
}

static bool vm_stats(struct env *e, struct kestrel_vm_stats *st)
{
	if (ioctl(e->vm.fd, KESTREL_GET_VM_STATS, st)) {
		diag("KESTREL_GET_VM_STATS: %s", errno_name(errno));
		return false;
	}
	return true;
}

static void *map_anon(size_t size, int extra)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | extra,
		       -1, 0);

	return p == MAP_FAILED ? NULL : res_map(p, size);
}

/* An env with @size bytes of anonymous memory as slot 1 at GPA_HIGH. */
static void *env_with_slot(struct env *e, size_t size)
{
	void *mem;

	if (!env_init(e))
		return NULL;
	mem = map_anon(size, 0);
	if (!mem) {
		diag("mmap %zu bytes: %s", size, strerror(errno));
		return NULL;
	}
	return vm_add_slot(&e->vm, 1, GPA_HIGH, mem, size) ? mem : NULL;
}

/* 2 MiB-aligned anonymous memory (over-map and trim). */
static uint8_t *map_aligned(size_t size)
{
	uint8_t *p = mmap(NULL, size + SZ_2M, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (uint8_t *)(((uintptr_t)p + SZ_2M - 1) & ~(SZ_2M - 1));
	if (a > p)
		munmap(p, a - p);
	munmap(a + size, p + SZ_2M - a);
	return res_map(a, size);
}

static long meminfo(const char *key)
{
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = atol(line + strlen(key) + 1);
	fclose(f);
	return v;			/* KiB */
}

static long vmstat(const char *key)
{
	char name[64];
	long v, r = -1;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", name, &v) == 2)
		if (!strcmp(name, key))
			r = v;
	fclose(f);
	return r;
}

/* ---- lazy mapping ---------------------------------------------------------- */

static enum test_result test_lazy(const void *arg)
{
	struct kestrel_vm_stats st;
	const uint64_t big = 64ULL << 30;	/* 64 GiB: far more than the host */
	struct env e;
	uint8_t *mem;

	(void)arg;
	CHECK_H(env_init(&e));
	mem = map_anon(big, 0);
	CHECK(mem);
	CHECK_H(vm_add_slot(&e.vm, 1, 4ULL << 30, mem, big));
	CHECK_H(g_write(&e, (4ULL << 30) + 12345 * 4096, 0x1234));
	CHECK_H(vm_stats(&e, &st));
	diag("memory %llu MiB, mapped %llu x 4K + %llu x 2M after one write",
	     (unsigned long long)(st.memory_size >> 20),
	     (unsigned long long)st.mapped_4k, (unsigned long long)st.mapped_2m);
	CHECK_EQ(st.memory_size, big + GUEST_MEM_SIZE);
	/*
	 * Only what the guest touched (code, stack, tables, one page), at
	 * the host's page size: 6.12 backs even a first touch with a THP.
	 */
	CHECK(st.mapped_4k * 4096 + st.mapped_2m * SZ_2M < (16ULL << 20));
	CHECK_EQ(((uint64_t *)mem)[12345 * 512], 0x1234);
	return TEST_PASS;
}

/* ---- coherence --------------------------------------------------------------- */

static int make_file(const char *name, uint64_t val, size_t size)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/kestrel-mem-%s-%d", name, getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	unlink(path);
	if (ftruncate(fd, size) || pwrite(fd, &val, 8, 0) != 8) {
		close(fd);
		return -1;
	}
	return res_fd(fd);
}

static enum test_result test_remap_file(const void *arg)
{
	const size_t size = 2 * 4096;
	uint64_t v, back;
	struct env e;
	int fa, fb;
	void *p;

	(void)arg;
	CHECK_H(env_init(&e));
	fa = make_file("a", 0xaaaa0001, size);
	fb = make_file("b", 0xbbbb0002, size);
	CHECK_OK(fa);
	CHECK_OK(fb);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fa, 0);
	CHECK(p != MAP_FAILED);
	res_map(p, size);
	CHECK_H(vm_add_slot(&e.vm, 1, GPA_HIGH, p, size));
	CHECK_H(g_read(&e, GPA_HIGH, &v));
	CHECK_EQ(v, 0xaaaa0001);

	/* Another file at the same address: the guest must see it. */
	CHECK(mmap(p, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		   fb, 0) == p);
	CHECK_H(g_read(&e, GPA_HIGH, &v));
	CHECK_EQ(v, 0xbbbb0002);

	/* And what the guest writes lands in that file. */
	CHECK_H(g_write(&e, GPA_HIGH + 8, 0xbbbb0003));
	CHECK(pread(fb, &back, 8, 8) == 8);
	CHECK_EQ(back, 0xbbbb0003);
	CHECK(pread(fa, &back, 8, 8) == 8);
	CHECK_EQ(back, 0);
	return TEST_PASS;
}

static enum test_result test_dontneed(const void *arg)
{
	struct env e;
	uint64_t *p, v;

	(void)arg;
	p = env_with_slot(&e, 4096 * 4);
	CHECK(p);
	CHECK_H(g_write(&e, GPA_HIGH + 4096, 0x5eed));
	CHECK_EQ(p[512], 0x5eed);

	/* The host drops the page: the guest must read zeros, not old data. */
	CHECK_OK(madvise(p, 4096 * 4, MADV_DONTNEED));
	CHECK_EQ(p[512], 0);
	CHECK_H(g_read(&e, GPA_HIGH + 4096, &v));
	CHECK_EQ(v, 0);
	CHECK_H(g_write(&e, GPA_HIGH + 4096, 0xf00d));
	CHECK_EQ(p[512], 0xf00d);
	return TEST_PASS;
}

static enum test_result test_mprotect(const void *arg)
{
	struct kestrel_run *run;
	struct env e;
	uint64_t *p, v;

	(void)arg;
	CHECK_H(env_init(&e));
	run = e.vcpu.run;
	p = map_anon(4096, 0);
	CHECK(p);
	CHECK_H(vm_add_slot(&e.vm, 1, GPA_HIGH, p, 4096));
	CHECK_H(g_write(&e, GPA_HIGH, 0x1111));

	/* Read-only on the host: guest reads work, writes come to us. */
	CHECK_OK(mprotect(p, 4096, PROT_READ));
	CHECK_H(g_read(&e, GPA_HIGH, &v));
	CHECK_EQ(v, 0x1111);
	CHECK_ERR(guest_op(&e, OP_WRITE, GPA_HIGH + 16, 0x2222, 0), EFAULT);
	CHECK_EQ(run->exit_reason, KESTREL_EXIT_MEMORY_FAULT);
	CHECK_EQ(run->memory_fault.gpa, GPA_HIGH);
	CHECK_EQ(run->memory_fault.size, 4096);
	CHECK_EQ(run->memory_fault.flags, KESTREL_MEMORY_FAULT_WRITE);
	CHECK_EQ(p[2], 0);

	/* Writable again: the same RUN, resumed, completes the write. */
	CHECK_OK(mprotect(p, 4096, PROT_READ | PROT_WRITE));
	CHECK_OK(vcpu_run(&e.vcpu));
	CHECK_EQ(run->exit_reason, KESTREL_EXIT_HLT);
	CHECK_EQ(p[2], 0x2222);

	/* Unmapped on the host: even a read is a memory fault. */
	CHECK_OK(munmap(p, 4096));
	CHECK_ERR(guest_op(&e, OP_READ, GPA_HIGH, 0, 0), EFAULT);
	CHECK_EQ(run->exit_reason, KESTREL_EXIT_MEMORY_FAULT);
	CHECK_EQ(run->memory_fault.flags, 0);
	return TEST_PASS;
}

/* ---- large pages ---------------------------------------------------------------- */

static bool set_thp(void)
{
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_WRONLY);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, "always", 6) == 6;
	close(fd);
	return ok;
}

static enum test_result large_pages(struct env *e, uint8_t *mem, size_t size)
{
	struct kestrel_vm_stats st;

	CHECK_H(vm_add_slot(&e->vm, 1, GPA_HIGH, mem, size));
	CHECK_H(g_pages(e, OP_FILL, GPA_HIGH, 0x7000, size / 4096));
	CHECK_H(g_pages(e, OP_VERIFY, GPA_HIGH, 0x7000, size / 4096));
	CHECK_H(vm_stats(e, &st));
	diag("mapped %llu x 4K + %llu x 2M", (unsigned long long)st.mapped_4k,
	     (unsigned long long)st.mapped_2m);
	CHECK(st.mapped_2m >= size / SZ_2M);
	CHECK_EQ(*(uint64_t *)(mem + size - 4096), 0x7000 + size / 4096 - 1);
	return TEST_PASS;
}

static enum test_result test_thp(const void *arg)
{
	const size_t size = 8 * SZ_2M;
	struct env e;
	uint8_t *mem;

	(void)arg;
	if (!set_thp())
		return test_skip("transparent huge pages not available");
	CHECK_H(env_init(&e));
	mem = map_aligned(size);
	CHECK(mem);
	CHECK_OK(madvise(mem, size, MADV_HUGEPAGE));
	return large_pages(&e, mem, size);
}

static enum test_result test_hugetlbfs(const void *arg)
{
	const size_t size = 4 * SZ_2M;
	struct env e;
	uint8_t *mem;
	int fd;

	(void)arg;
	fd = open("/proc/sys/vm/nr_hugepages", O_WRONLY);
	CHECK_OK(fd);
	CHECK(write(fd, "8", 1) == 1);
	close(fd);
	CHECK_H(env_init(&e));
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	CHECK(mem != MAP_FAILED);
	res_map(mem, size);
	return large_pages(&e, mem, size);
}

/* ---- slots ------------------------------------------------------------------------ */

static enum test_result test_many_slots(const void *arg)
{
	long nr = check_cap(KESTREL_CAP_NR_MEMSLOTS);
	struct env e;
	uint64_t *mem, v;
	long i;

	(void)arg;
	CHECK(nr >= 256);
	CHECK_H(env_init(&e));
	mem = map_anon((nr - 1) * 4096, 0);
	CHECK(mem);
	/* Slots 1..nr-1, one page each, every other page of guest space. */
	for (i = 1; i < nr; i++) {
		mem[(i - 1) * 512] = 0x510700000000ULL | i;
		CHECK_H(vm_add_slot(&e.vm, i, GPA_HIGH + i * 8192,
				    mem + (i - 1) * 512, 4096));
	}
	for (i = 1; i < nr; i += 37) {
		CHECK_H(g_read(&e, GPA_HIGH + i * 8192, &v));
		CHECK_EQ(v, 0x510700000000ULL | i);
	}
	CHECK_H(g_read(&e, GPA_HIGH + (nr - 1) * 8192, &v));
	CHECK_EQ(v, 0x510700000000ULL | (nr - 1));
	return TEST_PASS;
}

static enum test_result test_move(const void *arg)
{
	struct kestrel_memory_region mr;
	struct env e;
	uint64_t *mem, v;

	(void)arg;
	mem = env_with_slot(&e, 4 * 4096);
	CHECK(mem);
	CHECK_H(g_write(&e, GPA_HIGH + 4096, 0x600d));

	mr = (struct kestrel_memory_region){
		.slot = 1, .guest_phys_addr = GPA_HIGH + (1 << 20),
		.memory_size = 4 * 4096, .userspace_addr = (uintptr_t)mem,
	};
	CHECK_OK(ioctl(e.vm.fd, KESTREL_SET_MEMORY_REGION, &mr));
	/* The same memory at the new address... */
	CHECK_H(g_read(&e, GPA_HIGH + (1 << 20) + 4096, &v));
	CHECK_EQ(v, 0x600d);
	/* ...and no RAM at the old one: a load there is MMIO. */
	CHECK_OK(guest_op(&e, OP_READ, GPA_HIGH + 4096, 0, 0));
	CHECK_EQ(e.vcpu.run->exit_reason, KESTREL_EXIT_MMIO);
	CHECK_EQ(e.vcpu.run->mmio.phys_addr, GPA_HIGH + 4096);
	CHECK_EQ(e.vcpu.run->mmio.is_write, 0);
	return TEST_PASS;
}

/* ---- dirty logging ------------------------------------------------------------------ */

#define DIRTY_PAGES	64

static bool set_logging(struct env *e, void *mem, bool on)
{
	struct kestrel_memory_region mr = {
		.slot = 1, .flags = on ? KESTREL_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = GPA_HIGH, .memory_size = DIRTY_PAGES * 4096,
		.userspace_addr = (uintptr_t)mem,
	};

	if (ioctl(e->vm.fd, KESTREL_SET_MEMORY_REGION, &mr)) {
		diag("SET_MEMORY_REGION logging=%d: %s", on, errno_name(errno));
		return false;
	}
	return true;
}

static bool get_log(struct env *e, uint64_t *bitmap)
{
	struct kestrel_dirty_log log = { .slot = 1, .bitmap = (uintptr_t)bitmap };

	if (ioctl(e->vm.fd, KESTREL_GET_DIRTY_LOG, &log)) {
		diag("KESTREL_GET_DIRTY_LOG: %s", errno_name(errno));
		return false;
	}
	return true;
}

static enum test_result test_dirty_exact(const void *arg)
{
	static const int written[] = { 0, 3, 17, 40, 63 };
	uint64_t bitmap, want = 0, v;
	struct env e;
	uint8_t *mem;
	size_t i;

	(void)arg;
	mem = env_with_slot(&e, DIRTY_PAGES * 4096);
	CHECK(mem);
	/* Mapped writable before logging starts: logging must catch it. */
	CHECK_H(g_pages(&e, OP_FILL, GPA_HIGH, 0, DIRTY_PAGES));
	CHECK_H(set_logging(&e, mem, true));

	for (i = 0; i < ARRAY_SIZE(written); i++) {
		CHECK_H(g_write(&e, GPA_HIGH + written[i] * 4096 + 8, i));
		want |= 1ULL << written[i];
	}
	/* Reads do not dirty. */
	CHECK_H(g_read(&e, GPA_HIGH + 5 * 4096, &v));
	CHECK_EQ(v, 5);
	CHECK_H(get_log(&e, &bitmap));
	CHECK_EQ(bitmap, want);
	/* Fetching cleared it. */
	CHECK_H(get_log(&e, &bitmap));
	CHECK_EQ(bitmap, 0);
	/* A page written again is reported again, alone. */
	CHECK_H(g_write(&e, GPA_HIGH + 17 * 4096, 0x17));
	CHECK_H(g_write(&e, GPA_HIGH + 17 * 4096 + 8, 0x18));
	CHECK_H(get_log(&e, &bitmap));
	CHECK_EQ(bitmap, 1ULL << 17);

	/* Logging off: no log to fetch. */
	CHECK_H(set_logging(&e, mem, false));
	CHECK_ERR(ioctl(e.vm.fd, KESTREL_GET_DIRTY_LOG,
			&(struct kestrel_dirty_log){ .slot = 1,
						     .bitmap = (uintptr_t)&bitmap }),
		  EINVAL);
	return TEST_PASS;
}

struct watcher {
	struct env *e;
	pthread_t vcpu_thread;
	uint64_t seen;
	bool ok, only_written;
};

/* Fetch logs while the guest writes, then kick the vCPU out. */
static void *watch_dirty(void *p)
{
	struct watcher *w = p;
	uint64_t bitmap;
	int rounds;

	w->ok = true;
	w->only_written = true;
	for (rounds = 0; rounds < 50 && w->ok; rounds++) {
		msleep(10);
		w->ok = get_log(w->e, &bitmap);
		/* Only pages the guest writes, ever. */
		if (bitmap & ~0xffffffffULL)
			w->only_written = false;
		w->seen |= bitmap;
	}
	w->e->vcpu.run->immediate_exit = 1;
	pthread_kill(w->vcpu_thread, SIGUSR1);
	return NULL;
}

static void nop_handler(int sig)
{
	(void)sig;
}

static enum test_result test_dirty_concurrent(const void *arg)
{
	struct sigaction sa = { .sa_handler = nop_handler };
	struct watcher w = { 0 };
	uint64_t bitmap;
	struct env e;
	pthread_t t;
	uint8_t *mem;
	int r;

	(void)arg;
	mem = env_with_slot(&e, DIRTY_PAGES * 4096);
	CHECK(mem);
	CHECK_H(set_logging(&e, mem, true));
	CHECK_OK(sigaction(SIGUSR1, &sa, NULL));

	w.e = &e;
	w.vcpu_thread = pthread_self();
	CHECK(start_thread(watch_dirty, &w, &t));
	/* The guest writes pages 0..31 round and round until kicked. */
	r = guest_op(&e, OP_SPIN, GPA_HIGH, 0, 32);
	CHECK_ERR(r, EINTR);
	pthread_join(t, NULL);
	e.vcpu.run->immediate_exit = 0;
	CHECK(w.ok);
	CHECK(w.only_written);
	/* Every page it wrote while we watched was reported at least once. */
	CHECK_EQ(w.seen, 0xffffffffULL);

	/* Quiet guest: one last log, then exactly the page written next. */
	CHECK_H(get_log(&e, &bitmap));
	CHECK_H(get_log(&e, &bitmap));
	CHECK_EQ(bitmap, 0);
	CHECK_H(g_write(&e, GPA_HIGH + 50 * 4096, 1));
	CHECK_H(get_log(&e, &bitmap));
	CHECK_EQ(bitmap, 1ULL << 50);
	return TEST_PASS;
}

static enum test_result test_dirty_errors(const void *arg)
{
	struct kestrel_dirty_log log;
	uint64_t bitmap;
	struct env e;
	uint8_t *mem;

	(void)arg;
	CHECK_H(env_init(&e));
	mem = map_anon(DIRTY_PAGES * 4096, 0);
	CHECK(mem);
	log = (struct kestrel_dirty_log){ .slot = 1, .bitmap = (uintptr_t)&bitmap };
	CHECK_ERR(ioctl(e.vm.fd, KESTREL_GET_DIRTY_LOG, &log), ENOENT);
	CHECK_H(vm_add_slot(&e.vm, 1, GPA_HIGH, mem, DIRTY_PAGES * 4096));
	CHECK_ERR(ioctl(e.vm.fd, KESTREL_GET_DIRTY_LOG, &log), EINVAL);
	CHECK_H(set_logging(&e, mem, true));
	log.padding = 1;
	CHECK_ERR(ioctl(e.vm.fd, KESTREL_GET_DIRTY_LOG, &log), EINVAL);
	log.padding = 0;
	log.slot = check_cap(KESTREL_CAP_NR_MEMSLOTS);
	CHECK_ERR(ioctl(e.vm.fd, KESTREL_GET_DIRTY_LOG, &log), EINVAL);
	log.slot = 1;
	log.bitmap = 8;
	CHECK_ERR(ioctl(e.vm.fd, KESTREL_GET_DIRTY_LOG, &log), EFAULT);
	CHECK_ERR(ioctl(e.vm.fd, KESTREL_GET_DIRTY_LOG, NULL), EFAULT);
	/* Both are VM ioctls: a vCPU fd does not know them. */
	CHECK_ERR(ioctl(e.vcpu.fd, KESTREL_GET_DIRTY_LOG, &log), ENOTTY);
	CHECK_ERR(ioctl(e.vcpu.fd, KESTREL_GET_VM_STATS, &bitmap), ENOTTY);
	CHECK_ERR(ioctl(e.vm.fd, KESTREL_GET_VM_STATS, NULL), EFAULT);
	return TEST_PASS;
}

/* ---- teardown ---------------------------------------------------------------------- */

#define TEARDOWN_PAGES	65536		/* 256 MiB */

/* Memory the host can hand out: free plus reclaimable. */
/* Free pages the per-CPU lists hold (/proc/zoneinfo "count:"), in KiB. */
static long pcp_kib(void)
{
	char line[256];
	long n, total = 0;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %ld", &n) == 1)
			total += n;
	fclose(f);
	return total * (sysconf(_SC_PAGESIZE) / 1024);
}

/*
 * MemAvailable plus what the per-CPU lists hold: the page allocator keeps
 * freed pages there, uncounted by MemAvailable, and 6.12 sizes the lists
 * by load, so MemAvailable alone swings by tens of MiB between readings.
 */
static long avail_kib(void)
{
	return meminfo("MemAvailable") + pcp_kib();
}

/*
 * avail_kib() once it is at least @want KiB, or the best seen in 10 s:
 * what a process frees reaches the allocator over the next moments.
 */
static long avail_settled_kib(long want)
{
	long best = avail_kib(), now;
	int i;

	for (i = 0; i < 40 && best < want; i++) {
		msleep(250);
		now = avail_kib();
		if (now > best)
			best = now;
	}
	return best;
}

static bool fill_vm(void)
{
	struct env e;
	uint8_t *mem;

	mem = map_anon(TEARDOWN_PAGES * 4096ULL, 0);
	return mem && env_init(&e) &&
	       vm_add_slot(&e.vm, 1, GPA_HIGH, mem, TEARDOWN_PAGES * 4096ULL) &&
	       g_pages(&e, OP_FILL, GPA_HIGH, 1, TEARDOWN_PAGES);
}

/* A child makes a VM with TEARDOWN_PAGES touched and exits. */
static bool vm_cycle(void)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (pid == 0)
		_exit(fill_vm() ? 0 : 1);
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

static enum test_result test_teardown(const void *arg)
{
	long before, during, after;
	pid_t pid;
	int status, i;

	(void)arg;
	/*
	 * Six 256 MiB guests through a host of under 1 GiB: a leak of any
	 * size makes the later ones fail, or shows well past the noise that
	 * is left once the per-CPU lists are counted (avail_kib()).
	 */
	CHECK(vm_cycle());
	before = avail_kib();
	for (i = 0; i < 6; i++)
		CHECK(vm_cycle());
	after = avail_settled_kib(before - 49152);
	diag("MemAvailable + per-CPU lists: %ld KiB before, %ld KiB after six 256 MiB VMs",
	     before, after);
	CHECK(after > before - 49152);

	/* Killed while its guest runs: the same. */
	pid = fork();
	CHECK_OK(pid);
	if (pid == 0) {
		struct env e;
		uint8_t *mem = map_anon(TEARDOWN_PAGES * 4096ULL, 0);

		if (!mem || !env_init(&e) ||
		    !vm_add_slot(&e.vm, 1, GPA_HIGH, mem,
				 TEARDOWN_PAGES * 4096ULL) ||
		    !g_pages(&e, OP_FILL, GPA_HIGH, 1, TEARDOWN_PAGES))
			_exit(1);
		guest_op(&e, OP_SPIN, GPA_HIGH, 0, TEARDOWN_PAGES);
		_exit(2);
	}
	/* Wait until the child's guest has taken its memory. */
	during = avail_kib();
	for (i = 0; i < 400 && during > before - 160000; i++) {
		msleep(50);
		during = avail_kib();
	}
	CHECK(during <= before - 160000);
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_OK(waitpid(pid, &status, 0));
	CHECK(WIFSIGNALED(status));
	after = avail_settled_kib(before - 49152);
	diag("MemAvailable + per-CPU lists: %ld KiB with the guest, %ld KiB after SIGKILL",
	     during, after);
	CHECK(after > before - 49152);
	return TEST_PASS;
}

/* ---- a guest larger than the host -------------------------------------------------- */

static enum test_result test_bigger_than_host(const void *arg)
{
	long ram = meminfo("MemTotal") * 1024L;
	uint64_t size, pages;
	long out_before, out_after, in_before, in_after;
	struct kestrel_vm_stats st = { 0 };
	bool ok, have_env;
	uint8_t *mem = NULL;
	struct env e;

	(void)arg;
	if (getenv("KESTREL_NO_SWAP_TEST") &&
	    strcmp(getenv("KESTREL_NO_SWAP_TEST"), "0"))
		return test_skip("KESTREL_NO_SWAP_TEST is set (too slow for this kernel)");
	if (access("/lib/modules/zram/order", R_OK))
		return test_skip("no zram modules in /lib/modules/zram");
	CHECK(ram > 0);
	/* Twice the host's RAM, rounded to 1 GiB. */
	size = ((uint64_t)ram * 2 + (1ULL << 30) - 1) & ~((1ULL << 30) - 1);
	pages = size / 4096;

	CHECK(load_stock_modules("/lib/modules/zram", NULL));
	CHECK(write_file("/sys/block/zram0/disksize", "3G"));
	CHECK(system("mkswap /dev/zram0 >/dev/null") == 0);
	CHECK_OK(swapon("/dev/zram0", 0));

	out_before = vmstat("pswpout");
	in_before = vmstat("pswpin");
	have_env = env_init(&e);
	ok = have_env && (mem = map_anon(size, 0)) != NULL &&
	     vm_add_slot(&e.vm, 1, 4ULL << 30, mem, size);
	if (ok) {
		diag("guest RAM %llu MiB, host RAM %ld MiB",
		     (unsigned long long)(size >> 20), ram >> 20);
		ok = g_pages(&e, OP_FILL, 4ULL << 30, 0xb16b00b5ULL << 20, pages) &&
		     g_pages(&e, OP_VERIFY, 4ULL << 30, 0xb16b00b5ULL << 20, pages) &&
		     vm_stats(&e, &st);
	}
	out_after = vmstat("pswpout");
	in_after = vmstat("pswpin");
	if (ok)
		diag("swapped out %ld, in %ld pages; %llu invalidations, %llu nested faults",
		     out_after - out_before, in_after - in_before,
		     (unsigned long long)st.invalidations,
		     (unsigned long long)st.nested_faults);

	/* Give the memory back before judging, then switch swap off. */
	if (have_env) {
		res_close(e.vcpu.fd);
		res_unmap(e.vcpu.run, e.vcpu.run_size);
		res_close(e.vm.fd);
	}
	if (mem)
		res_unmap(mem, size);
	CHECK_OK(swapoff("/dev/zram0"));
	write_file("/sys/block/zram0/reset", "1");

	CHECK(ok);
	/* The host really swapped guest memory, and the guest never noticed. */
	CHECK(out_after - out_before > (long)(pages / 4));
	CHECK(in_after - in_before > 0);
	CHECK(st.invalidations > 0);
	return TEST_PASS;
}

/* ---- MMIO ---------------------------------------------------------------------------- */

#define MMIO_BASE	0xfe000000ULL	/* no slot there */

static bool expect_mmio(struct env *e, uint64_t off, uint32_t len, bool write,
			uint64_t data)
{
	struct kestrel_run *run = e->vcpu.run;
	uint64_t got = 0;

	if (vcpu_run(&e->vcpu) < 0 || run->exit_reason != KESTREL_EXIT_MMIO) {
		diag("want an MMIO exit at +%llu", (unsigned long long)off);
		dump_vcpu(&e->vcpu);
		return false;
	}
	memcpy(&got, run->mmio.data, run->mmio.len <= 8 ? run->mmio.len : 8);
	if (run->mmio.phys_addr != MMIO_BASE + off || run->mmio.len != len ||
	    run->mmio.is_write != write || (write && got != data)) {
		diag("MMIO at 0x%llx len %u write %u data 0x%llx; want +%llu len %u write %u data 0x%llx",
		     (unsigned long long)run->mmio.phys_addr, run->mmio.len,
		     run->mmio.is_write, (unsigned long long)got,
		     (unsigned long long)off, len, write,
		     (unsigned long long)data);
		return false;
	}
	if (!write)
		memcpy(run->mmio.data, &data, len);
	return true;
}

static enum test_result test_mmio(const void *arg)
{
	struct kestrel_regs r;
	uint64_t v;
	struct env e;

	(void)arg;
	CHECK_H(env_init(&e));
	CHECK_H(vm_load(&e.vm, GUEST(lm_mmio)));
	CHECK_H(get_regs(&e.vcpu, &r));
	r.rip = GUEST_LOAD;
	r.rsi = MMIO_BASE;
	CHECK_H(set_regs(&e.vcpu, &r));

	CHECK_H(expect_mmio(&e, 0, 4, true, 0x11223344));
	CHECK_H(expect_mmio(&e, 1, 1, true, 0x5a));
	CHECK_H(expect_mmio(&e, 8, 8, true, 0x0102030405060708ULL));
	CHECK_H(expect_mmio(&e, 16, 2, true, 0xbeef));
	CHECK_H(expect_mmio(&e, 24, 8, true, 0xfffffffffffffffeULL));
	CHECK_H(expect_mmio(&e, 32, 1, true, 0x07));		/* BH */
	CHECK_H(expect_mmio(&e, 40, 4, false, 0xdeadbeef));
	CHECK_H(expect_mmio(&e, 48, 1, false, 0xf0));
	CHECK_H(expect_mmio(&e, 56, 2, false, 0x8001));
	CHECK_H(expect_mmio(&e, 64, 8, false, 0x1122334455667788ULL));
	CHECK_H(expect_mmio(&e, 72, 1, false, 0x99));		/* AH */

	CHECK_H(run_expect_out64(&e.vcpu, PORT_U32, &v));
	CHECK_EQ(v, 0xdeadbeef);				/* ECX */
	CHECK_H(run_expect_out64(&e.vcpu, PORT_U32, &v));
	CHECK_EQ(v, 0xf0);					/* MOVZX */
	CHECK_H(run_expect_out64(&e.vcpu, PORT_U32, &v));
	CHECK_EQ(v, 0xffffffffffff8001ULL);			/* MOVSX */
	CHECK_H(run_expect_out64(&e.vcpu, PORT_U32, &v));
	CHECK_EQ(v, 0x1122334455667788ULL);
	CHECK_H(run_expect_out64(&e.vcpu, PORT_U32, &v));
	CHECK_EQ(v, 0x11229944);				/* AH merged */
	CHECK_H(run_expect_hlt(&e.vcpu));
	return TEST_PASS;
}

static enum test_result test_readonly_slot(const void *arg)
{
	struct kestrel_memory_region mr;
	struct kestrel_run *run;
	struct env e;
	uint64_t *mem, v;

	(void)arg;
	CHECK_H(env_init(&e));
	run = e.vcpu.run;
	mem = map_anon(2 * 4096, 0);
	CHECK(mem);
	mem[1] = 0x0123;
	mr = (struct kestrel_memory_region){
		.slot = 1, .flags = KESTREL_MEM_READONLY,
		.guest_phys_addr = GPA_HIGH, .memory_size = 2 * 4096,
		.userspace_addr = (uintptr_t)mem,
	};
	CHECK_OK(ioctl(e.vm.fd, KESTREL_SET_MEMORY_REGION, &mr));
	/* Reads are RAM... */
	CHECK_H(g_read(&e, GPA_HIGH + 8, &v));
	CHECK_EQ(v, 0x0123);
	/* ...writes are MMIO exits, and the memory stays as it was. */
	CHECK_OK(guest_op(&e, OP_WRITE, GPA_HIGH + 8, 0x4567, 0));
	CHECK_EQ(run->exit_reason, KESTREL_EXIT_MMIO);
	CHECK_EQ(run->mmio.phys_addr, GPA_HIGH + 8);
	CHECK_EQ(run->mmio.is_write, 1);
	CHECK_EQ(run->mmio.len, 8);
	CHECK_EQ(*(uint64_t *)run->mmio.data, 0x4567);
	CHECK_H(run_expect_hlt(&e.vcpu));
	CHECK_EQ(mem[1], 0x0123);
	CHECK_H(g_read(&e, GPA_HIGH + 8, &v));
	CHECK_EQ(v, 0x0123);

	/* Writable again: the same slot, new flags; writes land. */
	mr.flags = 0;
	CHECK_OK(ioctl(e.vm.fd, KESTREL_SET_MEMORY_REGION, &mr));
	CHECK_H(g_write(&e, GPA_HIGH + 8, 0x89ab));
	CHECK_EQ(mem[1], 0x89ab);
	/* And read-only once more: the mapping made writable must go. */
	mr.flags = KESTREL_MEM_READONLY;
	CHECK_OK(ioctl(e.vm.fd, KESTREL_SET_MEMORY_REGION, &mr));
	CHECK_OK(guest_op(&e, OP_WRITE, GPA_HIGH + 8, 0xcdef, 0));
	CHECK_EQ(run->exit_reason, KESTREL_EXIT_MMIO);
	CHECK_EQ(mem[1], 0x89ab);
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "a 64 GiB slot maps only what the guest touches", test_lazy, NULL },
	{ "a file remapped under a slot: the guest sees the new file", test_remap_file, NULL },
	{ "MADV_DONTNEED under a slot: the guest reads zeros", test_dontneed, NULL },
	{ "mprotect/munmap under a slot: MEMORY_FAULT exits, then resume", test_mprotect, NULL },
	{ "THP-backed guest memory gets 2 MiB nested entries", test_thp, NULL },
	{ "hugetlbfs-backed guest memory gets 2 MiB nested entries", test_hugetlbfs, NULL },
	{ "hundreds of slots, each mapped where it says", test_many_slots, NULL },
	{ "a moved slot: memory at the new address, nothing at the old", test_move, NULL },
	{ "MMIO: every MOV form, stores and loads completed", test_mmio, NULL },
	{ "read-only slots: reads are RAM, writes are MMIO exits",
	  test_readonly_slot, NULL },
	{ "dirty log: exactly the pages written", test_dirty_exact, NULL },
	{ "dirty log while the guest writes on another thread", test_dirty_concurrent, NULL },
	{ "dirty log and VM stats errors", test_dirty_errors, NULL },
	{ "every page released at exit and at SIGKILL", test_teardown, NULL },
	{ "a guest twice the host's RAM, while the host swaps to zram", test_bigger_than_host, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
