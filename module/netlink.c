// SPDX-License-Identifier: GPL-2.0
/*
 * The control plane: the "kestrel" generic-netlink family.
 *
 * Operators ask the host, not each VMM, which VMs run and what they do:
 * VM and vCPU dumps, global counters, and lifecycle events on the "events"
 * multicast group.  Everything needs CAP_NET_ADMIN (GENL_ADMIN_PERM, and
 * GENL_MCAST_CAP_NET_ADMIN for the group) and lives in the initial network
 * namespace only.  Requests are parsed strictly (resv_start_op covers every
 * command): an attribute a command does not take is an error.
 *
 * Readers never slow the run loop: counters are per vCPU, written only by
 * the vCPU thread, and summed here with READ_ONCE().  Walking VMs and vCPUs
 * needs only kestrel_vms_lock: a VM is freed only after kestrel_vm_free()
 * took that lock to unlink it, and vCPUs live as long as their VM.
 *
 * Documentation/netlink.rst describes the protocol.
 */
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include <linux/kestrel_netlink.h>

#include "kestrel.h"

enum {
	KESTREL_NL_MCGRP_EVENTS,
};

#ifdef KESTREL_HAVE_GENL_MCAST_CAP
#define KESTREL_NL_EVENTS_FLAGS	GENL_MCAST_CAP_NET_ADMIN
#else
/* A kernel without the flag lets anyone join: then no events are sent. */
#define KESTREL_NL_EVENTS_FLAGS	0
#endif

static struct genl_family kestrel_nl_family;

/*
 * Bumped on every change of kestrel_vms, under kestrel_vms_lock, so that a
 * multi-part dump can flag NLM_F_DUMP_INTR (cb->seq 0 means "untracked").
 */
static unsigned int kestrel_nl_vms_gen = 1;

/*
 * The last vm->list_seq given out, under kestrel_vms_lock.  VMs join the
 * tail of kestrel_vms, so the list is in list_seq order and a dump resumes
 * after the last VM it sent, whatever came or went meanwhile.
 */
static u64 kestrel_nl_list_seq;

/* kestrel_nl_event_lock orders events: it guards event_seq and the send. */
static DEFINE_MUTEX(kestrel_nl_event_lock);
static u64 kestrel_nl_event_seq;

/* Index of the nested-page-fault exit counter, -1 if the arch has none. */
static int kestrel_nl_npf_exit = -1;

/* Dump cursors, kept in cb->ctx between the parts of a dump. */
struct kestrel_nl_vm_dump {
	u64	last_seq;	/* list_seq of the last VM sent */
};

struct kestrel_nl_vcpu_dump {
	u32	vm_id;
	u32	next_vcpu;
	u64	vm_seq;	/* its list_seq: tells it from a later VM, same id */
};

/* Counters of one vCPU or a sum of them. */
struct kestrel_nl_counts {
	u64	exits[KESTREL_ARCH_NR_EXITS];
	u64	injected;
	u64	guest_ns;
};

/*
 * What the vCPUs of destroyed VMs counted, so that the global totals never
 * go back.  Guarded by kestrel_vms_lock.
 */
static struct kestrel_nl_counts kestrel_nl_retired;

/* The request's attributes, parsed by the core with the op's policy. */
static struct nlattr **kestrel_nl_dump_attrs(struct netlink_callback *cb)
{
#ifdef KESTREL_HAVE_GENL_INFO_DUMP
	return genl_info_dump(cb)->attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

/* ---- reading the core's objects, under kestrel_vms_lock ------------------ */

/* A VM whose last reference is gone waits for the lock to unlink itself. */
static bool kestrel_nl_vm_dying(struct kestrel_vm *vm)
{
	lockdep_assert_held(&kestrel_vms_lock);
	return kref_read(&vm->ref) == 0;
}

static struct kestrel_vm *kestrel_nl_find_vm(u32 id)
{
	struct kestrel_vm *vm;

	lockdep_assert_held(&kestrel_vms_lock);
	list_for_each_entry(vm, &kestrel_vms, node)
		if (vm->id == id && !kestrel_nl_vm_dying(vm))
			return vm;
	return NULL;
}

/* vcpus[] entries are published once and freed only with the VM. */
static struct kestrel_vcpu *kestrel_nl_vcpu(struct kestrel_vm *vm,
					    unsigned int i)
{
	lockdep_assert_held(&kestrel_vms_lock);
	/* Pairs with the release that publishes it (vcpu.c). */
	return smp_load_acquire(&vm->vcpus[i]);
}

static void kestrel_nl_add_counts(struct kestrel_nl_counts *c,
				  struct kestrel_vcpu *vcpu)
{
	unsigned int i;

	lockdep_assert_held(&kestrel_vms_lock);
	for (i = 0; i < KESTREL_ARCH_NR_EXITS; i++)
		c->exits[i] += READ_ONCE(vcpu->stats.exits[i]);
	c->injected += READ_ONCE(vcpu->stats.injected);
	c->guest_ns += READ_ONCE(vcpu->stats.guest_ns);
}

static u32 kestrel_nl_vcpu_state(struct kestrel_vcpu *vcpu)
{
	lockdep_assert_held(&kestrel_vms_lock);
	switch (READ_ONCE(vcpu->state)) {
	case KESTREL_VCPU_RUNNING:
		return KESTREL_NL_VCPU_STATE_RUNNING;
	case KESTREL_VCPU_HALTED:
		return KESTREL_NL_VCPU_STATE_HALTED;
	default:
		return KESTREL_NL_VCPU_STATE_USERSPACE;
	}
}

static u32 kestrel_nl_vm_state(struct kestrel_vm *vm)
{
	bool halted = false;
	unsigned int i;

	for (i = 0; i < KESTREL_MAX_VCPUS; i++) {
		struct kestrel_vcpu *vcpu = kestrel_nl_vcpu(vm, i);

		if (!vcpu)
			continue;
		switch (kestrel_nl_vcpu_state(vcpu)) {
		case KESTREL_NL_VCPU_STATE_RUNNING:
			return KESTREL_NL_VM_STATE_RUNNING;
		case KESTREL_NL_VCPU_STATE_HALTED:
			halted = true;
			break;
		}
	}
	return halted ? KESTREL_NL_VM_STATE_HALTED : KESTREL_NL_VM_STATE_IDLE;
}

/* ---- building messages ------------------------------------------------------ */

static int kestrel_nl_put_vm_ident(struct sk_buff *skb, struct kestrel_vm *vm)
{
	if (nla_put_u32(skb, KESTREL_NL_A_VM_ID, vm->id) ||
	    nla_put_string(skb, KESTREL_NL_A_VM_NAME, vm->name) ||
	    nla_put_u32(skb, KESTREL_NL_A_VM_OWNER_PID, vm->owner_pid))
		return -EMSGSIZE;
	return 0;
}

static int kestrel_nl_put_counts(struct sk_buff *skb,
				 const struct kestrel_nl_counts *c)
{
	struct nlattr *exits, *e;
	unsigned int i;

	exits = nla_nest_start(skb, KESTREL_NL_A_EXITS);
	if (!exits)
		return -EMSGSIZE;
	for (i = 0; i < KESTREL_ARCH_NR_EXITS; i++) {
		e = nla_nest_start(skb, KESTREL_NL_A_EXIT);
		if (!e ||
		    nla_put_string(skb, KESTREL_NL_EXIT_A_NAME,
				   kestrel_arch_exit_names[i]) ||
		    nla_put_u64_64bit(skb, KESTREL_NL_EXIT_A_COUNT,
				      c->exits[i], KESTREL_NL_EXIT_A_PAD))
			return -EMSGSIZE;
		nla_nest_end(skb, e);
	}
	nla_nest_end(skb, exits);
	if (nla_put_u64_64bit(skb, KESTREL_NL_A_INJECTED, c->injected,
			      KESTREL_NL_A_PAD) ||
	    nla_put_u64_64bit(skb, KESTREL_NL_A_GUEST_NS, c->guest_ns,
			      KESTREL_NL_A_PAD))
		return -EMSGSIZE;
	return 0;
}

static int kestrel_nl_fill_vm(struct sk_buff *skb, struct kestrel_vm *vm,
			      u32 portid, u32 seq, int flags,
			      struct netlink_callback *cb)
{
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &kestrel_nl_family, flags,
			  KESTREL_NL_CMD_VM_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (cb)
		genl_dump_check_consistent(cb, hdr);
	if (kestrel_nl_put_vm_ident(skb, vm) ||
	    nla_put_u32(skb, KESTREL_NL_A_VM_NR_VCPUS, READ_ONCE(vm->nr_vcpus)) ||
	    nla_put_u64_64bit(skb, KESTREL_NL_A_VM_MEM_SIZE,
			      kestrel_vm_memory_size(vm), KESTREL_NL_A_PAD) ||
	    nla_put_u64_64bit(skb, KESTREL_NL_A_VM_MAPPED,
			      kestrel_arch_vm_mapped_bytes(vm),
			      KESTREL_NL_A_PAD) ||
	    nla_put_u64_64bit(skb, KESTREL_NL_A_VM_CREATED_NS, vm->created_ns,
			      KESTREL_NL_A_PAD) ||
	    nla_put_u32(skb, KESTREL_NL_A_VM_STATE, kestrel_nl_vm_state(vm))) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

static int kestrel_nl_fill_vcpu(struct sk_buff *skb, struct kestrel_vcpu *vcpu,
				u32 portid, u32 seq, int flags,
				struct netlink_callback *cb)
{
	struct kestrel_nl_counts c = {};
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &kestrel_nl_family, flags,
			  KESTREL_NL_CMD_VCPU_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (cb)
		genl_dump_check_consistent(cb, hdr);
	kestrel_nl_add_counts(&c, vcpu);
	if (nla_put_u32(skb, KESTREL_NL_A_VM_ID, vcpu->vm->id) ||
	    nla_put_u32(skb, KESTREL_NL_A_VCPU_ID, vcpu->id) ||
	    nla_put_u32(skb, KESTREL_NL_A_VCPU_STATE,
			kestrel_nl_vcpu_state(vcpu)) ||
	    kestrel_nl_put_counts(skb, &c)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* ---- VM_GET ----------------------------------------------------------------- */

static int kestrel_nl_vm_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kestrel_vm *vm;
	struct sk_buff *msg;
	int r;

	if (GENL_REQ_ATTR_CHECK(info, KESTREL_NL_A_VM_ID))
		return -EINVAL;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	mutex_lock(&kestrel_vms_lock);
	vm = kestrel_nl_find_vm(nla_get_u32(info->attrs[KESTREL_NL_A_VM_ID]));
	if (vm)
		r = kestrel_nl_fill_vm(msg, vm, info->snd_portid, info->snd_seq,
				       0, NULL);
	else
		r = -ENOENT;
	mutex_unlock(&kestrel_vms_lock);

	if (r) {
		if (r == -ENOENT)
			NL_SET_ERR_MSG_ATTR(info->extack,
					    info->attrs[KESTREL_NL_A_VM_ID],
					    "no VM with this id");
		nlmsg_free(msg);
		return r;
	}
	return genlmsg_reply(msg, info);
}

static int kestrel_nl_vm_dump_start(struct netlink_callback *cb)
{
	struct nlattr **attrs = kestrel_nl_dump_attrs(cb);
	struct kestrel_nl_vm_dump *ctx = (void *)cb->ctx;

	BUILD_BUG_ON(sizeof(*ctx) > sizeof_field(struct netlink_callback, ctx));
	if (attrs && attrs[KESTREL_NL_A_VM_ID]) {
		NL_SET_ERR_MSG_ATTR(cb->extack, attrs[KESTREL_NL_A_VM_ID],
				    "a dump lists every VM: get one without NLM_F_DUMP");
		return -EINVAL;
	}
	ctx->last_seq = 0;
	return 0;
}

static int kestrel_nl_vm_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct kestrel_nl_vm_dump *ctx = (void *)cb->ctx;
	struct kestrel_vm *vm;
	int r = 0;

	mutex_lock(&kestrel_vms_lock);
	cb->seq = kestrel_nl_vms_gen;
	list_for_each_entry(vm, &kestrel_vms, node) {
		if (vm->list_seq <= ctx->last_seq || kestrel_nl_vm_dying(vm))
			continue;
		r = kestrel_nl_fill_vm(skb, vm, NETLINK_CB(cb->skb).portid,
				       cb->nlh->nlmsg_seq, NLM_F_MULTI, cb);
		if (r)
			break;
		ctx->last_seq = vm->list_seq;
	}
	mutex_unlock(&kestrel_vms_lock);
	/* An entry always fits an empty skb; if not, say so, don't loop. */
	return r && !skb->len ? r : skb->len;
}

/* ---- VCPU_GET --------------------------------------------------------------- */

static int kestrel_nl_vcpu_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kestrel_vcpu *vcpu = NULL;
	struct kestrel_vm *vm;
	struct sk_buff *msg;
	u32 id;
	int r;

	if (GENL_REQ_ATTR_CHECK(info, KESTREL_NL_A_VM_ID) ||
	    GENL_REQ_ATTR_CHECK(info, KESTREL_NL_A_VCPU_ID))
		return -EINVAL;
	id = nla_get_u32(info->attrs[KESTREL_NL_A_VCPU_ID]);
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	mutex_lock(&kestrel_vms_lock);
	vm = kestrel_nl_find_vm(nla_get_u32(info->attrs[KESTREL_NL_A_VM_ID]));
	if (vm && id < KESTREL_MAX_VCPUS)
		vcpu = kestrel_nl_vcpu(vm, id);
	if (vcpu)
		r = kestrel_nl_fill_vcpu(msg, vcpu, info->snd_portid,
					 info->snd_seq, 0, NULL);
	else
		r = -ENOENT;
	mutex_unlock(&kestrel_vms_lock);

	if (r) {
		if (!vm)
			NL_SET_ERR_MSG_ATTR(info->extack,
					    info->attrs[KESTREL_NL_A_VM_ID],
					    "no VM with this id");
		else if (!vcpu)
			NL_SET_ERR_MSG_ATTR(info->extack,
					    info->attrs[KESTREL_NL_A_VCPU_ID],
					    "no vCPU with this id");
		nlmsg_free(msg);
		return r;
	}
	return genlmsg_reply(msg, info);
}

static int kestrel_nl_vcpu_dump_start(struct netlink_callback *cb)
{
	struct nlattr **attrs = kestrel_nl_dump_attrs(cb);
	struct kestrel_nl_vcpu_dump *ctx = (void *)cb->ctx;
	struct kestrel_vm *vm;

	BUILD_BUG_ON(sizeof(*ctx) > sizeof_field(struct netlink_callback, ctx));
	if (!attrs ||
	    NL_REQ_ATTR_CHECK(cb->extack, NULL, attrs, KESTREL_NL_A_VM_ID))
		return -EINVAL;
	if (attrs[KESTREL_NL_A_VCPU_ID]) {
		NL_SET_ERR_MSG_ATTR(cb->extack, attrs[KESTREL_NL_A_VCPU_ID],
				    "a dump lists every vCPU: get one without NLM_F_DUMP");
		return -EINVAL;
	}
	ctx->vm_id = nla_get_u32(attrs[KESTREL_NL_A_VM_ID]);
	ctx->next_vcpu = 0;

	mutex_lock(&kestrel_vms_lock);
	vm = kestrel_nl_find_vm(ctx->vm_id);
	if (vm)
		ctx->vm_seq = vm->list_seq;
	mutex_unlock(&kestrel_vms_lock);
	if (!vm) {
		NL_SET_ERR_MSG_ATTR(cb->extack, attrs[KESTREL_NL_A_VM_ID],
				    "no VM with this id");
		return -ENOENT;
	}
	return 0;
}

static int kestrel_nl_vcpu_dumpit(struct sk_buff *skb,
				  struct netlink_callback *cb)
{
	struct kestrel_nl_vcpu_dump *ctx = (void *)cb->ctx;
	struct kestrel_vm *vm;
	int r = 0;

	mutex_lock(&kestrel_vms_lock);
	cb->seq = kestrel_nl_vms_gen;
	vm = kestrel_nl_find_vm(ctx->vm_id);
	/* Gone between parts (maybe replaced): the dump just ends. */
	if (!vm || vm->list_seq != ctx->vm_seq)
		goto out;
	for (; ctx->next_vcpu < KESTREL_MAX_VCPUS; ctx->next_vcpu++) {
		struct kestrel_vcpu *vcpu = kestrel_nl_vcpu(vm, ctx->next_vcpu);

		if (!vcpu)
			continue;
		r = kestrel_nl_fill_vcpu(skb, vcpu, NETLINK_CB(cb->skb).portid,
					 cb->nlh->nlmsg_seq, NLM_F_MULTI, cb);
		if (r)
			break;
	}
out:
	mutex_unlock(&kestrel_vms_lock);
	return r && !skb->len ? r : skb->len;
}

/* ---- STATS_GET -------------------------------------------------------------- */

static int kestrel_nl_stats_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kestrel_nl_counts *c;
	unsigned int nr_vms = 0, nr_vcpus = 0, i;
	struct kestrel_vm *vm;
	struct sk_buff *msg;
	void *hdr;
	int r = -EMSGSIZE;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!c || !msg) {
		r = -ENOMEM;
		goto err;
	}

	mutex_lock(&kestrel_vms_lock);
	*c = kestrel_nl_retired;
	list_for_each_entry(vm, &kestrel_vms, node) {
		/* A dying VM's counts are not retired yet: count them. */
		bool live = !kestrel_nl_vm_dying(vm);

		nr_vms += live;
		for (i = 0; i < KESTREL_MAX_VCPUS; i++) {
			struct kestrel_vcpu *vcpu = kestrel_nl_vcpu(vm, i);

			if (!vcpu)
				continue;
			nr_vcpus += live;
			kestrel_nl_add_counts(c, vcpu);
		}
	}
	mutex_unlock(&kestrel_vms_lock);

	hdr = genlmsg_put(msg, info->snd_portid, info->snd_seq,
			  &kestrel_nl_family, 0, KESTREL_NL_CMD_STATS_GET);
	if (!hdr)
		goto err;
	if (nla_put_string(msg, KESTREL_NL_A_STATS_BACKEND,
			   kestrel_arch_backend_name()) ||
	    nla_put_u32(msg, KESTREL_NL_A_STATS_NR_VMS, nr_vms) ||
	    nla_put_u32(msg, KESTREL_NL_A_STATS_NR_VCPUS, nr_vcpus) ||
	    nla_put_u64_64bit(msg, KESTREL_NL_A_STATS_NPF,
			      kestrel_nl_npf_exit < 0 ? 0 :
			      c->exits[kestrel_nl_npf_exit], KESTREL_NL_A_PAD) ||
	    kestrel_nl_put_counts(msg, c))
		goto err;
	genlmsg_end(msg, hdr);
	kfree(c);
	return genlmsg_reply(msg, info);

err:
	nlmsg_free(msg);
	kfree(c);
	return r;
}

/* ---- the family ------------------------------------------------------------- */

/*
 * One policy per command, over the whole attribute space: what a command
 * does not take stays NLA_UNSPEC, which strict parsing rejects.
 */
static const struct nla_policy kestrel_nl_vm_policy[KESTREL_NL_A_MAX + 1] = {
	[KESTREL_NL_A_VM_ID]	= { .type = NLA_U32 },
};

static const struct nla_policy kestrel_nl_vcpu_policy[KESTREL_NL_A_MAX + 1] = {
	[KESTREL_NL_A_VM_ID]	= { .type = NLA_U32 },
	[KESTREL_NL_A_VCPU_ID]	= { .type = NLA_U32 },
};

static const struct nla_policy kestrel_nl_stats_policy[KESTREL_NL_A_MAX + 1] = {
};

/* No .validate flags: the core then parses dumps and doits strictly. */
static const struct genl_ops kestrel_nl_ops[] = {
	{
		.cmd		= KESTREL_NL_CMD_VM_GET,
		.flags		= GENL_ADMIN_PERM,
		.policy		= kestrel_nl_vm_policy,
		.maxattr	= KESTREL_NL_A_MAX,
		.doit		= kestrel_nl_vm_get_doit,
		.start		= kestrel_nl_vm_dump_start,
		.dumpit		= kestrel_nl_vm_dumpit,
	},
	{
		.cmd		= KESTREL_NL_CMD_VCPU_GET,
		.flags		= GENL_ADMIN_PERM,
		.policy		= kestrel_nl_vcpu_policy,
		.maxattr	= KESTREL_NL_A_MAX,
		.doit		= kestrel_nl_vcpu_get_doit,
		.start		= kestrel_nl_vcpu_dump_start,
		.dumpit		= kestrel_nl_vcpu_dumpit,
	},
	{
		.cmd		= KESTREL_NL_CMD_STATS_GET,
		.flags		= GENL_ADMIN_PERM,
		.policy		= kestrel_nl_stats_policy,
		.maxattr	= KESTREL_NL_A_MAX,
		.doit		= kestrel_nl_stats_doit,
	},
};

static const struct genl_multicast_group kestrel_nl_mcgrps[] = {
	[KESTREL_NL_MCGRP_EVENTS] = {
		.name	= KESTREL_GENL_MCGRP_EVENTS,
		.flags	= KESTREL_NL_EVENTS_FLAGS,
	},
};

static struct genl_family kestrel_nl_family __ro_after_init = {
	.name		= KESTREL_GENL_NAME,
	.version	= KESTREL_GENL_VERSION,
	.module		= THIS_MODULE,
	/* VMs are host-wide: only the initial namespace sees the family. */
	.netnsok	= false,
	/* Handlers lock kestrel_vms_lock themselves: no genl_mutex. */
	.parallel_ops	= true,
	.ops		= kestrel_nl_ops,
	.n_ops		= ARRAY_SIZE(kestrel_nl_ops),
	/* Every command: strict header and attribute checks. */
	.resv_start_op	= KESTREL_NL_CMD_VM_GET,
	.mcgrps		= kestrel_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(kestrel_nl_mcgrps),
};

/* ---- events ----------------------------------------------------------------- */

static void kestrel_nl_event(u32 type, struct kestrel_vm *vm,
			     struct kestrel_vcpu *vcpu, u32 suberror)
{
	struct sk_buff *skb = NULL;
	void *hdr;

	might_sleep();
	if (!KESTREL_NL_EVENTS_FLAGS)
		return;

	mutex_lock(&kestrel_nl_event_lock);
	/* Numbered even when unheard, so a listener sees only real gaps. */
	kestrel_nl_event_seq++;
	if (!genl_has_listeners(&kestrel_nl_family, &init_net,
				KESTREL_NL_MCGRP_EVENTS))
		goto out;
	/* type, VM id, pid, vCPU, suberror; seq, time; name */
	skb = genlmsg_new(5 * nla_total_size(sizeof(u32)) +
			  2 * nla_total_size_64bit(sizeof(u64)) +
			  nla_total_size(KESTREL_VM_NAME_LEN), GFP_KERNEL);
	if (!skb)
		goto out;
	hdr = genlmsg_put(skb, 0, 0, &kestrel_nl_family, 0,
			  KESTREL_NL_CMD_EVENT);
	if (!hdr ||
	    nla_put_u32(skb, KESTREL_NL_A_EVENT_TYPE, type) ||
	    nla_put_u64_64bit(skb, KESTREL_NL_A_EVENT_SEQ, kestrel_nl_event_seq,
			      KESTREL_NL_A_PAD) ||
	    nla_put_u64_64bit(skb, KESTREL_NL_A_EVENT_TIME_NS,
			      ktime_get_real_ns(), KESTREL_NL_A_PAD) ||
	    kestrel_nl_put_vm_ident(skb, vm) ||
	    (vcpu && nla_put_u32(skb, KESTREL_NL_A_VCPU_ID, vcpu->id)) ||
	    (type == KESTREL_NL_EVENT_VCPU_INTERNAL_ERROR &&
	     nla_put_u32(skb, KESTREL_NL_A_EVENT_SUBERROR, suberror))) {
		nlmsg_free(skb);
		goto out;
	}
	genlmsg_end(skb, hdr);
	/* Frees the skb; ESRCH (nobody left) or ENOBUFS are not our errors. */
	genlmsg_multicast(&kestrel_nl_family, skb, 0, KESTREL_NL_MCGRP_EVENTS,
			  GFP_KERNEL);
out:
	mutex_unlock(&kestrel_nl_event_lock);
}

void kestrel_nl_vm_created(struct kestrel_vm *vm)
{
	lockdep_assert_held(&kestrel_vms_lock);
	/* vm.c has just put it at the tail of kestrel_vms. */
	vm->list_seq = ++kestrel_nl_list_seq;
	kestrel_nl_vms_gen++;
	kestrel_nl_event(KESTREL_NL_EVENT_VM_CREATED, vm, NULL, 0);
}

void kestrel_nl_vm_destroyed(struct kestrel_vm *vm)
{
	unsigned int i;

	lockdep_assert_held(&kestrel_vms_lock);
	kestrel_nl_vms_gen++;
	/* Every vCPU fd is closed: these counts are final. */
	for (i = 0; i < KESTREL_MAX_VCPUS; i++) {
		struct kestrel_vcpu *vcpu = kestrel_nl_vcpu(vm, i);

		if (vcpu)
			kestrel_nl_add_counts(&kestrel_nl_retired, vcpu);
	}
	kestrel_nl_event(KESTREL_NL_EVENT_VM_DESTROYED, vm, NULL, 0);
}

void kestrel_nl_vcpu_shutdown(struct kestrel_vcpu *vcpu)
{
	kestrel_nl_event(KESTREL_NL_EVENT_VCPU_SHUTDOWN, vcpu->vm, vcpu, 0);
}

void kestrel_nl_vcpu_internal_error(struct kestrel_vcpu *vcpu, u32 suberror)
{
	kestrel_nl_event(KESTREL_NL_EVENT_VCPU_INTERNAL_ERROR, vcpu->vm, vcpu,
			 suberror);
}

int __init kestrel_nl_init(void)
{
	int i;

	for (i = 0; i < KESTREL_ARCH_NR_EXITS; i++)
		if (!strcmp(kestrel_arch_exit_names[i], "npf"))
			kestrel_nl_npf_exit = i;
	return genl_register_family(&kestrel_nl_family);
}

void kestrel_nl_exit(void)
{
	genl_unregister_family(&kestrel_nl_family);
}
