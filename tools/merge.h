/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: what merge.c lends finish (workflow.c): the end of a
 * `merge --rollback`, whose stream runs on the snapshot's origin device.
 * (The end of a live merge is finish's usual one: linear on the
 * destination, the helper origin removed.)
 */
#ifndef DMSTREAM_MERGE_H
#define DMSTREAM_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dm.h"
#include "status.h"

struct merge_end {
	char snap[128];		/* the snapshot device, the stream's origin */
	bool lvm;		/* an LVM snapshot: lvremove it */
	char vg[128], lv[128], snap_lv[128];
};

/*
 * Whether the stream of table @t is a merge: its origin is a `snapshot`
 * of its destination (the helper of a live merge, or the snapshot itself).
 */
bool merge_is_merge(const struct stream_table *t);

/*
 * When stream @name (table @t, @len sectors) is a merge --rollback: its
 * origin is a `snapshot` of its destination that is no helper. Then true,
 * with the table @name ends on in @tbl (LVM: `snapshot-origin` on the
 * destination, as LVM expects; else `linear`) and what to release in @e.
 */
bool merge_rollback_end(const char *name, const struct stream_table *t, uint64_t len,
			struct dmx_table *tbl, struct merge_end *e);

/*
 * After @name switched to that table: the snapshot goes (plain dm: its
 * device is removed; LVM: lvm lvremove, then the activation skip flag of
 * the origin LV is cleared). Returns an exit code, the reason printed.
 */
int merge_rollback_release(const char *name, const struct merge_end *e);

/*
 * After the finish of merge @name (table @t gone): its metadata device is
 * zeroed (block 0), so that it is never continued over another snapshot.
 * Returns an exit code, the reason printed.
 */
int merge_forget_meta(const char *name, const struct stream_table *t);

#endif /* DMSTREAM_MERGE_H */
