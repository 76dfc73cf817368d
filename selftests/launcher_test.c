// SPDX-License-Identifier: GPL-2.0
/*
 * The kestrel launcher, end to end: the demo guests, the COM1 model, the
 * exit status for each way a guest ends, and its error messages.
 *
 * The launcher is $KESTREL_LAUNCHER (else ../userspace/kestrel next to
 * this binary), the demo guests are in $KESTREL_GUESTS_DIR (else
 * ../userspace/guests).
 */
#define _GNU_SOURCE
#include <fcntl.h>
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
