/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: reading a dm-snapshot persistent exception store offline.
 *
 * The format is the kernel's (drivers/md/dm-snap-persistent.c): chunk 0 is
 * a header (magic "SnAp", valid, version 1, chunk size in sectors, all
 * little endian); then areas, each one metadata chunk of (old_chunk,
 * new_chunk) pairs of __le64 followed by the data chunks it describes.
 * Area i's metadata chunk is chunk 1 + i * (exceptions_per_area + 1),
 * exceptions_per_area = chunk bytes / 16. The list ends at the first pair
 * whose new_chunk is 0; a device that ends before it is refused (the
 * kernel zeroes the next area before it commits a full one).
 *
 * The store is hostile input: every field is checked before it is used,
 * and a store that breaks a rule is refused as a whole, with the reason.
 * Nothing here writes. A store in use must be read while its snapshot and
 * origin are suspended, so that every exception is on disk.
 */
#ifndef DMSTREAM_SNAPSTORE_H
#define DMSTREAM_SNAPSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kernel's constants (dm-snap-persistent.c). */
#define SNAPSTORE_MAGIC		0x70416e53U	/* "SnAp" */
#define SNAPSTORE_VERSION	1

struct snapstore {
	uint32_t chunk_sectors;		/* from the header */
	bool fresh;			/* magic 0: no exception written yet */
	uint64_t nr_exceptions;
	uint64_t nr_areas;		/* metadata areas read */
	uint64_t max_old_chunk;		/* the highest old_chunk seen */
};

/*
 * Called once per exception, in store order, with the origin chunk it
 * replaces and the COW chunk that holds it. Returns 0 to go on, non-zero
 * to stop the read (returned).
 */
typedef int (*snapstore_fn)(void *ctx, uint64_t old_chunk, uint64_t new_chunk);

/*
 * Reads the store on @fd, a COW device or image of @cow_bytes, for a
 * snapshot whose table says chunk size @table_chunk sectors (0: take the
 * header's) over an origin of @origin_sectors (0: unknown, old chunks then
 * unchecked). Returns 0 after calling @fn for every exception; -1 with the
 * reason in @why when the store is refused (no dm-snapshot store, invalid
 * snapshot, unknown version, a chunk size that is no power of two or is not
 * the table's, an old chunk outside the origin, a new chunk outside the COW
 * device or on a header or metadata chunk, or used twice, a device that
 * ends before the list) or cannot be read: errno is then EUCLEAN when it is
 * refused, else the read's error. @fn's value when it stopped the read (@fn
 * may have been called for earlier exceptions of a store then refused).
 */
int snapstore_read(int fd, uint64_t cow_bytes, uint32_t table_chunk, uint64_t origin_sectors,
		   snapstore_fn fn, void *ctx, struct snapstore *ss, char *why, size_t len);

#endif /* DMSTREAM_SNAPSTORE_H */
