/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The launcher's control-plane commands (control.c), which talk to the
 * "kestrel" generic-netlink family through libnl.
 */
#ifndef KESTREL_CONTROL_H
#define KESTREL_CONTROL_H

/* argv[0] is the command name; each returns the exit status. */
int cmd_ps(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_events(int argc, char **argv);

/* Usage lines and option help for kestrel --help. */
extern const char control_usage[];
extern const char control_help[];

#endif
