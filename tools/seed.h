/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: the regions a new stream starts with as copied (seeding).
 *
 * A seed is a bitmap of the stream's regions in the on-disk order of
 * stream-format.h. meta_format() writes it into fresh metadata, before any
 * table exists, so a seeded region is never read from the origin. A region
 * is seeded only when what the user named covers it whole: a partly covered
 * region is copied, which is always safe.
 */
#ifndef DMSTREAM_SEED_H
#define DMSTREAM_SEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct seed {
	uint64_t nr_regions;
	uint64_t region;	/* sectors */
	uint64_t len;		/* the stream's length, sectors */
	uint64_t nr_set;
	uint8_t *bits;		/* bit r: bit (r % 8) of byte r / 8 */
};

/* An empty seed (nothing copied) for @len sectors in regions of @region. */
void seed_init(struct seed *s, uint64_t len, uint64_t region);
void seed_free(struct seed *s);
bool seed_test(const struct seed *s, uint64_t r);
void seed_set(struct seed *s, uint64_t r);
void seed_clear(struct seed *s, uint64_t r);
/* Every region seeded; then seed_clear_sectors() takes out what must be copied. */
void seed_set_all(struct seed *s);
/* Unseeds every region that sectors [@start, @end) touch. */
void seed_clear_sectors(struct seed *s, uint64_t start, uint64_t end);

/*
 * Seeds the regions that the byte ranges in @text cover whole. @text holds
 * ranges "START-END" (END excluded) or "START+LEN", sizes as parse_size()
 * takes them, separated by commas, or (@file) by newlines, where blank
 * lines and '#' comments are allowed. Returns 0, or -1 with the reason in
 * @why (a range that does not parse, is empty or reversed, or ends past the
 * stream), the seed then unchanged.
 */
int seed_parse(struct seed *s, const char *text, bool file, char *why, size_t len);

/* seed_parse() of the contents of file @path ("-": stdin). */
int seed_parse_file(struct seed *s, const char *path, char *why, size_t len);

#endif /* DMSTREAM_SEED_H */
