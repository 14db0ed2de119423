// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream - create, follow and finish dm-stream devices.
 *
 * One command per workflow: `create` a stream device, `copy` a dm device in
 * use onto new storage, `finish` a complete stream by switching it to
 * `linear` on its destination; `status`, `wait`, the messages, and offline
 * `check` and `dump` of a metadata device. See dmstream(8)
 * (Documentation/dmstream.8.rst) and the exit codes in util.h.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "stream-format.h"
#include "stream-interface.h"
#include "cli.h"
#include "dm.h"
#include "follow.h"
#include "meta.h"
#include "status.h"
#include "util.h"

#define DMSTREAM_VERSION	"1.0.0"

/* The helper origin of `copy`: NAME-origin, with a uuid starting so. */
#define ORIGIN_SUFFIX		"-origin"
#define ORIGIN_UUID_PREFIX	"DMSTREAM-ORIGIN-"

#define STR(x)			#x
#define XSTR(x)			STR(x)

/*---------------------------------------------------------------------------*/
/* Options */
enum opt_id {
	OPT_ORIGIN = 1, OPT_DEST, OPT_META, OPT_REGION_SIZE, OPT_RATE, OPT_MAX_INFLIGHT,
	OPT_PAUSED, OPT_FORCE, OPT_FINISH, OPT_WATCH, OPT_JSON, OPT_INTERVAL, OPT_TIMEOUT,
	OPT_PROGRESS, OPT_QUIET, OPT_SB_ONLY, OPT_IGNORE_NONFATAL, OPT_HELP,
	OPT_MAX
};

#define O(x)	(1U << (x))

static const struct option all_options[] = {
	{ "origin", required_argument, NULL, OPT_ORIGIN },
	{ "dest", required_argument, NULL, OPT_DEST },
	{ "meta", required_argument, NULL, OPT_META },
	{ "region-size", required_argument, NULL, OPT_REGION_SIZE },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "paused", no_argument, NULL, OPT_PAUSED },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "finish", no_argument, NULL, OPT_FINISH },
	{ "watch", no_argument, NULL, OPT_WATCH },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "super-block-only", no_argument, NULL, OPT_SB_ONLY },
	{ "ignore-non-fatal-errors", no_argument, NULL, OPT_IGNORE_NONFATAL },
	{ "help", no_argument, NULL, OPT_HELP },
};

static const struct command *find_command(const char *name);
static void usage_all(FILE *f);

/*---------------------------------------------------------------------------*/
/* Helpers */
int usage_error(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s%s%s: ", progname, cmd ? " " : "", cmd ? cmd->name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd)
		fprintf(stderr, "usage: %s %s %s\nTry '%s %s --help'.\n", progname, cmd->name,
			cmd->args, progname, cmd->name);
	else
		fprintf(stderr, "Try '%s --help'.\n", progname);
	return EXIT_USAGE;
}

/* dm names: what dm-ioctl accepts, also given as /dev/mapper/NAME. */
static int check_name(const struct command *cmd, char **name)
{
	static const char prefix[] = "/dev/mapper/";

	if (!strncmp(*name, prefix, sizeof(prefix) - 1))
		*name += sizeof(prefix) - 1;
	if (!**name || strlen(*name) >= 128 || strchr(*name, '/') || !strcmp(*name, ".") ||
	    !strcmp(*name, ".."))
		return usage_error(cmd, "invalid device name '%s'", *name);
	return 0;
}

/*
 * Checks that the kernel has a stream target we know. A target that is not
 * loaded yet may still be loaded on demand by the table load (the kernel
 * asks for module dm-stream), so only a wrong version fails here.
 */
static int check_target(bool *present)
{
	uint32_t v[3];
	int r = dmx_target_version(STREAM_TARGET_NAME, v);

	*present = r == 1;
	if (r < 0)
		return -1;
	if (r == 1 && v[0] != STREAM_TARGET_VERSION_MAJOR) {
		err("the kernel's stream target is version %u.%u.%u; this tool knows %u.x",
		    v[0], v[1], v[2], STREAM_TARGET_VERSION_MAJOR);
		return -1;
	}
	return 0;
}

/* After a refused table: the kernel's reason, and a hint when no target. */
static void explain_refusal(const char *what)
{
	char *reason = dmx_kmsg_reason();
	bool present;

	if (reason)
		err("%s: the kernel says: %s", what, reason);
	free(reason);
	if (!check_target(&present) && !present)
		err("the kernel has no 'stream' target: load the dm-stream module "
		    "(modprobe dm-stream, or insmod dm-stream/dm-stream.ko)");
}

int rate_arg(const struct command *cmd, const char *arg, uint64_t *kib)
{
	switch (parse_rate_kib(arg, kib)) {
	case 0:
		return 0;
	case -2:
		return usage_error(cmd, "rate '%s' is too large: the kernel takes at most %llu "
				   "KiB/s (just under 4T/s)", arg, (unsigned long long)STREAM_MAX_RATE_KIB);
	default:
		return usage_error(cmd, "invalid rate '%s': e.g. 50M/s, 512k, 0 for no limit",
				   arg);
	}
}

static int region_sectors(const struct command *cmd, const struct opts *o, uint64_t *sectors)
{
	uint64_t b = o->region_bytes ? o->region_bytes : STREAM_DEFAULT_REGION_SECTORS * 512;

	if (b % 512 || b / 512 < STREAM_MIN_REGION_SECTORS ||
	    b / 512 > STREAM_MAX_REGION_SECTORS || ((b / 512) & (b / 512 - 1)))
		return usage_error(cmd, "invalid region size %" PRIu64
				   " bytes: a power of two from 4k to 1G", b);
	*sectors = b / 512;
	return 0;
}

/* "<#opt args> <opt args>*" for a table line. */
static void table_opts(const struct opts *o, char *buf, size_t len)
{
	char words[128] = "";
	unsigned int n = 0;

	if (o->paused) {
		strcat(words, " " STREAM_OPT_PAUSED);
		n++;
	}
	if (o->rate_set && o->rate_kib) {
		snprintf(words + strlen(words), sizeof(words) - strlen(words), " " STREAM_OPT_RATE " %" PRIu64,
			 o->rate_kib);
		n += 2;
	}
	if (o->max_inflight) {
		snprintf(words + strlen(words), sizeof(words) - strlen(words),
			 " " STREAM_OPT_MAX_INFLIGHT " %" PRIu64, o->max_inflight);
		n += 2;
	}
	snprintf(buf, len, "%u%s", n, words);
}

static int check_sizes(const char *what, const struct blockdev *dest, const struct blockdev *meta,
		       uint64_t len, uint64_t region)
{
	uint64_t nr_regions = (len + region - 1) / region, needed;
	char a[32], b[32];

	if (dest->size < len * 512) {
		err("%s: destination %s (%s) is smaller than %s (%s)", what, dest->path,
		    fmt_bytes(dest->size, a, sizeof(a)), what, fmt_bytes(len * 512, b, sizeof(b)));
		return -1;
	}
	if (nr_regions > STREAM_MAX_REGIONS) {
		err("%s: %" PRIu64 " regions is too many: use a larger --region-size", what,
		    nr_regions);
		return -1;
	}
	needed = stream_metadata_blocks(nr_regions) * STREAM_BLOCK_SIZE;
	if (meta->size < needed) {
		err("%s: metadata device %s too small: %" PRIu64 " regions need %s (%" PRIu64
		    " sectors), it has %s", what, meta->path, nr_regions,
		    fmt_bytes(needed, a, sizeof(a)), needed / 512,
		    fmt_bytes(meta->size, b, sizeof(b)));
		return -1;
	}
	return 0;
}

static bool same_dev(const struct blockdev *a, const struct blockdev *b)
{
	return a->major == b->major && a->minor == b->minor;
}

static int check_free(const struct blockdev *bd, const char *role)
{
	if (blockdev_busy(bd)) {
		err("%s device %s is in use (mounted, mapped or open exclusively)", role, bd->path);
		return -1;
	}
	return 0;
}

/* A meta_scan_ops.problem that keeps the first fatal problem, in @ctx. */
static void note_first_fatal(void *ctx, enum meta_severity sev, const char *msg)
{
	char *first = ctx;

	if (sev == META_FATAL && !first[0])
		snprintf(first, 512, "%s", msg);
}

/*
 * Before a table is made over @meta: blank is fine; metadata of this
 * geometry is continued (create only); anything else needs --force, which
 * clears block 0 so that the kernel formats the device.
 */
static int prepare_meta(const struct blockdev *meta, const struct meta_geometry *geo,
			bool allow_continue, bool force)
{
	char first_fatal[512] = "";
	struct meta_scan_ops ops = { .ctx = first_fatal, .problem = note_first_fatal };
	struct meta_scan_result res;
	const char *why = NULL;
	char whybuf[1024];
	bool in_use;
	uint64_t size;
	int fd, r = -1;

	fd = meta_open(meta->path, true, &in_use, &size);
	if (fd < 0)
		return -1;
	if (in_use) {
		err("metadata device %s is in use", meta->path);
		goto out;
	}
	if (meta_scan(fd, size, false, &ops, &res))
		goto out;
	if (res.sb.blank) {
		r = 0;
		goto out;
	}
	if (res.sb.magic != STREAM_MAGIC) {
		why = "it holds something else (no dm-stream superblock)";
	} else if (meta_sb_header_problem(&res.sb)) {
		snprintf(whybuf, sizeof(whybuf), "its dm-stream superblock is damaged (%s)",
			 meta_sb_header_problem(&res.sb));
		why = whybuf;
	} else if (!allow_continue) {
		snprintf(whybuf, sizeof(whybuf), "a copy needs a blank metadata device, and it "
			 "holds dm-stream metadata (%" PRIu64 "/%" PRIu64 " regions copied)",
			 res.sb.nr_copied, res.sb.nr_regions);
		why = whybuf;
	} else if (meta_sb_geometry_mismatch(&res.sb, geo)) {
		snprintf(whybuf, sizeof(whybuf),
			 "it holds dm-stream metadata for another geometry (%s: region size %"
			 PRIu32 ", length %" PRIu64 ", origin %" PRIu64 ", destination %" PRIu64
			 " sectors)", meta_sb_geometry_mismatch(&res.sb, geo),
			 res.sb.region_size, res.sb.target_size, res.sb.origin_size,
			 res.sb.dest_size);
		why = whybuf;
	} else if (res.fatal) {
		snprintf(whybuf, sizeof(whybuf), "its dm-stream metadata is damaged (%s; see '%s check %s')",
			 first_fatal, progname, meta->path);
		why = whybuf;
	} else {
		printf("%s: continuing from earlier metadata: %" PRIu64 "/%" PRIu64
		       " regions copied\n", meta->path, res.sb.nr_copied, res.sb.nr_regions);
		r = 0;
		goto out;
	}

	if (!force) {
		err("refusing metadata device %s: %s; --force overwrites it", meta->path, why);
		r = -2;
		goto out;
	}
	warn("overwriting metadata device %s: %s", meta->path, why);
	r = meta_wipe(fd);
out:
	close(fd);
	return r;
}

/* A table line of one target. */
static void one_target(struct dmx_table *tbl, uint64_t len, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void one_target(struct dmx_table *tbl, uint64_t len, const char *type, const char *fmt, ...)
{
	char params[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(params, sizeof(params), fmt, ap);
	va_end(ap);
	memset(tbl, 0, sizeof(*tbl));
	dmx_table_add(tbl, 0, len, type, params);
}

/*---------------------------------------------------------------------------*/
/* create */
static int cmd_create(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct blockdev origin, dest, meta;
	struct meta_geometry geo;
	struct dmx_table tbl;
	struct dmx_info info;
	char *name = argv[0], opts[160], a[32], b[32];
	uint64_t region = 0, len;
	bool present;
	int r;

	(void)argc;
	if (!o->origin || !o->dest || !o->meta)
		return usage_error(cmd, "--origin, --dest and --meta are all needed");
	if ((r = region_sectors(cmd, o, &region)))
		return r;

	if (blockdev_get(o->origin, &origin) || blockdev_get(o->dest, &dest) ||
	    blockdev_get(o->meta, &meta))
		return EXIT_FAIL;
	if (same_dev(&origin, &dest) || same_dev(&origin, &meta) || same_dev(&dest, &meta)) {
		err("the origin, destination and metadata devices must all differ");
		return EXIT_FAIL;
	}
	if (region * 512 % origin.lbs || region * 512 % dest.lbs || region * 512 % meta.lbs) {
		err("region size %s is not a multiple of a device's logical block size",
		    fmt_bytes(region * 512, a, sizeof(a)));
		return EXIT_FAIL;
	}
	len = origin.size / 512;
	if (!len) {
		err("origin %s is empty", origin.path);
		return EXIT_FAIL;
	}
	if (check_sizes("the origin", &dest, &meta, len, region))
		return EXIT_FAIL;

	if (dmx_info(name, &info))
		return EXIT_FAIL;
	if (info.exists) {
		err("%s already exists", name);
		return EXIT_FAIL;
	}
	if (check_target(&present))
		return EXIT_FAIL;
	if (check_free(&dest, "destination") || check_free(&meta, "metadata"))
		return EXIT_FAIL;

	geo = (struct meta_geometry){ .region_size = region, .target_size = len,
				      .origin_size = origin.size / 512,
				      .dest_size = dest.size / 512 };
	r = prepare_meta(&meta, &geo, true, o->force);
	if (r)
		return r == -2 ? EXIT_METADATA : EXIT_FAIL;

	table_opts(o, opts, sizeof(opts));
	one_target(&tbl, len, STREAM_TARGET_NAME, "%u:%u %u:%u %u:%u %" PRIu64 " %s", meta.major,
		   meta.minor, dest.major, dest.minor, origin.major, origin.minor, region, opts);
	dmx_kmsg_mark();
	r = dmx_create(name, NULL, &tbl, false, false);
	dmx_table_free(&tbl);
	if (r) {
		explain_refusal(name);
		return EXIT_FAIL;
	}
	printf("%s: streaming %s from %s into %s in %s regions%s\n", name,
	       fmt_bytes(len * 512, a, sizeof(a)), origin.path, dest.path,
	       fmt_bytes(region * 512, b, sizeof(b)), o->paused ? " (paused)" : "");
	return EXIT_OK;
}

/*---------------------------------------------------------------------------*/
/* finish */

/* The helper origin that `copy` made for @t, if that is what it uses. */
static bool helper_origin(const char *name, const struct stream_table *t, char *helper,
			  size_t len)
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
 * A check made while the device is suspended, between the old table's
 * postsuspend and the resume (see switch_table()). Returns 0 to go on, or
 * non-zero with a reason in @why, to go back to the old table. It must not
 * print: stdout or stderr may be on the suspended device.
 */
typedef int (*suspended_check_fn)(const char *name, void *arg, char *why, size_t len);

/*
 * Swaps @tbl in for @name's live table: load, suspend, @check (when not
 * NULL), resume. On failure the inactive table is cleared and @name resumed
 * on its old table. Nothing is printed while @name is suspended, since the
 * terminal or log file may be on it: the messages wait for the resume.
 * Returns 0, -1 when the switch failed, 1 when @check refused (its reason
 * printed).
 */
static int switch_table(const char *name, const struct dmx_table *tbl, const char *what,
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

/*
 * Run while suspended, after the stream's postsuspend made its final
 * commit: a commit or destination flush that failed there shows as ro or
 * fail mode.
 */
static int finish_check(const char *name, void *arg, char *why, size_t len)
{
	struct stream_status st;
	struct dmx_table tbl;
	char reason[384];
	int r = -1;

	(void)arg;
	/* stream_get() would print its errors; this may not. */
	if (dmx_status(name, &tbl)) {
		snprintf(why, len, "%s: cannot read its status after the suspend", name);
		return -1;
	}
	if (tbl.nr != 1 || strcmp(tbl.t[0].type, STREAM_TARGET_NAME) ||
	    stream_status_parse(tbl.t[0].params, tbl.t[0].len, &st))
		snprintf(why, len, "%s: unexpected status after the suspend", name);
	else if (unfinishable(name, &st, reason, sizeof(reason)))
		snprintf(why, len, "%s: the final commit at the suspend failed: %s", name,
			 reason);
	else
		r = 0;
	dmx_table_free(&tbl);
	return r;
}

static int finish(const char *name)
{
	struct stream_table t;
	struct stream_status st;
	struct dmx_info info;
	struct dmx_table tbl;
	char helper[160] = "", d[32], m[32], why[512];
	bool has_helper;
	uint64_t len;
	int r;

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
	if (stream_get_table(name, &t, &len) || stream_get(name, &st, &info))
		return EXIT_FAIL;
	r = unfinishable(name, &st, why, sizeof(why));
	if (r) {
		err("%s; not finished, it is still a stream", why);
		return r;
	}
	has_helper = helper_origin(name, &t, helper, sizeof(helper));

	/* The stream commits at the suspend, so its health is checked again
	 * between the suspend and the resume. */
	one_target(&tbl, len, "linear", "%u:%u 0", t.dest_major, t.dest_minor);
	r = switch_table(name, &tbl, name, finish_check, NULL);
	dmx_table_free(&tbl);
	if (r > 0) {
		err("%s: not finished: it is resumed on its stream table, still a stream", name);
		return EXIT_COPY_FAILED;
	}
	if (r) {
		err("%s: not finished; it is still a stream", name);
		return EXIT_FAIL;
	}
	printf("%s: finished: linear on %s; metadata device %s is free\n", name,
	       devt_str(t.dest_major, t.dest_minor, d, sizeof(d)),
	       devt_str(t.meta_major, t.meta_minor, m, sizeof(m)));
	if (has_helper) {
		if (dmx_remove(helper)) {
			err("%s: finished, but its helper origin %s could not be removed: "
			    "'dmsetup remove %s' later", name, helper, helper);
			return EXIT_FAIL;
		}
		printf("%s: removed the helper origin %s\n", name, helper);
	}
	return EXIT_OK;
}

static int cmd_finish(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)cmd;
	(void)o;
	(void)argc;
	return finish(argv[0]);
}

/*---------------------------------------------------------------------------*/
/* copy */

/* Logical block size of a block device, from sysfs. */
static unsigned int devt_lbs(unsigned int major, unsigned int minor)
{
	char path[96];
	unsigned int lbs = 512;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/logical_block_size", major, minor);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%u", &lbs) != 1)
			lbs = 512;
		fclose(f);
	}
	return lbs;
}

static void random_uuid(char *buf, size_t len)
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

/* Is @tbl one linear segment at offset 0 of a device? Then that is the origin. */
static bool direct_origin(const struct dmx_table *tbl, unsigned int *major, unsigned int *minor)
{
	char dev[64];
	uint64_t offset;
	char c;

	if (tbl->nr != 1 || strcmp(tbl->t[0].type, "linear"))
		return false;
	if (sscanf(tbl->t[0].params, "%63s %" SCNu64 " %c", dev, &offset, &c) != 2 || offset)
		return false;
	return !parse_devt(dev, major, minor);
}

static int cmd_copy(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct dmx_table old = { 0 }, tbl = { 0 };
	struct blockdev dest, meta;
	struct meta_geometry geo;
	struct dmx_info info, oi;
	char *name = argv[0], helper[160] = "", uuid[64], opts[160], a[32], b[32];
	unsigned int omaj, omin, i, lbs;
	uint64_t region = 0, len, pos = 0;
	bool present, made_helper = false;
	int r;

	(void)argc;
	if (!o->dest || !o->meta)
		return usage_error(cmd, "--dest and --meta are both needed");
	if ((r = region_sectors(cmd, o, &region)))
		return r;

	if (dmx_info(name, &info))
		return EXIT_FAIL;
	if (!info.exists) {
		err("%s: no such device", name);
		return EXIT_FAIL;
	}
	if (info.suspended || info.inactive_table || !info.live_table) {
		err("%s is %s: it must be active, with no inactive table", name,
		    info.suspended ? "suspended" : info.live_table ? "carrying an inactive table" :
		    "without a table");
		return EXIT_FAIL;
	}
	if (dmx_table(name, &old))
		return EXIT_FAIL;
	for (i = 0; i < old.nr; i++) {
		if (old.t[i].start != pos) {
			err("%s: its table has a hole at sector %" PRIu64, name, pos);
			goto fail;
		}
		pos += old.t[i].len;
		if (!strcmp(old.t[i].type, STREAM_TARGET_NAME)) {
			err("%s is a stream device already: '%s finish %s' first", name, progname,
			    name);
			goto fail;
		}
	}
	len = dmx_table_len(&old);

	if (blockdev_get(o->dest, &dest) || blockdev_get(o->meta, &meta))
		goto fail;
	if (same_dev(&dest, &meta)) {
		err("the destination and metadata devices must differ");
		goto fail;
	}
	if ((dest.major == info.major && dest.minor == info.minor) ||
	    (meta.major == info.major && meta.minor == info.minor)) {
		err("%s cannot be copied onto itself", name);
		goto fail;
	}
	lbs = devt_lbs(info.major, info.minor);
	if (region * 512 % lbs || region * 512 % dest.lbs || region * 512 % meta.lbs) {
		err("region size %s is not a multiple of a device's logical block size",
		    fmt_bytes(region * 512, a, sizeof(a)));
		goto fail;
	}
	if (check_sizes(name, &dest, &meta, len, region))
		goto fail;
	if (check_target(&present))
		goto fail;
	if (check_free(&dest, "destination") || check_free(&meta, "metadata"))
		goto fail;

	/* The origin: the device under a plain linear table, or a helper
	 * device with the same table, made while NAME still runs. */
	if (!direct_origin(&old, &omaj, &omin)) {
		if (strlen(name) + strlen(ORIGIN_SUFFIX) >= 128) {
			err("%s: name too long for a helper %s%s", name, name, ORIGIN_SUFFIX);
			goto fail;
		}
		snprintf(helper, sizeof(helper), "%s%s", name, ORIGIN_SUFFIX);
		if (dmx_info(helper, &oi))
			goto fail;
		if (oi.exists) {
			err("%s already exists: a helper of an earlier copy? Remove it first",
			    helper);
			goto fail;
		}
	}
	if (!helper[0] && ((dest.major == omaj && dest.minor == omin) ||
			   (meta.major == omaj && meta.minor == omin))) {
		err("%s is the device under %s", dest.major == omaj && dest.minor == omin ?
		    dest.path : meta.path, name);
		goto fail;
	}

	/* Geometry for the metadata check: origin size is known only after the
	 * helper exists; the check needs blank metadata anyway. */
	geo = (struct meta_geometry){ .region_size = region, .target_size = len,
				      .dest_size = dest.size / 512 };
	r = prepare_meta(&meta, &geo, false, o->force);
	if (r) {
		dmx_table_free(&old);
		return r == -2 ? EXIT_METADATA : EXIT_FAIL;
	}

	if (helper[0]) {
		random_uuid(uuid, sizeof(uuid));
		if (dmx_create(helper, uuid, &old, true, true)) {
			err("%s: cannot create the helper origin %s", name, helper);
			goto fail;
		}
		made_helper = true;
		if (dmx_info(helper, &oi) || !oi.exists) {
			err("%s: the helper origin %s vanished", name, helper);
			goto rollback;
		}
		omaj = oi.major;
		omin = oi.minor;
	}

	table_opts(o, opts, sizeof(opts));
	one_target(&tbl, len, STREAM_TARGET_NAME, "%u:%u %u:%u %u:%u %" PRIu64 " %s", meta.major,
		   meta.minor, dest.major, dest.minor, omaj, omin, region, opts);
	if (switch_table(name, &tbl, name, NULL, NULL))
		goto rollback;
	dmx_table_free(&tbl);
	dmx_table_free(&old);

	printf("%s: copying %s onto %s in %s regions (origin %s%s%u:%u%s)\n", name,
	       fmt_bytes(len * 512, a, sizeof(a)), dest.path,
	       fmt_bytes(region * 512, b, sizeof(b)), helper[0] ? helper : "", helper[0] ? ", " : "",
	       omaj, omin, o->rate_set && o->rate_kib ? ", rate limited" : "");
	fflush(stdout);
	if (!o->finish)
		return EXIT_OK;

	r = follow_stream(name, o->timeout, !o->quiet, o->json, o->interval);
	if (r == EXIT_COPY_FAILED) {
		err("%s is still a stream onto %s, not finished", name, dest.path);
		return r;
	}
	if (r != EXIT_OK) {
		err("%s keeps streaming onto %s: '%s wait %s' and '%s finish %s' later", name,
		    dest.path, progname, name, progname, name);
		return r;
	}
	return finish(name);

rollback:
	/* NAME is on its original table again (switch_table saw to it); the
	 * helper goes, unless NAME uses it after all. */
	dmx_table_free(&tbl);
	if (made_helper) {
		struct dmx_table now;
		bool streaming = false;

		if (!dmx_table(name, &now)) {
			streaming = now.nr == 1 && !strcmp(now.t[0].type, STREAM_TARGET_NAME);
			dmx_table_free(&now);
		}
		if (streaming)
			err("%s: is streaming after all; keeping %s", name, helper);
		else if (dmx_remove(helper))
			err("%s: could not remove the helper origin %s", name, helper);
	}
	err("%s: not copied; it is back on its original table", name);
fail:
	dmx_table_free(&old);
	return EXIT_FAIL;
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

static int cmd_message(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	return send_message(argv[0], cmd->name);
}

static int cmd_rate(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	char *name = argv[0], msg[64];
	int r;

	(void)argc;
	if ((r = rate_arg(cmd, argv[1], &o->rate_kib)))
		return r;
	snprintf(msg, sizeof(msg), "rate %" PRIu64, o->rate_kib);
	return send_message(name, msg);
}

/*---------------------------------------------------------------------------*/
/* help, version */
static int cmd_help(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	const struct command *c;

	(void)cmd;
	(void)o;
	if (!argc) {
		usage_all(stdout);
		return EXIT_OK;
	}
	c = find_command(argv[0]);
	if (!c)
		return usage_error(NULL, "unknown command '%s'", argv[0]);
	printf("usage: %s %s %s\n\n%s\n%s", progname, c->name, c->args, c->summary,
	       c->details ? c->details : "");
	return EXIT_OK;
}

static int cmd_version(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)cmd;
	(void)o;
	(void)argc;
	(void)argv;
	printf("%s %s (stream target %u.x, metadata version %u)\n", progname, DMSTREAM_VERSION,
	       STREAM_TARGET_VERSION_MAJOR, STREAM_VERSION);
	return EXIT_OK;
}

/*---------------------------------------------------------------------------*/
/* The command table */
#define SIZES_HELP \
	"Sizes take k, M, G, T suffixes (powers of 1024) or s (512-byte sectors);\n" \
	"plain numbers are bytes. Rates are sizes per second: 50M/s, 512k; 0 means\n" \
	"no limit. The kernel takes KiB/s: a rate is rounded up to whole KiB/s, and\n" \
	"at most 4294967295k (just under 4T/s) is accepted.\n"

static const struct command commands[] = {
	{ "create", "NAME --origin DEV --dest DEV --meta DEV [--region-size SIZE] [--rate RATE] [--max-inflight N] [--paused] [--force]",
	  "Create stream device NAME over ORIGIN, copying it into DEST in the background.",
	  O(OPT_ORIGIN) | O(OPT_DEST) | O(OPT_META) | O(OPT_REGION_SIZE) | O(OPT_RATE) |
	  O(OPT_MAX_INFLIGHT) | O(OPT_PAUSED) | O(OPT_FORCE), 1, 1, true, cmd_create,
	  "\n  --origin DEV        the read-only source; the device is as long as it\n"
	  "  --dest DEV          receives the copy and every write; at least as long\n"
	  "  --meta DEV          metadata; blank (formatted by the kernel), or metadata\n"
	  "                      of this same geometry (the stream continues)\n"
	  "  --region-size SIZE  unit of copying, a power of two, 4k to 1G ("
	  XSTR(STREAM_DEFAULT_REGION_SECTORS) "s)\n"
	  "  --rate RATE         limit background copying (default: none)\n"
	  "  --max-inflight N    background regions in flight, " XSTR(STREAM_MIN_MAX_INFLIGHT) " to "
	  XSTR(STREAM_MAX_MAX_INFLIGHT) " (" XSTR(STREAM_DEFAULT_MAX_INFLIGHT) ")\n"
	  "  --paused            create paused; 'dmstream continue NAME' starts it\n"
	  "  --force             overwrite a metadata device holding anything else\n\n"
	  SIZES_HELP },
	{ "status", "NAME [--watch] [--json] [--interval SEC]",
	  "Show copied/total, percent, current rate, ETA, state, mode and errors.",
	  O(OPT_WATCH) | O(OPT_JSON) | O(OPT_INTERVAL), 1, 1, true, cmd_status,
	  "\n  --watch             keep showing it until the copy completes or fails: one\n"
	  "                      updating progress bar on a terminal, else one line per\n"
	  "                      update; exits as 'wait' does\n"
	  "  --json              one JSON object per line\n"
	  "  --interval SEC      time between updates, and over which the rate is\n"
	  "                      measured (1; 0 skips the rate of a one-shot status)\n" },
	{ "wait", "NAME [--timeout SEC] [--progress [--json] [--interval SEC]]",
	  "Sleep on NAME's dm events until its copy is complete, fails, or the timeout.",
	  O(OPT_TIMEOUT) | O(OPT_PROGRESS) | O(OPT_INTERVAL) | O(OPT_JSON), 1, 1, true, cmd_wait,
	  "\n  --timeout SEC       give up after SEC seconds (exit 5)\n"
	  "  --progress          show progress meanwhile, as 'status --watch' (with\n"
	  "                      its --json and --interval)\n\n"
	  "Exits 0 when complete; 4 when the copy failed (ro or fail mode, complete or\n"
	  "not: metadata or destination failure; or stalled on copy errors), with the\n"
	  "reason.\n" },
	{ "finish", "NAME",
	  "Switch a complete NAME to 'linear' on its destination; remove the helpers.",
	  0, 1, 1, true, cmd_finish,
	  "\nRefuses unless NAME is healthy: exit 4 in ro or fail mode (its metadata or\n"
	  "destination failed), exit 6 when the copy is not complete. Loads the linear\n"
	  "table, then suspends NAME, which makes the stream's final commit, and checks\n"
	  "the status again: if the mode is no longer rw, the linear table is dropped\n"
	  "and NAME resumed as a stream (exit 4); else NAME is resumed on the linear\n"
	  "table. On any failure NAME stays a stream. Removes the helper origin that\n"
	  "'copy' made. The metadata device is free afterwards.\n" },
	{ "copy", "NAME --dest DEV --meta DEV [--region-size SIZE] [--rate RATE] [--max-inflight N] [--force] [--finish [--timeout SEC] [--quiet | --json] [--interval SEC]]",
	  "Live copy of dm device NAME, in use, onto DEST: NAME becomes a stream.",
	  O(OPT_DEST) | O(OPT_META) | O(OPT_REGION_SIZE) | O(OPT_RATE) | O(OPT_MAX_INFLIGHT) |
	  O(OPT_FORCE) | O(OPT_FINISH) | O(OPT_TIMEOUT) | O(OPT_QUIET) | O(OPT_INTERVAL) |
	  O(OPT_JSON), 1, 1, true, cmd_copy,
	  "\nNAME's table becomes the origin: the device under it when it is one linear\n"
	  "segment at offset 0, else a read-only helper device NAME-origin with the\n"
	  "same table. NAME is reloaded as a stream over DEST and that origin; its\n"
	  "users see a suspend and nothing else. On a failure before the switch, NAME\n"
	  "stays on its original table.\n\n"
	  "  --dest DEV          the new storage, at least as long as NAME\n"
	  "  --meta DEV          a blank metadata device (--force overwrites one)\n"
	  "  --finish            wait with progress, then 'finish' (--timeout as for\n"
	  "                      'wait'; --json, --interval as for 'status --watch';\n"
	  "                      --quiet hides the progress)\n"
	  "  --region-size, --rate, --max-inflight, --force: as for 'create'\n\n"
	  SIZES_HELP },
	{ "pause", "NAME", "Stop starting background copies.", 0, 1, 1, true, cmd_message, NULL },
	{ "continue", "NAME",
	  "Resume background copies; after a stall, retry the failed regions.",
	  0, 1, 1, true, cmd_message, NULL },
	{ "rate", "NAME RATE", "Set the background copy rate limit (0: none).",
	  0, 2, 2, true, cmd_rate, "\n" SIZES_HELP },
	{ "check", "META [--quiet] [--super-block-only] [--ignore-non-fatal-errors]",
	  "Check a metadata device offline: checksums, geometry, bitmap, copied count.",
	  O(OPT_QUIET) | O(OPT_SB_ONLY) | O(OPT_IGNORE_NONFATAL), 1, 1, false, cmd_check,
	  "\n  --quiet                    no output; the exit code only\n"
	  "  --super-block-only         check the superblock only\n"
	  "  --ignore-non-fatal-errors  exit 0 despite damage the kernel tolerates\n"
	  "                             (an invalid slot not in use, say)\n\n"
	  "Problems go to stderr: the first 20 of each kind, then a count of the rest.\n"
	  "META is a block device or a regular file (an image). Exits 0 when the\n"
	  "metadata is clean (or blank), 3 when it has errors, 2 when it cannot be\n"
	  "read or is neither.\n" },
	{ "dump", "META [--json]",
	  "Print a metadata device's superblock, bitmap slots and copied/uncopied regions.",
	  O(OPT_JSON), 1, 1, false, cmd_dump,
	  "\n  --json              one JSON object (see dmstream(8) for its keys)\n\n"
	  "The region ranges go through temporary files in $TMPDIR (/tmp), not memory.\n" },
	{ "help", "[COMMAND]", "Show the commands, or one command's help.", 0, 0, 1, false, cmd_help, NULL },
	{ "version", "", "Show the version.", 0, 0, 0, false, cmd_version, NULL },
};

#define NR_COMMANDS	(sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void usage_all(FILE *f)
{
	size_t i;

	fprintf(f, "usage: %s [-v] COMMAND [ARGS]\n\n"
		"Create, follow and finish dm-stream devices.\n\nCommands:\n", progname);
	for (i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nOptions:\n"
		"  -v, --verbose   more messages (twice: libdevmapper's too)\n"
		"  -h, --help      this text; '%s COMMAND --help' for a command\n"
		"  -V, --version   the version\n\n"
		"Exit codes: 0 success, 1 usage error, 2 failure, 3 metadata damaged or\n"
		"foreign, 4 copy failed, 5 timeout or interrupted, 6 copy not complete.\n"
		"See dmstream(8).\n", progname);
}

/*
 * After getopt_long() returned '?': names the option as the user typed it.
 * optopt is the character of a bad short option; for a long option it is
 * 0 (unknown or ambiguous), or the option's value when it was given a
 * "=VALUE" it does not take. A long option is a whole word, which getopt
 * has stepped past: argv[optind - 1].
 */
static int bad_option(const struct command *cmd, const struct option *longopts, char **argv)
{
	const struct option *lo;

	for (lo = longopts; optopt && lo->name; lo++)
		if (lo->val == optopt && lo->has_arg == no_argument)
			return usage_error(cmd, "option '--%s' takes no value (given '%s')",
					   lo->name, argv[optind - 1]);
	if (optopt > 0 && optopt < 128 && isprint(optopt))
		return usage_error(cmd, "unknown option '-%c'", optopt);
	if (optopt)
		return usage_error(cmd, "unknown option character 0x%02x",
				   (unsigned int)(unsigned char)optopt);
	return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}

/* Parses a command's options and positional arguments into @o. */
static int parse_command(const struct command *cmd, int argc, char **argv, struct opts *o,
			 int *first_arg)
{
	struct option longopts[OPT_MAX + 1];
	size_t i, n = 0;
	int c, nargs, r;

	for (i = 0; i < sizeof(all_options) / sizeof(all_options[0]); i++)
		if (all_options[i].val == OPT_HELP || (cmd->options & O(all_options[i].val)))
			longopts[n++] = all_options[i];
	memset(&longopts[n], 0, sizeof(longopts[n]));

	memset(o, 0, sizeof(*o));
	o->interval = -1;
	optind = 0;	/* full reinitialisation, after main()'s parse */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case OPT_HELP:
			return -EXIT_OK - 100;	/* help requested */
		case OPT_ORIGIN:
			o->origin = optarg;
			break;
		case OPT_DEST:
			o->dest = optarg;
			break;
		case OPT_META:
			o->meta = optarg;
			break;
		case OPT_REGION_SIZE:
			if (parse_size(optarg, &o->region_bytes) || !o->region_bytes)
				return usage_error(cmd, "invalid region size '%s': e.g. 64k, 1M",
						   optarg);
			break;
		case OPT_RATE:
			if ((r = rate_arg(cmd, optarg, &o->rate_kib)))
				return r;
			o->rate_set = true;
			break;
		case OPT_MAX_INFLIGHT:
			if (parse_u64(optarg, STREAM_MIN_MAX_INFLIGHT, STREAM_MAX_MAX_INFLIGHT,
				      &o->max_inflight))
				return usage_error(cmd, "invalid --max-inflight '%s': "
						   XSTR(STREAM_MIN_MAX_INFLIGHT) " to "
						   XSTR(STREAM_MAX_MAX_INFLIGHT),
						   optarg);
			break;
		case OPT_PAUSED:
			o->paused = true;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case OPT_FINISH:
			o->finish = true;
			break;
		case OPT_WATCH:
			o->watch = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_PROGRESS:
			o->progress = true;
			break;
		case OPT_QUIET:
			o->quiet = true;
			break;
		case OPT_SB_ONLY:
			o->sb_only = true;
			break;
		case OPT_IGNORE_NONFATAL:
			o->ignore_nonfatal = true;
			break;
		case OPT_INTERVAL:
			if (parse_seconds(optarg, &o->interval))
				return usage_error(cmd, "invalid --interval '%s': seconds", optarg);
			break;
		case OPT_TIMEOUT:
			if (parse_seconds(optarg, &o->timeout) || o->timeout <= 0)
				return usage_error(cmd, "invalid --timeout '%s': seconds above 0",
						   optarg);
			break;
		case ':':
			return usage_error(cmd, "option '%s' needs an argument", argv[optind - 1]);
		default:
			return bad_option(cmd, longopts, argv);
		}
	}
	nargs = argc - optind;
	if (nargs < cmd->min_args)
		return usage_error(cmd, "missing argument%s", cmd->min_args - nargs > 1 ? "s" : "");
	if (nargs > cmd->max_args)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind + cmd->max_args]);
	*first_arg = optind;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option global[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd;
	struct opts o;
	int c, first = 0, r;

	/* Global options stop at the command ("+"). */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+vhV", global, NULL)) != -1) {
		switch (c) {
		case 'v':
			verbose++;
			break;
		case 'h':
			usage_all(stdout);
			return EXIT_OK;
		case 'V':
			return cmd_version(NULL, NULL, 0, NULL);
		default:
			return bad_option(NULL, global, argv);
		}
	}
	if (optind >= argc) {
		usage_all(stderr);
		return EXIT_USAGE;
	}
	cmd = find_command(argv[optind]);
	if (!cmd)
		return usage_error(NULL, "unknown command '%s'", argv[optind]);

	/* The command's own argv: its name, then its words. GNU getopt
	 * permutes, so options may follow NAME; "--" ends them. */
	argc -= optind;
	argv += optind;
	r = parse_command(cmd, argc, argv, &o, &first);
	if (r == -EXIT_OK - 100) {
		char *self[] = { (char *)cmd->name };

		return cmd_help(NULL, NULL, 1, self);
	}
	if (r)
		return r;
	if (cmd->name_first && (r = check_name(cmd, &argv[first])))
		return r;
	if (meta_crc_selftest())
		return EXIT_FAIL;
	dmx_init();
	return cmd->fn(cmd, &o, argc - first, argv + first);
}
