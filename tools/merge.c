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
#include <sys/mman.h>
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
	bool ours;			/* the metadata device holds this merge's */
	bool cont;			/* continuing it */
	bool formatted;			/* the metadata was formatted by this run */
	uint64_t rec_exceptions;	/* what it recorded of the store */
	uint64_t new_exceptions;	/* --rollback, continued: added since */
	uint32_t rec_csum;
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
	char why[256], devt[32], path[160];
	struct blockdev od;

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
	/*
	 * Its content changes under its users at the switch: a filesystem
	 * (or anything else holding it exclusively) keeps what it cached.
	 */
	snprintf(path, sizeof(path), "/dev/mapper/%s", m->origin);
	devt_str(m->origin_info.major, m->origin_info.minor, devt, sizeof(devt));
	if (blockdev_get(devt, &od))
		return EXIT_FAIL;
	if (blockdev_busy(&od)) {
		err("%s is mounted or held exclusively: a rollback changes its content under its "
		    "users, and a filesystem would keep what it cached (corrupting itself); "
		    "unmount it first (LVM defers such a merge to the next activation)", path);
		return EXIT_FAIL;
	}
	if (!strncmp(m->origin_info.uuid, LVM_UUID_PREFIX, strlen(LVM_UUID_PREFIX))) {
		m->lvm = lvm_names(&m->origin_info, m->vg, sizeof(m->vg), m->lv, sizeof(m->lv));
		if (!m->lvm) {
			err("%s has an LVM uuid, but its name is no VG-LV name: refusing, since its "
			    "activation skip flag could not be set", m->origin);
			return EXIT_FAIL;
		}
	}
	m->name = m->origin;
	return 0;
}

/*
 * Before anything: what the metadata device holds. Metadata of this merge
 * (its identity record says merge, the same device and direction) is
 * continued, in its own region size; the metadata of any other merge is
 * refused even with --force, since a merge's metadata must never be
 * formatted again while that merge is unfinished (seeding again would copy
 * the snapshot over writes made since). Anything else: as for copy.
 */
static int merge_meta_peek(struct merge *m)
{
	uint32_t want = STREAM_ID_OPT_MERGE | (m->o->rollback ? STREAM_ID_OPT_ROLLBACK : 0);
	const struct stream_identity_disk *id;
	struct meta_sb sb;
	bool in_use;
	uint64_t size;
	int fd, r;

	fd = meta_open(m->o->meta, false, &in_use, &size);
	if (fd < 0)
		return EXIT_FAIL;
	r = meta_read_sb(fd, &sb);
	close(fd);
	if (r)
		return EXIT_FAIL;
	if (in_use) {
		err("metadata device %s is in use", m->o->meta);
		return EXIT_FAIL;
	}
	id = &sb.identity;
	if (sb.magic != STREAM_MAGIC || !sb.has_identity ||
	    !(le32toh(id->options) & STREAM_ID_OPT_MERGE))
		return 0;
	if (meta_sb_header_problem(&sb)) {
		err("refusing metadata device %s: it holds the metadata of a merge, damaged (%s): "
		    "it can be neither continued nor overwritten by %s; zero its first 4 KiB "
		    "yourself if that merge is over", m->o->meta, meta_sb_header_problem(&sb),
		    progname);
		return EXIT_METADATA;
	}
	if ((le32toh(id->options) & (STREAM_ID_OPT_MERGE | STREAM_ID_OPT_ROLLBACK)) != want ||
	    strncmp(id->name, m->name, sizeof(id->name))) {
		err("refusing metadata device %s: it holds the metadata of a%s merge of %.128s. "
		    "Continue that one with its own command; once it is finished, zero the "
		    "device's first 4 KiB to reuse it", m->o->meta,
		    le32toh(id->options) & STREAM_ID_OPT_ROLLBACK ? " --rollback" : "", id->name);
		return EXIT_METADATA;
	}
	if (m->o->region_bytes && m->o->region_bytes != (uint64_t)sb.region_size * 512) {
		err("%s holds this merge's metadata, in regions of %u sectors: continue it without "
		    "--region-size, or with that size", m->o->meta, sb.region_size);
		return EXIT_USAGE;
	}
	if (le32toh(id->merge_chunk) != m->st.chunk) {
		err("refusing to continue: %s holds the metadata of a merge of a snapshot in chunks "
		    "of %u sectors, and %s's are of %u", m->o->meta, le32toh(id->merge_chunk),
		    m->snap, m->st.chunk);
		return EXIT_METADATA;
	}
	m->o->region_bytes = (uint64_t)sb.region_size * 512;
	m->rec_exceptions = le64toh(id->merge_exceptions);
	m->rec_csum = le32toh(id->merge_csum);
	m->ours = true;
	return 0;
}

/*
 * The metadata device, after the checks, as plan.c prepares it for a copy:
 * blank, or (--force) made so; this merge's own is continued, and never
 * forced (merge_meta_peek() refused it if it does not fit).
 */
static int merge_meta(struct merge *m)
{
	int r = plan_prepare_meta(&m->p, m->st.len, m->ours, m->o->force && !m->ours);

	if (r)
		return r == -2 ? EXIT_METADATA : EXIT_FAIL;
	m->cont = !m->p.format;
	if (m->ours && !m->cont) {
		err("internal error: %s was to be continued", m->p.meta.path);
		return EXIT_FAIL;
	}
	return 0;
}

static int check_store(struct merge *m);

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
	r = merge_meta_peek(m);
	if (r)
		return r;
	if (m->ours && !m->o->rollback && m->snap_info.open_count) {
		err("%s is open: after the merge stopped, nothing may use it until the merge "
		    "continues (its exceptions are older than what the merge wrote to the "
		    "origin's device); close it, then run this command again", m->snap);
		return EXIT_FAIL;
	}
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
	    check_target(&present) || check_target_options(m->o) ||
	    plan_check_free(&p->meta, "metadata"))
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
	r = merge_meta(m);
	if (r)
		return r;
	/*
	 * A continued merge's store, checked now for a clear refusal before
	 * anything changes (the kernel would otherwise refuse the table on
	 * its origin samples); again while suspended, where it counts.
	 */
	if (m->cont && check_store(m)) {
		err("%s", m->why);
		m->why[0] = '\0';
		return EXIT_FAIL;
	}
	/* What the suspended part needs, allocated now. */
	if (!m->cont) {
		seed_init(&p->seed, m->st.len, p->region);
		p->seeded = true;
	}
	return 0;
}

/*---------------------------------------------------------------------------*/
/* The store, read while suspended */
struct read_ctx {
	struct merge *m;
	bool seed;		/* a new merge: seed and pick samples */
	uint64_t k;		/* exceptions seen */
	uint64_t prefix;	/* the first so many go into crc */
	uint32_t crc;
	uint64_t pick[STREAM_NR_SAMPLES];
};

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/*
 * Each exception: the fingerprint; for a new merge its chunk's regions are
 * to be copied, and it is a sample candidate.
 */
static int on_exception(void *arg, uint64_t old_chunk, uint64_t new_chunk)
{
	struct read_ctx *c = arg;
	uint64_t chunk = c->m->st.chunk, j, pair[2] = { htole64(old_chunk), htole64(new_chunk) };

	if (c->k < c->prefix)
		c->crc = meta_crc32c_more(c->crc, pair, sizeof(pair));
	if (c->seed) {
		seed_clear_sectors(&c->m->p.seed, old_chunk * chunk, (old_chunk + 1) * chunk);
		/* A reservoir of exceptions, spread over the store, for the samples. */
		if (c->k < STREAM_NR_SAMPLES) {
			c->pick[c->k] = old_chunk;
		} else {
			j = mix64(c->k) % (c->k + 1);
			if (j < STREAM_NR_SAMPLES)
				c->pick[j] = old_chunk;
		}
	}
	c->k++;
	return 0;
}

/* Reads the store into @c; -1 with the reason in m->why. */
static int read_store(struct merge *m, struct read_ctx *c)
{
	struct snapstore ss;
	int fd, r;

	c->m = m;
	c->k = 0;
	c->crc = 0xffffffffU;	/* meta_crc32c()'s seed */
	fd = open(m->cow.path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		fd = open(m->cow.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(m->why, sizeof(m->why), "cannot open the exception store %s: %s",
			 m->cow.path, strerror(errno));
		return -1;
	}
	r = snapstore_read(fd, m->cow.size, m->st.chunk, m->st.len, on_exception, c, &ss,
			   m->why, sizeof(m->why));
	close(fd);
	if (r) {
		char tmp[sizeof(m->why)];

		memcpy(tmp, m->why, sizeof(tmp));
		snprintf(m->why, sizeof(m->why), "exception store %.200s refused: %.500s",
			 m->cow.path, tmp);
		return -1;
	}
	return 0;
}

/*
 * A continued merge: the store must be the one the seed came from. Its
 * recorded exceptions come first, unchanged (a store only grows). A new one
 * in a live merge is a write to SNAP since the merge stopped, which the
 * merge would lose (its region may be copied already, or seeded): refused.
 * With --rollback SNAP is read-only and a new exception comes from a write
 * to ORIGIN, REAL's old content copied aside: in a copied region the merge
 * never reads it, in an uncopied one it is that region's content as the
 * snapshot saw it (the stream had not written there). Either way the merge
 * stays right; such a write to the half-merged ORIGIN is kept or not, as
 * its region was copied or not, which continuing says.
 */
static int check_store(struct merge *m)
{
	struct read_ctx c = { .prefix = m->rec_exceptions };

	if (read_store(m, &c))
		return -1;
	if (c.k < m->rec_exceptions || c.crc != m->rec_csum) {
		snprintf(m->why, sizeof(m->why), "refusing to continue: the exception store %s is "
			 "not the one this merge started from (it recorded %" PRIu64 " exceptions, "
			 "the store holds %" PRIu64 "%s)", m->cow.path, m->rec_exceptions, c.k,
			 c.k >= m->rec_exceptions ? ", others" : "");
		return -1;
	}
	m->new_exceptions = c.k - m->rec_exceptions;
	if (m->new_exceptions && !m->o->rollback) {
		snprintf(m->why, sizeof(m->why), "refusing to continue: %s was written since the "
			 "merge stopped (%" PRIu64 " new exceptions); the merge would lose those "
			 "writes", m->snap, m->new_exceptions);
		return -1;
	}
	return 0;
}

/*
 * The seed from the store, and the origin samples in chunks that hold an
 * exception: only there does the snapshot's content not change during the
 * merge (elsewhere it shows REAL, which the stream writes).
 */
static int read_seed(struct merge *m)
{
	struct read_ctx c = { .seed = true, .prefix = UINT64_MAX };
	uint64_t sector, i;

	seed_set_all(&m->p.seed);
	if (read_store(m, &c))
		return -1;
	m->nr_exceptions = c.k;
	m->p.merge_exceptions = c.k;
	m->p.merge_csum = c.crc;
	m->p.merge_chunk = m->st.chunk;
	m->p.samples_set = true;
	for (i = 0; i < STREAM_NR_SAMPLES && i < c.k; i++) {
		sector = c.pick[i] * m->st.chunk;
		if (m->st.chunk >= STREAM_SAMPLE_SECTORS &&
		    sector + STREAM_SAMPLE_SECTORS <= m->st.len)
			m->p.samples[m->p.nr_samples++] = sector;
	}
	return 0;
}

/*
 * While suspended: the snapshot is still sound (a PO store's overflow is
 * only in its status); a new merge's seed and metadata, or a continued
 * merge's store checked.
 */
static int make_meta(struct merge *m)
{
	char why[256];

	if (snapshot_healthy(m->snap, why, sizeof(why))) {
		snprintf(m->why, sizeof(m->why), "%s: %s", m->snap, why);
		return -1;
	}
	if (m->cont)
		return check_store(m);
	if (read_seed(m))
		return -1;
	if (plan_format_meta(&m->p)) {
		snprintf(m->why, sizeof(m->why), "cannot format metadata device %s",
			 m->p.meta.path);
		return -1;
	}
	m->formatted = true;
	return 0;
}

/*
 * After a failed switch, with no stream table live: metadata formatted for
 * it goes (block 0 zeroed), so that a later run seeds again from the store
 * as it is then, rather than continuing a seed that may be stale.
 */
static void unformat(struct merge *m)
{
	bool in_use;
	uint64_t size;
	int fd;

	if (!m->formatted)
		return;
	fd = meta_open(m->p.meta.path, true, &in_use, &size);
	if (fd < 0 || in_use || meta_wipe(fd))
		err("%s: zero the first 4 KiB of metadata device %s before merging again: it "
		    "holds a seed that may be out of date", m->name, m->p.meta.path);
	if (fd >= 0)
		close(fd);
	m->formatted = false;
}

/*---------------------------------------------------------------------------*/
/* The switch */
/* @name back on its own table, as read-only as it was. */
static void back_table(const char *name, const struct dmx_table *tbl, bool ro)
{
	if (dmx_load_ro(name, tbl, ro) || dmx_resume(name))
		err("%s: could not put its table back: 'dmsetup table %s', then reload it%s", name,
		    name, ro ? " with --readonly" : " without --readonly");
}

/* Reloads @name read-only on its own table; back as it was on a failure. */
static int make_ro(const char *name, const struct dmx_table *tbl, bool was_ro)
{
	if (!dmx_load_ro(name, tbl, true)) {
		if (!dmx_resume(name))
			return 0;
		/* The read-only table may be live, and the device suspended. */
		back_table(name, tbl, was_ro);
	} else {
		dmx_clear(name);
	}
	err("%s: could not make it read-only", name);
	return -1;
}

/* Before a suspend: no page of ours is to be read from a suspended device. */
static void lock_memory(void)
{
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		info("cannot lock the tool's memory (%s): going on", strerror(errno));
}

/*
 * The live merge. The helper exists first, so that SNAP's stream table can
 * be loaded (and refused) before the snapshot's exceptions move: then the
 * helper takes the snapshot table and, at its resume, SNAP's exceptions
 * (SNAP suspended); SNAP resumes as the stream. Until that handover, going
 * back is only dropping the helper; after it, the exceptions are handed
 * back to SNAP.
 *
 * A new merge loads the stream table once SNAP is suspended and the store
 * read; the helper's first table is then `error` (the constructor reads no
 * origin sample: they are only wanted). A continued merge's constructor
 * compares the samples it took, so the helper's first table is `linear`
 * on SNAP, and the stream table is loaded while SNAP still runs.
 */
static int switch_live(struct merge *m)
{
	const char *helper = m->p.helper;
	bool origin_ro = m->origin_info.read_only;
	struct dmx_table tbl;
	struct dmx_info hi;
	char uuid[64];

	if (m->origin[0] && make_ro(m->origin, &m->origin_tbl, origin_ro))
		return EXIT_FAIL;
	helper_uuid(uuid, sizeof(uuid));
	if (m->cont)
		dmx_table_one(&tbl, m->st.len, "linear", "%u:%u 0", m->snap_info.major,
			      m->snap_info.minor);
	else
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
	if (m->cont) {
		plan_table(&m->p, &tbl);
		if (dmx_load(m->snap, &tbl)) {
			dmx_table_free(&tbl);
			err("the kernel refused the stream table for %s", m->snap);
			explain_refusal(m->snap);
			goto undo_helper;
		}
		dmx_table_free(&tbl);
	}
	lock_memory();
	if (dmx_suspend(m->snap)) {
		snprintf(m->why, sizeof(m->why), "cannot suspend %s", m->snap);
		goto undo_suspended;
	}
	/* Suspended: nothing printed from here until a resume. */
	if (make_meta(m))
		goto undo_suspended;
	if (!m->cont) {
		plan_table(&m->p, &tbl);
		if (dmx_load(m->snap, &tbl)) {
			dmx_table_free(&tbl);
			snprintf(m->why, sizeof(m->why),
				 "the kernel refused the stream table for %s", m->snap);
			goto undo_suspended;
		}
		dmx_table_free(&tbl);
	}
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
	dmx_clear(m->snap);
	if (dmx_remove(helper))
		err("%s: the helper %s could not be removed", m->snap, helper);
undo_origin:
	unformat(m);
	if (m->origin[0])
		back_table(m->origin, &m->origin_tbl, origin_ro);
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
	bool snap_ro = m->snap_info.read_only, skip_set = false;
	struct dmx_table tbl;

	if (m->lvm && !m->cont) {
		if (lvm_skip(m->vg, m->lv, true)) {
			err("%s: cannot set LVM's activation skip flag of %s/%s (lvm lvchange "
			    "-ky): not merged", m->name, m->vg, m->lv);
			return EXIT_FAIL;
		}
		skip_set = true;
	}
	if (make_ro(m->snap, &m->snap_tbl, snap_ro))
		goto undo_skip;
	m->p.origin_major = m->snap_info.major;
	m->p.origin_minor = m->snap_info.minor;

	dmx_kmsg_mark();
	lock_memory();
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
	if (!dmx_resume(m->origin))
		return EXIT_OK;
	/*
	 * The stream's resume failed, and its table is live: the old one goes
	 * back in with a resume of its own. Until ORIGIN runs on it, SNAP is
	 * the stream's origin and stays read-only, and the metadata stays.
	 */
	snprintf(m->why, sizeof(m->why), "%s did not resume as a stream", m->origin);
	if (dmx_load_ro(m->origin, &m->origin_tbl, m->origin_info.read_only) ||
	    dmx_resume(m->origin)) {
		err("%s", m->why);
		explain_refusal(m->origin);
		err("%s: could not put its own table back: %s", m->origin,
		    stream_left(m->origin));
		return EXIT_FAIL;
	}
	err("%s", m->why);
	explain_refusal(m->origin);
	goto undo_snap;

undo_origin:
	dmx_clear(m->origin);
	if (dmx_resume(m->origin))
		err("%s: could not resume it: it is still suspended", m->origin);
	err("%s", m->why);
	explain_refusal(m->origin);
undo_snap:
	unformat(m);
	back_table(m->snap, &m->snap_tbl, snap_ro);
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

	if (m->new_exceptions)
		warn("%s: %" PRIu64 " chunks of %s were written since the merge stopped (new "
		     "exceptions): the merge is not changed by them, but such a write is kept "
		     "only where its region was already copied", m->name, m->new_exceptions,
		     m->origin);
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
	if (!r) {
		r = o->rollback ? switch_rollback(&m) : switch_live(&m);
		munlockall();
	}
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

int merge_forget_meta(const char *name, const struct stream_table *t)
{
	struct blockdev md;
	char devt[32];
	bool in_use;
	uint64_t size;
	int fd, r = -1;

	devt_str(t->meta_major, t->meta_minor, devt, sizeof(devt));
	if (!blockdev_get(devt, &md)) {
		fd = meta_open(md.path, true, &in_use, &size);
		if (fd >= 0) {
			if (!in_use)
				r = meta_wipe(fd);
			close(fd);
		}
	}
	if (r) {
		err("%s: merged, but its metadata device %s could not be zeroed: zero its first "
		    "4 KiB before any other use (a merge's metadata is continued by the next "
		    "merge of the same name)", name, devt);
		return EXIT_FAIL;
	}
	printf("%s: zeroed the merge's metadata device %s\n", name, devt);
	return EXIT_OK;
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
