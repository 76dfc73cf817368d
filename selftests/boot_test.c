// SPDX-License-Identifier: GPL-2.0
/*
 * `kestrel run --kernel`, end to end: Multiboot v1 test kernels (ELF32 and
 * a.out kludge, guests/mb_hello.S) get their command line, memory
 * information and module, and reach the PC devices (debug exit, CMOS,
 * i8042 reset); bad kernels are refused with a message naming the problem;
 * and a real Linux bzImage ($KESTREL_BZIMAGE, else /boot/bzImage) boots
 * with its initramfs ($KESTREL_GUEST_INITRD, else /boot/guest-initrd.gz)
 * to userspace and powers off, on one vCPU and on two (--cpus 2).
 *
 * The launcher is $KESTREL_LAUNCHER (else ../userspace/kestrel next to
 * this binary).
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
#include <sys/utsname.h>
#include <sys/wait.h>

#include "lib.h"

DECLARE_GUEST(mb_hello);
DECLARE_GUEST(mb_aout);

#define TIMEOUT_MS		20000
#define DEBUG_EXIT_OK		((0x21 << 1) | 1)	/* the guests' OUT 0x21 */

static char launcher[PATH_MAX];

struct result {
	int status;		/* exit status, 128 + signal if killed */
	bool timed_out;
	char out[262144];
	size_t out_len;
	char err[4096];
	size_t err_len;
};

static void find_launcher(void)
{
	char exe[PATH_MAX], *slash;
	const char *env = getenv("KESTREL_LAUNCHER");
	ssize_t n;

	if (env) {
		snprintf(launcher, sizeof(launcher), "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if (snprintf(launcher, sizeof(launcher), "%s/../userspace/kestrel",
		     exe) >= (int)sizeof(launcher))
		launcher[0] = '\0';
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
 * Run the launcher with @argv (NULL-terminated, without argv[0]) for at
 * most @timeout_ms, and collect its output.  With @stop_on, kill it
 * @after_ms after stdout first contains that string: a guest that never
 * ends still passes once it said enough, and shows where it stopped.  (Not
 * "after a quiet spell": under emulation a booting kernel may print without
 * pause until it powers off.)  The kill is SIGKILL unless @stop_sig names
 * a signal the launcher should handle itself.
 */
static bool launch_sig(struct result *r, long timeout_ms, const char *stop_on,
		       long after_ms, int stop_sig, const char *const *argv)
{
	int out[2], errp[2], status, n = 0;
	bool out_open = true, err_open = true, killed = false;
	const char *args[16];
	long start, seen = -1;
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

		if (!killed && now_ms() - start > timeout_ms) {
			r->timed_out = true;
			kill(pid, SIGKILL);
			killed = true;
		}
		if (poll(p, 2, 50) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			drain(out[0], r->out, &r->out_len, sizeof(r->out),
			      &out_open);
			if (seen < 0 && stop_on && strstr(r->out, stop_on))
				seen = now_ms();
		}
		if (p[1].revents)
			drain(errp[0], r->err, &r->err_len, sizeof(r->err),
			      &err_open);
		if (!killed && seen >= 0 && now_ms() - seen >= after_ms) {
			kill(pid, stop_sig);
			killed = true;
		}
		if (killed && now_ms() - start > timeout_ms + 5000)
			break;		/* a grandchild may hold the pipes */
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

static bool launch(struct result *r, long timeout_ms, const char *stop_on,
		   long after_ms, const char *const *argv)
{
	return launch_sig(r, timeout_ms, stop_on, after_ms, SIGKILL, argv);
}

static void show(const struct result *r)
{
	diag("exit status %d%s", r->status, r->timed_out ? " (timed out)" : "");
	if (r->err_len)
		diag("stderr: %s", r->err);
	if (r->out_len)
		diag("stdout (%zu bytes): %.2000s", r->out_len, r->out);
}

#define CHECK_STATUS(r, want)						\
	do {								\
		if ((r)->status != (want)) {				\
			diag("exit status %d, want %d", (r)->status, want); \
			show(r);					\
			return TEST_FAIL;				\
		}							\
	} while (0)

#define CHECK_HAS(r, buf, what)						\
	do {								\
		if (!strstr((r)->buf, what)) {				\
			diag("%s lacks \"%s\"", #buf, what);		\
			show(r);					\
			return TEST_FAIL;				\
		}							\
	} while (0)

#define CHECK_OUT(r, want)						\
	do {								\
		if (strcmp((r)->out, want)) {				\
			diag("stdout is not \"%s\"", want);		\
			show(r);					\
			return TEST_FAIL;				\
		}							\
	} while (0)

/* Files from bytes, in /tmp (or $TMPDIR), unlinked at the end */
static char tmp_paths[16][64];
static int nr_tmp;

static const char *tmp_file(const void *bytes, size_t len)
{
	char *path = tmp_paths[nr_tmp];
	const char *dir = getenv("TMPDIR");
	int fd;

	if (nr_tmp == ARRAY_SIZE(tmp_paths))
		return NULL;
	snprintf(path, sizeof(tmp_paths[0]), "%s/kestrel-boot-XXXXXX",
		 dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0) {
		diag("mkstemp %s: %s", path, strerror(errno));
		return NULL;
	}
	nr_tmp++;
	if (write(fd, bytes, len) != (ssize_t)len) {
		diag("write %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	close(fd);
	return path;
}

static const char *guest_file(struct guest_image img)
{
	return tmp_file(img.start, img.end - img.start);
}

static void remove_files(void)
{
	while (nr_tmp)
		unlink(tmp_paths[--nr_tmp]);
}

/* ---- Multiboot ---------------------------------------------------------- */

static enum test_result test_mb_elf(const void *arg)
{
	const char *k = guest_file(GUEST(mb_hello));
	struct result r;

	(void)arg;
	CHECK(k);
	CHECK_H(launch(&r, TIMEOUT_MS, NULL, 0, (const char *[]){
		"run", "--kernel", k, "--append", "hello world", "--mem", "16M",
		NULL }));
	CHECK_STATUS(&r, DEBUG_EXIT_OK);
	/* 15 MiB above 1 MiB; four 24-byte memory map entries */
	CHECK_OUT(&r, "multiboot ok: hello world\n"
		      "mem_upper=15360 mmap=96 mods=0\n");
	return TEST_PASS;
}

/*
 * The same kernel with three application processors it never starts:
 * they sleep in wait-for-SIPI inside RUN until the debug exit ends the
 * VM, and must be kicked out of it for the launcher to end.
 */
static enum test_result test_mb_parked_aps(const void *arg)
{
	const char *k = guest_file(GUEST(mb_hello));
	struct result r;
	long t0 = now_ms();

	(void)arg;
	CHECK(k);
	CHECK_H(launch(&r, TIMEOUT_MS, NULL, 0, (const char *[]){
		"run", "--kernel", k, "--append", "smp", "--cpus", "4", NULL }));
	diag("ended after %ld ms", now_ms() - t0);
	CHECK(!r.timed_out);
	CHECK_STATUS(&r, DEBUG_EXIT_OK);
	CHECK_OUT(&r, "multiboot ok: smp\nmem_upper=15360 mmap=96 mods=0\n");
	return TEST_PASS;
}

static enum test_result test_mb_aout(const void *arg)
{
	const char *k = guest_file(GUEST(mb_aout));
	struct result r;

	(void)arg;
	CHECK(k);
	CHECK_H(launch(&r, TIMEOUT_MS, NULL, 0, (const char *[]){
		"run", "--kernel", k, "--append", "a.out kludge",
		"--mem", "32M", NULL }));
	CHECK_STATUS(&r, DEBUG_EXIT_OK);
	CHECK_OUT(&r, "multiboot ok: a.out kludge\n"
		      "mem_upper=31744 mmap=96 mods=0\n");
	return TEST_PASS;
}

static enum test_result test_mb_module(const void *arg)
{
	static const char data[] = "an initrd";
	const char *k = guest_file(GUEST(mb_hello));
	const char *initrd = tmp_file(data, sizeof(data));
	struct result r;

	(void)arg;
	CHECK(k && initrd);
	/* no --append: an empty command line */
	CHECK_H(launch(&r, TIMEOUT_MS, NULL, 0, (const char *[]){
		"run", "--kernel", k, "--initrd", initrd, NULL }));
	CHECK_STATUS(&r, DEBUG_EXIT_OK);
	CHECK_OUT(&r, "multiboot ok: \nmem_upper=15360 mmap=96 mods=1\n");
	return TEST_PASS;
}

static enum test_result test_rtc(const void *arg)
{
	const char *k = guest_file(GUEST(mb_hello));
	char want[64], want2[64];
	struct result r;
	time_t now = time(NULL);
	struct tm tm;

	(void)arg;
	CHECK(k);
	CHECK_H(launch(&r, TIMEOUT_MS, NULL, 0, (const char *[]){
		"run", "--kernel", k, "--append", "rtc", NULL }));
	CHECK_STATUS(&r, DEBUG_EXIT_OK);
	/* status B 02: 24-hour BCD; then year and month, this one or next */
	gmtime_r(&now, &tm);
	snprintf(want, sizeof(want), "\nrtc 02 %02d %02d\n",
		 tm.tm_year % 100, tm.tm_mon + 1);
	now = time(NULL);
	gmtime_r(&now, &tm);
	snprintf(want2, sizeof(want2), "\nrtc 02 %02d %02d\n",
		 tm.tm_year % 100, tm.tm_mon + 1);
	if (!strstr(r.out, want2))
		CHECK_HAS(&r, out, want);
	return TEST_PASS;
}

static enum test_result test_reset(const void *arg)
{
	const char *k = guest_file(GUEST(mb_hello));
	struct result r;

	(void)arg;
	CHECK(k);
	CHECK_H(launch(&r, TIMEOUT_MS, NULL, 0, (const char *[]){
		"run", "--kernel", k, "--append", "reset", NULL }));
	CHECK_STATUS(&r, 0);
	CHECK_HAS(&r, out, "multiboot ok: reset\n");
	CHECK_HAS(&r, err, "guest reset");
	return TEST_PASS;
}

/* ---- refused kernels ---------------------------------------------------- */

static enum test_result expect_refusal(const char *const *argv,
				       const char *why)
{
	struct result r;

	CHECK_H(launch(&r, TIMEOUT_MS, NULL, 0, argv));
	CHECK_STATUS(&r, 1);
	CHECK_HAS(&r, err, why);
	CHECK_EQ(r.out_len, 0);
	return TEST_PASS;
}

static enum test_result test_not_a_kernel(const void *arg)
{
	static const char text[] = "#!/bin/sh\necho this is not a kernel\n";
	static const uint8_t elf[64] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	const char *f = tmp_file(text, sizeof(text) - 1);
	const char *e = tmp_file(elf, sizeof(elf));
	enum test_result t;

	(void)arg;
	CHECK(f && e);
	t = expect_refusal((const char *[]){ "run", "--kernel", f, NULL },
			   "not a kernel");
	if (t != TEST_PASS)
		return t;
	t = expect_refusal((const char *[]){ "run", "--kernel", e, NULL },
			   "without a Multiboot header");
	if (t != TEST_PASS)
		return t;
	return expect_refusal((const char *[]){
		"run", "--kernel", "/nonexistent/vmlinuz", NULL },
		"/nonexistent/vmlinuz");
}

static enum test_result test_truncated(const void *arg)
{
	struct guest_image img = GUEST(mb_hello);
	size_t len = img.end - img.start;
	const char *f;

	(void)arg;
	/* keep the ELF and program headers and the Multiboot header only */
	CHECK(len > 0xc0);
	f = tmp_file(img.start, 0xc0);
	CHECK(f);
	return expect_refusal((const char *[]){ "run", "--kernel", f, NULL },
			      "truncated");
}

static enum test_result test_too_big(const void *arg)
{
	static uint8_t big[2 << 20];
	const char *k = guest_file(GUEST(mb_hello));
	const char *initrd = tmp_file(big, sizeof(big));
	enum test_result t;

	(void)arg;
	CHECK(k && initrd);
	/* linked at 1 MiB: nothing of it fits in 1 MiB of RAM */
	t = expect_refusal((const char *[]){
		"run", "--kernel", k, "--mem", "1M", NULL }, "does not fit");
	if (t != TEST_PASS)
		return t;
	return expect_refusal((const char *[]){
		"run", "--kernel", k, "--initrd", initrd, "--mem", "2M", NULL },
		"do not fit");
}

/* A setup header with nothing behind it: refused before any loading */
static enum test_result test_bzimage_refused(const void *arg)
{
	static uint8_t hdr[4096];
	const char *old, *k32;

	(void)arg;
	hdr[0x1f1] = 4;				/* setup_sects */
	hdr[0x1fe] = 0x55;
	hdr[0x1ff] = 0xaa;
	memcpy(hdr + 0x202, "HdrS", 4);
	hdr[0x206] = 0x02;			/* version 2.02 */
	hdr[0x207] = 0x02;
	hdr[0x211] = 0x01;			/* LOADED_HIGH */
	old = tmp_file(hdr, sizeof(hdr));
	hdr[0x206] = 0x0f;			/* 2.15, but no XLF_KERNEL_64 */
	k32 = tmp_file(hdr, sizeof(hdr));
	CHECK(old && k32);
	if (expect_refusal((const char *[]){ "run", "--kernel", old, NULL },
			   "too old") != TEST_PASS)
		return TEST_FAIL;
	return expect_refusal((const char *[]){ "run", "--kernel", k32, NULL },
			      "not a 64-bit kernel");
}

static enum test_result test_options(const void *arg)
{
	const char *k = guest_file(GUEST(mb_hello));
	enum test_result t;

	(void)arg;
	CHECK(k);
	t = expect_refusal((const char *[]){
		"run", "--kernel", k, "--flat", k, NULL }, "one image");
	if (t != TEST_PASS)
		return t;
	t = expect_refusal((const char *[]){
		"run", "--flat", k, "--append", "x", NULL }, "--kernel");
	if (t != TEST_PASS)
		return t;
	return expect_refusal((const char *[]){
		"run", "--kernel", k, "--mode", "long", NULL }, "--flat");
}

/* Refused before any VM exists: no module needed to judge these */
static enum test_result test_cpus_refused(const void *arg)
{
	const char *k = guest_file(GUEST(mb_hello));
	enum test_result t;

	(void)arg;
	CHECK(k);
	t = expect_refusal((const char *[]){
		"run", "--kernel", k, "--cpus", "0", NULL },
		"--cpus: '0' is not a number of vCPUs");
	if (t != TEST_PASS)
		return t;
	t = expect_refusal((const char *[]){
		"run", "--kernel", k, "--cpus", "999", NULL },
		"--cpus: '999' is not a number of vCPUs");
	if (t != TEST_PASS)
		return t;
	return expect_refusal((const char *[]){
		"run", "--cpus", "2", "--flat", k, NULL },
		"--cpus goes with --kernel");
}

/* The last @lines lines of @text, one diagnostic each (so none looks like TAP) */
static void diag_tail(char *text, int lines)
{
	char *p = text + strlen(text), *eol;

	while (p > text && p[-1] == '\n')
		p--;
	while (p > text && lines) {
		p--;
		if (*p == '\n')
			lines--;
	}
	if (*p == '\n')
		p++;
	for (; *p; p = eol + 1) {
		eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		diag("  %.*s", (int)(eol - p > 200 ? 200 : eol - p), p);
		if (!*eol)
			break;
	}
}

/* ---- Linux -------------------------------------------------------------- */

/*
 * One boot of a real Linux (the emulated host's own kernel and the busybox
 * initramfs scripts/mkinitramfs.sh makes for it) to a shell script that
 * prints what the cases below check, then powers off through ACPI.  It
 * runs once, in the first case that needs it; each case judges one
 * part, so a boot that stops at interrupts still shows which parts work.
 */
#define LINUX_TIMEOUT_MS	240000
#define LINUX_QUIET_MS		60000		/* after "Linux version" */
#define LINUX_CMDLINE		"console=ttyS0"

enum linux_state { LINUX_NOT_RUN, LINUX_RAN, LINUX_SKIP, LINUX_ERROR };

static struct result lx;
static enum linux_state lx_state;
static char lx_skip[PATH_MAX + 64];

/* The same guest on two vCPUs (--cpus 2), a launch of its own */
static struct result smp;
static enum linux_state smp_state;

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

/* Boot the guest once into @r, with @cpus vCPUs ("1": no --cpus at all) */
static enum linux_state linux_run(struct result *r, enum linux_state *state,
				  const char *cpus)
{
	const char *k = env_or("KESTREL_BZIMAGE", "/boot/bzImage");
	const char *i = env_or("KESTREL_GUEST_INITRD", "/boot/guest-initrd.gz");
	bool one = !strcmp(cpus, "1");

	if (*state != LINUX_NOT_RUN)
		return *state;
	if (access(k, R_OK) || access(i, R_OK)) {
		snprintf(lx_skip, sizeof(lx_skip),
			 "no %s at %s (set KESTREL_BZIMAGE, KESTREL_GUEST_INITRD)",
			 access(k, R_OK) ? "bzImage" : "guest initramfs",
			 access(k, R_OK) ? k : i);
		return *state = LINUX_SKIP;
	}
	if (!launch(r, LINUX_TIMEOUT_MS, "Linux version", LINUX_QUIET_MS,
		    (const char *[]){ "run", "--kernel", k, "--initrd", i,
		    "--append", LINUX_CMDLINE, "--mem", "256M",
		    one ? NULL : "--cpus", cpus, NULL }))
		return *state = LINUX_ERROR;
	diag("Linux guest on %s vCPU%s: exit status %d%s, %zu bytes of console output",
	     cpus, one ? "" : "s", r->status,
	     r->timed_out ? " (timed out)" : "", r->out_len);
	diag("its serial console:");
	diag_tail(r->out, 100000);
	if (r->err_len) {
		diag("launcher stderr:");
		diag_tail(r->err, 8);
	}
	return *state = LINUX_RAN;
}

static enum linux_state linux_boot(void)
{
	return linux_run(&lx, &lx_state, "1");
}

#define LINUX_BOOT()							\
	do {								\
		enum linux_state st = linux_boot();			\
		if (st == LINUX_SKIP)					\
			return test_skip("%s", lx_skip);		\
		if (st != LINUX_RAN)					\
			return TEST_FAIL;				\
	} while (0)

#define LX_HAS(what)							\
	do {								\
		if (!strstr(lx.out, what)) {				\
			diag("the guest's console lacks \"%s\"", what);	\
			return TEST_FAIL;				\
		}							\
	} while (0)

/*
 * The numbers after "@key: " in @r's console, up to @max of them
 * separated by single spaces (the LOC count of each CPU); how many.
 */
static int values_in(const struct result *r, const char *key, long *v,
		     int max)
{
	const char *p = strstr(r->out, key);
	char *end;
	int n = 0;

	if (!p || p[strlen(key)] != ' ')
		return 0;
	p += strlen(key) + 1;
	while (n < max && *p >= '0' && *p <= '9') {
		v[n++] = strtol(p, &end, 10);
		if (*end != ' ')
			break;
		p = end + 1;
	}
	return n;
}

/* The number after "@key: " on the console, or -1 */
static long lx_value(const char *key)
{
	long v;

	return values_in(&lx, key, &v, 1) ? v : -1;
}

static enum test_result test_linux_starts(const void *arg)
{
	(void)arg;
	LINUX_BOOT();
	LX_HAS("Linux version");
	LX_HAS("Command line: " LINUX_CMDLINE);
	return TEST_PASS;
}

static enum test_result test_linux_acpi(const void *arg)
{
	(void)arg;
	LINUX_BOOT();
	LX_HAS("ACPI: RSDP 0x00000000000E0000");
	LX_HAS("ACPI: XSDT 0x");
	LX_HAS("ACPI: FACP 0x");
	LX_HAS("ACPI: DSDT 0x");
	LX_HAS("ACPI: APIC 0x");
	LX_HAS("Using ACPI (MADT) for SMP configuration information");
	LX_HAS("IOAPIC[0]: apic_id 1, version 17, address 0xfec00000, GSI 0-23");
	LX_HAS("ACPI: PM: (supports S0 S5)");
	/*
	 * No 8259: a hardware-reduced FADT gives Linux the NULL legacy PIC
	 * before it probes, so nothing says "Using NULL legacy PIC"; but
	 * then no ISA IRQ is preallocated.
	 */
	LX_HAS("preallocated irqs: 0");
	/* COM1 from the DSDT, its interrupts through IOAPIC pin 4 */
	LX_HAS("ttyS0 at I/O 0x3f8 (irq = ");
	LX_HAS("rtc_cmos 00:01: registered as rtc0");
	return TEST_PASS;
}

static enum test_result test_linux_userspace(const void *arg)
{
	struct utsname u;
	char want[sizeof(u.release) + 32];

	(void)arg;
	LINUX_BOOT();
	LX_HAS("### GUEST-USERSPACE-BEGIN");
	if (!uname(&u)) {
		snprintf(want, sizeof(want), "guest-uname: %s\r\n", u.release);
		if (!strstr(lx.out, want))
			snprintf(want, sizeof(want), "guest-uname: %s\n",
				 u.release);
		LX_HAS(want);
	}
	LX_HAS("### GUEST-USERSPACE-END");
	if (lx.status != 0 || !strstr(lx.err, "guest powered off")) {
		diag("exit status %d, want 0 and \"guest powered off\"",
		     lx.status);
		return TEST_FAIL;
	}
	return TEST_PASS;
}

static enum test_result test_linux_timer(const void *arg)
{
	long before, after;

	(void)arg;
	LINUX_BOOT();
	if (!strstr(lx.out, "guest-clockevent: lapic-deadline") &&
	    !strstr(lx.out, "guest-clockevent: lapic")) {
		diag("the tick is not the local APIC timer");
		LX_HAS("guest-clockevent: lapic");
	}
	before = lx_value("guest-loc-before:");
	after = lx_value("guest-loc-after:");
	diag("LOC (local timer interrupts) %ld, then %ld after sleep 1",
	     before, after);
	CHECK(before >= 0 && after > before);
	/* and the UART's, through IOAPIC pin 4 and KESTREL_SIGNAL_MSI */
	diag("COM1 interrupts (IO-APIC 4-edge): %ld",
	     lx_value("guest-serial-irq:"));
	CHECK(lx_value("guest-serial-irq:") > 0);
	return TEST_PASS;
}

/* Guest log lines that say something went wrong */
static const char *const bad_lines[] = {
	"hung", "lost tick", "Unable to calibrate", "calibration failed",
	"APIC disabled", "timer doesn't work", "unchecked MSR access",
	"WARNING", "BUG",
};

/*
 * Except this notice about the CPU's microcode (Zen's SRSO mitigation
 * needs it), which the emulated host prints about itself as well: it
 * says nothing about the virtual machine.
 */
static const char *const ok_lines[] = {
	"Speculative Return Stack Overflow: WARNING: See https://",
};

/*
 * What an SMP bring-up gone wrong looks like: an AP that never came up,
 * CPUID's APIC ID differing from the APIC's, TSCs Linux will not trust.
 */
static const char *const smp_bad_lines[] = {
	"failed", "Not responding", "mismatch", "Firmware Bug",
	"unsynchronized", "TSC warp", "Marking TSC unstable",
};

/* Does [@line, @eol) contain one of the @n strings of @list? */
static bool line_has(const char *line, const char *eol,
		     const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (memmem(line, eol - line, list[i], strlen(list[i])))
			return true;
	return false;
}

/* The lines of @out with one of bad_lines (or of @more), each shown */
static int bad_line_count(const char *out, const char *const *more,
			  size_t nr_more)
{
	const char *line, *eol;
	int bad = 0;

	for (line = out; *line; line = eol + 1) {
		eol = strchr(line, '\n');
		if (!eol)
			eol = line + strlen(line);
		if (!line_has(line, eol, ok_lines, ARRAY_SIZE(ok_lines)) &&
		    (line_has(line, eol, bad_lines, ARRAY_SIZE(bad_lines)) ||
		     line_has(line, eol, more, nr_more))) {
			diag("  %.*s", (int)(eol - line > 200 ? 200 :
					     eol - line), line);
			bad++;
		}
		if (!*eol)
			break;
	}
	return bad;
}

static enum test_result test_linux_clean_log(const void *arg)
{
	(void)arg;
	LINUX_BOOT();
	LX_HAS("Linux version");
	CHECK_EQ(bad_line_count(lx.out, NULL, 0), 0);
	return TEST_PASS;
}

static enum test_result test_linux_time(const void *arg)
{
	const char *t;

	(void)arg;
	LINUX_BOOT();
	t = strstr(lx.err, "time to guest userspace: ");
	if (!t) {
		diag("the launcher's stderr lacks \"time to guest userspace: \"");
		return TEST_FAIL;
	}
	diag("%.*s", (int)strcspn(t, "\r\n"), t);
	return TEST_PASS;
}

/*
 * SIGTERM while Linux boots (its vCPU in the guest or asleep in HLT in the
 * kernel) ends the launcher promptly, with 128 + SIGTERM and a message.
 */
static enum test_result test_linux_sigterm(const void *arg)
{
	const char *k = env_or("KESTREL_BZIMAGE", "/boot/bzImage");
	const char *i = env_or("KESTREL_GUEST_INITRD", "/boot/guest-initrd.gz");
	struct result *r = malloc(sizeof(*r));
	enum test_result ret = TEST_FAIL;
	long t0;

	(void)arg;
	if (access(k, R_OK) || access(i, R_OK)) {
		free(r);
		return test_skip("no bzImage or guest initramfs");
	}
	CHECK(r);
	t0 = now_ms();
	/* A second after the banner: deep in the boot (it takes ~10 s more). */
	if (!launch_sig(r, LINUX_TIMEOUT_MS, "Linux version", 1000, SIGTERM,
			(const char *[]){ "run", "--kernel", k, "--initrd", i,
			"--append", LINUX_CMDLINE, "--mem", "256M", NULL }))
		goto out;
	diag("status %d after %ld ms%s", r->status, now_ms() - t0,
	     r->timed_out ? " (timed out)" : "");
	if (r->timed_out || r->status != 128 + SIGTERM) {
		show(r);
		goto out;
	}
	if (!strstr(r->err, "stopped by")) {
		diag("no \"stopped by\" message on stderr");
		show(r);
		goto out;
	}
	ret = TEST_PASS;
out:
	free(r);
	return ret;
}

/* ---- Linux on two vCPUs ------------------------------------------------ */

#define SMP_BOOT()							\
	do {								\
		enum linux_state st = linux_run(&smp, &smp_state, "2");	\
		if (st == LINUX_SKIP)					\
			return test_skip("%s", lx_skip);		\
		if (st != LINUX_RAN)					\
			return TEST_FAIL;				\
	} while (0)

#define SMP_HAS(what)							\
	do {								\
		if (!strstr(smp.out, what)) {				\
			diag("the guest's console lacks \"%s\"", what);	\
			return TEST_FAIL;				\
		}							\
	} while (0)

/*
 * The MADT lists two local APICs (so the IOAPIC's ID is 2), vCPU 0 starts
 * vCPU 1 with INIT and SIPI, and the guest's userspace sees both CPUs.
 */
static enum test_result test_smp_boot(const void *arg)
{
	(void)arg;
	SMP_BOOT();
	SMP_HAS("IOAPIC[0]: apic_id 2, version 17, address 0xfec00000, GSI 0-23");
	SMP_HAS("smp: Brought up 1 node, 2 CPUs");
	SMP_HAS("### GUEST-USERSPACE-BEGIN");
	if (!strstr(smp.out, "guest-cpus: 2\r\n"))
		SMP_HAS("guest-cpus: 2\n");
	SMP_HAS("### GUEST-USERSPACE-END");
	if (smp.status != 0 || !strstr(smp.err, "guest powered off")) {
		diag("exit status %d, want 0 and \"guest powered off\"",
		     smp.status);
		return TEST_FAIL;
	}
	return TEST_PASS;
}

/* Both CPUs' local APIC timers tick across the guest's sleep 1 */
static enum test_result test_smp_timer(const void *arg)
{
	long before[2], after[2];
	int nb, na;

	(void)arg;
	SMP_BOOT();
	nb = values_in(&smp, "guest-loc-before:", before, 2);
	na = values_in(&smp, "guest-loc-after:", after, 2);
	if (nb != 2 || na != 2) {
		diag("want two LOC counts before and after, got %d and %d",
		     nb, na);
		return TEST_FAIL;
	}
	diag("LOC per CPU: %ld %ld, then %ld %ld after sleep 1",
	     before[0], before[1], after[0], after[1]);
	CHECK(after[0] > before[0]);
	CHECK(after[1] > before[1]);
	return TEST_PASS;
}

static enum test_result test_smp_clean_log(const void *arg)
{
	(void)arg;
	SMP_BOOT();
	SMP_HAS("Linux version");
	CHECK_EQ(bad_line_count(smp.out, smp_bad_lines,
				ARRAY_SIZE(smp_bad_lines)), 0);
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "Multiboot ELF kernel: cmdline, memory info, debug exit status",
	  test_mb_elf, NULL },
	{ "Multiboot a.out kludge kernel (flat image)", test_mb_aout, NULL },
	{ "Multiboot --cpus 4: APs never started, the VM still ends",
	  test_mb_parked_aps, NULL },
	{ "Multiboot --initrd is module 1, empty cmdline", test_mb_module,
	  NULL },
	{ "CMOS RTC reads the current date in BCD", test_rtc, NULL },
	{ "i8042 reset ends the launcher with status 0", test_reset, NULL },
	{ "not a kernel: refused with a message", test_not_a_kernel, NULL },
	{ "truncated ELF kernel: refused", test_truncated, NULL },
	{ "kernel or initrd too big for --mem: refused", test_too_big, NULL },
	{ "bzImage with an old protocol or 32-bit only: refused",
	  test_bzimage_refused, NULL },
	{ "--kernel option conflicts: refused", test_options, NULL },
	{ "--cpus 0, --cpus 999, --cpus with --flat: refused",
	  test_cpus_refused, NULL },
	{ "Linux: the kernel starts and talks on COM1", test_linux_starts,
	  NULL },
	{ "Linux: ACPI tables, IOAPIC and COM1 found, no 8259",
	  test_linux_acpi, NULL },
	{ "Linux: boots to userspace, powers off with status 0",
	  test_linux_userspace, NULL },
	{ "Linux: the APIC timer ticks, COM1 interrupts via the IOAPIC",
	  test_linux_timer, NULL },
	{ "Linux: no warnings in the guest's log", test_linux_clean_log,
	  NULL },
	{ "Linux: the launcher prints the time to userspace",
	  test_linux_time, NULL },
	{ "Linux: SIGTERM mid-boot stops the launcher cleanly",
	  test_linux_sigterm, NULL },
	{ "Linux --cpus 2: both CPUs up, userspace sees 2, powers off with 0",
	  test_smp_boot, NULL },
	{ "Linux --cpus 2: the APIC timer ticks on both CPUs",
	  test_smp_timer, NULL },
	{ "Linux --cpus 2: no warnings in the guest's log",
	  test_smp_clean_log, NULL },
};

int main(int argc, char **argv)
{
	int ret;

	test_init(argc, argv);
	find_launcher();
	if (access(launcher, X_OK)) {
		printf("1..0 # SKIP no launcher at %s (set KESTREL_LAUNCHER)\n",
		       launcher);
		return 4;
	}
	ret = test_run_all(cases, ARRAY_SIZE(cases));
	remove_files();
	return ret;
}
