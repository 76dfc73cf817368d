/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Decoding the attributes of the "kestrel" generic-netlink family (libnl),
 * shared by the launcher's control commands and selftests/netlink_test.c.
 * Each reader says what a missing attribute reads as: the launcher shows
 * 0, the test wants to tell "absent" from "zero".
 */
#ifndef KESTREL_NL_ATTRS_H
#define KESTREL_NL_ATTRS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <netlink/attr.h>
#include <linux/kestrel_netlink.h>

#define KESTREL_NL_MAX_EXITS	64	/* exit reasons a record can hold */

/* Exit counters by reason, with the vCPU's other counters. */
struct kestrel_nl_exits {
	unsigned int n;
	char name[KESTREL_NL_MAX_EXITS][32];
	uint64_t count[KESTREL_NL_MAX_EXITS];
	uint64_t injected, guest_ns;
};

static inline uint32_t kestrel_nl_u32(struct nlattr **tb, int t,
				      uint32_t missing)
{
	return tb[t] ? nla_get_u32(tb[t]) : missing;
}

static inline uint64_t kestrel_nl_u64(struct nlattr **tb, int t,
				      uint64_t missing)
{
	return tb[t] ? nla_get_u64(tb[t]) : missing;
}

static inline void kestrel_nl_str(struct nlattr **tb, int t, char *buf,
				  size_t size)
{
	buf[0] = '\0';
	if (tb[t])
		snprintf(buf, size, "%.*s", nla_len(tb[t]),
			 (char *)nla_data(tb[t]));
}

/* KESTREL_NL_A_EXITS (nested KESTREL_NL_A_EXIT entries) and friends. */
static inline void kestrel_nl_exits(struct nlattr **tb,
				    struct kestrel_nl_exits *ex,
				    uint64_t missing)
{
	struct nlattr *e;
	int rem;

	memset(ex, 0, sizeof(*ex));
	ex->injected = kestrel_nl_u64(tb, KESTREL_NL_A_INJECTED, missing);
	ex->guest_ns = kestrel_nl_u64(tb, KESTREL_NL_A_GUEST_NS, missing);
	if (!tb[KESTREL_NL_A_EXITS])
		return;
	nla_for_each_nested(e, tb[KESTREL_NL_A_EXITS], rem) {
		struct nlattr *etb[KESTREL_NL_EXIT_A_MAX + 1];

		if (ex->n == KESTREL_NL_MAX_EXITS ||
		    nla_type(e) != KESTREL_NL_A_EXIT ||
		    nla_parse_nested(etb, KESTREL_NL_EXIT_A_MAX, e, NULL) < 0 ||
		    !etb[KESTREL_NL_EXIT_A_NAME])
			continue;
		kestrel_nl_str(etb, KESTREL_NL_EXIT_A_NAME, ex->name[ex->n],
			       sizeof(ex->name[0]));
		ex->count[ex->n] = kestrel_nl_u64(etb, KESTREL_NL_EXIT_A_COUNT,
						  missing);
		ex->n++;
	}
}

#endif
