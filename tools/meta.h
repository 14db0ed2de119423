/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: reading and checking a dm-stream metadata device offline.
 *
 * The layout is the module's, from dm-stream/stream-format.h. Every read
 * uses O_DIRECT when the device allows it, so the page cache cannot show
 * blocks older than what the kernel wrote through dm-bufio.
 */
#ifndef DMSTREAM_META_H
#define DMSTREAM_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream-format.h"
#include "seed.h"

/* The superblock, decoded to host byte order. */
struct meta_sb {
	uint32_t csum;
	uint32_t csum_calc;	/* what the block's bytes give */
	uint32_t flags;
	uint64_t blocknr;
	uint64_t magic;
	uint32_t version;
	uint32_t block_size;
	uint32_t region_size;
	uint32_t reserved0;
	uint64_t target_size;
	uint64_t nr_regions;
	uint64_t origin_size;
	uint64_t dest_size;
	uint64_t nr_bitmap_blocks;
	uint64_t transaction_id;
	uint64_t nr_copied;
	bool blank;		/* the whole block is zero */
	bool tail_zero;		/* the bytes after the fields, up to the identity, are zero */
	bool has_identity;	/* the identity record is not all zero */
	bool identity_tail_zero;	/* the bytes after the identity record are zero */
	struct stream_identity_disk identity;	/* as on disk */
};

/*
 * Why the module refuses the identity record in @sb for an origin of
 * @origin_size sectors (its words), or NULL: an all-zero record is none.
 */
const char *meta_identity_kernel_problem(const struct meta_sb *sb, uint64_t origin_size);

/* What a table would record: sizes in sectors. */
struct meta_geometry {
	uint32_t region_size;
	uint64_t target_size;
	uint64_t origin_size;
	uint64_t dest_size;
};

/* Checks the CRC32C implementation against the kernel's convention. */
int meta_crc_selftest(void);

/*
 * Opens a metadata device (or image file) for reading, or for writing with
 * @rw. *in_use is set when someone holds it exclusively (a live table): it
 * is then opened shared. Returns the fd or -1 (message printed).
 */
int meta_open(const char *path, bool rw, bool *in_use, uint64_t *size);
int meta_read_block(int fd, uint64_t block, void *buf);
int meta_read_sb(int fd, struct meta_sb *sb);
/* Zeroes block 0, so that the kernel formats the device. */
int meta_wipe(int fd);

/* The kernel's crc32c(~0, p, len): see stream-format.h. */
uint32_t meta_crc32c(const void *p, size_t len);
/* The same over more bytes: meta_crc32c(a + b) is meta_crc32c_more(meta_crc32c(a), b). */
uint32_t meta_crc32c_more(uint32_t crc, const void *p, size_t len);

/*
 * Formats a whole metadata device for @geo, as the kernel's format() does
 * (both slots of every bitmap block of transaction 0, empty or, with @seed,
 * holding its regions as copied), then writes the superblock (flags 0,
 * transaction 0, the seed's copied count) with identity record @id (NULL:
 * none). The bitmap is flushed before the superblock is written, and the
 * superblock after: a crash leaves no superblock or a whole one. Returns 0
 * or -1 (message printed).
 */
int meta_format(int fd, const struct meta_geometry *geo, const struct stream_identity_disk *id,
		const struct seed *seed);

/*
 * Replaces the identity record of the valid superblock on @fd with @id,
 * keeping every other byte, and writes it back with its new checksum.
 * @expect is the superblock as read before: if block 0 changed since, it
 * fails. Returns 0 or -1 (message printed).
 */
int meta_write_identity(int fd, const struct meta_sb *expect,
			const struct stream_identity_disk *id);

/*
 * The first problem in identity record @id of superblock @sb, in @buf
 * (strings without their NUL, unknown bits, samples outside the origin,
 * sizes that are not the superblock's), or NULL when it is sound.
 */
const char *meta_identity_problem(const struct stream_identity_disk *id,
				  const struct meta_sb *sb, char *buf, size_t len);

/*
 * The first problem the kernel's constructor would find in the superblock's
 * header (magic, checksum, block number, version, block size), in its
 * words, or NULL.
 */
const char *meta_sb_header_problem(const struct meta_sb *sb);
/* The kernel's message when @sb was formatted for another geometry, or NULL. */
const char *meta_sb_geometry_mismatch(const struct meta_sb *sb, const struct meta_geometry *geo);

enum meta_severity {
	META_NOTE,		/* normal, e.g. a slot left by an interrupted commit */
	META_NONFATAL,		/* damage the kernel tolerates */
	META_FATAL,		/* the kernel would refuse this metadata */
};

struct meta_slot_info {
	uint64_t location;	/* block number on the device */
	bool valid;		/* checksum, magic and block number right */
	const char *why;	/* when not valid */
	uint64_t transaction_id;
	bool future;		/* valid, but above the superblock's transaction */
};

struct meta_scan_ops {
	void *ctx;
	void (*problem)(void *ctx, enum meta_severity sev, const char *msg);
	/* Each bitmap block: its slots and the slot in use (-1: none). */
	void (*block)(void *ctx, uint64_t index, const struct meta_slot_info slot[2], int used);
	/* Runs of regions, ascending, alternating copied and uncopied. */
	void (*range)(void *ctx, bool copied, uint64_t first, uint64_t last);
};

struct meta_scan_result {
	struct meta_sb sb;
	bool sb_valid;		/* no fatal superblock problem */
	bool bitmap_scanned;
	uint64_t bits_set;
	unsigned int fatal, nonfatal, notes;
};

/*
 * Checks a whole metadata device of @dev_bytes: the superblock, then (unless
 * @sb_only) both slots of every bitmap block, which slot the kernel would
 * use, the bits past the last region and the copied count. Reports through
 * @ops. Returns 0 when the device could be read (problems or not), -1 on an
 * I/O error.
 */
int meta_scan(int fd, uint64_t dev_bytes, bool sb_only, const struct meta_scan_ops *ops,
	      struct meta_scan_result *res);

#endif /* DMSTREAM_META_H */
