// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: planning a new stream's devices, for `create` and `copy`.
 *
 * Both make a stream table over a destination and a metadata device; the
 * origin is create's --origin, or what copy's NAME maps today (the device
 * under a plain linear table, else a helper device with NAME's table).
 * plan_stream() checks it all before anything changes, in the order the
 * messages always came: the command line, the source, the devices against
 * each other and the kernel, then the metadata device's contents. The
 * kernel's stream target (its version, its refusals) is here too.
 */
#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stream-format.h"
#include "stream-interface.h"
#include "cli.h"
#include "dm.h"
#include "identity.h"
#include "meta.h"
#include "plan.h"
#include "util.h"

/* The first fatal metadata problem, kept for the refusal's message. */
#define PROBLEM_LEN	512
/* A table line's optional words: every option with the largest numbers. */
#define TABLE_OPTS_LEN	256

/*---------------------------------------------------------------------------*/
/* The kernel's stream target */
/*
 * A target that is not loaded yet may still be loaded on demand by the
 * table load (the kernel asks for module dm-stream), so only a wrong
 * version fails here.
 */
int check_target(bool *present)
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

/* The table options that a 2.1 target brought, the first one @o asks for. */
static const char *options_2_1(const struct opts *o)
{
	if (o->min_rate_set && o->min_rate_kib)
		return "--min-rate";
	if (o->max_rate_set && o->max_rate_kib)
		return "--max-rate";
	if (o->copy_on_read || o->copy_on_read_set >= 0)
		return "--copy-on-read";
	if (o->skip_zeroes)
		return "--skip-zeroes";
	return NULL;
}

int check_target_options(const struct opts *o)
{
	const char *what = options_2_1(o);
	uint32_t v[3];
	int r;

	if (!what)
		return 0;
	r = dmx_target_version(STREAM_TARGET_NAME, v);
	if (r < 0)
		return -1;
	if (r == 1 && v[0] == STREAM_TARGET_VERSION_MAJOR && v[1] < 1) {
		err("%s needs a stream target of version %u.1 or later; the kernel's is %u.%u.%u "
		    "(load the newer dm-stream module)", what, STREAM_TARGET_VERSION_MAJOR, v[0],
		    v[1], v[2]);
		return -1;
	}
	return 0;
}

void explain_refusal(const char *what)
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

/*---------------------------------------------------------------------------*/
/* The command line */
int plan_region(const struct command *cmd, const struct opts *o, uint64_t dflt,
		uint64_t *sectors)
{
	uint64_t b = o->region_bytes ? o->region_bytes : dflt * 512;

	if (b % 512 || b / 512 < STREAM_MIN_REGION_SECTORS ||
	    b / 512 > STREAM_MAX_REGION_SECTORS || ((b / 512) & (b / 512 - 1)))
		return usage_error(cmd, "invalid region size %" PRIu64
				   " bytes: a power of two from 4k to 1G", b);
	*sectors = b / 512;
	return 0;
}

/* Appends " WORD" to @words, or " WORD VALUE" when @value is not NULL. */
static void opt_word(char *words, size_t len, unsigned int *n, const char *word,
		     const uint64_t *value)
{
	size_t used = strlen(words);

	if (value) {
		snprintf(words + used, len - used, " %s %" PRIu64, word, *value);
		*n += 2;
	} else {
		snprintf(words + used, len - used, " %s", word);
		*n += 1;
	}
}

/*
 * "<#opt args> <opt args>*" for a table line, in the order the kernel
 * prints them (stream-interface.h), each only when not the default.
 */
static void table_opts(const struct opts *o, char *buf, size_t len)
{
	char words[TABLE_OPTS_LEN] = "";
	unsigned int n = 0;

	if (o->paused)
		opt_word(words, sizeof(words), &n, STREAM_OPT_PAUSED, NULL);
	if (o->rate_set && o->rate_kib)
		opt_word(words, sizeof(words), &n, STREAM_OPT_RATE, &o->rate_kib);
	if (o->max_inflight)
		opt_word(words, sizeof(words), &n, STREAM_OPT_MAX_INFLIGHT, &o->max_inflight);
	if (o->mirror)
		opt_word(words, sizeof(words), &n, STREAM_OPT_MIRROR, NULL);
	if (o->min_rate_set && o->min_rate_kib)
		opt_word(words, sizeof(words), &n, STREAM_OPT_MIN_RATE, &o->min_rate_kib);
	if (o->max_rate_set && o->max_rate_kib)
		opt_word(words, sizeof(words), &n, STREAM_OPT_MAX_RATE, &o->max_rate_kib);
	if (o->copy_on_read)
		opt_word(words, sizeof(words), &n, STREAM_OPT_COPY_ON_READ, NULL);
	if (o->skip_zeroes)
		opt_word(words, sizeof(words), &n, STREAM_OPT_SKIP_ZEROES, NULL);
	snprintf(buf, len, "%u%s", n, words);
}

/*---------------------------------------------------------------------------*/
/* The devices */
int plan_check_sizes(const char *what, const struct blockdev *dest, const struct blockdev *meta,
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

/* copy: NAME is active, with one table of no holes that is no stream yet. */
static int plan_copy_source(struct plan *p)
{
	struct dmx_info *info = &p->info;
	uint64_t pos = 0;
	unsigned int i;

	if (dmx_info(p->name, info))
		return EXIT_FAIL;
	if (!info->exists) {
		err("%s: no such device", p->name);
		return EXIT_FAIL;
	}
	if (info->suspended || info->inactive_table || !info->live_table) {
		err("%s is %s: it must be active, with no inactive table", p->name,
		    info->suspended ? "suspended" : info->live_table ? "carrying an inactive table" :
		    "without a table");
		return EXIT_FAIL;
	}
	if (dmx_table(p->name, &p->old))
		return EXIT_FAIL;
	for (i = 0; i < p->old.nr; i++) {
		if (p->old.t[i].start != pos) {
			err("%s: its table has a hole at sector %" PRIu64, p->name, pos);
			return EXIT_FAIL;
		}
		pos += p->old.t[i].len;
		if (!strcmp(p->old.t[i].type, STREAM_TARGET_NAME)) {
			err("%s is a stream device already: '%s finish %s' first", p->name, progname,
			    p->name);
			return EXIT_FAIL;
		}
	}
	p->len = dmx_table_len(&p->old);
	return 0;
}

static bool same_dev(const struct blockdev *a, const struct blockdev *b)
{
	return a->major == b->major && a->minor == b->minor;
}

static bool is_devt(const struct blockdev *bd, unsigned int major, unsigned int minor)
{
	return bd->major == major && bd->minor == minor;
}

/* Nothing named @name exists yet; @hint follows "already exists". */
int plan_name_free(const char *name, const char *hint)
{
	struct dmx_info info;

	if (dmx_info(name, &info))
		return -1;
	if (info.exists) {
		err("%s already exists%s", name, hint);
		return -1;
	}
	return 0;
}

int plan_check_free(const struct blockdev *bd, const char *role)
{
	if (blockdev_busy(bd)) {
		err("%s device %s is in use (mounted, mapped or open exclusively)", role, bd->path);
		return -1;
	}
	return 0;
}

/* create: three devices that all differ; copy: two, neither of them NAME. */
static int plan_distinct(const struct plan *p)
{
	if (!p->copy) {
		if (same_dev(&p->origin, &p->dest) || same_dev(&p->origin, &p->meta) ||
		    same_dev(&p->dest, &p->meta)) {
			err("the origin, destination and metadata devices must all differ");
			return -1;
		}
		return 0;
	}
	if (same_dev(&p->dest, &p->meta)) {
		err("the destination and metadata devices must differ");
		return -1;
	}
	if (is_devt(&p->dest, p->info.major, p->info.minor) ||
	    is_devt(&p->meta, p->info.major, p->info.minor)) {
		err("%s cannot be copied onto itself", p->name);
		return -1;
	}
	return 0;
}

/*
 * The devices: distinct, the region size a multiple of their logical block
 * sizes, large enough; the kernel's target; nobody holding dest or meta.
 */
static int plan_devices(struct plan *p)
{
	unsigned int src_lbs;
	bool present;

	if ((!p->copy && blockdev_get(p->o->origin, &p->origin)) ||
	    blockdev_get(p->o->dest, &p->dest) || blockdev_get(p->o->meta, &p->meta))
		return -1;
	if (plan_distinct(p))
		return -1;
	src_lbs = p->copy ? devt_lbs(p->info.major, p->info.minor) : p->origin.lbs;
	if (p->region * 512 % src_lbs || p->region * 512 % p->dest.lbs ||
	    p->region * 512 % p->meta.lbs) {
		char a[32];

		err("region size %s is not a multiple of a device's logical block size",
		    fmt_bytes(p->region * 512, a, sizeof(a)));
		return -1;
	}
	if (!p->copy) {
		p->len = p->origin.size / 512;
		if (!p->len) {
			err("origin %s is empty", p->origin.path);
			return -1;
		}
	}
	if (plan_check_sizes(p->copy ? p->name : "the origin", &p->dest, &p->meta, p->len, p->region))
		return -1;
	if (!p->copy && plan_name_free(p->name, ""))
		return -1;
	if (check_target(&present) || check_target_options(p->o))
		return -1;
	if (plan_check_free(&p->dest, "destination") || plan_check_free(&p->meta, "metadata"))
		return -1;
	return 0;
}

/*
 * copy's origin: the device under a plain linear table, or a helper device
 * NAME-origin with the same table, to be made while NAME still runs.
 */
static int plan_copy_origin(struct plan *p)
{
	if (direct_origin(&p->old, &p->origin_major, &p->origin_minor)) {
		if (is_devt(&p->dest, p->origin_major, p->origin_minor) ||
		    is_devt(&p->meta, p->origin_major, p->origin_minor)) {
			err("%s is the device under %s",
			    is_devt(&p->dest, p->origin_major, p->origin_minor) ? p->dest.path :
			    p->meta.path, p->name);
			return -1;
		}
		return 0;
	}
	if (strlen(p->name) + strlen(ORIGIN_SUFFIX) >= 128) {
		err("%s: name too long for a helper %s%s", p->name, p->name, ORIGIN_SUFFIX);
		return -1;
	}
	snprintf(p->helper, sizeof(p->helper), "%s%s", p->name, ORIGIN_SUFFIX);
	return plan_name_free(p->helper, ": a helper of an earlier copy? Remove it first");
}

/*---------------------------------------------------------------------------*/
/* The metadata device */
/* A meta_scan_ops.problem that keeps the first fatal problem, in @ctx. */
static void note_first_fatal(void *ctx, enum meta_severity sev, const char *msg)
{
	char *first = ctx;

	if (sev == META_FATAL && !first[0])
		snprintf(first, PROBLEM_LEN, "%s", msg);
}

/*
 * Why a table may not go over metadata @res of another stream, in @buf;
 * NULL when it may: metadata of this geometry is continued (create only).
 */
static const char *meta_unusable(const struct meta_scan_result *res,
				 const struct meta_geometry *geo, bool allow_continue,
				 const char *first_fatal, const char *path, char *buf, size_t len)
{
	const struct meta_sb *sb = &res->sb;

	if (sb->magic != STREAM_MAGIC)
		return "it holds something else (no dm-stream superblock)";
	if (meta_sb_header_problem(sb))
		snprintf(buf, len, "its dm-stream superblock is damaged (%s)",
			 meta_sb_header_problem(sb));
	else if (!allow_continue)
		snprintf(buf, len, "a copy needs a blank metadata device, and it holds dm-stream "
			 "metadata (%" PRIu64 "/%" PRIu64 " regions copied)", sb->nr_copied,
			 sb->nr_regions);
	else if (meta_sb_geometry_mismatch(sb, geo))
		snprintf(buf, len,
			 "it holds dm-stream metadata for another geometry (%s: region size %"
			 PRIu32 ", length %" PRIu64 ", origin %" PRIu64 ", destination %" PRIu64
			 " sectors)", meta_sb_geometry_mismatch(sb, geo), sb->region_size,
			 sb->target_size, sb->origin_size, sb->dest_size);
	else if (res->fatal)
		snprintf(buf, len, "its dm-stream metadata is damaged (%s; see '%s check %s')",
			 first_fatal, progname, path);
	else
		return NULL;
	return buf;
}

/*
 * Before a table is made over @meta: blank is fine; metadata of this
 * geometry is continued (create only); anything else needs --force, which
 * clears block 0. *@format is set unless the metadata is continued: it is
 * formatted later, by plan_format_meta(). Returns 0, -1 on an error, -2
 * when refused.
 */
static int prepare_meta(const struct blockdev *meta, const struct meta_geometry *geo,
			bool allow_continue, bool force, bool *format)
{
	char first_fatal[PROBLEM_LEN] = "", whybuf[1024];
	struct meta_scan_ops ops = { .ctx = first_fatal, .problem = note_first_fatal };
	struct meta_scan_result res;
	const char *why;
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
	r = 0;
	*format = true;
	if (res.sb.blank)
		goto out;
	why = meta_unusable(&res, geo, allow_continue, first_fatal, meta->path, whybuf,
			    sizeof(whybuf));
	if (!why) {
		*format = false;
		printf("%s: continuing from earlier metadata: %" PRIu64 "/%" PRIu64
		       " regions copied\n", meta->path, res.sb.nr_copied, res.sb.nr_regions);
	} else if (!force) {
		err("refusing metadata device %s: %s; --force overwrites it", meta->path, why);
		r = -2;
	} else {
		warn("overwriting metadata device %s: %s", meta->path, why);
		r = meta_wipe(fd);
	}
out:
	close(fd);
	return r;
}

/*---------------------------------------------------------------------------*/
/* The plan */
/* --copied RANGES or --copied-from FILE: fresh metadata only. */
static int plan_seed(struct plan *p, const struct command *cmd)
{
	char why[512];
	int r;

	if (!p->o->copied && !p->o->copied_from)
		return 0;
	if (p->o->copied && p->o->copied_from)
		return usage_error(cmd, "--copied and --copied-from exclude each other");
	if (!p->format) {
		err("%s: --copied%s needs blank metadata: %s holds this stream's metadata, which "
		    "says what is copied", p->name, p->o->copied ? "" : "-from", p->meta.path);
		return EXIT_FAIL;
	}
	seed_init(&p->seed, p->len, p->region);
	p->seeded = true;
	r = p->o->copied ? seed_parse(&p->seed, p->o->copied, false, why, sizeof(why)) :
			   seed_parse_file(&p->seed, p->o->copied_from, why, sizeof(why));
	if (r)
		return usage_error(cmd, "%s", why);
	return 0;
}

int plan_stream(struct plan *p, const struct command *cmd, const struct opts *o,
		const char *name, bool copy)
{
	struct meta_geometry geo;
	int r;

	memset(p, 0, sizeof(*p));
	p->name = name;
	p->copy = copy;
	p->o = o;
	if (copy ? !o->dest || !o->meta : !o->origin || !o->dest || !o->meta)
		return usage_error(cmd, copy ? "--dest and --meta are both needed" :
				   "--origin, --dest and --meta are all needed");
	r = plan_region(cmd, o, STREAM_DEFAULT_REGION_SECTORS, &p->region);
	if (!r && copy)
		r = plan_copy_source(p);
	if (r)
		return r;
	if (plan_devices(p) || (copy && plan_copy_origin(p)))
		return EXIT_FAIL;
	if (!copy) {
		p->origin_major = p->origin.major;
		p->origin_minor = p->origin.minor;
	}

	/* copy: the helper's size is known only once it exists, and the
	 * metadata must be blank anyway. */
	geo = (struct meta_geometry){ .region_size = p->region, .target_size = p->len,
				      .origin_size = copy ? 0 : p->origin.size / 512,
				      .dest_size = p->dest.size / 512 };
	r = prepare_meta(&p->meta, &geo, !copy, o->force, &p->format);
	if (r)
		return r == -2 ? EXIT_METADATA : EXIT_FAIL;
	return plan_seed(p, cmd);
}

int plan_prepare_meta(struct plan *p, uint64_t origin_size, bool allow_continue, bool force)
{
	struct meta_geometry geo = { .region_size = p->region, .target_size = p->len,
				     .origin_size = origin_size, .dest_size = p->dest.size / 512 };

	return prepare_meta(&p->meta, &geo, allow_continue, force, &p->format);
}

/* The options of @tbl's stream line, as the identity record keeps them. */
static uint32_t table_id_options(const struct dmx_table *tbl)
{
	char *params = xstrdup(tbl->t[0].params), *w, *save = NULL;
	uint32_t opts = 0;
	unsigned int i = 0;

	for (w = strtok_r(params, " ", &save); w; w = strtok_r(NULL, " ", &save), i++) {
		if (i < 5)	/* meta dest origin region #opts */
			continue;
		if (!strcmp(w, STREAM_OPT_MIRROR))
			opts |= STREAM_ID_OPT_MIRROR;
		else if (!strcmp(w, STREAM_OPT_NO_DISCARD_PASSDOWN))
			opts |= STREAM_ID_OPT_NO_DISCARD_PASSDOWN;
		else if (!strcmp(w, STREAM_OPT_COPY_ON_READ))
			opts |= STREAM_ID_OPT_COPY_ON_READ;
		else if (!strcmp(w, STREAM_OPT_SKIP_ZEROES))
			opts |= STREAM_ID_OPT_SKIP_ZEROES;
	}
	free(params);
	return opts;
}

/* copy's helper origin: NAME's table lines, "" when they do not fit. */
static void origin_table_lines(const struct plan *p, char *buf, size_t len)
{
	size_t n = 0;
	unsigned int i;
	int k;

	buf[0] = '\0';
	for (i = 0; i < p->old.nr; i++) {
		k = snprintf(buf + n, len - n, "%s%" PRIu64 " %" PRIu64 " %s %s", i ? "\n" : "",
			     p->old.t[i].start, p->old.t[i].len, p->old.t[i].type,
			     p->old.t[i].params);
		if (k < 0 || (size_t)k >= len - n) {
			warn("%s: its table is too long for the identity record: 'assemble' "
			     "will not be able to make the helper origin %s again", p->name,
			     p->helper);
			memset(buf, 0, len);
			return;
		}
		n += k;
	}
}

static void plan_identity(const struct plan *p, const struct blockdev *origin,
			  struct stream_identity_disk *id)
{
	struct dmx_table tbl;

	memset(id, 0, sizeof(*id));
	id->magic = htole32(STREAM_IDENTITY_MAGIC);
	plan_table(p, &tbl);
	id->options = htole32(table_id_options(&tbl) | p->id_options);
	dmx_table_free(&tbl);
	id->created = htole64((uint64_t)time(NULL));
	IDENT_SET(id->name, p->name);
	if (p->copy)
		IDENT_SET(id->uuid, p->info.uuid);
	id->rate_kib = htole32(p->o->rate_set ? (uint32_t)p->o->rate_kib : 0);
	id->min_rate_kib = htole32(p->o->min_rate_set ? (uint32_t)p->o->min_rate_kib : 0);
	id->max_rate_kib = htole32(p->o->max_rate_set ? (uint32_t)p->o->max_rate_kib : 0);
	id->max_inflight = htole32((uint32_t)p->o->max_inflight);
	if (ident_collect(origin->major, origin->minor, &id->origin) ||
	    ident_collect(p->dest.major, p->dest.minor, &id->dest))
		warn("cannot read a device's identity from sysfs: recorded partly");
	/* What the table will see, whatever sysfs said. */
	id->origin.size = htole64(origin->size / 512);
	id->dest.size = htole64(p->dest.size / 512);
	if (p->helper[0])
		origin_table_lines(p, id->origin_table, sizeof(id->origin_table));
	id->merge_exceptions = htole64(p->merge_exceptions);
	id->merge_csum = htole32(p->merge_csum);
	id->merge_chunk = htole32(p->merge_chunk);
}

/* The plan's own sample positions (merge: where the origin does not change). */
static void plan_samples(const struct plan *p, struct stream_identity_disk *id)
{
	unsigned int i;

	id->sample_wanted = 0;
	for (i = 0; i < STREAM_NR_SAMPLES; i++) {
		id->sample_sector[i] = htole64(i < p->nr_samples ? p->samples[i] : 0);
		if (i < p->nr_samples)
			id->sample_wanted |= 1U << i;
	}
	id->sample_wanted = htole32(id->sample_wanted);
}

int plan_format_meta(const struct plan *p)
{
	struct stream_identity_disk id;
	struct meta_geometry geo;
	struct blockdev origin;
	char devt[32];
	uint64_t size;
	bool in_use;
	int fd, r = -1;

	if (!p->format)
		return 0;
	if (p->copy) {
		devt_str(p->origin_major, p->origin_minor, devt, sizeof(devt));
		if (blockdev_get(devt, &origin))
			return -1;
	} else {
		origin = p->origin;
	}
	plan_identity(p, &origin, &id);
	ident_want_samples(origin.size / 512, &id);
	if (p->samples_set)
		plan_samples(p, &id);
	geo = (struct meta_geometry){ .region_size = p->region, .target_size = p->len,
				      .origin_size = origin.size / 512,
				      .dest_size = p->dest.size / 512 };
	fd = meta_open(p->meta.path, true, &in_use, &size);
	if (fd < 0)
		return -1;
	if (in_use)
		err("metadata device %s is in use", p->meta.path);
	else
		r = meta_format(fd, &geo, &id, p->seeded ? &p->seed : NULL);
	close(fd);
	if (r)
		err("%s: cannot format metadata device %s", p->name, p->meta.path);
	else if (p->seeded && !p->silent)
		printf("%s: seeded %" PRIu64 " of %" PRIu64 " regions as copied\n", p->name,
		       p->seed.nr_set, p->seed.nr_regions);
	return r;
}

void plan_table(const struct plan *p, struct dmx_table *tbl)
{
	char opts[TABLE_OPTS_LEN + 8];

	table_opts(p->o, opts, sizeof(opts));
	dmx_table_one(tbl, p->len, STREAM_TARGET_NAME, "%u:%u %u:%u %u:%u %" PRIu64 " %s",
		      p->meta.major, p->meta.minor, p->dest.major, p->dest.minor,
		      p->origin_major, p->origin_minor, p->region, opts);
}

void plan_free(struct plan *p)
{
	dmx_table_free(&p->old);
	if (p->seeded)
		seed_free(&p->seed);
}
