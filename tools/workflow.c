// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: the commands that change a stream device: `create`, `copy`
 * and `finish`, and the messages `pause`, `continue`, `rate` and `set`.
 *
 * create and copy take their devices from plan.c and make the stream:
 * create a new device, copy a switch of a live one (with a helper origin
 * when its table is not one plain linear segment). copy mirrors unless
 * --no-mirror, create only with --mirror. finish switches a complete
 * stream to `linear` on its destination. Table switches go through
 * switch_table(): load, suspend, resume, or back to the old table; abort.c
 * uses it too (workflow.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "stream-interface.h"
#include "cli.h"
#include "dm.h"
#include "follow.h"
#include "merge.h"
#include "plan.h"
#include "status.h"
#include "util.h"
#include "workflow.h"

/*---------------------------------------------------------------------------*/
/* create */
int cmd_create(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct dmx_table tbl;
	struct plan p;
	char a[32], b[32];
	int r;

	(void)argc;
	r = plan_stream(&p, cmd, o, argv[0], false);
	if (!r && plan_format_meta(&p))
		r = EXIT_FAIL;
	if (r)
		goto out;
	plan_table(&p, &tbl);
	dmx_kmsg_mark();
	r = dmx_create(p.name, NULL, &tbl, false, false);
	dmx_table_free(&tbl);
	if (r) {
		explain_refusal(p.name);
		r = EXIT_FAIL;
		goto out;
	}
	printf("%s: streaming %s from %s into %s in %s regions%s\n", p.name,
	       fmt_bytes(p.len * 512, a, sizeof(a)), p.origin.path, p.dest.path,
	       fmt_bytes(p.region * 512, b, sizeof(b)), o->paused ? " (paused)" : "");
out:
	plan_free(&p);
	return r;
}

/*---------------------------------------------------------------------------*/
/* finish */

bool helper_origin(const char *name, const struct stream_table *t, char *helper, size_t len)
{
	struct dmx_info hi;

	if (dmx_info_devno(t->origin_major, t->origin_minor, &hi) || !hi.exists)
		return false;
	if (strncmp(hi.uuid, ORIGIN_UUID_PREFIX, strlen(ORIGIN_UUID_PREFIX)) ||
	    strlen(hi.name) != strlen(name) + strlen(ORIGIN_SUFFIX) ||
	    strncmp(hi.name, name, strlen(name)) ||
	    strcmp(hi.name + strlen(name), ORIGIN_SUFFIX))
		return false;
	snprintf(helper, len, "%s", hi.name);
	return true;
}

/*
 * Nothing is printed while @name is suspended, since the terminal or log
 * file may be on it: the messages wait for the resume.
 */
int switch_table(const char *name, const struct dmx_table *tbl, const char *what,
		 suspended_check_fn check, void *arg)
{
	struct dmx_info info;
	const char *failed;
	char why[512] = "";
	bool resumed;
	int r = -1;

	dmx_kmsg_mark();
	if (dmx_load(name, tbl)) {
		explain_refusal(what);
		return -1;
	}
	if (dmx_suspend(name)) {
		failed = "suspend failed";
		goto rollback;
	}
	if (check && check(name, arg, why, sizeof(why))) {
		failed = NULL;
		r = 1;
		goto rollback;
	}
	if (dmx_resume(name)) {
		failed = "resume with the new table failed";
		goto rollback;
	}
	return 0;

rollback:
	dmx_clear(name);
	resumed = !dmx_info(name, &info) && info.exists &&
		  (!info.suspended || !dmx_resume(name));
	if (failed)
		err("%s: %s", name, failed);
	else
		err("%s", why);
	explain_refusal(what);
	if (!resumed)
		err("%s: could not resume it on its old table: it is still suspended", name);
	return r;
}

const char *stream_left(const char *name)
{
	struct dmx_info info;

	if (!dmx_info(name, &info) && info.exists && info.suspended)
		return "it is still a stream, and suspended";
	return "it is resumed on its stream table, still a stream";
}

/*
 * Before the switch to linear: what keeps @st's stream from being finished
 * (metadata or destination failure, an incomplete copy), in @why; 0 when
 * nothing does.
 */
static int unfinishable(const char *name, const struct stream_status *st, char *why,
			size_t len)
{
	if (st->fail) {
		snprintf(why, len, "%s is in fail mode: its metadata device failed and every "
			 "I/O to it fails (see dmesg)", name);
		return EXIT_COPY_FAILED;
	}
	if (strcmp(st->mode, "rw")) {
		snprintf(why, len, "%s is in %s mode: its metadata or destination could not be "
			 "written, so the end of the copy is not committed (see dmesg)", name,
			 st->mode);
		return EXIT_COPY_FAILED;
	}
	if (strcmp(st->state, "complete") || st->copied != st->total) {
		snprintf(why, len, "%s is not complete: %" PRIu64 "/%" PRIu64 " regions copied "
			 "(%s); '%s wait %s' first", name, st->copied, st->total, st->state,
			 progname, name);
		return EXIT_INCOMPLETE;
	}
	return 0;
}

int suspended_status(const char *name, struct stream_status *st, char *why, size_t len)
{
	struct dmx_table tbl;
	int r = -1;

	/* stream_get() would print its errors; this may not. */
	if (dmx_status(name, &tbl)) {
		snprintf(why, len, "%s: cannot read its status after the suspend", name);
		return -1;
	}
	if (tbl.nr != 1 || strcmp(tbl.t[0].type, STREAM_TARGET_NAME) ||
	    stream_status_parse(tbl.t[0].params, tbl.t[0].len, st))
		snprintf(why, len, "%s: unexpected status after the suspend", name);
	else
		r = 0;
	dmx_table_free(&tbl);
	return r;
}

/*
 * Run while suspended, after the stream's postsuspend made its final
 * commit: a commit or destination flush that failed there shows as ro or
 * fail mode.
 */
static int finish_check(const char *name, void *arg, char *why, size_t len)
{
	struct stream_status st;
	char reason[384];

	(void)arg;
	if (suspended_status(name, &st, why, len))
		return -1;
	if (unfinishable(name, &st, reason, sizeof(reason))) {
		snprintf(why, len, "%s: the final commit at the suspend failed: %s", name,
			 reason);
		return -1;
	}
	return 0;
}

/*
 * Before the switch: @name is an active stream with no inactive table,
 * healthy and complete; its table in @t and @len. Returns an exit code.
 */
int active_stream(const char *name, struct stream_table *t, uint64_t *len,
		  struct stream_status *st)
{
	struct dmx_info info;

	if (dmx_info(name, &info))
		return EXIT_FAIL;
	if (!info.exists) {
		err("%s: no such device", name);
		return EXIT_FAIL;
	}
	if (info.inactive_table) {
		err("%s has an inactive table loaded: clear it first (dmsetup clear %s)", name, name);
		return EXIT_FAIL;
	}
	if (info.suspended) {
		err("%s is suspended: resume it first", name);
		return EXIT_FAIL;
	}
	if (stream_get_table(name, t, len) || stream_get(name, st, &info))
		return EXIT_FAIL;
	return EXIT_OK;
}

static int finish_ready(const char *name, struct stream_table *t, uint64_t *len)
{
	struct stream_status st;
	char why[512];
	int r;

	r = active_stream(name, t, len, &st);
	if (r)
		return r;
	r = unfinishable(name, &st, why, sizeof(why));
	if (r)
		err("%s; not finished, it is still a stream", why);
	return r;
}

/* LVM's logical volumes have dm uuids starting so. */
#define LVM_UUID_PREFIX		"LVM-"

/*
 * After the finish of an LVM logical volume: LVM's metadata still names
 * the old physical volume, which no longer receives writes.
 */
static void finish_lvm_warning(const char *name)
{
	struct dmx_info info;

	if (dmx_info(name, &info) || !info.exists ||
	    strncmp(info.uuid, LVM_UUID_PREFIX, strlen(LVM_UUID_PREFIX)))
		return;
	warn("%s is an LVM logical volume, and LVM's metadata still names its old physical "
	     "volume: a reactivation (vgchange -ay, lvchange --refresh, a reboot) maps it back "
	     "there, without the writes made from now on, until LVM's metadata is changed to "
	     "match", name);
}

static int finish(const char *name)
{
	struct stream_table t;
	struct dmx_table tbl;
	char helper[160] = "", d[32], m[32], type[32];
	struct merge_end me;
	bool has_helper, rollback, merge;
	int mr = EXIT_OK;
	uint64_t len;
	int r;

	r = finish_ready(name, &t, &len);
	if (r)
		return r;
	has_helper = helper_origin(name, &t, helper, sizeof(helper));
	merge = merge_is_merge(&t);
	/* A merge --rollback ends on LVM's table, then its snapshot goes. */
	rollback = !has_helper && merge_rollback_end(name, &t, len, &tbl, &me);
	if (!rollback)
		dmx_table_one(&tbl, len, "linear", "%u:%u 0", t.dest_major, t.dest_minor);

	/* The stream commits at the suspend, so its health is checked again
	 * between the suspend and the resume. */
	r = switch_table(name, &tbl, name, finish_check, NULL);
	snprintf(type, sizeof(type), "%s", tbl.t[0].type);
	dmx_table_free(&tbl);
	if (r > 0) {
		err("%s: not finished: %s", name, stream_left(name));
		return EXIT_COPY_FAILED;
	}
	if (r) {
		err("%s: not finished; it is still a stream", name);
		return EXIT_FAIL;
	}
	printf("%s: finished: %s on %s; metadata device %s is free\n", name, type,
	       devt_str(t.dest_major, t.dest_minor, d, sizeof(d)),
	       devt_str(t.meta_major, t.meta_minor, m, sizeof(m)));
	if (merge)
		mr = merge_forget_meta(name, &t);
	if (rollback) {
		r = merge_rollback_release(name, &me);
		return r ? r : mr;
	}
	finish_lvm_warning(name);
	if (has_helper) {
		if (dmx_remove(helper)) {
			err("%s: finished, but its helper origin %s could not be removed: "
			    "'dmsetup remove %s' later", name, helper, helper);
			return EXIT_FAIL;
		}
		printf("%s: removed the helper origin %s\n", name, helper);
	}
	return mr;
}

int cmd_finish(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)cmd;
	(void)o;
	(void)argc;
	return finish(argv[0]);
}

/*---------------------------------------------------------------------------*/
/* copy */
void helper_uuid(char *buf, size_t len)
{
	unsigned char rnd[16];
	size_t i, n;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		/* Unique enough for a name that is unique anyway. */
		for (i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)(rand() ^ getpid() ^ time(NULL));
	}
	n = snprintf(buf, len, "%s", ORIGIN_UUID_PREFIX);
	for (i = 0; i < sizeof(rnd) && n + 2 < len; i++)
		n += snprintf(buf + n, len - n, "%02x", rnd[i]);
}

/*
 * After a failed switch: NAME is on its original table again (switch_table
 * saw to it); the helper goes, unless NAME uses it after all.
 */
static void copy_rollback(const struct plan *p, bool made_helper)
{
	if (made_helper) {
		struct dmx_table now;
		bool streaming = false;

		if (!dmx_table(p->name, &now)) {
			streaming = now.nr == 1 && !strcmp(now.t[0].type, STREAM_TARGET_NAME);
			dmx_table_free(&now);
		}
		if (streaming)
			err("%s: is streaming after all; keeping %s", p->name, p->helper);
		else if (dmx_remove(p->helper))
			err("%s: could not remove the helper origin %s", p->name, p->helper);
	}
	err("%s: not copied; it is back on its original table", p->name);
}

/*
 * NAME becomes a stream: first the helper origin with NAME's table, when
 * the plan has one (kept from udev's rules; read-only unless the stream
 * mirrors, which writes it), then the switch.
 */
static int copy_switch(struct plan *p)
{
	struct dmx_table tbl;
	struct dmx_info hi;
	char uuid[64];
	int r;

	if (p->helper[0]) {
		helper_uuid(uuid, sizeof(uuid));
		if (dmx_create(p->helper, uuid, &p->old, !p->o->mirror, true)) {
			err("%s: cannot create the helper origin %s", p->name, p->helper);
			return EXIT_FAIL;
		}
		if (dmx_info(p->helper, &hi) || !hi.exists) {
			err("%s: the helper origin %s vanished", p->name, p->helper);
			goto rollback;
		}
		p->origin_major = hi.major;
		p->origin_minor = hi.minor;
	}
	if (plan_format_meta(p))
		goto rollback;
	plan_table(p, &tbl);
	r = switch_table(p->name, &tbl, p->name, NULL, NULL);
	dmx_table_free(&tbl);
	if (!r)
		return EXIT_OK;
rollback:
	copy_rollback(p, p->helper[0]);
	if (p->o->mirror)
		err("%s: a mirrored copy writes its origin too: if that cannot be written "
		    "(a read-only device), copy with --no-mirror", p->name);
	return EXIT_FAIL;
}

int wait_and_finish(const char *name, const char *dest, const struct opts *o)
{
	int r = follow_stream(name, o->timeout, !o->quiet, o->json, o->interval);

	if (r == EXIT_COPY_FAILED)
		err("%s is still a stream onto %s, not finished", name, dest);
	else if (r != EXIT_OK)
		err("%s keeps streaming onto %s: '%s wait %s' and '%s finish %s' later", name,
		    dest, progname, name, progname, name);
	else
		r = finish(name);
	return r;
}

/* What copy did: NAME, the length, where to, and its origin. */
static void copy_started(const struct plan *p)
{
	char a[32], b[32];

	printf("%s: copying %s onto %s in %s regions (origin %s%s%u:%u%s), %s\n", p->name,
	       fmt_bytes(p->len * 512, a, sizeof(a)), p->dest.path,
	       fmt_bytes(p->region * 512, b, sizeof(b)), p->helper, p->helper[0] ? ", " : "",
	       p->origin_major, p->origin_minor,
	       p->o->rate_set && p->o->rate_kib ? ", rate limited" : "",
	       p->o->mirror ? "mirrored: writes reach the origin too" :
	       "one-way: the origin no longer sees writes");
	fflush(stdout);
}

/*
 * A one-way copy of an LVM logical volume loses data at its next
 * activation: LVM's metadata still maps the LV onto the old PV. Refused
 * unless --force; mirror mode keeps that PV current.
 */
static int copy_lvm_check(const char *name, const struct opts *o)
{
	struct dmx_info info;

	if (o->mirror || dmx_info(name, &info) || !info.exists ||
	    strncmp(info.uuid, LVM_UUID_PREFIX, strlen(LVM_UUID_PREFIX)))
		return 0;
	if (o->force) {
		warn("%s is an LVM logical volume copied one-way (--force): any reactivation "
		     "(vgchange -ay, lvchange --refresh, a reboot) maps it back to its old "
		     "physical volume, losing every write made from now on", name);
		return 0;
	}
	err("%s is an LVM logical volume: refusing a one-way copy (--no-mirror). LVM's "
	    "metadata still names the old physical volume, so any reactivation "
	    "(vgchange -ay, lvchange --refresh, a reboot) maps %s back to it and loses "
	    "every write made since the copy started. Copy it in mirror mode (without "
	    "--no-mirror), which keeps that volume current, or add --force to accept the "
	    "risk", name, name);
	return EXIT_FAIL;
}

int cmd_copy(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct plan p;
	int r;

	(void)argc;
	/* Mirror unless told otherwise: the origin stays current for abort. */
	o->mirror = !o->no_mirror;
	r = copy_lvm_check(argv[0], o);
	if (r)
		return r;
	r = plan_stream(&p, cmd, o, argv[0], true);
	if (!r)
		r = copy_switch(&p);
	if (!r) {
		copy_started(&p);
		if (o->finish)
			r = wait_and_finish(p.name, p.dest.path, o);
	}
	plan_free(&p);
	return r;
}

/*---------------------------------------------------------------------------*/
/* Messages */
static int send_message(const char *name, const char *msg)
{
	struct stream_table t;
	uint64_t len;

	if (stream_get_table(name, &t, &len))
		return EXIT_FAIL;
	dmx_kmsg_mark();
	if (dmx_message(name, msg)) {
		explain_refusal(name);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int cmd_message(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	return send_message(argv[0], cmd->name);
}

/* set: the messages of the options given, in the order of set's help. */
static unsigned int set_messages(const struct opts *o, char msgs[][64])
{
	unsigned int n = 0;

	if (o->rate_set)
		snprintf(msgs[n++], 64, STREAM_MSG_RATE " %" PRIu64, o->rate_kib);
	if (o->min_rate_set)
		snprintf(msgs[n++], 64, STREAM_MSG_MIN_RATE " %" PRIu64, o->min_rate_kib);
	if (o->max_rate_set)
		snprintf(msgs[n++], 64, STREAM_MSG_MAX_RATE " %" PRIu64, o->max_rate_kib);
	if (o->max_inflight)
		snprintf(msgs[n++], 64, STREAM_MSG_MAX_INFLIGHT " %" PRIu64, o->max_inflight);
	if (o->copy_on_read_set >= 0)
		snprintf(msgs[n++], 64, STREAM_MSG_COPY_ON_READ " %s",
			 o->copy_on_read_set ? STREAM_MSG_ON : STREAM_MSG_OFF);
	return n;
}

int cmd_set(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	char msgs[5][64];
	struct stream_table t;
	unsigned int n, i, j;
	uint64_t len;

	(void)argc;
	n = set_messages(o, msgs);
	if (!n)
		return usage_error(cmd, "nothing to set: give --rate, --min-rate, --max-rate, "
				   "--max-inflight or --copy-on-read");
	if (stream_get_table(argv[0], &t, &len) || check_target_options(o))
		return EXIT_FAIL;
	for (i = 0; i < n; i++) {
		dmx_kmsg_mark();
		if (!dmx_message(argv[0], msgs[i]))
			continue;
		explain_refusal(argv[0]);
		err("%s: '%s' refused; %s", argv[0], msgs[i],
		    i ? "these were sent before it:" : "nothing changed");
		for (j = 0; j < i; j++)
			err("  %s", msgs[j]);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int cmd_rate(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	char *name = argv[0], msg[64];
	int r;

	(void)argc;
	if ((r = rate_arg(cmd, argv[1], &o->rate_kib)))
		return r;
	snprintf(msg, sizeof(msg), "rate %" PRIu64, o->rate_kib);
	return send_message(name, msg);
}
