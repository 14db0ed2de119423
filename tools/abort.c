// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: `abort`, giving up a stream and going back to its origin.
 *
 * NAME gets the table its origin had in one load, suspend and resume: the
 * helper origin's table when `copy` made one (the helper is removed
 * afterwards), else `linear` over the origin. Nothing of the stream is
 * active then; the destination and the metadata device are unused.
 *
 * The origin holds every acknowledged write only when the stream mirrored
 * from its start and never stopped: the status says "mirror", and the
 * superblock does not say ORIGIN_STALE. The suspend drains the writes in
 * flight and commits, so the status is read again while suspended: an
 * origin-leg write that failed during the drain shows there as "degraded".
 * Anything else is refused unless --force, since the writes the origin
 * lacks would be lost.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream-format.h"
#include "stream-interface.h"
#include "cli.h"
#include "dm.h"
#include "merge.h"
#include "meta.h"
#include "plan.h"
#include "status.h"
#include "util.h"
#include "workflow.h"

/* The superblock's flags, read from the metadata device; -1 when unknown. */
static int64_t sb_flags(const struct stream_table *t)
{
	struct blockdev bd;
	struct meta_sb sb;
	char devt[32];
	uint64_t size;
	bool in_use;
	int fd, r;

	devt_str(t->meta_major, t->meta_minor, devt, sizeof(devt));
	if (blockdev_get(devt, &bd))
		return -1;
	fd = meta_open(bd.path, false, &in_use, &size);
	if (fd < 0)
		return -1;
	r = meta_read_sb(fd, &sb);
	close(fd);
	if (r || meta_sb_header_problem(&sb)) {
		err("metadata device %s: cannot read its superblock%s%s", bd.path,
		    r ? "" : ": ", r ? "" : meta_sb_header_problem(&sb));
		return -1;
	}
	return sb.flags;
}

/*
 * Why aborting @st would lose acknowledged writes, in @why (starting with
 * @name); 0 when it would not.
 */
static int lossy(const char *name, const struct stream_status *st, int64_t flags, char *why,
		 size_t len)
{
	const char *what;
	char size[32];

	if (st->fail)
		what = "is in fail mode, so whether its origin is current is unknown";
	else if (!strcmp(st->mirror, STREAM_MIRROR_DEGRADED))
		what = "is degraded: a write to its origin failed, so the origin misses "
		       "writes since then";
	else if (strcmp(st->mirror, STREAM_MIRROR_ON))
		what = "is a one-way stream: its writes reach the destination only";
	else if (flags < 0)
		what = "mirrors, but its superblock cannot be read to confirm the origin is "
		       "current";
	else if (flags & STREAM_SB_FLAG_ORIGIN_STALE)
		what = "mirrors now, but its metadata says the origin missed writes "
		       "(ran one-way before)";
	else
		return 0;
	if (st->fail)
		snprintf(why, len, "%s %s", name, what);
	else
		snprintf(why, len, "%s %s; going back to the origin loses up to %" PRIu64
			 " regions (%s) copied or written since the copy started", name, what,
			 st->copied, fmt_sectors(st->copied * st->region_size, size, sizeof(size)));
	return 1;
}

struct abort_arg {
	bool force;
};

/* While suspended: the drain may have degraded the mirror. */
static int abort_check(const char *name, void *arg, char *why, size_t len)
{
	const struct abort_arg *a = arg;
	struct stream_status st;
	char reason[400];

	if (a->force)
		return 0;
	if (suspended_status(name, &st, why, len))
		return -1;
	/* The superblock was read before: nothing sets its flag without the status saying so. */
	if (lossy(name, &st, 0, reason, sizeof(reason))) {
		snprintf(why, len, "after the suspend: %s", reason);
		return -1;
	}
	return 0;
}

/* NAME as it was before the copy: the helper's table, or linear on the origin. */
static int origin_table(const char *name, const struct stream_table *t, uint64_t len,
			const char *helper, struct dmx_table *tbl)
{
	if (!helper[0]) {
		dmx_table_one(tbl, len, "linear", "%u:%u 0", t->origin_major, t->origin_minor);
		return 0;
	}
	if (dmx_table(helper, tbl))
		return -1;
	if (!tbl->nr || dmx_table_len(tbl) != len) {
		err("%s: its helper origin %s has a table of %" PRIu64 " sectors, not %" PRIu64,
		    name, helper, dmx_table_len(tbl), len);
		dmx_table_free(tbl);
		return -1;
	}
	return 0;
}


static void say_aborted(const char *name, const struct stream_table *t, const char *helper,
		    bool lost)
{
	char o[32], d[32], m[32];

	devt_str(t->origin_major, t->origin_minor, o, sizeof(o));
	devt_str(t->dest_major, t->dest_minor, d, sizeof(d));
	devt_str(t->meta_major, t->meta_minor, m, sizeof(m));
	if (helper[0])
		printf("%s: aborted: back on the table of its helper origin %s\n", name, helper);
	else
		printf("%s: aborted: linear on its origin %s\n", name, o);
	if (lost)
		printf("%s: the origin lacks the writes made since the copy started (--force)\n",
		       name);
	printf("%s: the stream is gone: destination %s and metadata device %s are unused; "
	       "what they hold is of no further use, so reuse or delete them (a new copy "
	       "onto that metadata device needs --force)\n", name, d, m);
}

int cmd_abort(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	const char *name = argv[0];
	struct abort_arg a = { .force = o->force };
	struct stream_status st;
	struct stream_table t;
	struct dmx_table tbl;
	char helper[160] = "", why[512];
	bool lost = false;
	int64_t flags;
	uint64_t len;
	int r;

	(void)cmd;
	(void)argc;
	r = active_stream(name, &t, &len, &st);
	if (r)
		return r;
	if (merge_is_merge(&t)) {
		err("%s is a merge of a dm-snapshot: it writes the snapshot's origin device, "
		    "so the snapshot it came from no longer exists as it was; it cannot be "
		    "aborted, only finished ('%s wait %s', '%s finish %s')", name, progname, name,
		    progname, name);
		return EXIT_FAIL;
	}
	flags = st.fail || strcmp(st.mirror, STREAM_MIRROR_ON) ? 0 : sb_flags(&t);
	if (lossy(name, &st, flags, why, sizeof(why))) {
		if (!o->force) {
			err("%s. Not aborted ('%s abort --force %s' accepts the loss; "
			    "'%s finish %s' once the copy is complete loses nothing)", why,
			    progname, name, progname, name);
			return EXIT_ORIGIN_STALE;
		}
		warn("%s; aborting anyway (--force)", why);
		lost = true;
	}
	helper_origin(name, &t, helper, sizeof(helper));
	if (origin_table(name, &t, len, helper, &tbl))
		return EXIT_FAIL;
	r = switch_table(name, &tbl, name, abort_check, &a);
	dmx_table_free(&tbl);
	if (r > 0) {
		err("%s: not aborted: %s", name, stream_left(name));
		return EXIT_ORIGIN_STALE;
	}
	if (r) {
		err("%s: not aborted; it is still a stream", name);
		return EXIT_FAIL;
	}
	say_aborted(name, &t, helper, lost);
	if (helper[0] && dmx_remove(helper)) {
		err("%s: aborted, but its helper origin %s could not be removed: "
		    "'dmsetup remove %s' later", name, helper, helper);
		return EXIT_FAIL;
	}
	if (helper[0])
		printf("%s: removed the helper origin %s\n", name, helper);
	return EXIT_OK;
}
