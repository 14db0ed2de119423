/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: what the command table (dmstream.c) hands a command's handler.
 *
 * main() parses the command's options into struct opts, checks the number
 * of arguments and, for a command on a dm device, its NAME (argv[0], with
 * any /dev/mapper/ stripped), then calls the handler with the command's own
 * arguments. A handler returns an exit code (util.h).
 */
#ifndef DMSTREAM_CLI_H
#define DMSTREAM_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Every command's options, as parsed; a command sees only those it takes. */
struct opts {
	const char *origin, *dest, *meta;
	const char *name;	/* assemble --name */
	const char *copied, *copied_from;	/* create, copy: seeding */
	uint64_t region_bytes;
	bool rate_set, min_rate_set, max_rate_set;
	uint64_t rate_kib;	/* KiB/s, as the kernel takes it; 0: no limit */
	uint64_t min_rate_kib;	/* KiB/s while users are busy; 0: the default */
	uint64_t max_rate_kib;	/* KiB/s while they are idle; 0: no limit */
	uint64_t max_inflight;
	bool copy_on_read, skip_zeroes;	/* create, copy, merge */
	int copy_on_read_set;	/* set --copy-on-read: -1 not given, 0 off, 1 on */
	bool paused, force, finish, watch, json, progress, quiet, sb_only, ignore_nonfatal;
	bool mirror, no_mirror;	/* create --mirror; copy --no-mirror */
	bool rollback;		/* merge --rollback */
	double interval;	/* -1: not given */
	double timeout;		/* 0: none */
};

struct command {
	const char *name;
	const char *args;	/* after the name, for the usage line */
	const char *summary;
	uint64_t options;	/* O(OPT_...) allowed */
	int min_args, max_args;
	bool name_first;	/* the first argument is a dm device NAME */
	int (*fn)(const struct command *cmd, struct opts *o, int argc, char **argv);
	const char *details;	/* for --help */
};

/* Prints "dmstream CMD: <message>" and CMD's usage; returns EXIT_USAGE. */
int usage_error(const struct command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A rate argument, in KiB/s for the kernel, or a usage error. */
int rate_arg(const struct command *cmd, const char *arg, uint64_t *kib);

/* The handlers, by the file that owns them. */
/* workflow.c */
int cmd_create(const struct command *cmd, struct opts *o, int argc, char **argv);
int cmd_copy(const struct command *cmd, struct opts *o, int argc, char **argv);
int cmd_finish(const struct command *cmd, struct opts *o, int argc, char **argv);
int cmd_message(const struct command *cmd, struct opts *o, int argc, char **argv);
int cmd_rate(const struct command *cmd, struct opts *o, int argc, char **argv);
int cmd_set(const struct command *cmd, struct opts *o, int argc, char **argv);
/* abort.c */
int cmd_abort(const struct command *cmd, struct opts *o, int argc, char **argv);
/* follow.c */
int cmd_status(const struct command *cmd, struct opts *o, int argc, char **argv);
int cmd_wait(const struct command *cmd, struct opts *o, int argc, char **argv);
/* offline.c */
int cmd_check(const struct command *cmd, struct opts *o, int argc, char **argv);
int cmd_dump(const struct command *cmd, struct opts *o, int argc, char **argv);
int cmd_exceptions(const struct command *cmd, struct opts *o, int argc, char **argv);
/* merge.c */
int cmd_merge(const struct command *cmd, struct opts *o, int argc, char **argv);
/* assemble.c */
int cmd_list(const struct command *cmd, struct opts *o, int argc, char **argv);
int cmd_assemble(const struct command *cmd, struct opts *o, int argc, char **argv);
int cmd_rebind(const struct command *cmd, struct opts *o, int argc, char **argv);

#endif /* DMSTREAM_CLI_H */
