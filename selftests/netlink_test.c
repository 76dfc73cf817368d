// SPDX-License-Identifier: GPL-2.0
/*
 * The control plane through libnl: the "kestrel" generic-netlink family
 * (uapi/linux/kestrel_netlink.h, Documentation/netlink.rst).
 *
 * VM and vCPU dumps against what this program set up, global counters
 * against what its guests did, dumps racing with VM creation and
 * destruction, lifecycle events in order, strict rejection of malformed
 * requests, and EPERM for an unprivileged user.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/family.h>
#include <linux/kestrel_netlink.h>

#include "lib.h"
#include "../userspace/nl_attrs.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK	270
#endif

DECLARE_GUEST(rm_cpuid);
DECLARE_GUEST(rm_spin);
DECLARE_GUEST(ud2);

#define MAX_RECS	1024
#define MAX_VCPUS	64
#define NOBODY		65534

/* ---- a small libnl client ----------------------------------------------- */

struct nlc {
	struct nl_sock *sk;
	int family;
	int err;		/* errno of the last error reply, 0: none */
	char msg[256];		/* its extended-ack message */
};

/* Datagrams read by nlc_recv(): a dump in several parts reads several. */
static int recv_datagrams;

static int nlc_recv(struct nl_sock *sk, struct sockaddr_nl *nla,
		    unsigned char **buf, struct ucred **creds)
{
	int n = nl_recv(sk, nla, buf, creds);

	if (n > 0)
		recv_datagrams++;
	return n;
}

static int nlc_err_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)e - 1;
	struct nlc *c = arg;
	size_t off = NLMSG_HDRLEN + sizeof(*e);
	struct nlattr *a;
	int rem;

	(void)nla;
	c->err = -e->error;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NL_STOP;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
	if (nlh->nlmsg_len <= off)
		return NL_STOP;
	nla_for_each_attr(a, (struct nlattr *)((char *)nlh + off),
			  nlh->nlmsg_len - off, rem)
		if (nla_type(a) == NLMSGERR_ATTR_MSG && nla_len(a) > 0)
			snprintf(c->msg, sizeof(c->msg), "%.*s", nla_len(a),
				 (char *)nla_data(a));
	return NL_STOP;
}

static void nlc_close(struct nlc *c)
{
	if (c->sk)
		nl_socket_free(c->sk);
	c->sk = NULL;
}

static bool nlc_open(struct nlc *c)
{
	struct nl_cb *cb;
	int one = 1, r;

	memset(c, 0, sizeof(*c));
	c->sk = nl_socket_alloc();
	if (!c->sk) {
		diag("nl_socket_alloc failed");
		return false;
	}
	r = genl_connect(c->sk);
	if (r < 0) {
		diag("genl_connect: %s", nl_geterror(r));
		goto fail;
	}
	nl_socket_disable_auto_ack(c->sk);
	if (setsockopt(nl_socket_get_fd(c->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		       &one, sizeof(one)))
		diag("NETLINK_EXT_ACK: %s (no error messages)", strerror(errno));
	c->family = genl_ctrl_resolve(c->sk, KESTREL_GENL_NAME);
	if (c->family < 0) {
		diag("genl_ctrl_resolve(\"%s\"): %s", KESTREL_GENL_NAME,
		     nl_geterror(c->family));
		goto fail;
	}
	nl_socket_modify_err_cb(c->sk, NL_CB_CUSTOM, nlc_err_cb, c);
	cb = nl_socket_get_cb(c->sk);
	nl_cb_overwrite_recv(cb, nlc_recv);
	nl_cb_put(cb);
	return true;
fail:
	nlc_close(c);
	return false;
}

/* A request for @cmd; the caller adds attributes. */
static struct nl_msg *nlc_req(struct nlc *c, uint8_t cmd, bool dump)
{
	struct nl_msg *m = nlmsg_alloc();

	if (!m)
		return NULL;
	if (!genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, c->family, 0,
			 dump ? NLM_F_DUMP : 0, cmd, KESTREL_GENL_VERSION)) {
		nlmsg_free(m);
		return NULL;
	}
	return m;
}

#define XFER_DUMP_INTR	1	/* nlc_xfer(): the dump was flagged */
#define XFER_LIBNL	(-100000)

/*
 * Send @m (consumed) and feed replies to @cb.  0; XFER_DUMP_INTR; -errno
 * from the kernel's error reply; XFER_LIBNL on a local failure.
 */
static int nlc_xfer(struct nlc *c, struct nl_msg *m, nl_recvmsg_msg_cb_t cb,
		    void *arg)
{
	int r;

	if (!m)
		return XFER_LIBNL;
	c->err = 0;
	c->msg[0] = '\0';
	nl_socket_modify_cb(c->sk, NL_CB_VALID, NL_CB_CUSTOM, cb, arg);
	r = nl_send_auto(c->sk, m);
	nlmsg_free(m);
	if (r < 0) {
		diag("nl_send_auto: %s", nl_geterror(r));
		return XFER_LIBNL;
	}
	r = nl_recvmsgs_default(c->sk);
	if (c->err)
		return -c->err;
	if (r == -NLE_DUMP_INTR)
		return XFER_DUMP_INTR;
	if (r < 0) {
		diag("nl_recvmsgs: %s", nl_geterror(r));
		return XFER_LIBNL;
	}
	return 0;
}

/* ---- records ---------------------------------------------------------- */

struct vmrec {
	uint32_t id, pid, nr_vcpus, state;
	uint64_t mem, mapped, created_ns;
	char name[64];
	int dgram;		/* datagram it came in */
};

struct vmlist {
	int n;
	bool overflow;
	struct vmrec v[MAX_RECS];
};

struct vcpurec {
	uint32_t vm_id, id, state;
	struct kestrel_nl_exits ex;
};

struct vcpulist {
	int n;
	struct vcpurec v[MAX_VCPUS];
};

struct statsrec {
	char backend[32];
	uint32_t nr_vms, nr_vcpus;
	uint64_t npf;
	struct kestrel_nl_exits ex;
	int replies;
};

static bool parse(struct nl_msg *msg, struct nlattr **tb)
{
	return genlmsg_parse(nlmsg_hdr(msg), 0, tb, KESTREL_NL_A_MAX, NULL) >= 0;
}

/* The counter named @name, UINT64_MAX if the reply had none. */
static uint64_t exit_count(const struct kestrel_nl_exits *ex, const char *name)
{
	unsigned int i;

	for (i = 0; i < ex->n; i++)
		if (!strcmp(ex->name[i], name))
			return ex->count[i];
	return UINT64_MAX;
}

static int vm_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[KESTREL_NL_A_MAX + 1];
	struct vmlist *l = arg;
	struct vmrec *v;

	if (genlmsg_hdr(nlmsg_hdr(msg))->cmd != KESTREL_NL_CMD_VM_GET ||
	    !parse(msg, tb))
		return NL_SKIP;
	if (l->n == MAX_RECS) {
		l->overflow = true;
		return NL_SKIP;
	}
	v = &l->v[l->n++];
	v->id = kestrel_nl_u32(tb, KESTREL_NL_A_VM_ID, UINT32_MAX);
	v->pid = kestrel_nl_u32(tb, KESTREL_NL_A_VM_OWNER_PID, UINT32_MAX);
	v->nr_vcpus = kestrel_nl_u32(tb, KESTREL_NL_A_VM_NR_VCPUS, UINT32_MAX);
	v->state = kestrel_nl_u32(tb, KESTREL_NL_A_VM_STATE, UINT32_MAX);
	v->mem = kestrel_nl_u64(tb, KESTREL_NL_A_VM_MEM_SIZE, UINT64_MAX);
	v->mapped = kestrel_nl_u64(tb, KESTREL_NL_A_VM_MAPPED, UINT64_MAX);
	v->created_ns = kestrel_nl_u64(tb, KESTREL_NL_A_VM_CREATED_NS, UINT64_MAX);
	kestrel_nl_str(tb, KESTREL_NL_A_VM_NAME, v->name, sizeof(v->name));
	v->dgram = recv_datagrams;
	return NL_OK;
}

static int vcpu_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[KESTREL_NL_A_MAX + 1];
	struct vcpulist *l = arg;
	struct vcpurec *v;

	if (genlmsg_hdr(nlmsg_hdr(msg))->cmd != KESTREL_NL_CMD_VCPU_GET ||
	    !parse(msg, tb) || l->n == (int)ARRAY_SIZE(l->v))
		return NL_SKIP;
	v = &l->v[l->n++];
	v->vm_id = kestrel_nl_u32(tb, KESTREL_NL_A_VM_ID, UINT32_MAX);
	v->id = kestrel_nl_u32(tb, KESTREL_NL_A_VCPU_ID, UINT32_MAX);
	v->state = kestrel_nl_u32(tb, KESTREL_NL_A_VCPU_STATE, UINT32_MAX);
	kestrel_nl_exits(tb, &v->ex, UINT64_MAX);
	return NL_OK;
}

static int stats_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[KESTREL_NL_A_MAX + 1];
	struct statsrec *s = arg;

	if (genlmsg_hdr(nlmsg_hdr(msg))->cmd != KESTREL_NL_CMD_STATS_GET ||
	    !parse(msg, tb))
		return NL_SKIP;
	s->replies++;
	kestrel_nl_str(tb, KESTREL_NL_A_STATS_BACKEND, s->backend, sizeof(s->backend));
	s->nr_vms = kestrel_nl_u32(tb, KESTREL_NL_A_STATS_NR_VMS, UINT32_MAX);
	s->nr_vcpus = kestrel_nl_u32(tb, KESTREL_NL_A_STATS_NR_VCPUS, UINT32_MAX);
	s->npf = kestrel_nl_u64(tb, KESTREL_NL_A_STATS_NPF, UINT64_MAX);
	kestrel_nl_exits(tb, &s->ex, UINT64_MAX);
	return NL_OK;
}

static int ignore_cb(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(*(int *)arg)++;
	return NL_OK;
}

/* ---- requests ----------------------------------------------------------- */

/* Every VM, retrying while the list changes under the dump. */
static bool dump_vms(struct nlc *c, struct vmlist *l)
{
	int r, tries = 0;

	do {
		l->n = 0;
		l->overflow = false;
		r = nlc_xfer(c, nlc_req(c, KESTREL_NL_CMD_VM_GET, true), vm_cb, l);
	} while (r == XFER_DUMP_INTR && ++tries < 10);
	if (r && r != XFER_DUMP_INTR) {
		diag("VM dump failed: %s (%s)", r < 0 && r != XFER_LIBNL ?
		     errno_name(-r) : "libnl", c->msg);
		return false;
	}
	if (l->overflow) {
		diag("more than %d VMs", MAX_RECS);
		return false;
	}
	return true;
}

/* The VM named @name owned by this process in @l, or NULL. */
static struct vmrec *find_mine(struct vmlist *l, const char *name)
{
	struct vmrec *found = NULL;
	int i;

	for (i = 0; i < l->n; i++) {
		if (l->v[i].pid != (uint32_t)getpid() ||
		    strcmp(l->v[i].name, name))
			continue;
		if (found) {
			diag("VM \"%s\" listed twice (ids %u and %u)", name,
			     found->id, l->v[i].id);
			return NULL;
		}
		found = &l->v[i];
	}
	return found;
}

static bool lookup_vm(struct nlc *c, const char *name, struct vmrec *out)
{
	static struct vmlist l;
	struct vmrec *v;

	if (!dump_vms(c, &l))
		return false;
	v = find_mine(&l, name);
	if (!v) {
		diag("VM \"%s\" of pid %d is not in the dump (%d VMs)", name,
		     getpid(), l.n);
		return false;
	}
	*out = *v;
	return true;
}

static int get_vm(struct nlc *c, uint32_t id, struct vmlist *l)
{
	struct nl_msg *m = nlc_req(c, KESTREL_NL_CMD_VM_GET, false);

	l->n = 0;
	if (m && nla_put_u32(m, KESTREL_NL_A_VM_ID, id) < 0) {
		nlmsg_free(m);
		m = NULL;
	}
	return nlc_xfer(c, m, vm_cb, l);
}

static int dump_vcpus(struct nlc *c, uint32_t vm_id, struct vcpulist *l)
{
	struct nl_msg *m = nlc_req(c, KESTREL_NL_CMD_VCPU_GET, true);

	l->n = 0;
	if (m && nla_put_u32(m, KESTREL_NL_A_VM_ID, vm_id) < 0) {
		nlmsg_free(m);
		m = NULL;
	}
	return nlc_xfer(c, m, vcpu_cb, l);
}

static int get_vcpu(struct nlc *c, uint32_t vm_id, uint32_t id,
		    struct vcpulist *l)
{
	struct nl_msg *m = nlc_req(c, KESTREL_NL_CMD_VCPU_GET, false);

	l->n = 0;
	if (m && (nla_put_u32(m, KESTREL_NL_A_VM_ID, vm_id) < 0 ||
		  nla_put_u32(m, KESTREL_NL_A_VCPU_ID, id) < 0)) {
		nlmsg_free(m);
		m = NULL;
	}
	return nlc_xfer(c, m, vcpu_cb, l);
}

static int get_stats(struct nlc *c, struct statsrec *s)
{
	memset(s, 0, sizeof(*s));
	return nlc_xfer(c, nlc_req(c, KESTREL_NL_CMD_STATS_GET, false),
			stats_cb, s);
}

#define CHECK_XFER(expr)						\
	do {								\
		int __r = (expr);					\
		if (__r) {						\
			diag("%s:%d: %s: %s %s", __FILE__, __LINE__, #expr, \
			     __r == XFER_LIBNL ? "libnl failure" :	\
			     __r == XFER_DUMP_INTR ? "dump interrupted" : \
			     errno_name(-__r), c->msg);			\
			return TEST_FAIL;				\
		}							\
	} while (0)

/* expr must fail with -err from the kernel */
#define CHECK_NLERR(expr, err)						\
	do {								\
		int __r = (expr);					\
		if (__r != -(err)) {					\
			diag("%s:%d: %s: got %s, want %s (%s)", __FILE__, \
			     __LINE__, #expr,				\
			     __r == 0 ? "success" :			\
			     __r == XFER_LIBNL ? "libnl failure" :	\
			     __r == XFER_DUMP_INTR ? "dump interrupted" : \
			     errno_name(-__r), errno_name(err), c->msg); \
			return TEST_FAIL;				\
		}							\
	} while (0)

/* ---- VMs ----------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}


/* Close a vCPU for good: its fd and its run mapping hold the VM. */
static void vcpu_close(struct vcpu *v)
{
	res_unmap(v->run, v->run_size);
	res_close(v->fd);
}

/* ---- the cases ------------------------------------------------------------ */

static enum test_result test_family(const void *arg)
{
	struct genl_family *fam;
	struct nl_cache *cache;
	struct nlc nc, *c = &nc;
	int grp, r;

	(void)arg;
	CHECK_H(nlc_open(c));
	r = genl_ctrl_alloc_cache(c->sk, &cache);
	if (r < 0) {
		diag("genl_ctrl_alloc_cache: %s", nl_geterror(r));
		nlc_close(c);
		return TEST_FAIL;
	}
	fam = genl_ctrl_search_by_name(cache, KESTREL_GENL_NAME);
	if (!fam) {
		diag("no \"%s\" in the controller's cache", KESTREL_GENL_NAME);
		nl_cache_free(cache);
		nlc_close(c);
		return TEST_FAIL;
	}
	r = genl_family_get_version(fam);
	genl_family_put(fam);
	nl_cache_free(cache);
	grp = genl_ctrl_resolve_grp(c->sk, KESTREL_GENL_NAME,
				    KESTREL_GENL_MCGRP_EVENTS);
	nlc_close(c);
	CHECK_EQ(r, KESTREL_GENL_VERSION);
	if (grp < 0) {
		diag("no \"%s\" group: %s", KESTREL_GENL_MCGRP_EVENTS,
		     nl_geterror(grp));
		return TEST_FAIL;
	}
	return TEST_PASS;
}

struct expect_vm {
	const char *name;
	uint32_t nr_vcpus;
	uint64_t mem;
	bool gone;
};

/* The dump holds exactly the VMs of @want that are not gone, for our pid. */
static enum test_result check_my_vms(struct nlc *c, const struct expect_vm *want,
				     int n, uint64_t t0, uint64_t t1)
{
	static struct vmlist l, one;
	int i, mine = 0, live = 0;

	CHECK_H(dump_vms(c, &l));
	for (i = 0; i < l.n; i++)
		mine += l.v[i].pid == (uint32_t)getpid();
	for (i = 0; i < n; i++) {
		struct vmrec *v = find_mine(&l, want[i].name);

		if (want[i].gone) {
			if (v) {
				diag("VM \"%s\" (id %u) was destroyed but is listed",
				     want[i].name, v->id);
				return TEST_FAIL;
			}
			continue;
		}
		live++;
		if (!v) {
			diag("VM \"%s\" is not listed", want[i].name);
			return TEST_FAIL;
		}
		CHECK_EQ(v->nr_vcpus, want[i].nr_vcpus);
		CHECK_EQ(v->mem, want[i].mem);
		CHECK_EQ(v->mapped, 0);
		CHECK_EQ(v->state, KESTREL_NL_VM_STATE_IDLE);
		CHECK(v->created_ns >= t0 && v->created_ns <= t1);

		/* A get by id says the same. */
		CHECK_XFER(get_vm(c, v->id, &one));
		CHECK_EQ(one.n, 1);
		CHECK(!strcmp(one.v[0].name, v->name));
		CHECK_EQ(one.v[0].id, v->id);
		CHECK_EQ(one.v[0].pid, v->pid);
		CHECK_EQ(one.v[0].nr_vcpus, v->nr_vcpus);
		CHECK_EQ(one.v[0].mem, v->mem);
		CHECK_EQ(one.v[0].created_ns, v->created_ns);
	}
	if (mine != live) {
		diag("%d VMs of pid %d listed, want %d", mine, getpid(), live);
		return TEST_FAIL;
	}
	return TEST_PASS;
}

static enum test_result test_vm_dump(const void *arg)
{
	struct expect_vm want[] = {
		{ "nl-a", 2, GUEST_MEM_SIZE, false },
		{ "nl-b", 0, 0, false },
		{ "nl-c", 1, GUEST_MEM_SIZE + 0x100000, false },
		{ "", 0, 0, false },
	};
	struct vm a, b, cc, d;
	struct nlc nc, *c = &nc;
	enum test_result r;
	uint64_t t0, t1;
	void *extra;

	(void)arg;
	t0 = now_ns();
	CHECK_H(vm_create_named(&a, "nl-a", GUEST_MEM_SIZE));
	CHECK_OK(create_vcpu_fd(a.fd, 0));
	CHECK_OK(create_vcpu_fd(a.fd, 5));
	CHECK_H(vm_create_named(&b, "nl-b", 0));
	CHECK_H(vm_create_named(&cc, "nl-c", GUEST_MEM_SIZE));
	extra = res_map(mmap(NULL, 0x100000, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 0x100000);
	CHECK(extra != MAP_FAILED);
	CHECK_H(vm_add_slot(&cc, 3, GUEST_SLOT1_GPA, extra, 0x100000));
	CHECK_OK(create_vcpu_fd(cc.fd, 0));
	CHECK_H(vm_create_named(&d, "", 0));		/* names are optional */
	t1 = now_ns();

	CHECK_H(nlc_open(c));
	r = check_my_vms(c, want, ARRAY_SIZE(want), t0, t1);
	if (r == TEST_PASS) {
		/* Closing its fd destroys a VM without vCPUs at once. */
		CHECK_OK(res_close(b.fd));
		want[1].gone = true;
		r = check_my_vms(c, want, ARRAY_SIZE(want), t0, t1);
	}
	nlc_close(c);
	return r;
}

static enum test_result test_mapped_grows(const void *arg)
{
	static const uint32_t none = CPUID_LIST_END;
	struct nlc nc, *c = &nc;
	struct vmrec before, after;
	struct vm vm;
	struct vcpu v;

	(void)arg;
	CHECK_H(vm_create_named(&vm, "nl-map", GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_H(vm_load(&vm, GUEST(rm_cpuid)));
	memcpy(vm.mem + GUEST_DATA, &none, sizeof(none));
	CHECK_H(vcpu_setup_real(&v));
	CHECK_H(nlc_open(c));
	if (!lookup_vm(c, "nl-map", &before)) {
		nlc_close(c);
		return TEST_FAIL;
	}
	/* The guest fetches its code and reads GUEST_DATA: two pages. */
	if (!run_expect_hlt(&v) || !lookup_vm(c, "nl-map", &after)) {
		nlc_close(c);
		return TEST_FAIL;
	}
	nlc_close(c);
	diag("mapped: %llu bytes before the run, %llu after",
	     (unsigned long long)before.mapped,
	     (unsigned long long)after.mapped);
	CHECK_EQ(before.mapped, 0);
	CHECK(after.mapped >= 2 * (uint64_t)page_size);
	CHECK(after.mapped <= GUEST_MEM_SIZE);
	CHECK_EQ(after.mem, GUEST_MEM_SIZE);
	return TEST_PASS;
}

/* Run rm_cpuid on @v for @n leaves: n CPUID, 4n OUT and one HLT exits. */
static bool run_cpuid_guest(struct vm *vm, struct vcpu *v, int n)
{
	uint32_t *list = (uint32_t *)(vm->mem + GUEST_DATA);
	uint32_t val;
	int i, j;

	for (i = 0; i < n; i++) {
		list[2 * i] = i;
		list[2 * i + 1] = 0;
	}
	list[2 * n] = CPUID_LIST_END;
	if (!vm_load(vm, GUEST(rm_cpuid)) || !vcpu_setup_real(v))
		return false;
	for (i = 0; i < n; i++)
		for (j = 0; j < 4; j++)
			if (!run_expect_out(v, PORT_U32, 4, &val))
				return false;
	return run_expect_hlt(v);
}

static bool check_exit_names(const struct kestrel_nl_exits *ex)
{
	static const char *const names[] = { "cpuid", "io", "hlt", "npf",
					     "shutdown" };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		if (exit_count(ex, names[i]) == UINT64_MAX) {
			diag("no \"%s\" exit counter (%u counters)", names[i],
			     ex->n);
			return false;
		}
	}
	return true;
}

#define NLEAVES	3

static enum test_result test_vcpu_dump(const void *arg)
{
	static struct vcpulist l, one;
	struct nlc nc, *c = &nc;
	struct vcpurec *v0, *v1;
	struct vmrec rec;
	struct vcpu a, b;
	struct vm vm;
	int i;

	(void)arg;
	CHECK_H(vm_create_named(&vm, "nl-vcpu", GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &a, 0));
	CHECK_H(vcpu_create(&vm, &b, 7));
	CHECK_H(run_cpuid_guest(&vm, &a, NLEAVES));

	CHECK_H(nlc_open(c));
	if (!lookup_vm(c, "nl-vcpu", &rec)) {
		nlc_close(c);
		return TEST_FAIL;
	}
	i = dump_vcpus(c, rec.id, &l);
	if (!i)
		i = get_vcpu(c, rec.id, 0, &one);
	nlc_close(c);
	CHECK_XFER(i);

	CHECK_EQ(l.n, 2);
	v0 = &l.v[0];
	v1 = &l.v[1];
	CHECK_EQ(v0->vm_id, rec.id);
	CHECK_EQ(v0->id, 0);
	CHECK_EQ(v1->id, 7);
	CHECK_H(check_exit_names(&v0->ex));
	diag("vCPU 0: cpuid %llu io %llu hlt %llu npf %llu interrupt %llu, %llu ns in guest",
	     (unsigned long long)exit_count(&v0->ex, "cpuid"),
	     (unsigned long long)exit_count(&v0->ex, "io"),
	     (unsigned long long)exit_count(&v0->ex, "hlt"),
	     (unsigned long long)exit_count(&v0->ex, "npf"),
	     (unsigned long long)exit_count(&v0->ex, "interrupt"),
	     (unsigned long long)v0->ex.guest_ns);
	CHECK_EQ(exit_count(&v0->ex, "cpuid"), NLEAVES);
	CHECK_EQ(exit_count(&v0->ex, "io"), 4 * NLEAVES);
	CHECK_EQ(exit_count(&v0->ex, "hlt"), 1);
	CHECK_EQ(exit_count(&v0->ex, "shutdown"), 0);
	CHECK(exit_count(&v0->ex, "npf") >= 1);
	CHECK(v0->ex.guest_ns > 0 && v0->ex.guest_ns != UINT64_MAX);
	CHECK_EQ(v0->ex.injected, 0);
	CHECK_EQ(v0->state, KESTREL_NL_VCPU_STATE_USERSPACE);

	/* The vCPU that never ran counted nothing. */
	CHECK_H(check_exit_names(&v1->ex));
	for (i = 0; i < (int)v1->ex.n; i++)
		CHECK_EQ(v1->ex.count[i], 0);
	CHECK_EQ(v1->ex.guest_ns, 0);
	CHECK_EQ(v1->state, KESTREL_NL_VCPU_STATE_USERSPACE);

	/* A get of vCPU 0 says the same as the dump. */
	CHECK_EQ(one.n, 1);
	CHECK_EQ(one.v[0].id, 0);
	CHECK_EQ(one.v[0].ex.n, v0->ex.n);
	for (i = 0; i < (int)v0->ex.n; i++)
		CHECK_EQ(one.v[0].ex.count[i], v0->ex.count[i]);
	CHECK_EQ(one.v[0].ex.guest_ns, v0->ex.guest_ns);
	return TEST_PASS;
}

/* ---- a vCPU that runs until told to stop ------------------------------------ */

struct spinner {
	struct vcpu *v;
	pthread_t thread;
	int ret, err;
};

static void stop_handler(int sig)
{
	(void)sig;
}

static void *spin_thread(void *arg)
{
	struct spinner *s = arg;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	s->ret = ioctl(s->v->fd, KESTREL_RUN, 0UL);
	s->err = errno;
	return NULL;
}

static bool spin_start(struct spinner *s, struct vcpu *v)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stop_handler;		/* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	memset(s, 0, sizeof(*s));
	s->v = v;
	v->run->immediate_exit = 0;
	return start_thread(spin_thread, s, &s->thread);
}

/* RUN sees immediate_exit if the signal comes before it starts. */
static void spin_stop(struct spinner *s)
{
	s->v->run->immediate_exit = 1;
	pthread_kill(s->thread, SIGUSR2);
	pthread_join(s->thread, NULL);
}

static enum test_result test_running_state(const void *arg)
{
	static struct vcpulist l;
	struct nlc nc, *c = &nc;
	struct spinner s;
	struct vmrec rec;
	struct vcpu v;
	struct vm vm;
	bool seen = false;
	int i, r = 0;

	(void)arg;
	CHECK_H(vm_create_named(&vm, "nl-spin", GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &v, 0));
	CHECK_H(vm_load(&vm, GUEST(rm_spin)));
	CHECK_H(vcpu_setup_real(&v));
	CHECK_H(nlc_open(c));
	CHECK_H(spin_start(&s, &v));
	for (i = 0; i < 100 && !seen; i++) {
		msleep(50);
		if (!lookup_vm(c, "nl-spin", &rec))
			break;
		r = dump_vcpus(c, rec.id, &l);
		if (r || l.n != 1)
			break;
		seen = rec.state == KESTREL_NL_VM_STATE_RUNNING &&
		       l.v[0].state == KESTREL_NL_VCPU_STATE_RUNNING;
	}
	spin_stop(&s);
	if (seen) {
		/* Back in userspace, and time in the guest went up. */
		CHECK_H(lookup_vm(c, "nl-spin", &rec));
		r = dump_vcpus(c, rec.id, &l);
	}
	nlc_close(c);
	CHECK_XFER(r);
	if (!seen) {
		diag("the VM and its vCPU never showed as running");
		return TEST_FAIL;
	}
	CHECK_EQ(s.ret, -1);
	CHECK_EQ(s.err, EINTR);
	CHECK_EQ(rec.state, KESTREL_NL_VM_STATE_IDLE);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(l.v[0].state, KESTREL_NL_VCPU_STATE_USERSPACE);
	CHECK(l.v[0].ex.guest_ns > 0);
	return TEST_PASS;
}

static enum test_result test_stats(const void *arg)
{
	static struct vmlist l;
	struct statsrec s0, s1, s2;
	struct nlc nc, *c = &nc;
	uint32_t vcpus = 0;
	struct vcpu a, b;
	struct vm vm;
	int i;

	(void)arg;
	CHECK_H(nlc_open(c));
	CHECK_XFER(get_stats(c, &s0));
	CHECK_EQ(s0.replies, 1);
	CHECK(!strcmp(s0.backend, check_cap(KESTREL_CAP_BACKEND) ==
		      KESTREL_BACKEND_SVM ? "svm" : "vmx"));
	CHECK_H(check_exit_names(&s0.ex));
	CHECK_EQ(s0.npf, exit_count(&s0.ex, "npf"));

	CHECK_H(vm_create_named(&vm, "nl-stats", GUEST_MEM_SIZE));
	CHECK_H(vcpu_create(&vm, &a, 0));
	CHECK_H(vcpu_create(&vm, &b, 1));
	CHECK_H(run_cpuid_guest(&vm, &a, NLEAVES));

	/* VM and vCPU counts agree with a dump (nothing else runs). */
	CHECK_XFER(get_stats(c, &s1));
	CHECK_H(dump_vms(c, &l));
	for (i = 0; i < l.n; i++)
		vcpus += l.v[i].nr_vcpus;
	CHECK_EQ(s1.nr_vms, l.n);
	CHECK_EQ(s1.nr_vcpus, vcpus);
	CHECK(s1.nr_vms >= 1 && s1.nr_vcpus >= 2);

	/* The guest's exits are in the totals... */
	CHECK(exit_count(&s1.ex, "cpuid") >= exit_count(&s0.ex, "cpuid") + NLEAVES);
	CHECK(exit_count(&s1.ex, "io") >= exit_count(&s0.ex, "io") + 4 * NLEAVES);
	CHECK(exit_count(&s1.ex, "hlt") >= exit_count(&s0.ex, "hlt") + 1);
	CHECK(s1.npf > s0.npf);
	CHECK_EQ(s1.npf, exit_count(&s1.ex, "npf"));
	CHECK(s1.ex.guest_ns > s0.ex.guest_ns);

	/* ...and stay there after the VM is gone. */
	vcpu_close(&a);
	vcpu_close(&b);
	CHECK_OK(res_close(vm.fd));
	CHECK_XFER(get_stats(c, &s2));
	nlc_close(c);
	CHECK_EQ(s2.nr_vms, s1.nr_vms - 1);
	CHECK_EQ(s2.nr_vcpus, s1.nr_vcpus - 2);
	for (i = 0; i < (int)s1.ex.n; i++)
		CHECK(exit_count(&s2.ex, s1.ex.name[i]) >= s1.ex.count[i]);
	CHECK(s2.ex.guest_ns >= s1.ex.guest_ns);
	return TEST_PASS;
}

/* ---- dumps racing with VMs coming and going --------------------------------- */

#define NR_RACERS	3
#define RACE_MAX	100000	/* VMs per racer, at most */
#define RACE_DUMPS	30	/* dumps while the racers run, at least */
#define RACE_MIN	20	/* VMs per racer during them, at least */
#define NR_KEEP		400	/* ~100 bytes each: several 16 KiB parts */
#define MAX_ID		65536

static atomic_bool race_stop;

struct racer {
	int idx;
	pthread_t thread;
	void *mem;
	atomic_int done;	/* VMs r<idx>-0 .. r<idx>-(done-1) are gone */
	atomic_bool finished;
	char why[160];
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;
	int i;

	for (i = 0; i < RACE_MAX && !atomic_load(&race_stop); i++) {
		struct kestrel_create_vm cvm;
		struct kestrel_memory_region mr;
		int fd, vfd = -1;

		memset(&cvm, 0, sizeof(cvm));
		snprintf(cvm.name, sizeof(cvm.name), "r%d-%d", r->idx, i);
		fd = ioctl(sys_fd, KESTREL_CREATE_VM, &cvm);
		if (fd < 0) {
			snprintf(r->why, sizeof(r->why), "CREATE_VM %s: %s",
				 cvm.name, strerror(errno));
			break;
		}
		if (i % 3 == 0) {
			memset(&mr, 0, sizeof(mr));
			mr.memory_size = GUEST_MEM_SIZE;
			mr.userspace_addr = (uintptr_t)r->mem;
			ioctl(fd, KESTREL_SET_MEMORY_REGION, &mr);
		}
		if (i % 2)
			vfd = ioctl(fd, KESTREL_CREATE_VCPU, 0UL);
		if (vfd >= 0)
			close(vfd);
		close(fd);	/* the last reference: destroyed now */
		atomic_store(&r->done, i + 1);
	}
	atomic_store(&r->finished, true);
	return NULL;
}

static enum test_result test_race(const void *arg)
{
	static struct vmlist l;
	static struct vcpulist vl;
	static bool id_seen[MAX_ID];
	struct racer racers[NR_RACERS];
	struct nlc nc, *c = &nc;
	int snap[NR_RACERS], racer_seen[NR_RACERS], i, j, least;
	int dumps = 0, intr = 0, multi = 0, others = 0;
	enum test_result res = TEST_FAIL;
	bool keep_seen[NR_KEEP], stopped;
	char name[32];

	(void)arg;
	/* Enough VMs that a dump needs several messages. */
	for (i = 0; i < NR_KEEP; i++) {
		snprintf(name, sizeof(name), "keep-%d", i);
		CHECK_OK(create_vm_fd(name));
	}
	CHECK_H(nlc_open(c));
	memset(racers, 0, sizeof(racers));
	atomic_store(&race_stop, false);
	for (i = 0; i < NR_RACERS; i++) {
		racers[i].idx = i;
		racers[i].mem = res_map(mmap(NULL, GUEST_MEM_SIZE,
					     PROT_READ | PROT_WRITE,
					     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
					GUEST_MEM_SIZE);
		if (racers[i].mem == MAP_FAILED ||
		    !start_thread(race_thread, &racers[i], &racers[i].thread)) {
			diag("cannot start racer %d", i);
			atomic_store(&race_stop, true);
			while (i--)
				pthread_join(racers[i].thread, NULL);
			nlc_close(c);
			return TEST_FAIL;
		}
	}

	for (;;) {
		int r;

		/* Enough dumps, each racer busy all along, or one failed */
		least = RACE_MAX;
		stopped = false;
		for (i = 0; i < NR_RACERS; i++) {
			stopped |= atomic_load(&racers[i].finished);
			snap[i] = atomic_load(&racers[i].done);
			if (snap[i] < least)
				least = snap[i];
		}
		if (stopped || (dumps >= RACE_DUMPS && least >= RACE_MIN))
			break;
		l.n = 0;
		l.overflow = false;
		r = nlc_xfer(c, nlc_req(c, KESTREL_NL_CMD_VM_GET, true), vm_cb, &l);
		if (r == XFER_DUMP_INTR) {
			intr++;
		} else if (r) {
			diag("dump %d: %s (%s)", dumps, r == XFER_LIBNL ? "libnl" :
			     errno_name(-r), c->msg);
			goto out;
		}
		dumps++;
		if (l.overflow)
			goto out;
		memset(keep_seen, 0, sizeof(keep_seen));
		memset(id_seen, 0, sizeof(id_seen));
		memset(racer_seen, 0, sizeof(racer_seen));
		for (i = 0; i < l.n; i++) {
			struct vmrec *v = &l.v[i];
			int t, k;

			/*
			 * Ids are unique among live VMs; only a dump the list
			 * changed under may hold a dead VM and the new VM that
			 * took its id.  (Names tell VMs apart, below.)
			 */
			if (v->id >= MAX_ID || (id_seen[v->id] && !r)) {
				diag("dump %d: VM id %u twice or out of range",
				     dumps, v->id);
				goto out;
			}
			id_seen[v->id] = true;
			if (v->dgram > l.v[0].dgram)
				multi += i + 1 == l.n;
			if (v->pid != (uint32_t)getpid()) {
				others++;
				continue;
			}
			if (sscanf(v->name, "keep-%d", &k) == 1 && k >= 0 &&
			    k < NR_KEEP) {
				/* Each VM once, even across parts */
				if (keep_seen[k]) {
					diag("dump %d: keep-%d twice", dumps, k);
					goto out;
				}
				keep_seen[k] = true;
				continue;
			}
			if (sscanf(v->name, "r%d-%d", &t, &k) != 2 || t < 0 ||
			    t >= NR_RACERS || k < 0 || k >= RACE_MAX) {
				diag("dump %d: unexpected VM \"%s\"", dumps,
				     v->name);
				goto out;
			}
			/*
			 * A racer's VMs come in the order it made them (the
			 * dump's order), each once.
			 */
			if (k + 1 <= racer_seen[t]) {
				diag("dump %d: VM \"%s\" twice or out of order",
				     dumps, v->name);
				goto out;
			}
			racer_seen[t] = k + 1;
			/* Destroyed before this dump began: stale. */
			if (k < snap[t]) {
				diag("dump %d: VM \"%s\" (id %u) listed after its destruction",
				     dumps, v->name, v->id);
				goto out;
			}
			if (v->nr_vcpus > 1 ||
			    (v->mem != 0 && v->mem != GUEST_MEM_SIZE)) {
				diag("dump %d: VM \"%s\": %u vCPUs, %llu bytes",
				     dumps, v->name, v->nr_vcpus,
				     (unsigned long long)v->mem);
				goto out;
			}
		}
		/* Alive through the whole dump: always listed. */
		for (i = 0; i < NR_KEEP; i++) {
			if (!keep_seen[i]) {
				diag("dump %d: keep-%d missing (%d VMs%s)", dumps,
				     i, l.n, r ? ", interrupted" : "");
				goto out;
			}
		}

		/* Other requests on racing VMs: an answer or ENOENT. */
		for (i = 0; i < l.n; i++) {
			if (l.v[i].name[0] != 'r')
				continue;
			r = dump_vcpus(c, l.v[i].id, &vl);
			if (r && r != -ENOENT && r != XFER_DUMP_INTR) {
				diag("vCPU dump of a racing VM: %s",
				     r == XFER_LIBNL ? "libnl" : errno_name(-r));
				goto out;
			}
			for (j = 0; j < vl.n && !r; j++)
				if (vl.v[j].vm_id != l.v[i].id || vl.v[j].id) {
					diag("vCPU dump of VM %u: VM %u vCPU %u",
					     l.v[i].id, vl.v[j].vm_id,
					     vl.v[j].id);
					goto out;
				}
			break;
		}
	}
	atomic_store(&race_stop, true);
	for (i = 0; i < NR_RACERS; i++) {
		pthread_join(racers[i].thread, NULL);
		racers[i].thread = 0;
	}
	if (stopped) {
		diag("a racer stopped early");
		goto out;
	}

	/* Everything the racers made is gone; everything kept is listed. */
	CHECK_H(dump_vms(c, &l));
	j = 0;
	for (i = 0; i < l.n; i++) {
		if (l.v[i].pid != (uint32_t)getpid())
			continue;
		if (l.v[i].name[0] == 'r') {
			diag("VM \"%s\" listed after all racers finished",
			     l.v[i].name);
			goto out;
		}
		j++;
	}
	if (j != NR_KEEP) {
		diag("%d of our VMs listed at the end, want %d", j, NR_KEEP);
		goto out;
	}
	diag("%d dumps, %d flagged NLM_F_DUMP_INTR, %d in several parts, %d foreign entries; each racer made %d+ VMs meanwhile",
	     dumps, intr, multi, others, least);
	if (!multi) {
		diag("no dump needed more than one message: the test proves less");
		goto out;
	}
	res = TEST_PASS;
out:
	atomic_store(&race_stop, true);
	for (i = 0; i < NR_RACERS; i++) {
		if (racers[i].thread)
			pthread_join(racers[i].thread, NULL);
		racers[i].thread = 0;
		if (racers[i].why[0]) {
			diag("racer %d: %s", i, racers[i].why);
			res = TEST_FAIL;
		}
	}
	nlc_close(c);
	return res;
}

/* ---- events ------------------------------------------------------------------ */

struct event {
	uint32_t type, vm_id, pid, vcpu, suberror;
	uint64_t seq, time_ns;
	char name[64];
};

struct eventlog {
	int n;
	struct event e[64];
};

static int event_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[KESTREL_NL_A_MAX + 1];
	struct eventlog *log = arg;
	struct event *e;

	if (genlmsg_hdr(nlmsg_hdr(msg))->cmd != KESTREL_NL_CMD_EVENT ||
	    !parse(msg, tb) || log->n == (int)ARRAY_SIZE(log->e))
		return NL_SKIP;
	e = &log->e[log->n++];
	e->type = kestrel_nl_u32(tb, KESTREL_NL_A_EVENT_TYPE, UINT32_MAX);
	e->seq = kestrel_nl_u64(tb, KESTREL_NL_A_EVENT_SEQ, UINT64_MAX);
	e->time_ns = kestrel_nl_u64(tb, KESTREL_NL_A_EVENT_TIME_NS, UINT64_MAX);
	e->vm_id = kestrel_nl_u32(tb, KESTREL_NL_A_VM_ID, UINT32_MAX);
	e->pid = kestrel_nl_u32(tb, KESTREL_NL_A_VM_OWNER_PID, UINT32_MAX);
	e->vcpu = kestrel_nl_u32(tb, KESTREL_NL_A_VCPU_ID, UINT32_MAX);
	e->suberror = kestrel_nl_u32(tb, KESTREL_NL_A_EVENT_SUBERROR, UINT32_MAX);
	kestrel_nl_str(tb, KESTREL_NL_A_VM_NAME, e->name, sizeof(e->name));
	return NL_OK;
}

static bool events_open(struct nlc *c, struct eventlog *log)
{
	int grp, r;

	if (!nlc_open(c))
		return false;
	grp = genl_ctrl_resolve_grp(c->sk, KESTREL_GENL_NAME,
				    KESTREL_GENL_MCGRP_EVENTS);
	r = grp < 0 ? grp : nl_socket_add_membership(c->sk, grp);
	if (r < 0) {
		diag("joining %s: %s", KESTREL_GENL_MCGRP_EVENTS,
		     nl_geterror(r));
		nlc_close(c);
		return false;
	}
	nl_socket_disable_seq_check(c->sk);
	log->n = 0;
	nl_socket_modify_cb(c->sk, NL_CB_VALID, NL_CB_CUSTOM, event_cb, log);
	return true;
}

/* Read events until @want of this process arrived or 5 s passed. */
static int events_read(struct nlc *c, struct eventlog *log, int want)
{
	int i, mine = 0, waited = 0;

	while (waited < 5000) {
		struct pollfd p = { nl_socket_get_fd(c->sk), POLLIN, 0 };

		for (i = mine = 0; i < log->n; i++)
			mine += log->e[i].pid == (uint32_t)getpid();
		if (mine >= want)
			break;
		if (poll(&p, 1, 100) <= 0) {
			waited += 100;
			continue;
		}
		if (nl_recvmsgs_default(c->sk) < 0)
			break;
	}
	return mine;
}

static const char *event_name(uint32_t t)
{
	static const char *const names[] = {
		[KESTREL_NL_EVENT_VM_CREATED] = "VM_CREATED",
		[KESTREL_NL_EVENT_VM_DESTROYED] = "VM_DESTROYED",
		[KESTREL_NL_EVENT_VCPU_SHUTDOWN] = "VCPU_SHUTDOWN",
		[KESTREL_NL_EVENT_VCPU_INTERNAL_ERROR] = "VCPU_INTERNAL_ERROR",
	};

	return t < ARRAY_SIZE(names) && names[t] ? names[t] : "?";
}

static void show_events(const struct eventlog *log)
{
	int i;

	for (i = 0; i < log->n; i++)
		diag("event seq %llu %s vm %u \"%s\" pid %u vcpu %d suberror %d",
		     (unsigned long long)log->e[i].seq,
		     event_name(log->e[i].type), log->e[i].vm_id,
		     log->e[i].name, log->e[i].pid, (int)log->e[i].vcpu,
		     (int)log->e[i].suberror);
}

struct want_event {
	uint32_t type;
	const char *name;
	uint32_t vcpu;		/* UINT32_MAX: no vCPU attribute */
	uint32_t suberror;	/* UINT32_MAX: none */
};

/* This process's events in @log are exactly @want, in order. */
static bool check_events(const struct eventlog *log, const struct want_event *want,
			 int n, uint64_t t0, uint64_t t1, uint32_t *ids)
{
	uint64_t last_seq = 0;
	int i, k = 0;

	for (i = 0; i < log->n; i++) {
		const struct event *e = &log->e[i];

		if (e->seq == UINT64_MAX || (last_seq && e->seq <= last_seq)) {
			diag("event sequence numbers do not increase");
			goto bad;
		}
		last_seq = e->seq;
		if (e->pid != (uint32_t)getpid())
			continue;
		if (k == n) {
			diag("unexpected event #%d", i);
			goto bad;
		}
		if (e->type != want[k].type || strcmp(e->name, want[k].name) ||
		    e->vcpu != want[k].vcpu || e->suberror != want[k].suberror) {
			diag("event #%d is not %s of \"%s\"", i,
			     event_name(want[k].type), want[k].name);
			goto bad;
		}
		if (ids[k] != UINT32_MAX && e->vm_id != ids[k]) {
			diag("event #%d: VM id %u, want %u", i, e->vm_id, ids[k]);
			goto bad;
		}
		if (e->time_ns < t0 || e->time_ns > t1) {
			diag("event #%d: time outside the test", i);
			goto bad;
		}
		k++;
	}
	if (k == n)
		return true;
	diag("%d of %d events arrived", k, n);
bad:
	show_events(log);
	return false;
}

static enum test_result test_events(const void *arg)
{
	static struct eventlog log;
	struct nlc ev, nc, *c = &nc;
	struct kestrel_sregs s;
	struct vcpu a, b;
	struct vmrec rec;
	struct vm vm;
	uint64_t t0, t1;
	uint32_t ids[4];
	bool ok;
	int i;
	const struct want_event want[] = {
		{ KESTREL_NL_EVENT_VM_CREATED, "nl-ev", UINT32_MAX, UINT32_MAX },
		{ KESTREL_NL_EVENT_VCPU_SHUTDOWN, "nl-ev", 0, UINT32_MAX },
		{ KESTREL_NL_EVENT_VCPU_INTERNAL_ERROR, "nl-ev", 3,
		  KESTREL_INTERNAL_UNMAPPED_GPA },
		{ KESTREL_NL_EVENT_VM_DESTROYED, "nl-ev", UINT32_MAX, UINT32_MAX },
	};

	(void)arg;
	CHECK_H(events_open(&ev, &log));
	if (!nlc_open(c)) {
		nlc_close(&ev);
		return TEST_FAIL;
	}
	t0 = now_ns();
	ok = vm_create_named(&vm, "nl-ev", GUEST_MEM_SIZE) &&
	     vcpu_create(&vm, &a, 0) && vm_load(&vm, GUEST(ud2)) &&
	     vcpu_setup_long(&vm, &a) && get_sregs(&a, &s);
	if (ok) {
		/* #UD with an empty IDT: #GP, #DF, shutdown. */
		s.idt.base = 0;
		s.idt.limit = 0;
		ok = set_sregs(&a, &s) &&
		     run_expect_exit(&a, KESTREL_EXIT_SHUTDOWN) &&
		     /* From the power-on state: a fetch from no slot. */
		     vcpu_create(&vm, &b, 3) &&
		     run_expect_exit(&b, KESTREL_EXIT_INTERNAL_ERROR) &&
		     lookup_vm(c, "nl-ev", &rec);
	}
	if (ok) {
		CHECK_EQ(b.run->internal.suberror, KESTREL_INTERNAL_UNMAPPED_GPA);
		vcpu_close(&a);
		vcpu_close(&b);
		res_close(vm.fd);
	}
	t1 = now_ns();
	if (ok)
		events_read(&ev, &log, ARRAY_SIZE(want));
	nlc_close(c);
	nlc_close(&ev);
	CHECK(ok);
	for (i = 0; i < 4; i++)
		ids[i] = rec.id;
	CHECK_H(check_events(&log, want, ARRAY_SIZE(want), t0, t1, ids));
	return TEST_PASS;
}

/* Two VMs interleaved: events come in the order things happened. */
static enum test_result test_events_order(const void *arg)
{
	static struct eventlog log;
	const struct want_event want[] = {
		{ KESTREL_NL_EVENT_VM_CREATED, "nl-ev1", UINT32_MAX, UINT32_MAX },
		{ KESTREL_NL_EVENT_VM_CREATED, "nl-ev2", UINT32_MAX, UINT32_MAX },
		{ KESTREL_NL_EVENT_VM_DESTROYED, "nl-ev1", UINT32_MAX, UINT32_MAX },
		{ KESTREL_NL_EVENT_VM_CREATED, "nl-ev3", UINT32_MAX, UINT32_MAX },
		{ KESTREL_NL_EVENT_VM_DESTROYED, "nl-ev3", UINT32_MAX, UINT32_MAX },
		{ KESTREL_NL_EVENT_VM_DESTROYED, "nl-ev2", UINT32_MAX, UINT32_MAX },
	};
	uint32_t ids[ARRAY_SIZE(want)];
	struct nlc ev;
	uint64_t t0, t1;
	int fd1, fd2, fd3;
	unsigned int i;

	(void)arg;
	CHECK_H(events_open(&ev, &log));
	t0 = now_ns();
	fd1 = create_vm_fd("nl-ev1");
	fd2 = create_vm_fd("nl-ev2");
	if (fd1 >= 0)
		res_close(fd1);
	fd3 = create_vm_fd("nl-ev3");
	if (fd3 >= 0)
		res_close(fd3);
	if (fd2 >= 0)
		res_close(fd2);
	t1 = now_ns();
	events_read(&ev, &log, ARRAY_SIZE(want));
	nlc_close(&ev);
	CHECK_OK(fd1);
	CHECK_OK(fd2);
	CHECK_OK(fd3);
	for (i = 0; i < ARRAY_SIZE(ids); i++)
		ids[i] = UINT32_MAX;
	CHECK_H(check_events(&log, want, ARRAY_SIZE(want), t0, t1, ids));
	/* Created and destroyed carry the same id for one VM. */
	for (i = 0; i < (unsigned int)log.n; i++)
		if (log.e[i].pid == (uint32_t)getpid())
			break;
	CHECK(i + 5 < (unsigned int)log.n);
	CHECK_EQ(log.e[i].vm_id, log.e[i + 2].vm_id);
	CHECK_EQ(log.e[i + 1].vm_id, log.e[i + 5].vm_id);
	CHECK_EQ(log.e[i + 3].vm_id, log.e[i + 4].vm_id);
	CHECK(log.e[i].vm_id != log.e[i + 1].vm_id);
	return TEST_PASS;
}

/* ---- malformed requests -------------------------------------------------------- */

static struct nl_msg *with_u32(struct nl_msg *m, int type, uint32_t v)
{
	if (m && nla_put_u32(m, type, v) < 0) {
		nlmsg_free(m);
		return NULL;
	}
	return m;
}

static struct nl_msg *with_u64(struct nl_msg *m, int type, uint64_t v)
{
	if (m && nla_put_u64(m, type, v) < 0) {
		nlmsg_free(m);
		return NULL;
	}
	return m;
}

static struct nl_msg *with_str(struct nl_msg *m, int type, const char *v)
{
	if (m && nla_put_string(m, type, v) < 0) {
		nlmsg_free(m);
		return NULL;
	}
	return m;
}

static enum test_result test_malformed(const void *arg)
{
	static struct vmlist l;
	static struct vcpulist vl;
	struct nlc nc, *c = &nc;
	struct nl_msg *m;
	struct vmrec rec;
	int n = 0, fd;

	(void)arg;
	fd = create_vm_fd("nl-bad");
	CHECK_OK(fd);
	CHECK_OK(create_vcpu_fd(fd, 0));
	CHECK_H(nlc_open(c));
	CHECK_H(lookup_vm(c, "nl-bad", &rec));

	/* An attribute type past the last one */
	CHECK_NLERR(nlc_xfer(c, with_u32(nlc_req(c, KESTREL_NL_CMD_VM_GET, true),
					 KESTREL_NL_A_MAX + 7, 1), vm_cb, &l),
		    EINVAL);
	CHECK_NLERR(nlc_xfer(c, with_u32(with_u32(
			nlc_req(c, KESTREL_NL_CMD_VM_GET, false),
			KESTREL_NL_A_VM_ID, rec.id), 200, 1), vm_cb, &l),
		    EINVAL);
	/* A known attribute this command does not take */
	CHECK_NLERR(nlc_xfer(c, with_str(with_u32(
			nlc_req(c, KESTREL_NL_CMD_VM_GET, false),
			KESTREL_NL_A_VM_ID, rec.id), KESTREL_NL_A_VM_NAME, "x"),
			vm_cb, &l), EINVAL);
	CHECK_NLERR(nlc_xfer(c, with_u32(nlc_req(c, KESTREL_NL_CMD_STATS_GET,
						 false),
					 KESTREL_NL_A_VM_ID, rec.id),
			     ignore_cb, &n), EINVAL);
	/* Wrong type: a u64 where a u32 belongs */
	CHECK_NLERR(nlc_xfer(c, with_u64(nlc_req(c, KESTREL_NL_CMD_VM_GET, false),
					 KESTREL_NL_A_VM_ID, rec.id), vm_cb, &l),
		    EINVAL);
	CHECK_NLERR(nlc_xfer(c, with_u64(nlc_req(c, KESTREL_NL_CMD_VCPU_GET, true),
					 KESTREL_NL_A_VM_ID, rec.id), vcpu_cb, &vl),
		    EINVAL);
	/* An attribute running past the end of the message */
	m = nlc_req(c, KESTREL_NL_CMD_VM_GET, false);
	if (m) {
		struct nlattr bad = { .nla_len = 12, .nla_type = KESTREL_NL_A_VM_ID };

		if (nlmsg_append(m, &bad, sizeof(bad), 0) < 0) {
			nlmsg_free(m);
			m = NULL;
		}
	}
	CHECK_NLERR(nlc_xfer(c, m, vm_cb, &l), EINVAL);
	/* genlmsghdr.reserved must be 0 */
	m = with_u32(nlc_req(c, KESTREL_NL_CMD_VM_GET, false),
		     KESTREL_NL_A_VM_ID, rec.id);
	if (m)
		genlmsg_hdr(nlmsg_hdr(m))->reserved = 1;
	CHECK_NLERR(nlc_xfer(c, m, vm_cb, &l), EINVAL);

	/* Missing ids */
	CHECK_NLERR(nlc_xfer(c, nlc_req(c, KESTREL_NL_CMD_VM_GET, false),
			     vm_cb, &l), EINVAL);
	CHECK_NLERR(nlc_xfer(c, nlc_req(c, KESTREL_NL_CMD_VCPU_GET, true),
			     vcpu_cb, &vl), EINVAL);
	CHECK_NLERR(nlc_xfer(c, with_u32(nlc_req(c, KESTREL_NL_CMD_VCPU_GET, false),
					 KESTREL_NL_A_VM_ID, rec.id), vcpu_cb, &vl),
		    EINVAL);
	/* An id in a dump of everything */
	CHECK_NLERR(nlc_xfer(c, with_u32(nlc_req(c, KESTREL_NL_CMD_VM_GET, true),
					 KESTREL_NL_A_VM_ID, rec.id), vm_cb, &l),
		    EINVAL);

	/* Ids of nothing */
	CHECK_NLERR(get_vm(c, 0x7fffffff, &l), ENOENT);
	CHECK(strstr(c->msg, "no VM"));
	CHECK_NLERR(dump_vcpus(c, 0x7fffffff, &vl), ENOENT);
	CHECK_NLERR(get_vcpu(c, rec.id, 1, &vl), ENOENT);
	CHECK(strstr(c->msg, "no vCPU"));
	CHECK_NLERR(get_vcpu(c, rec.id, 0xffffffff, &vl), ENOENT);
	CHECK_NLERR(get_vcpu(c, 0x7fffffff, 0, &vl), ENOENT);

	/* Commands that do not exist, or not in that form */
	CHECK_NLERR(nlc_xfer(c, nlc_req(c, 99, false), ignore_cb, &n),
		    EOPNOTSUPP);
	CHECK_NLERR(nlc_xfer(c, nlc_req(c, KESTREL_NL_CMD_EVENT, false),
			     ignore_cb, &n), EOPNOTSUPP);
	CHECK_NLERR(nlc_xfer(c, nlc_req(c, KESTREL_NL_CMD_STATS_GET, true),
			     ignore_cb, &n), EOPNOTSUPP);

	/* After all that, the well-formed requests still work. */
	CHECK_XFER(get_vm(c, rec.id, &l));
	CHECK_EQ(l.n, 1);
	CHECK_XFER(dump_vcpus(c, rec.id, &vl));
	CHECK_EQ(vl.n, 1);
	nlc_close(c);
	return TEST_PASS;
}

/* ---- privileges ------------------------------------------------------------------ */

static enum test_result unprivileged(int grp)
{
	static struct vmlist l;
	static struct vcpulist vl;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	struct nlc nc, *c = &nc;
	struct statsrec s;
	int fd;

	CHECK_OK(setgroups(0, NULL));
	CHECK_OK(setresgid(NOBODY, NOBODY, NOBODY));
	CHECK_OK(setresuid(NOBODY, NOBODY, NOBODY));
	/* Leaving uid 0 cleared every capability; make sure. */
	memset(data, 0, sizeof(data));
	CHECK_OK(syscall(SYS_capset, &hdr, data));
	CHECK_OK(syscall(SYS_capget, &hdr, data));
	CHECK_EQ(data[0].effective | data[1].effective, 0);
	CHECK_EQ(data[0].permitted | data[1].permitted, 0);

	/* Finding the family is open to all; using it is not. */
	CHECK_H(nlc_open(c));
	CHECK_NLERR(nlc_xfer(c, nlc_req(c, KESTREL_NL_CMD_VM_GET, true),
			     vm_cb, &l), EPERM);
	CHECK_NLERR(get_vm(c, 0, &l), EPERM);
	CHECK_NLERR(dump_vcpus(c, 0, &vl), EPERM);
	CHECK_NLERR(get_stats(c, &s), EPERM);
	CHECK_EQ(l.n, 0);

	fd = nl_socket_get_fd(c->sk);
	CHECK_ERR(setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp,
			     sizeof(grp)), EPERM);
	nlc_close(c);
	return TEST_PASS;
}

static enum test_result test_unprivileged(const void *arg)
{
	struct nlc nc, *c = &nc;
	int grp, status;
	pid_t pid;

	(void)arg;
	CHECK_H(nlc_open(c));
	grp = genl_ctrl_resolve_grp(c->sk, KESTREL_GENL_NAME,
				    KESTREL_GENL_MCGRP_EVENTS);
	nlc_close(c);
	CHECK(grp > 0);

	fflush(stdout);
	pid = fork();
	CHECK_OK(pid);
	if (pid == 0) {
		enum test_result r = unprivileged(grp);

		fflush(stdout);
		_exit(r == TEST_PASS ? 0 : 1);
	}
	CHECK_OK(waitpid(pid, &status, 0));
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	return TEST_PASS;
}

static const struct test_case cases[] = {
	{ "the kestrel family resolves, at version 1, with an events group",
	  test_family, NULL },
	{ "a VM dump lists exactly our live VMs: name, pid, vCPUs, memory, time",
	  test_vm_dump, NULL },
	{ "mapped memory grows when the guest touches memory",
	  test_mapped_grows, NULL },
	{ "a vCPU dump counts the guest's CPUID, I/O and HLT exits exactly",
	  test_vcpu_dump, NULL },
	{ "a vCPU inside RUN shows as running, its VM too",
	  test_running_state, NULL },
	{ "global statistics: backend, VMs, vCPUs, exits, nested faults",
	  test_stats, NULL },
	{ "dumps racing with VM creation and destruction stay consistent",
	  test_race, NULL },
	{ "events: created, shutdown, internal error, destroyed, in order",
	  test_events, NULL },
	{ "events of interleaved VMs come in the order of what happened",
	  test_events_order, NULL },
	{ "malformed requests get EINVAL, unknown ids ENOENT",
	  test_malformed, NULL },
	{ "an unprivileged user gets EPERM and cannot join the events group",
	  test_unprivileged, NULL },
};

int main(int argc, char **argv)
{
	test_init(argc, argv);
	return test_run_all(cases, ARRAY_SIZE(cases));
}
