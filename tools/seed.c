// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: seeding, the regions a new stream starts with as copied
 * (seed.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seed.h"
#include "util.h"

/* A seed file is small: a list of ranges. */
#define SEED_FILE_MAX	(16U << 20)

void seed_init(struct seed *s, uint64_t len, uint64_t region)
{
	s->len = len;
	s->region = region;
	s->nr_regions = (len + region - 1) / region;
	s->nr_set = 0;
	s->bits = xcalloc((size_t)(s->nr_regions + 7) / 8, 1);
}

void seed_free(struct seed *s)
{
	free(s->bits);
	s->bits = NULL;
}

bool seed_test(const struct seed *s, uint64_t r)
{
	return s->bits[r / 8] & (1U << (r % 8));
}

void seed_set(struct seed *s, uint64_t r)
{
	if (!seed_test(s, r)) {
		s->bits[r / 8] |= 1U << (r % 8);
		s->nr_set++;
	}
}

void seed_clear(struct seed *s, uint64_t r)
{
	if (seed_test(s, r)) {
		s->bits[r / 8] &= ~(1U << (r % 8));
		s->nr_set--;
	}
}

void seed_set_all(struct seed *s)
{
	uint64_t r;

	for (r = 0; r < s->nr_regions; r++)
		seed_set(s, r);
}

void seed_clear_sectors(struct seed *s, uint64_t start, uint64_t end)
{
	uint64_t r;

	if (end > s->len)
		end = s->len;
	for (r = start / s->region; start < end && r <= (end - 1) / s->region; r++)
		seed_clear(s, r);
}

/* Seeds the regions inside bytes [@start, @end). */
static void seed_bytes(struct seed *s, uint64_t start, uint64_t end)
{
	uint64_t rb = s->region * 512;
	uint64_t first = (start + rb - 1) / rb, last = end / rb, r;

	/* The last region may be short: covered when the range reaches the end. */
	if (end == s->len * 512)
		last = s->nr_regions;
	for (r = first; r < last; r++)
		seed_set(s, r);
}

/* One range "START-END" or "START+LEN" into [*start, *end), bytes. */
static int parse_range(const char *w, uint64_t dev_bytes, uint64_t *start, uint64_t *end,
		       char *why, size_t len)
{
	char a[64];
	const char *sep = strpbrk(w, "-+");
	uint64_t x;

	if (!sep || (size_t)(sep - w) >= sizeof(a)) {
		snprintf(why, len, "'%s' is not a range: START-END or START+LEN", w);
		return -1;
	}
	memcpy(a, w, sep - w);
	a[sep - w] = '\0';
	if (parse_size(a, start) || parse_size(sep + 1, &x)) {
		snprintf(why, len, "'%s' is not a range: START-END or START+LEN, sizes such as "
			 "4M or 128s", w);
		return -1;
	}
	if (*sep == '+') {
		if (x > UINT64_MAX - *start) {
			snprintf(why, len, "range '%s' is too long", w);
			return -1;
		}
		x += *start;
	}
	*end = x;
	if (*end <= *start) {
		snprintf(why, len, "range '%s' is empty or reversed", w);
		return -1;
	}
	if (*end > dev_bytes) {
		snprintf(why, len, "range '%s' ends past the device's %" PRIu64 " bytes", w,
			 dev_bytes);
		return -1;
	}
	return 0;
}

static char *trim(char *w)
{
	char *e;

	while (*w == ' ' || *w == '\t' || *w == '\r')
		w++;
	e = w + strlen(w);
	while (e > w && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return w;
}

int seed_parse(struct seed *s, const char *text, bool file, char *why, size_t len)
{
	char *copy = xstrdup(text), *rest = copy, *w, *hash;
	uint64_t (*r)[2] = NULL, start, end;
	size_t n = 0, cap = 0, i, line = 0;
	int ret = -1;

	while ((w = strsep(&rest, file ? "\n" : ",")) != NULL) {
		line++;
		if (file) {
			hash = strchr(w, '#');
			if (hash)
				*hash = '\0';
		}
		w = trim(w);
		if (!*w) {
			if (file)
				continue;
			snprintf(why, len, "an empty range in '%s'", text);
			goto out;
		}
		if (parse_range(w, s->len * 512, &start, &end, why, len)) {
			if (file) {
				char tmp[384];

				snprintf(tmp, sizeof(tmp), "line %zu: %s", line, why);
				snprintf(why, len, "%s", tmp);
			}
			goto out;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			r = realloc(r, cap * sizeof(*r));
			if (!r) {
				snprintf(why, len, "out of memory");
				goto out;
			}
		}
		r[n][0] = start;
		r[n][1] = end;
		n++;
	}
	if (!n) {
		snprintf(why, len, "no range given");
		goto out;
	}
	/* All parsed: only now is the seed changed. */
	for (i = 0; i < n; i++)
		seed_bytes(s, r[i][0], r[i][1]);
	ret = 0;
out:
	free(r);
	free(copy);
	return ret;
}

int seed_parse_file(struct seed *s, const char *path, char *why, size_t len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *buf;
	size_t n;
	int r = -1;

	if (!f) {
		snprintf(why, len, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	buf = xcalloc(SEED_FILE_MAX + 1, 1);
	n = fread(buf, 1, SEED_FILE_MAX + 1, f);
	if (ferror(f))
		snprintf(why, len, "cannot read %s: %s", path, strerror(errno));
	else if (n > SEED_FILE_MAX)
		snprintf(why, len, "%s is larger than %u bytes", path, SEED_FILE_MAX);
	else if (memchr(buf, '\0', n))
		snprintf(why, len, "%s holds a NUL byte: not a list of ranges", path);
	else
		r = seed_parse(s, buf, true, why, len);
	if (f != stdin)
		fclose(f);
	free(buf);
	return r;
}
