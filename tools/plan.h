/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: planning a new stream's devices, for `create` and `copy`.
 *
 * plan_stream() checks everything a new stream needs before anything
 * changes and, last, prepares the metadata device (with --force it clears
 * one holding something else); plan_table() then gives the stream's table
 * line. The kernel's stream target is checked here too.
 */
#ifndef DMSTREAM_PLAN_H
#define DMSTREAM_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "stream-format.h"
#include "cli.h"
#include "dm.h"
#include "seed.h"
#include "util.h"

/* The helper origin of `copy`: NAME-origin, with a uuid starting so. */
#define ORIGIN_SUFFIX		"-origin"
#define ORIGIN_UUID_PREFIX	"DMSTREAM-ORIGIN-"

struct plan {
	const char *name;
	bool copy;			/* copy: NAME's table is the origin */
	const struct opts *o;
	struct blockdev origin;		/* create: --origin */
	struct dmx_info info;		/* copy: NAME, as planned */
	struct dmx_table old;		/* copy: NAME's table */
	char helper[160];		/* copy: the helper origin to make, or "" */
	/* The origin the table names: create's, copy's direct one, or (set by
	 * the caller once made) the helper. */
	unsigned int origin_major, origin_minor;
	struct blockdev dest, meta;
	uint64_t region;		/* sectors */
	uint64_t len;			/* the stream's length, sectors */
	bool format;			/* the metadata is to be formatted (not continued) */
	bool seeded;			/* seed holds regions to format as copied */
	struct seed seed;
	uint32_t id_options;		/* STREAM_ID_OPT_MERGE...: recorded as well */
	bool silent;			/* format without printing (a device is suspended) */
	/* Where the origin samples are (sectors), when not the default spread. */
	unsigned int nr_samples;
	bool samples_set;
	/* merge: the exception store's fingerprint (stream-format.h). */
	uint64_t merge_exceptions;
	uint32_t merge_csum, merge_chunk;
	uint64_t samples[STREAM_NR_SAMPLES];
};

/*
 * Plans stream @name from @cmd's options @o: create's when !@copy, copy's
 * of live device @name when @copy. Returns 0 or an exit code (usage error,
 * EXIT_FAIL, EXIT_METADATA), the message printed. plan_free() afterwards,
 * whatever it returned.
 */
int plan_stream(struct plan *p, const struct command *cmd, const struct opts *o,
		const char *name, bool copy);
/*
 * The part of plan_stream() that merge shares: the region size of the
 * command line, or @dflt sectors when none is given. Returns 0 or a usage
 * error.
 */
int plan_region(const struct command *cmd, const struct opts *o, uint64_t dflt,
		uint64_t *sectors);
/* @dest and @meta are large enough for a stream of @len sectors in @region ones. */
int plan_check_sizes(const char *what, const struct blockdev *dest, const struct blockdev *meta,
		     uint64_t len, uint64_t region);
/* Nothing named @name exists; else -1, "NAME already exists@hint" printed. */
int plan_name_free(const char *name, const char *hint);
/* -1 (message printed) when someone holds @bd exclusively. */
int plan_check_free(const struct blockdev *bd, const char *role);
/* The metadata device: see prepare_meta() in plan.c. 0, -1, -2 when refused. */
int plan_prepare_meta(struct plan *p, uint64_t origin_size, bool allow_continue, bool force);
/*
 * Formats the metadata device with the identity record (stream-format.h),
 * unless the plan continues earlier metadata: once the origin the table
 * names is known (p->origin_major:minor). The origin samples are asked
 * for, not taken: the kernel takes them when the stream first resumes,
 * when a live copy's origin no longer changes. Returns 0 or -1 (message
 * printed).
 */
int plan_format_meta(const struct plan *p);
/* The stream's table (dmx_table_free() it), over p->origin_major:minor. */
void plan_table(const struct plan *p, struct dmx_table *tbl);
void plan_free(struct plan *p);

/*
 * 0 when the kernel's stream target is of a version this tool knows, or
 * not loaded yet (*present false); -1 (message printed) when not, or on
 * error.
 */
int check_target(bool *present);
/*
 * 0 when the kernel's stream target takes the options @o asks for, or is
 * not loaded yet; -1 (message printed) when it is too old for one of them
 * (min_rate, max_rate, copy_on_read, skip_zeroes: target 2.1).
 */
int check_target_options(const struct opts *o);
/* After the kernel refused a table or message: its reason, and a hint when
 * it has no stream target. @what names the device or table. */
void explain_refusal(const char *what);

#endif /* DMSTREAM_PLAN_H */
