/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: what workflow.c (create, copy, finish) lends abort.c: the
 * table switch and the helper origin of a copy.
 */
#ifndef DMSTREAM_WORKFLOW_H
#define DMSTREAM_WORKFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "status.h"

/*
 * A check made while the device is suspended, between the old table's
 * postsuspend and the resume (see switch_table()). Returns 0 to go on, or
 * non-zero with a reason in @why, to go back to the old table. It must not
 * print: stdout or stderr may be on the suspended device.
 */
typedef int (*suspended_check_fn)(const char *name, void *arg, char *why, size_t len);

/*
 * Swaps @tbl in for @name's live table: load, suspend, @check (when not
 * NULL), resume. On failure the inactive table is cleared and @name resumed
 * on its old table. Nothing is printed while @name is suspended. Returns 0,
 * -1 when the switch failed, 1 when @check refused (its reason printed).
 */
int switch_table(const char *name, const struct dmx_table *tbl, const char *what,
		 suspended_check_fn check, void *arg);

/*
 * @name is an active stream with no inactive table: its table in @t and
 * @len, its status in @st. Returns an exit code, the reason printed.
 */
int active_stream(const char *name, struct stream_table *t, uint64_t *len,
		  struct stream_status *st);

/*
 * The helper origin NAME-origin that `copy` made for stream @name with
 * table @t, into @helper; false when @t's origin is no such helper.
 */
bool helper_origin(const char *name, const struct stream_table *t, char *helper, size_t len);

/*
 * @name's status read while it is suspended, without printing; -1 with a
 * reason in @why when it cannot be read or is not one stream target.
 */
int suspended_status(const char *name, struct stream_status *st, char *why, size_t len);

/*
 * After switch_table() returned 1: "it is resumed on its stream table, ..."
 * or, when the resume failed too, that @name is still suspended.
 */
const char *stream_left(const char *name);

/* A new helper origin's dm uuid: ORIGIN_UUID_PREFIX and 32 random hex digits. */
void helper_uuid(char *buf, size_t len);

/*
 * copy --finish, merge --finish: waits with progress (as @o says), then
 * finishes @name; @dest names the destination in messages. Returns an
 * exit code.
 */
int wait_and_finish(const char *name, const char *dest, const struct opts *o);

#endif /* DMSTREAM_WORKFLOW_H */
