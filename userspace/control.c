// SPDX-License-Identifier: GPL-2.0
/*
 * kestrel ps | stats | events: the host's view of every Kestrel VM, from
 * the "kestrel" generic-netlink family (uapi/linux/kestrel_netlink.h,
 * Documentation/netlink.rst), through libnl-genl.
 *
 * These commands need CAP_NET_ADMIN, not access to /dev/kestrel: they read
 * what the module reports about VMs that other processes run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <linux/kestrel_netlink.h>

#include "control.h"
#include "nl_attrs.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK	270
#endif

#define MAX_VCPUS	256

const char control_usage[] =
"       kestrel ps [--json]\n"
"       kestrel stats [--json] [VM]\n"
"       kestrel events [--json]\n";

const char control_help[] =
"Control plane (needs CAP_NET_ADMIN; reads every VM on the host):\n"
"  ps             list VMs: id, name, owner pid, vCPUs, memory, mapped\n"
"                 memory, state and age\n"
"  stats          global counters: backend, VMs, vCPUs, nested page\n"
"                 faults, exits by reason\n"
"  stats VM       per-vCPU counters of one VM, by id or name\n"
"  events         print VM lifecycle events until interrupted\n"
"  --json         machine-readable output (events: one object per line)\n";

static void __attribute__((format(printf, 1, 2))) cerr(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "kestrel: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the netlink connection ------------------------------------------- */

struct kctl {
	struct nl_sock *sk;
	int family;
	int err;		/* errno of the last error reply, 0: none */
	char msg[256];		/* the kernel's extended-ack message, if any */
};

/* Keep the errno and the extended ack of an error reply. */
static int err_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)e - 1;
	struct kctl *c = arg;
	size_t off = NLMSG_HDRLEN + sizeof(*e);
	struct nlattr *a;
	int rem;

	(void)nla;
	c->err = -e->error;
	c->msg[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NL_STOP;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
	if (nlh->nlmsg_len <= off)
		return NL_STOP;
	nla_for_each_attr(a, (struct nlattr *)((char *)nlh + off),
			  nlh->nlmsg_len - off, rem) {
		if (nla_type(a) == NLMSGERR_ATTR_MSG && nla_len(a) > 0)
			snprintf(c->msg, sizeof(c->msg), "%.*s", nla_len(a),
				 (char *)nla_data(a));
	}
	return NL_STOP;
}

static void kctl_close(struct kctl *c)
{
	if (c->sk)
		nl_socket_free(c->sk);
	c->sk = NULL;
}

static int kctl_open(struct kctl *c)
{
	int one = 1, r;

	memset(c, 0, sizeof(*c));
	c->sk = nl_socket_alloc();
	if (!c->sk) {
		cerr("out of memory");
		return -1;
	}
	r = genl_connect(c->sk);
	if (r < 0) {
		cerr("cannot open a generic netlink socket: %s",
		     nl_geterror(r));
		goto fail;
	}
	/* Replies, errors and DONE are enough: no ACK after each. */
	nl_socket_disable_auto_ack(c->sk);
	/* The kernel then says which attribute was wrong, and why. */
	setsockopt(nl_socket_get_fd(c->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	c->family = genl_ctrl_resolve(c->sk, KESTREL_GENL_NAME);
	if (c->family < 0) {
		if (c->family == -NLE_OBJ_NOTFOUND)
			cerr("no '%s' generic netlink family: is the kestrel module loaded? (modprobe kestrel)",
			     KESTREL_GENL_NAME);
		else
			cerr("cannot resolve the '%s' netlink family: %s",
			     KESTREL_GENL_NAME, nl_geterror(c->family));
		goto fail;
	}
	nl_socket_modify_err_cb(c->sk, NL_CB_CUSTOM, err_cb, c);
	return 0;
fail:
	kctl_close(c);
	return -1;
}

static void kctl_report(struct kctl *c, const char *what, int nlerr)
{
	int e = c->err;

	if (!e) {
		cerr("%s: %s", what, nl_geterror(nlerr));
		return;
	}
	if (e == EPERM || e == EACCES)
		cerr("%s: permission denied: the Kestrel control plane needs CAP_NET_ADMIN (run as root)",
		     what);
	else if (c->msg[0])
		cerr("%s: %s (%s)", what, c->msg, strerror(e));
	else
		cerr("%s: %s", what, strerror(e));
}

/*
 * Send @cmd (a dump if @dump) with VM_ID @vm_id when >= 0, and feed each
 * reply to @parse.  0; 1 when VMs came or went during a dump (the kernel
 * flagged it NLM_F_DUMP_INTR: the caller may retry); -1 after saying why.
 */
static int kctl_call(struct kctl *c, const char *what, uint8_t cmd, bool dump,
		     int64_t vm_id, nl_recvmsg_msg_cb_t parse, void *arg)
{
	struct nl_msg *msg = nlmsg_alloc();
	int r;

	if (!msg) {
		cerr("out of memory");
		return -1;
	}
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, c->family, 0,
			 dump ? NLM_F_DUMP : 0, cmd, KESTREL_GENL_VERSION) ||
	    (vm_id >= 0 && nla_put_u32(msg, KESTREL_NL_A_VM_ID, vm_id) < 0)) {
		nlmsg_free(msg);
		cerr("cannot build the request");
		return -1;
	}
	nl_socket_modify_cb(c->sk, NL_CB_VALID, NL_CB_CUSTOM, parse, arg);
	c->err = 0;
	c->msg[0] = '\0';
	r = nl_send_auto(c->sk, msg);
	nlmsg_free(msg);
	if (r >= 0)
		r = nl_recvmsgs_default(c->sk);
	if (r == -NLE_DUMP_INTR && !c->err)
		return 1;
	if (r < 0 || c->err) {
		kctl_report(c, what, r);
		return -1;
	}
	return 0;
}

/* ---- records ----------------------------------------------------------- */

struct vm_rec {
	uint32_t id, pid, nr_vcpus, state;
	char name[64];
	uint64_t mem, mapped, created_ns;
};

struct vm_list {
	struct vm_rec *v;
	size_t n, cap;
};

struct vcpu_rec {
	uint32_t id, state;
	struct kestrel_nl_exits ex;
};

struct vcpu_list {
	struct vcpu_rec *v;
	size_t n;
};

struct stats_rec {
	char backend[32];
	uint32_t nr_vms, nr_vcpus;
	uint64_t npf;
	struct kestrel_nl_exits ex;
};

static struct nlattr **parse_attrs(struct nl_msg *msg, struct nlattr **tb)
{
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, KESTREL_NL_A_MAX, NULL) < 0)
		return NULL;
	return tb;
}

static int vm_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[KESTREL_NL_A_MAX + 1];
	struct vm_list *l = arg;
	struct vm_rec *v;

	if (!parse_attrs(msg, tb) || !tb[KESTREL_NL_A_VM_ID])
		return NL_SKIP;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		void *p = realloc(l->v, cap * sizeof(*l->v));

		if (!p)
			return NL_STOP;
		l->v = p;
		l->cap = cap;
	}
	v = &l->v[l->n++];
	v->id = kestrel_nl_u32(tb, KESTREL_NL_A_VM_ID, 0);
	v->pid = kestrel_nl_u32(tb, KESTREL_NL_A_VM_OWNER_PID, 0);
	v->nr_vcpus = kestrel_nl_u32(tb, KESTREL_NL_A_VM_NR_VCPUS, 0);
	v->state = kestrel_nl_u32(tb, KESTREL_NL_A_VM_STATE, 0);
	v->mem = kestrel_nl_u64(tb, KESTREL_NL_A_VM_MEM_SIZE, 0);
	v->mapped = kestrel_nl_u64(tb, KESTREL_NL_A_VM_MAPPED, 0);
	v->created_ns = kestrel_nl_u64(tb, KESTREL_NL_A_VM_CREATED_NS, 0);
	kestrel_nl_str(tb, KESTREL_NL_A_VM_NAME, v->name, sizeof(v->name));
	return NL_OK;
}

static int vcpu_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[KESTREL_NL_A_MAX + 1];
	struct vcpu_list *l = arg;
	struct vcpu_rec *v;

	if (!parse_attrs(msg, tb) || !tb[KESTREL_NL_A_VCPU_ID] ||
	    l->n == MAX_VCPUS)
		return NL_SKIP;
	v = &l->v[l->n++];
	v->id = kestrel_nl_u32(tb, KESTREL_NL_A_VCPU_ID, 0);
	v->state = kestrel_nl_u32(tb, KESTREL_NL_A_VCPU_STATE, 0);
	kestrel_nl_exits(tb, &v->ex, 0);
	return NL_OK;
}

static int stats_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[KESTREL_NL_A_MAX + 1];
	struct stats_rec *s = arg;

	if (!parse_attrs(msg, tb))
		return NL_SKIP;
	kestrel_nl_str(tb, KESTREL_NL_A_STATS_BACKEND, s->backend, sizeof(s->backend));
	s->nr_vms = kestrel_nl_u32(tb, KESTREL_NL_A_STATS_NR_VMS, 0);
	s->nr_vcpus = kestrel_nl_u32(tb, KESTREL_NL_A_STATS_NR_VCPUS, 0);
	s->npf = kestrel_nl_u64(tb, KESTREL_NL_A_STATS_NPF, 0);
	kestrel_nl_exits(tb, &s->ex, 0);
	return NL_OK;
}

/* ---- formatting ------------------------------------------------------------ */

static const char *vm_state_name(uint32_t s)
{
	switch (s) {
	case KESTREL_NL_VM_STATE_IDLE:
		return "idle";
	case KESTREL_NL_VM_STATE_RUNNING:
		return "running";
	case KESTREL_NL_VM_STATE_HALTED:
		return "halted";
	}
	return "unknown";
}

static const char *vcpu_state_name(uint32_t s)
{
	switch (s) {
	case KESTREL_NL_VCPU_STATE_USERSPACE:
		return "userspace";
	case KESTREL_NL_VCPU_STATE_RUNNING:
		return "running";
	case KESTREL_NL_VCPU_STATE_HALTED:
		return "halted";
	}
	return "unknown";
}

/* Exact sizes: "16M", "12K", "4097" (no rounding hides a byte). */
static void fmt_size(char *buf, size_t size, uint64_t v)
{
	static const char units[] = "KMGTP";
	int u = -1;

	while (v && v % 1024 == 0 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, size, "%" PRIu64, v);
	else
		snprintf(buf, size, "%" PRIu64 "%c", v, units[u]);
}

static void fmt_age(char *buf, size_t size, uint64_t created_ns)
{
	struct timespec now;
	uint64_t s, now_ns;

	clock_gettime(CLOCK_REALTIME, &now);
	now_ns = (uint64_t)now.tv_sec * 1000000000ULL + now.tv_nsec;
	s = now_ns > created_ns ? (now_ns - created_ns) / 1000000000ULL : 0;
	if (s < 60)
		snprintf(buf, size, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
			 s / 60 % 60);
	else
		snprintf(buf, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400,
			 s / 3600 % 24);
}

static void fmt_time(char *buf, size_t size, uint64_t ns)
{
	time_t t = ns / 1000000000ULL;
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (unsigned int)(ns % 1000000000ULL / 1000));
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void json_exits(const struct kestrel_nl_exits *ex)
{
	unsigned int i;

	printf("\"guest_ns\":%" PRIu64 ",\"injected\":%" PRIu64 ",\"exits\":{",
	       ex->guest_ns, ex->injected);
	for (i = 0; i < ex->n; i++) {
		if (i)
			putchar(',');
		json_str(ex->name[i]);
		printf(":%" PRIu64, ex->count[i]);
	}
	putchar('}');
}

static void print_exits(const struct kestrel_nl_exits *ex, const char *indent)
{
	unsigned int i;

	printf("%sguest time     %llu.%06llu s\n", indent,
	       (unsigned long long)(ex->guest_ns / 1000000000ULL),
	       (unsigned long long)(ex->guest_ns % 1000000000ULL / 1000));
	printf("%sinjected       %" PRIu64 "\n", indent, ex->injected);
	printf("%sexits\n", indent);
	for (i = 0; i < ex->n; i++)
		printf("%s  %-16s %" PRIu64 "\n", indent, ex->name[i],
		       ex->count[i]);
}

/* ---- option parsing shared by the three commands ----------------------------- */

/* Parse [--json]; the remaining arguments start at *first.  -1: bad usage. */
static int parse_json_opt(int argc, char **argv, bool *json, int *first)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*json = false;
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			*json = true;
			break;
		case 'h':
			printf("Usage:\n%s\n%s", control_usage, control_help);
			exit(0);
		default:
			cerr("%s: unknown option '%s'", argv[0],
			     argv[optind - 1]);
			return -1;
		}
	}
	*first = optind;
	return 0;
}

/* ---- ps -------------------------------------------------------------------- */

static int cmp_vm(const void *a, const void *b)
{
	const struct vm_rec *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int dump_vms(struct kctl *c, struct vm_list *l)
{
	int tries = 0, r;

	memset(l, 0, sizeof(*l));
	/* A dump the VM list changed under is still usable: retry a bit. */
	do {
		l->n = 0;
		r = kctl_call(c, "listing VMs", KESTREL_NL_CMD_VM_GET, true, -1,
			      vm_cb, l);
	} while (r > 0 && ++tries < 5);
	if (r < 0) {
		free(l->v);
		return -1;
	}
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_vm);
	return 0;
}

int cmd_ps(int argc, char **argv)
{
	struct vm_list l;
	struct kctl c;
	bool json;
	size_t i;
	int first;

	if (parse_json_opt(argc, argv, &json, &first))
		return 1;
	if (first < argc) {
		cerr("ps: unexpected argument '%s'", argv[first]);
		return 1;
	}
	if (kctl_open(&c))
		return 1;
	if (dump_vms(&c, &l)) {
		kctl_close(&c);
		return 1;
	}
	kctl_close(&c);

	if (json) {
		printf("[");
		for (i = 0; i < l.n; i++) {
			struct vm_rec *v = &l.v[i];

			printf("%s\n  {\"id\":%u,\"name\":", i ? "," : "", v->id);
			json_str(v->name);
			printf(",\"owner_pid\":%u,\"vcpus\":%u,\"memory_bytes\":%" PRIu64
			       ",\"mapped_bytes\":%" PRIu64 ",\"created_ns\":%" PRIu64
			       ",\"state\":\"%s\"}",
			       v->pid, v->nr_vcpus, v->mem, v->mapped,
			       v->created_ns, vm_state_name(v->state));
		}
		printf("%s]\n", l.n ? "\n" : "");
	} else {
		printf("%5s %-20s %8s %5s %8s %8s %-8s %s\n", "ID", "NAME",
		       "PID", "VCPUS", "MEMORY", "MAPPED", "STATE", "AGE");
		for (i = 0; i < l.n; i++) {
			struct vm_rec *v = &l.v[i];
			char mem[24], mapped[24], age[24];

			fmt_size(mem, sizeof(mem), v->mem);
			fmt_size(mapped, sizeof(mapped), v->mapped);
			fmt_age(age, sizeof(age), v->created_ns);
			printf("%5u %-20s %8u %5u %8s %8s %-8s %s\n", v->id,
			       v->name[0] ? v->name : "-", v->pid, v->nr_vcpus,
			       mem, mapped, vm_state_name(v->state), age);
		}
	}
	free(l.v);
	return 0;
}

/* ---- stats ----------------------------------------------------------------- */

/* A VM by id ("3") or by name; a name must be unique. */
static int find_vm(struct kctl *c, const char *arg, struct vm_rec *out)
{
	struct vm_list l;
	unsigned long id;
	char *end;
	size_t i, found = 0;
	bool by_id;

	errno = 0;
	id = strtoul(arg, &end, 10);
	by_id = *arg && !*end && !errno && id <= UINT32_MAX;
	if (dump_vms(c, &l))
		return -1;
	for (i = 0; i < l.n; i++) {
		if (by_id ? l.v[i].id == id : !strcmp(l.v[i].name, arg)) {
			if (found++)
				break;
			*out = l.v[i];
		}
	}
	free(l.v);
	if (found == 1)
		return 0;
	if (found)
		cerr("stats: several VMs are named '%s': give an id (kestrel ps)",
		     arg);
	else
		cerr("stats: no VM %s '%s' (kestrel ps lists them)",
		     by_id ? "with id" : "named", arg);
	return -1;
}

static int stats_vm(struct kctl *c, const char *arg, bool json)
{
	struct vcpu_list l = { 0 };
	struct vm_rec vm;
	size_t i;

	if (find_vm(c, arg, &vm))
		return 1;
	l.v = calloc(MAX_VCPUS, sizeof(*l.v));
	if (!l.v) {
		cerr("out of memory");
		return 1;
	}
	if (kctl_call(c, "reading vCPU counters", KESTREL_NL_CMD_VCPU_GET,
		      true, vm.id, vcpu_cb, &l) < 0) {
		free(l.v);
		return 1;
	}
	if (json) {
		printf("{\"id\":%u,\"name\":", vm.id);
		json_str(vm.name);
		printf(",\"owner_pid\":%u,\"vcpus\":[", vm.pid);
		for (i = 0; i < l.n; i++) {
			printf("%s\n  {\"id\":%u,\"state\":\"%s\",", i ? "," : "",
			       l.v[i].id, vcpu_state_name(l.v[i].state));
			json_exits(&l.v[i].ex);
			putchar('}');
		}
		printf("%s]}\n", l.n ? "\n" : "");
	} else {
		printf("VM %u (%s), owner pid %u, %zu vCPU%s\n", vm.id,
		       vm.name[0] ? vm.name : "-", vm.pid, l.n,
		       l.n == 1 ? "" : "s");
		for (i = 0; i < l.n; i++) {
			printf("vCPU %u: %s\n", l.v[i].id,
			       vcpu_state_name(l.v[i].state));
			print_exits(&l.v[i].ex, "  ");
		}
	}
	free(l.v);
	return 0;
}

static int stats_global(struct kctl *c, bool json)
{
	struct stats_rec s;

	memset(&s, 0, sizeof(s));
	if (kctl_call(c, "reading statistics", KESTREL_NL_CMD_STATS_GET, false,
		      -1, stats_cb, &s))
		return 1;
	if (json) {
		printf("{\"backend\":");
		json_str(s.backend);
		printf(",\"vms\":%u,\"vcpus\":%u,\"nested_page_faults\":%" PRIu64
		       ",", s.nr_vms, s.nr_vcpus, s.npf);
		json_exits(&s.ex);
		printf("}\n");
	} else {
		printf("backend        %s\n", s.backend);
		printf("VMs            %u\n", s.nr_vms);
		printf("vCPUs          %u\n", s.nr_vcpus);
		printf("nested faults  %" PRIu64 "\n", s.npf);
		print_exits(&s.ex, "");
	}
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	struct kctl c;
	bool json;
	int first, r;

	if (parse_json_opt(argc, argv, &json, &first))
		return 1;
	if (argc - first > 1) {
		cerr("stats: unexpected argument '%s'", argv[first + 1]);
		return 1;
	}
	if (kctl_open(&c))
		return 1;
	if (first < argc)
		r = stats_vm(&c, argv[first], json);
	else
		r = stats_global(&c, json);
	kctl_close(&c);
	return r;
}

/* ---- events ---------------------------------------------------------------- */

struct event_state {
	bool json;
	uint64_t last_seq;
};

static volatile sig_atomic_t events_stop;

static void events_handler(int sig)
{
	events_stop = sig;
}

static const char *event_name(uint32_t type)
{
	switch (type) {
	case KESTREL_NL_EVENT_VM_CREATED:
		return "vm-created";
	case KESTREL_NL_EVENT_VM_DESTROYED:
		return "vm-destroyed";
	case KESTREL_NL_EVENT_VCPU_SHUTDOWN:
		return "vcpu-shutdown";
	case KESTREL_NL_EVENT_VCPU_INTERNAL_ERROR:
		return "vcpu-internal-error";
	}
	return "unknown";
}

static int event_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[KESTREL_NL_A_MAX + 1];
	struct event_state *st = arg;
	uint64_t seq, ns;
	uint32_t type;
	char name[64], when[96];

	if (genlmsg_hdr(nlmsg_hdr(msg))->cmd != KESTREL_NL_CMD_EVENT ||
	    !parse_attrs(msg, tb))
		return NL_SKIP;
	type = kestrel_nl_u32(tb, KESTREL_NL_A_EVENT_TYPE, 0);
	seq = kestrel_nl_u64(tb, KESTREL_NL_A_EVENT_SEQ, 0);
	ns = kestrel_nl_u64(tb, KESTREL_NL_A_EVENT_TIME_NS, 0);
	kestrel_nl_str(tb, KESTREL_NL_A_VM_NAME, name, sizeof(name));
	/* Numbers are consecutive while we listen, unless some were lost. */
	if (st->last_seq && seq > st->last_seq + 1)
		cerr("events: %" PRIu64 " event(s) lost", seq - st->last_seq - 1);
	st->last_seq = seq;

	if (st->json) {
		printf("{\"seq\":%" PRIu64 ",\"time_ns\":%" PRIu64
		       ",\"event\":\"%s\",\"vm\":%u,\"name\":",
		       seq, ns, event_name(type), kestrel_nl_u32(tb, KESTREL_NL_A_VM_ID, 0));
		json_str(name);
		printf(",\"owner_pid\":%u", kestrel_nl_u32(tb, KESTREL_NL_A_VM_OWNER_PID, 0));
		if (tb[KESTREL_NL_A_VCPU_ID])
			printf(",\"vcpu\":%u", kestrel_nl_u32(tb, KESTREL_NL_A_VCPU_ID, 0));
		if (tb[KESTREL_NL_A_EVENT_SUBERROR])
			printf(",\"suberror\":%u",
			       kestrel_nl_u32(tb, KESTREL_NL_A_EVENT_SUBERROR, 0));
		printf("}\n");
	} else {
		fmt_time(when, sizeof(when), ns);
		printf("%" PRIu64 " %s %-19s vm %u (%s) pid %u", seq, when,
		       event_name(type), kestrel_nl_u32(tb, KESTREL_NL_A_VM_ID, 0),
		       name[0] ? name : "-",
		       kestrel_nl_u32(tb, KESTREL_NL_A_VM_OWNER_PID, 0));
		if (tb[KESTREL_NL_A_VCPU_ID])
			printf(" vcpu %u", kestrel_nl_u32(tb, KESTREL_NL_A_VCPU_ID, 0));
		if (tb[KESTREL_NL_A_EVENT_SUBERROR])
			printf(" suberror %u",
			       kestrel_nl_u32(tb, KESTREL_NL_A_EVENT_SUBERROR, 0));
		putchar('\n');
	}
	fflush(stdout);
	return NL_OK;
}

int cmd_events(int argc, char **argv)
{
	struct event_state st = { 0 };
	struct sigaction sa;
	struct kctl c;
	int first, grp, r, fd;

	if (parse_json_opt(argc, argv, &st.json, &first))
		return 1;
	if (first < argc) {
		cerr("events: unexpected argument '%s'", argv[first]);
		return 1;
	}
	if (kctl_open(&c))
		return 1;
	grp = genl_ctrl_resolve_grp(c.sk, KESTREL_GENL_NAME,
				    KESTREL_GENL_MCGRP_EVENTS);
	if (grp < 0) {
		cerr("events: no '%s' group in the '%s' family: %s",
		     KESTREL_GENL_MCGRP_EVENTS, KESTREL_GENL_NAME,
		     nl_geterror(grp));
		goto fail;
	}
	r = nl_socket_add_membership(c.sk, grp);
	if (r < 0) {
		if (r == -NLE_PERM)
			cerr("events: permission denied: following events needs CAP_NET_ADMIN (run as root)");
		else
			cerr("events: cannot join the events group: %s",
			     nl_geterror(r));
		goto fail;
	}
	/* Events carry sequence 0, not our requests' numbers. */
	nl_socket_disable_seq_check(c.sk);
	nl_socket_modify_cb(c.sk, NL_CB_VALID, NL_CB_CUSTOM, event_cb, &st);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = events_handler;		/* no SA_RESTART: poll returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Tells a script reading stderr that we are subscribed now. */
	cerr("following %s/%s; interrupt to stop", KESTREL_GENL_NAME,
	     KESTREL_GENL_MCGRP_EVENTS);

	fd = nl_socket_get_fd(c.sk);
	while (!events_stop) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			cerr("events: poll: %s", strerror(errno));
			goto fail;
		}
		r = nl_recvmsgs_default(c.sk);
		if (r == -NLE_NOMEM) {
			/* ENOBUFS: the socket overflowed; keep following. */
			cerr("events: receive buffer overflow: events were lost");
			continue;
		}
		if (r < 0 && r != -NLE_INTR && r != -NLE_AGAIN) {
			cerr("events: %s", nl_geterror(r));
			goto fail;
		}
	}
	kctl_close(&c);
	return 0;
fail:
	kctl_close(&c);
	return 1;
}
