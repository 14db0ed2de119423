/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: a stream device's table and status lines, progress and its
 * display (plain lines, JSON lines, or a progress bar on a terminal).
 */
#ifndef DMSTREAM_STATUS_H
#define DMSTREAM_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dm.h"

/* The target's status line (see stream_status() in the module). */
struct stream_status {
	bool fail;			/* the whole status is "Fail" */
	unsigned int md_block_sectors;
	uint64_t md_used, md_total;	/* metadata blocks */
	uint64_t region_size;		/* sectors */
	uint64_t copied, total;		/* regions */
	uint64_t copying;
	char state[16];			/* streaming, paused, stalled, complete */
	char mode[8];			/* rw, ro, fail */
	uint64_t errors;		/* copy errors */
	char mirror[16];		/* mirror, one-way, degraded (STREAM_MIRROR_*) */
	bool paused;
	bool mirror_opt;		/* the table has the mirror option */
	uint64_t rate;			/* KiB/s, 0 = no limit */
	uint64_t min_rate, max_rate;	/* KiB/s, 0 = the default */
	unsigned int max_inflight;
	bool no_discard_passdown;
	bool copy_on_read, skip_zeroes;
	uint64_t len;			/* target length, sectors */
};

/* The target's table line. */
struct stream_table {
	unsigned int meta_major, meta_minor;
	unsigned int dest_major, dest_minor;
	unsigned int origin_major, origin_minor;
	uint64_t region_size;
	char opts[256];			/* "<#opt args> <opt args>*" */
};

int stream_status_parse(const char *params, uint64_t len, struct stream_status *st);
int stream_table_parse(const char *params, struct stream_table *t);

/*
 * The status of stream device @name, with its info (event counter) read
 * first so that no event between them is missed. Prints an error and
 * returns -1 when the device is missing or not a single stream target.
 */
int stream_get(const char *name, struct stream_status *st, struct dmx_info *info);
/* The table of stream device @name, with the same checks. */
int stream_get_table(const char *name, struct stream_table *t, uint64_t *len);

uint64_t stream_copied_bytes(const struct stream_status *st);
uint64_t stream_total_bytes(const struct stream_status *st);
double stream_percent(const struct stream_status *st);

enum progress_style {
	PROGRESS_LINES,		/* one plain line per update */
	PROGRESS_JSON,		/* one JSON object per line */
	PROGRESS_BAR,		/* one line redrawn in place (a terminal) */
};

#define PROGRESS_SAMPLES	64

struct progress {
	const char *name;
	enum progress_style style;
	FILE *out;
	unsigned int width;	/* terminal columns, for the bar */
	bool bar_drawn;
	/* Recent (time, copied) samples for the current rate. */
	double t[PROGRESS_SAMPLES];
	uint64_t copied[PROGRESS_SAMPLES];
	unsigned int head, nr;
	double window;		/* seconds of history the rate looks at */
};

void progress_init(struct progress *p, const char *name, enum progress_style style, FILE *out);
void progress_sample(struct progress *p, const struct stream_status *st, double now);
/* Bytes per second over the recent samples, or -1 when unknown. */
double progress_rate(const struct progress *p, const struct stream_status *st);
/* Seconds left at the current rate, or -1 when unknown. */
double progress_eta(const struct progress *p, const struct stream_status *st);
void progress_show(struct progress *p, const struct stream_status *st);
/* progress_sample() at @now, then progress_show(). */
void progress_update(struct progress *p, const struct stream_status *st, double now);
/* Ends the bar's line (no-op for the other styles). */
void progress_done(struct progress *p);

#endif /* DMSTREAM_STATUS_H */
