// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: `list`, `assemble` and `rebind`, the commands that read the
 * identity record of a metadata device (stream-format.h).
 *
 * list finds dm-stream metadata on the machine's block devices and says
 * where each stream's origin and destination are now; assemble makes a
 * stream device again from its metadata alone (at boot, say); rebind
 * records a new origin or destination after a deliberate move.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stream-format.h"
#include "stream-interface.h"
#include "cli.h"
#include "dm.h"
#include "identity.h"
#include "meta.h"
#include "plan.h"
#include "status.h"
#include "util.h"

/* Devices a recorded identity may match, at most, for the messages. */
#define MAX_MATCH	8

/*---------------------------------------------------------------------------*/
/* Common */

/* Where a stream's device is now: its matches among the machine's devices. */
struct found {
	char what[512];		/* the key looked for */
	bool weak;		/* by major:minor only */
	int nr;			/* devices that match */
	int match[MAX_MATCH];	/* their indexes in the scan */
};

static void find_dev(const struct ident_dev *devs, int nr,
		     const struct stream_device_identity_disk *want, unsigned int meta_major,
		     unsigned int meta_minor, struct found *f)
{
	f->nr = ident_match(devs, nr, want, meta_major, meta_minor, f->match, MAX_MATCH,
			    f->what, sizeof(f->what), &f->weak);
}

/* The name of the active stream over metadata @major:@minor, into @name; false if none. */
static bool active_stream(const struct ident_dev *devs, int nr, unsigned int major,
			  unsigned int minor, char *name, size_t len)
{
	struct stream_table st;
	struct dmx_table tbl;
	bool found = false;
	int i;

	for (i = 0; i < nr && !found; i++) {
		if (!devs[i].is_stream || dmx_table(devs[i].id.dm_name, &tbl))
			continue;
		if (tbl.nr == 1 && !stream_table_parse(tbl.t[0].params, &st) &&
		    st.meta_major == major && st.meta_minor == minor) {
			snprintf(name, len, "%s", devs[i].id.dm_name);
			found = true;
		}
		dmx_table_free(&tbl);
	}
	return found;
}

/* mirror, one-way or degraded, from the flags and the recorded options. */
static const char *stream_mode(const struct meta_sb *sb)
{
	if (sb->flags & STREAM_SB_FLAG_ORIGIN_STALE)
		return sb->flags & STREAM_SB_FLAG_ORIGIN_FAILED ? STREAM_MIRROR_DEGRADED :
		       STREAM_MIRROR_OFF;
	if (sb->has_identity && (le32toh(sb->identity.options) & STREAM_ID_OPT_MIRROR))
		return STREAM_MIRROR_ON;
	return STREAM_MIRROR_OFF;
}

/*
 * Reads and checks the superblock of metadata device @path: a sound header
 * and a sound identity record. Returns 0, or an exit code (message printed).
 */
static int read_meta(const char *path, bool rw, int *fd, struct meta_sb *sb, bool *in_use,
		     struct blockdev *bd)
{
	char why[256];
	const char *p;
	uint64_t size;

	struct stat st;

	/* An image file is read (and refused) too: its record is checked first. */
	memset(bd, 0, sizeof(*bd));
	if (!stat(path, &st) && S_ISREG(st.st_mode))
		snprintf(bd->path, sizeof(bd->path), "%s", path);
	else if (blockdev_get(path, bd))
		return EXIT_FAIL;
	*fd = meta_open(bd->path, rw, in_use, &size);
	if (*fd < 0)
		return EXIT_FAIL;
	if (size < STREAM_BLOCK_SIZE || meta_read_sb(*fd, sb)) {
		err("%s: cannot read a metadata superblock", path);
		goto fail;
	}
	p = meta_sb_header_problem(sb);
	if (p) {
		err("%s: %s: not dm-stream metadata, or damaged ('%s check %s')", path, p,
		    progname, path);
		close(*fd);
		return EXIT_METADATA;
	}
	if (!sb->has_identity) {
		err("%s: the metadata has no identity record (it was formatted by the kernel, "
		    "or by an older %s): its devices are unknown", path, progname);
		close(*fd);
		return EXIT_METADATA;
	}
	if (meta_identity_problem(&sb->identity, sb, why, sizeof(why))) {
		err("%s: %s; nothing changed", path, why);
		close(*fd);
		return EXIT_METADATA;
	}
	if (!bd->major && !bd->minor) {
		err("%s: not a block device", path);
		close(*fd);
		return EXIT_FAIL;
	}
	return 0;
fail:
	close(*fd);
	return EXIT_FAIL;
}

/*---------------------------------------------------------------------------*/
/* list */

/* Block 0 of @path is a dm-stream superblock (magic and checksum). */
static bool probe(const char *path, struct meta_sb *sb)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_DIRECT);
	bool r;

	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	r = !meta_read_sb(fd, sb) && sb->magic == STREAM_MAGIC && sb->csum == sb->csum_calc;
	close(fd);
	return r;
}

static json_object *found_json(const struct stream_device_identity_disk *d,
			       const struct found *f, const struct ident_dev *devs)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	int i;

	json_object_object_add(o, "recorded", identity_dev_json(d));
	json_object_object_add(o, "looked_for", json_object_new_string(f->what));
	for (i = 0; i < f->nr && i < MAX_MATCH; i++)
		json_object_array_add(a, json_object_new_string(devs[f->match[i]].path));
	json_object_object_add(o, "found", a);
	return o;
}

/* "found at PATH (M:m)", "not found", or "ambiguous: ...". */
static void found_text(const char *role, const struct found *f, const struct ident_dev *devs)
{
	int i;

	printf("  %-12s %s: ", role, f->what);
	if (!f->nr) {
		printf("not found\n");
		return;
	}
	if (f->nr > 1)
		printf("ambiguous, %d devices:", f->nr);
	else
		printf("at");
	for (i = 0; i < f->nr && i < MAX_MATCH; i++)
		printf(" %s (%u:%u)", devs[f->match[i]].path, devs[f->match[i]].major,
		       devs[f->match[i]].minor);
	printf("%s\n", f->weak ? " (by device number only)" : "");
}

static void list_one(const char *path, const struct blockdev *bd, const struct meta_sb *sb,
		     const struct ident_dev *devs, int nr, json_object *arr)
{
	const struct stream_identity_disk *id = &sb->identity;
	char why[256], active[128] = "";
	const char *problem = NULL;
	struct found fo = { .nr = 0 }, fd = { .nr = 0 };
	bool is_active;

	is_active = active_stream(devs, nr, bd->major, bd->minor, active, sizeof(active));
	if (!sb->has_identity)
		problem = "no identity record";
	else if (meta_identity_problem(id, sb, why, sizeof(why)))
		problem = why;
	if (!problem) {
		find_dev(devs, nr, &id->origin, bd->major, bd->minor, &fo);
		find_dev(devs, nr, &id->dest, bd->major, bd->minor, &fd);
	}
	if (arr) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "device", json_object_new_string(path));
		json_object_object_add(o, "name", problem ? NULL : json_object_new_string(id->name));
		json_object_object_add(o, "uuid", problem ? NULL : json_object_new_string(id->uuid));
		json_object_object_add(o, "copied", json_object_new_uint64(sb->nr_copied));
		json_object_object_add(o, "total", json_object_new_uint64(sb->nr_regions));
		json_object_object_add(o, "region_size", json_object_new_uint64(sb->region_size));
		json_object_object_add(o, "mode", json_object_new_string(stream_mode(sb)));
		json_object_object_add(o, "active", json_object_new_boolean(is_active));
		json_object_object_add(o, "active_name",
				       is_active ? json_object_new_string(active) : NULL);
		json_object_object_add(o, "problem", problem ? json_object_new_string(problem) : NULL);
		if (!problem) {
			json_object_object_add(o, "origin", found_json(&id->origin, &fo, devs));
			json_object_object_add(o, "dest", found_json(&id->dest, &fd, devs));
		}
		json_object_array_add(arr, o);
		return;
	}
	printf("%s: stream %s, %" PRIu64 "/%" PRIu64 " regions copied (%.1f%%), %s, %s%s\n",
	       path, problem ? "?" : id->name, sb->nr_copied, sb->nr_regions,
	       sb->nr_regions ? 100.0 * sb->nr_copied / sb->nr_regions : 0.0, stream_mode(sb),
	       is_active ? "active as " : "not active", active);
	if (problem) {
		printf("  %s\n", problem);
		return;
	}
	found_text("origin", &fo, devs);
	found_text("destination", &fd, devs);
}

/* The devices to look at: those named, or every block device large enough. */
int cmd_list(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	json_object *arr = o->json ? json_object_new_array() : NULL;
	struct ident_dev *devs = NULL;
	struct blockdev bd;
	struct meta_sb sb;
	int nr, i, found = 0, r = EXIT_OK;

	(void)cmd;
	nr = ident_scan(&devs);
	if (nr < 0)
		return EXIT_FAIL;
	if (argc) {
		for (i = 0; i < argc; i++) {
			if (blockdev_get(argv[i], &bd)) {
				r = EXIT_FAIL;
				continue;
			}
			if (!probe(bd.path, &sb)) {
				err("%s: no dm-stream metadata", argv[i]);
				r = EXIT_METADATA;
				continue;
			}
			list_one(argv[i], &bd, &sb, devs, nr, arr);
			found++;
		}
	} else {
		for (i = 0; i < nr; i++) {
			/* A superblock and one bitmap block's two slots, at least. */
			if (le64toh(devs[i].id.size) < 3 * STREAM_BLOCK_SECTORS || devs[i].is_stream)
				continue;
			if (!probe(devs[i].path, &sb))
				continue;
			memset(&bd, 0, sizeof(bd));
			snprintf(bd.path, sizeof(bd.path), "%s", devs[i].path);
			bd.major = devs[i].major;
			bd.minor = devs[i].minor;
			list_one(devs[i].path, &bd, &sb, devs, nr, arr);
			found++;
		}
		if (!found && !arr)
			printf("no dm-stream metadata found\n");
	}
	if (arr) {
		printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
		json_object_put(arr);
	}
	free(devs);
	return r;
}

/*---------------------------------------------------------------------------*/
/* assemble */
struct assembly {
	const char *meta_path;
	struct blockdev meta;
	struct meta_sb sb;
	const char *name;
	bool mirror;			/* the table gets mirror */
	bool helper_made;
	const char *helper;		/* the helper origin to make, or NULL */
	struct ident_dev origin, dest;
};

/* The helper origin's table, from the record's lines. */
static int helper_table(const char *lines, struct dmx_table *tbl)
{
	char *copy = xstrdup(lines), *line, *save = NULL;
	uint64_t start, len, pos = 0;
	char type[64];
	int off, r = 0;

	memset(tbl, 0, sizeof(*tbl));
	for (line = strtok_r(copy, "\n", &save); line && !r; line = strtok_r(NULL, "\n", &save)) {
		off = 0;
		if (sscanf(line, "%" SCNu64 " %" SCNu64 " %63s %n", &start, &len, type, &off) < 3 ||
		    !off || start != pos || !len) {
			err("the recorded table of the helper origin is malformed: '%s'", line);
			r = -1;
			break;
		}
		dmx_table_add(tbl, start, len, type, line + off);
		pos += len;
	}
	free(copy);
	if (!r && !tbl->nr) {
		err("the recorded table of the helper origin is empty");
		r = -1;
	}
	if (r)
		dmx_table_free(tbl);
	return r;
}

/* Makes the helper origin again, as copy made it. 0, or -1 to retry later. */
static int make_helper(struct assembly *a, bool last_try)
{
	const struct stream_identity_disk *id = &a->sb.identity;
	struct dmx_table tbl;
	struct dmx_info hi;
	int r;

	if (helper_table(id->origin_table, &tbl))
		return -2;
	if (dmx_table_len(&tbl) != a->sb.origin_size) {
		err("the recorded table of the helper origin %s is %" PRIu64
		    " sectors long, the origin was %" PRIu64, id->origin.dm_name,
		    dmx_table_len(&tbl), a->sb.origin_size);
		dmx_table_free(&tbl);
		return -2;
	}
	dmx_kmsg_mark();
	r = dmx_create(id->origin.dm_name, id->origin.dm_uuid[0] ? id->origin.dm_uuid : NULL,
		       &tbl, !a->mirror, true);
	dmx_table_free(&tbl);
	if (r) {
		if (last_try)
			explain_refusal(id->origin.dm_name);
		return -1;
	}
	if (dmx_info(id->origin.dm_name, &hi) || !hi.exists)
		return -1;
	a->helper_made = true;
	printf("%s: made the helper origin %s again (%u:%u)\n", a->name, id->origin.dm_name,
	       hi.major, hi.minor);
	return 0;
}

/*
 * One look for the devices: 0 when both are found (a->origin, a->dest),
 * 1 when one is missing (try again), an exit code when ambiguous.
 */
static int locate(struct assembly *a, bool last_try)
{
	const struct stream_identity_disk *id = &a->sb.identity;
	struct ident_dev *devs = NULL;
	struct found fo, fd;
	struct dmx_info hi;
	int nr, r = 0;

	if (a->helper && !a->helper_made) {
		if (dmx_info(a->helper, &hi))
			return EXIT_FAIL;
		if (!hi.exists) {
			r = make_helper(a, last_try);
			if (r == -2)
				return EXIT_METADATA;
			if (r)
				return 1;
		}
	}
	nr = ident_scan(&devs);
	if (nr < 0)
		return EXIT_FAIL;
	find_dev(devs, nr, &id->origin, a->meta.major, a->meta.minor, &fo);
	find_dev(devs, nr, &id->dest, a->meta.major, a->meta.minor, &fd);
	if (fo.nr > 1 || fd.nr > 1) {
		const struct found *f = fo.nr > 1 ? &fo : &fd;

		err("%s: the %s is ambiguous: %d devices match %s:", a->name,
		    fo.nr > 1 ? "origin" : "destination", f->nr, f->what);
		for (nr = 0; nr < f->nr && nr < MAX_MATCH; nr++)
			err("  %s", devs[f->match[nr]].path);
		err("refusing to guess; '%s rebind %s --%s DEV' names the right one", progname,
		    a->meta_path, fo.nr > 1 ? "origin" : "dest");
		r = EXIT_FAIL;
	} else if (!fo.nr || !fd.nr) {
		if (last_try) {
			if (!fo.nr)
				err("%s: origin not found: looked for %s", a->name, fo.what);
			if (!fd.nr)
				err("%s: destination not found: looked for %s", a->name, fd.what);
		}
		r = 1;
	} else {
		a->origin = devs[fo.match[0]];
		a->dest = devs[fd.match[0]];
		if (fo.weak || fd.weak)
			warn("%s: the %s is known by its device number only", a->name,
			     fo.weak ? "origin" : "destination");
	}
	free(devs);
	return r;
}

static int wait_devices(struct assembly *a, double timeout)
{
	double deadline = now_monotonic() + timeout;
	bool last;
	int r;

	for (;;) {
		last = now_monotonic() >= deadline;
		r = locate(a, last);
		if (r != 1)
			return r;
		if (last) {
			if (timeout > 0)
				err("%s: gave up after %.0f s", a->name, timeout);
			return EXIT_FAIL;
		}
		usleep(250000);
	}
}

/* Appends " WORD" to @words, or " WORD VALUE" when @value is not negative. */
static void opt_word(char *words, size_t len, unsigned int *n, const char *word, int64_t value)
{
	size_t used = strlen(words);

	if (value >= 0) {
		snprintf(words + used, len - used, " %s %" PRId64, word, value);
		*n += 2;
	} else {
		snprintf(words + used, len - used, " %s", word);
		*n += 1;
	}
}

/*
 * The stream's table, as it was: same geometry, options, rates,
 * max_inflight; in the order the kernel prints them. A record written
 * before min_rate and max_rate existed holds 0 there: the defaults.
 */
static void assembly_table(const struct assembly *a, struct dmx_table *tbl)
{
	const struct stream_identity_disk *id = &a->sb.identity;
	uint32_t opts = le32toh(id->options);
	const struct { uint32_t bit; const char *word; } flags[] = {
		{ STREAM_ID_OPT_COPY_ON_READ, STREAM_OPT_COPY_ON_READ },
		{ STREAM_ID_OPT_SKIP_ZEROES, STREAM_OPT_SKIP_ZEROES },
	};
	char words[256] = "";
	unsigned int n = 0, i;

	if (le32toh(id->rate_kib))
		opt_word(words, sizeof(words), &n, STREAM_OPT_RATE, le32toh(id->rate_kib));
	if (le32toh(id->max_inflight))
		opt_word(words, sizeof(words), &n, STREAM_OPT_MAX_INFLIGHT,
			 le32toh(id->max_inflight));
	if (opts & STREAM_ID_OPT_NO_DISCARD_PASSDOWN)
		opt_word(words, sizeof(words), &n, STREAM_OPT_NO_DISCARD_PASSDOWN, -1);
	if (a->mirror)
		opt_word(words, sizeof(words), &n, STREAM_OPT_MIRROR, -1);
	if (le32toh(id->min_rate_kib))
		opt_word(words, sizeof(words), &n, STREAM_OPT_MIN_RATE, le32toh(id->min_rate_kib));
	if (le32toh(id->max_rate_kib))
		opt_word(words, sizeof(words), &n, STREAM_OPT_MAX_RATE, le32toh(id->max_rate_kib));
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (opts & flags[i].bit)
			opt_word(words, sizeof(words), &n, flags[i].word, -1);
	dmx_table_one(tbl, a->sb.target_size, STREAM_TARGET_NAME, "%u:%u %u:%u %u:%u %" PRIu32
		      " %u%s", a->meta.major, a->meta.minor, a->dest.major, a->dest.minor,
		      a->origin.major, a->origin.minor, a->sb.region_size, n, words);
}

/*
 * @name already exists: fine when it is this stream (exit 0: assemble at
 * every boot is harmless), an error otherwise.
 */
static int already(const struct assembly *a)
{
	struct stream_table st;
	struct dmx_table tbl;
	bool same;

	if (dmx_table(a->name, &tbl))
		return EXIT_FAIL;
	same = tbl.nr == 1 && !strcmp(tbl.t[0].type, STREAM_TARGET_NAME) &&
	       !stream_table_parse(tbl.t[0].params, &st) && st.meta_major == a->meta.major &&
	       st.meta_minor == a->meta.minor;
	dmx_table_free(&tbl);
	if (same) {
		printf("%s: already assembled on %s\n", a->name, a->meta_path);
		return EXIT_OK;
	}
	err("%s exists and is not the stream of %s: --name gives another name", a->name,
	    a->meta_path);
	return EXIT_FAIL;
}

/* The origin holds what it held when recorded, at every checked sample. */
static int origin_samples_ok(const struct assembly *a)
{
	const struct stream_identity_disk *id = &a->sb.identity;
	int i = ident_check_samples(a->origin.path, id);

	if (i == -2)
		return -1;
	if (i >= 0) {
		err("%s: origin %s differs from the recorded origin at sample %d (sector %"
		    PRIu64 "): it is not the device the stream was made over", a->name,
		    a->origin.path, i, (uint64_t)le64toh(id->sample_sector[i]));
		err("after a deliberate move or copy of the same content, '%s rebind %s "
		    "--origin %s' records it", progname, a->meta_path, a->origin.path);
		return -1;
	}
	return 0;
}

static int assemble(struct assembly *a, double timeout)
{
	const struct stream_identity_disk *id = &a->sb.identity;
	struct dmx_info info;
	struct dmx_table tbl;
	char x[32], y[32];
	int r;

	if (dmx_info(a->name, &info))
		return EXIT_FAIL;
	if (info.exists)
		return already(a);
	if (le32toh(id->options) & STREAM_ID_OPT_MERGE) {
		/* Its origin is a snapshot that only merge knows how to set up. */
		err("%s: %s holds the metadata of a merge of a dm-snapshot: set the snapshot up "
		    "again (LVM: lvm lvchange -ay -K VG/LV) and run the same '%s merge' "
		    "command, which continues it", a->name, a->meta_path, progname);
		return EXIT_FAIL;
	}
	a->mirror = (le32toh(id->options) & STREAM_ID_OPT_MIRROR) &&
		    !(a->sb.flags & STREAM_SB_FLAG_ORIGIN_STALE);
	if (id->origin_table[0] && id->origin.dm_name[0])
		a->helper = id->origin.dm_name;
	r = wait_devices(a, timeout);
	if (r)
		goto fail;
	if (origin_samples_ok(a)) {
		r = EXIT_FAIL;
		goto fail;
	}
	assembly_table(a, &tbl);
	dmx_kmsg_mark();
	r = dmx_create(a->name, id->uuid[0] ? id->uuid : NULL, &tbl, false, false);
	dmx_table_free(&tbl);
	if (r) {
		explain_refusal(a->name);
		r = EXIT_FAIL;
		goto fail;
	}
	printf("%s: assembled from %s: origin %s (%s), destination %s (%s), %" PRIu64 "/%"
	       PRIu64 " regions copied, %s\n", a->name, a->meta_path, a->origin.path,
	       devt_str(a->origin.major, a->origin.minor, x, sizeof(x)), a->dest.path,
	       devt_str(a->dest.major, a->dest.minor, y, sizeof(y)), a->sb.nr_copied,
	       a->sb.nr_regions, a->mirror ? STREAM_MIRROR_ON : STREAM_MIRROR_OFF);
	return EXIT_OK;
fail:
	if (a->helper_made && dmx_remove(a->helper))
		err("%s: could not remove the helper origin %s", a->name, a->helper);
	err("%s: not assembled", a->name);
	return r;
}

int cmd_assemble(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct assembly a = { .meta_path = argv[0] };
	struct ident_dev *devs = NULL;
	char other[128];
	bool in_use;
	int fd, r, nr;

	(void)argc;
	r = read_meta(argv[0], false, &fd, &a.sb, &in_use, &a.meta);
	if (r)
		return r;
	close(fd);
	if (o->name && (!o->name[0] || strlen(o->name) >= 128 || strchr(o->name, '/')))
		return usage_error(cmd, "invalid device name '%s'", o->name);
	a.name = o->name ? o->name : a.sb.identity.name;
	if (in_use) {
		nr = ident_scan(&devs);
		if (nr >= 0 && active_stream(devs, nr, a.meta.major, a.meta.minor, other,
					     sizeof(other)) && strcmp(other, a.name)) {
			err("%s is in use by stream %s", argv[0], other);
			free(devs);
			return EXIT_FAIL;
		}
		free(devs);
	}
	return assemble(&a, o->timeout);
}

/*---------------------------------------------------------------------------*/
/* rebind */
static int rebind_dev(const char *role, const char *arg, uint64_t size, const struct blockdev *meta,
		      struct stream_device_identity_disk *d, struct blockdev *bd)
{
	if (blockdev_get(arg, bd))
		return -1;
	if (bd->major == meta->major && bd->minor == meta->minor) {
		err("%s %s is the metadata device", role, arg);
		return -1;
	}
	if (bd->size / 512 != size) {
		err("%s %s has %" PRIu64 " sectors; the stream's %s had %" PRIu64, role, arg,
		    bd->size / 512, role, size);
		return -1;
	}
	if (ident_collect(bd->major, bd->minor, d)) {
		err("%s: cannot read its identity from sysfs", arg);
		return -1;
	}
	return 0;
}

int cmd_rebind(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct stream_identity_disk id;
	struct blockdev meta, bd;
	struct ident_dev *devs = NULL;
	struct meta_sb sb;
	char other[128], why[256];
	bool in_use, active = false;
	int fd, r, nr;

	(void)argc;
	if (!o->origin && !o->dest)
		return usage_error(cmd, "--origin or --dest is needed");
	r = read_meta(argv[0], true, &fd, &sb, &in_use, &meta);
	if (r)
		return r;
	nr = ident_scan(&devs);
	if (nr >= 0)
		active = active_stream(devs, nr, meta.major, meta.minor, other, sizeof(other));
	free(devs);
	if (in_use || active) {
		err("%s is in use%s%s: rebind works on an inactive stream only ('dmsetup remove' "
		    "it first)", argv[0], active ? " by stream " : "", active ? other : "");
		r = EXIT_FAIL;
		goto out;
	}
	id = sb.identity;
	r = EXIT_FAIL;
	if (o->origin) {
		if (rebind_dev("origin", o->origin, sb.origin_size, &meta, &id.origin, &bd))
			goto out;
		/* A helper origin is made again only if it is still the origin. */
		if (strcmp(id.origin.dm_name, sb.identity.origin.dm_name))
			memset(id.origin_table, 0, sizeof(id.origin_table));
		if (ident_take_samples(bd.path, sb.origin_size, &id))
			goto out;
		printf("%s: origin is now %s (%u:%u), samples taken again\n", argv[0], bd.path,
		       bd.major, bd.minor);
	}
	if (o->dest) {
		if (rebind_dev("destination", o->dest, sb.dest_size, &meta, &id.dest, &bd))
			goto out;
		printf("%s: destination is now %s (%u:%u)\n", argv[0], bd.path, bd.major,
		       bd.minor);
	}
	if (meta_identity_problem(&id, &sb, why, sizeof(why))) {
		err("internal error: the new identity record is unsound: %s", why);
		goto out;
	}
	if (meta_write_identity(fd, &sb, &id))
		goto out;
	r = EXIT_OK;
out:
	close(fd);
	return r;
}
