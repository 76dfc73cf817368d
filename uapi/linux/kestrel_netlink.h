/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Kestrel control plane: the "kestrel" generic-netlink family.
 *
 * The host's view of every Kestrel VM, whichever process runs it: list VMs,
 * read per-vCPU and global counters, and follow lifecycle events on the
 * "events" multicast group.  Every operation and the group need
 * CAP_NET_ADMIN in the initial user namespace; the family lives in the
 * initial network namespace only.  The VM owner's ioctl API
 * (linux/kestrel.h) is independent of this.
 *
 * Documentation/netlink.rst describes each command and attribute.  Requests
 * are validated strictly: an attribute a command does not take, a wrong
 * length, or a nonzero genlmsghdr.reserved gives EINVAL.
 */
#ifndef _UAPI_LINUX_KESTREL_NETLINK_H
#define _UAPI_LINUX_KESTREL_NETLINK_H

#define KESTREL_GENL_NAME		"kestrel"
#define KESTREL_GENL_VERSION		1
#define KESTREL_GENL_MCGRP_EVENTS	"events"

enum kestrel_nl_cmd {
	KESTREL_NL_CMD_UNSPEC,
	KESTREL_NL_CMD_VM_GET,		/* do: VM_ID; dump: every VM */
	KESTREL_NL_CMD_VCPU_GET,	/* do: VM_ID, VCPU_ID; dump: VM_ID */
	KESTREL_NL_CMD_STATS_GET,	/* do: no attributes */
	KESTREL_NL_CMD_EVENT,		/* notification on "events" only */

	__KESTREL_NL_CMD_MAX,
	KESTREL_NL_CMD_MAX = __KESTREL_NL_CMD_MAX - 1
};

/* Attributes at the top level of every message. */
enum kestrel_nl_attr {
	KESTREL_NL_A_UNSPEC,
	KESTREL_NL_A_PAD,		/* alignment of 64-bit values */

	/* VM_GET replies, events */
	KESTREL_NL_A_VM_ID,		/* u32 */
	KESTREL_NL_A_VM_NAME,		/* string, may be "" */
	KESTREL_NL_A_VM_OWNER_PID,	/* u32: creator's tgid, init pid ns */
	KESTREL_NL_A_VM_NR_VCPUS,	/* u32 */
	KESTREL_NL_A_VM_MEM_SIZE,	/* u64: bytes in memory slots */
	KESTREL_NL_A_VM_MAPPED,		/* u64: bytes mapped for the guest */
	KESTREL_NL_A_VM_CREATED_NS,	/* u64: CLOCK_REALTIME, ns */
	KESTREL_NL_A_VM_STATE,		/* u32: KESTREL_NL_VM_STATE_* */

	/* VCPU_GET replies, vCPU events */
	KESTREL_NL_A_VCPU_ID,		/* u32 */
	KESTREL_NL_A_VCPU_STATE,	/* u32: KESTREL_NL_VCPU_STATE_* */

	/* VCPU_GET (one vCPU) and STATS_GET (sum over every vCPU) */
	KESTREL_NL_A_EXITS,		/* nest: KESTREL_NL_A_EXIT, one per reason */
	KESTREL_NL_A_INJECTED,		/* u64: events injected into the guest */
	KESTREL_NL_A_GUEST_NS,		/* u64: time in guest mode, ns */

	/* STATS_GET */
	KESTREL_NL_A_STATS_BACKEND,	/* string: "svm", "vmx" */
	KESTREL_NL_A_STATS_NR_VMS,	/* u32 */
	KESTREL_NL_A_STATS_NR_VCPUS,	/* u32 */
	KESTREL_NL_A_STATS_NPF,		/* u64: nested page faults */

	/* EVENT */
	KESTREL_NL_A_EVENT_TYPE,	/* u32: KESTREL_NL_EVENT_* */
	KESTREL_NL_A_EVENT_SEQ,		/* u64: 1, 2, 3... per module load */
	KESTREL_NL_A_EVENT_TIME_NS,	/* u64: CLOCK_REALTIME, ns */
	KESTREL_NL_A_EVENT_SUBERROR,	/* u32: run->internal.suberror */

	__KESTREL_NL_A_MAX,
	KESTREL_NL_A_MAX = __KESTREL_NL_A_MAX - 1
};

/* Inside each KESTREL_NL_A_EXIT of KESTREL_NL_A_EXITS. */
enum kestrel_nl_exit_attr {
	KESTREL_NL_EXIT_A_UNSPEC,
	KESTREL_NL_EXIT_A_PAD,
	KESTREL_NL_EXIT_A_NAME,		/* string: "io", "cpuid", "npf", ... */
	KESTREL_NL_EXIT_A_COUNT,	/* u64 */

	__KESTREL_NL_EXIT_A_MAX,
	KESTREL_NL_EXIT_A_MAX = __KESTREL_NL_EXIT_A_MAX - 1
};

/* The nested attribute type of each entry in KESTREL_NL_A_EXITS. */
#define KESTREL_NL_A_EXIT		1

/* KESTREL_NL_A_VM_STATE */
enum kestrel_nl_vm_state {
	KESTREL_NL_VM_STATE_IDLE,	/* no vCPU inside KESTREL_RUN */
	KESTREL_NL_VM_STATE_RUNNING,	/* a vCPU is inside KESTREL_RUN */
	KESTREL_NL_VM_STATE_HALTED,	/* vCPUs in KESTREL_RUN all halted */
};

/* KESTREL_NL_A_VCPU_STATE */
enum kestrel_nl_vcpu_state {
	KESTREL_NL_VCPU_STATE_USERSPACE, /* not in KESTREL_RUN */
	KESTREL_NL_VCPU_STATE_RUNNING,	/* in KESTREL_RUN */
	KESTREL_NL_VCPU_STATE_HALTED,	/* in KESTREL_RUN, waiting for an event */
};

/* KESTREL_NL_A_EVENT_TYPE */
enum kestrel_nl_event {
	KESTREL_NL_EVENT_UNSPEC,
	KESTREL_NL_EVENT_VM_CREATED,
	KESTREL_NL_EVENT_VM_DESTROYED,
	KESTREL_NL_EVENT_VCPU_SHUTDOWN,		/* triple fault */
	KESTREL_NL_EVENT_VCPU_INTERNAL_ERROR,	/* + EVENT_SUBERROR */
};

#endif /* _UAPI_LINUX_KESTREL_NETLINK_H */
