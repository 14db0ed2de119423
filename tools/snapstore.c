// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: reading a dm-snapshot persistent exception store offline (see
 * snapstore.h for the format and the rules).
 *
 * The header chunk is read first and checked; then each metadata area, in
 * reads of at most SNAPSTORE_READ_MAX bytes (a chunk can be 1 GiB), up to
 * the pair that ends the list. Reads are O_DIRECT when the descriptor is
 * (meta_open() opens it so); a read the device refuses for its alignment
 * (EINVAL) is retried once without O_DIRECT. The new chunks seen are kept
 * in a bitmap of the COW device's chunks, allocated by calloc() and so
 * only touched where the store points.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapstore.h"
#include "util.h"

#define SNAPSTORE_READ_MAX	(1U << 20)
#define SNAPSTORE_PAIR_BYTES	16U
#define SNAPSTORE_HDR_READ	4096U
/* dm_exception_store_set_chunk_size(): chunk_size > INT_MAX >> SECTOR_SHIFT */
#define SNAPSTORE_MAX_CHUNK	((uint32_t)INT_MAX >> 9)

struct ss_reader {
	int fd;
	void *buf;
	char *why;
	size_t len;
};

static int refuse(struct ss_reader *rd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int refuse(struct ss_reader *rd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rd->why, rd->len, fmt, ap);
	va_end(ap);
	errno = EUCLEAN;
	return -1;
}

/*
 * Reads @len bytes at @off into rd->buf; fewer only at the end of the
 * device (*got says how many). -1 with errno and @why on an I/O error.
 */
static int ss_pread(struct ss_reader *rd, uint64_t off, size_t len, size_t *got)
{
	bool retried = false;
	size_t done = 0;
	ssize_t n;
	int fl, e;

	while (done < len) {
		n = pread(rd->fd, (char *)rd->buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && !retried) {
			/* O_DIRECT and a misaligned size: read through the cache. */
			retried = true;
			fl = fcntl(rd->fd, F_GETFL);
			if (fl >= 0 && (fl & O_DIRECT) && !fcntl(rd->fd, F_SETFL, fl & ~O_DIRECT))
				continue;
			errno = EINVAL;
		}
		if (n < 0) {
			e = errno;
			snprintf(rd->why, rd->len, "cannot read at byte %" PRIu64 ": %s",
				 off + done, strerror(e));
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		done += n;
	}
	*got = done;
	return 0;
}

static inline uint32_t get_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t get_le64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* The header's checks, in the kernel's order (read_header(), then the version). */
static int check_header(struct ss_reader *rd, uint64_t cow_bytes, uint32_t table_chunk,
			struct snapstore *ss)
{
	uint32_t magic, valid, version, chunk;
	uint64_t lbs64 = 0;
	struct stat st;
	int lbs;
	size_t got;

	if (cow_bytes < 16)
		return refuse(rd, "the device (%" PRIu64 " bytes) is too small for a header",
			      cow_bytes);
	if (ss_pread(rd, 0, SNAPSTORE_HDR_READ, &got))
		return -1;
	if (got < 16)
		return refuse(rd, "the header is cut short (%zu bytes)", got);
	magic = get_le32(rd->buf);
	valid = get_le32((char *)rd->buf + 4);
	version = get_le32((char *)rd->buf + 8);
	chunk = get_le32((char *)rd->buf + 12);

	if (magic == 0) {
		ss->fresh = true;
		ss->chunk_sectors = table_chunk;
		return 0;
	}
	if (magic != SNAPSTORE_MAGIC)
		return refuse(rd, "no dm-snapshot exception store: magic 0x%08" PRIx32
			      ", not 0x%08x (\"SnAp\")", magic, SNAPSTORE_MAGIC);
	if (!chunk || (chunk & (chunk - 1)))
		return refuse(rd, "chunk size %" PRIu32 " sectors is not a power of two", chunk);
	if (chunk > SNAPSTORE_MAX_CHUNK)
		return refuse(rd, "chunk size %" PRIu32 " sectors is above the kernel's %" PRIu32,
			      chunk, SNAPSTORE_MAX_CHUNK);
	if (table_chunk && chunk != table_chunk)
		return refuse(rd, "chunk size %" PRIu32 " sectors is not the table's %" PRIu32,
			      chunk, table_chunk);
	if (!fstat(rd->fd, &st) && S_ISBLK(st.st_mode) && !ioctl(rd->fd, BLKSSZGET, &lbs) &&
	    lbs > 0)
		lbs64 = (uint64_t)lbs;
	if (lbs64 && ((uint64_t)chunk << 9) % lbs64)
		return refuse(rd, "chunk size %" PRIu32 " sectors is not a multiple of the device's %d-byte blocks",
			      chunk, lbs);
	if (version != SNAPSTORE_VERSION)
		return refuse(rd, "unknown version %" PRIu32 " (only %d is)", version,
			      SNAPSTORE_VERSION);
	if (valid == 0)
		return refuse(rd, "the snapshot is invalid (it overflowed or failed): its store is no longer kept");
	if (valid != 1)
		return refuse(rd, "valid field %" PRIu32 " is neither 0 nor 1", valid);
	ss->chunk_sectors = chunk;
	return 0;
}

struct ss_walk {
	struct ss_reader *rd;
	uint64_t chunk_bytes, nr_chunks, stride, origin_chunks;
	uint8_t *seen;		/* new chunks seen, one bit each */
	snapstore_fn fn;
	void *ctx;
	struct snapstore *ss;
};

/* One pair: -1 refused, @fn's value when it stops, else 0. */
static int ss_pair(struct ss_walk *w, uint64_t old, uint64_t new)
{
	struct snapstore *ss = w->ss;
	uint64_t i = ss->nr_exceptions;

	if (new >= w->nr_chunks)
		return refuse(w->rd, "exception %" PRIu64 ": new chunk %" PRIu64
			      " is beyond the device (%" PRIu64 " chunks)", i, new, w->nr_chunks);
	if ((new - 1) % w->stride == 0)
		return refuse(w->rd, "exception %" PRIu64 ": new chunk %" PRIu64
			      " is a metadata chunk", i, new);
	if (w->seen[new / 8] & (1U << (new % 8)))
		return refuse(w->rd, "exception %" PRIu64 ": new chunk %" PRIu64
			      " is used twice", i, new);
	w->seen[new / 8] |= 1U << (new % 8);
	if (w->origin_chunks && old >= w->origin_chunks)
		return refuse(w->rd, "exception %" PRIu64 ": old chunk %" PRIu64
			      " is beyond the origin (%" PRIu64 " chunks)", i, old, w->origin_chunks);
	if (!i || old > ss->max_old_chunk)
		ss->max_old_chunk = old;
	ss->nr_exceptions++;
	return w->fn ? w->fn(w->ctx, old, new) : 0;
}

/*
 * The metadata area at chunk @area_chunk, read in pieces: 0 with @end set
 * when the list ends there, clear when the area is full (the list goes on
 * in the next area); else ss_pair()'s or the read's non-zero value.
 */
static int ss_area(struct ss_walk *w, uint64_t area_chunk, bool *end)
{
	uint64_t piece = w->chunk_bytes < SNAPSTORE_READ_MAX ? w->chunk_bytes : SNAPSTORE_READ_MAX;
	const uint8_t *p;
	uint64_t off;
	size_t got, k;
	int r;

	*end = false;
	for (off = 0; off < w->chunk_bytes; off += piece) {
		if (ss_pread(w->rd, area_chunk * w->chunk_bytes + off, piece, &got))
			return -1;
		if (got < piece) {
			/* Within nr_chunks: the device shrank under us. */
			snprintf(w->rd->why, w->rd->len,
				 "the device ends inside metadata chunk %" PRIu64, area_chunk);
			errno = EIO;
			return -1;
		}
		p = w->rd->buf;
		for (k = 0; k < piece; k += SNAPSTORE_PAIR_BYTES) {
			if (!get_le64(p + k + 8)) {
				*end = true;
				return 0;
			}
			r = ss_pair(w, get_le64(p + k), get_le64(p + k + 8));
			if (r)
				return r;
		}
	}
	return 0;
}

int snapstore_read(int fd, uint64_t cow_bytes, uint32_t table_chunk, uint64_t origin_sectors,
		   snapstore_fn fn, void *ctx, struct snapstore *ss, char *why, size_t len)
{
	struct ss_reader rd = { .fd = fd, .why = why, .len = len };
	struct ss_walk w = { .rd = &rd, .fn = fn, .ctx = ctx, .ss = ss };
	uint64_t area_chunk;
	bool end = false;
	int r = -1, e;

	memset(ss, 0, sizeof(*ss));
	if (len)
		why[0] = 0;
	rd.buf = xmalloc_aligned(SNAPSTORE_READ_MAX);
	if (check_header(&rd, cow_bytes, table_chunk, ss))
		goto out;
	r = 0;
	if (ss->fresh)
		goto out;

	w.chunk_bytes = (uint64_t)ss->chunk_sectors << 9;
	w.stride = w.chunk_bytes / SNAPSTORE_PAIR_BYTES + 1;
	w.nr_chunks = cow_bytes / w.chunk_bytes;
	if (origin_sectors)
		w.origin_chunks = (origin_sectors - 1) / ss->chunk_sectors + 1;
	w.seen = xcalloc(w.nr_chunks / 8 + 1, 1);
	/*
	 * The kernel never leaves the list without its end: it zeroes the next
	 * area before it commits a full one, and fails the snapshot when it
	 * cannot. A device that ends first was cut short.
	 */
	for (area_chunk = 1; !r && !end; area_chunk += w.stride) {
		if (area_chunk >= w.nr_chunks) {
			r = refuse(&rd, "the device (%" PRIu64 " chunks) ends before metadata area %" PRIu64 " at chunk %" PRIu64 ": cut short?",
				   w.nr_chunks, ss->nr_areas, area_chunk);
			break;
		}
		ss->nr_areas++;
		r = ss_area(&w, area_chunk, &end);
	}
out:
	e = errno;
	free(w.seen);
	free(rd.buf);
	errno = e;
	return r;
}
