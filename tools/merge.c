// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: `merge`, a dm-snapshot merged into its origin by streaming only
 * the chunks its exception store holds; and the end of a --rollback merge,
 * for finish (merge.h).
 *
 * The terms: REAL is the device a `snapshot` table names as its origin,
 * COW its exception store, ORIGIN the `snapshot-origin REAL` device users
 * write the origin through, SNAP the snapshot device. The stream's
 * destination is REAL, written directly: nothing goes through a
 * snapshot-origin any more, so no chunk is copied into COW again. Its origin
 * is a read-only view of the snapshot: SNAP itself (--rollback, the stream
 * on ORIGIN), or a helper SNAP-origin that takes SNAP's exceptions over
 * (dm-snapshot's handover) while SNAP becomes the stream (the live merge).
 *
 * The store is read while the device users write through is suspended, so
 * every exception is on disk and no new one comes; every region without an
 * exception is then seeded as copied (seed.h): the snapshot shows REAL
 * there. Nothing is printed while a device is suspended.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stream-format.h"
#include "stream-interface.h"
#include "cli.h"
#include "dm.h"
#include "merge.h"
#include "meta.h"
#include "plan.h"
#include "seed.h"
#include "snapstore.h"
#include "util.h"
#include "workflow.h"

#define LVM_UUID_PREFIX		"LVM-"

/* A `snapshot` table: REAL COW P|PO CHUNK [features]. */
struct snap_table {
	unsigned int real_major, real_minor, cow_major, cow_minor;
	uint32_t chunk;		/* sectors */
	uint64_t len;
};

struct merge {
	const struct command *cmd;
	struct opts *o;
	const char *snap;
	const char *name;		/* the stream: SNAP, or ORIGIN with --rollback */
	char origin[128];		/* ORIGIN, "" when there is none */
	struct dmx_info snap_info, origin_info;
	struct dmx_table snap_tbl, origin_tbl;
	struct snap_table st;
	struct blockdev cow;
	bool lvm;			/* --rollback of an LVM snapshot */
	char vg[128], lv[128];
	struct plan p;
	bool cont;			/* continuing this merge's metadata */
	char why[768];			/* a failure while suspended, printed after */
	uint64_t nr_exceptions;
};

/*---------------------------------------------------------------------------*/
/* The snapshot */
static int parse_snapshot(const struct dmx_table *tbl, struct snap_table *s, char *why,
			  size_t len)
{
	char real[32], cow[32], store[8];
	unsigned int chunk;

	if (tbl->nr != 1 || strcmp(tbl->t[0].type, "snapshot")) {
		snprintf(why, len, "it is no dm-snapshot device (its table is not one 'snapshot' "
			 "target)");
		return -1;
	}
	if (sscanf(tbl->t[0].params, "%31s %31s %7s %u", real, cow, store, &chunk) != 4 ||
	    parse_devt(real, &s->real_major, &s->real_minor) ||
	    parse_devt(cow, &s->cow_major, &s->cow_minor)) {
		snprintf(why, len, "unexpected snapshot table '%s'", tbl->t[0].params);
		return -1;
	}
	if (strcasecmp(store, "P") && strcasecmp(store, "PO")) {
		snprintf(why, len, "its exception store is '%s': only a persistent one (P or PO) "
			 "is on disk to be read", store);
		return -1;
	}
	if (!chunk || (chunk & (chunk - 1))) {
		snprintf(why, len, "chunk size %u sectors is no power of two", chunk);
		return -1;
	}
	s->chunk = chunk;
	s->len = tbl->t[0].len;
	return 0;
}

/* The snapshot's status: "Invalid", "Overflow", "Merge failed", or usage. */
static int snapshot_healthy(const char *snap, char *why, size_t len)
{
	struct dmx_table tbl;
	int r = -1;

	if (dmx_status(snap, &tbl)) {
		snprintf(why, len, "cannot read its status");
		return -1;
	}
	if (tbl.nr != 1 || strcmp(tbl.t[0].type, "snapshot"))
		snprintf(why, len, "unexpected status");
	else if (!strncmp(tbl.t[0].params, "Invalid", 7) ||
		 !strncmp(tbl.t[0].params, "Overflow", 8) ||
		 !strncmp(tbl.t[0].params, "Merge failed", 12))
		snprintf(why, len, "the snapshot is '%s': its content is lost", tbl.t[0].params);
	else
		r = 0;
	dmx_table_free(&tbl);
	return r;
}

/* The dm name of sysfs block device @kname (dm-N), or -1. */
static int sysfs_dm_name(const char *kname, char *name, size_t len)
{
	char path[300];
	FILE *f;
	int r = -1;

	snprintf(path, sizeof(path), "/sys/block/%s/dm/name", kname);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(name, (int)len, f)) {
		name[strcspn(name, "\n")] = '\0';
		r = name[0] ? 0 : -1;
	}
	fclose(f);
	return r;
}

/*
 * Who else holds REAL: its snapshot-origin device (one at most) into
 * m->origin; anything but that and SNAP is refused, since the stream
 * writes REAL behind its back (another snapshot would silently go wrong).
 */
static int scan_real(struct merge *m)
{
	char path[96], name[128], who[256];
	unsigned int maj, min;
	struct dmx_table tbl;
	struct dirent *de;
	DIR *d;
	int r = 0;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/holders", m->st.real_major,
		 m->st.real_minor);
	d = opendir(path);
	if (!d) {
		err("%s: cannot read %s: %s", m->snap, path, strerror(errno));
		return -1;
	}
	while (!r && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (sysfs_dm_name(de->d_name, name, sizeof(name))) {
			err("%s: its origin device is held by %s, which is no dm device", m->snap,
			    de->d_name);
			r = -1;
			break;
		}
		if (!strcmp(name, m->snap))
			continue;
		if (dmx_table(name, &tbl)) {
			r = -1;
			break;
		}
		who[0] = '\0';
		if (tbl.nr == 1 && !strcmp(tbl.t[0].type, "snapshot-origin") &&
		    !parse_devt(tbl.t[0].params, &maj, &min) && maj == m->st.real_major &&
		    min == m->st.real_minor && !m->origin[0])
			snprintf(m->origin, sizeof(m->origin), "%s", name);
		else if (tbl.nr == 1 && !strcmp(tbl.t[0].type, "snapshot"))
			snprintf(who, sizeof(who), "another snapshot (%s): writing the origin "
				 "directly would corrupt it", name);
		else
			snprintf(who, sizeof(who), "%s (a '%s' table)", name,
				 tbl.nr ? tbl.t[0].type : "empty");
		dmx_table_free(&tbl);
		if (who[0]) {
			err("%s: refusing: its origin device %u:%u is also used by %s", m->snap,
			    m->st.real_major, m->st.real_minor, who);
			r = -1;
		}
	}
	closedir(d);
	return r;
}

/*---------------------------------------------------------------------------*/
/* LVM */
/* VG and LV of LVM device @info (no layer such as -real); false when not LVM's. */
static bool lvm_names(const struct dmx_info *info, char *vg, size_t vlen, char *lv, size_t llen)
{
	char *v, *l, *layer;
	struct dm_pool *mem;
	bool ok = false;

	if (strncmp(info->uuid, LVM_UUID_PREFIX, strlen(LVM_UUID_PREFIX)))
		return false;
	mem = dm_pool_create("dmstream", 1024);
	if (!mem)
		return false;
	if (dm_split_lvm_name(mem, info->name, &v, &l, &layer) && *v && *l && !*layer) {
		snprintf(vg, vlen, "%s", v);
		snprintf(lv, llen, "%s", l);
		ok = true;
	}
	dm_pool_destroy(mem);
	return ok;
}

/* Runs `lvm ARGS...` (NULL-terminated), its output passed through; 0 on success. */
static int run_lvm(const char *const *args)
{
	char *argv[8];
	int i, status;
	pid_t pid;

	argv[0] = "lvm";
	for (i = 0; args[i] && i < 6; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		execvp("lvm", argv);
		fprintf(stderr, "%s: cannot run lvm: %s\n", progname, strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
}

/* lvm lvchange -k{y,n} VG/LV: LVM's activation skip flag of the origin LV. */
static int lvm_skip(const char *vg, const char *lv, bool skip)
{
	char vglv[260];
	const char *args[] = { "lvchange", "-q", skip ? "-ky" : "-kn", vglv, NULL };

	snprintf(vglv, sizeof(vglv), "%s/%s", vg, lv);
	return run_lvm(args);
}

/*---------------------------------------------------------------------------*/
/* Planning, before anything changes */
static int merge_devices(struct merge *m)
{
	char why[256], devt[32];

	if (dmx_info(m->snap, &m->snap_info))
		return EXIT_FAIL;
	if (!m->snap_info.exists) {
		err("%s: no such device", m->snap);
		return EXIT_FAIL;
	}
	if (m->snap_info.suspended || m->snap_info.inactive_table || !m->snap_info.live_table) {
		err("%s must be active, with no inactive table", m->snap);
		return EXIT_FAIL;
	}
	if (dmx_table(m->snap, &m->snap_tbl))
		return EXIT_FAIL;
	if (parse_snapshot(&m->snap_tbl, &m->st, why, sizeof(why)) ||
	    snapshot_healthy(m->snap, why, sizeof(why))) {
		err("%s: %s", m->snap, why);
		return EXIT_FAIL;
	}
	if (scan_real(m))
		return EXIT_FAIL;
	devt_str(m->st.cow_major, m->st.cow_minor, devt, sizeof(devt));
	if (blockdev_get(devt, &m->cow))
		return EXIT_FAIL;
	if (m->origin[0] && (dmx_info(m->origin, &m->origin_info) ||
			     dmx_table(m->origin, &m->origin_tbl)))
		return EXIT_FAIL;

	if (!m->o->rollback) {
		if (!strncmp(m->snap_info.uuid, LVM_UUID_PREFIX, strlen(LVM_UUID_PREFIX))) {
			err("%s is an LVM snapshot: LVM's metadata cannot say that it became its "
			    "origin's storage; merge it with --rollback, which LVM can follow", m->snap);
			return EXIT_FAIL;
		}
		if (m->origin[0] && m->origin_info.open_count) {
			err("%s: its origin device %s is open: a live merge makes it read-only, "
			    "and its content mixed until the end; close it, or merge with "
			    "--rollback", m->snap, m->origin);
			return EXIT_FAIL;
		}
		m->name = m->snap;
		return 0;
	}
	if (!m->origin[0]) {
		err("%s: --rollback needs the snapshot-origin device of %u:%u, and there is none",
		    m->snap, m->st.real_major, m->st.real_minor);
		return EXIT_FAIL;
	}
	if (m->origin_info.suspended || m->origin_info.inactive_table) {
		err("%s must be active, with no inactive table", m->origin);
		return EXIT_FAIL;
	}
	if (m->snap_info.open_count) {
		err("%s is open: --rollback makes it the read-only source of the merge, "
		    "then removes it; close it first", m->snap);
		return EXIT_FAIL;
	}
	m->lvm = lvm_names(&m->origin_info, m->vg, sizeof(m->vg), m->lv, sizeof(m->lv));
	m->name = m->origin;
	return 0;
}

/*
 * The metadata device: blank (or --force): a new merge; this merge's own
 * (its identity record names the same device and direction): continued.
 * Anything else is refused.
 */
static int merge_meta(struct merge *m)
{
	uint32_t want = STREAM_ID_OPT_MERGE | (m->o->rollback ? STREAM_ID_OPT_ROLLBACK : 0);
	struct meta_sb sb;
	bool in_use, ours;
	uint64_t size;
	int fd, r;

	fd = meta_open(m->p.meta.path, true, &in_use, &size);
	if (fd < 0)
		return EXIT_FAIL;
	if (in_use) {
		err("metadata device %s is in use", m->p.meta.path);
		close(fd);
		return EXIT_FAIL;
	}
	r = meta_read_sb(fd, &sb);
	if (!r && sb.magic == STREAM_MAGIC && !meta_sb_header_problem(&sb)) {
		ours = sb.has_identity &&
		       (le32toh(sb.identity.options) & (STREAM_ID_OPT_MERGE | STREAM_ID_OPT_ROLLBACK)) == want &&
		       !strncmp(sb.identity.name, m->name, sizeof(sb.identity.name));
		if (!ours && !m->o->force) {
			err("refusing metadata device %s: it holds the metadata of another stream "
			    "(%s); --force overwrites it", m->p.meta.path,
			    sb.has_identity ? sb.identity.name : "no name recorded");
			close(fd);
			return EXIT_METADATA;
		}
		if (!ours) {
			warn("overwriting metadata device %s: it held stream %s", m->p.meta.path,
			     sb.has_identity ? sb.identity.name : "(unnamed)");
			r = meta_wipe(fd);
		}
	}
	close(fd);
	if (r)
		return EXIT_FAIL;
	r = plan_prepare_meta(&m->p, m->st.len, true, m->o->force);
	if (r)
		return r == -2 ? EXIT_METADATA : EXIT_FAIL;
	m->cont = !m->p.format;
	return 0;
}

static int merge_plan(struct merge *m)
{
	struct plan *p = &m->p;
	char devt[32], a[32];
	bool present;
	int r;

	memset(p, 0, sizeof(*p));
	p->name = m->name;
	p->copy = true;
	p->o = m->o;
	p->silent = true;
	p->id_options = STREAM_ID_OPT_MERGE | (m->o->rollback ? STREAM_ID_OPT_ROLLBACK : 0);
	p->len = m->st.len;
	if (dmx_info(m->name, &p->info))
		return EXIT_FAIL;
	r = plan_region(m->cmd, m->o, m->st.chunk > STREAM_MIN_REGION_SECTORS ? m->st.chunk :
			STREAM_MIN_REGION_SECTORS, &p->region);
	if (r)
		return r;
	devt_str(m->st.real_major, m->st.real_minor, devt, sizeof(devt));
	if (blockdev_get(devt, &p->dest) || blockdev_get(m->o->meta, &p->meta))
		return EXIT_FAIL;
	if ((p->meta.major == p->dest.major && p->meta.minor == p->dest.minor) ||
	    (p->meta.major == m->cow.major && p->meta.minor == m->cow.minor) ||
	    (p->meta.major == m->snap_info.major && p->meta.minor == m->snap_info.minor) ||
	    (m->origin[0] && p->meta.major == m->origin_info.major &&
	     p->meta.minor == m->origin_info.minor)) {
		err("metadata device %s is one of the snapshot's devices", p->meta.path);
		return EXIT_FAIL;
	}
	if (p->region * 512 % p->dest.lbs || p->region * 512 % p->meta.lbs) {
		err("region size %s is not a multiple of a device's logical block size",
		    fmt_bytes(p->region * 512, a, sizeof(a)));
		return EXIT_FAIL;
	}
	if (plan_check_sizes(m->snap, &p->dest, &p->meta, p->len, p->region) ||
	    check_target(&present) || plan_check_free(&p->meta, "metadata"))
		return EXIT_FAIL;
	if (!m->o->rollback) {
		snprintf(p->helper, sizeof(p->helper), "%s%s", m->snap, ORIGIN_SUFFIX);
		if (strlen(p->helper) >= 128) {
			err("%s: name too long for a helper %s", m->snap, p->helper);
			return EXIT_FAIL;
		}
		if (plan_name_free(p->helper, ": a helper of an earlier merge? Remove it first"))
			return EXIT_FAIL;
		/* Recorded in the identity: the helper's table. */
		dmx_table_one(&p->old, m->st.len, "snapshot", "%s", m->snap_tbl.t[0].params);
	}
	return merge_meta(m);
}

/*---------------------------------------------------------------------------*/
/* The seed, read while suspended */
struct read_ctx {
	struct merge *m;
	uint64_t k;
	uint64_t pick[STREAM_NR_SAMPLES];
};

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Each exception: its chunk's regions are to be copied; a sample candidate. */
static int on_exception(void *arg, uint64_t old_chunk)
{
	struct read_ctx *c = arg;
	uint64_t chunk = c->m->st.chunk, j;

	seed_clear_sectors(&c->m->p.seed, old_chunk * chunk, (old_chunk + 1) * chunk);
	/* A reservoir of exceptions, spread over the store, for the samples. */
	if (c->k < STREAM_NR_SAMPLES) {
		c->pick[c->k] = old_chunk;
	} else {
		j = mix64(c->k) % (c->k + 1);
		if (j < STREAM_NR_SAMPLES)
			c->pick[j] = old_chunk;
	}
	c->k++;
	return 0;
}

/*
 * The seed from the store, and the origin samples in chunks that hold an
 * exception: only there does the snapshot's content not change during the
 * merge (elsewhere it shows REAL, which the stream writes).
 */
static int read_seed(struct merge *m)
{
	struct read_ctx c = { .m = m };
	struct snapstore ss;
	uint64_t sector, i;
	int fd, r;

	fd = open(m->cow.path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		fd = open(m->cow.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(m->why, sizeof(m->why), "cannot open the exception store %s: %s",
			 m->cow.path, strerror(errno));
		return -1;
	}
	seed_init(&m->p.seed, m->st.len, m->p.region);
	m->p.seeded = true;
	seed_set_all(&m->p.seed);
	r = snapstore_read(fd, m->cow.size, m->st.chunk, m->st.len, on_exception, &c, &ss,
			   m->why, sizeof(m->why));
	close(fd);
	if (r) {
		char tmp[sizeof(m->why)];

		memcpy(tmp, m->why, sizeof(tmp));
		snprintf(m->why, sizeof(m->why), "exception store %.200s refused: %.500s",
			 m->cow.path, tmp);
		return -1;
	}
	m->nr_exceptions = ss.nr_exceptions;
	m->p.samples_set = true;
	for (i = 0; i < STREAM_NR_SAMPLES && i < c.k; i++) {
		sector = c.pick[i] * m->st.chunk;
		if (m->st.chunk >= STREAM_SAMPLE_SECTORS &&
		    sector + STREAM_SAMPLE_SECTORS <= m->st.len)
			m->p.samples[m->p.nr_samples++] = sector;
	}
	return 0;
}

/* While suspended: the seed and the metadata, unless continued. */
static int make_meta(struct merge *m)
{
	if (m->cont)
		return 0;
	if (read_seed(m))
		return -1;
	if (plan_format_meta(&m->p)) {
		snprintf(m->why, sizeof(m->why), "cannot format metadata device %s",
			 m->p.meta.path);
		return -1;
	}
	return 0;
}

/*---------------------------------------------------------------------------*/
/* The switch */
/* ORIGIN or SNAP back to its own table, read-write. */
static void back_rw(const char *name, const struct dmx_table *tbl)
{
	if (dmx_load_ro(name, tbl, false) || dmx_resume(name))
		err("%s: could not make it read-write again: 'dmsetup table %s', then reload "
		    "it without --readonly", name, name);
}

/* Reloads @name read-only on its own table. */
static int make_ro(const char *name, const struct dmx_table *tbl)
{
	if (!dmx_load_ro(name, tbl, true) && !dmx_resume(name))
		return 0;
	dmx_clear(name);
	err("%s: could not make it read-only", name);
	return -1;
}

/*
 * The live merge. The helper exists first with an `error` table of the
 * right size, so that SNAP's stream table can be loaded (and refused)
 * before the snapshot's exceptions move: then the helper takes the
 * snapshot table and, at its resume, SNAP's exceptions (SNAP suspended);
 * SNAP resumes as the stream. Until that handover, going back is only
 * dropping the helper; after it, the exceptions are handed back to SNAP.
 */
static int switch_live(struct merge *m)
{
	const char *helper = m->p.helper;
	struct dmx_table tbl;
	struct dmx_info hi;
	char uuid[64];

	if (m->origin[0] && make_ro(m->origin, &m->origin_tbl))
		return EXIT_FAIL;
	helper_uuid(uuid, sizeof(uuid));
	dmx_table_one(&tbl, m->st.len, "error", "%s", "");
	if (dmx_create(helper, uuid, &tbl, true, true)) {
		dmx_table_free(&tbl);
		err("%s: cannot create the helper origin %s", m->snap, helper);
		goto undo_origin;
	}
	dmx_table_free(&tbl);
	if (dmx_info(helper, &hi) || !hi.exists) {
		err("%s: the helper origin %s vanished", m->snap, helper);
		goto undo_helper;
	}
	m->p.origin_major = hi.major;
	m->p.origin_minor = hi.minor;

	dmx_kmsg_mark();
	if (dmx_suspend(m->snap)) {
		snprintf(m->why, sizeof(m->why), "cannot suspend %s", m->snap);
		goto undo_suspended;
	}
	/* Suspended: nothing printed from here until a resume. */
	if (make_meta(m))
		goto undo_suspended;
	plan_table(&m->p, &tbl);
	if (dmx_load(m->snap, &tbl)) {
		dmx_table_free(&tbl);
		snprintf(m->why, sizeof(m->why), "the kernel refused the stream table for %s",
			 m->snap);
		goto undo_suspended;
	}
	dmx_table_free(&tbl);
	if (dmx_load_ro(helper, &m->snap_tbl, true)) {
		snprintf(m->why, sizeof(m->why), "the kernel refused the snapshot table for the "
			 "helper %s", helper);
		goto undo_suspended;
	}
	if (dmx_resume(helper)) {
		snprintf(m->why, sizeof(m->why), "the helper %s could not take the snapshot over",
			 helper);
		goto undo_suspended;
	}
	if (!dmx_resume(m->snap))
		return EXIT_OK;

	/* Handed over, and SNAP's table is the stream: the snapshot goes back. */
	snprintf(m->why, sizeof(m->why), "%s did not resume as a stream", m->snap);
	if (dmx_load(m->snap, &m->snap_tbl) || dmx_suspend(helper) || dmx_resume(m->snap)) {
		err("%s", m->why);
		explain_refusal(m->snap);
		err("%s: could not give the snapshot back to %s: its exceptions are in the "
		    "helper %s, a read-only snapshot device; %s is %s", m->snap, m->snap, helper,
		    m->snap, stream_left(m->snap));
		return EXIT_FAIL;
	}
	goto undo_helper_report;

undo_suspended:
	/*
	 * Not handed over. The helper goes first: a snapshot table of its,
	 * even one that failed to resume, keeps SNAP from resuming.
	 */
	dmx_clear(m->snap);
	dmx_clear(helper);
	if (dmx_remove(helper))
		snprintf(m->why + strlen(m->why), sizeof(m->why) - strlen(m->why),
			 "; the helper %s could not be removed", helper);
	if (dmx_resume(m->snap))
		snprintf(m->why + strlen(m->why), sizeof(m->why) - strlen(m->why),
			 "; %s could not be resumed: it is still suspended", m->snap);
	err("%s", m->why);
	explain_refusal(m->snap);
	goto undo_origin;
undo_helper_report:
	err("%s", m->why);
	explain_refusal(m->snap);
undo_helper:
	if (dmx_remove(helper))
		err("%s: the helper %s could not be removed", m->snap, helper);
undo_origin:
	if (m->origin[0])
		back_rw(m->origin, &m->origin_tbl);
	err("%s: not merged; it is back on its snapshot table", m->snap);
	return EXIT_FAIL;
}

/*
 * --rollback: SNAP read-only (a reload of its own table: dm-snapshot hands
 * its exceptions to the new table), then ORIGIN suspended, the store read,
 * ORIGIN resumed as the stream over SNAP.
 */
static int switch_rollback(struct merge *m)
{
	struct dmx_table tbl;
	bool skip_set = false;

	if (m->lvm && !m->cont) {
		if (lvm_skip(m->vg, m->lv, true)) {
			err("%s: cannot set LVM's activation skip flag of %s/%s (lvm lvchange "
			    "-ky): not merged", m->name, m->vg, m->lv);
			return EXIT_FAIL;
		}
		skip_set = true;
	}
	if (make_ro(m->snap, &m->snap_tbl))
		goto undo_skip;
	m->p.origin_major = m->snap_info.major;
	m->p.origin_minor = m->snap_info.minor;

	dmx_kmsg_mark();
	if (dmx_suspend(m->origin)) {
		snprintf(m->why, sizeof(m->why), "cannot suspend %s", m->origin);
		goto undo_origin;
	}
	/* Suspended: nothing printed from here until a resume. */
	if (make_meta(m))
		goto undo_origin;
	plan_table(&m->p, &tbl);
	if (dmx_load(m->origin, &tbl)) {
		dmx_table_free(&tbl);
		snprintf(m->why, sizeof(m->why), "the kernel refused the stream table for %s",
			 m->origin);
		goto undo_origin;
	}
	dmx_table_free(&tbl);
	if (dmx_resume(m->origin)) {
		snprintf(m->why, sizeof(m->why), "%s did not resume as a stream", m->origin);
		/* Its live table may be the stream now: the old one goes back. */
		if (dmx_load(m->origin, &m->origin_tbl))
			dmx_clear(m->origin);
		goto undo_origin;
	}
	return EXIT_OK;

undo_origin:
	dmx_clear(m->origin);
	if (dmx_resume(m->origin))
		err("%s: could not resume it: it is still suspended", m->origin);
	err("%s", m->why);
	explain_refusal(m->origin);
	back_rw(m->snap, &m->snap_tbl);
undo_skip:
	if (skip_set && lvm_skip(m->vg, m->lv, false))
		err("%s: could not clear LVM's activation skip flag: lvm lvchange -kn %s/%s",
		    m->name, m->vg, m->lv);
	err("%s: not merged; it is back on its own table", m->name);
	return EXIT_FAIL;
}

static void merge_started(const struct merge *m)
{
	char a[32], b[32], c[32];

	if (m->cont)
		printf("%s: continuing the merge of %s\n", m->name, m->snap);
	else
		printf("%s: seeded %" PRIu64 " of %" PRIu64 " regions as copied: %" PRIu64
		       " exceptions of %s in %s\n", m->name, m->p.seed.nr_set,
		       m->p.seed.nr_regions, m->nr_exceptions,
		       fmt_bytes((uint64_t)m->st.chunk * 512, a, sizeof(a)), m->cow.path);
	printf("%s: merging %s into %u:%u in %s regions (%s to copy)%s; %s\n", m->name,
	       m->snap, m->st.real_major, m->st.real_minor,
	       fmt_bytes(m->p.region * 512, b, sizeof(b)),
	       m->cont ? "what is left" :
	       fmt_bytes((m->p.seed.nr_regions - m->p.seed.nr_set) * m->p.region * 512, c,
			 sizeof(c)),
	       m->o->rate_set && m->o->rate_kib ? ", rate limited" : "",
	       m->o->rollback ? "it shows the snapshot's content" :
	       "the snapshot's users go on, on the stream");
	if (!m->o->rollback && m->origin[0])
		printf("%s: %s is read-only until the merge is finished\n", m->name, m->origin);
	if (m->lvm)
		printf("%s: LVM's activation skip flag is set on %s/%s until the finish: after "
		       "a crash, 'lvm lvchange -ay -K %s/%s' and this merge command again\n",
		       m->name, m->vg, m->lv, m->vg, m->lv);
	fflush(stdout);
}

int cmd_merge(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct merge m;
	int r;

	(void)argc;
	memset(&m, 0, sizeof(m));
	m.cmd = cmd;
	m.o = o;
	m.snap = argv[0];
	o->mirror = false;
	if (!o->meta)
		return usage_error(cmd, "--meta is needed");
	r = merge_devices(&m);
	if (!r)
		r = merge_plan(&m);
	if (!r)
		r = o->rollback ? switch_rollback(&m) : switch_live(&m);
	if (!r) {
		merge_started(&m);
		if (o->finish)
			r = wait_and_finish(m.name, m.p.dest.path, o);
	}
	plan_free(&m.p);
	dmx_table_free(&m.snap_tbl);
	dmx_table_free(&m.origin_tbl);
	return r;
}

/*---------------------------------------------------------------------------*/
/* The end of a --rollback merge, for finish */
/* The snapshot device @si that stream @t's origin is, over @t's destination. */
static bool origin_snapshot(const struct stream_table *t, struct dmx_info *si)
{
	struct dmx_table st;
	struct snap_table s;
	char why[128];
	bool ours;

	if (dmx_info_devno(t->origin_major, t->origin_minor, si) || !si->exists)
		return false;
	if (dmx_table(si->name, &st))
		return false;
	ours = !parse_snapshot(&st, &s, why, sizeof(why)) && s.real_major == t->dest_major &&
	       s.real_minor == t->dest_minor;
	dmx_table_free(&st);
	return ours;
}

bool merge_is_merge(const struct stream_table *t)
{
	struct dmx_info si;

	return origin_snapshot(t, &si);
}

bool merge_rollback_end(const char *name, const struct stream_table *t, uint64_t len,
			struct dmx_table *tbl, struct merge_end *e)
{
	struct dmx_info si, ni;

	memset(e, 0, sizeof(*e));
	if (!origin_snapshot(t, &si) ||
	    !strncmp(si.uuid, ORIGIN_UUID_PREFIX, strlen(ORIGIN_UUID_PREFIX)))
		return false;
	snprintf(e->snap, sizeof(e->snap), "%s", si.name);
	e->lvm = !dmx_info(name, &ni) && ni.exists &&
		 lvm_names(&ni, e->vg, sizeof(e->vg), e->lv, sizeof(e->lv)) &&
		 lvm_names(&si, e->vg, sizeof(e->vg), e->snap_lv, sizeof(e->snap_lv));
	if (e->lvm)
		dmx_table_one(tbl, len, "snapshot-origin", "%u:%u", t->dest_major, t->dest_minor);
	else
		dmx_table_one(tbl, len, "linear", "%u:%u 0", t->dest_major, t->dest_minor);
	return true;
}

int merge_rollback_release(const char *name, const struct merge_end *e)
{
	char vglv[260];
	const char *rm[] = { "lvremove", "-q", "-f", vglv, NULL };

	if (!e->lvm) {
		if (dmx_remove(e->snap)) {
			err("%s: merged, but the snapshot %s could not be removed: 'dmsetup remove "
			    "%s' later", name, e->snap, e->snap);
			return EXIT_FAIL;
		}
		printf("%s: removed the snapshot %s\n", name, e->snap);
		return EXIT_OK;
	}
	snprintf(vglv, sizeof(vglv), "%s/%s", e->vg, e->snap_lv);
	if (run_lvm(rm)) {
		err("%s: merged, but 'lvm lvremove -f %s' failed: run it, then 'lvm lvchange -kn "
		    "%s/%s'", name, vglv, e->vg, e->lv);
		return EXIT_FAIL;
	}
	if (lvm_skip(e->vg, e->lv, false)) {
		err("%s: merged and the snapshot removed, but 'lvm lvchange -kn %s/%s' failed: "
		    "run it, or LVM will not activate %s/%s by default", name, e->vg, e->lv, e->vg,
		    e->lv);
		return EXIT_FAIL;
	}
	printf("%s: removed the LVM snapshot %s and cleared %s/%s's activation skip flag\n",
	       name, vglv, e->vg, e->lv);
	return EXIT_OK;
}
