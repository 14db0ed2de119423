// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: stream status and table lines, progress display.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "status.h"
#include "stream-interface.h"
#include "util.h"

/*---------------------------------------------------------------------------*/
/* Parsing */

/* Where the option @w of a status line goes in @st: a flag or a number. */
static int opt_arg_ptr(struct stream_status *st, const char *w, bool **flag, uint64_t **num)
{
	const struct { const char *word; bool *flag; uint64_t *num; } opts[] = {
		{ STREAM_OPT_PAUSED, &st->paused, NULL },
		{ STREAM_OPT_NO_DISCARD_PASSDOWN, &st->no_discard_passdown, NULL },
		{ STREAM_OPT_MIRROR, &st->mirror_opt, NULL },
		{ STREAM_OPT_COPY_ON_READ, &st->copy_on_read, NULL },
		{ STREAM_OPT_SKIP_ZEROES, &st->skip_zeroes, NULL },
		{ STREAM_OPT_RATE, NULL, &st->rate },
		{ STREAM_OPT_MIN_RATE, NULL, &st->min_rate },
		{ STREAM_OPT_MAX_RATE, NULL, &st->max_rate },
	};
	size_t i;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (!strcasecmp(w, opts[i].word)) {
			*flag = opts[i].flag;
			*num = opts[i].num;
			return 0;
		}
	}
	return -1;
}

/* Applies "<#opt args> <opt args>*" to @st; @s starts at the count. */
static int parse_opt_args(const char *s, struct stream_status *st)
{
	char buf[256], *save, *w;
	uint64_t v, *num;
	unsigned int n, seen = 0;
	bool *flag;

	if (sscanf(s, "%u", &n) != 1 || strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	w = strtok_r(buf, " ", &save);		/* the count */
	while ((w = strtok_r(NULL, " ", &save))) {
		seen++;
		if (!strcasecmp(w, STREAM_OPT_MAX_INFLIGHT)) {
			w = strtok_r(NULL, " ", &save);
			if (!w || parse_u64(w, 0, UINT32_MAX, &v))
				return -1;
			seen++;
			st->max_inflight = v;
		} else if (opt_arg_ptr(st, w, &flag, &num)) {
			return -1;
		} else if (flag) {
			*flag = true;
		} else {
			w = strtok_r(NULL, " ", &save);
			if (!w || parse_u64(w, 0, UINT32_MAX, num))
				return -1;
			seen++;
		}
	}
	return seen == n ? 0 : -1;
}

/* "<a>/<b>" into two numbers. */
static int parse_pair(const char *w, uint64_t *a, uint64_t *b)
{
	char first[32];
	const char *slash = strchr(w, '/');

	if (!slash || (size_t)(slash - w) >= sizeof(first))
		return -1;
	memcpy(first, w, slash - w);
	first[slash - w] = '\0';
	return parse_u64(first, 0, UINT64_MAX, a) || parse_u64(slash + 1, 0, UINT64_MAX, b) ?
	       -1 : 0;
}

/*
 * The INFO status line, field by field in the order of enum
 * stream_status_field (stream-interface.h).
 */
int stream_status_parse(const char *params, uint64_t len, struct stream_status *st)
{
	char buf[512], *w[STREAM_STATUS_NR_FIELDS], *save = NULL;
	uint64_t v;
	int i, off;

	memset(st, 0, sizeof(*st));
	st->len = len;
	st->max_inflight = STREAM_DEFAULT_MAX_INFLIGHT;
	if (!strcmp(params, STREAM_STATUS_FAILED)) {
		st->fail = true;
		snprintf(st->mode, sizeof(st->mode), STREAM_MODE_NAME_FAIL);
		snprintf(st->state, sizeof(st->state), "failed");
		return 0;
	}
	if (strlen(params) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", params);
	for (i = 0; i < STREAM_STATUS_NR_FIELDS; i++) {
		w[i] = strtok_r(i ? NULL : buf, " ", &save);
		if (!w[i])
			return -1;
	}
	if (parse_u64(w[STREAM_STATUS_MD_BLOCK_SECTORS], 1, UINT32_MAX, &v) ||
	    parse_pair(w[STREAM_STATUS_MD_BLOCKS], &st->md_used, &st->md_total) ||
	    parse_u64(w[STREAM_STATUS_REGION_SIZE], 1, UINT64_MAX, &st->region_size) ||
	    parse_pair(w[STREAM_STATUS_REGIONS], &st->copied, &st->total) ||
	    parse_u64(w[STREAM_STATUS_COPYING], 0, UINT64_MAX, &st->copying) ||
	    strlen(w[STREAM_STATUS_STATE]) >= sizeof(st->state) ||
	    strlen(w[STREAM_STATUS_MODE]) >= sizeof(st->mode) ||
	    parse_u64(w[STREAM_STATUS_COPY_ERRORS], 0, UINT64_MAX, &st->errors) ||
	    (strcmp(w[STREAM_STATUS_MIRROR], STREAM_MIRROR_ON) &&
	     strcmp(w[STREAM_STATUS_MIRROR], STREAM_MIRROR_OFF) &&
	     strcmp(w[STREAM_STATUS_MIRROR], STREAM_MIRROR_DEGRADED)))
		return -1;
	st->md_block_sectors = v;
	snprintf(st->state, sizeof(st->state), "%s", w[STREAM_STATUS_STATE]);
	snprintf(st->mode, sizeof(st->mode), "%s", w[STREAM_STATUS_MODE]);
	snprintf(st->mirror, sizeof(st->mirror), "%s", w[STREAM_STATUS_MIRROR]);
	if (!st->total || st->copied > st->total)
		return -1;
	/* The optional arguments start at their count. */
	off = w[STREAM_STATUS_NR_OPT_ARGS] - buf;
	return parse_opt_args(params + off, st);
}

int stream_table_parse(const char *params, struct stream_table *t)
{
	char m[32], d[32], o[32];
	int off = 0;

	memset(t, 0, sizeof(*t));
	if (sscanf(params, "%31s %31s %31s %" SCNu64 " %n", m, d, o, &t->region_size, &off) < 4)
		return -1;
	if (parse_devt(m, &t->meta_major, &t->meta_minor) ||
	    parse_devt(d, &t->dest_major, &t->dest_minor) ||
	    parse_devt(o, &t->origin_major, &t->origin_minor))
		return -1;
	snprintf(t->opts, sizeof(t->opts), "%s", off ? params + off : "0");
	return 0;
}

/* The single stream target of @name, from a table or status listing. */
static struct dmx_target *single_stream(const char *name, struct dmx_table *tbl)
{
	if (tbl->nr != 1 || strcmp(tbl->t[0].type, STREAM_TARGET_NAME)) {
		err("%s is not a stream device (its table: %s%s)", name,
		    tbl->nr ? tbl->t[0].type : "none", tbl->nr > 1 ? ", ..." : "");
		return NULL;
	}
	return &tbl->t[0];
}

int stream_get(const char *name, struct stream_status *st, struct dmx_info *info)
{
	struct dmx_table tbl;
	struct dmx_target *t;
	int r = -1;

	if (dmx_info(name, info))
		return -1;
	if (!info->exists) {
		err("%s: no such device", name);
		return -1;
	}
	if (dmx_status(name, &tbl))
		return -1;
	t = single_stream(name, &tbl);
	if (t) {
		if (stream_status_parse(t->params, t->len, st))
			err("%s: cannot parse the status line '%s'", name, t->params);
		else
			r = 0;
	}
	dmx_table_free(&tbl);
	return r;
}

int stream_get_table(const char *name, struct stream_table *st, uint64_t *len)
{
	struct dmx_table tbl;
	struct dmx_target *t;
	int r = -1;

	if (dmx_table(name, &tbl))
		return -1;
	t = single_stream(name, &tbl);
	if (t) {
		if (stream_table_parse(t->params, st))
			err("%s: cannot parse the table line '%s'", name, t->params);
		else
			r = 0;
		*len = t->len;
	}
	dmx_table_free(&tbl);
	return r;
}

uint64_t stream_total_bytes(const struct stream_status *st)
{
	return st->len * 512;
}

uint64_t stream_copied_bytes(const struct stream_status *st)
{
	uint64_t b = st->copied * st->region_size * 512;

	/* The last region may be short. */
	return b > stream_total_bytes(st) ? stream_total_bytes(st) : b;
}

double stream_percent(const struct stream_status *st)
{
	if (st->fail || !st->total)
		return 0;
	return 100.0 * st->copied / st->total;
}

/*---------------------------------------------------------------------------*/
/* Progress */
void progress_init(struct progress *p, const char *name, enum progress_style style, FILE *out)
{
	struct winsize ws;

	memset(p, 0, sizeof(*p));
	p->name = name;
	p->style = style;
	p->out = out;
	p->width = 80;
	p->window = 5;
	if (style == PROGRESS_BAR && !ioctl(fileno(out), TIOCGWINSZ, &ws) && ws.ws_col >= 40)
		p->width = ws.ws_col;
}

void progress_sample(struct progress *p, const struct stream_status *st, double now)
{
	unsigned int i = (p->head + p->nr) % PROGRESS_SAMPLES;

	if (st->fail)
		return;
	if (p->nr == PROGRESS_SAMPLES) {
		p->head = (p->head + 1) % PROGRESS_SAMPLES;
		p->nr--;
	}
	p->t[i] = now;
	p->copied[i] = st->copied;
	p->nr++;
	/* Forget samples older than the window, but keep two. */
	while (p->nr > 2 && now - p->t[(p->head + 1) % PROGRESS_SAMPLES] >= p->window) {
		p->head = (p->head + 1) % PROGRESS_SAMPLES;
		p->nr--;
	}
}

double progress_rate(const struct progress *p, const struct stream_status *st)
{
	unsigned int first = p->head, last = (p->head + p->nr - 1) % PROGRESS_SAMPLES;
	double dt;

	if (p->nr < 2)
		return -1;
	dt = p->t[last] - p->t[first];
	if (dt < 0.1 || p->copied[last] < p->copied[first])
		return -1;
	return (double)(p->copied[last] - p->copied[first]) * st->region_size * 512 / dt;
}

double progress_eta(const struct progress *p, const struct stream_status *st)
{
	double rate = progress_rate(p, st);

	if (!strcmp(st->state, "complete"))
		return 0;
	if (rate <= 0)
		return -1;
	return (double)(stream_total_bytes(st) - stream_copied_bytes(st)) / rate;
}

static void show_json(struct progress *p, const struct stream_status *st)
{
	json_object *o = json_object_new_object();
	double rate = progress_rate(p, st), eta = progress_eta(p, st);
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "time", json_object_new_double(ts.tv_sec + ts.tv_nsec / 1e9));
	json_object_object_add(o, "state", json_object_new_string(st->state));
	json_object_object_add(o, "mode", json_object_new_string(st->mode));
	if (!st->fail) {
		json_object_object_add(o, "mirror", json_object_new_string(st->mirror));
		json_object_object_add(o, "copied", json_object_new_int64(st->copied));
		json_object_object_add(o, "total", json_object_new_int64(st->total));
		json_object_object_add(o, "percent",
				       json_object_new_double(stream_percent(st)));
		json_object_object_add(o, "copied_bytes",
				       json_object_new_int64(stream_copied_bytes(st)));
		json_object_object_add(o, "total_bytes",
				       json_object_new_int64(stream_total_bytes(st)));
		json_object_object_add(o, "region_size", json_object_new_int64(st->region_size));
		json_object_object_add(o, "copying", json_object_new_int64(st->copying));
		json_object_object_add(o, "errors", json_object_new_int64(st->errors));
		json_object_object_add(o, "rate", rate < 0 ? NULL :
				       json_object_new_int64((int64_t)rate));
		json_object_object_add(o, "eta", eta < 0 ? NULL :
				       json_object_new_int64((int64_t)(eta + 0.5)));
		json_object_object_add(o, "paused", json_object_new_boolean(st->paused));
		json_object_object_add(o, "rate_limit", json_object_new_int64(st->rate));
		json_object_object_add(o, "min_rate", json_object_new_int64(st->min_rate));
		json_object_object_add(o, "max_rate", json_object_new_int64(st->max_rate));
		json_object_object_add(o, "max_inflight",
				       json_object_new_int64(st->max_inflight));
		json_object_object_add(o, "copy_on_read",
				       json_object_new_boolean(st->copy_on_read));
		json_object_object_add(o, "skip_zeroes", json_object_new_boolean(st->skip_zeroes));
		json_object_object_add(o, "metadata_blocks_used", json_object_new_int64(st->md_used));
		json_object_object_add(o, "metadata_blocks", json_object_new_int64(st->md_total));
	}
	fprintf(p->out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* "45.3 MiB/s" or "-" */
static const char *fmt_rate(double rate, char *buf, size_t len)
{
	char b[32];

	if (rate < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s/s", fmt_bytes((uint64_t)rate, b, sizeof(b)));
	return buf;
}

static void show_line(struct progress *p, const struct stream_status *st)
{
	char a[32], b[32], r[32], e[32], l[32];

	if (st->fail) {
		fprintf(p->out, "%s: Fail: the metadata device failed, every I/O errors (see dmesg)\n",
			p->name);
		return;
	}
	fprintf(p->out, "%s: %.1f%% copied (%" PRIu64 "/%" PRIu64 " regions, %s of %s), %s, ETA %s, %s, %s, %" PRIu64 " errors, %s",
		p->name, stream_percent(st), st->copied, st->total,
		fmt_bytes(stream_copied_bytes(st), a, sizeof(a)),
		fmt_bytes(stream_total_bytes(st), b, sizeof(b)),
		fmt_rate(progress_rate(p, st), r, sizeof(r)),
		fmt_duration(progress_eta(p, st), e, sizeof(e)),
		st->state, st->mode, st->errors, st->mirror);
	if (st->rate)
		fprintf(p->out, ", limit %s/s", fmt_bytes(st->rate * 1024, l, sizeof(l)));
	if (st->min_rate)
		fprintf(p->out, ", busy %s/s", fmt_bytes(st->min_rate * 1024, l, sizeof(l)));
	if (st->max_rate)
		fprintf(p->out, ", idle %s/s", fmt_bytes(st->max_rate * 1024, l, sizeof(l)));
	if (st->copy_on_read)
		fprintf(p->out, ", copy-on-read");
	if (st->skip_zeroes)
		fprintf(p->out, ", skip-zeroes");
	fputc('\n', p->out);
}

/*
 * One line redrawn with a carriage return; padded with spaces instead of a
 * clear-to-end-of-line escape, so that it works on a dumb terminal too. The
 * fields have fixed widths, so the bar does not jump about.
 */
static void show_bar(struct progress *p, const struct stream_status *st)
{
	char a[32], b[32], r[32], e[32], tail[200], line[512];
	unsigned int cols, fill, i;
	int n;

	if (st->fail)
		snprintf(tail, sizeof(tail), "  Fail: the metadata device failed (see dmesg)");
	else
		snprintf(tail, sizeof(tail), " %5.1f%% %10s/%-10s %12s  ETA %7s  %s, %s%s",
			 stream_percent(st),
			 fmt_bytes(stream_copied_bytes(st), a, sizeof(a)),
			 fmt_bytes(stream_total_bytes(st), b, sizeof(b)),
			 fmt_rate(progress_rate(p, st), r, sizeof(r)),
			 fmt_duration(progress_eta(p, st), e, sizeof(e)),
			 st->state, st->mirror, st->errors ? " (copy errors)" : "");
	/* The bar takes what a 76-column text leaves, 10 to 40 columns. */
	n = (int)p->width - 1 - 2 - 76;
	cols = n < 10 ? 10 : n > 40 ? 40 : n;
	fill = st->fail ? 0 : (unsigned int)(cols * stream_percent(st) / 100.0);
	n = 0;
	line[n++] = '[';
	for (i = 0; i < cols; i++)
		line[n++] = i < fill ? '#' : '-';
	line[n++] = ']';
	snprintf(line + n, sizeof(line) - n, "%s", tail);
	fprintf(p->out, "\r%-*.*s", (int)p->width - 1, (int)p->width - 1, line);
	fflush(p->out);
	p->bar_drawn = true;
}

void progress_show(struct progress *p, const struct stream_status *st)
{
	switch (p->style) {
	case PROGRESS_JSON:
		show_json(p, st);
		break;
	case PROGRESS_LINES:
		show_line(p, st);
		break;
	case PROGRESS_BAR:
		show_bar(p, st);
		break;
	}
	fflush(p->out);
}

void progress_update(struct progress *p, const struct stream_status *st, double now)
{
	progress_sample(p, st, now);
	progress_show(p, st);
}

void progress_done(struct progress *p)
{
	if (p->style == PROGRESS_BAR && p->bar_drawn) {
		fputc('\n', p->out);
		fflush(p->out);
		p->bar_drawn = false;
	}
}
