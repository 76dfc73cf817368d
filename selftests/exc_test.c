// SPDX-License-Identifier: GPL-2.0
/*
 * #AC and #DB: reflected to the guest's own handlers exactly once per
 * event, and a guest whose delivery of either recurs for ever
 * (CVE-2015-5307, CVE-2015-8104) leaves the host CPU to the host: RUN
 * ends on a signal, and a SIGKILLed owner goes away.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "lib.h"
#include "guests/pm_exc.h"

DECLARE_GUEST(pm_exc);

#define KICK_MS		300
#define NR_EVENTS	5

static volatile sig_atomic_t nr_signals;

static void count_handler(int sig)
{
	(void)sig;
	nr_signals++;
}

static uint32_t *gword(struct vm *vm, uint32_t gpa)
{
	return (uint32_t *)(vm->mem + gpa);
}

static bool setup(struct vm *vm, struct vcpu *v, uint32_t mode, uint32_t n)
{
	if (!vm_create(vm, GUEST_MEM_SIZE) || !vcpu_create(vm, v, 0) ||
	    !vm_load(vm, GUEST(pm_exc)) || !vcpu_setup_pmode(vm, v))
		return false;
	*gword(vm, EXC_MODE) = mode;
	*gword(vm, EXC_N) = n;
	return true;
}

struct kick {
	pthread_t target;
	pthread_t thread;
};

static void *kicker(void *p)
{
	struct kick *k = p;

	msleep(KICK_MS);
	pthread_kill(k->target, SIGUSR1);
	return NULL;
}

/*
 * RUN a guest that never exits to userspace: a signal must end it.  With
 * @io, an I/O exit instead is reported there rather than failing.
 */
static bool run_until_kicked_io(struct vcpu *v, bool *io)
{
	struct kick k = { .target = pthread_self() };
	struct sigaction sa;
	int r, err;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = count_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		return false;
	nr_signals = 0;
	if (!start_thread(kicker, &k, &k.thread))
		return false;
	r = vcpu_run(v);
	err = errno;
	pthread_join(k.thread, NULL);
	if (io && r == 0 && v->run->exit_reason == KESTREL_EXIT_IO) {
		*io = true;
		return true;
	}
	if (r != -1 || err != EINTR) {
		diag("KESTREL_RUN returned %d (%s), want -1/EINTR", r,
		     r ? errno_name(err) : exit_reason_name(v->run->exit_reason));
		if (r == 0)
			dump_vcpu(v);
		return false;
	}
	if (v->run->exit_reason != KESTREL_EXIT_INTR || nr_signals != 1) {
		diag("exit_reason %s, %d signals", exit_reason_name(v->run->exit_reason),
		     (int)nr_signals);
		return false;
	}
	return true;
}

static bool run_until_kicked(struct vcpu *v)
{
	return run_until_kicked_io(v, NULL);
}

static enum test_result test_ac_handled(const void *arg)
{
	struct vm vm;
	struct vcpu v;
	uint32_t val;

	(void)arg;
	CHECK_H(setup(&vm, &v, EXC_MODE_AC_HANDLED, NR_EVENTS));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &val));
	if (val == 0)
		return test_skip("the CPU raised no #AC (it checks no alignment: QEMU's TCG does not)");
	CHECK_EQ(val, NR_EVENTS);
	CHECK_EQ(*gword(&vm, EXC_AC), NR_EVENTS);
	CHECK_EQ(*gword(&vm, EXC_ERR), 0);	/* #AC's error code is 0 */
	return TEST_PASS;
}

static enum test_result test_ac_endless(const void *arg)
{
	struct kestrel_regs regs;
	struct vm vm;
	struct vcpu v;
	bool io = false;

	(void)arg;
	CHECK_H(setup(&vm, &v, EXC_MODE_AC_ENDLESS, 0));
	CHECK_H(run_until_kicked_io(&v, &io));
	/* A CPU without alignment checks runs on to the OUT. */
	if (io)
		return test_skip("the CPU raised no #AC (it checks no alignment: QEMU's TCG does not)");
	CHECK_H(run_until_kicked(&v));
	CHECK_EQ(*gword(&vm, EXC_AC), 0);	/* the handler is never reached */
	CHECK_H(get_regs(&v, &regs));
	diag("guest stuck at RIP 0x%llx RSP 0x%llx, as it should be",
	     (unsigned long long)regs.rip, (unsigned long long)regs.rsp);
	return TEST_PASS;
}

static enum test_result test_db_handled(const void *arg)
{
	struct vm vm;
	struct vcpu v;
	uint32_t n, dr6, last;

	(void)arg;
	CHECK_H(setup(&vm, &v, EXC_MODE_DB_HANDLED, NR_EVENTS));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &n));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &dr6));
	CHECK_H(run_expect_out(&v, PORT_U32, 4, &last));
	diag("%u #DB, DR6 seen 0x%x, after clearing 0x%x", n, dr6, last);
	/* One per single-stepped instruction, the exiting CPUID included. */
	CHECK_EQ(n, EXC_DB_EXPECTED(NR_EVENTS));
	CHECK(dr6 & 0x4000);			/* DR6.BS */
	CHECK_EQ(dr6 & 0xf, 0);			/* no breakpoint hit */
	CHECK_EQ(last, 0xffff0ff0);
	return TEST_PASS;
}

static enum test_result test_db_endless(const void *arg)
{
	struct vm vm;
	struct vcpu v;
	uint32_t a, b;

	(void)arg;
	CHECK_H(setup(&vm, &v, EXC_MODE_DB_ENDLESS, 0));
	CHECK_H(run_until_kicked(&v));
	a = *gword(&vm, EXC_DB);
	CHECK_H(run_until_kicked(&v));
	b = *gword(&vm, EXC_DB);
	diag("#DB seen by the guest: %u, then %u", a, b);
	CHECK(a > 0);
	CHECK(b > a);
	return TEST_PASS;
}

static enum test_result test_db_absent(const void *arg)
{
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(setup(&vm, &v, EXC_MODE_DB_ABSENT, 0));
	/* #DB through an absent gate: #NP, #DF, then a triple fault. */
	CHECK_H(run_expect_exit(&v, KESTREL_EXIT_SHUTDOWN));
	return TEST_PASS;
}

/* SIGKILL and exit must tear down a vCPU stuck in an endless loop. */
static enum test_result kill_stuck(uint32_t mode)
{
	struct timespec t0, t1;
	int status = 0;
	pid_t pid, w = 0;
	int i;

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct vm vm;
		struct vcpu v;

		if (!setup(&vm, &v, mode, 0))
			_exit(2);
		for (;;)
			ioctl(v.fd, KESTREL_RUN, 0UL);
	}
	msleep(KICK_MS);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_OK(kill(pid, SIGKILL));
	for (i = 0; i < 500; i++) {
		w = waitpid(pid, &status, WNOHANG);
		if (w)
			break;
		msleep(10);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (w != pid) {
		diag("the child did not die within 5 s of SIGKILL");
		return TEST_FAIL;
	}
	diag("child gone %ld ms after SIGKILL",
	     (long)((t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000));
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	return TEST_PASS;
}

static enum test_result test_db_kill(const void *arg)
{
	(void)arg;
	return kill_stuck(EXC_MODE_DB_ENDLESS);
}

static enum test_result test_ac_kill(const void *arg)
{
	(void)arg;
	return kill_stuck(EXC_MODE_AC_ENDLESS);
}

static const struct test_case cases[] = {
	{ "a CPL3 #AC handler sees each misaligned access once",
	  test_ac_handled, NULL },
	{ "an endless #AC delivery loop leaves RUN interruptible",
	  test_ac_endless, NULL },
	{ "single-step #DB: one per instruction, DR6.BS, exits included",
	  test_db_handled, NULL },
	{ "an endless #DB stream leaves RUN interruptible", test_db_endless,
	  NULL },
	{ "#DB through an absent gate ends in a triple fault", test_db_absent,
	  NULL },
	{ "SIGKILL ends a process whose vCPU is in a #DB storm", test_db_kill,
	  NULL },
	{ "SIGKILL ends a process whose vCPU is in an #AC loop", test_ac_kill,
	  NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
