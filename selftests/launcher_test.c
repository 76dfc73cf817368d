// SPDX-License-Identifier: GPL-2.0
/*
 * The kestrel launcher, end to end: the demo guests, the COM1 model, the
 * exit status for each way a guest ends, and its error messages; and the
 * control-plane commands (ps, stats, events) watching guests that other
 * launcher processes run.
 *
 * The launcher is $KESTREL_LAUNCHER (else ../userspace/kestrel next to
 * this binary), the demo guests are in $KESTREL_GUESTS_DIR (else
 * ../userspace/guests).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lib.h"

#define GREETING	"Hello from a Kestrel guest!\n"
#define TIMEOUT_MS	20000

static char launcher[PATH_MAX];
static char guests_dir[PATH_MAX];
/* launch() runs the launcher as nobody (uid and gid 65534) when set. */
static bool launch_unprivileged;

struct result {
	int status;		/* exit status, 128 + signal if killed */
	char out[4096];
	size_t out_len;
	char err[4096];
	size_t err_len;
};

/* Paths too long for PATH_MAX come out empty and fail access(). */
static void set_path(char *buf, const char *dir, const char *rest)
{
	if (snprintf(buf, PATH_MAX, "%s%s", dir, rest) >= PATH_MAX)
		buf[0] = '\0';
}

static void find_paths(void)
{
	char exe[PATH_MAX], *slash;
	const char *env;
	ssize_t n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	env = getenv("KESTREL_LAUNCHER");
	if (env)
		set_path(launcher, env, "");
	else
		set_path(launcher, exe, "/../userspace/kestrel");
	env = getenv("KESTREL_GUESTS_DIR");
	if (env)
		set_path(guests_dir, env, "");
	else
		set_path(guests_dir, exe, "/../userspace/guests");
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drain(int fd, char *buf, size_t *len, size_t cap, bool *open)
{
	ssize_t n = read(fd, buf + *len, cap - 1 - *len);

	if (n <= 0) {
		*open = false;
		return;
	}
	*len += n;
	buf[*len] = '\0';
	if (*len == cap - 1)
		*open = false;		/* enough to judge */
}

/*
 * Run the launcher with @argv (NULL-terminated, without argv[0]) and
 * collect its output; send @sig after @sig_ms if @sig is nonzero.
 */
static bool launch(struct result *r, int sig, int sig_ms, const char *const *argv)
{
	int out[2], errp[2], status, n = 0;
	bool out_open = true, err_open = true, signalled = false;
	const char *args[16];
	long start;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	args[n++] = launcher;
	while (*argv && n < 15)
		args[n++] = *argv++;
	args[n] = NULL;
	if (pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
		diag("pipe: %s", strerror(errno));
		return false;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		diag("fork: %s", strerror(errno));
		return false;
	}
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(errp[1], 2);
		if (launch_unprivileged) {
			/* By fd: nobody may lack search rights on the path. */
			int fd = open(launcher, O_RDONLY | O_CLOEXEC);

			if (fd < 0 || setgroups(0, NULL) ||
			    setresgid(65534, 65534, 65534) ||
			    setresuid(65534, 65534, 65534))
				_exit(126);
			fexecve(fd, (char *const *)args, environ);
			_exit(127);
		}
		execv(launcher, (char *const *)args);
		_exit(127);
	}
	close(out[1]);
	close(errp[1]);
	start = now_ms();
	while (out_open || err_open) {
		struct pollfd p[2] = {
			{ out_open ? out[0] : -1, POLLIN, 0 },
			{ err_open ? errp[0] : -1, POLLIN, 0 },
		};
		long t = now_ms() - start;

		if (sig && !signalled && t >= sig_ms) {
			kill(pid, sig);
			signalled = true;
		}
		if (t > TIMEOUT_MS) {
			diag("the launcher did not finish in %d ms",
			     TIMEOUT_MS);
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 2, 50) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			drain(out[0], r->out, &r->out_len, sizeof(r->out),
			      &out_open);
		if (p[1].revents)
			drain(errp[0], r->err, &r->err_len, sizeof(r->err),
			      &err_open);
	}
	close(out[0]);
	close(errp[0]);
	if (waitpid(pid, &status, 0) < 0) {
		diag("waitpid: %s", strerror(errno));
		return false;
	}
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) :
					128 + WTERMSIG(status);
	return true;
}

static void show(const struct result *r)
{
	diag("exit status %d", r->status);
	if (r->err_len)
		diag("stderr: %s", r->err);
	if (r->out_len)
		diag("stdout (%zu bytes): %s", r->out_len, r->out);
}

#define CHECK_STATUS(r, want)						\
	do {								\
		if ((r)->status != (want)) {				\
			diag("exit status %d, want %d", (r)->status, want); \
			show(r);					\
			return TEST_FAIL;				\
		}							\
	} while (0)

#define CHECK_HAS(buf, what)						\
	do {								\
		if (!strstr(buf, what)) {				\
			diag("%s lacks \"%s\": %s", #buf, what, buf);	\
			return TEST_FAIL;				\
		}							\
	} while (0)

static bool guest_path(char *buf, size_t size, const char *name)
{
	if (snprintf(buf, size, "%s/%s", guests_dir, name) >= (int)size)
		return false;
	return access(buf, R_OK) == 0;
}

/* A flat image from bytes, in a temporary file unlinked after the case */
static char tmp_paths[16][64];
static int nr_tmp;

static const char *image(const void *bytes, size_t len)
{
	char *path = tmp_paths[nr_tmp];
	const char *dir = getenv("TMPDIR");
	int fd;

	if (nr_tmp == ARRAY_SIZE(tmp_paths))
		return NULL;
	snprintf(path, sizeof(tmp_paths[0]), "%s/kestrel-XXXXXX",
		 dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0) {
		diag("mkstemp %s: %s", path, strerror(errno));
		return NULL;
	}
	nr_tmp++;
	if (write(fd, bytes, len) != (ssize_t)len) {
		close(fd);
		return NULL;
	}
	close(fd);
	return path;
}

static void remove_images(void)
{
	while (nr_tmp)
		unlink(tmp_paths[--nr_tmp]);
}

static enum test_result test_version(const void *arg)
{
	char want[32];
	struct result r;

	(void)arg;
	CHECK_H(launch(&r, 0, 0, (const char *[]){ "--version", NULL }));
	CHECK_STATUS(&r, 0);
	snprintf(want, sizeof(want), "API %d", KESTREL_API_VERSION);
	CHECK_HAS(r.out, want);
	CHECK_H(launch(&r, 0, 0, (const char *[]){ "--help", NULL }));
	CHECK_STATUS(&r, 0);
	CHECK_HAS(r.out, "--flat");
	return TEST_PASS;
}

static enum test_result run_hello(const char *name, const char *const *extra)
{
	const char *argv[12] = { "run", "--flat" };
	char path[PATH_MAX];
	struct result r;
	int n = 3;

	if (!guest_path(path, sizeof(path), name))
		return test_skip("no %s", path);
	argv[2] = path;
	while (*extra && n < 11)
		argv[n++] = *extra++;
	argv[n] = NULL;
	CHECK_H(launch(&r, 0, 0, argv));
	CHECK_STATUS(&r, 0);
	if (strcmp(r.out, GREETING)) {
		diag("stdout is not exactly the greeting");
		show(&r);
		return TEST_FAIL;
	}
	return TEST_PASS;
}

static enum test_result test_hello(const void *arg)
{
	(void)arg;
	return run_hello("hello.bin", (const char *[]){ NULL });
}

static enum test_result test_hello_elsewhere(const void *arg)
{
	(void)arg;
	return run_hello("hello.bin", (const char *[]){
		"--mode", "real", "--load", "0x1000", "--mem", "2M", NULL });
}

static enum test_result test_hello64(const void *arg)
{
	(void)arg;
	return run_hello("hello64.bin", (const char *[]){
		"--mode", "long", NULL });
}

static enum test_result test_hello64_elsewhere(const void *arg)
{
	(void)arg;
	return run_hello("hello64.bin", (const char *[]){
		"--mode", "long", "--load", "0x200000", "--mem", "4096K",
		NULL });
}

/* IN from COM1's LSR reads 0x60, other INs all ones; both echoed. */
static enum test_result test_com1_model(const void *arg)
{
	static const uint8_t code[] = {
		0xba, 0xfd, 0x03,	/* mov $0x3fd, %dx */
		0xec,			/* in %dx, %al */
		0xba, 0xf8, 0x03,	/* mov $0x3f8, %dx */
		0xee,			/* out %al, %dx */
		0xe4, 0x71,		/* in $0x71, %al */
		0xee,			/* out %al, %dx */
		0xe6, 0x80,		/* out %al, $0x80: ignored */
		0xf4,			/* hlt */
	};
	const char *img = image(code, sizeof(code));
	struct result r;

	(void)arg;
	CHECK(img);
	CHECK_H(launch(&r, 0, 0, (const char *[]){
		"run", "--flat", img, NULL }));
	CHECK_STATUS(&r, 0);
	CHECK_EQ(r.out_len, 2);
	CHECK_EQ((uint8_t)r.out[0], 0x60);
	CHECK_EQ((uint8_t)r.out[1], 0xff);
	return TEST_PASS;
}

static enum test_result test_triple_fault(const void *arg)
{
	/* ud2 in long mode: the IDT at 0 is all zeros, not-present gates */
	static const uint8_t code[] = { 0x0f, 0x0b, 0xf4 };
	const char *img = image(code, sizeof(code));
	struct result r;

	(void)arg;
	CHECK(img);
	CHECK_H(launch(&r, 0, 0, (const char *[]){
		"run", "--mode", "long", "--flat", img, NULL }));
	CHECK_STATUS(&r, 2);
	CHECK_HAS(r.err, "triple");
	return TEST_PASS;
}

static enum test_result test_unbacked(const void *arg)
{
	/* mov $0x3ff00000, %rax; jmp *%rax: mapped by the tables, no RAM */
	static const uint8_t jump[] = {
		0x48, 0xc7, 0xc0, 0x00, 0x00, 0xf0, 0x3f, 0xff, 0xe0,
	};
	/*
	 * mov 0x3ff00000, %eax; mov %eax, 0x3ff00010; out %al, $0x80; hlt:
	 * an MMIO load (all ones) and a store, which the launcher ignores.
	 */
	static const uint8_t mmio[] = {
		0x8b, 0x04, 0x25, 0x00, 0x00, 0xf0, 0x3f,
		0x89, 0x04, 0x25, 0x10, 0x00, 0xf0, 0x3f,
		0xe6, 0x80, 0xf4,
	};
	const char *img = image(jump, sizeof(jump));
	struct result r;

	(void)arg;
	CHECK(img);
	/* Code there cannot be emulated: the launcher reports and exits 3. */
	CHECK_H(launch(&r, 0, 0, (const char *[]){
		"run", "--mode", "long", "--mem", "2M", "--flat", img, NULL }));
	CHECK_STATUS(&r, 3);
	CHECK_HAS(r.err, "0x3ff00000");

	img = image(mmio, sizeof(mmio));
	CHECK(img);
	CHECK_H(launch(&r, 0, 0, (const char *[]){
		"run", "-v", "--mode", "long", "--mem", "2M", "--flat", img,
		NULL }));
	CHECK_STATUS(&r, 0);
	CHECK_HAS(r.err, "MMIO load from 0x3ff00000 size 4");
	CHECK_HAS(r.err, "MMIO store to 0x3ff00010 size 4 ignored");
	CHECK_HAS(r.err, "OUT port 0x0080 size 1 value 0xff");
	return TEST_PASS;
}

static enum test_result test_signals(const void *arg)
{
	static const uint8_t spin[] = { 0xeb, 0xfe };	/* jmp . */
	const char *img = image(spin, sizeof(spin));
	struct result r;

	(void)arg;
	CHECK(img);
	CHECK_H(launch(&r, SIGTERM, 500, (const char *[]){
		"run", "--flat", img, NULL }));
	CHECK_STATUS(&r, 143);
	CHECK_H(launch(&r, SIGINT, 500, (const char *[]){
		"run", "--mode", "long", "--flat", img, NULL }));
	CHECK_STATUS(&r, 130);
	return TEST_PASS;
}

static enum test_result test_errors(const void *arg)
{
	static const uint8_t hlt[] = { 0xf4 };
	const char *img = image(hlt, sizeof(hlt));
	struct result r;

	(void)arg;
	CHECK(img);
	CHECK_H(launch(&r, 0, 0, (const char *[]){
		"run", "--flat", "/nonexistent/guest.bin", NULL }));
	CHECK_STATUS(&r, 1);
	CHECK_HAS(r.err, "/nonexistent/guest.bin");

	CHECK_H(launch(&r, 0, 0, (const char *[]){
		"run", "--flat", img, "--mem", "12Q", NULL }));
	CHECK_STATUS(&r, 1);
	CHECK_HAS(r.err, "12Q");

	CHECK_H(launch(&r, 0, 0, (const char *[]){
		"run", "--flat", img, "--mem", "1M", "--load", "0x100000",
		"--mode", "long", NULL }));
	CHECK_STATUS(&r, 1);

	CHECK_H(launch(&r, 0, 0, (const char *[]){
		"run", "--flat", img, "--frobnicate", NULL }));
	CHECK_STATUS(&r, 1);
	CHECK_HAS(r.err, "--frobnicate");

	CHECK_H(launch(&r, 0, 0, (const char *[]){
		"run", "--flat", img, "--mode", "protected", NULL }));
	CHECK_STATUS(&r, 1);
	CHECK_HAS(r.err, "protected");
	return TEST_PASS;
}

/* ---- control plane: ps, stats, events --------------------------------- */

/* A launcher left running in the background, its output collected. */
struct bg {
	pid_t pid;
	int out, err;
	struct result r;
};

static bool bg_start(struct bg *b, const char *const *argv)
{
	int out[2], errp[2], n = 0;
	const char *args[16];

	memset(b, 0, sizeof(*b));
	args[n++] = launcher;
	while (*argv && n < 15)
		args[n++] = *argv++;
	args[n] = NULL;
	if (pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
		diag("pipe: %s", strerror(errno));
		return false;
	}
	fflush(stdout);
	b->pid = fork();
	if (b->pid < 0) {
		diag("fork: %s", strerror(errno));
		return false;
	}
	if (b->pid == 0) {
		dup2(out[1], 1);
		dup2(errp[1], 2);
		execv(launcher, (char *const *)args);
		_exit(127);
	}
	close(out[1]);
	close(errp[1]);
	b->out = out[0];
	b->err = errp[0];
	return true;
}

static bool bg_has(const struct bg *b, const char *what)
{
	return strstr(b->r.out, what) || strstr(b->r.err, what);
}

/*
 * Collect output for up to @ms, until @what shows in stdout or stderr
 * (NULL: until both pipes close).
 */
static bool bg_poll(struct bg *b, const char *what, int ms)
{
	long start = now_ms();

	while ((b->out >= 0 || b->err >= 0) && now_ms() - start < ms) {
		struct pollfd p[2] = {
			{ b->out, POLLIN, 0 },
			{ b->err, POLLIN, 0 },
		};
		bool open;

		if (what && bg_has(b, what))
			return true;
		if (poll(p, 2, 50) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			open = true;
			drain(b->out, b->r.out, &b->r.out_len, sizeof(b->r.out),
			      &open);
			if (!open) {
				close(b->out);
				b->out = -1;
			}
		}
		if (p[1].revents) {
			open = true;
			drain(b->err, b->r.err, &b->r.err_len, sizeof(b->r.err),
			      &open);
			if (!open) {
				close(b->err);
				b->err = -1;
			}
		}
	}
	return what && bg_has(b, what);
}

/* Send @sig, read the rest of the output, and reap: the exit status. */
static int bg_stop(struct bg *b, int sig)
{
	int status;

	if (b->pid <= 0)
		return -1;
	kill(b->pid, sig);
	bg_poll(b, NULL, TIMEOUT_MS);
	if (b->out >= 0)
		close(b->out);
	if (b->err >= 0)
		close(b->err);
	b->out = b->err = -1;
	if (waitpid(b->pid, &status, 0) < 0)
		return -1;
	b->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The line of @buf holding @what, copied to @line. */
static bool line_with(const char *buf, const char *what, char *line,
		      size_t size)
{
	const char *p = strstr(buf, what), *s, *e;

	if (!p)
		return false;
	for (s = p; s > buf && s[-1] != '\n'; s--)
		;
	e = strchr(p, '\n');
	if (!e)
		e = p + strlen(p);
	snprintf(line, size, "%.*s", (int)(e - s), s);
	return true;
}

static const uint8_t spin_code[] = { 0xeb, 0xfe };	/* jmp . */

/* A guest run by another process, seen through ps and stats. */
static enum test_result check_ps(struct bg *g)
{
	char line[512], want[64];
	struct result r;
	int i;

	/* The VM appears once that process has created it. */
	for (i = 0; i < 100; i++) {
		CHECK_H(launch(&r, 0, 0, (const char *[]){ "ps", NULL }));
		if (r.status || line_with(r.out, " demo ", line, sizeof(line)))
			break;
		bg_poll(g, NULL, 100);
	}
	CHECK_STATUS(&r, 0);
	if (!line_with(r.out, " demo ", line, sizeof(line))) {
		diag("kestrel ps never listed the guest");
		show(&r);
		show(&g->r);
		return TEST_FAIL;
	}
	diag("kestrel ps: %s", line);
	snprintf(want, sizeof(want), " %d ", g->pid);
	if (!strstr(line, want) || !strstr(line, " 16M ") ||
	    !strstr(line, "running")) {
		diag("the line lacks pid %d, 16M or running", g->pid);
		return TEST_FAIL;
	}
	CHECK_HAS(r.out, "NAME");
	CHECK_HAS(r.out, "MEMORY");

	CHECK_H(launch(&r, 0, 0, (const char *[]){ "ps", "--json", NULL }));
	CHECK_STATUS(&r, 0);
	CHECK_EQ(r.out[0], '[');
	if (!line_with(r.out, "\"name\":\"demo\"", line, sizeof(line))) {
		diag("kestrel ps --json lacks the guest: %s", r.out);
		return TEST_FAIL;
	}
	snprintf(want, sizeof(want), "\"owner_pid\":%d,", g->pid);
	CHECK_HAS(line, want);
	CHECK_HAS(line, "\"memory_bytes\":16777216,");
	CHECK_HAS(line, "\"vcpus\":1,");
	CHECK_HAS(line, "\"state\":\"running\"");

	CHECK_H(launch(&r, 0, 0, (const char *[]){ "stats", "demo", NULL }));
	CHECK_STATUS(&r, 0);
	CHECK_HAS(r.out, "vCPU 0: running");
	CHECK_HAS(r.out, "npf");
	CHECK_H(launch(&r, 0, 0, (const char *[]){ "stats", "--json", NULL }));
	CHECK_STATUS(&r, 0);
	CHECK_HAS(r.out, check_cap(KESTREL_CAP_BACKEND) == KESTREL_BACKEND_VMX ?
		  "\"backend\":\"vmx\"" : "\"backend\":\"svm\"");
	CHECK_HAS(r.out, "\"nested_page_faults\":");
	return TEST_PASS;
}

static enum test_result test_ps(const void *arg)
{
	const char *img = image(spin_code, sizeof(spin_code));
	enum test_result res;
	struct result r;
	struct bg g;
	int st;

	(void)arg;
	CHECK(img);
	CHECK_H(bg_start(&g, (const char *[]){
		"run", "--name", "demo", "--mem", "16M", "--flat", img, NULL }));
	res = check_ps(&g);
	st = bg_stop(&g, SIGTERM);
	if (res != TEST_PASS)
		return res;
	if (st != 143) {
		diag("the guest's launcher exited %d, want 143", st);
		show(&g.r);
		return TEST_FAIL;
	}
	/* Gone with its process */
	CHECK_H(launch(&r, 0, 0, (const char *[]){ "ps", NULL }));
	CHECK_STATUS(&r, 0);
	if (strstr(r.out, " demo ")) {
		diag("kestrel ps still lists the guest: %s", r.out);
		return TEST_FAIL;
	}
	CHECK_H(launch(&r, 0, 0, (const char *[]){ "stats", "demo", NULL }));
	CHECK_STATUS(&r, 1);
	CHECK_HAS(r.err, "demo");
	return TEST_PASS;
}

/* The events of the two guests of test_events_cmd(), in order */
static bool events_in_order(const char *out, bool verbose)
{
	static const char *const order[] = {
		"vm-created", "(evhello)", "vm-destroyed", "(evhello)",
		"vm-created", "(evtf)", "vcpu-shutdown", "(evtf)",
		"vm-destroyed", "(evtf)",
	};
	const char *p = out;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(order); i++) {
		p = strstr(p, order[i]);
		if (!p) {
			if (verbose)
				diag("kestrel events: no \"%s\" (item %u) in order",
				     order[i], i);
			return false;
		}
	}
	return true;
}

static enum test_result test_events_cmd(const void *arg)
{
	static const uint8_t tf_code[] = { 0x0f, 0x0b, 0xf4 };	/* ud2 */
	const char *img = image(tf_code, sizeof(tf_code));
	char hello[PATH_MAX];
	struct result r;
	struct bg ev;
	int i, st;

	(void)arg;
	CHECK(img);
	if (!guest_path(hello, sizeof(hello), "hello.bin"))
		return test_skip("no %s", hello);
	CHECK_H(bg_start(&ev, (const char *[]){ "events", NULL }));
	if (!bg_poll(&ev, "following", TIMEOUT_MS)) {
		diag("kestrel events did not start following");
		bg_stop(&ev, SIGKILL);
		show(&ev.r);
		return TEST_FAIL;
	}
	if (!launch(&r, 0, 0, (const char *[]){
		    "run", "--name", "evhello", "--flat", hello, NULL }) ||
	    r.status != 0 ||
	    !launch(&r, 0, 0, (const char *[]){
		    "run", "--name", "evtf", "--mode", "long", "--flat", img,
		    NULL }) ||
	    r.status != 2) {
		diag("a guest did not end as expected");
		show(&r);
		bg_stop(&ev, SIGKILL);
		return TEST_FAIL;
	}
	/* Every event, then a stop like an operator's Ctrl-C */
	for (i = 0; i < 100 && !events_in_order(ev.r.out, false); i++)
		bg_poll(&ev, NULL, 50);
	st = bg_stop(&ev, SIGINT);
	if (st != 0) {
		diag("kestrel events exited %d on SIGINT, want 0", st);
		show(&ev.r);
		return TEST_FAIL;
	}
	if (!events_in_order(ev.r.out, true)) {
		show(&ev.r);
		return TEST_FAIL;
	}
	return TEST_PASS;
}

static enum test_result test_control_unprivileged(const void *arg)
{
	struct result r;
	bool ok;

	(void)arg;
	launch_unprivileged = true;
	ok = launch(&r, 0, 0, (const char *[]){ "ps", NULL });
	launch_unprivileged = false;
	CHECK(ok);
	CHECK_STATUS(&r, 1);
	CHECK_HAS(r.err, "permission denied");
	CHECK_H(launch(&r, 0, 0, (const char *[]){ "ps", NULL }));
	CHECK_STATUS(&r, 0);
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "--version names the API, --help the options", test_version, NULL },
	{ "hello.bin prints the greeting and exits 0", test_hello, NULL },
	{ "hello.bin runs at another load address", test_hello_elsewhere,
	  NULL },
	{ "hello64.bin in long mode prints the greeting", test_hello64, NULL },
	{ "hello64.bin runs at another load address",
	  test_hello64_elsewhere, NULL },
	{ "COM1: LSR reads 0x60, other INs all ones, other OUTs ignored",
	  test_com1_model, NULL },
	{ "a triple-faulting guest exits 2", test_triple_fault, NULL },
	{ "unbacked memory: code there exits 3, loads and stores are MMIO",
	  test_unbacked, NULL },
	{ "SIGTERM and SIGINT stop a spinning guest: 143 and 130",
	  test_signals, NULL },
	{ "bad files and options exit 1 naming the problem", test_errors,
	  NULL },
	{ "kestrel ps and stats show a guest that another process runs",
	  test_ps, NULL },
	{ "kestrel events follows VMs being created, shut down, destroyed",
	  test_events_cmd, NULL },
	{ "kestrel ps as an unprivileged user: permission denied",
	  test_control_unprivileged, NULL },
};

int main(int argc, char **argv)
{
	int ret;

	test_init(argc, argv);
	find_paths();
	if (access(launcher, X_OK)) {
		printf("1..0 # SKIP no launcher at %s (set KESTREL_LAUNCHER)\n",
		       launcher);
		return 4;
	}
	ret = test_run_all(cases, ARRAY_SIZE(cases));
	remove_images();
	return ret;
}
