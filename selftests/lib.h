/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tiny shared library for the Kestrel selftests: TAP 13 output, checks
 * that print diagnostics, per-test resource cleanup, and helpers that set
 * up VMs, vCPUs, guest modes and run guests with a watchdog.
 */
#ifndef SELFTESTS_LIB_H
#define SELFTESTS_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <linux/kestrel.h>

#include "guests/guest.h"

#ifndef KESTREL_DEV
#define KESTREL_DEV	"/dev/kestrel"
#endif

#ifndef ARRAY_SIZE		/* kselftest.h has one too */
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

/* Seconds one RUN may take before the watchdog interrupts it. */
#define RUN_TIMEOUT	10

/* x86 bits the tests need */
#define X86_CR0_PE	(1ULL << 0)
#define X86_CR0_MP	(1ULL << 1)
#define X86_CR0_ET	(1ULL << 4)
#define X86_CR0_NE	(1ULL << 5)
#define X86_CR0_WP	(1ULL << 16)
#define X86_CR0_NW	(1ULL << 29)
#define X86_CR0_CD	(1ULL << 30)
#define X86_CR0_PG	(1ULL << 31)
#define X86_CR4_PAE	(1ULL << 5)
#define X86_EFER_SCE	(1ULL << 0)
#define X86_EFER_LME	(1ULL << 8)
#define X86_EFER_LMA	(1ULL << 10)
#define X86_RFLAGS_FIXED	(1ULL << 1)

/* ---- TAP ------------------------------------------------------------- */

enum test_result { TEST_PASS, TEST_FAIL, TEST_SKIP };

struct test_case {
	const char *name;
	enum test_result (*fn)(const void *arg);
	const void *arg;
};

/*
 * Open /dev/kestrel and print the TAP header.  Skips the whole program
 * (exit 4) when there is no usable device or no VM can be created.
 */
void test_init(int argc, char **argv);
/* Print the plan, run every case, and return the exit status. */
int test_run_all(const struct test_case *cases, int n);
/* Record the reason printed with "# SKIP" for the current case. */
enum test_result test_skip(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* A "# ..." diagnostic line. */
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

const char *errno_name(int err);
const char *exit_reason_name(uint32_t reason);

/* The system fd opened by test_init() */
extern int sys_fd;
extern long page_size;

/* ---- checks: print why and fail the current case --------------------- */

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			diag("%s:%d: check failed: %s",			\
			     __FILE__, __LINE__, #cond);		\
			return TEST_FAIL;				\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		unsigned long long __a = (unsigned long long)(a);	\
		unsigned long long __b = (unsigned long long)(b);	\
		if (__a != __b) {					\
			diag("%s:%d: %s == %s: got 0x%llx, want 0x%llx", \
			     __FILE__, __LINE__, #a, #b, __a, __b);	\
			return TEST_FAIL;				\
		}							\
	} while (0)

/* expr must succeed (not return -1); its value is kept in *out if asked */
#define CHECK_OK(expr)							\
	do {								\
		if ((long)(expr) < 0) {					\
			diag("%s:%d: %s failed: %s (%s)",		\
			     __FILE__, __LINE__, #expr,			\
			     errno_name(errno), strerror(errno));	\
			return TEST_FAIL;				\
		}							\
	} while (0)

/* expr must fail with errno err */
#define CHECK_ERR(expr, err)						\
	do {								\
		long __r = (long)(expr);	/* before reading errno */ \
									\
		if (!expect_errno(__r, errno, err, #expr,		\
				  __FILE__, __LINE__))			\
			return TEST_FAIL;				\
	} while (0)

/* Like CHECK_*, but propagate a false from a helper that already said why */
#define CHECK_H(call)							\
	do {								\
		if (!(call)) {						\
			diag("%s:%d: in %s", __FILE__, __LINE__, #call); \
			return TEST_FAIL;				\
		}							\
	} while (0)

bool expect_errno(long ret, int err, int want, const char *expr,
		  const char *file, int line);

/* ---- resources released after each case ------------------------------ */

/* Close @fd after the current case unless closed with res_close(). */
int res_fd(int fd);
int res_close(int fd);
void *res_map(void *p, size_t len);
int res_unmap(void *p, size_t len);
/* Allocate @len bytes released after the case (never NULL: aborts). */
void *res_alloc(size_t len);

/* ---- VMs, vCPUs, guests ---------------------------------------------- */

struct vm {
	int fd;
	uint8_t *mem;		/* host view of slot 0 */
	size_t mem_size;
};

struct vcpu {
	int fd;
	int id;
	struct kestrel_run *run;
	size_t run_size;
};

struct guest_image {
	const char *name;
	const uint8_t *start;
	const uint8_t *end;
};

#define DECLARE_GUEST(n)						\
	extern const uint8_t n##_start[], n##_end[]
#define GUEST(n)	((struct guest_image){ #n, n##_start, n##_end })

/* Raw creation; return the fd or -1 with errno, tracked for cleanup. */
int create_vm_fd(const char *name);
int create_vcpu_fd(int vm_fd, unsigned long id);

/*
 * A VM with @mem_size bytes of RAM in slot 0 at GPA 0 (0: no memory).
 * False (with a diagnostic) on failure.
 */
bool vm_create(struct vm *vm, size_t mem_size);
/* The same, with the VM named @name. */
bool vm_create_named(struct vm *vm, const char *name, size_t mem_size);
bool vm_add_slot(struct vm *vm, uint32_t slot, uint64_t gpa, void *host,
		 uint64_t size);
bool vcpu_create(struct vm *vm, struct vcpu *vcpu, int id);
/* Copy @img to GUEST_LOAD in the VM's RAM. */
bool vm_load(struct vm *vm, struct guest_image img);

/*
 * Put the vCPU in a mode with flat segments, RIP = GUEST_LOAD,
 * RSP = GUEST_STACK_TOP and every other GPR zero.  Protected and long
 * mode also write a GDT (and, for long mode, page tables identity-mapping
 * the first 1 GiB) into guest memory.
 */
bool vcpu_setup_real(struct vcpu *vcpu);
bool vcpu_setup_pmode(struct vm *vm, struct vcpu *vcpu);
bool vcpu_setup_long(struct vm *vm, struct vcpu *vcpu);
/* The sregs the setup functions install, for tests that mutate them */
void sregs_make_pmode(struct kestrel_sregs *s);
void sregs_make_long(struct kestrel_sregs *s);
void build_long_mode_tables(struct vm *vm);
/*
 * The lm_mem guest (one memory operation per RUN) in a new VM of
 * GUEST_MEM_SIZE, on vCPU 0 in long mode, its tables widened to 1 GiB
 * pages identity-mapping 0..8 GiB, so slots above the first GiB are
 * reachable.
 */
bool lm_mem_setup(struct vm *vm, struct vcpu *vcpu);
/* Point lm_mem at one operation (rdi, rsi, rdx, rcx); the caller runs it. */
bool lm_mem_op(struct vcpu *vcpu, uint64_t op, uint64_t addr, uint64_t val,
	       uint64_t count);

bool get_regs(struct vcpu *vcpu, struct kestrel_regs *regs);
bool set_regs(struct vcpu *vcpu, const struct kestrel_regs *regs);
bool get_sregs(struct vcpu *vcpu, struct kestrel_sregs *sregs);
bool set_sregs(struct vcpu *vcpu, const struct kestrel_sregs *sregs);

/*
 * KESTREL_RUN with a RUN_TIMEOUT watchdog.  Returns like the ioctl; a
 * watchdog expiry is reported with a diagnostic and errno ETIMEDOUT.
 */
int vcpu_run(struct vcpu *vcpu);
/* Print the last exit and the registers as diagnostics. */
void dump_vcpu(struct vcpu *vcpu);

/* Run once; true if the exit is @reason, else a diagnostic. */
bool run_expect_exit(struct vcpu *vcpu, uint32_t reason);
/* Run once; expect OUT of @size bytes to @port and return the value. */
bool run_expect_out(struct vcpu *vcpu, uint16_t port, uint8_t size,
		    uint32_t *val);
/* Two 4-byte OUTs to @port, low half first */
bool run_expect_out64(struct vcpu *vcpu, uint16_t port, uint64_t *val);
/* Run once; expect IN of @size bytes from @port and supply @val. */
bool run_expect_in(struct vcpu *vcpu, uint16_t port, uint8_t size,
		   uint32_t val);
bool run_expect_hlt(struct vcpu *vcpu);

/* ---- CPUID ----------------------------------------------------------- */

/* Allocate a table for @nent entries (released after the case). */
struct kestrel_cpuid *cpuid_alloc(uint32_t nent);
/* Find @function/@index honouring SIGNIFICANT_INDEX; NULL if absent. */
struct kestrel_cpuid_entry *cpuid_find(struct kestrel_cpuid *c,
				       uint32_t function, uint32_t index);
/* Fetch the supported table / a vCPU's table; NULL with a diagnostic. */
struct kestrel_cpuid *get_supported_cpuid(void);
struct kestrel_cpuid *get_vcpu_cpuid(struct vcpu *vcpu);

/* ---- misc ------------------------------------------------------------ */

long check_cap(unsigned long cap);
/* Start a thread with every signal blocked (so signals find the vCPU). */
bool start_thread(void *(*fn)(void *), void *arg, pthread_t *thread);
void msleep(unsigned int ms);
/* Write @s to @path (sysfs, procfs); false on any failure. */
bool write_file(const char *path, const char *s);
/*
 * Load the stock kernel modules the emulated host packs in @dir, in the
 * order its "order" file gives; @params_of(name) supplies parameters
 * (may be NULL).  A module already loaded counts as loaded.
 */
bool load_stock_modules(const char *dir,
			const char *(*params_of)(const char *name));

#endif
