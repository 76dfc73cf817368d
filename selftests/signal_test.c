// SPDX-License-Identifier: GPL-2.0
/*
 * Kicking a vCPU out of KESTREL_RUN: signals from another thread and from
 * a timer, immediate_exit, and resuming the guest afterwards; and how the
 * host accounts the time a vCPU thread spends in the guest.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#include "lib.h"

DECLARE_GUEST(rm_spin);

#define KICK_MS		300	/* long enough for the guest to be running */

static volatile sig_atomic_t nr_signals;
static struct kestrel_run *volatile kick_run;

static void count_handler(int sig)
{
	(void)sig;
	nr_signals++;
}

/* The documented race-free kick: set immediate_exit from the handler. */
static void immediate_exit_handler(int sig)
{
	(void)sig;
	nr_signals++;
	if (kick_run)
		kick_run->immediate_exit = 1;
}

static bool install(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL)) {
		diag("sigaction: %s", strerror(errno));
		return false;
	}
	return true;
}

struct kick {
	pthread_t target;
	int sig;
	pthread_t thread;
};

static void *kicker(void *p)
{
	struct kick *k = p;

	msleep(KICK_MS);
	pthread_kill(k->target, k->sig);
	return NULL;
}

static bool setup_spin(struct vm *vm, struct vcpu *v)
{
	return vm_create(vm, GUEST_MEM_SIZE) && vcpu_create(vm, v, 0) &&
	       vm_load(vm, GUEST(rm_spin)) && vcpu_setup_real(v);
}

/* RUN must return -1/EINTR with exit_reason INTR. */
static bool expect_eintr(struct vcpu *v)
{
	int r = vcpu_run(v);

	if (r != -1 || errno != EINTR) {
		if (errno != ETIMEDOUT)
			diag("KESTREL_RUN returned %d (%s), want -1/EINTR", r,
			     r ? errno_name(errno) : "-");
		if (r == 0)
			dump_vcpu(v);
		return false;
	}
	if (v->run->exit_reason != KESTREL_EXIT_INTR) {
		diag("exit_reason %s after EINTR, want INTR",
		     exit_reason_name(v->run->exit_reason));
		return false;
	}
	return true;
}

/* Kick the calling thread with @sig after KICK_MS while it runs @v. */
static bool run_kicked(struct vcpu *v, int sig)
{
	struct kick k = { .target = pthread_self(), .sig = sig };
	bool ok;

	if (!start_thread(kicker, &k, &k.thread))
		return false;
	ok = expect_eintr(v);
	pthread_join(k.thread, NULL);
	return ok;
}

/* The guest counts in EAX at GUEST_LOAD: check it is still in its loop. */
static bool spin_progress(struct vcpu *v, uint64_t *count)
{
	struct kestrel_regs regs;

	if (!get_regs(v, &regs))
		return false;
	if (regs.rip != GUEST_LOAD && regs.rip != GUEST_LOAD + 2) {
		diag("RIP 0x%llx left the guest loop",
		     (unsigned long long)regs.rip);
		return false;
	}
	*count = regs.rax;
	return true;
}

static enum test_result test_signal_kicks(const void *arg)
{
	uint64_t count;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(install(SIGUSR1, count_handler, 0));
	CHECK_H(setup_spin(&vm, &v));
	nr_signals = 0;
	CHECK_H(run_kicked(&v, SIGUSR1));
	CHECK_EQ(nr_signals, 1);
	CHECK_H(spin_progress(&v, &count));
	diag("guest counted to %llu", (unsigned long long)count);
	CHECK(count > 0);
	return TEST_PASS;
}

static enum test_result test_immediate_exit(const void *arg)
{
	struct kestrel_regs before, after;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(setup_spin(&vm, &v));
	CHECK_H(get_regs(&v, &before));
	before.rax = 0x1234;
	CHECK_H(set_regs(&v, &before));
	v.run->immediate_exit = 1;
	CHECK_H(expect_eintr(&v));
	CHECK_H(get_regs(&v, &after));
	CHECK(!memcmp(&before, &after, sizeof(before)));
	/* and again: it does not wear off */
	CHECK_H(expect_eintr(&v));
	CHECK_H(get_regs(&v, &after));
	CHECK(!memcmp(&before, &after, sizeof(before)));
	return TEST_PASS;
}

static enum test_result test_resume(const void *arg)
{
	uint64_t first, held, second;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(install(SIGUSR1, count_handler, 0));
	CHECK_H(setup_spin(&vm, &v));
	CHECK_H(run_kicked(&v, SIGUSR1));
	CHECK_H(spin_progress(&v, &first));
	CHECK(first > 0);

	v.run->immediate_exit = 1;
	CHECK_H(expect_eintr(&v));
	CHECK_H(spin_progress(&v, &held));
	CHECK_EQ(held, first);

	v.run->immediate_exit = 0;
	CHECK_H(run_kicked(&v, SIGUSR1));
	CHECK_H(spin_progress(&v, &second));
	diag("count %llu, then %llu", (unsigned long long)first,
	     (unsigned long long)second);
	CHECK(second > first);
	return TEST_PASS;
}

static enum test_result test_handler_sets_immediate_exit(const void *arg)
{
	uint64_t first, second;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(install(SIGUSR2, immediate_exit_handler, 0));
	CHECK_H(setup_spin(&vm, &v));
	kick_run = v.run;

	/* The signal lands before RUN: the flag alone must stop it. */
	raise(SIGUSR2);
	CHECK_EQ(v.run->immediate_exit, 1);
	CHECK_H(expect_eintr(&v));
	CHECK_H(spin_progress(&v, &first));
	CHECK_EQ(first, 0);

	/* The signal lands during RUN. */
	v.run->immediate_exit = 0;
	CHECK_H(run_kicked(&v, SIGUSR2));
	kick_run = NULL;
	CHECK_H(spin_progress(&v, &second));
	CHECK(second > first);
	return TEST_PASS;
}

static enum test_result test_itimer(const void *arg)
{
	struct itimerval it = {
		.it_value = { .tv_usec = KICK_MS * 1000 },
	};
	uint64_t count;
	struct vm vm;
	struct vcpu v;
	bool ok;

	(void)arg;
	CHECK_H(install(SIGALRM, count_handler, 0));
	CHECK_H(setup_spin(&vm, &v));
	nr_signals = 0;
	/* process-directed: this is the only thread taking SIGALRM */
	CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
	ok = expect_eintr(&v);
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	CHECK(ok);
	CHECK_EQ(nr_signals, 1);
	CHECK_H(spin_progress(&v, &count));
	CHECK(count > 0);
	return TEST_PASS;
}

/* This thread's user, system and guest time in clock ticks (/proc). */
static bool thread_times(unsigned long long *utime, unsigned long long *stime,
			 unsigned long long *gtime)
{
	char buf[1024], *p;
	unsigned long long v[41];
	FILE *f = fopen("/proc/thread-self/stat", "r");
	int i, n = 0;

	if (!f)
		return false;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	/* After "pid (comm)" come fields 3 onwards; comm may hold spaces. */
	if (!p || !(p = strrchr(buf, ')')))
		return false;
	p += 2;
	if (*p)
		p += 2;			/* field 3, the state, is one letter */
	for (i = 0; i < 41 && p && *p; i++, n++) {
		v[i] = strtoull(p, &p, 10);
		while (*p == ' ')
			p++;
	}
	if (n < 41)
		return false;
	/* v[0] is field 4: utime is field 14, stime 15, guest_time 43. */
	*utime = v[10];
	*stime = v[11];
	*gtime = v[39];
	return true;
}

/*
 * The host's own accounting sees a spinning guest's time as guest time
 * (guest_time in /proc, as for KVM), not as the ioctl's system time.
 */
static enum test_result test_guest_time(const void *arg)
{
	struct itimerval it = { .it_value = { .tv_sec = 1 } };
	unsigned long long u0, s0, g0, u1, s1, g1;
	struct vm vm;
	struct vcpu v;
	bool ok;

	(void)arg;
	CHECK_H(install(SIGALRM, count_handler, 0));
	CHECK_H(setup_spin(&vm, &v));
	CHECK(thread_times(&u0, &s0, &g0));
	CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
	ok = expect_eintr(&v);
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	CHECK(ok);
	CHECK(thread_times(&u1, &s1, &g1));
	diag("1 s of RUN: %llu ticks guest, %llu user (guest included), %llu system",
	     g1 - g0, u1 - u0, s1 - s0);
	/* Most of the second, whatever the emulator's speed. */
	CHECK(g1 - g0 > 0);
	CHECK(g1 - g0 >= (s1 - s0) * 2);
	return TEST_PASS;
}

/* RUN returns EINTR rather than being restarted behind our back. */
static enum test_result test_sa_restart(const void *arg)
{
	uint64_t count;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(install(SIGUSR1, count_handler, SA_RESTART));
	CHECK_H(setup_spin(&vm, &v));
	CHECK_H(run_kicked(&v, SIGUSR1));
	CHECK_H(spin_progress(&v, &count));
	CHECK(count > 0);
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "a signal from another thread interrupts a spinning guest",
	  test_signal_kicks, NULL },
	{ "immediate_exit returns EINTR without entering the guest",
	  test_immediate_exit, NULL },
	{ "the guest continues after EINTR", test_resume, NULL },
	{ "a handler setting immediate_exit kicks the vCPU",
	  test_handler_sets_immediate_exit, NULL },
	{ "SIGALRM from setitimer interrupts RUN", test_itimer, NULL },
	{ "a spinning guest's time is the host's guest_time, not system time",
	  test_guest_time, NULL },
	{ "a SA_RESTART handler still makes RUN return EINTR",
	  test_sa_restart, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
