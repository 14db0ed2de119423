// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: the offline metadata commands, `check` and `dump`, and
 * `exceptions`, which reads a dm-snapshot exception store (snapstore.c).
 *
 * Both read a metadata device (or an image of one) through meta.c's scan
 * and say what it finds: check as a verdict and an exit code, dump as the
 * superblock, the bitmap slots and the runs of copied and uncopied regions,
 * in text or JSON. Neither touches a dm device.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream-format.h"
#include "cli.h"
#include "identity.h"
#include "meta.h"
#include "snapstore.h"
#include "util.h"

/*---------------------------------------------------------------------------*/
/* Problems */
/*
 * Problems go to stderr (in check's words) unless quiet: the first
 * PROBLEMS_SHOWN of each severity, then report_hidden() counts the rest. A
 * device whose every bitmap block is bad has one problem per block, up to
 * 65923 of them.
 */
#define PROBLEMS_SHOWN	20

static const char *const problem_kind[] = { "note", "warning", "error" };

struct problem_ctx {
	const char *dev;
	bool quiet;
	char first_fatal[512];
	unsigned int shown[3], hidden[3];	/* by enum meta_severity */
};

static void report_problem(void *ctx, enum meta_severity sev, const char *msg)
{
	struct problem_ctx *p = ctx;

	if (sev == META_FATAL && !p->first_fatal[0])
		snprintf(p->first_fatal, sizeof(p->first_fatal), "%s", msg);
	if (p->quiet)
		return;
	if (p->shown[sev] == PROBLEMS_SHOWN) {
		p->hidden[sev]++;
		return;
	}
	p->shown[sev]++;
	fprintf(stderr, "%s: %s: %s\n", p->dev, problem_kind[sev], msg);
}

/* "... and 65903 more errors, 2 more notes (not shown)" after the last. */
static void report_hidden(const struct problem_ctx *p)
{
	const char *sep = "";
	int sev;

	if (p->quiet || !(p->hidden[0] | p->hidden[1] | p->hidden[2]))
		return;
	fprintf(stderr, "%s: ... and", p->dev);
	for (sev = META_FATAL; sev >= META_NOTE; sev--) {
		if (!p->hidden[sev])
			continue;
		fprintf(stderr, "%s %u more %s%s", sep, p->hidden[sev], problem_kind[sev],
			p->hidden[sev] == 1 ? "" : "s");
		sep = ",";
	}
	fprintf(stderr, " (not shown: only the first %u of each kind are)\n", PROBLEMS_SHOWN);
}

/*---------------------------------------------------------------------------*/
/* check */
int cmd_check(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct problem_ctx pc = { .dev = argv[0], .quiet = o->quiet };
	struct meta_scan_ops ops = { .ctx = &pc, .problem = report_problem };
	struct meta_scan_result res;
	uint64_t size;
	bool in_use;
	int fd, r;

	(void)cmd;
	(void)argc;
	fd = meta_open(argv[0], false, &in_use, &size);
	if (fd < 0)
		return EXIT_FAIL;
	if (in_use && !o->quiet)
		warn("%s is in use (a live table?): what is read may be changing", argv[0]);
	r = meta_scan(fd, size, o->sb_only, &ops, &res);
	close(fd);
	report_hidden(&pc);
	if (r)
		return EXIT_FAIL;

	if (res.sb.blank && !res.fatal) {
		if (!o->quiet)
			printf("%s: blank: no metadata yet (the kernel formats it on first use)\n",
			       argv[0]);
		return EXIT_OK;
	}
	if (!o->quiet) {
		if (res.sb_valid)
			printf("%s: superblock: version %" PRIu32 ", transaction %" PRIu64
			       ", %" PRIu64 " regions of %" PRIu32 " sectors, %" PRIu64 " copied\n",
			       argv[0], res.sb.version, res.sb.transaction_id, res.sb.nr_regions,
			       res.sb.region_size, res.sb.nr_copied);
		if (res.bitmap_scanned)
			printf("%s: bitmap: %" PRIu64 " block%s checked, %" PRIu64
			       " regions copied\n", argv[0], res.sb.nr_bitmap_blocks,
			       res.sb.nr_bitmap_blocks == 1 ? "" : "s", res.bits_set);
		if (!res.fatal && !res.nonfatal)
			printf("%s: ok\n", argv[0]);
		else
			printf("%s: %u error%s, %u non-fatal error%s\n", argv[0], res.fatal,
			       res.fatal == 1 ? "" : "s", res.nonfatal, res.nonfatal == 1 ? "" : "s");
	}
	if (res.fatal || (res.nonfatal && !o->ignore_nonfatal))
		return EXIT_METADATA;
	return EXIT_OK;
}

/*---------------------------------------------------------------------------*/
/* dump */

/*
 * dump keeps no list in memory: a device of 2^31 regions can have as many
 * runs. What cannot go to stdout as the scan finds it (all of the JSON,
 * which starts with the superblock and holds its arrays one after the
 * other; the two run lines of the text) goes to unlinked temporary files,
 * copied to stdout at the end.
 */
struct dump_list {
	FILE *f;
	uint64_t n;		/* items written */
};

struct dump_ctx {
	bool json;
	struct problem_ctx pc;
	/* JSON arrays by their key; copied and uncopied serve the text too. */
	struct dump_list blocks, copied, uncopied, problems;
};

static int list_open(struct dump_list *l)
{
	l->n = 0;
	l->f = xtmpfile();
	return l->f ? 0 : -1;
}

static void list_close(struct dump_list *l)
{
	if (l->f)
		fclose(l->f);
	l->f = NULL;
}

/* Appends @o, serialised, to a JSON array's items, and frees it. */
static void list_add_json(struct dump_list *l, json_object *o)
{
	fprintf(l->f, "%s%s", l->n++ ? "," : "",
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* Copies what @l holds to @out. */
static int list_copy(struct dump_list *l, FILE *out)
{
	char buf[65536];
	size_t n;

	if (fflush(l->f) || ferror(l->f) || fseek(l->f, 0, SEEK_SET)) {
		err("cannot write a temporary file (is %s full?)", tmp_dir());
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), l->f)))
		fwrite(buf, 1, n, out);
	if (ferror(l->f)) {
		err("cannot read back a temporary file: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Problems to stderr, as check prints them, and into the JSON. */
static void dump_problem(void *ctx, enum meta_severity sev, const char *msg)
{
	struct dump_ctx *d = ctx;

	report_problem(&d->pc, sev, msg);
	if (d->json) {
		json_object *p = json_object_new_object();

		json_object_object_add(p, "severity", json_object_new_string(problem_kind[sev]));
		json_object_object_add(p, "message", json_object_new_string(msg));
		list_add_json(&d->problems, p);
	}
}

static void dump_block(void *ctx, uint64_t index, const struct meta_slot_info slot[2], int used)
{
	struct dump_ctx *d = ctx;
	unsigned int s;

	if (d->json) {
		json_object *b = json_object_new_object(), *slots = json_object_new_array();

		json_object_object_add(b, "index", json_object_new_uint64(index));
		json_object_object_add(b, "used_slot", used < 0 ? NULL : json_object_new_int(used));
		for (s = 0; s < 2; s++) {
			json_object *so = json_object_new_object();

			json_object_object_add(so, "block", json_object_new_uint64(slot[s].location));
			json_object_object_add(so, "valid", json_object_new_boolean(slot[s].valid));
			if (!slot[s].valid)
				json_object_object_add(so, "problem", json_object_new_string(slot[s].why));
			json_object_object_add(so, "transaction_id",
					       json_object_new_uint64(slot[s].transaction_id));
			json_object_object_add(so, "uncommitted",
					       json_object_new_boolean(slot[s].future));
			json_object_array_add(slots, so);
		}
		json_object_object_add(b, "slots", slots);
		list_add_json(&d->blocks, b);
		return;
	}
	printf("bitmap block %" PRIu64 ":", index);
	for (s = 0; s < 2; s++) {
		printf("%s slot %u (block %" PRIu64 ") ", s ? ";" : "", s, slot[s].location);
		if (slot[s].valid)
			printf("transaction %" PRIu64 "%s%s", slot[s].transaction_id,
			       slot[s].future ? ", uncommitted" : "", (int)s == used ? ", in use" : "");
		else
			printf("invalid: %s", slot[s].why);
	}
	printf("\n");
}

/* A run: [first,last] in JSON (as json-c prints it), " 5" or " 5-9" in text. */
static void dump_range(void *ctx, bool copied, uint64_t first, uint64_t last)
{
	struct dump_ctx *d = ctx;
	struct dump_list *l = copied ? &d->copied : &d->uncopied;

	if (d->json)
		fprintf(l->f, "%s[%" PRIu64 ",%" PRIu64 "]", l->n ? "," : "", first, last);
	else if (first == last)
		fprintf(l->f, " %" PRIu64, first);
	else
		fprintf(l->f, " %" PRIu64 "-%" PRIu64, first, last);
	l->n++;
}

/* The superblock's fields by their names in the struct, in its order. */
static json_object *sb_json(const struct meta_sb *sb)
{
	const struct { const char *key; uint64_t value; } fields[] = {
		{ "flags", sb->flags }, { "blocknr", sb->blocknr }, { "magic", sb->magic },
		{ "version", sb->version }, { "block_size", sb->block_size },
		{ "region_size", sb->region_size }, { "target_size", sb->target_size },
		{ "nr_regions", sb->nr_regions }, { "origin_size", sb->origin_size },
		{ "dest_size", sb->dest_size }, { "nr_bitmap_blocks", sb->nr_bitmap_blocks },
		{ "transaction_id", sb->transaction_id }, { "nr_copied", sb->nr_copied },
	};
	json_object *o = json_object_new_object();
	size_t i;

	json_object_object_add(o, "csum", json_object_new_uint64(sb->csum));
	json_object_object_add(o, "csum_ok", json_object_new_boolean(sb->csum == sb->csum_calc));
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		json_object_object_add(o, fields[i].key, json_object_new_uint64(fields[i].value));
	return o;
}

static void sb_print(const struct meta_sb *sb)
{
	char a[32];

	printf("superblock (block 0)\n");
	printf("  csum              0x%08" PRIx32 " (%s)\n", sb->csum,
	       sb->csum == sb->csum_calc ? "ok" : "MISMATCH");
	printf("  flags             0x%" PRIx32 "\n", sb->flags);
	printf("  blocknr           %" PRIu64 "\n", sb->blocknr);
	printf("  magic             0x%" PRIx64 "%s\n", sb->magic,
	       sb->magic == STREAM_MAGIC ? " (DMTSTRM)" : " (WRONG)");
	printf("  version           %" PRIu32 "\n", sb->version);
	printf("  block_size        %" PRIu32 "\n", sb->block_size);
	printf("  region_size       %" PRIu32 " sectors (%s)\n", sb->region_size,
	       fmt_bytes((uint64_t)sb->region_size * 512, a, sizeof(a)));
	printf("  target_size       %" PRIu64 " sectors (%s)\n", sb->target_size,
	       fmt_sectors(sb->target_size, a, sizeof(a)));
	printf("  nr_regions        %" PRIu64 "\n", sb->nr_regions);
	printf("  origin_size       %" PRIu64 " sectors\n", sb->origin_size);
	printf("  dest_size         %" PRIu64 " sectors\n", sb->dest_size);
	printf("  nr_bitmap_blocks  %" PRIu64 "\n", sb->nr_bitmap_blocks);
	printf("  transaction_id    %" PRIu64 "\n", sb->transaction_id);
	printf("  nr_copied         %" PRIu64 "\n", sb->nr_copied);
}

/*
 * The identity record: null when there is none, {"valid": false} when it
 * is unsound (the problem is among the problems), else its fields.
 */
static json_object *identity_json(const struct meta_sb *sb)
{
	const struct stream_identity_disk *id = &sb->identity;
	json_object *o, *samples;
	char why[256];
	unsigned int i;

	if (!sb->has_identity)
		return NULL;
	o = json_object_new_object();
	if (meta_identity_problem(id, sb, why, sizeof(why))) {
		json_object_object_add(o, "valid", json_object_new_boolean(false));
		return o;
	}
	json_object_object_add(o, "valid", json_object_new_boolean(true));
	json_object_object_add(o, "options", json_object_new_uint64(le32toh(id->options)));
	json_object_object_add(o, "created", json_object_new_uint64(le64toh(id->created)));
	json_object_object_add(o, "name", json_object_new_string(id->name));
	json_object_object_add(o, "uuid", json_object_new_string(id->uuid));
	json_object_object_add(o, "rate_kib", json_object_new_uint64(le32toh(id->rate_kib)));
	json_object_object_add(o, "max_inflight",
			       json_object_new_uint64(le32toh(id->max_inflight)));
	json_object_object_add(o, "sample_checked",
			       json_object_new_uint64(le32toh(id->sample_checked)));
	json_object_object_add(o, "sample_wanted",
			       json_object_new_uint64(le32toh(id->sample_wanted)));
	samples = json_object_new_array();
	for (i = 0; i < STREAM_NR_SAMPLES; i++) {
		json_object *s = json_object_new_array();

		json_object_array_add(s, json_object_new_uint64(le64toh(id->sample_sector[i])));
		json_object_array_add(s, json_object_new_uint64(le32toh(id->sample_csum[i])));
		json_object_array_add(samples, s);
	}
	json_object_object_add(o, "samples", samples);
	json_object_object_add(o, "origin", identity_dev_json(&id->origin));
	json_object_object_add(o, "dest", identity_dev_json(&id->dest));
	json_object_object_add(o, "origin_table", json_object_new_string(id->origin_table));
	json_object_object_add(o, "merge_exceptions",
			       json_object_new_uint64(le64toh(id->merge_exceptions)));
	json_object_object_add(o, "merge_csum", json_object_new_uint64(le32toh(id->merge_csum)));
	json_object_object_add(o, "merge_chunk", json_object_new_uint64(le32toh(id->merge_chunk)));
	json_object_object_add(o, "min_rate_kib", json_object_new_uint64(le32toh(id->min_rate_kib)));
	json_object_object_add(o, "max_rate_kib", json_object_new_uint64(le32toh(id->max_rate_kib)));
	return o;
}

static void dev_identity_print(const char *role, const struct stream_device_identity_disk *d)
{
	printf("  %-17s %" PRIu64 " sectors, was %u:%u", role, (uint64_t)le64toh(d->size),
	       le32toh(d->major), le32toh(d->minor));
	if (d->dm_name[0])
		printf(", dm name %s", d->dm_name);
	if (d->dm_uuid[0])
		printf(", dm uuid %s", d->dm_uuid);
	if (d->wwn[0])
		printf(", WWN %s", d->wwn);
	if (d->serial[0])
		printf(", serial %s", d->serial);
	if (d->part_uuid[0])
		printf(", PARTUUID %s", d->part_uuid);
	if (d->fs_uuid[0])
		printf(", fs uuid %s", d->fs_uuid);
	printf("\n");
}

static void identity_print(const struct meta_sb *sb)
{
	const struct stream_identity_disk *id = &sb->identity;
	uint32_t opts, checked;
	char why[256];
	unsigned int i;

	if (!sb->has_identity) {
		printf("identity record: none\n");
		return;
	}
	if (meta_identity_problem(id, sb, why, sizeof(why))) {
		printf("identity record (byte %u): unsound: %s\n", STREAM_IDENTITY_OFFSET, why);
		return;
	}
	opts = le32toh(id->options);
	checked = le32toh(id->sample_checked);
	printf("identity record (byte %u)\n", STREAM_IDENTITY_OFFSET);
	printf("  name              %s\n", id->name);
	printf("  uuid              %s\n", id->uuid[0] ? id->uuid : "(none)");
	printf("  created           %" PRIu64 "\n", (uint64_t)le64toh(id->created));
	printf("  options          %s%s%s%s%s%s%s\n", opts & STREAM_ID_OPT_MIRROR ? " mirror" : "",
	       opts & STREAM_ID_OPT_NO_DISCARD_PASSDOWN ? " no_discard_passdown" : "",
	       opts & STREAM_ID_OPT_COPY_ON_READ ? " copy_on_read" : "",
	       opts & STREAM_ID_OPT_SKIP_ZEROES ? " skip_zeroes" : "",
	       opts & STREAM_ID_OPT_MERGE ? " merge" : "",
	       opts & STREAM_ID_OPT_ROLLBACK ? " rollback" : "", opts ? "" : " (none)");
	printf("  rate_kib          %" PRIu32 "\n", le32toh(id->rate_kib));
	printf("  min_rate_kib      %" PRIu32 "\n", le32toh(id->min_rate_kib));
	printf("  max_rate_kib      %" PRIu32 "\n", le32toh(id->max_rate_kib));
	printf("  max_inflight      %" PRIu32 "\n", le32toh(id->max_inflight));
	dev_identity_print("origin", &id->origin);
	dev_identity_print("destination", &id->dest);
	for (i = 0; i < STREAM_NR_SAMPLES; i++)
		if (checked & (1U << i))
			printf("  sample %u          sector %" PRIu64 ", crc32c 0x%08" PRIx32 "\n", i,
			       (uint64_t)le64toh(id->sample_sector[i]), le32toh(id->sample_csum[i]));
	for (i = 0; i < STREAM_NR_SAMPLES; i++)
		if (le32toh(id->sample_wanted) & (1U << i))
			printf("  sample %u          sector %" PRIu64 ", wanted: taken at the first "
			       "resume\n", i, (uint64_t)le64toh(id->sample_sector[i]));
	if (!checked && !id->sample_wanted)
		printf("  samples           none\n");
	if (id->origin_table[0])
		printf("  origin_table      %s\n", id->origin_table);
	if (opts & STREAM_ID_OPT_MERGE)
		printf("  merged store      %" PRIu64 " exceptions of %" PRIu32 " sectors, crc32c "
		       "0x%08" PRIx32 "\n", (uint64_t)le64toh(id->merge_exceptions),
		       le32toh(id->merge_chunk), le32toh(id->merge_csum));
}

/* A JSON value printed on its own, as json-c prints it inside an object. */
static void print_json(json_object *o)
{
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), stdout);
	json_object_put(o);
}

/* The JSON of dump, in the key order it always had. */
static int dump_json(struct dump_ctx *d, const char *dev, const struct meta_scan_result *res)
{
	static const char *const keys[] = { "bitmap_blocks", "copied", "uncopied" };
	struct dump_list *lists[] = { &d->blocks, &d->copied, &d->uncopied };
	unsigned int i;

	printf("{\"device\":");
	print_json(json_object_new_string(dev));
	printf(",\"blank\":%s", res->sb.blank ? "true" : "false");
	if (res->sb.magic == STREAM_MAGIC) {
		printf(",\"superblock\":");
		print_json(sb_json(&res->sb));
	}
	printf(",\"identity\":");
	if (res->sb.magic == STREAM_MAGIC && res->sb.has_identity)
		print_json(identity_json(&res->sb));
	else
		printf("null");
	for (i = 0; i < 3; i++) {
		printf(",\"%s\":[", keys[i]);
		if (list_copy(lists[i], stdout))
			return -1;
		printf("]");
	}
	if (res->bitmap_scanned)
		printf(",\"copied_regions\":%" PRIu64, res->bits_set);
	else
		printf(",\"copied_regions\":null");
	printf(",\"problems\":[");
	if (list_copy(&d->problems, stdout))
		return -1;
	printf("],\"errors\":%u,\"non_fatal_errors\":%u}\n", res->fatal, res->nonfatal);
	return 0;
}

int cmd_dump(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct dump_ctx d = { .json = o->json, .pc = { .dev = argv[0] } };
	struct meta_scan_ops ops = { .ctx = &d, .problem = dump_problem, .block = dump_block,
				     .range = dump_range };
	struct meta_scan_result res;
	struct meta_sb sb;
	uint64_t size;
	bool in_use;
	int fd, r = -1;

	(void)cmd;
	(void)argc;
	fd = meta_open(argv[0], false, &in_use, &size);
	if (fd < 0)
		return EXIT_FAIL;
	if (in_use)
		warn("%s is in use (a live table?): what is read may be changing", argv[0]);

	if (list_open(&d.copied) || list_open(&d.uncopied) ||
	    (o->json && (list_open(&d.blocks) || list_open(&d.problems))))
		goto out;
	if (!o->json) {
		/* The superblock first, then the blocks as the scan meets them. */
		if (size >= STREAM_BLOCK_SIZE && !meta_read_sb(fd, &sb) &&
		    sb.magic == STREAM_MAGIC) {
			sb_print(&sb);
			identity_print(&sb);
		}
		fflush(stdout);
	}
	r = meta_scan(fd, size, false, &ops, &res);
	report_hidden(&d.pc);
	if (r)
		goto out;

	if (o->json) {
		r = dump_json(&d, argv[0], &res);
	} else if (res.sb.blank) {
		printf("%s: blank: no metadata yet\n", argv[0]);
	} else if (res.bitmap_scanned) {
		printf("copied regions (%" PRIu64 "):%s", res.bits_set, d.copied.n ? "" : " none");
		r = list_copy(&d.copied, stdout);
		printf("\nuncopied regions (%" PRIu64 "):%s", res.sb.nr_regions - res.bits_set,
		       d.uncopied.n ? "" : " none");
		if (!r)
			r = list_copy(&d.uncopied, stdout);
		printf("\n");
	}
	if (fflush(stdout) || ferror(stdout)) {
		err("cannot write the output: %s", strerror(errno));
		r = -1;
	}
out:
	close(fd);
	list_close(&d.blocks);
	list_close(&d.copied);
	list_close(&d.uncopied);
	list_close(&d.problems);
	if (r)
		return EXIT_FAIL;
	return res.fatal ? EXIT_METADATA : EXIT_OK;
}

/*---------------------------------------------------------------------------*/
/* exceptions */

/*
 * The origin chunks a dm-snapshot store holds, gathered from snapstore_read()
 * then sorted: a store can list a chunk twice (the kernel never does; a
 * merge copies it once).
 */
struct chunk_list {
	uint64_t *v;
	size_t n, cap;
};

static int chunk_add(void *ctx, uint64_t old_chunk, uint64_t new_chunk)
{
	struct chunk_list *l = ctx;

	(void)new_chunk;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			err("out of memory for %zu chunks", cap);
			return -2;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = old_chunk;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct exc_summary {
	uint64_t chunks, runs;	/* distinct changed chunks, runs of them */
	uint64_t bytes;		/* changed bytes, within the origin when known */
	uint64_t regions;	/* regions of region_bytes a merge copies */
};

/*
 * Sorts and deduplicates @l, then counts. Byte offsets are 128-bit: without
 * --origin an old chunk is unchecked and its offset may pass 2^64.
 */
static void exc_summarize(struct chunk_list *l, uint64_t chunk_bytes, uint64_t origin_bytes,
			  uint64_t region_bytes, struct exc_summary *s)
{
	unsigned __int128 start, end, first, last, prev = 0;
	bool any = false;
	size_t i, n = 0;

	memset(s, 0, sizeof(*s));
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_u64);
	for (i = 0; i < l->n; i++)
		if (!n || l->v[n - 1] != l->v[i])
			l->v[n++] = l->v[i];
	l->n = n;
	for (i = 0; i < n; i++) {
		if (!i || l->v[i - 1] + 1 != l->v[i])
			s->runs++;
		start = (unsigned __int128)l->v[i] * chunk_bytes;
		end = start + chunk_bytes;
		if (origin_bytes && end > origin_bytes)
			end = origin_bytes;
		if (end <= start)
			continue;
		s->chunks++;
		s->bytes += (uint64_t)(end - start);
		first = start / region_bytes;
		last = (end - 1) / region_bytes;
		if (any && first <= prev)
			first = prev + 1;
		if (first <= last)
			s->regions += (uint64_t)(last - first + 1);
		prev = last;
		any = true;
	}
}

static void exc_json(const char *dev, const struct snapstore *ss, const struct chunk_list *l,
		     const struct exc_summary *s, uint64_t origin_bytes, uint64_t region_bytes)
{
	size_t i, j;

	printf("{\"device\":");
	print_json(json_object_new_string(dev));
	printf(",\"fresh\":%s,\"chunk_sectors\":%" PRIu32 ",\"areas\":%" PRIu64
	       ",\"exceptions\":%" PRIu64 ",\"changed_chunks\":%" PRIu64
	       ",\"changed_bytes\":%" PRIu64 ",\"region_bytes\":%" PRIu64 ",\"regions\":%" PRIu64,
	       ss->fresh ? "true" : "false", ss->chunk_sectors, ss->nr_areas, ss->nr_exceptions,
	       s->chunks, s->bytes, region_bytes, s->regions);
	if (origin_bytes)
		printf(",\"origin_bytes\":%" PRIu64 ",\"total_regions\":%" PRIu64, origin_bytes,
		       (origin_bytes - 1) / region_bytes + 1);
	else
		printf(",\"origin_bytes\":null,\"total_regions\":null");
	if (ss->nr_exceptions)
		printf(",\"max_old_chunk\":%" PRIu64, ss->max_old_chunk);
	else
		printf(",\"max_old_chunk\":null");
	/* The changed chunks as runs: [first, count]. */
	printf(",\"changed\":[");
	for (i = 0; i < l->n; i = j) {
		for (j = i + 1; j < l->n && l->v[j - 1] + 1 == l->v[j]; j++)
			;
		printf("%s[%" PRIu64 ",%zu]", i ? "," : "", l->v[i], j - i);
	}
	printf("]}\n");
}

int cmd_exceptions(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct chunk_list l = { 0 };
	uint64_t size, origin_bytes = 0, chunk_bytes, region_bytes;
	struct exc_summary s;
	struct blockdev obd;
	struct snapstore ss;
	char why[256], b1[32], b2[32];
	bool in_use;
	int fd, r;

	(void)argc;
	if (o->region_bytes && o->region_bytes % 512)
		return usage_error(cmd, "--region-size must be a multiple of 512 bytes");
	if (o->origin) {
		if (blockdev_get(o->origin, &obd))
			return EXIT_FAIL;
		origin_bytes = obd.size;
		if (!origin_bytes || origin_bytes % 512) {
			err("%s: size %" PRIu64 " bytes: not whole sectors", o->origin,
			    origin_bytes);
			return EXIT_FAIL;
		}
	}
	fd = meta_open(argv[0], false, &in_use, &size);
	if (fd < 0)
		return EXIT_FAIL;
	if (in_use && !o->json)
		warn("%s is in use: suspend the snapshot and its origin, or what is read may be changing",
		     argv[0]);
	r = snapstore_read(fd, size, 0, origin_bytes / 512, chunk_add, &l, &ss, why, sizeof(why));
	close(fd);
	if (r == -2 || (r && errno != EUCLEAN)) {
		if (r != -2)
			err("%s: %s", argv[0], why);
		free(l.v);
		return EXIT_FAIL;
	}
	if (r) {
		err("%s: refused: %s", argv[0], why);
		free(l.v);
		return EXIT_METADATA;
	}

	chunk_bytes = (uint64_t)ss.chunk_sectors << 9;
	region_bytes = o->region_bytes ? o->region_bytes : chunk_bytes;
	if (!region_bytes)	/* a fresh store, its chunk size unknown */
		region_bytes = 4096;
	exc_summarize(&l, chunk_bytes ? chunk_bytes : 512, origin_bytes, region_bytes, &s);

	if (o->json) {
		exc_json(argv[0], &ss, &l, &s, origin_bytes, region_bytes);
	} else if (ss.fresh) {
		printf("%s: fresh: no exception written yet (no snapshot has used it)\n", argv[0]);
		printf("%s: 0 exceptions, 0 bytes changed; a merge copies 0 regions\n", argv[0]);
	} else {
		printf("%s: chunk size %" PRIu32 " sectors (%s), %" PRIu64 " metadata area%s\n",
		       argv[0], ss.chunk_sectors, fmt_bytes(chunk_bytes, b1, sizeof(b1)),
		       ss.nr_areas, ss.nr_areas == 1 ? "" : "s");
		printf("%s: %" PRIu64 " exception%s, %" PRIu64 " chunk%s changed (%s)\n", argv[0],
		       ss.nr_exceptions, ss.nr_exceptions == 1 ? "" : "s", s.chunks,
		       s.chunks == 1 ? "" : "s", fmt_bytes(s.bytes, b2, sizeof(b2)));
		printf("%s: a merge copies %" PRIu64 " region%s of %s", argv[0], s.regions,
		       s.regions == 1 ? "" : "s", fmt_bytes(region_bytes, b1, sizeof(b1)));
		if (origin_bytes)
			printf(" (of %" PRIu64 ")", (origin_bytes - 1) / region_bytes + 1);
		printf("\n");
	}
	free(l.v);
	if (fflush(stdout) || ferror(stdout)) {
		err("cannot write the output: %s", strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
